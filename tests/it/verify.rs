//! Read-back verification after apply: every written endpoint is read again, and a user whose
//! writes Graph accepted but does not show is `unverified` (exit 3). The emulator's per-user
//! `forgetsWrites` fault answers PATCHes 204 and keeps nothing.

use mfactl_emulator::Tenant;
use serde_json::{Value, json};

use crate::fault_proxy::{Action, FaultProxy, RequestHead};
use crate::support::{Scenario, manifest_changing_everyone, stderr, stdout, to_yaml};

/// A generated tenant whose first `forgetful` users accept writes and keep none.
fn tenant(users: usize, forgetful: usize) -> Tenant {
    let mut tenant = Tenant::generate(users, 31);
    for user in tenant.users.iter_mut().take(forgetful) {
        user.forgets_writes = true;
    }
    tenant
}

/// `apply` of a manifest changing both endpoints of every user, as JSON, with a journal.
fn apply_json(scenario: &Scenario, extra: &[&str]) -> (i32, Value, String) {
    let rows = manifest_changing_everyone(&scenario.tenant());
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let journal = scenario.dir.path().join("journal.jsonl");
    let mut args = vec![
        "apply",
        yaml.to_str().unwrap(),
        "--auto-approve",
        "--format",
        "json",
        "--journal",
        journal.to_str().unwrap(),
        // Each endpoint read alone, as these tests count the reads of each.
        "--read-path",
        "per-user",
    ];
    args.extend_from_slice(extra);
    let out = scenario.run(&args);
    let code = out.status.code().expect("exit code");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "apply printed no JSON ({e}); exit {code}\nstderr: {}",
            stderr(&out)
        )
    });
    (code, doc, stderr(&out))
}

fn journal_lines(scenario: &Scenario) -> Vec<Value> {
    std::fs::read_to_string(scenario.dir.path().join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn a_normal_apply_reads_every_write_back_and_exits_0() {
    let scenario = Scenario::new(tenant(20, 0));
    let (code, doc, err) = apply_json(&scenario, &[]);
    assert_eq!(code, 0, "{err}");
    // Two writes a user, each read back once.
    assert_eq!(doc["summary"]["applied"], 40);
    assert_eq!(
        doc["summary"]["calls"]["verifies"], 40,
        "{}",
        doc["summary"]
    );
    assert!(doc["summary"].get("unverified").is_none());
    assert!(
        err.contains("Verified: 20 users read back (40 reads), 0 unverified: every write shows."),
        "{err}"
    );
    assert!(
        doc["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["status"] == "applied")
    );
    assert!(
        journal_lines(&scenario)
            .iter()
            .all(|l| l["event"] != "verify")
    );
}

#[test]
fn verification_costs_one_read_per_write_and_no_verify_skips_it() {
    let verified = Scenario::new(tenant(20, 0));
    let (code, _, _) = apply_json(&verified, &[]);
    assert_eq!(code, 0);
    let skipped = Scenario::new(tenant(20, 0));
    let (code, doc, err) = apply_json(&skipped, &["--no-verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Not verified: --no-verify"), "{err}");
    assert_eq!(doc["summary"]["calls"]["verifies"], 0);
    // The emulator saw exactly the extra reads: one per write.
    let (with, without) = (verified.stats(), skipped.stats());
    assert_eq!(with.writes, 40);
    assert_eq!(without.writes, 40);
    assert_eq!(with.reads - without.reads, 40, "{with:?}\n{without:?}");
}

#[test]
fn writes_graph_does_not_keep_are_unverified_and_exit_3() {
    let scenario = Scenario::new(tenant(12, 3));
    let forgetful: Vec<String> = scenario.tenant().users[..3]
        .iter()
        .map(|u| u.id.clone())
        .collect();
    let (code, doc, err) = apply_json(&scenario, &[]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(doc["summary"]["unverified"], 3, "{}", doc["summary"]);
    assert_eq!(doc["summary"]["applied"], 24, "Graph accepted every write");
    assert!(
        err.contains("Verified: 12 users read back") && err.contains(", 3 unverified."),
        "{err}"
    );
    for user in doc["users"].as_array().unwrap() {
        let id = user["id"].as_str().unwrap();
        if forgetful.iter().any(|f| f == id) {
            assert_eq!(user["status"], "unverified", "{user}");
            assert_eq!(user["error"]["code"], "notKept", "{user}");
            let message = user["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("signInPreferences: ")
                    && message.contains("requirements: perUserMfaState ")
                    && message.contains(", expected "),
                "{message}"
            );
        } else {
            assert_eq!(user["status"], "applied", "{user}");
        }
    }

    // One verify line per user and endpoint, with what was written and what Graph showed.
    let lines = journal_lines(&scenario);
    let verify: Vec<&Value> = lines.iter().filter(|l| l["event"] == "verify").collect();
    assert_eq!(verify.len(), 6, "{lines:#?}");
    for line in &verify {
        let id = line["id"].as_str().unwrap();
        assert!(forgetful.iter().any(|f| f == id), "{line}");
        assert!(
            line["user"].is_string() && line["endpoint"].is_string(),
            "{line}"
        );
        let (body, seen) = (
            line["body"].as_object().unwrap(),
            line["seen"].as_object().unwrap(),
        );
        assert_eq!(
            body.keys().collect::<Vec<_>>(),
            seen.keys().collect::<Vec<_>>()
        );
        assert_ne!(body, seen, "{line}");
    }
    // The existing kinds are unchanged, and the run still finished before verifying.
    let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    let finish = kinds.iter().position(|k| *k == "finish").unwrap();
    assert!(
        kinds[finish + 1..].iter().all(|k| *k == "verify"),
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "intent").count(), 24);

    // The text report lists them under "Not converged" with what was expected and seen; the
    // state is unchanged, so a second apply plans and loses the same writes.
    let rows = manifest_changing_everyone(&scenario.tenant());
    let yaml = scenario.write("again.yaml", &to_yaml(&rows));
    let out = scenario.run(&["apply", yaml.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = stdout(&out);
    let not_converged = text.split("Not converged:").nth(1).expect(&text);
    assert!(
        not_converged.contains("(written, but reading back does not show it)")
            && not_converged
                .contains("notKept: Graph accepted the write but reading it back shows"),
        "{text}"
    );
    assert!(text.contains(", 3 unverified."), "{text}");
}

#[test]
fn no_verify_sends_no_read_back_and_exits_0_even_when_writes_are_lost() {
    let scenario = Scenario::new(tenant(6, 2));
    let (code, doc, err) = apply_json(&scenario, &["--no-verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Not verified: --no-verify"), "{err}");
    assert_eq!(doc["summary"]["calls"]["verifies"], 0);
    assert!(doc["summary"].get("unverified").is_none());
    // Reads: the plan's (two a user) and the drift check's (one a write), nothing after.
    let stats = scenario.stats();
    assert_eq!(stats.writes, 12);
    assert_eq!(
        doc["summary"]["calls"]["reads"].as_u64().unwrap()
            + doc["summary"]["calls"]["rereads"].as_u64().unwrap(),
        24
    );
    assert!(
        journal_lines(&scenario)
            .iter()
            .all(|l| l["event"] != "verify")
    );
}

#[test]
fn a_halted_run_is_not_verified_and_says_so() {
    // The token may not write requirements: the run stops those writes after a handful of
    // refusals (a halted run), though every signInPreferences write lands.
    let scenario = Scenario::new(tenant(20, 0));
    let rows = manifest_changing_everyone(&scenario.tenant());
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let proxy = FaultProxy::in_front_of(&scenario.url());
    proxy.set_rule(|head: &RequestHead, _| {
        if head.method == "PATCH" && head.path.ends_with("/authentication/requirements") {
            Action::Respond {
                status: 403,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: json!({"error": {"code": "Authorization_RequestDenied",
                                       "message": "Insufficient privileges to complete the operation."}})
                .to_string()
                .into_bytes(),
            }
        } else {
            Action::Forward
        }
    });
    let out = proxy
        .mfactl(&[
            "apply",
            "--no-batch",
            "--read-path",
            "per-user",
            yaml.to_str().unwrap(),
            "--auto-approve",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(scenario.stats().writes > 0, "some writes landed");
    assert!(err.contains("Not verified: the run stopped early"), "{err}");
}

#[test]
fn a_read_back_that_fails_leaves_the_user_applied_with_a_note() {
    let scenario = Scenario::new(tenant(4, 0));
    let first = scenario.tenant().users[0].id.clone();
    let proxy = FaultProxy::in_front_of(&scenario.url());
    // The plan's read and the drift check pass; the third read of one user's requirements (the
    // read-back) is refused, and is not retried.
    let reads = std::sync::Mutex::new(0u32);
    let target = format!("/users/{first}/authentication/requirements");
    proxy.set_rule(move |head: &RequestHead, _| {
        if head.method == "GET" && head.path.ends_with(&target) {
            let mut reads = reads.lock().unwrap();
            *reads += 1;
            if *reads >= 3 {
                return Action::Respond {
                    status: 400,
                    headers: vec![("Content-Type".into(), "application/json".into())],
                    body: json!({"error": {"code": "badRequest", "message": "Not today."}})
                        .to_string()
                        .into_bytes(),
                };
            }
        }
        Action::Forward
    });
    let rows = manifest_changing_everyone(&scenario.tenant());
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let journal = scenario.dir.path().join("journal.jsonl");
    let out = proxy
        .mfactl(&[
            "apply",
            "--no-batch",
            "--read-path",
            "per-user",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--format",
            "json",
            "--journal",
            journal.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "Verified: 3 users read back (8 reads), 0 unverified; 1 user could not be read back"
        ),
        "{err}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let user = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == first.as_str())
        .unwrap();
    assert_eq!(user["status"], "applied", "{user}");
    assert!(
        user["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("not verified: reading requirements back failed (HTTP 400 badRequest)"),
        "{user}"
    );
    assert!(doc["summary"].get("unverified").is_none());
    assert!(
        journal_lines(&scenario)
            .iter()
            .all(|l| l["event"] != "verify")
    );
}

/// A blocked user's other write is read back like any other: Graph accepting it and keeping
/// nothing makes the user `unverified` (its blocked reason kept) and apply exit 3, in the JSON,
/// the text and the reports alike.
#[test]
fn a_blocked_users_forgotten_write_is_reported_not_kept_and_apply_exits_3() {
    use mfactl::model::{MethodKind, PerUserMfaState, PreferredMethod};
    let mut tenant = tenant(6, 0);
    let victim = &mut tenant.users[0];
    victim.methods = vec![MethodKind::MobilePhone];
    victim
        .sign_in_preferences
        .user_preferred_method_for_secondary_authentication = Some(PreferredMethod::Sms);
    victim.per_user_mfa_state = PerUserMfaState::Enforced;
    victim.forgets_writes = true;
    let victim = victim.id.clone();
    let scenario = Scenario::new(tenant);
    // Push is not registered (blocked); the per-user state is written, and forgotten.
    let yaml = scenario.write(
        "desired.yaml",
        &format!(
            "version: 1\nusers:\n  - user: {victim}\n    preferredMethod: push\n    \
             perUserMfaState: disabled\n"
        ),
    );
    let (code, plan) = scenario.plan_json(&yaml);
    assert_eq!(code, 2, "{plan}");
    assert_eq!(
        (&plan["summary"]["blocked"], &plan["summary"]["to_change"]),
        (&json!(1), &json!(0)),
        "counted once, as blocked: {}",
        plan["summary"]
    );
    assert_eq!(plan["summary"]["blocked_with_writes"], 1);
    assert_eq!(plan["summary"]["writes"], 1);

    let report = scenario.dir.path().join("applied.md");
    let out = scenario.run(&[
        "apply",
        yaml.to_str().unwrap(),
        "--auto-approve",
        "--format",
        "json",
        "--report",
        report.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary = &doc["summary"];
    assert_eq!(summary["unverified"], 1, "{summary}");
    assert_eq!(summary["blocked"], 0, "{summary}");
    assert_eq!(summary["applied"], 1, "Graph accepted the write: {summary}");
    // Read back, and once more after a pause before it is called not kept.
    assert_eq!(summary["calls"]["verifies"], 2, "{summary}");
    let user = &doc["users"][0];
    assert_eq!(user["status"], "unverified", "{user}");
    assert_eq!(user["error"]["code"], "notKept", "{user}");
    assert!(
        user["reason"]
            .as_str()
            .unwrap()
            .contains("push is not registered"),
        "the blocked reason stays: {user}"
    );
    let write = &user["writes"][0];
    assert_eq!(write["endpoint"], "requirements");
    assert_eq!(
        (&write["result"]["ok"], &write["result"]["not_kept"]),
        (&json!(true), &json!(true)),
        "{write}"
    );
    assert!(
        err.contains("Verified: 1 user read back (2 reads), 1 unverified."),
        "{err}"
    );
    let markdown = std::fs::read_to_string(&report).unwrap();
    assert!(markdown.contains("| unverified | 1 |"), "{markdown}");
    assert!(markdown.contains("| notKept |"), "{markdown}");
    // The journal says which write did not show.
    let verify: Vec<Value> = journal_files(&scenario)
        .into_iter()
        .filter(|l| l["event"] == "verify")
        .collect();
    assert_eq!(verify.len(), 1, "{verify:?}");
    assert_eq!(verify[0]["endpoint"], "requirements");
}

/// The lines of every journal apply wrote in the scenario's folder.
fn journal_files(scenario: &Scenario) -> Vec<Value> {
    std::fs::read_dir(scenario.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".journal.jsonl"))
        .flat_map(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}
