//! Conditional Access coverage in a run: when a plan disables per-user MFA for anyone, read what
//! the judge ([`crate::plan::coverage`]) needs and record each such user's verdict in the plan,
//! holding the changes that would leave a user without MFA.
//!
//! The cost does not grow with the users: security defaults and the policies (two reads, the
//! policies paged), then each group a policy that could require MFA names, once
//! (`transitiveMembers`, 999 a page), each role it names, once (`roleAssignments` filtered on
//! the role, a role-assignable group holding it listed like a group), and, only when such a
//! policy names guests or external users, the tenant's users once (999 a page) to tell them
//! apart. Every read is counted as `calls.coverage`.
//!
//! A read refused or failed is not a run error: it leaves the verdicts it matters for `unknown`
//! (held, like a gap), naming what could not be read. Only what would stop every other request
//! too (a refused token, an unreachable Graph, a redirect) stops the run.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use futures::stream;

use super::RunError;
use crate::graph::permissions::Resource;
use crate::graph::wire::DirectoryUser;
use crate::graph::{GraphClient, GraphError, Purpose};
use crate::plan::Plan;
use crate::plan::coverage::{self, CaPolicy, Coverage, Facts, Read, UserKind};
use crate::text::printable_capped;

/// Groups and roles read at once.
const IN_FLIGHT: usize = 8;

/// Judges every user `plan` disables per-user MFA for, holding the gaps unless `allow_gap`;
/// reads nothing when it disables it for nobody.
pub(super) async fn check(
    client: &GraphClient,
    plan: &mut Plan,
    allow_gap: bool,
) -> Result<(), RunError> {
    if !plan.users.iter().any(|user| user.disables_per_user_mfa()) {
        return Ok(());
    }
    let facts = read_facts(client).await?;
    judge(&facts, plan, allow_gap);
    Ok(())
}

/// Records each verdict in `plan` ([`crate::plan::UserPlan::set_coverage`]); users with the
/// same verdict share it.
pub fn judge(facts: &Facts, plan: &mut Plan, allow_gap: bool) {
    let mut shared: HashMap<Coverage, Arc<Coverage>> = HashMap::new();
    for user in plan
        .users
        .iter_mut()
        .filter(|user| user.disables_per_user_mfa())
    {
        let coverage = facts.judge(user.id);
        let coverage = match shared.get(&coverage) {
            Some(same) => Arc::clone(same),
            None => {
                let new = Arc::new(coverage);
                shared.insert((*new).clone(), Arc::clone(&new));
                new
            }
        };
        user.set_coverage(coverage, allow_gap);
    }
    plan.allow_mfa_gap = allow_gap;
    for coverage in shared.keys().filter(|c| c.status.is_gap()) {
        let action = if allow_gap {
            "disabled anyway (--allow-mfa-gap)"
        } else {
            "kept"
        };
        tracing::warn!("per-user MFA {action}: {}", coverage.summary());
    }
}

/// Reads security defaults and the policies, then what the policies name.
pub async fn read_facts(client: &GraphClient) -> Result<Facts, RunError> {
    let (defaults, policies) = futures::join!(
        client.security_defaults(),
        client.conditional_access_policies()
    );
    let security_defaults = readable(defaults, least(Resource::SecurityDefaults))?;
    let policies: Read<Vec<CaPolicy>> = readable(policies, least(Resource::ConditionalAccess))?
        .map(|policies| policies.iter().map(CaPolicy::from_json).collect());
    let needs = match (&security_defaults, &policies) {
        // Security defaults cover everyone: nothing else decides anything.
        (Ok(true), _) | (_, Err(_)) => coverage::Needs::default(),
        (_, Ok(policies)) => coverage::needs(policies),
    };
    let mut groups = read_groups(client, needs.groups.iter().cloned()).await?;
    let roles = read_roles(client, &needs.roles, &mut groups).await?;
    let kinds = if needs.kinds {
        read_kinds(client).await?
    } else {
        Err("not read: no policy that could require MFA names guests".to_owned())
    };
    Ok(Facts {
        security_defaults,
        policies,
        groups,
        roles,
        kinds,
    })
}

/// A read's value, or why it failed in a sentence; a failure that would stop every request
/// stops the run.
// The run error is returned once, to stop the run: its size costs nothing worth boxing it for.
#[allow(clippy::result_large_err)]
fn readable<T>(answer: Result<T, GraphError>, permission: &str) -> Result<Read<T>, RunError> {
    match answer {
        Ok(value) => Ok(Ok(value)),
        Err(error) => {
            if let Some(stop) = super::run_wide(&error) {
                return Err(stop);
            }
            Ok(Err(why(&error, permission)))
        }
    }
}

/// The permission a read of `resource` asks for.
fn least(resource: Resource) -> &'static str {
    resource.read().least()
}

/// `HTTP 403 Authorization_RequestDenied (the token may lack Policy.Read.All)`: short, the same
/// for every user it concerns (so that reports group them), escaped.
fn why(error: &GraphError, permission: &str) -> String {
    let what = match error.status() {
        Some(status) => format!("HTTP {status} {}", printable_capped(error.code(), 60)),
        None => format!(
            "{}: {}",
            printable_capped(error.code(), 60),
            printable_capped(error.message(), 120)
        ),
    };
    match error.status() {
        Some(403) => format!("{what} (the token may lack {permission})"),
        _ => what,
    }
}

/// The transitive user members of each group, each group read once.
async fn read_groups(
    client: &GraphClient,
    ids: impl Iterator<Item = String>,
) -> Result<HashMap<String, Read<HashSet<uuid::Uuid>>>, RunError> {
    let answers: Vec<_> = stream::iter(ids)
        .map(|id| async move {
            let members = match group_members(client, &id).await {
                // A group deleted since a policy named it includes and excludes nobody.
                Err(error) if error.is_not_found() => Ok(HashSet::new()),
                answer => answer,
            };
            (id, members)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut groups = HashMap::with_capacity(answers.len());
    for (id, members) in answers {
        groups.insert(id, readable(members, least(Resource::GroupMembers))?);
    }
    Ok(groups)
}

/// Every user in the group, at any depth.
async fn group_members(client: &GraphClient, id: &str) -> Result<HashSet<uuid::Uuid>, GraphError> {
    let mut pages = client.transitive_members_for(Purpose::Coverage, id);
    let mut members = HashSet::new();
    while let Some(page) = pages.next_page().await? {
        members.extend(user_ids(page));
    }
    Ok(members)
}

fn user_ids(page: Vec<DirectoryUser>) -> impl Iterator<Item = uuid::Uuid> {
    page.into_iter()
        .filter(DirectoryUser::is_user)
        .filter_map(|user| uuid::Uuid::parse_str(&user.id).ok())
}

/// The users holding each role at the tenant's scope (Conditional Access does not count
/// assignments scoped to an administrative unit: Entra docs, "Users and groups"), directly or
/// through a role-assignable group, whose members are read like the policies' groups (and
/// added to `groups`, so that a group named twice is read once).
async fn read_roles(
    client: &GraphClient,
    roles: &BTreeSet<String>,
    groups: &mut HashMap<String, Read<HashSet<uuid::Uuid>>>,
) -> Result<HashMap<String, Read<HashSet<uuid::Uuid>>>, RunError> {
    let answers: Vec<_> = stream::iter(roles.iter().cloned())
        .map(|role| async move {
            let assignments = if uuid::Uuid::parse_str(&role).is_ok() {
                client.role_assignments(&role).await.map(Some)
            } else {
                Ok(None)
            };
            (role, assignments)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut holders: HashMap<String, (HashSet<uuid::Uuid>, Vec<String>)> = HashMap::new();
    let mut roles_read = HashMap::new();
    for (role, answer) in answers {
        match readable(answer, least(Resource::RoleAssignments))? {
            Ok(Some(assignments)) => {
                let (users, via_groups) = holders.entry(role.clone()).or_default();
                for assignment in assignments {
                    let tenant_wide = assignment
                        .directory_scope_id
                        .as_deref()
                        .is_none_or(|scope| scope == "/");
                    let kind = assignment
                        .principal
                        .as_ref()
                        .and_then(|p| p.odata_type.as_deref());
                    match kind {
                        _ if !tenant_wide => {}
                        Some(t) if t.eq_ignore_ascii_case("#microsoft.graph.group") => {
                            via_groups.push(assignment.principal_id.to_ascii_lowercase())
                        }
                        _ => users.extend(uuid::Uuid::parse_str(&assignment.principal_id).ok()),
                    }
                }
            }
            Ok(None) => {
                roles_read.insert(role, Err("it is not a role template id".to_owned()));
            }
            Err(why) => {
                roles_read.insert(role, Err(why));
            }
        }
    }
    let missing: BTreeSet<String> = holders
        .values()
        .flat_map(|(_, via)| via.iter().cloned())
        .filter(|group| !groups.contains_key(group))
        .collect();
    groups.extend(read_groups(client, missing.into_iter()).await?);
    for (role, (mut users, via_groups)) in holders {
        let mut read: Read<()> = Ok(());
        for group in via_groups {
            match groups.get(&group) {
                Some(Ok(members)) => users.extend(members.iter().copied()),
                Some(Err(why)) => {
                    read = Err(format!("its group {group} could not be read: {why}"));
                }
                None => read = Err(format!("its group {group} was not read")),
            }
        }
        roles_read.insert(role, read.map(|()| users));
    }
    Ok(roles_read)
}

/// Every user's kind (member or guest, internal or invited), from one listing of the users.
async fn read_kinds(client: &GraphClient) -> Result<Read<HashMap<uuid::Uuid, UserKind>>, RunError> {
    let mut pages = client.users_for(Purpose::Coverage);
    let mut kinds = HashMap::new();
    loop {
        // The listing reads userType, outside the basic profile.
        match readable(pages.next_page().await, least(Resource::Users))? {
            Ok(Some(page)) => {
                for user in page {
                    let kind = UserKind::classify(
                        user.user_type.as_deref(),
                        user.user_principal_name.as_deref(),
                    );
                    if let (Some(kind), Ok(id)) = (kind, uuid::Uuid::parse_str(&user.id)) {
                        kinds.insert(id, kind);
                    }
                }
            }
            Ok(None) => return Ok(Ok(kinds)),
            Err(why) => return Ok(Err(format!("the users could not be listed: {why}"))),
        }
    }
}
