//! JSON Schemas for the files people write and read: the manifest, the emulator's tenant file,
//! the plan document and `mfactl show`'s document. Generated from the Rust types (schemars) so they cannot drift; the
//! committed copies under `schemas/` are checked against these by a test.

use schemars::{JsonSchema, schema_for};
use serde::Deserialize;

use crate::model::{PerUserMfaState, PreferredMethod};

/// The manifest as written (design.md): `version`, optional `defaults`, `users` (optional when
/// a `policy` section is given), optional `policy`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "mfactl manifest",
    description = "Desired MFA settings per user (mfactl)."
)]
pub struct ManifestDocument {
    /// Always 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Values for every user entry that does not set the field.
    #[serde(default)]
    pub defaults: Option<ManifestFields>,
    /// One entry per user; may be left out when the manifest manages the policy alone.
    #[serde(default)]
    pub users: Vec<ManifestUser>,
    /// The tenant's authenticationMethodsPolicy: only the sub-objects and properties named are
    /// managed; property names are Graph's.
    #[serde(default)]
    pub policy: Option<ManifestPolicy>,
    /// Accounts never written, whatever a user entry or `defaults` asks (break-glass admins):
    /// userPrincipalNames (matched case-insensitively) or object ids (GUIDs). An entry and a
    /// protected account naming the same user the other way still match.
    #[serde(default)]
    #[schemars(extend("uniqueItems" = true), inner(length(min = 1)))]
    pub protect: Vec<String>,
    /// The most writes (users' PATCHes and the policy write) an apply of this manifest may
    /// make; a bigger plan is refused before anything is written. `apply --max-changes` can
    /// lower it.
    #[serde(default, rename = "maxChanges")]
    pub max_changes: Option<u64>,
    /// Every user of the tenant (of a kind), resolved at plan time and pinned by object id.
    /// A group entry beats it field by field, and a `users:` entry beats both.
    #[serde(default, rename = "allUsers")]
    pub all_users: Option<ManifestAllUsers>,
    /// The transitive members of groups, each entry with the fields to set.
    #[serde(default)]
    pub groups: Vec<ManifestGroup>,
    /// Users and groups' members taken out of `allUsers` and `groups` (a `users:` entry still
    /// applies to them).
    #[serde(default)]
    pub exclude: Vec<ManifestExclusion>,
}

/// `allUsers:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManifestAllUsers {
    /// `member` (the default), `guest` or `all`.
    #[serde(default)]
    pub user_type: Option<SelectorUserType>,
    /// Only enabled (`true`) or disabled (`false`) accounts; both when left out.
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(flatten)]
    pub fields: ManifestFields,
}

/// Which users `allUsers:` reaches.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SelectorUserType {
    Member,
    Guest,
    All,
}

/// One `groups:` entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManifestGroup {
    /// Display name (exactly one group must carry it) or object id.
    #[schemars(length(min = 1))]
    pub group: String,
    /// When two groups give one user different values: the lower number wins, and any number
    /// beats none; without it that is an error naming the user and both groups.
    #[serde(default)]
    pub priority: Option<u32>,
    #[serde(flatten)]
    pub fields: ManifestFields,
}

/// One `exclude:` entry: a user or a group.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum ManifestExclusion {
    /// userPrincipalName or object id.
    User(String),
    /// Display name or object id: its transitive members.
    Group(String),
}

/// The managed parts of `/beta/policies/authenticationMethodsPolicy` (graph-api.md §4).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManifestPolicy {
    pub system_credential_preferences: Option<SystemCredentialPreferencesPart>,
    /// `registrationEnforcement.authenticationMethodsRegistrationCampaign`.
    pub registration_campaign: Option<RegistrationCampaignPart>,
    /// `reportSuspiciousActivitySettings`.
    pub report_suspicious_activity: Option<ReportSuspiciousActivityPart>,
}

/// System-preferred MFA. Entra takes one include group and one exclude group.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SystemCredentialPreferencesPart {
    pub state: Option<PolicyState>,
    #[schemars(length(max = 1))]
    pub include_targets: Option<Vec<PolicyTargetDoc>>,
    #[schemars(length(max = 1))]
    pub exclude_targets: Option<Vec<PolicyTargetDoc>>,
}

/// The registration campaign (nudge).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistrationCampaignPart {
    pub state: Option<PolicyState>,
    #[schemars(range(min = 0, max = 14))]
    pub snooze_duration_in_days: Option<u8>,
    pub enforce_registration_after_allowed_snoozes: Option<bool>,
    pub include_targets: Option<Vec<CampaignTargetDoc>>,
    pub exclude_targets: Option<Vec<PolicyTargetDoc>>,
}

/// Report suspicious activity.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReportSuspiciousActivityPart {
    pub state: Option<PolicyState>,
    /// One target, not a list.
    pub include_target: Option<PolicyTargetDoc>,
    /// The digit pressed on the phone to report.
    #[schemars(range(min = 0, max = 9))]
    pub voice_reporting_code: Option<u8>,
}

/// `advancedConfigState` (matched case-insensitively); `default` is Microsoft managed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyState {
    Default,
    Enabled,
    Disabled,
}

/// An include or exclude target.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyTargetDoc {
    /// A group's object id, its display name (resolved at plan time), or `all_users`.
    #[schemars(length(min = 1))]
    pub id: String,
    pub target_type: PolicyTargetType,
}

/// A registration campaign's include target.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CampaignTargetDoc {
    /// A group's object id, its display name (resolved at plan time), or `all_users`.
    #[schemars(length(min = 1))]
    pub id: String,
    pub target_type: PolicyTargetType,
    /// `microsoftAuthenticator` when left out, as Graph defaults it.
    pub targeted_authentication_method: Option<CampaignMethod>,
}

/// `authenticationMethodTargetType`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyTargetType {
    Group,
    User,
}

/// A campaign's targeted method (Graph reference: `microsoftAuthenticator` or `Fido2`).
#[derive(Debug, Deserialize, JsonSchema)]
pub enum CampaignMethod {
    #[serde(rename = "microsoftAuthenticator")]
    MicrosoftAuthenticator,
    Fido2,
}

/// The managed fields; a field left out is not managed (never touched).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManifestFields {
    /// userPreferredMethodForSecondaryAuthentication (matched case-insensitively): one
    /// method, or a list of them in the order to try (`[push, oath, sms]`): the first the user
    /// has registered is set, and a user with none of them is blocked.
    pub preferred_method: Option<PreferredMethodChoice>,
    /// isSystemPreferredAuthenticationMethodEnabled.
    pub system_preferred: Option<bool>,
    /// perUserMfaState (matched case-insensitively); `enabled` is met by `enforced`.
    pub per_user_mfa_state: Option<PerUserMfaState>,
}

/// `preferredMethod`: one method, or an ordered fallback list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PreferredMethodChoice {
    /// The method to set.
    One(PreferredMethod),
    /// The methods to try, in order: the first the user has registered wins.
    List(MethodList),
}

/// An ordered list of preferred methods, each at most once.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(extend("uniqueItems" = true))]
pub struct MethodList(#[schemars(length(min = 1, max = 6))] pub Vec<PreferredMethod>);

/// One user entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManifestUser {
    /// userPrincipalName or object id (GUID).
    #[schemars(length(min = 1))]
    pub user: String,
    #[serde(flatten)]
    pub fields: ManifestFields,
}

/// Every schema, by file name under `schemas/`.
pub fn all() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "manifest.schema.json",
            schema_for!(ManifestDocument).to_value(),
        ),
        (
            "tenant.schema.json",
            schema_for!(crate::emulator::Tenant).to_value(),
        ),
        (
            "plan.schema.json",
            schema_for!(crate::plan::Plan).to_value(),
        ),
        (
            "show.schema.json",
            schema_for!(crate::engine::show::ShowDocument).to_value(),
        ),
    ]
}
