//! Delegated sign-in: the device code flow an admin uses from a terminal, and the refresh token
//! it leaves behind.
//!
//! It exists to model what an interactive sign-in looks like to a client that cannot open a
//! browser: a code to show, polls answered `authorization_pending` until the admin has "signed
//! in" (on the poll the tenant file names), `slow_down` for a client that polls faster than the
//! interval, `expired_token` after `expires_in`; then tokens that carry only the delegated
//! permissions the admin consented to, and a refresh token that rotates on use (the old one
//! stays valid, as Entra's do, until revoked). Scopes name their resource (Graph, the emulator's
//! root, or a bare name for Graph), which is stripped in the answer's `scope`.

use std::time::Duration;

use aws_lc_rs::rand::SecureRandom as _;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{
    Context, Form, OAuthError, Principal, SignIn, audience_of, echo, hash, is_graph_resource,
    more_than_one_resource, random_token, resource_not_found, same_resource,
};

/// The resource an unqualified delegated scope (`User.Read`) belongs to, as on Entra.
const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
const VERIFICATION_URI: &str = "https://microsoft.com/devicelogin";
/// Bounds on what a client can make the emulator remember.
const MAX_DEVICE_CODES: usize = 10_000;
const MAX_REFRESH_TOKENS: usize = 10_000;

impl SignIn {
    pub(super) fn device_authorization(
        &self,
        form: &Form,
        ctx: &Context,
    ) -> Result<Value, OAuthError> {
        self.authority(&ctx.tenant)?;
        let client_id = form.required("client_id")?.trim();
        let scope = form.required("scope")?;
        let request = delegated_request(scope, &ctx.root, &self.domain)?;
        // A confidential app gets a code too, and is refused when it polls without its
        // credential, as on Entra.
        let confidential = self.auth.app(client_id).is_some();
        let admin = self.auth.admin_for_public_client(client_id);
        if !confidential && (admin.is_none() || uuid::Uuid::try_parse(client_id).is_err()) {
            return Err(self.unknown_app(client_id));
        }
        let device_code = random_token(48);
        let user_code = user_code();
        let expires_in = self.auth.device_code_expires_in_seconds;
        let mut sessions = self.lock();
        // Codes are forgotten a lifetime after they expire, so that a late poll is still told
        // `expired_token` rather than that the code is unknown.
        let grace = Duration::from_secs(expires_in);
        sessions
            .device_codes
            .retain(|_, code| code.expires + grace > ctx.instant);
        if sessions.device_codes.len() >= MAX_DEVICE_CODES {
            return Err(OAuthError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                None,
                format!(
                    "The emulator holds {MAX_DEVICE_CODES} pending device codes; let some expire."
                ),
            ));
        }
        sessions.device_codes.insert(
            hash(&device_code),
            DeviceCode {
                client_id: client_id.to_owned(),
                admin,
                confidential,
                request,
                expires: ctx.instant + Duration::from_secs(expires_in),
                polls: 0,
                last_poll: None,
                redeemed: false,
            },
        );
        Ok(json!({
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": VERIFICATION_URI,
            "expires_in": expires_in,
            "interval": self.auth.device_code_interval_seconds,
            "message": format!(
                "To sign in, use a web browser to open the page {VERIFICATION_URI} and enter the \
                 code {user_code} to authenticate."
            ),
        }))
    }

    pub(super) fn device_code_grant(
        &self,
        form: &Form,
        ctx: &Context,
    ) -> Result<Value, OAuthError> {
        self.authority(&ctx.tenant)?;
        let client_id = form.required("client_id")?.trim();
        let device_code = form.required("device_code")?;
        let (admin, request) = {
            let mut sessions = self.lock();
            let code = sessions
                .device_codes
                .get_mut(&hash(device_code))
                .filter(|code| code.client_id.eq_ignore_ascii_case(client_id))
                .ok_or_else(|| {
                    // AADSTS7000014; the text is Entra's (seen in its answers).
                    OAuthError::invalid_grant(
                        7000014,
                        "The provided value for the input parameter 'device_code' is not valid.",
                    )
                })?;
            self.poll(code, ctx)?
        };
        self.delegated_tokens(admin, client_id, &request, ctx)
    }

    /// One poll of a device code: the admin and what was asked once approved, else the answer
    /// that says why not (yet).
    fn poll(
        &self,
        code: &mut DeviceCode,
        ctx: &Context,
    ) -> Result<(usize, DelegatedRequest), OAuthError> {
        if code.confidential {
            return Err(OAuthError::invalid_client(
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or \
                 'client_secret'.",
            ));
        }
        if code.redeemed {
            // AADSTS90120 InvalidDeviceFlowRequest (Microsoft's error reference).
            return Err(OAuthError::invalid_grant(
                90120,
                "The request was already authorized or declined.",
            ));
        }
        if ctx.instant >= code.expires {
            // AADSTS70020; the text is Entra's (seen in its answers).
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "expired_token",
                Some(70020),
                "The provided value for the input parameter 'device_code' is not valid. This \
                 device code has expired.",
            ));
        }
        let interval = Duration::from_secs(self.auth.device_code_interval_seconds);
        // A client that waits exactly the interval must never be told to slow down: requests
        // take time to travel, and timers fire a little early or late.
        let slack = (interval / 5).max(Duration::from_millis(200));
        let too_soon = code.last_poll.is_some_and(|last| {
            ctx.instant
                .saturating_duration_since(last)
                .saturating_add(slack)
                < interval
        });
        code.last_poll = Some(ctx.instant);
        if too_soon {
            // RFC 8628 §3.5. Entra documents no AADSTS code for it; none is sent.
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "slow_down",
                None,
                format!(
                    "Polled sooner than the interval of {} seconds; wait longer between polls.",
                    interval.as_secs()
                ),
            ));
        }
        code.polls = code.polls.saturating_add(1);
        if code.polls < self.auth.device_code_approval_polls {
            // AADSTS70016 AuthorizationPending (Microsoft's error reference).
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "authorization_pending",
                Some(70016),
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            ));
        }
        code.redeemed = true;
        let admin = code
            .admin
            .ok_or_else(|| self.unknown_app(&code.client_id))?;
        Ok((admin, code.request.clone()))
    }

    pub(super) fn refresh_token_grant(
        &self,
        form: &Form,
        ctx: &Context,
    ) -> Result<Value, OAuthError> {
        self.authority(&ctx.tenant)?;
        let client_id = form.required("client_id")?.trim();
        let refresh_token = form.required("refresh_token")?;
        // AADSTS70000; the text is Entra's (seen in its answers).
        let invalid =
            || OAuthError::invalid_grant(70000, "Provided grant is invalid or malformed.");
        let grant = self
            .lock()
            .refresh_tokens
            .get(&hash(refresh_token))
            .cloned()
            .ok_or_else(invalid)?;
        if grant.revoked {
            // AADSTS50173 FreshTokenNeeded (Microsoft's error reference).
            return Err(OAuthError::invalid_grant(
                50173,
                "The provided grant has expired due to it being revoked, and a fresh auth token \
                 is needed. Have the user sign in again.",
            ));
        }
        if !grant.client_id.eq_ignore_ascii_case(client_id) {
            return Err(invalid());
        }
        let mut request = match form.get("scope") {
            Some(scope) => delegated_request(scope, &ctx.root, &self.domain)?,
            None => DelegatedRequest {
                resource: grant.resource.clone(),
                permissions: grant.scopes.clone(),
                default: false,
                offline: true,
                openid: grant.openid,
                oidc: grant.oidc.clone(),
            },
        };
        // A refresh token is what the client used; it gets a new one whatever it asks.
        request.offline = true;
        self.delegated_tokens(grant.admin, client_id, &request, ctx)
    }

    /// The tokens an admin's delegated sign-in answers with: an access token for what was asked
    /// and consented to, a new refresh token (`offline_access`), an ID token (`openid`).
    fn delegated_tokens(
        &self,
        admin: usize,
        client_id: &str,
        request: &DelegatedRequest,
        ctx: &Context,
    ) -> Result<Value, OAuthError> {
        let consented = &self.auth.admins[admin].scopes;
        let scopes: Vec<String> = if request.default {
            consented.clone()
        } else {
            consented
                .iter()
                .filter(|have| {
                    request
                        .permissions
                        .iter()
                        .any(|want| want.eq_ignore_ascii_case(have))
                })
                .cloned()
                .collect()
        };
        if scopes.is_empty() && (request.default || !request.permissions.is_empty()) {
            // AADSTS65001 DelegationDoesNotExist (Microsoft's error reference).
            return Err(OAuthError::invalid_grant(
                65001,
                format!(
                    "The user or administrator has not consented to use the application with ID \
                     '{}'. Send an interactive authorization request for this user and resource.",
                    echo(client_id)
                ),
            ));
        }
        let principal = Principal::Admin {
            admin,
            client_id,
            scopes: &scopes,
        };
        let access_token =
            self.access_token(&principal, &audience_of(&request.resource), ctx.now)?;
        let lifetime = self.auth.token_lifetime_seconds;
        let scope: Vec<&str> = scopes
            .iter()
            .map(String::as_str)
            .chain(request.oidc.iter().map(String::as_str))
            .collect();
        let mut body = json!({
            "token_type": "Bearer",
            "scope": scope.join(" "),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        });
        if request.offline {
            body["refresh_token"] = json!(self.remember_refresh_token(RefreshGrant {
                client_id: client_id.to_owned(),
                admin,
                resource: request.resource.clone(),
                scopes,
                openid: request.openid,
                oidc: request.oidc.clone(),
                revoked: false,
            }));
        }
        if request.openid {
            body["id_token"] = json!(self.id_token(admin, client_id, ctx.now)?);
        }
        tracing::debug!(client_id = %echo(client_id), "delegated token issued");
        Ok(body)
    }

    /// A new refresh token for `grant`; the oldest are forgotten past [`MAX_REFRESH_TOKENS`].
    fn remember_refresh_token(&self, grant: RefreshGrant) -> String {
        let token = format!("1.{}", random_token(64));
        let key = hash(&token);
        let mut sessions = self.lock();
        while sessions.refresh_tokens.len() >= MAX_REFRESH_TOKENS {
            let Some(oldest) = sessions.refresh_order.pop_front() else {
                break;
            };
            sessions.refresh_tokens.remove(&oldest);
        }
        sessions.refresh_tokens.insert(key, grant);
        sessions.refresh_order.push_back(key);
        token
    }
}

/// What a delegated `scope` asks for.
#[derive(Clone, Debug)]
pub(super) struct DelegatedRequest {
    /// The resource the permissions belong to.
    resource: String,
    /// Permission names, resource prefix stripped.
    permissions: Vec<String>,
    /// `{resource}/.default`: everything the admin consented to.
    default: bool,
    offline: bool,
    openid: bool,
    /// The OpenID Connect scopes asked for (`openid`, `profile`, `email`), echoed in `scope`.
    oidc: Vec<String>,
}

/// `scope` of a devicecode or refresh request: OpenID Connect scopes, and permissions of one
/// resource (`https://graph.microsoft.com/X`, `{emulator root}/X`, or a bare `X` for Graph).
fn delegated_request(
    scope: &str,
    root: &str,
    domain: &str,
) -> Result<DelegatedRequest, OAuthError> {
    let mut request = DelegatedRequest {
        resource: GRAPH_RESOURCE.to_owned(),
        permissions: Vec::new(),
        default: false,
        offline: false,
        openid: false,
        oidc: Vec::new(),
    };
    let mut resource: Option<&str> = None;
    for word in scope.split_whitespace() {
        match word.to_ascii_lowercase().as_str() {
            "offline_access" => {
                request.offline = true;
                continue;
            }
            "openid" | "profile" | "email" => {
                request.openid |= word.eq_ignore_ascii_case("openid");
                request.oidc.push(word.to_ascii_lowercase());
                continue;
            }
            _ => {}
        }
        let (this_resource, permission) = match word.rsplit_once('/') {
            Some((resource, permission)) => (resource, permission),
            None => (GRAPH_RESOURCE, word),
        };
        if !is_graph_resource(this_resource, root) {
            return Err(resource_not_found(this_resource, domain));
        }
        match resource {
            Some(first) if !same_resource(first, this_resource) => {
                return Err(more_than_one_resource(scope));
            }
            _ => resource = Some(this_resource),
        }
        if permission == ".default" {
            request.default = true;
        } else if !permission.is_empty() {
            request.permissions.push(permission.to_owned());
        }
    }
    if let Some(resource) = resource {
        request.resource = resource.to_owned();
    }
    Ok(request)
}

/// A pending device code.
pub(super) struct DeviceCode {
    client_id: String,
    /// `None` for a confidential client, which is refused when it polls.
    admin: Option<usize>,
    confidential: bool,
    request: DelegatedRequest,
    expires: Instant,
    polls: u32,
    last_poll: Option<Instant>,
    redeemed: bool,
}

/// What a refresh token stands for.
#[derive(Clone)]
pub(super) struct RefreshGrant {
    client_id: String,
    admin: usize,
    resource: String,
    scopes: Vec<String>,
    openid: bool,
    oidc: Vec<String>,
    /// Set when an admin revokes sessions ([`SignIn::revoke_refresh_tokens`]).
    pub(super) revoked: bool,
}

/// Nine characters from an alphabet without look-alikes, as Entra's user codes look.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut buffer = [0u8; 9];
    if aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut buffer)
        .is_err()
    {
        rand::Rng::fill(&mut rand::rng(), &mut buffer);
    }
    buffer
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}
