//! `mfactl apply MANIFEST --tenants TENANTS.yaml`: plan every tenant (or, with `--resume DIR`,
//! take up where the earlier run left each one), show the plans' roll-up, confirm once, then
//! write every tenant side by side, each with its journal and reports in its folder.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use miette::miette;

use super::plan::{Failure, Planned, plan_tenant};
use super::run::{self, Ended, JOURNAL, PLAN, Run, Setup, folder, relative, say};
use crate::cli::apply::{
    ApplyArgs, apply_exit_code, check_max_changes, confirm, same_tenant, watch_ctrl_c,
};
use crate::cli::args::OutputFormat;
use crate::cli::connection::Connection;
use crate::cli::exit;
use crate::cli::saved_plan::load_checked;
use mfactl::engine::tenants::{TenantFiles, TenantOutcome, TenantStatus, for_each};
use mfactl::engine::{
    self, ApplyOptions, Interrupt, Journal, Resume, RunError, RunInfo, VerifyOptions, journal_file,
    preflight,
};
use mfactl::manifest::tenants::TenantTarget;
use mfactl::plan::Plan;

/// `apply --tenants`: the named steps.
pub async fn apply(args: ApplyArgs) -> miette::Result<u8> {
    refuse_single_tenant_flags(&args)?;
    let run = run::prepare(Setup {
        command: "apply",
        manifest: &args.manifest,
        reading: &args.reading,
        read: &args.read,
        graph: &args.graph,
        many: &args.many,
        resume: args.resume.as_deref(),
    })?;
    let run = &run;
    let args = &args;
    let stages = for_each(&run.tenants, run.in_flight, |target| {
        stage(run, target, args)
    })
    .await;
    if !approved(args, &stages)? {
        eprintln!("Apply cancelled: nothing was changed.");
        let outcomes = stages.into_iter().map(Stage::unwritten).collect();
        run::finish(run, outcomes, args.format)?;
        return Ok(exit::ERROR);
    }
    let interrupt = Interrupt::new();
    let writing = Arc::new(AtomicBool::new(true));
    let watcher = tokio::spawn(watch_ctrl_c(interrupt.clone(), Arc::clone(&writing)));
    let outcomes = for_each(stages, run.in_flight, |stage| {
        write_tenant(run, stage, args, interrupt.clone())
    })
    .await;
    writing.store(false, Ordering::SeqCst);
    watcher.abort();
    let code = run::finish(run, outcomes, args.format)?;
    if code == exit::INTERRUPTED {
        eprintln!(
            "To finish the run: mfactl apply {} --tenants {} --resume {}",
            mfactl::text::printable(&run.manifest_path.display().to_string()),
            mfactl::text::printable(&run.tenants_path.display().to_string()),
            mfactl::text::printable(&run.out_dir.display().to_string())
        );
    }
    Ok(code)
}

/// Flags that name one tenant's files, or a saved plan, have no meaning here; and a run that
/// would ask for confirmation needs a terminal to ask on.
fn refuse_single_tenant_flags(args: &ApplyArgs) -> miette::Result<()> {
    if args.journal.is_some() || !args.report.is_empty() {
        return Err(miette!(
            help = "with --tenants, each tenant's saved plan, journal and reports go to \
                    DIR/<tenant>/ (--out-dir DIR), and the roll-up to DIR/summary.*",
            "--journal and --report name one tenant's files; nothing was sent"
        ));
    }
    if args
        .manifest
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return Err(miette!(
            help = "give the manifest: each tenant's plan is made and saved in its folder (a \
                    saved plan is one tenant's: mfactl apply DIR/<tenant>/plan.json)",
            "--tenants applies a manifest, and {} is a saved plan; nothing was sent",
            mfactl::text::printable(&args.manifest.display().to_string())
        ));
    }
    if !args.auto_approve && !std::io::stdin().is_terminal() {
        return Err(miette!(
            help = "review the plans with `mfactl plan MANIFEST --tenants TENANTS.yaml` first, \
                    then pass --auto-approve",
            "apply asks for confirmation, but stdin is not a terminal"
        ));
    }
    Ok(())
}

/// Where a tenant stands before writing.
enum Stage<'r> {
    /// Planned (or, resumed, its saved plan re-checked), ready to write.
    Write(Box<Writing<'r>>),
    /// Nothing to write: finished by an earlier run, or failed.
    Done(Box<TenantOutcome>),
}

/// A tenant about to be written.
struct Writing<'r> {
    target: &'r TenantTarget,
    connection: Connection,
    plan: Plan,
    checksum: String,
    /// `--resume`: the journal, reopened, and what it says was done.
    resume: Option<(Journal, Resume)>,
    files: TenantFiles,
    started: Instant,
}

impl<'r> From<Planned<'r>> for Writing<'r> {
    fn from(planned: Planned<'r>) -> Writing<'r> {
        Writing {
            target: planned.target,
            connection: planned.connection,
            plan: planned.plan,
            checksum: planned.checksum,
            resume: None,
            files: planned.files,
            started: planned.started,
        }
    }
}

impl Stage<'_> {
    /// The roll-up's entry when nothing is written (the apply was not confirmed).
    fn unwritten(self) -> TenantOutcome {
        match self {
            Stage::Done(outcome) => *outcome,
            Stage::Write(writing) => Ended {
                target: writing.target,
                status: TenantStatus::Planned,
                exit_code: exit::ERROR,
                plan: Some(&writing.plan),
                line: Some(mfactl::report::plan_line(&writing.plan.summary)),
                reason: Some("apply cancelled: nothing was changed".to_owned()),
                files: writing.files.clone(),
                started: writing.started,
            }
            .outcome(),
        }
    }

    fn writes(&self) -> u64 {
        match self {
            Stage::Write(w) => w.plan.summary.writes + w.plan.summary.policy_writes,
            Stage::Done(_) => 0,
        }
    }
}

/// Phase one for a tenant: plan it, or with `--resume`, leave it (its journal finished), take
/// up its saved plan and journal (unfinished), or plan it (it never got to writing).
async fn stage<'r>(run: &Run<'_>, target: &'r TenantTarget, args: &ApplyArgs) -> Stage<'r> {
    if args.resume.is_some() {
        let journal = folder(run, target).join(JOURNAL);
        match journal_state(&journal) {
            JournalState::Finished => return Stage::Done(Box::new(finished_earlier(run, target))),
            JournalState::Unfinished => {
                return match resumed(run, target, args.max_plan_age).await {
                    Ok(writing) => Stage::Write(Box::new(writing)),
                    Err(failure) => Stage::Done(Box::new(failure.outcome())),
                };
            }
            JournalState::Missing => {}
        }
    }
    match plan_tenant(run, target).await {
        Ok(planned) => Stage::Write(Box::new(planned.into())),
        Err(failure) => Stage::Done(Box::new(failure.outcome())),
    }
}

/// What a tenant's journal says about the earlier run.
enum JournalState {
    Missing,
    /// Its last run ended normally (a `finish` line after its last `start`).
    Finished,
    /// Stopped (Ctrl-C), killed, or unreadable: `resumed` says which.
    Unfinished,
}

fn journal_state(path: &Path) -> JournalState {
    if !path.exists() {
        return JournalState::Missing;
    }
    let Ok(read) = journal_file::read(path) else {
        return JournalState::Unfinished;
    };
    let last_start = read.records.iter().rposition(|r| r.event == "start");
    match last_start {
        Some(at) if read.records[at..].iter().any(|r| r.event == "finish") => {
            JournalState::Finished
        }
        _ => JournalState::Unfinished,
    }
}

/// A tenant an earlier run finished: its outcome from the report that run wrote.
fn finished_earlier(run: &Run<'_>, target: &TenantTarget) -> TenantOutcome {
    let started = Instant::now();
    let files = TenantFiles {
        plan: Some(relative(target, PLAN)),
        journal: Some(relative(target, JOURNAL)),
        reports: vec![relative(target, "report.json")],
    };
    let report = folder(run, target).join("report.json");
    let plan = std::fs::read(&report)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice::<Plan>(&bytes).map_err(|e| e.to_string()));
    match plan {
        Ok(plan) => {
            say(target, "finished by the earlier run: left alone");
            Ended {
                target,
                status: TenantStatus::Finished,
                exit_code: apply_exit_code(&plan),
                plan: Some(&plan),
                line: Some(mfactl::report::apply_line(&plan)),
                reason: None,
                files,
                started,
            }
            .outcome()
        }
        Err(error) => run::failed(
            target,
            &miette!(
                "the earlier run finished here, but its report {} cannot be read: {error}",
                mfactl::text::printable(&report.display().to_string())
            ),
            files,
            started,
        ),
    }
}

/// Takes up a tenant the earlier run did not finish: its saved plan (checked: format,
/// checksum, age), its journal (of this very plan), sign-in, and the tenant the plan is for.
async fn resumed<'r>(
    run: &Run<'_>,
    target: &'r TenantTarget,
    max_age: Duration,
) -> Result<Writing<'r>, Failure<'r>> {
    let started = Instant::now();
    let files = TenantFiles {
        plan: Some(relative(target, PLAN)),
        journal: Some(relative(target, JOURNAL)),
        reports: Vec::new(),
    };
    let fail = |error| Failure {
        target,
        error,
        files: files.clone(),
        started,
    };
    let folder = folder(run, target);
    let plan = load_checked(
        &folder.join(PLAN),
        Some(&run.key),
        max_age,
        "apply without --resume, into a new --out-dir",
    )
    .map_err(fail)?;
    let (journal, resume) = reopen(&folder.join(JOURNAL), &plan).map_err(fail)?;
    let connection = run::connect(run, target, plan.summary.users)
        .await
        .map_err(fail)?;
    let checked = async {
        same_tenant(&plan, connection.tenant_id.as_deref(), "the access token")?;
        let tenant = connection.identify().await?;
        same_tenant(&plan, tenant.id.as_deref(), "Graph (/organization)")
    };
    checked.await.map_err(fail)?;
    say(
        target,
        format_args!(
            "resuming: {} writes already made are not sent again; {} announced without an \
             answer are read back first",
            resume.applied(),
            resume.unsettled()
        ),
    );
    Ok(Writing {
        target,
        connection,
        checksum: plan.checksum.clone().unwrap_or_default(),
        plan,
        resume: Some((journal, resume)),
        files,
        started,
    })
}

/// The journal of `plan`'s earlier run, reopened for appending, and what it says was done.
fn reopen(path: &Path, plan: &Plan) -> miette::Result<(Journal, Resume)> {
    let read = journal_file::read(path)
        .map_err(|error| miette!("{}", mfactl::text::printable(&error.to_string())))?;
    let other = read
        .records
        .iter()
        .filter(|r| r.event == "start")
        .any(|r| r.plan_checksum.as_deref() != plan.checksum.as_deref());
    if other {
        return Err(miette!(
            "{} records a run of another plan than the one beside it; nothing was sent",
            mfactl::text::printable(&path.display().to_string())
        ));
    }
    let resume = Resume::from_records(&read.records);
    let (journal, _) = Journal::reopen(path).map_err(|e| miette!("{e}"))?;
    Ok((journal, resume))
}

/// Shows what each tenant is about to get and asks once (unless `--auto-approve`); a run
/// with nothing to write needs no confirmation.
fn approved(args: &ApplyArgs, stages: &[Stage<'_>]) -> miette::Result<bool> {
    let writes: u64 = stages.iter().map(Stage::writes).sum();
    if writes == 0 || args.auto_approve {
        return Ok(true);
    }
    let mut lines = vec![String::new(), "mfactl will make these changes:".to_owned()];
    for stage in stages {
        if let Stage::Write(w) = stage {
            lines.push(format!(
                "  {}: {}",
                mfactl::text::printable(&w.target.tenant),
                mfactl::report::plan_line(&w.plan.summary)
            ));
        }
    }
    let each = lines.join("\n");
    match args.format {
        OutputFormat::Text => println!("{each}"),
        OutputFormat::Json => eprintln!("{each}"),
    }
    eprintln!("Each tenant's plan is in its folder (report.md, report.html, plan.json).");
    confirm()
}

/// Phase two for a tenant: write its plan (journal, writes, read-back, reports), or pass on
/// what phase one found.
async fn write_tenant(
    run: &Run<'_>,
    stage: Stage<'_>,
    args: &ApplyArgs,
    interrupt: Interrupt,
) -> TenantOutcome {
    let mut writing = match stage {
        Stage::Done(outcome) => return *outcome,
        Stage::Write(writing) => *writing,
    };
    let halted = if writing.plan.has_changes() || writing.resume.is_some() {
        match write_changes(run, &mut writing, args, interrupt).await {
            Ok(halted) => halted,
            Err(error) => {
                return run::failed(writing.target, &error, writing.files, writing.started);
            }
        }
    } else {
        None
    };
    end_of_writes(run, writing, halted)
}

/// The tenant's writes: its limit and permissions checked, its journal opened (or the resumed
/// one), the writes made, then read back. `Ok` carries what stopped the writes early, if
/// anything did; `Err` is a refusal before any write.
async fn write_changes(
    run: &Run<'_>,
    writing: &mut Writing<'_>,
    args: &ApplyArgs,
    interrupt: Interrupt,
) -> miette::Result<Option<RunError>> {
    check_max_changes(&writing.plan, args.max_changes)?;
    let client = &writing.connection.client;
    crate::cli::sign_in::check_permissions(
        writing.connection.tokens(),
        &preflight::writes(&writing.plan),
    )?;
    let (journal, resume) = match writing.resume.take() {
        Some((journal, resume)) => (journal, Some(resume)),
        None => {
            let path = folder(run, writing.target).join(JOURNAL);
            (Journal::create(&path).map_err(|e| miette!("{e}"))?, None)
        }
    };
    writing.files.journal = Some(relative(writing.target, JOURNAL));
    let plan_path = folder(run, writing.target).join(PLAN);
    let tenant_id = writing.plan.tenant_id.clone();
    let info = RunInfo {
        graph: client.transport().root(),
        tenant_id: tenant_id.as_deref(),
        plan: Some(&plan_path),
        plan_checksum: Some(&writing.checksum),
        resumed: resume.is_some(),
    };
    let concurrency = writing.connection.concurrency;
    let options = ApplyOptions {
        journal: Some((&journal, info)),
        resume: resume.as_ref(),
        concurrency,
        interrupt: interrupt.clone(),
        // A resumed plan was read back from a file: its names and ids are checked, as for any
        // saved plan; a plan made in this run was not out of mfactl's hands.
        check_names: resume.is_some(),
    };
    let halted = engine::apply(client, &mut writing.plan, options)
        .await
        .err();
    let verification = engine::verify::after_apply(
        client,
        &mut writing.plan,
        halted.as_ref(),
        VerifyOptions {
            enabled: !args.no_verify,
            journal: Some(&journal),
            concurrency,
            interrupt,
            recheck_after: Duration::from_secs(2),
        },
    )
    .await;
    say(writing.target, mfactl::report::verify_line(&verification));
    Ok(halted)
}

/// The tenant's report of the finished run, and its roll-up entry: applied (or stopped by
/// Ctrl-C, or by a failure that stops every request).
fn end_of_writes(
    run: &Run<'_>,
    mut writing: Writing<'_>,
    halted: Option<RunError>,
) -> TenantOutcome {
    let client = &writing.connection.client;
    writing.plan.summary.applied.get_or_insert(0);
    writing.plan.summary.calls = Some(engine::calls(client));
    writing.plan.finished = Some(jiff::Timestamp::now().to_string());
    let line = mfactl::report::apply_line(&writing.plan);
    say(writing.target, &line);
    say(
        writing.target,
        crate::cli::connection::traffic_line(client, writing.started.elapsed()),
    );
    match run::write_reports(run, writing.target, &writing.plan) {
        Ok(reports) => writing.files.reports = reports,
        Err(error) => {
            return run::failed(writing.target, &error, writing.files, writing.started);
        }
    }
    let (status, exit_code, reason) = match halted {
        None => (TenantStatus::Applied, apply_exit_code(&writing.plan), None),
        Some(RunError::Interrupted) => (
            TenantStatus::Interrupted,
            exit::INTERRUPTED,
            Some("stopped by Ctrl-C; apply --resume finishes it".to_owned()),
        ),
        Some(error) => {
            let report = writing.connection.stop(error);
            (
                TenantStatus::Failed,
                exit::ERROR,
                Some(run::reason(&report)),
            )
        }
    };
    if let Some(reason) = &reason {
        say(writing.target, format_args!("stopped: {reason}"));
    }
    Ended {
        target: writing.target,
        status,
        exit_code,
        plan: Some(&writing.plan),
        line: Some(line),
        reason,
        files: writing.files.clone(),
        started: writing.started,
    }
    .outcome()
}
