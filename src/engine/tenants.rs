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
pub async fn for_each<T, R, F, Fut>(
    items: impl IntoIterator<Item = T>,
    in_flight: usize,
    work: F,
) -> Vec<R>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = R>,
{
    futures::stream::iter(items)
        .map(work)
        .buffered(in_flight.max(1))
        .collect()
        .await
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
}
