//! The Microsoft Graph client: endpoints, wire types, errors, transport (pacing and retry), clouds.
//! Knows HTTP, not manifests.

pub mod claims;
pub mod client;
pub mod cloud;
pub mod error;
pub mod health;
pub mod pacing;
pub mod transport;
pub mod wire;

pub use client::{GraphClient, PatchOutcome};
pub use cloud::Cloud;
pub use error::GraphError;
pub use transport::{BuildError, Class, Transport, TransportConfig, TransportStats};
