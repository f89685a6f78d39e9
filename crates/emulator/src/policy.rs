//! `/beta/policies/authenticationMethodsPolicy` (graph-api.md §4): the tenant-wide policy whose
//! system-credential preferences, registration campaign and suspicious-activity settings mfactl
//! manages. GET answers the whole policy (Graph's defaults for whatever the tenant file leaves
//! out); PATCH checks the body, merges the sub-objects sent, moves `lastModifiedDateTime` and
//! answers 200 with the whole policy, as Graph does; a refused PATCH (400 `badRequest`) changes
//! nothing. The rules live in [`super::state::policy`], not here.

use axum::http::StatusCode;
use serde_json::Value;

use super::context::Answer;
use super::state::{GraphError, TenantState};

/// GET (`patch` is `None`) or PATCH the policy.
pub(super) fn answer(state: &mut TenantState, patch: Option<&Value>) -> Result<Answer, GraphError> {
    let policy = match patch {
        None => state.policy(),
        Some(body) => state.patch_policy(body)?,
    };
    Ok(Answer::json(StatusCode::OK, policy))
}
