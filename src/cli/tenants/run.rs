//! What every tenant of a multi-tenant run shares: the inputs checked before the first request
//! ([`prepare`]), signing in to one tenant ([`connect`]), the tenant's folder and files, and the
//! roll-up ([`finish`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use miette::miette;

use crate::cli::args::{GraphArgs, ManifestArgs, OutputFormat, ReadArgs, TenantsArgs};
use crate::cli::connection::Connection;
use crate::cli::exit;
use crate::cli::journal::shown;
use crate::cli::output::{self, OutputFile};
use mfactl::engine::tenants::{
    ROLLUP_FORMAT_VERSION, Rollup, TenantFiles, TenantOutcome, TenantStatus,
};
use mfactl::graph::auth::{self, SourceKind};
use mfactl::graph::{AppBudgets, GraphClient, Transport};
use mfactl::manifest::Manifest;
use mfactl::manifest::tenants::{self, TenantTarget};
use mfactl::plan::Plan;
use mfactl::plan::seal::PlanKey;
use mfactl::report::{self, ReportKind};
use mfactl::text::printable;

/// The journal of a tenant's apply, in its folder.
pub(super) const JOURNAL: &str = "journal.jsonl";
/// The saved plan a tenant's apply applies (or a plan run saved), in its folder.
pub(super) const PLAN: &str = "plan.json";
/// The reports every tenant gets, in its folder: the plan or apply document, and its markdown
/// and HTML renderings.
const REPORTS: [&str; 3] = ["report.json", "report.md", "report.html"];

/// Everything a multi-tenant run checked before its first request.
pub(super) struct Run<'a> {
    /// `plan` or `apply`.
    pub command: &'static str,
    pub manifest_path: &'a Path,
    pub manifest: Manifest,
    pub tenants_path: &'a Path,
    pub tenants: Vec<TenantTarget>,
    pub out_dir: PathBuf,
    pub reading: &'a ManifestArgs,
    /// How each tenant's live values are read (`--read-path`, `--max-report-age`).
    pub read: mfactl::engine::ReadOptions,
    pub graph: &'a GraphArgs,
    pub root: String,
    /// The app's ceilings, shared by every tenant's transport.
    pub app: Arc<AppBudgets>,
    /// Seals the tenants' saved plans, and checks them when a run is resumed.
    pub key: PlanKey,
    pub in_flight: usize,
    pub started: jiff::Timestamp,
}

/// What [`prepare`] needs from the command line.
pub(super) struct Setup<'a> {
    pub command: &'static str,
    pub manifest: &'a Path,
    pub reading: &'a ManifestArgs,
    pub read: &'a ReadArgs,
    pub graph: &'a GraphArgs,
    pub many: &'a TenantsArgs,
    /// `apply --resume DIR`: the folder of the run to finish (its journals are expected).
    pub resume: Option<&'a Path>,
}

/// Reads and checks everything offline, in the order a single-tenant run does: the manifest,
/// the tenants file, the Graph root, the credential source (one that can sign in to any
/// tenant), and the folders (made now, readable by the owner only). Nothing is sent.
pub(super) fn prepare<'a>(setup: Setup<'a>) -> miette::Result<Run<'a>> {
    let manifest = crate::cli::args::load_manifest(setup.manifest, setup.reading)?;
    let tenants_path = setup
        .many
        .tenants
        .as_deref()
        .expect("a multi-tenant run has --tenants");
    let tenants = tenants::load(tenants_path).map_err(miette::Report::new)?;
    let root = setup.graph.graph_root()?;
    check_source(setup.graph, &root, &tenants.tenants[0])?;
    let key = crate::cli::saved_plan::plan_key()?;
    let out_dir = out_dir(&setup)?;
    make_folders(&out_dir, &tenants.tenants, setup.resume.is_some())?;
    Ok(Run {
        command: setup.command,
        manifest_path: setup.manifest,
        manifest,
        tenants_path,
        tenants: tenants.tenants,
        out_dir,
        reading: setup.reading,
        read: setup.read.options(setup.graph.tenant_size),
        graph: setup.graph,
        root,
        app: Arc::new(AppBudgets::documented()),
        key,
        in_flight: usize::from(setup.many.max_tenants_in_flight),
        started: jiff::Timestamp::now(),
    })
}

/// `--out-dir`, `--resume DIR` (they must agree), or a new timestamped folder here.
fn out_dir(setup: &Setup<'_>) -> miette::Result<PathBuf> {
    match (setup.resume, &setup.many.out_dir) {
        (Some(resume), Some(out)) if resume != out => Err(miette!(
            help = "drop --out-dir: a resumed run writes into the folder it resumes",
            "--resume {} and --out-dir {} name different folders; nothing was sent",
            shown(resume),
            shown(out)
        )),
        (Some(resume), _) => Ok(resume.to_owned()),
        (None, Some(out)) => Ok(out.clone()),
        (None, None) => {
            let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
            Ok(PathBuf::from(format!("mfactl-{}-{stamp}", setup.command)))
        }
    }
}

/// Makes the run's folder and one per tenant (0700). A fresh run refuses a folder holding an
/// earlier apply's journal (its plan would be overwritten); a resumed one needs the folder.
fn make_folders(out_dir: &Path, targets: &[TenantTarget], resuming: bool) -> miette::Result<()> {
    if resuming && !out_dir.is_dir() {
        return Err(miette!(
            help = "give the --out-dir of the apply --tenants run to finish",
            "--resume {} is not a folder; nothing was sent",
            shown(out_dir)
        ));
    }
    create_private_dir(out_dir)?;
    for target in targets {
        let folder = out_dir.join(target.dir_name());
        if !resuming && folder.join(JOURNAL).exists() {
            return Err(miette!(
                help = format!(
                    "give another --out-dir, or finish that run: mfactl apply MANIFEST --tenants \
                     TENANTS.yaml --resume {}",
                    shown(out_dir)
                ),
                "{} holds the journal of an earlier apply; nothing was sent",
                shown(&folder)
            ));
        }
        create_private_dir(&folder)?;
    }
    Ok(())
}

/// Creates `path` (and its parents) readable by the owner only; an existing folder is kept.
fn create_private_dir(path: &Path) -> miette::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|error| {
        miette!(
            help = "check that you may write there",
            "cannot create the folder {}: {error}; nothing was sent",
            shown(path)
        )
    })
}

/// Refuses, before anything is sent, a credential source that cannot sign in to a tenant of
/// its choosing: only an app's secret, certificate or federated credential can ask each
/// tenant's authority for a token.
fn check_source(graph: &GraphArgs, root: &str, first: &TenantTarget) -> miette::Result<()> {
    let mut settings = graph.auth.settings(graph.cloud, root, None);
    settings.tenant = Some(first.tenant.clone());
    let credential =
        auth::choose(&settings, graph.auth.auth).map_err(crate::cli::sign_in::sign_in_error)?;
    let why = match credential.kind() {
        SourceKind::Secret | SourceKind::Certificate | SourceKind::Workload => return Ok(()),
        SourceKind::Token => "a token given as is (MFACTL_ACCESS_TOKEN, --token-file) is for one \
                              tenant"
            .to_owned(),
        SourceKind::Managed => "a managed identity's token always comes from the tenant the \
                                identity lives in (IMDS and App Service take no tenant), so it \
                                cannot sign in to customer tenants. Make the identity a \
                                federated credential of a multi-tenant app (Microsoft Entra: \
                                \"Configure an application to trust a managed identity\"), write \
                                its token for api://AzureADTokenExchange to a file, and run \
                                with --auth workload, AZURE_CLIENT_ID (the app) and \
                                AZURE_FEDERATED_TOKEN_FILE"
            .to_owned(),
        SourceKind::Cli => "the Azure CLI's account signs in to one tenant at a time".to_owned(),
        SourceKind::Device => {
            "an admin's cached sign-in (mfactl login) is for one tenant".to_owned()
        }
    };
    Err(miette!(
        help = "sign in as a multi-tenant app consented in every tenant: AZURE_CLIENT_ID with \
                AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE \
                (--auth secret|certificate|workload); the tenant comes from the tenants file",
        "--tenants signs in to each tenant, and --auth {} cannot: {why}; nothing was sent",
        credential.kind()
    ))
}

/// The tenant's folder.
pub(super) fn folder(run: &Run<'_>, target: &TenantTarget) -> PathBuf {
    run.out_dir.join(target.dir_name())
}

/// `[tenant] message` on stderr: the tenants run together, so every line says whose it is.
pub(super) fn say(target: &TenantTarget, message: impl std::fmt::Display) {
    eprintln!("[{}] {message}", printable(&target.tenant));
}

/// Signs in to one tenant at its authority (the app's credential, the tenant from the tenants
/// file) and builds its transport, drawing on the app's shared budgets. A token for another
/// tenant than the one asked for is refused here, before any request.
pub(super) async fn connect(
    run: &Run<'_>,
    target: &TenantTarget,
    tenant_size: u64,
) -> miette::Result<Connection> {
    let mut settings = run.graph.auth.settings(run.graph.cloud, &run.root, None);
    settings.tenant = Some(target.tenant.clone());
    let tokens = run.graph.auth.provider(&settings)?;
    tokens
        .current()
        .await
        .map_err(|error| sign_in_failed(error, &settings, target))?;
    say(target, format_args!("signed in with {}", tokens.describe()));
    let tenant_id = tokens.claims().and_then(|claims| claims.tenant_id);
    if let Some(tid) = &tenant_id
        && target.is_tenant_id()
        && !tid.eq_ignore_ascii_case(&target.tenant)
    {
        return Err(miette!(
            "the token is for tenant {}, not {}; nothing was sent",
            printable(tid),
            printable(&target.tenant)
        ));
    }
    let mut config = run
        .graph
        .transport_config(run.root.clone(), tokens, tenant_size);
    config.app = Some(run.app.clone());
    let transport =
        Transport::new(config).map_err(|error| miette!("cannot build the HTTP client: {error}"))?;
    Ok(Connection {
        client: GraphClient::new(transport),
        tenant_id,
        concurrency: usize::from(run.graph.concurrency),
        emulator: None,
        auth: Some(settings),
    })
}

/// A tenant's sign-in failure; when Entra says the app is not there (no service principal, not
/// found, not consented), the help says how the tenant's admin consents to it.
fn sign_in_failed(
    error: auth::AuthError,
    settings: &auth::AuthSettings,
    target: &TenantTarget,
) -> miette::Report {
    let consent = matches!(
        &error,
        auth::AuthError::Rejected(rejection) if matches!(
            rejection.code.as_deref(),
            Some("AADSTS7000229" | "AADSTS700016" | "AADSTS65001" | "AADSTS650051")
        )
    );
    if !consent {
        return crate::cli::sign_in::sign_in_error(error);
    }
    let authority = settings
        .authority()
        .unwrap_or_else(|_| settings.cloud.authority_host().to_owned());
    miette!(
        help = format!(
            "the app is not consented in {0}: an admin of that tenant grants it admin consent \
             ({authority}/{0}/adminconsent?client_id={1}); the other tenants are not affected",
            printable(&target.tenant),
            printable(settings.client_id().unwrap_or("<app id>"))
        ),
        "sign-in failed: {error}"
    )
}

/// Writes the tenant's reports of `plan` (a plan, or an apply's outcome) into its folder;
/// returns their paths relative to the run's folder.
pub(super) fn write_reports(
    run: &Run<'_>,
    target: &TenantTarget,
    plan: &Plan,
) -> miette::Result<Vec<String>> {
    let mut written = Vec::new();
    for name in REPORTS {
        let path = folder(run, target).join(name);
        let kind = ReportKind::from_path(&path).expect("a known report extension");
        OutputFile::check(&path, "a tenant's report")?
            .write(|out| report::write_report(plan, kind, out))?;
        written.push(relative(target, name));
    }
    Ok(written)
}

/// `name` in the tenant's folder, relative to the run's folder.
pub(super) fn relative(target: &TenantTarget, name: &str) -> String {
    format!("{}/{name}", target.dir_name())
}

/// Why a tenant stopped, in one line: the error, its causes and what to do.
pub(super) fn reason(report: &miette::Report) -> String {
    crate::cli::render_error(report)
        .trim_start_matches("error: ")
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a tenant came to, for the roll-up.
pub(super) struct Ended<'t> {
    pub target: &'t TenantTarget,
    pub status: TenantStatus,
    pub exit_code: u8,
    pub plan: Option<&'t Plan>,
    /// The counts sentence (`Plan: ...` or `Apply: ...`).
    pub line: Option<String>,
    pub reason: Option<String>,
    pub files: TenantFiles,
    pub started: Instant,
}

impl Ended<'_> {
    /// The roll-up's entry.
    pub fn outcome(self) -> TenantOutcome {
        TenantOutcome {
            tenant: self.target.tenant.clone(),
            folder: self.target.dir_name(),
            tenant_id: self.plan.and_then(|p| p.tenant_id.clone()),
            tenant_domain: self.plan.and_then(|p| p.tenant_domain.clone()),
            status: self.status,
            exit_code: self.exit_code,
            reason: self.reason,
            summary: self.plan.map(|p| p.summary),
            line: self.line,
            files: self.files,
            seconds: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// A tenant that failed: its reason said on stderr and recorded, exit code 1.
pub(super) fn failed(
    target: &TenantTarget,
    error: &miette::Report,
    files: TenantFiles,
    started: Instant,
) -> TenantOutcome {
    let reason = reason(error);
    say(target, format_args!("failed: {reason}"));
    Ended {
        target,
        status: TenantStatus::Failed,
        exit_code: exit::ERROR,
        plan: None,
        line: None,
        reason: Some(reason),
        files,
        started,
    }
    .outcome()
}

/// How severe an exit code is, for [`most_severe`]: Ctrl-C, then errors, then "needs
/// attention", then changes, then success.
fn severity(code: u8) -> u8 {
    match code {
        exit::OK => 0,
        exit::CHANGES => 1,
        exit::NOT_CONVERGED => 2,
        exit::INTERRUPTED => 4,
        _ => 3,
    }
}

/// The run's exit code: the most severe of the tenants' (1 error > 3 needs attention > 2
/// changes > 0; a run stopped by Ctrl-C exits 130).
pub(super) fn most_severe(codes: impl IntoIterator<Item = u8>) -> u8 {
    codes
        .into_iter()
        .max_by_key(|code| severity(*code))
        .unwrap_or(exit::OK)
}

/// Writes the roll-up (`summary.json`, `.md`, `.html`), prints it, and returns the run's exit
/// code.
pub(super) fn finish(
    run: &Run<'_>,
    outcomes: Vec<TenantOutcome>,
    format: OutputFormat,
) -> miette::Result<u8> {
    let mut rollup = Rollup {
        format_version: ROLLUP_FORMAT_VERSION,
        command: run.command.to_owned(),
        manifest: run.manifest_path.display().to_string(),
        tenants_file: run.tenants_path.display().to_string(),
        out_dir: run.out_dir.display().to_string(),
        started: run.started.to_string(),
        finished: jiff::Timestamp::now().to_string(),
        exit_code: most_severe(outcomes.iter().map(|t| t.exit_code)),
        totals: Default::default(),
        tenants: outcomes,
    };
    rollup.add_up();
    let write = |name: &str, render: &dyn Fn(&mut dyn std::io::Write) -> std::io::Result<()>| {
        OutputFile::check(&run.out_dir.join(name), "the roll-up")?.write(|out| render(out))
    };
    write("summary.json", &|out| {
        serde_json::to_writer_pretty(&mut *out, &rollup)?;
        writeln!(out)
    })?;
    write("summary.md", &|mut out| {
        report::render_rollup_markdown(&rollup, &mut out)
    })?;
    write("summary.html", &|mut out| {
        report::render_rollup_html(&rollup, &mut out)
    })?;
    output::to_stdout(|out| match format {
        OutputFormat::Text => report::render_rollup_text(&rollup, out),
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &rollup)?;
            writeln!(out)
        }
    })?;
    Ok(rollup.exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_is_the_most_severe_of_the_tenants() {
        assert_eq!(most_severe([0, 2, 0]), 2);
        assert_eq!(most_severe([2, 3, 0]), 3);
        assert_eq!(most_severe([3, 1, 2]), 1);
        assert_eq!(most_severe([1, 130, 0]), 130);
        assert_eq!(most_severe([]), 0);
    }
}
