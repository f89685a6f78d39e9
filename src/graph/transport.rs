//! The one transport every Graph call goes through: token, `client-request-id`, concurrency,
//! pacing (separate read and write budgets), connection health, and the one retry layer.
//!
//! Exactly one retry layer exists, here: nothing above it retries again, so a request is sent at
//! most `max_attempts` times whatever happens. Retried: 429 (after `Retry-After`, capped, with
//! the shared pause gate closed so every worker waits), 500/502/503/504, timeouts and connection
//! errors, with jittered exponential backoff. Never retried: other 4xx — the same request cannot
//! succeed — and 3xx: redirects are never followed (a redirect could carry the request, body and
//! all, to another host or onto plain http), a 3xx is a failure naming its `Location`.
//!
//! A PATCH whose outcome is unknown (the request may have reached Graph, but no answer came
//! back) is settled by reading the same resource: if it already shows every property of the
//! body, the write is done; otherwise it is sent again like any retry.
//!
//! Connection failures also feed [`Health`], which stops the run when the host cannot be reached
//! at all and holds every request (without spending its attempts) during an outage.
//! Everything Graph sends back that may reach a terminal (codes, messages, ids, `Location`) is
//! made [`printable`] here, once, before any caller sees it.

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
use super::health::{AfterFailure, FailureKind, Health, HealthLimits};
use super::pacing::{Budget, PauseGate};
use super::wire::ErrorBody;
use crate::text::printable_capped;

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
    /// The longest single pause a `Retry-After` may impose; a longer one is cut to this and
    /// logged. Graph asks for seconds; an hour or a date in 9999 is a fault, not a plan.
    pub max_pause: Duration,
    /// When the run gives up on an unreachable host.
    pub health: HealthLimits,
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
            max_pause: Duration::from_secs(300),
            health: HealthLimits::default(),
        }
    }
}

/// Why a transport could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The token holds a line break, a control character or non-ASCII text: no HTTP header can
    /// carry it, so every request would fail the same way.
    #[error(
        "the access token contains characters that cannot be sent in an HTTP header (a space, \
         a line break, a control character or non-ASCII text)"
    )]
    InvalidToken,
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// A successful answer.
#[derive(Clone, Debug)]
pub struct Response {
    /// The HTTP status; `None` when no answer came but reading the resource back showed the
    /// write had been made (see [`Response::settled_by_read`]).
    pub status: Option<u16>,
    pub body: Vec<u8>,
    /// The response's `request-id` header: what Microsoft support asks for.
    pub request_id: Option<String>,
    /// A PATCH whose answer was lost, confirmed by reading the resource back.
    pub settled_by_read: bool,
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
    pauses: AtomicU64,
    paused_ms: AtomicU64,
    longest_pause_ms: AtomicU64,
    settled_by_read: AtomicU64,
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
    /// Times the shared pause gate closed (one per throttling episode, however many requests
    /// were throttled in it).
    pub pauses: u64,
    /// Time the gate was closed, in all.
    pub paused_ms: u64,
    pub longest_pause_ms: u64,
    /// Writes whose answer was lost and that reading back showed done.
    pub settled_by_read: u64,
    /// Times the connection to Graph was lost mid-run and probed until it came back.
    pub outages: u64,
}

/// The Graph transport. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Transport {
    http: reqwest::Client,
    config: TransportConfig,
    /// `Bearer <token>`, built once and marked sensitive (never printed by `Debug`).
    authorization: HeaderValue,
    permits: Semaphore,
    gate: PauseGate,
    health: Health,
    reads: Budget,
    writes: Budget,
    counters: Counters,
}

/// Pauses at least this long are logged at the default level, with their reason.
const NOTABLE_PAUSE: Duration = Duration::from_secs(5);

impl Transport {
    /// Builds the HTTP client and the budgets; refuses a token no header can carry.
    pub fn new(config: TransportConfig) -> Result<Transport, BuildError> {
        let authorization = bearer(&config.token)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("mfactl/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10).min(config.timeout))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(config.concurrency.max(1))
            .redirect(reqwest::redirect::Policy::none())
            .gzip(true)
            .build()?;
        let host = url::Url::parse(&config.root)
            .ok()
            .and_then(|url| {
                url.host_str().map(|host| match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                })
            })
            .unwrap_or_else(|| config.root.clone());
        Ok(Transport {
            http,
            authorization,
            permits: Semaphore::new(config.concurrency.max(1)),
            gate: PauseGate::default(),
            health: Health::new(host, config.health),
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
            pauses: load(&c.pauses),
            paused_ms: load(&c.paused_ms),
            longest_pause_ms: load(&c.longest_pause_ms),
            settled_by_read: load(&c.settled_by_read),
            outages: self.health.outages(),
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
        let settles = method == Method::PATCH && body.is_some();
        (|| async {
            let result = self.attempt(method.clone(), path, body, class).await;
            match (result, body) {
                (Err(error), Some(body)) if settles && error.outcome_unknown() => {
                    self.settle(path, body, error).await
                }
                (result, _) => result,
            }
        })
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

    /// A PATCH got no answer: reads the resource back. Done if it shows every property of the
    /// body; otherwise the original error stands and the PATCH is retried like any other.
    async fn settle(
        &self,
        path: &str,
        body: &serde_json::Value,
        lost: GraphError,
    ) -> Result<Response, GraphError> {
        // Boxed: `send` is async and this is reached from inside it.
        let read = Box::pin(self.send(Method::GET, path, None, Class::Read)).await;
        let shows_body = read.as_ref().ok().and_then(|response| {
            let live: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
            let wanted = body.as_object()?;
            Some(
                wanted
                    .iter()
                    .all(|(key, value)| live.get(key) == Some(value)),
            )
        });
        if shows_body == Some(true) {
            self.counters
                .settled_by_read
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(path, error = %lost, "the answer to a write was lost; reading back shows it was made");
            return Ok(Response {
                status: None,
                body: Vec::new(),
                request_id: read.ok().and_then(|r| r.request_id),
                settled_by_read: true,
            });
        }
        debug!(path, error = %lost, "the answer to a write was lost and the write is not visible; sending it again");
        Err(lost)
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
        let url = format!("{}{}", self.config.root.trim_end_matches('/'), path);
        // During an outage the request waits here, as often as it takes, without spending its
        // attempts; only the probe goes out.
        let (response, sent_at, client_request_id) = loop {
            let admission =
                self.health
                    .admit()
                    .await
                    .map_err(|stopped| GraphError::Unreachable {
                        method: method_name,
                        path: path.to_owned(),
                        host: stopped.host,
                        cause: stopped.cause,
                    })?;
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
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header(header::AUTHORIZATION, self.authorization.clone())
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
            let error = match request.send().await {
                Ok(response) => break (response, sent_at, client_request_id),
                Err(error) => error,
            };
            self.counters
                .transport_errors
                .fetch_add(1, Ordering::Relaxed);
            let message = describe_reqwest_error(&error);
            let kind = FailureKind::classify(error.is_connect(), error.is_timeout(), &message);
            let failure = GraphError::Transport {
                method: method_name,
                path: path.to_owned(),
                message: printable_capped(&message, 500),
                timeout: error.is_timeout(),
                // A failure to connect never sent the request; anything later may have.
                sent: !error.is_connect(),
                client_request_id,
            };
            match self.health.failed(kind, admission) {
                AfterFailure::Retry => return Err(failure),
                // A write that may have reached Graph is settled by reading back (in `send`)
                // rather than sent again blindly; the read waits out the outage.
                AfterFailure::Wait if method == Method::PATCH && failure.outcome_unknown() => {
                    return Err(failure);
                }
                AfterFailure::Wait => {
                    debug!(error = %failure, "held: Graph is unreachable for now");
                    continue;
                }
                AfterFailure::Stop(stopped) => {
                    return Err(GraphError::Unreachable {
                        method: method_name,
                        path: path.to_owned(),
                        host: stopped.host,
                        cause: stopped.cause,
                    });
                }
            }
        };

        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let request_id = header_str(&headers, "request-id");
        if let Some(pct) = header_str(&headers, "x-ms-throttle-limit-percentage")
            .and_then(|v| v.parse::<f64>().ok())
            && pct >= 0.8
        {
            budget.pacer.on_pressure(sent_at);
        }
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes.to_vec(),
            Err(error) => {
                // The status came, the body did not: the host is there, this answer was cut.
                self.health.answered(sent_at);
                self.counters
                    .transport_errors
                    .fetch_add(1, Ordering::Relaxed);
                return Err(GraphError::Transport {
                    method: method_name,
                    path: path.to_owned(),
                    message: printable_capped(&describe_reqwest_error(&error), 500),
                    timeout: error.is_timeout(),
                    sent: true,
                    client_request_id,
                });
            }
        };
        self.health.answered(sent_at);

        if (200..300).contains(&status) {
            self.counters.succeeded.fetch_add(1, Ordering::Relaxed);
            return Ok(Response {
                status: Some(status),
                body: bytes,
                request_id,
                settled_by_read: false,
            });
        }

        if (300..400).contains(&status) {
            let location = header_str(&headers, "location")
                .map_or_else(|| "(none)".to_owned(), |l| printable_capped(&l, 300));
            return Err(GraphError::Api {
                method: method_name,
                path: path.to_owned(),
                status,
                code: "redirect".to_owned(),
                message: format!(
                    "Graph answered with a redirect to {location}; mfactl never follows \
                     redirects (the request would go somewhere else than the Graph root it \
                     was given)"
                ),
                request_id,
                client_request_id,
                retry_after: None,
            });
        }

        let asked = header_str(&headers, "retry-after").and_then(|v| parse_retry_after(&v));
        let retry_after = asked.map(|asked| asked.min(self.config.max_pause));
        if status == 429 {
            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
            let pause = retry_after.unwrap_or(Duration::from_secs(2));
            self.pause(pause, asked, &headers, path, request_id.as_deref());
            budget.pacer.on_throttled(sent_at);
        } else if status >= 500 {
            self.counters.server_errors.fetch_add(1, Ordering::Relaxed);
            if let Some(asked) = asked
                && asked > self.config.max_pause
            {
                tracing::warn!(
                    path,
                    status,
                    asked_s = asked.as_secs(),
                    waiting_s = self.config.max_pause.as_secs(),
                    "Graph asked to wait longer than mfactl ever waits at once; waiting the \
                     longest"
                );
            }
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
                String::from_utf8_lossy(&bytes).into_owned(),
                None,
            ),
        };
        Err(GraphError::Api {
            method: method_name,
            path: path.to_owned(),
            status,
            code: printable_capped(&code, 100),
            message: printable_capped(&message, 500),
            request_id: request_id.or(body_request_id.map(|id| printable_capped(&id, 100))),
            client_request_id,
            retry_after,
        })
    }

    /// Closes the shared gate for `pause` after a 429, counting it and saying so when it is
    /// long (at the default log level: an admin must see why nothing moves).
    fn pause(
        &self,
        pause: Duration,
        asked: Option<Duration>,
        headers: &HeaderMap,
        path: &str,
        request_id: Option<&str>,
    ) {
        let added = self.gate.pause_for(pause);
        if added.started {
            self.counters.pauses.fetch_add(1, Ordering::Relaxed);
        }
        if added.extended > Duration::ZERO {
            let ms = added.extended.as_millis() as u64;
            self.counters.paused_ms.fetch_add(ms, Ordering::Relaxed);
            self.counters
                .longest_pause_ms
                .fetch_max(pause.as_millis() as u64, Ordering::Relaxed);
        }
        let scope = header_str(headers, "x-ms-throttle-scope").unwrap_or_default();
        let information = header_str(headers, "x-ms-throttle-information").unwrap_or_default();
        let capped = asked.is_some_and(|asked| asked > pause);
        if added.extended > Duration::ZERO && (pause >= NOTABLE_PAUSE || capped) {
            let asked = asked.map_or_else(
                || "no Retry-After".to_owned(),
                |asked| format!("Retry-After {} s", asked.as_secs()),
            );
            tracing::warn!(
                path,
                scope,
                information,
                request_id,
                "throttled by Graph (429, {asked}): pausing every request for {} s{}",
                pause.as_secs(),
                if capped {
                    " (the longest mfactl waits at once)"
                } else {
                    ""
                }
            );
        } else {
            // Info, not warn: short throttling is expected on bulk runs and handled; the
            // summary counts it.
            tracing::info!(
                path,
                pause_ms = pause.as_millis() as u64,
                scope,
                information,
                request_id,
                "throttled by Graph (429): pausing all workers"
            );
        }
    }
}

/// `Bearer <token>` as a sensitive header value.
///
/// Tokens (JWTs and opaque ones alike) are visible ASCII; anything else — a space, a tab, a line
/// break pasted with it, non-ASCII text — is refused here, once, rather than by every request.
fn bearer(token: &SecretString) -> Result<HeaderValue, BuildError> {
    let token = token.expose_secret();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BuildError::InvalidToken);
    }
    let mut value =
        HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| BuildError::InvalidToken)?;
    value.set_sensitive(true);
    Ok(value)
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
        .map(|v| printable_capped(v.trim(), 200))
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

/// The longest `Retry-After` taken as given before the transport's own cap applies; keeps the
/// arithmetic finite for `99999999999` or a date in the year 9999.
const RETRY_AFTER_CEILING: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses `Retry-After`: decimal seconds (`"2"`, `"1.5"`) or an HTTP date. The value is
/// returned as asked (up to a year); the transport caps how long it actually waits.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, SystemTime::now())
}

/// [`parse_retry_after`] as of `now`.
fn parse_retry_after_at(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(RETRY_AFTER_CEILING.as_secs_f64())));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(RETRY_AFTER_CEILING),
    )
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

    #[test]
    fn absurd_retry_after_values_stay_finite() {
        assert_eq!(parse_retry_after("99999999999"), Some(RETRY_AFTER_CEILING));
        assert_eq!(parse_retry_after("1e300"), Some(RETRY_AFTER_CEILING));
        assert_eq!(parse_retry_after("inf"), None);
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(RETRY_AFTER_CEILING)
        );
    }

    #[test]
    fn a_token_no_header_can_carry_is_refused_at_build() {
        for bad in [
            "abc\ndef", "abc\rdef", "tök€n", "a\u{7f}b", "a b", "a\tb", "",
        ] {
            let config = TransportConfig::new("https://graph.microsoft.com", bad.into());
            assert!(
                matches!(Transport::new(config), Err(BuildError::InvalidToken)),
                "{bad:?}"
            );
        }
        let config = TransportConfig::new("https://graph.microsoft.com", "eyJ0.e30.sig".into());
        assert!(Transport::new(config).is_ok());
    }
}
