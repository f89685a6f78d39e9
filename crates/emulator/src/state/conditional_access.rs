//! Graph's shape for the tenant file's `conditionalAccessPolicies:` (each a
//! `conditionalAccessPolicy` in Graph's JSON) and `roleAssignments:`, and the checks a file's
//! policies must pass: what `GET /beta/identity/conditionalAccess/policies` answers for them.
//!
//! It exists so that a test or a rehearsal can describe a tenant's Conditional Access in the
//! shape Graph returns, giving only what matters (`state`, `conditions.users`, `grantControls`)
//! while the emulator answers every property Graph would. Read-only: mfactl never writes a
//! policy, so neither does the emulator.
//!
//! Sources: the beta schema (`conditionalAccessPolicy`, `conditionalAccessConditionSet`,
//! `conditionalAccessUsers`, `conditionalAccessApplications`, `conditionalAccessGrantControls`,
//! the `conditionalAccessPolicyState` and `conditionalAccessGrantControl` enums) and the Graph
//! reference's list-policies responses, which show every list as `[]` when empty, `platforms`,
//! `locations`, `devices` and `sessionControls` as `null`, `clientAppTypes` as `["all"]`, and
//! `authenticationStrength` inline beside its `authenticationStrength@odata.context`. Not
//! documented, and chosen here: `createdDateTime` (fixed, so two emulators over one file answer
//! alike), the full objects of the three built-in authentication strengths (their ids, names and
//! `requirementsSatisfied: mfa` are Microsoft's; their `allowedCombinations` are left out), and
//! the checks below being load errors (Graph refuses such a policy on create; a file holding one
//! would have the emulator serve what Graph never could).

use serde_json::{Map, Value, json};

use mfactl_core::text::printable_capped;

/// `createdDateTime` of a policy the file gives none for.
const CREATED: &str = "2024-04-26T12:44:42.0858664Z";

use mfactl_core::wire::conditional_access::{
    APPLICATIONS as APPLICATIONS_PROPERTIES, CONDITIONS as CONDITION_PROPERTIES,
    GRANT_CONTROLS as GRANT_PROPERTIES, POLICY as POLICY_PROPERTIES, USERS as USERS_PROPERTIES,
};

/// `conditionalAccessPolicyState`.
const STATES: &[&str] = &["enabled", "disabled", "enabledForReportingButNotEnforced"];

/// `conditionalAccessGrantControl`.
const CONTROLS: &[&str] = &[
    "block",
    "mfa",
    "compliantDevice",
    "domainJoinedDevice",
    "approvedApplication",
    "compliantApplication",
    "passwordChange",
    "unknownFutureValue",
];

/// The built-in authentication strengths (Graph reference, `authenticationStrengthPolicy`).
const BUILT_IN_STRENGTHS: &[(&str, &str)] = &[
    (
        "00000000-0000-0000-0000-000000000002",
        "Multifactor authentication",
    ),
    ("00000000-0000-0000-0000-000000000003", "Passwordless MFA"),
    (
        "00000000-0000-0000-0000-000000000004",
        "Phishing-resistant MFA",
    ),
];

/// How much of a file's value a message repeats.
const ECHO: usize = 80;

/// What is wrong with one file policy, each a sentence; empty when it is one Graph could hold.
pub fn file_problems(policy: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Value::Object(object) = policy else {
        return vec!["must be a mapping (the policy object as Graph returns it)".to_owned()];
    };
    unknown_keys(object, POLICY_PROPERTIES, "", &mut problems);
    match object.get("id") {
        Some(Value::String(id)) if !id.trim().is_empty() => {}
        _ => problems.push("id must be a non-empty string".to_owned()),
    }
    if !matches!(object.get("displayName"), Some(Value::String(name)) if !name.trim().is_empty()) {
        problems.push("displayName must be a non-empty string".to_owned());
    }
    match object.get("state") {
        Some(Value::String(state)) if STATES.contains(&state.as_str()) => {}
        other => problems.push(format!(
            "state must be one of {} (got {})",
            STATES.join(", "),
            shown(other)
        )),
    }
    match object.get("conditions") {
        Some(Value::Object(conditions)) => check_conditions(conditions, &mut problems),
        other => problems.push(format!(
            "conditions must be a mapping (Graph requires them; got {})",
            shown(other)
        )),
    }
    match object.get("grantControls") {
        None | Some(Value::Null) => {}
        Some(Value::Object(grant)) => check_grant(grant, &mut problems),
        Some(other) => problems.push(format!(
            "grantControls must be a mapping or null (got {})",
            shown(Some(other))
        )),
    }
    problems
}

fn check_conditions(conditions: &Map<String, Value>, problems: &mut Vec<String>) {
    unknown_keys(conditions, CONDITION_PROPERTIES, "conditions.", problems);
    for (key, known) in [
        ("users", USERS_PROPERTIES),
        ("applications", APPLICATIONS_PROPERTIES),
    ] {
        match conditions.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(object)) => {
                unknown_keys(object, known, &format!("conditions.{key}."), problems);
                for (name, value) in object {
                    let listed = name.starts_with("include") || name.starts_with("exclude");
                    let object_valued = name.ends_with("GuestsOrExternalUsers");
                    if listed && !object_valued && !is_string_list(value) {
                        problems.push(format!(
                            "conditions.{key}.{} must be a list of strings",
                            printable_capped(name, ECHO)
                        ));
                    }
                }
            }
            Some(other) => problems.push(format!(
                "conditions.{key} must be a mapping (got {})",
                shown(Some(other))
            )),
        }
    }
}

fn check_grant(grant: &Map<String, Value>, problems: &mut Vec<String>) {
    unknown_keys(grant, GRANT_PROPERTIES, "grantControls.", problems);
    match grant.get("operator") {
        None | Some(Value::Null) => {}
        Some(Value::String(op)) if op == "AND" || op == "OR" => {}
        other => problems.push(format!(
            "grantControls.operator must be AND or OR (got {})",
            shown(other)
        )),
    }
    match grant.get("builtInControls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(controls)) => {
            for control in controls {
                if !control.as_str().is_some_and(|c| CONTROLS.contains(&c)) {
                    problems.push(format!(
                        "grantControls.builtInControls holds {}, not one of {}",
                        shown(Some(control)),
                        CONTROLS.join(", ")
                    ));
                }
            }
        }
        other => problems.push(format!(
            "grantControls.builtInControls must be a list (got {})",
            shown(other)
        )),
    }
    match grant.get("authenticationStrength") {
        None | Some(Value::Null) => {}
        Some(Value::Object(strength)) if strength.get("id").is_some_and(Value::is_string) => {}
        other => problems.push(format!(
            "grantControls.authenticationStrength must be null or a mapping with an id (got {})",
            shown(other)
        )),
    }
}

/// The schema of one of a tenant file's `conditionalAccessPolicies` (in
/// `schemas/tenant.schema.json`): what [`file_problems`] accepts, from the same property lists
/// and values (Graph's spellings, case-sensitive); annotations (keys with `@`) may hold anything.
pub struct FilePolicy;

impl schemars::JsonSchema for FilePolicy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ConditionalAccessPolicy".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let non_blank =
            json!({ "type": "string", "pattern": mfactl_core::json_schema::not_blank_pattern() });
        let strings = json!({ "type": "array", "items": { "type": "string" } });
        let lists = |known: &[&str]| {
            let mut object = object_of(known);
            object["type"] = json!(["object", "null"]);
            for name in known {
                let listed = name.starts_with("include") || name.starts_with("exclude");
                if listed && !name.ends_with("GuestsOrExternalUsers") {
                    object["properties"][*name] = strings.clone();
                }
            }
            object
        };
        let mut conditions = object_of(CONDITION_PROPERTIES);
        conditions["properties"]["users"] = lists(USERS_PROPERTIES);
        conditions["properties"]["applications"] = lists(APPLICATIONS_PROPERTIES);
        let mut grant = object_of(GRANT_PROPERTIES);
        grant["type"] = json!(["object", "null"]);
        grant["properties"]["operator"] = json!({ "enum": ["AND", "OR", null] });
        grant["properties"]["builtInControls"] = json!({
            "type": ["array", "null"], "items": { "enum": CONTROLS },
        });
        grant["properties"]["authenticationStrength"] = json!({
            "type": ["object", "null"], "required": ["id"], "properties": { "id": { "type": "string" } },
        });
        let mut policy = object_of(POLICY_PROPERTIES);
        policy["properties"]["id"] = non_blank.clone();
        policy["properties"]["displayName"] = non_blank;
        policy["properties"]["state"] = json!({ "enum": STATES });
        policy["properties"]["conditions"] = conditions;
        policy["properties"]["grantControls"] = grant;
        policy["required"] = json!(["id", "displayName", "state", "conditions"]);
        policy["description"] = json!("A conditionalAccessPolicy as Graph returns it.");
        schemars::Schema::try_from(policy).expect("an object is a schema")
    }
}

/// An object with `known` properties (any value) and annotations, and nothing else.
fn object_of(known: &[&str]) -> Value {
    let properties: Map<String, Value> = known
        .iter()
        .map(|name| ((*name).to_owned(), json!(true)))
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "patternProperties": { "@": true },
        "additionalProperties": false,
    })
}

fn is_string_list(value: &Value) -> bool {
    value
        .as_array()
        .is_some_and(|items| items.iter().all(Value::is_string))
}

/// A problem for each key of `object` that is not one of `known` (instance annotations, which
/// start with `@`, are allowed).
fn unknown_keys(
    object: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
    problems: &mut Vec<String>,
) {
    for key in object.keys() {
        if !key.contains('@') && !known.contains(&key.as_str()) {
            problems.push(format!(
                "{prefix}{} is not a property Graph's schema gives this object",
                printable_capped(key, ECHO)
            ));
        }
    }
}

fn shown(value: Option<&Value>) -> String {
    match value {
        None => "nothing".to_owned(),
        Some(value) => printable_capped(&value.to_string(), ECHO),
    }
}

/// The policy as Graph answers it: the file's values laid over Graph's empty shape.
pub fn served(policy: &Value) -> Value {
    let id = policy.get("id").and_then(Value::as_str).unwrap_or_default();
    let mut answer = json!({
        "id": id,
        "displayName": "",
        "createdDateTime": CREATED,
        "modifiedDateTime": null,
        "state": "disabled",
        "sessionControls": null,
        "conditions": {
            "userRiskLevels": [],
            "signInRiskLevels": [],
            "clientAppTypes": ["all"],
            "servicePrincipalRiskLevels": [],
            "platforms": null,
            "locations": null,
            "devices": null,
            "clientApplications": null,
            "applications": {
                "includeApplications": [],
                "excludeApplications": [],
                "includeUserActions": [],
                "includeAuthenticationContextClassReferences": [],
                "applicationFilter": null,
            },
            "users": {
                "includeUsers": [],
                "excludeUsers": [],
                "includeGroups": [],
                "excludeGroups": [],
                "includeRoles": [],
                "excludeRoles": [],
                "includeGuestsOrExternalUsers": null,
                "excludeGuestsOrExternalUsers": null,
            },
        },
        "grantControls": {
            "operator": "OR",
            "builtInControls": [],
            "customAuthenticationFactors": [],
            "termsOfUse": [],
            "authenticationStrength@odata.context": format!(
                "https://graph.microsoft.com/beta/$metadata#identity/conditionalAccess/policies('{id}')/grantControls/authenticationStrength/$entity"
            ),
            "authenticationStrength": null,
        },
    });
    lay_over(&mut answer, policy);
    if let Some(strength) = answer.pointer_mut("/grantControls/authenticationStrength") {
        expand_strength(strength);
    }
    answer
}

/// `over`'s values replace `base`'s, mapping by mapping; a `null` or a list replaces whole.
fn lay_over(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(slot) if slot.is_object() && value.is_object() => lay_over(slot, value),
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// A built-in strength named by id alone gets the name and `requirementsSatisfied` Graph
/// answers with.
fn expand_strength(strength: &mut Value) {
    let Some(object) = strength.as_object_mut() else {
        return;
    };
    let Some(id) = object.get("id").and_then(Value::as_str) else {
        return;
    };
    if let Some((_, name)) = BUILT_IN_STRENGTHS.iter().find(|(known, _)| *known == id) {
        object.entry("displayName").or_insert_with(|| json!(name));
        object
            .entry("policyType")
            .or_insert_with(|| json!("builtIn"));
        object
            .entry("requirementsSatisfied")
            .or_insert_with(|| json!("mfa"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_file_policy_is_served_in_graphs_whole_shape() {
        let file = json!({
            "id": "p1", "displayName": "MFA for A", "state": "enabled",
            "conditions": { "users": { "includeGroups": ["g"] },
                            "applications": { "includeApplications": ["All"] } },
            "grantControls": { "builtInControls": ["mfa"],
                               "authenticationStrength": { "id": "00000000-0000-0000-0000-000000000004" } }
        });
        assert!(
            file_problems(&file).is_empty(),
            "{:?}",
            file_problems(&file)
        );
        let served = served(&file);
        assert_eq!(served["conditions"]["users"]["includeGroups"], json!(["g"]));
        assert_eq!(served["conditions"]["users"]["excludeGroups"], json!([]));
        assert_eq!(served["conditions"]["clientAppTypes"], json!(["all"]));
        assert_eq!(served["grantControls"]["operator"], "OR");
        assert_eq!(
            served["grantControls"]["authenticationStrength"]["requirementsSatisfied"],
            "mfa"
        );
        assert_eq!(served["sessionControls"], Value::Null);
        // That mfactl's judge reads it as written is tests/it/coverage.rs's
        // `a_short_file_policy_is_judged_as_written` (the emulator does not know mfactl).
    }

    #[test]
    fn what_graph_could_not_hold_is_refused() {
        for (file, expected) in [
            (json!("x"), "must be a mapping"),
            (
                json!({ "id": "p", "displayName": "x", "state": "on", "conditions": {} }),
                "state must be one of",
            ),
            (
                json!({ "id": "p", "displayName": "x", "state": "enabled" }),
                "conditions must be a mapping",
            ),
            (
                json!({ "id": "p", "displayName": "x", "state": "enabled",
                        "conditions": { "timeOfDay": [] } }),
                "conditions.timeOfDay is not a property",
            ),
            (
                json!({ "id": "p", "displayName": "x", "state": "enabled", "conditions": {},
                        "grantControls": { "builtInControls": ["sms"] } }),
                "builtInControls holds \"sms\"",
            ),
            (
                json!({ "id": "p", "displayName": "x", "state": "enabled",
                        "conditions": { "users": { "includeGroups": "g" } } }),
                "conditions.users.includeGroups must be a list of strings",
            ),
            (
                json!({ "id": "", "displayName": "x", "state": "enabled", "conditions": {} }),
                "id must be",
            ),
        ] {
            let problems = file_problems(&file);
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{file}: {problems:?}"
            );
        }
    }
}
