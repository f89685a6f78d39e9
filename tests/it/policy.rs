//! The manifest's `policy:` section: validation before any request, then plan and apply of the
//! tenant's authentication methods policy against the emulator.

use mfactl::emulator::Tenant;

use crate::support::{Scenario, mfactl, stderr};

/// A tenant with two groups, one of them named twice.
fn tenant() -> Tenant {
    let mut tenant = Tenant::generate(3, 7);
    tenant.groups = serde_yaml_groups();
    tenant
}

fn serde_yaml_groups() -> Vec<mfactl::emulator::Group> {
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
