//! `plan|apply MANIFEST --tenants TENANTS.yaml`: one manifest across three customer tenants in
//! one emulator, one app consented in two of them. The two converge, the third fails alone with
//! Entra's reason, the roll-up names all three, and each tenant's files are in its folder.

use std::path::{Path, PathBuf};
use std::process::Output;

use mfactl::model::PreferredMethod;
use mfactl_emulator::{EmulatorConfig, Tenant};
use serde_json::Value;

use crate::support::{APPLIED_TENANT_FILES, Scenario, assert_private, mfactl, stderr, stdout};

/// The multi-tenant app, registered (with its secret) in the first two tenants only.
const APP: &str = "7a3c1e55-0000-4000-8000-0000000000aa";
/// Another app, the only one of the third tenant.
const OTHER_APP: &str = "7a3c1e55-0000-4000-8000-0000000000bb";
const SECRET: &str = "not-a-real-secret";

/// Customer `n`: three users with Authenticator and a phone, system-preferred MFA off and
/// push preferred; the second in the group "Pilot". `apps` are the apps consented there.
fn customer(n: u32, apps: &[&str]) -> Tenant {
    let roles = "[UserAuthenticationMethod.ReadWrite.All, Policy.ReadWrite.AuthenticationMethod, \
                 Policy.Read.All, User.Read.All, GroupMember.Read.All]";
    let apps: String = apps
        .iter()
        .map(|app| format!("\n  - clientId: {app}\n    secret: {SECRET}\n    roles: {roles}"))
        .collect();
    let user = |i: u32| {
        format!(
            "- id: 0a0b0c0d-000{n}-4000-8000-00000000000{i}\n  userPrincipalName: \
             user{i}@customer{n}.com\n  methods: [microsoftAuthenticator, mobilePhone]\n  \
             signInPreferences:\n    isSystemPreferredAuthenticationMethodEnabled: false\n    \
             userPreferredMethodForSecondaryAuthentication: push\n  perUserMfaState: disabled\n"
        )
    };
    let text = format!(
        "tenantId: 9c0e5f1a-0000-4000-8000-00000000000{n}\ndomain: \
         customer{n}.onmicrosoft.com\nusers:\n{}{}{}groups:\n- id: \
         5d1b6c1e-000{n}-4000-8000-000000000001\n  displayName: Pilot\n  members: \
         [0a0b0c0d-000{n}-4000-8000-000000000002]\nauth:\n  apps:{apps}\n",
        user(1),
        user(2),
        user(3)
    );
    Tenant::from_yaml_str(&text).expect("the customer tenant loads")
}

/// Three customers in one emulator: the app is consented in the first two.
fn three_customers() -> Scenario {
    Scenario::with_tenants(
        vec![
            customer(1, &[APP]),
            customer(2, &[APP]),
            customer(3, &[OTHER_APP]),
        ],
        EmulatorConfig::default(),
    )
}

/// One manifest for every customer: everyone gets system-preferred MFA, the group named
/// "Pilot" (by display name: its id differs in each tenant) prefers text messages.
const MANIFEST: &str = "version: 1\nallUsers:\n  systemPreferred: true\ngroups:\n  - group: \
                        Pilot\n    preferredMethod: sms\n";

fn tenants_file(scenario: &Scenario, name: &str, customers: &[u32]) -> PathBuf {
    let entries: String = customers
        .iter()
        .map(|n| format!("  - tenant: customer{n}.onmicrosoft.com\n"))
        .collect();
    scenario.write(name, &format!("tenants:\n{entries}"))
}

/// `mfactl ARGS` signing in as the multi-tenant app at the emulator's authority.
fn as_app(scenario: &Scenario, args: &[&str]) -> Output {
    mfactl()
        .current_dir(scenario.dir.path())
        .args(args)
        .args(["--graph-url", &scenario.url()])
        .env("AZURE_CLIENT_ID", APP)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .env("AZURE_AUTHORITY_HOST", scenario.url())
        .output()
        .expect("mfactl runs")
}

/// `mfactl COMMAND MANIFEST --tenants TENANTS EXTRA...` as the multi-tenant app.
fn across(
    scenario: &Scenario,
    command: &str,
    manifest: &Path,
    tenants: &Path,
    extra: &[&str],
) -> Output {
    let (manifest, tenants) = (manifest.to_str().unwrap(), tenants.to_str().unwrap());
    as_app(
        scenario,
        &[&[command, manifest, "--tenants", tenants][..], extra].concat(),
    )
}

fn summary(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

fn tenant_entry<'a>(summary: &'a Value, tenant: &str) -> &'a Value {
    summary["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == tenant)
        .unwrap_or_else(|| panic!("{tenant} in the roll-up: {summary}"))
}

#[test]
fn apply_converges_the_consented_tenants_and_fails_the_third_alone() {
    let scenario = three_customers();
    let manifest = scenario.write("standard.yaml", MANIFEST);
    let all = tenants_file(&scenario, "customers.yaml", &[1, 2, 3]);
    let out = scenario.dir.path().join("run");
    let applied = across(
        &scenario,
        "apply",
        &manifest,
        &all,
        &["--out-dir", out.to_str().unwrap(), "--auto-approve"],
    );
    let (text, err) = (stdout(&applied), stderr(&applied));
    assert_eq!(applied.status.code(), Some(1), "{text}\n{err}");
    // The roll-up names all three, with their exit codes, and the third's reason.
    assert!(
        text.starts_with("Tenants: 3 (2 applied, 1 failed); exit code 1"),
        "{text}"
    );
    for n in [1, 2] {
        assert!(
            text.contains(&format!(
                "customer{n}.onmicrosoft.com (9c0e5f1a-0000-4000-8000-00000000000{n})  [exit 0, \
                 applied] Apply: 3 users changed"
            )),
            "{text}"
        );
    }
    assert!(
        text.contains("customer3.onmicrosoft.com  [exit 1, failed] failed: sign-in failed")
            && text.contains("AADSTS7000229"),
        "{text}"
    );
    let rollup = summary(&out);
    crate::schemas::check("summary.schema.json", &rollup).unwrap();
    assert_eq!(rollup["exit_code"], 1);
    assert_eq!(rollup["totals"]["changed"], 6);
    let third = tenant_entry(&rollup, "customer3.onmicrosoft.com");
    assert_eq!(
        (third["status"].as_str(), third["exit_code"].as_u64()),
        (Some("failed"), Some(1))
    );
    assert!(
        third["reason"].as_str().unwrap().contains(&format!(
            "The client application {APP} is missing service principal"
        )),
        "{third}"
    );
    assert!(
        third["reason"].as_str().unwrap().contains(&format!(
            "/customer3.onmicrosoft.com/adminconsent?client_id={APP}); the other tenants are \
             not affected"
        )),
        "{third}"
    );
    // Each tenant's files are in its folder, private, and the roll-up beside them.
    for n in [1, 2] {
        let folder = out.join(format!("customer{n}.onmicrosoft.com"));
        for file in APPLIED_TENANT_FILES {
            assert_private(&folder.join(file));
        }
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join("report.json")).unwrap())
                .unwrap();
        crate::schemas::check("plan.schema.json", &report).unwrap();
        let entry = tenant_entry(&rollup, &format!("customer{n}.onmicrosoft.com"));
        assert_eq!(
            entry["files"]["journal"],
            format!("customer{n}.onmicrosoft.com/journal.jsonl")
        );
        assert_eq!(
            entry["tenant_id"],
            format!("9c0e5f1a-0000-4000-8000-00000000000{n}")
        );
    }
    for file in ["summary.json", "summary.md", "summary.html"] {
        assert_private(&out.join(file));
    }
    let page = std::fs::read_to_string(out.join("summary.html")).unwrap();
    assert_eq!(
        page.matches("<section class=\"card").count(),
        3,
        "one card per tenant"
    );
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("AADSTS7000229"), "{md}");

    // The emulator holds the standard in the two tenants, and nothing changed in the third.
    for n in [1, 2, 3] {
        let tenant = scenario
            .emulator()
            .tenant_named(&format!("customer{n}.onmicrosoft.com"))
            .unwrap();
        for user in &tenant.users {
            let prefs = &user.sign_in_preferences;
            assert_eq!(
                prefs.is_system_preferred_authentication_method_enabled,
                n != 3
            );
            let pilot = user.user_principal_name.starts_with("user2@");
            let expected = if pilot && n != 3 {
                PreferredMethod::Sms
            } else {
                PreferredMethod::Push
            };
            assert_eq!(
                prefs.user_preferred_method_for_secondary_authentication,
                Some(expected)
            );
        }
    }
    let third = scenario
        .emulator()
        .stats_of("customer3.onmicrosoft.com")
        .unwrap();
    assert_eq!((third.requests, third.tokens_issued), (0, 0), "{third:?}");

    // A second plan over the two converged tenants has nothing to do.
    let two = tenants_file(&scenario, "consented.yaml", &[1, 2]);
    let again = scenario.dir.path().join("again");
    let planned = across(
        &scenario,
        "plan",
        &manifest,
        &two,
        &["--out-dir", again.to_str().unwrap(), "--detailed-exitcode"],
    );
    assert_eq!(
        planned.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&planned),
        stderr(&planned)
    );
    assert!(stdout(&planned).starts_with("Tenants: 2 (2 planned); exit code 0"));
    assert_eq!(summary(&again)["totals"]["to_change"], 0);
}

#[test]
fn plan_exits_with_the_most_severe_code_and_the_app_wide_budget_shows_no_throttling() {
    let scenario = three_customers();
    let manifest = scenario.write("standard.yaml", MANIFEST);
    let two = tenants_file(&scenario, "consented.yaml", &[1, 2]);
    let out = scenario.dir.path().join("plans");
    let planned = across(
        &scenario,
        "plan",
        &manifest,
        &two,
        &[
            "--out-dir",
            out.to_str().unwrap(),
            "--detailed-exitcode",
            "--format",
            "json",
        ],
    );
    assert_eq!(planned.status.code(), Some(2), "{}", stderr(&planned));
    let printed: Value = serde_json::from_slice(&planned.stdout).expect("the roll-up as JSON");
    assert_eq!(
        printed,
        summary(&out),
        "stdout and summary.json are the same document"
    );
    assert_eq!(printed["totals"]["to_change"], 6);
    // Each tenant's saved plan applies exactly, alone, in its tenant.
    let plan: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("customer2.onmicrosoft.com/plan.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(plan["tenant_id"], "9c0e5f1a-0000-4000-8000-000000000002");
    assert_eq!(scenario.stats().throttled, 0);
    assert_eq!(scenario.stats().writes, 0, "a plan writes nothing");
}

#[test]
fn a_bad_tenants_file_is_reported_with_its_places_before_anything_is_sent() {
    let scenario = three_customers();
    let manifest = scenario.write("standard.yaml", MANIFEST);
    let bad = scenario.write(
        "bad.yaml",
        "tenants:\n  - tenant: ../../etc\n  - tenant: customer1.onmicrosoft.com\n    maxChanges: \
         -1\n  - tenant: CUSTOMER1.onmicrosoft.com\n",
    );
    let out = as_app(
        &scenario,
        &[
            "plan",
            manifest.to_str().unwrap(),
            "--tenants",
            bad.to_str().unwrap(),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad.yaml:2:13: error[invalid-tenant]"),
        "{err}"
    );
    assert!(err.contains("bad.yaml:4:17: error[out-of-range]"), "{err}");
    assert!(
        err.contains("bad.yaml:5:13: error[duplicate-tenant]"),
        "{err}"
    );
    assert_eq!(scenario.stats().requests, 0);
    assert_eq!(scenario.stats().tokens_issued, 0);
}

#[test]
fn a_source_that_cannot_choose_its_tenant_is_refused_before_anything_is_sent() {
    let scenario = three_customers();
    let manifest = scenario.write("standard.yaml", MANIFEST);
    let all = tenants_file(&scenario, "customers.yaml", &[1, 2, 3]);
    let args = [
        "plan",
        manifest.to_str().unwrap(),
        "--tenants",
        all.to_str().unwrap(),
    ];
    let managed = mfactl()
        .current_dir(scenario.dir.path())
        .args(args)
        .args(["--graph-url", &scenario.url(), "--auth", "managed"])
        .env("IDENTITY_ENDPOINT", format!("{}/msi/token", scenario.url()))
        .env("IDENTITY_HEADER", "x")
        .output()
        .unwrap();
    let err = stderr(&managed);
    assert_eq!(managed.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "--auth managed cannot: a managed identity's token always comes from the \
                      tenant the identity lives in"
        ),
        "{err}"
    );
    assert!(
        err.contains("Configure an application to trust a managed identity"),
        "{err}"
    );
    let token = scenario.mfactl(&args).output().unwrap();
    assert_eq!(token.status.code(), Some(1));
    assert!(
        stderr(&token).contains("--auth token cannot"),
        "{}",
        stderr(&token)
    );
    let flag = as_app(
        &scenario,
        &[&args[..], &["--tenant", "customer1.onmicrosoft.com"]].concat(),
    );
    assert_eq!(
        flag.status.code(),
        Some(64),
        "--tenant and --tenants conflict"
    );
    assert_eq!(scenario.stats().requests, 0);
    assert_eq!(scenario.stats().tokens_issued, 0);
}

#[test]
fn resume_finishes_each_tenant_from_the_folder_and_rollback_writes_one_undo_per_tenant() {
    let scenario = three_customers();
    let manifest = scenario.write("standard.yaml", MANIFEST);
    let two = tenants_file(&scenario, "consented.yaml", &[1, 2]);
    let out = scenario.dir.path().join("run");
    let apply = |extra: &[&str]| {
        across(
            &scenario,
            "apply",
            &manifest,
            &two,
            &[&["--auto-approve"][..], extra].concat(),
        )
    };
    let first = apply(&["--out-dir", out.to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    // The second tenant's run looks cut short: its journal loses its `finish` line.
    let journal = out.join("customer2.onmicrosoft.com/journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let cut: String = text
        .lines()
        .filter(|line| !line.contains("\"event\":\"finish\""))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(cut, text);
    std::fs::write(&journal, cut).unwrap();
    let writes_before = scenario.stats().writes;

    // A fresh run into the same folder is refused; --resume finishes it.
    let again = apply(&["--out-dir", out.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("holds the journal of an earlier apply"),
        "{}",
        stderr(&again)
    );
    let resumed = apply(&["--resume", out.to_str().unwrap()]);
    let text = stdout(&resumed);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{text}\n{}",
        stderr(&resumed)
    );
    assert!(
        text.contains("-000000000001)  [exit 0, finished earlier]"),
        "{text}"
    );
    assert!(text.contains("-000000000002)  [exit 0, applied]"), "{text}");
    assert!(
        stderr(&resumed).contains("[customer2.onmicrosoft.com] resuming: 3 writes already made"),
        "{}",
        stderr(&resumed)
    );
    assert_eq!(
        scenario.stats().writes,
        writes_before,
        "nothing is written twice"
    );
    let journal =
        std::fs::read_to_string(out.join("customer2.onmicrosoft.com/journal.jsonl")).unwrap();
    assert!(journal.contains("\"resumed\":true"), "{journal}");

    // Rollback of the folder: one undo manifest per tenant, each its own tenant's users.
    let rollback = mfactl()
        .args(["rollback", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(rollback.status.code(), Some(0), "{}", stderr(&rollback));
    for n in [1, 2] {
        let undo =
            std::fs::read_to_string(out.join(format!("customer{n}.onmicrosoft.com/undo.yaml")))
                .unwrap();
        assert!(undo.contains(&format!("user1@customer{n}.com")), "{undo}");
        assert!(!undo.contains(&format!("customer{}.com", 3 - n)), "{undo}");
        assert!(undo.contains("systemPreferred: false"), "{undo}");
    }
    assert!(
        stderr(&rollback)
            .contains("[customer1.onmicrosoft.com] apply it in that tenant alone: mfactl apply")
    );
}
