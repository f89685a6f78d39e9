//! `mfactl apply`: plan, show the plan, confirm, write, report.

use std::io::{BufRead, IsTerminal, Write as _};
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use miette::{IntoDiagnostic, miette};

use super::args::{GraphArgs, OutputFormat, TOKEN_HELP, traffic_line};
use super::exit;
use super::output;
use super::plan::{ManifestArgs, load_manifest, run_error};
use crate::engine::{self, Interrupt, Journal, RunError, preflight};
use crate::plan::{Plan, Status, estimate};
use crate::report;

#[derive(Debug, Args)]
#[command(after_help = TOKEN_HELP)]
pub struct ApplyArgs {
    /// The desired-state file (YAML, or CSV by its .csv extension).
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// Apply without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Append one JSON line per write (user, endpoint, before, body, result, request-id) here
    /// (readable by you only; opened before anything is sent).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// How to print the report on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub reading: ManifestArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
}

pub async fn run(args: ApplyArgs) -> miette::Result<u8> {
    // Everything that can be checked offline is, before the first request.
    let manifest = load_manifest(&args.manifest, &args.reading)?;
    args.graph.graph_root()?;
    if !args.auto_approve && !std::io::stdin().is_terminal() {
        return Err(miette!(
            help = "review the changes with `mfactl plan` first, then pass --auto-approve",
            "apply asks for confirmation, but stdin is not a terminal"
        ));
    }
    let journal = args
        .journal
        .as_deref()
        .map(Journal::open)
        .transpose()
        .map_err(|e| miette!(help = "nothing was sent", "{e}"))?;
    let tenant = args.graph.load_emulated_tenant()?;
    let mut connection = args
        .graph
        .connect(tenant, manifest.users.len() as u64)
        .await?;
    let client = &connection.client;
    super::auth::check_permissions(connection.tokens(), &preflight::reads(&manifest))?;
    let started = Instant::now();

    let planned = async {
        let tenant = connection.identify().await?;
        let mut plan = engine::plan(client, &manifest, connection.concurrency)
            .await
            .map_err(|error| connection.stop(error))?;
        plan.tenant_id = tenant.id;
        plan.tenant_domain = tenant.domain;
        plan.summary.estimate = Some(engine::estimate(client, &plan));
        Ok::<_, miette::Report>(plan)
    }
    .await;
    // The plan holds what the rest needs; the desired state (a million entries in a large
    // migration) is let go before writing starts.
    drop(manifest);
    let mut plan = match planned {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("{}", traffic_line(client, started.elapsed()));
            return Err(error);
        }
    };
    match args.format {
        OutputFormat::Text => output::to_stdout(|out| report::render_plan_text(&plan, out))?,
        OutputFormat::Json if !args.auto_approve => {
            let mut stderr = std::io::BufWriter::new(std::io::stderr().lock());
            report::render_plan_text(&plan, &mut stderr)
                .and_then(|()| stderr.flush())
                .into_diagnostic()?;
        }
        OutputFormat::Json => {}
    }

    let mut halted = None;
    if plan.has_changes() {
        // Before the prompt and the first write: a token that may not make them says so now.
        super::auth::check_permissions(connection.tokens(), &preflight::writes(&plan))?;
        if !args.auto_approve && !confirm()? {
            eprintln!("Apply cancelled: nothing was changed.");
            return Ok(exit::ERROR);
        }
        let interrupt = Interrupt::new();
        let watcher = tokio::spawn(watch_ctrl_c(interrupt.clone()));
        let applying = Instant::now();
        halted = engine::apply(
            client,
            &mut plan,
            journal.as_ref(),
            connection.concurrency,
            interrupt,
        )
        .await
        .err();
        watcher.abort();
        if let Some(estimate) = plan.summary.estimate {
            eprintln!(
                "Applied in {} (estimated at least {}).",
                estimate::duration(applying.elapsed().as_secs_f64()),
                estimate::duration(estimate.seconds)
            );
        }
    } else if let Some(journal) = &journal {
        journal
            .start(client.transport().root())
            .map_err(|e| miette!("{e}"))?;
        journal.finish().map_err(|e| miette!("{e}"))?;
    }
    eprintln!("{}", traffic_line(&connection.client, started.elapsed()));
    if let Some(emulator) = connection.emulator.take() {
        emulator.shutdown().await;
    }
    let client = &connection.client;
    plan.summary.applied.get_or_insert(0);
    plan.summary.calls = Some(engine::calls(client));

    output::to_stdout(|out| match args.format {
        OutputFormat::Text => {
            if plan.has_changes() {
                writeln!(out)?;
            }
            report::render_apply_text(&plan, out)
        }
        OutputFormat::Json => report::render_json(&plan, out),
    })?;
    // The report above shows what was done before the run halted.
    match halted {
        Some(RunError::Interrupted) => {
            eprintln!("{}", run_error(RunError::Interrupted));
            Ok(exit::INTERRUPTED)
        }
        Some(error) => Err(connection.stop(error)),
        None => Ok(apply_exit_code(&plan)),
    }
}

/// The first Ctrl-C stops new writes (those in flight finish and are journalled, then the
/// report is printed); a second one exits at once.
async fn watch_ctrl_c(interrupt: Interrupt) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    interrupt.interrupt();
    eprintln!(
        "\nCtrl-C: no new writes will start; finishing the ones in flight (Ctrl-C again to \
         exit at once; the journal records every write sent)"
    );
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!("Exiting at once.");
        std::process::exit(i32::from(exit::INTERRUPTED));
    }
}

/// 0 when every user and the policy converged; 3 when some failed, were blocked, were not
/// found, changed since the plan, or were left unwritten.
pub fn apply_exit_code(plan: &Plan) -> u8 {
    let policy_converged = plan
        .policy
        .as_ref()
        .is_none_or(|p| matches!(p.status, Status::Applied | Status::InSync));
    let converged =
        policy_converged && plan.users.iter().all(|user| user.status == Status::Applied);
    if converged {
        exit::OK
    } else {
        exit::NOT_CONVERGED
    }
}

/// Asks on the terminal; only `yes` applies.
fn confirm() -> miette::Result<bool> {
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
