//! The one transport every Graph call goes through: token, `client-request-id`, concurrency,
//! pacing (budgets shaped like Graph's buckets), batching, connection health, and the one retry
//! layer.
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
//!
//! Budgets (graph-api.md §6): every request draws one resource unit from the RU bucket; a
//! PATCH also draws from the write bucket, and a read of `/authentication/methods` from its
//! own adaptive budget (Microsoft lists that path under a much smaller reports limit). A 429
//! pauses what its bucket meters: the RU bucket everything, the write bucket writes, the
//! methods limit methods reads. How many requests are in flight follows the measured latency
//! (in flight ≈ rate × latency), so the budget binds, not a fixed concurrency; `concurrency` is
//! the ceiling. With batching on (the default), requests that are ready together share one
//! `$batch` round trip ([`super::batch`]); each is still paced, retried and settled alone.
//! Everything Graph sends back that may reach a terminal (codes, messages, ids, `Location`) is
//! made [`printable`] here, once, before any caller sees it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderValue};
use secrecy::SecretString;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::debug;

use super::auth::{AuthError, Bearer, TokenCredential, TokenProvider};
use super::batch::{self, Batcher, NoAnswer, Outcome};
use super::body::{BodyError, MAX_ANSWER, read_capped};
use super::error::GraphError;
use super::health::{Admission, AfterFailure, FailureKind, Health, HealthLimits};
use super::pacing::{AppBudgets, BucketShape, Budget, PauseGate};
use super::wire::ErrorBody;
use crate::text::printable_capped;

/// Why a request is made: decides its budget, and the summary counts calls by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// `/organization`: which tenant this is.
    Tenant,
    /// `/users/{upn}`: a UPN resolved to its object id.
    Identity,
    /// The live state of a managed endpoint, for the plan.
    Read,
    /// `/authentication/methods`: which methods a user has registered.
    Methods,
    /// A page of an identity report (`/reports/authenticationMethods/userRegistrationDetails`):
    /// metered by Graph's identity and access reports limit, 5 requests per 10 s per app and
    /// tenant, not by the resource-unit bucket.
    Report,
    /// The endpoint read again just before writing it (drift check).
    Reread,
    /// A write whose answer was lost, read back.
    Settle,
    /// An endpoint read back after apply's writes, to see that Graph kept them.
    Verify,
    /// A PATCH.
    Write,
    /// Conditional Access and security defaults, and the groups, roles and users they name:
    /// whether MFA stays required once per-user MFA is disabled.
    Coverage,
}

impl Purpose {
    const ALL: [Purpose; 10] = [
        Purpose::Tenant,
        Purpose::Identity,
        Purpose::Read,
        Purpose::Methods,
        Purpose::Report,
        Purpose::Reread,
        Purpose::Settle,
        Purpose::Verify,
        Purpose::Write,
        Purpose::Coverage,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn method(self) -> Method {
        match self {
            Purpose::Write => Method::PATCH,
            _ => Method::GET,
        }
    }
}

/// Which budgets a request draws on and which pause gates hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Read,
    Methods,
    Reports,
    Write,
}

impl From<Purpose> for Class {
    fn from(purpose: Purpose) -> Class {
        match purpose {
            Purpose::Write => Class::Write,
            Purpose::Methods => Class::Methods,
            Purpose::Report => Class::Reports,
            _ => Class::Read,
        }
    }
}

/// How the transport behaves; built once from the command line.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Graph root without version, e.g. `https://graph.microsoft.com`.
    pub root: String,
    /// The cloud the root belongs to (what it serves: the China cloud has no
    /// `/authentication/methods`).
    pub cloud: super::Cloud,
    /// Where every request's token comes from; shared, renewed ahead of expiry and after a 401.
    pub tokens: Arc<TokenProvider>,
    /// The most requests in flight at once (batch items counted one by one); the adaptive
    /// limit stays at or below it.
    pub concurrency: usize,
    /// Graph's resource-unit bucket for the tenant's size tier (graph-api.md §6).
    pub ru_bucket: BucketShape,
    /// Graph's write bucket: 3,000 per 150 s per app and tenant.
    pub write_bucket: BucketShape,
    /// Optional fixed caps, per second, below the buckets (to leave room for other tools).
    pub read_rate: Option<u32>,
    pub write_rate: Option<u32>,
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
    /// Send requests that are ready together as one `$batch`.
    pub batch: bool,
    /// How long a lone request waits for company before its batch goes.
    pub linger: Duration,
    /// Send `x-ms-throttle-priority: Low`: Graph throttles such requests first, sparing
    /// interactive admins in the same tenant (for scheduled bulk runs).
    pub low_priority: bool,
    /// The application's budgets across every tenant of a multi-tenant run, shared by their
    /// transports (`None`: one tenant, whose own budgets are well under the app's ceilings).
    pub app: Option<Arc<AppBudgets>>,
}

/// Graph's identity and access reports limit: 5 requests per 10 s per app and tenant
/// (Microsoft's "service-specific throttling limits"), which meters the registration report.
pub const REPORTS_LIMIT: BucketShape = BucketShape {
    capacity: 5,
    window: Duration::from_secs(10),
};

/// RU per 10 s for a tenant of `users` users (graph-api.md §6): under 50, 3,500; 50–500, 5,000;
/// over 500, 8,000.
pub fn ru_tier(users: u64) -> u32 {
    match users {
        n if n < 50 => 3_500,
        n if n <= 500 => 5_000,
        _ => 8_000,
    }
}

impl TransportConfig {
    /// Defaults sized to Graph's documented limits for the smallest tenant tier (the caller
    /// raises the RU bucket to the tier the tenant is known to be in).
    pub fn new(root: impl Into<String>, token: SecretString) -> Self {
        let given = TokenCredential::given(token, "given to the transport");
        TransportConfig::with_tokens(root, Arc::new(TokenProvider::new(Arc::new(given))))
    }

    /// The defaults of [`TransportConfig::new`], with tokens from `tokens`.
    pub fn with_tokens(root: impl Into<String>, tokens: Arc<TokenProvider>) -> Self {
        TransportConfig {
            root: root.into(),
            cloud: super::Cloud::Global,
            tokens,
            concurrency: 256,
            ru_bucket: BucketShape::new(ru_tier(0), Duration::from_secs(10)),
            write_bucket: BucketShape::new(3_000, Duration::from_secs(150)),
            read_rate: None,
            write_rate: None,
            max_attempts: 8,
            max_throttled: 32,
            timeout: Duration::from_secs(60),
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_pause: Duration::from_secs(300),
            health: HealthLimits::default(),
            batch: true,
            linger: Duration::from_millis(5),
            low_priority: false,
            app: None,
        }
    }
}

/// Why a transport could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
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
    by_purpose: [AtomicU64; Purpose::ALL.len()],
    http_requests: AtomicU64,
    batches: AtomicU64,
    batch_items: AtomicU64,
    succeeded: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    retries: AtomicU64,
    pauses: AtomicU64,
    paused_ms: AtomicU64,
    longest_pause_ms: AtomicU64,
    settled_by_read: AtomicU64,
    renewals: AtomicU64,
}

/// Requests sent (attempts, retries included) by why they were made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Calls {
    /// `/organization`.
    pub tenant: u64,
    /// UPNs resolved to object ids.
    pub identity: u64,
    /// Live state of managed endpoints.
    pub reads: u64,
    /// Registered methods.
    pub methods: u64,
    /// Pages of the registration report.
    pub reports: u64,
    /// Endpoints read again just before writing them.
    pub rereads: u64,
    /// Writes whose answer was lost, read back.
    pub settles: u64,
    /// Endpoints read back after apply's writes (read-back verification).
    pub verifies: u64,
    /// PATCHes.
    pub writes: u64,
    /// Conditional Access coverage reads (policies, security defaults, their groups, roles
    /// and users).
    pub coverage: u64,
}

/// A snapshot of the transport's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TransportStats {
    /// Requests sent, retries included (each batch item counts once).
    pub attempts: u64,
    /// The same, by purpose.
    pub calls: Calls,
    /// HTTP requests on the wire (a batch is one).
    pub http_requests: u64,
    /// `$batch` requests, and the items they carried.
    pub batches: u64,
    pub batch_items: u64,
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
    /// Times a pause gate closed (one per throttling episode, however many requests were
    /// throttled in it).
    pub pauses: u64,
    /// Time the gates were closed, in all.
    pub paused_ms: u64,
    pub longest_pause_ms: u64,
    /// Writes whose answer was lost and that reading back showed done.
    pub settled_by_read: u64,
    /// Requests sent again with a renewed token after Graph answered 401 (each item of a
    /// `$batch` refused as a whole counts, though the token was renewed once; renewals ahead of
    /// expiry are not counted).
    pub renewals: u64,
    /// Times the connection to Graph was lost mid-run and probed until it came back.
    pub outages: u64,
}

/// How many requests may be in flight: a ceiling, and below it a limit that follows the
/// measured latency so that in flight ≈ rate × latency (Little's law) with room to spare.
#[derive(Debug)]
struct InFlight {
    cap: usize,
    state: Mutex<InFlightState>,
    freed: Notify,
}

#[derive(Debug)]
struct InFlightState {
    current: usize,
    limit: usize,
    /// Exponentially weighted mean latency of answers, in seconds.
    latency: f64,
}

/// The fewest requests allowed in flight, whatever the latency.
const MIN_IN_FLIGHT: usize = 8;

impl InFlight {
    fn new(cap: usize) -> InFlight {
        let cap = cap.max(1);
        InFlight {
            cap,
            state: Mutex::new(InFlightState {
                current: 0,
                limit: cap.min(64),
                latency: 0.05,
            }),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlightState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn acquire(&self) -> InFlightPermit<'_> {
        loop {
            // Registered before looking, so a release or a raised limit in between is not
            // missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut state = self.lock();
                if state.current < state.limit {
                    state.current += 1;
                    return InFlightPermit(self);
                }
            }
            freed.await;
        }
    }

    /// Folds in one round trip, and sets the limit from `rate` (requests per second the
    /// budgets allow now; `None` while they allow a burst).
    fn observe(&self, latency: Duration, rate: Option<f64>) {
        let mut state = self.lock();
        state.latency = 0.9 * state.latency + 0.1 * latency.as_secs_f64();
        let wanted = match rate {
            None => self.cap,
            Some(rate) => (rate * state.latency * 1.5).ceil() as usize + MIN_IN_FLIGHT,
        };
        let before = state.limit;
        state.limit = wanted.clamp(MIN_IN_FLIGHT.min(self.cap), self.cap);
        if state.limit > before {
            drop(state);
            self.freed.notify_waiters();
        }
    }

    fn limit(&self) -> usize {
        self.lock().limit
    }
}

struct InFlightPermit<'a>(&'a InFlight);

impl Drop for InFlightPermit<'_> {
    fn drop(&mut self) {
        self.0.lock().current -= 1;
        self.0.freed.notify_one();
    }
}

/// The Graph transport. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Transport {
    http: reqwest::Client,
    config: TransportConfig,
    in_flight: InFlight,
    /// Closed by a 429 from the RU bucket: holds every request.
    all_gate: PauseGate,
    /// Closed by a 429 from the write bucket: holds writes.
    write_gate: PauseGate,
    /// Closed by a 429 on `/authentication/methods`: holds methods reads.
    methods_gate: PauseGate,
    /// Closed by a 429 on a report page: holds report pages.
    reports_gate: PauseGate,
    health: Health,
    ru: Budget,
    writes: Budget,
    methods: Budget,
    /// Report pages, paced to the documented reports limit from the start: a page refused
    /// there is charged all the same, so finding the limit by its 429s would cost twice.
    reports: Budget,
    batcher: Batcher,
    counters: Counters,
}

/// Until Graph has answered once, an attempt waits at most this long: a host that accepts
/// connections and never answers is then found within a minute, not after several full
/// `--timeout`s (Graph answers in well under a second).
const FIRST_ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// Pauses at least this long are logged at the default level, with their reason.
const NOTABLE_PAUSE: Duration = Duration::from_secs(5);

impl Transport {
    /// Builds the HTTP client and the budgets.
    pub fn new(config: TransportConfig) -> Result<Transport, BuildError> {
        let builder = reqwest::Client::builder();
        // A loopback Graph (the emulator) is never reached through the environment's proxy.
        let builder = match url::Url::parse(&config.root) {
            Ok(root) => super::proxy::for_host(builder, &root),
            Err(_) => builder,
        };
        let http = builder
            .user_agent(concat!("mfactl/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10).min(config.timeout))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(config.concurrency.max(1))
            // Dropped before any server's idle timeout (the emulator's is 120 s), so that a
            // request never goes out on a connection the server is closing.
            .pool_idle_timeout(Duration::from_secs(20))
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
            in_flight: InFlight::new(config.concurrency),
            all_gate: PauseGate::default(),
            write_gate: PauseGate::default(),
            methods_gate: PauseGate::default(),
            reports_gate: PauseGate::default(),
            health: Health::new(host, config.health),
            ru: Budget::new(config.ru_bucket, config.read_rate),
            writes: Budget::new(config.write_bucket, config.write_rate),
            // Its own pacer and gate over the RU bucket's shape: a small reports limit, if it
            // applies, is found by its 429s and then paced alone.
            methods: Budget::new(config.ru_bucket, config.read_rate),
            reports: Budget::new(REPORTS_LIMIT, None),
            batcher: Batcher::new(config.linger),
            counters: Counters::default(),
            config,
        })
    }

    /// The Graph root this transport talks to.
    pub fn root(&self) -> &str {
        &self.config.root
    }

    /// The RU bucket the transport paces to.
    pub fn ru_bucket(&self) -> BucketShape {
        self.config.ru_bucket
    }

    /// The write bucket the transport paces to.
    pub fn write_bucket(&self) -> BucketShape {
        self.config.write_bucket
    }

    /// How the transport was configured (budgets, caps, concurrency).
    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    /// The mean round trip of answers so far (an exponentially weighted average).
    pub fn mean_latency(&self) -> Duration {
        Duration::from_secs_f64(self.in_flight.lock().latency)
    }

    /// How long requests are held by a 429's pause, if any gate is closed now.
    pub fn paused_for(&self) -> Option<Duration> {
        let now = Instant::now();
        [
            &self.all_gate,
            &self.write_gate,
            &self.methods_gate,
            &self.reports_gate,
        ]
        .iter()
        .filter_map(|gate| gate.closed_until())
        .max()
        .map(|until| until.duration_since(now))
    }

    /// The current in-flight limit (for progress and benchmarks).
    pub fn in_flight_limit(&self) -> usize {
        self.in_flight.limit()
    }

    /// The counters so far.
    pub fn stats(&self) -> TransportStats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let purpose = |p: Purpose| load(&c.by_purpose[p.index()]);
        let calls = Calls {
            tenant: purpose(Purpose::Tenant),
            identity: purpose(Purpose::Identity),
            reads: purpose(Purpose::Read),
            methods: purpose(Purpose::Methods),
            reports: purpose(Purpose::Report),
            rereads: purpose(Purpose::Reread),
            settles: purpose(Purpose::Settle),
            verifies: purpose(Purpose::Verify),
            writes: purpose(Purpose::Write),
            coverage: purpose(Purpose::Coverage),
        };
        TransportStats {
            attempts: load(&c.attempts),
            calls,
            http_requests: load(&c.http_requests),
            batches: load(&c.batches),
            batch_items: load(&c.batch_items),
            succeeded: load(&c.succeeded),
            reads: load(&c.attempts) - calls.writes,
            writes: calls.writes,
            throttled: load(&c.throttled),
            server_errors: load(&c.server_errors),
            transport_errors: load(&c.transport_errors),
            retries: load(&c.retries),
            pauses: load(&c.pauses),
            paused_ms: load(&c.paused_ms),
            longest_pause_ms: load(&c.longest_pause_ms),
            settled_by_read: load(&c.settled_by_read),
            renewals: load(&c.renewals),
            outages: self.health.outages(),
        }
    }

    /// Sends a request (path from the root, e.g. `/beta/users/x/authentication/requirements`;
    /// a PATCH for [`Purpose::Write`], a GET otherwise), retrying as the module doc says.
    /// Returns the final answer or the last error.
    pub async fn send(
        &self,
        purpose: Purpose,
        path: &str,
        body: Option<&serde_json::Value>,
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
        // Set when an attempt of a write may have reached Graph and reading back could not
        // tell: from then on a failure does not mean the write was not made.
        let unsettled = std::sync::atomic::AtomicBool::new(false);
        let result = (|| async {
            let result = self.attempt(purpose, path, body).await;
            match (result, body) {
                (Err(error), Some(body))
                    if purpose == Purpose::Write && error.outcome_unknown() =>
                {
                    self.settle(path, body, error, &unsettled).await
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
        .await;
        match result {
            Err(error) if unsettled.load(Ordering::Relaxed) && !error.is_unsettled() => {
                Err(GraphError::Unsettled {
                    cause: Box::new(error),
                })
            }
            result => result,
        }
    }

    /// A PATCH got no answer: reads the resource back. Done if it shows every property of the
    /// body; otherwise the original error stands and the PATCH is retried like any other.
    async fn settle(
        &self,
        path: &str,
        body: &serde_json::Value,
        lost: GraphError,
        unsettled: &std::sync::atomic::AtomicBool,
    ) -> Result<Response, GraphError> {
        // Boxed: `send` is async and this is reached from inside it.
        let read = Box::pin(self.send(Purpose::Settle, path, None)).await;
        if read.is_err() {
            // Neither the answer nor the read back says whether the write was made.
            unsettled.store(true, Ordering::Relaxed);
        }
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
        if shows_body == Some(false) {
            // Read back and not made: every earlier attempt is settled as not made.
            unsettled.store(false, Ordering::Relaxed);
        }
        debug!(path, error = %lost, "the answer to a write was lost and the write is not visible; sending it again");
        Err(lost)
    }

    /// The timeout of one attempt: `--timeout`, or shorter until Graph has answered once.
    fn attempt_timeout(&self) -> Duration {
        if self.health.has_answered() {
            self.config.timeout
        } else {
            self.config.timeout.min(FIRST_ANSWER_TIMEOUT)
        }
    }

    /// Waits until the gates that hold `class` are open and its budgets give a slot; returns
    /// when the request leaves. A 429 may close a gate while this waits for its slot; then it
    /// waits out the pause and takes a fresh slot, so that the requests held at the gate leave
    /// paced, not all at once when it opens (usage counts while throttled).
    async fn slot(&self, class: Class) -> Instant {
        let app = self.config.app.as_deref();
        loop {
            self.all_gate.wait().await;
            let (gate, budget) = match class {
                Class::Read => (None, None),
                Class::Write => (Some(&self.write_gate), Some(&self.writes)),
                Class::Methods => (Some(&self.methods_gate), Some(&self.methods)),
                Class::Reports => (Some(&self.reports_gate), Some(&self.reports)),
            };
            if let Some(gate) = gate {
                gate.wait().await;
            }
            if let Some(app) = app {
                app.all_gate.wait().await;
                if class == Class::Write {
                    app.write_gate.wait().await;
                }
            }
            // Report pages are metered by the reports limit alone, not by resource units.
            let mut sent_at = match class {
                Class::Reports => Instant::now(),
                _ => self.ru.acquire().await,
            };
            if let Some(budget) = budget {
                sent_at = sent_at.max(budget.acquire().await);
            }
            // The app's ceilings after the tenant's own: a tenant waiting for its bucket does
            // not hold app-wide slots the other tenants could use meanwhile.
            if let Some(app) = app {
                if class != Class::Reports {
                    sent_at = sent_at.max(app.ru.acquire().await);
                }
                if class == Class::Write {
                    sent_at = sent_at.max(app.writes.acquire().await);
                }
            }
            let open = self.all_gate.closed_until().is_none()
                && gate.is_none_or(|gate| gate.closed_until().is_none())
                && app.is_none_or(|app| {
                    app.all_gate.closed_until().is_none()
                        && (class != Class::Write || app.write_gate.closed_until().is_none())
                });
            if open {
                return sent_at;
            }
        }
    }

    /// The rate the budgets allow now, for the in-flight limit: `None` while free to burst.
    fn current_rate(&self, class: Class) -> Option<f64> {
        let budget = match class {
            Class::Read => &self.ru,
            Class::Write => &self.writes,
            Class::Methods => &self.methods,
            Class::Reports => &self.reports,
        };
        budget.pacer.rate()
    }

    async fn attempt(
        &self,
        purpose: Purpose,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, GraphError> {
        let method = purpose.method();
        let method_name = method_name(&method);
        let class = Class::from(purpose);
        let _permit = self.in_flight.acquire().await;
        let sign_in = |error| GraphError::SignIn(Box::new(error));
        // Whether a 401 has renewed the token yet: a second 401 stands.
        let mut renewed = false;
        // During an outage the request waits here, as often as it takes, without spending its
        // attempts; only the probe goes out.
        loop {
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
            let sent_at = self.slot(class).await;
            // The token is taken once the request may go, not before: the wait for the pacer
            // (or an outage, or a 429's pause) can outlast a token, and one renewed after a
            // 401 would otherwise be stale again by the time the request is sent a second time.
            let bearer = self.config.tokens.current().await.map_err(sign_in)?;
            let client_request_id = uuid::Uuid::new_v4().to_string();
            self.counters.attempts.fetch_add(1, Ordering::Relaxed);
            self.counters.by_purpose[purpose.index()].fetch_add(1, Ordering::Relaxed);

            let (exchange, took) = if self.config.batch && !self.batcher.is_refused() {
                let item = batch::Item {
                    method: method_name,
                    path: path.to_owned(),
                    body: body.cloned(),
                    client_request_id: client_request_id.clone(),
                    probe: admission == Admission::Probe,
                    low_priority: self.config.low_priority,
                    authorization: bearer.header.clone(),
                    generation: bearer.generation,
                };
                self.batcher.submit(self, item).await
            } else {
                self.exchange_alone(
                    &method,
                    path,
                    body,
                    &client_request_id,
                    &bearer,
                    admission,
                    sent_at,
                )
                .await
            };
            self.in_flight.observe(took, self.current_rate(class));

            // A 401 renews the token once (it expired early, or was revoked) and sends again;
            // a source with no other token (one given as is) lets the 401 stand.
            if matches!(exchange, Outcome::Answered { status: 401, .. }) && !renewed {
                renewed = true;
                debug!(path, "Graph answered 401: renewing the access token once");
                match self.config.tokens.renew(&bearer).await {
                    // Sent again with the provider's current token (this one, or a newer one).
                    Ok(_) => {
                        self.counters.renewals.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Err(AuthError::Refused { .. }) => {}
                    Err(error) => return Err(sign_in(error)),
                }
            }
            let (failure, after) = match exchange {
                Outcome::Rejected => continue,
                Outcome::Answered {
                    status,
                    headers,
                    body,
                    request_id,
                } => {
                    return self
                        .interpret(
                            purpose,
                            path,
                            status,
                            &headers,
                            body,
                            request_id,
                            client_request_id,
                            sent_at,
                        )
                        .map_err(|error| without_token(error, &bearer));
                }
                Outcome::NoAnswer { failure, after } => (failure, after),
                Outcome::TooLarge { status, request_id } => {
                    return Err(GraphError::Decode {
                        method: method_name,
                        path: path.to_owned(),
                        message: format!(
                            "the answer (HTTP {status}) is larger than {} MiB once \
                             decompressed; mfactl read no more of it (Graph's answers are far \
                             smaller: check --graph-url and any proxy)",
                            MAX_ANSWER >> 20
                        ),
                        request_id: request_id.map(|id| printable_capped(&id, 100)),
                    });
                }
            };
            self.counters
                .transport_errors
                .fetch_add(1, Ordering::Relaxed);
            let failure_error = GraphError::Transport {
                method: method_name,
                path: path.to_owned(),
                message: printable_capped(&failure.message, 500),
                timeout: failure.is_timeout,
                // A failure to connect never sent the request; anything later may have.
                sent: !failure.is_connect,
                client_request_id,
            };
            match after {
                AfterFailure::Retry => return Err(failure_error),
                // A write that may have reached Graph is settled by reading back (in `send`)
                // rather than sent again blindly; the read waits out the outage.
                AfterFailure::Wait
                    if method == Method::PATCH && failure_error.outcome_unknown() =>
                {
                    return Err(failure_error);
                }
                AfterFailure::Wait => {
                    debug!(error = %failure_error, "held: Graph is unreachable for now");
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
        }
    }

    /// Sends one request on its own (batching off or refused).
    // Each argument is one of the request's parts; a struct for them would be used once.
    #[allow(clippy::too_many_arguments)]
    async fn exchange_alone(
        &self,
        method: &Method,
        path: &str,
        body: Option<&serde_json::Value>,
        client_request_id: &str,
        bearer: &Bearer,
        admission: Admission,
        sent_at: Instant,
    ) -> (Outcome, Duration) {
        let url = format!("{}{}", self.config.root.trim_end_matches('/'), path);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header(header::AUTHORIZATION, bearer.header.clone())
            .header(header::ACCEPT, "application/json")
            .header("client-request-id", client_request_id)
            .header("return-client-request-id", "true");
        if self.config.low_priority {
            request = request.header("x-ms-throttle-priority", "Low");
        }
        if super::advanced_query::wants_eventual_consistency(path) {
            request = request.header("ConsistencyLevel", "eventual");
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request = request.timeout(self.attempt_timeout());
        self.counters.http_requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let failure = no_answer(&error);
                let after = self.health.failed(classify(&failure), admission);
                return (Outcome::NoAnswer { failure, after }, started.elapsed());
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let request_id = header_str(&headers, "request-id");
        let bytes = match read_capped(response, MAX_ANSWER).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => {
                self.health.answered(sent_at);
                let outcome = Outcome::TooLarge { status, request_id };
                return (outcome, started.elapsed());
            }
            Err(BodyError::Cut(error)) => {
                // The status came, the body did not: the host is there, this answer was cut.
                self.health.answered(sent_at);
                let mut failure = no_answer(&error);
                failure.is_connect = false;
                return (
                    Outcome::NoAnswer {
                        failure,
                        after: AfterFailure::Retry,
                    },
                    started.elapsed(),
                );
            }
        };
        self.health.answered(sent_at);
        (
            Outcome::Answered {
                status,
                headers,
                body: bytes,
                request_id,
            },
            started.elapsed(),
        )
    }

    /// Turns an answer (alone or from a batch) into the result: success, or a typed error with
    /// its pause applied to the bucket that refused.
    // The error is as large as every `send` returns; boxing it here alone would buy nothing.
    #[allow(clippy::too_many_arguments, clippy::result_large_err)]
    fn interpret(
        &self,
        purpose: Purpose,
        path: &str,
        status: u16,
        headers: &HeaderMap,
        bytes: Vec<u8>,
        request_id: Option<String>,
        client_request_id: String,
        sent_at: Instant,
    ) -> Result<Response, GraphError> {
        let method_name = method_name(&purpose.method());
        let request_id = request_id.map(|id| printable_capped(&id, 100));
        if let Some(pct) = header_str(headers, "x-ms-throttle-limit-percentage")
            .and_then(|v| v.parse::<f64>().ok())
            && pct >= 0.8
        {
            // The percentage is the RU bucket's usage (graph-api.md §6).
            self.ru.pacer.on_pressure(sent_at, pct);
        }

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
            let location = header_str(headers, "location")
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

        let asked = header_str(headers, "retry-after").and_then(|v| parse_retry_after(&v));
        let retry_after = asked.map(|asked| asked.min(self.config.max_pause));
        if status == 429 {
            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
            let pause = retry_after.unwrap_or(Duration::from_secs(2));
            let (gate, budget, what) = self.refusing_bucket(purpose, headers);
            self.pause(
                gate,
                what,
                pause,
                asked,
                headers,
                path,
                request_id.as_deref(),
            );
            budget.pacer.on_throttled(sent_at);
            self.throttled_app_wide(headers, pause, sent_at);
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

    /// Which bucket refused a 429, from `x-ms-throttle-information` when Graph says, else
    /// from the request: its pause gate, its budget, and its name for the log.
    fn refusing_bucket(
        &self,
        purpose: Purpose,
        headers: &HeaderMap,
    ) -> (&PauseGate, &Budget, &'static str) {
        let information = header_str(headers, "x-ms-throttle-information").unwrap_or_default();
        let information = information.to_ascii_lowercase();
        if information.contains("write") {
            (&self.write_gate, &self.writes, "writes")
        } else if information.contains("resourceunit") {
            (&self.all_gate, &self.ru, "every request")
        } else if purpose == Purpose::Report {
            (&self.reports_gate, &self.reports, "report pages")
        } else if information.contains("report") || purpose == Purpose::Methods {
            (&self.methods_gate, &self.methods, "methods reads")
        } else {
            (&self.all_gate, &self.ru, "every request")
        }
    }

    /// A 429 whose `x-ms-throttle-scope` names the application across tenants (`Application/…`,
    /// not `Tenant_Application/…`) holds every tenant of the run: the app's gate closes for
    /// the pause and its pacer slows down.
    fn throttled_app_wide(&self, headers: &HeaderMap, pause: Duration, sent_at: Instant) {
        let Some(app) = self.config.app.as_deref() else {
            return;
        };
        let scope = header_str(headers, "x-ms-throttle-scope").unwrap_or_default();
        if !scope.to_ascii_lowercase().starts_with("application/") {
            return;
        }
        let information = header_str(headers, "x-ms-throttle-information").unwrap_or_default();
        let (gate, budget) = if information.to_ascii_lowercase().contains("write") {
            (&app.write_gate, &app.writes)
        } else {
            (&app.all_gate, &app.ru)
        };
        gate.pause_for(pause);
        budget.pacer.on_throttled(sent_at);
    }

    /// Closes `gate` for `pause` after a 429, counting it and saying so when it is long (at the
    /// default log level: an admin must see why nothing moves).
    #[allow(clippy::too_many_arguments)]
    fn pause(
        &self,
        gate: &PauseGate,
        what: &str,
        pause: Duration,
        asked: Option<Duration>,
        headers: &HeaderMap,
        path: &str,
        request_id: Option<&str>,
    ) {
        let added = gate.pause_for(pause);
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
                "throttled by Graph (429, {asked}): pausing {what} for {} s{}",
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
                "throttled by Graph (429): pausing {what}"
            );
        }
    }
}

impl batch::Sender for Transport {
    async fn post_batch(
        &self,
        body: Vec<u8>,
        authorization: HeaderValue,
    ) -> Result<reqwest::Response, NoAnswer> {
        let url = format!("{}/beta/$batch", self.config.root.trim_end_matches('/'));
        let mut request = self
            .http
            .post(url)
            .header(header::AUTHORIZATION, authorization)
            .header(header::ACCEPT, "application/json")
            .header("client-request-id", uuid::Uuid::new_v4().to_string());
        if self.config.low_priority {
            request = request.header("x-ms-throttle-priority", "Low");
        }
        self.counters.http_requests.fetch_add(1, Ordering::Relaxed);
        request
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(self.attempt_timeout())
            .send()
            .await
            .map_err(|e| no_answer(&e))
    }

    fn sent_batch(&self, items: usize) {
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters
            .batch_items
            .fetch_add(items as u64, Ordering::Relaxed);
    }

    fn answered(&self, sent_at: Instant) {
        self.health.answered(sent_at);
    }

    fn no_answer(&self, failure: &NoAnswer, probe: bool) -> AfterFailure {
        let admission = if probe {
            Admission::Probe
        } else {
            Admission::Normal
        };
        self.health.failed(classify(failure), admission)
    }
}

/// `error` with the bearer token taken out of what Graph said: a server (or something posing
/// as one) that echoes the request must not put the token into an error, a log or a report.
fn without_token(mut error: GraphError, bearer: &Bearer) -> GraphError {
    let Some(token) = bearer
        .header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .filter(|t| t.len() >= 8)
    else {
        return error;
    };
    if let GraphError::Api { code, message, .. } = &mut error {
        for text in [code, message] {
            if text.contains(token) {
                *text = text.replace(token, "[redacted]");
            }
        }
    }
    error
}

/// A reqwest error as a [`NoAnswer`]: its text with causes, and its kind.
fn no_answer(error: &reqwest::Error) -> NoAnswer {
    NoAnswer {
        message: describe_reqwest_error(error),
        is_connect: error.is_connect(),
        is_timeout: error.is_timeout(),
    }
}

fn classify(failure: &NoAnswer) -> FailureKind {
    FailureKind::classify(failure.is_connect, failure.is_timeout, &failure.message)
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

    #[tokio::test]
    async fn a_token_no_header_can_carry_is_refused_before_anything_is_sent() {
        for bad in [
            "abc\ndef", "abc\rdef", "tök€n", "a\u{7f}b", "a b", "a\tb", "",
        ] {
            let config = TransportConfig::new("https://graph.microsoft.com", bad.into());
            assert!(config.tokens.current().await.is_err(), "{bad:?}");
        }
        let config = TransportConfig::new("https://graph.microsoft.com", "eyJ0.e30.sig".into());
        assert!(config.tokens.current().await.is_ok());
    }
}
