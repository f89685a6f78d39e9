//! `GET /beta/groups/{id}/members` and `/transitiveMembers[/microsoft.graph.user]`: who is in a
//! group, directly or through nested groups, from the tenant file's `groups` (whose `members`
//! are user or group ids). `mfactl export --group` reads the transitive users; `export --as
//! tenant` reads each group's direct members to write the groups back as they are.
//!
//! Paged and selected like `/users` ([`super::listing`]; no `$filter`). Every item carries its
//! `@odata.type`, as Graph's directory-object lists do. A group is addressed by object id only
//! (as on Graph), and an unknown one is 404. The order is Graph's undocumented choice; the
//! emulator answers `members` in the file's order and `transitiveMembers` as the nested groups
//! in file order and then the users in file order, so that pages are stable. The cast
//! `/microsoft.graph.user` keeps the users: Graph documents such casts as advanced queries
//! (`ConsistencyLevel: eventual`); the emulator does not insist, as for `transitiveMemberOf`.
//! Ids compare without regard to case; a member id that names nothing is left out (Graph never
//! lists a deleted object); a cycle of groups ends (each group is visited once).

use std::collections::HashSet;

use serde_json::Value;

use super::context::{Answer, CallContext};
use super::listing::{self, Listed};
use super::state::{GraphError, TenantState};

/// Which list of a group's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Members {
    /// `members`: the direct members, users and groups.
    Direct,
    /// `transitiveMembers`: users and groups at any depth.
    Transitive,
    /// `transitiveMembers/microsoft.graph.user`: users at any depth.
    TransitiveUsers,
}

/// A member list as Graph answers a caller that may list the group's members but not read
/// users (`GroupMember.Read.All` without `User.Read.All`): every user keeps its `@odata.type`
/// and `id`, and every other property is `null`. Microsoft documents this as "limited
/// information returned for inaccessible member objects" on the directory-object list APIs
/// (group-list-members, group-list-transitivemembers, user-list-memberof...). Groups are
/// readable with the group permission, so they are left whole.
pub(super) fn limit_users(mut answer: Answer) -> Answer {
    let Some(Value::Array(items)) = answer.body.as_mut().and_then(|body| body.get_mut("value"))
    else {
        return answer;
    };
    for item in items {
        let Value::Object(object) = item else {
            continue;
        };
        let is_user = object
            .get("@odata.type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("#microsoft.graph.user"));
        if is_user {
            for (key, value) in object.iter_mut() {
                if key != "id" && key != "@odata.type" {
                    *value = Value::Null;
                }
            }
        }
    }
    answer
}

/// `GET /groups/{group}/{members}` with the request's query string (without the `?`).
pub(super) fn list(
    state: &TenantState,
    group: &str,
    members: Members,
    query: Option<&str>,
    context: &CallContext,
) -> Result<Answer, GraphError> {
    let tenant = state.tenant();
    let Some(start) = group_index(state, group) else {
        return Err(GraphError::resource_not_found(group));
    };
    let query = match listing::parse_query(query.unwrap_or_default(), false, context) {
        Ok(query) => query,
        Err(answer) => return Ok(answer),
    };
    let items: Vec<Listed> = match members {
        Members::Direct => tenant.groups[start]
            .members
            .iter()
            .filter_map(|id| object(state, id))
            .collect(),
        Members::Transitive | Members::TransitiveUsers => {
            let (groups, users) = reachable(state, start);
            let groups = groups
                .into_iter()
                .filter(|_| members == Members::Transitive)
                .map(|g| Listed::Group(&tenant.groups[g]));
            groups
                .chain(users.into_iter().map(|u| Listed::User(state.user(u))))
                .collect()
        }
    };
    let total = items.len();
    Ok(listing::page(
        &query,
        items.into_iter().enumerate().skip(query.offset()),
        || total,
        "directoryObjects",
        true,
        context,
    ))
}

/// The index of the group with this object id.
fn group_index(state: &TenantState, id: &str) -> Option<usize> {
    state
        .tenant()
        .groups
        .iter()
        .position(|g| g.id.eq_ignore_ascii_case(id))
}

/// The user or group an id names, if any.
fn object<'a>(state: &'a TenantState, id: &str) -> Option<Listed<'a>> {
    if let Ok(index) = state.find(id) {
        return Some(Listed::User(state.user(index)));
    }
    group_index(state, id).map(|g| Listed::Group(&state.tenant().groups[g]))
}

/// The groups nested in group `start` at any depth (not `start` itself unless a cycle leads
/// back to it) and the users in any of them, each as sorted indexes.
fn reachable(state: &TenantState, start: usize) -> (Vec<usize>, Vec<usize>) {
    let groups = &state.tenant().groups;
    let mut visited = HashSet::from([start]);
    let mut nested = Vec::new();
    let mut users = HashSet::new();
    let mut frontier = vec![start];
    while let Some(group) = frontier.pop() {
        for member in &groups[group].members {
            if let Ok(user) = state.find(member) {
                users.insert(user);
            } else if let Some(inner) = group_index(state, member)
                && visited.insert(inner)
            {
                nested.push(inner);
                frontier.push(inner);
            }
        }
    }
    let mut users: Vec<usize> = users.into_iter().collect();
    users.sort_unstable();
    nested.sort_unstable();
    (nested, users)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Group, Tenant};

    #[test]
    fn transitive_members_reach_nested_groups_and_survive_cycles() {
        let mut tenant = Tenant::generate(6, 1);
        let ids: Vec<String> = tenant.users.iter().map(|u| u.id.clone()).collect();
        tenant.groups = vec![
            Group {
                id: "g1".into(),
                display_name: Some("Outer".into()),
                members: vec![ids[4].to_uppercase(), "G2".into(), "nobody".into()],
            },
            Group {
                id: "g2".into(),
                display_name: None,
                members: vec![ids[1].clone(), "g1".into(), "g3".into()],
            },
            Group {
                id: "g3".into(),
                display_name: None,
                members: vec![ids[0].clone(), ids[1].clone()],
            },
        ];
        let state = TenantState::new(tenant);
        assert_eq!(reachable(&state, 0), (vec![1, 2], vec![0, 1, 4]));
        assert_eq!(reachable(&state, 2), (vec![], vec![0, 1]));
    }
}
