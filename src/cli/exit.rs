//! Exit codes (design.md): what every command returns, in one place.

/// Success (with `--detailed-exitcode`: no changes).
pub const OK: u8 = 0;
/// An error: bad input, no token, Graph unreachable, a user that could not be read.
pub const ERROR: u8 = 1;
/// `plan --detailed-exitcode`: not everything is in sync.
pub const CHANGES: u8 = 2;
/// apply finished but some users did not converge (failed, blocked, not found).
pub const NOT_CONVERGED: u8 = 3;
/// rollback wrote its manifest, but some values a manifest cannot express were left out.
pub const NOT_RESTORED: u8 = 3;
/// apply was stopped by Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;
/// The command line cannot be parsed: an unknown flag, a missing or bad value (sysexits.h's
/// EX_USAGE). clap's own code for this is 2, which `plan --detailed-exitcode` gives to
/// "changes present": a typo in a scheduled job would read as drift.
pub const USAGE: u8 = 64;
