//! The mfactl binary: parse arguments, run, map the outcome to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    mfactl::cli::run(mfactl::cli::Cli::parse())
}
