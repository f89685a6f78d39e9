//! `mfactl show`: one user at a glance, read from Graph and turned into a [`UserView`].
//!
//! Per user it reads, at once (so the transport batches them): the user object (UPN, display
//! name), `signInPreferences`, `requirements`, the registered methods with their details, and,
//! only when the tenant policy names groups, the user's groups (`transitiveMemberOf`). The tenant
//! policy (`systemCredentialPreferences`) is read once, first, and so is what tells whether MFA
//! would stay required without per-user MFA (Conditional Access, security defaults, and the
//! groups and roles the policies name: [`super::coverage`]). Nothing is written.
//!
//! What a view holds is decided here, by pure functions tested without a socket: the safe label
//! of each method (phone numbers and e-mail addresses masked, never a secret), which of the six
//! preferred-method values the registered methods make usable, and whether the tenant policy's
//! system-preferred MFA covers the user — or, when that cannot be decided, what it depends on.
//! Every string that came from Graph is made [`printable`] here, once, so neither renderer can
//! forget it. Renderers (`report::show_text`, `report::show_json`) only format.
//!
//! A user Graph does not know is `not_found` and one whose reads failed after retries is
//! `failed`; neither stops the others. Failures every other request would share (a refused token,
//! an unreachable Graph, a redirect) stop the run as in `plan` ([`Breaker`]). The policy and the
//! group memberships are best effort: a 403 there says what cannot be decided, it fails nothing.

use futures::StreamExt;
use futures::stream;
use schemars::JsonSchema;
use serde::Serialize;

use super::fetch::when;
use super::{Breaker, RunError};
use crate::graph::permissions::{Need, Resource};
use crate::graph::wire::{
    AuthenticationMethod, PolicyTarget, SignInPreferences, SystemCredentialPreferences,
    UserIdentity,
};
use crate::graph::{GraphClient, GraphError, Purpose};
use crate::model::{MethodKind, PreferredMethod, PreferredMethods};
use crate::text::{printable, printable_capped};

/// The show document's format version (`mfactl show --format json`).
pub const FORMAT_VERSION: u32 = 1;

/// The longest text from Graph a view keeps (an id, a name, a label); longer is cut with `…`.
const MAX_TEXT: usize = 120;

/// `mfactl show --format json`: the tenant policy as read, then one entry per user asked for, in
/// the order asked. Later versions add keys; none is renamed.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[schemars(
    title = "mfactl show document",
    description = "What `mfactl show USER... --format json` prints: per user, the three managed \
                   values, the registered methods, which preferred methods are usable, and \
                   whether the tenant's system-preferred MFA policy covers them."
)]
pub struct ShowDocument {
    /// Always 1 for this shape.
    pub format_version: u32,
    /// The Graph root the values came from.
    pub graph: String,
    pub tenant_id: Option<String>,
    /// The tenant's primary domain, when Graph said (`/organization`).
    pub tenant_domain: Option<String>,
    /// System-preferred MFA in the tenant's authentication methods policy.
    pub tenant_policy: TenantPolicy,
    pub summary: ShowSummary,
    /// One entry per user asked for, in the order given.
    pub users: Vec<UserView>,
}

/// The counts: `users` = `found` + `not_found` + `failed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ShowSummary {
    pub users: u64,
    pub found: u64,
    pub not_found: u64,
    pub failed: u64,
}

/// `systemCredentialPreferences` of `/beta/policies/authenticationMethodsPolicy`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct TenantPolicy {
    pub status: PolicyStatus,
    /// `default` (Microsoft managed: enabled), `enabled` or `disabled`, as Graph spells it; null
    /// unless `status` is `read`.
    pub state: Option<String>,
    /// Who the policy includes: group ids, the literal `all_users`, or users.
    pub include_targets: Vec<Target>,
    /// Who it excludes; an exclusion wins over an inclusion.
    pub exclude_targets: Vec<Target>,
    /// What Graph answered, when `status` is `unreadable`.
    pub error: Option<ReadError>,
}

/// Whether the policy could be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyStatus {
    /// Read, with `systemCredentialPreferences`.
    Read,
    /// Read, but the policy has no `systemCredentialPreferences`.
    NotSet,
    /// Graph refused or failed (e.g. 403: the token lacks Policy.Read.AuthenticationMethod).
    Unreadable,
}

/// An include or exclude target of the policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Target {
    /// A group's object id, the literal `all_users`, or a user's object id.
    pub id: String,
    /// `group` or `user`, as Graph spells it.
    pub target_type: Option<String>,
}

/// One user, as `mfactl show` sees them.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct UserView {
    /// As given on the command line.
    pub user: String,
    pub status: ViewStatus,
    /// The object id (null when not found, or when a user named by UPN could not be resolved).
    pub id: Option<String>,
    pub user_principal_name: Option<String>,
    pub display_name: Option<String>,
    /// `userPreferredMethodForSecondaryAuthentication`, as Graph returned it (null: none set).
    pub preferred_method: Option<String>,
    /// `isSystemPreferredAuthenticationMethodEnabled`.
    pub system_preferred: Option<bool>,
    /// `perUserMfaState`, as Graph returned it.
    pub per_user_mfa_state: Option<String>,
    /// `systemPreferredAuthenticationMethod`: read-only, undocumented, in Graph's own spelling
    /// (`Sms`, `Fido2`, `Push`...); null when Graph names none.
    pub system_preferred_method: Option<String>,
    /// The registered methods in Graph's order, without the password every user has.
    pub methods: Vec<MethodView>,
    /// Why the registered methods were not read, when they could not be (the China cloud has no
    /// `/authentication/methods`): `methods` and `preferred_method_choices` are then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods_unread: Option<String>,
    /// Each of the six preferred-method values: usable or not (and why), and which is current.
    pub preferred_method_choices: Vec<Choice>,
    /// What a manifest's fallback list (`show --preferred-method push,oath,sms`) gives this
    /// user: the first method they have registered, as plan would set it (absent without the
    /// flag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_method_list: Option<ListChoice>,
    /// Whether the tenant policy's system-preferred MFA covers this user (null when not found).
    pub policy_coverage: Option<PolicyCoverage>,
    /// Whether MFA would stay required with per-user MFA disabled: Conditional Access or
    /// security defaults (`status` covered, partly_covered, not_covered or unknown; `detail`;
    /// the `policies` that require it). Null when not found.
    pub mfa_coverage: Option<crate::plan::coverage::Coverage>,
    /// Why the user could not be shown (`not_found`, `failed`).
    pub error: Option<ReadError>,
}

/// Where a user stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ViewStatus {
    Found,
    /// Graph does not know the user (404).
    NotFound,
    /// A read failed after retries.
    Failed,
}

/// One registered method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct MethodView {
    /// In the tenant file's vocabulary (`mobilePhone`, `microsoftAuthenticator`...); null for a
    /// type this build does not know (see `odata_type`).
    pub kind: Option<MethodKind>,
    /// Graph's `@odata.type`, e.g. `#microsoft.graph.phoneAuthenticationMethod`.
    pub odata_type: String,
    /// The method's id.
    pub id: String,
    /// Something to recognise it by, never a secret: a phone number with all but its last two
    /// digits masked (`+1 ••••••••34`), an e-mail address masked after its first letter
    /// (`m•••@contoso.com`), the Authenticator's or Windows Hello's device name, a FIDO2 key's
    /// model, a Temporary Access Pass's usability.
    pub label: Option<String>,
}

/// One preferred-method value and whether this user could use it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Choice {
    pub method: PreferredMethod,
    /// A registered method makes it usable (graph-api.md §3).
    pub usable: bool,
    /// It is the user's preferred method now.
    pub current: bool,
    /// Why it is not usable, e.g. "no mobile phone registered".
    pub reason: Option<String>,
}

/// A fallback list of preferred methods, and the one it gives a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ListChoice {
    /// The methods, in the order tried.
    pub methods: Vec<PreferredMethod>,
    /// The first the user has registered: what plan would set (null: none is registered, and
    /// plan would block the user).
    pub chosen: Option<PreferredMethod>,
    /// The chosen method is the user's preferred method now: plan would change nothing.
    pub current: bool,
}

impl ListChoice {
    /// What `list` gives a user with `kinds` registered whose preferred method is `current`:
    /// [`PreferredMethods::choose`], as the planner chooses.
    pub fn new(list: PreferredMethods, kinds: &[MethodKind], current: Option<&str>) -> ListChoice {
        let chosen = list.choose(kinds);
        ListChoice {
            methods: list.iter().collect(),
            chosen,
            current: chosen.is_some() && chosen == current.and_then(PreferredMethod::parse),
        }
    }
}

/// The tenant policy's verdict for one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PolicyCoverage {
    /// true: the policy turns system-preferred MFA on for this user (`enabled`, or `default`,
    /// Microsoft managed, which Entra documents as enabled); false: it does not; null: it cannot
    /// be decided (the policy or the user's groups unreadable, or a state this build does not
    /// know).
    pub covered: Option<bool>,
    /// Why, in a sentence.
    pub reason: String,
}

/// A read that failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ReadError {
    /// What was being read.
    pub read: ReadKind,
    /// Graph's HTTP status (null when no answer came).
    pub status: Option<u16>,
    /// Graph's error code, e.g. `Request_ResourceNotFound`.
    pub code: String,
    pub message: String,
    /// Graph's `request-id`, for Microsoft support.
    pub request_id: Option<String>,
}

/// The reads `show` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ReadKind {
    /// `/users/{user}`.
    User,
    SignInPreferences,
    Requirements,
    /// `/authentication/methods`.
    Methods,
    /// `/users/{user}/transitiveMemberOf`.
    TransitiveMemberOf,
    /// `/policies/authenticationMethodsPolicy`.
    Policy,
}

impl ReadKind {
    fn as_str(self) -> &'static str {
        match self {
            ReadKind::User => "user",
            ReadKind::SignInPreferences => "signInPreferences",
            ReadKind::Requirements => "requirements",
            ReadKind::Methods => "methods",
            ReadKind::TransitiveMemberOf => "transitiveMemberOf",
            ReadKind::Policy => "policy",
        }
    }
}

impl std::fmt::Display for ReadError {
    /// `methods: HTTP 403 accessDenied: Request Authorization failed (request-id ...)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.read.as_str())?;
        if let Some(status) = self.status {
            write!(f, "HTTP {status} ")?;
        }
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request-id {id})")?;
        }
        Ok(())
    }
}

impl ReadError {
    /// The transport already made Graph's code, message and ids printable.
    fn new(read: ReadKind, error: &GraphError) -> ReadError {
        ReadError {
            read,
            status: error.status(),
            code: error.code().to_owned(),
            message: error.message().to_owned(),
            request_id: error.request_id().map(str::to_owned),
        }
    }
}

impl ShowDocument {
    /// Whether every user asked for was shown.
    pub fn all_found(&self) -> bool {
        self.summary.not_found == 0 && self.summary.failed == 0
    }
}

/// Reads and shows `users` (already checked with `manifest::check_user`), at most
/// `concurrency` users in flight. The tenant fields are left for the caller.
pub async fn show(
    client: &GraphClient,
    users: &[String],
    list: Option<PreferredMethods>,
    concurrency: usize,
) -> Result<ShowDocument, RunError> {
    let breaker = Breaker::default();
    let (policy, facts) = futures::join!(
        read_policy(client, &breaker),
        super::coverage::read_facts(client)
    );
    let facts = facts?;
    if breaker.is_tripped() {
        return Err(breaker
            .into_error()
            .expect("a tripped breaker has a reason"));
    }
    let (stop, policy, facts) = (&breaker, &policy, &facts);
    let mut views: Vec<(usize, UserView)> = stream::iter(users.iter().enumerate())
        .map(|(order, user)| async move {
            if stop.is_tripped() {
                return None;
            }
            let mut view = read_user(client, user, policy, stop).await;
            if view.status == ViewStatus::Found {
                let id = view
                    .id
                    .as_deref()
                    .and_then(|id| uuid::Uuid::parse_str(id).ok());
                view.mfa_coverage = Some(facts.judge(id));
            }
            // Without the registered methods (the China cloud) a list's choice is unknown.
            if let (Some(list), ViewStatus::Found, None) = (list, view.status, &view.methods_unread)
            {
                view.preferred_method_list = Some(list_choice(list, &view));
            }
            Some((order, view))
        })
        .buffer_unordered(concurrency.max(1))
        .filter_map(|view| async move { view })
        .collect()
        .await;
    if let Some(error) = breaker.into_error() {
        return Err(error);
    }
    views.sort_by_key(|(order, _)| *order);
    let users: Vec<UserView> = views.into_iter().map(|(_, view)| view).collect();
    let mut summary = ShowSummary {
        users: users.len() as u64,
        ..ShowSummary::default()
    };
    for user in &users {
        match user.status {
            ViewStatus::Found => summary.found += 1,
            ViewStatus::NotFound => summary.not_found += 1,
            ViewStatus::Failed => summary.failed += 1,
        }
    }
    Ok(ShowDocument {
        format_version: FORMAT_VERSION,
        graph: client.transport().root().to_owned(),
        tenant_id: None,
        tenant_domain: None,
        tenant_policy: policy.view(),
        summary,
        users,
    })
}

/// The policy as read: what a view needs, and what coverage is decided from.
#[derive(Clone, Debug)]
enum PolicyRead {
    Read(SystemCredentialPreferences),
    NotSet,
    Unreadable(ReadError),
}

impl PolicyRead {
    fn view(&self) -> TenantPolicy {
        let targets = |targets: &[PolicyTarget]| {
            targets
                .iter()
                .map(|t| Target {
                    id: safe(&t.id),
                    target_type: t.target_type.as_deref().map(safe),
                })
                .collect()
        };
        match self {
            PolicyRead::Read(prefs) => TenantPolicy {
                status: PolicyStatus::Read,
                state: prefs.state.as_deref().map(safe),
                include_targets: targets(&prefs.include_targets),
                exclude_targets: targets(&prefs.exclude_targets),
                error: None,
            },
            PolicyRead::NotSet => TenantPolicy {
                status: PolicyStatus::NotSet,
                state: None,
                include_targets: Vec::new(),
                exclude_targets: Vec::new(),
                error: None,
            },
            PolicyRead::Unreadable(error) => TenantPolicy {
                status: PolicyStatus::Unreadable,
                state: None,
                include_targets: Vec::new(),
                exclude_targets: Vec::new(),
                error: Some(error.clone()),
            },
        }
    }

    /// Whether deciding coverage needs the user's groups: the policy is on ([`is_on`]) and names
    /// a group other than `all_users`.
    fn needs_membership(&self) -> bool {
        match self {
            PolicyRead::Read(prefs) if is_on(prefs) => prefs
                .include_targets
                .iter()
                .chain(&prefs.exclude_targets)
                .any(|t| target_kind(t) == TargetKind::Group),
            _ => false,
        }
    }
}

/// Reads the policy; a failure is kept (best effort), and counted when every request would
/// share it.
async fn read_policy(client: &GraphClient, stop: &Breaker) -> PolicyRead {
    match client.authentication_methods_policy().await {
        Ok(policy) => match policy.system_credential_preferences {
            Some(prefs) => PolicyRead::Read(prefs),
            None => PolicyRead::NotSet,
        },
        Err(error) => {
            best_effort_failure(stop, Resource::Policy.read(), &error);
            PolicyRead::Unreadable(ReadError::new(ReadKind::Policy, &error))
        }
    }
}

/// A best-effort read failed: only failures every request would share count (a 401, an
/// unreachable Graph, a redirect); a 403 or 404 says what cannot be decided.
fn best_effort_failure(stop: &Breaker, need: Need, error: &GraphError) {
    if Breaker::is_run_wide(error) && error.status() != Some(403) {
        stop.failure(need, error);
    }
}

/// The user's groups, as far as they are needed and known.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Membership {
    /// Not read: the policy names no group.
    NotNeeded,
    /// The object ids of every group the user is in (transitively).
    Known(Vec<String>),
    /// Could not be read; why, in words.
    Unknown(String),
}

/// Reads one user. Every read starts at once: the transport sends them together. The
/// registered methods are not read where the cloud's Graph has no `/authentication/methods`
/// (China): the view says so instead.
async fn read_user(
    client: &GraphClient,
    user: &str,
    policy: &PolicyRead,
    stop: &Breaker,
) -> UserView {
    let named_by_id = uuid::Uuid::parse_str(user).is_ok();
    let cloud = client.transport().config().cloud;
    let (profile, sign_in, requirements, methods, groups) = futures::join!(
        client.user_profile(user),
        client.sign_in_preferences(user, Purpose::Read),
        client.requirements(user, Purpose::Read),
        when(cloud.serves_authentication_methods(), || {
            client.authentication_methods(user)
        }),
        when(policy.needs_membership(), || client.group_memberships(user)),
    );

    // The reads a view cannot do without; the profile of a user named by id is a nicety (its
    // 403 only leaves the UPN out), as are the groups.
    let counted = |need: Need, result: Result<(), &GraphError>| match result {
        Ok(()) => stop.success(need),
        Err(error) => stop.failure(need, error),
    };
    let mut failure: Option<(ReadKind, GraphError)> = None;
    let mut not_found = false;
    let mut required = |read: ReadKind, need: Need, result: Result<(), &GraphError>| {
        counted(need, result);
        if let Err(error) = result {
            not_found |= error.is_not_found();
            failure.get_or_insert_with(|| (read, error.clone()));
        }
    };
    required(
        ReadKind::SignInPreferences,
        Resource::SignInPreferences.read(),
        sign_in.as_ref().map(|_| ()),
    );
    required(
        ReadKind::Requirements,
        Resource::Requirements.read(),
        requirements.as_ref().map(|_| ()),
    );
    if let Some(methods) = &methods {
        required(
            ReadKind::Methods,
            Resource::Methods.read(),
            methods.as_ref().map(|_| ()),
        );
    }
    match &profile {
        Err(error) if named_by_id && !error.is_not_found() => {
            best_effort_failure(stop, Resource::UserBasic.read(), error);
        }
        result => required(
            ReadKind::User,
            Resource::UserBasic.read(),
            result.as_ref().map(|_| ()),
        ),
    }
    if let Some(Err(error)) = &groups {
        best_effort_failure(stop, Resource::Membership.read(), error);
    }

    if let Some((read, error)) = failure {
        return UserView::failed(user, read, &error, not_found);
    }
    let (Ok(sign_in), Ok(requirements)) = (sign_in, requirements) else {
        unreachable!("every required read succeeded");
    };
    let methods = methods.map_or_else(
        || {
            Err(format!(
                "not read: /authentication/methods is not available in {}",
                cloud.describe()
            ))
        },
        |read| Ok(read.expect("every required read succeeded")),
    );
    let membership = match groups {
        None => Membership::NotNeeded,
        Some(Ok(groups)) => Membership::Known(groups),
        Some(Err(error)) => Membership::Unknown(unreadable_groups(&error)),
    };
    let profile = profile.ok();
    let id = profile
        .as_ref()
        .map(|p| p.id.clone())
        .or_else(|| named_by_id.then(|| user.to_owned()));
    let read = UserReads {
        sign_in,
        per_user_mfa_state: requirements.per_user_mfa_state,
        methods,
        coverage: coverage(policy, id.as_deref(), &membership),
    };
    found_view(user, id, profile, read)
}

/// What [`read_user`] read of a user Graph knows. `methods` is `Err(why)` when they could not be
/// read at all (the cloud has no `/authentication/methods`).
struct UserReads {
    sign_in: SignInPreferences,
    per_user_mfa_state: Option<String>,
    methods: Result<Vec<AuthenticationMethod>, String>,
    coverage: PolicyCoverage,
}

/// The view of a user Graph knows.
fn found_view(
    user: &str,
    id: Option<String>,
    profile: Option<UserIdentity>,
    read: UserReads,
) -> UserView {
    let preferred = read
        .sign_in
        .user_preferred_method_for_secondary_authentication
        .as_deref();
    let (methods, choices, methods_unread) = match &read.methods {
        Ok(methods) => {
            let kinds: Vec<MethodKind> = methods
                .iter()
                .filter_map(|m| MethodKind::from_odata(&m.odata_type, m.phone_type.as_deref()))
                .collect();
            let shown = methods
                .iter()
                .filter(|m| {
                    MethodKind::from_odata(&m.odata_type, m.phone_type.as_deref())
                        != Some(MethodKind::Password)
                })
                .map(method_view)
                .collect();
            (shown, choices(&kinds, preferred), None)
        }
        // Without the methods, no choice can be judged: none is listed.
        Err(why) => (Vec::new(), Vec::new(), Some(why.clone())),
    };
    UserView {
        user: user.to_owned(),
        status: ViewStatus::Found,
        policy_coverage: Some(read.coverage),
        id: id.as_deref().map(safe),
        user_principal_name: profile
            .as_ref()
            .and_then(|p| p.user_principal_name.as_deref())
            .map(safe),
        display_name: profile
            .as_ref()
            .and_then(|p| p.display_name.as_deref())
            .map(safe),
        preferred_method: preferred.map(safe),
        system_preferred: read
            .sign_in
            .is_system_preferred_authentication_method_enabled,
        per_user_mfa_state: read.per_user_mfa_state.as_deref().map(safe),
        system_preferred_method: read
            .sign_in
            .system_preferred_authentication_method
            .as_deref()
            .map(safe),
        methods,
        methods_unread,
        preferred_method_choices: choices,
        preferred_method_list: None,
        mfa_coverage: None,
        error: None,
    }
}

/// What `list` gives the user `view` shows, from the kinds of its registered methods.
fn list_choice(list: PreferredMethods, view: &UserView) -> ListChoice {
    let kinds: Vec<MethodKind> = view.methods.iter().filter_map(|m| m.kind).collect();
    ListChoice::new(list, &kinds, view.preferred_method.as_deref())
}

/// "cannot read the user's groups (HTTP 403 ...: the token lacks GroupMember.Read.All)".
fn unreadable_groups(error: &GraphError) -> String {
    let status = error
        .status()
        .map_or_else(String::new, |s| format!("HTTP {s} "));
    let lacks = if error.status() == Some(403) {
        format!("; the token lacks {}", Resource::Membership.read().least())
    } else {
        String::new()
    };
    format!(
        "cannot read the user's groups ({status}{}{lacks})",
        error.code()
    )
}

impl UserView {
    /// The view of a user a required read failed for: not found (404), or failed.
    fn failed(user: &str, read: ReadKind, error: &GraphError, not_found: bool) -> UserView {
        let status = if not_found {
            ViewStatus::NotFound
        } else {
            // A run-wide failure is said once, when the run stops; not once per user in flight.
            if !Breaker::is_run_wide(error) {
                tracing::warn!(user, %error, "could not read the user");
            }
            ViewStatus::Failed
        };
        UserView::unread(user, status, ReadError::new(read, error))
    }

    fn unread(user: &str, status: ViewStatus, error: ReadError) -> UserView {
        UserView {
            user: user.to_owned(),
            status,
            id: None,
            user_principal_name: None,
            display_name: None,
            preferred_method: None,
            system_preferred: None,
            per_user_mfa_state: None,
            system_preferred_method: None,
            methods: Vec::new(),
            methods_unread: None,
            preferred_method_choices: Vec::new(),
            preferred_method_list: None,
            policy_coverage: None,
            mfa_coverage: None,
            error: Some(error),
        }
    }
}

/// Text from Graph, safe to print and of bounded length.
fn safe(text: &str) -> String {
    printable_capped(text, MAX_TEXT)
}

/// One registered method's view.
fn method_view(method: &AuthenticationMethod) -> MethodView {
    let kind = MethodKind::from_odata(&method.odata_type, method.phone_type.as_deref());
    MethodView {
        kind,
        odata_type: safe(&method.odata_type),
        id: safe(&method.id),
        label: label(kind, method),
    }
}

/// A method's safe label (see [`MethodView::label`]); `None` when there is nothing to show.
fn label(kind: Option<MethodKind>, method: &AuthenticationMethod) -> Option<String> {
    use MethodKind as M;
    let named = |text: &Option<String>| {
        text.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(safe)
    };
    match kind? {
        M::MobilePhone | M::AlternateMobilePhone | M::OfficePhone => {
            method.phone_number.as_deref().map(mask_phone)
        }
        M::Email => method.email_address.as_deref().map(mask_email),
        M::Fido2 => named(&method.model).or_else(|| named(&method.display_name)),
        M::MicrosoftAuthenticator | M::WindowsHelloForBusiness | M::HardwareOath => {
            named(&method.display_name)
        }
        M::TemporaryAccessPass => method.is_usable.map(|usable| {
            let reason = named(&method.method_usability_reason);
            match (usable, reason) {
                (true, _) => "usable now".to_owned(),
                (false, Some(reason)) => format!("not usable ({reason})"),
                (false, None) => "not usable".to_owned(),
            }
        }),
        // A software token's only property is its secret (which Graph says it never returns).
        M::SoftwareOath | M::Password => None,
    }
}

/// `+1 5555551234` → `+1 ••••••••34`: the country code stays, every digit but the last two of
/// the number is masked, an extension is masked whole. Numbers of four digits or fewer are
/// masked whole, as is anything without digits.
pub fn mask_phone(number: &str) -> String {
    let number = number.trim();
    let (country, rest) = match number.strip_prefix('+').and_then(|n| n.split_once(' ')) {
        Some((code, rest)) if !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(code), rest)
        }
        _ => (None, number),
    };
    let (main, extension) = match rest.find(['x', 'X']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let digits: Vec<char> = main.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return "•••".to_owned();
    }
    let shown = if digits.len() > 4 { 2 } else { 0 };
    let mut out = String::new();
    if let Some(code) = country {
        out.push('+');
        out.push_str(code);
        out.push(' ');
    }
    out.extend(std::iter::repeat_n('•', digits.len() - shown));
    out.extend(&digits[digits.len() - shown..]);
    if let Some(extension) = extension {
        let hidden = extension.chars().filter(char::is_ascii_digit).count();
        if hidden > 0 {
            out.push('x');
            out.extend(std::iter::repeat_n('•', hidden));
        }
    }
    out
}

/// `megan@contoso.com` → `m•••@contoso.com`: the first character of the name, the domain.
pub fn mask_email(address: &str) -> String {
    match address.trim().rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{}•••@{}", printable(&first), safe(domain))
        }
        _ => "•••".to_owned(),
    }
}

/// Each preferred-method value in Graph's order: usable with `kinds`, and whether it is
/// `current` (Graph's value, matched case-insensitively).
pub fn choices(kinds: &[MethodKind], current: Option<&str>) -> Vec<Choice> {
    let current = current.and_then(PreferredMethod::parse);
    PreferredMethod::ALL
        .iter()
        .map(|&method| {
            let usable = kinds.iter().any(|kind| method.is_enabled_by(*kind));
            Choice {
                method,
                usable,
                current: current == Some(method),
                reason: (!usable).then(|| missing(method).to_owned()),
            }
        })
        .collect()
}

/// What a user lacks for `method` to be usable (graph-api.md §3).
fn missing(method: PreferredMethod) -> &'static str {
    match method {
        PreferredMethod::Push => "Microsoft Authenticator is not registered",
        PreferredMethod::Oath => {
            "no OATH token (software or hardware) or Microsoft Authenticator registered"
        }
        PreferredMethod::VoiceMobile | PreferredMethod::Sms => "no mobile phone registered",
        PreferredMethod::VoiceAlternateMobile => "no alternate mobile phone registered",
        PreferredMethod::VoiceOffice => "no office phone registered",
    }
}

/// What a policy target names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TargetKind {
    AllUsers,
    User,
    Group,
}

fn target_kind(target: &PolicyTarget) -> TargetKind {
    if target.id.eq_ignore_ascii_case("all_users") {
        TargetKind::AllUsers
    } else if target
        .target_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("user"))
    {
        TargetKind::User
    } else {
        TargetKind::Group
    }
}

/// Whether system-preferred MFA is on: `enabled`, or `default` (Microsoft managed), which Entra
/// documents as enabled (see [`crate::plan::policy::counts_as_enabled`] for the source).
fn is_on(prefs: &SystemCredentialPreferences) -> bool {
    prefs
        .state
        .as_deref()
        .is_some_and(|s| crate::plan::policy::counts_as_enabled(s.trim()))
}

fn is_state(prefs: &SystemCredentialPreferences, state: &str) -> bool {
    prefs
        .state
        .as_deref()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case(state))
}

/// Whether one target names the user: yes, no, or "depends on group X" when the user's groups
/// are unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Match {
    Yes(String),
    No,
    Depends(String),
}

fn matches(target: &PolicyTarget, user_id: Option<&str>, membership: &Membership) -> Match {
    let id = printable(&target.id);
    match target_kind(target) {
        TargetKind::AllUsers => Match::Yes("all users".to_owned()),
        TargetKind::User => match user_id {
            Some(user) if user.eq_ignore_ascii_case(&target.id) => {
                Match::Yes("the user by name".to_owned())
            }
            _ => Match::No,
        },
        TargetKind::Group => match membership {
            Membership::Known(groups)
                if groups.iter().any(|g| g.eq_ignore_ascii_case(&target.id)) =>
            {
                Match::Yes(format!("group {id}, of which the user is a member"))
            }
            Membership::Known(_) => Match::No,
            Membership::Unknown(why) => Match::Depends(format!("membership of group {id} ({why})")),
            // Not read: `needs_membership` said no group matters (the policy is not enabled).
            Membership::NotNeeded => Match::Depends(format!("membership of group {id}")),
        },
    }
}

/// Whether the tenant policy's system-preferred MFA covers the user: it must be on ([`is_on`]),
/// an include target must name them (`all_users`, the user, or a group they are in), and no
/// exclude target may (exclusions win, as Entra documents). What cannot be decided is said.
fn coverage(policy: &PolicyRead, user_id: Option<&str>, membership: &Membership) -> PolicyCoverage {
    let verdict = |covered: Option<bool>, reason: String| PolicyCoverage { covered, reason };
    let prefs = match policy {
        PolicyRead::Unreadable(error) => {
            let status = error
                .status
                .map_or_else(String::new, |s| format!("HTTP {s} "));
            let lacks = if error.status == Some(403) {
                format!("; the token lacks {}", Resource::Policy.read().least())
            } else {
                String::new()
            };
            return verdict(
                None,
                format!(
                    "cannot read the tenant policy ({status}{}{lacks})",
                    error.code
                ),
            );
        }
        PolicyRead::NotSet => {
            return verdict(
                None,
                "the tenant policy has no systemCredentialPreferences".to_owned(),
            );
        }
        PolicyRead::Read(prefs) => prefs,
    };
    if is_state(prefs, "disabled") {
        return verdict(
            Some(false),
            "system-preferred MFA is disabled in the tenant policy".to_owned(),
        );
    }
    if !is_on(prefs) {
        let state = prefs.state.as_deref().map_or_else(
            || "no state".to_owned(),
            |s| format!("state {}", printable(s)),
        );
        return verdict(
            None,
            format!("the tenant policy has {state}, which this build does not know"),
        );
    }
    let on = if is_state(prefs, "default") {
        "Microsoft managed (state default, which Entra documents as enabled)"
    } else {
        "enabled"
    };
    let check = |targets: &[PolicyTarget]| -> Match {
        let mut depends = None;
        for target in targets {
            match matches(target, user_id, membership) {
                yes @ Match::Yes(_) => return yes,
                Match::Depends(on) => {
                    depends.get_or_insert(on);
                }
                Match::No => {}
            }
        }
        depends.map_or(Match::No, Match::Depends)
    };
    match (check(&prefs.exclude_targets), check(&prefs.include_targets)) {
        (Match::Yes(by), _) => verdict(Some(false), format!("{on}, but excludes {by}")),
        (_, Match::No) => verdict(
            Some(false),
            format!("{on}, but its include targets do not name the user"),
        ),
        (Match::Depends(on_group), Match::Yes(by)) => verdict(
            None,
            format!("{on} for {by}; whether it excludes the user depends on {on_group}"),
        ),
        (Match::Depends(exclude), Match::Depends(include)) => verdict(
            None,
            format!("{on}; depends on {include}, and on {exclude} (excluded)"),
        ),
        (Match::No, Match::Depends(on_group)) => {
            verdict(None, format!("{on}; depends on {on_group}"))
        }
        (Match::No, Match::Yes(by)) => verdict(Some(true), format!("{on} for {by}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: &str, kind: &str) -> PolicyTarget {
        PolicyTarget {
            id: id.to_owned(),
            target_type: Some(kind.to_owned()),
        }
    }

    fn policy(state: &str, include: Vec<PolicyTarget>, exclude: Vec<PolicyTarget>) -> PolicyRead {
        PolicyRead::Read(SystemCredentialPreferences {
            state: Some(state.to_owned()),
            include_targets: include,
            exclude_targets: exclude,
        })
    }

    const USER: &str = "071cc716-8147-4397-a5ba-b2105951cc0b";
    const PILOT: &str = "5d1b6c1e-0000-4000-8000-000000000002";
    const BREAKGLASS: &str = "5d1b6c1e-0000-4000-8000-000000000003";

    fn known(groups: &[&str]) -> Membership {
        Membership::Known(groups.iter().map(|g| (*g).to_owned()).collect())
    }

    #[test]
    fn phones_keep_the_country_code_and_the_last_two_digits() {
        assert_eq!(mask_phone("+1 5555551234"), "+1 ••••••••34");
        assert_eq!(mask_phone("+44 7700 900123"), "+44 ••••••••23");
        assert_eq!(mask_phone("+1 5555551234x123"), "+1 ••••••••34x•••");
        assert_eq!(mask_phone("5555551234"), "••••••••34");
        assert_eq!(mask_phone("+1 1234"), "+1 ••••");
        assert_eq!(mask_phone("call me"), "•••");
        // A country code that is not digits is masked with the rest.
        assert_eq!(mask_phone("+1\u{202e} 5555551234"), "•••••••••34");
    }

    #[test]
    fn emails_keep_the_first_letter_and_the_domain() {
        assert_eq!(mask_email("megan@contoso.com"), "m•••@contoso.com");
        assert_eq!(mask_email("m@contoso.com"), "m•••@contoso.com");
        assert_eq!(mask_email("nobody"), "•••");
        assert_eq!(mask_email("@contoso.com"), "•••");
        assert_eq!(
            mask_email("\u{1b}x@evil\u{202e}.com"),
            "\\u{1b}•••@evil\\u{202e}.com"
        );
    }

    #[test]
    fn labels_never_carry_secrets_and_escape_what_graph_sent() {
        let method = |odata: &str| AuthenticationMethod {
            odata_type: format!("#microsoft.graph.{odata}"),
            id: "x".into(),
            phone_type: None,
            phone_number: None,
            display_name: Some("Megan's\u{1b}[2J iPhone".into()),
            model: None,
            email_address: None,
            is_usable: None,
            method_usability_reason: None,
        };
        let authenticator = method("microsoftAuthenticatorAuthenticationMethod");
        assert_eq!(
            label(Some(MethodKind::MicrosoftAuthenticator), &authenticator).as_deref(),
            Some("Megan's\\u{1b}[2J iPhone")
        );
        let software = method("softwareOathAuthenticationMethod");
        assert_eq!(label(Some(MethodKind::SoftwareOath), &software), None);
        let mut fido = method("fido2AuthenticationMethod");
        fido.model = Some("YubiKey 5 NFC".into());
        assert_eq!(
            label(Some(MethodKind::Fido2), &fido).as_deref(),
            Some("YubiKey 5 NFC")
        );
        let mut tap = method("temporaryAccessPassAuthenticationMethod");
        tap.is_usable = Some(false);
        tap.method_usability_reason = Some("Expired".into());
        assert_eq!(
            label(Some(MethodKind::TemporaryAccessPass), &tap).as_deref(),
            Some("not usable (Expired)")
        );
        assert_eq!(label(None, &authenticator), None);
    }

    #[test]
    fn choices_say_what_is_usable_current_and_why_not() {
        let choices = choices(&[MethodKind::MobilePhone], Some("SMS"));
        let by = |m: PreferredMethod| choices.iter().find(|c| c.method == m).unwrap();
        assert_eq!(choices.len(), 6);
        assert!(by(PreferredMethod::Sms).usable && by(PreferredMethod::Sms).current);
        assert!(by(PreferredMethod::VoiceMobile).usable);
        assert_eq!(
            by(PreferredMethod::Push).reason.as_deref(),
            Some("Microsoft Authenticator is not registered")
        );
        assert_eq!(
            by(PreferredMethod::VoiceOffice).reason.as_deref(),
            Some("no office phone registered")
        );
        let none = super::choices(&[], Some("push"));
        assert!(none.iter().all(|c| !c.usable));
        assert!(
            none.iter().any(|c| c.current),
            "current even when not usable"
        );
    }

    #[test]
    fn all_users_covers_unless_a_group_excludes() {
        let p = policy(
            "enabled",
            vec![target("all_users", "group")],
            vec![target(BREAKGLASS, "group")],
        );
        let c = coverage(&p, Some(USER), &known(&[PILOT]));
        assert_eq!(c.covered, Some(true), "{}", c.reason);
        assert_eq!(c.reason, "enabled for all users");
        let c = coverage(
            &p,
            Some(USER),
            &known(&[BREAKGLASS.to_uppercase().as_str()]),
        );
        assert_eq!(c.covered, Some(false), "{}", c.reason);
        assert!(c.reason.contains(BREAKGLASS), "{}", c.reason);
        let c = coverage(&p, Some(USER), &Membership::Unknown("cannot read".into()));
        assert_eq!(c.covered, None);
        assert!(
            c.reason.contains("depends on membership of group"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn a_group_include_needs_membership() {
        let p = policy("enabled", vec![target(PILOT, "group")], vec![]);
        assert!(p.needs_membership());
        assert_eq!(
            coverage(&p, Some(USER), &known(&[PILOT])).covered,
            Some(true)
        );
        assert_eq!(coverage(&p, Some(USER), &known(&[])).covered, Some(false));
        let unknown = coverage(&p, Some(USER), &Membership::Unknown("403".into()));
        assert_eq!(unknown.covered, None);
        assert_eq!(
            unknown.reason,
            format!("enabled; depends on membership of group {PILOT} (403)")
        );
        let by_name = policy("enabled", vec![target(USER, "user")], vec![]);
        assert!(!by_name.needs_membership());
        assert_eq!(
            coverage(&by_name, Some(USER), &Membership::NotNeeded).covered,
            Some(true)
        );
    }

    #[test]
    fn default_disabled_and_unreadable_policies_say_so() {
        let all = || vec![target("all_users", "group")];
        let c = coverage(
            &policy("default", all(), vec![]),
            Some(USER),
            &Membership::NotNeeded,
        );
        assert_eq!(
            c.covered,
            Some(true),
            "Entra documents Microsoft managed as enabled"
        );
        assert_eq!(
            c.reason,
            "Microsoft managed (state default, which Entra documents as enabled) for all users"
        );
        assert!(policy("default", vec![target(PILOT, "group")], vec![]).needs_membership());
        let c = coverage(
            &policy("disabled", all(), vec![]),
            Some(USER),
            &Membership::NotNeeded,
        );
        assert_eq!(c.covered, Some(false));
        assert!(!policy("disabled", vec![target(PILOT, "group")], vec![]).needs_membership());
        let c = coverage(&PolicyRead::NotSet, Some(USER), &Membership::NotNeeded);
        assert_eq!(c.covered, None);
        let refused = PolicyRead::Unreadable(ReadError {
            read: ReadKind::Policy,
            status: Some(403),
            code: "Authorization_RequestDenied".into(),
            message: "Insufficient privileges".into(),
            request_id: None,
        });
        let c = coverage(&refused, Some(USER), &Membership::NotNeeded);
        assert_eq!(c.covered, None);
        assert_eq!(
            c.reason,
            "cannot read the tenant policy (HTTP 403 Authorization_RequestDenied; the token \
             lacks Policy.Read.AuthenticationMethod)"
        );
        let c = coverage(
            &policy("unknownFutureValue", all(), vec![]),
            Some(USER),
            &Membership::NotNeeded,
        );
        assert_eq!(c.covered, None);
    }
}
