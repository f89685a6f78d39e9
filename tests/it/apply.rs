//! `mfactl apply` against generated tenants, with and without trouble.

use mfactl::emulator::{EmulatorConfig, Tenant};
use mfactl::model::PerUserMfaState;
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

    // The journal has a line per write, each with Graph's request-id; no secret anywhere.
    let journal_text = std::fs::read_to_string(&journal).unwrap();
    let writes: Vec<Value> = journal_text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "write")
        .collect();
    assert_eq!(writes.len() as u64, expected.writes);
    assert!(
        writes
            .iter()
            .all(|w| w["result"]["ok"] == true && w["result"]["request_id"].is_string())
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
        stats.throttled >= 100,
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
fn failed_writes_name_user_status_code_and_request_id() {
    // Every request fails: reads fail too, so users are `failed` at plan time, with Graph's ids.
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
    assert!(first["error"]["request_id"].is_string(), "{first}");
    // Two attempts per read: the retry layer is bounded.
    assert!(scenario.stats().injected_failures <= 2 * 2 * 5 + 5);
}
