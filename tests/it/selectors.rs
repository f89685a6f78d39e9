//! Whole-tenant manifests (issue 10): `allUsers:`, `groups:` and `exclude:` resolved at plan
//! time against the emulator's directory, with `users:` entries beating groups and groups
//! beating `allUsers`, field by field.

use std::collections::{BTreeSet, HashMap};

use mfactl::model::PerUserMfaState;
use mfactl_emulator::{EmulatorConfig, Group, Tenant, UserType};
use serde_json::Value;

use crate::support::{Scenario, stderr};

const PILOT: &str = "5d1b6c1e-0000-4000-8000-00000000c001";
const NESTED: &str = "5d1b6c1e-0000-4000-8000-00000000c002";
const BREAK_GLASS: &str = "5d1b6c1e-0000-4000-8000-00000000c003";

/// Several thousand users; "Pilot" holds 40 users and "Nested" (30 more, and a user of the
/// break-glass group); "Break-glass admins" holds three.
fn tenant() -> Tenant {
    let mut tenant = Tenant::generate(3_000, 61);
    let ids: Vec<String> = tenant.users.iter().map(|u| u.id.clone()).collect();
    tenant.groups.push(Group {
        id: PILOT.into(),
        display_name: Some("Pilot".into()),
        members: ids[0..40]
            .iter()
            .cloned()
            .chain([NESTED.to_owned()])
            .collect(),
    });
    tenant.groups.push(Group {
        id: NESTED.into(),
        display_name: Some("Nested".into()),
        members: ids[100..130]
            .iter()
            .cloned()
            .chain([ids[7].clone()])
            .collect(),
    });
    tenant.groups.push(Group {
        id: BREAK_GLASS.into(),
        display_name: Some("Break-glass admins".into()),
        members: ids[5..8].to_vec(),
    });
    tenant
}

fn unthrottled(tenant: Tenant) -> Scenario {
    Scenario::with_config(
        tenant,
        EmulatorConfig {
            throttle: false,
            ..EmulatorConfig::default()
        },
    )
}

/// (perUserMfaState, systemPreferred) a user should end with, when the manifest reaches them.
type Wanted = (Option<PerUserMfaState>, Option<bool>);

#[test]
fn all_users_with_exclusions_and_a_group_override_plans_exactly_the_expected_users() {
    let tenant = tenant();
    let users = &tenant.users;
    let excluded_user = users[9].user_principal_name.clone();
    let entry_user = users[20].user_principal_name.clone(); // in Pilot
    let manifest = format!(
        "version: 1
allUsers:
  perUserMfaState: disabled
  systemPreferred: true
groups:
  - group: Pilot
    systemPreferred: false
exclude:
  - user: {excluded_user}
  - group: Break-glass admins
users:
  - user: {entry_user}
    perUserMfaState: enforced
"
    );
    // What the manifest means, worked out here from the tenant.
    let pilot: BTreeSet<&str> = users[0..40]
        .iter()
        .chain(&users[100..130])
        .chain([&users[7]])
        .map(|u| u.id.as_str())
        .collect();
    let excluded: BTreeSet<&str> = [&users[5], &users[6], &users[7], &users[9]]
        .iter()
        .map(|u| u.id.as_str())
        .collect();
    let mut wanted: HashMap<&str, Wanted> = HashMap::new();
    for user in users {
        let id = user.id.as_str();
        if excluded.contains(id) {
            continue;
        }
        let member = user.user_type == UserType::Member;
        let in_pilot = pilot.contains(id);
        let state = member.then_some(PerUserMfaState::Disabled);
        let system = if in_pilot {
            Some(false)
        } else {
            member.then_some(true)
        };
        if state.is_some() || system.is_some() {
            wanted.insert(id, (state, system));
        }
    }
    wanted.insert(
        users[20].id.as_str(),
        (Some(PerUserMfaState::Enforced), Some(false)),
    );

    let scenario = unthrottled(tenant.clone());
    let path = scenario.write("everyone.yaml", &manifest);
    let (code, plan) = scenario.plan_json(&path);
    assert_eq!(code, 2, "{plan}");
    assert_eq!(
        plan["summary"]["users"],
        wanted.len() as u64,
        "{}",
        plan["summary"]
    );

    // Every user the plan lists is one the manifest reaches, with exactly the changes its
    // wanted values make; every reached user not listed is already there.
    let listed: HashMap<String, &Value> = plan["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_owned(), u))
        .collect();
    for user in users {
        let entry = listed.get(&user.id);
        let Some((state, system)) = wanted.get(user.id.as_str()) else {
            assert!(entry.is_none(), "{} is not reached: {entry:?}", user.id);
            continue;
        };
        let mut changes = BTreeSet::new();
        if let Some(state) = state
            && !state.is_met_by(user.per_user_mfa_state, user.has_mfa_method())
        {
            changes.insert(("perUserMfaState", state.as_str().to_owned()));
        }
        if let Some(system) = system
            && *system
                != user
                    .sign_in_preferences
                    .is_system_preferred_authentication_method_enabled
        {
            changes.insert(("systemPreferred", system.to_string()));
        }
        let planned: BTreeSet<(&str, String)> = entry
            .map(|e| {
                e["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| {
                        let after = match &f["after"] {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (f["field"].as_str().unwrap(), after)
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(planned, changes, "{}", user.user_principal_name);
        if let Some(entry) = entry {
            // Pinned by object id, named by userPrincipalName.
            assert_eq!(entry["user"], user.user_principal_name.as_str());
        }
    }
    // Reached by a selector, a user needs no lookup of its name: the identity calls are the
    // listing's pages (a first page, then 45 parallel streams of a page or two for a tenant of
    // more than three pages), the two groups' names and members, and the excluded user.
    let identity = plan["summary"]["calls"]["identity"].as_u64().unwrap();
    assert!(identity < 20 + 45, "{}", plan["summary"]["calls"]);
}

#[test]
fn two_groups_giving_one_user_different_values_is_an_error_naming_both() {
    let tenant = tenant();
    let shared = tenant.users[7].user_principal_name.clone(); // in Nested (so Pilot) and Break-glass
    let scenario = unthrottled(tenant);
    let path = scenario.write(
        "groups.yaml",
        "version: 1
groups:
  - group: Pilot
    systemPreferred: true
  - group: Break-glass admins
    systemPreferred: false
",
    );
    let out = scenario.run(&["plan", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&shared), "{err}");
    assert!(
        err.contains("\"Pilot\" (line 3") && err.contains("\"Break-glass admins\" (line 5"),
        "{err}"
    );
    assert!(err.contains("priority"), "{err}");
    assert_eq!(scenario.stats().writes, 0);

    // A priority settles it: the lower number wins.
    let path = scenario.write(
        "groups.yaml",
        "version: 1
groups:
  - group: Pilot
    systemPreferred: true
  - group: Break-glass admins
    systemPreferred: false
    priority: 1
",
    );
    let (code, plan) = scenario.plan_json(&path);
    assert!(code == 0 || code == 2, "{plan}");
    let user = plan["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == shared.as_str());
    if let Some(user) = user {
        assert_eq!(user["fields"][0]["after"], false, "{user}");
    }
}

#[test]
fn a_group_no_group_carries_is_an_error_with_its_line() {
    let scenario = unthrottled(tenant());
    let path = scenario.write(
        "groups.yaml",
        "version: 1\ngroups:\n  - group: Nobody Here\n    perUserMfaState: disabled\n",
    );
    let out = scenario.run(&["plan", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("line 3: no group is named \"Nobody Here\""),
        "{err}"
    );
}

/// A name the directory lists is Graph's, unchecked: it reaches the terminal escaped.
#[test]
fn a_hostile_name_from_the_listing_is_shown_escaped() {
    let mut tenant = Tenant::generate(20, 62);
    tenant.users[0].user_principal_name = "evil\u{1b}[2J\u{202e}@contoso.com".into();
    tenant.users[0].user_type = UserType::Member;
    tenant.users[0].per_user_mfa_state = PerUserMfaState::Enforced;
    let scenario = unthrottled(tenant);
    let path = scenario.write(
        "all.yaml",
        "version: 1\nallUsers:\n  perUserMfaState: disabled\n",
    );
    let out = scenario.run(&["plan", path.to_str().unwrap()]);
    let (text, err) = (crate::support::stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text}"
    );
    assert!(
        text.contains("evil\\u{1b}[2J\\u{202e}@contoso.com"),
        "{text}"
    );
}
