//! Several tenants on one port (`mfactl emulator serve --tenant a.yaml --tenant b.yaml …`): an
//! MSP's customers as one Graph and one Entra ID see them. Each tenant keeps everything of its
//! own — users, policy, per-tenant quotas, `auth:` apps and signing key — in its own
//! [`Shared`]; this module only picks which one answers:
//!
//! - a Graph call by its bearer token's `tid` claim (a real token names its tenant there; the
//!   token is then checked by that tenant alone, so a token another tenant issued is refused as
//!   a foreign signature, never served from the wrong tenant). Without an `auth:` section the
//!   emulator checks no signature, but it still needs a JWT naming a `tid` to know the tenant:
//!   a token that is no JWT, names no `tid` or an unknown one gets 401 (the emulator's choice:
//!   Graph has no such case);
//! - a sign-in request by the `{tenant}` segment of its URL (id or domain, any case), as Entra's
//!   authority does; `organizations` and `common` go to the first tenant with an `auth:`
//!   section, and a tenant not served gets Entra's AADSTS90002;
//! - the managed identity endpoints (IMDS, App Service) by the first tenant whose `auth:` holds
//!   a managed identity: an Azure host's identity lives in one tenant.
//!
//! What the tenants share is what Graph shares across tenants: each application's app-wide
//! ceilings ([`AppThrottle`]), and the knowledge of which apps exist, so that an app registered
//! in one tenant and not consented in another gets Entra's "missing service principal"
//! (AADSTS7000229) there rather than "not found" (AADSTS700016).
//!
//! `GET /_emulator/stats` sums every tenant's counters; `GET /_emulator/tenants` lists the
//! tenants, and `/_emulator/tenants/{tenant}/tenant` and `/stats` show one. Like a single
//! tenant's `/_emulator/*`, they need a token the emulator issued once a tenant signs in.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::context::Shared;
use super::routes;
use super::throttle::AppThrottle;
use super::token::SignIn;
use super::{EmulatorConfig, Stats, Tenant, identity, token};

/// The tenants one emulator serves, in the order given.
pub(super) struct Directory {
    tenants: Vec<Arc<Shared>>,
    /// (tenant id, domain), lower case, parallel to `tenants`.
    keys: Vec<(String, String)>,
}

impl Directory {
    /// Builds each tenant's state with a shared app-wide throttle. Two tenants with the same id
    /// or domain are refused: a token or an authority could not tell them apart.
    pub(super) fn build(
        tenants: Vec<Tenant>,
        config: &EmulatorConfig,
    ) -> std::io::Result<Directory> {
        let mut keys: Vec<(String, String)> = Vec::with_capacity(tenants.len());
        for tenant in &tenants {
            let key = (
                tenant.tenant_id.to_ascii_lowercase(),
                tenant.domain.to_ascii_lowercase(),
            );
            if let Some(other) = keys.iter().find(|k| k.0 == key.0 || k.1 == key.1) {
                return Err(std::io::Error::other(format!(
                    "two tenant files name tenant {} ({}): each tenant is served once",
                    mfactl_core::text::printable(&other.0),
                    mfactl_core::text::printable(&other.1)
                )));
            }
            keys.push(key);
        }
        let known_apps: HashSet<String> = tenants
            .iter()
            .filter_map(|tenant| tenant.auth.as_ref())
            .flat_map(|auth| auth.apps.iter())
            .map(|app| app.client_id.to_ascii_lowercase())
            .collect();
        let app_throttle = config.throttle.then(|| {
            Arc::new(Mutex::new(AppThrottle::new(
                config.app_ru_per_20s,
                config.app_writes_per_300s,
            )))
        });
        let tenants = tenants
            .into_iter()
            .enumerate()
            .map(|(index, tenant)| {
                // Each tenant rolls its own latency and faults, reproducibly.
                let mut config = config.clone();
                config.seed = config.seed.wrapping_add(index as u64);
                Shared::in_directory(tenant, config, app_throttle.clone(), &known_apps)
                    .map(Arc::new)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Directory { tenants, keys })
    }

    /// The first tenant given (the one a single-tenant caller means).
    pub(super) fn first(&self) -> &Arc<Shared> {
        &self.tenants[0]
    }

    pub(super) fn len(&self) -> usize {
        self.tenants.len()
    }

    /// The tenant a sign-in URL segment or a `tid` names: its id or its domain, any case.
    pub(super) fn find(&self, segment: &str) -> Option<&Arc<Shared>> {
        let segment = segment.trim().to_ascii_lowercase();
        self.keys
            .iter()
            .position(|(id, domain)| *id == segment || *domain == segment)
            .map(|index| &self.tenants[index])
    }

    /// The tenant a sign-in URL's `{tenant}` segment addresses: [`Directory::find`], or for
    /// `organizations`/`common` the first tenant that signs in.
    fn authority(&self, segment: &str) -> Option<&Arc<Shared>> {
        let alias = ["organizations", "common"]
            .iter()
            .any(|alias| segment.eq_ignore_ascii_case(alias));
        if alias {
            return self.tenants.iter().find(|t| t.sign_in().is_some());
        }
        self.find(segment)
    }

    /// The sign-in server a sign-in URL's `{tenant}` segment addresses ([`Directory::authority`]),
    /// or the answer when there is none: Entra's AADSTS90002 for a tenant not served, the
    /// emulator's own 404 for one served without an `auth` section.
    fn sign_in_for(
        &self,
        tenant: &str,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Arc<SignIn>, Box<Response>> {
        match self.authority(tenant) {
            Some(shared) => shared
                .sign_in()
                .cloned()
                .ok_or_else(|| Box::new(token::no_sign_in(tenant, uri, headers))),
            None => Err(Box::new(token::unknown_tenant(tenant, uri, headers))),
        }
    }

    /// Every tenant's counters added up (the peak in flight is the largest one's).
    pub(super) fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for tenant in &self.tenants {
            total.add(&tenant.stats());
        }
        total
    }

    /// The tenant ids, in the order given.
    pub(super) fn tenant_ids(&self) -> Vec<String> {
        self.tenants
            .iter()
            .map(|t| t.tenant_id().to_owned())
            .collect()
    }
}

/// The router: one tenant is served as before ([`routes::router`]); several by [`multi`].
pub(super) fn router(directory: Arc<Directory>) -> Router {
    if directory.len() == 1 {
        return routes::router(directory.first().clone());
    }
    multi(directory)
}

/// The router for several tenants (see the module documentation).
fn multi(directory: Arc<Directory>) -> Router {
    let mut router = Router::new()
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/tenant", get(which_tenant))
        .route("/_emulator/tenants", get(list))
        .route("/_emulator/tenants/{tenant}/tenant", get(one_tenant))
        .route("/_emulator/tenants/{tenant}/stats", get(one_stats))
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(token_endpoint).fallback(token::wrong_method),
        )
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(devicecode_endpoint).fallback(token::wrong_method),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration_endpoint),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(keys_endpoint))
        .fallback(graph)
        .with_state(directory.clone());
    let host = directory
        .tenants
        .iter()
        .find(|t| {
            t.sign_in()
                .is_some_and(|s| s.auth().managed_identity().is_some())
        })
        .or_else(|| directory.tenants.iter().find(|t| t.sign_in().is_some()));
    if let Some(sign_in) = host.and_then(|host| host.sign_in()) {
        router = router.merge(identity::routes().with_state(sign_in.clone()));
    }
    router
}

/// The `tid` claim of a request's bearer token, read without checking anything: the tenant
/// that then checks the token is chosen by it.
fn token_tenant(headers: &HeaderMap) -> Option<String> {
    let token = routes::bearer_token(headers)?;
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("tid")?.as_str().map(str::to_owned)
}

/// A Graph call, answered by the tenant its token names.
async fn graph(
    State(directory): State<Arc<Directory>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tenant = token_tenant(&headers);
    match tenant.as_deref().and_then(|tid| directory.find(tid)) {
        Some(shared) => routes::graph(State(shared.clone()), method, uri, headers, body).await,
        None => routes::refused_token(&headers),
    }
}

async fn token_endpoint(
    State(directory): State<Arc<Directory>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match directory.sign_in_for(&tenant, &uri, &headers) {
        Ok(sign_in) => {
            token::token_endpoint(State(sign_in), Path(tenant), uri, headers, body).await
        }
        Err(refused) => *refused,
    }
}

async fn devicecode_endpoint(
    State(directory): State<Arc<Directory>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match directory.sign_in_for(&tenant, &uri, &headers) {
        Ok(sign_in) => {
            token::devicecode_endpoint(State(sign_in), Path(tenant), uri, headers, body).await
        }
        Err(refused) => *refused,
    }
}

async fn openid_configuration_endpoint(
    State(directory): State<Arc<Directory>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match directory.sign_in_for(&tenant, &uri, &headers) {
        Ok(sign_in) => {
            token::openid_configuration_endpoint(State(sign_in), Path(tenant), uri, headers).await
        }
        Err(refused) => *refused,
    }
}

async fn keys_endpoint(
    State(directory): State<Arc<Directory>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match directory.sign_in_for(&tenant, &uri, &headers) {
        Ok(sign_in) => token::keys_endpoint(State(sign_in), Path(tenant), uri, headers).await,
        Err(refused) => *refused,
    }
}

/// `/_emulator/*` across tenants: open when no tenant signs in; otherwise only for a caller
/// holding a token one of them issued (checked by the tenant its `tid` names), as a single
/// tenant's `/_emulator/*` is.
fn directory_refusal(directory: &Directory, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    if directory.tenants.iter().all(|t| t.sign_in().is_none()) {
        return None;
    }
    let tenant = token_tenant(headers);
    match tenant.as_deref().and_then(|tid| directory.find(tid)) {
        Some(shared) if shared.sign_in().is_some() => routes::admin_refusal(shared, uri, headers),
        _ => Some(routes::refused_token(headers)),
    }
}

async fn stats(State(directory): State<Arc<Directory>>, uri: Uri, headers: HeaderMap) -> Response {
    if let Some(refused) = directory_refusal(&directory, &uri, &headers) {
        return refused;
    }
    axum::Json(directory.stats()).into_response()
}

/// `/_emulator/tenant` names one tenant; with several, it says where each one is.
async fn which_tenant(
    State(directory): State<Arc<Directory>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = directory_refusal(&directory, &uri, &headers) {
        return refused;
    }
    let body = json!({
        "error": "this emulator serves several tenants: GET /_emulator/tenants/{tenant}/tenant \
                  (by tenant id or domain)",
        "tenants": directory.tenant_ids(),
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

async fn list(State(directory): State<Arc<Directory>>, uri: Uri, headers: HeaderMap) -> Response {
    if let Some(refused) = directory_refusal(&directory, &uri, &headers) {
        return refused;
    }
    let tenants: Vec<Value> = directory
        .keys
        .iter()
        .zip(&directory.tenants)
        .map(|((_, domain), shared)| json!({"tenantId": shared.tenant_id(), "domain": domain}))
        .collect();
    axum::Json(json!({ "tenants": tenants })).into_response()
}

/// One tenant's state in the tenant file's shape, without its `auth` section (as
/// `/_emulator/tenant` shows a single tenant).
async fn one_tenant(
    State(directory): State<Arc<Directory>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match directory.find(&tenant) {
        Some(shared) => {
            if let Some(refused) = routes::admin_refusal(shared, &uri, &headers) {
                return refused;
            }
            let mut tenant = shared.tenant();
            tenant.auth = None;
            axum::Json(tenant).into_response()
        }
        None => not_served(&tenant),
    }
}

async fn one_stats(
    State(directory): State<Arc<Directory>>,
    Path(tenant): Path<String>,
) -> Response {
    match directory.find(&tenant) {
        Some(shared) => axum::Json(shared.stats()).into_response(),
        None => not_served(&tenant),
    }
}

fn not_served(tenant: &str) -> Response {
    let body = json!({ "error": format!("no tenant {} is served here", token::echo(tenant)) });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tid_claim_is_read_from_any_jwt_shaped_token() {
        let claims = URL_SAFE_NO_PAD.encode(r#"{"tid":"abc","roles":[]}"#);
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            format!("Bearer e30.{claims}.sig").parse().unwrap(),
        );
        assert_eq!(token_tenant(&headers).as_deref(), Some("abc"));
        headers.insert("authorization", "Bearer opaque".parse().unwrap());
        assert_eq!(token_tenant(&headers), None);
    }
}
