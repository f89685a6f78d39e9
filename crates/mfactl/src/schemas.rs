//! JSON Schemas for the files people write and read with mfactl: the manifest, the plan
//! document, `mfactl show`'s document, the tenants file of a multi-tenant run and its roll-up
//! (`DIR/summary.json`) (the emulator's tenant file has its own, from the emulator's reader:
//! `mfactl_emulator::tenant_file_schema`). Generated from Rust types (schemars) so they
//! cannot drift; the committed copies under `schemas/` are checked against these by a test, and
//! `tests/it/schemas.rs` checks that they agree with the readers and the binary's output.
//!
//! A schema must never flag what mfactl accepts (an editor would underline a file that works),
//! and should refuse what mfactl refuses. The manifest's types below exist only for its schema:
//! the reader (`manifest::yaml`) is hand-written to report every problem with its place, so
//! these types state its rules: enum values in any case with whitespace around them (the whole
//! document goes through [`case_insensitive_enums`]), users as `check_user` accepts them, no
//! null where the reader refuses one. The plan's and `show`'s come from the types the binary
//! serialises.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, schema_for};

use crate::json_schema::{NonBlank, UserName, case_insensitive_enums};
use crate::model::{Field, PerUserMfaState, PreferredMethod};

/// The manifest as written (design.md): `version`, optional `defaults`, `users` (optional when
/// a `policy` section or a selector is given), optional `policy`, guards and selectors.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "mfactl manifest",
    description = "Desired MFA settings per user (mfactl).",
    extend("anyOf" = [
        { "required": ["users"] },
        { "required": ["policy"] },
        { "required": ["allUsers"] },
        { "required": ["groups"], "properties": { "groups": { "minItems": 1 } } },
    ])
)]
pub struct ManifestDocument {
    /// Always 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Values for every user entry that does not set the field (`defaults:` with nothing under
    /// it sets nothing).
    #[serde(default)]
    pub defaults: Option<ManifestFields>,
    /// One entry per user; may be left out when the manifest manages the policy alone, or
    /// names users through `allUsers` or `groups` (`users:` with nothing under it: none).
    #[serde(default)]
    pub users: Option<Vec<ManifestUser>>,
    /// The tenant's authenticationMethodsPolicy: only the sub-objects and properties named are
    /// managed; property names are Graph's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ManifestPolicy")]
    pub policy: Option<ManifestPolicy>,
    /// Accounts never written, whatever a user entry or `defaults` asks (break-glass admins):
    /// userPrincipalNames (matched case-insensitively) or object ids (GUIDs). An entry and a
    /// protected account naming the same user the other way still match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<UserName>", extend("uniqueItems" = true))]
    pub protect: Option<Vec<String>>,
    /// The most writes (users' PATCHes and the policy write) an apply of this manifest may
    /// make; a bigger plan is refused before anything is written. `apply --max-changes` can
    /// lower it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "maxChanges"
    )]
    #[schemars(with = "u64", range(max = 9_223_372_036_854_775_807_u64))]
    pub max_changes: Option<u64>,
    /// `true` lets apply disable per-user MFA even for users no Conditional Access policy (nor
    /// security defaults) requires MFA for; left out, such changes are held.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "allowMfaGap"
    )]
    #[schemars(with = "bool")]
    pub allow_mfa_gap: Option<bool>,
    /// Every user of the tenant (of a kind), resolved at plan time and pinned by object id.
    /// A group entry beats it field by field, and a `users:` entry beats both.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "allUsers")]
    #[schemars(with = "ManifestAllUsers")]
    pub all_users: Option<ManifestAllUsers>,
    /// The transitive members of groups, each entry with the fields to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<ManifestGroup>")]
    pub groups: Option<Vec<ManifestGroup>>,
    /// Users and groups' members taken out of `allUsers` and `groups` (a `users:` entry still
    /// applies to them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<ManifestExclusion>")]
    pub exclude: Option<Vec<ManifestExclusion>>,
}

/// `allUsers:`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = sets_a_field)]
pub struct ManifestAllUsers {
    /// `member` (the default), `guest` or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "SelectorUserType")]
    pub user_type: Option<SelectorUserType>,
    /// Only enabled (`true`) or disabled (`false`) accounts; both when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub account_enabled: Option<bool>,
    #[serde(flatten)]
    pub fields: ManifestFields,
}

/// Which users `allUsers:` reaches.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SelectorUserType {
    Member,
    Guest,
    All,
}

/// One `groups:` entry.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = sets_a_field)]
pub struct ManifestGroup {
    /// Display name (exactly one group must carry it) or object id.
    #[schemars(with = "NonBlank")]
    pub group: String,
    /// When two groups give one user different values: the lower number wins, and any number
    /// beats none; without it that is an error naming the user and both groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u32", range(max = 4_294_967_295_u32))]
    pub priority: Option<u32>,
    #[serde(flatten)]
    pub fields: ManifestFields,
}

/// One `exclude:` entry: a user or a group.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum ManifestExclusion {
    /// userPrincipalName or object id.
    User(#[schemars(with = "UserName")] String),
    /// Display name or object id: its transitive members.
    Group(#[schemars(with = "NonBlank")] String),
}

/// The managed parts of `/beta/policies/authenticationMethodsPolicy` (graph-api.md §4).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManifestPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "SystemCredentialPreferencesPart")]
    pub system_credential_preferences: Option<SystemCredentialPreferencesPart>,
    /// `registrationEnforcement.authenticationMethodsRegistrationCampaign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "RegistrationCampaignPart")]
    pub registration_campaign: Option<RegistrationCampaignPart>,
    /// `reportSuspiciousActivitySettings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ReportSuspiciousActivityPart")]
    pub report_suspicious_activity: Option<ReportSuspiciousActivityPart>,
}

/// System-preferred MFA. Entra takes one include group and one exclude group.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SystemCredentialPreferencesPart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "PolicyState")]
    pub state: Option<PolicyState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<PolicyTargetDoc>", length(max = 1))]
    pub include_targets: Option<Vec<PolicyTargetDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<PolicyTargetDoc>", length(max = 1))]
    pub exclude_targets: Option<Vec<PolicyTargetDoc>>,
}

/// The registration campaign (nudge).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistrationCampaignPart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "PolicyState")]
    pub state: Option<PolicyState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u8", range(min = 0, max = 14))]
    pub snooze_duration_in_days: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub enforce_registration_after_allowed_snoozes: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<CampaignTargetDoc>")]
    pub include_targets: Option<Vec<CampaignTargetDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<PolicyTargetDoc>")]
    pub exclude_targets: Option<Vec<PolicyTargetDoc>>,
}

/// Report suspicious activity.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReportSuspiciousActivityPart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "PolicyState")]
    pub state: Option<PolicyState>,
    /// One target, not a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "PolicyTargetDoc")]
    pub include_target: Option<PolicyTargetDoc>,
    /// The digit pressed on the phone to report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u8", range(min = 0, max = 9))]
    pub voice_reporting_code: Option<u8>,
}

/// `advancedConfigState`; `default` is Microsoft managed.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyState {
    Default,
    Enabled,
    Disabled,
}

/// An include or exclude target.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = user_target_needs_an_id)]
pub struct PolicyTargetDoc {
    /// A group's object id, its display name (resolved at plan time), or `all_users`; a user
    /// target takes the user's object id.
    #[schemars(with = "NonBlank")]
    pub id: String,
    pub target_type: PolicyTargetType,
}

/// A registration campaign's include target.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = user_target_needs_an_id)]
pub struct CampaignTargetDoc {
    /// A group's object id, its display name (resolved at plan time), or `all_users`; a user
    /// target takes the user's object id.
    #[schemars(with = "NonBlank")]
    pub id: String,
    pub target_type: PolicyTargetType,
    /// `microsoftAuthenticator` when left out, as Graph defaults it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "CampaignMethod")]
    pub targeted_authentication_method: Option<CampaignMethod>,
}

/// `authenticationMethodTargetType`.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyTargetType {
    Group,
    User,
}

/// A campaign's targeted method (Graph reference: `microsoftAuthenticator` or `Fido2`).
#[derive(JsonSchema)]
pub enum CampaignMethod {
    #[serde(rename = "microsoftAuthenticator")]
    MicrosoftAuthenticator,
    Fido2,
}

/// The managed fields; a field left out is not managed (never touched), and none may be null.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManifestFields {
    /// userPreferredMethodForSecondaryAuthentication (matched case-insensitively): one
    /// method, or a list of them in the order to try (`[push, oath, sms]`): the first the user
    /// has registered is set, and a user with none of them is blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "PreferredMethodChoice")]
    pub preferred_method: Option<PreferredMethodChoice>,
    /// isSystemPreferredAuthenticationMethodEnabled: `true` or `false` (also as text, in any
    /// case, as a CSV cell holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "TextBool")]
    pub system_preferred: Option<bool>,
    /// perUserMfaState (matched case-insensitively); `enabled` is met by `enforced`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "PerUserMfaState")]
    pub per_user_mfa_state: Option<PerUserMfaState>,
}

/// `preferredMethod`: one method, or an ordered fallback list.
#[derive(JsonSchema)]
#[serde(untagged)]
pub enum PreferredMethodChoice {
    /// The method to set.
    One(PreferredMethod),
    /// The methods to try, in order: the first the user has registered wins.
    List(MethodList),
}

/// An ordered list of preferred methods, each at most once.
#[derive(JsonSchema)]
#[schemars(extend("uniqueItems" = true))]
pub struct MethodList(#[schemars(length(min = 1, max = 6))] pub Vec<PreferredMethod>);

/// One user entry.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManifestUser {
    /// userPrincipalName or object id (GUID).
    #[schemars(with = "UserName")]
    pub user: String,
    #[serde(flatten)]
    pub fields: ManifestFields,
}

crate::json_schema::fixed_schemas! {
    /// `systemPreferred`: a boolean, or `true`/`false` written as text in any case (the
    /// manifest's `parse_bool`, shared with CSV cells).
    pub struct TextBool => serde_json::json!({
        "anyOf": [
            { "type": "boolean" },
            { "type": "string", "pattern": crate::json_schema::case_insensitive_pattern(["true", "false"]) },
        ]
    });
}

/// A selector must set a field: one that sets none would reach users and change nothing.
fn sets_a_field(schema: &mut Schema) {
    let choices: Vec<serde_json::Value> = Field::ALL
        .iter()
        .map(|field| serde_json::json!({ "required": [field.as_str()] }))
        .collect();
    schema.insert("anyOf".to_owned(), choices.into());
}

/// A user target names the user by object id (or `all_users`): only groups are found by
/// display name.
fn user_target_needs_an_id(schema: &mut Schema) {
    use crate::json_schema::{case_insensitive_pattern, word_or_guid_pattern};
    use crate::manifest::policy::ALL_USERS;
    schema.insert(
        "if".to_owned(),
        serde_json::json!({
            "properties": { "targetType": { "pattern": case_insensitive_pattern(["user"]) } },
            "required": ["targetType"],
        }),
    );
    schema.insert(
        "then".to_owned(),
        serde_json::json!({
            "properties": { "id": { "type": "string", "pattern": word_or_guid_pattern([ALL_USERS]) } }
        }),
    );
}

/// The tenants file of a multi-tenant run (`plan|apply MANIFEST --tenants TENANTS.yaml`), as
/// `manifest::tenants` reads it.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "mfactl tenants file",
    description = "The customer tenants one manifest is planned and applied in (mfactl plan|apply \
                   --tenants)."
)]
pub struct TenantsDocument {
    /// One entry per tenant; no tenant twice (case-insensitively).
    #[schemars(length(min = 1))]
    pub tenants: Vec<TenantEntry>,
}

/// One tenant of a multi-tenant run.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TenantEntry {
    /// The tenant id (a GUID) or a verified domain (e.g. contoso.onmicrosoft.com). It names the
    /// tenant's folder under --out-dir, in lower case.
    #[schemars(with = "TenantName")]
    pub tenant: String,
    /// Taken out of the manifest's `allUsers` and `groups` in this tenant only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<ManifestExclusion>")]
    pub exclude: Option<Vec<ManifestExclusion>>,
    /// Accounts never written in this tenant, on top of the manifest's `protect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<UserName>", extend("uniqueItems" = true))]
    pub protect: Option<Vec<String>>,
    /// The most writes an apply may make in this tenant (the smaller of this and the
    /// manifest's `maxChanges` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64", range(max = 9_223_372_036_854_775_807_u64))]
    pub max_changes: Option<u64>,
}

crate::json_schema::fixed_schemas! {
    /// A tenant as `manifest::tenants::check_tenant` accepts it (after trimming).
    pub struct TenantName => serde_json::json!({
        "description": "A tenant id (a GUID, 8-4-4-4-12 hex digits) or a domain name (labels of letters, digits and -, joined by dots).",
        "type": "string",
        "pattern": crate::json_schema::tenant_pattern(),
    });
}

/// The manifest's schema: [`ManifestDocument`] with every enum matched without regard to case.
fn manifest_schema() -> Schema {
    SchemaSettings::draft2020_12()
        .with_transform(case_insensitive_enums)
        .into_generator()
        .into_root_schema_for::<ManifestDocument>()
}

/// Every schema of this library's files, by file name under `schemas/`.
pub fn all() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("manifest.schema.json", manifest_schema().to_value()),
        (
            "plan.schema.json",
            schema_for!(crate::plan::Plan).to_value(),
        ),
        (
            "show.schema.json",
            schema_for!(crate::engine::show::ShowDocument).to_value(),
        ),
        (
            "tenants.schema.json",
            schema_for!(TenantsDocument).to_value(),
        ),
        (
            "summary.schema.json",
            schema_for!(crate::engine::tenants::Rollup).to_value(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::policy::PolicyPart;
    use crate::manifest::selectors::{ALL_USERS_KEYS, GROUP_KEYS};

    /// The tenants file's schema names exactly the keys its reader takes.
    #[test]
    fn the_tenants_schema_has_exactly_the_readers_keys() {
        let schema = schema_for!(TenantsDocument).to_value();
        assert_eq!(properties(&schema, None), ["tenants"]);
        assert_eq!(
            properties(&schema, Some("TenantEntry")),
            sorted(crate::manifest::tenants::ENTRY_KEYS)
        );
    }

    /// The property names of `$defs/NAME` (or of the root, for `None`).
    fn properties(schema: &serde_json::Value, name: Option<&str>) -> Vec<String> {
        let object = match name {
            Some(name) => &schema["$defs"][name],
            None => schema,
        };
        let mut names: Vec<String> = object["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name:?} has no properties"))
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn sorted<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut names: Vec<String> = names.into_iter().map(str::to_owned).collect();
        names.sort();
        names
    }

    /// A key the reader learns (another issue's `allowMfaGap:`) must reach the schema, or
    /// editors flag it: the schema's keys are the reader's, wherever the reader lists them.
    #[test]
    fn the_manifest_schema_has_exactly_the_readers_keys() {
        let schema = manifest_schema().to_value();
        let fields = || Field::ALL.iter().map(|f| f.as_str());
        assert_eq!(
            properties(&schema, None),
            sorted(crate::manifest::TOP_LEVEL_KEYS)
        );
        assert_eq!(
            properties(&schema, Some("ManifestFields")),
            sorted(fields())
        );
        assert_eq!(
            properties(&schema, Some("ManifestUser")),
            sorted(fields().chain(["user"]))
        );
        assert_eq!(
            properties(&schema, Some("ManifestAllUsers")),
            sorted(fields().chain(ALL_USERS_KEYS))
        );
        assert_eq!(
            properties(&schema, Some("ManifestGroup")),
            sorted(fields().chain(GROUP_KEYS))
        );
        assert_eq!(
            properties(&schema, Some("ManifestPolicy")),
            sorted(PolicyPart::ALL.iter().map(|p| p.as_str()))
        );
        for (part, name) in [
            (
                PolicyPart::SystemCredentialPreferences,
                "SystemCredentialPreferencesPart",
            ),
            (PolicyPart::RegistrationCampaign, "RegistrationCampaignPart"),
            (
                PolicyPart::ReportSuspiciousActivity,
                "ReportSuspiciousActivityPart",
            ),
        ] {
            assert_eq!(
                properties(&schema, Some(name)),
                sorted(part.properties().iter().copied()),
                "{part}"
            );
        }
    }

    /// The manifest reader matches every enum value without regard to case: no plain `enum`
    /// may be left in its schema, whoever adds one.
    #[test]
    fn every_enum_of_the_manifest_schema_takes_any_case() {
        fn plain_enums(value: &serde_json::Value, inside_any_of: bool, found: &mut usize) {
            match value {
                serde_json::Value::Object(object) => {
                    if object.contains_key("enum") && !inside_any_of {
                        *found += 1;
                    }
                    for (key, child) in object {
                        let branch = key == "anyOf"
                            && child.as_array().is_some_and(|branches| {
                                branches.iter().any(|b| b.get("pattern").is_some())
                            });
                        plain_enums(child, branch, found);
                    }
                }
                serde_json::Value::Array(items) => {
                    for item in items {
                        plain_enums(item, inside_any_of, found);
                    }
                }
                _ => {}
            }
        }
        let mut found = 0;
        plain_enums(&manifest_schema().to_value(), false, &mut found);
        assert_eq!(found, 0);
    }
}
