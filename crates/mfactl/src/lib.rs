//! mfactl: reconcile Microsoft Entra ID MFA settings with a desired-state file.
//!
//! Layers (design.md): `manifest` and `plan` are pure and never touch the network or tokio;
//! `graph` knows HTTP but not manifests; `engine` joins them; `report` renders. The command
//! line (the `mfactl-cli` package) only wires and renders; the Graph emulator is its own crate
//! (`mfactl-emulator`), which this library never depends on. The vocabulary both share lives in
//! `mfactl-core` and is re-exported here ([`model`], [`text`], [`json_schema`], and under
//! [`graph`] the wire types, permissions and clouds) as part of this library's own API.

pub mod engine;
pub mod files;
pub mod graph;
pub mod manifest;
pub mod plan;
pub mod report;
pub mod schemas;

pub use mfactl_core::{json_schema, model, text};
