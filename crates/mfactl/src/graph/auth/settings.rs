//! The non-secret sign-in configuration ([`AuthSettings`]) and the snapshot of the environment
//! the sources read ([`Env`]), so that tests never change the process environment and a run sees
//! one consistent set of variables.
//!
//! Also the check every sign-in URL passes before anything connects: https, or plain http only
//! to a loopback address (an emulator, a local test server) — a client secret, an assertion or
//! a refresh token would otherwise travel unencrypted.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::{Host, Url};

use super::{AuthError, SourceKind};
use crate::graph::Cloud;
use crate::graph::cloud;
use crate::text::printable;

pub(super) const TOKEN_ENV: &str = "MFACTL_ACCESS_TOKEN";
pub(super) const TOKEN_CACHE_ENV: &str = "MFACTL_TOKEN_CACHE";
pub(super) const TENANT_ENV: &str = "AZURE_TENANT_ID";
pub(super) const CLIENT_ID_ENV: &str = "AZURE_CLIENT_ID";
pub(super) const CLIENT_SECRET_ENV: &str = "AZURE_CLIENT_SECRET";
pub(super) const CERTIFICATE_PATH_ENV: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
pub(super) const CERTIFICATE_PASSWORD_ENV: &str = "AZURE_CLIENT_CERTIFICATE_PASSWORD";
pub(super) const FEDERATED_TOKEN_FILE_ENV: &str = "AZURE_FEDERATED_TOKEN_FILE";
pub(super) const AUTHORITY_HOST_ENV: &str = "AZURE_AUTHORITY_HOST";
/// App Service, Functions, Container Apps, Automation: the local token endpoint and its secret.
pub(super) const IDENTITY_ENDPOINT_ENV: &str = "IDENTITY_ENDPOINT";
pub(super) const IDENTITY_HEADER_ENV: &str = "IDENTITY_HEADER";
/// Set (with the two above) only on Service Fabric, whose https endpoint has a self-signed
/// certificate pinned by this thumbprint: not supported.
pub(super) const IDENTITY_SERVER_THUMBPRINT_ENV: &str = "IDENTITY_SERVER_THUMBPRINT";
/// Set (with `IDENTITY_ENDPOINT`) only on Azure Arc, whose challenge protocol is not supported.
pub(super) const IMDS_ENDPOINT_ENV: &str = "IMDS_ENDPOINT";
/// Replaces IMDS's `http://169.254.169.254` (scheme and host; the path is appended), as in the
/// Azure SDK for Python's `ImdsCredential` (`EnvironmentVariables.AZURE_POD_IDENTITY_AUTHORITY_HOST`).
pub(super) const IMDS_HOST_ENV: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";

/// The variables [`Env::from_process`] keeps.
const SNAPSHOT: &[&str] = &[
    TOKEN_ENV,
    TOKEN_CACHE_ENV,
    TENANT_ENV,
    CLIENT_ID_ENV,
    CLIENT_SECRET_ENV,
    CERTIFICATE_PATH_ENV,
    CERTIFICATE_PASSWORD_ENV,
    FEDERATED_TOKEN_FILE_ENV,
    AUTHORITY_HOST_ENV,
    IDENTITY_ENDPOINT_ENV,
    IDENTITY_HEADER_ENV,
    IDENTITY_SERVER_THUMBPRINT_ENV,
    IMDS_ENDPOINT_ENV,
    IMDS_HOST_ENV,
    "PATH",
    "PATHEXT",
    "HOME",
    "XDG_CACHE_HOME",
    "LOCALAPPDATA",
    "USERPROFILE",
    KEYRING_ENV,
];

/// How long [`Env::from_process`] lets the IMDS probe take: Azure SDKs probe for about a second
/// (the Java SDK's 1.12.0 changelog moved it from 0.5 s to 1 s; Python's `ImdsCredential` sends
/// a request without the `Metadata` header and takes any answer as "IMDS is here").
pub const IMDS_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A snapshot of the environment variables the sign-in sources read. `Debug` lists the names
/// only: several values are secrets (`AZURE_CLIENT_SECRET`, `MFACTL_ACCESS_TOKEN`,
/// `IDENTITY_HEADER`, `AZURE_CLIENT_CERTIFICATE_PASSWORD`).
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, OsString>,
    imds_probe: Option<Duration>,
}

impl Env {
    /// The process's variables (those sign-in reads), with the IMDS probe on.
    pub fn from_process() -> Env {
        let vars = SNAPSHOT
            .iter()
            .filter_map(|name| std::env::var_os(name).map(|value| ((*name).to_owned(), value)))
            .collect();
        Env {
            vars,
            imds_probe: Some(IMDS_PROBE_TIMEOUT),
        }
    }

    /// Exactly these variables (tests, embedding), with the IMDS probe off: a made-up
    /// environment is not an Azure VM.
    pub fn from_vars<I, K, V>(vars: I) -> Env
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<OsString>,
    {
        Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            imds_probe: None,
        }
    }

    /// Sets how long the automatic choice may wait for IMDS to answer (`None`: do not probe).
    pub fn with_imds_probe(mut self, timeout: Option<Duration>) -> Env {
        self.imds_probe = timeout;
        self
    }

    /// How long the automatic choice may wait for IMDS to answer (`None`: it does not probe).
    pub fn imds_probe(&self) -> Option<Duration> {
        self.imds_probe
    }

    /// A variable's value, trimmed; `None` when unset, empty or not UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)?
            .to_str()
            .map(str::trim)
            .filter(|value| !value.is_empty())
    }

    /// A variable's raw value (paths).
    pub fn get_os(&self, name: &str) -> Option<&OsStr> {
        self.vars
            .get(name)
            .map(OsString::as_os_str)
            .filter(|value| !value.is_empty())
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("set", &self.vars.keys().collect::<Vec<_>>())
            .field("imds_probe", &self.imds_probe)
            .finish()
    }
}

/// The non-secret sign-in configuration, from flags and the environment. Secrets are never
/// fields: the sources read them from [`Env`] when they are built.
///
/// Fields left `None` fall back on their environment variable (`tenant` on `AZURE_TENANT_ID`,
/// and so on): the accessors ([`AuthSettings::tenant`], …) apply that rule, so a flag always
/// wins over the environment.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub cloud: Cloud,
    /// The Graph root actually used (may be an emulator's `http://127.0.0.1:PORT`): the app-only
    /// scope is `{graph_root}/.default`, the managed identity resource `{graph_root}`.
    pub graph_root: String,
    /// `--authority-host`, else `AZURE_AUTHORITY_HOST`, else the cloud's.
    pub authority_host: Option<String>,
    /// `--tenant`, else `AZURE_TENANT_ID`.
    pub tenant: Option<String>,
    /// `--client-id`, else `AZURE_CLIENT_ID` (for `device`/`login`, else
    /// [`super::DEFAULT_PUBLIC_CLIENT_ID`]).
    pub client_id: Option<String>,
    /// Else `AZURE_CLIENT_CERTIFICATE_PATH`.
    pub certificate_path: Option<PathBuf>,
    /// `--token-file`: a file holding the bearer token, re-read on every renewal.
    pub token_file: Option<PathBuf>,
    /// Where `mfactl login` caches its refresh token ([`AuthSettings::default_cache_path`]).
    pub cache_path: PathBuf,
    /// What `mfactl login` asks for ([`AuthSettings::default_delegated_scopes`]).
    pub delegated_scopes: Vec<String>,
    /// Whether `mfactl login` keeps the refresh token in the OS keyring (when one is usable);
    /// `MFACTL_KEYRING=off` keeps it in the cache file.
    pub keyring: bool,
    pub env: Env,
}

/// `off` keeps the device-code refresh token out of the OS keyring (in the 0600 cache file).
pub const KEYRING_ENV: &str = "MFACTL_KEYRING";

impl AuthSettings {
    /// Settings with no flags: everything from `env` and the cloud's defaults.
    pub fn new(cloud: Cloud, graph_root: impl Into<String>, env: Env) -> AuthSettings {
        let graph_root = graph_root.into().trim_end_matches('/').to_owned();
        AuthSettings {
            cloud,
            cache_path: AuthSettings::default_cache_path(&env),
            delegated_scopes: AuthSettings::default_delegated_scopes(&graph_root),
            graph_root,
            authority_host: None,
            tenant: None,
            client_id: None,
            certificate_path: None,
            token_file: None,
            keyring: env.get(KEYRING_ENV).is_none_or(|value| {
                !matches!(
                    value.trim().to_ascii_lowercase().as_str(),
                    "off" | "0" | "false" | "no"
                )
            }),
            env,
        }
    }

    /// `MFACTL_TOKEN_CACHE`, else the platform's per-user cache folder (see
    /// [`AuthSettings::cache_path_on`]).
    pub fn default_cache_path(env: &Env) -> PathBuf {
        AuthSettings::cache_path_on(env, cfg!(windows))
    }

    /// `MFACTL_TOKEN_CACHE`, else on Windows `%LOCALAPPDATA%\mfactl\token-cache.json` (or
    /// `%USERPROFILE%\AppData\Local\...` when LOCALAPPDATA is unset, as for some services),
    /// elsewhere `$XDG_CACHE_HOME/mfactl/token-cache.json` (an absolute `XDG_CACHE_HOME` only,
    /// as the XDG spec says); then `~/.cache/mfactl/token-cache.json` on both.
    pub fn cache_path_on(env: &Env, windows: bool) -> PathBuf {
        if let Some(path) = env.get_os(TOKEN_CACHE_ENV) {
            return PathBuf::from(path);
        }
        let file = |dir: PathBuf| dir.join("mfactl").join("token-cache.json");
        if windows {
            if let Some(dir) = env.get_os("LOCALAPPDATA") {
                return file(PathBuf::from(dir));
            }
            if let Some(profile) = env.get_os("USERPROFILE") {
                return file(PathBuf::from(profile).join("AppData").join("Local"));
            }
        } else if let Some(dir) = env.get_os("XDG_CACHE_HOME").map(PathBuf::from)
            && dir.is_absolute()
        {
            return file(dir);
        }
        match env.get_os("HOME") {
            Some(home) => file(PathBuf::from(home).join(".cache")),
            None => file(PathBuf::from(".cache")),
        }
    }

    /// The delegated permissions `mfactl login` asks for, prefixed with the Graph root: what
    /// plan and apply need (graph-api.md §1–2, [`crate::graph::permissions`]; Policy.Read.All
    /// reads the Conditional Access policies a plan that disables per-user MFA checks), and
    /// `offline_access` for the refresh token.
    pub fn default_delegated_scopes(graph_root: &str) -> Vec<String> {
        let mut scopes: Vec<String> = [
            "UserAuthenticationMethod.ReadWrite.All",
            "Policy.ReadWrite.AuthenticationMethod",
            "Policy.Read.All",
            "User.Read.All",
        ]
        .iter()
        .map(|permission| cloud::delegated_scope(graph_root, permission))
        .collect();
        scopes.push("offline_access".to_owned());
        scopes
    }

    /// The app-only scope: `{graph_root}/.default`.
    pub fn scope(&self) -> String {
        cloud::default_scope(&self.graph_root)
    }

    /// `--tenant`, else `AZURE_TENANT_ID`.
    pub fn tenant(&self) -> Option<&str> {
        non_empty(self.tenant.as_deref()).or_else(|| self.env.get(TENANT_ENV))
    }

    /// `--client-id`, else `AZURE_CLIENT_ID`.
    pub fn client_id(&self) -> Option<&str> {
        non_empty(self.client_id.as_deref()).or_else(|| self.env.get(CLIENT_ID_ENV))
    }

    /// The certificate file: the field, else `AZURE_CLIENT_CERTIFICATE_PATH`.
    pub fn certificate_path(&self) -> Option<PathBuf> {
        self.certificate_path
            .clone()
            .filter(|path| !path.as_os_str().is_empty())
            .or_else(|| self.env.get_os(CERTIFICATE_PATH_ENV).map(PathBuf::from))
    }

    /// The sign-in authority (`https://login.microsoftonline.com`, no trailing slash): the
    /// field, else `AZURE_AUTHORITY_HOST`, else the cloud's. A host without a scheme gets
    /// https (the Azure SDKs accept `login.microsoftonline.us`). Refused before any connection:
    /// plain http to anything but a loopback address, credentials, a query or a fragment.
    pub fn authority(&self) -> Result<String, AuthError> {
        let (origin, text) = match non_empty(self.authority_host.as_deref()) {
            Some(text) => ("--authority-host", text),
            None => match self.env.get(AUTHORITY_HOST_ENV) {
                Some(text) => (AUTHORITY_HOST_ENV, text),
                None => return Ok(self.cloud.authority_host().to_owned()),
            },
        };
        let text = if text.contains("://") {
            text.to_owned()
        } else {
            format!("https://{text}")
        };
        let url = check_url(origin, &text, None, Allow::Loopback)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(AuthError::Misconfigured {
                kind: None,
                problem: format!(
                    "{origin} {}: an authority host has no query or fragment (e.g. \
                     https://login.microsoftonline.com)",
                    shown(&url)
                ),
            });
        }
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }

    /// `{authority}/{tenant}/oauth2/v2.0/{endpoint}` for a checked tenant.
    pub(super) fn entra_url(
        &self,
        kind: SourceKind,
        authority: &str,
        tenant: &str,
        endpoint: &str,
    ) -> Result<Url, AuthError> {
        check_tenant(kind, tenant)?;
        Url::parse(&format!("{authority}/{tenant}/oauth2/v2.0/{endpoint}")).map_err(|error| {
            AuthError::Misconfigured {
                kind: Some(kind),
                problem: format!("cannot form the token URL ({error})"),
            }
        })
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

/// Refuses a tenant that is not a GUID, a domain name or an alias (`organizations`, `common`):
/// it goes into the token URL's path, where `/`, `?` or `..` would address something else.
pub(super) fn check_tenant(kind: SourceKind, tenant: &str) -> Result<(), AuthError> {
    let valid = !tenant.is_empty()
        && tenant.len() <= 256
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !tenant.starts_with('.')
        && !tenant.contains("..");
    if valid {
        Ok(())
    } else {
        Err(AuthError::Misconfigured {
            kind: Some(kind),
            problem: format!(
                "the tenant \"{}\" is neither a tenant id (GUID) nor a domain name; set \
                 --tenant or {TENANT_ENV} to e.g. contoso.onmicrosoft.com",
                printable(tenant)
            ),
        })
    }
}

/// Which plain-http hosts a URL may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Allow {
    /// Loopback addresses and `localhost`.
    Loopback,
    /// Those and IMDS's link-local `169.254.169.254`.
    LoopbackOrImds,
}

/// Parses `text` (named `origin` in messages) and refuses, before any connection, a scheme
/// other than https (http only to the hosts `allow` names) and credentials in the URL. Messages
/// never echo a password.
pub(super) fn check_url(
    origin: &str,
    text: &str,
    kind: Option<SourceKind>,
    allow: Allow,
) -> Result<Url, AuthError> {
    let misconfigured = |problem: String| AuthError::Misconfigured { kind, problem };
    let url = Url::parse(text.trim()).map_err(|error| {
        misconfigured(format!(
            "{origin} is not a valid URL ({error}); give e.g. https://login.microsoftonline.com"
        ))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(misconfigured(format!(
            "{origin} contains a user name or password; refused (nothing was sent)"
        )));
    }
    let loopback = match url.host() {
        Some(Host::Ipv4(ip)) => {
            ip.is_loopback() || (allow == Allow::LoopbackOrImds && ip == IMDS_ADDRESS)
        }
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(misconfigured(format!(
            "{origin} {} would send credentials unencrypted: use https (plain http only to a \
             loopback address{}); refused before any connection",
            shown(&url),
            if allow == Allow::LoopbackOrImds {
                " or IMDS's 169.254.169.254"
            } else {
                ""
            }
        ))),
        _ => Err(misconfigured(format!(
            "{origin} must be an https:// URL (or http:// to a loopback address)"
        ))),
    }
}

/// IMDS's link-local address.
pub(super) const IMDS_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 169, 254);

/// A URL as messages show it: scheme, host, port and path; never a query (it may carry ids
/// that are none of the reader's business) and never credentials.
pub(super) fn shown(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    printable(url.as_str().trim_end_matches('/')).into_owned()
}
