//! The policy part of a plan: the manifest's `policy:` section (targets already resolved to
//! ids) against the tenant's live `authenticationMethodsPolicy`. Pure: no I/O.
//!
//! Only the properties the manifest names are compared; target lists compare as sets (Graph
//! keeps them in no meaningful order). The PATCH carries each changed sub-object whole, the
//! manifest's properties merged over the live ones, because Graph replaces a sent sub-object's
//! arrays whole: sending a sub-object is the only way to set a list, and sending the live rest
//! with it keeps an unmanaged property as it is.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::{Status, UserError, WriteResult};
use crate::manifest::policy::{
    ALL_USERS, DesiredPolicy, DesiredTarget, DesiredValue, PolicyPart, TargetId,
};

/// The policy's entry in a plan: present whenever the manifest has a `policy:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyPlan {
    /// `in_sync`, `change`; after apply `applied`, `drifted` or `failed`.
    pub status: Status,
    /// Every managed property whose live value differs from the wanted one.
    pub changes: Vec<PolicyChange>,
    /// The live sub-objects the write replaces, as read at plan time (Graph's nesting); apply
    /// refuses to write when they changed since.
    pub before: Map<String, Json>,
    /// The PATCH body: each changed sub-object whole (empty when in sync).
    pub body: Map<String, Json>,
    /// What the policy means for the users in the same run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What Graph answered (apply only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<WriteResult>,
    /// What failed, for `failed` and `drifted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<UserError>,
}

/// One property's change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyChange {
    /// The manifest's name of the sub-object: `systemCredentialPreferences`,
    /// `registrationCampaign`, `reportSuspiciousActivity`.
    pub part: String,
    /// Graph's property name.
    pub property: String,
    /// The live value (`null` when Graph did not return it).
    pub before: Json,
    pub after: Json,
}

/// The wanted properties of one sub-object, in Graph's JSON (targets with resolved ids).
#[derive(Clone, Debug, PartialEq)]
pub struct WantedPart {
    pub part: PolicyPart,
    pub properties: Vec<(&'static str, Json)>,
}

impl PolicyPlan {
    /// Whether the plan writes the policy.
    pub fn has_write(&self) -> bool {
        !self.body.is_empty()
    }
}

/// The manifest's policy in Graph's JSON, each display name replaced by the group id
/// `resolve` gives (the engine resolves every name before planning; one it could not is kept
/// as written, which Graph would refuse, so it must not happen).
pub fn wanted(policy: &DesiredPolicy, resolve: impl Fn(&str) -> Option<String>) -> Vec<WantedPart> {
    let target = |target: &DesiredTarget| {
        let id = match &target.id {
            TargetId::AllUsers => ALL_USERS.to_owned(),
            TargetId::ObjectId(id) => id.clone(),
            TargetId::DisplayName(name) => resolve(name).unwrap_or_else(|| name.clone()),
        };
        let mut json = Map::new();
        json.insert("id".into(), Json::String(id));
        json.insert("targetType".into(), Json::String(target.target_type.into()));
        if let Some(method) = target.method {
            json.insert(
                "targetedAuthenticationMethod".into(),
                Json::String(method.into()),
            );
        }
        Json::Object(json)
    };
    policy
        .parts
        .iter()
        .map(|part| WantedPart {
            part: part.part,
            properties: part
                .properties
                .iter()
                .map(|property| {
                    let value = match &property.value {
                        DesiredValue::Plain(json) => json.clone(),
                        DesiredValue::Targets(targets) => {
                            Json::Array(targets.iter().map(target).collect())
                        }
                        DesiredValue::Target(one) => target(one),
                    };
                    (property.name, value)
                })
                .collect(),
        })
        .collect()
}

/// The live sub-object of `part`, without instance annotations (`@odata.type`): `null` when the
/// policy does not hold it.
pub fn live_part(live: &Json, part: PolicyPart) -> Json {
    let mut at = live;
    for key in part.graph_path() {
        match at.get(key) {
            Some(next) => at = next,
            None => return Json::Null,
        }
    }
    without_annotations(at)
}

fn without_annotations(value: &Json) -> Json {
    match value {
        Json::Object(map) => Json::Object(
            map.iter()
                .filter(|(key, _)| !key.contains('@'))
                .map(|(key, value)| (key.clone(), without_annotations(value)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(without_annotations).collect()),
        other => other.clone(),
    }
}

/// Puts `value` at `part`'s place in `map` (`registrationEnforcement` nests the campaign).
fn nest(map: &mut Map<String, Json>, part: PolicyPart, value: Json) {
    let path = part.graph_path();
    let mut at = map;
    for key in &path[..path.len() - 1] {
        at = at
            .entry(key.to_string())
            .or_insert_with(|| Json::Object(Map::new()))
            .as_object_mut()
            .expect("a nesting level is an object");
    }
    at.insert(path[path.len() - 1].to_string(), value);
}

/// What `part` holds in a document nested like the policy (a plan's `before`).
pub fn nested(map: &Map<String, Json>, part: PolicyPart) -> Json {
    live_part(&Json::Object(map.clone()), part)
}

/// The parts a plan's `before` holds.
pub fn parts_in(map: &Map<String, Json>) -> Vec<PolicyPart> {
    PolicyPart::ALL
        .iter()
        .copied()
        .filter(|part| !nested(map, *part).is_null())
        .collect()
}

/// Whether the PATCH body is exactly what the changes shown make of `before`, as [`diff`]
/// builds it: the changed sub-objects and nothing else, each the `before` sub-object with every
/// change's `after` in place, and any other property the same as before (in [`same`]'s sense:
/// the manifest may restate a value, reorder a list). A saved plan whose body writes more than
/// it shows (a `voiceReportingCode` change that also turns system-preferred MFA off) is
/// refused with what differs.
pub fn check_body(plan: &PolicyPlan) -> Result<(), String> {
    let mut changed = Vec::new();
    for change in &plan.changes {
        let part = PolicyPart::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == change.part)
            .ok_or_else(|| format!("a policy change names the unknown part {:?}", change.part))?;
        if !changed.contains(&part) {
            changed.push(part);
        }
    }
    let written = parts_in(&plan.body);
    let mut rebuilt = Map::new();
    for part in &written {
        nest(&mut rebuilt, *part, nested(&plan.body, *part));
    }
    if rebuilt != plan.body {
        return Err("the policy body holds more than the sub-objects mfactl manages".into());
    }
    let names = |parts: &[PolicyPart]| {
        let mut names: Vec<&str> = parts.iter().map(|p| p.as_str()).collect();
        names.sort_unstable();
        names
    };
    if names(&written) != names(&changed) {
        return Err(format!(
            "the policy body writes {:?}, but the changes shown are in {:?}",
            names(&written),
            names(&changed)
        ));
    }
    for part in written {
        let before = nested(&plan.before, part);
        let empty = Map::new();
        let before = before.as_object().unwrap_or(&empty);
        let body = nested(&plan.body, part);
        let Some(body) = body.as_object() else {
            return Err(format!(
                "the policy body's {} is not an object",
                part.as_str()
            ));
        };
        for (property, value) in body {
            let was = before.get(property).unwrap_or(&Json::Null);
            let change = plan
                .changes
                .iter()
                .find(|c| c.part == part.as_str() && c.property == *property);
            let fits = match change {
                Some(change) => *value == change.after && *was == change.before,
                None => same(property, value, was),
            };
            if !fits {
                return Err(format!(
                    "the policy body writes {}.{property} = {}, which the changes shown do not \
                     say",
                    part.as_str(),
                    crate::text::printable_capped(&value.to_string(), 200)
                ));
            }
        }
        let dropped = before.keys().chain(
            plan.changes
                .iter()
                .filter(|c| c.part == part.as_str())
                .map(|c| &c.property),
        );
        for property in dropped {
            if !body.contains_key(property) {
                return Err(format!(
                    "the policy body leaves {}.{property} out",
                    part.as_str()
                ));
            }
        }
    }
    Ok(())
}

/// Whether a live value means the wanted one.
fn same(property: &str, wanted: &Json, live: &Json) -> bool {
    match (wanted, live) {
        (Json::Array(wanted), Json::Array(live)) => target_set(wanted) == target_set(live),
        (Json::Array(wanted), Json::Null) => wanted.is_empty(),
        (Json::Object(_), Json::Object(_)) => target_key(wanted) == target_key(live),
        (Json::String(wanted), Json::String(live)) if property == "state" => {
            wanted.eq_ignore_ascii_case(live)
        }
        _ => wanted == live,
    }
}

/// A target as compared: ids and names case-insensitively (GUIDs have no case; Graph spells
/// enums in either), and nothing but `id`, `targetType`, `targetedAuthenticationMethod`.
fn target_key(target: &Json) -> (String, String, String) {
    let text = |key: &str| {
        target
            .get(key)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    (
        text("id"),
        text("targetType"),
        text("targetedAuthenticationMethod"),
    )
}

fn target_set(targets: &[Json]) -> Vec<(String, String, String)> {
    let mut keys: Vec<_> = targets.iter().map(target_key).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The policy's plan entry: the changes, and the PATCH that makes them.
pub fn diff(wanted: &[WantedPart], live: &Json) -> PolicyPlan {
    let mut changes = Vec::new();
    let mut before = Map::new();
    let mut body = Map::new();
    for part in wanted {
        let live_part = live_part(live, part.part);
        let mut changed = false;
        for (property, value) in &part.properties {
            let live_value = live_part.get(property).cloned().unwrap_or(Json::Null);
            if !same(property, value, &live_value) {
                changed = true;
                changes.push(PolicyChange {
                    part: part.part.as_str().to_owned(),
                    property: (*property).to_owned(),
                    before: live_value,
                    after: value.clone(),
                });
            }
        }
        if changed {
            let mut merged = match &live_part {
                Json::Object(map) => map.clone(),
                _ => Map::new(),
            };
            for (property, value) in &part.properties {
                merged.insert((*property).to_owned(), value.clone());
            }
            nest(&mut before, part.part, live_part.clone());
            nest(&mut body, part.part, Json::Object(merged));
        }
    }
    PolicyPlan {
        status: if body.is_empty() {
            Status::InSync
        } else {
            Status::Change
        },
        changes,
        before,
        body,
        notes: Vec::new(),
        result: None,
        error: None,
    }
}

/// `systemCredentialPreferences` once the plan is applied: the live part with the wanted
/// properties laid over it.
fn system_preferences_after(wanted: &[WantedPart], live: &Json) -> Map<String, Json> {
    let mut effective = match live_part(live, PolicyPart::SystemCredentialPreferences) {
        Json::Object(map) => map,
        _ => Map::new(),
    };
    if let Some(part) = wanted
        .iter()
        .find(|p| p.part == PolicyPart::SystemCredentialPreferences)
    {
        for (property, value) in &part.properties {
            effective.insert((*property).to_owned(), value.clone());
        }
    }
    effective
}

/// Whether system-preferred MFA is left Microsoft managed (`state: default`) once the plan is
/// applied, for messages: it then covers users as `enabled` does (see [`counts_as_enabled`]).
pub fn system_preferred_is_microsoft_managed(wanted: &[WantedPart], live: &Json) -> bool {
    system_preferences_after(wanted, live)
        .get("state")
        .and_then(Json::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("default"))
}

/// Whether a `systemCredentialPreferences.state` turns system-preferred MFA on: `enabled`, and
/// `default` (Microsoft managed), which Entra documents as enabled: "The Microsoft managed
/// value of system-preferred MFA is Enabled" (learn.microsoft.com/entra/identity/
/// authentication/concept-system-preferred-multifactor-authentication; Microsoft enabled it for
/// every tenant left at Microsoft managed in 2023). Graph's own resource page for
/// systemCredentialPreferences still says `default` means disabled; the Entra page wins here
/// because it describes what sign-in does.
pub fn counts_as_enabled(state: &str) -> bool {
    state.eq_ignore_ascii_case("enabled") || state.eq_ignore_ascii_case("default")
}

/// Who system-preferred MFA covers once the plan is applied, when it is on ([`counts_as_enabled`])
/// and includes every user: `Some(excluded group ids)`; `None` when it does not cover everyone
/// (disabled, or only some groups, whose members the plan does not know).
pub fn system_preferred_for_all(wanted: &[WantedPart], live: &Json) -> Option<Vec<String>> {
    let effective = system_preferences_after(wanted, live);
    let enabled = effective
        .get("state")
        .and_then(Json::as_str)
        .is_some_and(counts_as_enabled);
    let all_users = effective
        .get("includeTargets")
        .and_then(Json::as_array)
        .is_some_and(|targets| {
            targets.iter().any(|t| {
                t.get("id")
                    .and_then(Json::as_str)
                    .is_some_and(|id| id.eq_ignore_ascii_case(ALL_USERS))
            })
        });
    if !(enabled && all_users) {
        return None;
    }
    Some(
        effective
            .get("excludeTargets")
            .and_then(Json::as_array)
            .map(|targets| {
                targets
                    .iter()
                    .filter_map(|t| t.get("id").and_then(Json::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scp(properties: Vec<(&'static str, Json)>) -> Vec<WantedPart> {
        vec![WantedPart {
            part: PolicyPart::SystemCredentialPreferences,
            properties,
        }]
    }

    #[test]
    fn reordered_targets_are_in_sync() {
        let live = json!({ "registrationEnforcement": { "authenticationMethodsRegistrationCampaign": {
            "state": "enabled",
            "includeTargets": [
                { "id": "A", "targetType": "group", "targetedAuthenticationMethod": "microsoftAuthenticator" },
                { "id": "b", "targetType": "group", "targetedAuthenticationMethod": "microsoftAuthenticator" } ] } } });
        let wanted = vec![WantedPart {
            part: PolicyPart::RegistrationCampaign,
            properties: vec![(
                "includeTargets",
                json!([
                    { "id": "b", "targetType": "group", "targetedAuthenticationMethod": "microsoftAuthenticator" },
                    { "id": "a", "targetType": "Group", "targetedAuthenticationMethod": "microsoftAuthenticator" } ]),
            )],
        }];
        let plan = diff(&wanted, &live);
        assert_eq!(plan.status, Status::InSync, "{plan:?}");
        assert!(plan.body.is_empty());
    }

    #[test]
    fn a_changed_part_is_sent_whole_merged_over_live() {
        let live = json!({ "systemCredentialPreferences": {
            "@odata.type": "#microsoft.graph.systemCredentialPreferences",
            "state": "default", "excludeTargets": [],
            "includeTargets": [{ "id": "all_users", "targetType": "group" }] },
            "reportSuspiciousActivitySettings": { "state": "default" } });
        let plan = diff(&scp(vec![("state", json!("enabled"))]), &live);
        assert_eq!(plan.status, Status::Change);
        assert_eq!(
            Json::Object(plan.body),
            json!({ "systemCredentialPreferences": { "state": "enabled", "excludeTargets": [],
                "includeTargets": [{ "id": "all_users", "targetType": "group" }] } })
        );
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].before, json!("default"));
        assert_eq!(
            parts_in(&plan.before),
            vec![PolicyPart::SystemCredentialPreferences]
        );
    }

    #[test]
    fn a_body_that_writes_more_than_the_changes_show_is_refused() {
        let live = json!({ "systemCredentialPreferences": { "state": "enabled",
            "includeTargets": [{ "id": "all_users", "targetType": "group" }], "excludeTargets": [] },
            "reportSuspiciousActivitySettings": { "state": "enabled", "voiceReportingCode": 0,
            "includeTarget": { "id": "all_users", "targetType": "group" } } });
        let wanted = vec![WantedPart {
            part: PolicyPart::ReportSuspiciousActivity,
            properties: vec![
                ("voiceReportingCode", json!(5)),
                ("state", json!("Enabled")),
            ],
        }];
        let plan = diff(&wanted, &live);
        assert_eq!(check_body(&plan), Ok(()));
        // The red team's forgery: system-preferred MFA turned off under a code change.
        let mut forged = plan.clone();
        forged.body.insert(
            "systemCredentialPreferences".into(),
            json!({ "state": "disabled", "includeTargets": [], "excludeTargets": [] }),
        );
        let error = check_body(&forged).unwrap_err();
        assert!(error.contains("systemCredentialPreferences"), "{error}");
        // Another value inside the changed part, a property dropped, a stray key.
        let mut forged = plan.clone();
        forged.body["reportSuspiciousActivitySettings"]["state"] = json!("disabled");
        assert!(check_body(&forged).unwrap_err().contains("state"));
        let mut forged = plan.clone();
        forged.body["reportSuspiciousActivitySettings"]
            .as_object_mut()
            .unwrap()
            .remove("includeTarget");
        assert!(check_body(&forged).unwrap_err().contains("leaves"));
        let mut forged = plan;
        forged
            .body
            .insert("authenticationMethodConfigurations".into(), json!([]));
        assert!(check_body(&forged).is_err());
    }

    #[test]
    fn system_preferred_covers_everyone_only_when_on_for_all_users() {
        let live = json!({ "systemCredentialPreferences": { "state": "default",
            "includeTargets": [{ "id": "all_users", "targetType": "group" }],
            "excludeTargets": [{ "id": "g1", "targetType": "group" }] } });
        // Microsoft managed counts as enabled (Entra's system-preferred MFA page).
        assert_eq!(
            system_preferred_for_all(&[], &live),
            Some(vec!["g1".to_owned()])
        );
        assert!(system_preferred_is_microsoft_managed(&[], &live));
        let disabled = scp(vec![("state", json!("disabled"))]);
        assert_eq!(system_preferred_for_all(&disabled, &live), None);
        assert!(!system_preferred_is_microsoft_managed(&disabled, &live));
        let enabled = scp(vec![("state", json!("enabled"))]);
        assert_eq!(
            system_preferred_for_all(&enabled, &live),
            Some(vec!["g1".to_owned()])
        );
        let some_group = scp(vec![
            ("state", json!("enabled")),
            (
                "includeTargets",
                json!([{ "id": "g2", "targetType": "group" }]),
            ),
        ]);
        assert_eq!(system_preferred_for_all(&some_group, &live), None);
    }
}
