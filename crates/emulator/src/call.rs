//! One Graph call — a request sent alone, or one item of a `$batch` — through the steps Graph
//! applies after authentication: routing (404/405, a 400 for an unknown segment), authorization
//! (403), throttling (429, charged but no state change), then the state operation, handed to
//! the module of its resource. The router (`routes`) runs it for a request, `$batch`
//! for each item, so batching saves round trips but not quota, as on Graph.
//!
//! Authorization needs the resource, so it follows routing; it comes before throttling, so a
//! refused call costs nothing: Graph documents neither order, and a client must not learn to
//! spend quota on calls it is not allowed to make.

use axum::http::Method;
use rand::Rng;
use serde_json::Value;

use super::context::{Answer, CallContext, Shared, bump};
use super::listing::{self, BaseCost};
use super::members::{self, Members};
use super::throttle::{AppThrottle, Limit, Verdict};
use super::token::{Caller, Refusal};
use super::{
    authentication, conditional_access, groups, membership, organization, policy, registration,
    roles, users,
};
use mfactl_core::permissions::Resource;

/// The application id the emulator reports in throttle scopes when it accepts any token (no
/// `auth` section): it does not decode tokens then, so every caller is one app (as a single
/// mfactl run is). With an `auth` section the scope names the token's `appid`.
pub const EMULATOR_APP_ID: &str = "00000000-0000-0000-0000-00000000cafe";

/// Graph's `WWW-Authenticate` on a 401.
const WWW_AUTHENTICATE: &str = "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"";

/// The Graph resources the emulator serves.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    SignInPreferences(String),
    Requirements(String),
    Methods(String),
    /// `/users/{key}/authentication` itself: requirements and signInPreferences in one read.
    Authentication(String),
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
    /// `/reports/authenticationMethods/userRegistrationDetails` (its query options go to
    /// [`registration::list`]).
    RegistrationReport,
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
            Route::RegistrationReport => Resource::RegistrationReport,
            // One read of both: it needs what reading each needs (see [`Route::also_needs`]).
            Route::Authentication(_) => Resource::SignInPreferences,
        }
    }

    /// A second permission a read of this route needs, beyond [`Route::resource`]'s: the
    /// whole `authentication` entity holds requirements too, and so does a users listing that
    /// selects `perUserMfaState`. Microsoft documents neither call's permissions; the emulator
    /// asks for what reading the same values one by one needs.
    fn also_needs(&self, query: Option<&str>) -> Option<Resource> {
        let selects_state = || {
            selected(query)
                .iter()
                .any(|name| name.eq_ignore_ascii_case("perUserMfaState"))
        };
        match self {
            Route::Authentication(_) => Some(Resource::Requirements),
            Route::Users if selects_state() => Some(Resource::Requirements),
            _ => None,
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
pub(super) fn unauthenticated(message: &str) -> Answer {
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
    let need = |resource: Resource| {
        if is_write {
            resource.write()
        } else {
            resource.read()
        }
    };
    let unmet = std::iter::once(resource)
        .chain(route.also_needs(query))
        .find(|resource| !need(*resource).is_met_by(caller.kind, &caller.permissions));
    let resource = unmet?;
    let (code, message) = match resource {
        Resource::SignInPreferences | Resource::Requirements | Resource::Methods => {
            ("accessDenied", "Request Authorization failed")
        }
        Resource::UserBasic
        | Resource::RegistrationReport
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
pub(super) fn roll_failure(shared: &Shared, rate: f64) -> Option<Answer> {
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

/// The 429 for a call the tenant's buckets (`verdict`) or the app's ceilings across tenants
/// refused; `None` when it may go ahead. The app's ceilings are charged too, refused or not
/// (usage keeps counting); the tenant's own refusal, when there is one, is the one answered.
fn throttled(
    shared: &Shared,
    credential: &Credential,
    verdict: Option<&Verdict>,
    is_write: bool,
) -> Option<Answer> {
    let app_refusal = shared.app_throttle.as_ref().and_then(|app| {
        let cost = verdict.map_or(1, |v| v.resource_units);
        let mut app = app.lock().unwrap_or_else(|e| e.into_inner());
        app.admit(credential.app_id(), is_write, cost)
    });
    let (limit, retry_after, scope) = match (verdict, app_refusal) {
        (
            Some(Verdict {
                refused: Some((limit, retry_after)),
                ..
            }),
            _,
        ) => (
            *limit,
            *retry_after,
            format!(
                "{}/{}/{}",
                limit.scope_prefix(),
                credential.app_id(),
                shared.tenant_id
            ),
        ),
        (_, Some((limit, retry_after))) => (
            limit,
            retry_after,
            format!(
                "{}/{}",
                AppThrottle::scope_prefix(limit),
                credential.app_id()
            ),
        ),
        _ => return None,
    };
    bump(&shared.counters.throttled);
    match limit {
        Limit::ResourceUnits => {}
        Limit::Writes => bump(&shared.counters.throttled_writes),
        Limit::Reports => bump(&shared.counters.throttled_methods),
    }
    Some(
        Answer::error(
            429,
            "TooManyRequests",
            "Too many requests. Please retry after the time given in the Retry-After header.",
        )
        .header("retry-after", retry_after.to_string())
        .header("x-ms-throttle-scope", scope)
        .header("x-ms-throttle-information", limit.information()),
    )
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
            Route::RegistrationReport => throttle.admit_report_read(),
            _ if is_write => throttle.admit(true),
            _ => throttle.admit_read_costing(route.resource_units(query)),
        }
    });
    let answer = if let Some(refused) = throttled(shared, credential, verdict.as_ref(), is_write) {
        refused
    } else {
        let context = CallContext {
            link: format!("{root}{path}"),
            eventual,
            refuse_mfa_state_select: shared.config.refuse.per_user_mfa_state_select,
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
    if let Some(answer) = refused(&shared.config.refuse, route) {
        return Err(answer);
    }
    Ok(is_write)
}

/// The answer to a bulk read the emulator was told to refuse (`--refuse`), before it is
/// metered, as a Graph that does not serve it would answer before doing any work. The codes:
/// a tenant without Entra ID P1/P2 is answered `Authentication_RequestFromNonPremiumTenantOrB2CTenant`
/// by Graph's sign-in logs (seen in tools that read them; the report is documented to need the
/// same licence, its refusal is not documented); a Graph that does not serve a GET of the
/// whole `authentication` entity is not documented either, and the emulator answers 400.
fn refused(refuse: &super::Refusals, route: &Route) -> Option<Answer> {
    match route {
        Route::RegistrationReport if refuse.registration_report => Some(Answer::error(
            403,
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "Tenant is not a B2C tenant and doesn't have premium license",
        )),
        Route::Authentication(_) if refuse.authentication => Some(Answer::error(
            400,
            "BadRequest",
            "Reading the authentication entity of a user is not supported; read its \
             requirements and signInPreferences.",
        )),
        _ => None,
    }
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
        Route::Authentication(key) => authentication::entity(&state, &key),
        Route::RegistrationReport => {
            registration::list(&state, shared.report_snapshot(), query, context)
        }
        Route::ConditionalAccessPolicies => {
            Ok(conditional_access::policies(&state, query, context))
        }
        Route::SecurityDefaults => Ok(conditional_access::security_defaults(&state)),
        Route::RoleAssignments => Ok(roles::assignments(&state, query, context)),
    };
    result.unwrap_or_else(Answer::from_graph)
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
        [reports, root, details]
            if reports.eq_ignore_ascii_case("reports")
                && root.eq_ignore_ascii_case("authenticationMethods")
                && details.eq_ignore_ascii_case("userRegistrationDetails") =>
        {
            return Ok(Route::RegistrationReport);
        }
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
        [authentication] if authentication.eq_ignore_ascii_case("authentication") => {
            Ok(Route::Authentication(key))
        }
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
