//! A refusal in Graph's terms, which every state operation and rule check returns. On its own
//! so that the rules in this folder and the tenant file's reader, which checks its policies with
//! them, need nothing else of the state.

/// A refusal in Graph's terms: HTTP status, Graph `code`, human message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct GraphError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl GraphError {
    /// 400 `badRequest` (the code Graph uses for invalid property values on these endpoints).
    pub fn bad_request(message: impl Into<String>) -> GraphError {
        GraphError {
            status: 400,
            code: "badRequest",
            message: message.into(),
        }
    }

    /// 404 `Request_ResourceNotFound` for a user (or other object) that does not exist.
    pub fn resource_not_found(key: &str) -> GraphError {
        GraphError {
            status: 404,
            code: "Request_ResourceNotFound",
            message: format!(
                "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
            ),
        }
    }
}
