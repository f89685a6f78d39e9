//! The mfactl binary: parse arguments, run, map the outcome to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    match mfactl_cli::cli::Cli::try_parse() {
        Ok(cli) => mfactl_cli::cli::run(cli),
        // A mistyped flag must never read as a plan result (`--detailed-exitcode`'s 2).
        Err(usage) => mfactl_cli::cli::usage_error(&usage),
    }
}
