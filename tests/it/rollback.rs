//! `mfactl rollback JOURNAL`: the manifest it writes, planned and applied, returns the emulator's
//! tenant (users and policy) to its state before the journal's runs.

use std::path::Path;

use mfactl::model::{MethodKind, PerUserMfaState, PreferredMethod};
use mfactl_emulator::{EmulatorConfig, Tenant, TenantUser};

use crate::support::{Row, Scenario, mfactl, stderr, to_yaml};

/// A manifest that changes a few dozen users in every way there is: all three fields, only
/// `requirements`, only `signInPreferences`; every fourth user is left alone. Preferred methods
/// change only where one is set (a `null` one cannot be written back).
fn changing_many(tenant: &Tenant) -> Vec<Row> {
    let flip_state = |user: &TenantUser| {
        Some(if user.per_user_mfa_state == PerUserMfaState::Disabled {
            PerUserMfaState::Enforced
        } else {
            PerUserMfaState::Disabled
        })
    };
    let other_method = |user: &TenantUser| {
        let live = user
            .sign_in_preferences
            .user_preferred_method_for_secondary_authentication;
        live?;
        PreferredMethod::usable_with(&user.methods)
            .into_iter()
            .find(|m| Some(*m) != live)
    };
    tenant
        .users
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 != 3)
        .map(|(i, user)| {
            let system_preferred = Some(
                !user
                    .sign_in_preferences
                    .is_system_preferred_authentication_method_enabled,
            );
            let mut row = Row {
                // The journal records the object id either way.
                user: if i % 2 == 0 {
                    user.user_principal_name.clone()
                } else {
                    user.id.clone()
                },
                ..Row::default()
            };
            match i % 4 {
                0 => {
                    row.preferred_method = other_method(user);
                    row.system_preferred = system_preferred;
                    row.per_user_mfa_state = flip_state(user);
                }
                1 => row.per_user_mfa_state = flip_state(user),
                _ => {
                    row.preferred_method = other_method(user);
                    row.system_preferred = system_preferred;
                }
            }
            row
        })
        .collect()
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `apply MANIFEST --auto-approve --journal JOURNAL` plus `extra`; the exit code.
fn apply(scenario: &Scenario, manifest: &Path, journal: &Path, extra: &[&str]) -> i32 {
    let mut args = vec![
        "apply",
        path(manifest),
        "--auto-approve",
        "--journal",
        path(journal),
    ];
    args.extend(extra);
    let out = scenario.run(&args);
    let code = out.status.code().expect("exit code");
    assert!(code == 0 || code == 3, "apply: {code}\n{}", stderr(&out));
    code
}

/// `rollback JOURNAL --out undo.yaml`: the exit code and stderr; the manifest is checked valid.
fn rollback(scenario: &Scenario, journal: &Path) -> (i32, String, String) {
    let undo = scenario.dir.path().join("undo.yaml");
    let out = mfactl()
        .current_dir(scenario.dir.path())
        .args(["rollback", path(journal), "--out", path(&undo)])
        .output()
        .unwrap();
    let code = out.status.code().expect("exit code");
    let manifest = std::fs::read_to_string(&undo).expect("undo.yaml written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&undo).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let validate = mfactl().args(["validate", path(&undo)]).output().unwrap();
    assert_eq!(
        validate.status.code(),
        Some(0),
        "{}\n{manifest}",
        stderr(&validate)
    );
    (code, stderr(&out), manifest)
}

/// Applies undo.yaml; it must converge.
fn apply_undo(scenario: &Scenario) {
    let undo = scenario.dir.path().join("undo.yaml");
    let journal = scenario.dir.path().join("undo.jsonl");
    let out = scenario.run(&[
        "apply",
        path(&undo),
        "--auto-approve",
        "--journal",
        path(&journal),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn assert_same_users(now: &Tenant, before: &Tenant) {
    assert_eq!(now.users.len(), before.users.len());
    for (now, before) in now.users.iter().zip(&before.users) {
        assert_eq!(now, before, "{} is as it was", before.user_principal_name);
    }
}

#[test]
fn rollback_after_a_full_apply_restores_every_user_exactly() {
    let scenario = Scenario::new(Tenant::generate(48, 21));
    let original = scenario.tenant();
    let rows = changing_many(&original);
    let manifest = scenario.write("desired.yaml", &to_yaml(&rows));
    let journal = scenario.dir.path().join("journal.jsonl");
    assert_eq!(apply(&scenario, &manifest, &journal, &[]), 0);
    let changed = scenario.tenant();
    let differing = changed
        .users
        .iter()
        .zip(&original.users)
        .filter(|(a, b)| a != b)
        .count();
    assert!(differing >= 30, "the apply changed {differing} users");

    let (code, err, undo) = rollback(&scenario, &journal);
    assert_eq!(code, 0, "{err}\n{undo}");
    assert!(
        err.contains(&format!("restores {differing} users")),
        "{err}"
    );
    assert!(err.contains("run 1: started"), "{err}");
    assert!(undo.starts_with("# Written by `mfactl rollback`"), "{undo}");
    // Users by object id, with the name the manifest gave as a comment.
    let first = &original.users[0];
    assert!(
        undo.contains(&format!(
            "  - user: \"{}\"  # \"{}\"",
            first.id, first.user_principal_name
        )),
        "{undo}"
    );

    apply_undo(&scenario);
    assert_same_users(&scenario.tenant(), &original);
}

#[test]
fn rollback_after_a_partial_apply_restores_exactly_what_was_changed() {
    // One PATCH in three fails, and apply may not retry: some writes fail, the rest land.
    let config = EmulatorConfig {
        write_fail_rate: 0.3,
        seed: 5,
        ..EmulatorConfig::default()
    };
    let scenario = Scenario::with_config(Tenant::generate(40, 8), config);
    let original = scenario.tenant();
    let manifest = scenario.write("desired.yaml", &to_yaml(&changing_many(&original)));
    let journal = scenario.dir.path().join("journal.jsonl");
    let code = apply(&scenario, &manifest, &journal, &["--max-attempts", "1"]);
    assert_eq!(code, 3, "some writes failed");
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains(r#""ok":false"#), "{text}");
    // The run is also cut short: the last write's answer and the finish line are lost, as
    // when a run is killed. The write was made; rollback must still restore it.
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.pop().unwrap().contains(r#""event":"finish""#));
    let last_ok = lines
        .iter()
        .rposition(|l| l.contains(r#""event":"result""#) && l.contains(r#""ok":true"#))
        .expect("some write landed");
    lines.remove(last_ok);
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();

    let (code, err, undo) = rollback(&scenario, &journal);
    assert_eq!(code, 0, "{err}\n{undo}");
    assert!(err.contains("1 write has no answer recorded"), "{err}");
    assert!(undo.contains("unsettled"), "{undo}");
    assert!(err.contains("failed write"), "{err}");

    apply_undo(&scenario);
    assert_same_users(&scenario.tenant(), &original);
}

fn live_policy(scenario: &Scenario) -> serde_json::Value {
    let url = scenario.url();
    let mut policy: serde_json::Value = scenario.block_on(async move {
        reqwest::Client::new()
            .get(format!("{url}/beta/policies/authenticationMethodsPolicy"))
            .bearer_auth("test-token-not-a-secret")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    // Every write stamps it anew.
    policy
        .as_object_mut()
        .unwrap()
        .remove("lastModifiedDateTime");
    policy
}

#[test]
fn rollback_restores_the_policy() {
    let mut tenant = Tenant::generate(3, 7);
    tenant.groups = serde_json::from_value(serde_json::json!([
        { "id": "5d1b6c1e-0000-4000-8000-000000000002", "displayName": "Break-glass admins", "members": [] },
    ]))
    .unwrap();
    let scenario = Scenario::new(tenant);
    let original = live_policy(&scenario);
    let original_users = scenario.tenant();
    let manifest = scenario.write(
        "policy.yaml",
        "version: 1\npolicy:\n  systemCredentialPreferences:\n    state: enabled\n    \
         excludeTargets: [{ id: Break-glass admins, targetType: group }]\n  \
         registrationCampaign:\n    state: enabled\n    snoozeDurationInDays: 3\n    \
         includeTargets: [{ id: all_users, targetType: group, targetedAuthenticationMethod: Fido2 }]\n  \
         reportSuspiciousActivity:\n    voiceReportingCode: 7\n",
    );
    let journal = scenario.dir.path().join("journal.jsonl");
    assert_eq!(apply(&scenario, &manifest, &journal, &[]), 0);
    assert_ne!(live_policy(&scenario), original);

    let (code, err, undo) = rollback(&scenario, &journal);
    assert_eq!(code, 0, "{err}\n{undo}");
    assert!(err.contains("the authentication methods policy"), "{err}");
    assert!(
        undo.contains("policy:\n  systemCredentialPreferences:\n"),
        "{undo}"
    );
    assert!(undo.contains("users: []"), "{undo}");

    apply_undo(&scenario);
    assert_eq!(live_policy(&scenario), original);
    assert_same_users(&scenario.tenant(), &original_users);
}

#[test]
fn a_null_preferred_method_is_reported_and_the_rest_is_restored() {
    let mut tenant = Tenant::generate(6, 3);
    let nobody = &mut tenant.users[0];
    nobody.methods = vec![MethodKind::MicrosoftAuthenticator];
    nobody
        .sign_in_preferences
        .user_preferred_method_for_secondary_authentication = None;
    nobody.per_user_mfa_state = PerUserMfaState::Enforced;
    let (id, upn) = (nobody.id.clone(), nobody.user_principal_name.clone());
    let scenario = Scenario::new(tenant);
    let original = scenario.tenant();
    let mut rows = changing_many(&original);
    rows[0].preferred_method = Some(PreferredMethod::Push);
    let manifest = scenario.write("desired.yaml", &to_yaml(&rows));
    let journal = scenario.dir.path().join("journal.jsonl");
    assert_eq!(apply(&scenario, &manifest, &journal, &[]), 0);

    let (code, err, undo) = rollback(&scenario, &journal);
    assert_eq!(code, 3, "{err}\n{undo}");
    let named = format!("user \"{upn}\" (\"{id}\"): preferredMethod null");
    assert!(err.contains(&format!("cannot restore {named}")), "{err}");
    assert!(undo.contains(&format!("#   {named}")), "{undo}");

    apply_undo(&scenario);
    let now = scenario.tenant();
    // Everything but that one value is as it was.
    let mut expected = original.clone();
    expected.users[0]
        .sign_in_preferences
        .user_preferred_method_for_secondary_authentication = Some(PreferredMethod::Push);
    assert_same_users(&now, &expected);
}

#[test]
fn a_file_that_is_not_a_journal_is_refused() {
    let scenario = Scenario::new(Tenant::generate(1, 1));
    let file = scenario.write("notes.jsonl", "{\"time\":\"t\",\"event\":\"finish\"}\n");
    let out = mfactl().args(["rollback", path(&file)]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not an mfactl journal"),
        "{}",
        stderr(&out)
    );
}
