//! Integration tests: the real `mfactl` binary against the Graph emulator.
//! One test binary (modules per command) keeps link time down.

mod apply;
mod contract;
mod counts;
mod coverage;
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
mod permissions;
mod plan;
mod policy;
mod published;
mod red_team;
mod reports;
mod resume;
mod rollback;
mod saved;
mod schema_agreement;
mod schemas;
mod selectors;
mod show;
mod signin;
mod support;
mod throughput;
mod usage;
mod verify;
