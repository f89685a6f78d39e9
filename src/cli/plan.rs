//! `mfactl plan`: read the manifest, fetch live state, print what would change.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::args::{GraphArgs, OutputFormat, TOKEN_HELP, traffic_line};
use super::exit;
use super::output::{self, OutputFile, ReportFile};
use clap::Args;
use mfactl::engine::{self, preflight};
use mfactl::manifest::{self, Manifest};
use mfactl::plan::Plan;
use mfactl::plan::saved::{self, SourceFile};
use mfactl::plan::seal::PlanKey;
use mfactl::report;

#[derive(Debug, Args)]
#[command(after_help = TOKEN_HELP)]
pub struct PlanArgs {
    /// The desired-state file (YAML, or CSV by its .csv extension).
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// Also save the plan here, for `mfactl apply PLAN.json` to apply exactly (readable by
    /// you only; checked writable before anything is sent). It records the Graph root, the
    /// tenant, the manifest's SHA-256 and a checksum of its own content.
    #[arg(long, value_name = "PLAN.json")]
    pub out: Option<PathBuf>,
    /// How to print the plan on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Exit 0 when everything is in sync, 2 when not, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Print the summary alone (counts, changes, grouped reasons), without the users.
    #[arg(long)]
    pub summary: bool,
    #[command(flatten)]
    pub text: TextArgs,
    /// Also write a report here, in the format its extension names: .json (the plan
    /// document), .csv (one row per user and field), .md (a summary for a CI step summary),
    /// .html (a self-contained page with charts). May be given several times (one file per format, say). Readable by you only; checked before
    /// anything is sent.
    #[arg(long, value_name = "FILE")]
    pub report: Vec<PathBuf>,
    #[command(flatten)]
    pub reading: ManifestArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
}

/// How the text plan reads; shared by plan and apply.
#[derive(Debug, Args)]
pub struct TextArgs {
    /// Give each blocked user's whole reason and advice, not only the grouped one.
    #[arg(long)]
    pub detail: bool,
}

impl TextArgs {
    /// The layout for stdout: colours on a terminal unless `NO_COLOR` is set (no-color.org).
    pub fn options(&self, summary_only: bool, to_terminal: bool) -> report::TextOptions {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        report::TextOptions {
            detail: self.detail,
            summary_only,
            color: to_terminal && !no_color,
        }
    }
}

/// How to read the manifest; shared by plan, apply and validate.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// CSV: skip columns mfactl does not know (an export's displayName, mail, department...)
    /// instead of reporting them; a misspelt known column is still reported. No effect on YAML.
    #[arg(long)]
    pub ignore_unknown_columns: bool,
    /// Manage the tenant's authentication methods policy from this YAML file's `policy:`
    /// section (for a CSV manifest, which has no room for one; a YAML manifest may hold it).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Disable per-user MFA even for users no Conditional Access policy is known to require
    /// MFA for (not covered, or coverage unknown); without it their change is held. The plan,
    /// journal and report say so for each. Same as the manifest's `allowMfaGap: true`.
    #[arg(long)]
    pub allow_mfa_gap: bool,
}

impl ManifestArgs {
    pub fn options(&self) -> manifest::LoadOptions {
        manifest::LoadOptions {
            ignore_unknown_columns: self.ignore_unknown_columns,
        }
    }
}

/// A run-stopping failure, with what to do about it.
pub fn run_error(error: engine::RunError) -> miette::Report {
    miette::miette!(help = error.help(), "{error}")
}

/// Reads and validates a manifest (and the `--policy` file); every problem is reported and
/// nothing is sent.
pub fn load_manifest(path: &std::path::Path, reading: &ManifestArgs) -> miette::Result<Manifest> {
    let mut loaded = manifest::load_with(path, &reading.options()).map_err(miette::Report::new)?;
    if let Some(policy_path) = &reading.policy {
        let policy = manifest::load_policy(policy_path).map_err(miette::Report::new)?;
        if loaded.policy.is_some() {
            return Err(miette::miette!(
                help = "keep one policy section: in the manifest or in the --policy file",
                "{} has a policy: section and --policy {} names another",
                path.display(),
                policy_path.display()
            ));
        }
        loaded.policy = Some(policy);
    }
    loaded.allow_mfa_gap |= reading.allow_mfa_gap;
    Ok(loaded)
}

pub async fn run(args: PlanArgs) -> miette::Result<u8> {
    // Everything that can be checked offline is, before the first request.
    let manifest = load_manifest(&args.manifest, &args.reading)?;
    args.graph.graph_root()?;
    let out = args
        .out
        .as_deref()
        .map(|path| OutputFile::check(path, "--out"))
        .transpose()?;
    // The key that seals a saved plan: made (or found broken) before anything is sent.
    let key = match out {
        Some(_) => Some(plan_key()?),
        None => None,
    };
    let reports = ReportFile::check_all(&args.report)?;
    let tenant = args.graph.load_emulated_tenant()?;
    let connection = args
        .graph
        .connect(tenant, GraphArgs::size_of(&manifest))
        .await?;
    super::auth::check_permissions(
        connection.tokens(),
        &preflight::reads(&manifest, super::auth::methods_readable(&args.graph)),
    )?;
    let started = Instant::now();
    let planned = async {
        let tenant = connection.identify().await?;
        let mut plan = engine::plan(&connection.client, &manifest, connection.concurrency)
            .await
            .map_err(|error| connection.stop(error))?;
        plan.tenant_id = tenant.id;
        plan.tenant_domain = tenant.domain;
        plan.summary.estimate = Some(engine::estimate(&connection.client, &plan));
        plan.summary.calls = Some(engine::calls(&connection.client));
        Ok::<_, miette::Report>(plan)
    }
    .await;
    drop(manifest); // the plan holds what the rest needs
    eprintln!("{}", traffic_line(&connection.client, started.elapsed()));
    if let Some(emulator) = connection.emulator {
        emulator.shutdown().await;
    }
    let mut plan = planned?;
    warn_max_changes(&plan);
    // When and from what: saved plans, the JSON and every report carry it.
    stamp(&mut plan, &args.manifest, &args.reading)?;
    if let (Some(out), Some(key)) = (&out, &key) {
        save(out, &plan, key)?;
    }
    for report in &reports {
        report.write(&plan)?;
    }
    output::to_stdout(|stdout| match args.format {
        OutputFormat::Text => report::render_plan_text_with(
            &plan,
            stdout,
            args.text.options(
                args.summary,
                std::io::IsTerminal::is_terminal(&std::io::stdout()),
            ),
        ),
        OutputFormat::Json => report::render_json(&plan, stdout),
    })?;
    Ok(plan_exit_code(&plan, args.detailed_exitcode))
}

/// Tells the reviewer now, not at apply time, that apply will refuse this plan: it has more
/// writes than the manifest's `maxChanges` allows.
fn warn_max_changes(plan: &Plan) {
    let writes = plan.summary.writes + plan.summary.policy_writes;
    if let Some(limit) = plan.max_changes.filter(|limit| writes > *limit) {
        eprintln!(
            "Warning: this plan has {writes} writes, more than the manifest's maxChanges of \
             {limit}: apply will refuse it. If every change is intended, raise maxChanges; or \
             split the manifest into smaller runs."
        );
    }
}

/// Records in `plan` when it was made and the files it was made from: what a saved plan
/// carries to be trusted, and what reports say they come from.
pub fn stamp(plan: &mut Plan, manifest: &Path, reading: &ManifestArgs) -> miette::Result<()> {
    let source = |path: &Path| {
        SourceFile::of(path).map_err(|error| {
            miette::miette!(
                "cannot read {} again to record its checksum: {error}",
                mfactl::text::printable(&path.display().to_string())
            )
        })
    };
    plan.created = Some(jiff::Timestamp::now().to_string());
    plan.manifest = Some(source(manifest)?);
    plan.policy_file = reading.policy.as_deref().map(source).transpose()?;
    Ok(())
}

/// The plan key that seals saved plans ([`PlanKey`]): `MFACTL_PLAN_KEY`, or the key file,
/// made on first use.
pub fn plan_key() -> miette::Result<PlanKey> {
    PlanKey::from_environment(true)
        .map_err(|error| miette::miette!(help = error.help(), "{error}; nothing was sent"))?
        .ok_or_else(|| miette::miette!("no plan key could be made; nothing was sent"))
}

/// Writes `plan` as a saved plan (0600, atomically), sealed with `key`; returns its checksum.
pub fn save(out: &OutputFile, plan: &Plan, key: &PlanKey) -> miette::Result<String> {
    let mut checksum = String::new();
    out.write(|file| {
        checksum = saved::write(plan, file, key)?;
        Ok(())
    })?;
    Ok(checksum)
}

/// 1 when some user could not be read (the plan is incomplete); with `--detailed-exitcode`,
/// 2 when anything is not in sync and 0 otherwise.
pub fn plan_exit_code(plan: &Plan, detailed: bool) -> u8 {
    if plan.summary.failed > 0 {
        exit::ERROR
    } else if detailed && plan.has_changes() {
        exit::CHANGES
    } else {
        exit::OK
    }
}
