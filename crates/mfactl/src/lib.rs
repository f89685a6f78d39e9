//! mfactl: reconcile Microsoft Entra ID MFA settings with a desired-state file.
//!
//! Layers (design.md): `manifest` and `plan` are pure and never touch the network or tokio;
//! `graph` knows HTTP but not manifests; `engine` joins them; `cli` only wires and renders;
//! `emulator` is a Graph stand-in for tests, demos and benchmarks.

pub mod cli;
pub mod emulator;
pub mod engine;
pub mod files;
pub mod graph;
pub mod json_schema;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod report;
pub mod schemas;
pub mod text;
