//! The engine joins the manifest, the planner and the Graph client: it fetches live state
//! concurrently and plans as results stream in, and it executes a plan's writes with a journal.
//! Order, concurrency and progress live here; pacing and retry live in the transport.

mod apply;
mod bulk_reads;
pub mod coverage;
pub mod export;
mod fetch;
mod journal;
mod outcome;
mod policy;
pub mod preflight;
mod progress;
pub mod read_plan;
pub mod resume;
pub mod rollback;
mod selectors;
pub mod show;
pub mod tenants;
pub mod verify;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::graph::permissions::{Access, Need};
use crate::graph::{GraphClient, GraphError};
use crate::manifest::Origin;
use crate::plan::Plan;
use crate::plan::estimate::{Estimate, Quotas};

pub use apply::{ApplyOptions, apply};
pub use fetch::{Tenant, identify_tenant, plan, plan_with, resolve_protected};
pub use journal::{Journal, JournalError, RunInfo};
pub use read_plan::{ReadOptions, ReadPath};
pub use resume::Resume;
pub mod journal_file {
    //! Reading a journal back (`apply --resume`, `rollback`).
    pub use super::journal::{JournalRecords, ReadError, Record, read};
}
pub use progress::Progress;
pub use show::show;
pub use verify::{Verification, VerifyOptions};

/// The calls the client has made so far, by kind, as the plan document counts them.
pub fn calls(client: &GraphClient) -> crate::plan::Calls {
    let stats = client.transport().stats();
    crate::plan::Calls {
        reads: stats.calls.reads,
        rereads: stats.calls.rereads,
        methods: stats.calls.methods,
        reports: stats.calls.reports,
        identity: stats.calls.identity,
        writes: stats.calls.writes,
        settles: stats.calls.settles,
        verifies: stats.calls.verifies,
        tenant: stats.calls.tenant,
        coverage: stats.calls.coverage,
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
    crate::plan::estimate::estimate(plan.write_count(), &quotas(client))
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
    /// Graph answered 403 to every request of some kind: the token lacks a permission or the
    /// signed-in user a role. For writes, the other kinds were still made.
    #[error("{}", render_forbidden(.needs, .error))]
    Forbidden { needs: Vec<Need>, error: GraphError },
    /// No token could be had (the credential source failed, or renewed to a token Graph had
    /// just refused): the message names the source and the fix.
    #[error("sign-in failed during the run: {0}")]
    SignIn(Box<crate::graph::auth::AuthError>),
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
    /// Groups the manifest's policy names by display name that no group, or several, carry;
    /// one located line each. Found before any write.
    #[error("{}\n{} policy {} not be resolved; nothing was written", .0.join("\n"), .0.len(), if .0.len() == 1 { "target could" } else { "targets could" })]
    PolicyTargets(Vec<String>),
    /// A `protect:` entry could not be resolved to its object id after retries (for a reason
    /// other than Graph not knowing it): an entry naming that account the other way could not
    /// be caught, so the run stops before any user is read. Nothing was written.
    #[error("cannot resolve the protected account {}: {error}; nothing was written", crate::text::printable(.entry))]
    ProtectUnresolved { entry: String, error: GraphError },
    /// The tenant's authentication methods policy (or a group's name) could not be read after
    /// retries: the policy cannot be planned, and nothing was written.
    #[error("cannot read the tenant's authentication methods policy: {0}")]
    PolicyUnreadable(GraphError),
    /// The manifest's selectors could not be resolved: a group no group (or several) carry, a
    /// listing that failed, or two groups giving one user different values. One line each;
    /// found before any user is read.
    #[error("{}\nthe manifest's selectors could not be resolved; nothing was written", .0.join("\n"))]
    Selectors(Vec<String>),
}

/// The run-stopping error a failed read means, when it means one (a refused token, an
/// unreachable Graph, a redirect): every other call would fail the same way. A listing, a bulk
/// read or a best-effort read that fails otherwise is the caller's to judge.
pub(crate) fn run_wide(error: &GraphError) -> Option<RunError> {
    match error {
        GraphError::Unreachable { .. } => Some(RunError::Unreachable(error.clone())),
        GraphError::SignIn(inner) => Some(RunError::SignIn(inner.clone())),
        _ => match error.status() {
            Some(401) => Some(RunError::Unauthorized(error.clone())),
            Some(300..=399) => Some(RunError::Redirected(error.clone())),
            _ => None,
        },
    }
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

/// "Graph refused writing requirements (per-user MFA state): the token lacks
/// Policy.ReadWrite.AuthenticationMethod (HTTP 403 ...)".
fn render_forbidden(needs: &[Need], error: &GraphError) -> String {
    let refused: Vec<String> = needs
        .iter()
        .map(|need| format!("{need}: the token lacks {}", need.least()))
        .collect();
    let stopped = if needs.iter().all(|n| n.access == Access::Write) {
        "; no more such writes were sent, the others were made"
    } else {
        ""
    };
    format!(
        "Graph refused {} ({error}){stopped}",
        refused.join("; and ")
    )
}

impl RunError {
    /// What to do about it.
    pub fn help(&self) -> std::borrow::Cow<'static, str> {
        let fixed = match self {
            RunError::Unauthorized(_) => {
                "get a fresh access token (tokens live 60-90 minutes), or check that the \
                 credential is for this tenant and cloud"
            }
            RunError::SignIn(_) => {
                "users already changed are in sync and are skipped when apply runs again; \
                 `mfactl auth check` tests the sign-in alone"
            }
            RunError::Forbidden { needs, .. } => {
                let mut names: Vec<&str> = Vec::new();
                for name in needs.iter().map(|n| n.least()) {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                return format!(
                    "grant the app the application permission {} with admin consent (or sign \
                     in as an admin whose role and scopes include it), then run again: users \
                     already changed are in sync and are skipped; `mfactl auth check --for \
                     MANIFEST` compares what a token holds with what a run needs",
                    names.join(" and ")
                )
                .into();
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
                "resume with the command below: writes the journal shows made are not sent again"
            }
            RunError::DuplicateUsers(_) => {
                "an entry may name a user by userPrincipalName or by object id, not both"
            }
            RunError::PolicyTargets(_) => {
                "a group's display name must match exactly one group; an object id always does"
            }
            RunError::PolicyUnreadable(_) => "run plan again once Graph answers",
            RunError::Selectors(_) => {
                "fix the group names or priorities in the manifest (a conflict is settled by \
                 `priority:` or `exclude:`), then plan again"
            }
            RunError::ProtectUnresolved { .. } => {
                "run again once Graph answers for it; a protected account is resolved before \
                 any user is read"
            }
        };
        fixed.into()
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

/// Decides when Graph's answers mean the whole run, or one kind of request, must stop.
///
/// A 401 always stops the run: the token is bad for every request. So do a redirect (the Graph
/// root is wrong) and an unreachable host (the transport's run-wide connection check gave up).
/// A 403 is judged per kind of access ([`Need`]: reading requirements, writing
/// signInPreferences, ...): once that access has succeeded for some user, a 403 is about one
/// user (with delegated sign-in an Authentication Administrator is denied only the privileged
/// users, and one admin account in a 50,000-user manifest must fail alone); while it has never
/// succeeded, [`DENIALS_TO_STOP`] of them mean the token lacks the permission. A read that is
/// always refused stops the run (no plan can be made without it); a write that is always refused
/// stops only the writes of that kind: the others still land, and the users whose refused writes
/// were never sent are not marked failed, they stay planned.
#[derive(Debug, Default)]
pub(crate) struct Breaker {
    needs: Mutex<Vec<(Need, Denials)>>,
    tripped: Mutex<Option<RunError>>,
    /// Writes no longer sent: always refused so far.
    stopped_writes: Mutex<Vec<Need>>,
    /// The first refusal of a stopped write, for the message.
    first_refusal: Mutex<Option<GraphError>>,
    /// Per kind of write, while none has succeeded yet: at most [`DENIALS_TO_STOP`] in flight,
    /// so that a token without the permission is found out by a handful of refused writes, not
    /// by one per user in flight. Closed (open to all) at the first success, or when stopped.
    probes: Mutex<Vec<(Need, Arc<tokio::sync::Semaphore>)>>,
    interrupt: Interrupt,
}

/// How one kind of access has fared.
#[derive(Clone, Copy, Debug, Default)]
struct Denials {
    denied: u32,
    succeeded: bool,
}

/// 403s in a row on one kind of access, with no success before them, that stop it: a handful,
/// so that a token missing one permission costs a few refused requests, not one per user.
pub(crate) const DENIALS_TO_STOP: u32 = 5;

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
        if let GraphError::Unsettled { cause } = error {
            return Breaker::is_run_wide(cause);
        }
        matches!(
            error,
            GraphError::Unreachable { .. } | GraphError::SignIn(_)
        ) || matches!(error.status(), Some(401 | 403 | 300..=399))
    }

    /// A request for `need` succeeded: from now on a 403 for it is about one user.
    pub(crate) fn success(&self, need: Need) {
        let first = self.with_denials(need, |d| !std::mem::replace(&mut d.succeeded, true));
        if first {
            self.open(need);
        }
    }

    /// Writes of these kinds go without probing: an app token's `roles` grant them, and Graph
    /// enforces exactly those roles, so a refusal is not expected (if they all come anyway,
    /// [`DENIALS_TO_STOP`] of them still stop the kind). Delegated and opaque tokens are probed:
    /// a directory role decides as much as a scope, and an opaque token says nothing.
    pub(crate) fn trust(&self, needs: impl IntoIterator<Item = Need>) {
        let mut probes = self.probes.lock().expect("breaker poisoned");
        for need in needs {
            let gate = Arc::new(tokio::sync::Semaphore::new(0));
            gate.close();
            probes.retain(|(n, _)| *n != need);
            probes.push((need, gate));
        }
    }

    /// Waits until a request for `need` may be sent: at once when one has succeeded (or its
    /// kind is trusted), otherwise when fewer than [`DENIALS_TO_STOP`] are in flight. Hold the
    /// permit until the answer is counted; then check [`Breaker::is_stopped`].
    pub(crate) async fn admit(&self, need: Need) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let gate = {
            let mut probes = self.probes.lock().expect("breaker poisoned");
            match probes.iter().find(|(n, _)| *n == need) {
                Some((_, gate)) => gate.clone(),
                None => {
                    let gate = Arc::new(tokio::sync::Semaphore::new(DENIALS_TO_STOP as usize));
                    probes.push((need, gate.clone()));
                    gate
                }
            }
        };
        // Closed: the probing is over, everyone goes.
        gate.acquire_owned().await.ok()
    }

    /// Ends the probing of `need`: every waiter goes (and then sees whether it was stopped).
    fn open(&self, need: Need) {
        let probes = self.probes.lock().expect("breaker poisoned");
        if let Some((_, gate)) = probes.iter().find(|(n, _)| *n == need) {
            gate.close();
        }
    }

    /// A request for `need` failed: trips the breaker when the failure is run-wide, stops the
    /// writes of that kind when they have never been allowed.
    pub(crate) fn failure(&self, need: Need, error: &GraphError) {
        if let GraphError::Unsettled { cause } = error {
            // What ended the retries decides (an unreachable Graph still stops the run).
            return self.failure(need, cause);
        }
        match error.status() {
            _ if matches!(error, GraphError::Unreachable { .. }) => {
                self.trip(RunError::Unreachable(error.clone()))
            }
            _ if let GraphError::SignIn(error) = error => {
                self.trip(RunError::SignIn(error.clone()))
            }
            Some(401) => self.trip(RunError::Unauthorized(error.clone())),
            Some(300..=399) => self.trip(RunError::Redirected(error.clone())),
            Some(403) => {
                let denied = self.with_denials(need, |d| {
                    d.denied += 1;
                    d.denied >= DENIALS_TO_STOP && !d.succeeded
                });
                if !denied {
                    return;
                }
                match need.access {
                    // Every read refused so far and never allowed is named, not only the one
                    // that reached the count first: reads of several kinds run at once, and
                    // which kind gets there first is a matter of timing.
                    Access::Read => self.trip(RunError::Forbidden {
                        needs: self.refused_reads(need),
                        error: error.clone(),
                    }),
                    Access::Write => {
                        let mut stopped = self.stopped_writes.lock().expect("breaker poisoned");
                        if !stopped.contains(&need) {
                            tracing::warn!(
                                "Graph refused {need} {DENIALS_TO_STOP} times and never allowed \
                                 it: no more such writes are sent (the token lacks {})",
                                need.least()
                            );
                            stopped.push(need);
                            self.first_refusal
                                .lock()
                                .expect("breaker poisoned")
                                .get_or_insert_with(|| error.clone());
                            drop(stopped);
                            self.open(need);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Whether writes of this kind are no longer sent (always refused).
    pub(crate) fn is_stopped(&self, need: Need) -> bool {
        self.stopped_writes
            .lock()
            .expect("breaker poisoned")
            .contains(&need)
    }

    /// `first`, then every other read Graph has refused and never allowed.
    fn refused_reads(&self, first: Need) -> Vec<Need> {
        let needs = self.needs.lock().expect("breaker poisoned");
        std::iter::once(first)
            .chain(needs.iter().filter_map(|(need, d)| {
                (*need != first && need.access == Access::Read && d.denied > 0 && !d.succeeded)
                    .then_some(*need)
            }))
            .collect()
    }

    fn with_denials<T>(&self, need: Need, f: impl FnOnce(&mut Denials) -> T) -> T {
        let mut needs = self.needs.lock().expect("breaker poisoned");
        let index = match needs.iter().position(|(n, _)| *n == need) {
            Some(index) => index,
            None => {
                needs.push((need, Denials::default()));
                needs.len() - 1
            }
        };
        f(&mut needs[index].1)
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

    /// The reason the run stopped, or stopped some of its writes, if it did.
    pub(crate) fn into_error(self) -> Option<RunError> {
        let tripped = self.tripped.into_inner().expect("breaker poisoned");
        let stopped = self.stopped_writes.into_inner().expect("breaker poisoned");
        let refusal = self.first_refusal.into_inner().expect("breaker poisoned");
        tripped
            .or_else(|| self.interrupt.is_set().then_some(RunError::Interrupted))
            .or_else(|| {
                Some(RunError::Forbidden {
                    needs: stopped,
                    error: refusal?,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::permissions::Resource;

    #[tokio::test]
    async fn writes_are_probed_five_at_a_time_until_one_succeeds_unless_trusted() {
        let breaker = Breaker::default();
        let requirements = Resource::Requirements.write();
        let sign_in = Resource::SignInPreferences.write();
        breaker.trust([sign_in]);
        // Trusted: no probe slot to hold.
        assert!(breaker.admit(sign_in).await.is_none());
        // Probed: five slots, and the sixth waits until one succeeds.
        let mut held = Vec::new();
        for _ in 0..DENIALS_TO_STOP {
            held.push(breaker.admit(requirements).await.expect("a probe slot"));
        }
        let sixth = breaker.admit(requirements);
        tokio::pin!(sixth);
        assert!(futures::poll!(sixth.as_mut()).is_pending());
        breaker.success(requirements);
        assert!(sixth.await.is_none(), "open to all after a success");
    }

    #[test]
    fn a_refused_read_names_every_read_refused_so_far() {
        let refused = GraphError::Api {
            method: "GET",
            path: "/beta/users/x".into(),
            status: 403,
            code: "Authorization_RequestDenied".into(),
            message: "Insufficient privileges".into(),
            request_id: None,
            client_request_id: "c".into(),
            retry_after: None,
        };
        let breaker = Breaker::default();
        let (users, sign_in, requirements) = (
            Resource::Users.read(),
            Resource::SignInPreferences.read(),
            Resource::Requirements.read(),
        );
        breaker.failure(sign_in, &refused);
        breaker.success(requirements);
        breaker.failure(requirements, &refused); // allowed before: about one user
        for _ in 0..DENIALS_TO_STOP {
            breaker.failure(users, &refused);
        }
        let Some(RunError::Forbidden { needs, .. }) = breaker.into_error() else {
            panic!("five refusals stop the run");
        };
        assert_eq!(needs, [users, sign_in]);
    }
}
