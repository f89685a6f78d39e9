//! `mfactl plan MANIFEST --tenants TENANTS.yaml`: check, plan every tenant side by side, write
//! each tenant's saved plan and reports, roll up. Also the planning step `apply --tenants`
//! starts with ([`plan_tenant`]).

use std::time::Instant;

use miette::miette;

use super::run::{self, Ended, Run, Setup, folder, relative, say};
use crate::cli::args::GraphArgs;
use crate::cli::connection::Connection;
use crate::cli::output::OutputFile;
use crate::cli::plan::{PlanArgs, make_plan, plan_exit_code, warn_max_changes};
use crate::cli::saved_plan::{save, stamp};
use mfactl::engine::preflight;
use mfactl::engine::tenants::{TenantFiles, TenantOutcome, TenantStatus, for_each};
use mfactl::manifest::tenants::TenantTarget;
use mfactl::plan::Plan;

/// `plan --tenants`: the named steps.
pub async fn plan(args: PlanArgs) -> miette::Result<u8> {
    refuse_single_tenant_flags(&args)?;
    let run = run::prepare(Setup {
        command: "plan",
        manifest: &args.manifest,
        reading: &args.reading,
        read: &args.read,
        graph: &args.graph,
        many: &args.many,
        resume: None,
    })?;
    let detailed = args.detailed_exitcode;
    let run = &run;
    let outcomes = for_each(&run.tenants, run.in_flight, |target| async move {
        match plan_tenant(run, target).await {
            Ok(planned) => planned.outcome(plan_exit_code(&planned.plan, detailed)),
            Err(failure) => failure.outcome(),
        }
    })
    .await;
    run::finish(run, outcomes, args.format)
}

/// Flags that name one tenant's files have no meaning here: each tenant's go to its folder.
fn refuse_single_tenant_flags(args: &PlanArgs) -> miette::Result<()> {
    if args.out.is_some() || !args.report.is_empty() {
        return Err(miette!(
            help = "with --tenants, each tenant's saved plan and reports (.json, .md, .html) go \
                    to DIR/<tenant>/ (--out-dir DIR), and the roll-up to DIR/summary.*",
            "--out and --report name one tenant's files; nothing was sent"
        ));
    }
    Ok(())
}

/// One tenant planned: its connection (kept for `apply`), its plan and files.
pub(super) struct Planned<'r> {
    pub target: &'r TenantTarget,
    pub connection: Connection,
    pub plan: Plan,
    /// The saved plan's checksum (what an apply's journal records).
    pub checksum: String,
    pub files: TenantFiles,
    pub started: Instant,
}

impl Planned<'_> {
    /// The roll-up's entry for a tenant planned (exit code 0 or 2, or 1 when some user could
    /// not be read).
    pub fn outcome(&self, exit_code: u8) -> TenantOutcome {
        Ended {
            target: self.target,
            status: TenantStatus::Planned,
            exit_code,
            plan: Some(&self.plan),
            line: Some(mfactl::report::plan_line(&self.plan.summary)),
            reason: None,
            files: self.files.clone(),
            started: self.started,
        }
        .outcome()
    }
}

/// A tenant that failed, with the files it left.
pub(super) struct Failure<'r> {
    pub target: &'r TenantTarget,
    pub error: miette::Report,
    pub files: TenantFiles,
    pub started: Instant,
}

impl Failure<'_> {
    pub fn outcome(self) -> TenantOutcome {
        run::failed(self.target, &self.error, self.files, self.started)
    }
}

/// Plans one tenant: its manifest (the tenants file's additions), sign-in at its authority,
/// the permissions the plan needs, the plan, and its files. Any failure is this tenant's only.
pub(super) async fn plan_tenant<'r>(
    run: &Run<'_>,
    target: &'r TenantTarget,
) -> Result<Planned<'r>, Failure<'r>> {
    let started = Instant::now();
    let fail = |error, files| Failure {
        target,
        error,
        files,
        started,
    };
    let manifest = target.apply_to(&run.manifest);
    let connection = run::connect(run, target, GraphArgs::size_of(&manifest))
        .await
        .map_err(|error| fail(error, TenantFiles::default()))?;
    let planned = async {
        crate::cli::sign_in::check_permissions(
            connection.tokens(),
            &preflight::reads(&manifest, run.graph.methods_readable()),
        )?;
        let mut plan = make_plan(&connection, &manifest, &run.read).await?;
        stamp(&mut plan, run.manifest_path, run.reading)?;
        Ok::<_, miette::Report>(plan)
    }
    .await;
    let plan = planned.map_err(|error| fail(error, TenantFiles::default()))?;
    say(target, mfactl::report::plan_line(&plan.summary));
    if plan.max_changes.is_some() {
        warn_max_changes(&plan);
    }
    let (checksum, files) =
        save_plan_files(run, target, &plan).map_err(|e| fail(e, TenantFiles::default()))?;
    Ok(Planned {
        target,
        connection,
        plan,
        checksum,
        files,
        started,
    })
}

/// The tenant's saved plan (`plan.json`, applied exactly by `apply FOLDER/plan.json` or by
/// `apply --tenants`) and its reports; returns the plan's checksum and the files.
fn save_plan_files(
    run: &Run<'_>,
    target: &TenantTarget,
    plan: &Plan,
) -> miette::Result<(String, TenantFiles)> {
    let path = folder(run, target).join(run::PLAN);
    let checksum = save(
        &OutputFile::check(&path, "a tenant's plan")?,
        plan,
        &run.key,
    )?;
    let reports = run::write_reports(run, target, plan)?;
    Ok((
        checksum,
        TenantFiles {
            plan: Some(relative(target, run::PLAN)),
            journal: None,
            reports,
        },
    ))
}
