//! `mfactl plan`: read the manifest, fetch live state, print what would change.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::args::{
    GraphArgs, ManifestArgs, OutputFormat, ReadArgs, TOKEN_HELP, TenantsArgs, TextArgs,
    load_manifest,
};
use super::connection::{Connection, say_read_path};
use super::exit;
use super::output::{self, OutputFile, ReportFile};
use super::saved_plan::{plan_key, save, stamp};
use super::sign_in::check_permissions;
use mfactl::engine::{self, preflight};
use mfactl::manifest::Manifest;
use mfactl::plan::Plan;
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
    pub read: ReadArgs,
    #[command(flatten)]
    pub many: TenantsArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
}

/// Plan's steps: check everything offline, connect, read and diff, record, print.
pub async fn run(args: PlanArgs) -> miette::Result<u8> {
    let checked = check(&args)?;
    let connection = connect(&args, &checked.manifest).await?;
    let options = args.read.options(args.graph.tenant_size);
    let mut plan = read_and_diff(connection, checked.manifest, &options).await?;
    record(&args, checked.out.as_ref(), &checked.reports, &mut plan)?;
    print(&args, &plan)?;
    Ok(plan_exit_code(&plan, args.detailed_exitcode))
}

/// What plan checked before sending anything: the manifest, and where the plan and the
/// reports go (with the key that seals a saved plan).
struct Checked {
    manifest: Manifest,
    out: Option<(OutputFile, PlanKey)>,
    reports: Vec<ReportFile>,
}

/// Everything that can be checked offline is, before the first request.
fn check(args: &PlanArgs) -> miette::Result<Checked> {
    let manifest = load_manifest(&args.manifest, &args.reading)?;
    args.graph.graph_root()?;
    let out = args
        .out
        .as_deref()
        .map(|path| OutputFile::check(path, "--out"))
        .transpose()?;
    // The key that seals a saved plan: made (or found broken) before anything is sent.
    let out = match out {
        Some(out) => Some((out, plan_key()?)),
        None => None,
    };
    let reports = ReportFile::check_all(&args.report)?;
    Ok(Checked {
        manifest,
        out,
        reports,
    })
}

/// Starts the emulator or signs in, and stops before the first request when the token lacks
/// a permission the manifest's reads need.
async fn connect(args: &PlanArgs, manifest: &Manifest) -> miette::Result<Connection> {
    let tenant = args.graph.load_emulated_tenant()?;
    let connection = Connection::open(&args.graph, tenant, GraphArgs::size_of(manifest)).await?;
    check_permissions(
        connection.tokens(),
        &preflight::reads(manifest, args.graph.methods_readable()),
    )?;
    Ok(connection)
}

/// Reads the live state and plans; then says what the run sent to Graph and stops the
/// emulator, whether planning succeeded or not.
async fn read_and_diff(
    mut connection: Connection,
    manifest: Manifest,
    options: &engine::ReadOptions,
) -> miette::Result<Plan> {
    let started = Instant::now();
    let planned = make_plan(&connection, &manifest, options).await;
    drop(manifest); // the plan holds what the rest needs
    connection.finish(started).await;
    planned
}

/// Asks Graph which tenant this is, reads the live state as `options` say (and says how on
/// stderr) and plans: the plan with its tenant, its cost estimate and the calls made. Stops
/// with one message when Graph cannot be reached or refuses the token.
pub async fn make_plan(
    connection: &Connection,
    manifest: &Manifest,
    options: &engine::ReadOptions,
) -> miette::Result<Plan> {
    let tenant = connection.identify().await?;
    let (mut plan, said) = engine::plan_with(
        &connection.client,
        manifest,
        connection.concurrency,
        options,
    )
    .await
    .map_err(|error| connection.stop(error))?;
    say_read_path(&said);
    plan.tenant_id = tenant.id;
    plan.tenant_domain = tenant.domain;
    plan.summary.estimate = Some(engine::estimate(&connection.client, &plan));
    plan.summary.calls = Some(engine::calls(&connection.client));
    Ok(plan)
}

/// Warns when apply would refuse the plan, records when and from what it was made (saved
/// plans, the JSON and every report carry it), saves it (`--out`) and writes the reports.
fn record(
    args: &PlanArgs,
    out: Option<&(OutputFile, PlanKey)>,
    reports: &[ReportFile],
    plan: &mut Plan,
) -> miette::Result<()> {
    warn_max_changes(plan);
    stamp(plan, &args.manifest, &args.reading)?;
    if let Some((out, key)) = out {
        save(out, plan, key)?;
    }
    for report in reports {
        report.write(plan)?;
    }
    Ok(())
}

/// The plan on stdout, as text or JSON.
fn print(args: &PlanArgs, plan: &Plan) -> miette::Result<()> {
    output::to_stdout(|stdout| match args.format {
        OutputFormat::Text => report::render_plan_text_with(
            plan,
            stdout,
            args.text.options(
                args.summary,
                std::io::IsTerminal::is_terminal(&std::io::stdout()),
            ),
        ),
        OutputFormat::Json => report::render_json(plan, stdout),
    })
}

/// Tells the reviewer now, not at apply time, that apply will refuse this plan: it has more
/// writes than the manifest's `maxChanges` allows.
pub fn warn_max_changes(plan: &Plan) {
    let writes = plan.summary.writes + plan.summary.policy_writes;
    if let Some(limit) = plan.max_changes.filter(|limit| writes > *limit) {
        eprintln!(
            "Warning: this plan has {writes} writes, more than the manifest's maxChanges of \
             {limit}: apply will refuse it. If every change is intended, raise maxChanges; or \
             split the manifest into smaller runs."
        );
    }
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
