//! What a plan or apply report adds up to: users per status, how many users each change moves
//! (`perUserMfaState enforced → disabled: 41,210`), why users are blocked or failed (grouped,
//! with a few examples), and the before/after distribution of each managed field.
//!
//! One place for the arithmetic, so that every summary (the markdown and HTML reports, the text
//! plan's opening summary) agrees to the user. Pure: it reads a [`Plan`] and returns numbers and
//! raw text; escaping belongs to each renderer, never here.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Endpoint, Field};
use crate::plan::category::{Category, Phase};
use crate::plan::{FieldChange, Plan, Status, Summary, UserPlan, Value};

/// How many example users a grouped reason keeps.
pub const REASON_EXAMPLES: usize = 3;

/// A plan's or an apply report's totals, computed in one pass over its users.
#[derive(Clone, Debug, PartialEq)]
pub struct Digest {
    pub summary: Summary,
    /// Whether the plan is the report of an apply run (its writes carry results).
    pub applied_run: bool,
    /// Users per category ([`Category`]), in [`Category::ALL`] order, categories with no user
    /// left out: the summary's counts, which every output shares.
    pub categories: Vec<(Category, u64)>,
    /// Planned changes grouped by `(field, before, after)`, most users first.
    pub changes: Vec<ChangeCount>,
    /// Why users are blocked, not found, failed, drifted, unverified or not reached, grouped
    /// by reason, most users first.
    pub reasons: Vec<Reason>,
    /// For each managed field, the values of the users whose entry changes it, before and
    /// after, in [`Field::ALL`] order (fields no listed user changes are left out).
    pub distributions: Vec<Distribution>,
    /// How many entries [`failures`] yields.
    pub failures: u64,
    /// How many users [`listed_users`] yields: those with a field to show.
    pub listed_users: u64,
    /// The tenant policy's status and how many of its properties differ, when the manifest
    /// manages it.
    pub policy: Option<(Status, u64)>,
}

/// Users sharing one change of one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeCount {
    pub field: Field,
    pub before: String,
    pub after: String,
    /// Users whose entry plans this change (blocked and protected fields are not changes).
    pub users: u64,
    /// Of them, users whose write Graph accepted and kept (apply reports; 0 in plans).
    pub made: u64,
}

/// Users sharing one reason for not converging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    pub status: Status,
    /// Without any user's name: `push not registered`, `requirements: HTTP 403 Forbidden`.
    pub text: String,
    pub users: u64,
    /// The first few users with this reason, in plan order.
    pub examples: Vec<Arc<str>>,
}

/// One field's values over the users listed in the plan whose entry names that field: what
/// they held before and what they hold after (the planned value for a plan, or for an apply
/// report the written value when Graph accepted and kept it; otherwise the value before).
/// In-sync users are not listed in a plan, so they are not in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distribution {
    pub field: Field,
    pub users: u64,
    /// `(value, users before, users after)`, most users before first.
    pub values: Vec<(String, u64, u64)>,
}

/// One write or read that did not converge, with what Graph said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure<'a> {
    pub user: &'a str,
    pub status: Status,
    pub endpoint: Option<Endpoint>,
    pub http_status: Option<u16>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
}

/// The status as the plan document spells it (`not_found`).
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::InSync => "in_sync",
        Status::Change => "change",
        Status::Blocked => "blocked",
        Status::NotFound => "not_found",
        Status::Failed => "failed",
        Status::Drifted => "drifted",
        Status::Applied => "applied",
        Status::Protected => "protected",
        Status::Unverified => "unverified",
    }
}

/// The status for people: its category's label ([`Category::label`]). A user still at
/// `change` after an apply run was never reached.
pub fn status_label(status: Status, applied_run: bool) -> &'static str {
    Category::of(status, phase(applied_run)).label()
}

/// The phase a report is of.
pub fn phase(applied_run: bool) -> Phase {
    if applied_run {
        Phase::Apply
    } else {
        Phase::Plan
    }
}

/// The Conditional Access verdicts in one sentence, when the plan disables per-user MFA for
/// anyone: `MFA once per-user MFA is disabled (12 users): 8 covered, 1 partly covered, 2 not
/// covered, 1 unknown; 3 held (per-user MFA kept).` Every summary (text, markdown, HTML) says
/// it in these words.
pub fn coverage_sentence(summary: &Summary) -> Option<String> {
    let c = summary.mfa_coverage?;
    let n = crate::text::thousands;
    let mut sentence = format!(
        "MFA once per-user MFA is disabled ({} {}): {} covered, {} partly covered, {} not \
         covered, {} unknown",
        n(c.total()),
        if c.total() == 1 { "user" } else { "users" },
        n(c.covered),
        n(c.partly_covered),
        n(c.not_covered),
        n(c.unknown)
    );
    if c.held > 0 {
        sentence.push_str(&format!("; {} held (per-user MFA kept)", n(c.held)));
    }
    if c.allowed > 0 {
        sentence.push_str(&format!(
            "; {} disabled anyway (--allow-mfa-gap)",
            n(c.allowed)
        ));
    }
    sentence.push('.');
    Some(sentence)
}

/// A value as reports show it: a string bare, `null`, `true`, anything else as JSON. Raw:
/// each renderer escapes it for its format.
pub fn show_value(value: &Value) -> String {
    if let Some(items) = string_list(value) {
        return format!("[{}]", items.join(", "));
    }
    match value.as_str() {
        Some(text) => text.to_owned(),
        None => value.to_string(),
    }
}

/// The strings of a list value (a blocked fallback list of preferred methods).
fn string_list(value: &Value) -> Option<Vec<&str>> {
    match value {
        Value::Other(json) => json
            .as_array()?
            .iter()
            .map(serde_json::Value::as_str)
            .collect(),
        _ => None,
    }
}

/// Adds up `plan` (one pass over its users; a million users keep only the groups).
pub fn digest(plan: &Plan) -> Digest {
    let applied_run = plan.summary.applied.is_some();
    let mut changes: HashMap<(Field, String, String), (u64, u64)> = HashMap::new();
    let mut reasons: HashMap<(Status, String), Reason> = HashMap::new();
    let mut distributions: HashMap<Field, HashMap<String, (u64, u64)>> = HashMap::new();
    let mut failures = 0;
    let mut listed_users = 0;
    for user in &plan.users {
        listed_users += u64::from(!user.fields.is_empty());
        for field in &user.fields {
            let before = show_value(&field.before);
            let lands = lands(user, field, applied_run);
            if is_change(user, field) {
                let key = (field.field, before.clone(), show_value(&field.after));
                let entry = changes.entry(key).or_default();
                entry.0 += 1;
                entry.1 += u64::from(applied_run && lands);
            }
            let values = distributions.entry(field.field).or_default();
            let after = if lands {
                show_value(&field.after)
            } else {
                before.clone()
            };
            values.entry(before).or_default().0 += 1;
            values.entry(after).or_default().1 += 1;
        }
        for text in reason_texts(user, applied_run) {
            let reason = reasons
                .entry((user.status, text))
                .or_insert_with_key(|(status, text)| Reason {
                    status: *status,
                    text: text.clone(),
                    users: 0,
                    examples: Vec::new(),
                });
            reason.users += 1;
            if reason.examples.len() < REASON_EXAMPLES {
                reason.examples.push(user.user.clone());
            }
        }
        failures += user_failures(user).len() as u64;
    }
    let categories = plan
        .summary
        .categories(phase(applied_run))
        .into_iter()
        .filter(|(_, users)| *users > 0)
        .collect();
    let mut changes: Vec<ChangeCount> = changes
        .into_iter()
        .map(|((field, before, after), (users, made))| ChangeCount {
            field,
            before,
            after,
            users,
            made,
        })
        .collect();
    changes.sort_by(|a, b| {
        b.users
            .cmp(&a.users)
            .then_with(|| (a.field, &a.before, &a.after).cmp(&(b.field, &b.before, &b.after)))
    });
    let mut reasons: Vec<Reason> = reasons.into_values().collect();
    reasons.sort_by(|a, b| {
        b.users
            .cmp(&a.users)
            .then_with(|| (status_name(a.status), &a.text).cmp(&(status_name(b.status), &b.text)))
    });
    let distributions = Field::ALL
        .iter()
        .filter_map(|field| {
            let values = distributions.remove(field)?;
            let users = values.values().map(|(before, _)| before).sum();
            let mut values: Vec<(String, u64, u64)> = values
                .into_iter()
                .map(|(value, (before, after))| (value, before, after))
                .collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Some(Distribution {
                field: *field,
                users,
                values,
            })
        })
        .collect();
    Digest {
        summary: plan.summary,
        applied_run,
        categories,
        changes,
        reasons,
        distributions,
        failures,
        listed_users,
        policy: plan
            .policy
            .as_ref()
            .map(|policy| (policy.status, policy.changes.len() as u64)),
    }
}

/// Whether `field` is one of the user's planned changes: a write carries it (a blocked field
/// and a protected user's fields are only shown).
fn is_change(user: &UserPlan, field: &FieldChange) -> bool {
    !field.blocked && user.status != Status::Protected
}

/// Whether the user ends up with the field's `after`: in a plan, when it is a change; in an
/// apply report, when Graph accepted its write and reading back did not contradict it.
fn lands(user: &UserPlan, field: &FieldChange, applied_run: bool) -> bool {
    if !is_change(user, field) {
        return false;
    }
    if !applied_run {
        return true;
    }
    user.write(field.field.endpoint())
        .and_then(|write| write.result())
        .is_some_and(|result| result.landed())
}

/// Why a user did not (or will not) converge, without naming the user, so that users group:
/// one text per blocked field, else one per user.
pub fn reason_texts(user: &UserPlan, applied_run: bool) -> Vec<String> {
    let error = || {
        let mut failures = user_failures(user).into_iter();
        failures.next().map_or_else(
            || status_label(user.status, applied_run).to_owned(),
            |failure| failure_reason(&failure),
        )
    };
    match user.status {
        // A field is blocked for one of two reasons: a preferred method the user has not
        // registered (the reason text names the user; this one does not), or per-user MFA
        // kept because disabling it would leave an MFA gap (the Conditional Access verdict).
        Status::Blocked => user
            .fields
            .iter()
            .filter(|field| field.blocked)
            .map(|field| match (field.field, &user.coverage) {
                (Field::PerUserMfaState, Some(coverage)) => {
                    format!("per-user MFA kept: {}", coverage.summary())
                }
                _ => match string_list(&field.after) {
                    Some(list) => format!("none of {} registered", list.join(", ")),
                    None => format!("{} not registered", show_value(&field.after)),
                },
            })
            .collect(),
        Status::NotFound => vec!["not found in the directory".to_owned()],
        Status::Failed => vec![error()],
        Status::Drifted => vec!["changed since the plan: not written".to_owned()],
        Status::Unverified => vec!["written, but reading back does not show it".to_owned()],
        Status::Change if applied_run => {
            vec!["not reached: the run stopped before its writes".to_owned()]
        }
        Status::Change | Status::Applied | Status::Protected | Status::InSync => Vec::new(),
    }
}

/// `requirements: HTTP 403 Authorization_RequestDenied`, or `no answer` when none came.
fn failure_reason(failure: &Failure<'_>) -> String {
    let mut text = failure
        .endpoint
        .map_or_else(String::new, |endpoint| format!("{endpoint}: "));
    match failure.http_status {
        Some(status) => text.push_str(&format!("HTTP {status}")),
        None => text.push_str("no answer"),
    }
    if let Some(code) = &failure.code {
        text.push(' ');
        text.push_str(code);
    }
    text
}

/// Every failure of a user that did not converge (failed, drifted, unverified): the error kept
/// on the user, then each failed write it does not already cover.
pub fn user_failures(user: &UserPlan) -> Vec<Failure<'_>> {
    if !matches!(
        user.status,
        Status::Failed | Status::Drifted | Status::Unverified
    ) {
        return Vec::new();
    }
    let mut failures = Vec::new();
    if let Some(error) = &user.error {
        failures.push(Failure {
            user: &user.user,
            status: user.status,
            endpoint: error.endpoint,
            http_status: error.status,
            code: Some(error.code.clone()),
            message: Some(error.message.clone()),
            request_id: error.request_id.clone(),
        });
    }
    let covered = user.error.as_ref().and_then(|error| error.endpoint);
    // An unverified user's error speaks for every write that was not kept.
    let not_kept_covered = user.status == Status::Unverified;
    for write in user.writes() {
        let Some(result) = write.result() else {
            continue;
        };
        let failed = !result.ok && covered != Some(write.endpoint);
        let lost = result.not_kept && !not_kept_covered;
        if failed || lost {
            failures.push(Failure {
                user: &user.user,
                status: user.status,
                endpoint: Some(write.endpoint),
                http_status: result.status,
                code: if lost {
                    Some(crate::plan::NOT_KEPT.to_owned())
                } else {
                    result.code.map(String::from)
                },
                message: lost.then(|| {
                    "Graph accepted the write, but reading it back does not show it".to_owned()
                }),
                request_id: result.request_id.map(|id| id.to_string()),
            });
        }
    }
    failures
}

/// The users a report lists with their fields (who would change, or changed, and how), in
/// plan order: every listed user with a field ([`Digest::listed_users`] counts them). Users
/// without fields (not found, unreadable) are in the reasons and failures instead.
pub fn listed_users(plan: &Plan) -> impl Iterator<Item = &UserPlan> {
    plan.users.iter().filter(|user| !user.fields.is_empty())
}

/// A listed user's row for a report, raw: the user as the manifest named them, the status's
/// label, and each field ([`field_change`]).
pub fn user_row(user: &UserPlan, applied_run: bool) -> (&str, &'static str, Vec<String>) {
    let fields = user
        .fields
        .iter()
        .map(|field| field_change(user, field))
        .collect();
    (&user.user, status_label(user.status, applied_run), fields)
}

/// A field of a listed user for a report, raw: `perUserMfaState enforced → disabled`, with
/// `(blocked)` for a field that is not written and `(not kept)` for a write reading back did
/// not show. Each renderer escapes it.
pub fn field_change(user: &UserPlan, field: &FieldChange) -> String {
    let mut text = format!(
        "{} {} \u{2192} {}",
        field.field,
        show_value(&field.before),
        show_value(&field.after)
    );
    let not_kept = user
        .write(field.field.endpoint())
        .filter(|write| write.body().get(field.field).is_some())
        .and_then(|write| write.result())
        .is_some_and(|result| result.not_kept);
    if field.blocked {
        text.push_str(" (blocked)");
    } else if not_kept {
        text.push_str(" (not kept)");
    }
    text
}

/// A policy value on one line: a string bare, anything else as JSON. Raw.
pub fn show_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Where a report comes from, for its header: `planned 2026-11-23T02:00:00Z from manifest
/// /srv/mfa/baseline.yaml (sha256 3f2a…)`, and when an apply finished. Raw.
pub fn provenance(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    let mut planned = String::from("Planned");
    if let Some(created) = &plan.created {
        planned.push_str(&format!(" {created}"));
    }
    if let Some(manifest) = &plan.manifest {
        planned.push_str(&format!(
            " from manifest {} (sha256 {})",
            manifest.path,
            manifest.sha256.get(..12).unwrap_or(&manifest.sha256)
        ));
    }
    if let Some(policy) = &plan.policy_file {
        planned.push_str(&format!(" with policy file {}", policy.path));
    }
    if planned != "Planned" {
        lines.push(planned);
    }
    if let Some(finished) = &plan.finished {
        lines.push(format!("Applied; the run ended {finished}"));
    }
    lines
}

/// Every failure in the plan, in plan order ([`Digest::failures`] counts them).
pub fn failures(plan: &Plan) -> impl Iterator<Item = Failure<'_>> {
    plan.users.iter().flat_map(user_failures)
}

#[cfg(test)]
pub(super) mod fixtures {
    //! A small plan with one user of each kind, and names chosen to break every format.

    use crate::model::{Endpoint, Field, PerUserMfaState, PreferredMethod};
    use crate::plan::{FieldChange, Plan, Status, UserError, UserPlan, Value, WriteResult};

    pub const HOSTILE: &str = "=cmd|' /C calc'!A0<script>alert(1)</script>*`|x@contoso.com";

    fn change(field: Field, before: Value, after: Value, blocked: bool) -> FieldChange {
        FieldChange {
            field,
            before,
            after,
            blocked,
        }
    }

    fn state(before: PerUserMfaState, after: PerUserMfaState) -> FieldChange {
        change(
            Field::PerUserMfaState,
            Value::State(before),
            Value::State(after),
            false,
        )
    }

    /// Three users disabling enforced MFA (one with a hostile name), one moving to push, one
    /// blocked asking for push, one blocked asking for oath, one not found, one failed read.
    pub fn plan() -> Plan {
        use PerUserMfaState::{Disabled, Enforced};
        let user = |name: &str, status, fields| {
            UserPlan::new(name.into(), status, fields, None, Vec::new())
        };
        let blocked = |name: &str, method| {
            UserPlan::new(
                name.into(),
                Status::Blocked,
                vec![change(
                    Field::PreferredMethod,
                    Value::Method(PreferredMethod::Sms),
                    Value::Method(method),
                    true,
                )],
                Some(format!("{method} is not registered for {name}")),
                Vec::new(),
            )
        };
        let failed = UserPlan::unread(
            "-failed@contoso.com".into(),
            Status::Failed,
            UserError {
                endpoint: Some(Endpoint::Requirements),
                status: Some(403),
                code: "Authorization_RequestDenied".into(),
                message: "Insufficient privileges".into(),
                request_id: Some("+req-1".into()),
            },
        );
        let users = vec![
            user(
                "a@contoso.com",
                Status::Change,
                vec![state(Enforced, Disabled)],
            ),
            user(
                "b@contoso.com",
                Status::Change,
                vec![state(Enforced, Disabled)],
            ),
            user(HOSTILE, Status::Change, vec![state(Enforced, Disabled)]),
            user(
                "c@contoso.com",
                Status::Change,
                vec![change(
                    Field::PreferredMethod,
                    Value::Method(PreferredMethod::Sms),
                    Value::Method(PreferredMethod::Push),
                    false,
                )],
            ),
            blocked("d@contoso.com", PreferredMethod::Push),
            blocked("@e@contoso.com", PreferredMethod::Push),
            blocked("f@contoso.com", PreferredMethod::Oath),
            UserPlan::unread(
                "ghost@contoso.com".into(),
                Status::NotFound,
                UserError {
                    endpoint: None,
                    status: Some(404),
                    code: "Request_ResourceNotFound".into(),
                    message: "not found".into(),
                    request_id: None,
                },
            ),
            failed,
        ];
        let mut plan = Plan::new(
            "http://127.0.0.1:1",
            20,
            users.into_iter().enumerate().collect(),
        );
        plan.tenant_id = Some("9c0e5f1a-0000-4000-8000-000000000001".into());
        plan.tenant_domain = Some("contoso.onmicrosoft.com".into());
        plan
    }

    /// [`plan`] with a tenant policy whose system-preferred MFA goes from disabled to enabled.
    pub fn with_policy() -> Plan {
        use crate::plan::policy::{PolicyChange, PolicyPlan};
        let mut plan = plan();
        plan.policy = Some(PolicyPlan {
            status: Status::Change,
            changes: vec![PolicyChange {
                part: "systemCredentialPreferences".into(),
                property: "state".into(),
                before: "disabled".into(),
                after: "enabled".into(),
            }],
            before: Default::default(),
            body: Default::default(),
            notes: Vec::new(),
            result: None,
            error: None,
        });
        plan
    }

    /// [`plan`] after an apply: the first two users applied, the hostile one's write refused.
    pub fn applied() -> Plan {
        let mut plan = plan();
        for user in plan.users.iter_mut().take(2) {
            user.set_result(
                Endpoint::Requirements,
                WriteResult {
                    status: Some(204),
                    ..WriteResult::accepted()
                },
            );
            user.status = Status::Applied;
        }
        let hostile = &mut plan.users[2];
        hostile.set_result(
            Endpoint::Requirements,
            WriteResult {
                ok: false,
                status: Some(400),
                request_id: Some("=req-2".to_owned().into()),
                code: Some("@badRequest".into()),
                settled_by_read: false,
                unsettled: false,
                not_kept: false,
                already_applied: false,
            },
        );
        hostile.status = Status::Failed;
        plan.summary = plan.count_after_apply(20);
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_count_every_user_once_and_the_in_sync_ones() {
        let digest = digest(&fixtures::plan());
        assert_eq!(
            digest.categories,
            vec![
                (Category::ToChange, 4),
                (Category::InSync, 11),
                (Category::Blocked, 3),
                (Category::NotFound, 1),
                (Category::Failed, 1),
            ]
        );
        let total: u64 = digest.categories.iter().map(|(_, n)| n).sum();
        assert_eq!(total, digest.summary.users);
        assert!(!digest.applied_run);
        assert_eq!(digest.policy, None);
    }

    #[test]
    fn changes_group_by_field_and_values_most_users_first_and_exclude_blocked_fields() {
        let digest = digest(&fixtures::plan());
        let changes: Vec<_> = digest
            .changes
            .iter()
            .map(|c| (c.field, c.before.as_str(), c.after.as_str(), c.users))
            .collect();
        assert_eq!(
            changes,
            vec![
                (Field::PerUserMfaState, "enforced", "disabled", 3),
                (Field::PreferredMethod, "sms", "push", 1),
            ]
        );
    }

    #[test]
    fn reasons_group_without_user_names_and_keep_a_few_examples() {
        let digest = digest(&fixtures::plan());
        let first = &digest.reasons[0];
        assert_eq!(
            (first.status, first.text.as_str(), first.users),
            (Status::Blocked, "push not registered", 2)
        );
        assert_eq!(
            first.examples,
            vec![Arc::from("d@contoso.com"), Arc::from("@e@contoso.com")]
        );
        let texts: Vec<_> = digest.reasons.iter().map(|r| r.text.as_str()).collect();
        assert!(texts.contains(&"oath not registered"), "{texts:?}");
        assert!(texts.contains(&"not found in the directory"), "{texts:?}");
        assert!(
            texts.contains(&"requirements: HTTP 403 Authorization_RequestDenied"),
            "{texts:?}"
        );
        assert_eq!(digest.failures, 1);
    }

    #[test]
    fn distributions_show_before_and_after_of_listed_users() {
        let digest = digest(&fixtures::plan());
        let state = &digest.distributions[1];
        assert_eq!(state.field, Field::PerUserMfaState);
        assert_eq!(state.users, 3);
        assert_eq!(
            state.values,
            vec![("enforced".into(), 3, 0), ("disabled".into(), 0, 3)]
        );
        // Blocked users keep their method: only c moves to push.
        let preferred = &digest.distributions[0];
        assert_eq!(preferred.field, Field::PreferredMethod);
        assert_eq!(
            preferred.values,
            vec![("sms".into(), 4, 3), ("push".into(), 0, 1)]
        );
    }

    #[test]
    fn an_apply_report_counts_only_the_writes_that_landed() {
        let plan = fixtures::applied();
        let digest = digest(&plan);
        assert!(digest.applied_run);
        let state = &digest.changes[0];
        assert_eq!((state.users, state.made), (3, 2));
        assert_eq!(
            digest.distributions[1].values,
            vec![("enforced".into(), 3, 1), ("disabled".into(), 0, 2)]
        );
        // The hostile user's refused write is a failure with its request-id; the not-reached
        // user is a reason.
        let failures: Vec<_> = failures(&plan).collect();
        assert_eq!(failures.len(), 2);
        assert_eq!(failures[0].request_id.as_deref(), Some("=req-2"));
        assert!(
            digest
                .reasons
                .iter()
                .any(|r| r.status == Status::Change && r.text.starts_with("not reached"))
        );
    }

    #[test]
    fn status_names_are_the_plan_documents() {
        use Status::*;
        let all = [
            InSync, Change, Blocked, NotFound, Failed, Drifted, Applied, Protected, Unverified,
        ];
        for status in all {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::from(status_name(status))
            );
        }
    }
}
