//! Integration tests: the real `mfactl` binary against the Graph emulator.
//! One test binary (modules per command) keeps link time down.

mod apply;
mod completions;
mod contract;
mod counts;
mod coverage;
mod docs;
mod emulator;
mod emulator_faults;
mod examples;
mod export;
mod fallback;
mod fault_proxy;
mod fuzz;
mod guards;
mod hardening;
mod layout;
mod manifest_errors;
mod packaging;
mod permissions;
mod plan;
mod policy;
mod published;
mod read_path;
mod red_team;
mod reports;
// Every resume test kills or signals a running apply the Unix way.
#[cfg(unix)]
mod resume;
mod rollback;
mod saved;
mod schema_agreement;
mod schemas;
mod selectors;
mod show;
mod signin;
mod support;
mod tenants;
mod throughput;
mod usage;
mod verify;
