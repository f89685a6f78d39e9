//! The tenant file: the emulator's whole state, as YAML (design.md, "Tenant file").
//!
//! It exists so that tests, demos and benchmarks can describe a directory — users, their
//! registered methods, their sign-in preferences and per-user MFA state — in a file a human can
//! read and edit, and so that the emulator can hand its current state back in the same shape.
//!
//! Loading never stops at the first problem: the file is parsed into a span-carrying mirror of
//! the public types, every semantic problem (duplicate id or UPN, a bad enum value, a malformed
//! GUID) is collected with its line, and only then are they reported together. Inconsistencies
//! that Graph itself can hold (a preferred method whose registered method was since removed)
//! are allowed and come back as [`TenantNote`]s instead.
//!
//! This module does no network I/O and knows nothing about HTTP.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::model::{MethodKind, PerUserMfaState, PreferredMethod};

/// The emulated directory: one tenant, its users and groups, and its authentication methods policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// The tenant's object id (a GUID); it appears in throttling scopes.
    pub tenant_id: String,
    /// The initial domain, e.g. `contoso.onmicrosoft.com`.
    pub domain: String,
    /// Every user, in file order.
    #[serde(default)]
    pub users: Vec<TenantUser>,
    /// Groups (optional); members are user or group ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    /// `/beta/policies/authenticationMethodsPolicy` as Graph returns it (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_methods_policy: Option<serde_json::Value>,
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

    fn parse(text: &str) -> Option<UserType> {
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

/// Why a tenant file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read tenant file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML, or not the tenant file's shape (a missing key, an unknown key,
    /// a list where a value belongs).
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        origin: String,
        line: u64,
        column: u64,
        message: String,
    },
    /// The file parsed but holds values the emulator cannot serve; every problem is listed.
    #[error("{origin}: {} problem(s) in the tenant file:{}", problems.len(), ProblemList(problems))]
    Invalid {
        origin: String,
        problems: Vec<TenantProblem>,
    },
}

/// One semantic problem (an error) or note (a warning) in a tenant file, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantProblem {
    /// 1-based line (0 when unknown, e.g. for a tenant built in memory).
    pub line: u64,
    /// A stable code: `duplicate-id`, `duplicate-upn`, `invalid-value`, `invalid-id`,
    /// `duplicate-method`, `unregistered-preferred-method`, `enabled-with-method`, `unknown-member`.
    pub code: &'static str,
    /// The user (UPN or id) or group the problem belongs to, when it belongs to one.
    pub subject: Option<String>,
    /// The field, in the file's spelling (`methods`, `perUserMfaState`, ...).
    pub field: &'static str,
    pub message: String,
}

/// A note about a file that loads fine but holds something odd; same shape as a problem.
pub type TenantNote = TenantProblem;

impl fmt::Display for TenantProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        write!(f, "[{}] ", self.code)?;
        if let Some(subject) = &self.subject {
            write!(f, "{subject}: ")?;
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

struct ProblemList<'a>(&'a [TenantProblem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in self.0 {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl Tenant {
    /// Reads and validates a tenant file; notes (allowed oddities) are logged as warnings.
    pub fn load(path: &Path) -> Result<Tenant, TenantError> {
        let (tenant, notes) = Tenant::load_with_notes(path)?;
        for note in &notes {
            tracing::warn!(file = %path.display(), "{note}");
        }
        Ok(tenant)
    }

    /// Reads and validates a tenant file, returning the notes instead of logging them.
    pub fn load_with_notes(path: &Path) -> Result<(Tenant, Vec<TenantNote>), TenantError> {
        let text = std::fs::read_to_string(path).map_err(|source| TenantError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        parse(&text, &path.display().to_string())
    }

    /// Parses and validates tenant YAML held in memory (errors name the origin `<tenant>`).
    pub fn from_yaml_str(text: &str) -> Result<Tenant, TenantError> {
        parse(text, "<tenant>").map(|(tenant, _)| tenant)
    }

    /// Like [`Tenant::from_yaml_str`], also returning the notes.
    pub fn from_yaml_str_with_notes(text: &str) -> Result<(Tenant, Vec<TenantNote>), TenantError> {
        parse(text, "<tenant>")
    }

    /// The tenant as YAML in the file's shape; [`Tenant::from_yaml_str`] reads it back equal.
    pub fn to_yaml(&self) -> String {
        // Serialising plain data structs to a String cannot fail; a failure would be a bug here.
        serde_saphyr::to_string(self).expect("tenant serialises to YAML")
    }

    /// The Graph throttling tier for this tenant's size (graph-api.md §6): RU per 10 s.
    pub fn ru_tier(&self) -> u32 {
        match self.users.len() {
            n if n < 50 => 3_500,
            n if n <= 500 => 5_000,
            _ => 8_000,
        }
    }
}

impl TenantUser {
    /// Whether the user has a registered method that counts for MFA (anything but a password
    /// or an email address) — the condition under which Graph promotes `enabled` to `enforced`.
    pub fn has_mfa_method(&self) -> bool {
        self.methods
            .iter()
            .any(|m| !matches!(m, MethodKind::Password | MethodKind::Email))
    }
}

// ---------------------------------------------------------------------------------------------
// Span-carrying mirror of the file, used only while loading.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTenant {
    tenant_id: Spanned<String>,
    domain: Spanned<String>,
    #[serde(default)]
    users: Vec<Spanned<RawUser>>,
    #[serde(default)]
    groups: Vec<Spanned<RawGroup>>,
    #[serde(default)]
    authentication_methods_policy: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawUser {
    id: Spanned<String>,
    user_principal_name: Spanned<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    user_type: Option<Spanned<String>>,
    #[serde(default)]
    account_enabled: Option<bool>,
    #[serde(default)]
    methods: Vec<Spanned<String>>,
    #[serde(default)]
    sign_in_preferences: Option<RawSignInPreferences>,
    #[serde(default)]
    per_user_mfa_state: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSignInPreferences {
    #[serde(default)]
    is_system_preferred_authentication_method_enabled: Option<bool>,
    #[serde(default)]
    user_preferred_method_for_secondary_authentication: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawGroup {
    id: Spanned<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    members: Vec<Spanned<String>>,
}

/// Collects problems and notes while converting the raw file.
#[derive(Default)]
struct Findings {
    problems: Vec<TenantProblem>,
    notes: Vec<TenantNote>,
}

impl Findings {
    fn problem(
        &mut self,
        line: u64,
        code: &'static str,
        subject: Option<&str>,
        field: &'static str,
        message: String,
    ) {
        self.problems.push(TenantProblem {
            line,
            code,
            subject: subject.map(str::to_owned),
            field,
            message,
        });
    }

    fn note(
        &mut self,
        line: u64,
        code: &'static str,
        subject: Option<&str>,
        field: &'static str,
        message: String,
    ) {
        self.notes.push(TenantProblem {
            line,
            code,
            subject: subject.map(str::to_owned),
            field,
            message,
        });
    }
}

fn parse(text: &str, origin: &str) -> Result<(Tenant, Vec<TenantNote>), TenantError> {
    let raw: RawTenant = serde_saphyr::from_str(text).map_err(|err| {
        let location = err.location();
        let line = location.map_or(0, |l| l.line());
        let column = location.map_or(0, |l| l.column());
        // The message repeats the place, which the error's own prefix already gives.
        let message = err.without_snippet().to_string();
        let suffix = format!(" at line {line}, column {column}");
        let message = message.strip_suffix(&suffix).unwrap_or(&message).to_owned();
        TenantError::Syntax {
            origin: origin.to_owned(),
            line,
            column,
            message,
        }
    })?;
    let mut findings = Findings::default();
    let tenant = convert(raw, &mut findings);
    if findings.problems.is_empty() {
        Ok((tenant, findings.notes))
    } else {
        Err(TenantError::Invalid {
            origin: origin.to_owned(),
            problems: findings.problems,
        })
    }
}

fn is_guid(text: &str) -> bool {
    uuid::Uuid::try_parse(text).is_ok()
}

/// Method kinds Graph holds at most once per user (they have fixed, well-known ids).
fn single_instance(kind: MethodKind) -> bool {
    matches!(
        kind,
        MethodKind::MobilePhone
            | MethodKind::AlternateMobilePhone
            | MethodKind::OfficePhone
            | MethodKind::Email
            | MethodKind::Password
            | MethodKind::TemporaryAccessPass
    )
}

fn convert(raw: RawTenant, findings: &mut Findings) -> Tenant {
    if !is_guid(&raw.tenant_id.value) {
        findings.problem(
            raw.tenant_id.referenced.line(),
            "invalid-id",
            None,
            "tenantId",
            format!("'{}' is not a GUID", raw.tenant_id.value),
        );
    }
    if raw.domain.value.trim().is_empty() {
        findings.problem(
            raw.domain.referenced.line(),
            "invalid-value",
            None,
            "domain",
            "must not be empty".to_owned(),
        );
    }

    let mut ids: HashMap<String, u64> = HashMap::new();
    let mut upns: HashMap<String, u64> = HashMap::new();
    let mut users = Vec::with_capacity(raw.users.len());
    for spanned in raw.users {
        let line = spanned.referenced.line();
        let user = convert_user(spanned.value, findings);
        let subject = user.user_principal_name.clone();
        if let Some(first) = ids.insert(user.id.to_ascii_lowercase(), line) {
            findings.problem(
                line,
                "duplicate-id",
                Some(&subject),
                "id",
                format!("id {} is already used by the user on line {first}", user.id),
            );
        }
        if let Some(first) = upns.insert(user.user_principal_name.to_lowercase(), line) {
            findings.problem(
                line,
                "duplicate-upn",
                Some(&subject),
                "userPrincipalName",
                format!("already used by the user on line {first}"),
            );
        }
        users.push(user);
    }

    let mut groups = Vec::with_capacity(raw.groups.len());
    for spanned in &raw.groups {
        let group = &spanned.value;
        let line = spanned.referenced.line();
        if !is_guid(&group.id.value) {
            findings.problem(
                group.id.referenced.line(),
                "invalid-id",
                Some(&group.id.value),
                "id",
                format!("group id '{}' is not a GUID", group.id.value),
            );
        }
        if let Some(first) = ids.insert(group.id.value.to_ascii_lowercase(), line) {
            findings.problem(
                line,
                "duplicate-id",
                Some(&group.id.value),
                "id",
                format!("id is already used on line {first}"),
            );
        }
    }
    for spanned in raw.groups {
        let group = spanned.value;
        for member in &group.members {
            if !ids.contains_key(&member.value.to_ascii_lowercase()) {
                findings.note(
                    member.referenced.line(),
                    "unknown-member",
                    Some(&group.id.value),
                    "members",
                    format!(
                        "'{}' is neither a user nor a group in this file",
                        member.value
                    ),
                );
            }
        }
        groups.push(Group {
            id: group.id.value,
            display_name: group.display_name,
            members: group.members.into_iter().map(|m| m.value).collect(),
        });
    }

    Tenant {
        tenant_id: raw.tenant_id.value,
        domain: raw.domain.value,
        users,
        groups,
        authentication_methods_policy: raw.authentication_methods_policy,
    }
}

fn convert_user(raw: RawUser, findings: &mut Findings) -> TenantUser {
    let subject = raw.user_principal_name.value.clone();
    let subject = Some(subject.as_str());
    if !is_guid(&raw.id.value) {
        findings.problem(
            raw.id.referenced.line(),
            "invalid-id",
            subject,
            "id",
            format!("'{}' is not a GUID", raw.id.value),
        );
    }
    let upn = &raw.user_principal_name.value;
    if !upn.contains('@') || upn.starts_with('@') || upn.ends_with('@') {
        findings.problem(
            raw.user_principal_name.referenced.line(),
            "invalid-value",
            subject,
            "userPrincipalName",
            format!("'{upn}' is not of the form name@domain"),
        );
    }

    let user_type = match &raw.user_type {
        None => UserType::Member,
        Some(text) => UserType::parse(&text.value).unwrap_or_else(|| {
            findings.problem(
                text.referenced.line(),
                "invalid-value",
                subject,
                "userType",
                format!("'{}' is not one of: member, guest", text.value),
            );
            UserType::Member
        }),
    };

    let mut methods = Vec::with_capacity(raw.methods.len());
    for text in &raw.methods {
        match MethodKind::parse(&text.value) {
            Some(kind) => {
                if single_instance(kind) && methods.contains(&kind) {
                    findings.problem(
                        text.referenced.line(),
                        "duplicate-method",
                        subject,
                        "methods",
                        format!("{kind} is listed twice; a user holds at most one"),
                    );
                } else {
                    methods.push(kind);
                }
            }
            None => findings.problem(
                text.referenced.line(),
                "invalid-value",
                subject,
                "methods",
                format!("'{}' is not one of: {}", text.value, MethodKind::expected()),
            ),
        }
    }

    let raw_prefs = raw.sign_in_preferences.unwrap_or(RawSignInPreferences {
        is_system_preferred_authentication_method_enabled: None,
        user_preferred_method_for_secondary_authentication: None,
    });
    let preferred = raw_prefs
        .user_preferred_method_for_secondary_authentication
        .and_then(|text| match PreferredMethod::parse(&text.value) {
            Some(method) => {
                if !methods.iter().any(|m| method.is_enabled_by(*m)) {
                    findings.note(
                        text.referenced.line(),
                        "unregistered-preferred-method",
                        subject,
                        "userPreferredMethodForSecondaryAuthentication",
                        format!(
                            "{method} is preferred but no registered method enables it \
                             (Graph can hold this after a method is removed; a PATCH to it would fail)"
                        ),
                    );
                }
                Some(method)
            }
            None => {
                findings.problem(
                    text.referenced.line(),
                    "invalid-value",
                    subject,
                    "userPreferredMethodForSecondaryAuthentication",
                    format!(
                        "'{}' is not one of: {} (or null)",
                        text.value,
                        PreferredMethod::expected()
                    ),
                );
                None
            }
        });

    let mut user = TenantUser {
        id: raw.id.value,
        user_principal_name: raw.user_principal_name.value,
        display_name: raw.display_name,
        user_type,
        account_enabled: raw.account_enabled.unwrap_or(true),
        methods,
        sign_in_preferences: UserSignInPreferences {
            is_system_preferred_authentication_method_enabled: raw_prefs
                .is_system_preferred_authentication_method_enabled
                .unwrap_or(false),
            user_preferred_method_for_secondary_authentication: preferred,
        },
        per_user_mfa_state: PerUserMfaState::Disabled,
    };

    if let Some(text) = &raw.per_user_mfa_state {
        match PerUserMfaState::parse(&text.value) {
            Some(state) => {
                if state == PerUserMfaState::Enabled && user.has_mfa_method() {
                    findings.note(
                        text.referenced.line(),
                        "enabled-with-method",
                        Some(&user.user_principal_name),
                        "perUserMfaState",
                        "enabled on a user with a registered MFA method; Graph would show \
                         enforced (kept as written)"
                            .to_owned(),
                    );
                }
                user.per_user_mfa_state = state;
            }
            None => findings.problem(
                text.referenced.line(),
                "invalid-value",
                Some(&user.user_principal_name),
                "perUserMfaState",
                format!(
                    "'{}' is not one of: {}",
                    text.value,
                    PerUserMfaState::expected()
                ),
            ),
        }
    }
    user
}
