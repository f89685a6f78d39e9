//! Managed identity: the two local token services an Azure host runs, for the app the tenant
//! file marks `managedIdentity: true`.
//!
//! - IMDS (VMs, scale sets, Arc): `GET /metadata/identity/oauth2/token?api-version=2018-02-01&
//!   resource=...` with `Metadata: true`, answering with every number as a string.
//! - App Service, Functions, Container Apps and Azure Automation: `GET /msi/token?api-version=
//!   2019-08-01&resource=...` with `X-IDENTITY-HEADER` (the host's `IDENTITY_HEADER`).
//!
//! It exists so that mfactl's managed-identity sign-in runs against these shapes, with the
//! header checks that guard them against request forgery. Tokens come from [`super::token`], the
//! same issuer the token endpoint uses; this module only speaks the two protocols. Shapes follow
//! Microsoft's documentation ("How to use managed identities ... on an Azure VM", "Managed
//! identities for App Service"); IMDS's "Identity not found" is what it is seen to answer when no
//! identity is assigned. Where a refusal's wording is not documented it says so.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::token::{ManagedIdentityError, ManagedToken, SignIn, json_response, request_root};

/// The api-version App Service's token service speaks (the older 2017-09-01 used a `secret`
/// header instead, and is not served).
const APP_SERVICE_API_VERSION: &str = "2019-08-01";

/// The managed-identity routes, mounted only when the tenant file has an `auth` section.
pub(super) fn routes() -> Router<Arc<SignIn>> {
    Router::new()
        .route("/metadata/identity/oauth2/token", get(imds))
        .route("/msi/token", get(app_service))
}

/// An error in the managed-identity services' shape: `{"error", "error_description"}`.
struct Refused {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl Refused {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Refused {
        Refused {
            status,
            error,
            description: description.into(),
        }
    }

    fn into_response(self) -> Response {
        json_response(
            self.status,
            &json!({ "error": self.error, "error_description": self.description }),
        )
    }
}

fn refuse(status: StatusCode, error: &'static str, description: &str) -> Response {
    Refused::new(status, error, description).into_response()
}

/// The query's parameters; the first of a repeated name counts.
fn query(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}

/// Which identity a request asks for: IMDS takes `client_id`, `object_id` or `msi_res_id`;
/// App Service `client_id`, `principal_id` or `mi_res_id`. Only a `client_id` can be compared
/// here (the others name Azure objects the emulator does not model), so any other selector,
/// or a client id that is not the managed identity's, finds no identity.
fn selects_another_identity(query: &[(String, String)], others: &[&str], client_id: &str) -> bool {
    let other_selector = others.iter().any(|name| param(query, name).is_some());
    let other_client =
        param(query, "client_id").is_some_and(|id| !id.eq_ignore_ascii_case(client_id));
    other_selector || other_client
}

/// The managed identity's client id, if the tenant file has one.
fn identity_client_id(sign_in: &SignIn) -> Option<&str> {
    sign_in
        .auth()
        .managed_identity()
        .map(|app| app.client_id.as_str())
}

/// Checks shared by both services once their own header passed: a resource, an identity that
/// matches any selector, a resource the emulator serves.
fn token_for(
    sign_in: &SignIn,
    query: &[(String, String)],
    other_selectors: &[&str],
    root: &str,
) -> Result<(String, ManagedToken), Refused> {
    let Some(resource) = param(query, "resource") else {
        // Wording not documented by Microsoft.
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        ));
    };
    let identity_not_found = || {
        Refused::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        )
    };
    match identity_client_id(sign_in) {
        Some(client_id) if !selects_another_identity(query, other_selectors, client_id) => {}
        _ => return Err(identity_not_found()),
    }
    match sign_in.managed_identity_token(resource, root) {
        Ok(token) => Ok((resource.to_owned(), token)),
        Err(ManagedIdentityError::NoIdentity) => Err(identity_not_found()),
        Err(ManagedIdentityError::UnknownResource(err)) => Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            ManagedIdentityError::entra_description(&err),
        )),
        Err(ManagedIdentityError::Issue(text)) => Err(Refused::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unknown",
            text,
        )),
    }
}

/// `GET /metadata/identity/oauth2/token` (IMDS).
async fn imds(State(sign_in): State<Arc<SignIn>>, uri: Uri, headers: HeaderMap) -> Response {
    // The header must be exactly "true", in lower case (Microsoft's documentation).
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request_102",
            "Required metadata header not specified",
        );
    }
    let query = query(&uri);
    if param(&query, "api-version").is_none() {
        // Wording not documented by Microsoft.
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let root = request_root(&uri, &headers);
    match token_for(&sign_in, &query, &["object_id", "msi_res_id"], &root) {
        Ok((resource, token)) => {
            let expires_on = token.issued_at.saturating_add_unsigned(token.lifetime);
            json_response(StatusCode::OK, &imds_answer(&resource, &token, expires_on))
        }
        Err(refused) => refused.into_response(),
    }
}

/// IMDS's answer: every number a string, as IMDS sends them.
fn imds_answer(resource: &str, token: &ManagedToken, expires_on: i64) -> Value {
    json!({
        "access_token": token.access_token,
        "client_id": token.client_id,
        "expires_in": token.lifetime.to_string(),
        "expires_on": expires_on.to_string(),
        "ext_expires_in": token.lifetime.to_string(),
        "not_before": token.issued_at.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    })
}

/// `GET /msi/token` (App Service and the hosts that share its protocol).
async fn app_service(State(sign_in): State<Arc<SignIn>>, uri: Uri, headers: HeaderMap) -> Response {
    let presented = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let accepted = match &sign_in.auth().identity_header {
        Some(expected) => expected.matches(presented),
        None => !presented.trim().is_empty(),
    };
    if !accepted {
        // App Service's answer to a missing or wrong header is not documented; 401 says what
        // happened.
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "The X-IDENTITY-HEADER header is missing or is not the IDENTITY_HEADER of this host.",
        );
    }
    let query = query(&uri);
    if param(&query, "api-version") != Some(APP_SERVICE_API_VERSION) {
        // Wording not documented by Microsoft.
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("The api-version must be {APP_SERVICE_API_VERSION}."),
        );
    }
    let root = request_root(&uri, &headers);
    match token_for(&sign_in, &query, &["principal_id", "mi_res_id"], &root) {
        Ok((resource, token)) => {
            let expires_on = token.issued_at.saturating_add_unsigned(token.lifetime);
            json_response(
                StatusCode::OK,
                &json!({
                    "access_token": token.access_token,
                    "expires_on": expires_on.to_string(),
                    "resource": resource,
                    "token_type": "Bearer",
                    "client_id": token.client_id,
                }),
            )
        }
        Err(refused) => refused.into_response(),
    }
}
