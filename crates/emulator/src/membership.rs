//! `GET /beta/users/{id|upn}/transitiveMemberOf[/microsoft.graph.group]`: the groups a user is
//! in, directly or through nested groups, from the tenant file's `groups` (whose `members` are
//! user or group ids). `mfactl show` reads it to tell whether a group that the authentication
//! methods policy names covers a user.
//!
//! Read-only and one page: every group is answered with its `@odata.type`, `id` and
//! `displayName` whatever `$select` asks; the tenant file has no directory roles or
//! administrative units, so the list and its group cast are the same. Graph documents the cast
//! as an advanced query (`ConsistencyLevel: eventual` and `$count`); the emulator does not
//! insist, and mfactl does not use the cast. The rule (membership is
//! transitive, a group in a group counts) is Graph's documented one for `transitiveMemberOf`;
//! it lives here rather than in [`super::state`] because nothing else in the emulator uses it.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::context::Answer;
use super::state::{GraphError, TenantState};

/// `GET /users/{key}/transitiveMemberOf[/microsoft.graph.group]`; 404 for an unknown user.
pub(super) fn transitive_groups(state: &TenantState, key: &str) -> Result<Answer, GraphError> {
    let index = state.find(key)?;
    let groups = &state.tenant().groups;
    let member_of = groups_of(groups, &state.user(index).id);
    let value: Vec<Value> = member_of
        .into_iter()
        .map(|g| {
            json!({
                "@odata.type": "#microsoft.graph.group",
                "id": groups[g].id,
                "displayName": groups[g].display_name,
            })
        })
        .collect();
    Ok(Answer::json(
        StatusCode::OK,
        json!({
            "@odata.context": "https://graph.microsoft.com/beta/$metadata#directoryObjects",
            "value": value,
        }),
    ))
}

/// The indexes of the groups `object_id` is in, directly or through nested groups, in file
/// order. Ids compare case-insensitively; a cycle of groups ends (each group is visited once).
fn groups_of(groups: &[super::Group], object_id: &str) -> Vec<usize> {
    let mut containing: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, group) in groups.iter().enumerate() {
        for member in &group.members {
            containing
                .entry(member.to_ascii_lowercase())
                .or_default()
                .push(index);
        }
    }
    let mut found = vec![false; groups.len()];
    let mut frontier = vec![object_id.to_ascii_lowercase()];
    while let Some(id) = frontier.pop() {
        for &group in containing.get(&id).map(Vec::as_slice).unwrap_or_default() {
            if !std::mem::replace(&mut found[group], true) {
                frontier.push(groups[group].id.to_ascii_lowercase());
            }
        }
    }
    (0..groups.len()).filter(|&g| found[g]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Group;

    fn group(id: &str, members: &[&str]) -> Group {
        Group {
            id: id.to_owned(),
            display_name: None,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    #[test]
    fn membership_is_transitive_case_insensitive_and_survives_cycles() {
        let groups = [
            group("g1", &["U1"]),
            group("g2", &["G1"]),
            group("g3", &["u2"]),
            group("g4", &["g2", "g5"]),
            group("g5", &["g4"]),
        ];
        assert_eq!(groups_of(&groups, "u1"), [0, 1, 3, 4]);
        assert_eq!(groups_of(&groups, "U2"), [2]);
        assert!(groups_of(&groups, "nobody").is_empty());
    }
}
