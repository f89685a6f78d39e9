//! One manifest in many tenants (`plan|apply MANIFEST --tenants TENANTS.yaml`): how many tenants
//! run at once, and the roll-up document that records what each came to.
//!
//! The work for one tenant (sign-in, plan, apply, its files) belongs to the caller; this module
//! only bounds how many run together ([`for_each`]) and keeps the record ([`Rollup`]). A tenant
//! whose work fails is recorded with its reason and exit code, and the others go on: nothing
//! here stops on one tenant's error. Graph's app-wide ceilings, which every tenant shares, are
//! the transport's business ([`crate::graph::AppBudgets`]).

use std::future::Future;

use futures::StreamExt as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::Summary;

/// The roll-up document's format version.
pub const ROLLUP_FORMAT_VERSION: u32 = 1;

/// Runs `work` on every item, at most `in_flight` at once, and returns the results in the
/// items' order (not the order they finish in).
///
/// On a multi-thread runtime the items are spread over one thread per core, each taking the
/// next item when one of its own finishes: a tenant's plan is thousands of small futures polled
/// by the future that awaits them, so tenants polled by one future would share one core
/// however many the machine has. The futures need not be `Send` (each stays on the thread that
/// made it); the runtime's workers still drive their I/O and timers. On a current-thread
/// runtime they all run here.
pub async fn for_each<T, R, F, Fut>(
    items: impl IntoIterator<Item = T>,
    in_flight: usize,
    work: F,
) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> Fut + Sync,
    Fut: Future<Output = R>,
{
    let in_flight = in_flight.max(1);
    let items: Vec<T> = items.into_iter().collect();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(in_flight).min(items.len());
    let handle = tokio::runtime::Handle::current();
    if threads < 2 || handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
        return futures::stream::iter(items)
            .map(work)
            .buffered(in_flight)
            .collect()
            .await;
    }
    let count = items.len();
    let queue = std::sync::Mutex::new(items.into_iter().enumerate());
    let next = || queue.lock().unwrap_or_else(|e| e.into_inner()).next();
    let (queue_next, work) = (&next, &work);
    // Thread `t` keeps `in_flight / threads` items going (one more for the first ones), so
    // that no more than `in_flight` run in all.
    let run_thread = |t: usize| {
        let slots = in_flight / threads + usize::from(t < in_flight % threads);
        handle.block_on(
            futures::stream::iter(std::iter::from_fn(queue_next))
                .map(|(index, item)| async move { (index, work(item).await) })
                .buffer_unordered(slots)
                .collect::<Vec<_>>(),
        )
    };
    let finished: Vec<(usize, R)> = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let running: Vec<_> = (0..threads)
                .map(|t| scope.spawn(move || run_thread(t)))
                .collect();
            running
                .into_iter()
                .flat_map(|thread| match thread.join() {
                    Ok(done) => done,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    });
    let mut results: Vec<Option<R>> = (0..count).map(|_| None).collect();
    for (index, result) in finished {
        results[index] = Some(result);
    }
    results
        .into_iter()
        .map(|result| result.expect("every item ran"))
        .collect()
}

/// What a multi-tenant run came to (`DIR/summary.json`; `summary.md` and `summary.html` render
/// it): per tenant its counts, exit code, reason and files, and the run's exit code, the most
/// severe of the tenants'.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "mfactl multi-tenant roll-up",
    description = "What plan|apply --tenants did in each tenant (DIR/summary.json)."
)]
pub struct Rollup {
    pub format_version: u32,
    /// `plan` or `apply`.
    pub command: String,
    /// The manifest every tenant ran, as given.
    pub manifest: String,
    /// The tenants file, as given.
    pub tenants_file: String,
    /// The folder holding the tenants' folders and this roll-up.
    pub out_dir: String,
    /// When the run started and ended (RFC 3339, UTC).
    pub started: String,
    pub finished: String,
    /// The run's exit code: the most severe of the tenants' (1 error, then 3 needs attention,
    /// then 2 changes, then 0; 130 when the run was stopped by Ctrl-C).
    pub exit_code: u8,
    /// The tenants' user counts added up (the tenants that failed before planning add none).
    pub totals: Summary,
    /// One entry per tenant, in the tenants file's order.
    pub tenants: Vec<TenantOutcome>,
}

/// What one tenant came to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TenantOutcome {
    /// The tenant as the tenants file names it.
    pub tenant: String,
    /// Its folder under `out_dir` (one path component).
    pub folder: String,
    /// The tenant's id and primary domain, as Graph (or the token) said; null when sign-in
    /// failed.
    pub tenant_id: Option<String>,
    pub tenant_domain: Option<String>,
    pub status: TenantStatus,
    /// The exit code a single-tenant run would have had.
    pub exit_code: u8,
    /// Why the tenant failed (sign-in, consent, permissions, Graph), when it did.
    pub reason: Option<String>,
    /// The plan's or the apply's counts, when the tenant got that far.
    pub summary: Option<Summary>,
    /// The counts in a sentence, as a single-tenant run prints them (`Plan: 3 users to change
    /// (5 writes), ...`).
    pub line: Option<String>,
    /// The tenant's files, relative to `out_dir`.
    pub files: TenantFiles,
    /// How long the tenant's work took, in seconds.
    pub seconds: f64,
}

/// Where a tenant's work ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// Planned (`plan`), or planned with nothing to write (`apply`).
    Planned,
    /// Its writes were made (some may have failed: see the counts and the exit code).
    Applied,
    /// Finished by an earlier run of this `--out-dir` (`apply --resume`): left alone.
    Finished,
    /// Stopped by Ctrl-C; `apply --resume DIR` finishes it.
    Interrupted,
    /// Sign-in, consent, permissions or Graph failed: nothing (more) was done there.
    Failed,
}

impl TenantStatus {
    /// The word the roll-up shows.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Planned => "planned",
            TenantStatus::Applied => "applied",
            TenantStatus::Finished => "finished earlier",
            TenantStatus::Interrupted => "interrupted",
            TenantStatus::Failed => "failed",
        }
    }
}

/// A tenant's files, relative to the roll-up's `out_dir`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TenantFiles {
    /// The saved plan (`apply FOLDER/plan.json` applies exactly it).
    pub plan: Option<String>,
    /// The apply's journal (`--resume` and `rollback` read it).
    pub journal: Option<String>,
    /// The reports: JSON (the plan or apply document), markdown and HTML.
    pub reports: Vec<String>,
}

impl Rollup {
    /// Adds the tenants' counts into [`Rollup::totals`].
    pub fn add_up(&mut self) {
        let mut totals = Summary::default();
        for summary in self.tenants.iter().filter_map(|t| t.summary.as_ref()) {
            totals.users += summary.users;
            totals.in_sync += summary.in_sync;
            totals.to_change += summary.to_change;
            totals.changed += summary.changed;
            totals.writes += summary.writes;
            totals.blocked += summary.blocked;
            totals.blocked_with_writes += summary.blocked_with_writes;
            totals.not_found += summary.not_found;
            totals.failed += summary.failed;
            totals.policy_writes += summary.policy_writes;
            totals.drifted += summary.drifted;
            totals.not_reached += summary.not_reached;
            totals.protected += summary.protected;
            totals.unverified += summary.unverified;
            if let Some(applied) = summary.applied {
                *totals.applied.get_or_insert(0) += applied;
            }
        }
        self.totals = totals;
    }

    /// How many tenants ended with each status, in [`TenantStatus`] order, leaving out none.
    pub fn by_status(&self) -> Vec<(TenantStatus, usize)> {
        [
            TenantStatus::Planned,
            TenantStatus::Applied,
            TenantStatus::Finished,
            TenantStatus::Interrupted,
            TenantStatus::Failed,
        ]
        .into_iter()
        .map(|status| {
            let count = self.tenants.iter().filter(|t| t.status == status).count();
            (status, count)
        })
        .filter(|(_, count)| *count > 0)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn at_most_in_flight_run_at_once_and_results_keep_their_order() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let results = for_each(0..10u64, 3, |n| {
            let (running, most) = (running.clone(), most.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // The later ones finish first: the results still come back in order.
                tokio::time::sleep(Duration::from_millis(100 - n * 10)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                n * 2
            }
        })
        .await;
        assert_eq!(results, (0..10).map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }

    /// On a multi-thread runtime the items run on one thread per core (up to `in_flight`),
    /// still at most `in_flight` at once, and their results keep their order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_multi_thread_runtime_the_items_are_spread_over_the_cores() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        // The first three wait for each other: they run at once, so on every thread there is.
        let first = Arc::new(tokio::sync::Barrier::new(3));
        let results = for_each(0..12u64, 3, |n| {
            let (running, most, threads) = (running.clone(), most.clone(), threads.clone());
            let first = first.clone();
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                threads.lock().unwrap().insert(std::thread::current().id());
                if n < 3 {
                    first.wait().await;
                }
                tokio::time::sleep(Duration::from_millis(60 - n * 5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                n * 2
            }
        })
        .await;
        assert_eq!(results, (0..12).map(|n| n * 2).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 3);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(threads.lock().unwrap().len(), cores.min(3));
    }
}
