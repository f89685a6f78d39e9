//! `GET /beta/users/{id|upn}`: the user object with the properties mfactl selects (id, UPN,
//! display name, user type, account enabled), so that a manifest's UPNs resolve to object ids
//! the way they do on Graph. Read-only: the emulator does not create, rename or delete users.

use axum::http::StatusCode;

use super::context::Answer;
use super::state::{GraphError, TenantState};

/// `GET /users/{key}`; 404 `Request_ResourceNotFound` for an unknown user.
pub(super) fn get(state: &TenantState, key: &str) -> Result<Answer, GraphError> {
    let index = state.find(key)?;
    Ok(Answer::json(StatusCode::OK, state.user_object(index)))
}
