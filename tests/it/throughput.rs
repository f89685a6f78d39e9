//! Issue 6: converging at the speed Graph allows — batching, separate budgets per bucket, the
//! cost and ETA stated before work, fewer calls, low priority. Speed itself is measured by
//! `cargo bench --bench graph`; these tests check behaviour, not timings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mfactl::graph::{BucketShape, GraphClient, Purpose, Transport, TransportConfig};
use mfactl_emulator::{EmulatorConfig, Tenant};
use secrecy::SecretString;
use serde_json::json;

use crate::support::{
    Scenario, assert_converged, comparable, manifest_changing_everyone, manifest_for, stderr,
    stdout, to_yaml,
};

/// A client for `scenario` with Graph's default budgets and at most `max_pause` per 429.
fn client(scenario: &Scenario, max_pause: Duration) -> GraphClient {
    let mut config = TransportConfig::new(scenario.url(), SecretString::from("t"));
    config.ru_bucket = BucketShape::new(8_000, Duration::from_secs(10));
    config.max_pause = max_pause;
    GraphClient::new(Transport::new(config).expect("transport"))
}

#[test]
fn inner_429s_and_503s_in_batches_are_retried_alone_and_the_apply_converges() {
    let tenant = Tenant::generate(40, 31);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::with_config(
        tenant,
        EmulatorConfig {
            // A bucket far smaller than the client assumes: it bursts past it and meets inner
            // 429s; and one call in seven fails with an inner 503.
            ru_per_10s: Some(150),
            fail_rate: 0.15,
            ..EmulatorConfig::default()
        },
    );
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario.run(&["apply", yaml.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stats = scenario.stats();
    assert!(stats.batches > 0, "{stats:?}");
    assert!(stats.throttled > 0, "inner 429s happened: {stats:?}");
    assert!(
        stats.injected_failures > 0,
        "inner 503s happened: {stats:?}"
    );
    assert_eq!(
        stats.writes,
        2 * rows.len() as u64,
        "every write made exactly once, though items around it failed: {stats:?}"
    );
    assert_converged(&scenario.tenant(), &rows);
}

#[test]
fn a_write_bucket_429_does_not_pause_reads() {
    let tenant = Tenant::generate(60, 32);
    let victim = tenant.users[0].id.clone();
    let readers: Vec<String> = tenant.users[1..].iter().map(|u| u.id.clone()).collect();
    // Two writes per 150 s: the third write is refused with WriteLimitExceeded.
    let scenario = Scenario::with_config(
        tenant,
        EmulatorConfig {
            writes_per_150s: 2,
            ..EmulatorConfig::default()
        },
    );
    // The refused write waits out a 30 s pause; the reads must not.
    let client = Arc::new(client(&scenario, Duration::from_secs(30)));
    let (write_done, reads_done) = scenario.block_on(async {
        let started = Instant::now();
        let body = |state: &str| {
            json!({ "perUserMfaState": state })
                .as_object()
                .cloned()
                .unwrap()
        };
        for state in ["enforced", "disabled"] {
            client
                .patch(&victim, mfactl::model::Endpoint::Requirements, &body(state))
                .await
                .expect("within the write bucket");
        }
        let writer = {
            let client = client.clone();
            let victim = victim.clone();
            tokio::spawn(async move {
                // Refused, paused (the write gate, 30 s here), retried after the test ends.
                let _ = client
                    .patch(
                        &victim,
                        mfactl::model::Endpoint::Requirements,
                        &body("enforced"),
                    )
                    .await;
                started.elapsed()
            })
        };
        // Let the third write be refused first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for user in &readers {
            client
                .requirements(user, Purpose::Read)
                .await
                .expect("reads are not held by the write bucket");
        }
        let reads_done = started.elapsed();
        writer.abort();
        (writer.await.ok(), reads_done)
    });
    assert!(
        write_done.is_none(),
        "the throttled write was still waiting"
    );
    assert!(scenario.stats().throttled_writes >= 1);
    assert!(
        reads_done < Duration::from_secs(30),
        "59 reads finished while writes were paused: {reads_done:?}"
    );
}

#[test]
fn a_throttled_methods_read_does_not_stall_sign_in_preferences_reads() {
    let tenant = Tenant::generate(60, 33);
    let users: Vec<String> = tenant.users.iter().map(|u| u.id.clone()).collect();
    let scenario = Scenario::with_config(
        tenant,
        EmulatorConfig {
            // Graph's documented reports limit: 5 per 10 s.
            methods_per_10s: Some(5),
            ..EmulatorConfig::default()
        },
    );
    let client = Arc::new(client(&scenario, Duration::from_secs(3)));
    let (methods_finished, sign_in_finished) = scenario.block_on(async {
        let started = Instant::now();
        let methods = {
            let client = client.clone();
            let users = users[..7].to_vec();
            tokio::spawn(async move {
                for user in &users {
                    client.registered_methods(user).await.expect("methods");
                }
                started.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        for user in &users {
            client
                .sign_in_preferences(user, Purpose::Read)
                .await
                .expect("signInPreferences");
        }
        let sign_in = started.elapsed();
        (methods.await.expect("methods task"), sign_in)
    });
    assert!(scenario.stats().throttled_methods >= 1);
    assert!(
        sign_in_finished < methods_finished,
        "signInPreferences reads ({sign_in_finished:?}) did not wait for the throttled methods \
         reads ({methods_finished:?})"
    );
}

#[test]
fn no_batch_plans_exactly_like_batched() {
    let tenant = Tenant::generate(120, 34);
    let (rows, _) = manifest_for(&tenant, true);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let (code, batched) = scenario.plan_json(&yaml);
    assert_eq!(code, 2);
    let batches = scenario.stats().batches;
    assert!(batches > 0);
    let out = scenario.run(&[
        "plan",
        yaml.to_str().unwrap(),
        "--format",
        "json",
        "--no-batch",
    ]);
    let alone: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        scenario.stats().batches,
        batches,
        "--no-batch sent no batch"
    );
    assert_eq!(comparable(batched.clone()), comparable(alone.clone()));
    // The summary counts calls by kind, and batching changed the round trips, not the calls.
    let calls = |doc: &serde_json::Value, key: &str| doc["summary"]["calls"][key].clone();
    for key in ["reads", "methods", "identity", "tenant"] {
        assert_eq!(calls(&batched, key), calls(&alone, key), "{key}");
    }
    assert!(calls(&batched, "http_requests").as_u64() < calls(&alone, "http_requests").as_u64());
    assert_eq!(calls(&alone, "batches"), 0);
}

#[test]
fn the_plan_states_the_cost_and_the_eta_holds_for_a_throttled_apply() {
    let tenant = Tenant::generate(60, 35);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let (_, doc) = scenario.plan_json(&yaml);
    assert_eq!(doc["summary"]["estimate"]["writes"], 120);
    assert_eq!(doc["summary"]["estimate"]["reads"], 120);
    assert_eq!(doc["summary"]["estimate"]["bound"], "latency");
    // 120 writes at --write-rate 8: the write cap binds (14 s after a second's burst).
    let out = scenario.run(&[
        "apply",
        yaml.to_str().unwrap(),
        "--auto-approve",
        "--write-rate",
        "8",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "Applying it makes 120 writes and 120 re-reads: at least 14 s at --write-rate 8/s."
        ),
        "{text}"
    );
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("Applied in "))
        .unwrap_or_else(|| panic!("{err}"));
    let seconds: Vec<f64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (took, estimated) = (seconds[0], seconds[1]);
    assert!(
        (took - estimated).abs() <= 0.25 * took,
        "estimated {estimated} s, took {took} s: {line}"
    );
}

#[test]
fn low_priority_runs_say_so_to_graph() {
    let tenant = Tenant::generate(30, 36);
    let (rows, _) = manifest_for(&tenant, false);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario.run(&["plan", yaml.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(scenario.stats().low_priority, 0);
    for extra in [&[][..], &["--no-batch"][..]] {
        let mut args = vec!["plan", yaml.to_str().unwrap(), "--priority", "low"];
        args.extend_from_slice(extra);
        let out = scenario.run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(scenario.stats().low_priority > 0);
}
