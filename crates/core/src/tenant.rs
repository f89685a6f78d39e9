//! The records of a tenant file (design.md, "Tenant file") that more than the emulator names:
//! its users, groups and role assignments. The emulator reads tenant files (its reader, with
//! every check and each problem's line, is `mfactl-emulator`'s `tenant` module) and
//! `mfactl export --as tenant` writes them, so both take these types from here.
//!
//! Plain data with serde's shape of the file; no reading, no checks.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{MethodKind, PerUserMfaState, PreferredMethod};

/// One active directory role assignment, as Graph's `unifiedRoleAssignment` names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    /// The role: a built-in role's template id (a GUID), e.g. Global Administrator's
    /// `62e90394-69f5-4237-9190-012177145e10`.
    pub role_definition_id: String,
    /// The user or (role-assignable) group holding it: an id from this file.
    pub principal_id: String,
    /// `/` (the whole tenant, the default) or `/administrativeUnits/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_scope_id: Option<String>,
}

/// One user and the three values mfactl manages, plus what makes them valid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantUser {
    /// Object id (a GUID).
    pub id: String,
    /// `userPrincipalName`; guests look like `name_ext.com#EXT#@contoso.onmicrosoft.com`.
    pub user_principal_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub user_type: UserType,
    #[serde(default = "default_true")]
    pub account_enabled: bool,
    /// Registered authentication methods; a password is always present whether listed or not.
    #[serde(default)]
    pub methods: Vec<MethodKind>,
    #[serde(default)]
    pub sign_in_preferences: UserSignInPreferences,
    #[serde(default = "default_mfa_state")]
    pub per_user_mfa_state: PerUserMfaState,
    /// A fault for tests: PATCHes to this user's signInPreferences and requirements are checked
    /// and answered 204 as usual, and then not kept (Graph can accept a write and not keep it),
    /// so that apply's read-back finds them `unverified`. Per user, so a test knows exactly who.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forgets_writes: bool,
}

/// A user's `signInPreferences` as stored (the read-only `systemPreferredAuthenticationMethod`
/// is derived from the registered methods, never stored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSignInPreferences {
    #[serde(default)]
    pub is_system_preferred_authentication_method_enabled: bool,
    /// `null` when the user has no preferred method.
    #[serde(default)]
    pub user_preferred_method_for_secondary_authentication: Option<PreferredMethod>,
}

/// `userType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UserType {
    #[default]
    Member,
    Guest,
}

impl UserType {
    /// The value as Graph spells it (`Member`/`Guest` on the wire, lower case in the file).
    pub fn graph_name(self) -> &'static str {
        match self {
            UserType::Member => "Member",
            UserType::Guest => "Guest",
        }
    }

    /// `member` or `guest` in any case, with whitespace around it.
    pub fn parse(text: &str) -> Option<UserType> {
        match text.trim() {
            t if t.eq_ignore_ascii_case("member") => Some(UserType::Member),
            t if t.eq_ignore_ascii_case("guest") => Some(UserType::Guest),
            _ => None,
        }
    }
}

/// A group, for selectors that name groups (`members` holds user or group ids).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub members: Vec<String>,
}

fn default_true() -> bool {
    true
}

fn default_mfa_state() -> PerUserMfaState {
    PerUserMfaState::Disabled
}

impl TenantUser {
    /// Whether the user has a registered method that counts for MFA (anything but a password
    /// or an email address, [`MethodKind::counts_for_mfa`]) — the condition under which Graph
    /// promotes `enabled` to `enforced`, and the one mfactl's planner applies.
    pub fn has_mfa_method(&self) -> bool {
        MethodKind::any_for_mfa(&self.methods)
    }
}
