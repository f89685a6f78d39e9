//! `mfactl apply` against generated tenants, with and without trouble.

use mfactl::model::PerUserMfaState;
use mfactl_emulator::{EmulatorConfig, Tenant};
use serde_json::Value;

use crate::support::{
    Row, Scenario, assert_converged, manifest_changing_everyone, manifest_for, stderr, stdout,
    to_yaml,
};

const TOKEN: &str = "test-token-not-a-secret";

#[test]
fn apply_converges_and_a_second_plan_is_clean() {
    let tenant = Tenant::generate(300, 21);
    let (rows, expected) = manifest_for(&tenant, false);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let journal = scenario.dir.path().join("journal.jsonl");

    let out = scenario.run(&[
        "apply",
        yaml.to_str().unwrap(),
        "--auto-approve",
        "--journal",
        journal.to_str().unwrap(),
        "--write-rate",
        "500",
        "-vv",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "Apply: {} users changed ({} of {} writes applied)",
            expected.to_change, expected.writes, expected.writes
        )),
        "{text}"
    );
    assert_eq!(
        scenario.stats().writes,
        expected.writes,
        "one PATCH per endpoint per user"
    );
    assert_converged(&scenario.tenant(), &rows);

    // The journal has an intent before and a result after every write, each result with
    // Graph's request-id; no secret anywhere.
    let journal_text = std::fs::read_to_string(&journal).unwrap();
    let entries: Vec<Value> = journal_text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect();
    let of = |event: &str| entries.iter().filter(|e| e["event"] == event).count() as u64;
    assert_eq!((of("start"), of("finish")), (1, 1));
    assert_eq!(of("intent"), expected.writes);
    assert_eq!(of("result"), expected.writes);
    assert!(
        entries
            .iter()
            .filter(|e| e["event"] == "result")
            .all(|w| w["result"]["ok"] == true && w["result"]["request_id"].is_string())
    );
    assert!(
        entries
            .iter()
            .filter(|e| e["event"] == "intent")
            .all(|w| w["body"].is_object() && w["before"].is_object() && w["user"].is_string())
    );
    for text in [&journal_text, &stdout(&out), &stderr(&out)] {
        assert!(!text.contains(TOKEN), "the token leaked");
    }

    let (code, doc) = scenario.plan_json(&yaml);
    assert_eq!(code, 0, "second plan: nothing to do: {doc}");
    assert_eq!(doc["summary"]["in_sync"], 300);
}

#[test]
fn apply_json_report_carries_each_outcome() {
    let tenant = Tenant::generate(40, 8);
    let (rows, expected) = manifest_for(&tenant, true);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario.run(&[
        "apply",
        yaml.to_str().unwrap(),
        "--auto-approve",
        "--format",
        "json",
        "--write-rate",
        "500",
    ]);
    // Blocked users are not converged: exit 3.
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("only JSON on stdout");
    assert_eq!(doc["summary"]["applied"], expected.writes);
    assert_eq!(doc["summary"]["blocked"], expected.blocked);
    assert_eq!(doc["summary"]["failed"], 0);
    for user in doc["users"].as_array().unwrap() {
        match user["status"].as_str().unwrap() {
            "applied" => assert!(
                user["writes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|w| w["result"]["ok"] == true)
            ),
            "blocked" => {
                assert!(user["writes"].as_array().unwrap().is_empty());
                assert!(
                    user["reason"]
                        .as_str()
                        .unwrap()
                        .contains("is not registered for")
                );
            }
            other => panic!("unexpected status {other}: {user}"),
        }
    }
}

#[test]
fn apply_converges_under_tight_throttling_and_injected_failures() {
    // Six jobs at once share one tenant's tight bucket (600 RU per 10 s) while 5 % of all
    // requests fail with 503: each job alone backs off politely, together they overshoot, so
    // Graph throttles hundreds of times. Every job must still converge with no failed user.
    let tenant = Tenant::generate(300, 33);
    let rows = manifest_changing_everyone(&tenant);
    let expected_writes = 2 * rows.len() as u64;
    let scenario = Scenario::with_config(
        tenant,
        EmulatorConfig {
            ru_per_10s: Some(600),
            writes_per_150s: 3000,
            fail_rate: 0.05,
            seed: 7,
            ..EmulatorConfig::default()
        },
    );
    let jobs: Vec<_> = rows
        .chunks(rows.len().div_ceil(6))
        .enumerate()
        .map(|(i, chunk)| {
            let manifest = scenario.write(&format!("desired-{i}.yaml"), &to_yaml(chunk));
            scenario
                .std_command(&[
                    "apply",
                    manifest.to_str().unwrap(),
                    "--auto-approve",
                    "--format",
                    "json",
                    "--concurrency",
                    "16",
                    "--read-rate",
                    "5000",
                    "--write-rate",
                    "5000",
                ])
                .spawn()
                .expect("job starts")
        })
        .collect();
    let mut applied = 0;
    for job in jobs {
        let out = job.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["summary"]["failed"], 0, "{}", doc["summary"]);
        applied += doc["summary"]["applied"].as_u64().unwrap();
    }
    assert_eq!(applied, expected_writes);
    let stats = scenario.stats();
    eprintln!("{stats:?}");
    assert!(
        stats.throttled >= 50, // typically 300-400; room for a slow, loaded machine
        "the scenario must throttle hard: {stats:?}"
    );
    assert!(stats.injected_failures > 0, "{stats:?}");
    assert_eq!(stats.writes, expected_writes, "no write was made twice");
    assert_converged(&scenario.tenant(), &rows);
}

#[test]
fn unknown_user_is_reported_and_the_rest_applied() {
    let tenant = Tenant::generate(30, 4);
    let (mut rows, expected) = manifest_for(&tenant, false);
    rows.push(Row {
        user: "nobody@contoso.onmicrosoft.com".into(),
        per_user_mfa_state: Some(PerUserMfaState::Disabled),
        ..Row::default()
    });
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario.run(&[
        "apply",
        yaml.to_str().unwrap(),
        "--auto-approve",
        "--write-rate",
        "500",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "not found is not converged: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("? nobody@contoso.onmicrosoft.com (not found)"),
        "{text}"
    );
    assert!(text.contains("1 not found"), "{text}");
    assert_eq!(scenario.stats().writes, expected.writes);
    assert_converged(&scenario.tenant(), &rows[..rows.len() - 1]);
}

#[test]
fn apply_refuses_without_a_terminal_or_auto_approve() {
    let tenant = Tenant::generate(10, 2);
    let (rows, _) = manifest_for(&tenant, false);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario.run(&["apply", yaml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--auto-approve"), "{}", stderr(&out));
    assert_eq!(scenario.stats().requests, 0, "nothing sent");
}

#[test]
fn unreadable_users_fail_with_status_code_and_request_id() {
    // Every request fails: reads fail, so users are `failed` at plan time, with Graph's ids.
    let tenant = Tenant::generate(5, 6);
    let (rows, _) = manifest_for(&tenant, false);
    let scenario = Scenario::with_config(
        tenant,
        EmulatorConfig {
            fail_rate: 1.0,
            ..EmulatorConfig::default()
        },
    );
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario.run(&[
        "plan",
        yaml.to_str().unwrap(),
        "--format",
        "json",
        "--max-attempts",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "an incomplete plan is an error");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["failed"], 5);
    let first = &doc["users"][0];
    assert_eq!(first["status"], "failed");
    assert_eq!(first["error"]["status"], 503);
    assert_eq!(first["error"]["code"], "serviceUnavailable");
    assert!(first["error"]["request_id"].is_string(), "{first}");
    // Exactly two attempts per read (one retry layer, bounded): count the endpoints read, the
    // users named by UPN (each resolved to its object id) and the one /organization read.
    let endpoint_reads: u64 = rows
        .iter()
        .map(|r| {
            u64::from(r.preferred_method.is_some() || r.system_preferred.is_some())
                + u64::from(r.per_user_mfa_state.is_some())
                + u64::from(uuid::Uuid::parse_str(&r.user).is_err())
        })
        .sum();
    assert_eq!(scenario.stats().injected_failures, 2 * (endpoint_reads + 1));
}

#[test]
fn failed_writes_name_user_endpoint_status_code_and_request_id() {
    let tenant = Tenant::generate(20, 14);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::with_config(
        tenant,
        EmulatorConfig {
            write_fail_rate: 1.0,
            ..EmulatorConfig::default()
        },
    );
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario.run(&[
        "apply",
        yaml.to_str().unwrap(),
        "--auto-approve",
        "--max-attempts",
        "3",
        "--write-rate",
        "500",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Apply: 0 users changed (0 of 40 writes applied)"),
        "{text}"
    );
    assert!(text.contains("20 failed"), "{text}");
    let first = &rows[0].user;
    assert!(text.contains(&format!("  x {first} (failed)")), "{text}");
    assert!(
        text.contains("signInPreferences: HTTP 503 serviceUnavailable"),
        "{text}"
    );
    assert!(
        text.contains("requirements: HTTP 503 serviceUnavailable"),
        "{text}"
    );
    assert!(text.contains("(request-id "), "{text}");
    // Three attempts per write, and nothing written.
    assert_eq!(scenario.stats().injected_failures, 3 * 40);
    assert_eq!(scenario.stats().writes, 0);
}

#[test]
fn a_value_changed_since_the_plan_is_not_written_over() {
    use mfactl::engine;
    use mfactl::graph::{GraphClient, Transport, TransportConfig};

    let tenant = Tenant::generate(60, 15);
    // A user whose per-user state another admin can set to `enabled` without Graph promoting
    // it to `enforced` (no MFA method registered), and which the manifest wants otherwise.
    let victim = tenant
        .users
        .iter()
        .find(|u| !u.has_mfa_method() && u.per_user_mfa_state == PerUserMfaState::Disabled)
        .expect("the generated tenant has such a user")
        .id
        .clone();
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let manifest = mfactl::manifest::load(&yaml).unwrap();
    let url = scenario.url();
    let target = victim.clone();
    let plan = scenario.block_on(async move {
        let config = TransportConfig::new(url.clone(), "test-token-not-a-secret".to_owned().into());
        let client = GraphClient::new(Transport::new(config).unwrap());
        let mut plan = engine::plan(&client, &manifest, 4).await.unwrap();
        // Someone else changes the user's per-user state between plan and apply.
        let answer = reqwest::Client::new()
            .patch(format!(
                "{url}/beta/users/{target}/authentication/requirements"
            ))
            .bearer_auth("someone-else")
            .json(&serde_json::json!({"perUserMfaState": "enabled"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 204);
        engine::apply(
            &client,
            &mut plan,
            engine::ApplyOptions {
                journal: None,
                resume: None,
                concurrency: 4,
                interrupt: engine::Interrupt::new(),
                check_names: false,
            },
        )
        .await
        .unwrap();
        plan
    });
    let entry = plan.users.iter().find(|u| *u.user == *victim).unwrap();
    assert_eq!(entry.status, mfactl::plan::Status::Drifted);
    let error = entry.error.as_ref().unwrap();
    assert_eq!(error.code, "changedSincePlan");
    assert_eq!(
        error.message,
        "perUserMfaState was \"disabled\", is now \"enabled\" since the plan; nothing was \
         written over it, run plan again"
    );
    assert_eq!(plan.summary.drifted, 1);
    // Its other endpoint was still written; everyone else converged.
    assert_eq!(plan.summary.applied, Some(2 * rows.len() as u64 - 1));
    let tenant = scenario.tenant();
    let changed = tenant.users.iter().find(|u| u.id == victim).unwrap();
    assert_eq!(
        changed.per_user_mfa_state,
        PerUserMfaState::Enabled,
        "not overwritten"
    );
    let others: Vec<Row> = rows.into_iter().filter(|r| r.user != victim).collect();
    assert_converged(&tenant, &others);
}

#[test]
fn the_token_never_reaches_logs_even_at_trace_level() {
    let tenant = Tenant::generate(3, 2);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario
        .mfactl(&[
            "apply",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--write-rate",
            "500",
        ])
        .env("MFACTL_LOG", "trace")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).len() > 1000, "trace logging is on");
    for text in [stdout(&out), stderr(&out)] {
        assert!(!text.contains(TOKEN), "the token leaked");
    }
}
