//! The engine joins the manifest, the planner and the Graph client: it fetches live state
//! concurrently and plans as results stream in, and it executes a plan's writes with a journal.
//! Order, concurrency and progress live here; pacing and retry live in the transport.

mod apply;
mod fetch;
mod journal;
mod progress;

use crate::graph::GraphError;

pub use apply::apply;
pub use fetch::plan;
pub use journal::{Journal, JournalError};
pub use progress::Progress;

/// The tracing target of progress spans (the CLI draws bars for it alone).
pub fn progress_target() -> &'static str {
    progress::PROGRESS_TARGET
}

/// A failure that stops the whole run, because every other request would fail the same way.
/// Users already planned or written stay in the plan; nothing further is sent.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Graph answered 401: the token is invalid or expired.
    #[error("Graph rejected the access token: {0}")]
    Unauthorized(GraphError),
    /// Graph answered 403: the token lacks a permission or the signed-in user a role.
    #[error("Graph denied access: {0}")]
    Forbidden(GraphError),
    /// The journal could not be written: no write may go unrecorded.
    #[error("{0}; the run stopped so that no write goes unrecorded")]
    Journal(#[from] JournalError),
}

impl RunError {
    /// The error for a Graph answer that no other request can get past, if it is one.
    pub fn systemic(error: &GraphError) -> Option<RunError> {
        match error.status() {
            Some(401) => Some(RunError::Unauthorized(error.clone())),
            Some(403) => Some(RunError::Forbidden(error.clone())),
            _ => None,
        }
    }

    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self {
            RunError::Unauthorized(_) => {
                "get a fresh access token for the tenant's Graph and export it in MFACTL_ACCESS_TOKEN \
                 (tokens live 60-90 minutes)"
            }
            RunError::Forbidden(_) => {
                "reading needs UserAuthenticationMethod.Read.All and Policy.Read.All; writing needs \
                 UserAuthenticationMethod.ReadWrite.All and Policy.ReadWrite.AuthenticationMethod \
                 (application permissions), or the Authentication Administrator role (delegated)"
            }
            RunError::Journal(_) => "check the journal path and the free disk space",
        }
    }
}
