//! `/beta/users/{id|upn}/authentication/{signInPreferences,requirements,methods}` (graph-api.md
//! §1–§3): the three per-user resources mfactl reads and writes. signInPreferences and
//! requirements answer GET 200 and PATCH 204; methods is read-only. A GET of
//! `/authentication` itself answers both `requirements` and `signInPreferences`: they are
//! structural properties of Microsoft's `authentication` entity (beta schema), so a read of the
//! entity returns them; that Graph does so is not confirmed on a live tenant, and the emulator
//! answers nothing else of the entity (its navigation properties are never expanded).
//!
//! It exists to map each resource's GET and PATCH onto [`super::state`], which holds Graph's
//! rules (what a PATCH accepts, the enabled → enforced promotion, how methods are listed); it
//! must not hold those rules itself, nor meter: `/methods` has its own optional limit
//! (`EmulatorConfig::methods_per_10s`), which [`super::routes`] applies before calling here.

use axum::http::StatusCode;
use serde_json::Value;

use super::context::Answer;
use super::state::{GraphError, TenantState};

/// GET (`patch` is `None`, 200 with the preferences) or PATCH (204).
pub(super) fn sign_in_preferences(
    state: &mut TenantState,
    key: &str,
    patch: Option<&Value>,
) -> Result<Answer, GraphError> {
    read_or_write(
        state,
        key,
        patch,
        TenantState::sign_in_preferences,
        TenantState::patch_sign_in_preferences,
    )
}

/// GET (`patch` is `None`, 200 with `perUserMfaState`) or PATCH (204).
pub(super) fn requirements(
    state: &mut TenantState,
    key: &str,
    patch: Option<&Value>,
) -> Result<Answer, GraphError> {
    read_or_write(
        state,
        key,
        patch,
        TenantState::requirements,
        TenantState::patch_requirements,
    )
}

/// The shape both writable resources share: find the user, then 200 with `read`, or `write`
/// and 204 No Content.
fn read_or_write(
    state: &mut TenantState,
    key: &str,
    patch: Option<&Value>,
    read: fn(&TenantState, usize) -> Value,
    write: fn(&mut TenantState, usize, &Value) -> Result<(), GraphError>,
) -> Result<Answer, GraphError> {
    let index = state.find(key)?;
    match patch {
        None => Ok(Answer::json(StatusCode::OK, read(state, index))),
        Some(body) => {
            state.write_user(index, body, write)?;
            Ok(Answer::no_content())
        }
    }
}

/// GET of the entity: both structural properties, as each resource of its own answers them.
pub(super) fn entity(state: &TenantState, key: &str) -> Result<Answer, GraphError> {
    let index = state.find(key)?;
    Ok(Answer::json(
        StatusCode::OK,
        serde_json::json!({
            "requirements": state.requirements(index),
            "signInPreferences": state.sign_in_preferences(index),
        }),
    ))
}

/// GET: the registered methods, password first.
pub(super) fn methods(state: &TenantState, key: &str) -> Result<Answer, GraphError> {
    let index = state.find(key)?;
    Ok(Answer::json(StatusCode::OK, state.methods(index)))
}
