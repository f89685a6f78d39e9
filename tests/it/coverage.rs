//! Conditional Access coverage: a plan that disables per-user MFA holds the users no policy
//! requires MFA for, names the gap, and writes them only when told to.

use mfactl_emulator::{EmulatorConfig, Group, RoleAssignment, Tenant};
use serde_json::{Value, json};

use crate::fault_proxy::{Action, FaultProxy, RequestHead};
use crate::support::{Scenario, stderr, stdout};

const GROUP_A: &str = "5d1b6c1e-0000-4000-8000-0000000000a1";
const ADMINS: &str = "5d1b6c1e-0000-4000-8000-0000000000a2";
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Four users with per-user MFA enforced, ids `...001` to `...004`, UPNs `u1@` to `u4@`.
fn users() -> String {
    let mut out = String::from("users:\n");
    for n in 1..=4 {
        out.push_str(&format!(
            "  - id: 00000000-0000-4000-8000-00000000000{n}\n    userPrincipalName: u{n}@contoso.com\n    \
             methods: [microsoftAuthenticator]\n    perUserMfaState: enforced\n"
        ));
    }
    out
}

fn id(n: u8) -> String {
    format!("00000000-0000-4000-8000-00000000000{n}")
}

/// A tenant of [`users`] with these extra top-level keys (YAML).
fn tenant(extra: &str) -> Tenant {
    let text = format!(
        "tenantId: 9c0e5f1a-0000-4000-8000-000000000001\ndomain: contoso.onmicrosoft.com\n{}{extra}",
        users()
    );
    Tenant::from_yaml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// One policy as the tenant file holds it (Graph's shape, defaults left out).
fn policy(name: &str, state: &str, users: Value, more: Value) -> Value {
    let mut conditions =
        json!({ "users": users, "applications": { "includeApplications": ["All"] } });
    if let Value::Object(more) = more {
        for (key, value) in more {
            conditions[key] = value;
        }
    }
    json!({
        "id": format!("id-{}", name.replace(' ', "-")),
        "displayName": name, "state": state, "conditions": conditions,
        "grantControls": { "operator": "OR", "builtInControls": ["mfa"] }
    })
}

fn with_policies(mut tenant: Tenant, policies: Vec<Value>) -> Tenant {
    tenant.conditional_access_policies = policies;
    tenant
}

/// Group A = {u1, u2}; "MFA for A" enabled; "MFA for all" report-only.
fn group_a_tenant() -> Tenant {
    let mut tenant = with_policies(
        tenant(""),
        vec![
            policy(
                "MFA for A",
                "enabled",
                json!({ "includeGroups": [GROUP_A] }),
                json!({}),
            ),
            policy(
                "MFA for all",
                "enabledForReportingButNotEnforced",
                json!({ "includeUsers": ["All"] }),
                json!({}),
            ),
        ],
    );
    tenant.groups = vec![Group {
        id: GROUP_A.into(),
        display_name: Some("A".into()),
        members: vec![id(1), id(2)],
    }];
    tenant
}

const DISABLE_ALL: &str = "version: 1\ndefaults:\n  perUserMfaState: disabled\nusers:\n  - user: u1@contoso.com\n  \
     - user: u2@contoso.com\n  - user: u3@contoso.com\n  - user: u4@contoso.com\n";

fn user<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == name)
        .unwrap_or_else(|| panic!("{name} is in the plan: {plan}"))
}

fn state_of(tenant: &Tenant, n: u8) -> &'static str {
    tenant
        .users
        .iter()
        .find(|u| u.id == id(n))
        .unwrap()
        .per_user_mfa_state
        .as_str()
}

#[test]
fn users_outside_the_mfa_group_keep_per_user_mfa_with_the_gap_named() {
    let scenario = Scenario::new(group_a_tenant());
    let manifest = scenario.write("disable.yaml", DISABLE_ALL);
    let (code, plan) = scenario.plan_json(&manifest);
    assert_eq!(code, 2, "{plan}");
    let summary = &plan["summary"];
    assert_eq!(
        summary["mfa_coverage"],
        json!({ "covered": 2, "partly_covered": 0, "not_covered": 2, "unknown": 0,
                "held": 2, "allowed": 0 }),
        "{plan}"
    );
    assert_eq!(summary["blocked"], 2);
    assert_eq!(summary["writes"], 2);
    for covered in ["u1@contoso.com", "u2@contoso.com"] {
        let entry = user(&plan, covered);
        assert_eq!(entry["status"], "change");
        assert_eq!(entry["coverage"]["status"], "covered");
        assert_eq!(entry["coverage"]["policies"], json!(["MFA for A"]));
    }
    for held in ["u3@contoso.com", "u4@contoso.com"] {
        let entry = user(&plan, held);
        assert_eq!(entry["status"], "blocked", "{entry}");
        assert_eq!(entry["writes"], json!([]), "nothing is written: {entry}");
        assert_eq!(entry["coverage"]["status"], "not_covered");
        let reason = entry["reason"].as_str().unwrap();
        assert!(
            reason.contains("no Conditional Access policy requires MFA for this user"),
            "{reason}"
        );
        assert!(
            reason.contains("the closest, \"MFA for all\", is report-only"),
            "{reason}"
        );
    }
    // The text plan says it too, grouped in the summary and on each held user.
    let out = scenario.run(&["plan", manifest.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(
        text.contains(
            "MFA once per-user MFA is disabled (4 users): 2 covered, 0 partly covered, 2 not \
             covered, 0 unknown; 2 held (per-user MFA kept)."
        ),
        "{text}"
    );
    assert!(
        text.contains("blocked: per-user MFA kept: not covered: no Conditional Access policy"),
        "{text}"
    );
    assert!(
        text.contains("perUserMfaState: enforced -> disabled (held: not written)"),
        "{text}"
    );
    assert!(
        text.contains("MFA stays required: covered by \"MFA for A\""),
        "{text}"
    );

    // apply writes the covered users only, and exits 3 for the held ones.
    let report = scenario.dir.path().join("report.md");
    let out = scenario.run(&[
        "apply",
        manifest.to_str().unwrap(),
        "--auto-approve",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let tenant = scenario.tenant();
    assert_eq!(
        [1, 2, 3, 4].map(|n| state_of(&tenant, n)),
        ["disabled", "disabled", "enforced", "enforced"]
    );
    let markdown = std::fs::read_to_string(&report).unwrap();
    assert!(
        markdown.contains("2 held \\(per-user MFA kept\\)"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| per-user MFA kept: not covered: no Conditional Access policy"),
        "{markdown}"
    );
}

#[test]
fn allow_mfa_gap_writes_them_and_says_so_in_the_plan_journal_and_report() {
    let scenario = Scenario::new(group_a_tenant());
    let manifest = scenario.write("disable.yaml", DISABLE_ALL);
    let journal = scenario.dir.path().join("run.jsonl");
    let report = scenario.dir.path().join("report.csv");
    let out = scenario.run(&[
        "apply",
        manifest.to_str().unwrap(),
        "--auto-approve",
        "--allow-mfa-gap",
        "--journal",
        journal.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tenant = scenario.tenant();
    assert_eq!([1, 2, 3, 4].map(|n| state_of(&tenant, n)), ["disabled"; 4]);
    let applied: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(applied["allow_mfa_gap"], true);
    assert_eq!(applied["summary"]["mfa_coverage"]["allowed"], 2);
    assert_eq!(applied["summary"]["mfa_coverage"]["held"], 0);
    let note = user(&applied, "u3@contoso.com")["notes"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        note.starts_with("per-user MFA is disabled anyway (--allow-mfa-gap): not covered"),
        "{note}"
    );
    let lines: Vec<Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let gaps: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "intent" && l["mfa_gap"].is_string())
        .collect();
    assert_eq!(gaps.len(), 2, "{lines:?}");
    assert!(gaps.iter().all(|l| {
        l["mfa_gap"]
            .as_str()
            .unwrap()
            .starts_with("not covered: no Conditional Access policy")
    }));
    let csv = std::fs::read_to_string(&report).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",reason,mfa_coverage"),
        "{csv}"
    );
    assert!(
        csv.contains("u1@contoso.com") && csv.contains("covered by \"\"MFA for A\"\""),
        "{csv}"
    );

    // The manifest's allowMfaGap: true does the same; a CSV manifest takes the flag.
    let fresh = Scenario::new(group_a_tenant());
    let allowing = fresh.write("allow.yaml", &format!("allowMfaGap: true\n{DISABLE_ALL}"));
    let (_, plan) = fresh.plan_json(&allowing);
    assert_eq!(plan["summary"]["mfa_coverage"]["allowed"], 2, "{plan}");
    let csv_manifest = fresh.write(
        "disable.csv",
        "user,perUserMfaState\nu1@contoso.com,disabled\nu3@contoso.com,disabled\n",
    );
    let (_, held) = fresh.plan_json(&csv_manifest);
    assert_eq!(held["summary"]["mfa_coverage"]["held"], 1, "{held}");
    let out = fresh.run(&[
        "plan",
        csv_manifest.to_str().unwrap(),
        "--allow-mfa-gap",
        "--format",
        "json",
    ]);
    let allowed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        allowed["summary"]["mfa_coverage"]["allowed"], 1,
        "{allowed}"
    );
}

#[test]
fn a_saved_plan_keeps_its_decision_and_refuses_the_flag() {
    let scenario = Scenario::new(group_a_tenant());
    let manifest = scenario.write("disable.yaml", DISABLE_ALL);
    let saved = scenario.save_plan(&manifest);
    let out = scenario.run(&["apply", saved.to_str().unwrap(), "--allow-mfa-gap"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--allow-mfa-gap is decided when a plan is made"),
        "{}",
        stderr(&out)
    );
    assert_eq!(scenario.stats().writes, 0);
    // Applied as reviewed: the held users stay held.
    let out = scenario.run(&["apply", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(state_of(&scenario.tenant(), 3), "enforced");
    assert_eq!(state_of(&scenario.tenant(), 1), "disabled");
}

#[test]
fn security_defaults_on_cover_everyone_for_two_reads() {
    let scenario = Scenario::new(tenant("securityDefaults: true\n"));
    let manifest = scenario.write("disable.yaml", DISABLE_ALL);
    let (code, plan) = scenario.plan_json(&manifest);
    assert_eq!(code, 2, "{plan}");
    assert_eq!(plan["summary"]["mfa_coverage"]["covered"], 4, "{plan}");
    assert_eq!(plan["summary"]["blocked"], 0);
    assert_eq!(
        user(&plan, "u4@contoso.com")["coverage"]["detail"],
        "covered by security defaults"
    );
    assert_eq!(plan["summary"]["calls"]["coverage"], 2, "{plan}");
    // Off, and no policy at all: everyone is held.
    let off = Scenario::new(tenant("securityDefaults: false\n"));
    let manifest = off.write("disable.yaml", DISABLE_ALL);
    let (_, plan) = off.plan_json(&manifest);
    assert_eq!(plan["summary"]["mfa_coverage"]["held"], 4, "{plan}");
    assert!(
        user(&plan, "u1@contoso.com")["reason"]
            .as_str()
            .unwrap()
            .contains("the tenant has no Conditional Access policy and security defaults are off"),
        "{plan}"
    );
}

#[test]
fn a_location_condition_gives_partly_covered_written_with_a_warning() {
    let scenario = Scenario::new(with_policies(
        tenant(""),
        vec![policy(
            "MFA outside the office",
            "enabled",
            json!({ "includeUsers": ["All"] }),
            json!({ "locations": { "includeLocations": ["All"], "excludeLocations": ["AllTrusted"] } }),
        )],
    ));
    let manifest = scenario.write("disable.yaml", DISABLE_ALL);
    let out = scenario.run(&["apply", manifest.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "note: warning: once per-user MFA is disabled, partly covered: MFA is required only \
             under conditions: \"MFA outside the office\" (locations: all except AllTrusted)"
        ),
        "{text}"
    );
    assert!(text.contains("4 partly covered"), "{text}");
    assert_eq!(state_of(&scenario.tenant(), 4), "disabled");
}

#[test]
fn an_unreadable_policy_list_is_unknown_never_covered() {
    for (status, code) in [
        (403, "Authorization_RequestDenied"),
        (500, "InternalServerError"),
    ] {
        // Security defaults would cover everyone: the policies' failure must not be read as a
        // pass either way, so they are off here and the list is what fails.
        let scenario = Scenario::new(tenant("securityDefaults: false\n"));
        let manifest = scenario.write("disable.yaml", DISABLE_ALL);
        let proxy = FaultProxy::in_front_of(&scenario.url());
        proxy.set_rule(move |head: &RequestHead, _| {
            if head
                .path
                .starts_with("/beta/identity/conditionalAccess/policies")
            {
                Action::graph_error(status, code, "refused")
            } else {
                Action::Forward
            }
        });
        let out = proxy
            .mfactl(&[
                "apply",
                manifest.to_str().unwrap(),
                "--auto-approve",
                "--no-batch",
                "--max-attempts",
                "2",
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{status}: {}", stderr(&out));
        let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(plan["summary"]["mfa_coverage"]["unknown"], 4, "{plan}");
        assert_eq!(plan["summary"]["mfa_coverage"]["covered"], 0, "{plan}");
        let reason = user(&plan, "u2@contoso.com")["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!(
                "unknown: cannot read the Conditional Access policies: HTTP {status} {code}"
            )),
            "{reason}"
        );
        if status == 403 {
            assert!(
                reason.contains("the token may lack Policy.Read.All"),
                "{reason}"
            );
        }
        assert_eq!(scenario.stats().writes, 0, "{status}: nothing written");
    }
}

#[test]
fn a_role_counts_directly_and_through_a_role_assignable_group() {
    let mut tenant = with_policies(
        tenant(""),
        vec![json!({
            "id": "admins", "displayName": "Phishing-resistant MFA for admins", "state": "enabled",
            "conditions": { "users": { "includeRoles": [GLOBAL_ADMIN] },
                            "applications": { "includeApplications": ["All"] } },
            "grantControls": { "operator": "OR",
                               "authenticationStrength": { "id": "00000000-0000-0000-0000-000000000004" } }
        })],
    );
    tenant.groups = vec![Group {
        id: ADMINS.into(),
        display_name: Some("Admins".into()),
        members: vec![id(2)],
    }];
    let assign = |principal: &str, scope: Option<&str>| RoleAssignment {
        role_definition_id: GLOBAL_ADMIN.into(),
        principal_id: principal.into(),
        directory_scope_id: scope.map(str::to_owned),
    };
    tenant.role_assignments = vec![
        assign(&id(1), None),
        assign(ADMINS, Some("/")),
        // Scoped to an administrative unit: Conditional Access does not count it.
        assign(
            &id(3),
            Some("/administrativeUnits/5d1b6c1e-0000-4000-8000-0000000000f1"),
        ),
    ];
    let scenario = Scenario::new(tenant);
    let manifest = scenario.write("disable.yaml", DISABLE_ALL);
    let (_, plan) = scenario.plan_json(&manifest);
    let status = |n: u8| user(&plan, &format!("u{n}@contoso.com"))["coverage"]["status"].clone();
    assert_eq!(
        [status(1), status(2), status(3), status(4)],
        ["covered", "covered", "not_covered", "not_covered"],
        "{plan}"
    );
    // Security defaults, the policies, the role's assignments, the group holding it.
    assert_eq!(plan["summary"]["calls"]["coverage"], 4, "{plan}");
}

#[test]
fn guests_are_told_apart_by_one_listing_of_the_users() {
    let mut tenant = with_policies(
        tenant(""),
        vec![policy(
            "MFA for members",
            "enabled",
            json!({ "includeUsers": ["All"], "excludeUsers": ["GuestsOrExternalUsers"] }),
            json!({}),
        )],
    );
    tenant.users[3].user_type = mfactl_emulator::UserType::Guest;
    tenant.users[3].user_principal_name = "u4_fabrikam.com#EXT#@contoso.onmicrosoft.com".into();
    let scenario = Scenario::new(tenant);
    let manifest = scenario.write(
        "disable.yaml",
        &DISABLE_ALL.replace("u4@contoso.com", &id(4)),
    );
    let (_, plan) = scenario.plan_json(&manifest);
    assert_eq!(
        user(&plan, "u1@contoso.com")["coverage"]["status"],
        "covered"
    );
    let guest = user(&plan, &id(4));
    assert_eq!(guest["coverage"]["status"], "not_covered", "{guest}");
    assert!(
        guest["reason"]
            .as_str()
            .unwrap()
            .contains("excludes the user (as a guest or external user)"),
        "{guest}"
    );
}

#[test]
fn the_policies_are_read_page_by_page() {
    // 120 policies that miss (report-only, for group A), then one that covers: on page two.
    let mut policies: Vec<Value> = (0..120)
        .map(|n| {
            policy(
                &format!("pilot {n}"),
                "enabledForReportingButNotEnforced",
                json!({ "includeGroups": [GROUP_A] }),
                json!({}),
            )
        })
        .collect();
    policies.push(policy(
        "MFA for everyone",
        "enabled",
        json!({ "includeUsers": ["All"] }),
        json!({}),
    ));
    let scenario = Scenario::new(with_policies(tenant(""), policies));
    let manifest = scenario.write("disable.yaml", DISABLE_ALL);
    let (_, plan) = scenario.plan_json(&manifest);
    assert_eq!(plan["summary"]["mfa_coverage"]["covered"], 4, "{plan}");
    // Security defaults, two pages of policies, group A (named by every pilot) once.
    assert_eq!(plan["summary"]["calls"]["coverage"], 4, "{plan}");
}

#[test]
fn show_prints_the_coverage_and_the_policies_that_give_it() {
    let scenario = Scenario::new(group_a_tenant());
    let out = scenario.run(&["show", "u1@contoso.com", "u3@contoso.com"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("  MFA coverage           covered by \"MFA for A\""),
        "{text}"
    );
    assert!(
        text.contains(
            "  MFA coverage           not covered: no Conditional Access policy requires MFA \
             for this user; the closest, \"MFA for all\", is report-only"
        ),
        "{text}"
    );
    let out = scenario.run(&["show", "u1@contoso.com", "--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["users"][0]["mfa_coverage"]["status"], "covered",
        "{doc}"
    );
    assert_eq!(
        doc["users"][0]["mfa_coverage"]["policies"],
        json!(["MFA for A"])
    );
}

#[test]
fn export_notes_coverage_as_a_comment_and_a_column_the_reader_ignores() {
    let scenario = Scenario::new(group_a_tenant());
    let yaml = scenario.dir.path().join("export.yaml");
    let out = scenario.run(&["export", "--out", yaml.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(
        text.contains("# MFA coverage: covered by \"MFA for A\""),
        "{text}"
    );
    assert!(
        text.contains("# MFA coverage: not covered: no Conditional Access policy"),
        "{text}"
    );
    let csv = scenario.dir.path().join("export.csv");
    let out = scenario.run(&["export", "--out", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = std::fs::read_to_string(&csv).unwrap();
    assert!(
        table.lines().next().unwrap().ends_with(",mfaCoverage"),
        "{table}"
    );
    // Both read back as manifests whose plan is empty: the coverage is never a managed field.
    for file in [&yaml, &csv] {
        let (code, plan) = scenario.plan_json(file);
        assert_eq!(code, 0, "{}: {plan}", file.display());
    }
}

#[test]
fn the_check_costs_the_same_reads_whatever_the_number_of_users() {
    // 20,000 users: the usual shape, "all users except break-glass accounts", and a policy
    // for a group holding every user, to size the worst case of a group-based policy.
    let mut tenant = Tenant::generate(20_000, 11);
    let everyone: Vec<String> = tenant.users.iter().map(|u| u.id.clone()).collect();
    tenant.groups = vec![
        Group {
            id: GROUP_A.into(),
            display_name: Some("Everyone".into()),
            members: everyone,
        },
        Group {
            id: ADMINS.into(),
            display_name: Some("Break-glass".into()),
            members: vec![tenant.users[0].id.clone()],
        },
    ];
    let all_but_break_glass = policy(
        "MFA for all",
        "enabled",
        json!({ "includeUsers": ["All"], "excludeGroups": [ADMINS] }),
        json!({}),
    );
    let whole_group = policy(
        "MFA for everyone",
        "enabled",
        json!({ "includeGroups": [GROUP_A] }),
        json!({}),
    );
    let config = EmulatorConfig {
        throttle: false,
        ..EmulatorConfig::default()
    };
    let mut measured = Vec::new();
    for (shape, policies, expected) in [
        // Security defaults, the policies, the exclusion group.
        (
            "all users except a group",
            vec![all_but_break_glass.clone()],
            3,
        ),
        // ... and the 20,000 members of the group, 999 a page: 21 pages.
        (
            "a group of 20,000 users",
            vec![all_but_break_glass, whole_group],
            24,
        ),
    ] {
        let scenario =
            Scenario::with_config(with_policies(tenant.clone(), policies), config.clone());
        for count in [50, 2_000] {
            // The emulator's count of reads, for a manifest asking `state` of `count` users.
            let reads_for = |state: &str| {
                let mut manifest = String::from("version: 1\nusers:\n");
                for user in tenant.users.iter().skip(1).take(count) {
                    manifest.push_str(&format!(
                        "  - user: {}\n    perUserMfaState: {state}\n",
                        user.id
                    ));
                }
                let path = scenario.write(&format!("{state}-{count}.yaml"), &manifest);
                let before = scenario.stats().reads;
                let (_, plan) = scenario.plan_json(&path);
                (scenario.stats().reads - before, plan)
            };
            let (disabling, plan) = reads_for("disabled");
            let coverage = plan["summary"]["calls"]["coverage"].as_u64().unwrap();
            assert_eq!(
                coverage, expected,
                "{shape}, {count} users: {}",
                plan["summary"]
            );
            let changing = plan["summary"]["mfa_coverage"]["covered"].as_u64().unwrap()
                + plan["summary"]["mfa_coverage"]["partly_covered"]
                    .as_u64()
                    .unwrap();
            assert!(changing > 0, "{}", plan["summary"]);
            // The same users read without disabling anyone: what the emulator saw besides is
            // the check, and it is what the client counted.
            let (enforcing, _) = reads_for("enforced");
            assert_eq!(disabling - enforcing, expected, "{shape}, {count} users");
            measured.push(format!(
                "{shape}, {count} users disabled: {coverage} coverage reads (the emulator saw \
                 {disabling} reads, {enforcing} without the check)"
            ));
        }
    }
    eprintln!("{}", measured.join("\n"));
}

#[test]
fn a_tenant_export_carries_conditional_access_to_the_copy() {
    let mut original = group_a_tenant();
    original.role_assignments = vec![RoleAssignment {
        role_definition_id: GLOBAL_ADMIN.into(),
        principal_id: id(4),
        directory_scope_id: None,
    }];
    original.conditional_access_policies.push(json!({
        "id": "admins", "displayName": "MFA for admins", "state": "enabled",
        "conditions": { "users": { "includeRoles": [GLOBAL_ADMIN] },
                        "applications": { "includeApplications": ["All"] } },
        "grantControls": { "operator": "OR", "builtInControls": ["mfa"] }
    }));
    let scenario = Scenario::new(original);
    let manifest = scenario.write("disable.yaml", DISABLE_ALL);
    let coverage = |scenario: &Scenario| {
        let (_, plan) = scenario.plan_json(&manifest);
        plan["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["user"].clone(), u["coverage"].clone()))
            .collect::<Vec<_>>()
    };
    let before = coverage(&scenario);
    let out = scenario.run(&["export", "--as", "tenant", "--out", "copy.yaml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = scenario.dir.path().join("copy.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("securityDefaults: false"), "{text}");
    assert!(!text.contains("@odata.context"), "{text}");
    let copy = Scenario::new(Tenant::load(&file).expect("the copy loads"));
    assert_eq!(coverage(&copy), before, "the copy judges alike");
    let statuses: Vec<&Value> = before.iter().map(|(_, c)| &c["status"]).collect();
    assert_eq!(statuses, ["covered", "covered", "not_covered", "covered"]);
    let out = copy.run(&["export", "--as", "tenant", "--out", "again.yaml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(copy.dir.path().join("again.yaml")).unwrap(),
        text,
        "exported from the copy, byte for byte"
    );
}

#[test]
fn the_preflight_names_policy_read_all_before_anything_is_sent() {
    use base64::Engine as _;
    let encode = |v: Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    // An app token that may read and write the per-user MFA state, but not read policies.
    let token = format!(
        "{}.{}.",
        encode(json!({"alg": "none", "typ": "JWT"})),
        encode(
            json!({"tid": "9c0e5f1a-0000-4000-8000-000000000001", "idtyp": "app",
            "roles": ["Policy.ReadWrite.AuthenticationMethod", "User.Read.All"]})
        )
    );
    let scenario = Scenario::new(group_a_tenant());
    let manifest = scenario.write("disable.yaml", DISABLE_ALL);
    let out = scenario
        .mfactl(&["plan", manifest.to_str().unwrap()])
        .env("MFACTL_ACCESS_TOKEN", &token)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "the token lacks Policy.Read.All (to read Conditional Access policies), needed for \
             reading the Conditional Access policies and security defaults, to check that MFA \
             stays required for 4 users"
        ),
        "{err}"
    );
    assert_eq!(scenario.stats().requests, 0, "nothing was sent");
    // auth check names it too.
    let out = scenario
        .mfactl(&["auth", "check", "--for", manifest.to_str().unwrap()])
        .env("MFACTL_ACCESS_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.contains("MISSING") && l.contains("Policy.Read.All")),
        "{}",
        stdout(&out)
    );
}

/// A policy a tenant file writes short (Graph's defaults left out) is served in Graph's whole
/// shape, and mfactl's judge reads what is served as written: nothing unjudged, nothing
/// narrowing. (The emulator's own tests check the served shape; this one the agreement.)
#[test]
fn a_short_file_policy_is_judged_as_written() {
    let short = json!({
        "id": "p1", "displayName": "MFA for A", "state": "enabled",
        "conditions": { "users": { "includeGroups": [GROUP_A] },
                        "applications": { "includeApplications": ["All"] } },
        "grantControls": { "builtInControls": ["mfa"],
                           "authenticationStrength": { "id": "00000000-0000-0000-0000-000000000004" } }
    });
    let scenario = Scenario::new(with_policies(tenant(""), vec![short]));
    let url = format!(
        "{}/beta/identity/conditionalAccess/policies",
        scenario.url()
    );
    let served: Value = scenario.block_on(async {
        reqwest::Client::new()
            .get(&url)
            .bearer_auth("test-token-not-a-secret")
            .send()
            .await
            .expect("the emulator answers")
            .json()
            .await
            .expect("JSON")
    });
    let policies = served["value"].as_array().expect("a list of policies");
    assert_eq!(policies.len(), 1, "{served}");
    assert_eq!(policies[0]["conditions"]["clientAppTypes"], json!(["all"]));
    let policy = mfactl::plan::coverage::CaPolicy::from_json(&policies[0]);
    assert!(policy.unjudged.is_empty(), "{:?}", policy.unjudged);
    assert!(policy.narrowing.is_empty(), "{:?}", policy.narrowing);
}
