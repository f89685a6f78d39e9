//! Graph's rules for the tenant's `authenticationMethodsPolicy` (graph-api.md §4): the shape Graph
//! returns for a tenant that never changed it, what a PATCH may hold, how it merges, and the same
//! checks for a tenant file's `authenticationMethodsPolicy:`.
//!
//! It exists because mfactl manages three parts of this policy (`systemCredentialPreferences`,
//! `registrationEnforcement`, `reportSuspiciousActivitySettings`): the emulator must refuse what
//! Graph refuses, so that mfactl learns to check first, and merge what Graph merges, so that a
//! plan that writes one part is seen to leave the others alone. It knows nothing of HTTP beyond
//! [`GraphError`]; [`super::TenantState`] holds the policy and calls in here.
//!
//! What Microsoft documents, and this module follows (checked against the Graph reference,
//! `microsoft-graph-docs-contrib`, and the Entra docs, 2025):
//! - the properties and example values of `GET /policies/authenticationMethodsPolicy` (id,
//!   displayName, description, lastModifiedDateTime, policyVersion `1.5`, policyMigrationState,
//!   the three sub-objects, `authenticationMethodConfigurations`);
//! - `state` is an `advancedConfigState`: `default` (Microsoft managed), `enabled`, `disabled`
//!   (`unknownFutureValue` is the evolvable-enum sentinel, "don't use": refused);
//! - `snoozeDurationInDays` is 0 to 14; `enforceRegistrationAfterAllowedSnoozes` defaults to true;
//! - `targetType` is `user` or `group`; targets name a group or user object id, or `all_users`;
//! - `reportSuspiciousActivitySettings.includeTarget` is one target, not a collection;
//! - a campaign target's `targetedAuthenticationMethod` "can be `Fido2` or
//!   `microsoftAuthenticator`" (the resource page, v1.0 and beta; older pages and graph-api.md
//!   said `microsoftAuthenticator` only);
//! - system-preferred MFA takes one include group and one exclude group (Entra docs).
//!
//! What is not documented, and the emulator chose (each a strict choice, so that mfactl does not
//! come to rely on leniency Graph may not have):
//! - every refusal is 400 `badRequest`, and a refused PATCH changes nothing;
//! - `voiceReportingCode` is one digit, 0 to 9 (the digit pressed on the phone; 0 by default);
//! - target ids must be `all_users` or a GUID (whether the group exists is not checked);
//! - a campaign target without `targetedAuthenticationMethod` gets `microsoftAuthenticator`;
//! - the read-only properties may be sent with their current value (an SDK round trip), not
//!   with another; `authenticationMethodConfigurations` is refused (each method's configuration
//!   has its own endpoint, which the emulator does not serve); properties the beta schema does
//!   not declare for a type (misspellings) are refused;
//! - `reconfirmationInDays` and `microsoftAuthenticatorPlatformSettings` are in the beta schema
//!   (msgraph-metadata `beta-Prod.csdl`, the contract test's fixture) without a documented
//!   meaning, range or default: they are kept as given, checked only for the schema's types
//!   (an `Int32` or null; an `enforceAppPIN` of include and exclude targets), and a tenant that
//!   never set them reads `null` and empty target lists;
//! - instance annotations (`@odata.type`, `…@odata.context`) are not stored; an `@odata.type`
//!   that names another type is refused;
//! - a sub-object sent replaces the properties it names (objects nest the same way, so a campaign
//!   sent inside `registrationEnforcement` keeps the campaign properties it leaves out); arrays,
//!   and the one `includeTarget`, are values and replace the old one whole.

use std::ops::RangeInclusive;

use serde_json::{Map, Value, json};

use super::error::GraphError;
use mfactl_core::text::printable_capped;

/// `@odata.context` of the policy.
pub const CONTEXT: &str = "https://graph.microsoft.com/beta/$metadata#authenticationMethodsPolicy";

/// `authenticationMethodConfigurations@odata.context`, as Graph annotates the expanded collection.
const CONFIGURATIONS_CONTEXT: &str = "https://graph.microsoft.com/beta/$metadata#policies/authenticationMethodsPolicy/authenticationMethodConfigurations";

/// `lastModifiedDateTime` of a policy nobody changed: fixed, so that two emulators over the same
/// tenant file answer alike (Graph's value is when the tenant's policy was created).
const NEVER_MODIFIED: &str = "2024-04-26T12:44:42.0858664Z";

/// Values of an `advancedConfigState` a PATCH may send.
const STATES: &[&str] = &["default", "enabled", "disabled"];
/// `authenticationMethodTargetType` values.
const TARGET_TYPES: &[&str] = &["group", "user"];
/// `authenticationMethodsPolicyMigrationState` values.
const MIGRATION_STATES: &[&str] = &["preMigration", "migrationInProgress", "migrationComplete"];
/// `targetedAuthenticationMethod` values, in the documented spelling.
const CAMPAIGN_METHODS: &[&str] = &["microsoftAuthenticator", "Fido2"];
/// The target id that means every user.
const ALL_USERS: &str = "all_users";
const SNOOZE_DAYS: RangeInclusive<i64> = 0..=14;
const VOICE_CODES: RangeInclusive<i64> = 0..=9;
/// Read-only properties of the policy.
const READ_ONLY: &[&str] = &[
    "id",
    "displayName",
    "description",
    "lastModifiedDateTime",
    "policyVersion",
];
/// How much of a sent value or key a message repeats.
const ECHO: usize = 80;

/// The policy Graph returns for a tenant that never changed it.
///
/// The three sub-objects mfactl manages hold Graph's defaults: `state: default` (Microsoft
/// managed), every user included, nobody excluded, a snooze of one day, registration enforced
/// after the allowed snoozes, voice reporting code 0, Authenticator as the campaign's method.
/// `authenticationMethodConfigurations` follows the example in Graph's reference (each method
/// with its documented properties), with the example tenant's group ids replaced by `all_users`.
pub fn default_policy() -> Value {
    let all_users =
        || json!([{ "targetType": "group", "id": ALL_USERS, "isRegistrationRequired": false }]);
    let feature = |state: &str| {
        json!({
            "state": state,
            "includeTarget": { "targetType": "group", "id": ALL_USERS },
            "excludeTarget": { "targetType": "group", "id": "00000000-0000-0000-0000-000000000000" },
        })
    };
    json!({
        "id": "authenticationMethodsPolicy",
        "displayName": "Authentication Methods Policy",
        "description": "The tenant-wide policy that controls which authentication methods are allowed in the tenant, authentication method registration requirements, and self-service password reset settings",
        "lastModifiedDateTime": NEVER_MODIFIED,
        "policyVersion": "1.5",
        "policyMigrationState": "preMigration",
        "registrationEnforcement": {
            "authenticationMethodsRegistrationCampaign": {
                "snoozeDurationInDays": 1,
                "enforceRegistrationAfterAllowedSnoozes": true,
                "state": "default",
                "excludeTargets": [],
                "includeTargets": [{
                    "id": ALL_USERS,
                    "targetType": "group",
                    "targetedAuthenticationMethod": "microsoftAuthenticator",
                }],
            },
        },
        "systemCredentialPreferences": {
            "state": "default",
            "excludeTargets": [],
            "includeTargets": [{ "id": ALL_USERS, "targetType": "group" }],
        },
        "reportSuspiciousActivitySettings": {
            "state": "default",
            "voiceReportingCode": 0,
            "includeTarget": { "id": ALL_USERS, "targetType": "group" },
        },
        // Undocumented defaults (see the module's notes): nullable, and non-nullable lists.
        "reconfirmationInDays": null,
        "microsoftAuthenticatorPlatformSettings": {
            "enforceAppPIN": { "includeTargets": [], "excludeTargets": [] },
        },
        "authenticationMethodConfigurations": [
            {
                "@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
                "id": "Fido2",
                "state": "disabled",
                "isSelfServiceRegistrationAllowed": true,
                "isAttestationEnforced": true,
                "excludeTargets": [],
                "keyRestrictions": { "isEnforced": false, "enforcementType": "block", "aaGuids": [] },
                "includeTargets": all_users(),
            },
            {
                "@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethodConfiguration",
                "id": "MicrosoftAuthenticator",
                "state": "enabled",
                "isSoftwareOathEnabled": false,
                "excludeTargets": [],
                "featureSettings": {
                    "companionAppAllowedState": feature("default"),
                    "numberMatchingRequiredState": feature("enabled"),
                    "displayAppInformationRequiredState": feature("default"),
                    "displayLocationInformationRequiredState": feature("default"),
                },
                "includeTargets": [{
                    "targetType": "group",
                    "id": ALL_USERS,
                    "isRegistrationRequired": false,
                    "authenticationMode": "any",
                }],
            },
            {
                "@odata.type": "#microsoft.graph.smsAuthenticationMethodConfiguration",
                "id": "Sms",
                "state": "disabled",
                "excludeTargets": [],
                "includeTargets": [{
                    "targetType": "group",
                    "id": ALL_USERS,
                    "isRegistrationRequired": false,
                    "isUsableForSignIn": false,
                }],
            },
            {
                "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
                "id": "TemporaryAccessPass",
                "state": "disabled",
                "defaultLifetimeInMinutes": 60,
                "defaultLength": 8,
                "minimumLifetimeInMinutes": 60,
                "maximumLifetimeInMinutes": 480,
                "isUsableOnce": false,
                "excludeTargets": [],
                "includeTargets": all_users(),
            },
            {
                "@odata.type": "#microsoft.graph.hardwareOathAuthenticationMethodConfiguration",
                "id": "HardwareOath",
                "state": "disabled",
                "excludeTargets": [],
                "includeTargets": all_users(),
            },
            {
                "@odata.type": "#microsoft.graph.softwareOathAuthenticationMethodConfiguration",
                "id": "SoftwareOath",
                "state": "disabled",
                "excludeTargets": [],
                "includeTargets": all_users(),
            },
            {
                "@odata.type": "#microsoft.graph.voiceAuthenticationMethodConfiguration",
                "id": "Voice",
                "state": "disabled",
                "isOfficePhoneAllowed": false,
                "excludeTargets": [],
                "includeTargets": all_users(),
            },
            {
                "@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration",
                "id": "Email",
                "state": "disabled",
                "allowExternalIdToUseEmailOtp": "default",
                "excludeTargets": [],
                "includeTargets": all_users(),
            },
            {
                "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
                "id": "X509Certificate",
                "state": "disabled",
                "excludeTargets": [],
                "certificateUserBindings": [
                    { "x509CertificateField": "PrincipalName", "userProperty": "userPrincipalName", "priority": 1, "trustAffinityLevel": "low" },
                    { "x509CertificateField": "RFC822Name", "userProperty": "userPrincipalName", "priority": 2, "trustAffinityLevel": "low" },
                ],
                "authenticationModeConfiguration": {
                    "x509CertificateAuthenticationDefaultMode": "x509CertificateSingleFactor",
                    "x509CertificateDefaultRequiredAffinityLevel": "low",
                    "rules": [],
                },
                "includeTargets": all_users(),
            },
        ],
    })
}

/// The policy as Graph returns it for what a tenant holds: the default shape with the stored
/// policy laid over it (objects property by property, anything else replacing), so that a
/// tenant file may give only the parts it cares about. `None` is the default policy.
pub fn effective(stored: Option<&Value>) -> Value {
    let mut policy = default_policy();
    if let Some(stored) = stored {
        overlay(&mut policy, stored);
    }
    policy
}

/// The body of `GET /policies/authenticationMethodsPolicy`: the policy with Graph's annotations.
pub fn answer(mut policy: Value) -> Value {
    if let Value::Object(object) = &mut policy {
        object.insert("@odata.context".to_owned(), json!(CONTEXT));
        if object.contains_key("authenticationMethodConfigurations") {
            object.insert(
                "authenticationMethodConfigurations@odata.context".to_owned(),
                json!(CONFIGURATIONS_CONTEXT),
            );
        }
    }
    policy
}

/// `PATCH`: checks `body` against `current` (the effective policy) and returns the policy after
/// it, with `lastModifiedDateTime` moved to `now` (or just after the previous value, should the
/// clock not have moved). The first problem found is the 400; `current` is never touched.
pub fn patch(current: &Value, body: &Value, now: jiff::Timestamp) -> Result<Value, GraphError> {
    let Value::Object(body) = body else {
        return Err(GraphError::bad_request(
            "The request body must be a JSON object.",
        ));
    };
    let mut problems = Vec::new();
    Checker {
        mode: Mode::Patch { current },
        problems: &mut problems,
    }
    .policy(body);
    if let Some(first) = problems.into_iter().next() {
        return Err(GraphError::bad_request(first));
    }
    let mut policy = current.clone();
    merge(&mut policy, body, "");
    let previous = current
        .get("lastModifiedDateTime")
        .and_then(Value::as_str)
        .and_then(|text| text.parse::<jiff::Timestamp>().ok());
    if let Value::Object(object) = &mut policy {
        object.insert(
            "lastModifiedDateTime".to_owned(),
            json!(graph_timestamp(later_than(now, previous))),
        );
    }
    Ok(policy)
}

/// Every problem in a tenant file's `authenticationMethodsPolicy:`, each naming the property
/// (`registrationEnforcement.authenticationMethodsRegistrationCampaign.snoozeDurationInDays`).
/// The file may leave anything out; what it gives must be what Graph could return.
pub fn file_problems(value: &Value) -> Vec<String> {
    let Value::Object(object) = value else {
        return vec![format!(
            "must be a mapping (the policy object as Graph returns it), not {}",
            kind(value)
        )];
    };
    let mut problems = Vec::new();
    Checker {
        mode: Mode::File,
        problems: &mut problems,
    }
    .policy(object);
    problems
}

/// `at` to the 100 ns Graph writes, or, when that is not past `previous`, the smallest step
/// after it: every change moves `lastModifiedDateTime`, even as Graph writes it.
fn later_than(at: jiff::Timestamp, previous: Option<jiff::Timestamp>) -> jiff::Timestamp {
    let at =
        jiff::Timestamp::from_nanosecond(at.as_nanosecond().div_euclid(100) * 100).unwrap_or(at);
    match previous {
        Some(previous) if at <= previous => previous
            .checked_add(jiff::SignedDuration::from_nanos(100))
            .unwrap_or(previous),
        _ => at,
    }
}

/// Graph's `DateTimeOffset` as it writes this property: UTC, seven fractional digits, `Z`
/// (for the times a PATCH writes, which are after 1970: `subsec_nanosecond` is not negative).
fn graph_timestamp(at: jiff::Timestamp) -> String {
    let whole = at.strftime("%Y-%m-%dT%H:%M:%S");
    let ticks = at.subsec_nanosecond().unsigned_abs() / 100;
    format!("{whole}.{ticks:07}Z")
}

/// `base` with `top` laid over it: objects property by property, anything else replacing.
fn overlay(base: &mut Value, top: &Value) {
    match (base, top) {
        (Value::Object(base), Value::Object(top)) => {
            for (key, value) in top {
                match base.get_mut(key) {
                    Some(existing) => overlay(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, top) => *base = top.clone(),
    }
}

/// The campaign, whose `includeTargets` get a default method.
const CAMPAIGN_PATH: &str = "registrationEnforcement.authenticationMethodsRegistrationCampaign";

/// Applies a checked PATCH body at `path` (empty for the policy itself): the sub-objects sent
/// replace the properties they name, nested objects alike; arrays and targets are values and
/// replace the old one whole; annotations are not stored; a campaign target without a method
/// gets Authenticator's.
fn merge(target: &mut Value, body: &Map<String, Value>, path: &str) {
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in body {
        if is_annotation(key) || (path.is_empty() && READ_ONLY.contains(&key.as_str())) {
            continue;
        }
        let at = join(path, key);
        match (target.get_mut(key), value) {
            (Some(existing @ Value::Object(_)), Value::Object(incoming))
                if key != "includeTarget" =>
            {
                merge(existing, incoming, &at);
            }
            _ => {
                let mut value = strip_annotations(value);
                if path == CAMPAIGN_PATH && key == "includeTargets" {
                    with_default_method(&mut value);
                }
                target.insert(key.clone(), value);
            }
        }
    }
}

/// Campaign targets without `targetedAuthenticationMethod` get `microsoftAuthenticator`.
fn with_default_method(targets: &mut Value) {
    if let Value::Array(targets) = targets {
        for target in targets {
            if let Value::Object(fields) = target {
                fields
                    .entry("targetedAuthenticationMethod")
                    .or_insert_with(|| json!(CAMPAIGN_METHODS[0]));
            }
        }
    }
}

/// `value` without instance annotations, at any depth.
fn strip_annotations(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(key, _)| !is_annotation(key))
                .map(|(key, value)| (key.clone(), strip_annotations(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_annotations).collect()),
        other => other.clone(),
    }
}

/// An OData instance annotation: `@odata.type`, `includeTargets@odata.context`, ...
fn is_annotation(key: &str) -> bool {
    key.contains('@')
}

/// What a JSON value is, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A sent value as a message repeats it: JSON, escaped, at most [`ECHO`] characters.
fn echo(value: &Value) -> String {
    printable_capped(&value.to_string(), ECHO)
}

/// A sent property name as a message repeats it.
fn echo_key(key: &str) -> String {
    printable_capped(key, ECHO)
}

/// Whether the checks are of a PATCH body (against the current policy) or of a tenant file.
#[derive(Clone, Copy)]
enum Mode<'a> {
    Patch { current: &'a Value },
    File,
}

/// The three kinds of target the policy holds, each its own Graph type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `includeTarget`: `id`, `targetType`.
    Include,
    /// `excludeTarget`: `id`, `targetType`.
    Exclude,
    /// `authenticationMethodsRegistrationCampaignIncludeTarget`: also `targetedAuthenticationMethod`.
    CampaignInclude,
}

impl Target {
    fn type_name(self) -> &'static str {
        match self {
            Target::Include => "includeTarget",
            Target::Exclude => "excludeTarget",
            Target::CampaignInclude => "authenticationMethodsRegistrationCampaignIncludeTarget",
        }
    }
}

/// Walks a policy (or a PATCH of one) and collects every problem, each naming its property.
struct Checker<'a, 'p> {
    mode: Mode<'a>,
    problems: &'p mut Vec<String>,
}

impl Checker<'_, '_> {
    fn problem(&mut self, message: String) {
        self.problems.push(message);
    }

    fn unknown(&mut self, path: &str, key: &str, type_name: &str) {
        let at = join(path, &echo_key(key));
        self.problem(format!(
            "Invalid property '{at}': the type 'microsoft.graph.{type_name}' has no such property."
        ));
    }

    fn policy(&mut self, body: &Map<String, Value>) {
        for (key, value) in body {
            match key.as_str() {
                "@odata.type" => self.odata_type(value, "", "authenticationMethodsPolicy"),
                k if is_annotation(k) => {}
                k if READ_ONLY.contains(&k) => self.read_only(k, value),
                "policyMigrationState" => self.one_of(value, key, MIGRATION_STATES),
                "registrationEnforcement" => self.registration_enforcement(value),
                "systemCredentialPreferences" => self.system_credential_preferences(value),
                "reportSuspiciousActivitySettings" => self.report_suspicious_activity(value),
                "reconfirmationInDays" => self.int32_or_null(value, key),
                "microsoftAuthenticatorPlatformSettings" => self.platform_settings(value),
                "authenticationMethodConfigurations" => self.configurations(value),
                _ => self.unknown("", key, "authenticationMethodsPolicy"),
            }
        }
    }

    /// A read-only property: in a PATCH only with its current value; in a file, a string (and
    /// `lastModifiedDateTime` a timestamp).
    fn read_only(&mut self, key: &str, value: &Value) {
        match self.mode {
            Mode::Patch { current } => {
                if current.get(key) != Some(value) {
                    self.problem(format!(
                        "Property '{key}' is read-only and cannot be changed (sent {}).",
                        echo(value)
                    ));
                }
            }
            Mode::File => match value.as_str() {
                None => self.problem(format!("'{key}' must be a string, not {}", kind(value))),
                Some(text)
                    if key == "lastModifiedDateTime"
                        && text.parse::<jiff::Timestamp>().is_err() =>
                {
                    self.problem(format!(
                        "'{key}' must be a date and time such as {NEVER_MODIFIED}, not {}",
                        echo(value)
                    ));
                }
                Some(_) => {}
            },
        }
    }

    fn configurations(&mut self, value: &Value) {
        match self.mode {
            Mode::Patch { .. } => self.problem(
                "Property 'authenticationMethodConfigurations' cannot be changed on the policy; \
                 each method's configuration is changed at \
                 /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{id}."
                    .to_owned(),
            ),
            Mode::File => match value {
                Value::Array(items) => {
                    for (index, item) in items.iter().enumerate() {
                        if !item.is_object() {
                            self.problem(format!(
                                "'authenticationMethodConfigurations[{index}]' must be an object, not {}",
                                kind(item)
                            ));
                        }
                    }
                }
                other => self.problem(format!(
                    "'authenticationMethodConfigurations' must be a list, not {}",
                    kind(other)
                )),
            },
        }
    }

    fn registration_enforcement(&mut self, value: &Value) {
        let path = "registrationEnforcement";
        let Some(object) = self.object(value, path, "registrationEnforcement") else {
            return;
        };
        for (key, value) in object {
            match key.as_str() {
                k if is_annotation(k) => {}
                "authenticationMethodsRegistrationCampaign" => self.campaign(value),
                _ => self.unknown(path, key, "registrationEnforcement"),
            }
        }
    }

    fn campaign(&mut self, value: &Value) {
        let path = "registrationEnforcement.authenticationMethodsRegistrationCampaign";
        let type_name = "authenticationMethodsRegistrationCampaign";
        let Some(object) = self.object(value, path, type_name) else {
            return;
        };
        for (key, value) in object {
            let at = join(path, key);
            match key.as_str() {
                k if is_annotation(k) => {}
                "state" => self.one_of(value, &at, STATES),
                "snoozeDurationInDays" => self.integer_in(value, &at, SNOOZE_DAYS),
                "enforceRegistrationAfterAllowedSnoozes" => self.boolean(value, &at),
                "includeTargets" => self.targets(value, &at, Target::CampaignInclude, None),
                "excludeTargets" => self.targets(value, &at, Target::Exclude, None),
                _ => self.unknown(path, key, type_name),
            }
        }
    }

    fn system_credential_preferences(&mut self, value: &Value) {
        let path = "systemCredentialPreferences";
        let Some(object) = self.object(value, path, path) else {
            return;
        };
        for (key, value) in object {
            let at = join(path, key);
            match key.as_str() {
                k if is_annotation(k) => {}
                "state" => self.one_of(value, &at, STATES),
                // Entra takes one include group and one exclude group for system-preferred MFA.
                "includeTargets" => self.targets(value, &at, Target::Include, Some(1)),
                "excludeTargets" => self.targets(value, &at, Target::Exclude, Some(1)),
                _ => self.unknown(path, key, path),
            }
        }
    }

    fn report_suspicious_activity(&mut self, value: &Value) {
        let path = "reportSuspiciousActivitySettings";
        let Some(object) = self.object(value, path, path) else {
            return;
        };
        for (key, value) in object {
            let at = join(path, key);
            match key.as_str() {
                k if is_annotation(k) => {}
                "state" => self.one_of(value, &at, STATES),
                "voiceReportingCode" => self.integer_in(value, &at, VOICE_CODES),
                "includeTarget" => match value {
                    Value::Array(_) => self.problem(format!(
                        "Invalid value for property '{at}': one target object is expected, not a \
                         list (reportSuspiciousActivitySettings takes a single includeTarget)."
                    )),
                    _ => self.target(value, &at, Target::Include),
                },
                _ => self.unknown(path, key, path),
            }
        }
    }

    /// `microsoftAuthenticatorPlatformSettings`: its one property, `enforceAppPIN`, holds lists
    /// of include and exclude targets (both required by the schema, so neither may be null).
    fn platform_settings(&mut self, value: &Value) {
        let path = "microsoftAuthenticatorPlatformSettings";
        let Some(object) = self.object(value, path, path) else {
            return;
        };
        for (key, value) in object {
            match key.as_str() {
                k if is_annotation(k) => {}
                "enforceAppPIN" => self.enforce_app_pin(value, &join(path, key)),
                _ => self.unknown(path, key, path),
            }
        }
    }

    fn enforce_app_pin(&mut self, value: &Value, path: &str) {
        let Some(object) = self.object(value, path, "enforceAppPIN") else {
            return;
        };
        for (key, value) in object {
            let at = join(path, key);
            match key.as_str() {
                k if is_annotation(k) => {}
                "includeTargets" => self.targets(value, &at, Target::Include, None),
                "excludeTargets" => self.targets(value, &at, Target::Exclude, None),
                _ => self.unknown(path, key, "enforceAppPIN"),
            }
        }
    }

    /// An `Edm.Int32` property the schema lets be null.
    fn int32_or_null(&mut self, value: &Value, path: &str) {
        let fits = value.as_i64().is_some_and(|n| i32::try_from(n).is_ok());
        if !(value.is_null() || fits) {
            self.problem(format!(
                "Invalid value {} for property '{path}': a whole number (Int32) or null is \
                 expected.",
                echo(value)
            ));
        }
    }

    /// A list of targets of one kind, at most `max` of them.
    fn targets(&mut self, value: &Value, path: &str, kind_of: Target, max: Option<usize>) {
        let Value::Array(items) = value else {
            self.problem(format!(
                "Invalid value for property '{path}': a list of {} objects is expected, not {}.",
                kind_of.type_name(),
                kind(value)
            ));
            return;
        };
        if let Some(max) = max
            && items.len() > max
        {
            self.problem(format!(
                "Invalid value for property '{path}': at most {max} target is allowed, got {}.",
                items.len()
            ));
        }
        for (index, item) in items.iter().enumerate() {
            self.target(item, &format!("{path}[{index}]"), kind_of);
        }
    }

    /// One target: `id` (`all_users` or a GUID) and `targetType` (`user` or `group`), and for a
    /// campaign target its `targetedAuthenticationMethod`; no other property.
    fn target(&mut self, value: &Value, path: &str, kind_of: Target) {
        let Some(object) = self.object(value, path, kind_of.type_name()) else {
            return;
        };
        for (key, value) in object {
            let at = join(path, key);
            match key.as_str() {
                k if is_annotation(k) => {}
                "id" => match value.as_str() {
                    Some(id) if id == ALL_USERS || uuid::Uuid::try_parse(id).is_ok() => {}
                    _ => self.problem(format!(
                        "Invalid value {} for property '{at}': a group or user object id (a GUID) \
                         or '{ALL_USERS}' is expected.",
                        echo(value)
                    )),
                },
                "targetType" => self.one_of(value, &at, TARGET_TYPES),
                "targetedAuthenticationMethod" if kind_of == Target::CampaignInclude => {
                    self.one_of(value, &at, CAMPAIGN_METHODS)
                }
                _ => self.unknown(path, key, kind_of.type_name()),
            }
        }
        for required in ["id", "targetType"] {
            if !object.contains_key(required) {
                self.problem(format!(
                    "Missing property '{}': a target needs 'id' and 'targetType'.",
                    join(path, required)
                ));
            }
        }
    }

    /// `value` as an object of Graph type `type_name`, or a problem.
    fn object<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        type_name: &str,
    ) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(object) => {
                if let Some(given) = object.get("@odata.type") {
                    self.odata_type(given, path, type_name);
                }
                Some(object)
            }
            other => {
                self.problem(format!(
                    "Invalid value for property '{path}': a microsoft.graph.{type_name} object is \
                     expected, not {}.",
                    kind(other)
                ));
                None
            }
        }
    }

    /// An `@odata.type` must name the type the property holds (`#` optional).
    fn odata_type(&mut self, given: &Value, path: &str, type_name: &str) {
        let expected = format!("microsoft.graph.{type_name}");
        let matches = given
            .as_str()
            .is_some_and(|text| text.strip_prefix('#').unwrap_or(text) == expected);
        if !matches {
            let at = if path.is_empty() { "the policy" } else { path };
            self.problem(format!(
                "Invalid @odata.type {} for '{at}': #{expected} is expected.",
                echo(given)
            ));
        }
    }

    /// A string among `allowed`, spelt exactly so (Graph's enums are case-sensitive).
    fn one_of(&mut self, value: &Value, path: &str, allowed: &[&str]) {
        if !value.as_str().is_some_and(|text| allowed.contains(&text)) {
            self.problem(format!(
                "Invalid value {} for property '{path}'. Expected one of: {}.",
                echo(value),
                allowed.join(", ")
            ));
        }
    }

    /// A whole number within `range`.
    fn integer_in(&mut self, value: &Value, path: &str, range: RangeInclusive<i64>) {
        if !value.as_i64().is_some_and(|n| range.contains(&n)) {
            self.problem(format!(
                "Invalid value {} for property '{path}': a whole number from {} to {} is expected.",
                echo(value),
                range.start(),
                range.end()
            ));
        }
    }

    fn boolean(&mut self, value: &Value, path: &str) {
        if !value.is_boolean() {
            self.problem(format!(
                "Invalid value {} for property '{path}': true or false is expected.",
                echo(value)
            ));
        }
    }
}

/// The schema of a tenant file's `authenticationMethodsPolicy:` (in `schemas/tenant.schema.json`):
/// what [`file_problems`] accepts, from the same constants. Graph's enums are case-sensitive
/// here, unlike the manifest's; instance annotations (keys with `@`) may hold anything, but an
/// `@odata.type` must name the property's type; a YAML 1.1 boolean word (`yes`) is a boolean, as
/// the tenant reader takes it.
pub struct FilePolicy;

impl schemars::JsonSchema for FilePolicy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AuthenticationMethodsPolicy".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let target = |kind: Target| {
            let mut properties = json!({
                "id": { "type": "string", "pattern": format!(
                    "^(?:{ALL_USERS}|{})$", mfactl_core::json_schema::guid_forms()
                ) },
                "targetType": { "enum": TARGET_TYPES },
            });
            if kind == Target::CampaignInclude {
                properties["targetedAuthenticationMethod"] = json!({ "enum": CAMPAIGN_METHODS });
            }
            let mut schema = typed(kind.type_name(), properties);
            schema["required"] = json!(["id", "targetType"]);
            schema
        };
        let targets = |kind: Target, max: Option<usize>| {
            let mut schema = json!({ "type": "array", "items": target(kind) });
            if let Some(max) = max {
                schema["maxItems"] = json!(max);
            }
            schema
        };
        let state = json!({ "enum": STATES });
        let whole = |range: &RangeInclusive<i64>| json!({ "type": "integer", "minimum": range.start(), "maximum": range.end() });
        let boolean = json!({ "anyOf": [
            { "type": "boolean" },
            mfactl_core::json_schema::yaml11_boolean_text(),
        ] });
        let read_only = json!({ "type": "string" });
        let mut properties = json!({
            "policyMigrationState": { "enum": MIGRATION_STATES },
            "registrationEnforcement": typed("registrationEnforcement", json!({
                "authenticationMethodsRegistrationCampaign": typed(
                    "authenticationMethodsRegistrationCampaign",
                    json!({
                        "state": state,
                        "snoozeDurationInDays": whole(&SNOOZE_DAYS),
                        "enforceRegistrationAfterAllowedSnoozes": boolean,
                        "includeTargets": targets(Target::CampaignInclude, None),
                        "excludeTargets": targets(Target::Exclude, None),
                    }),
                ),
            })),
            "systemCredentialPreferences": typed("systemCredentialPreferences", json!({
                "state": state,
                "includeTargets": targets(Target::Include, Some(1)),
                "excludeTargets": targets(Target::Exclude, Some(1)),
            })),
            "reportSuspiciousActivitySettings": typed("reportSuspiciousActivitySettings", json!({
                "state": state,
                "voiceReportingCode": whole(&VOICE_CODES),
                "includeTarget": target(Target::Include),
            })),
            "reconfirmationInDays": {
                "type": ["integer", "null"], "minimum": i32::MIN, "maximum": i32::MAX,
            },
            "microsoftAuthenticatorPlatformSettings": typed(
                "microsoftAuthenticatorPlatformSettings",
                json!({
                    "enforceAppPIN": typed("enforceAppPIN", json!({
                        "includeTargets": targets(Target::Include, None),
                        "excludeTargets": targets(Target::Exclude, None),
                    })),
                }),
            ),
            "authenticationMethodConfigurations": { "type": "array", "items": { "type": "object" } },
        });
        for key in READ_ONLY {
            properties[*key] = read_only.clone();
        }
        let mut schema = typed("authenticationMethodsPolicy", properties);
        schema["description"] = json!(
            "/beta/policies/authenticationMethodsPolicy as Graph returns it; any part may be left out."
        );
        schemars::Schema::try_from(schema).expect("an object is a schema")
    }
}

/// An object of Graph type `type_name` with `properties` and nothing else but annotations.
fn typed(type_name: &str, mut properties: Value) -> Value {
    let expected = format!("microsoft.graph.{type_name}");
    properties["@odata.type"] = json!({ "enum": [format!("#{expected}"), expected] });
    json!({
        "type": "object",
        "properties": properties,
        "patternProperties": { "@": true },
        "additionalProperties": false,
    })
}

/// `path.key`, or `key` at the top.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn last_modified_is_written_as_graph_writes_it_and_always_moves() {
        assert_eq!(
            graph_timestamp(at("2026-01-02T03:04:05.123456789Z")),
            "2026-01-02T03:04:05.1234567Z"
        );
        assert_eq!(
            graph_timestamp(at("2026-01-02T03:04:05Z")),
            "2026-01-02T03:04:05.0000000Z"
        );
        let previous = at("2026-01-02T03:04:05.1234567Z");
        // A clock that has not moved, or moved by less than Graph shows, still moves it.
        for now in ["2026-01-02T03:04:05.12345675Z", "2020-01-01T00:00:00Z"] {
            let next = graph_timestamp(later_than(at(now), Some(previous)));
            assert_eq!(next, "2026-01-02T03:04:05.1234568Z", "{now}");
        }
        let later = at("2026-01-02T03:04:06Z");
        assert_eq!(later_than(later, Some(previous)), later);
    }

    #[test]
    fn the_default_policy_passes_its_own_checks() {
        assert_eq!(file_problems(&default_policy()), Vec::<String>::new());
        assert_eq!(effective(None), default_policy());
    }

    #[test]
    fn reconfirmation_and_platform_settings_are_kept_as_given_within_the_schema_types() {
        let group = "5d1b6c1e-0000-4000-8000-000000000002";
        let body = json!({
            "reconfirmationInDays": 90,
            "microsoftAuthenticatorPlatformSettings": {"enforceAppPIN": {
                "includeTargets": [{"id": group, "targetType": "group"}],
            }},
        });
        let changed = patch(&default_policy(), &body, jiff::Timestamp::now()).unwrap();
        assert_eq!(changed["reconfirmationInDays"], 90);
        let pin = &changed["microsoftAuthenticatorPlatformSettings"]["enforceAppPIN"];
        assert_eq!(pin["includeTargets"][0]["id"], group);
        assert_eq!(pin["excludeTargets"], json!([]), "what was not sent stays");
        assert_eq!(file_problems(&changed), Vec::<String>::new());
        let back = patch(
            &changed,
            &json!({"reconfirmationInDays": null}),
            jiff::Timestamp::now(),
        );
        assert_eq!(back.unwrap()["reconfirmationInDays"], Value::Null);

        for (bad, property) in [
            (
                json!({"reconfirmationInDays": "90"}),
                "'reconfirmationInDays'",
            ),
            (
                json!({"reconfirmationInDays": 2_147_483_648_i64}),
                "'reconfirmationInDays'",
            ),
            (
                json!({"microsoftAuthenticatorPlatformSettings": {"enforceAppPin": {}}}),
                "microsoftAuthenticatorPlatformSettings.enforceAppPin",
            ),
            (
                json!({"microsoftAuthenticatorPlatformSettings": {"enforceAppPIN":
                    {"excludeTargets": [{"id": "nobody", "targetType": "group"}]}}}),
                "enforceAppPIN.excludeTargets[0].id",
            ),
        ] {
            let err = patch(&default_policy(), &bad, jiff::Timestamp::now()).unwrap_err();
            assert!(err.message.contains(property), "{bad}: {err}");
        }
    }

    #[test]
    fn messages_escape_and_cap_what_was_sent() {
        let hostile = format!("\u{1b}[2J{}\u{202e}", "x".repeat(500));
        let body = json!({ hostile.clone(): 1, "systemCredentialPreferences": {"state": hostile} });
        let err = patch(&default_policy(), &body, jiff::Timestamp::now()).unwrap_err();
        assert!(
            !err.message.contains('\u{1b}') && !err.message.contains('\u{202e}'),
            "{err}"
        );
        assert!(err.message.len() < 300, "{err}");
    }
}
