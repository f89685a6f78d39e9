//! `token`: a bearer token used as is, from `MFACTL_ACCESS_TOKEN` or `--token-file FILE`.
//!
//! A token file is read again at every renewal, so an external refresher (a sidecar, a cron job,
//! `az account get-access-token > FILE`) keeps a long run going; the variable cannot change
//! during a run, so its token is simply handed over again (and a 401 then ends the run with a
//! message saying so). The expiry is the JWT's `exp` when it has one; an opaque token has none.

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

use super::settings::TOKEN_ENV;
use super::{AccessToken, AuthError, AuthSettings, Credential, SourceKind};
use crate::graph::claims;
use crate::text::printable;

enum Origin {
    /// `MFACTL_ACCESS_TOKEN`, as it was when the source was built.
    Variable(SecretString),
    /// `--token-file`.
    File(PathBuf),
    /// Handed over by the program itself (the in-process emulator's token, a test's).
    Given {
        token: SecretString,
        label: &'static str,
    },
}

/// The `token` source.
pub struct TokenCredential {
    origin: Origin,
}

impl TokenCredential {
    /// `--token-file` when given, else `MFACTL_ACCESS_TOKEN`.
    pub fn new(settings: &AuthSettings) -> Result<TokenCredential, AuthError> {
        let origin = match (&settings.token_file, settings.env.get(TOKEN_ENV)) {
            (Some(path), _) => Origin::File(path.clone()),
            (None, Some(token)) => Origin::Variable(SecretString::from(token.to_owned())),
            (None, None) => {
                return Err(AuthError::Misconfigured {
                    kind: Some(SourceKind::Token),
                    problem: format!(
                        "{TOKEN_ENV} is not set and no --token-file was given; export a Graph \
                         access token, e.g. from `az account get-access-token --resource-type \
                         ms-graph`"
                    ),
                });
            }
        };
        Ok(TokenCredential { origin })
    }

    /// A token the program hands over itself; `label` says where it came from in messages.
    pub fn given(token: SecretString, label: &'static str) -> TokenCredential {
        TokenCredential {
            origin: Origin::Given { token, label },
        }
    }

    /// Where the token comes from, for messages.
    fn origin(&self) -> String {
        match &self.origin {
            Origin::Variable(_) => TOKEN_ENV.to_owned(),
            Origin::File(path) => format!("the file {}", printable(&path.to_string_lossy())),
            Origin::Given { label, .. } => (*label).to_owned(),
        }
    }

    async fn read(&self) -> Result<SecretString, AuthError> {
        match &self.origin {
            Origin::Variable(token) | Origin::Given { token, .. } => Ok(token.clone()),
            Origin::File(path) => {
                super::read_secret_file(SourceKind::Token, "the token file", path, "").await
            }
        }
    }
}

impl fmt::Debug for TokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = match &self.origin {
            Origin::Variable(_) => TOKEN_ENV.to_owned(),
            Origin::File(path) => path.to_string_lossy().into_owned(),
            Origin::Given { label, .. } => (*label).to_owned(),
        };
        f.debug_struct("TokenCredential")
            .field("origin", &origin)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl Credential for TokenCredential {
    fn kind(&self) -> SourceKind {
        SourceKind::Token
    }

    fn describe(&self) -> String {
        match &self.origin {
            Origin::Variable(_) => format!("token (from {TOKEN_ENV})"),
            Origin::Given { label, .. } => format!("token ({label})"),
            Origin::File(path) => format!(
                "token (from the file {}, read again on renewal)",
                printable(&path.to_string_lossy())
            ),
        }
    }

    fn acquire(&self) -> BoxFuture<'_, Result<AccessToken, AuthError>> {
        Box::pin(async move {
            let token = self.read().await?;
            if !token.expose_secret().bytes().all(|b| b.is_ascii_graphic()) {
                return Err(AuthError::InvalidToken {
                    kind: SourceKind::Token,
                    origin: self.origin(),
                });
            }
            let expires_at = claims::decode(token.expose_secret()).and_then(|c| c.expires_at);
            if let Some(expires_at) = expires_at
                && expires_at <= SystemTime::now()
            {
                return Err(AuthError::Expired {
                    kind: SourceKind::Token,
                    origin: self.origin(),
                    when: format!("at {}", timestamp(expires_at)),
                    fix: match self.origin {
                        Origin::Variable(_) => format!("export a new one in {TOKEN_ENV}"),
                        Origin::File(_) => "write a new one to the file".to_owned(),
                        Origin::Given { .. } => "sign in again".to_owned(),
                    },
                });
            }
            Ok(AccessToken { token, expires_at })
        })
    }
}

/// `2025-06-01T10:00:00Z`.
pub(super) fn timestamp(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .unwrap_or_else(|_| "at an unreadable time".to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::graph::auth::testing::{epoch_in, jwt, settings};

    #[tokio::test]
    async fn the_variable_s_token_is_handed_over_with_its_jwt_expiry() {
        let exp = epoch_in(Duration::from_secs(3600));
        let token = jwt(serde_json::json!({"exp": exp}));
        let credential = TokenCredential::new(&settings(
            &[("MFACTL_ACCESS_TOKEN", &format!(" {token}\n"))],
            None,
        ))
        .unwrap();
        assert_eq!(credential.describe(), "token (from MFACTL_ACCESS_TOKEN)");
        let access = credential.acquire().await.unwrap();
        assert_eq!(access.token.expose_secret(), token, "trimmed");
        assert_eq!(
            access.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(exp))
        );
        // An opaque token has no known expiry.
        let credential =
            TokenCredential::new(&settings(&[("MFACTL_ACCESS_TOKEN", "opaque")], None)).unwrap();
        assert_eq!(credential.acquire().await.unwrap().expires_at, None);
    }

    #[tokio::test]
    async fn a_token_file_is_read_again_at_each_acquisition_and_wins_over_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first-token\n").unwrap();
        let mut settings = settings(&[("MFACTL_ACCESS_TOKEN", "from-variable")], None);
        settings.token_file = Some(path.clone());
        let credential = TokenCredential::new(&settings).unwrap();
        assert!(credential.describe().starts_with("token (from the file "));
        assert_eq!(
            credential.acquire().await.unwrap().token.expose_secret(),
            "first-token"
        );
        std::fs::write(&path, "second-token").unwrap();
        assert_eq!(
            credential.acquire().await.unwrap().token.expose_secret(),
            "second-token"
        );
        std::fs::write(&path, "").unwrap();
        let error = credential.acquire().await.unwrap_err().to_string();
        assert!(
            error.starts_with("token: cannot read the token file"),
            "{error}"
        );
        assert!(error.ends_with("it is empty"), "{error}");
    }

    #[tokio::test]
    async fn a_token_no_header_can_carry_or_an_expired_one_is_refused_without_showing_it() {
        let credential =
            TokenCredential::new(&settings(&[("MFACTL_ACCESS_TOKEN", "abc def")], None)).unwrap();
        let error = credential.acquire().await.unwrap_err().to_string();
        assert_eq!(
            error,
            "token: the access token from MFACTL_ACCESS_TOKEN contains characters that cannot be \
             sent in an HTTP header (a space, a line break, a control character or non-ASCII \
             text); copy it again without surrounding spaces or line breaks (nothing was sent)"
        );
        let expired = jwt(serde_json::json!({"exp": 1_600_000_000}));
        let credential =
            TokenCredential::new(&settings(&[("MFACTL_ACCESS_TOKEN", &expired)], None)).unwrap();
        let error = credential.acquire().await.unwrap_err().to_string();
        assert_eq!(
            error,
            "token: the access token from MFACTL_ACCESS_TOKEN expired at 2020-09-13T12:26:40Z; \
             export a new one in MFACTL_ACCESS_TOKEN"
        );
        assert!(!error.contains(&expired));
        let error = TokenCredential::new(&settings(&[], None))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("token: MFACTL_ACCESS_TOKEN is not set and no --token-file"),
            "{error}"
        );
    }
}
