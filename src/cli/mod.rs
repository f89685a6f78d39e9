//! The command line: clap definitions (one file per command) and the wiring from a checked run
//! configuration to the library. Renders; decides nothing about plans.

mod apply;
mod args;
mod auth;
mod completions;
mod connection;
mod emulator;
pub mod exit;
mod export;
mod journal;
mod logging;
mod output;
mod plan;
mod recheck;
mod rollback;
mod saved_plan;
mod show;
mod sign_in;
mod tenants;
mod terminal;
mod validate;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

pub use args::{GraphArgs, OutputFormat};

/// `mfactl --version`: the package version and the commit it was built from, as build.rs found
/// it (`0.1.0 (commit 0123456789ab)`; `, modified` when the source differed from the commit).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("MFACTL_BUILT_FROM"),
    ")"
);

/// Reconcile Microsoft Entra ID MFA settings with a desired-state file.
#[derive(Debug, Parser)]
#[command(name = "mfactl", version = VERSION, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log detail on stderr (-v: info, -vv: debug). MFACTL_LOG takes a tracing filter.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log lines as JSON objects (for log collectors) instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what apply would change, without changing anything.
    Plan(plan::PlanArgs),
    /// Plan, confirm, then make the changes.
    Apply(apply::ApplyArgs),
    /// Check a manifest without contacting Graph.
    Validate(validate::ValidateArgs),
    /// Write a manifest that restores the values an apply's journal says its writes replaced
    /// (users and the tenant's policy). Reads only the journal.
    Rollback(rollback::RollbackArgs),
    /// One or more users at a glance: the managed values, registered methods, usable choices,
    /// and whether the tenant's system-preferred MFA policy covers them. Reads only.
    Show(show::ShowArgs),
    /// Write the live state of every user (or a group's, or a list's) as a manifest whose plan
    /// is empty, or as an emulator tenant file (`--as tenant`). Reads only.
    Export(export::ExportArgs),
    /// Sign in as an admin at a terminal (device code); the refresh token is cached for the
    /// next runs (`--auth device`, or automatically when nothing else is configured).
    Login(auth::LoginArgs),
    /// Forget the cached sign-in of `mfactl login`.
    Logout(auth::LogoutArgs),
    /// What a token is and may do.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// The built-in Microsoft Graph emulator, for tests, demos and dry runs.
    #[command(subcommand)]
    Emulator(emulator::EmulatorCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff) on stdout, or write one page per command into a folder.
    Man(completions::ManArgs),
}

/// Prints clap's message for a command line it could not parse (or the help and version it
/// was asked for) and returns the exit code: [`exit::USAGE`] for a usage error, 0 for help.
pub fn usage_error(error: &clap::Error) -> ExitCode {
    // Nothing useful is left to do when stdout or stderr is gone.
    let _ = error.print();
    if error.use_stderr() {
        ExitCode::from(exit::USAGE)
    } else {
        ExitCode::from(exit::OK)
    }
}

/// Runs the parsed command line; returns the process exit code. Errors are printed here.
pub fn run(cli: Cli) -> ExitCode {
    logging::init(cli.verbose, cli.log_json);
    let result = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Rollback(args) => rollback::run(&args),
        Command::Plan(args) if args.many.tenants.is_some() => with_runtime(|| tenants::plan(args)),
        Command::Plan(args) => with_runtime(|| plan::run(args)),
        Command::Apply(args) if args.many.tenants.is_some() => {
            with_runtime(|| tenants::apply(args))
        }
        Command::Apply(args) => with_runtime(|| apply::run(args)),
        Command::Show(args) => with_runtime(|| show::run(args)),
        Command::Export(args) => with_runtime(|| export::run(args)),
        Command::Login(args) => with_runtime(|| auth::login(args)),
        Command::Logout(args) => auth::logout(&args),
        Command::Auth(auth::AuthCommand::Check(args)) => with_runtime(|| auth::check(args)),
        Command::Emulator(command) => with_runtime(|| emulator::run(command)),
        Command::Completions(args) => completions::completions(&args, Cli::command()),
        Command::Man(args) => completions::man(&args, Cli::command()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(report) => {
            eprintln!("{}", render_error(&report));
            ExitCode::from(exit::ERROR)
        }
    }
}

/// The error, its causes and its help, as plain lines (no boxes: these end up in CI logs and
/// scheduler mails). A manifest's problems already carry their own `error[code]` prefixes.
pub(crate) fn render_error(report: &miette::Report) -> String {
    let mut out = match report.downcast_ref::<mfactl::manifest::ManifestError>() {
        Some(error @ mfactl::manifest::ManifestError::Invalid { .. }) => error.to_string(),
        _ => format!("error: {report}"),
    };
    for cause in report.chain().skip(1) {
        out.push_str(&format!("\n  caused by: {cause}"));
    }
    if let Some(help) = report.help() {
        out.push_str(&format!("\nhelp: {help}"));
    }
    out
}

fn with_runtime<F, Fut>(f: F) -> miette::Result<u8>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = miette::Result<u8>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| miette::miette!("cannot start the async runtime: {error}"))?;
    runtime.block_on(f())
}
