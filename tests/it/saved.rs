//! Saved plans: `plan --out PLAN.json`, then `apply PLAN.json` applies exactly that plan, or
//! refuses before any request.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use mfactl::model::PerUserMfaState;
use mfactl_emulator::Tenant;
use serde_json::Value;

use crate::support::{
    Row, Scenario, assert_converged, manifest_changing_everyone, stderr, stdout, to_yaml,
};

const TOKEN: &str = "test-token-not-a-secret";

/// The journals apply made in the scenario's folder.
fn journals(scenario: &Scenario) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(scenario.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".journal.jsonl"))
        .collect();
    found.sort();
    found
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_saved_plan_is_applied_exactly_without_asking() {
    let tenant = Tenant::generate(30, 41);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant.clone());
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let plan_path = scenario.save_plan(&yaml);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    // What apply needs to trust it.
    assert_eq!(saved["graph"], scenario.url());
    assert_eq!(saved["tenant_id"], tenant.tenant_id.as_str());
    assert!(saved["created"].is_string());
    assert_eq!(saved["manifest"]["sha256"].as_str().unwrap().len(), 64);
    assert!(
        saved["checksum"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    for user in saved["users"].as_array().unwrap() {
        assert!(user["id"].is_string(), "{user}");
        assert!(user["writes"][0]["before"].is_object(), "{user}");
    }

    // The manifest changes after the review: the reviewed plan is applied, not the new file.
    let other: Vec<Row> = rows
        .iter()
        .map(|r| Row {
            per_user_mfa_state: Some(PerUserMfaState::Enabled),
            system_preferred: None,
            ..r.clone()
        })
        .collect();
    std::fs::write(&yaml, to_yaml(&other)).unwrap();

    // No --auto-approve and no terminal: a saved plan is not confirmed again.
    let out = scenario.run(&["apply", plan_path.to_str().unwrap()]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    assert!(err.contains("changed since this plan was made"), "{err}");
    assert!(
        text.contains("Apply: 30 users changed (60 of 60 writes applied)"),
        "{text}"
    );
    assert_eq!(scenario.stats().writes, 60);
    assert_converged(&scenario.tenant(), &rows);
    // The reviewed plan's summary, not its users again, and where to see them.
    assert!(
        text.contains("Plan: 30 users to change (60 writes)"),
        "{text}"
    );
    assert!(!text.contains("  ~ "), "no user blocks: {text}");
    assert!(
        text.contains("The plan's users are not listed again: "),
        "{text}"
    );

    // Its journal sits beside the plan and names it with its checksum.
    let found = journals(&scenario);
    assert_eq!(found.len(), 1, "{found:?}");
    let name = found[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("plan.") && name.ends_with(".journal.jsonl"),
        "{name}"
    );
    assert!(err.contains(&name), "the journal's path is printed: {err}");
    let entries = lines(&found[0]);
    assert_eq!(entries[0]["event"], "start");
    assert_eq!(entries[0]["plan_checksum"], saved["checksum"]);
    assert_eq!(entries[0]["tenant_id"], tenant.tenant_id.as_str());
    let results = entries.iter().filter(|e| e["event"] == "result").count();
    assert_eq!(results, 60);
    // Writes are addressed and recorded by object id.
    assert!(
        entries
            .iter()
            .filter(|e| e["event"] == "intent")
            .all(|e| e["id"].is_string())
    );

    // Neither file holds the token.
    for path in [&plan_path, &found[0]] {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(!text.contains(TOKEN), "{}", path.display());
    }
}

#[test]
fn a_user_changed_between_plan_and_apply_is_drifted_and_left_alone() {
    let mut tenant = Tenant::generate(10, 42);
    tenant.users[3].per_user_mfa_state = PerUserMfaState::Enabled;
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant.clone());
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let plan_path = scenario.save_plan(&yaml);

    // Someone else enforces per-user MFA for one `enabled` user after the review (the plan
    // disables it).
    let victim = &tenant.users[3];
    let now = PerUserMfaState::Enforced;
    let other = scenario.write(
        "other.yaml",
        &format!(
            "version: 1\nusers:\n  - user: {}\n    perUserMfaState: {now}\n",
            victim.id
        ),
    );
    let out = scenario.run(&["apply", other.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let changed = scenario.tenant();

    let out = scenario.run(&["apply", plan_path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = report["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == victim.id.as_str())
        .unwrap();
    assert_eq!(entry["status"], "drifted", "{entry}");
    assert_eq!(entry["error"]["code"], "changedSincePlan");
    assert_eq!(report["summary"]["drifted"], 1);
    // Its per-user state is the other admin's, untouched; everyone else converged.
    let after = scenario.tenant();
    let find = |t: &Tenant| {
        t.users
            .iter()
            .find(|u| u.id == victim.id)
            .unwrap()
            .per_user_mfa_state
    };
    assert_eq!(find(&after), find(&changed));
    let others: Vec<Row> = rows.into_iter().filter(|r| r.user != victim.id).collect();
    assert_converged(&after, &others);
}

/// A JWT (unsigned: the emulator without an `auth:` section takes any token) naming `tid`.
fn token_for_tenant(tid: &str) -> String {
    let encode = |v: Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!(
        "{}.{}.",
        encode(serde_json::json!({"alg": "none", "typ": "JWT"})),
        encode(serde_json::json!({"tid": tid, "idtyp": "app",
            "roles": ["UserAuthenticationMethod.ReadWrite.All"]}))
    )
}

/// Runs `apply PLAN` with `extra` arguments and checks it was refused with `says`, before any
/// request reached the emulator.
fn refused(scenario: &Scenario, plan: &Path, extra: &[&str], says: &str) {
    let before = scenario.stats().requests;
    let mut args = vec!["apply", plan.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = scenario.run(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(says), "expected {says:?} in: {err}");
    assert_eq!(scenario.stats().requests, before, "no request: {err}");
    assert_eq!(scenario.stats().writes, 0);
}

#[test]
fn stale_foreign_edited_and_future_format_plans_are_refused_before_any_request() {
    let tenant = Tenant::generate(8, 43);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant.clone());
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let plan_path = scenario.save_plan(&yaml);
    let text = std::fs::read_to_string(&plan_path).unwrap();
    let write = |name: &str, text: &str| scenario.write(name, text);

    // Edited: one value, or only a space.
    let edited = write(
        "edited.json",
        &text.replacen("\"after\": \"disabled\"", "\"after\": \"enabled\"", 1),
    );
    assert_ne!(std::fs::read_to_string(&edited).unwrap(), text);
    refused(&scenario, &edited, &[], "was edited after it was saved");
    let spaced = write("spaced.json", &text.replacen("{\n", "{ \n", 1));
    refused(&scenario, &spaced, &[], "was edited after it was saved");
    // Another format (checked before the checksum, which it would fail too).
    let future = write(
        "future.json",
        &text.replacen("\"format_version\": 1", "\"format_version\": 2", 1),
    );
    refused(&scenario, &future, &[], "format_version 2");
    // Not a saved plan: the stdout document has no checksum.
    let bare = write(
        "bare.json",
        &stdout(&scenario.run(&["plan", yaml.to_str().unwrap(), "--format", "json"])),
    );
    refused(&scenario, &bare, &[], "has no checksum");
    // Stale.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    refused(
        &scenario,
        &plan_path,
        &["--max-plan-age", "1s"],
        "more than --max-plan-age",
    );
    // Made in the future (another machine's clock), and for another tenant: written the way
    // mfactl writes them, so only that differs.
    let key = crate::support::plan_key();
    let mut plan = mfactl::plan::saved::load(&plan_path, Some(&key)).unwrap();
    plan.checksum = None;
    let resave = |name: &str, plan: &mfactl::plan::Plan| {
        let mut bytes = Vec::new();
        mfactl::plan::saved::write(plan, &mut bytes, &key).unwrap();
        scenario.write(name, std::str::from_utf8(&bytes).unwrap())
    };
    let in_an_hour = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(1))
        .unwrap();
    let future_plan = resave(
        "ahead.json",
        &mfactl::plan::Plan {
            created: Some(in_an_hour.to_string()),
            ..plan.clone()
        },
    );
    refused(&scenario, &future_plan, &[], "in the future");
    let foreign = mfactl::plan::Plan {
        tenant_id: Some("11111111-2222-4333-8444-555555555555".into()),
        ..plan.clone()
    };
    let foreign_path = resave("foreign.json", &foreign);
    // A token naming its tenant: refused offline.
    let before = scenario.stats().requests;
    let out = scenario
        .mfactl(&["apply", foreign_path.to_str().unwrap()])
        .env("MFACTL_ACCESS_TOKEN", token_for_tenant(&tenant.tenant_id))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the access token is for tenant"), "{err}");
    assert_eq!(scenario.stats().requests, before, "{err}");
    // An opaque token: Graph names the tenant (one read), and nothing is written.
    let out = scenario.run(&["apply", foreign_path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Graph (/organization) is for tenant"), "{err}");
    assert_eq!(scenario.stats().writes, 0);

    // Another Graph root.
    let elsewhere = Scenario::new(tenant);
    let out = elsewhere.run(&["apply", plan_path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("was made against"), "{err}");
    assert_eq!(elsewhere.stats().requests, 0);

    // None of these left a journal behind, and the original still applies.
    assert!(journals(&scenario).is_empty());
    let out = scenario.run(&["apply", plan_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_converged(&scenario.tenant(), &rows);
}

#[test]
fn resume_refuses_a_manifest_and_a_journal_of_another_plan() {
    let tenant = Tenant::generate(6, 44);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let plan_path = scenario.save_plan(&yaml);
    let journal = scenario.dir.path().join("run.jsonl");
    let out = scenario.run(&[
        "apply",
        plan_path.to_str().unwrap(),
        "--journal",
        journal.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // With the manifest: the journal names the plan to give instead.
    let out = scenario.run(&[
        "apply",
        yaml.to_str().unwrap(),
        "--auto-approve",
        "--resume",
        journal.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not a manifest"), "{err}");
    assert!(
        err.contains(plan_path.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );

    // With another plan (planned again after the apply: now everything is in sync).
    let other = scenario.dir.path().join("other.json");
    let out = scenario.run(&[
        "plan",
        yaml.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let before = scenario.stats().requests;
    let out = scenario.run(&[
        "apply",
        other.to_str().unwrap(),
        "--resume",
        journal.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("records a run of another plan"), "{err}");
    assert_eq!(scenario.stats().requests, before);
}

/// Applying a saved plan a second time finds its values already there: "already applied",
/// nothing sent, exit 0 — not "changed since the plan".
#[test]
fn re_applying_an_applied_plan_says_already_applied_and_sends_nothing() {
    let tenant = Tenant::generate(8, 43);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let plan_path = scenario.save_plan(&yaml);
    let out = scenario.run(&["apply", plan_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let written = scenario.stats().writes;
    assert_eq!(written, 16);

    let out = scenario.run(&["apply", plan_path.to_str().unwrap()]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    assert!(
        text.contains("Apply: 8 users changed (16 of 16 writes applied; 16 already applied"),
        "{text}"
    );
    assert!(!text.contains("changed since the plan"), "{text}");
    assert_eq!(scenario.stats().writes, written, "nothing was sent again");
    let out = scenario.run(&["apply", plan_path.to_str().unwrap(), "--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["summary"]["drifted"],
        Value::Null,
        "{}",
        report["summary"]
    );
    assert_eq!(report["summary"]["changed"], 8);
    let result = &report["users"][0]["writes"][0]["result"];
    assert_eq!(result["already_applied"], true, "{result}");
}
