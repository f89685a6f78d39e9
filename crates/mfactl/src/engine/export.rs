//! `mfactl export`: the live state of a tenant's users written as a manifest whose plan against
//! the same tenant is empty, or as an emulator tenant file to rehearse a migration on a copy.
//!
//! It streams. Users come a page at a time (`GET /users`, a group's `transitiveMembers`, or the
//! names a file lists), each user's reads go through the same concurrent, batched machinery a
//! plan uses ([`super::fetch::read_user`]), and each user is written as soon as its reads and
//! those of every user listed before it are done: the output keeps the listing's order, and no
//! more than a page and the reads in flight are ever held, whatever the tenant's size.
//!
//! What a manifest cannot express is left out for that user, which leaves the field unmanaged
//! and so keeps the plan empty: a `null` preferred method, a value newer than this build
//! (`unknownFutureValue`), a missing flag. The tenant file takes registered methods by kind
//! only ([`crate::model::MethodKind`]): a phone's number, an email address or a device name is
//! never read into it. A failure to read a user stops the export (a partial export would plan
//! as "in sync" for users it silently lacks); a user deleted between listing and reading is
//! skipped and counted.
//!
//! Exporting every user, the listing also selects `perUserMfaState` unless `--read-path
//! per-user` says not to (the read planner's bulk listing, [`super::read_plan`]): each user is
//! then read on `signInPreferences` alone, half the reads. It is a hint like every bulk read: a
//! Graph that refuses the property is listed without it, and a user it gave no state in Graph's
//! spelling has `requirements` read, each saying so. The registration report is not used here:
//! it would have to be held whole before the first user streams out, and per-user reads of one
//! endpoint go faster than its pages at the reports limit.

use std::collections::HashSet;
use std::io::{self, Write};

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use serde::Serialize;

use super::fetch::{Reads, read_user};
use super::progress::Progress;
use super::read_plan::ReadPath;
use super::{Breaker, RunError, Tenant};
use crate::graph::wire::DirectoryUser;
use crate::graph::{GraphClient, GraphError};
use crate::manifest::write::{ManifestEntry, ManifestFormat, ManifestWriter};
use crate::model::{MethodKind, PerUserMfaState, PreferredMethod};
use crate::plan::LiveUser;
use crate::text::printable;
use mfactl_core::tenant::{Group, RoleAssignment, TenantUser, UserSignInPreferences, UserType};

/// Whose state to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every user of the tenant (`GET /users`).
    Everyone,
    /// The users in a group, directly or through nested groups: its object id or display name.
    Group(String),
    /// These users (userPrincipalName or object id), in this order; a name given twice, or
    /// once by UPN and once by id, is written once.
    Users(Vec<String>),
}

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Manifest(ManifestFormat),
    /// An emulator tenant file (YAML).
    Tenant,
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exported {
    pub users: u64,
    /// Users that could not be found when read (deleted since they were listed, or a name in
    /// the `--users` file that no user has).
    pub not_found: Vec<String>,
    /// Fields left out of a manifest because it cannot express the live value.
    pub fields_left_out: u64,
    /// Groups written to a tenant file.
    pub groups: u64,
    /// How the live values were read, and every fallback to per-user reads (one line each).
    pub said: Vec<String>,
}

/// Why an export stopped; nothing is kept of a stopped export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A failure every other request would share (a refused token, Graph unreachable, ...).
    #[error(transparent)]
    Run(#[from] RunError),
    /// A page of the listing could not be read after retries.
    #[error("cannot list the users: {0}")]
    Listing(GraphError),
    /// A user's state could not be read after retries.
    #[error("cannot read the state of {user}: {error}")]
    Unreadable { user: String, error: GraphError },
    /// `--group` names no group, or several.
    #[error("{0}")]
    Group(String),
    /// The tenant's id or domain is unknown (`/organization` could not be read): a tenant file
    /// needs both.
    #[error(
        "the tenant's id and domain are unknown (GET /organization was refused or empty); a \
         tenant file needs them"
    )]
    UnknownTenant,
    /// The tenant's authentication methods policy could not be read after retries.
    #[error("cannot read the tenant's authentication methods policy: {0}")]
    Policy(GraphError),
    /// Security defaults or the Conditional Access policies could not be read after retries:
    /// a copy without them would judge coverage differently.
    #[error("cannot read the tenant's security defaults or Conditional Access policies: {0}")]
    ConditionalAccess(GraphError),
    /// The output could not be written.
    #[error("cannot write the export: {0}")]
    Write(#[from] io::Error),
}

/// A user to read: listed with its properties, or named by the `--users` file.
enum Source {
    Listed(DirectoryUser),
    Named(String),
}

/// A user read whole: what the listing said and the live values.
struct ReadUser {
    listed: DirectoryUser,
    live: LiveUser,
}

/// Writes the export of `selection` to `out`. `tenant` is what `/organization` said (a tenant
/// file needs its id and domain); `concurrency` bounds the users in flight.
pub async fn export(
    client: &GraphClient,
    tenant: &Tenant,
    selection: &Selection,
    format: ExportFormat,
    concurrency: usize,
    read_path: ReadPath,
    out: &mut dyn Write,
) -> Result<Exported, ExportError> {
    let mut sink = match format {
        ExportFormat::Manifest(format) => {
            Sink::Manifest(ManifestWriter::start(format, MANIFEST_COMMENT, out)?)
        }
        ExportFormat::Tenant => Sink::Tenant(TenantWriter::start(tenant, out)?),
    };
    // A manifest notes, per user, whether MFA would stay required without per-user MFA: the
    // same handful of reads as a plan's check, once.
    let facts = match format {
        ExportFormat::Manifest(_) => Some(super::coverage::read_facts(client).await?),
        ExportFormat::Tenant => None,
    };
    let mut said = Vec::new();
    let mfa_state = read_path != ReadPath::PerUser && *selection == Selection::Everyone;
    let sources = sources(client, selection, mfa_state, &mut said).await?;
    let stateless = std::sync::atomic::AtomicU64::new(0);
    let stateless = &stateless;
    let cloud = client.transport().config().cloud;
    let methods = format == ExportFormat::Tenant && cloud.serves_authentication_methods();
    if format == ExportFormat::Tenant && !methods {
        tracing::warn!(
            "/authentication/methods is not available in {}: the tenant file lists no \
             registered methods",
            cloud.describe()
        );
    }
    let reads = Reads {
        identity: false,
        sign_in: true,
        requirements: true,
        methods,
    };
    let progress = Progress::new("export", 0);
    let breaker = Breaker::default();
    let stop = &breaker;
    let progress_ref = &progress;
    let mut users = sources
        .map(|source| async move {
            let source = source.map_err(ExportError::Listing)?;
            progress_ref.add_total(1);
            read_source(client, source, reads, stop, stateless).await
        })
        .buffered(concurrency.max(1) * 2);
    let mut exported = Exported::default();
    // Only a partial export needs them: a tenant file's groups must name exported objects only.
    let mut written_ids = match selection {
        Selection::Everyone => None,
        _ => Some(HashSet::new()),
    };
    while let Some(result) = users.next().await {
        progress.inc(1);
        let user = match result {
            Ok(Ok(user)) => user,
            Ok(Err(missing)) => {
                tracing::warn!(user = %printable(&missing), "user not found; not exported");
                exported.not_found.push(missing);
                continue;
            }
            Err(error) => {
                drop(users);
                return Err(match breaker.into_error() {
                    Some(stop) => ExportError::Run(stop),
                    None => error,
                });
            }
        };
        if let Some(ids) = &mut written_ids
            && !ids.insert(user.listed.id.to_ascii_lowercase())
        {
            continue;
        }
        let coverage = facts.as_ref().map(|facts| {
            facts
                .judge(uuid::Uuid::parse_str(&user.listed.id).ok())
                .summary()
        });
        exported.fields_left_out += sink.user(&user, coverage.as_deref(), out)?;
        exported.users += 1;
    }
    drop(users);
    if let Some(stop) = breaker.into_error() {
        return Err(stop.into());
    }
    let stateless = stateless.load(std::sync::atomic::Ordering::Relaxed);
    let refused = said.iter().any(|line| line.starts_with("Fallback:"));
    if mfa_state && stateless > 0 && !refused {
        said.push(format!(
            "Fallback: the users listing gave no perUserMfaState in Graph's spelling for {} \
             users: their requirements were read per user.",
            crate::text::thousands(stateless)
        ));
    }
    exported.said = said;
    match sink {
        Sink::Manifest(writer) => {
            writer.finish(out)?;
        }
        Sink::Tenant(writer) => {
            exported.groups = writer.finish(client, written_ids.as_ref(), out).await?;
        }
    }
    Ok(exported)
}

/// The comment atop an exported manifest: what it is, and why some fields are missing. It
/// names no time or host, so that exporting the same state twice gives the same bytes.
const MANIFEST_COMMENT: &str = "Exported by mfactl export: the live values, planned against \
     the same tenant, change nothing.\nA field a user's entry leaves out is not managed: Graph \
     had no value a manifest can hold\n(a null preferred method, or a value newer than this \
     mfactl).\n\"MFA coverage\" says whether MFA would stay required with per-user MFA disabled \
     (Conditional Access\nor security defaults): a note, never a managed field.";

/// The users to read, in order: pages of a listing flattened, or the named users.
// An error ends the export, once: its size costs nothing worth boxing it for.
#[allow(clippy::result_large_err)]
async fn sources<'a>(
    client: &'a GraphClient,
    selection: &Selection,
    mfa_state: bool,
    said: &mut Vec<String>,
) -> Result<BoxStream<'a, Result<Source, GraphError>>, ExportError> {
    let (first, pages) = match selection {
        Selection::Users(names) => {
            let names: Vec<Result<Source, GraphError>> =
                names.iter().cloned().map(Source::Named).map(Ok).collect();
            return Ok(stream::iter(names).boxed());
        }
        Selection::Everyone if mfa_state => listing_with_state(client, said).await?,
        Selection::Everyone => (None, client.users()),
        Selection::Group(group) => (
            None,
            client.transitive_members(&group_id(client, group).await?),
        ),
    };
    let pages = stream::try_unfold((first, pages), |(first, mut pages)| async move {
        if let Some(page) = first {
            return Ok(Some((page, (None, pages))));
        }
        Ok(pages.next_page().await?.map(|page| (page, (None, pages))))
    });
    Ok(pages
        .map_ok(|page| {
            stream::iter(
                page.into_iter()
                    .filter(DirectoryUser::is_user)
                    .map(|user| Ok(Source::Listed(user))),
            )
        })
        .try_flatten()
        .boxed())
}

/// The listing of every user with `perUserMfaState`, its first page read already; a Graph that
/// refuses the property (400 or 403) lists without it, saying so.
async fn listing_with_state(
    client: &GraphClient,
    said: &mut Vec<String>,
) -> Result<
    (
        Option<Vec<DirectoryUser>>,
        crate::graph::client::Pages<DirectoryUser>,
    ),
    ExportError,
> {
    let mut pages = client.users_listing(true, None, false);
    match pages.next_page().await {
        Ok(first) => {
            said.push(
                "Read path: perUserMfaState from the users listing ($select=perUserMfaState): \
                 each user is read on signInPreferences alone."
                    .to_owned(),
            );
            Ok((first, pages))
        }
        Err(error) if matches!(error.status(), Some(400 | 403)) => {
            said.push(format!(
                "Fallback: Graph refused $select=perUserMfaState on /users ({}): the listing \
                 goes on without it, and requirements are read per user.",
                super::bulk_reads::brief(&error)
            ));
            Ok((None, client.users()))
        }
        Err(error) => Err(ExportError::Listing(error)),
    }
}

/// A group's object id from `--group`: an id as given, or the one group with this display name.
async fn group_id(client: &GraphClient, group: &str) -> Result<String, ExportError> {
    if uuid::Uuid::parse_str(group).is_ok() {
        return Ok(group.to_owned());
    }
    let ids = client
        .groups_named(group)
        .await
        .map_err(ExportError::Listing)?;
    match ids.as_slice() {
        [id] => Ok(id.clone()),
        [] => Err(ExportError::Group(format!(
            "no group is named {}",
            printable(group)
        ))),
        many => Err(ExportError::Group(format!(
            "{} groups are named {} ({}); give the object id of the one to export",
            many.len(),
            printable(group),
            many.join(", ")
        ))),
    }
}

/// Reads one user: `Ok(Err(name))` when Graph does not know them (any more).
async fn read_source(
    client: &GraphClient,
    source: Source,
    mut reads: Reads,
    stop: &Breaker,
    stateless: &std::sync::atomic::AtomicU64,
) -> Result<Result<ReadUser, String>, ExportError> {
    let listed = match source {
        Source::Listed(listed) => listed,
        Source::Named(name) => match client.directory_user(&name).await {
            Ok(listed) => {
                stop.success(crate::graph::permissions::Resource::Users.read());
                listed
            }
            Err(error) if error.is_not_found() => return Ok(Err(name)),
            Err(error) => {
                stop.failure(crate::graph::permissions::Resource::Users.read(), &error);
                return Err(ExportError::Unreadable { user: name, error });
            }
        },
    };
    // The listing's state, when it gave one in Graph's spelling: `requirements` is not read.
    let listed_state = listed.per_user_mfa_state.as_deref().and_then(|value| {
        PerUserMfaState::ALL
            .iter()
            .find(|state| state.as_str() == value)
            .map(|state| crate::graph::wire::Requirements {
                per_user_mfa_state: Some(state.as_str().to_owned()),
            })
    });
    if listed_state.is_some() {
        reads.requirements = false;
    } else if reads.requirements {
        stateless.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    // By object id: exact, and free of a UPN's escaping.
    match read_user(client, &listed.id, reads, stop).await {
        Ok(read) => Ok(Ok(ReadUser {
            listed,
            live: LiveUser {
                requirements: listed_state.or(read.live.requirements),
                ..read.live
            },
        })),
        Err((_, error)) if error.is_not_found() => {
            Ok(Err(listed.user_principal_name.unwrap_or(listed.id)))
        }
        Err((_, error)) => Err(ExportError::Unreadable {
            user: listed.user_principal_name.unwrap_or(listed.id),
            error,
        }),
    }
}

/// Where users go.
enum Sink {
    Manifest(ManifestWriter),
    Tenant(TenantWriter),
}

impl Sink {
    /// Writes one user, with its Conditional Access verdict as a note (manifests only);
    /// returns how many fields were left out.
    fn user(
        &mut self,
        user: &ReadUser,
        coverage: Option<&str>,
        out: &mut dyn Write,
    ) -> io::Result<u64> {
        let sign_in = user.live.sign_in.as_ref();
        let preferred_method = sign_in
            .and_then(|s| {
                s.user_preferred_method_for_secondary_authentication
                    .as_deref()
            })
            .and_then(PreferredMethod::parse);
        let system_preferred =
            sign_in.and_then(|s| s.is_system_preferred_authentication_method_enabled);
        let per_user_mfa_state = user
            .live
            .requirements
            .as_ref()
            .and_then(|r| r.per_user_mfa_state.as_deref())
            .and_then(PerUserMfaState::parse);
        match self {
            Sink::Manifest(writer) => {
                let entry = ManifestEntry {
                    user_principal_name: user.listed.user_principal_name.as_deref(),
                    id: &user.listed.id,
                    preferred_method,
                    system_preferred,
                    per_user_mfa_state,
                    coverage,
                };
                writer.entry(&entry, out)?;
                Ok(u64::from(preferred_method.is_none())
                    + u64::from(system_preferred.is_none())
                    + u64::from(per_user_mfa_state.is_none()))
            }
            Sink::Tenant(writer) => {
                let listed = &user.listed;
                let tenant_user = TenantUser {
                    id: listed.id.clone(),
                    user_principal_name: listed
                        .user_principal_name
                        .clone()
                        .unwrap_or_else(|| listed.id.clone()),
                    display_name: listed.display_name.clone(),
                    user_type: match listed.user_type.as_deref() {
                        Some(t) if t.eq_ignore_ascii_case("guest") => UserType::Guest,
                        _ => UserType::Member,
                    },
                    account_enabled: listed.account_enabled.unwrap_or(true),
                    // An emulator fault, not a Graph fact.
                    forgets_writes: false,
                    // Kinds only: no phone number, address or device name is ever kept. The
                    // password is always present in a tenant file, so it is not listed.
                    methods: user
                        .live
                        .methods
                        .iter()
                        .flatten()
                        .copied()
                        .filter(|kind| *kind != MethodKind::Password)
                        .collect(),
                    sign_in_preferences: UserSignInPreferences {
                        is_system_preferred_authentication_method_enabled: system_preferred
                            .unwrap_or(false),
                        user_preferred_method_for_secondary_authentication: preferred_method,
                    },
                    // A state newer than this build cannot be held; Graph's default stands in.
                    per_user_mfa_state: per_user_mfa_state.unwrap_or(PerUserMfaState::Disabled),
                };
                writer.user(&tenant_user, out)?;
                Ok(0)
            }
        }
    }
}

/// Writes a tenant file a user at a time, in the shape the emulator's `Tenant::load`
/// reads: the header, `users:` as they come, then the groups and the policy.
struct TenantWriter {
    users: u64,
}

/// The tenant file's first keys.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TenantHeader<'a> {
    tenant_id: &'a str,
    domain: &'a str,
}

/// The tenant file's last keys.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TenantTail {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<Group>,
    authentication_methods_policy: serde_json::Value,
    /// Written even when on: a file without the key would have the copy guess.
    security_defaults: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    conditional_access_policies: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    role_assignments: Vec<RoleAssignment>,
}

fn yaml<T: Serialize>(value: &T) -> io::Result<String> {
    serde_saphyr::to_string(value).map_err(io::Error::other)
}

impl TenantWriter {
    // An error ends the export, once: its size costs nothing worth boxing it for.
    #[allow(clippy::result_large_err)]
    fn start(tenant: &Tenant, out: &mut dyn Write) -> Result<TenantWriter, ExportError> {
        let (Some(tenant_id), Some(domain)) = (&tenant.id, &tenant.domain) else {
            return Err(ExportError::UnknownTenant);
        };
        out.write_all(yaml(&TenantHeader { tenant_id, domain })?.as_bytes())?;
        Ok(TenantWriter { users: 0 })
    }

    fn user(&mut self, user: &TenantUser, out: &mut dyn Write) -> io::Result<()> {
        if self.users == 0 {
            writeln!(out, "users:")?;
        }
        out.write_all(yaml(&[user])?.as_bytes())?;
        self.users += 1;
        Ok(())
    }

    /// Writes the groups (each with its direct members; for a partial export only those in
    /// `written`, the exported users, or a group) and the policy; returns the groups written.
    async fn finish(
        self,
        client: &GraphClient,
        written: Option<&HashSet<String>>,
        out: &mut dyn Write,
    ) -> Result<u64, ExportError> {
        if self.users == 0 {
            writeln!(out, "users: []")?;
        }
        let listed = client.groups().await.map_err(ExportError::Listing)?;
        let group_ids: HashSet<String> = listed.iter().map(|g| g.id.to_ascii_lowercase()).collect();
        let mut groups = Vec::with_capacity(listed.len());
        for group in listed {
            let members = client
                .group_members(&group.id)
                .await
                .map_err(ExportError::Listing)?
                .into_iter()
                .filter(|id| {
                    let id = id.to_ascii_lowercase();
                    group_ids.contains(&id) || written.is_none_or(|users| users.contains(&id))
                })
                .collect();
            groups.push(Group {
                id: group.id,
                display_name: group.display_name,
                members,
            });
        }
        let mut policy = client
            .authentication_methods_policy_document(crate::graph::Purpose::Read)
            .await
            .map_err(ExportError::Policy)?;
        // Graph's annotations (`@odata.context`, `x@odata.context`) describe the answer, not
        // the policy.
        if let serde_json::Value::Object(object) = &mut policy {
            object.retain(|key, _| !key.contains("@odata."));
        }
        let count = groups.len() as u64;
        let access = conditional_access(client, &group_ids, written).await?;
        out.write_all(
            yaml(&TenantTail {
                groups,
                authentication_methods_policy: policy,
                security_defaults: access.security_defaults,
                conditional_access_policies: access.policies,
                role_assignments: access.role_assignments,
            })?
            .as_bytes(),
        )?;
        Ok(count)
    }
}

/// What a copy needs to judge Conditional Access coverage as the tenant does.
struct ConditionalAccess {
    security_defaults: bool,
    policies: Vec<serde_json::Value>,
    role_assignments: Vec<RoleAssignment>,
}

/// Security defaults and the Conditional Access policies (without Graph's `@odata.context`
/// annotations), and the tenant-wide assignments of the roles the policies name, to users and
/// groups the file holds (best effort: without RoleManagement.Read.Directory the copy holds
/// none, and says so).
async fn conditional_access(
    client: &GraphClient,
    group_ids: &HashSet<String>,
    written: Option<&HashSet<String>>,
) -> Result<ConditionalAccess, ExportError> {
    let security_defaults = client
        .security_defaults()
        .await
        .map_err(ExportError::ConditionalAccess)?;
    let mut policies = client
        .conditional_access_policies()
        .await
        .map_err(ExportError::ConditionalAccess)?;
    for policy in &mut policies {
        strip_contexts(policy);
    }
    let parsed: Vec<crate::plan::coverage::CaPolicy> = policies
        .iter()
        .map(crate::plan::coverage::CaPolicy::from_json)
        .collect();
    let roles: std::collections::BTreeSet<&String> = parsed
        .iter()
        .filter_map(|p| p.users.as_ref())
        .flat_map(|u| u.include_roles.iter().chain(&u.exclude_roles))
        .collect();
    let mut role_assignments = Vec::new();
    for role in roles {
        match client.role_assignments(role).await {
            Ok(assignments) => {
                role_assignments.extend(assignments.into_iter().filter_map(|assignment| {
                    let kind = assignment.principal.as_ref()?.odata_type.as_deref()?;
                    let id = assignment.principal_id.to_ascii_lowercase();
                    let held = if kind.eq_ignore_ascii_case("#microsoft.graph.group") {
                        group_ids.contains(&id)
                    } else {
                        kind.eq_ignore_ascii_case("#microsoft.graph.user")
                            && written.is_none_or(|users| users.contains(&id))
                    };
                    held.then(|| RoleAssignment {
                        role_definition_id: role.clone(),
                        principal_id: assignment.principal_id,
                        directory_scope_id: assignment.directory_scope_id.filter(|s| s != "/"),
                    })
                }));
            }
            Err(error) => tracing::warn!(
                %error,
                role = %printable(role),
                "cannot read who holds a role a Conditional Access policy names; the tenant \
                 file holds none of its assignments"
            ),
        }
    }
    Ok(ConditionalAccess {
        security_defaults,
        policies,
        role_assignments,
    })
}

/// Removes `@odata.context` annotations (`authenticationStrength@odata.context`, ...) at any
/// depth: they describe Graph's answer, not the policy.
fn strip_contexts(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => {
            object.retain(|key, _| !key.ends_with("@odata.context"));
            object.values_mut().for_each(strip_contexts);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_contexts),
        _ => {}
    }
}
