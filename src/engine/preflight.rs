//! Least privilege, checked before the first request that needs it: what a run needs (per
//! resource, read or write, from the manifest and then the plan) against what the token says
//! it holds (an app token's `roles`, a delegated token's `scp`).
//!
//! Best effort: an opaque token, or a delegated one whose admin's directory role decides as
//! much as its scopes, may still be refused; Graph's 403 then gets the same wording
//! ([`super::RunError::Forbidden`]).

use std::fmt;

use crate::graph::permissions::{Access, Need, Resource};
use crate::manifest::Manifest;
use crate::model::{Endpoint, PerUserMfaState};
use crate::plan::{Plan, Status};

/// One access the run needs, and why: how many users' changes or reads need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub need: Need,
    /// What needs it, e.g. "reading 1,200 users' perUserMfaState".
    pub why: String,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.need.least(), self.why)
    }
}

/// The reads a plan of `manifest` makes: each managed endpoint, the registered methods when a
/// preferred method is managed or `enabled` is wanted (read only for the users Graph shows
/// `enforced`, but a token must be able to), and the UPN lookups when users are named by UPN.
pub fn reads(manifest: &Manifest) -> Vec<Requirement> {
    let (mut sign_in, mut requirements, mut methods, mut by_upn) = (0u64, 0u64, 0u64, 0u64);
    for user in &manifest.users {
        sign_in += u64::from(user.manages_sign_in_preferences());
        requirements += u64::from(user.manages_requirements());
        methods += u64::from(
            user.preferred_method.is_some()
                || user.per_user_mfa_state == Some(PerUserMfaState::Enabled),
        );
        by_upn += u64::from(uuid::Uuid::parse_str(&user.user).is_err());
    }
    let mut out = Vec::new();
    let mut add = |count: u64, resource: Resource, what: &str| {
        if count > 0 {
            out.push(Requirement {
                need: resource.read(),
                why: format!("{what} of {}", users(count)),
            });
        }
    };
    add(
        sign_in,
        Resource::SignInPreferences,
        "reading signInPreferences",
    );
    add(
        requirements,
        Resource::Requirements,
        "reading perUserMfaState",
    );
    add(
        methods,
        Resource::Methods,
        "checking the registered methods",
    );
    add(by_upn, Resource::Users, "resolving the userPrincipalName");
    let selected = SelectedFields::of(manifest);
    let reached = "of the users `allUsers:` and `groups:` reach";
    for (wanted, resource, what) in [
        (
            selected.sign_in,
            Resource::SignInPreferences,
            "reading signInPreferences",
        ),
        (
            selected.requirements,
            Resource::Requirements,
            "reading perUserMfaState",
        ),
        (
            selected.methods,
            Resource::Methods,
            "checking the registered methods",
        ),
    ] {
        if wanted {
            out.push(Requirement {
                need: resource.read(),
                why: format!("{what} {reached}"),
            });
        }
    }
    if !manifest.protect.is_empty() {
        out.push(Requirement {
            need: Resource::Users.read(),
            why: format!(
                "resolving the `protect:` list ({}) to object ids",
                users(manifest.protect.len() as u64)
            ),
        });
    }
    let selectors = &manifest.selectors;
    if selectors.all_users.is_some() {
        out.push(Requirement {
            need: Resource::Users.read(),
            why: "listing the tenant's users for `allUsers:`".to_owned(),
        });
    }
    let groups = selectors.groups.len()
        + selectors
            .exclude
            .iter()
            .filter(|e| matches!(e.excluded, crate::manifest::selectors::Excluded::Group(_)))
            .count();
    if groups > 0 {
        out.push(Requirement {
            need: Resource::Groups.read(),
            why: format!(
                "finding {groups} {} of `groups:`/`exclude:` and listing their members",
                if groups == 1 { "group" } else { "groups" }
            ),
        });
    }
    if let Some(policy) = &manifest.policy {
        out.push(Requirement {
            need: Resource::Policy.read(),
            why: "reading the tenant's authenticationMethodsPolicy".to_owned(),
        });
        let by_name = policy.parts.iter().any(|part| {
            part.properties.iter().any(|p| {
                use crate::manifest::policy::{DesiredValue, TargetId};
                let named = |t: &crate::manifest::policy::DesiredTarget| {
                    matches!(t.id, TargetId::DisplayName(_))
                };
                match &p.value {
                    DesiredValue::Targets(targets) => targets.iter().any(named),
                    DesiredValue::Target(target) => named(target),
                    DesiredValue::Plain(_) => false,
                }
            })
        });
        if by_name {
            out.push(Requirement {
                need: Resource::Groups.read(),
                why: "finding the policy's groups by display name".to_owned(),
            });
        }
    }
    out
}

/// The reads `mfactl show` cannot do without, for the `named` users (already checked): the sign-in
/// preferences, the per-user MFA state and the registered methods of each, and the UPN lookups
/// when users are named by UPN. The tenant policy and the users' groups are read too, but best
/// effort (a refusal there leaves a question open, it fails nothing), so they are not required.
pub fn show_reads(named: &[String]) -> Vec<Requirement> {
    let count = named.len() as u64;
    let by_upn = named
        .iter()
        .filter(|user| uuid::Uuid::parse_str(user).is_err())
        .count() as u64;
    let mut out = vec![
        Requirement {
            need: Resource::SignInPreferences.read(),
            why: format!("reading signInPreferences of {}", users(count)),
        },
        Requirement {
            need: Resource::Requirements.read(),
            why: format!("reading perUserMfaState of {}", users(count)),
        },
        Requirement {
            need: Resource::Methods.read(),
            why: format!("listing the registered methods of {}", users(count)),
        },
    ];
    if by_upn > 0 {
        out.push(Requirement {
            need: Resource::Users.read(),
            why: format!("resolving the userPrincipalName of {}", users(by_upn)),
        });
    }
    out
}

/// The reads `mfactl export` makes: listing the users (or reading the named ones), each user's
/// signInPreferences and requirements, and for a tenant file the registered methods, the groups
/// with their members and the policy; `group` when it reads a group's members.
pub fn export_reads(tenant_file: bool, group: bool) -> Vec<Requirement> {
    let need = |resource: Resource, why: &str| Requirement {
        need: resource.read(),
        why: why.to_owned(),
    };
    let mut out = vec![
        need(Resource::Users, "listing the users"),
        need(
            Resource::SignInPreferences,
            "reading every user's signInPreferences",
        ),
        need(
            Resource::Requirements,
            "reading every user's perUserMfaState",
        ),
    ];
    if group || tenant_file {
        out.push(need(Resource::Groups, "reading groups and their members"));
    }
    if tenant_file {
        out.push(need(
            Resource::Methods,
            "listing every user's registered methods",
        ));
        out.push(need(
            Resource::Policy,
            "reading the tenant's authenticationMethodsPolicy",
        ));
    }
    out
}

/// The writes applying `plan` makes, per endpoint, and the policy's.
pub fn writes(plan: &Plan) -> Vec<Requirement> {
    let policy = plan
        .policy
        .as_ref()
        .filter(|p| p.status == Status::Change && p.has_write())
        .map(|_| Requirement {
            need: Resource::Policy.write(),
            why: "writing the tenant's authenticationMethodsPolicy".to_owned(),
        });
    Endpoint::ALL
        .iter()
        .filter_map(|endpoint| {
            let count = plan
                .users
                .iter()
                .filter(|u| matches!(u.status, Status::Change | Status::Blocked))
                .filter(|u| u.write(*endpoint).is_some())
                .count() as u64;
            (count > 0).then(|| Requirement {
                need: Resource::of(*endpoint).write(),
                why: format!("writing {endpoint} of {}", users(count)),
            })
        })
        .chain(policy)
        .collect()
}

/// The fields `allUsers:` and `groups:` manage, over all of them: what their users need read
/// and may need written.
#[derive(Clone, Copy, Debug, Default)]
struct SelectedFields {
    sign_in: bool,
    requirements: bool,
    methods: bool,
}

impl SelectedFields {
    fn of(manifest: &Manifest) -> SelectedFields {
        let selectors = &manifest.selectors;
        let settings = selectors
            .all_users
            .iter()
            .map(|all| all.settings)
            .chain(selectors.groups.iter().map(|group| group.settings));
        let mut fields = SelectedFields::default();
        for settings in settings {
            fields.sign_in |=
                settings.preferred_method.is_some() || settings.system_preferred.is_some();
            fields.requirements |= settings.per_user_mfa_state.is_some();
            fields.methods |= settings.preferred_method.is_some()
                || settings.per_user_mfa_state == Some(PerUserMfaState::Enabled);
        }
        fields
    }
}

/// The writes an apply of `manifest` could make: every endpoint it manages, for its users and
/// those its selectors reach (for `auth check` and `login --for`, before any plan exists).
pub fn possible_writes(manifest: &Manifest) -> Vec<Requirement> {
    let selected = SelectedFields::of(manifest);
    Endpoint::ALL
        .iter()
        .filter_map(|endpoint| {
            let count = manifest
                .users
                .iter()
                .filter(|u| match endpoint {
                    Endpoint::SignInPreferences => u.manages_sign_in_preferences(),
                    Endpoint::Requirements => u.manages_requirements(),
                })
                .count() as u64;
            let by_selectors = match endpoint {
                Endpoint::SignInPreferences => selected.sign_in,
                Endpoint::Requirements => selected.requirements,
            };
            let whom = match (count, by_selectors) {
                (0, false) => return None,
                (0, true) => "the users `allUsers:` and `groups:` reach".to_owned(),
                (count, false) => format!("up to {}", users(count)),
                (count, true) => format!(
                    "up to {} and the users `allUsers:` and `groups:` reach",
                    users(count)
                ),
            };
            Some(Requirement {
                need: Resource::of(*endpoint).write(),
                why: format!("changing {endpoint} of {whom}"),
            })
        })
        .chain(manifest.policy.as_ref().map(|_| Requirement {
            need: Resource::Policy.write(),
            why: "changing the tenant's authenticationMethodsPolicy".to_owned(),
        }))
        .collect()
}

/// The requirements `granted` does not meet.
pub fn missing<'a, S: AsRef<str>>(
    required: &'a [Requirement],
    granted: &[S],
) -> Vec<&'a Requirement> {
    required
        .iter()
        .filter(|r| !r.need.is_met_by(granted))
        .collect()
}

/// "the token lacks Policy.ReadWrite.AuthenticationMethod, needed for writing requirements of
/// 120 users".
pub fn render_missing(missing: &[&Requirement]) -> String {
    let lines: Vec<String> = missing
        .iter()
        .map(|r| {
            let access = match r.need.access {
                Access::Read => "read",
                Access::Write => "write",
            };
            format!(
                "{} (to {access} {}), needed for {}",
                r.need.least(),
                r.need.resource.describe(),
                r.why
            )
        })
        .collect();
    format!("the token lacks {}", lines.join("; and "))
}

fn users(count: u64) -> String {
    let n = crate::text::thousands(count);
    if count == 1 {
        format!("{n} user")
    } else {
        format!("{n} users")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(yaml: &str) -> Manifest {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desired.yaml");
        std::fs::write(&path, yaml).unwrap();
        crate::manifest::load(&path).expect("manifest")
    }

    #[test]
    fn reads_follow_what_the_manifest_manages() {
        let m = manifest(
            "version: 1\nusers:\n  - user: megan@contoso.com\n    perUserMfaState: disabled\n  \
             - user: 071cc716-8147-4397-a5ba-b2105951cc0b\n    preferredMethod: push\n",
        );
        let needs: Vec<Need> = reads(&m).iter().map(|r| r.need).collect();
        assert_eq!(
            needs,
            [
                Resource::SignInPreferences.read(),
                Resource::Requirements.read(),
                Resource::Methods.read(),
                Resource::Users.read(),
            ]
        );
        let writes = possible_writes(&m);
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[1].why, "changing requirements of up to 1 user");
    }

    #[test]
    fn enabled_wanted_may_need_the_registered_methods() {
        let m = manifest(
            "version: 1\nusers:\n  - user: 071cc716-8147-4397-a5ba-b2105951cc0b\n    \
             perUserMfaState: enabled\n",
        );
        let needs: Vec<Need> = reads(&m).iter().map(|r| r.need).collect();
        assert_eq!(
            needs,
            [Resource::Requirements.read(), Resource::Methods.read()]
        );
    }

    #[test]
    fn protected_accounts_are_resolved_with_the_users_read() {
        let m = manifest(
            "version: 1\nprotect: [breakglass@contoso.com]\nusers:\n  - user: \
             071cc716-8147-4397-a5ba-b2105951cc0b\n    perUserMfaState: disabled\n",
        );
        let required = reads(&m);
        let needs: Vec<Need> = required.iter().map(|r| r.need).collect();
        assert_eq!(
            needs,
            [Resource::Requirements.read(), Resource::Users.read()]
        );
        assert_eq!(
            required[1].why,
            "resolving the `protect:` list (1 user) to object ids"
        );
    }

    #[test]
    fn what_is_missing_is_named_with_why() {
        let m = manifest(
            "version: 1\nusers:\n  - user: 071cc716-8147-4397-a5ba-b2105951cc0b\n    \
             perUserMfaState: disabled\n    systemPreferred: true\n",
        );
        let mut required = reads(&m);
        required.extend(possible_writes(&m));
        let granted = ["UserAuthenticationMethod.ReadWrite.All", "Policy.Read.All"];
        let missing = missing(&required, &granted);
        assert_eq!(missing.len(), 1);
        assert_eq!(
            render_missing(&missing),
            "the token lacks Policy.ReadWrite.AuthenticationMethod (to write requirements \
             (per-user MFA state)), needed for changing requirements of up to 1 user"
        );
    }
}
