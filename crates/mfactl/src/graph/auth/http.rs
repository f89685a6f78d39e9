//! HTTP for sign-in: its own client (never the Graph transport's: it carries secrets to another
//! host), no redirects (a redirect could carry a form with a secret elsewhere), a 30 s timeout,
//! and a few retries with backoff on 5xx, 429, timeouts and connection errors. A 4xx answer is
//! returned to the caller as is, to be read as Entra's `{error, error_description, error_codes}`.
//!
//! Nothing here logs a request body or an answer body: they hold secrets and tokens.

use std::time::{Duration, SystemTime};

use rand::Rng as _;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde_json::Value;
use tracing::debug;
use url::Url;

use super::error::{AuthError, Rejection};
use super::settings::shown;
use super::{AccessToken, SourceKind};

/// Per-attempt timeout.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts in all, the first included.
const ATTEMPTS: u32 = 4;
/// The first backoff delay; doubled each retry, with jitter.
const FIRST_DELAY: Duration = Duration::from_millis(500);

/// A client for one kind of sign-in endpoint.
#[derive(Clone, Debug)]
pub(super) struct SignInHttp {
    client: reqwest::Client,
    /// Statuses besides 5xx and 429 that are worth another try (IMDS: 404 and 410 while it
    /// starts up, per Microsoft's IMDS retry guidance, which the Azure SDK for Rust follows).
    extra_retry: &'static [u16],
    first_delay: Duration,
}

/// An answer: its status and body.
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl SignInHttp {
    /// For Entra's endpoints: the system proxy (`HTTPS_PROXY`) applies, as for any https host.
    pub fn entra() -> Result<SignInHttp, AuthError> {
        SignInHttp::build(false, &[])
    }

    /// For IMDS and App Service's local endpoint: never through a proxy (the endpoints are
    /// link-local or loopback; a proxy would answer for them, or see the identity header).
    pub fn local() -> Result<SignInHttp, AuthError> {
        SignInHttp::build(true, &[404, 410])
    }

    fn build(no_proxy: bool, extra_retry: &'static [u16]) -> Result<SignInHttp, AuthError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("mfactl/", env!("CARGO_PKG_VERSION")))
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        if no_proxy {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|error| AuthError::Http(error.to_string()))?;
        Ok(SignInHttp {
            client,
            extra_retry,
            first_delay: FIRST_DELAY,
        })
    }

    /// Tests: retries without waiting.
    #[cfg(test)]
    pub fn without_backoff(mut self) -> SignInHttp {
        self.first_delay = Duration::from_millis(1);
        self
    }

    /// POSTs a form (`application/x-www-form-urlencoded`).
    pub async fn post_form(
        &self,
        kind: SourceKind,
        url: &Url,
        form: &[(&str, &str)],
    ) -> Result<Answer, AuthError> {
        self.send(kind, url, || self.client.post(url.clone()).form(form))
            .await
    }

    /// GETs with extra headers.
    pub async fn get(
        &self,
        kind: SourceKind,
        url: &Url,
        headers: &HeaderMap,
    ) -> Result<Answer, AuthError> {
        self.send(kind, url, || {
            self.client.get(url.clone()).headers(headers.clone())
        })
        .await
    }

    async fn send(
        &self,
        kind: SourceKind,
        url: &Url,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, AuthError> {
        let endpoint = shown(url);
        let mut delay = self.first_delay;
        let mut attempt = 1;
        loop {
            let outcome = match request().send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(body) => Ok(Answer {
                            status,
                            body: body.to_vec(),
                        }),
                        Err(error) => Err(describe(&error)),
                    }
                }
                Err(error) => Err(describe(&error)),
            };
            let retry = match &outcome {
                Ok(answer) => {
                    answer.status.is_server_error()
                        || answer.status == StatusCode::TOO_MANY_REQUESTS
                        || self.extra_retry.contains(&answer.status.as_u16())
                }
                Err(_) => true,
            };
            if !retry || attempt >= ATTEMPTS {
                return outcome.map_err(|reason| AuthError::Unreachable {
                    kind,
                    endpoint: endpoint.clone(),
                    reason: format!("{reason} (after {attempt} attempts)"),
                });
            }
            match &outcome {
                Ok(answer) => {
                    debug!(source = %kind, %endpoint, status = answer.status.as_u16(), attempt, "sign-in endpoint answered a transient error; retrying")
                }
                Err(reason) => {
                    debug!(source = %kind, %endpoint, %reason, attempt, "sign-in endpoint unreachable; retrying")
                }
            }
            let jitter = rand::rng().random_range(0.5..1.0);
            tokio::time::sleep(delay.mul_f64(jitter)).await;
            delay = (delay * 2).min(Duration::from_secs(8));
            attempt += 1;
        }
    }
}

/// Why a request got no answer, in words (reqwest's text names the URL, which is fine: sign-in
/// URLs carry no secrets; queries are dropped anyway).
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut deepest = None;
    while let Some(error) = source {
        deepest = Some(error.to_string());
        source = error.source();
    }
    match deepest {
        Some(cause) => format!("{what}: {}", crate::text::printable_capped(&cause, 200)),
        None => what.to_owned(),
    }
}

/// A successful token answer, read without keeping the body: Entra's
/// `{token_type, expires_in, access_token, refresh_token?, scope?, id_token?}` or a managed
/// identity endpoint's `{access_token, expires_in?, expires_on?, …}` (numbers or strings).
pub(super) struct TokenAnswer {
    pub access: AccessToken,
    pub refresh_token: Option<SecretString>,
    /// `scope`, split on spaces.
    pub scopes: Vec<String>,
    pub id_token: Option<SecretString>,
}

impl TokenAnswer {
    /// Reads an answer: a 2xx with a token, else the error it says (`service` names who
    /// answered, for the message).
    pub fn read(
        kind: SourceKind,
        service: &'static str,
        url: &Url,
        answer: Answer,
    ) -> Result<TokenAnswer, AuthError> {
        let endpoint = shown(url);
        if !answer.status.is_success() {
            let rejection = Rejection::from_answer(
                kind,
                service,
                endpoint,
                answer.status.as_u16(),
                &answer.body,
            );
            return Err(AuthError::Rejected(Box::new(rejection)));
        }
        let bad = |problem: &str| AuthError::BadAnswer {
            kind,
            endpoint: endpoint.clone(),
            problem: format!("HTTP {} {problem}", answer.status.as_u16()),
        };
        // Parsed as a Value and taken apart here: serde's own errors may quote the input.
        let mut json: Value = serde_json::from_slice(&answer.body)
            .map_err(|_| bad("with something that is not JSON"))?;
        let Some(object) = json.as_object_mut() else {
            return Err(bad("with JSON that is not an object"));
        };
        let secret = |value: Option<Value>| match value {
            Some(Value::String(text)) if !text.is_empty() => Some(SecretString::from(text)),
            _ => None,
        };
        let token =
            secret(object.remove("access_token")).ok_or_else(|| bad("without an access_token"))?;
        let now = SystemTime::now();
        // An absolute `expires_on` (managed identity endpoints) wins over a relative `expires_in`.
        let expires_at = number(object.get("expires_on"))
            .map(|epoch| SystemTime::UNIX_EPOCH + Duration::from_secs(epoch))
            .or_else(|| {
                number(object.get("expires_in")).map(|secs| now + Duration::from_secs(secs))
            });
        let scopes = object
            .get("scope")
            .and_then(Value::as_str)
            .map(|scope| scope.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(TokenAnswer {
            access: AccessToken { token, expires_at },
            refresh_token: secret(object.remove("refresh_token")),
            scopes,
            id_token: secret(object.remove("id_token")),
        })
    }
}

/// A whole number of seconds given as a JSON number or a string of digits (IMDS answers
/// `"expires_in": "3599"`, Entra `"expires_in": 3599`).
pub(super) fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(text) => text.trim().parse::<u64>().ok().or_else(|| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        _ => None,
    }
}

/// POSTs a grant to Entra's token endpoint and reads the answer.
pub(super) async fn request_token(
    http: &SignInHttp,
    kind: SourceKind,
    url: &Url,
    form: &[(&str, &str)],
) -> Result<TokenAnswer, AuthError> {
    let answer = http.post_form(kind, url, form).await?;
    TokenAnswer::read(kind, "Entra ID", url, answer)
}

/// The client-assertion type of OAuth's JWT bearer client authentication (RFC 7523), used by
/// both certificate and workload identity federation sign-ins.
pub(super) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
