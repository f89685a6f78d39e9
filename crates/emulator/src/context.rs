//! What every Graph handler shares, below the router and the handlers alike: the emulator's
//! state and counters ([`Shared`]), what a call's answer depends on besides its path and body
//! ([`CallContext`]), and the answer itself ([`Answer`]) with Graph's error envelope and ids.
//!
//! It exists so that the router (`routes`), the one-call pipeline (`call`),
//! `$batch` and the resource handlers all import these from one place below them, and none of
//! them imports another for them. It holds no Graph rule and does no routing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

use super::state::{GraphError, TenantState};
use super::throttle::{AppThrottle, Throttle};
use super::token::SignIn;
use super::{EmulatorConfig, Stats, Tenant};
use mfactl_core::wire::{ErrorBody, ErrorDetail, InnerError};

/// The content type Graph sends with JSON bodies.
pub(super) const GRAPH_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Counters behind [`Stats`].
#[derive(Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) reads: AtomicU64,
    pub(super) writes: AtomicU64,
    pub(super) throttled: AtomicU64,
    pub(super) throttled_writes: AtomicU64,
    pub(super) throttled_methods: AtomicU64,
    pub(super) injected_failures: AtomicU64,
    pub(super) batches: AtomicU64,
    pub(super) batch_items: AtomicU64,
    pub(super) low_priority: AtomicU64,
    pub(super) not_found: AtomicU64,
    pub(super) bad_requests: AtomicU64,
    pub(super) unauthorized: AtomicU64,
    pub(super) forbidden: AtomicU64,
    pub(super) in_flight: AtomicU64,
    pub(super) peak_in_flight: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// `x-ms-throttle-priority: Low`, the value compared case-insensitively.
///
/// Graph throttles low-priority requests first when a limit is near, sparing interactive
/// traffic, but how much earlier is not documented; the emulator only counts them
/// ([`Stats::low_priority`]) so that tests can prove a client sends the header, and meters them
/// like any other request rather than invent a rule a client might come to rely on.
pub(super) fn is_low_priority(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("low")
}

/// Everything a request handler needs, shared by all connections.
pub struct Shared {
    pub(super) state: Mutex<TenantState>,
    pub(super) throttle: Option<Mutex<Throttle>>,
    pub(super) rng: Mutex<StdRng>,
    pub(super) config: EmulatorConfig,
    pub(super) tenant_id: String,
    pub(super) counters: Counters,
    /// The sign-in server, when the tenant file has an `auth` section.
    pub(super) sign_in: Option<Arc<SignIn>>,
    /// The registration report frozen at start, when `report_age` asks for an old one.
    pub(super) report_snapshot: Option<ReportSnapshot>,
    /// The applications' ceilings across every tenant the emulator serves (shared by their
    /// `Shared`s); `None` without throttling.
    pub(super) app_throttle: Option<Arc<Mutex<AppThrottle>>>,
}

/// The registration report as it was when the emulator started (`--report-age`): the tenant
/// then, and the date every row carries, `age` before. Graph refreshes the report periodically
/// and does not document how often; this stand-in for a report last refreshed long ago is the
/// emulator's own, without a Microsoft source. The rows themselves are `registration`'s.
pub(super) struct ReportSnapshot {
    pub(super) tenant: Tenant,
    /// `lastUpdatedDateTime` of every row.
    pub(super) updated: String,
}

impl ReportSnapshot {
    pub(super) fn take(tenant: &Tenant, age: Duration) -> ReportSnapshot {
        let age = jiff::SignedDuration::try_from(age).unwrap_or(jiff::SignedDuration::MAX);
        let updated = jiff::Timestamp::now()
            .checked_sub(age)
            .unwrap_or(jiff::Timestamp::MIN);
        ReportSnapshot {
            tenant: tenant.clone(),
            updated: updated.to_string(),
        }
    }
}

impl Shared {
    /// One tenant served alone. Fails only if the sign-in server's signing key cannot be made.
    pub fn new(tenant: Tenant, config: EmulatorConfig) -> std::io::Result<Shared> {
        let app_throttle = config.throttle.then(|| {
            Arc::new(Mutex::new(AppThrottle::new(
                config.app_ru_per_20s,
                config.app_writes_per_300s,
            )))
        });
        Shared::in_directory(tenant, config, app_throttle, &Default::default())
    }

    /// One tenant of several served on one port: `app_throttle` is shared by all of them, and
    /// `known_apps` (the lower-case client ids registered in any of them) tells an app not
    /// consented in this tenant from one unknown everywhere.
    pub fn in_directory(
        tenant: Tenant,
        config: EmulatorConfig,
        app_throttle: Option<Arc<Mutex<AppThrottle>>>,
        known_apps: &std::collections::HashSet<String>,
    ) -> std::io::Result<Shared> {
        let sign_in = SignIn::new(&tenant, known_apps)?.map(Arc::new);
        let report_snapshot = config
            .report_age
            .map(|age| ReportSnapshot::take(&tenant, age));
        let throttle = config.throttle.then(|| {
            let ru = config.ru_per_10s.unwrap_or_else(|| tenant.ru_tier());
            let throttle = Throttle::new(ru, config.writes_per_150s);
            Mutex::new(match config.methods_per_10s {
                Some(per_10s) => throttle.with_methods_limit(per_10s),
                None => throttle,
            })
        });
        Ok(Shared {
            tenant_id: tenant.tenant_id.clone(),
            state: Mutex::new(TenantState::new(tenant)),
            throttle,
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            config,
            counters: Counters::default(),
            sign_in,
            report_snapshot,
            app_throttle,
        })
    }

    /// The frozen registration report, if the emulator serves an old one.
    pub(super) fn report_snapshot(&self) -> Option<&ReportSnapshot> {
        self.report_snapshot.as_ref()
    }

    /// The sign-in server, when the tenant file has an `auth` section.
    pub(super) fn sign_in(&self) -> Option<&Arc<SignIn>> {
        self.sign_in.as_ref()
    }

    /// The tenant's id, as the tenant file has it.
    pub(super) fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// Revokes every refresh token the sign-in server handed out (nothing without `auth`).
    pub fn revoke_refresh_tokens(&self) {
        if let Some(sign_in) = &self.sign_in {
            sign_in.revoke_refresh_tokens();
        }
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            requests: load(&c.requests),
            reads: load(&c.reads),
            writes: load(&c.writes),
            throttled: load(&c.throttled),
            throttled_writes: load(&c.throttled_writes),
            throttled_methods: load(&c.throttled_methods),
            injected_failures: load(&c.injected_failures),
            batches: load(&c.batches),
            batch_items: load(&c.batch_items),
            low_priority: load(&c.low_priority),
            not_found: load(&c.not_found),
            bad_requests: load(&c.bad_requests),
            unauthorized: load(&c.unauthorized),
            forbidden: load(&c.forbidden),
            tokens_issued: self.sign_in.as_ref().map_or(0, |s| s.tokens_issued()),
            peak_in_flight: load(&c.peak_in_flight),
        }
    }

    pub fn tenant(&self) -> Tenant {
        self.lock_state().tenant().clone()
    }

    /// One request or batch item sent with `x-ms-throttle-priority: Low`.
    pub(super) fn count_low_priority(&self) {
        bump(&self.counters.low_priority);
    }

    /// One `$batch` whose `items` are about to run.
    pub(super) fn count_batch(&self, items: usize) {
        bump(&self.counters.batches);
        self.counters
            .batch_items
            .fetch_add(items as u64, Ordering::Relaxed);
    }

    /// The state lock is only held for in-memory work; a panic while holding it would be a bug
    /// in this module, and the data is still consistent (every change validates first).
    pub(super) fn lock_state(&self) -> std::sync::MutexGuard<'_, TenantState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn lock_rng(&self) -> std::sync::MutexGuard<'_, StdRng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Per-request ids Graph puts in headers and error bodies.
pub(super) struct RequestIds {
    pub(super) request_id: String,
    pub(super) client_request_id: String,
}

impl RequestIds {
    pub(super) fn new(headers: &HeaderMap) -> RequestIds {
        let client_request_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        RequestIds {
            request_id: uuid::Uuid::new_v4().to_string(),
            client_request_id,
        }
    }
}

/// What a Graph call's answer depends on besides its method, path, query and body.
pub(super) struct CallContext {
    /// The call's URL without its query, absolute on the host the request reached: a listing's
    /// `@odata.nextLink` is built on it, as Graph's name Graph's host.
    pub(super) link: String,
    /// The call carried `ConsistencyLevel: eventual` (Graph's advanced queries, `$count`).
    pub(super) eventual: bool,
    /// `--refuse per-user-mfa-state-select`: `/users` does not know `perUserMfaState`.
    pub(super) refuse_mfa_state_select: bool,
}

/// Whether a `ConsistencyLevel` header value asks for eventual consistency.
pub(super) fn is_eventual(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("eventual")
}

/// What dispatching produced, before the common headers are added.
#[derive(Debug, PartialEq)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) body: Option<Value>,
    pub(super) headers: Vec<(HeaderName, String)>,
}

impl Answer {
    pub(super) fn json(status: StatusCode, body: Value) -> Answer {
        Answer {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub(super) fn no_content() -> Answer {
        Answer {
            status: StatusCode::NO_CONTENT,
            body: None,
            headers: Vec::new(),
        }
    }

    /// An error in Graph's envelope (the ids are filled in by [`finish`]).
    pub(super) fn error(status: u16, code: &str, message: impl Into<String>) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: Some(
                serde_json::to_value(ErrorBody {
                    error: ErrorDetail {
                        code: code.to_owned(),
                        message: message.into(),
                        inner_error: None,
                    },
                })
                .unwrap_or(Value::Null),
            ),
            headers: Vec::new(),
        }
    }

    pub(super) fn from_graph(err: GraphError) -> Answer {
        Answer::error(err.status, err.code, err.message)
    }

    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Answer {
        self.headers
            .push((HeaderName::from_static(name), value.into()));
        self
    }
}

/// The Graph date format used in `innerError.date`.
fn graph_date() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// Fills `innerError` (date and ids) into an error envelope; other bodies are left alone.
pub(super) fn add_inner_error(body: &mut Value, ids: &RequestIds) {
    if let Value::Object(body) = body
        && let Some(Value::Object(error)) = body.get_mut("error")
    {
        error.insert(
            "innerError".to_owned(),
            serde_json::to_value(InnerError {
                date: Some(graph_date()),
                request_id: Some(ids.request_id.clone()),
                client_request_id: Some(ids.client_request_id.clone()),
            })
            .unwrap_or(Value::Null),
        );
    }
}

/// Counts one answered Graph operation (a request, or one item of a batch).
pub(super) fn count(shared: &Shared, method: &Method, answer: &Answer) {
    let counters = &shared.counters;
    match answer.status.as_u16() {
        400 => bump(&counters.bad_requests),
        401 => bump(&counters.unauthorized),
        403 => bump(&counters.forbidden),
        404 => bump(&counters.not_found),
        s if (200..300).contains(&s) && method == Method::GET => bump(&counters.reads),
        s if (200..300).contains(&s) => bump(&counters.writes),
        _ => {}
    }
}
