//! Least privilege, checked before the first request that needs it: what a run needs (per
//! resource, read or write, from the manifest and then the plan) against what the token says
//! it holds (an app token's `roles`, a delegated token's `scp`).
//!
//! Best effort: an opaque token, or a delegated one whose admin's directory role decides as
//! much as its scopes, may still be refused; Graph's 403 then gets the same wording
//! ([`super::RunError::Forbidden`]).

use std::fmt;

use crate::graph::permissions::{Access, Need, Resource, TokenKind};
use crate::manifest::policy::{DesiredPolicy, DesiredTarget, DesiredValue, TargetId};
use crate::manifest::selectors::{Excluded, Selectors};
use crate::manifest::{Manifest, Settings};
use crate::model::{Endpoint, PerUserMfaState};
use crate::plan::{Plan, Status};
use crate::text::printable;

/// One access the run needs, and why: which part of the manifest needs it, for how many users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub need: Need,
    /// What needs it, e.g. "reading perUserMfaState of 1,200 users in `users:`".
    pub why: String,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.need.least(), self.why)
    }
}

/// Whether the cloud serves `/authentication/methods` (not the China cloud): a run there reads
/// no registered methods, so needs no permission to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodsReadable(pub bool);

/// The reads a plan of `manifest` makes, each with the part of the manifest that needs it:
/// - `users:` entries: each managed endpoint, the registered methods when a preferred method
///   is managed or `enabled` is wanted (read only for the users Graph shows `enforced`, but a
///   token must be able to), and the UPN lookups when users are named by UPN;
/// - `protect:`: the lookups that pin each protected account;
/// - `allUsers:`, `groups:`, `exclude:`: the listings that find their users, and the same
///   per-user reads as entries, for every user they reach;
/// - `policy:`: the policy, and the groups it names by display name;
/// - a `perUserMfaState: disabled` anywhere: the Conditional Access policies.
pub fn reads(manifest: &Manifest, methods: MethodsReadable) -> Vec<Requirement> {
    let mut out = Vec::new();
    entry_reads(manifest, methods, &mut out);
    if !manifest.protect.is_empty() {
        out.push(Requirement {
            need: Resource::UserBasic.read(),
            why: format!(
                "resolving the `protect:` list ({}) to object ids",
                users(manifest.protect.len() as u64)
            ),
        });
    }
    selector_reads(&manifest.selectors, methods, &mut out);
    coverage_reads(manifest, &mut out);
    if let Some(policy) = &manifest.policy {
        policy_reads(policy, &mut out);
    }
    out
}

/// When the manifest disables per-user MFA for anyone: the Conditional Access policies and
/// security defaults that tell whether MFA stays required ([`super::coverage`]). The groups,
/// roles and users the policies name are read best effort, so they are not required here.
fn coverage_reads(manifest: &Manifest, out: &mut Vec<Requirement>) {
    let disables =
        |settings: &Settings| settings.per_user_mfa_state == Some(PerUserMfaState::Disabled);
    let disabling = manifest
        .users
        .iter()
        .filter(|u| disables(&u.settings()))
        .count() as u64;
    let selectors = &manifest.selectors;
    let selected = selectors
        .all_users
        .iter()
        .map(|all| &all.settings)
        .chain(selectors.groups.iter().map(|g| &g.settings))
        .any(disables);
    if disabling == 0 && !selected {
        return;
    }
    let whom = if selected {
        "the users the manifest disables per-user MFA for".to_owned()
    } else {
        users(disabling)
    };
    out.push(Requirement {
        need: Resource::ConditionalAccess.read(),
        why: format!(
            "reading the Conditional Access policies and security defaults, to check that MFA \
             stays required for {whom}"
        ),
    });
}

/// The reads of the `users:` entries (see [`reads`]).
fn entry_reads(manifest: &Manifest, methods: MethodsReadable, out: &mut Vec<Requirement>) {
    let (mut sign_in, mut requirements, mut registered, mut by_upn) = (0u64, 0u64, 0u64, 0u64);
    for user in &manifest.users {
        sign_in += u64::from(user.manages_sign_in_preferences());
        requirements += u64::from(user.manages_requirements());
        registered += u64::from(needs_methods(&user.settings()));
        by_upn += u64::from(uuid::Uuid::parse_str(&user.user).is_err());
    }
    let mut add = |count: u64, resource: Resource, what: &str| {
        if count > 0 {
            out.push(Requirement {
                need: resource.read(),
                why: format!("{what} of {} in `users:`", users(count)),
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
    if methods.0 {
        add(
            registered,
            Resource::Methods,
            "checking the registered methods",
        );
    }
    add(
        by_upn,
        Resource::UserBasic,
        "resolving the userPrincipalName",
    );
}

/// Whether users with `settings` may need their registered methods read: a preferred method
/// must be usable, and `enabled` against `enforced` depends on a registered method.
fn needs_methods(settings: &Settings) -> bool {
    settings.preferred_method.is_some()
        || settings.per_user_mfa_state == Some(PerUserMfaState::Enabled)
}

/// The per-user reads of every user a selector reaches, `part` naming the selector.
fn population_reads(
    settings: &Settings,
    part: &str,
    methods: MethodsReadable,
    out: &mut Vec<Requirement>,
) {
    let mut add = |wanted: bool, resource: Resource, what: &str| {
        if wanted {
            out.push(Requirement {
                need: resource.read(),
                why: format!("{what} of every user {part} reaches"),
            });
        }
    };
    add(
        settings.preferred_method.is_some() || settings.system_preferred.is_some(),
        Resource::SignInPreferences,
        "reading signInPreferences",
    );
    add(
        settings.per_user_mfa_state.is_some(),
        Resource::Requirements,
        "reading perUserMfaState",
    );
    add(
        methods.0 && needs_methods(settings),
        Resource::Methods,
        "checking the registered methods",
    );
}

/// `groups:` "MFA Pilot" (line 7), for messages; the name comes from the file, so it is escaped.
fn group_part(section: &str, group: &str, line: u64) -> String {
    format!("`{section}` \"{}\" (line {line})", printable(group))
}

/// The reads that find a group's members: the group by display name (unless named by object
/// id), then its transitive members.
fn group_reads(group: &str, part: &str, out: &mut Vec<Requirement>) {
    if uuid::Uuid::parse_str(group).is_err() {
        out.push(Requirement {
            need: Resource::Groups.read(),
            why: format!("finding the group of {part} by display name"),
        });
    }
    out.push(Requirement {
        need: Resource::GroupMembers.read(),
        why: format!("listing the members of the group of {part}"),
    });
}

/// The reads of `allUsers:`, `groups:` and `exclude:` (see [`reads`]).
fn selector_reads(selectors: &Selectors, methods: MethodsReadable, out: &mut Vec<Requirement>) {
    if let Some(all) = &selectors.all_users {
        let part = format!("`allUsers:` (line {})", all.line);
        // The listing always reads userType (members only by default) and accountEnabled.
        out.push(Requirement {
            need: Resource::Users.read(),
            why: format!("listing the tenant's users with userType and accountEnabled for {part}"),
        });
        population_reads(&all.settings, &part, methods, out);
    }
    for group in &selectors.groups {
        let part = group_part("groups:", &group.group, group.line);
        group_reads(&group.group, &part, out);
        // Without it Graph lists the members with `id` and `@odata.type` only ("limited
        // information"): the plan would name them by object id. An exclusion needs the ids only.
        out.push(Requirement {
            need: Resource::Users.read(),
            why: format!("naming the members of the group of {part}"),
        });
        population_reads(&group.settings, &part, methods, out);
    }
    for exclusion in &selectors.exclude {
        match &exclusion.excluded {
            Excluded::User(user) if uuid::Uuid::parse_str(user).is_err() => {
                out.push(Requirement {
                    need: Resource::UserBasic.read(),
                    why: format!(
                        "resolving {} for `exclude:` (line {})",
                        printable(user),
                        exclusion.line
                    ),
                });
            }
            Excluded::User(_) => {}
            Excluded::Group(group) => {
                group_reads(group, &group_part("exclude:", group, exclusion.line), out);
            }
        }
    }
}

/// The reads of the `policy:` section (see [`reads`]).
fn policy_reads(policy: &DesiredPolicy, out: &mut Vec<Requirement>) {
    out.push(Requirement {
        need: Resource::Policy.read(),
        why: "reading the tenant's authenticationMethodsPolicy for `policy:`".to_owned(),
    });
    let named = |t: &DesiredTarget| matches!(t.id, TargetId::DisplayName(_));
    let by_name = policy.parts.iter().any(|part| {
        part.properties.iter().any(|p| match &p.value {
            DesiredValue::Targets(targets) => targets.iter().any(named),
            DesiredValue::Target(target) => named(target),
            DesiredValue::Plain(_) => false,
        })
    });
    if by_name {
        out.push(Requirement {
            need: Resource::Groups.read(),
            why: "finding the groups `policy:` names by display name".to_owned(),
        });
    }
}

/// The reads `mfactl show` cannot do without, for the `named` users (already checked): the sign-in
/// preferences, the per-user MFA state and the registered methods of each (outside the China
/// cloud), and the UPN lookups when users are named by UPN. The tenant policy and the users'
/// groups are read too, but best effort (a refusal there leaves a question open, it fails
/// nothing), so they are not required.
pub fn show_reads(named: &[String], methods: MethodsReadable) -> Vec<Requirement> {
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
    ];
    if methods.0 {
        out.push(Requirement {
            need: Resource::Methods.read(),
            why: format!("listing the registered methods of {}", users(count)),
        });
    }
    if by_upn > 0 {
        out.push(Requirement {
            need: Resource::UserBasic.read(),
            why: format!("resolving the userPrincipalName of {}", users(by_upn)),
        });
    }
    out
}

/// The reads `mfactl export` makes: listing the users (or reading the named ones), each user's
/// signInPreferences and requirements, and for a tenant file the registered methods (outside the
/// China cloud), the groups with their members and the policy; `group` when it reads a group's
/// members.
pub fn export_reads(tenant_file: bool, group: bool, methods: MethodsReadable) -> Vec<Requirement> {
    let need = |resource: Resource, why: &str| Requirement {
        need: resource.read(),
        why: why.to_owned(),
    };
    let mut out = vec![
        need(
            Resource::Users,
            "listing the users with userType and accountEnabled",
        ),
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
        out.push(need(Resource::Groups, "reading groups"));
        out.push(need(Resource::GroupMembers, "listing groups' members"));
    }
    if tenant_file {
        if methods.0 {
            out.push(need(
                Resource::Methods,
                "listing every user's registered methods",
            ));
        }
        out.push(need(
            Resource::Policy,
            "reading the tenant's authenticationMethodsPolicy",
        ));
        out.push(need(
            Resource::ConditionalAccess,
            "reading the Conditional Access policies and security defaults",
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

/// Whether users with `settings` may get a write of `endpoint`.
fn writes_to(settings: &Settings, endpoint: Endpoint) -> bool {
    match endpoint {
        Endpoint::SignInPreferences => {
            settings.preferred_method.is_some() || settings.system_preferred.is_some()
        }
        Endpoint::Requirements => settings.per_user_mfa_state.is_some(),
    }
}

/// The writes an apply of `manifest` could make, each with the part that could make it: every
/// endpoint the `users:` entries and the selectors manage, and the policy (for `auth check`,
/// before any plan exists).
pub fn possible_writes(manifest: &Manifest) -> Vec<Requirement> {
    let mut out = Vec::new();
    let selectors = &manifest.selectors;
    let mut populations: Vec<(String, &Settings)> = Vec::new();
    if let Some(all) = &selectors.all_users {
        populations.push((format!("`allUsers:` (line {})", all.line), &all.settings));
    }
    for group in &selectors.groups {
        populations.push((
            group_part("groups:", &group.group, group.line),
            &group.settings,
        ));
    }
    for endpoint in Endpoint::ALL {
        let count = manifest
            .users
            .iter()
            .filter(|u| writes_to(&u.settings(), *endpoint))
            .count() as u64;
        if count > 0 {
            out.push(Requirement {
                need: Resource::of(*endpoint).write(),
                why: format!("changing {endpoint} of up to {} in `users:`", users(count)),
            });
        }
        for (part, settings) in &populations {
            if writes_to(settings, *endpoint) {
                out.push(Requirement {
                    need: Resource::of(*endpoint).write(),
                    why: format!("changing {endpoint} of every user {part} reaches"),
                });
            }
        }
    }
    if manifest.policy.is_some() {
        out.push(Requirement {
            need: Resource::Policy.write(),
            why: "changing the tenant's authenticationMethodsPolicy for `policy:`".to_owned(),
        });
    }
    out
}

/// The requirements `granted` (a token's permissions of `kind`) does not meet.
pub fn missing<'a, S: AsRef<str>>(
    required: &'a [Requirement],
    kind: TokenKind,
    granted: &[S],
) -> Vec<&'a Requirement> {
    required
        .iter()
        .filter(|r| !r.need.is_met_by(kind, granted))
        .collect()
}

/// "the token lacks Policy.ReadWrite.AuthenticationMethod (to write requirements (per-user MFA
/// state)), needed for writing requirements of 120 users", the permission named for `kind`.
pub fn render_missing(missing: &[&Requirement], kind: TokenKind) -> String {
    let lines: Vec<String> = missing
        .iter()
        .map(|r| {
            let access = match r.need.access {
                Access::Read => "read",
                Access::Write => "write",
            };
            format!(
                "{} (to {access} {}), needed for {}",
                r.need.least_for(kind),
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

    const EVERYWHERE: MethodsReadable = MethodsReadable(true);

    #[test]
    fn reads_follow_what_the_manifest_manages() {
        let m = manifest(
            "version: 1\nusers:\n  - user: megan@contoso.com\n    perUserMfaState: disabled\n  \
             - user: 071cc716-8147-4397-a5ba-b2105951cc0b\n    preferredMethod: push\n",
        );
        let needs: Vec<Need> = reads(&m, EVERYWHERE).iter().map(|r| r.need).collect();
        assert_eq!(
            needs,
            [
                Resource::SignInPreferences.read(),
                Resource::Requirements.read(),
                Resource::Methods.read(),
                Resource::UserBasic.read(),
                Resource::ConditionalAccess.read(),
            ]
        );
        assert_eq!(
            reads(&m, EVERYWHERE)[4].to_string(),
            "Policy.Read.All (reading the Conditional Access policies and security defaults, to \
             check that MFA stays required for 1 user)"
        );
        let writes = possible_writes(&m);
        assert_eq!(writes.len(), 2);
        assert_eq!(
            writes[1].why,
            "changing requirements of up to 1 user in `users:`"
        );
        // The China cloud serves no /authentication/methods: nothing needs reading them.
        let china: Vec<Need> = reads(&m, MethodsReadable(false))
            .iter()
            .map(|r| r.need)
            .collect();
        assert!(!china.contains(&Resource::Methods.read()), "{china:?}");
    }

    #[test]
    fn enabled_wanted_may_need_the_registered_methods() {
        let m = manifest(
            "version: 1\nusers:\n  - user: 071cc716-8147-4397-a5ba-b2105951cc0b\n    \
             perUserMfaState: enabled\n",
        );
        let needs: Vec<Need> = reads(&m, EVERYWHERE).iter().map(|r| r.need).collect();
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
        let required = reads(&m, EVERYWHERE);
        let needs: Vec<Need> = required.iter().map(|r| r.need).collect();
        assert_eq!(
            needs,
            [
                Resource::Requirements.read(),
                Resource::UserBasic.read(),
                Resource::ConditionalAccess.read()
            ]
        );
        assert_eq!(
            required[1].why,
            "resolving the `protect:` list (1 user) to object ids"
        );
    }

    #[test]
    fn selectors_and_the_policy_need_what_their_users_need_and_say_which_part() {
        let m = manifest(
            "version: 1\nallUsers:\n  preferredMethod: push\ngroups:\n  - group: MFA Pilot\n    \
             perUserMfaState: disabled\nexclude:\n  - user: breakglass@contoso.com\n\
             policy:\n  systemCredentialPreferences:\n    state: enabled\n",
        );
        let required = reads(&m, EVERYWHERE);
        let find = |need: Need, part: &str| {
            required
                .iter()
                .find(|r| r.need == need && r.why.contains(part))
                .unwrap_or_else(|| panic!("no {need} for {part}: {required:#?}"))
        };
        find(Resource::Users.read(), "`allUsers:` (line 3)");
        find(Resource::SignInPreferences.read(), "`allUsers:` (line 3)");
        find(Resource::Methods.read(), "`allUsers:` (line 3)");
        find(Resource::Groups.read(), "`groups:` \"MFA Pilot\" (line 5)");
        find(
            Resource::GroupMembers.read(),
            "`groups:` \"MFA Pilot\" (line 5)",
        );
        find(
            Resource::Users.read(),
            "naming the members of the group of `groups:`",
        );
        find(
            Resource::Requirements.read(),
            "`groups:` \"MFA Pilot\" (line 5)",
        );
        find(Resource::UserBasic.read(), "`exclude:` (line 8)");
        find(Resource::Policy.read(), "`policy:`");
        let writes = possible_writes(&m);
        let parts: Vec<&str> = writes.iter().map(|r| r.why.as_str()).collect();
        assert_eq!(
            parts,
            [
                "changing signInPreferences of every user `allUsers:` (line 3) reaches",
                "changing requirements of every user `groups:` \"MFA Pilot\" (line 5) reaches",
                "changing the tenant's authenticationMethodsPolicy for `policy:`",
            ]
        );
    }

    #[test]
    fn what_is_missing_is_named_with_why_for_the_token_kind() {
        let m = manifest(
            "version: 1\nusers:\n  - user: megan@contoso.com\n    \
             perUserMfaState: disabled\n    systemPreferred: true\n",
        );
        let mut required = reads(&m, EVERYWHERE);
        required.extend(possible_writes(&m));
        let granted = [
            "UserAuthenticationMethod.ReadWrite.All",
            "Policy.Read.All",
            "User.ReadBasic.All",
        ];
        let app = missing(&required, TokenKind::Application, &granted);
        assert_eq!(app.len(), 2, "{app:#?}");
        assert_eq!(
            render_missing(&app, TokenKind::Application),
            "the token lacks User.Read.All (to read users' basic profile (userPrincipalName to \
             object id)), needed for resolving the userPrincipalName of 1 user in `users:`; and \
             Policy.ReadWrite.AuthenticationMethod (to write requirements (per-user MFA state)), \
             needed for changing requirements of up to 1 user in `users:`"
        );
        // A delegated token may look users up with User.ReadBasic.All.
        let delegated = missing(&required, TokenKind::Delegated, &granted);
        assert_eq!(delegated.len(), 1, "{delegated:#?}");
    }
}
