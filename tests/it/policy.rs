//! The manifest's `policy:` section: validation before any request, then plan and apply of the
//! tenant's authentication methods policy against the emulator.

use mfactl_emulator::Tenant;

use crate::support::{Scenario, mfactl, stderr};

/// A tenant with two groups, one of them named twice.
fn tenant() -> Tenant {
    let mut tenant = Tenant::generate(3, 7);
    tenant.groups = serde_yaml_groups();
    tenant
}

fn serde_yaml_groups() -> Vec<mfactl_emulator::Group> {
    serde_json::from_value(serde_json::json!([
        { "id": "5d1b6c1e-0000-4000-8000-000000000002", "displayName": "Break-glass admins", "members": [] },
        { "id": "5d1b6c1e-0000-4000-8000-000000000003", "displayName": "Pilot", "members": [] },
        { "id": "5d1b6c1e-0000-4000-8000-000000000004", "displayName": "Pilot", "members": [] },
    ]))
    .expect("groups")
}

const BREAK_GLASS: &str = "5d1b6c1e-0000-4000-8000-000000000002";

fn manifest(policy: &str) -> String {
    format!("version: 1\npolicy:\n{policy}")
}

#[test]
fn each_bad_policy_value_is_reported_with_its_line_and_nothing_is_sent() {
    let scenario = Scenario::new(tenant());
    // (policy section, the line the problem is on, a code and a word the message must hold)
    let cases: &[(&str, u32, &str, &str)] = &[
        (
            "  systemCredentialPreferences:\n    state: on\n",
            4,
            "unknown-state",
            "\"on\"",
        ),
        (
            "  registrationCampaign:\n    snoozeDurationInDays: 15\n",
            4,
            "out-of-range",
            "15",
        ),
        (
            "  registrationCampaign:\n    snoozeDurationInDays: -1\n",
            4,
            "out-of-range",
            "-1",
        ),
        (
            "  reportSuspiciousActivity:\n    voiceReportingCode: 10\n",
            4,
            "out-of-range",
            "10",
        ),
        (
            "  registrationCampaign:\n    enforceRegistrationAfterAllowedSnoozes: maybe\n",
            4,
            "invalid-bool",
            "maybe",
        ),
        (
            "  registrationCampaign:\n    includeTargets:\n      - { id: all_users, targetType: group, targetedAuthenticationMethod: sms }\n",
            5,
            "unknown-method",
            "sms",
        ),
        (
            "  systemCredentialPreferences:\n    includeTargets: [{ id: all_users, targetType: device }]\n",
            4,
            "invalid-target",
            "device",
        ),
        (
            "  systemCredentialPreferences:\n    excludeTargets:\n      - { id: Pilot, targetType: group }\n      - { id: Other, targetType: group }\n",
            5,
            "too-many-targets",
            "at most 1",
        ),
        (
            "  reportSuspiciousActivity:\n    includeTarget: [{ id: all_users, targetType: group }]\n",
            4,
            "wrong-type",
            "not a list",
        ),
        (
            "  systemCredentialPreferences:\n    stat: enabled\n",
            4,
            "unknown-field",
            "did you mean state?",
        ),
        (
            "  registrationEnforcement: {}\n",
            3,
            "unknown-field",
            "registrationCampaign",
        ),
    ];
    for (index, (policy, line, code, word)) in cases.iter().enumerate() {
        let path = scenario.write(&format!("bad{index}.yaml"), &manifest(policy));
        let path = path.to_str().unwrap();
        for args in [vec!["plan", path], vec!["apply", path, "--auto-approve"]] {
            let out = scenario.run(&args);
            assert_eq!(out.status.code(), Some(1), "{policy}");
            let err = stderr(&out);
            assert!(
                err.contains(&format!("bad{index}.yaml:{line}:")),
                "{policy}\n{err}"
            );
            assert!(err.contains(&format!("error[{code}]")), "{policy}\n{err}");
            assert!(err.contains(word), "{policy}\n{err}");
        }
    }
    assert_eq!(scenario.stats().requests, 0, "nothing was sent");
}

#[test]
fn every_policy_problem_is_reported_at_once() {
    let scenario = Scenario::new(tenant());
    let path = scenario.write(
        "many.yaml",
        &manifest(
            "  systemCredentialPreferences:\n    state: sometimes\n  registrationCampaign:\n    snoozeDurationInDays: 99\n  reportSuspiciousActivity:\n    voiceReportingCode: 12\n",
        ),
    );
    let out = mfactl()
        .args(["validate", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for line in [4, 6, 8] {
        assert!(err.contains(&format!("many.yaml:{line}:")), "{err}");
    }
    assert_eq!(scenario.stats().requests, 0);
}

#[test]
fn a_policy_only_manifest_is_valid() {
    let scenario = Scenario::new(tenant());
    let path = scenario.write(
        "policy.yaml",
        &manifest(&format!(
            "  systemCredentialPreferences:\n    state: Enabled\n    includeTargets: [{{ id: all_users, targetType: group }}]\n    excludeTargets: [{{ id: \"Break-glass admins\", targetType: group }}]\n  registrationCampaign:\n    state: enabled\n    snoozeDurationInDays: 0\n    enforceRegistrationAfterAllowedSnoozes: true\n    includeTargets: [{{ id: all_users, targetType: group, targetedAuthenticationMethod: fido2 }}]\n    excludeTargets: []\n  reportSuspiciousActivity:\n    state: disabled\n    includeTarget: {{ id: {BREAK_GLASS}, targetType: group }}\n    voiceReportingCode: 9\n"
        )),
    );
    let out = mfactl()
        .args(["validate", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The emulator's policy as Graph serves it.
fn live_policy(scenario: &Scenario) -> serde_json::Value {
    let url = scenario.url();
    scenario.block_on(async move {
        reqwest::Client::new()
            .get(format!("{url}/beta/policies/authenticationMethodsPolicy"))
            .bearer_auth("test-token-not-a-secret")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

#[test]
fn a_policy_change_is_planned_applied_and_then_in_sync() {
    let scenario = Scenario::new(tenant());
    let path = scenario.write(
        "policy.yaml",
        &manifest(
            "  systemCredentialPreferences:\n    state: enabled\n    excludeTargets: [{ id: \"Break-glass admins\", targetType: group }]\n  reportSuspiciousActivity:\n    voiceReportingCode: 7\n",
        ),
    );
    let (code, plan) = scenario.plan_json(&path);
    assert_eq!(code, 2, "{plan}");
    assert_eq!(plan["summary"]["policy_writes"], 1, "{plan}");
    assert_eq!(plan["summary"]["writes"], 0);
    let policy = &plan["policy"];
    assert_eq!(policy["status"], "change", "{policy}");
    let changed: Vec<String> = policy["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}.{}",
                c["part"].as_str().unwrap(),
                c["property"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        changed,
        [
            "systemCredentialPreferences.state",
            "systemCredentialPreferences.excludeTargets",
            "reportSuspiciousActivity.voiceReportingCode"
        ]
    );
    // The display name went in as the group's id.
    assert_eq!(
        policy["body"]["systemCredentialPreferences"]["excludeTargets"][0]["id"],
        BREAK_GLASS
    );
    let text = scenario.run(&["plan", path.to_str().unwrap()]);
    let text = crate::support::stdout(&text);
    assert!(
        text.contains("systemCredentialPreferences.state: default -> enabled"),
        "{text}"
    );
    assert!(text.contains("Policy: 1 write."), "{text}");
    assert_eq!(scenario.stats().writes, 0, "a plan only reads");

    let journal = scenario.dir.path().join("journal.jsonl");
    let out = scenario.run(&[
        "apply",
        path.to_str().unwrap(),
        "--auto-approve",
        "--journal",
        journal.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["policy"]["status"], "applied", "{report}");
    assert_eq!(report["summary"]["applied"], 1);
    assert_eq!(scenario.stats().writes, 1);
    let lines = std::fs::read_to_string(&journal).unwrap();
    let events: Vec<serde_json::Value> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let policy_events: Vec<&str> = events
        .iter()
        .filter(|e| e["resource"] == "authenticationMethodsPolicy")
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(policy_events, ["intent", "result"], "{lines}");

    let live = live_policy(&scenario);
    assert_eq!(live["systemCredentialPreferences"]["state"], "enabled");
    assert_eq!(
        live["reportSuspiciousActivitySettings"]["voiceReportingCode"],
        7
    );

    let (code, again) = scenario.plan_json(&path);
    assert_eq!(code, 0, "in sync after apply: {again}");
    assert_eq!(again["policy"]["status"], "in_sync");
    assert_eq!(again["summary"]["policy_writes"], 0);
}

#[test]
fn managing_one_property_leaves_the_rest_of_the_policy_unchanged() {
    let scenario = Scenario::new(tenant());
    let before = live_policy(&scenario);
    let path = scenario.write(
        "state.yaml",
        &manifest("  systemCredentialPreferences:\n    state: disabled\n"),
    );
    let out = scenario.run(&["apply", path.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut after = live_policy(&scenario);
    assert_eq!(after["systemCredentialPreferences"]["state"], "disabled");
    let mut expected = before.clone();
    expected["systemCredentialPreferences"]["state"] = "disabled".into();
    for doc in [&mut after, &mut expected] {
        doc.as_object_mut().unwrap().remove("lastModifiedDateTime");
    }
    assert_eq!(
        serde_json::to_string(&after).unwrap(),
        serde_json::to_string(&expected).unwrap()
    );
}

#[test]
fn reordered_targets_plan_nothing() {
    let scenario = Scenario::new(tenant());
    let first = scenario.write(
        "first.yaml",
        &manifest(&format!(
            "  registrationCampaign:\n    includeTargets:\n      - {{ id: all_users, targetType: group }}\n      - {{ id: {BREAK_GLASS}, targetType: group, targetedAuthenticationMethod: Fido2 }}\n"
        )),
    );
    let out = scenario.run(&["apply", first.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reordered = scenario.write(
        "reordered.yaml",
        &manifest(
            "  registrationCampaign:\n    includeTargets:\n      - { id: Break-glass admins, targetType: Group, targetedAuthenticationMethod: fido2 }\n      - { id: all_users, targetType: group, targetedAuthenticationMethod: microsoftAuthenticator }\n",
        ),
    );
    let (code, plan) = scenario.plan_json(&reordered);
    assert_eq!(code, 0, "{plan}");
    assert_eq!(plan["policy"]["changes"], serde_json::json!([]));
}

#[test]
fn an_unknown_or_ambiguous_group_name_stops_the_run_before_any_write() {
    let scenario = Scenario::new(tenant());
    let path = scenario.write(
        "groups.yaml",
        "version: 1\nusers: []\npolicy:\n  systemCredentialPreferences:\n    state: enabled\n    includeTargets: [{ id: Pilot, targetType: group }]\n    excludeTargets: [{ id: Nobody, targetType: group }]\n",
    );
    for args in [
        vec!["plan", path.to_str().unwrap()],
        vec!["apply", path.to_str().unwrap(), "--auto-approve"],
    ] {
        let out = scenario.run(&args);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains("groups.yaml:6:"), "{err}");
        assert!(err.contains("error[ambiguous-group]"), "{err}");
        assert!(err.contains("groups.yaml:7:"), "{err}");
        assert!(err.contains("error[unknown-group]"), "{err}");
    }
    assert_eq!(scenario.stats().writes, 0);
}

/// Plans a change of the first user's preferred method (sms to push, both registered: a change;
/// a blocked field is not one, and gets no note; their own system-preferred MFA off, so the note
/// is the policy's) with `policy` (the lines under `policy:`): the plan, and the notes of that
/// user's entry, of which there is exactly one.
fn plan_preferred_change_with(policy: &str) -> (serde_json::Value, String) {
    let (tenant, user) = tenant_moving_to_push(false);
    let method = "push";
    let scenario = Scenario::new(tenant);
    let path = scenario.write(
        "notes.yaml",
        &format!(
            "version: 1\nusers:\n  - user: {user}\n    preferredMethod: {method}\npolicy:\n{policy}"
        ),
    );
    let (_, plan) = scenario.plan_json(&path);
    let entry = plan["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == user.as_str())
        .unwrap_or_else(|| panic!("{user} is planned: {plan}"));
    assert_eq!(
        entry["notes"].as_array().unwrap().len(),
        1,
        "one note: {entry}"
    );
    let notes = entry["notes"].to_string();
    (plan, notes)
}

#[test]
fn a_preferred_method_under_system_preferred_for_all_users_is_noted() {
    let (plan, notes) = plan_preferred_change_with(
        "  systemCredentialPreferences:\n    state: enabled\n    includeTargets: [{ id: all_users, targetType: group }]\n    excludeTargets: [{ id: Break-glass admins, targetType: group }]\n",
    );
    assert!(notes.contains("ignored at sign-in"), "{notes}");
    assert!(
        notes.contains("unless excluded by group Break-glass admins"),
        "{notes}"
    );
    assert!(
        plan["policy"]["notes"].to_string().contains("1 user"),
        "{plan}"
    );
}

#[test]
fn a_microsoft_managed_state_counts_as_enabled_for_the_ignored_at_sign_in_note() {
    // The policy section touches another part: systemCredentialPreferences stays Graph's
    // default, `state: default` for all users, which Entra documents as enabled.
    let (plan, notes) =
        plan_preferred_change_with("  reportSuspiciousActivity:\n    voiceReportingCode: 7\n");
    assert!(
        notes.contains(
            "leaves system-preferred MFA Microsoft managed (state default), which Entra documents \
             as enabled, for all users"
        ),
        "{notes}"
    );
    assert!(notes.contains("is ignored at sign-in"), "{notes}");
    assert!(
        plan["policy"]["notes"]
            .to_string()
            .contains("Microsoft managed (state default, documented as enabled)"),
        "{plan}"
    );
}

#[test]
fn a_csv_manifest_takes_its_policy_from_a_policy_file() {
    let scenario = Scenario::new(tenant());
    let csv = scenario.write(
        "users.csv",
        "user,preferredMethod,systemPreferred,perUserMfaState\n",
    );
    let policy = scenario.write(
        "policy.yaml",
        &manifest("  systemCredentialPreferences:\n    state: enabled\n"),
    );
    let out = scenario.run(&[
        "plan",
        csv.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["summary"]["policy_writes"], 1, "{plan}");
}

#[test]
fn a_policy_changed_since_the_plan_is_not_written_over() {
    use mfactl::engine;
    use mfactl::graph::{GraphClient, Transport, TransportConfig};
    use mfactl::plan::Status;

    let scenario = Scenario::new(tenant());
    let path = scenario.write(
        "drift.yaml",
        &manifest("  systemCredentialPreferences:\n    state: enabled\n"),
    );
    let manifest = mfactl::manifest::load(&path).unwrap();
    let url = scenario.url();
    let plan = scenario.block_on(async move {
        let config = TransportConfig::new(url.clone(), "test-token-not-a-secret".to_owned().into());
        let client = GraphClient::new(Transport::new(config).unwrap());
        let mut plan = engine::plan(&client, &manifest, 4).await.unwrap();
        // Another admin changes the same sub-object between plan and apply.
        let answer = reqwest::Client::new()
            .patch(format!("{url}/beta/policies/authenticationMethodsPolicy"))
            .bearer_auth("someone-else")
            .json(&serde_json::json!({ "systemCredentialPreferences": {
                "excludeTargets": [{ "id": BREAK_GLASS, "targetType": "group" }] } }))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
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
    let policy = plan.policy.expect("the policy is planned");
    assert_eq!(policy.status, Status::Drifted);
    let error = policy.error.expect("says why");
    assert_eq!(error.code, "changedSincePlan");
    assert!(
        error.message.contains("systemCredentialPreferences"),
        "{}",
        error.message
    );
    // Only the other admin's write reached Graph.
    assert_eq!(scenario.stats().writes, 1);
    let live = live_policy(&scenario);
    assert_eq!(live["systemCredentialPreferences"]["state"], "default");
}

/// A user whose own system-preferred MFA is on, under a policy that enables it for all users,
/// gets one note for the change, not one per reason.
#[test]
fn a_preferred_method_change_carries_one_note_under_both_system_preferred_settings() {
    let (tenant, user) = tenant_moving_to_push(true);
    let scenario = Scenario::new(tenant);
    let path = scenario.write(
        "notes.yaml",
        &format!(
            "version: 1\nusers:\n  - user: {user}\n    preferredMethod: push\npolicy:\n  systemCredentialPreferences:\n    state: enabled\n    includeTargets: [{{ id: all_users, targetType: group }}]\n"
        ),
    );
    let (_, plan) = scenario.plan_json(&path);
    let entry = &plan["users"][0];
    let notes = entry["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{entry}");
    let note = notes[0].as_str().unwrap();
    assert!(
        note.contains(&format!(
            "system-preferred MFA is on for {user}, and the tenant policy enables system-preferred MFA for all users"
        )) && note.contains("the preferred method push is ignored at sign-in"),
        "{note}"
    );
}

/// [`tenant`] whose first user has Authenticator and a phone, prefers sms, and has their own
/// system-preferred MFA on or off; and that user's UPN.
fn tenant_moving_to_push(system_preferred: bool) -> (Tenant, String) {
    let mut tenant = tenant();
    let first = &mut tenant.users[0];
    first.methods = vec![
        mfactl::model::MethodKind::MicrosoftAuthenticator,
        mfactl::model::MethodKind::MobilePhone,
    ];
    let preferences = &mut first.sign_in_preferences;
    preferences.user_preferred_method_for_secondary_authentication =
        Some(mfactl::model::PreferredMethod::Sms);
    preferences.is_system_preferred_authentication_method_enabled = system_preferred;
    let user = first.user_principal_name.clone();
    (tenant, user)
}
