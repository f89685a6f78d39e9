//! `GET /beta/identity/conditionalAccess/policies` and `GET
//! /beta/policies/identitySecurityDefaultsEnforcementPolicy`: the tenant's Conditional Access
//! policies and security defaults, from the tenant file's `conditionalAccessPolicies:` and
//! `securityDefaults:`, which mfactl reads to tell whether MFA stays required once per-user MFA
//! is disabled. Read-only, like everything mfactl does with them.
//!
//! The policies are answered in Graph's whole shape ([`super::state::conditional_access`]),
//! a page at a time: `$top` from 1 to 999 and an `@odata.nextLink` with an opaque `$skiptoken`,
//! as the other collections here. Graph documents `$top`, `$skip`, `$filter`, `$orderby` and
//! `$select` on this list, but not its page size or its nextLink: the emulator's page of 100
//! policies without `$top` has no Microsoft source (a tenant holds at most 195 policies, so a
//! large one spans two pages), and it serves only `$top` (any other `$` option is 400 rather
//! than silently ignored). Security defaults are one object, with the id, name and description
//! Graph's documented response shows.

use axum::http::StatusCode;
use serde_json::json;

use super::context::{Answer, CallContext};
use super::listing;
use super::state::TenantState;
use super::state::conditional_access::served;

/// Policies a page holds without `$top` (no Microsoft source; see the module documentation).
const PAGE: usize = 100;

/// `GET /identity/conditionalAccess/policies` with the request's query string.
pub(super) fn policies(state: &TenantState, query: Option<&str>, context: &CallContext) -> Answer {
    let window = match listing::parse_window(
        query.unwrap_or_default(),
        PAGE,
        &[],
        "Conditional Access policies",
    ) {
        Ok(window) => window,
        Err(answer) => return answer,
    };
    let policies = &state.tenant().conditional_access_policies;
    listing::values_page(
        policies
            .iter()
            .enumerate()
            .skip(window.offset)
            .map(|(position, policy)| (position, served(policy))),
        window.top,
        &window.carried,
        "identity/conditionalAccess/policies",
        context,
    )
}

/// `GET /policies/identitySecurityDefaultsEnforcementPolicy`.
pub(super) fn security_defaults(state: &TenantState) -> Answer {
    Answer::json(
        StatusCode::OK,
        json!({
            "@odata.context": "https://graph.microsoft.com/beta/$metadata#policies/identitySecurityDefaultsEnforcementPolicy/$entity",
            "id": "00000000-0000-0000-0000-000000000005",
            "displayName": "Security Defaults",
            "description": "Security defaults is a set of basic identity security mechanisms recommended by Microsoft. When enabled, these recommendations will be automatically enforced in your organization. Administrators and users will be better protected from common identity related attacks.",
            "isEnabled": state.tenant().security_defaults_enabled(),
        }),
    )
}
