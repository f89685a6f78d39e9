//! Synthetic tenants of any size for tests, demos and benchmarks (`mfactl emulator generate`).
//!
//! A benchmark is only comparable across runs if its tenant is identical, so the output is a
//! pure function of `(users, seed)`: every random choice, GUIDs included, comes from one
//! `StdRng` seeded with `seed`. The mix of registered methods follows what a mid-size Entra
//! tenant looks like (mostly Authenticator and phones, a tail of OATH, FIDO2 and Windows Hello,
//! some users with no MFA method at all), and the file is always self-consistent: a preferred
//! method is one the user's methods enable, and `enabled` appears only where Graph would not
//! already have promoted it to `enforced`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::tenant::{Group, MAX_USERS, Tenant, TenantUser, UserSignInPreferences, UserType};
use mfactl_core::model::{MethodKind, PerUserMfaState, PreferredMethod};

const FIRST_NAMES: &[&str] = &[
    "adele",
    "alex",
    "diego",
    "grady",
    "henrietta",
    "isaiah",
    "johanna",
    "joni",
    "lee",
    "lidia",
    "lynne",
    "megan",
    "miriam",
    "nestor",
    "patti",
    "pradeep",
    "irvin",
    "allan",
    "christie",
    "debra",
];
const LAST_NAMES: &[&str] = &[
    "vance",
    "wilber",
    "siciliani",
    "archie",
    "mueller",
    "langer",
    "lauer",
    "sherman",
    "gu",
    "holloway",
    "robbins",
    "bowen",
    "graham",
    "wilke",
    "fernandez",
    "gupta",
    "sampson",
    "deyoung",
    "cline",
    "berry",
];
const GUEST_DOMAINS: &[&str] = &["fabrikam.com", "northwindtraders.com", "tailspintoys.com"];

fn guid(rng: &mut StdRng) -> String {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Draws a user's registered methods from the tenant-wide mix.
fn methods(rng: &mut StdRng) -> Vec<MethodKind> {
    use MethodKind as M;
    let roll = rng.random_range(0..100u32);
    let mut methods = match roll {
        0..40 => vec![M::MicrosoftAuthenticator, M::MobilePhone],
        40..55 => vec![M::MobilePhone],
        55..63 => {
            if rng.random_bool(0.5) {
                vec![M::MicrosoftAuthenticator, M::SoftwareOath]
            } else {
                vec![M::SoftwareOath]
            }
        }
        63..66 => vec![M::HardwareOath, M::MobilePhone],
        66..71 => vec![M::Fido2, M::MicrosoftAuthenticator],
        71..75 => vec![M::WindowsHelloForBusiness, M::MicrosoftAuthenticator],
        75..80 => vec![M::MobilePhone, M::OfficePhone],
        80..84 => vec![M::MicrosoftAuthenticator],
        84..92 => Vec::new(),
        _ => vec![M::MicrosoftAuthenticator, M::MobilePhone, M::Email],
    };
    // Some phone users also keep an alternate mobile.
    if methods.contains(&M::MobilePhone) && rng.random_bool(0.08) {
        methods.push(M::AlternateMobilePhone);
    }
    methods
}

/// A preferred method the methods enable (push favoured, as the Authenticator app nudges), or none.
fn preferred(rng: &mut StdRng, methods: &[MethodKind]) -> Option<PreferredMethod> {
    let usable = PreferredMethod::usable_with(methods);
    if usable.is_empty() || rng.random_bool(0.25) {
        return None;
    }
    if usable.contains(&PreferredMethod::Push) && rng.random_bool(0.6) {
        return Some(PreferredMethod::Push);
    }
    Some(usable[rng.random_range(0..usable.len())])
}

impl Tenant {
    /// A synthetic tenant of `users` users, identical for the same `(users, seed)`.
    ///
    /// `users` should be at most [`MAX_USERS`], the most the loader is sized for (the CLI refuses
    /// more); zero gives a valid empty tenant, in which every user is "not found".
    pub fn generate(users: usize, seed: u64) -> Tenant {
        let mut rng = StdRng::seed_from_u64(seed);
        let tenant_id = guid(&mut rng);
        let domain = "contoso.onmicrosoft.com".to_owned();
        // Reserving for an absurd count would abort on capacity overflow before doing anything.
        let mut generated = Vec::with_capacity(users.min(MAX_USERS));
        for number in 0..users {
            let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
            let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
            let guest = rng.random_bool(0.05);
            // The number keeps UPNs unique however small the name lists are.
            let user_principal_name = if guest {
                let home = GUEST_DOMAINS[rng.random_range(0..GUEST_DOMAINS.len())];
                format!("{first}.{last}{number:04}_{home}#EXT#@{domain}")
            } else {
                format!("{first}.{last}{number:04}@{domain}")
            };
            let methods = methods(&mut rng);
            let has_mfa = MethodKind::any_for_mfa(&methods);
            let preferred = preferred(&mut rng, &methods);
            let system_preferred = rng.random_bool(0.6);
            // Graph promotes `enabled` to `enforced` once a method is registered, so `enabled`
            // only survives on users without one.
            let per_user_mfa_state = match (has_mfa, rng.random_range(0..100u32)) {
                (true, 0..55) | (false, 0..60) => PerUserMfaState::Disabled,
                (true, _) => PerUserMfaState::Enforced,
                (false, _) => PerUserMfaState::Enabled,
            };
            let account_enabled = !rng.random_bool(0.03);
            generated.push(TenantUser {
                id: guid(&mut rng),
                user_principal_name,
                display_name: Some(format!("{} {}", capitalised(first), capitalised(last))),
                user_type: if guest {
                    UserType::Guest
                } else {
                    UserType::Member
                },
                account_enabled,
                methods,
                sign_in_preferences: UserSignInPreferences {
                    is_system_preferred_authentication_method_enabled: system_preferred,
                    user_preferred_method_for_secondary_authentication: preferred,
                },
                per_user_mfa_state,
                forgets_writes: false,
            });
        }

        let mut groups = Vec::new();
        for (name, share) in [("MFA Pilot", 0.05), ("Finance", 0.10)] {
            let id = guid(&mut rng);
            let members = generated
                .iter()
                .filter(|_| rng.random_bool(share))
                .map(|u| u.id.clone())
                .collect();
            groups.push(Group {
                id,
                display_name: Some(name.to_owned()),
                members,
            });
        }
        let pilot = groups[0].id.clone();

        Tenant {
            tenant_id,
            domain,
            users: generated,
            groups,
            auth: None,
            security_defaults: None,
            conditional_access_policies: Vec::new(),
            role_assignments: Vec::new(),
            authentication_methods_policy: Some(json!({
                "id": "authenticationMethodsPolicy",
                "systemCredentialPreferences": {
                    "state": "default",
                    "includeTargets": [{ "id": "all_users", "targetType": "group" }],
                    "excludeTargets": [],
                },
                "registrationEnforcement": {
                    "authenticationMethodsRegistrationCampaign": {
                        "state": "default",
                        "snoozeDurationInDays": 1,
                        "enforceRegistrationAfterAllowedSnoozes": true,
                        "includeTargets": [{
                            "id": "all_users",
                            "targetType": "group",
                            "targetedAuthenticationMethod": "microsoftAuthenticator",
                        }],
                        "excludeTargets": [],
                    },
                },
                "reportSuspiciousActivitySettings": {
                    "state": "default",
                    "includeTarget": { "id": pilot, "targetType": "group" },
                    "voiceReportingCode": 0,
                },
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tenants_get_the_ru_tier_of_their_size() {
        // graph-api.md §6: under 50 users 3,500 RU per 10 s; 50–500 5,000; over 500 8,000.
        for (users, tier) in [
            (0, 3_500),
            (49, 3_500),
            (50, 5_000),
            (500, 5_000),
            (501, 8_000),
            (12_000, 8_000),
        ] {
            let tenant = Tenant::generate(users, 1);
            assert_eq!(tenant.users.len(), users);
            assert_eq!(tenant.ru_tier(), tier, "{users} users");
        }
    }

    #[test]
    fn an_empty_generated_tenant_is_a_valid_tenant() {
        let tenant = Tenant::generate(0, 1);
        assert!(tenant.users.is_empty());
        assert!(tenant.groups.iter().all(|g| g.members.is_empty()));
        assert_eq!(Tenant::from_yaml_str(&tenant.to_yaml()).unwrap(), tenant);
    }

    #[test]
    fn upns_stay_unique_past_the_four_digit_padding() {
        let tenant = Tenant::generate(12_000, 5);
        let mut upns: Vec<_> = tenant
            .users
            .iter()
            .map(|u| u.user_principal_name.to_lowercase())
            .collect();
        upns.sort();
        upns.dedup();
        assert_eq!(upns.len(), 12_000);
    }
}
