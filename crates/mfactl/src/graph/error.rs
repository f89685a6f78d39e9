//! Typed Graph errors. Callers branch on the HTTP status and Graph's `code`, never on `message`
//! (graph-api.md §5); every variant carries the ids Microsoft support asks for.

use std::time::Duration;

/// A Graph call that did not succeed, after the transport's retries (if any applied).
#[derive(Clone, Debug, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with a non-success status and (usually) its error envelope.
    #[error("{method} {path}: HTTP {status} {code}: {message}{}", request_id_suffix(.request_id))]
    Api {
        method: &'static str,
        path: String,
        status: u16,
        /// Graph's `error.code`, e.g. `Request_ResourceNotFound`; `httpStatus{N}` if the body had none.
        code: String,
        message: String,
        /// The response's `request-id` header (or the body's `innerError.request-id`).
        request_id: Option<String>,
        /// The `client-request-id` mfactl sent.
        client_request_id: String,
        /// `Retry-After`, when the answer had one.
        retry_after: Option<Duration>,
    },
    /// No HTTP answer: connection refused or reset, timeout, TLS failure.
    #[error("{method} {path}: {message} (client-request-id {client_request_id})")]
    Transport {
        method: &'static str,
        path: String,
        message: String,
        timeout: bool,
        /// Whether the request may have reached Graph (false when connecting failed).
        sent: bool,
        client_request_id: String,
    },
    /// Graph's host cannot be reached at all (the first requests of the run all failed the same
    /// way, or an outage lasted too long): the run stops, nothing more is sent.
    #[error("cannot reach {host}: {cause}")]
    Unreachable {
        method: &'static str,
        path: String,
        host: String,
        cause: String,
    },
    /// No token to send: the credential source failed (its message names the source and the
    /// fix), or gave back a token Graph had just refused.
    #[error("{0}")]
    SignIn(Box<crate::graph::auth::AuthError>),
    /// A write whose outcome is unknown: an attempt may have reached Graph, its answer was lost,
    /// and reading the resource back to settle it failed too; the retries then ended with
    /// `cause`. The write may or may not have been made (journalled as unsettled, never as
    /// failed: resume reads it back, rollback restores it).
    #[error(
        "{cause} (the write may have been made: an earlier attempt's answer was lost and reading it back failed)"
    )]
    Unsettled { cause: Box<GraphError> },
    /// Graph answered 2xx but the body was not the JSON we expected.
    #[error("{method} {path}: unexpected response body: {message}{}", request_id_suffix(.request_id))]
    Decode {
        method: &'static str,
        path: String,
        message: String,
        request_id: Option<String>,
    },
}

fn request_id_suffix(request_id: &Option<String>) -> String {
    match request_id {
        Some(id) => format!(" (request-id {id})"),
        None => String::new(),
    }
}

impl GraphError {
    /// Whether the transport may try again: throttling, transient server errors, timeouts and
    /// connection failures. Never 400/401/403/404: sending the same request again cannot help.
    pub fn is_retryable(&self) -> bool {
        match self {
            GraphError::Api { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            GraphError::Transport { .. } => true,
            GraphError::Decode { .. }
            | GraphError::Unreachable { .. }
            | GraphError::SignIn(_)
            | GraphError::Unsettled { .. } => false,
        }
    }

    /// Whether this is a write whose outcome stays unknown ([`GraphError::Unsettled`]).
    pub fn is_unsettled(&self) -> bool {
        matches!(self, GraphError::Unsettled { .. })
    }

    /// Whether a request may have been carried out although no answer says so: it was sent
    /// and then the connection failed or timed out, or a gateway timed out waiting for Graph.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            GraphError::Transport { sent, .. } => *sent,
            GraphError::Api { status, .. } => *status == 504,
            GraphError::Unsettled { .. } => true,
            _ => false,
        }
    }

    /// The HTTP status, when Graph answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Api { status, .. } => Some(*status),
            GraphError::Unsettled { cause } => cause.status(),
            _ => None,
        }
    }

    /// Graph's error code (`Request_ResourceNotFound`, ...), or a short kind for non-API errors.
    pub fn code(&self) -> &str {
        match self {
            GraphError::Api { code, .. } => code,
            GraphError::Transport { timeout: true, .. } => "timeout",
            GraphError::Transport { .. } => "connectionError",
            GraphError::Decode { .. } => "invalidResponse",
            GraphError::Unreachable { .. } => "unreachable",
            GraphError::SignIn(_) => "signInFailed",
            GraphError::Unsettled { .. } => "unsettled",
        }
    }

    /// Graph's message, or the transport's description.
    pub fn message(&self) -> &str {
        match self {
            GraphError::Api { message, .. }
            | GraphError::Transport { message, .. }
            | GraphError::Decode { message, .. } => message,
            GraphError::Unreachable { cause, .. } => cause,
            GraphError::SignIn(_) => "the access token could not be obtained",
            GraphError::Unsettled { cause } => cause.message(),
        }
    }

    /// The response's `request-id`, when there was a response.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            GraphError::Api { request_id, .. } | GraphError::Decode { request_id, .. } => {
                request_id.as_deref()
            }
            GraphError::Unsettled { cause } => cause.request_id(),
            GraphError::Transport { .. }
            | GraphError::Unreachable { .. }
            | GraphError::SignIn(_) => None,
        }
    }

    /// `Retry-After` as Graph sent it.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GraphError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether this is Graph's "no such user" answer.
    pub fn is_not_found(&self) -> bool {
        matches!(self, GraphError::Api { status: 404, .. })
    }
}
