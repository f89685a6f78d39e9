//! Blast-radius guards: `protect:` keeps accounts from any write, `maxChanges:` and
//! `apply --max-changes` refuse a plan bigger than the run may make.

use mfactl_emulator::{Tenant, TenantUser};
use serde_json::Value;

use crate::support::{Row, Scenario, manifest_changing_everyone, mfactl, stderr, stdout, to_yaml};

/// A manifest changing both endpoints of every user (named by object id), with the top-level
/// keys `head` (e.g. `protect:`) before `users:`.
fn manifest_with(head: &str, rows: &[Row]) -> String {
    to_yaml(rows).replacen("version: 1\n", &format!("version: 1\n{head}"), 1)
}

fn user<'a>(tenant: &'a Tenant, id: &str) -> &'a TenantUser {
    tenant
        .users
        .iter()
        .find(|u| u.id == id)
        .expect("in the tenant")
}

fn status_of<'a>(plan: &'a Value, user: &str) -> Option<&'a str> {
    plan["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == user)
        .and_then(|u| u["status"].as_str())
}

#[test]
fn protected_accounts_are_listed_and_never_written_however_they_are_named() {
    let tenant = Tenant::generate(12, 31);
    let before = tenant.clone();
    let mut rows = manifest_changing_everyone(&tenant);
    let [a, b, c, d] = [0, 1, 2, 3].map(|i| tenant.users[i].clone());
    // a: the entry names the object id, protect names the UPN (in another case).
    // b: both name the UPN, in different cases.
    rows[1].user = b.user_principal_name.to_uppercase();
    // c: the entry names the UPN, protect names the object id.
    rows[2].user = c.user_principal_name.clone();
    // d: in sync, and still listed as protected.
    rows[3].system_preferred = Some(
        d.sign_in_preferences
            .is_system_preferred_authentication_method_enabled,
    );
    rows[3].per_user_mfa_state = Some(d.per_user_mfa_state);
    let head = format!(
        "protect:\n  - \"{}\"\n  - \"{}\"\n  - {}\n  - {}\n  - ghost@contoso.com\n",
        a.user_principal_name.to_uppercase(),
        b.user_principal_name,
        c.id,
        d.id
    );
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &manifest_with(&head, &rows));
    let path = yaml.to_str().unwrap();

    let out = mfactl().args(["validate", path]).output().unwrap();
    assert!(
        stdout(&out).contains("protect: 5 accounts never written"),
        "{}",
        stdout(&out)
    );

    let (code, plan) = scenario.plan_json(&yaml);
    assert_eq!(code, 2, "{plan}");
    for (row, name) in [
        (&rows[0], "a"),
        (&rows[1], "b"),
        (&rows[2], "c"),
        (&rows[3], "d"),
    ] {
        assert_eq!(
            status_of(&plan, &row.user),
            Some("protected"),
            "{name}: {plan}"
        );
    }
    let a_entry = plan["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == rows[0].user)
        .unwrap();
    assert_eq!(a_entry["fields"].as_array().unwrap().len(), 2, "shown");
    assert_eq!(a_entry["writes"], serde_json::json!([]), "never written");
    let others = rows.len() as u64 - 4;
    assert_eq!(plan["summary"]["protected"], 4);
    assert_eq!(plan["summary"]["writes"], 2 * others);
    assert_eq!(plan["summary"]["to_change"], others);

    let text_plan = scenario.run(&["plan", path]);
    let text = stdout(&text_plan);
    assert!(
        text.contains(&format!("  # {} (protected: never written)", rows[0].user)),
        "{text}"
    );
    assert!(text.contains(", 4 protected (never written)."), "{text}");
    assert!(
        stderr(&text_plan).contains("protect: Graph does not know ghost@contoso.com"),
        "{}",
        stderr(&text_plan)
    );

    let writes_before = scenario.stats().writes;
    let out = scenario.run(&["apply", path, "--auto-approve"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "protected is converged: {}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(", 4 protected (never written)."),
        "{}",
        stdout(&out)
    );
    assert_eq!(scenario.stats().writes - writes_before, 2 * others);
    let after = scenario.tenant();
    for protected in [&a, &b, &c, &d] {
        assert_eq!(user(&after, &protected.id), protected, "never written");
    }
    for row in &rows[4..] {
        assert_ne!(user(&after, &row.user), user(&before, &row.user), "written");
    }
}

#[test]
fn apply_refuses_a_plan_with_more_writes_than_max_changes_and_writes_nothing() {
    let tenant = Tenant::generate(5, 32);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let path = yaml.to_str().unwrap();
    let writes = 2 * rows.len();

    let over = (writes - 1).to_string();
    let out = scenario.run(&["apply", path, "--auto-approve", "--max-changes", &over]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "the plan has {writes} writes, more than the limit of {over} (--max-changes); \
             nothing was written"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("--max-changes {writes}")), "{err}");
    assert_eq!(scenario.stats().writes, 0);

    // The manifest's maxChanges is smaller than the flag: it wins.
    let limited = scenario.write(
        "limited.yaml",
        &manifest_with(&format!("maxChanges: {}\n", writes - 2), &rows),
    );
    let limited_path = limited.to_str().unwrap();
    let plan = scenario.run(&["plan", limited_path]);
    assert!(
        stderr(&plan).contains(&format!(
            "this plan has {writes} writes, more than the manifest's maxChanges of {}",
            writes - 2
        )),
        "plan warns before apply: {}",
        stderr(&plan)
    );
    let out = scenario.run(&[
        "apply",
        limited_path,
        "--auto-approve",
        "--max-changes",
        &writes.to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "more than the limit of {} (the manifest's maxChanges)",
            writes - 2
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(scenario.stats().writes, 0);

    // A limit equal to the plan's writes applies.
    let exact = writes.to_string();
    let out = scenario.run(&["apply", path, "--auto-approve", "--max-changes", &exact]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(scenario.stats().writes, writes as u64);
}

#[test]
fn a_saved_plan_keeps_the_manifest_max_changes() {
    let tenant = Tenant::generate(4, 33);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let writes = 2 * rows.len();
    let yaml = scenario.write(
        "desired.yaml",
        &manifest_with(&format!("maxChanges: {}\n", writes - 1), &rows),
    );
    let saved = scenario.dir.path().join("plan.json");
    let out = scenario.run(&[
        "plan",
        yaml.to_str().unwrap(),
        "--out",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let document: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(document["max_changes"], writes as u64 - 1);

    let out = scenario.run(&["apply", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "the plan has {writes} writes, more than the limit of {} (the manifest's \
             maxChanges); nothing was written",
            writes - 1
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(scenario.stats().writes, 0);
}

#[test]
fn bad_protect_and_max_changes_values_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("guards.yaml");
    std::fs::write(
        &manifest,
        "version: 1\nprotect:\n  - breakglass@contoso.com\n  - megan@contoso\n  - ''\n  - 42\n  \
         - [a@x.com]\n  - BREAKGLASS@contoso.com\n  - \"adele\\u202Emoc@contoso.com\"\n\
         maxChanges: -5\nusers:\n  - user: megan@contoso.com\n    preferredMethod: push\n",
    )
    .unwrap();
    let out = mfactl()
        .current_dir(dir.path())
        .args(["validate", "guards.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("bad_protect_and_max_changes", stderr(&out));

    std::fs::write(
        &manifest,
        "version: 1\nprotect: breakglass@contoso.com\nmaxChanges: \"500\"\nusers: []\n",
    )
    .unwrap();
    let out = mfactl()
        .current_dir(dir.path())
        .args(["validate", "guards.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("protect_not_a_list_and_max_changes_quoted", stderr(&out));
}
