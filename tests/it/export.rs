//! `mfactl export` (issue 10): the live state written as a manifest whose plan is empty, or as a
//! tenant file that serves the same state again, through the binary against the emulator.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use mfactl::model::MethodKind;
use mfactl_emulator::{EmulatorConfig, Group, Tenant};

use crate::support::{Scenario, stderr};

/// A generated tenant (null preferred methods, guests, disabled accounts) with users whose
/// names need care in a URL or a spreadsheet, and nested groups: "MFA Pilot" holds "Nested",
/// which holds "Deeper", which holds "MFA Pilot" again (a cycle).
fn tenant() -> Tenant {
    let mut tenant = Tenant::generate(3_000, 10);
    for (index, upn) in [
        (1, "-dash@contoso.onmicrosoft.com"),
        (2, "$dollar@contoso.onmicrosoft.com"),
        (3, "o'brien@contoso.onmicrosoft.com"),
        (4, "=sum@contoso.onmicrosoft.com"),
    ] {
        tenant.users[index].user_principal_name = upn.to_owned();
    }
    let pilot = tenant.groups[0].id.clone();
    let ids: Vec<String> = tenant.users.iter().map(|u| u.id.clone()).collect();
    let nested = "5d1b6c1e-0000-4000-8000-00000000aaaa".to_owned();
    let deeper = "5d1b6c1e-0000-4000-8000-00000000bbbb".to_owned();
    tenant.groups[0].members.push(nested.clone());
    tenant.groups.push(Group {
        id: nested,
        display_name: Some("Nested".into()),
        members: ids[10..40]
            .iter()
            .cloned()
            .chain([deeper.clone()])
            .collect(),
    });
    tenant.groups.push(Group {
        id: deeper,
        display_name: Some("Deeper".into()),
        members: vec![ids[1].clone(), ids[2000].clone(), pilot],
    });
    tenant
}

/// An emulator without throttling: these tests are about what is written, and several reads of
/// the same few thousand users would otherwise wait for Graph's quota.
fn unthrottled(tenant: Tenant) -> Scenario {
    let config = EmulatorConfig {
        throttle: false,
        ..EmulatorConfig::default()
    };
    Scenario::with_config(tenant, config)
}

fn export(scenario: &Scenario, args: &[&str]) -> String {
    let out = scenario.run(&[&["export"], args].concat());
    assert!(out.status.success(), "export failed: {}", stderr(&out));
    stderr(&out)
}

fn read(scenario: &Scenario, name: &str) -> String {
    std::fs::read_to_string(scenario.dir.path().join(name)).unwrap()
}

/// The users a manifest names, as written.
fn manifest_users(path: &Path) -> Vec<String> {
    mfactl::manifest::load(path)
        .unwrap()
        .users
        .iter()
        .map(|u| u.user.to_string())
        .collect()
}

#[test]
fn an_exported_manifest_plans_no_change_in_yaml_and_csv() {
    let tenant = tenant();
    let without_preferred = tenant
        .users
        .iter()
        .filter(|u| {
            u.sign_in_preferences
                .user_preferred_method_for_secondary_authentication
                .is_none()
        })
        .count();
    assert!(
        without_preferred > 100,
        "the tenant has null preferred methods"
    );
    assert!(tenant.users.iter().any(|u| !u.account_enabled));
    let scenario = unthrottled(tenant.clone());
    for name in ["live.yaml", "live.csv"] {
        let said = export(&scenario, &["--out", name]);
        assert!(said.contains("Exported 3,000 users"), "{said}");
        let path = scenario.dir.path().join(name);
        assert_eq!(manifest_users(&path).len(), 3_000, "{name}");
        let (code, plan) = scenario.plan_json(&path);
        assert_eq!(code, 0, "{name}: {plan}");
        assert_eq!(plan["summary"]["in_sync"], 3_000, "{name}");
        let preferred = mfactl::manifest::load(&path)
            .unwrap()
            .users
            .iter()
            .filter(|u| u.preferred_method.is_some())
            .count();
        assert_eq!(
            preferred,
            3_000 - without_preferred,
            "{name}: a null preferred method is left out"
        );
    }
    // A UPN a spreadsheet would run as a formula goes into the CSV by object id; YAML keeps it.
    let csv = read(&scenario, "live.csv");
    assert!(
        !csv.lines().any(|l| l.starts_with(['=', '+', '-', '@'])),
        "{csv}"
    );
    assert!(csv.contains(&format!("\n{},", tenant.users[1].id)));
    assert!(read(&scenario, "live.yaml").contains("user: \"-dash@contoso.onmicrosoft.com\""));
    assert_eq!(
        std::fs::read_dir(scenario.dir.path()).unwrap().count(),
        2,
        "no temporary file is left"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(scenario.dir.path().join("live.csv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// The users in `group`, directly or through nested groups, by the tenant file's rule.
fn transitive_users(tenant: &Tenant, group: &str) -> BTreeSet<String> {
    let groups: HashMap<&str, &Group> = tenant.groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let mut seen = BTreeSet::from([group.to_owned()]);
    let mut users = BTreeSet::new();
    let mut frontier = vec![group.to_owned()];
    while let Some(id) = frontier.pop() {
        for member in &groups[id.as_str()].members {
            if groups.contains_key(member.as_str()) {
                if seen.insert(member.clone()) {
                    frontier.push(member.clone());
                }
            } else {
                users.insert(member.clone());
            }
        }
    }
    users
}

#[test]
fn a_group_export_holds_exactly_its_transitive_members() {
    let tenant = tenant();
    let pilot = tenant.groups[0].clone();
    let expected = transitive_users(&tenant, &pilot.id);
    assert!(expected.len() > 100);
    let by_upn: HashMap<String, String> = tenant
        .users
        .iter()
        .map(|u| (u.user_principal_name.clone(), u.id.clone()))
        .collect();
    let scenario = unthrottled(tenant);
    export(&scenario, &["--group", "MFA Pilot", "--out", "pilot.yaml"]);
    export(
        &scenario,
        &["--group", &pilot.id, "--out", "pilot-by-id.yaml"],
    );
    assert_eq!(
        read(&scenario, "pilot.yaml"),
        read(&scenario, "pilot-by-id.yaml")
    );
    let exported: BTreeSet<String> = manifest_users(&scenario.dir.path().join("pilot.yaml"))
        .into_iter()
        .map(|user| by_upn.get(&user).cloned().unwrap_or(user))
        .collect();
    assert_eq!(exported, expected);
    let (code, plan) = scenario.plan_json(&scenario.dir.path().join("pilot.yaml"));
    assert_eq!(code, 0, "{plan}");

    let out = scenario.run(&["export", "--group", "No Such Group", "--out", "none.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no group is named No Such Group"),
        "{}",
        stderr(&out)
    );
    assert!(!scenario.dir.path().join("none.yaml").exists());
}

#[test]
fn a_users_file_exports_those_users_once_and_names_the_missing() {
    let tenant = tenant();
    let scenario = unthrottled(tenant.clone());
    let first = &tenant.users[0];
    let list = scenario.write(
        "users.txt",
        &format!(
            "# the pilot\n{}\n\n{}\n{}\nnobody@contoso.onmicrosoft.com\n",
            first.user_principal_name, tenant.users[7].id, first.id
        ),
    );
    let out = scenario.run(&[
        "export",
        "--users",
        list.to_str().unwrap(),
        "--out",
        "some.csv",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 not found, not exported: nobody@contoso.onmicrosoft.com"));
    let users = manifest_users(&scenario.dir.path().join("some.csv"));
    assert_eq!(
        users,
        [
            first.user_principal_name.clone(),
            tenant.users[7].user_principal_name.clone()
        ]
    );
}

#[test]
fn a_tenant_export_serves_the_same_state_and_exports_the_same_bytes() {
    let scenario = unthrottled(tenant());
    export(&scenario, &["--out", "first.yaml"]);
    export(&scenario, &["--as", "tenant", "--out", "copy.yaml"]);
    let copy = scenario.dir.path().join("copy.yaml");
    let loaded = Tenant::load(&copy).expect("the tenant file loads");
    assert_eq!(loaded.users.len(), 3_000);
    assert_eq!(loaded.groups.len(), 4);

    let again = unthrottled(loaded);
    export(&again, &["--out", "first.yaml"]);
    export(&again, &["--as", "tenant", "--out", "copy.yaml"]);
    assert!(
        read(&scenario, "first.yaml") == read(&again, "first.yaml"),
        "the manifest exported from the copy differs"
    );
    assert!(
        read(&scenario, "copy.yaml") == read(&again, "copy.yaml"),
        "the tenant file exported from the copy differs"
    );

    // The emulator answers /authentication/methods with phone numbers (+1 425555....) and
    // e-mail addresses; none reaches an export.
    let methods = scenario.block_on(async {
        let client = reqwest::Client::new();
        let tenant = scenario.tenant();
        let user = &tenant
            .users
            .iter()
            .find(|u| u.methods.contains(&MethodKind::MobilePhone))
            .expect("a user with a phone")
            .id;
        client
            .get(format!(
                "{}/beta/users/{user}/authentication/methods",
                scenario.url()
            ))
            .bearer_auth("t")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(methods.contains("+1 425555"), "{methods}");
    for name in ["first.yaml", "copy.yaml"] {
        let text = read(&scenario, name);
        assert!(
            !text.contains("425555") && !text.contains("phoneNumber"),
            "{name}"
        );
        assert!(!text.contains("@example.com"), "{name}");
    }
}
