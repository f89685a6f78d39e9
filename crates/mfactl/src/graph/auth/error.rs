//! Why sign-in failed, worded for the admin who must fix it: every message names the source and
//! what to change. Entra's answers keep their `error`, their AADSTS code and the first line of
//! their `error_description`, escaped ([`printable_capped`]); the rest of a description (trace
//! and correlation ids, timestamps) is left out.
//!
//! Nothing here ever holds a token, a secret, an assertion or a refresh token: variants carry
//! only text built from non-secret parts. That is also why the type is `Clone` (the provider
//! hands one failed renewal's error to every caller that waited for it).

use std::fmt;

use super::SourceKind;
use crate::text::printable_capped;

/// The longest part of an outside text (a description, a line of stderr) a message quotes.
pub(super) const QUOTE_MAX: usize = 300;

/// A sign-in failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `--auth` was given and no source is configured.
    #[error(
        "no sign-in is configured. mfactl tries, in this order:\n\
         \x20 token        MFACTL_ACCESS_TOKEN (a bearer token), or --token-file FILE\n\
         \x20 secret       AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET\n\
         \x20 certificate  AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_CERTIFICATE_PATH \
         (+ AZURE_CLIENT_CERTIFICATE_PASSWORD for a .pfx)\n\
         \x20 workload     AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_FEDERATED_TOKEN_FILE\n\
         \x20 managed      IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service, Functions), or \
         IMDS on an Azure VM (AZURE_POD_IDENTITY_AUTHORITY_HOST overrides its address; \
         AZURE_CLIENT_ID picks a user-assigned identity)\n\
         \x20 cli          the Azure CLI on PATH, signed in with `az login`\n\
         \x20 device       `mfactl login` (its cached sign-in would be at {cache_path})\n\
         Set one of them, or choose with --auth."
    )]
    NothingConfigured { cache_path: String },

    /// A setting is missing or unusable (an incomplete set of variables, a tenant that is not
    /// one, an authority host on plain http, an unsupported managed identity flavour). Found
    /// before anything was sent.
    #[error("{}{problem}", prefix(*kind))]
    Misconfigured {
        kind: Option<SourceKind>,
        problem: String,
    },

    /// The token (from `origin`: `MFACTL_ACCESS_TOKEN`, a token file, an answer) holds
    /// characters no HTTP header can carry.
    #[error(
        "{kind}: the access token from {origin} contains characters that cannot be sent in an \
         HTTP header (a space, a line break, a control character or non-ASCII text); copy it \
         again without surrounding spaces or line breaks (nothing was sent)"
    )]
    InvalidToken { kind: SourceKind, origin: String },

    /// The token had already expired when the source handed it over.
    #[error("{kind}: the access token from {origin} expired {when}; {fix}")]
    Expired {
        kind: SourceKind,
        origin: String,
        when: String,
        fix: String,
    },

    /// A file the source needs could not be read.
    #[error("{kind}: cannot read {what} {path}: {reason}")]
    Unreadable {
        kind: SourceKind,
        what: &'static str,
        path: String,
        reason: String,
    },

    /// The certificate file holds no usable certificate and RSA key.
    #[error("certificate: {path}: {problem}")]
    Certificate { path: String, problem: String },

    /// Entra (or a managed identity endpoint) answered with an error.
    #[error("{0}")]
    Rejected(Box<Rejection>),

    /// No answer: connection refused, DNS, TLS, timeouts (after the retries).
    #[error("{kind}: cannot reach {endpoint}: {reason}")]
    Unreachable {
        kind: SourceKind,
        endpoint: String,
        reason: String,
    },

    /// An answer that is not what the protocol promises (not JSON, no `access_token`).
    #[error("{kind}: {endpoint} answered {problem}")]
    BadAnswer {
        kind: SourceKind,
        endpoint: String,
        problem: String,
    },

    /// `az account get-access-token` failed or printed something unexpected.
    #[error("cli: {problem}")]
    Cli { problem: String },

    /// `--auth device` without a cached sign-in.
    #[error("device: no cached sign-in at {path}; run `mfactl login` first")]
    NotLoggedIn { path: String },

    /// The cached refresh token no longer works (expired, revoked, password changed, new
    /// Conditional Access requirements).
    #[error(
        "device: the cached sign-in{user} no longer works ({detail}); run `mfactl login` again"
    )]
    LoginExpired { user: String, detail: String },

    /// The refresh-token cache file is unreadable or damaged.
    #[error("device: the sign-in cache {path} {problem}")]
    Cache { path: String, problem: String },

    /// The device code flow ended without a sign-in (declined, timed out).
    #[error("login: {problem}")]
    Login { problem: String },

    /// After Graph refused a token (401), the source handed over the very same token again.
    #[error("{kind}: Graph refused the access token (401) and {origin} has no other one; {fix}")]
    Refused {
        kind: SourceKind,
        origin: String,
        fix: String,
    },

    /// The HTTP client for sign-in could not be built.
    #[error("cannot build the HTTP client for sign-in: {0}")]
    Http(String),
}

fn prefix(kind: Option<SourceKind>) -> String {
    kind.map(|kind| format!("{kind}: ")).unwrap_or_default()
}

/// An error answer from Entra's token endpoint (`{error, error_description, error_codes}`) or
/// a managed identity endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub kind: SourceKind,
    /// Who answered: "Entra ID", "the managed identity endpoint".
    pub service: &'static str,
    /// The endpoint, without its query.
    pub endpoint: String,
    pub status: u16,
    /// OAuth's `error` (`invalid_client`, `invalid_grant`, …), escaped.
    pub error: Option<String>,
    /// `AADSTS7000215`, from `error_codes` or the description's first word.
    pub code: Option<String>,
    /// The first line of `error_description`, escaped and capped.
    pub description: Option<String>,
    /// What to check, for this source and code.
    pub hint: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = if self.status >= 500 {
            "could not answer"
        } else {
            "refused"
        };
        write!(
            f,
            "{}: {} {outcome} the token request (HTTP {}",
            self.kind, self.service, self.status
        )?;
        if let Some(error) = &self.error {
            write!(f, ", {error}")?;
        }
        f.write_str(")")?;
        match (&self.code, &self.description) {
            (Some(code), Some(description)) if description.starts_with(code.as_str()) => {
                write!(f, ": {description}")?
            }
            (Some(code), Some(description)) => write!(f, ": {code}: {description}")?,
            (Some(code), None) => write!(f, ": {code}")?,
            (None, Some(description)) => write!(f, ": {description}")?,
            (None, None) => {}
        }
        if !self.hint.is_empty() {
            write!(f, "; {}", self.hint)?;
        }
        Ok(())
    }
}

impl Rejection {
    /// Reads an error answer. `body` is whatever came back (JSON or not); nothing of it is kept
    /// but the `error`, the AADSTS code and the description's first line.
    pub(super) fn from_answer(
        kind: SourceKind,
        service: &'static str,
        endpoint: String,
        status: u16,
        body: &[u8],
    ) -> Rejection {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        // Entra: {"error": "invalid_client", "error_description": "AADSTS…", "error_codes": [..]};
        // App Service: {"statusCode": 400, "message": "…"}; some endpoints: {"error": {"code", "message"}}.
        let error = json
            .get("error")
            .and_then(|e| {
                e.as_str()
                    .or_else(|| e.get("code").and_then(|c| c.as_str()))
            })
            .map(|e| printable_capped(e, 80));
        let description = json
            .get("error_description")
            .or_else(|| json.get("message"))
            .or_else(|| json.get("error").and_then(|e| e.get("message")))
            .and_then(|d| d.as_str())
            .map(first_line)
            .filter(|line| !line.is_empty())
            .map(|line| printable_capped(line, QUOTE_MAX));
        let code = json
            .get("error_codes")
            .and_then(|codes| codes.get(0))
            .and_then(|code| code.as_u64())
            .map(|code| format!("AADSTS{code}"))
            .or_else(|| {
                let description = description.as_deref()?;
                let word = description
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .next()?;
                (word.len() > 6
                    && word.starts_with("AADSTS")
                    && word[6..].bytes().all(|b| b.is_ascii_digit()))
                .then(|| word.to_owned())
            });
        let hint = hint(kind, error.as_deref(), code.as_deref());
        Rejection {
            kind,
            service,
            endpoint,
            status,
            error,
            code,
            description,
            hint,
        }
    }

    /// Whether Entra says the refresh token (or device code) is no longer any good:
    /// `invalid_grant` (expired, revoked) or `interaction_required` (new MFA or Conditional
    /// Access requirements only an interactive sign-in can meet).
    pub(super) fn is_grant_gone(&self) -> bool {
        matches!(
            self.error.as_deref(),
            Some("invalid_grant" | "interaction_required" | "consent_required")
        )
    }
}

/// The first line of an outside text (Entra appends `\r\nTrace ID: …` lines).
pub(super) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim()
}

/// What to check, by AADSTS code where the code says more than the source does.
fn hint(kind: SourceKind, error: Option<&str>, code: Option<&str>) -> String {
    let specific = match code.unwrap_or_default() {
        "AADSTS7000215" => Some(
            "the client secret is wrong: AZURE_CLIENT_SECRET must be the secret's value (not its id)",
        ),
        "AADSTS7000222" => Some(
            "the client secret has expired: create a new one under the app's Certificates & secrets",
        ),
        "AADSTS700016" => Some(
            "no application with this client id in this tenant: check AZURE_CLIENT_ID and AZURE_TENANT_ID (and --cloud)",
        ),
        "AADSTS90002" | "AADSTS900023" | "AADSTS90013" => {
            Some("the tenant is unknown here: check --tenant / AZURE_TENANT_ID and --cloud")
        }
        "AADSTS700027" => Some(
            "the certificate is not (or no longer) registered on the app: upload its public part under Certificates & secrets",
        ),
        "AADSTS700024" => Some(
            "the federated token has expired or is not valid yet: check whatever writes AZURE_FEDERATED_TOKEN_FILE",
        ),
        "AADSTS70021" | "AADSTS700213" | "AADSTS700212" | "AADSTS700211" => Some(
            "no federated credential on the app matches this token's issuer, subject and audience",
        ),
        "AADSTS7000112" => Some("the application is disabled in this tenant"),
        "AADSTS65001" => Some(
            "the permissions are not consented: an administrator must grant consent for the app",
        ),
        "AADSTS500011" => Some(
            "the Graph root is not a resource in this tenant's cloud: check --cloud and --graph-url",
        ),
        "AADSTS70011" => {
            Some("Entra does not accept the requested scope: check --graph-url and --cloud")
        }
        "AADSTS50076" | "AADSTS50079" | "AADSTS50158" | "AADSTS53003" => {
            Some("Conditional Access or MFA requires more than this sign-in can give")
        }
        "AADSTS7000218" => Some(
            "the app is not a public client: enable \"Allow public client flows\" on it, or use another --client-id",
        ),
        _ => None,
    };
    if let Some(specific) = specific {
        return specific.to_owned();
    }
    let general = match kind {
        SourceKind::Token => "get a new token",
        SourceKind::Secret => "check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
        SourceKind::Certificate => {
            "check AZURE_TENANT_ID, AZURE_CLIENT_ID and that the certificate in \
             AZURE_CLIENT_CERTIFICATE_PATH is registered on the app"
        }
        SourceKind::Workload => {
            "check AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE and the app's \
             federated credentials"
        }
        SourceKind::Managed => {
            "check that a managed identity is assigned to this resource (AZURE_CLIENT_ID picks \
             a user-assigned one) and that it has the Graph permissions"
        }
        SourceKind::Cli => "run `az login`",
        SourceKind::Device => match error {
            Some("authorization_declined" | "access_denied") => "the sign-in was declined",
            _ => "run `mfactl login` again",
        },
    };
    general.to_owned()
}
