//! Fetch live state concurrently and plan each user as its answers arrive.
//!
//! Only the endpoints whose fields the manifest manages for a user are read; registered methods
//! only when [`plan::needs_methods`] says the diff depends on them (a preferred method would
//! change, or `enabled` is wanted where Graph shows `enforced`). A user named by userPrincipalName is also resolved
//! to its object id (alongside the reads, so it costs no time), which goes into the plan and
//! finds two entries naming the same object — once by UPN, once by id — before any write. A user
//! Graph does not know is `not_found`, a user whose reads failed after retries is `failed`;
//! neither stops the others. The manifest's `protect:` entries are resolved to object ids first,
//! so that a protected account is caught however an entry names it ([`plan::protect`]).

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream;

use super::bulk_reads::{CombinedRead, Hints};
use super::outcome::user_error;
use super::progress::Progress;
use super::read_plan::ReadOptions;
use super::{Breaker, DuplicateUser, RunError};
use crate::graph::permissions::Resource;
use crate::graph::wire::UserIdentity;
use crate::graph::{GraphClient, GraphError, Purpose};
use crate::manifest::{DesiredUser, Manifest};
use crate::model::Endpoint;
use crate::plan::protect::Protected;
use crate::plan::{self, LiveUser, Plan, Status, UserPlan};

/// The tenant a run talks to, as far as it could be learnt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tenant {
    pub id: Option<String>,
    /// The primary (default) verified domain.
    pub domain: Option<String>,
}

/// Learns which tenant the client talks to from `GET /organization`. Best effort: a token
/// without the permission to read it (a 403, least privilege) leaves the tenant unknown;
/// failures that would stop every request (the host unreachable, the token refused) stop here,
/// before anything else is sent.
pub async fn identify_tenant(client: &GraphClient) -> Result<Tenant, RunError> {
    match client.organization().await {
        Ok(Some(organization)) => Ok(Tenant {
            domain: organization.primary_domain().map(str::to_owned),
            id: Some(organization.id),
        }),
        Ok(None) => Ok(Tenant::default()),
        Err(error) => {
            let breaker = Breaker::default();
            if !matches!(error.status(), Some(403)) {
                breaker.failure(Resource::Organization.read(), &error);
            }
            match breaker.into_error() {
                Some(stop) => Err(stop),
                None => {
                    tracing::debug!(%error, "cannot read /organization: the tenant stays unknown");
                    Ok(Tenant::default())
                }
            }
        }
    }
}

/// Reads the live state of every manifest user and returns the plan, reading the way the read
/// planner finds cheapest ([`ReadOptions::default`]: auto); see [`plan_with`].
pub async fn plan(
    client: &GraphClient,
    manifest: &Manifest,
    concurrency: usize,
) -> Result<Plan, RunError> {
    let (plan, _) = plan_with(client, manifest, concurrency, &ReadOptions::default()).await?;
    Ok(plan)
}

/// Reads the live state of every manifest user and returns the plan, with the lines that say
/// how it read (the bulk reads chosen and why, and every fallback to per-user reads).
/// `concurrency` bounds users in flight (the transport bounds requests in flight).
///
/// A 401, a redirect, an unreachable host, or 403s before anything succeeded stop the run (see
/// [`Breaker`]): every other user would get the same answer, and 50,000 identical failures help
/// nobody. Entries that resolve to the same object are an error ([`RunError::DuplicateUsers`]).
pub async fn plan_with(
    client: &GraphClient,
    manifest: &Manifest,
    concurrency: usize,
    options: &ReadOptions,
) -> Result<(Plan, Vec<String>), RunError> {
    // The policy first: a group name that resolves to no group stops the run before the users
    // are read.
    let policy = match &manifest.policy {
        Some(desired) => Some(super::policy::plan(client, &manifest.source, desired).await?),
        None => None,
    };
    let protected = resolve_protected(client, &manifest.protect, concurrency).await?;
    let protected = &protected;
    let mut said = Vec::new();
    let mut listing = super::bulk_reads::listing(client, manifest, options, &mut said).await?;
    let listed = listing
        .as_mut()
        .map(|(listing, _)| std::mem::take(&mut listing.users))
        .unwrap_or_default();
    // Whole populations become users here, each pinned by its object id.
    let selected = super::selectors::select(client, manifest, listed).await?;
    let (users, known): (&[DesiredUser], Option<&HashMap<Arc<str>, uuid::Uuid>>) = match &selected {
        Some(selected) => (&selected.users, Some(&selected.ids)),
        None => (&manifest.users, None),
    };
    let hints = super::bulk_reads::hints(client, users, known, listing, options, &mut said).await?;
    let hints = &hints;
    let progress = Progress::new("fetch", users.len() as u64);
    let breaker = Breaker::default();
    let stop = &breaker;
    // Sized once for the worst case: growing by doubling would hold the old and the new list at
    // once (a million entries: 150 MB for a moment). Pages no entry reaches are never touched,
    // so a mostly-in-sync run does not pay for the room.
    let mut not_in_sync = Vec::with_capacity(users.len());
    // (object id, manifest index) of every resolved user: 20 bytes a user, for duplicates.
    let mut resolved: Vec<(u128, u32)> = Vec::new();
    let mut results = stream::iter(users.iter().enumerate())
        .map(|(order, desired)| async move {
            if stop.is_tripped() {
                return None;
            }
            let id = known
                .and_then(|ids| ids.get(&desired.user).copied())
                .or_else(|| hints.id_of(&desired.user));
            let (mut user, id) = plan_user(client, desired, id, hints, stop).await;
            protected.mark(&mut user);
            Some((order, (user, id)))
        })
        .buffer_unordered(concurrency.max(1) * 2);
    while let Some(result) = results.next().await {
        let Some((order, (user, id))) = result else {
            continue;
        };
        progress.inc(1);
        if let Some(id) = id {
            resolved.push((id, order as u32));
        }
        // A protected user is listed even when in sync: the reviewer sees it was skipped.
        if user.status != Status::InSync {
            not_in_sync.push((order, user));
        }
    }
    drop(results);
    said.extend(hints.lines());
    if let Some(error) = breaker.into_error() {
        return Err(error);
    }
    let duplicates = duplicate_objects(&manifest.source, users, resolved);
    if !duplicates.is_empty() {
        return Err(RunError::DuplicateUsers(duplicates));
    }
    let mut plan = Plan::new(client.transport().root(), users.len() as u64, not_in_sync);
    plan.max_changes = manifest.max_changes;
    // Before anything else is said about the users: a held change is blocked.
    super::coverage::check(client, &mut plan, manifest.allow_mfa_gap).await?;
    if let Some(policy) = policy {
        plan.policy = Some(policy.plan);
        if let Some(excluded) = policy.system_preferred_for_all {
            note_system_preferred(&mut plan, &excluded, policy.system_preferred_managed);
        }
    }
    plan.summary = plan.count(users.len() as u64);
    Ok((plan, said))
}

/// With system-preferred MFA on for all users (after this plan), Graph ignores a user's
/// preferred method at sign-in: each preferred-method change says so, and so does the policy.
/// `managed`: it is on because the policy leaves it Microsoft managed (`state: default`), which
/// Entra documents as enabled ([`crate::plan::policy::counts_as_enabled`]). Group membership is
/// not read, so an exclusion is named, not decided.
fn note_system_preferred(plan: &mut Plan, excluded: &[String], managed: bool) {
    let unless = if excluded.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = excluded
            .iter()
            .map(|name| crate::text::printable(name).into_owned())
            .collect();
        format!(" unless excluded by group {}", names.join(" or "))
    };
    let (policy_enables, is_enabled) = if managed {
        (
            "the tenant policy leaves system-preferred MFA Microsoft managed (state default), \
             which Entra documents as enabled, for all users",
            "system-preferred MFA is Microsoft managed (state default, documented as enabled) \
             for all users",
        )
    } else {
        (
            "the tenant policy enables system-preferred MFA for all users",
            "system-preferred MFA is enabled for all users",
        )
    };
    let mut affected = 0;
    for user in &mut plan.users {
        if user.status == Status::Protected {
            continue; // nothing is written for it
        }
        // A blocked field is not a change: nothing is written, nothing is ignored.
        let Some(method) = user
            .fields
            .iter()
            .find(|f| f.field == crate::model::Field::PreferredMethod && !f.blocked)
            .and_then(|f| f.after.as_str())
            .and_then(crate::model::PreferredMethod::parse)
        else {
            continue;
        };
        // One note per change: a user whose own system-preferred MFA is on already has one,
        // which this one replaces, saying both.
        let own = plan::ignored_note(&user.user, method);
        let note = if user.notes().contains(&own) {
            format!(
                "system-preferred MFA is on for {}, and {policy_enables}: the preferred method \
                 {method} is ignored at sign-in (except by the NPS extension and the AD FS \
                 adapter)",
                user.user
            )
        } else {
            format!("{policy_enables}: the preferred method {method} is ignored at sign-in{unless}")
        };
        user.replace_note(&own, note);
        affected += 1;
    }
    if affected > 0
        && let Some(policy) = &mut plan.policy
    {
        policy.notes.push(format!(
            "{is_enabled}: the preferred-method changes of {affected} {} in this plan are \
             ignored at sign-in{unless}",
            if affected == 1 { "user" } else { "users" }
        ));
    }
}

/// Resolves the `protect:` entries to object ids (an entry that is an object id too, which
/// checks that Graph knows it). An entry Graph does not know is not an error, since it protects
/// nothing: a warning names it. Any other failure stops the run before a user is read: without
/// the entry's object id, an entry naming that account the other way would not be caught.
pub async fn resolve_protected(
    client: &GraphClient,
    entries: &[String],
    concurrency: usize,
) -> Result<Protected, RunError> {
    let answers: Vec<_> = stream::iter(entries)
        .map(|entry| async move { (entry, client.user_identity(entry).await) })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let breaker = Breaker::default();
    let need = Resource::UserBasic.read();
    let mut resolved = Vec::with_capacity(entries.len());
    let mut unresolved = None;
    for (entry, answer) in answers {
        match answer {
            Ok(identity) => {
                breaker.success(need);
                resolved.extend(uuid::Uuid::parse_str(&identity.id).ok());
            }
            Err(error) if error.is_not_found() => {
                tracing::warn!(
                    "protect: Graph does not know {}; it protects nothing (check the \
                     userPrincipalName or object id)",
                    crate::text::printable(entry)
                );
            }
            Err(error) => {
                breaker.failure(need, &error);
                unresolved.get_or_insert((entry, error));
            }
        }
    }
    if let Some(stop) = breaker.into_error() {
        return Err(stop);
    }
    if let Some((entry, error)) = unresolved {
        return Err(RunError::ProtectUnresolved {
            entry: entry.clone(),
            error,
        });
    }
    Ok(Protected::new(entries, resolved))
}

/// Entries whose users resolved to the same object id, each later one paired with the first.
fn duplicate_objects(
    source: &std::path::Path,
    users: &[DesiredUser],
    mut resolved: Vec<(u128, u32)>,
) -> Vec<DuplicateUser> {
    resolved.sort_unstable();
    let mut duplicates = Vec::new();
    for run in resolved.chunk_by(|a, b| a.0 == b.0) {
        let Some(((id, first), rest)) = run.split_first() else {
            continue;
        };
        let entry = |index: u32| {
            let user = &users[index as usize];
            (user.user.to_string(), user.origin)
        };
        for (_, later) in rest {
            duplicates.push(DuplicateUser {
                file: source.to_owned(),
                id: uuid::Uuid::from_u128(*id).hyphenated().to_string(),
                first: entry(*first),
                second: entry(*later),
            });
        }
    }
    duplicates.sort_by_key(|d| match d.second.1 {
        crate::manifest::Origin::Line(n) | crate::manifest::Origin::Row(n) => n,
    });
    duplicates
}

/// One user's plan entry, and its object id when known.
/// `known` is the object id a selector's listing (or the read planner's) gave, when it did (no
/// lookup is needed then). What `hints` hold for the user is taken from them; the rest is read.
async fn plan_user(
    client: &GraphClient,
    desired: &DesiredUser,
    known: Option<uuid::Uuid>,
    hints: &Hints,
    stop: &Breaker,
) -> (UserPlan, Option<u128>) {
    let named_id = known.or_else(|| uuid::Uuid::parse_str(&desired.user).ok());
    // A user a listing named is read by its object id, never by the name Graph gave.
    let address = match known {
        Some(id) => std::borrow::Cow::Owned(id.hyphenated().to_string()),
        None => std::borrow::Cow::Borrowed(&*desired.user),
    };
    let mut live = match read_live(client, desired, named_id, &address, hints, stop).await {
        Ok(live) => live,
        Err((endpoint, error)) => return (unreadable(desired, endpoint, &error), None),
    };
    let id = live.id.or(named_id);
    let cloud = client.transport().config().cloud;
    let needed = plan::needs_methods(desired, &live.user);
    let hinted = needed
        .then(|| id.and_then(|id| hints.methods(id.as_u128())))
        .flatten();
    let wanted_row = desired.manages_sign_in_preferences() || needed;
    if wanted_row && hints.has_report() && !id.is_some_and(|id| hints.has_row(id.as_u128())) {
        hints.note_missing_row();
    }
    let unchecked = needed && hinted.is_none() && !cloud.serves_authentication_methods();
    if let Some(methods) = hinted {
        live.user.methods = Some(methods);
    } else if needed && !unchecked {
        let methods = Reads {
            methods: true,
            ..Reads::default()
        };
        match read_user(client, &address, methods, stop).await {
            Ok(read) => live.user.methods = read.live.methods,
            Err((_, error)) => return (unreadable(desired, None, &error), None),
        }
    }
    let mut user = plan::diff(desired, &live.user);
    user.id = id;
    if unchecked {
        let note = unchecked_methods_note(&user, cloud);
        user.add_note(note);
    }
    (user, id.map(|id| id.as_u128()))
}

/// A user's live values before registered methods, and the object id a read resolved.
struct Live {
    user: LiveUser,
    id: Option<uuid::Uuid>,
}

/// The managed endpoints' live values: from the hints where they hold them, in one combined
/// read where both endpoints are still wanted and the user's object id is known, else read
/// apart (with the object id of a userPrincipalName no listing named).
async fn read_live(
    client: &GraphClient,
    desired: &DesiredUser,
    named_id: Option<uuid::Uuid>,
    address: &str,
    hints: &Hints,
    stop: &Breaker,
) -> Result<Live, (Option<Endpoint>, GraphError)> {
    let id = named_id.map(|id| id.as_u128());
    let mut user = LiveUser {
        sign_in: id
            .filter(|_| desired.manages_sign_in_preferences())
            .and_then(|id| hints.sign_in(id)),
        requirements: id
            .filter(|_| desired.manages_requirements())
            .and_then(|id| hints.requirements(id)),
        methods: None,
    };
    let mut reads = Reads {
        identity: named_id.is_none(),
        sign_in: desired.manages_sign_in_preferences() && user.sign_in.is_none(),
        requirements: desired.manages_requirements() && user.requirements.is_none(),
        methods: false,
    };
    if reads.sign_in
        && reads.requirements
        && named_id.is_some()
        && let Some(combined) = &hints.combined
    {
        match combined.read(client, address).await {
            CombinedRead::Read(sign_in, requirements) => {
                stop.success(Resource::SignInPreferences.read());
                stop.success(Resource::Requirements.read());
                (user.sign_in, user.requirements) = (Some(sign_in), Some(requirements));
                (reads.sign_in, reads.requirements) = (false, false);
            }
            CombinedRead::Apart => {}
            CombinedRead::Failed(error) => {
                stop.failure(Resource::SignInPreferences.read(), &error);
                return Err((Some(Endpoint::SignInPreferences), error));
            }
        }
    }
    if reads == Reads::default() {
        return Ok(Live { user, id: None });
    }
    let read = read_user(client, address, reads, stop).await?;
    user.sign_in = user.sign_in.or(read.live.sign_in);
    user.requirements = user.requirements.or(read.live.requirements);
    let id = read
        .identity
        .and_then(|identity| uuid::Uuid::parse_str(&identity.id).ok());
    Ok(Live { user, id })
}

/// Said of a user whose registered methods mattered but could not be read: the cloud's Graph
/// has no `/authentication/methods`. The plan goes ahead as if they were registered (a
/// preferred-method change is planned, not blocked; `enabled` against `enforced` is taken as
/// met, which writes nothing).
fn unchecked_methods_note(user: &UserPlan, cloud: crate::graph::Cloud) -> String {
    let preferred = user
        .fields
        .iter()
        .find(|f| f.field == crate::model::Field::PreferredMethod);
    let what = match preferred {
        Some(change) => {
            let method = match &change.after {
                crate::plan::Value::Method(method) => method.to_string(),
                other => other.to_string(),
            };
            format!("registration of {method} could not be checked")
        }
        None => "whether the user has a registered MFA method could not be checked (enforced \
                 is taken as meeting enabled)"
            .to_owned(),
    };
    format!(
        "{what}: /authentication/methods is not available in {}",
        cloud.describe()
    )
}

/// Which of a user's resources to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Reads {
    /// `/users/{upn}?$select=id,userPrincipalName`: the object a UPN names.
    pub identity: bool,
    pub sign_in: bool,
    pub requirements: bool,
    /// `/authentication/methods`, as the kinds registered.
    pub methods: bool,
}

/// What [`read_user`] read.
#[derive(Debug, Default)]
pub(super) struct UserReads {
    pub identity: Option<UserIdentity>,
    pub live: LiveUser,
}

/// Reads the resources `reads` names for `user`, all at once (the transport batches and paces
/// them with every other user's). Each answer counts for its own kind of read, so that a token
/// that reads signInPreferences but not requirements is found out after a few users, not hidden
/// by the other's successes. The first failure in the order identity, signInPreferences,
/// requirements, methods is returned with its endpoint (none for identity and methods).
pub(super) async fn read_user(
    client: &GraphClient,
    user: &str,
    reads: Reads,
    stop: &Breaker,
) -> Result<UserReads, (Option<Endpoint>, GraphError)> {
    let (identity, sign_in, requirements, methods) = futures::join!(
        when(reads.identity, || client.user_identity(user)),
        when(reads.sign_in, || client
            .sign_in_preferences(user, Purpose::Read)),
        when(reads.requirements, || client
            .requirements(user, Purpose::Read)),
        when(reads.methods, || client.registered_methods(user)),
    );
    let counted = |resource: Resource, result: Result<(), &GraphError>| match result {
        Ok(()) => stop.success(resource.read()),
        Err(error) => stop.failure(resource.read(), error),
    };
    let mut failure = None;
    for (resource, endpoint, result) in [
        (
            Resource::UserBasic,
            None,
            identity.as_ref().map(|r| r.as_ref().map(|_| ())),
        ),
        (
            Resource::SignInPreferences,
            Some(Endpoint::SignInPreferences),
            sign_in.as_ref().map(|r| r.as_ref().map(|_| ())),
        ),
        (
            Resource::Requirements,
            Some(Endpoint::Requirements),
            requirements.as_ref().map(|r| r.as_ref().map(|_| ())),
        ),
        (
            Resource::Methods,
            None,
            methods.as_ref().map(|r| r.as_ref().map(|_| ())),
        ),
    ] {
        if let Some(result) = result {
            counted(resource, result);
            if let Err(error) = result {
                failure.get_or_insert((endpoint, error.clone()));
            }
        }
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    Ok(UserReads {
        identity: identity.and_then(Result::ok),
        live: LiveUser {
            sign_in: sign_in.and_then(Result::ok),
            requirements: requirements.and_then(Result::ok),
            methods: methods.and_then(Result::ok),
        },
    })
}

/// `read()`'s output when `wanted`; otherwise `read` is never called, and nothing is sent.
///
/// The read is made, and boxed, only when wanted: a request's future is kilobytes (its retries,
/// its batch slot, its HTTP exchange), and a user's reads are four of which a plan usually
/// makes two. Kept inline, every user in flight would carry all four, moved into place and
/// freed again for each of a tenant's users.
pub(super) async fn when<T, F>(wanted: bool, read: impl FnOnce() -> F) -> Option<T>
where
    F: std::future::Future<Output = T>,
{
    match wanted {
        true => Some(Box::pin(read()).await),
        false => None,
    }
}

/// The plan entry for a user whose state could not be read.
fn unreadable(desired: &DesiredUser, endpoint: Option<Endpoint>, error: &GraphError) -> UserPlan {
    let status = if error.is_not_found() {
        Status::NotFound
    } else {
        // A run-wide failure is said once, when the run stops; not once per user in flight.
        if !Breaker::is_run_wide(error) {
            tracing::warn!(user = %crate::text::printable(&desired.user), %error, "could not read the user's live state");
        }
        Status::Failed
    };
    UserPlan::unread(desired.user.clone(), status, user_error(endpoint, error))
}
