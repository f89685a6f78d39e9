//! The engine joins the manifest, the planner and the Graph client: it fetches live state
//! concurrently and plans as results stream in, and it executes a plan's writes with a journal.
//! Order, concurrency and progress live here; pacing and retry live in the transport.

mod apply;
mod fetch;
mod journal;
mod progress;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

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

/// Decides when Graph's answers mean the whole run must stop.
///
/// A 401 always does: the token is bad for every request. A 403 does only while nothing has
/// succeeded and it keeps coming: with delegated sign-in an Authentication Administrator is
/// denied only the privileged users, and one admin account in a 50,000-user manifest must fail
/// alone, not stop the night's run.
#[derive(Debug, Default)]
pub(crate) struct Breaker {
    denied: AtomicU32,
    succeeded: AtomicBool,
    tripped: Mutex<Option<RunError>>,
}

/// Consecutive 403s, with no success before them, that stop a run.
const DENIALS_TO_STOP: u32 = 3;

impl Breaker {
    /// A request succeeded: from now on a 403 is about one user.
    pub(crate) fn success(&self) {
        self.succeeded.store(true, Ordering::SeqCst);
    }

    /// A request failed: trips the breaker when the failure is run-wide.
    pub(crate) fn failure(&self, error: &GraphError) {
        match error.status() {
            Some(401) => self.trip(RunError::Unauthorized(error.clone())),
            Some(403) => {
                let denied = self.denied.fetch_add(1, Ordering::SeqCst) + 1;
                if denied >= DENIALS_TO_STOP && !self.succeeded.load(Ordering::SeqCst) {
                    self.trip(RunError::Forbidden(error.clone()));
                }
            }
            _ => {}
        }
    }

    /// Stops the run with `error` (the first trip wins).
    pub(crate) fn trip(&self, error: RunError) {
        self.tripped
            .lock()
            .expect("breaker poisoned")
            .get_or_insert(error);
    }

    /// Whether the run must stop: no new request may start.
    pub(crate) fn is_tripped(&self) -> bool {
        self.tripped.lock().expect("breaker poisoned").is_some()
    }

    /// The reason the run stopped, if it did.
    pub(crate) fn into_error(self) -> Option<RunError> {
        self.tripped.into_inner().expect("breaker poisoned")
    }
}
