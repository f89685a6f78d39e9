//! The manifest's selectors (`allUsers:`, `groups:`, `exclude:`) resolved to users at plan
//! time: the tenant's users listed a page at a time, groups found by name or id and their
//! transitive members listed, excluded users resolved to object ids; then
//! [`manifest::selectors::resolve`] merges them with the `users:` entries. Every user a
//! selector reaches is pinned by its object id, so the plan (and a saved plan's apply) acts on
//! exactly the reviewed population.
//!
//! `userType` and `accountEnabled` are filtered here rather than with `$filter`: Graph takes
//! `$filter` on `userType` only as an advanced query (`ConsistencyLevel: eventual`), and the
//! listing reads those two properties anyway.

use std::collections::HashMap;
use std::sync::Arc;

use super::bulk_reads::Listed;
use super::{RunError, run_wide};
use crate::graph::client::Pages;
use crate::graph::wire::DirectoryUser;
use crate::graph::{GraphClient, GraphError};
use crate::manifest::selectors::{Excluded, Member, Populations, UserTypes};
use crate::manifest::{DesiredUser, Manifest};

/// The users a manifest with selectors plans for, and the object ids of those a selector
/// named (the plan needs no lookup for them).
pub struct Selected {
    pub users: Vec<DesiredUser>,
    pub ids: HashMap<Arc<str>, uuid::Uuid>,
}

/// Lists and merges the manifest's selectors; `None` when it has none. `listed`: the tenant's
/// users when the read planner listed them already ([`super::bulk_reads::listing`]); otherwise
/// `allUsers:` lists them here, a page at a time.
pub async fn select(
    client: &GraphClient,
    manifest: &Manifest,
    listed: Vec<Listed>,
) -> Result<Option<Selected>, RunError> {
    let selectors = &manifest.selectors;
    if selectors.is_empty() {
        return Ok(None);
    }
    let listing = |error: GraphError| {
        run_wide(&error).unwrap_or_else(|| {
            RunError::Selectors(vec![format!(
                "allUsers: listing the tenant's users failed: {error}"
            )])
        })
    };
    let mut populations = Populations::default();
    if let Some(all) = &selectors.all_users {
        let chosen = |guest: bool, enabled: Option<bool>| {
            let kind = match all.user_type {
                UserTypes::Member => !guest,
                UserTypes::Guest => guest,
                UserTypes::All => true,
            };
            kind && all
                .account_enabled
                .is_none_or(|wanted| enabled == Some(wanted))
        };
        if listed.is_empty() {
            let mut pages = client.users();
            while let Some(page) = pages.next_page().await.map_err(listing)? {
                populations.all_users.extend(
                    page.into_iter()
                        .filter(|user| chosen(is_guest(user), user.account_enabled))
                        .filter_map(member),
                );
            }
        } else {
            populations.all_users.extend(
                listed
                    .into_iter()
                    .filter(|user| chosen(user.guest, user.account_enabled))
                    .map(|user| Member {
                        id: user.id,
                        user_principal_name: user.user_principal_name,
                    }),
            );
        }
    }
    let mut problems = Vec::new();
    for group in &selectors.groups {
        match group_members(client, &group.group, group.line).await {
            Ok(members) => populations.groups.push(members),
            Err(Problem::Run(error)) => return Err(error),
            Err(Problem::Located(problem)) => {
                problems.push(problem);
                populations.groups.push(Vec::new());
            }
        }
    }
    for exclusion in &selectors.exclude {
        match &exclusion.excluded {
            Excluded::User(user) => match uuid::Uuid::parse_str(user) {
                Ok(id) => {
                    populations.excluded.insert(id);
                }
                Err(_) => match client.user_identity(user).await {
                    Ok(identity) => {
                        populations
                            .excluded
                            .extend(uuid::Uuid::parse_str(&identity.id).ok());
                    }
                    // Excluding someone who does not exist excludes nobody: said, not fatal.
                    Err(error) if error.is_not_found() => tracing::warn!(
                        "exclude: Graph does not know {} (line {}); it excludes nobody",
                        crate::text::printable(user),
                        exclusion.line
                    ),
                    Err(error) => {
                        if let Some(stop) = run_wide(&error) {
                            return Err(stop);
                        }
                        problems.push(format!(
                            "line {}: exclude: cannot resolve {}: {error}",
                            exclusion.line,
                            crate::text::printable(user)
                        ));
                    }
                },
            },
            Excluded::Group(group) => match group_members(client, group, exclusion.line).await {
                Ok(members) => populations.excluded.extend(members.iter().map(|m| m.id)),
                Err(Problem::Run(error)) => return Err(error),
                Err(Problem::Located(problem)) => problems.push(problem),
            },
        }
    }
    if !problems.is_empty() {
        return Err(RunError::Selectors(problems));
    }
    let entries = manifest.users.clone();
    match crate::manifest::selectors::resolve(entries, selectors, &populations) {
        Ok((users, ids)) => {
            tracing::info!(
                users = users.len(),
                listed = populations.all_users.len(),
                excluded = populations.excluded.len(),
                "selectors resolved"
            );
            Ok(Some(Selected { users, ids }))
        }
        Err(conflicts) => Err(RunError::Selectors(
            conflicts.iter().map(ToString::to_string).collect(),
        )),
    }
}

/// Why a group could not be resolved.
enum Problem {
    /// About this group, with its line.
    Located(String),
    /// About the whole run.
    Run(RunError),
}

/// Whether a listed user is a guest (Graph's `userType`, compared without regard to case).
fn is_guest(user: &DirectoryUser) -> bool {
    user.user_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("guest"))
}

/// A listed directory object as a selector member, when it is a user with an object id.
fn member(user: DirectoryUser) -> Option<Member> {
    if !user.is_user() {
        return None;
    }
    let id = uuid::Uuid::parse_str(&user.id).ok()?;
    let name = user.user_principal_name.unwrap_or(user.id);
    Some(Member {
        id,
        user_principal_name: name.into(),
    })
}

/// The transitive user members of the group named `group` (display name or object id); a
/// located problem when no group, or several, carry that name.
async fn group_members(
    client: &GraphClient,
    group: &str,
    line: u64,
) -> Result<Vec<Member>, Problem> {
    let located = |what: String, error: GraphError| {
        run_wide(&error).map_or_else(
            || Problem::Located(format!("{what}: {error}")),
            Problem::Run,
        )
    };
    let shown = crate::text::printable(group);
    let id = match uuid::Uuid::parse_str(group) {
        Ok(id) => id.hyphenated().to_string(),
        Err(_) => {
            let ids = client.groups_named(group).await.map_err(|error| {
                located(
                    format!("line {line}: cannot look up group \"{shown}\""),
                    error,
                )
            })?;
            match ids.as_slice() {
                [id] => id.clone(),
                [] => {
                    return Err(Problem::Located(format!(
                        "line {line}: no group is named \"{shown}\"; check the display name, or \
                         give the group's object id"
                    )));
                }
                several => {
                    return Err(Problem::Located(format!(
                        "line {line}: {} groups are named \"{shown}\"; give the object id of \
                         the one meant",
                        several.len()
                    )));
                }
            }
        }
    };
    let mut pages: Pages<DirectoryUser> = client.transitive_members(&id);
    let mut members = Vec::new();
    while let Some(page) = pages.next_page().await.map_err(|error| {
        located(
            format!("line {line}: cannot list the members of group \"{shown}\""),
            error,
        )
    })? {
        members.extend(page.into_iter().filter_map(member));
    }
    Ok(members)
}
