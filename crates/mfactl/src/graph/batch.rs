//! JSON batching (`POST /beta/$batch`, graph-api.md §7): up to 20 requests in one round trip.
//!
//! Batching saves round trips and connections, not quota: Graph meters each item as if it were
//! sent alone, and a throttled item comes back as an inner 429 with its own `Retry-After`. So
//! batching lives *below* everything else in the transport: every request still takes its own
//! budget slot, is paced, retried and settled on its own; only the last step — putting bytes on
//! the wire — is shared. An item's answer (or the batch's failure) is handed back to the
//! request's own attempt as if it had gone alone.
//!
//! No background task: requests queue here, and whichever waiting request finds a batch ready
//! (20 items queued, or the oldest has waited [`Batcher::linger`]) sends it and hands out the
//! answers; a request whose item another one took simply waits for its answer. Every queued
//! item is always some waiting request's to send, so nothing is stranded.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::health::AfterFailure;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

/// The most items Graph takes in one batch.
pub const MAX_ITEMS: usize = 20;

/// One request waiting to go in a batch.
#[derive(Debug)]
pub struct Item {
    pub method: &'static str,
    /// From the root, with the version: `/beta/users/x/authentication/requirements`.
    pub path: String,
    pub body: Option<Value>,
    pub client_request_id: String,
    /// This request is the probe of an outage (see `health`).
    pub probe: bool,
    /// Send `x-ms-throttle-priority: Low` with the item too (whether an item inherits the
    /// batch's headers is not documented).
    pub low_priority: bool,
    /// The `Authorization` header the request was given, and its token's generation: the
    /// batch goes with the newest of its items'.
    pub authorization: reqwest::header::HeaderValue,
    pub generation: u64,
}

/// A failure with no HTTP answer, described so that every item of a batch can carry it.
#[derive(Clone, Debug)]
pub struct NoAnswer {
    /// The error and its causes, as text.
    pub message: String,
    pub is_connect: bool,
    pub is_timeout: bool,
}

/// What became of one item.
#[derive(Debug)]
pub enum Outcome {
    /// Graph answered the item (any status).
    Answered {
        status: u16,
        headers: HeaderMap,
        body: Vec<u8>,
        /// The batch's `request-id` (items carry none of their own).
        request_id: Option<String>,
    },
    /// The batch got no answer; `after` is what the run-wide connection check decided, once
    /// for the whole batch (twenty items lost together are one failure, not twenty).
    NoAnswer {
        failure: NoAnswer,
        after: AfterFailure,
    },
    /// Graph refused the batch itself (`$batch` not available there): send the item alone.
    Rejected,
    /// The answer came but was larger than [`super::body::MAX_ANSWER`] once decompressed:
    /// nothing more of it was read (a gzip bomb, or not Graph).
    TooLarge {
        status: u16,
        request_id: Option<String>,
    },
}

struct Pending {
    item: Item,
    queued_at: Instant,
    reply: oneshot::Sender<(Outcome, Duration)>,
}

/// The queue of items and the switch that turns batching off when Graph refuses it.
#[derive(Default)]
pub struct Batcher {
    queue: Mutex<VecDeque<Pending>>,
    /// Woken when the queue changes, so waiting requests look again.
    changed: Notify,
    /// Set when Graph refused a batch as such: from then on every request goes alone.
    refused: AtomicBool,
    linger: Duration,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("refused", &self.refused.load(Ordering::Relaxed))
            .field("linger", &self.linger)
            .finish_non_exhaustive()
    }
}

/// What a batch is sent with: the transport's HTTP client, its headers and its run-wide
/// connection check.
pub trait Sender {
    /// POSTs `body` (the batch's JSON) to `/beta/$batch` and returns the raw answer or the
    /// error.
    fn post_batch(
        &self,
        body: Vec<u8>,
        authorization: reqwest::header::HeaderValue,
    ) -> impl std::future::Future<Output = Result<reqwest::Response, NoAnswer>> + Send;
    /// Called once per batch sent, with how many items it carried.
    fn sent_batch(&self, items: usize);
    /// The batch sent at `sent_at` was answered (any status).
    fn answered(&self, sent_at: Instant);
    /// The batch got no answer; `probe` when it carried an outage's probe.
    fn no_answer(&self, failure: &NoAnswer, probe: bool) -> AfterFailure;
}

impl Batcher {
    /// A batcher that waits up to `linger` for a lone item to get company.
    pub fn new(linger: Duration) -> Batcher {
        Batcher {
            linger,
            ..Batcher::default()
        }
    }

    /// Whether Graph has refused batching for this run.
    pub fn is_refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item`, helps send batches until its own answer comes, and returns it with the
    /// round trip of the batch that carried it.
    pub async fn submit(&self, sender: &impl Sender, item: Item) -> (Outcome, Duration) {
        let (reply, mut answer) = oneshot::channel();
        self.lock().push_back(Pending {
            item,
            queued_at: Instant::now(),
            reply,
        });
        self.changed.notify_waiters();
        loop {
            if let Ok(outcome) = answer.try_recv() {
                return outcome;
            }
            // Register for wake-ups before looking, so a change between the look and the wait
            // is not missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let ready = {
                let mut queue = self.lock();
                match queue.front() {
                    None => None,
                    Some(oldest) => {
                        let due = oldest.queued_at + self.linger;
                        if queue.len() >= MAX_ITEMS || Instant::now() >= due {
                            let take = queue.len().min(MAX_ITEMS);
                            Some(Ok(queue.drain(..take).collect::<Vec<_>>()))
                        } else {
                            Some(Err(due))
                        }
                    }
                }
            };
            match ready {
                Some(Ok(batch)) => {
                    self.changed.notify_waiters();
                    self.send(sender, batch).await;
                }
                Some(Err(due)) => {
                    tokio::select! {
                        outcome = &mut answer => return outcome.unwrap_or_else(|_| lost()),
                        () = tokio::time::sleep_until(due) => {}
                        () = &mut changed => {}
                    }
                }
                // The queue is empty: another request took this item and is sending it.
                None => return answer.await.unwrap_or_else(|_| lost()),
            }
        }
    }

    /// Sends one batch and hands every item its outcome.
    async fn send(&self, sender: &impl Sender, batch: Vec<Pending>) {
        let requests: Vec<Request<'_>> = batch
            .iter()
            .enumerate()
            .map(|(index, pending)| request_json(index, &pending.item))
            .collect();
        let body = serde_json::to_vec(&BatchRequest { requests })
            .expect("a batch of strings and JSON values serialises");
        sender.sent_batch(batch.len());
        let authorization = batch
            .iter()
            .max_by_key(|pending| pending.item.generation)
            .map(|pending| pending.item.authorization.clone())
            .expect("a batch has items");
        let started = Instant::now();
        let answer = sender.post_batch(body, authorization).await;
        let response = match answer {
            Ok(response) => response,
            Err(failure) => {
                let took = started.elapsed();
                let probe = batch.iter().any(|pending| pending.item.probe);
                let after = sender.no_answer(&failure, probe);
                for pending in batch {
                    let outcome = Outcome::NoAnswer {
                        failure: failure.clone(),
                        after: after.clone(),
                    };
                    let _ = pending.reply.send((outcome, took));
                }
                return;
            }
        };
        let status = response.status().as_u16();
        let outer_headers = response.headers().clone();
        let request_id = outer_headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = super::body::read_capped(response, super::body::MAX_ANSWER).await;
        let took = started.elapsed();
        sender.answered(started);
        if let Err(super::body::BodyError::TooLarge) = body {
            for pending in batch {
                let outcome = Outcome::TooLarge {
                    status,
                    request_id: request_id.clone(),
                };
                let _ = pending.reply.send((outcome, took));
            }
            return;
        }
        // Graph refused the batch request as such: batching is not available there.
        if matches!(status, 400 | 404 | 405 | 501) {
            tracing::warn!(
                status,
                "Graph refused a $batch request; sending requests one by one from now on"
            );
            self.refused.store(true, Ordering::Relaxed);
            for pending in batch {
                let _ = pending.reply.send((Outcome::Rejected, took));
            }
            return;
        }
        let body = body.unwrap_or_default();
        let parsed = (status == 200).then(|| envelope(&body)).flatten();
        let Some(responses) = parsed else {
            // The batch as a whole was answered otherwise (a 401, a throttle, a server error):
            // every item gets that answer, envelope and headers included, and deals with it
            // on its own (a 401 stops the run, a 429 pauses, a 503 is retried).
            for pending in batch {
                let outcome = Outcome::Answered {
                    status: if status == 200 { 502 } else { status },
                    headers: outer_headers.clone(),
                    body: body.clone(),
                    request_id: request_id.clone(),
                };
                let _ = pending.reply.send((outcome, took));
            }
            return;
        };
        // The answers by item: the item's index is its id.
        let mut answers: Vec<Option<InnerAnswer<'_>>> = (0..batch.len()).map(|_| None).collect();
        for answer in &responses {
            let Ok(answer) = serde_json::from_str::<InnerAnswer<'_>>(answer.get()) else {
                continue;
            };
            if let Some(slot) = answer.id.as_deref().and_then(item_index)
                && let Some(place) = answers.get_mut(slot)
            {
                *place = Some(answer);
            }
        }
        for (pending, answer) in batch.into_iter().zip(answers) {
            let outcome = match answer {
                Some(answer) => item_outcome(&answer, request_id.clone()),
                // Graph left this item out of its answer: treat it as a lost answer (502).
                None => Outcome::Answered {
                    status: 502,
                    headers: HeaderMap::new(),
                    body: Vec::new(),
                    request_id: request_id.clone(),
                },
            };
            let _ = pending.reply.send((outcome, took));
        }
    }
}

/// A `$batch` answer's `responses`, each left as the JSON text it came as; `None` when the
/// answer is not JSON. JSON of another shape has no responses (every item is then missing).
///
/// Taken apart, not parsed whole: each item's body goes to its request as the bytes Graph
/// sent, and that request parses it once, into what it expects. A tree of every answer's
/// values would be built, copied out and dropped again for each batch of twenty.
fn envelope(body: &[u8]) -> Option<Vec<&RawValue>> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        responses: Option<&'a RawValue>,
    }
    match serde_json::from_slice::<Envelope<'_>>(body) {
        Ok(envelope) => Some(
            envelope
                .responses
                .and_then(|responses| serde_json::from_str(responses.get()).ok())
                .unwrap_or_default(),
        ),
        Err(_) => serde_json::from_slice::<IgnoredAny>(body)
            .ok()
            .map(|_| Vec::new()),
    }
}

/// The index of the item an answer's `id` names: the id an item was sent with is its index
/// written in decimal, so any other spelling ("01", "+1", " 1") names no item.
fn item_index(id: &str) -> Option<usize> {
    let canonical = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    canonical.then(|| id.parse().ok()).flatten()
}

/// One inner answer: its `id` (an answer whose id is no string is not read), `status` and
/// `headers` as whatever JSON they are (checked where used), the body as its JSON text.
#[derive(Deserialize)]
struct InnerAnswer<'a> {
    #[serde(borrow, default)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    headers: Option<Value>,
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
}

/// The answer of a request whose batch vanished (its sender was dropped mid-send): a 502, so
/// that it is retried like any lost answer.
fn lost() -> (Outcome, Duration) {
    (
        Outcome::Answered {
            status: 502,
            headers: HeaderMap::new(),
            body: Vec::new(),
            request_id: None,
        },
        Duration::ZERO,
    )
}

/// A `$batch` request's body.
#[derive(Serialize)]
struct BatchRequest<'a> {
    requests: Vec<Request<'a>>,
}

/// One item as Graph takes it, written straight from the item (no tree of values is built and
/// dropped again for each batch).
#[derive(Debug, Serialize)]
struct Request<'a> {
    id: String,
    method: &'static str,
    /// Relative to the version segment.
    url: &'a str,
    headers: RequestHeaders<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a Value>,
}

#[derive(Debug, Serialize)]
struct RequestHeaders<'a> {
    #[serde(rename = "client-request-id")]
    client_request_id: &'a str,
    #[serde(
        rename = "x-ms-throttle-priority",
        skip_serializing_if = "Option::is_none"
    )]
    priority: Option<&'static str>,
    #[serde(rename = "Content-Type", skip_serializing_if = "Option::is_none")]
    content_type: Option<&'static str>,
    /// `eventual` for the advanced queries that need it.
    #[serde(rename = "ConsistencyLevel", skip_serializing_if = "Option::is_none")]
    consistency: Option<&'static str>,
}

/// One item as Graph takes it: `url` relative to the version segment.
fn request_json(index: usize, item: &Item) -> Request<'_> {
    Request {
        id: index.to_string(),
        method: item.method,
        url: item.path.strip_prefix("/beta").unwrap_or(&item.path),
        headers: RequestHeaders {
            client_request_id: &item.client_request_id,
            priority: item.low_priority.then_some("Low"),
            content_type: item.body.as_ref().map(|_| "application/json"),
            consistency: super::advanced_query::wants_eventual_consistency(&item.path)
                .then_some("eventual"),
        },
        body: item.body.as_ref(),
    }
}

/// One inner response as an [`Outcome::Answered`]: its status, its headers (`Retry-After`,
/// `x-ms-throttle-*`), its body as sent (empty for none or `null`).
fn item_outcome(answer: &InnerAnswer<'_>, request_id: Option<String>) -> Outcome {
    let status = answer
        .status
        .as_ref()
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(502);
    let mut headers = HeaderMap::new();
    if let Some(map) = answer.headers.as_ref().and_then(Value::as_object) {
        for (name, value) in map {
            let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::from_str),
            ) else {
                continue;
            };
            headers.insert(name, value);
        }
    }
    let body = answer
        .body
        .map(|body| body.get().as_bytes().to_vec())
        .unwrap_or_default();
    Outcome::Answered {
        status,
        headers,
        body,
        request_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_are_written_relative_to_the_version_with_their_ids() {
        let item = Item {
            method: "PATCH",
            path: "/beta/users/a%40b.com/authentication/requirements".into(),
            body: Some(json!({"perUserMfaState": "disabled"})),
            client_request_id: "c1".into(),
            probe: false,
            low_priority: false,
            authorization: reqwest::header::HeaderValue::from_static("Bearer t"),
            generation: 1,
        };
        let request = serde_json::to_value(request_json(3, &item)).unwrap();
        assert_eq!(request["id"], "3");
        assert_eq!(
            request["url"],
            "/users/a%40b.com/authentication/requirements"
        );
        assert_eq!(request["headers"]["Content-Type"], "application/json");
        assert_eq!(request["headers"]["client-request-id"], "c1");
        assert_eq!(request["body"]["perUserMfaState"], "disabled");
    }

    /// A Graph stand-in that answers every item 200 with its own id, and records batch sizes.
    #[derive(Default)]
    struct Echo {
        sizes: Mutex<Vec<usize>>,
    }

    impl Sender for Echo {
        async fn post_batch(
            &self,
            body: Vec<u8>,
            _authorization: reqwest::header::HeaderValue,
        ) -> Result<reqwest::Response, NoAnswer> {
            let body: Value = serde_json::from_slice(&body).unwrap();
            let responses: Vec<Value> = body["requests"]
                .as_array()
                .unwrap()
                .iter()
                .rev() // in any order, as Graph may
                .map(|r| json!({"id": r["id"], "status": 200, "body": {"url": r["url"]}}))
                .collect();
            let answer = hyper::Response::builder()
                .status(200)
                .body(json!({ "responses": responses }).to_string())
                .unwrap();
            Ok(reqwest::Response::from(answer))
        }

        fn sent_batch(&self, items: usize) {
            self.sizes.lock().unwrap().push(items);
        }

        fn answered(&self, _: Instant) {}

        fn no_answer(&self, _: &NoAnswer, _: bool) -> AfterFailure {
            AfterFailure::Retry
        }
    }

    fn item(n: usize) -> Item {
        Item {
            method: "GET",
            path: format!("/beta/users/u{n}/authentication/requirements"),
            body: None,
            client_request_id: n.to_string(),
            probe: false,
            low_priority: false,
            authorization: reqwest::header::HeaderValue::from_static("Bearer t"),
            generation: 1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_item_gets_its_own_answer_in_batches_of_at_most_twenty() {
        let batcher = std::sync::Arc::new(Batcher::new(Duration::from_millis(5)));
        let echo = std::sync::Arc::new(Echo::default());
        let tasks: Vec<_> = (0..45)
            .map(|n| {
                let (batcher, echo) = (batcher.clone(), echo.clone());
                tokio::spawn(async move { (n, batcher.submit(&*echo, item(n)).await.0) })
            })
            .collect();
        for task in tasks {
            let (n, outcome) = task.await.unwrap();
            let Outcome::Answered { status, body, .. } = outcome else {
                panic!("item {n} not answered");
            };
            assert_eq!(status, 200);
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                body["url"],
                format!("/users/u{n}/authentication/requirements")
            );
        }
        let sizes = echo.sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 45);
        assert!(sizes.iter().all(|&size| size <= MAX_ITEMS), "{sizes:?}");
        assert!(sizes.len() <= 4, "ready items share round trips: {sizes:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_item_waits_only_the_linger_time() {
        let batcher = Batcher::new(Duration::from_millis(5));
        let echo = Echo::default();
        let started = Instant::now();
        let (outcome, _) = batcher.submit(&echo, item(1)).await;
        assert!(matches!(outcome, Outcome::Answered { status: 200, .. }));
        assert_eq!(Instant::now() - started, Duration::from_millis(5));
    }

    #[test]
    fn inner_answers_keep_their_status_headers_and_body() {
        let text = json!({"responses": [{
            "id": "0", "status": 429,
            "headers": {"Retry-After": "7", "x-ms-throttle-information": "WriteLimitExceeded"},
            "body": {"error": {"code": "TooManyRequests", "message": "slow"}}
        }]})
        .to_string();
        let responses = envelope(text.as_bytes()).expect("JSON");
        let answer: InnerAnswer<'_> = serde_json::from_str(responses[0].get()).unwrap();
        assert_eq!(answer.id.as_deref(), Some("0"));
        assert_eq!(item_index("0"), Some(0));
        assert_eq!(item_index("19"), Some(19));
        for other in ["", "01", "+1", " 1", "1.0", "-1"] {
            assert_eq!(item_index(other), None, "{other:?}");
        }
        let Outcome::Answered {
            status,
            headers,
            body,
            ..
        } = item_outcome(&answer, None)
        else {
            panic!("answered");
        };
        assert_eq!(status, 429);
        assert_eq!(headers.get("retry-after").unwrap(), "7");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "TooManyRequests");
    }

    /// The envelope's shape decides only which items were answered: an answer that is not
    /// JSON is none of them, JSON of another shape (or an answer without a string id, or a
    /// `null` body) leaves the items it does not answer missing, or their bodies empty.
    #[test]
    fn an_envelope_of_another_shape_answers_nothing_and_a_null_body_is_empty() {
        assert!(envelope(b"<html>").is_none());
        for other in [
            &b"[1, 2]"[..],
            b"{}",
            b"{\"responses\": {}}",
            b"{\"responses\": 7}",
        ] {
            assert_eq!(envelope(other).map(|r| r.len()), Some(0));
        }
        let text = r#"{"responses": [{"id": 0, "status": 200}, {"id": "1", "status": 204, "body": null}, 5]}"#;
        let responses = envelope(text.as_bytes()).unwrap();
        assert_eq!(responses.len(), 3);
        let answers: Vec<Option<InnerAnswer<'_>>> = responses
            .iter()
            .map(|r| serde_json::from_str(r.get()).ok())
            .collect();
        assert!(answers[0].is_none(), "a numeric id is not read");
        assert!(answers[2].is_none());
        let answer = answers[1].as_ref().unwrap();
        let Outcome::Answered { status, body, .. } = item_outcome(answer, None) else {
            panic!("answered");
        };
        assert_eq!((status, body.len()), (204, 0));
    }
}
