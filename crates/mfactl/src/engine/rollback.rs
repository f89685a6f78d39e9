//! What `mfactl rollback` restores: from a journal's lines, the value each property held before
//! the first write that changed it, as a manifest that plans and applies like any other. Pure:
//! reading the journal and writing the manifest are the CLI's job.
//!
//! A journal may hold several runs (a resumed apply appends to it; an admin may reuse one), so
//! the value to restore is the `before` of the *earliest* write to each property, among the
//! writes that may have been made: the applied ones, and the ones announced (`intent`) with no
//! answer recorded, which a killed run may have made; restoring a value that was never changed
//! is harmless, it plans as in sync. Failed writes changed nothing and are left out.
//!
//! The manifest is built from hostile text (a journal is a file anyone with access could have
//! edited): every string goes out double-quoted with YAML escapes, in ASCII only, so that no
//! name or id can end a line, open a mapping or forge a comment. Values a manifest cannot
//! express (a `null` preferred method, a value this build does not know) are not guessed: they
//! are listed, and everything else is still restored.

pub use crate::manifest::write::yaml_quoted;
use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{Map, Value as Json};

use super::journal::Record;
use crate::manifest::policy::{
    ALL_USERS, CAMPAIGN_METHODS, PolicyPart, SNOOZE_DAYS, STATES, SYSTEM_PREFERRED_MAX_TARGETS,
    TARGET_TYPES, VOICE_CODES,
};
use crate::model::{Endpoint, Field, PerUserMfaState, PreferredMethod};
use crate::plan::policy::nested;

/// What a journal's writes replaced, ready to be written as a manifest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rollback {
    /// The users to restore, in the order the journal first wrote them.
    pub users: Vec<RestoredUser>,
    /// The policy's sub-objects to restore, in the manifest's order.
    pub policy: Vec<RestoredPart>,
    /// Values a manifest cannot express: not in the manifest, reported instead.
    pub unrestorable: Vec<Unrestorable>,
    /// The runs the journal records (its `start` lines), in order.
    pub runs: Vec<Run>,
    pub writes: WriteCounts,
}

/// One run of apply, as its `start` line tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Run {
    pub time: String,
    pub graph: Option<String>,
    pub tenant_id: Option<String>,
    /// The saved plan the run applied.
    pub plan: Option<String>,
    pub resumed: bool,
}

/// How the journal's writes were counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// Graph took them: restored.
    pub applied: usize,
    /// Announced with no answer recorded: they may have been made, so restored too.
    pub unsettled: usize,
    /// Refused or unanswered after retries: nothing changed, nothing to restore.
    pub failed: usize,
}

/// One user's values before the journal's writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoredUser {
    /// What the manifest's `user:` says: the object id the writes addressed (or, in a journal
    /// that recorded none, the name the manifest gave).
    pub user: String,
    /// The name the journal's manifest gave the user, when other than `user` (a comment).
    pub name: Option<String>,
    pub preferred_method: Option<PreferredMethod>,
    pub system_preferred: Option<bool>,
    pub per_user_mfa_state: Option<PerUserMfaState>,
    /// Some value comes from a write with no answer recorded (it may not have been made).
    pub unsettled: bool,
}

/// One sub-object of the policy before the journal's writes.
#[derive(Clone, Debug, PartialEq)]
pub struct RestoredPart {
    pub part: PolicyPart,
    /// Graph's property names, in the order the manifest lists them.
    pub properties: Vec<(&'static str, PolicyValue)>,
    pub unsettled: bool,
}

/// A policy property's value, in the shapes the manifest's `policy:` section takes.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyValue {
    /// A state, number or boolean, in Graph's spelling.
    Plain(Json),
    Targets(Vec<Target>),
    /// `includeTarget`: one target.
    Target(Target),
}

/// A target by id (`all_users` or an object id), never by name: a name would be looked up again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub target_type: &'static str,
    /// A campaign include target's method.
    pub method: Option<&'static str>,
}

/// A value the journal holds that a manifest cannot set back.
#[derive(Clone, Debug, PartialEq)]
pub struct Unrestorable {
    /// `user "megan@contoso.com" (071cc716-...)` or `policy`, escaped for a line of text.
    pub subject: String,
    /// The manifest's field (`preferredMethod`, `systemCredentialPreferences.state`), or Graph's
    /// property, quoted, when the manifest has none for it.
    pub field: String,
    /// The value to restore, as the journal holds it.
    pub value: Json,
    pub reason: &'static str,
}

/// Which write a journal line is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum WriteKey {
    User(String, Endpoint),
    Policy,
}

fn write_key(record: &Record) -> Option<WriteKey> {
    if record.is_policy() {
        return Some(WriteKey::Policy);
    }
    Some(WriteKey::User(
        record.user_key()?.to_ascii_lowercase(),
        record.endpoint?,
    ))
}

/// A user being gathered: the earliest `before` of each property, as the journal holds it.
struct Gathered<'a> {
    user: Result<String, &'static str>,
    name: Option<&'a str>,
    values: Vec<(&'a str, &'a Json)>,
    unsettled: bool,
}

impl Rollback {
    /// Folds the journal's lines in order: pairs each `intent` with the `result` that follows it
    /// for the same write, keeps the writes that may have been made, and takes for each property
    /// the `before` of the earliest of them.
    pub fn from_records(records: &[Record]) -> Rollback {
        let mut rollback = Rollback::default();
        let mut pending: HashMap<WriteKey, usize> = HashMap::new();
        // (index of the intent, no answer recorded), for the writes that may have been made.
        let mut made: Vec<(usize, bool)> = Vec::new();
        for (index, record) in records.iter().enumerate() {
            match record.event.as_str() {
                "start" => rollback.runs.push(Run {
                    time: record.time.clone(),
                    graph: record.graph.clone(),
                    tenant_id: record.tenant_id.clone(),
                    plan: record.plan.clone(),
                    resumed: record.resumed,
                }),
                "intent" => {
                    let Some(key) = write_key(record) else {
                        continue;
                    };
                    // Announced again before an answer: the earlier one may have been made.
                    if let Some(earlier) = pending.insert(key, index) {
                        made.push((earlier, true));
                        rollback.writes.unsettled += 1;
                    }
                }
                "result" => {
                    // A result without an intent announced nothing to restore.
                    let Some(intent) = write_key(record).and_then(|key| pending.remove(&key))
                    else {
                        continue;
                    };
                    match &record.result {
                        Some(result) if result.ok => {
                            made.push((intent, false));
                            rollback.writes.applied += 1;
                        }
                        // May have been made: restored, marked unsettled.
                        Some(result) if result.unsettled => {
                            made.push((intent, true));
                            rollback.writes.unsettled += 1;
                        }
                        _ => rollback.writes.failed += 1,
                    }
                }
                _ => {}
            }
        }
        rollback.writes.unsettled += pending.len();
        made.extend(pending.into_values().map(|index| (index, true)));
        made.sort_unstable();

        let mut users: Vec<Gathered<'_>> = Vec::new();
        let mut by_key: HashMap<String, usize> = HashMap::new();
        let mut policy: Vec<(PolicyPart, &'static str, Json, bool)> = Vec::new();
        let empty = Map::new();
        for (index, unsettled) in made {
            let record = &records[index];
            let before = record.before.as_ref().unwrap_or(&empty);
            if record.is_policy() {
                let body = record.body.as_ref().unwrap_or(&empty);
                gather_policy(&mut policy, before, body, unsettled);
                continue;
            }
            let Some(WriteKey::User(key, _)) = write_key(record) else {
                continue;
            };
            let slot = *by_key.entry(key).or_insert_with(|| {
                users.push(Gathered {
                    user: manifest_user(record),
                    name: record.user.as_deref(),
                    values: Vec::new(),
                    unsettled: false,
                });
                users.len() - 1
            });
            let gathered = &mut users[slot];
            for (property, value) in before {
                if !gathered.values.iter().any(|(p, _)| p == property) {
                    gathered.values.push((property, value));
                    gathered.unsettled |= unsettled;
                }
            }
        }
        for gathered in users {
            rollback.restore_user(gathered);
        }
        rollback.restore_policy(policy);
        rollback
    }

    fn restore_user(&mut self, gathered: Gathered<'_>) {
        let subject = match (&gathered.user, gathered.name) {
            (Ok(user), Some(name)) if !name.eq_ignore_ascii_case(user) => {
                format!("user {} ({})", yaml_quoted(name), yaml_quoted(user))
            }
            (Ok(user), _) => format!("user {}", yaml_quoted(user)),
            (Err(_), name) => format!("user {}", yaml_quoted(name.unwrap_or(""))),
        };
        let mut restored = RestoredUser::default();
        for (property, value) in gathered.values {
            let field = Field::ALL
                .iter()
                .copied()
                .find(|f| f.graph_property() == property);
            let mut cannot = |reason| {
                self.unrestorable.push(Unrestorable {
                    subject: subject.clone(),
                    field: field.map_or_else(|| yaml_quoted(property), |f| f.as_str().to_owned()),
                    value: value.clone(),
                    reason,
                })
            };
            if let Err(reason) = gathered.user {
                cannot(reason);
                continue;
            }
            let text = value.as_str();
            match field {
                Some(Field::PreferredMethod) => match text.and_then(PreferredMethod::parse) {
                    Some(method) => restored.preferred_method = Some(method),
                    None if value.is_null() => {
                        cannot("the user had no preferred method, and a manifest cannot unset one")
                    }
                    None => cannot("not a preferred method this build knows"),
                },
                Some(Field::SystemPreferred) => match value.as_bool() {
                    Some(flag) => restored.system_preferred = Some(flag),
                    None => cannot("not true or false"),
                },
                Some(Field::PerUserMfaState) => match text.and_then(PerUserMfaState::parse) {
                    Some(state) => restored.per_user_mfa_state = Some(state),
                    None => cannot("not a per-user MFA state this build knows"),
                },
                None => cannot("not a property mfactl manages"),
            }
        }
        let Ok(user) = gathered.user else {
            return;
        };
        if restored.preferred_method.is_none()
            && restored.system_preferred.is_none()
            && restored.per_user_mfa_state.is_none()
        {
            return;
        }
        restored.name = gathered
            .name
            .filter(|name| !name.eq_ignore_ascii_case(&user))
            .map(str::to_owned);
        restored.user = user;
        restored.unsettled = gathered.unsettled;
        self.users.push(restored);
    }

    fn restore_policy(&mut self, gathered: Vec<(PolicyPart, &'static str, Json, bool)>) {
        for part in PolicyPart::ALL {
            let mut restored = RestoredPart {
                part,
                properties: Vec::new(),
                unsettled: false,
            };
            // In the manifest's order of properties, whatever the journal's.
            for name in part.properties() {
                let Some((_, _, value, unsettled)) =
                    gathered.iter().find(|(p, n, _, _)| *p == part && n == name)
                else {
                    continue;
                };
                match policy_value(part, name, value) {
                    Some(value) => {
                        restored.properties.push((name, value));
                        restored.unsettled |= unsettled;
                    }
                    None => self.unrestorable.push(Unrestorable {
                        subject: "policy".to_owned(),
                        field: format!("{part}.{name}"),
                        value: value.clone(),
                        reason: if value.is_null() {
                            "the policy did not hold it, and a manifest cannot remove it"
                        } else {
                            "not a value the manifest's policy section takes"
                        },
                    }),
                }
            }
            if !restored.properties.is_empty() {
                self.policy.push(restored);
            }
        }
    }

    /// Whether nothing at all is restored (no write that may have been made, or none that a
    /// manifest can express).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.policy.is_empty()
    }

    /// How many users' and the policy's values come from writes with no answer recorded.
    pub fn unsettled_entries(&self) -> usize {
        self.users.iter().filter(|u| u.unsettled).count()
            + usize::from(self.policy.iter().any(|p| p.unsettled))
    }

    /// The rollback as a manifest (`version: 1`), with comments that say where it comes from
    /// (`source`, the journal's path), what it may not have needed, and what it cannot restore.
    pub fn manifest(&self, source: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Written by `mfactl rollback` from the journal {}: the values its writes replaced.",
            yaml_quoted(source)
        );
        out.push_str("# Run `mfactl plan` on this file to see what applying it changes back.\n");
        for (number, run) in self.runs.iter().enumerate() {
            let _ = writeln!(out, "# Run {}: {}", number + 1, describe_run(run));
        }
        if self.writes.unsettled > 0 {
            let _ = writeln!(
                out,
                "# {} {} announced with no answer recorded (the run was stopped): {} may not \
                 have been made.\n# Restored all the same (entries marked \"unsettled\"): a value \
                 that never changed plans as in sync.",
                self.writes.unsettled,
                if self.writes.unsettled == 1 {
                    "write was"
                } else {
                    "writes were"
                },
                if self.writes.unsettled == 1 {
                    "it"
                } else {
                    "they"
                },
            );
        }
        if !self.unrestorable.is_empty() {
            out.push_str(
                "# Cannot be restored (a manifest cannot express the value; the journal names \
                 every one):\n",
            );
            for group in self.unrestorable_groups() {
                let _ = writeln!(out, "#   {}", group.describe());
            }
        }
        out.push_str("version: 1\n");
        if self.users.is_empty() {
            out.push_str("users: []\n");
        } else {
            out.push_str("users:\n");
        }
        for user in &self.users {
            let _ = write!(out, "  - user: {}", yaml_quoted(&user.user));
            let mut notes = Vec::new();
            if let Some(name) = &user.name {
                notes.push(yaml_quoted(name));
            }
            if user.unsettled {
                notes.push("unsettled".to_owned());
            }
            if !notes.is_empty() {
                let _ = write!(out, "  # {}", notes.join(", "));
            }
            out.push('\n');
            if let Some(method) = user.preferred_method {
                let _ = writeln!(out, "    preferredMethod: {}", yaml_quoted(method.as_str()));
            }
            if let Some(flag) = user.system_preferred {
                let _ = writeln!(out, "    systemPreferred: {flag}");
            }
            if let Some(state) = user.per_user_mfa_state {
                let _ = writeln!(out, "    perUserMfaState: {}", yaml_quoted(state.as_str()));
            }
        }
        if !self.policy.is_empty() {
            out.push_str("policy:\n");
        }
        for part in &self.policy {
            let note = if part.unsettled { "  # unsettled" } else { "" };
            let _ = writeln!(out, "  {}:{note}", part.part);
            for (name, value) in &part.properties {
                let _ = writeln!(out, "    {name}: {}", render_policy_value(value));
            }
        }
        out
    }
}

/// Unrestorable values that share a field, a value and a reason: one line for 769 users
/// without a preferred method, not 769 lines.
#[derive(Clone, Debug, PartialEq)]
pub struct UnrestorableGroup {
    pub field: String,
    pub value: Json,
    pub reason: &'static str,
    /// How many values.
    pub count: usize,
    /// The first few subjects, in journal order.
    pub examples: Vec<String>,
}

/// How many subjects a group names.
const GROUP_EXAMPLES: usize = 3;

impl Rollback {
    /// [`Rollback::unrestorable`] grouped by field, value and reason, in order of first
    /// appearance.
    pub fn unrestorable_groups(&self) -> Vec<UnrestorableGroup> {
        let mut groups: Vec<UnrestorableGroup> = Vec::new();
        for item in &self.unrestorable {
            let same = |g: &&mut UnrestorableGroup| {
                g.field == item.field && g.value == item.value && g.reason == item.reason
            };
            match groups.iter_mut().find(same) {
                Some(group) => {
                    group.count += 1;
                    if group.examples.len() < GROUP_EXAMPLES {
                        group.examples.push(item.subject.clone());
                    }
                }
                None => groups.push(UnrestorableGroup {
                    field: item.field.clone(),
                    value: item.value.clone(),
                    reason: item.reason,
                    count: 1,
                    examples: vec![item.subject.clone()],
                }),
            }
        }
        groups
    }
}

impl UnrestorableGroup {
    /// One value: as [`Unrestorable::describe`]. Several: `preferredMethod null for 769 users:
    /// the user had no preferred method, ...; e.g. user "a", user "b", user "c" and 766 more`.
    pub fn describe(&self) -> String {
        if self.count == 1 {
            return format!(
                "{}: {} {}: {}",
                self.examples[0],
                self.field,
                yaml_json(&self.value),
                self.reason
            );
        }
        let more = self.count - self.examples.len();
        format!(
            "{} {} for {} values: {}; e.g. {}{}",
            self.field,
            yaml_json(&self.value),
            self.count,
            self.reason,
            self.examples.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )
    }
}

impl Unrestorable {
    /// `user "megan@contoso.com" (...): preferredMethod null: the user had no preferred ...`.
    pub fn describe(&self) -> String {
        format!(
            "{}: {} {}: {}",
            self.subject,
            self.field,
            yaml_json(&self.value),
            self.reason
        )
    }
}

fn describe_run(run: &Run) -> String {
    let mut text = format!("started {}", yaml_quoted(&run.time));
    if let Some(graph) = &run.graph {
        let _ = write!(text, " at {}", yaml_quoted(graph));
    }
    if let Some(tenant) = &run.tenant_id {
        let _ = write!(text, ", tenant {}", yaml_quoted(tenant));
    }
    if let Some(plan) = &run.plan {
        let _ = write!(text, ", plan {}", yaml_quoted(plan));
    }
    if run.resumed {
        text.push_str(", resuming the run before it");
    }
    text
}

/// What the manifest's `user:` can say for the user a journal line is about: its object id
/// (normalised, as Graph prints it), or without one the name, when it is one a manifest takes.
fn manifest_user(record: &Record) -> Result<String, &'static str> {
    match (&record.id, &record.user) {
        (Some(id), _) => uuid::Uuid::try_parse(id.trim())
            .map(|id| id.hyphenated().to_string())
            .map_err(|_| "the journal's object id for this user is not a GUID"),
        (None, Some(name)) if crate::manifest::check_user(name).is_ok() => Ok(name.clone()),
        (None, _) => Err("the journal names this user neither by object id nor by a valid name"),
    }
}

/// Takes from one policy write the `before` of every property the manifest's section supports,
/// unless an earlier write already gave it. A list the policy did not hold (but the write set)
/// was empty as far as Graph's comparison goes; any other missing property is `null`, which
/// [`policy_value`] refuses.
fn gather_policy(
    gathered: &mut Vec<(PolicyPart, &'static str, Json, bool)>,
    before: &Map<String, Json>,
    body: &Map<String, Json>,
    unsettled: bool,
) {
    for part in PolicyPart::ALL {
        let (before, body) = (nested(before, part), nested(body, part));
        if before.is_null() && body.is_null() {
            continue;
        }
        for name in part.properties() {
            if gathered.iter().any(|(p, n, _, _)| *p == part && n == name) {
                continue;
            }
            let value = match (before.get(name), body.get(name)) {
                (Some(value), _) => value.clone(),
                (None, None) => continue,
                (None, Some(_)) if name.ends_with("Targets") => Json::Array(Vec::new()),
                (None, Some(_)) => Json::Null,
            };
            gathered.push((part, name, value, unsettled));
        }
    }
}

/// A policy property's value in the shape the manifest takes, or `None` when it has none (the
/// same limits as `manifest::policy`, so that the manifest written validates).
fn policy_value(part: PolicyPart, name: &str, value: &Json) -> Option<PolicyValue> {
    let plain = |json: Json| Some(PolicyValue::Plain(json));
    match name {
        "state" => {
            let text = value.as_str()?.trim();
            let state = STATES.iter().find(|s| s.eq_ignore_ascii_case(text))?;
            plain(Json::from(*state))
        }
        "snoozeDurationInDays" => plain(Json::from(
            value.as_i64().filter(|n| SNOOZE_DAYS.contains(n))?,
        )),
        "voiceReportingCode" => plain(Json::from(
            value.as_i64().filter(|n| VOICE_CODES.contains(n))?,
        )),
        "enforceRegistrationAfterAllowedSnoozes" => plain(Json::from(value.as_bool()?)),
        "includeTargets" | "excludeTargets" => {
            let items = value.as_array()?;
            if part == PolicyPart::SystemCredentialPreferences
                && items.len() > SYSTEM_PREFERRED_MAX_TARGETS
            {
                return None;
            }
            let campaign_include =
                part == PolicyPart::RegistrationCampaign && name == "includeTargets";
            let targets = items
                .iter()
                .map(|item| target(item, campaign_include))
                .collect::<Option<Vec<_>>>()?;
            Some(PolicyValue::Targets(targets))
        }
        "includeTarget" => Some(PolicyValue::Target(target(value, false)?)),
        _ => None,
    }
}

fn target(value: &Json, campaign_include: bool) -> Option<Target> {
    let id = value.get("id")?.as_str()?.trim();
    let id = if id.eq_ignore_ascii_case(ALL_USERS) {
        ALL_USERS.to_owned()
    } else {
        // Anything but an object id would be read back as a group's display name.
        uuid::Uuid::try_parse(id).ok()?.hyphenated().to_string()
    };
    let target_type = value.get("targetType")?.as_str()?.trim();
    let target_type = TARGET_TYPES
        .iter()
        .copied()
        .find(|t| t.eq_ignore_ascii_case(target_type))?;
    let method = if campaign_include {
        match value.get("targetedAuthenticationMethod") {
            None | Some(Json::Null) => Some("microsoftAuthenticator"),
            Some(method) => {
                let method = method.as_str()?.trim();
                Some(
                    CAMPAIGN_METHODS
                        .iter()
                        .copied()
                        .find(|m| m.eq_ignore_ascii_case(method))?,
                )
            }
        }
    } else {
        None
    };
    Some(Target {
        id,
        target_type,
        method,
    })
}

fn render_policy_value(value: &PolicyValue) -> String {
    match value {
        PolicyValue::Plain(json) => yaml_json(json),
        PolicyValue::Target(target) => render_target(target),
        PolicyValue::Targets(targets) => format!(
            "[{}]",
            targets
                .iter()
                .map(render_target)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn render_target(target: &Target) -> String {
    let mut text = format!(
        "{{ id: {}, targetType: {}",
        yaml_quoted(&target.id),
        yaml_quoted(target.target_type)
    );
    if let Some(method) = target.method {
        let _ = write!(
            text,
            ", targetedAuthenticationMethod: {}",
            yaml_quoted(method)
        );
    }
    text.push_str(" }");
    text
}

/// A JSON scalar as YAML (strings quoted by [`yaml_quoted`](crate::manifest::write::yaml_quoted)); other JSON as its compact text,
/// quoted, for comments.
fn yaml_json(value: &Json) -> String {
    match value {
        Json::String(text) => yaml_quoted(text),
        Json::Null | Json::Bool(_) | Json::Number(_) => value.to_string(),
        other => yaml_quoted(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const A: &str = "071cc716-8147-4397-a5ba-b2105951cc0b";
    const B: &str = "5d1b6c1e-0000-4000-8000-000000000009";

    fn record(value: Json) -> Record {
        serde_json::from_value(value).unwrap()
    }

    fn start(resumed: bool) -> Record {
        record(json!({ "time": "t0", "event": "start", "graph": "g", "resumed": resumed }))
    }

    fn intent(id: &str, endpoint: &str, before: Json, body: Json) -> Record {
        record(
            json!({ "time": "t", "event": "intent", "user": format!("{id}@x.com"), "id": id,
            "endpoint": endpoint, "before": before, "body": body }),
        )
    }

    fn result(id: &str, endpoint: &str, ok: bool) -> Record {
        record(
            json!({ "time": "t", "event": "result", "user": format!("{id}@x.com"), "id": id,
            "endpoint": endpoint, "result": { "ok": ok, "status": if ok { 204 } else { 400 },
            "request_id": null } }),
        )
    }

    fn requirements(id: &str, before: &str, after: &str, ok: Option<bool>) -> Vec<Record> {
        let mut lines = vec![intent(
            id,
            "requirements",
            json!({ "perUserMfaState": before }),
            json!({ "perUserMfaState": after }),
        )];
        lines.extend(ok.map(|ok| result(id, "requirements", ok)));
        lines
    }

    fn user<'a>(rollback: &'a Rollback, id: &str) -> &'a RestoredUser {
        rollback
            .users
            .iter()
            .find(|u| u.user == id)
            .unwrap_or_else(|| panic!("{id} restored: {rollback:?}"))
    }

    #[test]
    fn the_earliest_before_of_an_applied_write_is_restored_across_runs() {
        let mut records = vec![start(false)];
        records.extend(requirements(A, "enforced", "disabled", Some(true)));
        records.push(record(json!({ "time": "t", "event": "finish" })));
        // A later run with another plan changes the same user again, and a new one.
        records.push(start(false));
        records.extend(requirements(A, "disabled", "enabled", Some(true)));
        records.extend(requirements(B, "disabled", "enforced", Some(true)));
        let rollback = Rollback::from_records(&records);
        assert_eq!(rollback.runs.len(), 2);
        assert_eq!(
            user(&rollback, A).per_user_mfa_state,
            Some(PerUserMfaState::Enforced)
        );
        assert_eq!(
            user(&rollback, B).per_user_mfa_state,
            Some(PerUserMfaState::Disabled)
        );
        assert_eq!(rollback.writes.applied, 3);
        assert_eq!(
            user(&rollback, A).name.as_deref(),
            Some(&*format!("{A}@x.com"))
        );
    }

    #[test]
    fn failed_writes_are_skipped_and_a_later_applied_one_counts() {
        let mut records = vec![start(false)];
        // Failed first (changed nothing), then applied on a run that read `disabled`.
        records.extend(requirements(A, "enforced", "disabled", Some(false)));
        records.push(start(true));
        records.extend(requirements(A, "enabled", "disabled", Some(true)));
        // Failed only: nothing to restore for B.
        records.extend(requirements(B, "enforced", "disabled", Some(false)));
        let rollback = Rollback::from_records(&records);
        assert_eq!(
            user(&rollback, A).per_user_mfa_state,
            Some(PerUserMfaState::Enabled)
        );
        assert!(rollback.users.iter().all(|u| u.user != B), "{rollback:?}");
        assert_eq!(
            rollback.writes,
            WriteCounts {
                applied: 1,
                unsettled: 0,
                failed: 2
            }
        );
        assert!(rollback.runs[1].resumed);
    }

    #[test]
    fn unsettled_intents_are_restored_and_marked() {
        let mut records = vec![start(false)];
        records.extend(requirements(A, "enforced", "disabled", Some(true)));
        // Killed between the PATCH and its answer.
        records.extend(requirements(B, "disabled", "enforced", None));
        let rollback = Rollback::from_records(&records);
        assert_eq!(rollback.writes.unsettled, 1);
        assert!(!user(&rollback, A).unsettled);
        let b = user(&rollback, B);
        assert!(b.unsettled);
        assert_eq!(b.per_user_mfa_state, Some(PerUserMfaState::Disabled));
        let manifest = rollback.manifest("j.jsonl");
        assert!(
            manifest.contains("# 1 write was announced with no answer"),
            "{manifest}"
        );
        assert!(manifest.contains("unsettled\n"), "{manifest}");
    }

    #[test]
    fn a_resumed_run_settling_by_reading_back_pairs_with_the_earlier_intent() {
        let mut records = vec![start(false)];
        records.extend(requirements(A, "enforced", "disabled", None));
        records.push(start(true));
        records.push(record(
            json!({ "time": "t", "event": "result", "user": "a@x.com", "id": A,
            "endpoint": "requirements", "result": { "ok": true, "status": null,
            "request_id": null, "settled_by_read": true } }),
        ));
        let rollback = Rollback::from_records(&records);
        assert_eq!((rollback.writes.applied, rollback.writes.unsettled), (1, 0));
        assert!(!user(&rollback, A).unsettled);
        assert_eq!(
            user(&rollback, A).per_user_mfa_state,
            Some(PerUserMfaState::Enforced)
        );
    }

    #[test]
    fn a_null_preferred_method_is_reported_and_the_rest_restored() {
        let records = vec![
            start(false),
            intent(
                A,
                "signInPreferences",
                json!({ "isSystemPreferredAuthenticationMethodEnabled": true,
                        "userPreferredMethodForSecondaryAuthentication": null }),
                json!({ "isSystemPreferredAuthenticationMethodEnabled": false,
                        "userPreferredMethodForSecondaryAuthentication": "push" }),
            ),
            result(A, "signInPreferences", true),
            intent(
                B,
                "signInPreferences",
                json!({ "userPreferredMethodForSecondaryAuthentication": "carrierPigeon" }),
                json!({ "userPreferredMethodForSecondaryAuthentication": "sms" }),
            ),
            result(B, "signInPreferences", true),
        ];
        let rollback = Rollback::from_records(&records);
        let a = user(&rollback, A);
        assert_eq!((a.system_preferred, a.preferred_method), (Some(true), None));
        assert!(rollback.users.iter().all(|u| u.user != B));
        let fields: Vec<(&str, &Json)> = rollback
            .unrestorable
            .iter()
            .map(|u| (u.field.as_str(), &u.value))
            .collect();
        assert_eq!(
            fields,
            [
                ("preferredMethod", &Json::Null),
                ("preferredMethod", &json!("carrierPigeon"))
            ]
        );
        assert!(rollback.unrestorable[0].subject.contains(A));
        let manifest = rollback.manifest("j.jsonl");
        assert!(manifest.contains("preferredMethod null"), "{manifest}");
    }

    #[test]
    fn the_policy_restores_each_part_from_its_earliest_write() {
        let policy = |before: Json, body: Json, ok: bool| {
            vec![
                record(json!({ "time": "t", "event": "intent",
                    "resource": "authenticationMethodsPolicy", "before": before, "body": body })),
                record(json!({ "time": "t", "event": "result",
                    "resource": "authenticationMethodsPolicy",
                    "result": { "ok": ok, "status": 200, "request_id": null } })),
            ]
        };
        let mut records = vec![start(false)];
        records.extend(policy(
            json!({ "systemCredentialPreferences": { "state": "default",
                "includeTargets": [{ "id": "ALL_USERS", "targetType": "group" }] } }),
            json!({ "systemCredentialPreferences": { "state": "enabled",
                "includeTargets": [{ "id": "all_users", "targetType": "group" }],
                "excludeTargets": [{ "id": B, "targetType": "group" }] } }),
            true,
        ));
        // Failed: its before is not restored.
        records.extend(policy(
            json!({ "reportSuspiciousActivitySettings": { "voiceReportingCode": 3 } }),
            json!({ "reportSuspiciousActivitySettings": { "voiceReportingCode": 5 } }),
            false,
        ));
        records.push(start(false));
        records.extend(policy(
            json!({ "systemCredentialPreferences": { "state": "enabled",
                    "includeTargets": [{ "id": "all_users", "targetType": "group" }],
                    "excludeTargets": [{ "id": B, "targetType": "group" }] },
                "registrationEnforcement": { "authenticationMethodsRegistrationCampaign": {
                    "state": "unknownFutureValue", "snoozeDurationInDays": 2,
                    "includeTargets": [{ "id": "all_users", "targetType": "group" }] } } }),
            json!({ "systemCredentialPreferences": { "state": "disabled" },
                "registrationEnforcement": { "authenticationMethodsRegistrationCampaign": {
                    "state": "enabled", "snoozeDurationInDays": 0 } } }),
            true,
        ));
        let rollback = Rollback::from_records(&records);
        let parts: Vec<PolicyPart> = rollback.policy.iter().map(|p| p.part).collect();
        assert_eq!(
            parts,
            [
                PolicyPart::SystemCredentialPreferences,
                PolicyPart::RegistrationCampaign
            ]
        );
        let all_users = Target {
            id: "all_users".into(),
            target_type: "group",
            method: None,
        };
        assert_eq!(
            rollback.policy[0].properties,
            [
                ("state", PolicyValue::Plain(json!("default"))),
                (
                    "includeTargets",
                    PolicyValue::Targets(vec![all_users.clone()])
                ),
                // Not in the first write's before, which set it: it was empty.
                ("excludeTargets", PolicyValue::Targets(Vec::new())),
            ]
        );
        assert_eq!(
            rollback.policy[1].properties,
            [
                ("snoozeDurationInDays", PolicyValue::Plain(json!(2))),
                (
                    "includeTargets",
                    PolicyValue::Targets(vec![Target {
                        method: Some("microsoftAuthenticator"),
                        ..all_users
                    }])
                ),
            ]
        );
        assert_eq!(
            rollback.unrestorable.len(),
            1,
            "{:?}",
            rollback.unrestorable
        );
        assert_eq!(rollback.unrestorable[0].field, "registrationCampaign.state");
        assert_eq!(rollback.writes.failed, 1);
    }

    #[test]
    fn hostile_names_stay_inside_their_quotes_and_the_manifest_validates() {
        let hostile = "x\"\n  - user: evil@contoso.com\n    perUserMfaState: disabled #\u{202e}\u{85}\u{1F600}\\";
        let mut records = vec![start(false)];
        let mut line = requirements(A, "enforced", "disabled", Some(true));
        line[0].user = Some(hostile.to_owned());
        records.extend(line);
        // Without an object id, a name that is no user name cannot be restored.
        let mut unnamed = requirements(B, "enforced", "disabled", Some(true));
        for r in &mut unnamed {
            r.id = None;
            r.user = Some(hostile.to_owned());
        }
        records.extend(unnamed);
        let rollback = Rollback::from_records(&records);
        let manifest = rollback.manifest("dir/j\n.jsonl");
        assert!(manifest.is_ascii(), "{manifest}");
        assert!(!manifest.contains("\n  - user: evil"), "{manifest}");
        assert_eq!(rollback.unrestorable.len(), 1);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("undo.yaml");
        std::fs::write(&path, &manifest).unwrap();
        let loaded = crate::manifest::load(&path).unwrap_or_else(|e| panic!("{e}\n{manifest}"));
        assert_eq!(loaded.users.len(), 1, "{manifest}");
        assert_eq!(&*loaded.users[0].user, A);
        assert_eq!(
            loaded.users[0].per_user_mfa_state,
            Some(PerUserMfaState::Enforced)
        );
        // And the escapes read back to the very string.
        for text in [hostile, "plain", "\u{0}\u{7f}\u{FEFF}\u{10FFFF}"] {
            let back: String = serde_saphyr::from_str(&yaml_quoted(text)).unwrap();
            assert_eq!(back, text);
        }
    }

    #[test]
    fn a_journal_with_nothing_made_gives_an_empty_valid_manifest() {
        let mut records = vec![start(false)];
        records.extend(requirements(A, "enforced", "disabled", Some(false)));
        let rollback = Rollback::from_records(&records);
        assert!(rollback.is_empty());
        let manifest = rollback.manifest("j.jsonl");
        assert!(manifest.ends_with("version: 1\nusers: []\n"), "{manifest}");
    }

    #[test]
    fn unrestorable_values_are_grouped_with_a_count_and_a_few_examples() {
        let mut records = vec![start(false)];
        let users = [
            "00000000-0000-4000-8000-000000000001",
            "00000000-0000-4000-8000-000000000002",
            "00000000-0000-4000-8000-000000000003",
            "00000000-0000-4000-8000-000000000004",
            "00000000-0000-4000-8000-000000000005",
        ];
        for user in users {
            records.push(intent(
                user,
                "signInPreferences",
                json!({ "userPreferredMethodForSecondaryAuthentication": null }),
                json!({ "userPreferredMethodForSecondaryAuthentication": "sms" }),
            ));
            records.push(result(user, "signInPreferences", true));
        }
        let rollback = Rollback::from_records(&records);
        assert_eq!(rollback.unrestorable.len(), 5);
        let groups = rollback.unrestorable_groups();
        assert_eq!(groups.len(), 1, "{groups:?}");
        let line = groups[0].describe();
        assert!(
            line.starts_with("preferredMethod null for 5 values: the user had no preferred method"),
            "{line}"
        );
        assert!(line.ends_with(" and 2 more"), "{line}");
        let manifest = rollback.manifest("j.jsonl");
        assert_eq!(
            manifest.matches("preferredMethod null").count(),
            1,
            "{manifest}"
        );
    }
}
