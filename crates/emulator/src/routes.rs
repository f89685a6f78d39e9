//! The HTTP face of the emulator: the router, and what every Graph request goes through before
//! and after its call.
//!
//! Graph paths are parsed by hand in one fallback handler rather than with the router's
//! patterns, because Graph addresses users three ways that a pattern router does not model:
//! by id, by percent-encoded UPN (`%23EXT%23` for guests) and by the OData key form
//! `users('$x@contoso.com')` (with `'` doubled) for UPNs that start with `$`
//! ([`super::call`] parses them).
//!
//! Each request goes through the same steps Graph applies, in this order: latency, injected
//! failure (503, nothing else happens), authentication (401), then the call ([`super::call`]):
//! routing (404/405), authorization (403), throttling (429, charged but no state change), the
//! state operation. Only the last step may change state, and it belongs to one module per Graph
//! resource (`users`, `authentication`, `policy`, `groups`, [`super::organization`]);
//! `POST /beta/$batch` (`batch`) runs each item through the same call steps, so batching saves
//! round trips but not quota, as on Graph. This module must not hold Graph's data rules; those
//! live in [`super::state`].
//!
//! Authentication depends on the tenant file. Without an `auth` section any bearer token passes
//! (except the `expired…`/`denied…` test tokens). With one, the token must be one the emulator's
//! sign-in server ([`super::token`]) issued, and the call must be allowed by the token's `roles`
//! or `scp` under [`mfactl_core::permissions`]. A `$batch` needs a token to be read at all; a
//! token Graph refuses fails each item with its own 401 inside the 200 (as Graph is seen to
//! answer), and a missing permission fails only the items that need it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rand::Rng;

use super::call::{Credential, injected_failure, metered, roll_failure, unauthenticated};
use super::context::{
    Answer, Counters, GRAPH_JSON, RequestIds, Shared, add_inner_error, bump, count, is_eventual,
    is_low_priority,
};
use super::token::{Refusal, request_root};
use super::{batch, identity, token};

/// The axum router: `/_emulator/*` helpers, the sign-in endpoints when the tenant file has an
/// `auth` section, and the Graph fallback.
pub fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new()
        .route("/_emulator/stats", get(emulator_stats))
        .route("/_emulator/tenant", get(emulator_tenant));
    if let Some(sign_in) = &shared.sign_in {
        router = router
            .merge(token::routes().with_state(sign_in.clone()))
            .merge(identity::routes().with_state(sign_in.clone()));
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
pub(super) fn admin_refusal(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
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

/// Graph's 401 for a token that names no tenant the emulator serves (several tenants only).
pub(super) fn refused_token(headers: &HeaderMap) -> Response {
    let ids = RequestIds::new(headers);
    let message = match bearer_token(headers) {
        None => Refusal::Empty.message(),
        Some(_) => Refusal::Invalid.message(),
    };
    finish(unauthenticated(message), &ids)
}

/// Every Graph request lands here (with several tenants, once the token's tenant is known).
pub(super) async fn graph(
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

/// Without an `auth` section, a bearer token starting with this is answered 401 as expired (to
/// test token handling); with one, only tokens the emulator issued pass.
pub const EXPIRED_TOKEN_PREFIX: &str = "expired";
/// Without an `auth` section, a bearer token starting with this is answered 403
/// `Authorization_RequestDenied`, as a token without the needed permissions would be.
pub const DENIED_TOKEN_PREFIX: &str = "denied";

/// The bearer token, when the request carries a non-empty one.
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .map(|(_, token)| token.trim())
}
