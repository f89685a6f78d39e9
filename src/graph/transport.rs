//! The one transport every Graph call goes through: token, `client-request-id`, concurrency,
//! pacing (separate read and write budgets), and the one retry layer.
//!
//! Exactly one retry layer exists, here: nothing above it retries again, so a request is sent at
//! most `max_attempts` times whatever happens. Retried: 429 (after `Retry-After`, with the shared
//! pause gate closed so every worker waits), 500/502/503/504, timeouts and connection errors, with
//! jittered exponential backoff. Never retried: other 4xx — the same request cannot succeed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::sync::Semaphore;
use tracing::debug;

use super::error::GraphError;
use super::pacing::{Budget, PauseGate};
use super::wire::ErrorBody;

/// Which Graph budget a request draws on (graph-api.md §6: a PATCH costs a write as well).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Read,
    Write,
}

/// How the transport behaves; built once from the command line.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Graph root without version, e.g. `https://graph.microsoft.com`.
    pub root: String,
    pub token: SecretString,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Fixed cap on reads per second (Graph: 8,000 RU per 10 s for the largest tenants).
    pub read_rate: u32,
    /// Fixed cap on writes per second (Graph: 3,000 writes per 150 s per app + tenant).
    pub write_rate: u32,
    /// Times a request is sent at most on transient failures (5xx, timeouts, connection
    /// errors), first try included.
    pub max_attempts: u32,
    /// Times a request may be answered 429 before it fails. Larger than `max_attempts`: a
    /// throttled request waits `Retry-After` and is then certain to be welcome again, and a
    /// bulk run under a busy tenant's limits is throttled often.
    pub max_throttled: u32,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// First backoff delay for 5xx/timeouts; doubles each retry, with jitter, up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl TransportConfig {
    /// Defaults sized to Graph's documented limits: reads at 800/s (8,000 RU per 10 s; smaller
    /// tenants have fewer users than their bucket holds, so a whole run fits their burst), writes
    /// at 20/s (3,000 per 150 s).
    pub fn new(root: impl Into<String>, token: SecretString) -> Self {
        TransportConfig {
            root: root.into(),
            token,
            concurrency: 16,
            read_rate: 800,
            write_rate: 20,
            max_attempts: 8,
            max_throttled: 32,
            timeout: Duration::from_secs(60),
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// A successful answer.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The response's `request-id` header: what Microsoft support asks for.
    pub request_id: Option<String>,
}

/// Counters over the transport's life, for summaries and benchmarks.
#[derive(Debug, Default)]
struct Counters {
    attempts: AtomicU64,
    succeeded: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    retries: AtomicU64,
}

/// A snapshot of the transport's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TransportStats {
    /// Requests sent, retries included.
    pub attempts: u64,
    /// Requests answered 2xx.
    pub succeeded: u64,
    pub reads: u64,
    pub writes: u64,
    /// 429 answers.
    pub throttled: u64,
    /// 5xx answers.
    pub server_errors: u64,
    /// Timeouts and connection failures.
    pub transport_errors: u64,
    /// Attempts that were retries.
    pub retries: u64,
}

/// The Graph transport. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Transport {
    http: reqwest::Client,
    config: TransportConfig,
    permits: Semaphore,
    gate: PauseGate,
    reads: Budget,
    writes: Budget,
    counters: Counters,
}

impl Transport {
    /// Builds the HTTP client and the budgets.
    pub fn new(config: TransportConfig) -> Result<Transport, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("mfactl/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(config.concurrency.max(1))
            .gzip(true)
            .build()?;
        Ok(Transport {
            http,
            permits: Semaphore::new(config.concurrency.max(1)),
            gate: PauseGate::default(),
            // A second's worth of burst: Graph's buckets are larger, but other apps share the tenant.
            reads: Budget::new(config.read_rate, config.read_rate),
            writes: Budget::new(config.write_rate, config.write_rate),
            counters: Counters::default(),
            config,
        })
    }

    /// The Graph root this transport talks to.
    pub fn root(&self) -> &str {
        &self.config.root
    }

    /// The counters so far.
    pub fn stats(&self) -> TransportStats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TransportStats {
            attempts: load(&c.attempts),
            succeeded: load(&c.succeeded),
            reads: load(&c.reads),
            writes: load(&c.writes),
            throttled: load(&c.throttled),
            server_errors: load(&c.server_errors),
            transport_errors: load(&c.transport_errors),
            retries: load(&c.retries),
        }
    }

    /// Sends a request (path from the root, e.g. `/beta/users/x/authentication/requirements`),
    /// retrying as the module doc says. Returns the final answer or the last error.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        class: Class,
    ) -> Result<Response, GraphError> {
        let max_transient = self.config.max_attempts.saturating_sub(1);
        let max_throttled = self.config.max_throttled;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.config.min_delay)
            .with_max_delay(self.config.max_delay)
            .with_max_times((max_transient + max_throttled) as usize)
            .with_jitter();
        // Two budgets, one retry layer: 429s and transient failures are counted apart.
        let (mut throttled, mut transient) = (0u32, 0u32);
        (|| self.attempt(method.clone(), path, body, class))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|error| {
                if !error.is_retryable() {
                    return false;
                }
                if error.status() == Some(429) {
                    throttled += 1;
                    throttled <= max_throttled
                } else {
                    transient += 1;
                    transient <= max_transient
                }
            })
            // `dur` is None once the attempts are spent: keep it None, or backon retries forever.
            .adjust(|error, dur| dur.map(|backoff| error.retry_after().unwrap_or(backoff)))
            .notify(|error, delay| {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                debug!(%error, delay_ms = delay.as_millis() as u64, "retrying");
            })
            .await
    }

    async fn attempt(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        class: Class,
    ) -> Result<Response, GraphError> {
        let method_name = method_name(&method);
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let budget = match class {
            Class::Read => &self.reads,
            Class::Write => &self.writes,
        };
        // Take a send slot with the gate open. A 429 may close the gate while this request
        // waits for its slot; then it waits out the pause and takes a fresh slot, so that the
        // requests held at the gate leave paced, not all at once when it opens (they would be
        // throttled together, and usage counts while throttled).
        let sent_at = loop {
            self.gate.wait().await;
            let slot = budget.acquire().await;
            if self.gate.closed_until().is_none() {
                break slot;
            }
        };

        let client_request_id = uuid::Uuid::new_v4().to_string();
        let url = format!("{}{}", self.config.root.trim_end_matches('/'), path);
        let mut auth =
            HeaderValue::try_from(format!("Bearer {}", self.config.token.expose_secret()))
                .map_err(|_| GraphError::Transport {
                    method: method_name,
                    path: path.to_owned(),
                    message: "the access token contains characters not allowed in an HTTP header"
                        .into(),
                    timeout: false,
                    client_request_id: client_request_id.clone(),
                })?;
        auth.set_sensitive(true);
        let mut request = self
            .http
            .request(method, &url)
            .header(header::AUTHORIZATION, auth)
            .header(header::ACCEPT, "application/json")
            .header("client-request-id", &client_request_id)
            .header("return-client-request-id", "true");
        if let Some(body) = body {
            request = request.json(body);
        }

        self.counters.attempts.fetch_add(1, Ordering::Relaxed);
        match class {
            Class::Read => self.counters.reads.fetch_add(1, Ordering::Relaxed),
            Class::Write => self.counters.writes.fetch_add(1, Ordering::Relaxed),
        };
        let no_answer = |error: reqwest::Error| {
            self.counters
                .transport_errors
                .fetch_add(1, Ordering::Relaxed);
            GraphError::Transport {
                method: method_name,
                path: path.to_owned(),
                message: describe_reqwest_error(&error),
                timeout: error.is_timeout(),
                client_request_id: client_request_id.clone(),
            }
        };
        let response = request.send().await.map_err(no_answer)?;

        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let request_id = header_str(&headers, "request-id");
        if let Some(pct) = header_str(&headers, "x-ms-throttle-limit-percentage")
            .and_then(|v| v.parse::<f64>().ok())
            && pct >= 0.8
        {
            budget.pacer.on_pressure(sent_at);
        }
        let bytes = response.bytes().await.map_err(no_answer)?.to_vec();

        if (200..300).contains(&status) {
            self.counters.succeeded.fetch_add(1, Ordering::Relaxed);
            return Ok(Response {
                status,
                body: bytes,
                request_id,
            });
        }

        let retry_after = header_str(&headers, "retry-after").and_then(|v| parse_retry_after(&v));
        if status == 429 {
            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
            let pause = retry_after.unwrap_or(Duration::from_secs(2));
            self.gate.pause_for(pause);
            budget.pacer.on_throttled(sent_at);
            warn_throttled(&headers, path, pause, request_id.as_deref());
        } else if status >= 500 {
            self.counters.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        let (code, message, body_request_id) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(envelope) => (
                envelope.error.code,
                envelope.error.message,
                envelope
                    .error
                    .inner_error
                    .and_then(|inner| inner.request_id),
            ),
            Err(_) => (
                format!("httpStatus{status}"),
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                None,
            ),
        };
        Err(GraphError::Api {
            method: method_name,
            path: path.to_owned(),
            status,
            code,
            message,
            request_id: request_id.or(body_request_id),
            client_request_id,
            retry_after,
        })
    }
}

fn warn_throttled(headers: &HeaderMap, path: &str, pause: Duration, request_id: Option<&str>) {
    let scope = header_str(headers, "x-ms-throttle-scope").unwrap_or_default();
    let information = header_str(headers, "x-ms-throttle-information").unwrap_or_default();
    // Info, not warn: throttling is expected on bulk runs and handled; the summary counts it.
    tracing::info!(
        path,
        pause_ms = pause.as_millis() as u64,
        scope,
        information,
        request_id,
        "throttled by Graph (429): pausing all workers"
    );
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::PATCH => "PATCH",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "REQUEST",
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// The error with its causes: the top error alone ("error sending request") says little.
fn describe_reqwest_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Parses `Retry-After`: decimal seconds (`"2"`, `"1.5"`) or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, SystemTime::now())
}

/// [`parse_retry_after`] as of `now`.
fn parse_retry_after_at(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(3600.0)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_decimal_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let in_ten = httpdate::fmt_http_date(now + Duration::from_secs(10));
        assert_eq!(
            parse_retry_after_at(&in_ten, now),
            Some(Duration::from_secs(10))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(10));
        assert_eq!(parse_retry_after_at(&past, now), Some(Duration::ZERO));
    }
}
