//! One set of categories, each user counted once: the text plan's `Plan:` line, the JSON
//! summary, and the markdown and HTML reports give the same counts, and they add up to the
//! manifest's users, also when blocked users have other fields to write.

use mfactl::model::{MethodKind, PerUserMfaState, PreferredMethod};
use mfactl_emulator::Tenant;
use serde_json::Value;

use crate::support::{Row, Scenario, manifest_for, stderr, stdout, to_yaml};

/// The categories a plan can hold, with their JSON keys and the labels the reports use.
const CATEGORIES: [(&str, &str); 6] = [
    ("to_change", "to change"),
    ("in_sync", "in sync"),
    ("blocked", "blocked"),
    ("not_found", "not found"),
    ("failed", "failed"),
    ("protected", "protected"),
];

/// A generated tenant whose first eight users have only a phone: asking them for push blocks
/// them, and the manifest changes their per-user state too (blocked users with other changes).
fn scenario() -> (Scenario, std::path::PathBuf) {
    let mut tenant = Tenant::generate(80, 29);
    for user in tenant.users.iter_mut().take(8) {
        user.methods = vec![MethodKind::MobilePhone];
        user.sign_in_preferences
            .user_preferred_method_for_secondary_authentication = Some(PreferredMethod::Sms);
        user.per_user_mfa_state = PerUserMfaState::Enforced;
    }
    let rest = Tenant {
        users: tenant.users[8..].to_vec(),
        ..tenant.clone()
    };
    let (mut rows, _) = manifest_for(&rest, true);
    for (n, user) in tenant.users.iter().take(8).enumerate() {
        rows.push(Row {
            user: user.id.clone(),
            preferred_method: Some(PreferredMethod::Push),
            // Six of the eight also change their per-user state.
            per_user_mfa_state: Some(if n < 6 {
                PerUserMfaState::Disabled
            } else {
                PerUserMfaState::Enforced
            }),
            ..Row::default()
        });
    }
    rows.push(Row {
        user: "ghost@contoso.com".into(),
        per_user_mfa_state: Some(PerUserMfaState::Disabled),
        ..Row::default()
    });
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    (scenario, yaml)
}

/// The number leading each of the `Plan:` line's comma-separated counts, by its label.
fn plan_line_counts(line: &str) -> Vec<(String, u64)> {
    let body = line
        .strip_prefix("Plan: ")
        .and_then(|l| l.split('.').next())
        .unwrap_or_else(|| panic!("{line}"));
    body.split(", ")
        .map(|part| {
            let (number, rest) = part.split_once(' ').unwrap();
            let label = rest.split(" (").next().unwrap();
            let label = label
                .trim_start_matches("users ")
                .trim_start_matches("user ");
            (label.to_owned(), number.parse().unwrap())
        })
        .collect()
}

#[test]
fn the_plan_line_json_markdown_and_html_count_each_user_once_and_agree() {
    let (scenario, yaml) = scenario();
    let md = scenario.dir.path().join("drift.md");
    let html = scenario.dir.path().join("drift.html");
    let json = scenario.dir.path().join("drift.json");
    let out = scenario.run(&[
        "plan",
        yaml.to_str().unwrap(),
        "--report",
        md.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
        "--report",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let summary = &doc["summary"];
    let users = summary["users"].as_u64().unwrap();
    assert_eq!(users, 80 - 8 + 8 + 1);
    assert_eq!(summary["blocked_with_writes"], 6, "{summary}");
    assert!(summary["blocked"].as_u64().unwrap() > 8, "{summary}");

    // The text: the opening and closing Plan: lines, each count once, summing to the users.
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("Plan: ")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], lines[1]);
    assert!(
        lines[0].contains(" blocked (6 with other changes)"),
        "{}",
        lines[0]
    );
    let counts = plan_line_counts(lines[0]);
    assert_eq!(
        counts.iter().map(|(_, n)| n).sum::<u64>(),
        users,
        "{}",
        lines[0]
    );
    let markdown = std::fs::read_to_string(&md).unwrap();
    let page = std::fs::read_to_string(&html).unwrap();
    let mut total = 0;
    for (key, label) in CATEGORIES {
        let expected = summary[key].as_u64().unwrap_or(0);
        total += expected;
        let in_line = counts
            .iter()
            .find(|(l, _)| l == label)
            .map_or(0, |(_, n)| *n);
        assert_eq!(in_line, expected, "{key} in {}", lines[0]);
        if expected > 0 {
            assert!(
                markdown.contains(&format!("| {label} | {expected} |")),
                "{key}: {markdown}"
            );
            assert!(
                page.contains(&format!(
                    "<div class=\"card {key}\"><div class=\"count\">{expected}</div>"
                )),
                "{key}: {page}"
            );
        }
    }
    assert_eq!(total, users, "{summary}");
    assert!(
        markdown.contains(&format!("| **total** | **{users}** |")),
        "{markdown}"
    );
    // Every listed user is counted in its status's category.
    let listed = doc["users"].as_array().unwrap();
    for (key, _) in CATEGORIES.iter().filter(|(key, _)| *key != "in_sync") {
        let status = if *key == "to_change" { "change" } else { key };
        let n = listed.iter().filter(|u| u["status"] == status).count() as u64;
        assert_eq!(n, summary[*key].as_u64().unwrap_or(0), "{key}");
    }
}
