//! `device`: an admin signed in with `mfactl login` (OAuth device authorization grant), renewed
//! silently from the refresh token [`super::cache`] keeps.
//!
//! `login`: `POST {authority}/{tenant or organizations}/oauth2/v2.0/devicecode` with `client_id`
//! and `scope`; Entra answers `{device_code, user_code, verification_uri, expires_in, interval,
//! message}` and the `message` is shown as is (escaped). Then `POST …/token` with
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id&device_code` every
//! `interval` seconds: `authorization_pending` → wait; `slow_down` → wait 5 s longer from then on
//! (RFC 8628 §3.5); `authorization_declined` (Entra's word) or `access_denied` (RFC 8628's),
//! `expired_token`, `bad_verification_code` → stop (Microsoft's v2-oauth2-device-code page).
//!
//! Renewal: `grant_type=refresh_token&client_id&refresh_token&scope` against the authority and
//! tenant that issued it; Entra may hand back a new refresh token, which replaces the cached one.
//! `invalid_grant` or `interaction_required` (expired, revoked, new MFA or Conditional Access
//! requirements) → [`AuthError::LoginExpired`]: run `mfactl login` again.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::warn;

use super::cache::{self, CachedLogin};
use super::error::Rejection;
use super::http::{SignInHttp, TokenAnswer, number, request_token};
use super::settings::{check_tenant, shown};
use super::token::timestamp;
use super::{AccessToken, AuthError, AuthSettings, Credential, SourceKind, abbreviate};
use crate::graph::claims;
use crate::text::printable;

/// The public client `login` signs in through when no `--client-id`/`AZURE_CLIENT_ID` is given:
/// Microsoft Graph Command Line Tools (formerly "Microsoft Graph PowerShell"), the first-party
/// app behind `Connect-MgGraph`, present in every tenant. A tenant may block it or require
/// admin consent for the scopes asked; `--client-id` then names the organisation's own app
/// registration (a public client with "Allow public client flows" on).
pub const DEFAULT_PUBLIC_CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What `mfactl login` achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginOutcome {
    /// Where the refresh token was cached.
    pub cache_path: PathBuf,
    /// The signed-in user, when the token says.
    pub upn: Option<String>,
    /// The user's tenant, when the token says.
    pub tenant_id: Option<String>,
    /// The scopes Entra granted (its `scope` answer).
    pub scopes: Vec<String>,
    /// When the first access token expires.
    pub expires_at: Option<SystemTime>,
}

/// The `device` source.
pub struct DeviceCredential {
    path: PathBuf,
    /// Whether a renewed refresh token goes to the OS keyring ([`AuthSettings::keyring`]).
    keyring: bool,
    /// What the cache said when the source was built (for `describe`); each acquisition reads
    /// the file again for the newest refresh token.
    login: CachedLogin,
    http: SignInHttp,
}

impl DeviceCredential {
    pub fn new(settings: &AuthSettings) -> Result<DeviceCredential, AuthError> {
        let path = settings.cache_path.clone();
        let login = cache::load(&path)?.ok_or_else(|| AuthError::NotLoggedIn {
            path: printable(&path.to_string_lossy()).into_owned(),
        })?;
        let authority = settings.authority()?;
        if !authority.eq_ignore_ascii_case(&login.authority) {
            return Err(AuthError::Misconfigured {
                kind: Some(SourceKind::Device),
                problem: format!(
                    "the cached sign-in ({}) is for the authority {}, not {}; run `mfactl login` \
                     with this run's --cloud / --authority-host",
                    printable(&path.to_string_lossy()),
                    printable(&login.authority),
                    printable(&authority)
                ),
            });
        }
        check_tenant(SourceKind::Device, &login.tenant)?;
        Ok(DeviceCredential {
            path,
            keyring: settings.keyring,
            login,
            http: SignInHttp::entra()?,
        })
    }

    async fn refresh(&self) -> Result<AccessToken, AuthError> {
        let mut login = cache::load(&self.path)?.ok_or_else(|| AuthError::NotLoggedIn {
            path: printable(&self.path.to_string_lossy()).into_owned(),
        })?;
        check_tenant(SourceKind::Device, &login.tenant)?;
        let token_url = url::Url::parse(&format!(
            "{}/{}/oauth2/v2.0/token",
            login.authority, login.tenant
        ))
        .map_err(|error| AuthError::Cache {
            path: printable(&self.path.to_string_lossy()).into_owned(),
            problem: format!("names an unusable authority ({error}); run `mfactl login` again"),
        })?;
        let scope = login.scopes.join(" ");
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", login.client_id.as_str()),
            ("refresh_token", login.refresh_token.expose_secret()),
            ("scope", scope.as_str()),
        ];
        let answer = match request_token(&self.http, SourceKind::Device, &token_url, &form).await {
            Ok(answer) => answer,
            Err(AuthError::Rejected(rejection)) if rejection.is_grant_gone() => {
                return Err(login_expired(&login, &rejection));
            }
            Err(error) => return Err(error),
        };
        if let Some(rotated) = answer.refresh_token {
            login.refresh_token = rotated;
            login.saved_at = jiff::Timestamp::now().to_string();
            if let Err(error) = cache::save(&self.path, &login, self.keyring) {
                // The access token is good; the old refresh token stays valid until it expires.
                warn!(%error, "could not store the renewed refresh token");
            }
        }
        Ok(answer.access)
    }
}

fn login_expired(login: &CachedLogin, rejection: &Rejection) -> AuthError {
    let mut detail = rejection
        .error
        .clone()
        .unwrap_or_else(|| "refused".to_owned());
    if let Some(description) = &rejection.description {
        detail.push_str(": ");
        detail.push_str(description);
    } else if let Some(code) = &rejection.code {
        detail.push_str(": ");
        detail.push_str(code);
    }
    AuthError::LoginExpired {
        user: login
            .upn
            .as_deref()
            .map(|upn| format!(" of {}", printable(upn)))
            .unwrap_or_default(),
        detail,
    }
}

impl fmt::Debug for DeviceCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCredential")
            .field("path", &self.path)
            .field("login", &self.login)
            .finish()
    }
}

impl Credential for DeviceCredential {
    fn kind(&self) -> SourceKind {
        SourceKind::Device
    }

    fn describe(&self) -> String {
        let mut text = "device (".to_owned();
        if let Some(upn) = &self.login.upn {
            text.push_str(&format!("user {}, ", printable(upn)));
        }
        text.push_str(&format!(
            "tenant {}, client {}, authority {}, cached in {})",
            printable(&self.login.tenant),
            abbreviate(&self.login.client_id),
            printable(&self.login.authority),
            printable(&self.path.to_string_lossy())
        ));
        text
    }

    fn acquire(&self) -> BoxFuture<'_, Result<AccessToken, AuthError>> {
        Box::pin(self.refresh())
    }
}

/// Signs a user in with the device code flow (`prompt` shows Entra's instructions: a URL and
/// a code to enter there) and caches the refresh token at [`AuthSettings::cache_path`].
pub async fn login(
    settings: &AuthSettings,
    prompt: &mut dyn FnMut(&str),
) -> Result<LoginOutcome, AuthError> {
    let http = SignInHttp::entra()?;
    login_with(settings, prompt, &http, &|delay| {
        Box::pin(tokio::time::sleep(delay))
    })
    .await
}

/// How [`login_with`] waits between polls (tests count the waits instead of sleeping).
pub(super) type Sleep<'a> = &'a (dyn Fn(Duration) -> BoxFuture<'static, ()> + Sync);

pub(super) async fn login_with(
    settings: &AuthSettings,
    prompt: &mut dyn FnMut(&str),
    http: &SignInHttp,
    sleep: Sleep<'_>,
) -> Result<LoginOutcome, AuthError> {
    let kind = SourceKind::Device;
    let authority = settings.authority()?;
    let tenant = settings.tenant().unwrap_or("organizations").to_owned();
    let client_id = settings
        .client_id()
        .unwrap_or(DEFAULT_PUBLIC_CLIENT_ID)
        .to_owned();
    let mut scopes = settings.delegated_scopes.clone();
    if !scopes
        .iter()
        .any(|s| s.eq_ignore_ascii_case("offline_access"))
    {
        scopes.push("offline_access".to_owned());
    }
    let scope = scopes.join(" ");
    let code_url = settings.entra_url(kind, &authority, &tenant, "devicecode")?;
    let token_url = settings.entra_url(kind, &authority, &tenant, "token")?;

    let answer = http
        .post_form(
            kind,
            &code_url,
            &[("client_id", &client_id), ("scope", &scope)],
        )
        .await?;
    if !answer.status.is_success() {
        let rejection = Rejection::from_answer(
            kind,
            "Entra ID",
            shown(&code_url),
            answer.status.as_u16(),
            &answer.body,
        );
        return Err(AuthError::Rejected(Box::new(rejection)));
    }
    let bad = |problem: &str| AuthError::BadAnswer {
        kind,
        endpoint: shown(&code_url),
        problem: problem.to_owned(),
    };
    let mut code: Value =
        serde_json::from_slice(&answer.body).map_err(|_| bad("with something that is not JSON"))?;
    let device_code = match code.get_mut("device_code").map(Value::take) {
        Some(Value::String(device_code)) if !device_code.is_empty() => {
            SecretString::from(device_code)
        }
        _ => return Err(bad("without a device_code")),
    };
    let message = match code.get("message").and_then(Value::as_str) {
        Some(message) => printable(message).into_owned(),
        None => format!(
            "To sign in, open {} and enter the code {}",
            printable(
                code.get("verification_uri")
                    .and_then(Value::as_str)
                    .unwrap_or("(no address given)")
            ),
            printable(
                code.get("user_code")
                    .and_then(Value::as_str)
                    .unwrap_or("(no code given)")
            )
        ),
    };
    // Entra gives 900 s and 5 s; an answer's absurd values are clamped, never waited out.
    let lifetime = Duration::from_secs(number(code.get("expires_in")).unwrap_or(900).min(3600));
    let mut interval = Duration::from_secs(number(code.get("interval")).unwrap_or(5).min(60));
    prompt(&message);

    let mut waited = Duration::ZERO;
    let tokens = loop {
        sleep(interval).await;
        waited += interval;
        let form = [
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", client_id.as_str()),
            ("device_code", device_code.expose_secret()),
        ];
        let answer = http.post_form(kind, &token_url, &form).await?;
        match TokenAnswer::read(kind, "Entra ID", &token_url, answer) {
            Ok(tokens) => break tokens,
            Err(AuthError::Rejected(rejection)) => match rejection.error.as_deref() {
                Some("authorization_pending") => {}
                Some("slow_down") => interval += Duration::from_secs(5),
                Some("authorization_declined" | "access_denied") => {
                    return Err(AuthError::Login {
                        problem: "the sign-in was declined; nothing was cached".to_owned(),
                    });
                }
                Some("expired_token" | "code_expired" | "bad_verification_code") => {
                    return Err(expired(lifetime));
                }
                _ => return Err(AuthError::Rejected(rejection)),
            },
            Err(error) => return Err(error),
        }
        if waited >= lifetime {
            return Err(expired(lifetime));
        }
    };

    let refresh_token = tokens.refresh_token.ok_or_else(|| AuthError::Login {
        problem: "Entra gave no refresh token (offline_access was not granted), so there is \
                  nothing to cache; ask an administrator to allow offline_access for the app"
            .to_owned(),
    })?;
    let access = claims::decode(tokens.access.token.expose_secret());
    let id = tokens
        .id_token
        .as_ref()
        .and_then(|id| claims::decode(id.expose_secret()));
    let upn = access
        .as_ref()
        .and_then(|c| c.upn.clone())
        .or_else(|| id.as_ref().and_then(|c| c.upn.clone()));
    let tenant_id = access
        .as_ref()
        .and_then(|c| c.tenant_id.clone())
        .or_else(|| id.as_ref().and_then(|c| c.tenant_id.clone()));
    let cached = CachedLogin {
        authority,
        tenant: tenant_id.clone().unwrap_or(tenant),
        client_id,
        upn: upn.clone(),
        refresh_token,
        scopes,
        saved_at: jiff::Timestamp::now().to_string(),
    };
    cache::save(&settings.cache_path, &cached, settings.keyring)?;
    tracing::debug!(
        cache = %printable(&settings.cache_path.to_string_lossy()),
        expires = %tokens.access.expires_at.map(timestamp).unwrap_or_default(),
        "signed in with the device code flow"
    );
    Ok(LoginOutcome {
        cache_path: settings.cache_path.clone(),
        upn,
        tenant_id,
        scopes: tokens.scopes,
        expires_at: tokens.access.expires_at,
    })
}

fn expired(lifetime: Duration) -> AuthError {
    AuthError::Login {
        problem: format!(
            "the code expired before the sign-in finished (it lasts {} minutes); run `mfactl \
             login` again",
            lifetime.as_secs().div_ceil(60)
        ),
    }
}

/// Removes the cached sign-in: `Some(path)` when there was one.
pub fn logout(settings: &AuthSettings) -> Result<Option<PathBuf>, AuthError> {
    Ok(cache::remove(&settings.cache_path)?.then(|| settings.cache_path.clone()))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::graph::auth::testing::{FakeServer, Recorded, jwt, settings};

    const TENANT_ID: &str = "9c0e5f1a-0000-4000-8000-000000000001";
    const DEVICE_CODE: &str = "DAQABAAEAAAD--device-code-secret";
    const MESSAGE: &str = "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ABCD1234 to authenticate.";

    fn pending(error: &str, code: u32) -> (u16, String) {
        (
            400,
            serde_json::json!({
                "error": error,
                "error_description": format!("AADSTS{code}: {error}.\r\nTrace ID: x"),
                "error_codes": [code],
            })
            .to_string(),
        )
    }

    fn device_code_answer(expires_in: u64) -> (u16, String) {
        (
            200,
            serde_json::json!({
                "device_code": DEVICE_CODE,
                "user_code": "ABCD1234",
                "verification_uri": "https://microsoft.com/devicelogin",
                "expires_in": expires_in,
                "interval": 5,
                "message": MESSAGE,
            })
            .to_string(),
        )
    }

    fn signed_in(refresh_token: &str) -> (u16, String) {
        let access = jwt(serde_json::json!({
            "tid": TENANT_ID,
            "upn": "admin@contoso.com",
            "scp": "UserAuthenticationMethod.ReadWrite.All Policy.ReadWrite.AuthenticationMethod User.Read.All",
            "exp": crate::graph::auth::testing::epoch_in(Duration::from_secs(4000)),
        }));
        (
            200,
            serde_json::json!({
                "token_type": "Bearer",
                "scope": "https://graph.microsoft.com/UserAuthenticationMethod.ReadWrite.All https://graph.microsoft.com/Policy.ReadWrite.AuthenticationMethod https://graph.microsoft.com/User.Read.All",
                "expires_in": 4000,
                "access_token": access,
                "refresh_token": refresh_token,
            })
            .to_string(),
        )
    }

    /// Logs in against `server` with a recording sleeper; the prompt's messages and the waits.
    async fn log_in(
        settings: &AuthSettings,
    ) -> (Result<LoginOutcome, AuthError>, Vec<String>, Vec<Duration>) {
        let waits: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let recorded = waits.clone();
        let sleep = move |delay: Duration| -> BoxFuture<'static, ()> {
            recorded.lock().unwrap().push(delay);
            Box::pin(async {})
        };
        let mut shown = Vec::new();
        let mut prompt = |message: &str| shown.push(message.to_owned());
        let http = SignInHttp::entra().unwrap().without_backoff();
        let outcome = login_with(settings, &mut prompt, &http, &sleep).await;
        let waits = waits.lock().unwrap().clone();
        (outcome, shown, waits)
    }

    fn device_settings(server: &FakeServer, dir: &tempfile::TempDir) -> AuthSettings {
        let mut settings = settings(&[], Some(&server.url));
        settings.cache_path = dir
            .path()
            .join("cache")
            .join("mfactl")
            .join("token-cache.json");
        settings
    }

    fn tokens(requests: &[Recorded]) -> Vec<&Recorded> {
        requests
            .iter()
            .filter(|r| r.path.ends_with("/token"))
            .collect()
    }

    #[tokio::test]
    async fn login_polls_until_signed_in_then_caches_the_refresh_token_privately() {
        let server = FakeServer::start(|request, index| {
            if request.path.ends_with("/devicecode") {
                return device_code_answer(900);
            }
            match index {
                1 => pending("authorization_pending", 70016),
                2 => pending("slow_down", 70016),
                3 => pending("authorization_pending", 70016),
                _ => signed_in("refresh-token-1"),
            }
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let settings = device_settings(&server, &dir);
        let (outcome, shown, waits) = log_in(&settings).await;
        let outcome = outcome.unwrap();
        assert_eq!(shown, [MESSAGE]);
        assert_eq!(
            waits,
            [5, 5, 10, 10].map(Duration::from_secs),
            "interval, then 5 s more after slow_down"
        );
        assert_eq!(outcome.cache_path, settings.cache_path);
        assert_eq!(outcome.upn.as_deref(), Some("admin@contoso.com"));
        assert_eq!(outcome.tenant_id.as_deref(), Some(TENANT_ID));
        assert_eq!(outcome.scopes.len(), 3);
        assert!(outcome.expires_at.is_some());

        let requests = server.requests();
        let code = &requests[0];
        assert_eq!(code.path, "/organizations/oauth2/v2.0/devicecode");
        assert_eq!(code.form_names(), ["client_id", "scope"]);
        assert_eq!(code.form("client_id"), Some(DEFAULT_PUBLIC_CLIENT_ID));
        assert_eq!(
            code.form("scope"),
            Some(
                "https://graph.microsoft.com/UserAuthenticationMethod.ReadWrite.All \
                 https://graph.microsoft.com/Policy.ReadWrite.AuthenticationMethod \
                 https://graph.microsoft.com/Policy.Read.All \
                 https://graph.microsoft.com/User.Read.All offline_access"
            )
        );
        for poll in tokens(&requests) {
            assert_eq!(poll.path, "/organizations/oauth2/v2.0/token");
            assert_eq!(
                poll.form_names(),
                ["client_id", "device_code", "grant_type"]
            );
            assert_eq!(poll.form("grant_type"), Some(DEVICE_CODE_GRANT));
            assert_eq!(poll.form("device_code"), Some(DEVICE_CODE));
        }

        // The cache: 0600 in a 0700 directory, no temporary file left, the user's tenant.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |path: &std::path::Path| {
                std::fs::metadata(path).unwrap().permissions().mode() & 0o777
            };
            assert_eq!(mode(&settings.cache_path), 0o600);
            assert_eq!(mode(settings.cache_path.parent().unwrap()), 0o700);
        }
        let files: Vec<_> = std::fs::read_dir(settings.cache_path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, ["token-cache.json"]);
        let cached: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&settings.cache_path).unwrap()).unwrap();
        assert_eq!(cached["tenant"], TENANT_ID);
        assert_eq!(cached["authority"], server.url);
        assert_eq!(cached["client_id"], DEFAULT_PUBLIC_CLIENT_ID);
        assert_eq!(cached["upn"], "admin@contoso.com");
        assert_eq!(cached["refresh_token"], "refresh-token-1");
        assert_eq!(cached["scopes"].as_array().unwrap().len(), 5);
        assert!(
            cached["saved_at"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_device_source_refreshes_silently_and_keeps_the_rotated_token() {
        let server = FakeServer::start(|request, index| {
            if request.path.ends_with("/devicecode") {
                return device_code_answer(900);
            }
            match (request.form("grant_type"), index) {
                (Some(DEVICE_CODE_GRANT), _) => signed_in("refresh-token-1"),
                (_, 2) => signed_in("refresh-token-2"),
                _ => pending("invalid_grant", 700082),
            }
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let settings = device_settings(&server, &dir);
        log_in(&settings).await.0.unwrap();

        let credential = DeviceCredential::new(&settings).unwrap();
        assert_eq!(
            credential.describe(),
            format!(
                "device (user admin@contoso.com, tenant {TENANT_ID}, client 14d8…, authority {}, cached in {})",
                server.url,
                settings.cache_path.display()
            )
        );
        let access = credential.acquire().await.unwrap();
        assert!(access.expires_at.is_some());
        let refresh = &server.requests()[2];
        assert_eq!(refresh.path, format!("/{TENANT_ID}/oauth2/v2.0/token"));
        assert_eq!(
            refresh.form_names(),
            ["client_id", "grant_type", "refresh_token", "scope"]
        );
        assert_eq!(refresh.form("grant_type"), Some("refresh_token"));
        assert_eq!(refresh.form("client_id"), Some(DEFAULT_PUBLIC_CLIENT_ID));
        assert_eq!(refresh.form("refresh_token"), Some("refresh-token-1"));
        assert!(
            refresh
                .form("scope")
                .unwrap()
                .ends_with("User.Read.All offline_access")
        );
        let cached = cache::load(&settings.cache_path).unwrap().unwrap();
        assert_eq!(
            cached.refresh_token.expose_secret(),
            "refresh-token-2",
            "rotated"
        );

        // Entra no longer takes it: sign in again.
        let error = credential.acquire().await.unwrap_err();
        assert!(matches!(error, AuthError::LoginExpired { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "device: the cached sign-in of admin@contoso.com no longer works (invalid_grant: \
             AADSTS700082: invalid_grant.); run `mfactl login` again"
        );
        assert!(!format!("{credential:?}").contains("refresh-token"));
    }

    #[tokio::test]
    async fn a_declined_or_expired_sign_in_caches_nothing() {
        let server = FakeServer::start(|request, _| {
            if request.path.ends_with("/devicecode") {
                return device_code_answer(900);
            }
            pending("authorization_declined", 70000)
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let settings = device_settings(&server, &dir);
        let error = log_in(&settings).await.0.unwrap_err().to_string();
        assert_eq!(error, "login: the sign-in was declined; nothing was cached");
        assert!(!settings.cache_path.exists());

        let server = FakeServer::start(|request, _| {
            if request.path.ends_with("/devicecode") {
                return device_code_answer(12);
            }
            pending("authorization_pending", 70016)
        })
        .await;
        let settings = device_settings(&server, &dir);
        let (outcome, _, waits) = log_in(&settings).await;
        let error = outcome.unwrap_err().to_string();
        assert!(
            error.starts_with("login: the code expired before the sign-in finished"),
            "{error}"
        );
        assert_eq!(
            waits.len(),
            3,
            "polled until the code's lifetime was used up"
        );
        assert!(!settings.cache_path.exists());
    }

    #[tokio::test]
    async fn a_tenant_and_client_given_are_used_and_refusals_explained() {
        let server = FakeServer::start(|_, _| {
            (
                400,
                serde_json::json!({
                    "error": "invalid_client",
                    "error_description": "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                    "error_codes": [7000218],
                })
                .to_string(),
            )
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let mut settings = device_settings(&server, &dir);
        settings.tenant = Some("contoso.onmicrosoft.com".to_owned());
        settings.client_id = Some("11112222-0000-4000-8000-000000000004".to_owned());
        let error = log_in(&settings).await.0.unwrap_err().to_string();
        assert!(error.contains("AADSTS7000218"), "{error}");
        assert!(
            error.contains("enable \"Allow public client flows\""),
            "{error}"
        );
        let request = &server.requests()[0];
        assert_eq!(
            request.path,
            "/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
        );
        assert_eq!(
            request.form("client_id"),
            Some("11112222-0000-4000-8000-000000000004")
        );
    }

    #[test]
    fn without_a_login_the_device_source_says_to_log_in_and_logout_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings(&[], None);
        settings.cache_path = dir.path().join("token-cache.json");
        let error = DeviceCredential::new(&settings).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "device: no cached sign-in at {}; run `mfactl login` first",
                settings.cache_path.display()
            )
        );
        assert_eq!(logout(&settings).unwrap(), None);
        let login = CachedLogin {
            authority: "https://login.microsoftonline.us".to_owned(),
            tenant: TENANT_ID.to_owned(),
            client_id: DEFAULT_PUBLIC_CLIENT_ID.to_owned(),
            upn: None,
            refresh_token: SecretString::from("rt".to_owned()),
            scopes: vec![],
            saved_at: String::new(),
        };
        cache::save(&settings.cache_path, &login, false).unwrap();
        // A sign-in from another cloud is not used against this one.
        let error = DeviceCredential::new(&settings).unwrap_err().to_string();
        assert!(error.contains("is for the authority https://login.microsoftonline.us, not https://login.microsoftonline.com"), "{error}");
        assert_eq!(
            logout(&settings).unwrap(),
            Some(settings.cache_path.clone())
        );
        assert!(!settings.cache_path.exists());
        assert_eq!(logout(&settings).unwrap(), None);

        std::fs::write(&settings.cache_path, "{not json").unwrap();
        let error = DeviceCredential::new(&settings).unwrap_err().to_string();
        assert!(
            error.ends_with("is not JSON; run `mfactl login` again"),
            "{error}"
        );
    }
}
