//! The judge, example by example and against a simpler model of the rules.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const GROUP_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const GROUP_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
const ROLE: &str = "62e90394-69f5-4237-9190-012177145e10";

fn user(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x1000 + n)
}

/// A policy as Graph returns it, with these parts.
fn policy_json(name: &str, state: &str, users: Value, grant: Value, extra: Value) -> Value {
    let mut conditions = json!({
        "users": users,
        "applications": { "includeApplications": ["All"], "excludeApplications": [],
                          "includeUserActions": [] },
        "clientAppTypes": ["all"], "platforms": null, "locations": null,
        "signInRiskLevels": [], "userRiskLevels": [], "devices": null
    });
    if let Value::Object(extra) = extra {
        for (key, value) in extra {
            conditions[key] = value;
        }
    }
    json!({ "id": format!("id-{name}"), "displayName": name, "state": state,
            "conditions": conditions, "grantControls": grant })
}

fn mfa() -> Value {
    json!({ "operator": "OR", "builtInControls": ["mfa"] })
}

fn users(include: &[&str], groups: &[&str], exclude_groups: &[&str]) -> Value {
    json!({ "includeUsers": include, "includeGroups": groups, "excludeGroups": exclude_groups,
            "excludeUsers": [], "includeRoles": [], "excludeRoles": [] })
}

/// Facts over `policies`, with group A = {1, 2}, group B = {3}, the role held by 4, and every
/// user a member.
fn facts(policies: Vec<Value>) -> Facts {
    let policies: Vec<CaPolicy> = policies.iter().map(CaPolicy::from_json).collect();
    let mut groups = HashMap::new();
    groups.insert(GROUP_A.to_owned(), Ok(HashSet::from([user(1), user(2)])));
    groups.insert(GROUP_B.to_owned(), Ok(HashSet::from([user(3)])));
    let mut roles = HashMap::new();
    roles.insert(ROLE.to_owned(), Ok(HashSet::from([user(4)])));
    let kinds = (0..8).map(|n| (user(n), UserKind::Member)).collect();
    Facts {
        security_defaults: Ok(false),
        policies: Ok(policies),
        groups,
        roles,
        kinds: Ok(kinds),
    }
}

#[test]
fn a_group_policy_covers_its_members_and_a_report_only_one_is_the_closest_for_the_rest() {
    let facts = facts(vec![
        policy_json(
            "MFA for A",
            "enabled",
            users(&[], &[GROUP_A], &[]),
            mfa(),
            json!({}),
        ),
        policy_json(
            "MFA for all (report-only)",
            "enabledForReportingButNotEnforced",
            users(&["All"], &[], &[]),
            mfa(),
            json!({}),
        ),
    ]);
    let member = facts.judge(Some(user(1)));
    assert_eq!(member.status, CoverageStatus::Covered);
    assert_eq!(member.detail, "covered by \"MFA for A\"");
    assert_eq!(member.policies, ["MFA for A"]);
    let outsider = facts.judge(Some(user(5)));
    assert_eq!(outsider.status, CoverageStatus::NotCovered);
    assert_eq!(
        outsider.detail,
        "no Conditional Access policy requires MFA for this user; the closest, \"MFA for all \
         (report-only)\", is report-only (enabledForReportingButNotEnforced)"
    );
}

#[test]
fn security_defaults_cover_everyone_and_an_unreadable_list_is_never_covered() {
    let mut on = facts(Vec::new());
    on.security_defaults = Ok(true);
    on.policies = Err("HTTP 403".into());
    assert_eq!(on.judge(Some(user(7))).status, CoverageStatus::Covered);
    let mut unreadable = facts(Vec::new());
    unreadable.policies = Err("HTTP 403 Authorization_RequestDenied".into());
    let coverage = unreadable.judge(Some(user(1)));
    assert_eq!(coverage.status, CoverageStatus::Unknown);
    assert!(coverage.detail.contains("HTTP 403"), "{}", coverage.detail);
    let mut defaults_unreadable = facts(Vec::new());
    defaults_unreadable.security_defaults = Err("HTTP 500".into());
    assert_eq!(
        defaults_unreadable.judge(Some(user(1))).status,
        CoverageStatus::Unknown
    );
}

#[test]
fn a_location_condition_gives_partly_covered_and_names_it() {
    let facts = facts(vec![policy_json(
        "MFA outside the office",
        "enabled",
        users(&["All"], &[], &[]),
        mfa(),
        json!({ "locations": { "includeLocations": ["All"], "excludeLocations": ["AllTrusted"] } }),
    )]);
    let coverage = facts.judge(Some(user(1)));
    assert_eq!(coverage.status, CoverageStatus::PartlyCovered);
    assert_eq!(
        coverage.detail,
        "MFA is required only under conditions: \"MFA outside the office\" (locations: all \
         except AllTrusted)"
    );
}

#[test]
fn exclusions_win_and_roles_include() {
    let exclude_b = policy_json(
        "MFA except B",
        "enabled",
        users(&["All"], &[], &[GROUP_B]),
        mfa(),
        json!({}),
    );
    let facts_b = facts(vec![exclude_b]);
    assert_eq!(facts_b.judge(Some(user(1))).status, CoverageStatus::Covered);
    let excluded = facts_b.judge(Some(user(3)));
    assert_eq!(excluded.status, CoverageStatus::NotCovered);
    assert!(
        excluded
            .detail
            .ends_with(&format!("excludes the user (through group {GROUP_B})")),
        "{}",
        excluded.detail
    );
    let admins = policy_json(
        "MFA for admins",
        "enabled",
        json!({ "includeRoles": [ROLE.to_uppercase()] }),
        mfa(),
        json!({}),
    );
    let facts_r = facts(vec![admins]);
    assert_eq!(facts_r.judge(Some(user(4))).status, CoverageStatus::Covered);
    assert_eq!(
        facts_r.judge(Some(user(1))).status,
        CoverageStatus::NotCovered
    );
}

#[test]
fn an_unreadable_group_makes_its_users_unknown_unless_something_else_decides() {
    let mut facts = facts(vec![policy_json(
        "MFA for A",
        "enabled",
        users(&[], &[GROUP_A], &[]),
        mfa(),
        json!({}),
    )]);
    facts.groups.insert(
        GROUP_A.to_owned(),
        Err("HTTP 403: the token lacks GroupMember.Read.All".into()),
    );
    let coverage = facts.judge(Some(user(1)));
    assert_eq!(coverage.status, CoverageStatus::Unknown);
    assert!(coverage.detail.contains("GroupMember.Read.All"));
    // An unreadable exclusion group: unknown too, never covered.
    let mut exclusion = self::facts(vec![policy_json(
        "MFA except A",
        "enabled",
        users(&["All"], &[], &[GROUP_A]),
        mfa(),
        json!({}),
    )]);
    exclusion
        .groups
        .insert(GROUP_A.to_owned(), Err("HTTP 500".into()));
    assert_eq!(
        exclusion.judge(Some(user(6))).status,
        CoverageStatus::Unknown
    );
}

#[test]
fn guests_are_judged_by_their_kind() {
    let mut facts = facts(vec![policy_json(
        "MFA for members",
        "enabled",
        json!({ "includeUsers": ["All"], "excludeUsers": ["GuestsOrExternalUsers"] }),
        mfa(),
        json!({}),
    )]);
    let mut kinds: HashMap<uuid::Uuid, UserKind> = HashMap::new();
    kinds.insert(user(1), UserKind::Member);
    kinds.insert(user(2), UserKind::ExternalGuest);
    facts.kinds = Ok(kinds);
    assert_eq!(facts.judge(Some(user(1))).status, CoverageStatus::Covered);
    assert_eq!(
        facts.judge(Some(user(2))).status,
        CoverageStatus::NotCovered
    );
    // Not in the listing: cannot tell.
    assert_eq!(facts.judge(Some(user(3))).status, CoverageStatus::Unknown);
    assert_eq!(
        UserKind::classify(Some("Member"), Some("a_b.com#EXT#@t.onmicrosoft.com")),
        Some(UserKind::ExternalMember)
    );
    assert_eq!(
        UserKind::classify(Some("Guest"), Some("g@contoso.com")),
        Some(UserKind::InternalGuest)
    );
}

#[test]
fn no_mfa_policy_at_all_says_so() {
    let block = policy_json(
        "Block legacy",
        "enabled",
        users(&["All"], &[], &[]),
        json!({ "operator": "OR", "builtInControls": ["block"] }),
        json!({ "clientAppTypes": ["exchangeActiveSync", "other"] }),
    );
    let coverage = facts(vec![block]).judge(Some(user(1)));
    assert_eq!(coverage.status, CoverageStatus::NotCovered);
    assert!(
        coverage
            .detail
            .contains("none of the 1 Conditional Access policy grants with mfa"),
        "{}",
        coverage.detail
    );
    assert!(
        facts(Vec::new())
            .judge(Some(user(1)))
            .detail
            .contains("no Conditional Access policy and security defaults are off")
    );
}

#[test]
fn only_the_policies_that_could_require_mfa_are_read_further() {
    let policies: Vec<CaPolicy> = [
        policy_json(
            "a",
            "enabled",
            users(&[], &[GROUP_A], &[GROUP_B]),
            mfa(),
            json!({}),
        ),
        policy_json(
            "off",
            "disabled",
            users(&[], &["cccccccc-0000-4000-8000-00000000000c"], &[]),
            mfa(),
            json!({}),
        ),
        policy_json(
            "block",
            "enabled",
            json!({ "includeRoles": [ROLE], "excludeUsers": ["GuestsOrExternalUsers"] }),
            json!({ "operator": "OR", "builtInControls": ["block"] }),
            json!({}),
        ),
    ]
    .iter()
    .map(CaPolicy::from_json)
    .collect();
    let needs = needs(&policies);
    assert_eq!(
        needs.groups.into_iter().collect::<Vec<_>>(),
        [GROUP_A, GROUP_B]
    );
    assert!(needs.roles.is_empty());
    assert!(!needs.kinds);
}

/// One generated policy, in the model's terms.
#[derive(Clone, Debug)]
struct Model {
    state: u8,         // 0 enabled, 1 report-only, 2 disabled
    include: Vec<u8>,  // 0 All, 1 group A, 2 group B, 3 role, 4 user 5 directly
    exclude: Vec<u8>,  // 1 group A, 2 group B, 3 role, 4 user 5 directly
    controls: Vec<u8>, // 0 mfa, 1 compliantDevice, 2 mfa strength, 3 custom strength
    and: bool,
    located: bool,
    apps_all: bool,
}

fn model() -> impl Strategy<Value = Model> {
    (
        0u8..3,
        prop::collection::vec(0u8..5, 0..3),
        prop::collection::vec(1u8..5, 0..2),
        prop::collection::vec(0u8..4, 0..3),
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.8),
    )
        .prop_map(
            |(state, include, exclude, controls, and, located, apps_all)| Model {
                state,
                include,
                exclude,
                controls,
                and,
                located,
                apps_all,
            },
        )
}

impl Model {
    fn json(&self, n: usize) -> Value {
        let target = |t: &u8,
                      users: &mut Vec<String>,
                      groups: &mut Vec<&str>,
                      roles: &mut Vec<&str>| match t {
            0 => users.push("All".into()),
            1 => groups.push(GROUP_A),
            2 => groups.push(GROUP_B),
            3 => roles.push(ROLE),
            _ => users.push(user(5).to_string()),
        };
        let (mut iu, mut ig, mut ir) = (Vec::new(), Vec::new(), Vec::new());
        for t in &self.include {
            target(t, &mut iu, &mut ig, &mut ir);
        }
        let (mut eu, mut eg, mut er) = (Vec::new(), Vec::new(), Vec::new());
        for t in &self.exclude {
            target(t, &mut eu, &mut eg, &mut er);
        }
        let mut built_in = Vec::new();
        let mut strength = Value::Null;
        for c in &self.controls {
            match c {
                0 => built_in.push("mfa"),
                1 => built_in.push("compliantDevice"),
                2 => strength = json!({ "id": "s", "requirementsSatisfied": "mfa" }),
                _ => strength = json!({ "id": "s", "requirementsSatisfied": "none" }),
            }
        }
        let mut extra = json!({});
        if self.located {
            extra["locations"] =
                json!({ "includeLocations": ["All"], "excludeLocations": ["AllTrusted"] });
        }
        let mut policy = policy_json(
            &format!("p{n}"),
            ["enabled", "enabledForReportingButNotEnforced", "disabled"][self.state as usize],
            json!({ "includeUsers": iu, "includeGroups": ig, "includeRoles": ir,
                    "excludeUsers": eu, "excludeGroups": eg, "excludeRoles": er }),
            json!({ "operator": if self.and { "AND" } else { "OR" }, "builtInControls": built_in,
                    "authenticationStrength": strength }),
            extra,
        );
        if !self.apps_all {
            policy["conditions"]["applications"]["includeApplications"] = json!(["Office365"]);
        }
        policy
    }

    /// The rules, said simply: does this policy require MFA of `u` on every sign-in, and
    /// does it at all (under conditions)?
    fn requires(&self, u: u128) -> (bool, bool) {
        let holds = |t: &u8| match t {
            0 => true,
            1 => u == 1 || u == 2,
            2 => u == 3,
            3 => u == 4,
            _ => u == 5,
        };
        let in_scope = self.include.iter().any(holds) && !self.exclude.iter().any(holds);
        let mfa = |c: &u8| matches!(c, 0 | 2);
        // The strength is one alternative however many times it was set; the last one wins.
        let mut alternatives: Vec<bool> =
            self.controls.iter().filter(|c| **c < 2).map(mfa).collect();
        if let Some(last) = self.controls.iter().rev().find(|c| **c >= 2) {
            alternatives.push(mfa(last));
        }
        let grant = !alternatives.is_empty()
            && if self.and {
                alternatives.iter().any(|m| *m)
            } else {
                alternatives.iter().all(|m| *m)
            };
        let applies = self.state == 0 && in_scope && grant;
        (applies && !self.located && self.apps_all, applies)
    }
}

proptest! {
    /// Covered exactly when the simple model finds a policy that requires MFA on every
    /// sign-in; partly covered exactly when it finds one under conditions only.
    #[test]
    fn the_judge_agrees_with_the_rules(policies in prop::collection::vec(model(), 0..4), u in 0u128..7) {
        let facts = facts(policies.iter().enumerate().map(|(n, p)| p.json(n)).collect());
        let coverage = facts.judge(Some(user(u)));
        let always = policies.iter().any(|p| p.requires(u).0);
        let sometimes = policies.iter().any(|p| p.requires(u).1);
        prop_assert_eq!(coverage.status == CoverageStatus::Covered, always, "{:?}", coverage);
        prop_assert_eq!(
            coverage.status == CoverageStatus::PartlyCovered,
            sometimes && !always,
            "{:?}", coverage
        );
        prop_assert_ne!(coverage.status, CoverageStatus::Unknown);
    }

    /// Whatever the policies, a group that cannot be read never makes anyone covered who is
    /// not covered without it.
    #[test]
    fn an_unreadable_group_never_covers(policies in prop::collection::vec(model(), 0..4), u in 0u128..7) {
        let readable = facts(policies.iter().enumerate().map(|(n, p)| p.json(n)).collect());
        let mut unreadable = readable.clone();
        unreadable.groups.insert(GROUP_A.to_owned(), Err("HTTP 403".into()));
        unreadable.groups.insert(GROUP_B.to_owned(), Err("HTTP 403".into()));
        let known = readable.judge(Some(user(u)));
        let unsure = unreadable.judge(Some(user(u)));
        if unsure.status == CoverageStatus::Covered {
            prop_assert_eq!(known.status, CoverageStatus::Covered);
        }
        if known.status != CoverageStatus::Covered {
            prop_assert_ne!(unsure.status, CoverageStatus::Covered);
        }
    }
}
