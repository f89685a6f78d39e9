//! The emulator's sign-in server: Entra ID's token and device-code endpoints for the tenant
//! file's `auth` section, the access tokens they issue, and the check every Graph call makes of
//! the bearer token it carries.
//!
//! It exists so that mfactl's sign-in code (client secret, certificate assertion, workload
//! identity federation, device code, refresh token; managed identity lives in
//! `identity`) runs against the same protocol and the same refusals as Entra, with
//! Entra's `AADSTS` codes, and so that Graph calls are refused for the reasons Graph refuses
//! them: a missing, expired, foreign or misaddressed token (401), a token without the permission
//! the call needs (403, decided from [`mfactl_core::permissions`]).
//!
//! What it checks, and where that differs from Entra:
//! - Tokens are RS256 JWTs shaped like Entra's v1 Graph tokens, signed with an RSA key made when
//!   the emulator starts (so a token from another emulator is a foreign signature). Graph
//!   tolerates some clock skew; the emulator, sharing the client's clock, allows none beyond
//!   the rest of a token's `exp` second (so a token lives at least its `expires_in`).
//! - Certificate assertions are verified against the app's public certificate (PS256 or RS256,
//!   found by `x5t#S256` or `x5t`). Entra accepts an assertion again within its lifetime (MSAL
//!   reuses one for up to 9 minutes) and puts no limit on `exp`; the emulator does too, unless
//!   `strictAssertions` asks it to refuse a replayed `jti` or a lifetime over 10 minutes.
//! - Workload-federation assertions come from an issuer whose keys the emulator cannot fetch:
//!   their claims (issuer, subject, audience, time) are checked, their signature is not.
//! - Delegated tokens carry what the admin consented to; Graph would also want the admin to hold
//!   an admin role over other users' methods, which the emulator does not model.
//!
//! Client assertions are checked in `assertion`; the device code and refresh token flows live in
//! `delegated`; this module holds the signing key, issues and checks tokens, and speaks HTTP.
//!
//! Codes and messages come from Microsoft's error reference, Azure SDK documentation and errors
//! Entra is seen to send (each noted where it is used); a few refusals Entra has no documented
//! code for are marked as the emulator's choice. The endpoints answer at once: latency and
//! injected failures model Graph, not sign-in. Secrets, assertions and tokens are never logged;
//! device codes and refresh tokens are held only as SHA-256 hashes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::KeyPair as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::tenant::{AuthApp, Tenant, TenantAuth};
use mfactl_core::cloud::Cloud;
use mfactl_core::permissions::TokenKind;

mod assertion;
mod delegated;

use delegated::{DeviceCode, RefreshGrant};

/// The audience a workload-federation assertion must carry (Entra's default for its cloud).
pub const FEDERATION_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Microsoft Graph's application id, which Graph accepts as a token audience.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// A client-provided value echoed in an error description is cut to this many characters.
const ECHO_LIMIT: usize = 200;

/// Why Graph refuses a bearer token (401 `InvalidAuthenticationToken`); the messages are the
/// ones Graph is seen to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// No `Authorization: Bearer` header, or an empty token.
    Empty,
    /// Not a JWT at all (no dots).
    NotAJwt,
    /// Not a token this emulator issued: undecodable, another signer, another issuer.
    Invalid,
    /// Expired, or not yet valid.
    Lifetime,
    /// Issued for another resource.
    Audience,
}

impl Refusal {
    pub(super) fn message(self) -> &'static str {
        match self {
            Refusal::Empty => "Access token is empty.",
            Refusal::NotAJwt => {
                "IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be \
                 in JWS or JWE Compact Serialization Format. (JWS): \
                 'EncodedHeader.EncodedPayload.EncodedSignature'. (JWE): \
                 'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector.\
                 EncodedCiphertext.EncodedAuthenticationTag'."
            }
            Refusal::Invalid => "Access token validation failure.",
            Refusal::Lifetime => "Access token has expired or is not yet valid.",
            Refusal::Audience => "Access token validation failure. Invalid audience.",
        }
    }
}

/// Who a valid token speaks for, as far as Graph's permission check needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Caller {
    /// The token's `appid`: the app, or the public client an admin signed in with.
    pub(super) app_id: String,
    /// `roles` (an app token) or the words of `scp` (a delegated token).
    pub(super) permissions: Vec<String>,
    /// Which of the two `permissions` came from: application and delegated permissions grant
    /// different things ([`mfactl_core::permissions`]).
    pub(super) kind: TokenKind,
}

/// The sign-in state of one emulator: the `auth` configuration, the signing key, and what
/// clients were handed (device codes, refresh tokens, assertion ids seen).
pub(super) struct SignIn {
    auth: TenantAuth,
    tenant_id: String,
    domain: String,
    key: SigningKey,
    /// Service-principal object ids, one per app, made up at start (Entra's differ per tenant).
    app_object_ids: Vec<String>,
    /// One per admin: the tenant user's object id, or one made up at start.
    admin_object_ids: Vec<String>,
    admin_names: Vec<Option<String>>,
    sessions: Mutex<Sessions>,
    tokens_issued: AtomicU64,
    /// Client ids (lower case) registered in any tenant the emulator serves: an app among them
    /// but not among this tenant's is a multi-tenant app not consented here.
    known_apps: HashSet<String>,
    /// Bearer tokens whose signature [`SignIn::authenticate`] has checked, with their claims.
    verified: Mutex<HashMap<String, Arc<Value>>>,
}

/// The most checked tokens remembered (a run uses a handful; the cache starts over when full).
const VERIFIED_TOKENS: usize = 256;

impl fmt::Debug for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignIn")
            .field("tenant_id", &self.tenant_id)
            .field("apps", &self.auth.apps.len())
            .field("admins", &self.auth.admins.len())
            .field("tokens_issued", &self.tokens_issued())
            .finish_non_exhaustive()
    }
}

impl SignIn {
    /// The sign-in server for `tenant`, or `None` when its file has no `auth` section.
    pub(super) fn new(
        tenant: &Tenant,
        known_apps: &HashSet<String>,
    ) -> std::io::Result<Option<SignIn>> {
        let Some(auth) = tenant.auth.clone() else {
            return Ok(None);
        };
        let key = SigningKey::generate()?;
        let app_object_ids = auth.apps.iter().map(|_| new_guid()).collect();
        let (admin_object_ids, admin_names) = auth
            .admins
            .iter()
            .map(|admin| {
                let user = tenant.users.iter().find(|user| {
                    user.user_principal_name
                        .eq_ignore_ascii_case(&admin.user_principal_name)
                });
                match user {
                    Some(user) => (user.id.clone(), user.display_name.clone()),
                    None => (new_guid(), None),
                }
            })
            .unzip();
        Ok(Some(SignIn {
            auth,
            tenant_id: tenant.tenant_id.to_ascii_lowercase(),
            domain: tenant.domain.clone(),
            key,
            app_object_ids,
            admin_object_ids,
            admin_names,
            sessions: Mutex::new(Sessions::default()),
            tokens_issued: AtomicU64::new(0),
            known_apps: known_apps.clone(),
            verified: Mutex::new(HashMap::new()),
        }))
    }

    pub(super) fn auth(&self) -> &TenantAuth {
        &self.auth
    }

    /// Access tokens issued since start, by every endpoint.
    pub(super) fn tokens_issued(&self) -> u64 {
        self.tokens_issued.load(Ordering::Relaxed)
    }

    /// Revokes every refresh token handed out so far, as an admin revoking sessions would.
    pub(super) fn revoke_refresh_tokens(&self) {
        for grant in self.lock().refresh_tokens.values_mut() {
            grant.revoked = true;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        // Only in-memory bookkeeping happens under the lock; the maps stay consistent.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `https://sts.windows.net/{tid}/`, the issuer of Entra's v1 tokens (Graph's).
    fn issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.tenant_id)
    }

    // -----------------------------------------------------------------------------------------
    // Graph's side: the check of a bearer token.

    /// Checks a bearer token as Graph would: signed by this emulator, for this tenant, within
    /// its lifetime, for Graph (`root` is the emulator's root as the request reached it).
    pub(super) fn authenticate(&self, token: &str, root: &str) -> Result<Caller, Refusal> {
        if !token.contains('.') {
            return Err(Refusal::NotAJwt);
        }
        let claims = self.verified_claims(token)?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("iss") != Some(self.issuer().as_str()) || text("tid") != Some(&self.tenant_id) {
            return Err(Refusal::Invalid);
        }
        let now = unix_now();
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        // `iat` and `exp` are whole seconds, `iat` rounded down: a token issued at 100.9 with
        // `expires_in` 2 has `exp` 102, yet the client was told it lives until 102.9. It is
        // accepted through its `exp` second, so never refused before `expires_in` has passed
        // (Graph's own leeway is minutes).
        match (number("exp"), number("nbf")) {
            (Some(exp), nbf) if now <= exp && nbf.is_none_or(|nbf| nbf <= now) => {}
            _ => return Err(Refusal::Lifetime),
        }
        if !text("aud").is_some_and(|aud| is_graph_resource(aud, root)) {
            return Err(Refusal::Audience);
        }
        let (kind, permissions) = match (claims.get("roles"), text("scp")) {
            (Some(Value::Array(roles)), _) => (
                TokenKind::Application,
                roles
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            ),
            (_, Some(scp)) => (
                TokenKind::Delegated,
                scp.split_whitespace().map(str::to_owned).collect(),
            ),
            _ => (TokenKind::Application, Vec::new()),
        };
        Ok(Caller {
            app_id: text("appid").unwrap_or_default().to_owned(),
            permissions,
            kind,
        })
    }

    /// The claims of `token` once its RS256 signature is checked with this tenant's key; the
    /// other checks are the caller's, on every request. A token checked before is not checked
    /// again: a run sends thousands of requests with a handful of tokens, and each check is an
    /// RSA operation. The emulator's own economy, not Graph's behaviour: no answer changes,
    /// since the same bytes under the same key cannot come to have a wrong signature.
    fn verified_claims(&self, token: &str) -> Result<Arc<Value>, Refusal> {
        let verified = || self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(claims) = verified().get(token) {
            return Ok(Arc::clone(claims));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Invalid)?;
        if header.alg != Algorithm::RS256 {
            return Err(Refusal::Invalid);
        }
        let claims = jsonwebtoken::decode::<Value>(
            token,
            &self.key.decoding,
            &signature_only(Algorithm::RS256),
        )
        .map_err(|_| Refusal::Invalid)?
        .claims;
        let claims = Arc::new(claims);
        let mut verified = verified();
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_owned(), Arc::clone(&claims));
        Ok(claims)
    }

    // -----------------------------------------------------------------------------------------
    // Issuing.

    /// A signed access token for `principal`, for the resource `audience`.
    fn access_token(
        &self,
        principal: &Principal<'_>,
        audience: &str,
        now: i64,
    ) -> Result<String, OAuthError> {
        let lifetime = i64::try_from(self.auth.token_lifetime_seconds).unwrap_or(i64::MAX);
        let mut claims = json!({
            "aud": audience,
            "iss": self.issuer(),
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(lifetime),
            "idp": self.issuer(),
            "tid": self.tenant_id,
            "uti": random_token(16),
            "ver": "1.0",
        });
        match principal {
            Principal::App {
                app,
                object_id,
                acr,
            } => {
                claims["appid"] = json!(app.client_id);
                claims["appidacr"] = json!(acr);
                claims["idtyp"] = json!("app");
                claims["oid"] = json!(object_id);
                claims["sub"] = json!(object_id);
                if !app.roles.is_empty() {
                    claims["roles"] = json!(app.roles);
                }
            }
            Principal::Admin {
                admin,
                client_id,
                scopes,
            } => {
                let upn = &self.auth.admins[*admin].user_principal_name;
                claims["appid"] = json!(client_id);
                claims["appidacr"] = json!("0");
                claims["idtyp"] = json!("user");
                claims["oid"] = json!(self.admin_object_ids[*admin]);
                // Entra's `sub` is pairwise (per app); the object id serves as well here.
                claims["sub"] = json!(self.admin_object_ids[*admin]);
                claims["scp"] = json!(scopes.join(" "));
                claims["upn"] = json!(upn);
                claims["unique_name"] = json!(upn);
                if let Some(name) = &self.admin_names[*admin] {
                    claims["name"] = json!(name);
                }
            }
        }
        let token = self.sign(&claims)?;
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
        Ok(token)
    }

    /// An OpenID Connect ID token for an admin signing in through `client_id`.
    fn id_token(&self, admin: usize, client_id: &str, now: i64) -> Result<String, OAuthError> {
        let lifetime = i64::try_from(self.auth.token_lifetime_seconds).unwrap_or(i64::MAX);
        let upn = &self.auth.admins[admin].user_principal_name;
        let mut claims = json!({
            "aud": client_id,
            "iss": format!("https://login.microsoftonline.com/{}/v2.0", self.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(lifetime),
            "oid": self.admin_object_ids[admin],
            "preferred_username": upn,
            "sub": self.admin_object_ids[admin],
            "tid": self.tenant_id,
            "uti": random_token(16),
            "ver": "2.0",
        });
        if let Some(name) = &self.admin_names[admin] {
            claims["name"] = json!(name);
        }
        self.sign(&claims)
    }

    fn sign(&self, claims: &Value) -> Result<String, OAuthError> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(self.key.kid.clone());
        header.x5t = Some(self.key.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key.encoding).map_err(|err| {
            tracing::warn!("cannot sign a token: {err}");
            // AADSTS50000 TokenIssuanceError (Microsoft's error reference).
            OAuthError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                Some(50000),
                "There was an error issuing a token.",
            )
        })
    }

    /// A token for the managed identity (IMDS, App Service): (token, lifetime, issued at, the
    /// identity's client id). `resource` must be one the emulator serves.
    pub(super) fn managed_identity_token(
        &self,
        resource: &str,
        root: &str,
    ) -> Result<ManagedToken, ManagedIdentityError> {
        let Some((index, app)) = self
            .auth
            .apps
            .iter()
            .enumerate()
            .find(|(_, app)| app.managed_identity)
        else {
            return Err(ManagedIdentityError::NoIdentity);
        };
        if !is_graph_resource(resource, root) {
            return Err(ManagedIdentityError::UnknownResource(resource_not_found(
                resource,
                &self.domain,
            )));
        }
        let now = unix_now();
        let principal = Principal::App {
            app,
            object_id: &self.app_object_ids[index],
            acr: "2",
        };
        let access_token = self
            .access_token(&principal, &audience_of(resource), now)
            .map_err(|err| ManagedIdentityError::Issue(err.text))?;
        Ok(ManagedToken {
            access_token,
            lifetime: self.auth.token_lifetime_seconds,
            issued_at: now,
            client_id: app.client_id.clone(),
        })
    }

    // -----------------------------------------------------------------------------------------
    // The token endpoint.

    fn token(&self, form: &Form, ctx: &Context) -> Result<Value, OAuthError> {
        let grant_type = form.required("grant_type")?;
        match grant_type {
            "client_credentials" => self.client_credentials(form, ctx),
            DEVICE_CODE_GRANT => self.device_code_grant(form, ctx),
            "refresh_token" => self.refresh_token_grant(form, ctx),
            // AADSTS70003 UnsupportedGrantType (Microsoft's error reference).
            other => Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                Some(70003),
                format!(
                    "The app requested an unsupported grant type '{}'.",
                    echo(other)
                ),
            )),
        }
    }

    /// Which tenant the URL names: this one (by id or domain), or an alias for delegated flows.
    fn authority(&self, segment: &str) -> Result<Authority, OAuthError> {
        if segment.eq_ignore_ascii_case(&self.tenant_id)
            || segment.eq_ignore_ascii_case(&self.domain)
        {
            Ok(Authority::Tenant)
        } else if segment.eq_ignore_ascii_case("organizations")
            || segment.eq_ignore_ascii_case("common")
        {
            Ok(Authority::Alias)
        } else {
            Err(tenant_not_found(segment))
        }
    }

    fn client_credentials(&self, form: &Form, ctx: &Context) -> Result<Value, OAuthError> {
        if self.authority(&ctx.tenant)? != Authority::Tenant {
            // AADSTS50059 MissingTenantRealmAndNoUserInformationProvided (Microsoft's error
            // reference). Which code Entra sends for an app token from /common or
            // /organizations is not documented; this one says what is missing.
            return Err(OAuthError::invalid_request(
                50059,
                "No tenant-identifying information found in either the request or implied by \
                 any provided credentials.",
            ));
        }
        let client_id = form.required("client_id")?;
        let (index, app) = self.app(client_id)?;
        let acr = self.authenticate_client(app, form, ctx)?;
        let scope = form.required("scope")?;
        let resource = self.app_resource(scope, &ctx.root)?;
        let principal = Principal::App {
            app,
            object_id: &self.app_object_ids[index],
            acr,
        };
        let access_token = self.access_token(&principal, &audience_of(&resource), ctx.now)?;
        tracing::debug!(client_id = %app.client_id, "app token issued");
        let lifetime = self.auth.token_lifetime_seconds;
        Ok(json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }))
    }

    /// The app registration with this client id, or Entra's "not found in the directory".
    fn app(&self, client_id: &str) -> Result<(usize, &AuthApp), OAuthError> {
        self.auth
            .apps
            .iter()
            .enumerate()
            .find(|(_, app)| app.client_id.eq_ignore_ascii_case(client_id.trim()))
            .ok_or_else(|| self.unknown_app(client_id))
    }

    /// AADSTS700016; the text is Entra's (seen in its answers). An app registered in another
    /// tenant the emulator serves (a multi-tenant app not consented here, so without a service
    /// principal in this tenant) gets AADSTS7000229 instead: `invalid_client`, 401, "The client
    /// application {id} is missing service principal in the tenant {tenant}", as Microsoft's
    /// Teams SDK troubleshooting page quotes Entra's answer to a client-credentials request.
    fn unknown_app(&self, client_id: &str) -> OAuthError {
        if self
            .known_apps
            .contains(&client_id.trim().to_ascii_lowercase())
        {
            return OAuthError::invalid_client(
                7000229,
                format!(
                    "The client application {} is missing service principal in the tenant {}. \
                     See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
                    echo(client_id.trim()),
                    self.tenant_id
                ),
            );
        }
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            Some(700016),
            format!(
                "Application with identifier '{}' was not found in the directory '{}'. This can \
                 happen if the application has not been installed by the administrator of the \
                 tenant or consented to by any user in the tenant. You may have sent your \
                 authentication request to the wrong tenant.",
                echo(client_id),
                self.domain
            ),
        )
    }

    /// The resource a client-credentials `scope` names (`{resource}/.default`, one resource).
    fn app_resource(&self, scope: &str, root: &str) -> Result<String, OAuthError> {
        let scopes: Vec<&str> = scope.split_whitespace().collect();
        if scopes.is_empty() {
            return Err(missing_parameter("scope"));
        }
        let mut resources: Vec<&str> = Vec::with_capacity(scopes.len());
        for scope in &scopes {
            let Some(resource) = scope.strip_suffix("/.default") else {
                // AADSTS1002012; the text is Entra's (seen in its answers).
                return Err(OAuthError::invalid_scope(
                    1002012,
                    format!(
                        "The provided value for scope {} is not valid. Client credential flows \
                         must have a scope value with /.default suffixed to the resource \
                         identifier (application ID URI).",
                        echo(scope)
                    ),
                ));
            };
            resources.push(resource);
        }
        let first = resources[0];
        if resources.iter().any(|r| !same_resource(r, first)) {
            return Err(more_than_one_resource(scope));
        }
        if !is_graph_resource(first, root) {
            return Err(resource_not_found(first, &self.domain));
        }
        Ok(first.to_owned())
    }

    // -----------------------------------------------------------------------------------------
    // Discovery.

    fn openid_configuration(&self, root: &str) -> Value {
        let base = format!("{root}/{}", self.tenant_id);
        json!({
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
            "jwks_uri": format!("{base}/discovery/v2.0/keys"),
            "issuer": format!("https://login.microsoftonline.com/{}/v2.0", self.tenant_id),
            "token_endpoint_auth_methods_supported":
                ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": null,
            "cloud_instance_name": "microsoftonline.com",
        })
    }

    fn keys(&self) -> Value {
        json!({
            "keys": [{
                "kty": "RSA",
                "use": "sig",
                "kid": self.key.kid,
                "x5t": self.key.kid,
                "n": URL_SAFE_NO_PAD.encode(&self.key.modulus),
                "e": URL_SAFE_NO_PAD.encode(&self.key.exponent),
            }]
        })
    }
}

/// A token from the managed identity, for IMDS and App Service to shape.
pub(super) struct ManagedToken {
    pub(super) access_token: String,
    pub(super) lifetime: u64,
    pub(super) issued_at: i64,
    pub(super) client_id: String,
}

/// Why the managed identity gave no token.
pub(super) enum ManagedIdentityError {
    /// No app in the tenant file is the managed identity.
    NoIdentity,
    /// The resource is not one the emulator serves (Entra's error, passed through).
    UnknownResource(OAuthError),
    /// Signing failed.
    Issue(String),
}

impl ManagedIdentityError {
    /// The `error_description` Entra's answer would carry, for IMDS to pass through.
    pub(super) fn entra_description(err: &OAuthError) -> String {
        match err.code {
            Some(code) => format!("AADSTS{code}: {}", err.text),
            None => err.text.clone(),
        }
    }
}

/// Who a token is for.
enum Principal<'a> {
    App {
        app: &'a AuthApp,
        object_id: &'a str,
        /// `appidacr`: "1" secret, "2" certificate or federated credential.
        acr: &'static str,
    },
    Admin {
        admin: usize,
        client_id: &'a str,
        scopes: &'a [String],
    },
}

/// The tenant segment of a sign-in URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Authority {
    /// This tenant, by id or domain.
    Tenant,
    /// `organizations` or `common`: delegated flows only.
    Alias,
}

/// What clients were handed, keyed by the SHA-256 of the secret value.
#[derive(Default)]
struct Sessions {
    device_codes: HashMap<[u8; 32], DeviceCode>,
    refresh_tokens: HashMap<[u8; 32], RefreshGrant>,
    /// Insertion order, to forget the oldest first.
    refresh_order: VecDeque<[u8; 32]>,
    /// `jti` → `exp` of client assertions seen (only with `strictAssertions`).
    seen_jtis: HashMap<String, i64>,
}

/// The emulator's RSA signing key, made at start.
struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// base64url SHA-1 of the public modulus, as Entra's key ids look.
    kid: String,
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl SigningKey {
    fn generate() -> std::io::Result<SigningKey> {
        let failed =
            |what: &str| std::io::Error::other(format!("cannot {what} the emulator's signing key"));
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| failed("generate"))?;
        let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der<'static> =
            pair.as_der().map_err(|_| failed("encode"))?;
        let pem = pem_block("PRIVATE KEY", pkcs8.as_ref());
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| failed("load"))?;
        let public = pair.public_key();
        let modulus = public.modulus().big_endian_without_leading_zero().to_vec();
        let exponent = public.exponent().big_endian_without_leading_zero().to_vec();
        let decoding = DecodingKey::from_rsa_raw_components(&modulus, &exponent);
        let kid = URL_SAFE_NO_PAD
            .encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &modulus).as_ref());
        Ok(SigningKey {
            encoding,
            decoding,
            kid,
            modulus,
            exponent,
        })
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let base64 = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// A validation that checks the signature (and algorithm) only: the claims are checked by hand,
/// so that each failure gets the answer Entra or Graph gives for it.
fn signature_only(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation
}

/// AADSTS900144 (Microsoft's error reference).
fn missing_parameter(name: &str) -> OAuthError {
    OAuthError::invalid_request(
        900144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// AADSTS700022 InvalidMultipleResourcesScope (Microsoft's error reference).
fn more_than_one_resource(scope: &str) -> OAuthError {
    OAuthError::invalid_scope(
        700022,
        format!(
            "The provided value for the input parameter scope isn't valid because it contains \
             more than one resource. Scope {} isn't valid.",
            echo(scope)
        ),
    )
}

/// AADSTS500011 InvalidResourceServicePrincipalNotFound (Microsoft's error reference).
fn resource_not_found(resource: &str, domain: &str) -> OAuthError {
    OAuthError::new(
        StatusCode::BAD_REQUEST,
        "invalid_resource",
        Some(500011),
        format!(
            "The resource principal named {} was not found in the tenant named {domain}. This can \
             happen if the application has not been installed by the administrator of the tenant \
             or consented to by any user in the tenant. You might have sent your authentication \
             request to the wrong tenant.",
            echo(resource)
        ),
    )
}

/// Whether a resource (or a token's `aud`) is Graph as the emulator serves it: its own root as
/// the request reached it, a national cloud's Graph root, or Graph's application id.
pub(super) fn is_graph_resource(resource: &str, root: &str) -> bool {
    let resource = resource.trim_end_matches('/');
    (!root.is_empty() && resource.eq_ignore_ascii_case(root))
        || resource.eq_ignore_ascii_case(GRAPH_APP_ID)
        || Cloud::ALL
            .iter()
            .any(|cloud| resource.eq_ignore_ascii_case(cloud.graph_root()))
}

fn same_resource(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// A token's `aud` for a resource: as asked for, without a trailing slash.
fn audience_of(resource: &str) -> String {
    let trimmed = resource.trim_end_matches('/');
    if trimmed.is_empty() {
        resource
    } else {
        trimmed
    }
    .to_owned()
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
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

/// What one request to a sign-in endpoint brings along.
struct Context {
    /// `http://{host}` as the request reached the emulator.
    root: String,
    /// The `{tenant}` segment of the URL.
    tenant: String,
    correlation_id: String,
    /// Unix seconds, for token claims and assertion times.
    now: i64,
    /// For device-code expiry and polling intervals (tokio's clock, as the throttle uses).
    instant: Instant,
}

impl Context {
    fn new(tenant: String, uri: &Uri, headers: &HeaderMap) -> Context {
        // Entra answers with the client-request-id as its correlation id when one is sent.
        let correlation_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| uuid::Uuid::try_parse(v.trim()).ok())
            .map_or_else(new_guid, |id| id.hyphenated().to_string());
        Context {
            root: request_root(uri, headers),
            tenant,
            correlation_id,
            now: unix_now(),
            instant: Instant::now(),
        }
    }

    /// The token URLs a certificate assertion may name as its audience: this endpoint, by the
    /// segment used, the tenant id or the domain, on the v2.0 or the v1 path.
    fn token_urls(&self, tenant_id: &str, domain: &str) -> Vec<String> {
        [self.tenant.as_str(), tenant_id, domain]
            .iter()
            .flat_map(|tenant| {
                [
                    format!("{}/{tenant}/oauth2/v2.0/token", self.root),
                    format!("{}/{tenant}/oauth2/token", self.root),
                ]
            })
            .collect()
    }
}

/// An `application/x-www-form-urlencoded` body; the first of a repeated name counts.
struct Form(HashMap<String, String>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        let mut fields = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            fields
                .entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        Form(fields)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| missing_parameter(name))
    }
}

/// A refusal in Entra's shape: `error`, `error_description` (`AADSTS<code>: <text>` and the
/// ids), `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
#[derive(Debug)]
pub(super) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    /// The AADSTS number; `None` where Entra documents none (`slow_down`).
    code: Option<u32>,
    text: String,
}

impl OAuthError {
    fn new(
        status: StatusCode,
        error: &'static str,
        code: Option<u32>,
        text: impl Into<String>,
    ) -> OAuthError {
        OAuthError {
            status,
            error,
            code,
            text: text.into(),
        }
    }

    fn invalid_request(code: u32, text: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", Some(code), text)
    }

    /// `invalid_client` comes with 401, as Entra answers it.
    fn invalid_client(code: u32, text: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", Some(code), text)
    }

    fn invalid_grant(code: u32, text: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", Some(code), text)
    }

    fn invalid_scope(code: u32, text: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", Some(code), text)
    }

    fn body(&self, ctx: &Context) -> Value {
        let trace_id = new_guid();
        let timestamp = jiff::Timestamp::now()
            .strftime("%Y-%m-%d %H:%M:%SZ")
            .to_string();
        let prefix = self
            .code
            .map(|code| format!("AADSTS{code}: "))
            .unwrap_or_default();
        let mut body = json!({
            "error": self.error,
            "error_description": format!(
                "{prefix}{}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {}\r\nTimestamp: {timestamp}",
                self.text, ctx.correlation_id
            ),
            "error_codes": self.code.into_iter().collect::<Vec<_>>(),
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": ctx.correlation_id,
        });
        if let Some(code) = self.code {
            body["error_uri"] = json!(format!(
                "https://login.microsoftonline.com/error?code={code}"
            ));
        }
        body
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP.

/// The sign-in routes, mounted only when the tenant file has an `auth` section.
pub(super) fn routes() -> Router<Arc<SignIn>> {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(token_endpoint).fallback(wrong_method),
        )
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(devicecode_endpoint).fallback(wrong_method),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration_endpoint),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(keys_endpoint))
}

pub(super) async fn token_endpoint(
    State(sign_in): State<Arc<SignIn>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = Context::new(tenant, &uri, &headers);
    let answer = sign_in.token(&Form::parse(&body), &ctx);
    respond(answer, &ctx)
}

pub(super) async fn devicecode_endpoint(
    State(sign_in): State<Arc<SignIn>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = Context::new(tenant, &uri, &headers);
    // Entra was reported (2019, MSAL.NET #1407) to answer devicecode errors with 200; the
    // emulator answers them like the token endpoint's, with 400.
    let answer = sign_in.device_authorization(&Form::parse(&body), &ctx);
    respond(answer, &ctx)
}

pub(super) async fn openid_configuration_endpoint(
    State(sign_in): State<Arc<SignIn>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = Context::new(tenant, &uri, &headers);
    let answer = sign_in
        .authority(&ctx.tenant)
        .map(|_| sign_in.openid_configuration(&ctx.root));
    respond(answer, &ctx)
}

pub(super) async fn keys_endpoint(
    State(sign_in): State<Arc<SignIn>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = Context::new(tenant, &uri, &headers);
    let answer = sign_in.authority(&ctx.tenant).map(|_| sign_in.keys());
    respond(answer, &ctx)
}

/// AADSTS900561 BadResourceRequestInvalidRequest (Microsoft's error reference).
pub(super) async fn wrong_method(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let ctx = Context::new(String::new(), &uri, &headers);
    let err = OAuthError::invalid_request(
        900561,
        format!(
            "The endpoint only accepts POST, OPTIONS requests. Received a {} request.",
            echo(method.as_str())
        ),
    );
    respond(Err(err), &ctx)
}

/// Entra's answer for a `{tenant}` segment no tenant the emulator serves carries (several
/// tenants on one port): AADSTS90002, as [`SignIn`] answers a tenant other than its own.
pub(super) fn unknown_tenant(tenant: &str, uri: &Uri, headers: &HeaderMap) -> Response {
    let ctx = Context::new(tenant.to_owned(), uri, headers);
    respond(Err(tenant_not_found(tenant)), &ctx)
}

/// The answer for a sign-in URL naming a tenant the emulator serves without an `auth` section
/// (several tenants on one port): it does not sign in there. The emulator's own answer; Entra
/// has no such tenant.
pub(super) fn no_sign_in(tenant: &str, uri: &Uri, headers: &HeaderMap) -> Response {
    let ctx = Context::new(tenant.to_owned(), uri, headers);
    let err = OAuthError::new(
        StatusCode::NOT_FOUND,
        "invalid_request",
        None,
        "This emulator's tenant file has no auth section.",
    );
    respond(Err(err), &ctx)
}

/// AADSTS90002 InvalidTenantName; the text is the one Entra sends (MSAL.NET's docs quote it).
fn tenant_not_found(segment: &str) -> OAuthError {
    OAuthError::invalid_request(
        90002,
        format!(
            "Tenant '{}' not found. This may happen if there are no active subscriptions for \
             the tenant. Check to make sure you have the correct tenant ID. Check with your \
             subscription administrator.",
            echo(segment)
        ),
    )
}

fn respond(answer: Result<Value, OAuthError>, ctx: &Context) -> Response {
    let (status, body) = match answer {
        Ok(body) => (StatusCode::OK, body),
        Err(err) => (err.status, err.body(ctx)),
    };
    json_response(status, &body)
}

/// A JSON answer with the headers Entra's token endpoint sends (no caching).
pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Ok(id) = HeaderValue::from_str(&new_guid()) {
        headers.insert(HeaderName::from_static("x-ms-request-id"), id);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Small pieces.

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Unix seconds as Entra's messages show times.
fn show_time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S.0000000Z").to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

fn new_guid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// `bytes` random bytes from the system's CSPRNG, base64url.
fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // The system RNG failing is not something a caller can act on; a zeroed buffer would make
    // tokens guessable, so fall back to another source rather than to zeros.
    if aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut buffer)
        .is_err()
    {
        rand::Rng::fill(&mut rand::rng(), buffer.as_mut_slice());
    }
    URL_SAFE_NO_PAD.encode(buffer)
}

fn hash(secret: &str) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A client-provided value for an error description: cut to [`ECHO_LIMIT`] characters, control
/// characters replaced (JSON escapes the rest).
pub(super) fn echo(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(ECHO_LIMIT)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if value.chars().count() > ECHO_LIMIT {
        out.push('…');
    }
    out
}

/// **Test aid**: a workload-identity-federation assertion such as GitHub Actions or Kubernetes
/// hand out: claims `iss`, `sub`, `aud` = [`FEDERATION_AUDIENCE`], `iat`, `nbf`, `exp` (now +
/// `lifetime`) and a fresh `jti`, with an RS256 header and a random signature. The emulator checks
/// such an assertion's claims only (it cannot fetch the issuer's keys), so this is all a test
/// needs to sign in as an app whose `federatedSubject` is `subject`. Never accepted by Entra.
pub fn federated_assertion(subject: &str, issuer: &str, lifetime: Duration) -> String {
    let now = unix_now();
    let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "mfactl-emulator-test"});
    let claims = json!({
        "iss": issuer,
        "sub": subject,
        "aud": FEDERATION_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(lifetime),
        "jti": new_guid(),
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        random_token(256)
    )
}
