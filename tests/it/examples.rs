//! The examples, through `--emulate`: the README's first command, the CSV twin of the YAML, the
//! migration guide's pilot wave. (Every command the docs show runs in `docs.rs`.)

use crate::support::{mfactl, stderr, stdout};

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn readme_quick_start_plan_is_correct() {
    let out = mfactl()
        .args([
            "plan",
            &example("desired.yaml"),
            "--emulate",
            &example("tenant.yaml"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The emulator's port changes every run.
    let text = stdout(&out);
    let text = redact_request_ids(&regex_lite_replace_url(&text));
    insta::assert_snapshot!("example_plan", text);
}

#[test]
fn example_csv_plans_like_the_yaml() {
    let run = |manifest: &str| {
        let out = mfactl()
            .args([
                "plan",
                &example(manifest),
                "--emulate",
                &example("tenant.yaml"),
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        let mut doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["graph"] = serde_json::Value::Null;
        for user in doc["users"].as_array_mut().unwrap() {
            if user["error"].is_object() {
                user["error"]["request_id"] = serde_json::Value::Null; // fresh per request
            }
        }
        crate::support::comparable(doc)
    };
    assert_eq!(run("desired.csv"), run("desired.yaml"));
}

/// Replaces `http://127.0.0.1:PORT` with `http://127.0.0.1:PORT` literally.
fn regex_lite_replace_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("http://127.0.0.1:") {
        out.push_str(&rest[..at]);
        out.push_str("http://127.0.0.1:PORT");
        rest = &rest[at + "http://127.0.0.1:".len()..];
        rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// Request ids are fresh GUIDs on every run.
fn redact_request_ids(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("(request-id ") {
            Some(at) => format!("{}(request-id [redacted])", &line[..at]),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_migration_walkthrough_plans_the_policy_and_the_users() {
    let out = mfactl()
        .args([
            "plan",
            &example("migrate.yaml"),
            "--emulate",
            &example("tenant.yaml"),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(plan["summary"]["policy_writes"], 1, "{plan}");
    assert_eq!(plan["summary"]["to_change"], 3, "{plan}");
    assert_eq!(plan["summary"]["in_sync"], 1, "{plan}");
    // Everyone it takes off per-user MFA is covered by "Require MFA for staff".
    assert_eq!(plan["summary"]["mfa_coverage"]["covered"], 3, "{plan}");
    // The walkthrough then looks at the user left out of Authenticator.
    let out = mfactl()
        .args([
            "show",
            "lee.gu@contoso.com",
            "--emulate",
            &example("tenant.yaml"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "push                     not usable: Microsoft Authenticator is not registered"
        ),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("MFA coverage           covered by \"Require MFA for staff\""),
        "{}",
        stdout(&out)
    );
}
