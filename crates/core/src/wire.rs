//! Graph's JSON shapes for the endpoints mfactl reads and writes (graph-api.md §1–§5).
//!
//! Shared by the client and the emulator, so both sides of the socket agree by construction.
//! Live enum values stay strings here: Graph may return values newer than this build
//! (`unknownFutureValue`, or casing we have not seen), and a live value we cannot parse must
//! show up in a plan as itself, not fail the fetch.

use serde::{Deserialize, Serialize};

/// `GET /beta/users/{user}/authentication/signInPreferences`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInPreferences {
    #[serde(default)]
    pub is_system_preferred_authentication_method_enabled: Option<bool>,
    #[serde(default)]
    pub user_preferred_method_for_secondary_authentication: Option<String>,
    /// Undocumented and read-only; Graph spells it differently (`Sms`, `Fido2`). Never diffed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_preferred_authentication_method: Option<String>,
}

/// `GET /beta/users/{user}/authentication/requirements`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirements {
    #[serde(default)]
    pub per_user_mfa_state: Option<String>,
}

/// One item of `GET /beta/users/{user}/authentication/methods`; only what mfactl reads: the
/// type, and the few properties `mfactl show` labels a method with. Secrets are never read
/// (softwareOath's `secretKey`, a Temporary Access Pass's `temporaryAccessPass`): serde skips
/// every property not named here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationMethod {
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    #[serde(default)]
    pub id: String,
    /// phoneAuthenticationMethod: `mobile`, `alternateMobile` or `office`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_type: Option<String>,
    /// phoneAuthenticationMethod: `+{country code} {number}x{extension}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The device's name (Authenticator, Windows Hello for Business), or the name the user gave
    /// a FIDO2 key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// fido2AuthenticationMethod: the manufacturer's model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// emailAuthenticationMethod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    /// temporaryAccessPassAuthenticationMethod: whether the pass can be used now, and why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_usable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_usability_reason: Option<String>,
}

/// `GET /beta/users/{user}?$select=id,userPrincipalName[,displayName]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// Only when selected (`mfactl show`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `GET /beta/policies/authenticationMethodsPolicy`: the part `mfactl show` reads (graph-api.md
/// §4). Other sub-objects are not deserialised here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationMethodsPolicyRead {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_credential_preferences: Option<SystemCredentialPreferences>,
}

/// `systemCredentialPreferences`: system-preferred MFA for the tenant. `state` stays a string
/// (`default`, `enabled`, `disabled`, or a value newer than this build).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemCredentialPreferences {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub include_targets: Vec<PolicyTarget>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub exclude_targets: Vec<PolicyTarget>,
}

/// An include or exclude target: a group's object id or the literal `all_users`, or a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTarget {
    pub id: String,
    /// `group` or `user`.
    #[serde(default)]
    pub target_type: Option<String>,
}

/// An item of a directory-object collection read for its id alone
/// (`.../transitiveMemberOf?$select=id`): Graph still says what it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryObjectId {
    pub id: String,
    /// `#microsoft.graph.group`, `#microsoft.graph.directoryRole`, ...
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
}

/// An item of `GET /beta/roleManagement/directory/roleAssignments?$expand=principal`: who holds
/// a directory role, at which scope (`/` is the whole tenant; an administrative unit's is
/// `/administrativeUnits/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    pub principal_id: String,
    #[serde(default)]
    pub directory_scope_id: Option<String>,
    /// The principal, expanded: its `@odata.type` tells a user from a group.
    #[serde(default)]
    pub principal: Option<DirectoryObjectId>,
}

/// An item of `GET /beta/users?$select=id,userPrincipalName,displayName,userType,accountEnabled`
/// or of a group's member lists (which also hold groups, told apart by `@odata.type`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    pub id: String,
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    /// `Member` or `Guest` (Graph's spelling), or a value newer than this build.
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// Only when selected (`$select=...,perUserMfaState`): not in Microsoft's published schema
    /// for `user`, but answered by Graph to that query (CIPP reads it so since 2025-03).
    /// `None` when Graph left it out: the bulk read is a hint, and such a user is read alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user_mfa_state: Option<String>,
}

impl DirectoryUser {
    /// Whether the object is a user: `/users` lists only users (and says nothing), a member
    /// list says `#microsoft.graph.user`.
    pub fn is_user(&self) -> bool {
        self.odata_type
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("#microsoft.graph.user"))
    }
}

/// An item of `GET /beta/groups?$select=id,displayName`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupName {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A list Graph may send as `null`.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// One item of `GET /beta/organization`: the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub verified_domains: Vec<VerifiedDomain>,
}

/// `verifiedDomains` of an organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedDomain {
    pub name: String,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub is_initial: bool,
}

impl Organization {
    /// The primary (default) domain, else the initial one, else any.
    pub fn primary_domain(&self) -> Option<&str> {
        let pick = |f: fn(&VerifiedDomain) -> bool| self.verified_domains.iter().find(|d| f(d));
        pick(|d| d.is_default)
            .or_else(|| pick(|d| d.is_initial))
            .or_else(|| self.verified_domains.first())
            .map(|d| d.name.as_str())
    }
}

/// A Graph collection page: `{"value": [...], "@odata.nextLink": "..."}` (and `@odata.count`
/// when `$count=true` asked for it, on directory objects an advanced query).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection<T> {
    pub value: Vec<T>,
    #[serde(
        rename = "@odata.nextLink",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_link: Option<String>,
    #[serde(
        rename = "@odata.count",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub count: Option<u64>,
}

/// One row of `GET /beta/reports/authenticationMethods/userRegistrationDetails` (Microsoft's
/// `userRegistrationDetails`): only what mfactl reads. Values stay strings: the report's
/// vocabulary differs from signInPreferences' (`none` for no preference, `userType` in lower
/// case, `methodsRegistered` in the usage-report names such as `microsoftAuthenticatorPush`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationDetails {
    /// The user's object id.
    pub id: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// `member`, `guest` (lower case, unlike `user.userType`).
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub methods_registered: Option<Vec<String>>,
    /// signInPreferences' values plus `none` (Graph's example also shows `""`).
    #[serde(default)]
    pub user_preferred_method_for_secondary_authentication: Option<String>,
    #[serde(default)]
    pub is_system_preferred_authentication_method_enabled: Option<bool>,
    /// When the report's row was last refreshed (RFC 3339, UTC).
    #[serde(default)]
    pub last_updated_date_time: Option<String>,
}

/// `GET /beta/users/{user}/authentication`: `requirements` and `signInPreferences` are
/// structural properties of Microsoft's `authentication` entity, so one read may give both
/// (unconfirmed on a live tenant: either may be missing, and the client reads alone then).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Requirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_preferences: Option<SignInPreferences>,
}

/// Graph's error envelope: `{"error": {"code", "message", "innerError": {...}}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(
        rename = "innerError",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub inner_error: Option<InnerError>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(
        rename = "request-id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request_id: Option<String>,
    #[serde(
        rename = "client-request-id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_request_id: Option<String>,
}

/// The property names of `conditionalAccessPolicy` and its parts in Microsoft's beta schema:
/// what mfactl's coverage judge understands and what the emulator serves and accepts.
pub mod conditional_access {
    /// `conditionalAccessPolicy` (with `deletedDateTime` from its base type), and `templateId`,
    /// which v1.0's schema and real answers have and beta-Prod's does not.
    pub const POLICY: &[&str] = &[
        "id",
        "displayName",
        "description",
        "state",
        "conditions",
        "grantControls",
        "sessionControls",
        "createdDateTime",
        "modifiedDateTime",
        "deletedDateTime",
        "templateId",
    ];

    /// `conditionalAccessConditionSet`.
    pub const CONDITIONS: &[&str] = &[
        "agentIdRiskLevels",
        "applications",
        "authenticationFlows",
        "clientApplications",
        "clientAppTypes",
        "devices",
        "deviceStates",
        "insiderRiskLevels",
        "locations",
        "platforms",
        "servicePrincipalRiskLevels",
        "signInRiskLevels",
        "userRiskLevels",
        "users",
    ];

    /// `conditionalAccessUsers`.
    pub const USERS: &[&str] = &[
        "includeUsers",
        "excludeUsers",
        "includeGroups",
        "excludeGroups",
        "includeRoles",
        "excludeRoles",
        "includeGuestsOrExternalUsers",
        "excludeGuestsOrExternalUsers",
    ];

    /// `conditionalAccessApplications`.
    pub const APPLICATIONS: &[&str] = &[
        "includeApplications",
        "excludeApplications",
        "includeUserActions",
        "includeAuthenticationContextClassReferences",
        "applicationFilter",
        "globalSecureAccess",
        "networkAccess",
    ];

    /// `conditionalAccessGrantControls`.
    pub const GRANT_CONTROLS: &[&str] = &[
        "operator",
        "builtInControls",
        "customAuthenticationFactors",
        "termsOfUse",
        "authenticationStrength",
    ];
}
