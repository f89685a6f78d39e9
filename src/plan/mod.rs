//! The plan: what must change for the live state to match the desired state.
//!
//! [`diff`] is a pure function of (desired, live): no I/O, no clock, no tokio. It writes the
//! minimal PATCH body per endpoint (only changed fields, at most one PATCH per endpoint per user)
//! and never names a field the manifest left out. The plan document (`plan --format json`, plan
//! files) is [`Plan`]; its keys follow design.md and are never renamed.

mod diff;
pub mod estimate;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{Endpoint, Field};

pub use diff::{LiveUser, apply_writes, diff, needs_methods, object_id};

/// The plan document's format version.
pub const FORMAT_VERSION: u32 = 1;

/// A whole plan (or, after apply, the report of the run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    pub format_version: u32,
    /// The Graph root the live state came from.
    pub graph: String,
    pub tenant_id: Option<String>,
    /// The tenant's primary domain, when Graph said (`/organization`).
    #[serde(default)]
    pub tenant_domain: Option<String>,
    pub summary: Summary,
    /// Every user that is not in sync, in manifest order.
    pub users: Vec<UserPlan>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The counts of design.md. `applied` (and `drifted`, when not zero) appear only in apply
/// reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Users in the manifest.
    pub users: u64,
    pub in_sync: u64,
    /// Users with at least one write.
    pub to_change: u64,
    /// PATCH calls.
    pub writes: u64,
    pub blocked: u64,
    pub not_found: u64,
    pub failed: u64,
    /// Users whose live values changed between plan and write (apply only; never written).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drifted: u64,
    /// Writes that succeeded (apply only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<u64>,
    /// Users with writes the run never started because it stopped first (Ctrl-C, a refused
    /// token, an unreachable Graph; apply only, when not zero). They are still `change`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_reached: u64,
    /// What applying this plan will cost: its calls and the least time Graph's quotas allow
    /// (plans only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<estimate::Estimate>,
    /// The calls this run made, by kind (filled in at the end of a plan or apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<Calls>,
}

/// Requests a run sent, by kind (retries included; a batch item counts as one request, and
/// `batches` counts the `$batch` round trips that carried them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Calls {
    /// Live state of managed endpoints.
    pub reads: u64,
    /// Endpoints read again just before writing them.
    pub rereads: u64,
    /// Registered methods.
    pub methods: u64,
    /// UPNs resolved to object ids.
    pub identity: u64,
    /// PATCHes.
    pub writes: u64,
    /// Writes whose answer was lost, read back.
    pub settles: u64,
    /// `/organization`, to name the tenant.
    pub tenant: u64,
    /// HTTP round trips in all, and how many of them were `$batch` requests.
    pub http_requests: u64,
    pub batches: u64,
}

/// Where a user stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Live matches desired; never listed in a plan, only counted.
    InSync,
    /// Writes are planned.
    Change,
    /// Part of the desired state cannot be reached by writing (the preferred method is not
    /// registered): that field is not written; the user's other changes still are.
    Blocked,
    /// Graph does not know the user.
    NotFound,
    /// Reading or writing failed after retries.
    Failed,
    /// At apply time a value was no longer what the plan saw: nothing was written over it.
    Drifted,
    /// Every planned write succeeded (apply only).
    Applied,
}

/// One user's entry in the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserPlan {
    /// As written in the manifest.
    pub user: String,
    /// The object id, when known (the manifest named the user by id).
    pub id: Option<String>,
    pub status: Status,
    /// Every managed field whose live value differs from the desired one.
    pub fields: Vec<FieldChange>,
    /// The PATCH calls that make the fields match (a blocked field has none); empty for
    /// not-found and unreadable users.
    pub writes: Vec<Write>,
    /// Why a field is blocked (nothing is written for it), and what to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Things worth knowing that do not stop the change (e.g. an ineffective preferred method).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What failed, for `failed` and `not_found` users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<UserError>,
}

/// One field's change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FieldChange {
    pub field: Field,
    /// The live value as Graph returned it (`null` when unset).
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// One PATCH call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Write {
    pub endpoint: Endpoint,
    /// The live values of the properties the body changes.
    pub before: serde_json::Map<String, serde_json::Value>,
    /// Exactly the properties to change, in Graph's names and spelling.
    pub body: serde_json::Map<String, serde_json::Value>,
    /// What Graph answered (apply only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<WriteResult>,
}

/// The answer to one PATCH.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WriteResult {
    pub ok: bool,
    /// HTTP status of the last attempt (none when no answer came).
    pub status: Option<u16>,
    pub request_id: Option<String>,
    /// Graph's error code when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The answer was lost (the connection dropped after Graph took the request) and reading
    /// the endpoint back showed the write made; `status` is then null.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub settled_by_read: bool,
}

/// A Graph failure attached to a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserError {
    /// The endpoint that failed, when it was a per-endpoint call.
    pub endpoint: Option<Endpoint>,
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
}

impl Plan {
    /// A plan over `total_users` manifest users, of which `users` are the ones not in sync
    /// (any order: they are sorted by `order` first).
    pub fn new(
        graph: impl Into<String>,
        total_users: u64,
        mut users: Vec<(usize, UserPlan)>,
    ) -> Plan {
        users.sort_by_key(|(order, _)| *order);
        let users: Vec<UserPlan> = users.into_iter().map(|(_, user)| user).collect();
        let mut plan = Plan {
            format_version: FORMAT_VERSION,
            graph: graph.into(),
            tenant_id: None,
            tenant_domain: None,
            summary: Summary::default(),
            users,
        };
        plan.summary = plan.count(total_users);
        plan
    }

    /// The summary after an apply: [`Plan::count`], with `applied` always present and the
    /// users left at `change` counted as not reached.
    pub fn count_after_apply(&self, total_users: u64) -> Summary {
        let mut summary = self.count(total_users);
        summary.applied.get_or_insert(0);
        summary.estimate = self.summary.estimate;
        summary.not_reached = self
            .users
            .iter()
            .filter(|user| user.status == Status::Change)
            .count() as u64;
        summary
    }

    /// Recomputes the summary from the users' statuses and write results.
    pub fn count(&self, total_users: u64) -> Summary {
        let mut summary = Summary {
            users: total_users,
            ..Summary::default()
        };
        let mut applied = 0;
        let mut has_results = false;
        for user in &self.users {
            match user.status {
                Status::Blocked => summary.blocked += 1,
                Status::NotFound => summary.not_found += 1,
                Status::Failed => summary.failed += 1,
                Status::Drifted => summary.drifted += 1,
                Status::InSync | Status::Change | Status::Applied => {}
            }
            if !user.writes.is_empty() {
                summary.to_change += 1;
                summary.writes += user.writes.len() as u64;
            }
            for write in &user.writes {
                if let Some(result) = &write.result {
                    has_results = true;
                    applied += u64::from(result.ok);
                }
            }
        }
        summary.in_sync = total_users.saturating_sub(self.users.len() as u64);
        summary.applied = has_results.then_some(applied);
        summary
    }

    /// Whether the plan would write anything (for `--detailed-exitcode`). Blocked and
    /// not-found users without writes are reported but are not changes.
    pub fn has_changes(&self) -> bool {
        self.summary.writes > 0
    }
}
