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
use crate::graph::body::{self, BodyError};

/// Per-attempt timeout.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts in all, the first included.
const ATTEMPTS: u32 = 4;
/// The first backoff delay; doubled each retry, with jitter.
const FIRST_DELAY: Duration = Duration::from_millis(500);

/// What a client's build reads from the environment: the proxies (reqwest's system proxies,
/// `HTTP_PROXY` ignored under CGI's `REQUEST_METHOD`) and the root certificates' places.
const BUILT_FROM: [&str; 11] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// A sign-in client, `direct` (never through a proxy) or the environment's, built once for as
/// long as what it is built from stays the same: a build reads the system's root certificates
/// (a file each), and a run across many tenants signs in to every one of them. A clone shares
/// the built client. It keeps no idle connection: it may serve callers on different async
/// runtimes (tests), and a connection lives on the runtime that opened it; sign-in is a few
/// requests a run.
fn built_client(direct: bool) -> Result<reqwest::Client, reqwest::Error> {
    type Key = (bool, Vec<Option<std::ffi::OsString>>);
    static BUILT: std::sync::Mutex<Vec<(Key, reqwest::Client)>> = std::sync::Mutex::new(Vec::new());
    let key: Key = (direct, BUILT_FROM.iter().map(std::env::var_os).collect());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, client)) = built.iter().find(|(from, _)| *from == key) {
        return Ok(client.clone());
    }
    let builder = reqwest::Client::builder()
        .user_agent(concat!("mfactl/", env!("CARGO_PKG_VERSION")))
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none());
    let client = if direct { builder.no_proxy() } else { builder }.build()?;
    // A handful at most in a real run; tests that change the environment make more.
    if built.len() >= 8 {
        built.remove(0);
    }
    built.push((key, client.clone()));
    Ok(client)
}

/// A client for one kind of sign-in endpoint.
#[derive(Clone, Debug)]
pub(super) struct SignInHttp {
    /// For hosts elsewhere: the environment's proxies (and `NO_PROXY`) apply.
    client: reqwest::Client,
    /// For loopback hosts (the emulator's sign-in endpoints): never through a proxy.
    direct: reqwest::Client,
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
        let failed = |error: reqwest::Error| AuthError::Http(error.to_string());
        let direct = built_client(true).map_err(failed)?;
        let client = if no_proxy {
            direct.clone()
        } else {
            built_client(false).map_err(failed)?
        };
        Ok(SignInHttp {
            client,
            direct,
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

    /// The client for `url`: direct for a loopback host, else the one that honours proxies.
    fn client_for(&self, url: &Url) -> &reqwest::Client {
        if crate::graph::proxy::is_loopback(url) {
            &self.direct
        } else {
            &self.client
        }
    }

    /// POSTs a form (`application/x-www-form-urlencoded`).
    pub async fn post_form(
        &self,
        kind: SourceKind,
        url: &Url,
        form: &[(&str, &str)],
    ) -> Result<Answer, AuthError> {
        let secrets: Vec<&str> = form
            .iter()
            .filter(|(name, _)| SECRET_FIELDS.contains(name))
            .map(|(_, value)| *value)
            .collect();
        self.send(kind, url, &secrets, || {
            self.client_for(url).post(url.clone()).form(form)
        })
        .await
    }

    /// GETs with extra headers.
    pub async fn get(
        &self,
        kind: SourceKind,
        url: &Url,
        headers: &HeaderMap,
    ) -> Result<Answer, AuthError> {
        // Every header value sent (an identity header is a secret) is kept out of errors.
        let secrets: Vec<&str> = headers.values().filter_map(|v| v.to_str().ok()).collect();
        self.send(kind, url, &secrets, || {
            self.client_for(url)
                .get(url.clone())
                .headers(headers.clone())
        })
        .await
    }

    async fn send(
        &self,
        kind: SourceKind,
        url: &Url,
        secrets: &[&str],
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, AuthError> {
        let endpoint = shown(url);
        let mut delay = self.first_delay;
        let mut attempt = 1;
        loop {
            let outcome = match request().send().await {
                Ok(response) => {
                    let status = response.status();
                    read_capped(response).await.map(|body| Answer {
                        status,
                        // A refusal's text reaches errors: nothing sent may come back in it.
                        body: if status.is_success() {
                            body
                        } else {
                            redact(body, secrets)
                        },
                    })
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

/// The form fields that carry secrets: a server that echoes the request (a misconfigured proxy,
/// an impostor) must not put them into an error message.
const SECRET_FIELDS: &[&str] = &[
    "client_secret",
    "client_assertion",
    "assertion",
    "refresh_token",
    "device_code",
    "code",
    "password",
];

/// `body` with every occurrence of each secret (as sent in a form, as JSON would quote it, or
/// as is) replaced by `[redacted]`. Secrets shorter than 8 bytes are left: they would match
/// ordinary words, and no credential is that short.
pub(super) fn redact(mut body: Vec<u8>, secrets: &[&str]) -> Vec<u8> {
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let quoted = serde_json::to_string(secret).unwrap_or_default();
        let quoted = quoted.trim_matches('"').to_owned();
        for form in [secret.to_string(), encoded, quoted] {
            body = replace_all(&body, form.as_bytes(), b"[redacted]");
        }
    }
    body
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut at = 0;
    while at < haystack.len() {
        if haystack[at..].starts_with(needle) {
            out.extend_from_slice(with);
            at += needle.len();
        } else {
            out.push(haystack[at]);
            at += 1;
        }
    }
    out
}

/// The most bytes of a sign-in answer read (decompressed): a token answer is a few kilobytes.
const MAX_ANSWER: usize = 1 << 20;

/// The answer's body, read a chunk at a time up to [`MAX_ANSWER`].
async fn read_capped(response: reqwest::Response) -> Result<Vec<u8>, String> {
    body::read_capped(response, MAX_ANSWER)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => format!(
                "the answer is larger than {} KiB; mfactl read no more of it",
                MAX_ANSWER >> 10
            ),
            BodyError::Cut(error) => describe(&error),
        })
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
        let expires_at = expiry(
            now,
            number(object.get("expires_on")),
            number(object.get("expires_in")),
        );
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

/// The longest a token is taken to last, whatever an answer says: Entra's tokens live 60–90
/// minutes and managed identities' about a day. An answer's `expires_in: 1e300` is clamped to
/// it (the token is then renewed early, or after a 401), never added to the clock as is, which
/// would overflow it.
pub(super) const MAX_LIFETIME: Duration = Duration::from_secs(2 * 86_400);

/// When a token expires: at epoch `expires_on` (seconds), else `expires_in` seconds after
/// `now`; either way at most [`MAX_LIFETIME`] after `now`.
pub(super) fn expiry(
    now: SystemTime,
    expires_on: Option<u64>,
    expires_in: Option<u64>,
) -> Option<SystemTime> {
    let latest = now + MAX_LIFETIME;
    let at = match (expires_on, expires_in) {
        (Some(epoch), _) => SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_secs(epoch))
            .unwrap_or(latest),
        (None, Some(secs)) => now.checked_add(Duration::from_secs(secs)).unwrap_or(latest),
        (None, None) => return None,
    };
    Some(at.min(latest))
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

#[cfg(test)]
mod lifetime_and_redaction_tests {
    use super::*;

    #[test]
    fn absurd_lifetimes_are_clamped_not_added_to_the_clock() {
        let now = SystemTime::now();
        let answer = |json: &str| Answer {
            status: StatusCode::OK,
            body: json.as_bytes().to_vec(),
        };
        let url = Url::parse("https://login.microsoftonline.com/t/oauth2/v2.0/token").unwrap();
        for json in [
            r#"{"access_token":"a","expires_in":1e300}"#,
            r#"{"access_token":"a","expires_in":"1e300"}"#,
            r#"{"access_token":"a","expires_in":18446744073709551615}"#,
            r#"{"access_token":"a","expires_on":18446744073709551615}"#,
        ] {
            let read = TokenAnswer::read(SourceKind::Secret, "Entra ID", &url, answer(json))
                .unwrap_or_else(|e| panic!("{json}: {e}"));
            let at = read.access.expires_at.unwrap();
            assert!(at <= now + MAX_LIFETIME + Duration::from_secs(5), "{json}");
        }
        assert_eq!(expiry(now, None, None), None);
        assert_eq!(
            expiry(now, None, Some(3599)),
            Some(now + Duration::from_secs(3599))
        );
    }

    #[test]
    fn secrets_echoed_back_are_redacted_in_every_spelling() {
        let secret = "s3cr3t/with+chars=";
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let body = format!(
            "{{\"error\":\"invalid_client\",\"error_description\":\"got client_secret={encoded} \
             and {secret} and {}\"}}",
            serde_json::to_string(secret).unwrap().trim_matches('"')
        );
        let redacted = String::from_utf8(redact(body.into_bytes(), &[secret, "short"])).unwrap();
        assert!(!redacted.contains("s3cr3t"), "{redacted}");
        assert_eq!(redacted.matches("[redacted]").count(), 3, "{redacted}");
    }
}
