//! `mfactl plan` against generated tenants.

use mfactl_emulator::Tenant;
use serde_json::Value;

use crate::support::{Scenario, manifest_for, stderr, stdout, to_csv, to_yaml};

fn check_plan_matches(doc: &Value, expected: &crate::support::Expected, users: u64) {
    let summary = &doc["summary"];
    assert_eq!(doc["format_version"], 1);
    assert_eq!(summary["users"], users);
    assert_eq!(summary["to_change"], expected.to_change, "{summary}");
    assert_eq!(summary["writes"], expected.writes, "{summary}");
    assert_eq!(summary["blocked"], expected.blocked, "{summary}");
    assert_eq!(summary["in_sync"], expected.in_sync, "{summary}");
    assert_eq!(summary["not_found"], 0);
    assert_eq!(summary["failed"], 0);
    let listed = doc["users"].as_array().unwrap();
    assert_eq!(listed.len() as u64, expected.to_change + expected.blocked);
    for entry in listed {
        let user = entry["user"].as_str().unwrap();
        let want = expected
            .fields
            .get(user)
            .unwrap_or_else(|| panic!("{user} should be in sync: {entry}"));
        let got: Vec<&str> = entry["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        assert_eq!(got_sorted, want_sorted, "{user}: {entry}");
        for write in entry["writes"].as_array().unwrap() {
            let body = write["body"].as_object().unwrap();
            let before = write["before"].as_object().unwrap();
            assert!(!body.is_empty());
            assert_eq!(
                body.keys().collect::<Vec<_>>(),
                before.keys().collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn plan_reports_exactly_the_expected_changes_for_yaml_and_csv() {
    let tenant = Tenant::generate(400, 11);
    let (rows, expected) = manifest_for(&tenant, true);
    assert!(
        expected.to_change > 200 && expected.blocked > 5,
        "{expected:?}"
    );
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let csv = scenario.write("desired.csv", &to_csv(&rows));

    let (code, yaml_plan) = scenario.plan_json(&yaml);
    assert_eq!(code, 2, "--detailed-exitcode: changes present");
    check_plan_matches(&yaml_plan, &expected, 400);

    let (code, csv_plan) = scenario.plan_json(&csv);
    assert_eq!(code, 2);
    assert_eq!(
        crate::support::comparable(csv_plan),
        crate::support::comparable(yaml_plan.clone()),
        "CSV and YAML manifests plan identically"
    );

    // A plan only reads.
    let stats = scenario.stats();
    assert_eq!(stats.writes, 0);
    assert!(stats.reads > 0);
}

#[test]
fn text_plan_lists_changes_and_the_summary_line() {
    let tenant = Tenant::generate(60, 3);
    let (rows, expected) = manifest_for(&tenant, true);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario.run(&["plan", yaml.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let summary_line = text
        .lines()
        .find(|line| line.starts_with("Plan: "))
        .unwrap();
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("Applying it makes "),
        "the cost follows the summary: {text}"
    );
    assert_eq!(
        summary_line,
        format!(
            "Plan: {} users to change ({} writes), {} in sync, {} blocked, 0 not found, 0 failed.",
            expected.to_change, expected.writes, expected.in_sync, expected.blocked
        )
    );
    let changed = text.lines().filter(|l| l.starts_with("  ~ ")).count() as u64;
    assert_eq!(changed, expected.to_change);
    assert!(text.contains(" -> "));
    assert!(stderr(&out).contains("Graph: "), "traffic line on stderr");
}

#[test]
fn unknown_user_is_reported_and_the_rest_are_planned() {
    let tenant = Tenant::generate(30, 5);
    let (mut rows, expected) = manifest_for(&tenant, false);
    rows.insert(
        3,
        crate::support::Row {
            user: "ghost@contoso.onmicrosoft.com".into(),
            per_user_mfa_state: Some(mfactl::model::PerUserMfaState::Disabled),
            ..Default::default()
        },
    );
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let (code, doc) = scenario.plan_json(&yaml);
    assert_eq!(code, 2);
    assert_eq!(doc["summary"]["not_found"], 1);
    assert_eq!(doc["summary"]["to_change"], expected.to_change);
    let ghost = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == "ghost@contoso.onmicrosoft.com")
        .expect("ghost listed");
    assert_eq!(ghost["status"], "not_found");
    assert_eq!(ghost["writes"], serde_json::json!([]));
    assert_eq!(ghost["error"]["code"], "Request_ResourceNotFound");
}

#[test]
fn plan_out_writes_the_plan_document() {
    let tenant = Tenant::generate(20, 9);
    let (rows, _) = manifest_for(&tenant, false);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out_path = scenario.dir.path().join("plan.json");
    let out = scenario.run(&[
        "plan",
        yaml.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    assert_eq!(saved["format_version"], 1);
    assert_eq!(saved["graph"], scenario.url());
}

#[test]
fn no_token_is_an_error_before_any_request() {
    let tenant = Tenant::generate(5, 1);
    let (rows, _) = manifest_for(&tenant, false);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario
        .mfactl(&["plan", yaml.to_str().unwrap()])
        .env_remove("MFACTL_ACCESS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("MFACTL_ACCESS_TOKEN"),
        "{}",
        stderr(&out)
    );
    assert_eq!(scenario.stats().requests, 0);
}

#[test]
fn expired_token_stops_the_run_with_advice() {
    let tenant = Tenant::generate(300, 12);
    let (rows, _) = manifest_for(&tenant, false);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario
        .mfactl(&["plan", yaml.to_str().unwrap()])
        .env("MFACTL_ACCESS_TOKEN", "expired-token-for-the-emulator")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("Graph rejected the access token"), "{err}");
    assert!(err.contains("InvalidAuthenticationToken"), "{err}");
    assert!(err.contains("help: get a fresh access token"), "{err}");
    assert!(
        !err.contains("expired-token-for-the-emulator"),
        "the token leaked: {err}"
    );
    // It stopped instead of failing 300 users one by one.
    let sent = scenario.stats().requests;
    assert!(sent < 150, "{sent} requests after the first 401");
    assert!(
        stdout(&out).is_empty(),
        "no plan for a run that could not read"
    );
}

#[test]
fn missing_permission_stops_the_run_naming_the_permissions() {
    let tenant = Tenant::generate(50, 12);
    let (rows, _) = manifest_for(&tenant, false);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario
        .mfactl(&["plan", yaml.to_str().unwrap()])
        .env("MFACTL_ACCESS_TOKEN", "denied-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("Authorization_RequestDenied"), "{err}");
    assert!(err.contains("UserAuthenticationMethod.Read.All"), "{err}");
}

#[test]
fn detailed_exitcode_is_zero_when_nothing_would_be_written() {
    // Only an unknown user: reported, but there is nothing to apply.
    let scenario = Scenario::new(Tenant::generate(5, 3));
    let yaml = scenario.write(
        "desired.yaml",
        "version: 1\nusers:\n  - user: ghost@contoso.onmicrosoft.com\n    perUserMfaState: disabled\n",
    );
    let (code, doc) = scenario.plan_json(&yaml);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["summary"]["not_found"], 1);
    let out = scenario.run(&["plan", yaml.to_str().unwrap()]);
    assert!(
        stdout(&out).contains("\nNo changes to make, but these users need attention:"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn graph_url_over_plain_http_to_another_host_is_refused() {
    let scenario = Scenario::new(Tenant::generate(5, 3));
    let yaml = scenario.write("desired.yaml", "version: 1\nusers: []\n");
    let out = crate::support::mfactl()
        .args([
            "plan",
            yaml.to_str().unwrap(),
            "--graph-url",
            "http://graph.example.com",
        ])
        .env("MFACTL_ACCESS_TOKEN", "test-token-not-a-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unencrypted"), "{}", stderr(&out));
}

/// Graph promotes a per-user `enabled` to `enforced` only for a user with a registered MFA
/// method: for such a user `enforced` is what `enabled` becomes, for one without it is not.
#[test]
fn enabled_is_met_by_enforced_only_for_users_with_an_mfa_method() {
    let tenant = Tenant::from_yaml_str(
        "tenantId: 9c0e5f1a-0000-4000-8000-000000000001\n\
         domain: contoso.onmicrosoft.com\n\
         users:\n\
         - id: 5f7e4c1a-0000-4000-8000-000000000001\n  userPrincipalName: no-methods@contoso.com\n  \
           methods: []\n  perUserMfaState: enforced\n\
         - id: 5f7e4c1a-0000-4000-8000-000000000002\n  userPrincipalName: email-only@contoso.com\n  \
           methods: [email]\n  perUserMfaState: enforced\n\
         - id: 5f7e4c1a-0000-4000-8000-000000000003\n  userPrincipalName: phone@contoso.com\n  \
           methods: [mobilePhone]\n  perUserMfaState: enforced\n\
         - id: 5f7e4c1a-0000-4000-8000-000000000004\n  userPrincipalName: disabled@contoso.com\n  \
           methods: []\n  perUserMfaState: disabled\n",
    )
    .unwrap();
    let scenario = Scenario::new(tenant);
    let manifest = "version: 1\ndefaults:\n  perUserMfaState: enabled\nusers:\n  \
                    - user: no-methods@contoso.com\n  - user: email-only@contoso.com\n  \
                    - user: phone@contoso.com\n  - user: disabled@contoso.com\n";
    let yaml = scenario.write("desired.yaml", manifest);

    let (code, doc) = scenario.plan_json(&yaml);
    assert_eq!(code, 2, "{doc}");
    let changes: Vec<(&str, &Value)> = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["user"].as_str().unwrap(), &u["fields"]))
        .collect();
    let field = |before: &str| serde_json::json!([{"field": "perUserMfaState", "before": before, "after": "enabled"}]);
    assert_eq!(
        changes,
        [
            ("no-methods@contoso.com", &field("enforced")),
            ("email-only@contoso.com", &field("enforced")),
            ("disabled@contoso.com", &field("disabled")),
        ],
        "phone@contoso.com, whom Graph promoted, is in sync"
    );
    assert_eq!(doc["summary"]["in_sync"], 1);
    // Methods are read only where `enforced` meets a wanted `enabled`: three users, not four.
    assert_eq!(doc["summary"]["calls"]["methods"], 3, "{}", doc["summary"]);

    // Applied, the users without a method stay `enabled` (Graph does not promote them), and a
    // second plan finds everyone in sync.
    let out = scenario.run(&["apply", yaml.to_str().unwrap(), "--auto-approve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<crate::support::Row> = ["no-methods", "email-only", "phone", "disabled"]
        .iter()
        .map(|name| crate::support::Row {
            user: format!("{name}@contoso.com"),
            per_user_mfa_state: Some(mfactl::model::PerUserMfaState::Enabled),
            ..Default::default()
        })
        .collect();
    crate::support::assert_converged(&scenario.tenant(), &rows);
    let states: Vec<_> = scenario
        .tenant()
        .users
        .iter()
        .map(|u| u.per_user_mfa_state.as_str())
        .collect();
    assert_eq!(states, ["enabled", "enabled", "enforced", "enabled"]);
    let (code, doc) = scenario.plan_json(&yaml);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["summary"]["in_sync"], 4);
}

/// A plan of thousands of users opens with its whole summary (counts, each kind of change with
/// its users, the grouped reasons, the cost) on the first screen; `--summary` prints only that,
/// and blocked users' advice is grouped unless `--detail` asks for it per user.
#[test]
fn a_large_plan_opens_with_its_whole_summary() {
    let tenant = Tenant::generate(5_000, 71);
    let (rows, expected) = manifest_for(&tenant, true);
    assert!(expected.blocked > 100, "the manifest blocks many users");
    let scenario = Scenario::with_config(
        tenant,
        mfactl_emulator::EmulatorConfig {
            throttle: false,
            ..Default::default()
        },
    );
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario.run(&["plan", yaml.to_str().unwrap()]);
    let text = stdout(&out);
    let first: Vec<&str> = text.lines().take(30).collect();
    let screen = first.join("\n");
    let plan_line = text.lines().find(|l| l.starts_with("Plan: ")).unwrap();
    assert_eq!(first[2], plan_line, "{screen}");
    assert!(
        screen.contains("Changes:") && screen.contains(" \u{2192} "),
        "{screen}"
    );
    assert!(screen.contains("Needs attention:"), "{screen}");
    let blocked_line = first
        .iter()
        .find(|l| l.contains("blocked: ") && l.contains(" not registered \u{2014} "))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(blocked_line.contains(" users (e.g. "), "{blocked_line}");
    assert!(screen.contains("Applying it makes"), "{screen}");
    // The per-user blocks come after, each blocked reason short.
    assert!(text.contains("(--detail says why and what to do)"));
    assert!(
        !text.contains("is not registered for"),
        "no advice paragraph without --detail"
    );
    // No colour codes when stdout is not a terminal.
    assert!(!text.contains('\u{1b}'));

    let summary = stdout(&scenario.run(&["plan", yaml.to_str().unwrap(), "--summary"]));
    assert!(summary.lines().count() <= 30, "{summary}");
    assert!(summary.starts_with(&first[..3].join("\n")), "{summary}");
    assert!(
        !summary.contains("mfactl will make these changes"),
        "{summary}"
    );

    let detail = stdout(&scenario.run(&["plan", yaml.to_str().unwrap(), "--detail"]));
    assert!(!detail.contains("(--detail says why"), "the advice in full");
    assert!(detail.lines().count() > text.lines().count() - 1);
}
