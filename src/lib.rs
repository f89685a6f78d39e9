//! The `mfactl` command line: clap definitions (one file per command) and the wiring from a
//! checked run configuration to the product library (`mfactl`) and the Graph emulator
//! (`mfactl-emulator`, for `--emulate` and `mfactl emulator ...`). The binary (`main.rs`) parses
//! the arguments and calls [`cli::run`]; this library target exists so that tests can read the
//! clap definitions too.

pub mod cli;

/// build.rs's commit lookup, compiled here only for its unit tests.
#[cfg(test)]
#[path = "../build/version.rs"]
mod build_version;
