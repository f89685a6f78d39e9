//! Sign-in, the client side: where an access token for Graph comes from (issue 7), and one
//! [`TokenProvider`] that every worker shares to use it and renew it.
//!
//! Seven sources, tried in this order when `--auth` does not name one ([`choose`]):
//!
//! | source | configured by | grant |
//! |---|---|---|
//! | `token` | `MFACTL_ACCESS_TOKEN`, or `--token-file` (re-read on each renewal) | none: used as is |
//! | `secret` | `AZURE_TENANT_ID` + `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET` | client credentials |
//! | `certificate` | … + `AZURE_CLIENT_CERTIFICATE_PATH` (+ `_PASSWORD`) | client credentials, PS256 assertion |
//! | `workload` | … + `AZURE_FEDERATED_TOKEN_FILE` | client credentials, federated assertion |
//! | `managed` | `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` (App Service), or IMDS | managed identity |
//! | `cli` | `az` on `PATH`, signed in | `az account get-access-token` |
//! | `device` | a refresh token cached by `mfactl login` | refresh token |
//!
//! What this module must not do: let a token, a client secret, an assertion, a refresh token or
//! a managed identity's `IDENTITY_HEADER` reach a log line (at any level), an error message or a
//! `Debug` output. Every credential's `Debug` is written by hand for that reason, and every text
//! from outside (Entra's error descriptions, `az`'s stderr) is escaped through
//! [`crate::text::printable`] before it goes anywhere. It knows HTTP and files, never the Graph
//! transport: the transport asks a [`TokenProvider`] for a [`Bearer`] and calls
//! [`TokenProvider::renew`] after a 401.

mod cache;
mod certificate;
mod cli;
mod device;
mod error;
mod http;
mod managed;
mod provider;
mod secret;
mod settings;
mod token;
mod workload;

#[cfg(test)]
mod testing;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::BoxFuture;
use secrecy::SecretString;

pub use crate::graph::claims::Claims;
pub use certificate::CertificateCredential;
pub use cli::CliCredential;
pub use device::{DEFAULT_PUBLIC_CLIENT_ID, DeviceCredential, LoginOutcome, login, logout};
pub use error::{AuthError, Rejection};
pub use managed::ManagedCredential;
pub use provider::{Bearer, TokenProvider};
pub use secret::SecretCredential;
pub use settings::{AuthSettings, Env};
pub use token::TokenCredential;
pub use workload::WorkloadCredential;

/// Where the access token comes from (`--auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum SourceKind {
    /// A bearer token used as is: `MFACTL_ACCESS_TOKEN`, or `--token-file`.
    Token,
    /// An application's client secret (`AZURE_CLIENT_SECRET`).
    Secret,
    /// An application's certificate (`AZURE_CLIENT_CERTIFICATE_PATH`).
    Certificate,
    /// Workload identity federation (`AZURE_FEDERATED_TOKEN_FILE`, e.g. AKS or GitHub Actions).
    Workload,
    /// The managed identity of the Azure resource mfactl runs on.
    Managed,
    /// The Azure CLI's signed-in account (`az login`).
    Cli,
    /// A user signed in with `mfactl login` (device code), renewed from its cached refresh token.
    Device,
}

impl SourceKind {
    /// Every source, in the order [`choose`] tries them.
    pub const ALL: [SourceKind; 7] = [
        SourceKind::Token,
        SourceKind::Secret,
        SourceKind::Certificate,
        SourceKind::Workload,
        SourceKind::Managed,
        SourceKind::Cli,
        SourceKind::Device,
    ];

    /// The lowercase name, as `--auth` takes it.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Token => "token",
            SourceKind::Secret => "secret",
            SourceKind::Certificate => "certificate",
            SourceKind::Workload => "workload",
            SourceKind::Managed => "managed",
            SourceKind::Cli => "cli",
            SourceKind::Device => "device",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An access token as a source hands it over. `Debug` shows the expiry only.
#[derive(Clone)]
pub struct AccessToken {
    pub token: SecretString,
    /// When it expires, if known (a JWT's `exp`, an `expires_in`); `None` for an opaque token
    /// whose lifetime nobody said: it is then renewed only after Graph refuses it.
    pub expires_at: Option<SystemTime>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A source of access tokens. Each call to [`Credential::acquire`] asks the source afresh
/// (caching and renewal timing belong to [`TokenProvider`]).
pub trait Credential: Send + Sync + fmt::Debug {
    fn kind(&self) -> SourceKind;
    /// One line for "signed in with: …", e.g. `secret (client 2b1a…, tenant contoso.onmicrosoft.com,
    /// authority https://login.microsoftonline.com)`. Never a secret.
    fn describe(&self) -> String;
    fn acquire(&self) -> BoxFuture<'_, Result<AccessToken, AuthError>>;
}

/// The credential for `requested`, or, when `None`, the first source that is configured, in
/// the order of [`SourceKind::ALL`]:
///
/// - `token` when `--token-file` is given or `MFACTL_ACCESS_TOKEN` is set;
/// - `secret`, `certificate`, `workload` when their own variable is set (`AZURE_CLIENT_SECRET`,
///   `AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_FEDERATED_TOKEN_FILE`): a missing tenant or client
///   id is then an error naming it, not a reason to fall through to another source;
/// - `managed` when `IDENTITY_ENDPOINT` is set, when `AZURE_POD_IDENTITY_AUTHORITY_HOST` points
///   at an IMDS, or when IMDS answers a probe within [`Env::imds_probe`] (1 s for the process
///   environment, like DefaultAzureCredential's probe; never for a made-up one);
/// - `cli` when `az` is on `PATH`;
/// - `device` when `mfactl login` left a cached sign-in at [`AuthSettings::cache_path`].
///
/// Nothing configured: [`AuthError::NothingConfigured`], naming every source and what configures
/// it. Files named by the settings (certificate, cache) are read here, so their problems show
/// before any work starts; nothing goes over the network except the IMDS probe, which blocks the
/// calling thread for at most [`Env::imds_probe`] and only when no source before `managed` is
/// configured: call `choose` once, before the workers start.
pub fn choose(
    settings: &AuthSettings,
    requested: Option<SourceKind>,
) -> Result<Arc<dyn Credential>, AuthError> {
    let kind = match requested {
        Some(kind) => kind,
        None => automatic(settings)?,
    };
    Ok(match kind {
        SourceKind::Token => Arc::new(TokenCredential::new(settings)?),
        SourceKind::Secret => Arc::new(SecretCredential::new(settings)?),
        SourceKind::Certificate => Arc::new(CertificateCredential::new(settings)?),
        SourceKind::Workload => Arc::new(WorkloadCredential::new(settings)?),
        SourceKind::Managed => Arc::new(ManagedCredential::new(settings)?),
        SourceKind::Cli => Arc::new(CliCredential::new(settings)?),
        SourceKind::Device => Arc::new(DeviceCredential::new(settings)?),
    })
}

/// The first configured source (see [`choose`]).
fn automatic(settings: &AuthSettings) -> Result<SourceKind, AuthError> {
    let env = &settings.env;
    if settings.token_file.is_some() || env.get(settings::TOKEN_ENV).is_some() {
        return Ok(SourceKind::Token);
    }
    if env.get(settings::CLIENT_SECRET_ENV).is_some() {
        return Ok(SourceKind::Secret);
    }
    if settings.certificate_path().is_some() {
        return Ok(SourceKind::Certificate);
    }
    if env.get(settings::FEDERATED_TOKEN_FILE_ENV).is_some() {
        return Ok(SourceKind::Workload);
    }
    if managed::is_configured(env) {
        return Ok(SourceKind::Managed);
    }
    if cli::find_az(env).is_some() {
        return Ok(SourceKind::Cli);
    }
    if settings.cache_path.is_file() {
        return Ok(SourceKind::Device);
    }
    Err(AuthError::NothingConfigured {
        cache_path: crate::text::printable(&settings.cache_path.to_string_lossy()).into_owned(),
    })
}

/// `2b1a…`: enough of an id to tell which one it is in a one-line description.
fn abbreviate(id: &str) -> String {
    let id = crate::text::printable(id);
    if id.chars().count() <= 8 {
        return id.into_owned();
    }
    let mut short: String = id.chars().take(4).collect();
    short.push('…');
    short
}

/// The largest token or assertion file read (they are a few kilobytes).
const MAX_SECRET_FILE: u64 = 1 << 20;

/// A token-bearing file's contents, trimmed, read now (such files are rewritten by whatever
/// refreshes them, so they are read at each acquisition). `empty` says why an empty one may be.
async fn read_secret_file(
    kind: SourceKind,
    what: &'static str,
    path: &std::path::Path,
    empty: &str,
) -> Result<SecretString, AuthError> {
    use tokio::io::AsyncReadExt as _;
    let unreadable = |reason: String| AuthError::Unreadable {
        kind,
        what,
        path: crate::text::printable(&path.to_string_lossy()).into_owned(),
        reason,
    };
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|error| unreadable(error.to_string()))?;
    let mut text = String::new();
    file.take(MAX_SECRET_FILE)
        .read_to_string(&mut text)
        .await
        .map_err(|error| unreadable(error.to_string()))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(unreadable(format!("it is empty{empty}")));
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

#[cfg(test)]
mod tests;
