//! The mfactl binary: parse arguments, run, map the outcome to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    match mfactl::cli::Cli::try_parse() {
        Ok(cli) => mfactl::cli::run(cli),
        // A mistyped flag must never read as a plan result (`--detailed-exitcode`'s 2).
        Err(usage) => mfactl::cli::usage_error(&usage),
    }
}
