//! The plan document's user entry as JSON spells it (design.md), for reading plan files back
//! and for the schema. In memory a user is the compact [`super::UserPlan`]; it serialises to
//! exactly this shape and is read from it through [`TryFrom`], which checks that every write
//! is the written fields of its endpoint (what [`super::diff`] produces). These types serialise
//! too, exactly as the plan did before it was compact: the tests hold the two to the same text.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::{UserError, Value, WriteResult};
use crate::model::{Endpoint, Field};

/// One user's entry in the plan.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct UserPlan {
    /// As written in the manifest.
    pub user: String,
    /// The object id, when known (the manifest named the user by id).
    pub id: Option<String>,
    pub status: super::Status,
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
    /// Whether MFA stays required once per-user MFA is disabled, for a user the plan disables
    /// it for: `status` (`covered`, `partly_covered`, `not_covered`, `unknown`), `detail`, and
    /// the `policies` that require MFA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<super::coverage::Coverage>,
}

/// One field's change.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct FieldChange {
    pub field: Field,
    /// The live value as Graph returned it (`null` when unset).
    pub before: Json,
    pub after: Json,
}

/// One PATCH call.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Write {
    pub endpoint: Endpoint,
    /// The live values of the properties the body changes.
    pub before: Map<String, Json>,
    /// Exactly the properties to change, in Graph's names and spelling.
    pub body: Map<String, Json>,
    /// What Graph answered (apply only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<WriteResult>,
}

impl TryFrom<UserPlan> for super::UserPlan {
    type Error = String;

    fn try_from(wire: UserPlan) -> Result<Self, String> {
        let user = wire.user;
        let id = wire
            .id
            .map(|id| {
                uuid::Uuid::parse_str(&id)
                    .map_err(|_| format!("user {user}: id {id:?} is not an object id (a GUID)"))
            })
            .transpose()?;
        // Every field starts blocked (shown, not written) until a write carries it.
        let mut fields: Vec<super::FieldChange> = Vec::with_capacity(wire.fields.len());
        for change in wire.fields {
            if fields.iter().any(|f| f.field == change.field) {
                return Err(format!(
                    "user {user}: field {} is listed twice",
                    change.field
                ));
            }
            fields.push(super::FieldChange {
                field: change.field,
                before: Value::from_json(change.before),
                after: Value::from_json(change.after),
                blocked: true,
            });
        }
        let mut results: [Option<WriteResult>; 2] = [None, None];
        let mut seen = [false; 2];
        for write in wire.writes {
            let endpoint = write.endpoint;
            let slot = super::endpoint_index(endpoint);
            if std::mem::replace(&mut seen[slot], true) {
                return Err(format!("user {user}: two writes to {endpoint}"));
            }
            if write.body.is_empty() || write.before.len() != write.body.len() {
                return Err(format!(
                    "user {user}: the {endpoint} write must name the same properties in \
                     before and body, at least one"
                ));
            }
            for (property, after) in write.body {
                let field = Field::ALL
                    .iter()
                    .copied()
                    .find(|f| f.graph_property() == property && f.endpoint() == endpoint)
                    .ok_or_else(|| {
                        format!(
                            "user {user}: {property} is not a property mfactl writes to {endpoint}"
                        )
                    })?;
                let before = write.before.get(&property).cloned().ok_or_else(|| {
                    format!("user {user}: the {endpoint} write has no before value for {property}")
                })?;
                let change = fields
                    .iter_mut()
                    .find(|f| f.field == field)
                    .filter(|f| {
                        f.before == Value::from_json(before) && f.after == Value::from_json(after)
                    })
                    .ok_or_else(|| {
                        format!(
                            "user {user}: the {endpoint} write of {property} does not match \
                             the {field} field change"
                        )
                    })?;
                change.blocked = false;
            }
            results[slot] = write.result;
        }
        let mut plan = super::UserPlan {
            id,
            status: wire.status,
            error: wire.error.map(Box::new),
            coverage: wire.coverage.map(std::sync::Arc::new),
            ..super::UserPlan::new(user.into(), wire.status, fields, wire.reason, wire.notes)
        };
        for endpoint in Endpoint::ALL.iter().copied() {
            if let Some(result) = results[super::endpoint_index(endpoint)].take() {
                plan.set_result(endpoint, result);
            }
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::RequestId;

    #[test]
    fn request_ids_read_back_exactly_as_graph_wrote_them() {
        for text in [
            "6f1b8b0c-2f3e-4c9a-9d8e-0a1b2c3d4e5f",
            "6F1B8B0C-2F3E-4C9A-9D8E-0A1B2C3D4E5F",
            "r-1",
            "",
        ] {
            let id = RequestId::from(text.to_owned());
            assert_eq!(id.to_string(), text);
            assert_eq!(serde_json::to_value(&id).unwrap(), serde_json::json!(text));
        }
        assert!(matches!(
            RequestId::from("6f1b8b0c-2f3e-4c9a-9d8e-0a1b2c3d4e5f".to_owned()),
            RequestId::Guid(_)
        ));
        assert_eq!(std::mem::size_of::<Option<RequestId>>(), 24);
    }

    use super::*;

    /// Today's document: unknown and differently spelt live values, nulls, a blocked field,
    /// notes, errors, write results (one settled by reading back), a user named by id.
    const DOCUMENT: &str = r#"[
      { "user": "071CC716-8147-4397-A5BA-B2105951CC0B", "id": "071cc716-8147-4397-a5ba-b2105951cc0b",
        "status": "applied",
        "fields": [ { "field": "preferredMethod", "before": "SMS", "after": "oath" },
                    { "field": "systemPreferred", "before": null, "after": false },
                    { "field": "perUserMfaState", "before": "unknownFutureValue", "after": "disabled" } ],
        "writes": [ { "endpoint": "signInPreferences",
                      "before": { "userPreferredMethodForSecondaryAuthentication": "SMS",
                                  "isSystemPreferredAuthenticationMethodEnabled": null },
                      "body": { "userPreferredMethodForSecondaryAuthentication": "oath",
                                "isSystemPreferredAuthenticationMethodEnabled": false },
                      "result": { "ok": true, "status": 204, "request_id": "6f1b8b0c-2f3e-4c9a-9d8e-0a1b2c3d4e5f" } },
                    { "endpoint": "requirements", "before": { "perUserMfaState": "unknownFutureValue" },
                      "body": { "perUserMfaState": "disabled" },
                      "result": { "ok": true, "status": null, "request_id": null, "settled_by_read": true } } ],
        "notes": [ "system-preferred MFA is on" ] },
      { "user": "megan@contoso.com", "id": null, "status": "blocked",
        "fields": [ { "field": "preferredMethod", "before": null, "after": "push" },
                    { "field": "perUserMfaState", "before": "enforced", "after": "disabled" } ],
        "writes": [ { "endpoint": "requirements", "before": { "perUserMfaState": "enforced" },
                      "body": { "perUserMfaState": "disabled" },
                      "result": { "ok": false, "status": 503, "request_id": "r-2", "code": "serviceUnavailable" } } ],
        "reason": "push is not registered", "error": { "endpoint": "requirements", "status": 503,
        "code": "serviceUnavailable", "message": "try later", "request_id": "r-2" } },
      { "user": "ghost@contoso.com", "id": null, "status": "not_found", "fields": [], "writes": [],
        "error": { "endpoint": null, "status": 404, "code": "Request_ResourceNotFound",
                   "message": "no such user", "request_id": null } },
      { "user": "adele@contoso.com", "id": "5d1b6c1e-0000-4000-8000-000000000002", "status": "change",
        "fields": [ { "field": "preferredMethod", "before": "voiceMobile", "after": "sms" } ],
        "writes": [ { "endpoint": "signInPreferences",
                      "before": { "userPreferredMethodForSecondaryAuthentication": "voiceMobile" },
                      "body": { "userPreferredMethodForSecondaryAuthentication": "sms" } } ] }
    ]"#;

    #[test]
    fn todays_json_reads_into_the_compact_form_and_writes_back_identically() {
        let wire: Vec<UserPlan> = serde_json::from_str(DOCUMENT).unwrap();
        let expected = serde_json::to_string_pretty(&wire).unwrap();
        let compact: Vec<super::super::UserPlan> = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(serde_json::to_string_pretty(&compact).unwrap(), expected);
        let again: Vec<super::super::UserPlan> = serde_json::from_str(&expected).unwrap();
        assert_eq!(again, compact);
        // Answers come back whole: a GUID request-id, a text one with an error code, none.
        let result = |user: usize, endpoint| {
            compact[user]
                .write(endpoint)
                .and_then(|w| w.result())
                .unwrap()
        };
        let guid = result(0, Endpoint::SignInPreferences);
        assert!(matches!(guid.request_id, Some(RequestId::Guid(_))));
        assert_eq!((guid.ok, guid.status), (true, Some(204)));
        let settled = result(0, Endpoint::Requirements);
        assert_eq!(
            (settled.status, settled.request_id, settled.settled_by_read),
            (None, None, true)
        );
        let failed = result(1, Endpoint::Requirements);
        assert_eq!(failed.request_id, Some(RequestId::Text("r-2".into())));
        assert_eq!(failed.code.as_deref(), Some("serviceUnavailable"));
        // What is rare is kept, and the values Graph returned keep their spelling.
        assert_eq!(compact[1].reason(), Some("push is not registered"));
        assert!(compact[1].fields[0].blocked);
        assert_eq!(compact[0].fields[0].before, Value::text("SMS"));
        assert_eq!(compact[0].fields[0].before.as_str(), Some("SMS"));
        assert_eq!(
            compact[0].fields[2].before,
            Value::Other(Box::new("unknownFutureValue".into()))
        );
        assert_eq!(
            compact[3].fields[0].after,
            Value::Method(crate::model::PreferredMethod::Sms)
        );
    }

    #[test]
    fn values_this_build_never_plans_still_read_back_unchanged() {
        let document = r#"{ "user": "u", "id": null, "status": "change",
            "fields": [ { "field": "perUserMfaState", "before": 3, "after": ["x", {"y": 1.5}] } ],
            "writes": [] }"#;
        let wire: UserPlan = serde_json::from_str(document).unwrap();
        let compact: super::super::UserPlan = serde_json::from_str(document).unwrap();
        assert_eq!(
            serde_json::to_string(&compact).unwrap(),
            serde_json::to_string(&wire).unwrap()
        );
    }

    #[test]
    fn writes_that_are_not_the_fields_are_refused() {
        let user = |writes: &str| {
            format!(
                r#"{{ "user": "u", "id": null, "status": "change",
                "fields": [ {{ "field": "perUserMfaState", "before": "enforced", "after": "disabled" }} ],
                "writes": [{writes}] }}"#
            )
        };
        let write = |endpoint: &str, property: &str, before: &str, after: &str| {
            format!(
                r#"{{ "endpoint": "{endpoint}", "before": {{ "{property}": {before} }},
                "body": {{ "{property}": {after} }} }}"#
            )
        };
        let good = write(
            "requirements",
            "perUserMfaState",
            "\"enforced\"",
            "\"disabled\"",
        );
        assert!(serde_json::from_str::<super::super::UserPlan>(&user(&good)).is_ok());
        for bad in [
            // Another value than the field's change.
            write(
                "requirements",
                "perUserMfaState",
                "\"enforced\"",
                "\"enabled\"",
            ),
            // A property mfactl does not write, or on the wrong endpoint.
            write("requirements", "displayName", "\"a\"", "\"b\""),
            write(
                "signInPreferences",
                "perUserMfaState",
                "\"enforced\"",
                "\"disabled\"",
            ),
            // The same endpoint twice.
            format!("{good}, {good}"),
        ] {
            let error = serde_json::from_str::<super::super::UserPlan>(&user(&bad)).unwrap_err();
            assert!(error.to_string().contains("user u:"), "{error}");
        }
        let not_a_guid =
            r#"{ "user": "u", "id": "u", "status": "change", "fields": [], "writes": [] }"#;
        assert!(serde_json::from_str::<super::super::UserPlan>(not_a_guid).is_err());
    }

    #[test]
    fn property_order_is_the_order_of_graph_property_names() {
        let names: Vec<&str> = super::super::PROPERTY_ORDER
            .iter()
            .map(|f| f.graph_property())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[test]
    fn a_user_is_small() {
        // 100,000 users under 100 MB and a million under 500 MB, with the manifest and Graph's
        // answers in flight: the entry itself stays under 88 bytes (the rest is on the heap only when present).
        assert!(std::mem::size_of::<super::super::UserPlan>() <= 88);
        assert!(std::mem::size_of::<Value>() <= 16);
        assert!(std::mem::size_of::<super::super::FieldChange>() <= 40);
        // An applied user's two answers: one 40-byte allocation.
        assert_eq!(std::mem::size_of::<Option<super::super::HeldResult>>(), 20);
    }
}
