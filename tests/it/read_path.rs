//! The read planner (issue 17): bulk reads give the same plan as per-user reads, each fallback
//! to per-user reads gives the same plan again with one line saying so, bulk runs make few
//! requests (counted by the emulator), and a stale bulk value costs a skipped write, never a
//! wrong one.

use std::collections::BTreeMap;
use std::time::Duration;

use mfactl::model::{MethodKind, PreferredMethod};
use mfactl_emulator::{EmulatorConfig, Refusals, Tenant};
use serde_json::{Value, json};

use crate::fault_proxy::{Action, FaultProxy, RequestHead};
use crate::support::{Scenario, comparable, stderr};

/// A generated tenant of `users` users (guests among them) of which the first three accounts
/// are disabled, so that the registration report leaves exactly them out.
fn mixed_tenant(users: usize) -> Tenant {
    let mut tenant = Tenant::generate(users, 1717);
    for (i, user) in tenant.users.iter_mut().enumerate() {
        user.account_enabled = i >= 3;
    }
    tenant
}

/// Every field of every kind, for the whole tenant, and two users named by entries.
fn full_manifest(scenario: &Scenario) -> std::path::PathBuf {
    let tenant = scenario.tenant();
    scenario.write(
        "full.yaml",
        &format!(
            "version: 1
allUsers:
  userType: all
  perUserMfaState: enabled
  preferredMethod: oath
  systemPreferred: true
users:
  - user: \"{}\"
    preferredMethod: sms
  - user: {}
    perUserMfaState: disabled
",
            tenant.users[10].user_principal_name, tenant.users[11].id
        ),
    )
}

/// `plan MANIFEST --format json --read-path PATH`: the plan document and stderr.
fn plan(scenario: &Scenario, manifest: &std::path::Path, path: &str) -> (Value, String) {
    let out = scenario.run(&[
        "plan",
        manifest.to_str().unwrap(),
        "--format",
        "json",
        "--read-path",
        path,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = serde_json::from_slice(&out.stdout).expect("a plan document");
    (doc, stderr(&out))
}

/// What a plan says of each user, by object id (a listing split into streams lists users in
/// another order than one listing: the changes, not their order, must be the same), and its
/// summary without the call counts.
fn changes(doc: &Value) -> (BTreeMap<String, Value>, Value) {
    let doc = comparable(doc.clone());
    let users = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| (user["id"].as_str().unwrap().to_owned(), user.clone()))
        .collect();
    (users, doc["summary"].clone())
}

/// The lines of `err` that start with `Fallback:`.
fn fallbacks(err: &str) -> Vec<&str> {
    err.lines().filter(|l| l.starts_with("Fallback:")).collect()
}

/// Graph calls the emulator answered: requests alone and batch items.
fn graph_calls(scenario: &Scenario) -> u64 {
    let stats = scenario.stats();
    stats.requests - stats.batches + stats.batch_items
}

#[test]
fn bulk_reads_plan_exactly_what_per_user_reads_plan_in_a_few_requests() {
    // Over three listing pages, so the listing is split into parallel streams; /methods under
    // the reports limit, as Microsoft's throttling page lists it.
    let tenant = mixed_tenant(3_100);
    let per_user = Scenario::new(tenant.clone());
    let manifest = full_manifest(&per_user);
    let (reference, said) = plan(&per_user, &manifest, "per-user");
    assert!(said.contains("Read path: signInPreferences and registered methods per user"));
    let per_user_calls = graph_calls(&per_user);

    let limited = EmulatorConfig {
        methods_per_10s: Some(5),
        ..EmulatorConfig::default()
    };
    let bulk = Scenario::with_config(tenant, limited);
    let manifest = full_manifest(&bulk);
    let (doc, said) = plan(&bulk, &manifest, "bulk");
    assert_eq!(changes(&doc), changes(&reference), "{said}");
    assert!(
        said.contains("in 45 parallel streams"),
        "the listing was split: {said}"
    );
    assert!(said.contains("from the registration report"), "{said}");
    assert!(
        said.contains("has no row for 3 users (it leaves disabled accounts out)"),
        "{said}"
    );
    assert!(fallbacks(&said).is_empty(), "{said}");
    let bulk_calls = graph_calls(&bulk);
    // The listing (a first page and 45 streams), 4 report pages, the tenant, and the three
    // disabled users read alone (one combined read and at most one /methods read each).
    assert!(
        bulk_calls <= 60,
        "{bulk_calls} calls in bulk, {per_user_calls} per user"
    );
    assert!(per_user_calls > 6_000, "{per_user_calls}");

    // auto picks the same bulk reads for this manifest, and says why.
    let (doc, said) = plan(&bulk, &manifest, "auto");
    assert_eq!(changes(&doc), changes(&reference), "{said}");
    assert!(said.contains("allUsers: lists the tenant anyway"), "{said}");
    assert!(
        said.contains("which Microsoft lists under the reports limit of 5 requests per 10 s"),
        "{said}"
    );
}

/// A small tenant for the fallbacks, with users named by entries too.
fn fallback_scenario(refuse: Refusals, report_age: Option<Duration>) -> Scenario {
    let config = EmulatorConfig {
        refuse,
        report_age,
        ..EmulatorConfig::default()
    };
    Scenario::with_config(mixed_tenant(60), config)
}

/// Plans `manifest` per user and with `path`: the same plan, and the bulk run's fallbacks.
fn same_plan_with_fallbacks(
    scenario: &Scenario,
    manifest: &std::path::Path,
    path: &str,
) -> Vec<String> {
    let (reference, _) = plan(scenario, manifest, "per-user");
    let (doc, said) = plan(scenario, manifest, path);
    assert_eq!(changes(&doc), changes(&reference), "{said}");
    fallbacks(&said).into_iter().map(str::to_owned).collect()
}

/// Plans the full manifest on a small tenant with `--read-path bulk`, the emulator refusing or
/// aging as told: the per-user plan, and exactly one `Fallback:` line, starting `says`.
fn one_fallback(refuse: Refusals, report_age: Option<Duration>, says: &str) -> Scenario {
    let scenario = fallback_scenario(refuse, report_age);
    let manifest = full_manifest(&scenario);
    let said = same_plan_with_fallbacks(&scenario, &manifest, "bulk");
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].starts_with(says), "{said:?}");
    scenario
}

#[test]
fn a_refused_per_user_mfa_state_select_falls_back_to_requirements_reads() {
    let refuse = Refusals {
        per_user_mfa_state_select: true,
        ..Refusals::default()
    };
    one_fallback(
        refuse,
        None,
        "Fallback: Graph refused $select=perUserMfaState on /users (400 BadRequest)",
    );
}

#[test]
fn a_report_refused_for_want_of_a_licence_falls_back_to_per_user_reads() {
    let refuse = Refusals {
        registration_report: true,
        ..Refusals::default()
    };
    one_fallback(
        refuse,
        None,
        "Fallback: the registration report could not be read (403 \
         Authentication_RequestFromNonPremiumTenantOrB2CTenant",
    );
}

#[test]
fn a_stale_report_is_not_used() {
    let two_days = Duration::from_secs(2 * 24 * 3600);
    let scenario = one_fallback(
        Refusals::default(),
        Some(two_days),
        "Fallback: 57 rows of the registration report are older than 24 h",
    );
    // A threshold past the report's age takes it.
    let manifest = full_manifest(&scenario);
    let out = scenario.run(&[
        "plan",
        manifest.to_str().unwrap(),
        "--read-path",
        "bulk",
        "--max-report-age",
        "3d",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(fallbacks(&stderr(&out)).is_empty(), "{}", stderr(&out));
}

#[test]
fn a_refused_authentication_read_falls_back_to_reading_both_endpoints() {
    let scenario = fallback_scenario(
        Refusals {
            authentication: true,
            ..Refusals::default()
        },
        None,
    );
    // A few users named by id: auto reads them per user, both endpoints at once.
    let tenant = scenario.tenant();
    let mut manifest = String::from("version: 1\nusers:\n");
    for user in &tenant.users[..8] {
        manifest.push_str(&format!(
            "  - user: {}\n    systemPreferred: true\n    perUserMfaState: disabled\n",
            user.id
        ));
    }
    let manifest = scenario.write("named.yaml", &manifest);
    let before = scenario.stats().bad_requests;
    let said = same_plan_with_fallbacks(&scenario, &manifest, "auto");
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0]
            .starts_with("Fallback: GET /users/{id}/authentication is not served (400 BadRequest)"),
        "{said:?}"
    );
    // One probe found it out: the other users were not asked.
    assert_eq!(scenario.stats().bad_requests - before, 1);
}

#[test]
fn the_authentication_read_gives_both_endpoints_in_one_request_when_served() {
    let scenario = fallback_scenario(Refusals::default(), None);
    let tenant = scenario.tenant();
    let mut manifest = String::from("version: 1\nusers:\n");
    for user in &tenant.users[3..11] {
        manifest.push_str(&format!(
            "  - user: {}\n    systemPreferred: false\n    perUserMfaState: enforced\n",
            user.id
        ));
    }
    let manifest = scenario.write("named.yaml", &manifest);
    let (reference, _) = plan(&scenario, &manifest, "per-user");
    let before = scenario.stats().reads;
    let (doc, said) = plan(&scenario, &manifest, "auto");
    assert_eq!(changes(&doc), changes(&reference), "{said}");
    assert!(
        said.contains("Read path: 8 users were read with one GET /users/{id}/authentication each"),
        "{said}"
    );
    // One read a user (and the tenant's name), where per user it takes two.
    assert_eq!(scenario.stats().reads - before, 8 + 1, "{said}");
}

#[test]
fn a_user_no_listing_stream_reaches_is_still_planned() {
    let mut tenant = mixed_tenant(3_100);
    // No userPrincipalName Entra allows starts with '+': only the count shows it is missing.
    tenant.users[500].user_principal_name = "+odd@contoso.onmicrosoft.com".into();
    let scenario = Scenario::new(tenant.clone());
    let manifest = scenario.write(
        "all.yaml",
        "version: 1\nallUsers:\n  userType: all\n  perUserMfaState: disabled\n",
    );
    let (reference, _) = plan(&scenario, &manifest, "per-user");
    let (doc, said) = plan(&scenario, &manifest, "bulk");
    assert_eq!(changes(&doc), changes(&reference), "{said}");
    let said = fallbacks(&said);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("found 3,099 users where Graph counts 3,100"),
        "{said:?}"
    );
}

#[test]
fn a_stale_bulk_value_costs_a_skipped_write_never_a_wrong_one() {
    // The report was taken an hour ago (fresh enough to be used); since, someone set two
    // users' preferred method to push, which the report does not show.
    let mut tenant = mixed_tenant(20);
    for user in &mut tenant.users[3..5] {
        user.methods = vec![MethodKind::MicrosoftAuthenticator, MethodKind::MobilePhone];
        user.sign_in_preferences
            .user_preferred_method_for_secondary_authentication = Some(PreferredMethod::Sms);
    }
    let config = EmulatorConfig {
        report_age: Some(Duration::from_secs(3600)),
        ..EmulatorConfig::default()
    };
    let scenario = Scenario::with_config(tenant.clone(), config);
    for user in &tenant.users[3..5] {
        let url = format!(
            "{}/beta/users/{}/authentication/signInPreferences",
            scenario.url(),
            user.id
        );
        let status = scenario.block_on(async {
            reqwest::Client::new()
                .patch(&url)
                .bearer_auth("test-token-not-a-secret")
                .json(&serde_json::json!({"userPreferredMethodForSecondaryAuthentication": "push"}))
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status, 204);
    }
    // One user's entry asks for what is now live (push), the other's for oath.
    let (third, fourth) = (&tenant.users[3], &tenant.users[4]);
    let manifest = scenario.write(
        "stale.yaml",
        &format!(
            "version: 1\nusers:\n  - user: {}\n    preferredMethod: push\n  - user: {}\n    \
             preferredMethod: oath\n",
            third.id, fourth.id
        ),
    );
    // The report's stale `sms` plans both users to change.
    let plan_file = scenario.dir.path().join("stale-plan.json");
    let out = scenario.run(&[
        "plan",
        manifest.to_str().unwrap(),
        "--read-path",
        "bulk",
        "--out",
        plan_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let saved: Value = serde_json::from_slice(&std::fs::read(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["summary"]["to_change"], 2, "{saved}");
    let writes_before = scenario.stats().writes;
    let out = scenario.run(&["apply", plan_file.to_str().unwrap(), "--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("a report");
    // apply read both endpoints again before writing: neither matches the plan's `before`.
    // The first already shows what the entry asks (already applied), the second drifted: no
    // write is made over what someone set since.
    let outcome = |user: &str| {
        report["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == user)
            .cloned()
            .unwrap()
    };
    let third_outcome = outcome(&third.id);
    assert_eq!(
        third_outcome["writes"][0]["result"]["already_applied"], true,
        "{report}"
    );
    assert_eq!(outcome(&fourth.id)["status"], "drifted", "{report}");
    assert_eq!(report["summary"]["drifted"], 1, "{report}");
    assert_eq!(scenario.stats().writes, writes_before, "no write was made");
    for user in &scenario.tenant().users[3..5] {
        assert_eq!(
            user.sign_in_preferences
                .user_preferred_method_for_secondary_authentication,
            Some(PreferredMethod::Push),
            "{}",
            user.user_principal_name
        );
    }
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn export_takes_the_state_from_the_listing_and_writes_the_same_file() {
    let export = |scenario: &Scenario, name: &str, path: &str| {
        let out_file = scenario.dir.path().join(name);
        let before = scenario.stats().reads;
        let out = scenario.run(&[
            "export",
            "--out",
            out_file.to_str().unwrap(),
            "--read-path",
            path,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let reads = scenario.stats().reads - before;
        (
            std::fs::read_to_string(out_file).unwrap(),
            reads,
            stderr(&out),
        )
    };
    let scenario = fallback_scenario(Refusals::default(), None);
    let (per_user, per_user_reads, _) = export(&scenario, "per-user.yaml", "per-user");
    let (bulk, bulk_reads, said) = export(&scenario, "auto.yaml", "auto");
    assert_eq!(bulk, per_user);
    assert!(
        said.contains("Read path: perUserMfaState from the users listing"),
        "{said}"
    );
    // 60 users: one read each fewer.
    assert_eq!(per_user_reads - bulk_reads, 60, "{said}");
    assert!(fallbacks(&said).is_empty(), "{said}");

    let refusing = fallback_scenario(
        Refusals {
            per_user_mfa_state_select: true,
            ..Refusals::default()
        },
        None,
    );
    let (refused, _, said) = export(&refusing, "refused.yaml", "auto");
    assert_eq!(refused, per_user);
    let said = fallbacks(&said);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].starts_with("Fallback: Graph refused $select=perUserMfaState"));
}

/// A `Fallback:` line quotes Graph's error code, which the transport escapes once for every
/// caller: the line shows it escaped, and nothing Graph sent reaches the terminal raw.
#[test]
fn a_fallback_line_escapes_the_code_graph_sent() {
    let scenario = fallback_scenario(Refusals::default(), None);
    let manifest = full_manifest(&scenario);
    let proxy = FaultProxy::in_front_of(&scenario.url());
    let hostile = "Denied\u{1b}[2J\u{202e}";
    proxy.set_rule(move |head: &RequestHead, _| {
        if head.path.contains("userRegistrationDetails") {
            let body = json!({"error": {"code": hostile, "message": "no"}});
            Action::Respond {
                status: 403,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.to_string().into_bytes(),
            }
        } else {
            Action::Forward
        }
    });
    let out = proxy
        // Single requests, so that the proxy answers the report's page itself.
        .mfactl(&[
            "plan",
            manifest.to_str().unwrap(),
            "--read-path",
            "bulk",
            "--no-batch",
        ])
        .output()
        .expect("mfactl runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let said = fallbacks(&err);
    assert_eq!(said.len(), 1, "{err}");
    assert!(
        said[0].starts_with(
            "Fallback: the registration report could not be read (403 Denied\\u{1b}[2J\\u{202e};"
        ),
        "{err}"
    );
    assert!(
        !err.contains('\u{1b}') && !err.contains('\u{202e}'),
        "{err}"
    );
}
