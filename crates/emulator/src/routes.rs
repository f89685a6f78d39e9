//! The HTTP face of the emulator: the router and the pipeline every Graph request goes through.
//!
//! Graph paths are parsed by hand in one fallback handler rather than with the router's
//! patterns, because Graph addresses users three ways that a pattern router does not model:
//! by id, by percent-encoded UPN (`%23EXT%23` for guests) and by the OData key form
//! `users('$x@contoso.com')` (with `'` doubled) for UPNs that start with `$`.
//!
//! Each request goes through the same steps Graph applies, in this order: latency, injected
//! failure (503, nothing else happens), authentication (401), routing (404/405), authorization
//! (403), throttling (429, charged but no state change), then the state operation. Only the last
//! step may change state, and it belongs to one module per Graph resource (`users`,
//! `authentication`, `policy`, `groups`, [`super::organization`]); `POST /beta/$batch` (`batch`)
//! runs each item through the same routing, authorization, throttling and state steps, so
//! batching saves round trips but not quota, as on Graph. This module must not hold Graph's data rules; those
//! live in [`super::state`].
//!
//! Authentication and authorization depend on the tenant file. Without an `auth` section any
//! bearer token passes (except the `expired…`/`denied…` test tokens). With one, the token must be
//! one the emulator's sign-in server ([`super::token`]) issued, and the call must be allowed by
//! the token's `roles` or `scp` under [`mfactl_core::permissions`]. Authorization needs the
//! resource, so it follows routing; it comes before throttling, so a refused call costs nothing:
//! Graph documents neither order, and a client must not learn to spend quota on calls it is not
//! allowed to make. A `$batch` needs a token to be read at all; a token Graph refuses fails each
//! item with its own 401 inside the 200 (as Graph is seen to answer), and a missing permission
//! fails only the items that need it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::sync::Arc;

use super::listing::{self, BaseCost};
use super::members::{self, Members};
use super::state::{GraphError, TenantState};
use super::throttle::{Limit, Throttle, Verdict};
use super::token::{Caller, Refusal, SignIn};
use super::{EmulatorConfig, Stats, Tenant};
use super::{
    authentication, batch, conditional_access, groups, identity, membership, organization, policy,
    roles, token, users,
};
use mfactl_core::permissions::Resource;
use mfactl_core::wire::{ErrorBody, ErrorDetail, InnerError};

/// The application id the emulator reports in throttle scopes when it accepts any token (no
/// `auth` section): it does not decode tokens then, so every caller is one app (as a single
/// mfactl run is). With an `auth` section the scope names the token's `appid`.
pub const EMULATOR_APP_ID: &str = "00000000-0000-0000-0000-00000000cafe";

/// Graph's `WWW-Authenticate` on a 401.
const WWW_AUTHENTICATE: &str = "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"";

/// The content type Graph sends with JSON bodies.
pub(super) const GRAPH_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Counters behind [`Stats`].
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    throttled: AtomicU64,
    throttled_writes: AtomicU64,
    throttled_methods: AtomicU64,
    injected_failures: AtomicU64,
    batches: AtomicU64,
    batch_items: AtomicU64,
    low_priority: AtomicU64,
    not_found: AtomicU64,
    bad_requests: AtomicU64,
    unauthorized: AtomicU64,
    forbidden: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

fn bump(counter: &AtomicU64) {
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
    state: Mutex<TenantState>,
    throttle: Option<Mutex<Throttle>>,
    rng: Mutex<StdRng>,
    config: EmulatorConfig,
    tenant_id: String,
    counters: Counters,
    /// The sign-in server, when the tenant file has an `auth` section.
    sign_in: Option<SignIn>,
}

impl Shared {
    /// Fails only if the sign-in server's signing key cannot be made.
    pub fn new(tenant: Tenant, config: EmulatorConfig) -> std::io::Result<Shared> {
        let sign_in = SignIn::new(&tenant)?;
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
        })
    }

    /// The tenant's id, as the tenant file has it.
    pub(super) fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The sign-in server, when the tenant file has an `auth` section.
    pub(super) fn sign_in(&self) -> Option<&SignIn> {
        self.sign_in.as_ref()
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
            tokens_issued: self.sign_in.as_ref().map_or(0, SignIn::tokens_issued),
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
    fn lock_state(&self) -> std::sync::MutexGuard<'_, TenantState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_rng(&self) -> std::sync::MutexGuard<'_, StdRng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The axum router: `/_emulator/*` helpers, the sign-in endpoints when the tenant file has an
/// `auth` section, and the Graph fallback.
pub fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new()
        .route("/_emulator/stats", get(emulator_stats))
        .route("/_emulator/tenant", get(emulator_tenant));
    if shared.sign_in.is_some() {
        router = router.merge(token::routes()).merge(identity::routes());
    }
    router.fallback(graph).with_state(shared)
}

async fn emulator_stats(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = admin_refusal(&shared, &uri, &headers) {
        return refused;
    }
    axum::Json(shared.stats()).into_response()
}

/// The current state in the tenant file's shape, without the `auth` section: an HTTP endpoint
/// never hands out credentials.
async fn emulator_tenant(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = admin_refusal(&shared, &uri, &headers) {
        return refused;
    }
    let mut tenant = shared.tenant();
    tenant.auth = None;
    axum::Json(tenant).into_response()
}

/// `/_emulator/*` (the emulator's own, not Graph's): open to anyone without an `auth` section,
/// as before; with one, the tenant's users and their settings are only for a caller holding a
/// token the emulator issued (any app or admin of the tenant file), else 401 like Graph's.
/// `None` when the caller may read them.
fn admin_refusal(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    let sign_in = shared.sign_in.as_ref()?;
    let refused = |message: &str| finish(unauthenticated(message), &RequestIds::new(headers));
    let Some(token) = bearer_token(headers) else {
        return Some(refused(Refusal::Empty.message()));
    };
    sign_in
        .authenticate(token, &request_root(uri, headers))
        .err()
        .map(|refusal| refused(refusal.message()))
}

/// Per-request ids Graph puts in headers and error bodies.
pub(super) struct RequestIds {
    request_id: String,
    client_request_id: String,
}

impl RequestIds {
    fn new(headers: &HeaderMap) -> RequestIds {
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

/// Adds ids to error bodies and the common headers, and renders the response.
fn finish(mut answer: Answer, ids: &RequestIds) -> Response {
    if let Some(body) = &mut answer.body {
        add_inner_error(body, ids);
    }
    let mut response = match &answer.body {
        Some(body) => {
            let mut response = Response::new(Body::from(body.to_string()));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(GRAPH_JSON));
            response
        }
        None => Response::new(Body::empty()),
    };
    *response.status_mut() = answer.status;
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    for (name, value) in [
        ("request-id", &ids.request_id),
        ("client-request-id", &ids.client_request_id),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    response
}

/// Decrements the in-flight gauge when a request ends, however it ends.
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn enter(counters: &'a Counters) -> InFlight<'a> {
        let now = counters.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        counters.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(counters)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every Graph request lands here.
async fn graph(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ids = RequestIds::new(&headers);
    bump(&shared.counters.requests);
    if headers
        .get("x-ms-throttle-priority")
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_low_priority)
    {
        shared.count_low_priority();
    }
    let _in_flight = InFlight::enter(&shared.counters);

    if let Some((min, max)) = shared.config.latency {
        let delay = if max > min {
            shared.lock_rng().random_range(min..=max)
        } else {
            min
        };
        tokio::time::sleep(delay).await;
    }

    let answer = handle(&shared, &method, &uri, &headers, &body, &ids);
    finish(answer, &ids)
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

/// The Graph resources the emulator serves.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    SignInPreferences(String),
    Requirements(String),
    Methods(String),
    User(String),
    /// `/users/{key}/transitiveMemberOf[/microsoft.graph.group]`.
    MemberOf(String),
    Policy,
    Organization,
    /// The groups collection (its query options go to [`groups::list`]).
    Groups,
    /// The users collection (its query options go to [`listing::users`]).
    Users,
    /// `/groups/{id}/members`, `/transitiveMembers[/microsoft.graph.user]`.
    GroupMembers(String, Members),
    /// `/identity/conditionalAccess/policies`.
    ConditionalAccessPolicies,
    /// `/policies/identitySecurityDefaultsEnforcementPolicy`.
    SecurityDefaults,
    /// `/roleManagement/directory/roleAssignments`.
    RoleAssignments,
}

impl Route {
    /// The resource whose permissions a call to this route with this query needs: a read of
    /// users needs only the basic-profile permission when it selects basic properties alone
    /// ([`Resource::users_selecting`]), as Microsoft's tables say.
    fn resource(&self, query: Option<&str>) -> Resource {
        match self {
            Route::SignInPreferences(_) => Resource::SignInPreferences,
            Route::Requirements(_) => Resource::Requirements,
            Route::Methods(_) => Resource::Methods,
            Route::User(_) | Route::Users => Resource::users_selecting(&selected(query)),
            Route::MemberOf(_) => Resource::Membership,
            Route::Policy => Resource::Policy,
            Route::Organization => Resource::Organization,
            Route::Groups => Resource::Groups,
            Route::GroupMembers(..) => Resource::GroupMembers,
            Route::ConditionalAccessPolicies => Resource::ConditionalAccess,
            Route::SecurityDefaults => Resource::SecurityDefaults,
            Route::RoleAssignments => Resource::RoleAssignments,
        }
    }

    /// The RU a GET of this route costs with this query: 1, except the listings Graph charges
    /// more for ([`listing::resource_units`]). Microsoft's cost table does not list the
    /// Conditional Access, security defaults or role assignment paths: they cost 1 here.
    fn resource_units(&self, query: Option<&str>) -> u32 {
        let base = match self {
            Route::Users => BaseCost::Users,
            Route::GroupMembers(_, Members::Direct) => BaseCost::Members,
            Route::GroupMembers(..) => BaseCost::TransitiveMembers,
            _ => return 1,
        };
        listing::resource_units(base, query)
    }
}

/// The property names a query's `$select` names, as sent (none without one).
fn selected(query: Option<&str>) -> Vec<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(key, _)| {
            key.strip_prefix('$')
                .unwrap_or(key)
                .eq_ignore_ascii_case("select")
        })
        .flat_map(|(_, value)| {
            value
                .split(',')
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What a request's bearer token allows, decided once per HTTP request.
pub(super) enum Credential {
    /// No `auth` section: any token passes and no permission is checked.
    Anyone,
    /// A token the emulator issued, valid now, for Graph.
    Caller(Caller),
    /// A token Graph refuses; each `$batch` item answers 401 with it.
    Refused(Refusal),
}

impl Credential {
    /// The app a throttle scope names.
    fn app_id(&self) -> &str {
        match self {
            Credential::Caller(caller) if !caller.app_id.is_empty() => &caller.app_id,
            _ => EMULATOR_APP_ID,
        }
    }
}

/// Graph's 401 for a refused token.
fn unauthenticated(message: &str) -> Answer {
    Answer::error(401, "InvalidAuthenticationToken", message)
        .header("www-authenticate", WWW_AUTHENTICATE)
}

/// Graph's 403 when the token lacks the permission the call needs; `None` when it has it.
///
/// The `/authentication/*` endpoints answer `accessDenied` "Request Authorization failed" (as
/// Graph is seen to answer `/authentication/methods`); directory objects (users, organization)
/// and the policy answer the directory's `Authorization_RequestDenied` (what Graph sends for the
/// policy is not documented).
fn authorize(
    caller: &Caller,
    route: &Route,
    query: Option<&str>,
    is_write: bool,
) -> Option<Answer> {
    let resource = route.resource(query);
    let need = if is_write {
        resource.write()
    } else {
        resource.read()
    };
    if need.is_met_by(caller.kind, &caller.permissions) {
        return None;
    }
    let (code, message) = match resource {
        Resource::SignInPreferences | Resource::Requirements | Resource::Methods => {
            ("accessDenied", "Request Authorization failed")
        }
        Resource::UserBasic
        | Resource::Users
        | Resource::Membership
        | Resource::Organization
        | Resource::Groups
        | Resource::GroupMembers
        | Resource::Policy
        | Resource::ConditionalAccess
        | Resource::SecurityDefaults
        | Resource::RoleAssignments => (
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ),
    };
    Some(Answer::error(403, code, message))
}

/// The emulator's root as the request reached it, `http://{host}`: what a token's `aud` and a
/// client assertion's token URL are compared with. HTTP/2 carries the host in the URI, HTTP/1.1
/// in `Host`. Empty when neither does.
pub(super) fn request_root(uri: &Uri, headers: &HeaderMap) -> String {
    let host = uri
        .authority()
        .map(|authority| authority.as_str().to_owned())
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
    match host {
        Some(host) if !host.is_empty() => format!("http://{host}"),
        _ => String::new(),
    }
}

/// Runs the request through Graph's steps (see the module documentation) without touching HTTP.
fn handle(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    ids: &RequestIds,
) -> Answer {
    let is_batch = batch::is_batch_path(uri.path());
    // A `$batch` as a whole fails only at `batch_fail_rate`; its items roll `fail_rate` one by
    // one inside it (graph-api.md §7: each item costs what it would cost alone).
    let failure = if is_batch {
        roll_failure(shared, shared.config.batch_fail_rate)
    } else {
        injected_failure(shared, method)
    };
    if let Some(answer) = failure {
        return answer;
    }

    let credential = match authenticate(shared, uri, headers, is_batch) {
        Ok(credential) => credential,
        Err(answer) => {
            bump(&shared.counters.unauthorized);
            return answer;
        }
    };

    let root = request_root(uri, headers);
    if is_batch {
        let answer = batch::batch(shared, method, body, ids, &credential, &root);
        if !answer.status.is_success() {
            count(shared, method, &answer);
        }
        return answer;
    }
    let target = uri
        .path_and_query()
        .map_or(uri.path(), |target| target.as_str());
    let eventual = headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_eventual);
    let answer = metered(shared, method, target, body, &credential, &root, eventual);
    count(shared, method, &answer);
    answer
}

/// The authentication step: what the request's token allows, or the answer that refuses the
/// whole request. A `$batch` whose token is refused still runs, each item answering 401.
fn authenticate(
    shared: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
    is_batch: bool,
) -> Result<Credential, Answer> {
    let token = bearer_token(headers);
    let Some(sign_in) = &shared.sign_in else {
        return without_sign_in(token, uri);
    };
    let Some(token) = token else {
        return Err(unauthenticated(Refusal::Empty.message()));
    };
    match sign_in.authenticate(token, &request_root(uri, headers)) {
        Ok(caller) => Ok(Credential::Caller(caller)),
        Err(refusal) if is_batch => Ok(Credential::Refused(refusal)),
        Err(refusal) => Err(unauthenticated(refusal.message())),
    }
}

/// Without an `auth` section: any token passes, but the test tokens starting with `expired` or
/// `denied` get the 401 and 403 a real token would.
fn without_sign_in(token: Option<&str>, uri: &Uri) -> Result<Credential, Answer> {
    match token {
        None => Err(unauthenticated(Refusal::Empty.message())),
        Some(token) if token.starts_with(EXPIRED_TOKEN_PREFIX) => Err(unauthenticated(
            "Lifetime validation failed, the token is expired.",
        )),
        Some(token)
            if token.starts_with(DENIED_TOKEN_PREFIX) && !uri.path().starts_with("/_emulator") =>
        {
            Err(Answer::error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ))
        }
        Some(_) => Ok(Credential::Anyone),
    }
}

/// The injected 503 a Graph call (a request alone, or one batch item) gets by chance, at
/// `fail_rate` and, for a PATCH, `write_fail_rate` on top.
pub(super) fn injected_failure(shared: &Shared, method: &Method) -> Option<Answer> {
    let mut fail_rate = shared.config.fail_rate;
    if method == Method::PATCH {
        fail_rate = 1.0 - (1.0 - fail_rate) * (1.0 - shared.config.write_fail_rate);
    }
    roll_failure(shared, fail_rate)
}

/// A 503 `serviceUnavailable` with `Retry-After: 1` at probability `rate`.
fn roll_failure(shared: &Shared, rate: f64) -> Option<Answer> {
    // Skipping the draw at 0 keeps the random sequence (latency, other faults) of a seed the
    // same whether or not fault injection is compiled into the path.
    if rate > 0.0 && shared.lock_rng().random_bool(rate.clamp(0.0, 1.0)) {
        bump(&shared.counters.injected_failures);
        return Some(
            Answer::error(
                503,
                "serviceUnavailable",
                "The service is temporarily unavailable (injected by the emulator). Retry later.",
            )
            .header("retry-after", "1"),
        );
    }
    None
}

/// Routing, authorization, throttling and the state operation: what one Graph call (alone or
/// batched) costs and answers. `target` is the path under the root with its query string, if
/// any; `root` the emulator's root as the request reached it, `eventual` whether the call sent
/// `ConsistencyLevel: eventual`. A refused token (possible only for a batch item) answers 401
/// before routing, as it would for the call sent alone.
pub(super) fn metered(
    shared: &Shared,
    method: &Method,
    target: &str,
    body: &[u8],
    credential: &Credential,
    root: &str,
    eventual: bool,
) -> Answer {
    if let Credential::Refused(refusal) = credential {
        return unauthenticated(refusal.message());
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let route = match parse_route(path) {
        Ok(route) => route,
        Err(answer) => return answer,
    };

    let is_write = match admit(shared, method, &route, query, credential) {
        Ok(is_write) => is_write,
        Err(answer) => return answer,
    };

    let verdict = shared.throttle.as_ref().map(|throttle| {
        let mut throttle = throttle.lock().unwrap_or_else(|e| e.into_inner());
        // `/methods` is read-only (a PATCH got 405 above), so this is a GET.
        match &route {
            Route::Methods(_) => throttle.admit_methods_read(),
            _ if is_write => throttle.admit(true),
            _ => throttle.admit_read_costing(route.resource_units(query)),
        }
    });
    let answer = if let Some(Verdict {
        refused: Some((limit, retry_after)),
        ..
    }) = &verdict
    {
        bump(&shared.counters.throttled);
        match limit {
            Limit::ResourceUnits => {}
            Limit::Writes => bump(&shared.counters.throttled_writes),
            Limit::Reports => bump(&shared.counters.throttled_methods),
        }
        Answer::error(
            429,
            "TooManyRequests",
            "Too many requests. Please retry after the time given in the Retry-After header.",
        )
        .header("retry-after", retry_after.to_string())
        .header(
            "x-ms-throttle-scope",
            format!(
                "{}/{}/{}",
                limit.scope_prefix(),
                credential.app_id(),
                shared.tenant_id
            ),
        )
        .header("x-ms-throttle-information", limit.information())
    } else {
        let context = CallContext {
            link: format!("{root}{path}"),
            eventual,
        };
        let limited = limited_members(&route, query, credential);
        let answer = serve(shared, method, route, query, body, &context);
        if limited {
            members::limit_users(answer)
        } else {
            answer
        }
    };

    match verdict {
        Some(verdict) => {
            let answer = answer.header("x-ms-resource-unit", verdict.resource_units.to_string());
            match verdict.limit_percentage {
                Some(fraction) => {
                    answer.header("x-ms-throttle-limit-percentage", format!("{fraction:.2}"))
                }
                None => answer,
            }
        }
        None => answer,
    }
}

/// Whether `route` may be answered at all, before it is metered: a method it takes (Ok says
/// whether it writes), a caller holding the permission it needs, a cloud that serves it.
fn admit(
    shared: &Shared,
    method: &Method,
    route: &Route,
    query: Option<&str>,
    credential: &Credential,
) -> Result<bool, Answer> {
    let is_write = match (route, method) {
        (_, m) if m == Method::GET => false,
        (Route::SignInPreferences(_) | Route::Requirements(_) | Route::Policy, m)
            if m == Method::PATCH =>
        {
            true
        }
        _ => {
            return Err(Answer::error(
                405,
                "Request_BadRequest",
                format!("The HTTP method '{method}' is not allowed for the request URI."),
            ));
        }
    };
    if let Credential::Caller(caller) = credential
        && let Some(answer) = authorize(caller, route, query, is_write)
    {
        return Err(answer);
    }
    // The China cloud (21Vianet) has no `/authentication/methods` (Microsoft's availability
    // table for authentication-list-methods). What that Graph answers is not published; the
    // emulator answers as Graph does for any segment it does not serve (400).
    if matches!(route, Route::Methods(_)) && !shared.config.cloud.serves_authentication_methods() {
        return Err(segment_not_found("methods"));
    }
    Ok(is_write)
}

/// Whether a member list goes to a caller that may not read the users it selects: Graph then
/// answers each user with `id` and `@odata.type` only ("limited information returned for
/// inaccessible member objects").
fn limited_members(route: &Route, query: Option<&str>, credential: &Credential) -> bool {
    match (route, credential) {
        (Route::GroupMembers(..), Credential::Caller(caller)) => {
            !Resource::users_selecting(&selected(query))
                .read()
                .is_met_by(caller.kind, &caller.permissions)
        }
        _ => false,
    }
}

/// The state operation for an admitted request, handed to the module of its resource.
fn serve(
    shared: &Shared,
    method: &Method,
    route: Route,
    query: Option<&str>,
    body: &[u8],
    context: &CallContext,
) -> Answer {
    let patch_body = if *method == Method::PATCH {
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => Some(value),
            Err(err) => {
                return Answer::error(
                    400,
                    "BadRequest",
                    format!("Unable to read JSON request payload: {err}."),
                );
            }
        }
    } else {
        None
    };

    let mut state = shared.lock_state();
    let patch = patch_body.as_ref();
    // Routing already answered 405 to a PATCH of a read-only resource (organization, user,
    // groups), so their handlers only read.
    let result = match route {
        Route::Organization => Ok(organization::get(state.tenant())),
        Route::Groups => Ok(groups::list(&state, query)),
        Route::Users => Ok(listing::users(&state, query, context)),
        Route::GroupMembers(group, which) => members::list(&state, &group, which, query, context),
        Route::User(key) => users::get(&state, &key),
        Route::MemberOf(key) => membership::transitive_groups(&state, &key),
        Route::Policy => policy::answer(&mut state, patch),
        Route::SignInPreferences(key) => {
            authentication::sign_in_preferences(&mut state, &key, patch)
        }
        Route::Requirements(key) => authentication::requirements(&mut state, &key, patch),
        Route::Methods(key) => authentication::methods(&state, &key),
        Route::ConditionalAccessPolicies => {
            Ok(conditional_access::policies(&state, query, context))
        }
        Route::SecurityDefaults => Ok(conditional_access::security_defaults(&state)),
        Route::RoleAssignments => Ok(roles::assignments(&state, query, context)),
    };
    result.unwrap_or_else(Answer::from_graph)
}

/// Without an `auth` section, a bearer token starting with this is answered 401 as expired (to
/// test token handling); with one, only tokens the emulator issued pass.
pub const EXPIRED_TOKEN_PREFIX: &str = "expired";
/// Without an `auth` section, a bearer token starting with this is answered 403
/// `Authorization_RequestDenied`, as a token without the needed permissions would be.
pub const DENIED_TOKEN_PREFIX: &str = "denied";

/// The bearer token, when the request carries a non-empty one.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .map(|(_, token)| token.trim())
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Graph's answer to a path segment it does not know: 400 `BadRequest` "Resource not found for
/// the segment '…'." (graph-api.md §6), never 404, which a client reads as "no such object".
/// 404 is kept for objects that do not exist (`Request_ResourceNotFound`). A version other than
/// `beta` gets the same 400 here: the emulator serves only beta (Graph also serves `v1.0`).
fn segment_not_found(segment: &str) -> Answer {
    Answer::error(
        400,
        "BadRequest",
        format!(
            "Resource not found for the segment '{}'.",
            mfactl_core::text::printable_capped(segment, 80)
        ),
    )
}

/// Parses a path under `/beta` into a [`Route`], or the error Graph would answer.
fn parse_route(path: &str) -> Result<Route, Answer> {
    let raw: Vec<&str> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    let mut segments = Vec::with_capacity(raw.len());
    for segment in &raw {
        segments.push(percent_decode(segment).ok_or_else(|| {
            Answer::error(
                400,
                "BadRequest",
                format!("Invalid escape in the path segment '{segment}'."),
            )
        })?);
    }
    let Some((version, rest)) = segments.split_first() else {
        return Err(segment_not_found(""));
    };
    if version != "beta" {
        return Err(segment_not_found(version));
    }
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();

    // `users('key')` folds into the same shape as `users/key`.
    let (user_key, tail): (Option<String>, &[&str]) = match rest.as_slice() {
        [first, tail @ ..] if is_key_form(first) => (Some(key_form_value(first)?), tail),
        [users, key, tail @ ..] if users.eq_ignore_ascii_case("users") => {
            if key.starts_with('$') {
                return Err(Answer::error(
                    400,
                    "BadRequest",
                    format!(
                        "Unrecognized segment '{key}': a userPrincipalName starting with '$' must be \
                         addressed in the key form users('{key}')."
                    ),
                ));
            }
            (Some((*key).to_owned()), tail)
        }
        [policies, name]
            if policies.eq_ignore_ascii_case("policies")
                && name.eq_ignore_ascii_case("authenticationMethodsPolicy") =>
        {
            return Ok(Route::Policy);
        }
        [organization] if organization.eq_ignore_ascii_case("organization") => {
            return Ok(Route::Organization);
        }
        [identity, conditional_access, policies]
            if identity.eq_ignore_ascii_case("identity")
                && conditional_access.eq_ignore_ascii_case("conditionalAccess")
                && policies.eq_ignore_ascii_case("policies") =>
        {
            return Ok(Route::ConditionalAccessPolicies);
        }
        [policies, name]
            if policies.eq_ignore_ascii_case("policies")
                && name.eq_ignore_ascii_case("identitySecurityDefaultsEnforcementPolicy") =>
        {
            return Ok(Route::SecurityDefaults);
        }
        [role_management, directory, assignments]
            if role_management.eq_ignore_ascii_case("roleManagement")
                && directory.eq_ignore_ascii_case("directory")
                && assignments.eq_ignore_ascii_case("roleAssignments") =>
        {
            return Ok(Route::RoleAssignments);
        }
        [groups] if groups.eq_ignore_ascii_case("groups") => return Ok(Route::Groups),
        [users] if users.eq_ignore_ascii_case("users") => return Ok(Route::Users),
        [groups, group, relation, cast @ ..]
            if groups.eq_ignore_ascii_case("groups") && !group.is_empty() =>
        {
            let which = match (relation.to_ascii_lowercase().as_str(), cast) {
                ("members", []) => Members::Direct,
                ("transitivemembers", []) => Members::Transitive,
                ("transitivemembers", [cast])
                    if cast.eq_ignore_ascii_case("microsoft.graph.user") =>
                {
                    Members::TransitiveUsers
                }
                ("members" | "transitivemembers", [cast, ..]) => {
                    return Err(segment_not_found(cast));
                }
                _ => return Err(segment_not_found(relation)),
            };
            return Ok(Route::GroupMembers((*group).to_owned(), which));
        }
        [first, ..] => return Err(segment_not_found(first)),
        [] => return Err(segment_not_found("beta")),
    };
    let Some(key) = user_key.filter(|k| !k.is_empty()) else {
        return Err(segment_not_found("users"));
    };
    match tail {
        [] => Ok(Route::User(key)),
        [authentication, endpoint] if authentication.eq_ignore_ascii_case("authentication") => {
            match endpoint.to_ascii_lowercase().as_str() {
                "signinpreferences" => Ok(Route::SignInPreferences(key)),
                "requirements" => Ok(Route::Requirements(key)),
                "methods" => Ok(Route::Methods(key)),
                _ => Err(segment_not_found(endpoint)),
            }
        }
        [member_of] | [member_of, "microsoft.graph.group"]
            if member_of.eq_ignore_ascii_case("transitiveMemberOf") =>
        {
            Ok(Route::MemberOf(key))
        }
        [first, ..] => Err(segment_not_found(first)),
    }
}

fn is_key_form(segment: &str) -> bool {
    // `get`, not indexing: a percent-decoded segment may have a multi-byte char at byte 6.
    segment.len() > "users()".len()
        && segment
            .get(..6)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("users("))
        && segment.ends_with(')')
}

/// The key inside `users('...')` (quotes removed, `''` unescaped) or `users(guid)`.
fn key_form_value(segment: &str) -> Result<String, Answer> {
    // is_key_form checked the ASCII prefix `users(` and the ASCII suffix `)`.
    let inner = &segment[6..segment.len() - 1];
    if let Some(quoted) = inner.strip_prefix('\'') {
        let Some(text) = quoted.strip_suffix('\'') else {
            return Err(Answer::error(
                400,
                "BadRequest",
                format!("Unterminated string literal in the key of segment '{segment}'."),
            ));
        };
        // Inside an OData literal a quote is written twice; a lone quote ends the literal early.
        if text.replace("''", "").contains('\'') {
            return Err(Answer::error(
                400,
                "BadRequest",
                format!(
                    "Bad string literal in the key of segment '{segment}': a quote must be doubled."
                ),
            ));
        }
        Ok(text.replace("''", "'"))
    } else {
        Ok(inner.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfactl_core::permissions::TokenKind;

    #[test]
    fn user_reads_are_judged_by_token_kind_and_selected_properties() {
        let caller = |kind, permission: &str| Caller {
            app_id: "a".into(),
            permissions: vec![permission.to_owned()],
            kind,
        };
        let user = Route::User("megan@contoso.com".into());
        let basic = Some("$select=id,userPrincipalName");
        let more = Some("$select=id,userType,accountEnabled");
        let delegated = caller(TokenKind::Delegated, "User.ReadBasic.All");
        // user-list / user-get: a delegated token reads the basic profile with
        // User.ReadBasic.All; anything more, and any application read, needs User.Read.All.
        assert_eq!(authorize(&delegated, &user, basic, false), None);
        assert!(authorize(&delegated, &Route::Users, more, false).is_some());
        assert!(
            authorize(&delegated, &user, None, false).is_some(),
            "no $select"
        );
        let app = caller(TokenKind::Application, "User.ReadBasic.All");
        assert!(authorize(&app, &user, basic, false).is_some());
        let app = caller(TokenKind::Application, "User.Read.All");
        assert_eq!(authorize(&app, &Route::Users, more, false), None);
        // group-list-transitivemembers: GroupMember.Read.All or higher, never Group.ReadBasic.All.
        let members = Route::GroupMembers("g".into(), Members::Transitive);
        let app = caller(TokenKind::Application, "GroupMember.Read.All");
        assert_eq!(authorize(&app, &members, more, false), None);
        let app = caller(TokenKind::Application, "Group.ReadBasic.All");
        assert!(authorize(&app, &members, more, false).is_some());
    }

    #[test]
    fn parses_every_way_of_naming_a_user() {
        assert_eq!(
            parse_route(
                "/beta/users/071cc716-8147-4397-a5ba-b2105951cc0b/authentication/requirements"
            ),
            Ok(Route::Requirements(
                "071cc716-8147-4397-a5ba-b2105951cc0b".into()
            ))
        );
        assert_eq!(
            parse_route(
                "/beta/users/adele_fabrikam.com%23EXT%23%40contoso.onmicrosoft.com/authentication/methods"
            ),
            Ok(Route::Methods(
                "adele_fabrikam.com#EXT#@contoso.onmicrosoft.com".into()
            ))
        );
        assert_eq!(
            parse_route("/beta/users('$o''brien@contoso.com')/authentication/signInPreferences"),
            Ok(Route::SignInPreferences("$o'brien@contoso.com".into()))
        );
        assert_eq!(
            parse_route("/beta/users(%27%24x%40contoso.com%27)/authentication/signinpreferences"),
            Ok(Route::SignInPreferences("$x@contoso.com".into()))
        );
        assert_eq!(
            parse_route("/beta/policies/authenticationMethodsPolicy"),
            Ok(Route::Policy)
        );
        assert_eq!(parse_route("/beta/groups"), Ok(Route::Groups));
        assert_eq!(
            parse_route("/beta/identity/conditionalAccess/policies"),
            Ok(Route::ConditionalAccessPolicies)
        );
        assert_eq!(
            parse_route("/beta/policies/identitySecurityDefaultsEnforcementPolicy"),
            Ok(Route::SecurityDefaults)
        );
        assert_eq!(
            parse_route("/beta/roleManagement/directory/roleAssignments"),
            Ok(Route::RoleAssignments)
        );
        assert_eq!(parse_route("/beta/users"), Ok(Route::Users));
        assert_eq!(
            parse_route("/beta/groups/g1/transitiveMembers/microsoft.graph.user"),
            Ok(Route::GroupMembers("g1".into(), Members::TransitiveUsers))
        );
        assert_eq!(
            parse_route("/beta/groups/G1/Members"),
            Ok(Route::GroupMembers("G1".into(), Members::Direct))
        );
        assert!(parse_route("/beta/groups/g1/owners").is_err());
        assert!(parse_route("/beta/groups/g1/members/microsoft.graph.device").is_err());
    }

    #[test]
    fn refuses_what_graph_refuses() {
        // An unknown segment is Graph's 400 BadRequest, not a 404 (which means "no such user").
        for path in [
            "/v1.0/users/x/authentication/methods",
            "/beta/users/x/authentication/fax",
            "/beta/policies/nothing",
            "/beta/groups/g1/owners",
        ] {
            let answer = parse_route(path).unwrap_err();
            assert_eq!(answer.status, 400, "{path}");
            assert_eq!(answer.body.as_ref().unwrap()["error"]["code"], "BadRequest");
        }
        assert_eq!(
            parse_route("/beta/users/x/authentication/fax")
                .unwrap_err()
                .body
                .unwrap()["error"]["message"],
            "Resource not found for the segment 'fax'."
        );
        assert_eq!(
            parse_route("/beta/users/$x@contoso.com/authentication/methods")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            parse_route("/beta/users('a'b')/authentication/methods")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(parse_route("/beta/users/%zz").unwrap_err().status, 400);
    }
}
