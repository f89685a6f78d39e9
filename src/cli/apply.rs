//! `mfactl apply`: plan, show the plan, confirm, write, report.

use std::io::{BufRead, IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use miette::{IntoDiagnostic, miette};

use super::args::{
    GraphArgs, ManifestArgs, OutputFormat, ReadArgs, TOKEN_HELP, TenantsArgs, TextArgs,
    load_manifest,
};
use super::connection::{Connection, run_error, say_read_path, traffic_line};
use super::exit;
use super::journal::{
    new_journal, plan_beside, read_resume, reopen_journal, resume_command, resume_needs_plan, shown,
};
use super::output::{self, OutputFile, ReportFile};
use super::saved_plan::{load_checked, plan_key, save, stamp};
use super::sign_in::check_permissions;
use mfactl::engine::{
    self, ApplyOptions, Interrupt, Journal, Resume, RunError, RunInfo, VerifyOptions, preflight,
};
use mfactl::manifest::Manifest;
use mfactl::plan::category::{Category, Phase};
use mfactl::plan::saved::{self, SourceFile};
use mfactl::plan::seal::PlanKey;
use mfactl::plan::{Plan, Status, estimate};
use mfactl::report;

#[derive(Debug, Args)]
#[command(after_help = TOKEN_HELP)]
pub struct ApplyArgs {
    /// The desired-state file (YAML, or CSV by its .csv extension), or a plan saved by
    /// `mfactl plan MANIFEST --out PLAN.json` (applied exactly, without asking).
    #[arg(value_name = "MANIFEST|PLAN.json")]
    pub manifest: PathBuf,
    /// Apply a manifest without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Record every write here, one JSON line each (readable by you only; opened before
    /// anything is sent). Default: a new timestamped file beside the saved plan, or in the
    /// current folder for a manifest, with the plan it applies saved beside it.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Finish an interrupted apply of the same saved plan: writes this journal shows made are
    /// not sent again, writes announced without an answer are read back first, and the run
    /// appends to the journal. With --tenants: the --out-dir of the run to finish (each
    /// tenant's saved plan and journal there; tenants it finished are left alone).
    #[arg(long, value_name = "JOURNAL|DIR")]
    pub resume: Option<PathBuf>,
    /// Refuse to start when the plan has more writes than this (users' PATCHes and the policy
    /// write): nothing is written. With the manifest's `maxChanges:` too, the smaller wins.
    #[arg(long, value_name = "N")]
    pub max_changes: Option<u64>,
    /// Refuse a saved plan older than this (e.g. 24h, 90m, 2d, 1h30m).
    #[arg(long, value_name = "AGE", default_value = saved::DEFAULT_MAX_AGE, value_parser = saved::parse_age)]
    pub max_plan_age: Duration,
    /// How to print the report on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Also write the finished run's report here, in the format its extension names: .json
    /// (the report document), .csv (one row per user and field), .md (a summary for a CI step
    /// summary), .html (a self-contained page with charts). May be given several times (one file per format, say). Readable by you only; checked
    /// before anything is sent.
    #[arg(long, value_name = "FILE")]
    pub report: Vec<PathBuf>,
    /// Do not read the written endpoints back after the writes (by default a user whose
    /// writes Graph accepted but does not show is reported `unverified`, exit code 3).
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub text: TextArgs,
    #[command(flatten)]
    pub reading: ManifestArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub many: TenantsArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
}

/// What apply was given.
enum Source {
    Manifest(Manifest),
    /// A saved plan, checked offline (format, checksum, age, Graph root).
    Saved(Box<Plan>),
}

/// Whether `path` names a saved plan rather than a manifest: by its extension.
fn is_saved_plan(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Apply's steps: check everything offline, connect, plan (or take the saved plan) and show
/// it; when it writes: check it may, confirm, write and verify; then finish, report and exit.
pub async fn run(args: ApplyArgs) -> miette::Result<u8> {
    let Checked {
        source,
        reports,
        key,
        resume,
        journal,
    } = check(&args)?;
    let mut connection = connect(&args, &source).await?;
    let started = Instant::now();
    let mut plan = match the_plan(&args, &connection, source).await {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("{}", traffic_line(&connection.client, started.elapsed()));
            return Err(error);
        }
    };
    let saved_plan = is_saved_plan(&args.manifest);
    show_plan(&args, &plan, saved_plan)?;
    let written = if plan.write_count() > 0 {
        check_writes(&args, &connection, &plan)?;
        if !saved_plan && !args.auto_approve && !confirm()? {
            eprintln!("Apply cancelled: nothing was changed.");
            return Ok(exit::ERROR);
        }
        let files = write_files(&args, &plan, key.as_ref(), journal)?;
        Some(write(&args, &connection, &mut plan, files, resume.as_ref()).await)
    } else {
        if let Some(journal) = &journal {
            record_no_writes(&args, &connection, &plan, journal, resume.is_some())?;
        }
        None
    };
    connection.finish(started).await;
    finish(&connection, &mut plan);
    report(&args, &plan, &reports, written.as_ref())?;
    exit_code(&args, &connection, &plan, written)
}

/// What apply checked before sending anything.
struct Checked {
    source: Source,
    reports: Vec<ReportFile>,
    /// The key that seals the plan a manifest apply saves (for `--resume`).
    key: Option<PlanKey>,
    /// `--resume`: the journal's path and what it says was done.
    resume: Option<(PathBuf, Resume)>,
    /// The journal, when one was named or is resumed.
    journal: Option<Journal>,
}

/// Everything that can be checked offline is, before the first request: the manifest or the
/// saved plan, a prompt that can be answered, the reports, the plan key, the journal.
fn check(args: &ApplyArgs) -> miette::Result<Checked> {
    let root = args.graph.graph_root()?;
    let source = if is_saved_plan(&args.manifest) {
        Source::Saved(Box::new(load_saved(args, &root)?))
    } else {
        if let Some(journal) = &args.resume {
            return Err(resume_needs_plan(journal));
        }
        Source::Manifest(load_manifest(&args.manifest, &args.reading)?)
    };
    if matches!(source, Source::Manifest(_))
        && !args.auto_approve
        && !std::io::stdin().is_terminal()
    {
        return Err(miette!(
            help = "review the changes with `mfactl plan` first, then pass --auto-approve (or \
                    save the plan with `mfactl plan MANIFEST --out PLAN.json` and apply that)",
            "apply asks for confirmation, but stdin is not a terminal"
        ));
    }
    let reports = ReportFile::check_all(&args.report)?;
    // A manifest apply saves the plan it applies (for --resume): sealed with the plan key,
    // made or found broken before anything is sent.
    let key = match &source {
        Source::Manifest(_) => Some(plan_key()?),
        Source::Saved(_) => None,
    };
    let resume = match (&args.resume, &source) {
        (Some(path), Source::Saved(plan)) => {
            Some(read_resume(path, plan, args.journal.as_deref())?)
        }
        _ => None,
    };
    // An explicit journal is opened now, so a bad path costs nothing; a default one is made
    // once there is something to write.
    let journal = match (&resume, &args.journal) {
        (Some((path, _)), _) => Some(reopen_journal(path)?),
        (None, Some(path)) => {
            Some(Journal::open(path).map_err(|e| miette!(help = "nothing was sent", "{e}"))?)
        }
        (None, None) => None,
    };
    Ok(Checked {
        source,
        reports,
        key,
        resume,
        journal,
    })
}

/// Starts the emulator or signs in; refuses a saved plan made for another tenant than the
/// emulated tenant file's or the token's, and a manifest whose reads the token may not make.
async fn connect(args: &ApplyArgs, source: &Source) -> miette::Result<Connection> {
    let tenant = args.graph.load_emulated_tenant()?;
    if let (Source::Saved(plan), Some(tenant)) = (source, &tenant) {
        same_tenant(plan, Some(&tenant.tenant_id), "the emulated tenant file")?;
    }
    let users = match source {
        Source::Manifest(manifest) => GraphArgs::size_of(manifest),
        Source::Saved(plan) => plan.summary.users.max(plan.users.len() as u64),
    };
    let connection = Connection::open(&args.graph, tenant, users).await?;
    match source {
        // The token's tenant, when it names one: refused before any request.
        Source::Saved(plan) => {
            same_tenant(plan, connection.tenant_id.as_deref(), "the access token")?
        }
        Source::Manifest(manifest) => check_permissions(
            connection.tokens(),
            &preflight::reads(manifest, args.graph.methods_readable()),
        )?,
    }
    Ok(connection)
}

/// The plan to apply: a manifest's, made now; or the saved one, once Graph confirms its
/// tenant and its manifest's guards are applied again.
async fn the_plan(
    args: &ApplyArgs,
    connection: &Connection,
    source: Source,
) -> miette::Result<Plan> {
    let client = &connection.client;
    let tenant = connection.identify().await?;
    let plan = match source {
        Source::Manifest(manifest) => {
            let options = args.read.options(args.graph.tenant_size);
            let (mut plan, said) =
                engine::plan_with(client, &manifest, connection.concurrency, &options)
                    .await
                    .map_err(|error| connection.stop(error))?;
            say_read_path(&said);
            // The plan holds what the rest needs; the desired state (a million entries in
            // a large migration) is let go before writing starts.
            drop(manifest);
            plan.tenant_id = tenant.id;
            plan.tenant_domain = tenant.domain;
            plan.summary.estimate = Some(engine::estimate(client, &plan));
            stamp(&mut plan, &args.manifest, &args.reading)?;
            plan
        }
        Source::Saved(plan) => {
            let mut plan = *plan;
            // Graph's word on the tenant, before any write.
            same_tenant(&plan, tenant.id.as_deref(), "Graph (/organization)")?;
            super::recheck::manifest_guards(client, &mut plan, connection.concurrency)
                .await
                .map_err(|error| connection.stop(error))?;
            plan.summary.estimate = Some(engine::estimate(client, &plan));
            plan.summary.calls = None;
            plan
        }
    };
    Ok(plan)
}

/// Before the prompt and the first write: a plan with more writes than the run may make stops
/// here, and a token that may not make them says so now.
fn check_writes(args: &ApplyArgs, connection: &Connection, plan: &Plan) -> miette::Result<()> {
    check_max_changes(plan, args.max_changes)?;
    let mut needs = preflight::writes(plan);
    if is_saved_plan(&args.manifest) {
        needs.extend(super::recheck::name_reads(plan));
    }
    check_permissions(connection.tokens(), &needs)
}

/// The saved plan a run applies and the journal that records it: every apply has a journal,
/// and every journal the saved plan it applies (the two are what `--resume` needs).
struct Files {
    plan_path: PathBuf,
    checksum: String,
    journal: Journal,
}

/// The saved plan (a manifest apply saves the plan it applies, beside the journal) and the
/// journal (the one named or resumed, or a new one beside the plan), said on stderr.
fn write_files(
    args: &ApplyArgs,
    plan: &Plan,
    key: Option<&PlanKey>,
    journal: Option<Journal>,
) -> miette::Result<Files> {
    let saved_plan = is_saved_plan(&args.manifest);
    let (plan_path, checksum) = if saved_plan {
        let checksum = plan
            .checksum
            .clone()
            .expect("a loaded saved plan has a checksum");
        (args.manifest.clone(), checksum)
    } else {
        let plan_path = plan_beside(args.journal.as_deref());
        let out = OutputFile::check(&plan_path, "the plan beside the journal")?;
        let key = key.expect("a manifest apply has its plan key");
        let checksum = save(&out, plan, key)?;
        (plan_path, checksum)
    };
    let journal = match journal {
        Some(journal) => journal,
        None => new_journal(&plan_path, saved_plan)?,
    };
    eprintln!("Journal: {}", shown(journal.path()));
    if !saved_plan {
        eprintln!("Plan:    {}", shown(&plan_path));
    }
    Ok(Files {
        plan_path,
        checksum,
        journal,
    })
}

/// What the writes left: why the run stopped early, if it did, and the files that finish it.
struct Written {
    halted: Option<RunError>,
    plan_path: PathBuf,
    journal: PathBuf,
}

/// Writes the plan (journalled, Ctrl-C stopping new writes), then reads the written endpoints
/// back (unless `--no-verify`).
async fn write(
    args: &ApplyArgs,
    connection: &Connection,
    plan: &mut Plan,
    files: Files,
    resume: Option<&(PathBuf, Resume)>,
) -> Written {
    let client = &connection.client;
    if let Some((_, resume)) = resume {
        eprintln!(
            "Resuming: {} writes already made are not sent again; {} announced without an \
             answer are read back first.",
            resume.applied(),
            resume.unsettled()
        );
    }
    let interrupt = Interrupt::new();
    let writing = Arc::new(AtomicBool::new(true));
    let watcher = tokio::spawn(watch_ctrl_c(interrupt.clone(), Arc::clone(&writing)));
    let applying = Instant::now();
    let tenant_id = plan.tenant_id.clone();
    let run = RunInfo {
        graph: client.transport().root(),
        tenant_id: tenant_id.as_deref(),
        plan: Some(&files.plan_path),
        plan_checksum: Some(&files.checksum),
        resumed: resume.is_some(),
    };
    let options = ApplyOptions {
        journal: Some((&files.journal, run)),
        resume: resume.map(|(_, r)| r),
        concurrency: connection.concurrency,
        interrupt: interrupt.clone(),
        // A saved plan is a file: its names are checked against Graph's before writing.
        check_names: is_saved_plan(&args.manifest),
    };
    let halted = engine::apply(client, plan, options).await.err();
    eprintln!("{}", took(plan, applying.elapsed(), halted.as_ref()));
    writing.store(false, Ordering::SeqCst);
    let verify = VerifyOptions {
        enabled: !args.no_verify,
        journal: Some(&files.journal),
        concurrency: connection.concurrency,
        interrupt,
        recheck_after: Duration::from_secs(2),
    };
    let verification = engine::verify::after_apply(client, plan, halted.as_ref(), verify).await;
    eprintln!("{}", report::verify_line(&verification));
    watcher.abort();
    Written {
        halted,
        plan_path: files.plan_path,
        journal: files.journal.path().to_owned(),
    }
}

/// A run with nothing to write still records itself in a journal that was named or resumed.
fn record_no_writes(
    args: &ApplyArgs,
    connection: &Connection,
    plan: &Plan,
    journal: &Journal,
    resumed: bool,
) -> miette::Result<()> {
    let run = RunInfo {
        graph: connection.client.transport().root(),
        tenant_id: plan.tenant_id.as_deref(),
        plan: is_saved_plan(&args.manifest).then_some(args.manifest.as_path()),
        plan_checksum: plan.checksum.as_deref(),
        resumed,
    };
    journal.start(&run).map_err(|e| miette!("{e}"))?;
    journal.finish().map_err(|e| miette!("{e}"))
}

/// What the finished run's document says besides its users: the writes made, the calls, when.
fn finish(connection: &Connection, plan: &mut Plan) {
    plan.summary.applied.get_or_insert(0);
    plan.summary.calls = Some(engine::calls(&connection.client));
    plan.finished = Some(jiff::Timestamp::now().to_string());
}

/// The finished run on stdout (text or JSON) and in every `--report`; the journal named again.
fn report(
    args: &ApplyArgs,
    plan: &Plan,
    reports: &[ReportFile],
    written: Option<&Written>,
) -> miette::Result<()> {
    output::to_stdout(|out| match args.format {
        OutputFormat::Text => {
            if plan.has_changes() {
                writeln!(out)?;
            }
            report::render_apply_text(plan, out)
        }
        OutputFormat::Json => report::render_json(plan, out),
    })?;
    for report in reports {
        report.write(plan)?;
    }
    if let Some(written) = written {
        eprintln!("Journal: {}", shown(&written.journal));
    }
    Ok(())
}

/// The exit code ([`apply_exit_code`]), or, for a run that halted (the report above shows what
/// was done before), why, with the command that finishes it.
fn exit_code(
    args: &ApplyArgs,
    connection: &Connection,
    plan: &Plan,
    written: Option<Written>,
) -> miette::Result<u8> {
    let Some(written) = written else {
        return Ok(apply_exit_code(plan));
    };
    let resume_hint = || {
        eprintln!(
            "To finish the run: {}",
            resume_command(&args.manifest, &written.plan_path, &written.journal)
        );
    };
    match written.halted {
        Some(RunError::Interrupted) => {
            eprintln!("{}", run_error(RunError::Interrupted));
            resume_hint();
            Ok(exit::INTERRUPTED)
        }
        Some(error) => {
            resume_hint();
            Err(connection.stop(error))
        }
        None => Ok(apply_exit_code(plan)),
    }
}

/// Shows the plan about to be applied: as text on stdout (a saved plan, reviewed when it was
/// made: its summary, not every user again), or, for `--format json` with a prompt coming, on
/// stderr.
fn show_plan(args: &ApplyArgs, plan: &Plan, saved_plan: bool) -> miette::Result<()> {
    match args.format {
        OutputFormat::Text => {
            let options = args
                .text
                .options(saved_plan, std::io::stdout().is_terminal());
            output::to_stdout(|out| {
                report::render_plan_text_with(plan, out, options)?;
                if saved_plan && !plan.users.is_empty() {
                    writeln!(
                        out,
                        "The plan's users are not listed again: {} holds each one's change \
                         (`users`), and `--format json` or `--report FILE` gives each one's \
                         outcome.",
                        shown(&args.manifest)
                    )?;
                }
                Ok(())
            })
        }
        OutputFormat::Json if !args.auto_approve && !saved_plan => {
            let mut stderr = std::io::BufWriter::new(std::io::stderr().lock());
            let options = args.text.options(false, std::io::stderr().is_terminal());
            report::render_plan_text_with(plan, &mut stderr, options)
                .and_then(|()| stderr.flush())
                .into_diagnostic()
        }
        OutputFormat::Json => Ok(()),
    }
}

/// How long the writes took: `Applied in 47 s (estimated at least 45 s).`, or, for a run that
/// stopped early, that it stopped (the estimate was for the whole run).
fn took(plan: &Plan, elapsed: Duration, halted: Option<&RunError>) -> String {
    let took = estimate::duration(elapsed.as_secs_f64());
    match halted {
        Some(RunError::Interrupted) => format!(
            "Stopped by Ctrl-C after {took}: the writes in flight finished; no other was sent."
        ),
        Some(_) => format!("Stopped after {took}: the run could not go on (see below)."),
        None => match plan.summary.estimate {
            Some(estimate) => format!(
                "Applied in {took} (estimated at least {}).",
                estimate::duration(estimate.seconds)
            ),
            None => format!("Applied in {took}."),
        },
    }
}

/// Reads a saved plan and refuses it, before any request, when it is of another format, was
/// edited, is too old, or was made against another Graph root.
fn load_saved(args: &ApplyArgs, root: &str) -> miette::Result<Plan> {
    let path = &args.manifest;
    if args.reading.policy.is_some() || args.reading.ignore_unknown_columns || args.read.given() {
        return Err(miette!(
            help = "a saved plan holds its policy and users already; drop the flag",
            "--policy, --ignore-unknown-columns, --read-path and --max-report-age read \
             manifests; {} is a saved plan",
            shown(path)
        ));
    }
    if args.reading.allow_mfa_gap {
        return Err(miette!(
            help = "make the plan again with it: mfactl plan MANIFEST --allow-mfa-gap --out \
                    PLAN.json, review it, then apply that plan",
            "--allow-mfa-gap is decided when a plan is made, and {} is a saved plan, applied as \
             it was reviewed; nothing was sent",
            shown(path)
        ));
    }
    let key = PlanKey::from_environment(false)
        .map_err(|error| miette!(help = error.help(), "{error}; nothing was sent"))?;
    let plan = load_checked(
        path,
        key.as_ref(),
        args.max_plan_age,
        "`mfactl plan MANIFEST --out PLAN.json`",
    )?;
    // An emulated run has a new address each time: its tenant file's id is checked instead.
    if args.graph.emulate.is_none() && plan.graph.trim_end_matches('/') != root {
        return Err(miette!(
            help = "apply a plan against the Graph it was made against, or make the plan again \
                    against this one",
            "{} was made against {}, and this run would write to {}; nothing was sent",
            shown(path),
            mfactl::text::printable(&plan.graph),
            mfactl::text::printable(root)
        ));
    }
    if let Some(manifest) = &plan.manifest
        && let Ok(now) = SourceFile::of(Path::new(&manifest.path))
        && now.sha256 != manifest.sha256
    {
        eprintln!(
            "Note: {} changed since this plan was made; the plan is applied as it was reviewed.",
            mfactl::text::printable(&manifest.path)
        );
    }
    let made = plan.created.as_deref().unwrap_or("?");
    eprintln!(
        "Applying the saved plan {} (made {}, tenant {}).",
        shown(path),
        mfactl::text::printable(made),
        mfactl::text::printable(plan.tenant_id.as_deref().unwrap_or("unknown"))
    );
    Ok(plan)
}

/// Refuses a saved plan made for another tenant than the one `what` names.
pub fn same_tenant(plan: &Plan, tenant: Option<&str>, what: &str) -> miette::Result<()> {
    match (plan.tenant_id.as_deref(), tenant) {
        (Some(planned), Some(now)) if !planned.eq_ignore_ascii_case(now) => Err(miette!(
            help = "sign in to the tenant the plan was made for, or make the plan again for \
                    this one",
            "the plan was made for tenant {}, but {what} is for tenant {}; nothing was written",
            mfactl::text::printable(planned),
            mfactl::text::printable(now)
        )),
        _ => Ok(()),
    }
}

/// The first Ctrl-C stops new writes (those in flight finish and are journalled, then the
/// report is printed), or, once the writes are done, the read-back; a second one exits at once.
pub async fn watch_ctrl_c(interrupt: Interrupt, writing: Arc<AtomicBool>) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    interrupt.interrupt();
    if writing.load(Ordering::SeqCst) {
        eprintln!(
            "\nCtrl-C: no new writes will start; finishing the ones in flight (Ctrl-C again to \
             exit at once; the journal records every write sent)"
        );
    } else {
        eprintln!(
            "\nCtrl-C: the writes are done; reading them back stops (Ctrl-C again to exit at \
             once; the journal records every write made)"
        );
    }
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!("Exiting at once.");
        std::process::exit(i32::from(exit::INTERRUPTED));
    }
}

/// Where a run's limit on writes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    Flag(u64),
    Manifest(u64),
}

impl Limit {
    fn value(self) -> u64 {
        match self {
            Limit::Flag(limit) | Limit::Manifest(limit) => limit,
        }
    }
}

/// The limit on a run's writes: the smaller of `--max-changes` and the plan's `maxChanges`.
fn write_limit(plan: &Plan, flag: Option<u64>) -> Option<Limit> {
    let limits = [flag.map(Limit::Flag), plan.max_changes.map(Limit::Manifest)];
    limits
        .into_iter()
        .flatten()
        .min_by_key(|limit| limit.value())
}

/// Refuses a plan with more writes (the users' PATCHes and the policy's) than the limit
/// ([`write_limit`]), before the prompt and before anything is written.
pub fn check_max_changes(plan: &Plan, flag: Option<u64>) -> miette::Result<()> {
    // Counted from the writes themselves, never from a summary a file could understate.
    let writes = plan.write_count();
    let Some(limit) = write_limit(plan, flag).filter(|limit| writes > limit.value()) else {
        return Ok(());
    };
    let (source, raise) = match limit {
        Limit::Flag(_) => (
            "--max-changes",
            format!("run again with --max-changes {writes}"),
        ),
        Limit::Manifest(_) => (
            "the manifest's maxChanges",
            format!(
                "set maxChanges: {writes} in the manifest and run again (a saved plan: make \
                 it again; --max-changes can only lower the manifest's limit)"
            ),
        ),
    };
    Err(miette!(
        help = format!(
            "review the plan; if every change is intended, {raise}; or split the manifest into \
             smaller runs"
        ),
        "the plan has {writes} writes, more than the limit of {} ({source}); nothing was written",
        limit.value()
    ))
}

/// 0 when every user and the policy converged; 3 when some failed, were blocked, were not
/// found, changed since the plan, were not verified, or were left unwritten: any category but
/// changed, in sync and protected ([`Category::converged`]). A protected user is never written
/// by design, so it does not count against convergence.
pub fn apply_exit_code(plan: &Plan) -> u8 {
    let policy_converged = plan
        .policy
        .as_ref()
        .is_none_or(|p| matches!(p.status, Status::Applied | Status::InSync));
    let converged = policy_converged
        && plan
            .users
            .iter()
            .all(|user| Category::of(user.status, Phase::Apply).converged());
    if converged {
        exit::OK
    } else {
        exit::NOT_CONVERGED
    }
}

/// Asks on the terminal; only `yes` applies.
pub fn confirm() -> miette::Result<bool> {
    let mut stderr = std::io::stderr();
    write!(
        stderr,
        "\nDo you want to perform these changes? Only 'yes' will be accepted.\n  Enter 'yes' to apply: "
    )
    .into_diagnostic()?;
    stderr.flush().into_diagnostic()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .into_diagnostic()?;
    Ok(answer.trim() == "yes")
}
