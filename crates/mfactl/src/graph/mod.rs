//! The Microsoft Graph client: endpoints, wire types, errors, transport (pacing and retry), clouds,
//! sign-in. Knows HTTP, not manifests.

mod advanced_query;
pub mod auth;
pub mod batch;
pub mod body;
pub mod claims;
pub mod client;
pub mod error;
pub mod health;
pub mod pacing;
pub mod proxy;
pub mod transport;

// The wire types, the permission table and the clouds are shared with the emulator, so they live
// in mfactl-core; they are this client's vocabulary too.
pub use mfactl_core::{cloud, permissions, wire};

pub use client::{GraphClient, PatchOutcome};
pub use cloud::Cloud;
pub use error::GraphError;
pub use pacing::{AppBudgets, BucketShape};
pub use transport::{
    BuildError, Calls, Purpose, Transport, TransportConfig, TransportStats, ru_tier,
};
