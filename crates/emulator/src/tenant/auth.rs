//! The tenant file's optional `auth:` section: who may sign in to the emulator and what each
//! sign-in is granted, the way an Entra tenant holds app registrations (client secrets,
//! certificates, federated credentials, a managed identity, application permissions) and admins
//! who consent to delegated permissions.
//!
//! It exists so that a test can describe the identities mfactl signs in with next to the users it
//! changes, and so that the sign-in server (the emulator's `token` and `identity`
//! modules) and the Graph routes read one checked configuration. Loading follows the rest of the
//! tenant file: unknown keys are syntax errors with their line and column, every semantic problem
//! (a client id that is not a GUID, two apps with one id, a certificate that cannot be read) is
//! collected with its place before any is reported. It reads certificate files, nothing else;
//! it knows nothing about HTTP or tokens.
//!
//! Secrets (client secrets, the App Service identity header) are held as [`Secret`]: compared in
//! constant time and redacted in `Debug`. They are written back by [`super::Tenant::to_yaml`],
//! since the file they came from holds them in plain text, but `GET /_emulator/tenant` leaves the
//! whole section out.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use schemars::JsonSchema;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_saphyr::{Location, Spanned};

use super::{Findings, TenantUser, claim, is_guid};
use crate::certificate::{AppCertificate, CertificateError};
use mfactl_core::json_schema::{YamlBool, YamlNonBlank, YamlText, YamlUint, YamlWord};

/// `tokenLifetimeSeconds` when the file does not say: what Entra's answers usually show.
pub const DEFAULT_TOKEN_LIFETIME_SECONDS: u64 = 3599;
/// The longest token lifetime the file may ask for: a managed identity's day.
pub const MAX_TOKEN_LIFETIME_SECONDS: u64 = 86_400;
/// The longest polling interval the file may ask for.
pub const MAX_DEVICE_CODE_INTERVAL_SECONDS: u64 = 3_600;
/// `deviceCodeExpiresInSeconds` when the file does not say: Entra's 15 minutes.
pub const DEFAULT_DEVICE_CODE_EXPIRES_IN_SECONDS: u64 = 900;

/// Who may sign in, and what each sign-in is granted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantAuth {
    /// Seconds an access token lives (`expires_in`); default 3599, at most 86,400.
    #[serde(default = "default_token_lifetime")]
    #[schemars(range(min = 1, max = 86_400))]
    pub token_lifetime_seconds: u64,
    /// The device-code poll on which the admin has finished signing in (default 3): the polls
    /// before it answer `authorization_pending`.
    #[serde(default = "default_approval_polls")]
    #[schemars(range(min = 1))]
    pub device_code_approval_polls: u32,
    /// The `interval` the devicecode answer gives, in seconds (default 1). A poll sooner than
    /// that after the previous one answers `slow_down`; 0 lets a client poll at any pace.
    #[serde(default = "default_interval")]
    #[schemars(range(max = 3_600))]
    pub device_code_interval_seconds: u64,
    /// How long a device code lives (`expires_in`; default 900, as Entra's).
    #[serde(default = "default_device_code_lifetime")]
    #[schemars(range(min = 1, max = 86_400))]
    pub device_code_expires_in_seconds: u64,
    /// Also refuse client assertions Microsoft advises against but Entra accepts: one whose
    /// `jti` was seen before, or whose `exp` is more than 10 minutes after its `nbf`/`iat`
    /// (default false: Entra accepts both, and MSAL reuses an assertion for minutes).
    #[serde(default, skip_serializing_if = "is_false")]
    pub strict_assertions: bool,
    /// What App Service's `X-IDENTITY-HEADER` must equal; absent, any non-empty value passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub identity_header: Option<Secret>,
    /// App registrations (confidential clients) and the managed identity.
    #[serde(default)]
    pub apps: Vec<AuthApp>,
    /// Admins who sign in with the device code flow (delegated permissions).
    #[serde(default)]
    pub admins: Vec<AuthAdmin>,
}

/// An app registration with its credentials and granted application permissions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthApp {
    /// The application (client) id, a GUID.
    pub client_id: String,
    /// A client secret (`client_secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub secret: Option<Secret>,
    /// The app's public certificate (PEM): a path relative to the tenant file, or the PEM text.
    /// Client assertions signed with its key (PS256 or RS256, `x5t#S256` or `x5t`) are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub certificate: Option<AppCertificate>,
    /// The `sub` of an external token accepted as a workload-identity-federation assertion
    /// (audience `api://AzureADTokenExchange`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_subject: Option<String>,
    /// When set, the federated assertion's `iss` must equal it (compared exactly, as Entra does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_issuer: Option<String>,
    /// The identity IMDS and App Service hand out (at most one app).
    #[serde(default, skip_serializing_if = "is_false")]
    pub managed_identity: bool,
    /// Granted application permissions: the token's `roles`.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// An admin who signs in with the device code flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthAdmin {
    pub user_principal_name: String,
    /// Delegated permissions the admin has consented to: a token's `scp` is the part of what a
    /// client asks for that is listed here.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The public client the admin signs in with; absent, any client id that is not an app in
    /// `apps` is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_client_id: Option<String>,
}

impl TenantAuth {
    /// The app with this client id (GUIDs compare without regard to case).
    pub fn app(&self, client_id: &str) -> Option<&AuthApp> {
        self.apps
            .iter()
            .find(|app| app.client_id.eq_ignore_ascii_case(client_id.trim()))
    }

    /// The app IMDS and App Service hand out tokens for.
    pub fn managed_identity(&self) -> Option<&AuthApp> {
        self.apps.iter().find(|app| app.managed_identity)
    }

    /// Which admin signs in through the public client `client_id`: the first bound to it, else
    /// the first bound to none (when `client_id` is not a confidential app).
    pub fn admin_for_public_client(&self, client_id: &str) -> Option<usize> {
        let client_id = client_id.trim();
        self.admins
            .iter()
            .position(|admin| {
                admin
                    .public_client_id
                    .as_deref()
                    .is_some_and(|id| id.eq_ignore_ascii_case(client_id))
            })
            .or_else(|| {
                if self.app(client_id).is_some() {
                    return None;
                }
                self.admins
                    .iter()
                    .position(|admin| admin.public_client_id.is_none())
            })
    }
}

fn default_token_lifetime() -> u64 {
    DEFAULT_TOKEN_LIFETIME_SECONDS
}

fn default_approval_polls() -> u32 {
    3
}

fn default_interval() -> u64 {
    1
}

fn default_device_code_lifetime() -> u64 {
    DEFAULT_DEVICE_CODE_EXPIRES_IN_SECONDS
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A credential from the tenant file: compared in constant time, redacted in `Debug`.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }

    /// Whether `candidate` is this secret, in time that does not depend on where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            self.0.expose_secret().as_bytes(),
            candidate.as_bytes(),
        )
        .is_ok()
    }

    fn is_empty(&self) -> bool {
        self.0.expose_secret().trim().is_empty()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.matches(other.0.expose_secret())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Written back as the file had it: the tenant file is where the secret lives.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.expose_secret())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

// ---------------------------------------------------------------------------------------------
// Span-carrying mirror of the section, used only while loading.

/// Who may sign in, and what each sign-in is granted.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawAuth {
    /// Seconds an access token lives (`expires_in`); default 3599, at most 86,400.
    #[serde(default)]
    #[schemars(with = "Option<YamlUint<1, MAX_TOKEN_LIFETIME_SECONDS>>")]
    token_lifetime_seconds: Option<Spanned<u64>>,
    /// The device-code poll on which the admin has finished signing in (default 3).
    #[serde(default)]
    #[schemars(with = "Option<YamlUint<1, 4_294_967_295>>")]
    device_code_approval_polls: Option<Spanned<u32>>,
    /// The `interval` the devicecode answer gives, in seconds (default 1; 0: any pace).
    #[serde(default)]
    #[schemars(with = "Option<YamlUint<0, MAX_DEVICE_CODE_INTERVAL_SECONDS>>")]
    device_code_interval_seconds: Option<Spanned<u64>>,
    /// How long a device code lives (`expires_in`; default 900, as Entra's).
    #[serde(default)]
    #[schemars(with = "Option<YamlUint<1, MAX_TOKEN_LIFETIME_SECONDS>>")]
    device_code_expires_in_seconds: Option<Spanned<u64>>,
    /// Also refuse a reused `jti` or an assertion living over 10 minutes (default false).
    #[serde(default)]
    #[schemars(with = "Option<YamlBool>")]
    strict_assertions: Option<bool>,
    /// What App Service's `X-IDENTITY-HEADER` must equal; absent, any non-empty value passes.
    #[serde(default)]
    #[schemars(with = "Option<YamlNonBlank>")]
    identity_header: Option<Spanned<String>>,
    /// App registrations (confidential clients) and the managed identity (client ids unique).
    #[serde(default)]
    #[schemars(with = "Vec<RawApp>")]
    apps: Vec<Spanned<RawApp>>,
    /// Admins who sign in with the device code flow (userPrincipalNames unique).
    #[serde(default)]
    #[schemars(with = "Vec<RawAdmin>")]
    admins: Vec<Spanned<RawAdmin>>,
}

/// An app registration with its credentials (at least one, or `managedIdentity: true`) and
/// granted application permissions.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    { "required": ["secret"], "properties": { "secret": { "not": { "type": "null" } } } },
    { "required": ["certificate"], "properties": { "certificate": { "not": { "type": "null" } } } },
    { "required": ["federatedSubject"], "properties": { "federatedSubject": { "not": { "type": "null" } } } },
    { "required": ["managedIdentity"], "properties": { "managedIdentity": { "not": { "enum": [false, null] } } } },
]))]
struct RawApp {
    /// The application (client) id, a GUID.
    #[schemars(with = "TrimmedGuid")]
    client_id: Spanned<String>,
    /// A client secret (`client_secret`).
    #[serde(default)]
    #[schemars(with = "Option<YamlNonBlank>")]
    secret: Option<Spanned<String>>,
    /// The app's public certificate (PEM): a path relative to the tenant file, or the PEM text.
    #[serde(default)]
    #[schemars(with = "Option<YamlText>")]
    certificate: Option<Spanned<String>>,
    /// The `sub` of an external token accepted as a workload-identity-federation assertion.
    #[serde(default)]
    #[schemars(with = "Option<YamlNonBlank>")]
    federated_subject: Option<Spanned<String>>,
    /// When set (with federatedSubject), the federated assertion's `iss` must equal it.
    #[serde(default)]
    #[schemars(with = "Option<YamlNonBlank>")]
    federated_issuer: Option<Spanned<String>>,
    /// The identity IMDS and App Service hand out (at most one app).
    #[serde(default)]
    #[schemars(with = "Option<YamlBool>")]
    managed_identity: Option<Spanned<bool>>,
    /// Granted application permissions: the token's `roles`.
    #[serde(default)]
    #[schemars(with = "Vec<YamlWord>")]
    roles: Vec<Spanned<String>>,
}

/// An admin who signs in with the device code flow.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAdmin {
    #[schemars(with = "super::Upn")]
    user_principal_name: Spanned<String>,
    /// Delegated permissions the admin has consented to.
    #[serde(default)]
    #[schemars(with = "Vec<YamlWord>")]
    scopes: Vec<Spanned<String>>,
    /// The public client the admin signs in with (a GUID that is not an app in `apps`).
    #[serde(default)]
    #[schemars(with = "Option<TrimmedGuid>")]
    public_client_id: Option<Spanned<String>>,
}

mfactl_core::json_schema::fixed_schemas! {
    /// A GUID in any form `uuid` reads, with whitespace around it (the reader trims client ids).
    struct TrimmedGuid => serde_json::json!({
        "type": "string",
        "pattern": mfactl_core::json_schema::word_or_guid_pattern([]),
    });
}

/// Checks the section (every problem into `findings`) and returns it in the public shape.
/// `users` are the tenant's (admins are looked up there), `base` the directory relative
/// certificate paths start from.
pub(super) fn convert(
    raw: RawAuth,
    users: &[TenantUser],
    base: Option<&Path>,
    findings: &mut Findings,
) -> TenantAuth {
    let token_lifetime_seconds = bounded(
        raw.token_lifetime_seconds,
        DEFAULT_TOKEN_LIFETIME_SECONDS,
        1..=MAX_TOKEN_LIFETIME_SECONDS,
        "tokenLifetimeSeconds",
        findings,
    );
    let device_code_approval_polls = bounded(
        raw.device_code_approval_polls,
        default_approval_polls(),
        1..=u32::MAX,
        "deviceCodeApprovalPolls",
        findings,
    );
    let device_code_expires_in_seconds = bounded(
        raw.device_code_expires_in_seconds,
        DEFAULT_DEVICE_CODE_EXPIRES_IN_SECONDS,
        1..=MAX_TOKEN_LIFETIME_SECONDS,
        "deviceCodeExpiresInSeconds",
        findings,
    );
    let identity_header = raw.identity_header.map(|header| {
        let secret = Secret::new(header.value);
        if secret.is_empty() {
            findings.problem(
                &header.referenced,
                "invalid-value",
                None,
                "identityHeader",
                "must not be empty (leave it out to accept any non-empty header)".to_owned(),
            );
        }
        secret
    });

    let apps = convert_apps(raw.apps, base, findings);
    let admins = convert_admins(raw.admins, &apps, users, findings);
    TenantAuth {
        token_lifetime_seconds,
        device_code_approval_polls,
        device_code_interval_seconds: bounded(
            raw.device_code_interval_seconds,
            default_interval(),
            0..=MAX_DEVICE_CODE_INTERVAL_SECONDS,
            "deviceCodeIntervalSeconds",
            findings,
        ),
        device_code_expires_in_seconds,
        strict_assertions: raw.strict_assertions.unwrap_or(false),
        identity_header,
        apps,
        admins,
    }
}

/// A number that must lie in `range`; the default when absent.
fn bounded<T>(
    value: Option<Spanned<T>>,
    default: T,
    range: std::ops::RangeInclusive<T>,
    field: &'static str,
    findings: &mut Findings,
) -> T
where
    T: Copy + PartialOrd + fmt::Display,
{
    let Some(value) = value else {
        return default;
    };
    if !range.contains(&value.value) {
        findings.problem(
            &value.referenced,
            "invalid-value",
            None,
            field,
            format!(
                "{} is outside {}..={}",
                value.value,
                range.start(),
                range.end()
            ),
        );
        return default;
    }
    value.value
}

fn convert_apps(
    raw: Vec<Spanned<RawApp>>,
    base: Option<&Path>,
    findings: &mut Findings,
) -> Vec<AuthApp> {
    let mut ids = HashMap::new();
    let mut managed: Option<u64> = None;
    let mut apps = Vec::with_capacity(raw.len());
    for spanned in raw {
        let at = spanned.referenced;
        let raw = spanned.value;
        let client_id = raw.client_id.value.trim().to_owned();
        let subject = Some(client_id.as_str());
        if !is_guid(&client_id) {
            findings.problem(
                &raw.client_id.referenced,
                "invalid-id",
                subject,
                "clientId",
                format!("'{client_id}' is not a GUID"),
            );
        }
        if let Some(first) = claim(&mut ids, client_id.to_ascii_lowercase(), at.line()) {
            findings.problem(
                &raw.client_id.referenced,
                "duplicate-id",
                subject,
                "clientId",
                format!("already used by the app on line {first}"),
            );
        }

        // A credential given but refused (an empty secret, a certificate that would not load)
        // is reported where it is, not again as a missing credential.
        let gave_credential =
            raw.secret.is_some() || raw.certificate.is_some() || raw.federated_subject.is_some();
        let secret = raw.secret.map(|secret| {
            let value = Secret::new(secret.value);
            if value.is_empty() {
                findings.problem(
                    &secret.referenced,
                    "invalid-value",
                    subject,
                    "secret",
                    "must not be empty".to_owned(),
                );
            }
            value
        });
        let certificate = raw
            .certificate
            .and_then(|source| load_certificate(&source, base, subject, findings));
        let federated_subject =
            non_empty(raw.federated_subject, subject, "federatedSubject", findings);
        let federated_issuer =
            non_empty(raw.federated_issuer, subject, "federatedIssuer", findings);
        if let (Some(issuer), None) = (&federated_issuer, &federated_subject) {
            findings.problem(
                &issuer.1,
                "invalid-value",
                subject,
                "federatedIssuer",
                "needs federatedSubject: a federated credential matches a subject".to_owned(),
            );
        }
        let managed_identity = raw.managed_identity.is_some_and(|flag| {
            if flag.value {
                if let Some(first) = managed {
                    findings.problem(
                        &flag.referenced,
                        "duplicate-managed-identity",
                        subject,
                        "managedIdentity",
                        format!(
                            "the app on line {first} is already the managed identity; \
                             IMDS and App Service hand out one"
                        ),
                    );
                } else {
                    managed = Some(at.line());
                }
            }
            flag.value
        });
        if !gave_credential && !managed_identity {
            findings.problem(
                &at,
                "no-credential",
                subject,
                "clientId",
                "has no secret, certificate, federatedSubject or managedIdentity, so it cannot \
                 sign in"
                    .to_owned(),
            );
        }
        let roles = permissions(raw.roles, subject, "roles", findings);
        apps.push(AuthApp {
            client_id,
            secret,
            certificate,
            federated_subject: federated_subject.map(|(value, _)| value),
            federated_issuer: federated_issuer.map(|(value, _)| value),
            managed_identity,
            roles,
        });
    }
    apps
}

/// The certificate a `certificate:` value names, or `None` with the problem recorded at the
/// value's place (the message names the file tried and why it failed).
fn load_certificate(
    source: &Spanned<String>,
    base: Option<&Path>,
    subject: Option<&str>,
    findings: &mut Findings,
) -> Option<AppCertificate> {
    match AppCertificate::load(source.value.trim(), base) {
        Ok(certificate) => Some(certificate),
        Err(err) => {
            let code = match err {
                CertificateError::Read { .. } => "unreadable-certificate",
                CertificateError::Invalid(_) => "invalid-certificate",
            };
            findings.problem(
                &source.referenced,
                code,
                subject,
                "certificate",
                err.to_string(),
            );
            None
        }
    }
}

/// A string that must not be blank, with its place.
fn non_empty(
    value: Option<Spanned<String>>,
    subject: Option<&str>,
    field: &'static str,
    findings: &mut Findings,
) -> Option<(String, Location)> {
    let value = value?;
    let text = value.value.trim().to_owned();
    if text.is_empty() {
        findings.problem(
            &value.referenced,
            "invalid-value",
            subject,
            field,
            "must not be empty".to_owned(),
        );
        return None;
    }
    Some((text, value.referenced))
}

/// Permission names: one word each (a token's `scp` separates them with spaces).
fn permissions(
    values: Vec<Spanned<String>>,
    subject: Option<&str>,
    field: &'static str,
    findings: &mut Findings,
) -> Vec<String> {
    let mut names = Vec::with_capacity(values.len());
    for value in values {
        let name = value.value.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            findings.problem(
                &value.referenced,
                "invalid-value",
                subject,
                field,
                format!("'{name}' is not a permission name (one word, such as Policy.Read.All)"),
            );
            continue;
        }
        names.push(name.to_owned());
    }
    names
}

fn convert_admins(
    raw: Vec<Spanned<RawAdmin>>,
    apps: &[AuthApp],
    users: &[TenantUser],
    findings: &mut Findings,
) -> Vec<AuthAdmin> {
    let mut upns = HashMap::new();
    let mut admins = Vec::with_capacity(raw.len());
    for spanned in raw {
        let at = spanned.referenced;
        let raw = spanned.value;
        let upn = raw.user_principal_name.value.trim().to_owned();
        let subject = Some(upn.as_str());
        if !upn.contains('@') || upn.starts_with('@') || upn.ends_with('@') {
            findings.problem(
                &raw.user_principal_name.referenced,
                "invalid-value",
                subject,
                "userPrincipalName",
                format!("'{upn}' is not of the form name@domain"),
            );
        } else if !users
            .iter()
            .any(|user| user.user_principal_name.eq_ignore_ascii_case(&upn))
        {
            findings.note(
                &raw.user_principal_name.referenced,
                "unknown-admin",
                subject,
                "userPrincipalName",
                "is not a user in this tenant; its tokens carry an object id made up at start"
                    .to_owned(),
            );
        }
        if let Some(first) = claim(&mut upns, upn.to_lowercase(), at.line()) {
            findings.problem(
                &raw.user_principal_name.referenced,
                "duplicate-upn",
                subject,
                "userPrincipalName",
                format!("already used by the admin on line {first}"),
            );
        }
        let public_client_id = raw.public_client_id.map(|id| {
            let value = id.value.trim().to_owned();
            if !is_guid(&value) {
                findings.problem(
                    &id.referenced,
                    "invalid-id",
                    subject,
                    "publicClientId",
                    format!("'{value}' is not a GUID"),
                );
            } else if apps
                .iter()
                .any(|app| app.client_id.eq_ignore_ascii_case(&value))
            {
                findings.problem(
                    &id.referenced,
                    "invalid-value",
                    subject,
                    "publicClientId",
                    format!(
                        "{value} is a confidential app in apps; a device-code sign-in needs a \
                         public client"
                    ),
                );
            }
            value
        });
        let scopes = permissions(raw.scopes, subject, "scopes", findings);
        admins.push(AuthAdmin {
            user_principal_name: upn,
            scopes,
            public_client_id,
        });
    }
    admins
}

#[cfg(test)]
mod tests {
    use super::super::{Tenant, TenantError};
    use super::*;

    const HEAD: &str = "tenantId: 9c0e5f1a-0000-4000-8000-000000000001\ndomain: contoso.com\n\
                        users:\n- id: 071cc716-8147-4397-a5ba-b2105951cc0b\n  \
                        userPrincipalName: admin@contoso.com\n";

    fn problems(text: &str) -> Vec<(u64, u64, &'static str, &'static str)> {
        match Tenant::from_yaml_str(text) {
            Err(TenantError::Invalid { problems, .. }) => problems
                .iter()
                .map(|p| (p.line, p.column, p.code, p.field))
                .collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn a_full_section_loads_with_its_defaults_and_round_trips() {
        let text = format!(
            "{HEAD}auth:\n  tokenLifetimeSeconds: 600\n  apps:\n  \
             - clientId: 2b1a8e61-0000-4000-8000-00000000000a\n    secret: not-a-real-secret\n    \
             roles: [UserAuthenticationMethod.ReadWrite.All, Policy.Read.All]\n  \
             - clientId: 2b1a8e61-0000-4000-8000-00000000000b\n    \
             federatedSubject: repo:contoso/mfa:ref:refs/heads/main\n    managedIdentity: true\n  \
             admins:\n  - userPrincipalName: admin@contoso.com\n    scopes: [Policy.Read.All]\n"
        );
        let tenant = Tenant::from_yaml_str(&text).unwrap();
        let auth = tenant.auth.as_ref().unwrap();
        assert_eq!(auth.token_lifetime_seconds, 600);
        assert_eq!(
            (
                auth.device_code_approval_polls,
                auth.device_code_interval_seconds,
                auth.device_code_expires_in_seconds,
                auth.strict_assertions
            ),
            (3, 1, 900, false)
        );
        let app = auth.app("2B1A8E61-0000-4000-8000-00000000000A").unwrap();
        assert!(app.secret.as_ref().unwrap().matches("not-a-real-secret"));
        assert!(!app.secret.as_ref().unwrap().matches("not-a-real-secreT"));
        assert_eq!(
            auth.managed_identity().unwrap().client_id,
            "2b1a8e61-0000-4000-8000-00000000000b"
        );
        // An unknown public client signs in the first admin; a confidential app's id does not.
        assert_eq!(
            auth.admin_for_public_client("04b07795-8ddb-461a-bbee-02f9e1bf7b46"),
            Some(0)
        );
        assert_eq!(
            auth.admin_for_public_client("2b1a8e61-0000-4000-8000-00000000000a"),
            None
        );
        assert_eq!(Tenant::from_yaml_str(&tenant.to_yaml()).unwrap(), tenant);
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let text = format!(
            "{HEAD}auth:\n  identityHeader: header-value-xyz\n  apps:\n  \
             - clientId: 2b1a8e61-0000-4000-8000-00000000000a\n    secret: secret-value-xyz\n"
        );
        let tenant = Tenant::from_yaml_str(&text).unwrap();
        let debug = format!("{tenant:?}");
        assert!(
            !debug.contains("secret-value-xyz") && !debug.contains("header-value-xyz"),
            "{debug}"
        );
        assert!(debug.contains("[redacted]"), "{debug}");
    }

    #[test]
    fn unknown_keys_are_syntax_errors_with_line_and_column() {
        let text = format!(
            "{HEAD}auth:\n  apps:\n  - clientId: 2b1a8e61-0000-4000-8000-00000000000a\n    \
             secret: s\n    scret: t\n"
        );
        let err = Tenant::from_yaml_str(&text).unwrap_err();
        let TenantError::Syntax {
            line,
            column,
            message,
            ..
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!((*line, *column), (10, 5), "{err}");
        assert!(message.contains("scret"), "{err}");
        assert!(err.to_string().starts_with("<tenant>:10:5: "), "{err}");
    }

    #[test]
    fn every_problem_in_the_section_is_reported_with_its_place() {
        let text = format!(
            "{HEAD}auth:\n  tokenLifetimeSeconds: 0\n  apps:\n  \
             - clientId: not-a-guid\n    secret: s\n  \
             - clientId: 2b1a8e61-0000-4000-8000-00000000000a\n    managedIdentity: true\n  \
             - clientId: 2B1A8E61-0000-4000-8000-00000000000A\n    managedIdentity: true\n  \
             - clientId: 2b1a8e61-0000-4000-8000-00000000000c\n    roles: [Policy Read]\n  \
             admins:\n  - userPrincipalName: nobody\n    \
             publicClientId: 2b1a8e61-0000-4000-8000-00000000000a\n"
        );
        assert_eq!(
            problems(&text),
            [
                (7, 25, "invalid-value", "tokenLifetimeSeconds"),
                (9, 15, "invalid-id", "clientId"),
                (13, 15, "duplicate-id", "clientId"),
                (14, 22, "duplicate-managed-identity", "managedIdentity"),
                (15, 5, "no-credential", "clientId"),
                (16, 13, "invalid-value", "roles"),
                (18, 24, "invalid-value", "userPrincipalName"),
                (19, 21, "invalid-value", "publicClientId"),
            ]
        );
    }

    #[test]
    fn an_unreadable_certificate_names_the_file_the_line_and_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenant.yaml");
        let text = format!(
            "{HEAD}auth:\n  apps:\n  - clientId: 2b1a8e61-0000-4000-8000-00000000000a\n    \
             certificate: certs/missing.pem\n"
        );
        std::fs::write(&path, text).unwrap();
        let err = Tenant::load(&path).unwrap_err();
        let message = err.to_string();
        let expected_place = format!("{}:9:18: [unreadable-certificate]", path.display());
        let expected_file = dir.path().join("certs/missing.pem");
        assert!(
            message.contains(&expected_place)
                && message.contains(&expected_file.display().to_string()),
            "{message}"
        );

        // A file that is there but holds no certificate.
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        std::fs::write(&expected_file, "not a certificate").unwrap();
        let message = Tenant::load(&path).unwrap_err().to_string();
        assert!(
            message.contains("[invalid-certificate]") && message.contains("BEGIN CERTIFICATE"),
            "{message}"
        );
    }

    #[test]
    fn a_certificate_path_is_relative_to_the_tenant_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        let (pem, _) = crate::certificate::tests::rsa_certificate("relative");
        std::fs::write(dir.path().join("certs/app.pem"), &pem).unwrap();
        let path = dir.path().join("tenant.yaml");
        let text = format!(
            "{HEAD}auth:\n  apps:\n  - clientId: 2b1a8e61-0000-4000-8000-00000000000a\n    \
             certificate: certs/app.pem\n"
        );
        std::fs::write(&path, text).unwrap();
        let tenant = Tenant::load(&path).unwrap();
        let app = &tenant.auth.unwrap().apps[0];
        let certificate = app.certificate.as_ref().unwrap();
        assert_eq!(certificate.source(), "certs/app.pem");
        assert_eq!(
            certificate,
            &AppCertificate::load(&pem, None).expect("same certificate inline")
        );
    }
}
