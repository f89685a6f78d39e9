//! `workload`: workload identity federation (AKS workload identity, GitHub Actions, any OIDC
//! issuer the app trusts). Another party writes a short-lived JWT to
//! `AZURE_FEDERATED_TOKEN_FILE` and refreshes it; each acquisition reads the file afresh and
//! sends its contents as the client assertion of a client credentials grant
//! (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`), as the
//! Azure SDKs' `WorkloadIdentityCredential` does.

use std::fmt;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

use super::http::{JWT_BEARER, SignInHttp, request_token};
use super::secret::AppIdentity;
use super::settings::FEDERATED_TOKEN_FILE_ENV;
use super::{AccessToken, AuthError, AuthSettings, Credential, SourceKind};
use crate::text::printable;

/// The `workload` source.
pub struct WorkloadCredential {
    app: AppIdentity,
    token_file: PathBuf,
    http: SignInHttp,
}

impl WorkloadCredential {
    pub fn new(settings: &AuthSettings) -> Result<WorkloadCredential, AuthError> {
        let token_file = settings
            .env
            .get_os(FEDERATED_TOKEN_FILE_ENV)
            .map(PathBuf::from)
            .ok_or_else(|| AuthError::Misconfigured {
                kind: Some(SourceKind::Workload),
                problem: format!(
                    "{FEDERATED_TOKEN_FILE_ENV} is not set: it names the file the federated \
                     token is written to"
                ),
            })?;
        Ok(WorkloadCredential {
            app: AppIdentity::new(settings, SourceKind::Workload, FEDERATED_TOKEN_FILE_ENV)?,
            token_file,
            http: SignInHttp::entra()?,
        })
    }
}

impl fmt::Debug for WorkloadCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadCredential")
            .field("app", &self.app)
            .field("token_file", &self.token_file)
            .finish()
    }
}

/// The federated token, trimmed, read now.
async fn read_assertion(path: &Path) -> Result<SecretString, AuthError> {
    let empty = format!(" (whatever fills {FEDERATED_TOKEN_FILE_ENV} has not written it yet)");
    super::read_secret_file(
        SourceKind::Workload,
        "the federated token file",
        path,
        &empty,
    )
    .await
}

impl Credential for WorkloadCredential {
    fn kind(&self) -> SourceKind {
        SourceKind::Workload
    }

    fn describe(&self) -> String {
        format!(
            "workload ({}, federated token {})",
            self.app.describe(),
            printable(&self.token_file.to_string_lossy())
        )
    }

    fn acquire(&self) -> BoxFuture<'_, Result<AccessToken, AuthError>> {
        Box::pin(async move {
            let assertion = read_assertion(&self.token_file).await?;
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", self.app.client_id.as_str()),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion.expose_secret()),
                ("scope", self.app.scope.as_str()),
            ];
            let answer =
                request_token(&self.http, SourceKind::Workload, &self.app.token_url, &form).await?;
            Ok(answer.access)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::auth::testing::{FakeServer, jwt, settings, token_answer};

    #[tokio::test]
    async fn the_federated_token_is_read_afresh_for_each_acquisition() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("azure-identity-token");
        let first =
            jwt(serde_json::json!({"iss": "https://token.actions.githubusercontent.com", "n": 1}));
        std::fs::write(&file, format!("{first}\n")).unwrap();
        let server = FakeServer::start(|_, _| (200, token_answer("opaque", 3599))).await;
        let file_text = file.to_str().unwrap().to_owned();
        let settings = settings(
            &[
                ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
                ("AZURE_CLIENT_ID", "2b1a7c3e-0000-4000-8000-000000000002"),
                ("AZURE_FEDERATED_TOKEN_FILE", &file_text),
            ],
            Some(&server.url),
        );
        let credential = WorkloadCredential::new(&settings).unwrap();
        assert!(
            credential
                .describe()
                .contains(&format!("federated token {file_text}"))
        );
        credential.acquire().await.unwrap();
        let second =
            jwt(serde_json::json!({"iss": "https://token.actions.githubusercontent.com", "n": 2}));
        std::fs::write(&file, &second).unwrap();
        credential.acquire().await.unwrap();

        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        for (request, assertion) in requests.iter().zip([&first, &second]) {
            assert_eq!(request.path, "/contoso.onmicrosoft.com/oauth2/v2.0/token");
            assert_eq!(
                request.form_names(),
                [
                    "client_assertion",
                    "client_assertion_type",
                    "client_id",
                    "grant_type",
                    "scope"
                ]
            );
            assert_eq!(request.form("grant_type"), Some("client_credentials"));
            assert_eq!(request.form("client_assertion_type"), Some(JWT_BEARER));
            assert_eq!(request.form("client_assertion"), Some(assertion.as_str()));
        }
        assert!(!format!("{credential:?}").contains(&second));

        std::fs::write(&file, "  \n").unwrap();
        let error = credential.acquire().await.unwrap_err().to_string();
        assert!(
            error.starts_with("workload: cannot read the federated token file"),
            "{error}"
        );
        assert!(error.contains("it is empty"), "{error}");
        std::fs::remove_file(&file).unwrap();
        let error = credential.acquire().await.unwrap_err().to_string();
        assert!(error.contains(&file_text), "{error}");
    }

    #[test]
    fn the_file_variable_needs_a_tenant_and_client() {
        let error =
            WorkloadCredential::new(&settings(&[("AZURE_FEDERATED_TOKEN_FILE", "/x")], None))
                .unwrap_err()
                .to_string();
        assert!(
            error.starts_with("workload: AZURE_FEDERATED_TOKEN_FILE needs AZURE_TENANT_ID"),
            "{error}"
        );
    }
}
