//! `secret`: an application's client secret, from `AZURE_CLIENT_SECRET` only (never a flag: a
//! command line is visible to every user of the machine and lands in shell history), exchanged
//! for an app-only token with the client credentials grant (graph-api.md §9):
//! `POST {authority}/{tenant}/oauth2/v2.0/token` with
//! `grant_type=client_credentials&client_id&client_secret&scope={graph_root}/.default`.
//!
//! Also the application identity (tenant, client id, token URL) that `certificate` and
//! `workload` share.

use std::fmt;

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::http::{SignInHttp, request_token};
use super::settings::{CLIENT_ID_ENV, CLIENT_SECRET_ENV, TENANT_ENV, shown};
use super::{AccessToken, AuthError, AuthSettings, Credential, SourceKind, abbreviate};
use crate::text::printable;

/// An application signing in on its own behalf (client credentials): who it is and where.
#[derive(Clone, Debug)]
pub(super) struct AppIdentity {
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    pub token_url: Url,
    pub scope: String,
}

impl AppIdentity {
    /// Tenant and client id from the settings; `configured_by` is the variable that chose the
    /// source, named when the others are missing.
    pub fn new(
        settings: &AuthSettings,
        kind: SourceKind,
        configured_by: &str,
    ) -> Result<AppIdentity, AuthError> {
        let tenant = settings.tenant();
        let client_id = settings.client_id();
        let mut missing = Vec::new();
        if tenant.is_none() {
            missing.push(format!("{TENANT_ENV} (or --tenant)"));
        }
        if client_id.is_none() {
            missing.push(format!("{CLIENT_ID_ENV} (or --client-id)"));
        }
        if !missing.is_empty() {
            return Err(AuthError::Misconfigured {
                kind: Some(kind),
                problem: format!(
                    "{configured_by} needs {} too: set {}",
                    missing.join(" and "),
                    if missing.len() == 1 { "it" } else { "them" }
                ),
            });
        }
        let (tenant, client_id) = (tenant.unwrap_or_default(), client_id.unwrap_or_default());
        let authority = settings.authority()?;
        let token_url = settings.entra_url(kind, &authority, tenant, "token")?;
        Ok(AppIdentity {
            authority,
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            token_url,
            scope: settings.scope(),
        })
    }

    /// `client 2b1a…, tenant contoso.onmicrosoft.com, authority https://login.microsoftonline.com`.
    pub fn describe(&self) -> String {
        format!(
            "client {}, tenant {}, authority {}",
            abbreviate(&self.client_id),
            printable(&self.tenant),
            shown(&Url::parse(&self.authority).expect("checked when built"))
        )
    }
}

/// The `secret` source.
pub struct SecretCredential {
    app: AppIdentity,
    secret: SecretString,
    http: SignInHttp,
}

impl SecretCredential {
    pub fn new(settings: &AuthSettings) -> Result<SecretCredential, AuthError> {
        let secret = settings.env.get(CLIENT_SECRET_ENV).ok_or_else(|| {
            AuthError::Misconfigured {
                kind: Some(SourceKind::Secret),
                problem: format!(
                    "{CLIENT_SECRET_ENV} is not set (with {TENANT_ENV} and {CLIENT_ID_ENV}); the \
                     secret is read from the environment only, never from a flag"
                ),
            }
        })?;
        Ok(SecretCredential {
            app: AppIdentity::new(settings, SourceKind::Secret, CLIENT_SECRET_ENV)?,
            secret: SecretString::from(secret.to_owned()),
            http: SignInHttp::entra()?,
        })
    }

    #[cfg(test)]
    pub(super) fn without_backoff(mut self) -> SecretCredential {
        self.http = self.http.without_backoff();
        self
    }
}

impl fmt::Debug for SecretCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretCredential")
            .field("app", &self.app)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl Credential for SecretCredential {
    fn kind(&self) -> SourceKind {
        SourceKind::Secret
    }

    fn describe(&self) -> String {
        format!("secret ({})", self.app.describe())
    }

    fn acquire(&self) -> BoxFuture<'_, Result<AccessToken, AuthError>> {
        Box::pin(async move {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", self.app.client_id.as_str()),
                ("client_secret", self.secret.expose_secret()),
                ("scope", self.app.scope.as_str()),
            ];
            let answer =
                request_token(&self.http, SourceKind::Secret, &self.app.token_url, &form).await?;
            Ok(answer.access)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::auth::testing::{FakeServer, jwt, settings, token_answer};

    const SECRET: &str = "Xy8Q~not-a-real-secret.value_0123456789abcd";
    const TENANT: &str = "contoso.onmicrosoft.com";
    const CLIENT: &str = "2b1a7c3e-0000-4000-8000-000000000002";

    fn vars() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_SECRET", SECRET),
        ]
    }

    #[tokio::test]
    async fn sends_the_client_credentials_grant_and_reads_the_answer() {
        let token = jwt(serde_json::json!({"roles": ["Policy.Read.All"]}));
        let answer = token_answer(&token, 3599);
        let server = FakeServer::start(move |_, _| (200, answer.clone())).await;
        let credential = SecretCredential::new(&settings(&vars(), Some(&server.url))).unwrap();
        assert_eq!(
            credential.describe(),
            format!(
                "secret (client 2b1a…, tenant {TENANT}, authority {})",
                server.url
            )
        );
        let before = std::time::SystemTime::now();
        let access = credential.acquire().await.unwrap();
        assert_eq!(access.token.expose_secret(), token);
        let expires = access.expires_at.unwrap().duration_since(before).unwrap();
        assert!(
            expires.as_secs() >= 3598 && expires.as_secs() <= 3600,
            "{expires:?}"
        );

        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, format!("/{TENANT}/oauth2/v2.0/token"));
        assert_eq!(
            request.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            request.form_names(),
            ["client_id", "client_secret", "grant_type", "scope"]
        );
        assert_eq!(request.form("grant_type"), Some("client_credentials"));
        assert_eq!(request.form("client_id"), Some(CLIENT));
        assert_eq!(request.form("client_secret"), Some(SECRET));
        assert_eq!(
            request.form("scope"),
            Some("https://graph.microsoft.com/.default")
        );
    }

    #[tokio::test]
    async fn a_refusal_names_the_aadsts_code_and_what_to_fix_but_never_the_secret() {
        let server = FakeServer::start(|_, _| {
            (
                401,
                serde_json::json!({
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.\r\nTrace ID: 0000\r\nCorrelation ID: 1111\r\nTimestamp: 2025-01-01 00:00:00Z",
                    "error_codes": [7000215],
                    "trace_id": "0000",
                })
                .to_string(),
            )
        })
        .await;
        let credential = SecretCredential::new(&settings(&vars(), Some(&server.url))).unwrap();
        let error = credential.acquire().await.unwrap_err();
        let AuthError::Rejected(rejection) = &error else {
            panic!("{error:?}")
        };
        assert_eq!(rejection.code.as_deref(), Some("AADSTS7000215"));
        assert_eq!(rejection.error.as_deref(), Some("invalid_client"));
        assert_eq!(rejection.status, 401);
        let message = error.to_string();
        assert!(
            message.starts_with(
                "secret: Entra ID refused the token request (HTTP 401, invalid_client): \
                 AADSTS7000215: Invalid client secret provided."
            ),
            "{message}"
        );
        assert!(
            message.contains("AZURE_CLIENT_SECRET must be the secret's value"),
            "{message}"
        );
        assert!(
            !message.contains("Trace ID"),
            "only the first line: {message}"
        );
        assert!(!message.contains(SECRET) && !format!("{error:?}").contains(SECRET));
        assert_eq!(server.requests().len(), 1, "a 401 is not retried");
    }

    #[tokio::test]
    async fn server_errors_are_retried_then_the_answer_is_used() {
        let server = FakeServer::start(|_, index| match index {
            0 => (503, "{}".to_owned()),
            1 => (500, "not json".to_owned()),
            _ => (200, token_answer("opaque-token", 3599)),
        })
        .await;
        let credential = SecretCredential::new(&settings(&vars(), Some(&server.url)))
            .unwrap()
            .without_backoff();
        let access = credential.acquire().await.unwrap();
        assert_eq!(access.token.expose_secret(), "opaque-token");
        assert_eq!(server.requests().len(), 3);
    }

    #[tokio::test]
    async fn a_persistent_server_error_is_reported_with_its_status() {
        let server = FakeServer::start(|_, _| (503, "<html>busy</html>".to_owned())).await;
        let credential = SecretCredential::new(&settings(&vars(), Some(&server.url)))
            .unwrap()
            .without_backoff();
        let error = credential.acquire().await.unwrap_err().to_string();
        assert!(
            error.starts_with("secret: Entra ID could not answer the token request (HTTP 503)"),
            "{error}"
        );
        assert_eq!(server.requests().len(), 4);
    }

    #[tokio::test]
    async fn an_answer_without_a_token_is_a_bad_answer_that_quotes_nothing() {
        let server = FakeServer::start(|_, _| {
            (
                200,
                r#"{"token_type":"Bearer","refresh_token":"rt-secret-value"}"#.to_owned(),
            )
        })
        .await;
        let credential = SecretCredential::new(&settings(&vars(), Some(&server.url))).unwrap();
        let error = credential.acquire().await.unwrap_err().to_string();
        assert!(error.contains("without an access_token"), "{error}");
        assert!(!error.contains("rt-secret-value"), "{error}");
    }

    #[tokio::test]
    async fn an_unreachable_authority_is_named() {
        // A port nothing listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let credential = SecretCredential::new(&settings(&vars(), Some(&url)))
            .unwrap()
            .without_backoff();
        let error = credential.acquire().await.unwrap_err();
        assert!(matches!(error, AuthError::Unreachable { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("secret: cannot reach {url}/")),
            "{message}"
        );
        assert!(message.contains("after 4 attempts"), "{message}");
    }

    #[test]
    fn missing_companions_are_named() {
        let error = SecretCredential::new(&settings(&[("AZURE_CLIENT_SECRET", SECRET)], None))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "secret: AZURE_CLIENT_SECRET needs AZURE_TENANT_ID (or --tenant) and AZURE_CLIENT_ID \
             (or --client-id) too: set them"
        );
        let error = SecretCredential::new(&settings(
            &[("AZURE_CLIENT_SECRET", SECRET), ("AZURE_CLIENT_ID", CLIENT)],
            None,
        ))
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("needs AZURE_TENANT_ID (or --tenant) too: set it"),
            "{error}"
        );
        let error = SecretCredential::new(&settings(&[], None))
            .unwrap_err()
            .to_string();
        assert!(error.contains("AZURE_CLIENT_SECRET is not set"), "{error}");
    }

    #[test]
    fn flags_win_over_the_environment_and_tenants_are_checked() {
        let mut settings = settings(&vars(), None);
        settings.tenant = Some("fabrikam.onmicrosoft.com".to_owned());
        let credential = SecretCredential::new(&settings).unwrap();
        assert!(
            credential
                .describe()
                .contains("tenant fabrikam.onmicrosoft.com")
        );
        assert!(
            credential
                .describe()
                .ends_with("authority https://login.microsoftonline.com)")
        );
        settings.tenant = Some("../evil?x=".to_owned());
        let error = SecretCredential::new(&settings).unwrap_err().to_string();
        assert!(
            error.contains("neither a tenant id (GUID) nor a domain name"),
            "{error}"
        );
    }
}
