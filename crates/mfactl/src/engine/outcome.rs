//! How a Graph call's result is recorded: the error a user's read or write met, a write Graph
//! took, a write that failed. Fetch, apply, verify and the policy's apply all record results so;
//! the records live here, below them, so that none of them imports another for them.

use crate::graph::{GraphError, PatchOutcome};
use crate::model::Endpoint;
use crate::plan::{RequestId, UserError, WriteResult};

/// A Graph error as recorded against a user.
pub(super) fn user_error(endpoint: Option<Endpoint>, error: &GraphError) -> UserError {
    UserError {
        endpoint,
        status: error.status(),
        code: error.code().to_owned(),
        message: error.message().to_owned(),
        request_id: error.request_id().map(str::to_owned),
    }
}

/// The record of a write Graph took (or that reading back showed made).
pub(super) fn written(outcome: PatchOutcome) -> WriteResult {
    WriteResult {
        ok: true,
        status: outcome.status,
        request_id: outcome.request_id.map(RequestId::from),
        code: None,
        settled_by_read: outcome.settled_by_read,
        unsettled: false,
        not_kept: false,
        already_applied: false,
    }
}

/// The record of a write that failed.
pub(super) fn failure(error: &GraphError) -> WriteResult {
    WriteResult {
        ok: false,
        status: error.status(),
        request_id: error.request_id().map(|id| RequestId::from(id.to_owned())),
        code: Some(error.code().into()),
        settled_by_read: false,
        unsettled: error.is_unsettled(),
        not_kept: false,
        already_applied: false,
    }
}
