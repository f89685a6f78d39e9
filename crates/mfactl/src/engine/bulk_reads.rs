//! The bulk reads the read planner ([`super::read_plan`]) chooses, and what they learnt, kept as
//! hints by object id for the per-user fetch ([`super::fetch`]).
//!
//! Every one is a hint, never the last word: a value it did not give, gave in a spelling this
//! build does not know exactly, or gave from a report row older than the threshold is read per
//! user instead, and a bulk read Graph refuses (400, 403, no licence) leaves the whole run to
//! per-user reads, each with one line saying so. Nothing here decides a plan: the fetch still
//! diffs live values, and apply still reads every endpoint again before writing it.
//!
//! The listing is split into parallel streams when the tenant is large: Graph serves
//! `startswith(userPrincipalName,'x')` on `/users` by default (Microsoft's table of `$filter`
//! support for directory objects), and a userPrincipalName holds only `A-Z a-z 0-9 ' . - _ ! # ^
//! ~` (Microsoft's user resource; `$` too, which Graph is seen to allow), so one stream per first
//! character covers every user. Whether it did is checked against `@odata.count` (an advanced
//! query, on the first page): a shortfall continues the plain listing from its first page, in
//! one sequence, as without streams. `id` cannot be split so (only `eq` and `in` are served on
//! it), nor can ranges of userPrincipalName (`ge` is not served by default).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use super::read_plan::{self, ReadOptions, ReadPath, STREAMS, Verdict};
use super::{Breaker, RunError, run_wide};
use crate::graph::wire::{DirectoryUser, RegistrationDetails, Requirements, SignInPreferences};
use crate::graph::{GraphClient, GraphError};
use crate::manifest::{DesiredUser, Manifest};
use crate::model::{MethodKind, PerUserMfaState, PreferredMethod, ReportedMethod};
use crate::text::thousands;

/// The first characters a userPrincipalName may start with, one stream each (letters and
/// digits compare without regard to case in Graph's `startswith`).
const FIRST_CHARACTERS: &str = "abcdefghijklmnopqrstuvwxyz0123456789'.-_!#^~$";

/// A listed user, as the selectors take it.
#[derive(Clone, Debug)]
pub struct Listed {
    pub id: uuid::Uuid,
    /// The userPrincipalName, or the object id when Graph gave none.
    pub user_principal_name: Arc<str>,
    pub guest: bool,
    pub account_enabled: Option<bool>,
}

/// Which listed users the run keeps.
#[derive(Debug, Default)]
pub struct Scope {
    /// `allUsers:`: every listed user, which the selectors filter.
    pub keep_users: bool,
    /// Selectors (whose population is known only later): every listed user's state.
    pub everyone: bool,
    /// Otherwise the users the manifest names: by object id, and by userPrincipalName (lower
    /// case), whose object id the listing gives.
    pub ids: HashSet<u128>,
    pub user_principal_names: HashSet<String>,
}

/// What a listing of the tenant gave.
#[derive(Debug, Default)]
pub struct Listing {
    /// Every user, for `allUsers:` (empty otherwise).
    pub users: Vec<Listed>,
    /// `perUserMfaState` by object id, where Graph gave a value in Graph's own spelling.
    pub states: HashMap<u128, PerUserMfaState>,
    /// Object ids of the userPrincipalNames the manifest names (lower case).
    pub ids: HashMap<String, uuid::Uuid>,
    /// Users listed, and those of them whose account is enabled (the report's rows).
    pub total: u64,
    pub enabled: u64,
    /// Users in scope that came without a usable `perUserMfaState`.
    pub missing_state: u64,
    /// Object ids seen, so that a user two streams give is kept once.
    seen: HashSet<u128>,
}

impl Listing {
    /// Takes one page in, keeping what `scope` asks for.
    fn add(&mut self, page: Vec<DirectoryUser>, scope: &Scope, mfa_state: bool) {
        for user in page {
            if !user.is_user() {
                continue;
            }
            let Ok(id) = uuid::Uuid::parse_str(&user.id) else {
                continue;
            };
            if !self.seen.insert(id.as_u128()) {
                continue;
            }
            self.total += 1;
            self.enabled += u64::from(user.account_enabled != Some(false));
            let upn = user.user_principal_name.as_deref().unwrap_or(&user.id);
            let lower = upn.to_lowercase();
            let named = scope.user_principal_names.contains(&lower);
            if named {
                self.ids.insert(lower, id);
            }
            let in_scope = scope.everyone || named || scope.ids.contains(&id.as_u128());
            if mfa_state && in_scope {
                // Only Graph's exact spelling: anything else is read per user, where the plan
                // shows it as Graph wrote it.
                let state = user.per_user_mfa_state.as_deref().and_then(|value| {
                    PerUserMfaState::ALL
                        .iter()
                        .copied()
                        .find(|s| s.as_str() == value)
                });
                match state {
                    Some(state) => {
                        self.states.insert(id.as_u128(), state);
                    }
                    None => self.missing_state += 1,
                }
            }
            if scope.keep_users {
                self.users.push(Listed {
                    id,
                    user_principal_name: upn.into(),
                    guest: user
                        .user_type
                        .as_deref()
                        .is_some_and(|t| t.eq_ignore_ascii_case("guest")),
                    account_enabled: user.account_enabled,
                });
            }
        }
    }
}

/// Lists the tenant (with `perUserMfaState` when `mfa_state`), in parallel streams when it is
/// large. A 400 or 403 to `$select=perUserMfaState` lists again without it, saying so.
pub async fn list_tenant(
    client: &GraphClient,
    mfa_state: bool,
    scope: &Scope,
    said: &mut Vec<String>,
) -> Result<(Listing, bool), GraphError> {
    match list_with(client, mfa_state, scope, said).await {
        Err(error) if mfa_state && matches!(error.status(), Some(400 | 403)) => {
            said.push(format!(
                "Fallback: Graph refused $select=perUserMfaState on /users ({}): the listing goes \
                 on without it, and requirements are read per user.",
                brief(&error)
            ));
            Ok((list_with(client, false, scope, said).await?, false))
        }
        result => Ok((result?, mfa_state)),
    }
}

async fn list_with(
    client: &GraphClient,
    mfa_state: bool,
    scope: &Scope,
    said: &mut Vec<String>,
) -> Result<Listing, GraphError> {
    let mut listing = Listing::default();
    let mut first = client.users_listing(mfa_state, None, true);
    if let Some(page) = first.next_page().await? {
        listing.add(page, scope, mfa_state);
    }
    let counted = first.count();
    if first.has_next() && counted.is_some_and(|total| read_plan::pages(total) > 3) {
        let found = streams(client, mfa_state, scope, &mut listing).await?;
        if Some(found) == counted {
            return Ok(listing);
        }
        said.push(format!(
            "Fallback: the listing's {STREAMS} parallel streams found {} users where Graph \
             counts {}: the rest of the listing is read in one sequence.",
            thousands(found),
            thousands(counted.unwrap_or_default())
        ));
    }
    while let Some(page) = first.next_page().await? {
        listing.add(page, scope, mfa_state);
    }
    Ok(listing)
}

/// Lists every user again, one stream per first character, all at once; the distinct users the
/// streams found.
async fn streams(
    client: &GraphClient,
    mfa_state: bool,
    scope: &Scope,
    listing: &mut Listing,
) -> Result<u64, GraphError> {
    let state = Mutex::new((std::mem::take(listing), HashSet::<u128>::new()));
    let shared = &state;
    let lists = FIRST_CHARACTERS.chars().map(|first| async move {
        let literal = first.to_string().replace('\'', "''");
        let filter = format!("startswith(userPrincipalName,'{literal}')");
        let mut pages = client.users_listing(mfa_state, Some(&filter), false);
        while let Some(page) = pages.next_page().await? {
            let mut guard = shared.lock().expect("listing poisoned");
            let (listing, found) = &mut *guard;
            found.extend(
                page.iter()
                    .filter_map(|u| uuid::Uuid::parse_str(&u.id).ok().map(|id| id.as_u128())),
            );
            listing.add(page, scope, mfa_state);
        }
        Ok::<(), GraphError>(())
    });
    let results: Vec<_> = futures::stream::iter(lists)
        .buffer_unordered(FIRST_CHARACTERS.len())
        .collect()
        .await;
    let (taken, found) = state.into_inner().expect("listing poisoned");
    *listing = taken;
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(found.len() as u64)
}

/// What one report row says, when it can stand in for the per-user reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RowHint {
    /// (preferred method, system-preferred on), when both came in a spelling this build knows.
    sign_in: Option<(Option<PreferredMethod>, bool)>,
    /// The registered methods, one bit per [`MethodKind`], when every value was understood.
    methods: Option<u16>,
}

/// The registration report, by object id.
#[derive(Debug, Default)]
pub struct Report {
    rows: HashMap<u128, RowHint>,
    /// Rows read, rows left out for their age, and the oldest of those.
    pub read: u64,
    pub stale: u64,
    oldest_stale: Option<jiff::Timestamp>,
}

impl Report {
    /// Reads every page of the report; rows last updated more than `max_age` ago are left out.
    pub async fn read(client: &GraphClient, max_age: Duration) -> Result<Report, GraphError> {
        let now = jiff::Timestamp::now();
        let max_age = jiff::SignedDuration::try_from(max_age).unwrap_or(jiff::SignedDuration::MAX);
        let mut report = Report::default();
        let mut pages = client.registration_details();
        while let Some(page) = pages.next_page().await? {
            for row in page {
                report.take(row, now, max_age);
            }
        }
        Ok(report)
    }

    fn take(
        &mut self,
        row: RegistrationDetails,
        now: jiff::Timestamp,
        max_age: jiff::SignedDuration,
    ) {
        let Ok(id) = uuid::Uuid::parse_str(&row.id) else {
            return;
        };
        self.read += 1;
        let updated = row
            .last_updated_date_time
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        match updated {
            Some(updated) if now.duration_since(updated) <= max_age => {}
            _ => {
                self.stale += 1;
                self.oldest_stale = match (self.oldest_stale, updated) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                return;
            }
        }
        self.rows.insert(id.as_u128(), row_hint(&row));
    }

    /// The line that says rows were too old, if any were.
    pub fn stale_line(&self, max_age: Duration) -> Option<String> {
        (self.stale > 0).then(|| {
            let oldest = self
                .oldest_stale
                .map_or_else(|| "no date".to_owned(), |t| t.to_string());
            format!(
                "Fallback: {} rows of the registration report are older than {} h (the oldest \
                 last updated {oldest}): those users' signInPreferences and registered methods \
                 are read per user.",
                thousands(self.stale),
                max_age.as_secs() / 3600
            )
        })
    }
}

/// What a report row can stand in for. The report's preferred method adds `none` (and Graph's
/// example shows `""`) for no preference, which signInPreferences answers `null`.
fn row_hint(row: &RegistrationDetails) -> RowHint {
    let preferred = match row
        .user_preferred_method_for_secondary_authentication
        .as_deref()
    {
        None | Some("" | "none") => Some(None),
        Some(value) => PreferredMethod::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == value)
            .map(Some),
    };
    let sign_in = match (
        preferred,
        row.is_system_preferred_authentication_method_enabled,
    ) {
        (Some(preferred), Some(system)) => Some((preferred, system)),
        _ => None,
    };
    let methods = row.methods_registered.as_ref().and_then(|names| {
        names.iter().try_fold(0u16, |bits, name| {
            match MethodKind::from_report_name(name) {
                ReportedMethod::Kind(kind) => Some(bits | (1 << kind_index(kind))),
                ReportedMethod::Ignored => Some(bits),
                ReportedMethod::Unknown => None,
            }
        })
    });
    RowHint { sign_in, methods }
}

fn kind_index(kind: MethodKind) -> usize {
    MethodKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("every kind is in ALL")
}

/// Whether one GET of `/users/{id}/authentication` works, found by a single probe: until one
/// answers both properties, one read at a time; once one is refused, none.
#[derive(Debug)]
pub struct Combined {
    state: AtomicU8,
    probe: tokio::sync::Semaphore,
    refusal: Mutex<Option<String>>,
    /// Users read so.
    reads: std::sync::atomic::AtomicU64,
}

const UNKNOWN: u8 = 0;
const WORKS: u8 = 1;
const REFUSED: u8 = 2;

/// What a combined read gave.
pub enum CombinedRead {
    Read(SignInPreferences, Requirements),
    /// Not served (or not for this user): read the two apart.
    Apart,
    /// The user's reads fail this way (not found, or a failure that stops the run).
    Failed(GraphError),
}

impl Default for Combined {
    fn default() -> Combined {
        Combined {
            state: AtomicU8::new(UNKNOWN),
            probe: tokio::sync::Semaphore::new(1),
            refusal: Mutex::new(None),
            reads: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Combined {
    /// Reads `user`'s requirements and signInPreferences in one request, if Graph serves it.
    pub async fn read(&self, client: &GraphClient, user: &str) -> CombinedRead {
        let _probe = match self.state.load(Ordering::SeqCst) {
            REFUSED => return CombinedRead::Apart,
            WORKS => None,
            // Closed once decided: then everyone goes by the state.
            _ => self.probe.acquire().await.ok(),
        };
        if self.state.load(Ordering::SeqCst) == REFUSED {
            return CombinedRead::Apart;
        }
        match client.authentication(user).await {
            Ok(answer) => match (answer.sign_in_preferences, answer.requirements) {
                (Some(sign_in), Some(requirements)) => {
                    self.decide(WORKS, None);
                    self.reads.fetch_add(1, Ordering::Relaxed);
                    CombinedRead::Read(sign_in, requirements)
                }
                _ => {
                    self.decide(
                        REFUSED,
                        Some("its answer lacks requirements or signInPreferences".to_owned()),
                    );
                    CombinedRead::Apart
                }
            },
            Err(error) if error.is_not_found() => CombinedRead::Failed(error),
            Err(error) if Breaker::is_run_wide(&error) && error.status() != Some(403) => {
                CombinedRead::Failed(error)
            }
            Err(error)
                if matches!(error.status(), Some(400 | 403 | 405 | 501))
                    || matches!(error, GraphError::Decode { .. }) =>
            {
                self.decide(REFUSED, Some(brief(&error)));
                CombinedRead::Apart
            }
            // A server error after the transport's retries: this user is read apart.
            Err(_) => CombinedRead::Apart,
        }
    }

    fn decide(&self, state: u8, why: Option<String>) {
        if self
            .state
            .compare_exchange(UNKNOWN, state, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            *self.refusal.lock().expect("combined poisoned") = why;
            self.probe.close();
        }
    }

    /// What the combined reads came to: how many users were read so, or that Graph refused it.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let reads = self.reads.load(Ordering::Relaxed);
        if reads > 0 {
            lines.push(format!(
                "Read path: {} {} read with one GET /users/{{id}}/authentication each \
                 (requirements and signInPreferences together; unconfirmed on a live tenant, \
                 so the two are read apart if Graph refuses it).",
                thousands(reads),
                if reads == 1 { "user was" } else { "users were" }
            ));
        }
        if let Some(why) = self.refusal.lock().expect("combined poisoned").clone() {
            lines.push(format!(
                "Fallback: GET /users/{{id}}/authentication is not served ({why}): requirements \
                 and signInPreferences are read apart."
            ));
        }
        lines
    }
}

/// What the bulk reads learnt, for the per-user fetch.
#[derive(Debug, Default)]
pub struct Hints {
    states: HashMap<u128, PerUserMfaState>,
    /// Object ids of userPrincipalNames the manifest names, from the listing (lower case).
    ids: HashMap<String, uuid::Uuid>,
    report: Option<Report>,
    pub combined: Option<Combined>,
    /// Users who needed a report row the report did not have, and were read per user.
    missing_rows: std::sync::atomic::AtomicU64,
}

impl Hints {
    /// The object id the listing gave a userPrincipalName.
    pub fn id_of(&self, user: &str) -> Option<uuid::Uuid> {
        if self.ids.is_empty() {
            return None;
        }
        self.ids.get(&user.to_lowercase()).copied()
    }

    /// Whether the report was read: users it does not cover are then counted.
    pub fn has_report(&self) -> bool {
        self.report.is_some()
    }

    /// A user needed a row the report could not stand in for.
    pub fn note_missing_row(&self) {
        self.missing_rows.fetch_add(1, Ordering::Relaxed);
    }

    /// What the run's per-user reads came to, said once the users are read.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let missing = self.missing_rows.load(Ordering::Relaxed);
        if missing > 0 {
            lines.push(format!(
                "Read path: the registration report has no row for {} {} (it leaves disabled \
                 accounts out): read per user.",
                thousands(missing),
                if missing == 1 { "user" } else { "users" }
            ));
        }
        if let Some(combined) = &self.combined {
            lines.extend(combined.lines());
        }
        lines
    }

    /// The user's requirements, as the listing gave them.
    pub fn requirements(&self, id: u128) -> Option<Requirements> {
        self.states.get(&id).map(|state| Requirements {
            per_user_mfa_state: Some(state.as_str().to_owned()),
        })
    }

    fn row(&self, id: u128) -> Option<&RowHint> {
        self.report.as_ref()?.rows.get(&id)
    }

    /// The user's signInPreferences, as the report gave them.
    pub fn sign_in(&self, id: u128) -> Option<SignInPreferences> {
        let (preferred, system) = self.row(id)?.sign_in?;
        Some(SignInPreferences {
            is_system_preferred_authentication_method_enabled: Some(system),
            user_preferred_method_for_secondary_authentication: preferred
                .map(|m| m.as_str().to_owned()),
            system_preferred_authentication_method: None,
        })
    }

    /// The user's registered methods, as the report gave them.
    pub fn methods(&self, id: u128) -> Option<Vec<MethodKind>> {
        let bits = self.row(id)?.methods?;
        Some(
            MethodKind::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, kind)| *kind)
                .collect(),
        )
    }

    /// Whether the report has a row for the user at all.
    pub fn has_row(&self, id: u128) -> bool {
        self.row(id).is_some()
    }
}

/// Whether the manifest manages `perUserMfaState` anywhere: an entry, `allUsers:` or a group.
fn manages_requirements(manifest: &Manifest) -> bool {
    let selectors = &manifest.selectors;
    manifest.users.iter().any(DesiredUser::manages_requirements)
        || selectors
            .all_users
            .as_ref()
            .is_some_and(|all| all.settings.per_user_mfa_state.is_some())
        || selectors
            .groups
            .iter()
            .any(|group| group.settings.per_user_mfa_state.is_some())
}

/// The listing a run makes before its selectors are resolved: the tenant's users for
/// `allUsers:`, with `perUserMfaState` when the read planner finds that worth it (and always
/// for `allUsers:`, where it costs nothing). `None` when nothing is listed here; `allUsers:`
/// then lists in [`super::selectors`] as before bulk reads existed (`--read-path per-user`).
/// The `bool` says whether the listing carries the state.
pub async fn listing(
    client: &GraphClient,
    manifest: &Manifest,
    options: &ReadOptions,
    said: &mut Vec<String>,
) -> Result<Option<(Listing, bool)>, RunError> {
    let all_users = manifest.selectors.all_users.is_some();
    let manages = manages_requirements(manifest);
    let needs = read_plan::needs_of(&manifest.users, |user| {
        uuid::Uuid::parse_str(&user.user).is_ok()
    });
    let quotas = super::quotas(client);
    let choose = |tenant| {
        manages
            .then(|| read_plan::choose_listing(options.path, &needs, all_users, tenant, &quotas))
            .flatten()
    };
    let mut choice = choose(options.tenant_size);
    if choice == Some(Verdict::NeedsSize) {
        choice = choose(count_users(client, false).await?);
    }
    let state = choice.as_ref().is_some_and(Verdict::is_bulk);
    if options.path == ReadPath::PerUser || !(state || all_users) {
        said.extend(choice.map(|verdict| read_plan::listing_line(&verdict, 0, false)));
        return Ok(None);
    }
    let scope = Scope {
        keep_users: all_users,
        everyone: !manifest.selectors.is_empty(),
        ids: manifest
            .users
            .iter()
            .filter_map(|user| uuid::Uuid::parse_str(&user.user).ok())
            .map(|id| id.as_u128())
            .collect(),
        user_principal_names: manifest
            .users
            .iter()
            .filter(|user| uuid::Uuid::parse_str(&user.user).is_err())
            .map(|user| user.user.to_lowercase())
            .collect(),
    };
    let mut lines = Vec::new();
    let listed = list_tenant(client, state, &scope, &mut lines).await;
    let (listing, carried) = match listed {
        Ok(listed) => listed,
        Err(error) => {
            return match listing_failed(error, all_users, said) {
                Some(stop) => Err(stop),
                None => Ok(None),
            };
        }
    };
    if let Some(verdict) = choice {
        let pages = read_plan::pages(listing.total);
        said.push(read_plan::listing_line(&verdict, pages, pages > 3));
    }
    said.extend(lines);
    if carried && listing.missing_state > 0 {
        said.push(format!(
            "Fallback: the users listing left perUserMfaState out (or gave it in a spelling \
             this build does not know) for {} users: their requirements are read per user.",
            thousands(listing.missing_state)
        ));
    }
    Ok(Some((listing, carried)))
}

/// A listing that failed: the run stops (the error returned) when every read would fail so,
/// or when `allUsers:` needed it; otherwise the users are read one by one, saying so.
fn listing_failed(error: GraphError, all_users: bool, said: &mut Vec<String>) -> Option<RunError> {
    if let Some(stop) = run_wide(&error) {
        return Some(stop);
    }
    if all_users {
        return Some(RunError::Selectors(vec![format!(
            "allUsers: listing the tenant's users failed: {error}"
        )]));
    }
    said.push(format!(
        "Fallback: listing the tenant's users failed ({}): requirements are read per user.",
        brief(&error)
    ));
    None
}

/// The hints for `users` (the manifest's users with the selectors resolved; `known` holds the
/// object ids the selectors gave): the listing's states and names, the registration report when
/// the read planner finds it worth reading, and the combined read.
pub async fn hints(
    client: &GraphClient,
    users: &[DesiredUser],
    known: Option<&HashMap<Arc<str>, uuid::Uuid>>,
    listing: Option<(Listing, bool)>,
    options: &ReadOptions,
    said: &mut Vec<String>,
) -> Result<Hints, RunError> {
    let (listing, carried) = listing.unwrap_or_default();
    let resolved = |user: &DesiredUser| {
        known.is_some_and(|known| known.contains_key(&user.user))
            || uuid::Uuid::parse_str(&user.user).is_ok()
            || listing.ids.contains_key(&user.user.to_lowercase())
    };
    let needs = read_plan::needs_of(users, resolved);
    let enabled = (listing.total > 0)
        .then_some(listing.enabled)
        .or(options.tenant_size);
    let other_reads = if carried { 0 } else { needs.requirements } + needs.identity;
    let quotas = super::quotas(client);
    let choose =
        |enabled| read_plan::choose_report(options.path, &needs, enabled, other_reads, &quotas);
    let mut verdict = choose(enabled);
    if verdict == Some(Verdict::NeedsSize) {
        verdict = choose(count_users(client, true).await?);
    }
    said.extend(verdict.as_ref().map(|v| read_plan::report_line(v, &needs)));
    let report = if verdict.as_ref().is_some_and(Verdict::is_bulk) {
        match Report::read(client, options.max_report_age).await {
            Ok(report) => {
                said.extend(report.stale_line(options.max_report_age));
                Some(report)
            }
            Err(error) => {
                if let Some(stop) = run_wide(&error) {
                    return Err(stop);
                }
                said.push(format!(
                    "Fallback: the registration report could not be read ({}; it needs Entra ID \
                     P1 or P2 and AuditLog.Read.All or UserAuthenticationMethod.Read.All): \
                     signInPreferences and registered methods are read per user.",
                    brief(&error)
                ));
                None
            }
        }
    } else {
        None
    };
    Ok(Hints {
        states: listing.states,
        ids: listing.ids,
        report,
        combined: read_plan::choose_combined(options.path, &needs).then(Combined::default),
        missing_rows: Default::default(),
    })
}

/// The tenant's users (enabled ones only when `enabled_only`) as Graph counts them, for the
/// read planner; `None` when Graph will not say (the planner then reads per user).
async fn count_users(client: &GraphClient, enabled_only: bool) -> Result<Option<u64>, RunError> {
    match client.user_count(enabled_only).await {
        Ok(count) => Ok(count),
        Err(error) => match run_wide(&error) {
            Some(stop) => Err(stop),
            None => Ok(None),
        },
    }
}

/// "400 BadRequest", "403 Authentication_RequestFromNonPremiumTenantOrB2CTenant".
pub fn brief(error: &GraphError) -> String {
    match error.status() {
        Some(status) => format!("{status} {}", error.code()),
        None => error.code().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(preferred: Option<&str>, system: Option<bool>, methods: &[&str]) -> RegistrationDetails {
        RegistrationDetails {
            id: "071cc716-8147-4397-a5ba-b2105951cc0b".into(),
            user_preferred_method_for_secondary_authentication: preferred.map(str::to_owned),
            is_system_preferred_authentication_method_enabled: system,
            methods_registered: Some(methods.iter().map(|m| (*m).to_owned()).collect()),
            ..RegistrationDetails::default()
        }
    }

    #[test]
    fn report_rows_stand_in_only_for_what_they_say_in_known_words() {
        let hint = row_hint(&row(
            Some("none"),
            Some(true),
            &["mobilePhone", "securityQuestion"],
        ));
        assert_eq!(hint.sign_in, Some((None, true)));
        let hints = Hints {
            report: Some(Report {
                rows: [(1, hint)].into(),
                ..Report::default()
            }),
            ..Hints::default()
        };
        assert!(hints.has_report());
        assert_eq!(hints.methods(1), Some(vec![MethodKind::MobilePhone]));
        let sign_in = hints.sign_in(1).unwrap();
        assert_eq!(
            sign_in.user_preferred_method_for_secondary_authentication,
            None
        );
        assert_eq!(hint, row_hint(&row(Some(""), Some(true), &["mobilePhone"])));
        // A value in another spelling, or one this build does not know: read per user.
        assert_eq!(row_hint(&row(Some("Push"), Some(true), &[])).sign_in, None);
        assert_eq!(
            row_hint(&row(Some("unknownFutureValue"), Some(true), &[])).sign_in,
            None
        );
        assert_eq!(row_hint(&row(Some("push"), None, &[])).sign_in, None);
        let hint = row_hint(&row(
            Some("push"),
            Some(false),
            &["microsoftAuthenticatorPasswordless"],
        ));
        assert_eq!(hint.sign_in, Some((Some(PreferredMethod::Push), false)));
        assert_eq!(hint.methods, None);
    }

    #[test]
    fn stale_rows_are_left_out_and_counted() {
        let now = jiff::Timestamp::now();
        let day = jiff::SignedDuration::from_hours(24);
        let mut report = Report::default();
        let mut fresh = row(Some("sms"), Some(false), &["mobilePhone"]);
        fresh.last_updated_date_time = Some(now.to_string());
        report.take(fresh, now, day);
        let mut old = row(Some("sms"), Some(false), &["mobilePhone"]);
        old.id = "171cc716-8147-4397-a5ba-b2105951cc0b".into();
        old.last_updated_date_time = Some((now - jiff::SignedDuration::from_hours(49)).to_string());
        report.take(old, now, day);
        let mut undated = row(None, Some(false), &[]);
        undated.id = "271cc716-8147-4397-a5ba-b2105951cc0b".into();
        report.take(undated, now, day);
        assert_eq!((report.read, report.stale, report.rows.len()), (3, 2, 1));
        let line = report.stale_line(Duration::from_secs(24 * 3600)).unwrap();
        assert!(line.starts_with("Fallback: 2 rows"), "{line}");
    }

    #[test]
    fn a_listing_keeps_only_exact_states_of_users_in_scope() {
        let user = |id: &str, upn: &str, state: Option<&str>| DirectoryUser {
            id: id.into(),
            odata_type: None,
            user_principal_name: Some(upn.into()),
            display_name: None,
            user_type: Some("Member".into()),
            account_enabled: Some(true),
            per_user_mfa_state: state.map(str::to_owned),
        };
        let a = "071cc716-8147-4397-a5ba-b2105951cc0b";
        let b = "171cc716-8147-4397-a5ba-b2105951cc0b";
        let c = "271cc716-8147-4397-a5ba-b2105951cc0b";
        let scope = Scope {
            keep_users: false,
            everyone: false,
            ids: [uuid::Uuid::parse_str(a).unwrap().as_u128()].into(),
            user_principal_names: ["megan@contoso.com".to_owned()].into(),
        };
        let mut listing = Listing::default();
        listing.add(
            vec![
                user(a, "a@contoso.com", Some("enforced")),
                user(b, "Megan@Contoso.com", Some("Enabled")),
                user(c, "c@contoso.com", Some("disabled")),
                user(a, "a@contoso.com", Some("enforced")),
            ],
            &scope,
            true,
        );
        assert_eq!(listing.total, 3, "a user twice counts once");
        assert_eq!(listing.states.len(), 1);
        assert_eq!(listing.missing_state, 1, "Enabled is not Graph's spelling");
        assert_eq!(
            listing.ids.get("megan@contoso.com"),
            Some(&uuid::Uuid::parse_str(b).unwrap())
        );
        assert!(listing.users.is_empty());
    }
}
