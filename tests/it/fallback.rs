//! `preferredMethod` as an ordered fallback list (`[push, oath, sms]`, CSV `push|oath|sms`):
//! each user gets the first method they have registered, a user with none is blocked with the
//! list in the reason, and a second plan finds nothing to do.

use mfactl::model::{MethodKind, PreferredMethod};
use mfactl_emulator::Tenant;
use serde_json::{Value, json};

use crate::support::{Scenario, mfactl, stderr, stdout};

/// Twelve users: a phone-only one on voiceMobile, an office-phone-only one, one with
/// Authenticator and a phone on sms, one with an OATH token on sms; the rest as generated.
fn scenario() -> Scenario {
    let mut tenant = Tenant::generate(12, 5);
    let set = |user: &mut mfactl_emulator::TenantUser, methods: Vec<MethodKind>, current| {
        user.methods = methods;
        user.sign_in_preferences
            .user_preferred_method_for_secondary_authentication = current;
    };
    set(
        &mut tenant.users[0],
        vec![MethodKind::MobilePhone],
        Some(PreferredMethod::VoiceMobile),
    );
    set(&mut tenant.users[1], vec![MethodKind::OfficePhone], None);
    set(
        &mut tenant.users[2],
        vec![MethodKind::MicrosoftAuthenticator, MethodKind::MobilePhone],
        Some(PreferredMethod::Sms),
    );
    set(
        &mut tenant.users[3],
        vec![MethodKind::MobilePhone, MethodKind::SoftwareOath],
        Some(PreferredMethod::Sms),
    );
    Scenario::new(tenant)
}

/// The four users set up above (the rest of the tenant is not in the manifests).
fn ids(scenario: &Scenario) -> Vec<String> {
    scenario.tenant().users[..4]
        .iter()
        .map(|u| u.id.clone())
        .collect()
}

fn entry<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {plan}"))
}

#[test]
fn a_fallback_list_gives_each_user_the_first_registered_method_and_converges() {
    let scenario = scenario();
    let ids = ids(&scenario);
    let users: String = ids.iter().map(|id| format!("  - user: {id}\n")).collect();
    let yaml = scenario.write(
        "desired.yaml",
        &format!("version: 1\ndefaults:\n  preferredMethod: [push, oath, sms]\nusers:\n{users}"),
    );
    let csv = scenario.write(
        "desired.csv",
        &format!(
            "user,preferredMethod\n{}",
            ids.iter()
                .map(|id| format!("{id},push|oath|sms\n"))
                .collect::<String>()
        ),
    );

    // validate says what the list does, offline.
    let out = mfactl()
        .args(["validate", yaml.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("preferredMethod [push, oath, sms] for 4 users: each user gets the first"),
        "{}",
        stdout(&out)
    );

    let (code, plan) = scenario.plan_json(&yaml);
    assert_eq!(code, 2, "{plan}");
    let (_, from_csv) = scenario.plan_json(&csv);
    assert_eq!(
        crate::support::comparable(from_csv)["users"],
        crate::support::comparable(plan.clone())["users"],
        "YAML and CSV lists plan alike"
    );
    // The phone-only user gets sms: the one method written, as the plan's body says.
    let phone_only = entry(&plan, &ids[0]);
    assert_eq!(phone_only["status"], "change");
    assert_eq!(
        phone_only["writes"][0]["body"],
        json!({"userPreferredMethodForSecondaryAuthentication": "sms"}),
        "{phone_only}"
    );
    // No method of the list registered: blocked, with the list in the reason.
    let office = entry(&plan, &ids[1]);
    assert_eq!(office["status"], "blocked", "{office}");
    assert_eq!(office["fields"][0]["after"], json!(["push", "oath", "sms"]));
    assert!(
        office["reason"].as_str().unwrap().starts_with(&format!(
            "none of push, oath, sms is registered for {}",
            ids[1]
        )),
        "{office}"
    );
    assert_eq!(
        entry(&plan, &ids[2])["fields"][0]["after"],
        "push",
        "Authenticator registered: the first of the list"
    );
    assert_eq!(entry(&plan, &ids[3])["fields"][0]["after"], "oath");

    // The text plan groups the blocked user under the list.
    let text = stdout(&scenario.run(&["plan", yaml.to_str().unwrap()]));
    assert!(
        text.contains("blocked: none of push, oath, sms registered \u{2014} 1 user"),
        "{text}"
    );

    // show says which choice the list gives a user, as plan chose.
    let out = scenario.run(&[
        "show",
        &ids[0],
        &ids[1],
        "--preferred-method",
        "push,oath,sms",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(
        shown.contains(
            "preferred-method list [push, oath, sms] gives sms (the first of them registered)"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("gives nothing: none of them is registered"),
        "{shown}"
    );

    // Applying converges: a second plan has nothing to write (the blocked user stays
    // blocked, which is not a change).
    let out = scenario.run(&["apply", yaml.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the blocked user: {}",
        stderr(&out)
    );
    let (code, again) = scenario.plan_json(&yaml);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["summary"]["writes"], 0, "{}", again["summary"]);
    assert_eq!(again["summary"]["blocked"], 1);
    let tenant = scenario.tenant();
    let method = |n: usize| {
        tenant.users[n]
            .sign_in_preferences
            .user_preferred_method_for_secondary_authentication
    };
    assert_eq!(method(0), Some(PreferredMethod::Sms));
    assert_eq!(method(2), Some(PreferredMethod::Push));
    assert_eq!(method(3), Some(PreferredMethod::Oath));
    let out = scenario.run(&[
        "show",
        &ids[0],
        "--preferred-method",
        "push|oath|sms",
        "--format",
        "json",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["users"][0]["preferred_method_list"],
        json!({"methods": ["push", "oath", "sms"], "chosen": "sms", "current": true})
    );
}

#[test]
fn a_bad_list_is_refused_before_anything_is_sent() {
    let scenario = scenario();
    let yaml = scenario.write(
        "bad.yaml",
        "version: 1\nusers:\n  - user: a@contoso.com\n    preferredMethod: [push, push]\n",
    );
    let out = scenario.run(&["plan", yaml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad.yaml:4:22: error[duplicate-method]: a@contoso.com: preferredMethod names push twice"),
        "{}",
        stderr(&out)
    );
    let out = scenario.run(&["show", "a@contoso.com", "--preferred-method", "push,fax"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert_eq!(scenario.stats().requests, 0);
}
