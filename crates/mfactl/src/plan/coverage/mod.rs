//! Whether MFA stays required for a user once their per-user MFA is `disabled`: the guard of the
//! migration mfactl exists for (per-user MFA → Conditional Access).
//!
//! Pure: [`Facts`] holds what the engine read (security defaults, the Conditional Access
//! policies, the members of the groups and the holders of the roles those policies name, the
//! users' kinds when a policy names guests) and [`Facts::judge`] gives one user's [`Coverage`]:
//! - **covered**: security defaults are on, or an enabled policy includes the user (all users,
//!   by id, through a group at any depth, or a directory role they hold), does not exclude them,
//!   targets all cloud apps, grants only through MFA (with `OR`, every alternative is `mfa` or
//!   an authentication strength that satisfies MFA), and no condition narrows when it applies;
//! - **partly covered**: the best a policy does is require MFA under narrowing conditions
//!   (locations, client apps, platforms, risk, device filters, some applications...), named;
//! - **not covered**: no policy requires MFA for the user; the closest policy and why it misses;
//! - **unknown**: something could not be read or judged, named. Never "covered" when unsure.
//!
//! A covering policy beats everything; a partial one beats an unknown one (whatever the unknown
//! one turns out to be, the user is at least partly covered); an unknown one beats a miss.
//! Nothing here does I/O; every text from Graph was made printable when it was read
//! ([`policy`]).

pub mod policy;

use std::collections::{BTreeSet, HashMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use policy::CaPolicy;
use policy::{Applications, GrantVerdict, Guests, PolicyState, UserScope};

/// The start of every gap's detail: what the plan holds the change for.
pub const NO_POLICY: &str = "no Conditional Access policy requires MFA for this user";

/// One user's verdict. Many users share one (the engine interns them), so it is small to
/// compare and hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Coverage {
    pub status: CoverageStatus,
    /// In a sentence, without the user's name: what requires MFA, or the gap and why.
    pub detail: String,
    /// The policies that require MFA for the user (always when covered, under conditions when
    /// partly covered), by display name; `security defaults` when those do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
}

/// The four verdicts.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CoverageStatus {
    Covered,
    PartlyCovered,
    NotCovered,
    Unknown,
}

impl CoverageStatus {
    /// As people read it.
    pub fn label(self) -> &'static str {
        match self {
            CoverageStatus::Covered => "covered",
            CoverageStatus::PartlyCovered => "partly covered",
            CoverageStatus::NotCovered => "not covered",
            CoverageStatus::Unknown => "unknown",
        }
    }

    /// Whether disabling per-user MFA would leave the user without MFA, as far as mfactl knows:
    /// the change is held unless the gap is allowed.
    pub fn is_gap(self) -> bool {
        matches!(self, CoverageStatus::NotCovered | CoverageStatus::Unknown)
    }
}

impl Coverage {
    fn new(status: CoverageStatus, detail: String, policies: Vec<String>) -> Coverage {
        Coverage {
            status,
            detail,
            policies,
        }
    }

    /// `covered by "P"`, `not covered: no Conditional Access policy ...`: the verdict in one
    /// line (what the text plan and the reports show).
    pub fn summary(&self) -> String {
        match self.status {
            CoverageStatus::Covered => self.detail.clone(),
            status => format!("{}: {}", status.label(), self.detail),
        }
    }
}

/// Who a user is, for the policies that name guests and external users (Graph's
/// `guestOrExternalUserTypes`). B2B users are told apart by the `#EXT#` that Entra puts in the
/// userPrincipalName of every invited user, guest or member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserKind {
    /// `userType` Member, not invited: an internal user.
    Member,
    /// `b2bCollaborationMember`: invited, `userType` Member.
    ExternalMember,
    /// `internalGuest`: `userType` Guest, not invited (a local guest account).
    InternalGuest,
    /// `b2bCollaborationGuest`: invited, `userType` Guest.
    ExternalGuest,
}

impl UserKind {
    /// From a listing's `userType` and `userPrincipalName`; `None` when Graph said neither.
    pub fn classify(
        user_type: Option<&str>,
        user_principal_name: Option<&str>,
    ) -> Option<UserKind> {
        let invited = user_principal_name?.to_ascii_uppercase().contains("#EXT#");
        let guest = user_type?.eq_ignore_ascii_case("guest");
        Some(match (guest, invited) {
            (false, false) => UserKind::Member,
            (false, true) => UserKind::ExternalMember,
            (true, false) => UserKind::InternalGuest,
            (true, true) => UserKind::ExternalGuest,
        })
    }

    /// Graph's `guestOrExternalUserTypes` value for this kind (none for an internal member).
    fn graph_type(self) -> Option<&'static str> {
        match self {
            UserKind::Member => None,
            UserKind::ExternalMember => Some("b2bCollaborationMember"),
            UserKind::InternalGuest => Some("internalGuest"),
            UserKind::ExternalGuest => Some("b2bCollaborationGuest"),
        }
    }
}

/// What could be read, or why not: a failed read is the reason, in a sentence.
pub type Read<T> = Result<T, String>;

/// Everything the judge knows about the tenant. Group and role ids are lower-case.
#[derive(Clone, Debug)]
pub struct Facts {
    /// `identitySecurityDefaultsEnforcementPolicy.isEnabled`.
    pub security_defaults: Read<bool>,
    pub policies: Read<Vec<CaPolicy>>,
    /// The transitive user members of each group [`Needs::groups`] names.
    pub groups: HashMap<String, Read<HashSet<uuid::Uuid>>>,
    /// The users holding each role [`Needs::roles`] names (tenant-wide, active assignments,
    /// through a role-assignable group too).
    pub roles: HashMap<String, Read<HashSet<uuid::Uuid>>>,
    /// Every user's kind, when [`Needs::kinds`]; an error otherwise.
    pub kinds: Read<HashMap<uuid::Uuid, UserKind>>,
}

/// What must be read, beyond the policies, to judge users against them: only for the policies
/// that could require MFA (they name `mfa` or a strength, and are not off), each group and role
/// once, whatever the number of users.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub groups: BTreeSet<String>,
    pub roles: BTreeSet<String>,
    /// A policy names guests or external users: the users' kinds are needed.
    pub kinds: bool,
}

/// The policies worth judging a user against: those that name MFA and are not off. A disabled
/// one is still named when it is the closest, but its scope is not read.
fn candidate(policy: &CaPolicy) -> bool {
    policy.grant.mentions_mfa && policy.state != PolicyState::Disabled
}

/// The reads [`Facts`] needs for `policies`.
pub fn needs(policies: &[CaPolicy]) -> Needs {
    let mut needs = Needs::default();
    for users in policies
        .iter()
        .filter(|p| candidate(p))
        .filter_map(|p| p.users.as_ref())
    {
        needs.groups.extend(
            users
                .include_groups
                .iter()
                .chain(&users.exclude_groups)
                .cloned(),
        );
        needs.roles.extend(
            users
                .include_roles
                .iter()
                .chain(&users.exclude_roles)
                .cloned(),
        );
        needs.kinds |= users.include_guests.is_some() || users.exclude_guests.is_some();
    }
    needs
}

/// Yes (and how), no, or cannot tell (and why).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tri {
    Yes(String),
    No,
    Maybe(String),
}

impl Tri {
    /// The first yes; else the first maybe; else no.
    fn any(answers: impl IntoIterator<Item = Tri>) -> Tri {
        let mut maybe = None;
        for answer in answers {
            match answer {
                Tri::Yes(how) => return Tri::Yes(how),
                Tri::Maybe(why) => {
                    maybe.get_or_insert(why);
                }
                Tri::No => {}
            }
        }
        maybe.map_or(Tri::No, Tri::Maybe)
    }
}

/// How one policy stands for one user.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    Requires,
    /// Requires MFA only under these conditions.
    RequiresWhen(Vec<String>),
    /// Does not require MFA for the user; every reason.
    Misses(Vec<Miss>),
    Unknown(String),
}

/// One reason a policy misses a user.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Miss {
    text: String,
    /// The user is out of the policy's scope (a scope miss is further away than a state one).
    scope: bool,
}

impl Facts {
    /// The verdict for the user with this object id (`None`: not known, so not judged).
    pub fn judge(&self, user: Option<uuid::Uuid>) -> Coverage {
        if self.security_defaults == Ok(true) {
            return Coverage::new(
                CoverageStatus::Covered,
                "covered by security defaults".to_owned(),
                vec!["security defaults".to_owned()],
            );
        }
        let policies = match &self.policies {
            Ok(policies) => policies,
            Err(why) => {
                return Coverage::new(
                    CoverageStatus::Unknown,
                    format!("cannot read the Conditional Access policies: {why}"),
                    Vec::new(),
                );
            }
        };
        let Some(user) = user else {
            return Coverage::new(
                CoverageStatus::Unknown,
                "the user's object id is not known".to_owned(),
                Vec::new(),
            );
        };
        let verdicts: Vec<(&CaPolicy, Verdict)> = policies
            .iter()
            .filter(|p| p.grant.mentions_mfa)
            .map(|p| (p, self.verdict(p, user)))
            .collect();
        let requiring: Vec<String> = verdicts
            .iter()
            .filter(|(_, v)| *v == Verdict::Requires)
            .map(|(p, _)| p.quoted())
            .collect();
        if !requiring.is_empty() {
            return Coverage::new(
                CoverageStatus::Covered,
                format!("covered by {}", requiring.join(", ")),
                requiring.iter().map(|q| unquote(q)).collect(),
            );
        }
        let partial: Vec<(&CaPolicy, &Vec<String>)> = verdicts
            .iter()
            .filter_map(|(p, v)| match v {
                Verdict::RequiresWhen(conditions) => Some((*p, conditions)),
                _ => None,
            })
            .collect();
        if !partial.is_empty() {
            let parts: Vec<String> = partial
                .iter()
                .map(|(p, conditions)| format!("{} ({})", p.quoted(), conditions.join("; ")))
                .collect();
            return Coverage::new(
                CoverageStatus::PartlyCovered,
                format!(
                    "MFA is required only under conditions: {}",
                    parts.join(", ")
                ),
                partial.iter().map(|(p, _)| p.name.clone()).collect(),
            );
        }
        if let Some((policy, Verdict::Unknown(why))) = verdicts
            .iter()
            .find(|(_, v)| matches!(v, Verdict::Unknown(_)))
        {
            return Coverage::new(
                CoverageStatus::Unknown,
                format!(
                    "cannot tell whether {} requires MFA for this user: {why}",
                    policy.quoted()
                ),
                Vec::new(),
            );
        }
        self.gap(policies, &verdicts)
    }

    /// Not covered: the closest policy and why it misses; or that no policy names MFA, and
    /// security defaults when they could not be read.
    fn gap(&self, policies: &[CaPolicy], verdicts: &[(&CaPolicy, Verdict)]) -> Coverage {
        if let Err(why) = &self.security_defaults {
            return Coverage::new(
                CoverageStatus::Unknown,
                format!("{NO_POLICY}, and security defaults could not be read: {why}"),
                Vec::new(),
            );
        }
        let closest = verdicts
            .iter()
            .enumerate()
            .filter_map(|(order, (p, v))| match v {
                Verdict::Misses(misses) => Some((order, *p, misses)),
                _ => None,
            })
            .min_by_key(|(order, p, misses)| {
                (
                    misses.len(),
                    misses.iter().any(|m| m.scope),
                    p.state == PolicyState::Disabled,
                    *order,
                )
            });
        let detail = match closest {
            Some((_, policy, misses)) => {
                let reasons: Vec<&str> = misses.iter().map(|m| m.text.as_str()).collect();
                format!(
                    "{NO_POLICY}; the closest, {}, {}",
                    policy.quoted(),
                    reasons.join(" and ")
                )
            }
            None if policies.is_empty() => format!(
                "{NO_POLICY}: the tenant has no Conditional Access policy and security defaults \
                 are off"
            ),
            None => format!(
                "{NO_POLICY}: none of the {} Conditional Access {} grants with mfa or an \
                 authentication strength, and security defaults are off",
                policies.len(),
                if policies.len() == 1 {
                    "policy"
                } else {
                    "policies"
                }
            ),
        };
        Coverage::new(CoverageStatus::NotCovered, detail, Vec::new())
    }

    /// How `policy` (which names MFA) stands for `user`.
    fn verdict(&self, policy: &CaPolicy, user: uuid::Uuid) -> Verdict {
        let mut misses = Vec::new();
        let mut unknown = None;
        match &policy.grant.requires {
            GrantVerdict::Mfa => {}
            GrantVerdict::NotMfa(why) => misses.push(Miss {
                text: why.clone(),
                scope: false,
            }),
            GrantVerdict::Unknown(why) => unknown = Some(why.clone()),
        }
        match &policy.state {
            PolicyState::Enabled => {}
            PolicyState::ReportOnly => misses.push(Miss {
                text: "is report-only (enabledForReportingButNotEnforced)".to_owned(),
                scope: false,
            }),
            PolicyState::Disabled => {
                // Its scope is not read (see `needs`): off is reason enough.
                return Verdict::Misses(vec![Miss {
                    text: "is off (disabled)".to_owned(),
                    scope: false,
                }]);
            }
            PolicyState::Other(state) => {
                unknown.get_or_insert(format!("its state {state} is not understood"));
            }
        }
        match &policy.users {
            None => misses.push(Miss {
                text: "targets no users".to_owned(),
                scope: true,
            }),
            Some(scope) => match self.in_scope(scope, user) {
                Tri::Yes(_) => {}
                Tri::No => misses.push(Miss {
                    text: out_of_scope(scope, self.excluded(scope, user)),
                    scope: true,
                }),
                Tri::Maybe(why) => {
                    unknown.get_or_insert(why);
                }
            },
        }
        let mut conditions = policy.narrowing.clone();
        match &policy.applications {
            Applications::All => {}
            Applications::Some(apps) => {
                conditions.insert(0, format!("applications: only {}", apps.join(", ")))
            }
            Applications::UserActions(actions) => misses.push(Miss {
                text: format!(
                    "applies to user actions ({}), not to sign-ins",
                    actions.join(", ")
                ),
                scope: false,
            }),
            Applications::AuthenticationContexts(contexts) => misses.push(Miss {
                text: format!(
                    "applies only to authentication contexts ({})",
                    contexts.join(", ")
                ),
                scope: false,
            }),
            Applications::None => misses.push(Miss {
                text: "targets no applications".to_owned(),
                scope: false,
            }),
        }
        if let Some(first) = policy.unjudged.first() {
            unknown.get_or_insert(first.clone());
        }
        if !misses.is_empty() {
            Verdict::Misses(misses)
        } else if let Some(why) = unknown {
            Verdict::Unknown(why)
        } else if !conditions.is_empty() {
            Verdict::RequiresWhen(conditions)
        } else {
            Verdict::Requires
        }
    }

    /// Whether the policy's users condition takes in `user`: included and not excluded.
    fn in_scope(&self, scope: &UserScope, user: uuid::Uuid) -> Tri {
        match self.excluded(scope, user) {
            Tri::Yes(_) => return Tri::No,
            Tri::Maybe(why) => {
                return match self.included(scope, user) {
                    Tri::No => Tri::No,
                    _ => Tri::Maybe(why),
                };
            }
            Tri::No => {}
        }
        self.included(scope, user)
    }

    fn included(&self, scope: &UserScope, user: uuid::Uuid) -> Tri {
        if scope.all {
            return Tri::Yes("all users".to_owned());
        }
        self.named(
            user,
            &scope.include_users,
            &scope.include_groups,
            &scope.include_roles,
            scope.include_guests.as_ref(),
        )
    }

    fn excluded(&self, scope: &UserScope, user: uuid::Uuid) -> Tri {
        self.named(
            user,
            &scope.exclude_users,
            &scope.exclude_groups,
            &scope.exclude_roles,
            scope.exclude_guests.as_ref(),
        )
    }

    /// Whether `user` is one of these users, in one of these groups, holds one of these roles,
    /// or is one of these guests.
    fn named(
        &self,
        user: uuid::Uuid,
        users: &[String],
        groups: &[String],
        roles: &[String],
        guests: Option<&Guests>,
    ) -> Tri {
        let id = user.hyphenated().to_string();
        let direct = users
            .contains(&id)
            .then(|| Tri::Yes("by object id".to_owned()));
        let member = |kind: &str, id: &String, read: Option<&Read<HashSet<uuid::Uuid>>>| match read
        {
            Some(Ok(members)) if members.contains(&user) => {
                Tri::Yes(format!("through {kind} {id}"))
            }
            Some(Ok(_)) => Tri::No,
            Some(Err(why)) => Tri::Maybe(format!("the {kind} {id} could not be read: {why}")),
            None => Tri::Maybe(format!("the {kind} {id} was not read")),
        };
        let in_groups = groups
            .iter()
            .map(|g| member("group", g, self.groups.get(g)));
        let in_roles = roles.iter().map(|r| member("role", r, self.roles.get(r)));
        let as_guest = guests.map(|g| self.guest(g, user));
        Tri::any(
            direct
                .into_iter()
                .chain(in_groups)
                .chain(in_roles)
                .chain(as_guest),
        )
    }

    /// Whether `user` is one of the guests or external users `guests` selects.
    fn guest(&self, guests: &Guests, user: uuid::Uuid) -> Tri {
        let kind = match &self.kinds {
            Ok(kinds) => match kinds.get(&user) {
                Some(kind) => *kind,
                None => {
                    return Tri::Maybe(
                        "the user was not in the tenant's user listing, so whether they are a \
                         guest is not known"
                            .to_owned(),
                    );
                }
            },
            Err(why) => {
                return Tri::Maybe(format!(
                    "whether the user is a guest could not be read: {why}"
                ));
            }
        };
        let Some(graph_type) = kind.graph_type() else {
            return Tri::No;
        };
        match guests {
            Guests::All => Tri::Yes("as a guest or external user".to_owned()),
            Guests::Types {
                types,
                enumerated_tenants,
            } => {
                if !types.iter().any(|t| t.eq_ignore_ascii_case(graph_type)) {
                    Tri::No
                } else if *enumerated_tenants {
                    Tri::Maybe(format!(
                        "the policy names {graph_type} users of some tenants only, and the \
                         user's home tenant is not read"
                    ))
                } else {
                    Tri::Yes(format!("as a {graph_type} user"))
                }
            }
        }
    }
}

/// `"P"` → `P`.
fn unquote(quoted: &str) -> String {
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(quoted)
        .to_owned()
}

/// Why a user is out of a policy's scope: excluded (how), or who the policy includes.
fn out_of_scope(scope: &UserScope, excluded: Tri) -> String {
    if let Tri::Yes(how) = excluded {
        return format!("excludes the user ({how})");
    }
    let mut targets = Vec::new();
    let some = |what: &str, items: &[String]| match items.len() {
        0 => None,
        1 => Some(format!("{what} {}", items[0])),
        n => Some(format!("{n} {what}s")),
    };
    targets.extend(some("user", &scope.include_users));
    targets.extend(some("group", &scope.include_groups));
    targets.extend(some("role", &scope.include_roles));
    if scope.include_guests.is_some() {
        targets.push("guests or external users".to_owned());
    }
    if targets.is_empty() {
        "includes no users".to_owned()
    } else {
        format!(
            "does not include the user (it includes {})",
            targets.join(", ")
        )
    }
}

/// Users per verdict, over the users whose per-user MFA a plan disables (the summary's
/// `mfa_coverage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CoverageCounts {
    pub covered: u64,
    pub partly_covered: u64,
    pub not_covered: u64,
    pub unknown: u64,
    /// Not covered or unknown, and their per-user MFA change held (not written).
    pub held: u64,
    /// Not covered or unknown, and written anyway (`--allow-mfa-gap`, `allowMfaGap: true`).
    pub allowed: u64,
}

impl CoverageCounts {
    /// Counts one user's verdict; `held` whether their change is held.
    pub fn add(&mut self, status: CoverageStatus, held: bool) {
        match status {
            CoverageStatus::Covered => self.covered += 1,
            CoverageStatus::PartlyCovered => self.partly_covered += 1,
            CoverageStatus::NotCovered => self.not_covered += 1,
            CoverageStatus::Unknown => self.unknown += 1,
        }
        if status.is_gap() {
            if held {
                self.held += 1;
            } else {
                self.allowed += 1;
            }
        }
    }

    /// Every user counted.
    pub fn total(&self) -> u64 {
        self.covered + self.partly_covered + self.not_covered + self.unknown
    }
}

#[cfg(test)]
mod tests;
