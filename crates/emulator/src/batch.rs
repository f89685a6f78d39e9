//! `POST /beta/$batch` (graph-api.md §7): up to 20 Graph calls in one HTTP request.
//!
//! It exists because batching changes how calls travel, not what they cost: every item goes
//! through the same routing, throttling and state steps as a call sent alone
//! ([`super::call::metered`]), is counted as one, and answers with its own status, headers and
//! body inside a 200. It must not route, meter or answer an item itself; its own answers are
//! only the envelope's errors (bad JSON, no or too many items, a duplicate id, a nested batch).

use axum::http::{Method, StatusCode};
use serde_json::Value;

use super::call::{Credential, injected_failure, metered};
use super::context::{
    Answer, GRAPH_JSON, RequestIds, Shared, add_inner_error, count, is_eventual, is_low_priority,
};

/// The largest batch Graph accepts (graph-api.md §7).
const MAX_BATCH: usize = 20;

/// `$batch` under `/beta`, as sent or percent-encoded.
pub(super) fn is_batch_path(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    path == "/beta/$batch" || path.eq_ignore_ascii_case("/beta/%24batch")
}

/// One item of a batch, read and checked before any item runs.
struct Item<'a> {
    id: &'a str,
    method: Method,
    /// The item's `url` under `/beta`, with its query string.
    target: String,
    body: Vec<u8>,
    low_priority: bool,
    /// `ConsistencyLevel: eventual`.
    eventual: bool,
}

/// Whether a batch item's own `headers` carry `name` with a value `accepts` takes. An item does
/// not inherit the envelope's headers here (`x-ms-throttle-priority: Low`, `ConsistencyLevel`):
/// Graph does not document whether it would.
fn item_header(item: &Value, name: &str, accepts: fn(&str) -> bool) -> bool {
    item.get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .any(|(have, value)| have.eq_ignore_ascii_case(name) && value.as_str().is_some_and(accepts))
}

/// `POST /beta/$batch`: runs each item as if it were sent alone and answers 200 with every
/// item's status, headers and body. "Alone" means the injected 503 (`fail_rate`, and
/// `write_fail_rate` for a PATCH), routing, metering and counting all happen per item, so an
/// item can be a 503 or a 429 with its own `retry-after` (and, for a 429, its own
/// `x-ms-throttle-scope` and `x-ms-throttle-information`) next to items that succeeded. Items
/// run in order; `dependsOn` needs nothing more, since an item never starts before the
/// previous ends. Latency is the envelope's only: Graph runs a batch's items side by side.
/// Every item carries the envelope's `credential`: a refused token fails each item with its own
/// 401, a missing permission only the items that need it (403).
pub(super) fn batch(
    shared: &Shared,
    method: &Method,
    body: &[u8],
    ids: &RequestIds,
    credential: &Credential,
    root: &str,
) -> Answer {
    if method != Method::POST {
        return Answer::error(
            405,
            "Request_BadRequest",
            format!("The HTTP method '{method}' is not allowed for the request URI."),
        );
    }
    let bad = |message: String| Answer::error(400, "BadRequest", message);
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return bad("Unable to read JSON request payload.".to_owned());
    };
    let Some(items) = request.get("requests").and_then(Value::as_array) else {
        return bad("A batch request must hold a 'requests' array.".to_owned());
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return bad(format!(
            "A batch must hold between 1 and {MAX_BATCH} requests; this one holds {}.",
            items.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        let field = |name: &str| item.get(name).and_then(Value::as_str);
        let (Some(id), Some(method), Some(url)) = (field("id"), field("method"), field("url"))
        else {
            return bad("Every batch request needs 'id', 'method' and 'url'.".to_owned());
        };
        if !seen.insert(id) {
            return bad(format!("The batch request id '{id}' is used twice."));
        }
        let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
            return bad(format!(
                "Invalid method '{method}' in batch request '{id}'."
            ));
        };
        let url = url.trim_start_matches('/');
        let body = item
            .get("body")
            .map(|b| b.to_string().into_bytes())
            .unwrap_or_default();
        parsed.push(Item {
            id,
            method,
            target: format!("/beta/{url}"),
            body,
            low_priority: item_header(item, "x-ms-throttle-priority", is_low_priority),
            eventual: item_header(item, "ConsistencyLevel", is_eventual),
        });
    }
    // Counted once the envelope is known good: a refused batch runs (and counts) no item.
    shared.count_batch(parsed.len());

    let mut responses = Vec::with_capacity(parsed.len());
    for Item {
        id,
        method,
        target,
        body,
        low_priority,
        eventual,
    } in parsed
    {
        if low_priority {
            shared.count_low_priority();
        }
        let path = target.split('?').next().unwrap_or_default();
        let mut answer = if is_batch_path(path) {
            bad("A batch cannot hold another batch.".to_owned())
        } else {
            injected_failure(shared, &method).unwrap_or_else(|| {
                metered(shared, &method, &target, &body, credential, root, eventual)
            })
        };
        count(shared, &method, &answer);
        let mut headers = serde_json::Map::new();
        if answer.body.is_some() {
            headers.insert("Content-Type".to_owned(), Value::from(GRAPH_JSON));
        }
        for (name, value) in &answer.headers {
            headers.insert(name.as_str().to_owned(), Value::from(value.as_str()));
        }
        let mut response = serde_json::json!({
            "id": id,
            "status": answer.status.as_u16(),
            "headers": headers,
        });
        if let Some(mut body) = answer.body.take() {
            add_inner_error(&mut body, ids);
            response["body"] = body;
        }
        responses.push(response);
    }
    Answer::json(
        StatusCode::OK,
        serde_json::json!({ "responses": responses }),
    )
}
