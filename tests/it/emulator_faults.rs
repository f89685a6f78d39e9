//! The emulator's faults and limits as a batching client meets them, over HTTP with `reqwest`:
//! inner 503s and 429s inside a `$batch`'s 200, the write bucket refusing PATCH items while GET
//! items pass, the `/authentication/methods` limit refusing methods reads while other reads go
//! on, and the counters a test reads to prove what a client sent (batches, items, priority).
//!
//! These are the signals mfactl's transport must tell apart; the binary is not involved.

use std::time::{Duration, Instant};

use mfactl_emulator::{Emulator, EmulatorConfig, Tenant};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

async fn start(tenant: Tenant, config: EmulatorConfig) -> Emulator {
    Emulator::start(tenant, config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator starts")
}

fn user_url(id: &str, endpoint: &str) -> String {
    format!("/users/{id}/authentication/{endpoint}")
}

/// Posts `{"requests": items}` (with `priority` as `x-ms-throttle-priority` when given) and
/// returns the envelope's status and body.
async fn post_batch(
    client: &Client,
    emulator: &Emulator,
    items: Vec<Value>,
    priority: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = client
        .post(format!("{}/beta/$batch", emulator.url()))
        .bearer_auth("token")
        .json(&json!({ "requests": items }));
    if let Some(priority) = priority {
        request = request.header("x-ms-throttle-priority", priority);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The item responses by id, in the order the ids are given.
fn responses<'a>(batch: &'a Value, ids: &[String]) -> Vec<&'a Value> {
    let all = batch["responses"].as_array().expect("a responses array");
    assert_eq!(all.len(), ids.len(), "{batch}");
    ids.iter()
        .map(|id| {
            all.iter()
                .find(|r| r["id"] == id.as_str())
                .unwrap_or_else(|| panic!("no response for {id}: {batch}"))
        })
        .collect()
}

fn retry_after(headers: &Value) -> u64 {
    headers["retry-after"]
        .as_str()
        .unwrap_or_else(|| panic!("no retry-after in {headers}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_batch_under_fail_rate_answers_200_with_inner_503s_that_say_when_to_retry() {
    let tenant = Tenant::generate(20, 3);
    let users: Vec<String> = tenant.users.iter().map(|u| u.id.clone()).collect();
    let emulator = start(
        tenant,
        EmulatorConfig {
            fail_rate: 0.5,
            seed: 11,
            ..EmulatorConfig::default()
        },
    )
    .await;
    let ids: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
    let items = ids
        .iter()
        .zip(&users)
        .map(|(id, user)| json!({"id": id, "method": "GET", "url": user_url(user, "signInPreferences")}))
        .collect();
    let (status, body) = post_batch(&Client::new(), &emulator, items, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (mut ok, mut failed) = (0, 0);
    for response in responses(&body, &ids) {
        match response["status"].as_u64() {
            Some(200) => {
                ok += 1;
                assert!(
                    response["body"]["isSystemPreferredAuthenticationMethodEnabled"].is_boolean()
                );
            }
            Some(503) => {
                failed += 1;
                assert_eq!(response["body"]["error"]["code"], "serviceUnavailable");
                assert!((1..=60).contains(&retry_after(&response["headers"])));
            }
            _ => panic!("unexpected item {response}"),
        }
    }
    assert!(ok > 0 && failed > 0, "{ok} answered, {failed} failed");
    let stats = emulator.stats();
    assert_eq!(
        stats.injected_failures, failed,
        "every item rolled on its own"
    );
    assert_eq!(stats.reads, ok);
    assert_eq!(
        (stats.requests, stats.batches, stats.batch_items),
        (1, 1, 20)
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn patches_past_the_write_bucket_get_inner_429s_while_batched_reads_pass() {
    let tenant = Tenant::generate(5, 4);
    let tenant_id = tenant.tenant_id.clone();
    let users: Vec<String> = tenant.users.iter().map(|u| u.id.clone()).collect();
    let emulator = start(
        tenant,
        EmulatorConfig {
            writes_per_150s: 3,
            ..EmulatorConfig::default()
        },
    )
    .await;
    // PATCH and GET alternate: five writes against a bucket of three, five reads.
    let mut ids = Vec::new();
    let mut items = Vec::new();
    for user in &users {
        let (patch, get) = (format!("patch-{user}"), format!("get-{user}"));
        items.push(json!({
            "id": patch, "method": "PATCH", "url": user_url(user, "requirements"),
            "headers": {"Content-Type": "application/json"},
            "body": {"perUserMfaState": "disabled"},
        }));
        items.push(json!({"id": get, "method": "GET", "url": user_url(user, "signInPreferences")}));
        ids.extend([patch, get]);
    }
    let (status, body) = post_batch(&Client::new(), &emulator, items, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let answers = responses(&body, &ids);
    let patches: Vec<_> = answers.iter().step_by(2).collect();
    let gets: Vec<_> = answers.iter().skip(1).step_by(2).collect();
    let patch_statuses: Vec<_> = patches.iter().map(|r| r["status"].as_u64()).collect();
    assert_eq!(
        patch_statuses,
        [Some(204), Some(204), Some(204), Some(429), Some(429)]
    );
    for refused in &patches[3..] {
        let headers = &refused["headers"];
        assert_eq!(headers["x-ms-throttle-information"], "WriteLimitExceeded");
        let scope = headers["x-ms-throttle-scope"].as_str().unwrap();
        assert!(scope.starts_with("Tenant_Application/Write/"), "{scope}");
        assert!(scope.ends_with(&tenant_id), "{scope}");
        // 3 writes per 150 s: one comes back every 50 s.
        assert!((1..=150).contains(&retry_after(headers)), "{headers}");
        assert_eq!(refused["body"]["error"]["code"], "TooManyRequests");
    }
    assert!(gets.iter().all(|r| r["status"] == 200), "{body}");
    let stats = emulator.stats();
    assert_eq!(
        (
            stats.writes,
            stats.reads,
            stats.throttled,
            stats.throttled_writes
        ),
        (3, 5, 2, 2)
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_sixth_methods_read_in_10_s_is_refused_while_other_reads_go_on() {
    let tenant = Tenant::generate(3, 5);
    let tenant_id = tenant.tenant_id.clone();
    let user = tenant.users[0].id.clone();
    let emulator = start(
        tenant,
        EmulatorConfig {
            methods_per_10s: Some(5),
            ..EmulatorConfig::default()
        },
    )
    .await;
    let client = Client::new();
    let get = |endpoint: &str| {
        client
            .get(format!(
                "{}/beta{}",
                emulator.url(),
                user_url(&user, endpoint)
            ))
            .bearer_auth("token")
            .send()
    };

    // 5 per 10 s refills one every 2 s: on any machine that sends six GETs in under 2 s the
    // sixth is the first refused; a slower one may pass more, never fewer.
    let started = Instant::now();
    let mut passed = 0;
    let refused = loop {
        let response = get("methods").await.unwrap();
        if response.status() != StatusCode::OK || passed >= 50 {
            break response;
        }
        passed += 1;
    };
    if started.elapsed() < Duration::from_secs(2) {
        assert_eq!(passed, 5);
    } else {
        assert!(passed >= 5, "{passed}");
    }
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = refused.headers().clone();
    assert_eq!(headers["x-ms-throttle-information"], "ReportsLimitExceeded");
    let scope = headers["x-ms-throttle-scope"].to_str().unwrap();
    assert!(scope.starts_with("Tenant_Application/Reports/"), "{scope}");
    assert!(scope.ends_with(&tenant_id), "{scope}");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");

    for endpoint in ["signInPreferences", "requirements", "signInPreferences"] {
        assert_eq!(get(endpoint).await.unwrap().status(), StatusCode::OK);
    }
    let stats = emulator.stats();
    assert_eq!(stats.throttled, 1);
    assert_eq!(stats.throttled_methods, 1);
    emulator.shutdown().await;
}

#[tokio::test]
async fn low_priority_requests_and_items_are_counted() {
    let tenant = Tenant::generate(4, 6);
    let user = tenant.users[0].id.clone();
    let emulator = start(tenant, EmulatorConfig::default()).await;
    let client = Client::new();
    let url = format!("{}/beta{}", emulator.url(), user_url(&user, "requirements"));
    for priority in ["Low", "Low", "Normal"] {
        let response = client
            .get(&url)
            .bearer_auth("token")
            .header("x-ms-throttle-priority", priority)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let items = (1..=3)
        .map(|i| {
            json!({"id": i.to_string(), "method": "GET", "url": user_url(&user, "methods"),
                   "headers": {"x-ms-throttle-priority": if i < 3 { "Low" } else { "Normal" }}})
        })
        .collect();
    let (status, _) = post_batch(&client, &emulator, items, Some("Low")).await;
    assert_eq!(status, StatusCode::OK);
    // Two requests alone, the batch request, and two of its three items.
    assert_eq!(emulator.stats().low_priority, 5);
    emulator.shutdown().await;
}

#[tokio::test]
async fn batches_count_once_as_requests_and_their_items_as_calls() {
    let tenant = Tenant::generate(20, 8);
    let users: Vec<String> = tenant.users.iter().map(|u| u.id.clone()).collect();
    let emulator = start(tenant, EmulatorConfig::default()).await;
    let client = Client::new();
    for size in [3, 20] {
        let items = users[..size]
            .iter()
            .enumerate()
            .map(|(i, user)| json!({"id": i.to_string(), "method": "GET", "url": user_url(user, "requirements")}))
            .collect();
        let (status, _) = post_batch(&client, &emulator, items, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let response = client
        .get(format!(
            "{}/beta{}",
            emulator.url(),
            user_url(&users[0], "methods")
        ))
        .bearer_auth("token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let stats = emulator.stats();
    assert_eq!(
        (
            stats.requests,
            stats.batches,
            stats.batch_items,
            stats.reads
        ),
        (3, 2, 23, 24)
    );
    emulator.shutdown().await;
}
