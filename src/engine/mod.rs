//! The engine joins the manifest, the planner and the Graph client: it fetches live state
//! concurrently and plans as results stream in, and it executes a plan's writes with a journal.
//! Order, concurrency and progress live here; pacing and retry live in the transport.

mod apply;
mod fetch;
mod journal;
mod progress;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::graph::{GraphClient, GraphError};
use crate::manifest::Origin;
use crate::plan::Plan;
use crate::plan::estimate::{Estimate, Quotas};

pub use apply::apply;
pub use fetch::{Tenant, identify_tenant, plan};
pub use journal::{Journal, JournalError};
pub use progress::Progress;

/// The calls the client has made so far, by kind, as the plan document counts them.
pub fn calls(client: &GraphClient) -> crate::plan::Calls {
    let stats = client.transport().stats();
    crate::plan::Calls {
        reads: stats.calls.reads,
        rereads: stats.calls.rereads,
        methods: stats.calls.methods,
        identity: stats.calls.identity,
        writes: stats.calls.writes,
        settles: stats.calls.settles,
        tenant: stats.calls.tenant,
        http_requests: stats.http_requests,
        batches: stats.batches,
    }
}

/// The quotas the client's transport runs under, with the latency measured so far.
pub fn quotas(client: &GraphClient) -> Quotas {
    let transport = client.transport();
    let config = transport.config();
    Quotas {
        write_capacity: f64::from(config.write_bucket.capacity),
        write_refill: config.write_bucket.refill_per_second(),
        ru_capacity: f64::from(config.ru_bucket.capacity),
        ru_refill: config.ru_bucket.refill_per_second(),
        write_cap: config.write_rate.map(f64::from),
        ru_cap: config.read_rate.map(f64::from),
        latency: transport.mean_latency().as_secs_f64(),
        in_flight: config.concurrency as f64,
    }
}

/// What applying `plan` will cost with this client.
pub fn estimate(client: &GraphClient, plan: &Plan) -> Estimate {
    crate::plan::estimate::estimate(plan.summary.writes, &quotas(client))
}

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
    /// Graph's host cannot be reached (DNS, refused, TLS, no answer), or was lost for too long.
    #[error("{0}")]
    Unreachable(GraphError),
    /// Graph answered with a redirect: the Graph root is wrong, and following it could send
    /// requests elsewhere.
    #[error("{0}")]
    Redirected(GraphError),
    /// The journal could not be written: no write may go unrecorded.
    #[error("{0}; the run stopped so that no write goes unrecorded")]
    Journal(#[from] JournalError),
    /// The admin pressed Ctrl-C: no new write was started; the ones in flight finished.
    #[error("interrupted: no new writes were started after Ctrl-C")]
    Interrupted,
    /// Two manifest entries name the same object (e.g. once by UPN, once by object id): each
    /// apply would flip that user between the two entries' values. Found before any write.
    #[error("{}", render_duplicates(.0))]
    DuplicateUsers(Vec<DuplicateUser>),
}

/// Two manifest entries that resolved to the same object id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateUser {
    pub file: std::path::PathBuf,
    pub id: String,
    /// The earlier entry: its user as written and where.
    pub first: (String, Origin),
    /// The later entry.
    pub second: (String, Origin),
}

fn render_duplicates(duplicates: &[DuplicateUser]) -> String {
    let place = |origin: &Origin| match origin {
        Origin::Line(line) => format!("line {line}"),
        Origin::Row(row) => format!("row {row}"),
    };
    let mut out = String::new();
    for d in duplicates {
        let file = d.file.display();
        let at = match d.second.1 {
            Origin::Line(line) => format!("{file}:{line}"),
            Origin::Row(row) => format!("{file}: row {row}"),
        };
        out.push_str(&format!(
            "{at}: error[duplicate-user]: {} is the same user as {} at {} (object id {}); \
             keep one entry\n",
            d.second.0,
            d.first.0,
            place(&d.first.1),
            d.id
        ));
    }
    let n = duplicates.len();
    out.push_str(&format!(
        "{n} {} the same user twice; nothing was written",
        if n == 1 {
            "entry names"
        } else {
            "entries name"
        }
    ));
    out
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
            RunError::Unreachable(_) => {
                "check the network, the proxy and --graph-url / --cloud; nothing more was sent"
            }
            RunError::Redirected(_) => {
                "give the Graph root itself with --graph-url (e.g. https://graph.microsoft.com), \
                 without a path"
            }
            RunError::Journal(_) => "check the journal path and the free disk space",
            RunError::Interrupted => {
                "run apply again to finish: users already changed are in sync and are skipped"
            }
            RunError::DuplicateUsers(_) => {
                "an entry may name a user by userPrincipalName or by object id, not both"
            }
        }
    }
}

/// Ctrl-C, shared between the signal handler and the run: once set, no new write starts.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Asks the run to stop starting new work.
    pub fn interrupt(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Decides when Graph's answers mean the whole run must stop.
///
/// A 401 always does: the token is bad for every request. So do a redirect (the Graph root is
/// wrong) and an unreachable host (the transport's run-wide connection check gave up). A 403
/// does only while nothing has succeeded and it keeps coming: with delegated sign-in an
/// Authentication Administrator is denied only the privileged users, and one admin account in a
/// 50,000-user manifest must fail alone, not stop the night's run.
#[derive(Debug, Default)]
pub(crate) struct Breaker {
    denied: AtomicU32,
    succeeded: AtomicBool,
    tripped: Mutex<Option<RunError>>,
    interrupt: Interrupt,
}

/// Consecutive 403s, with no success before them, that stop a run.
const DENIALS_TO_STOP: u32 = 3;

impl Breaker {
    /// A breaker that also trips when `interrupt` is set.
    pub(crate) fn with_interrupt(interrupt: Interrupt) -> Breaker {
        Breaker {
            interrupt,
            ..Breaker::default()
        }
    }

    /// Whether `error` is one the run stops on, so that it is said once for the run rather
    /// than once per user.
    pub(crate) fn is_run_wide(error: &GraphError) -> bool {
        matches!(error, GraphError::Unreachable { .. })
            || matches!(error.status(), Some(401 | 403 | 300..=399))
    }

    /// A request succeeded: from now on a 403 is about one user.
    pub(crate) fn success(&self) {
        self.succeeded.store(true, Ordering::SeqCst);
    }

    /// A request failed: trips the breaker when the failure is run-wide.
    pub(crate) fn failure(&self, error: &GraphError) {
        match error.status() {
            _ if matches!(error, GraphError::Unreachable { .. }) => {
                self.trip(RunError::Unreachable(error.clone()))
            }
            Some(401) => self.trip(RunError::Unauthorized(error.clone())),
            Some(300..=399) => self.trip(RunError::Redirected(error.clone())),
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
        self.interrupt.is_set() || self.tripped.lock().expect("breaker poisoned").is_some()
    }

    /// The reason the run stopped, if it did.
    pub(crate) fn into_error(self) -> Option<RunError> {
        let tripped = self.tripped.into_inner().expect("breaker poisoned");
        tripped.or_else(|| self.interrupt.is_set().then_some(RunError::Interrupted))
    }
}
