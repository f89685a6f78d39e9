//! The tenant file: the emulator's whole state, as YAML (design.md, "Tenant file").
//!
//! It exists so that tests, demos and benchmarks can describe a directory — users, their
//! registered methods, their sign-in preferences and per-user MFA state — in a file a human can
//! read and edit, and so that the emulator can hand its current state back in the same shape.
//!
//! Loading never stops at the first problem: the file is parsed into a span-carrying mirror of
//! the public types, every semantic problem (duplicate id or UPN, a bad enum value, a malformed
//! GUID) is collected with its line, and only then are they reported together. Inconsistencies
//! that Graph itself can hold (a preferred method whose registered method was since removed)
//! are allowed and come back as [`TenantNote`]s instead.
//!
//! Size. A tenant file may be as large as the largest one `emulator generate` writes
//! ([`MAX_USERS`] users, about 4 GB). The file is streamed through a buffered reader and each user
//! is converted as soon as it is parsed, so neither the text nor the span-carrying mirror of all
//! users is ever held: memory is the finished [`Tenant`] plus, while loading, one id and one UPN
//! key a user for the duplicate checks. serde-saphyr's parser budget (by default 250,000 nodes,
//! which a 10,000-user file already exceeds) is scaled to the file's length — see
//! [`parser_options`] — so a big tenant loads while a file that is far denser in YAML nodes than
//! any tenant file, or larger than [`MAX_FILE_BYTES`], is refused with a message naming the limit.
//!
//! The optional `authenticationMethodsPolicy:` is checked with the rules a PATCH of it meets
//! ([`super::state::policy`]): the emulator serves it laid over Graph's defaults, so a value
//! Graph could not hold would be served as if it could.
//!
//! The optional `auth:` section (who may sign in to the emulator, and with what) is read by the
//! child module `auth` with the same rules; it is the only part of the file that names other
//! files (app certificates, relative to the tenant file). Every problem carries its line and
//! column, and a list of them reads `file:line:column: [code] ...`, as a compiler's does.
//!
//! This module does no network I/O and knows nothing about HTTP.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};

use mfactl_core::json_schema::{CaseInsensitive, Guid, YamlBool, YamlNonBlank, YamlText};
use mfactl_core::model::{MethodKind, PerUserMfaState, PreferredMethod};
use mfactl_core::text::thousands;

mod auth;

pub use auth::{AuthAdmin, AuthApp, Secret, TenantAuth};
// The records `mfactl export --as tenant` writes too.
pub use mfactl_core::tenant::{Group, RoleAssignment, TenantUser, UserSignInPreferences, UserType};

/// The most users `emulator generate` writes, and so the most the loader must accept.
///
/// Ten million is several times the largest Entra tenants mfactl is meant for (a directory's
/// default quota is 300,000 objects; the largest hold a few million users) and ten times the
/// benchmark's million; beyond it a request is a typo, and the emulator, which holds the tenant in
/// memory at a few hundred bytes a user, would need several gigabytes more than any test needs.
pub const MAX_USERS: usize = 10_000_000;

/// A generated user's average size in the file is ~392 bytes (guests' UPNs are longer, some users
/// have three or four methods); a test keeps the average below this bound.
const MAX_BYTES_PER_GENERATED_USER: u64 = 512;

/// The largest tenant file the loader reads (5.12 GB): [`MAX_USERS`] generated users.
///
/// Checked against the file's length before anything is read, and again by the parser while
/// reading (for a pipe, whose length is unknown).
pub const MAX_FILE_BYTES: u64 = MAX_USERS as u64 * MAX_BYTES_PER_GENERATED_USER;

/// The parser may see one YAML node, and one event, per this many bytes of file.
///
/// Measured on generated tenants: one node per ~17 bytes and one event per ~15 (a user is ~23
/// nodes, ~26 events, ~392 bytes); a hand-written file of short values (`accountEnabled: true`,
/// `methods: [sms]`) comes to about one per 8. Four leaves room for any real tenant file, while a
/// file of mostly flow punctuation (`[a,a,a,...]`, a node per 2 bytes), the cheapest way to make a
/// parser allocate, is stopped half-way.
const MIN_BYTES_PER_NODE: u64 = 4;

/// The emulated directory: one tenant, its users and groups, and its authentication methods policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// The tenant's object id (a GUID); it appears in throttling scopes.
    pub tenant_id: String,
    /// The initial domain, e.g. `contoso.onmicrosoft.com`.
    pub domain: String,
    /// Every user, in file order.
    #[serde(default)]
    pub users: Vec<TenantUser>,
    /// Groups (optional); members are user or group ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    /// `/beta/policies/authenticationMethodsPolicy` as Graph returns it (optional, and any part of
    /// it may be left out: the emulator serves Graph's defaults for what is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_methods_policy: Option<serde_json::Value>,
    /// `/beta/policies/identitySecurityDefaultsEnforcementPolicy`'s `isEnabled` (optional).
    /// Left out: on when the file has no `conditionalAccessPolicies`, off when it has some
    /// ([`Tenant::security_defaults_enabled`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_defaults: Option<bool>,
    /// `/beta/identity/conditionalAccess/policies`: each a `conditionalAccessPolicy` in Graph's
    /// JSON (optional; a policy may leave out what Graph answers empty or with its default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<serde_json::Map<String, serde_json::Value>>")]
    pub conditional_access_policies: Vec<serde_json::Value>,
    /// Directory roles held (`/beta/roleManagement/directory/roleAssignments`), for the
    /// policies that name roles (optional).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_assignments: Vec<RoleAssignment>,
    /// Sign-in like Entra ID (optional): with it, Graph calls need a token the emulator issued,
    /// with the permission each call needs; without it, any bearer token is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<TenantAuth>,
}

/// Why a tenant file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read tenant file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML, or not the tenant file's shape (a missing key, an unknown key,
    /// a list where a value belongs).
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        origin: String,
        line: u64,
        column: u64,
        message: String,
    },
    /// The file is longer than [`MAX_FILE_BYTES`]; refused before it is read.
    #[error(
        "{origin}: the tenant file is {} bytes, more than the {} the emulator reads (the size of \
         {} generated users, the most `mfactl emulator generate` writes); the emulator holds the \
         whole tenant in memory, so use a smaller tenant file",
        thousands(*bytes), thousands(MAX_FILE_BYTES), thousands(MAX_USERS as u64)
    )]
    TooLarge { origin: String, bytes: u64 },
    /// The parser stopped at one of its limits: far more YAML nodes than a tenant file of this
    /// length holds, nesting deeper than a tenant's, many aliases. The message names the limit.
    #[error("{origin}{}: {message}", Place(*line, *column))]
    Limit {
        origin: String,
        line: u64,
        column: u64,
        message: String,
    },
    /// The file parsed but holds values the emulator cannot serve; every problem is listed.
    #[error("{origin}: {} problem(s) in the tenant file:{}", problems.len(), ProblemList(origin, problems))]
    Invalid {
        origin: String,
        problems: Vec<TenantProblem>,
    },
}

/// One semantic problem (an error) or note (a warning) in a tenant file, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantProblem {
    /// 1-based line (0 when unknown, e.g. for a tenant built in memory).
    pub line: u64,
    /// 1-based column of the value the problem is about (0 when unknown).
    pub column: u64,
    /// A stable code: `duplicate-id`, `duplicate-upn`, `invalid-value`, `invalid-id`,
    /// `duplicate-method`, `unregistered-preferred-method`, `enabled-with-method`, `unknown-member`,
    /// `invalid-policy`;
    /// in `auth`: `no-credential`, `unreadable-certificate`, `invalid-certificate`,
    /// `duplicate-managed-identity`, `unknown-admin`.
    pub code: &'static str,
    /// The user (UPN or id) or group the problem belongs to, when it belongs to one.
    pub subject: Option<String>,
    /// The field, in the file's spelling (`methods`, `perUserMfaState`, ...).
    pub field: &'static str,
    pub message: String,
}

/// A note about a file that loads fine but holds something odd; same shape as a problem.
pub type TenantNote = TenantProblem;

impl fmt::Display for TenantProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => {}
            (line, 0) => write!(f, "line {line}: ")?,
            (line, column) => write!(f, "line {line}, column {column}: ")?,
        }
        self.fmt_what(f)
    }
}

impl TenantProblem {
    /// Everything after the place: `[code] subject: field: message`.
    fn fmt_what(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] ", self.code)?;
        if let Some(subject) = &self.subject {
            write!(f, "{subject}: ")?;
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem on a line of its own, each starting `file:line:column:` as a compiler's do.
struct ProblemList<'a>(&'a str, &'a [TenantProblem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ProblemList(origin, problems) = self;
        for problem in *problems {
            write!(f, "\n  {origin}{}: ", Place(problem.line, problem.column))?;
            problem.fmt_what(f)?;
        }
        Ok(())
    }
}

impl Tenant {
    /// Reads and validates a tenant file; notes (allowed oddities) are logged as warnings.
    pub fn load(path: &Path) -> Result<Tenant, TenantError> {
        let (tenant, notes) = Tenant::load_with_notes(path)?;
        for note in &notes {
            tracing::warn!(file = %path.display(), "{note}");
        }
        Ok(tenant)
    }

    /// Reads and validates a tenant file, returning the notes instead of logging them.
    ///
    /// The file is streamed (see the module docs); a file longer than [`MAX_FILE_BYTES`] is
    /// refused before it is read.
    pub fn load_with_notes(path: &Path) -> Result<(Tenant, Vec<TenantNote>), TenantError> {
        let read_error = |source| TenantError::Read {
            path: path.to_path_buf(),
            source,
        };
        let origin = path.display().to_string();
        let file = File::open(path).map_err(read_error)?;
        let metadata = file.metadata().map_err(read_error)?;
        // A pipe or a device has no length: it gets the limits of the largest file, and the
        // parser stops it if it sends more than that.
        let bytes = if metadata.is_file() {
            metadata.len()
        } else {
            MAX_FILE_BYTES
        };
        if bytes > MAX_FILE_BYTES {
            return Err(TenantError::TooLarge { origin, bytes });
        }
        let reader = BufReader::with_capacity(1 << 16, file);
        let raw = serde_saphyr::from_reader_with_options(reader, parser_options(bytes))
            .map_err(|error| parse_error(&error, &origin, bytes, Some(path)))?;
        // Certificates the `auth` section names are relative to the tenant file.
        let base = path.parent().unwrap_or(Path::new(""));
        finish(raw, &origin, Some(base))
    }

    /// Parses and validates tenant YAML held in memory (errors name the origin `<tenant>`).
    pub fn from_yaml_str(text: &str) -> Result<Tenant, TenantError> {
        parse_str(text).map(|(tenant, _)| tenant)
    }

    /// Like [`Tenant::from_yaml_str`], also returning the notes.
    pub fn from_yaml_str_with_notes(text: &str) -> Result<(Tenant, Vec<TenantNote>), TenantError> {
        parse_str(text)
    }

    /// Writes the tenant as YAML in the file's shape without building it in memory first
    /// (a million users are ~390 MB of text).
    pub fn write_yaml(&self, out: impl Write) -> std::io::Result<()> {
        let mut out = BufWriter::with_capacity(1 << 16, out);
        serde_saphyr::to_io_writer(&mut out, self).map_err(|error| match error {
            serde_saphyr::SerializeError::IO { error } => error,
            other => std::io::Error::other(other),
        })?;
        out.flush()
    }

    /// The tenant as YAML in the file's shape; [`Tenant::from_yaml_str`] reads it back equal.
    pub fn to_yaml(&self) -> String {
        // Serialising plain data structs to a String cannot fail; a failure would be a bug here.
        serde_saphyr::to_string(self).expect("tenant serialises to YAML")
    }

    /// Whether security defaults are on: the file's `securityDefaults`, or when it says nothing,
    /// on for a tenant without Conditional Access policies (Microsoft turns security defaults
    /// on in every tenant created since October 2019) and off for one with some (Conditional
    /// Access policies cannot be turned on while security defaults are: Entra docs, "Security
    /// defaults").
    pub fn security_defaults_enabled(&self) -> bool {
        self.security_defaults
            .unwrap_or(self.conditional_access_policies.is_empty())
    }

    /// The Graph throttling tier for this tenant's size (graph-api.md §6): RU per 10 s.
    pub fn ru_tier(&self) -> u32 {
        match self.users.len() {
            n if n < 50 => 3_500,
            n if n <= 500 => 5_000,
            _ => 8_000,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Span-carrying mirror of the file, used only while loading.

/// The schema of the tenant file (`schemas/tenant.schema.json`): the reader's own types below,
/// each field described as serde-saphyr's typed reader takes it (any scalar as text, YAML 1.1
/// booleans, numbers written as text) and with the checks [`convert`] makes (ids are GUIDs,
/// enum values in any case), and the policy as [`super::state::policy::file_problems`] checks it.
pub fn file_schema() -> schemars::Schema {
    schemars::schema_for!(RawTenant)
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(
    title = "mfactl emulator tenant",
    description = "The Graph emulator's directory: users, groups, the authentication methods policy and sign-in (mfactl emulator serve --tenant, --emulate)."
)]
struct RawTenant {
    /// The tenant's object id (a GUID); it appears in throttling scopes.
    #[schemars(with = "Guid")]
    tenant_id: Spanned<String>,
    /// The initial domain, e.g. `contoso.onmicrosoft.com`.
    #[schemars(with = "YamlNonBlank")]
    domain: Spanned<String>,
    /// Every user, in file order (ids and userPrincipalNames are unique, compared without
    /// regard to case).
    /// Converted while the parser streams them (see the module docs).
    #[serde(default)]
    #[schemars(with = "Vec<RawUser>")]
    users: UserList,
    /// Groups (optional); members are user or group ids.
    #[serde(default)]
    #[schemars(with = "Vec<RawGroup>")]
    groups: Vec<Spanned<RawGroup>>,
    /// `/beta/policies/authenticationMethodsPolicy` as Graph returns it (optional, and any part
    /// of it may be left out: the emulator serves Graph's defaults for what is missing).
    #[serde(default)]
    #[schemars(with = "Option<super::state::policy::FilePolicy>")]
    authentication_methods_policy: Option<Spanned<serde_json::Value>>,
    /// `/beta/policies/identitySecurityDefaultsEnforcementPolicy`'s `isEnabled` (optional).
    /// Left out: on when the file has no `conditionalAccessPolicies`, off when it has some.
    #[serde(default)]
    #[schemars(with = "Option<YamlBool>")]
    security_defaults: Option<bool>,
    /// `/beta/identity/conditionalAccess/policies`: each a `conditionalAccessPolicy` in Graph's
    /// JSON (ids unique).
    #[serde(default)]
    #[schemars(with = "Vec<super::state::conditional_access::FilePolicy>")]
    conditional_access_policies: Vec<Spanned<serde_json::Value>>,
    /// Directory roles held, for the policies that name roles (optional).
    #[serde(default)]
    #[schemars(with = "Vec<RawRoleAssignment>")]
    role_assignments: Vec<Spanned<RawRoleAssignment>>,
    /// Sign-in like Entra ID (optional): with it, Graph calls need a token the emulator issued.
    #[serde(default)]
    auth: Option<auth::RawAuth>,
}

/// One active directory role assignment, as Graph's `unifiedRoleAssignment` names it.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRoleAssignment {
    /// The role: a built-in role's template id (a GUID).
    #[schemars(with = "Guid")]
    role_definition_id: Spanned<String>,
    /// The user or group holding it: an id from this file (another is noted, not refused).
    #[schemars(with = "YamlText")]
    principal_id: Spanned<String>,
    /// `/` (the whole tenant, the default) or `/administrativeUnits/{id}`.
    #[serde(default)]
    #[schemars(with = "Option<YamlText>")]
    directory_scope_id: Option<String>,
}

/// `users:`, each entry converted and checked the moment it is parsed, so that the span-carrying
/// [`RawUser`]s (several times a user's final size) never pile up.
#[derive(Default)]
struct UserList {
    users: Vec<TenantUser>,
    findings: Findings,
    /// Lower-cased object id → line of the user that has it (groups' ids are checked against it).
    ids: HashMap<String, u64>,
    /// Lower-cased UPN → line of the user that has it.
    upns: HashMap<String, u64>,
}

impl UserList {
    fn push(&mut self, spanned: Spanned<RawUser>) {
        let at = spanned.referenced;
        let line = at.line();
        let user = convert_user(spanned.value, &mut self.findings);
        let subject = Some(user.user_principal_name.as_str());
        if let Some(first) = claim(&mut self.ids, user.id.to_ascii_lowercase(), line) {
            self.findings.problem(
                &at,
                "duplicate-id",
                subject,
                "id",
                format!("id {} is already used by the user on line {first}", user.id),
            );
        }
        if let Some(first) = claim(
            &mut self.upns,
            user.user_principal_name.to_lowercase(),
            line,
        ) {
            self.findings.problem(
                &at,
                "duplicate-upn",
                subject,
                "userPrincipalName",
                format!("already used by the user on line {first}"),
            );
        }
        self.users.push(user);
    }
}

/// Records `key` as seen on `line`, unless it was seen before: then returns that first line (the
/// first holder keeps a value; every later one is the duplicate).
fn claim(seen: &mut HashMap<String, u64>, key: String, line: u64) -> Option<u64> {
    match seen.entry(key) {
        Entry::Occupied(first) => Some(*first.get()),
        Entry::Vacant(slot) => {
            slot.insert(line);
            None
        }
    }
}

impl<'de> Deserialize<'de> for UserList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<UserList, D::Error> {
        struct UserListVisitor;

        impl<'de> Visitor<'de> for UserListVisitor {
            type Value = UserList;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of users")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UserList, A::Error> {
                let mut list = UserList::default();
                while let Some(user) = seq.next_element::<Spanned<RawUser>>()? {
                    list.push(user);
                }
                Ok(list)
            }
        }

        deserializer.deserialize_seq(UserListVisitor)
    }
}

/// One user and the three values mfactl manages, plus what makes them valid.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawUser {
    /// Object id (a GUID).
    #[schemars(with = "Guid")]
    id: Spanned<String>,
    /// `userPrincipalName` (name@domain); guests look like
    /// `name_ext.com#EXT#@contoso.onmicrosoft.com`.
    #[schemars(with = "Upn")]
    user_principal_name: Spanned<String>,
    #[serde(default)]
    #[schemars(with = "Option<YamlText>")]
    display_name: Option<String>,
    /// `member` (the default) or `guest`.
    #[serde(default)]
    #[schemars(with = "Option<CaseInsensitive<UserType>>")]
    user_type: Option<Spanned<String>>,
    /// Default true.
    #[serde(default)]
    #[schemars(with = "Option<YamlBool>")]
    account_enabled: Option<bool>,
    /// Registered authentication methods (a phone, email, password or Temporary Access Pass at
    /// most once); a password is always present whether listed or not.
    #[serde(default)]
    #[schemars(with = "Vec<CaseInsensitive<MethodKind>>")]
    methods: Vec<Spanned<String>>,
    #[serde(default)]
    sign_in_preferences: Option<RawSignInPreferences>,
    /// Default `disabled`.
    #[serde(default)]
    #[schemars(with = "Option<CaseInsensitive<PerUserMfaState>>")]
    per_user_mfa_state: Option<Spanned<String>>,
    /// A fault for tests: the user's PATCHes are answered 204 and then not kept.
    #[serde(default)]
    #[schemars(with = "YamlBool")]
    forgets_writes: bool,
}

/// A user's `signInPreferences`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSignInPreferences {
    #[serde(default)]
    #[schemars(with = "Option<YamlBool>")]
    is_system_preferred_authentication_method_enabled: Option<bool>,
    /// `null` when the user has no preferred method.
    #[serde(default)]
    #[schemars(with = "Option<CaseInsensitive<PreferredMethod>>")]
    user_preferred_method_for_secondary_authentication: Option<Spanned<String>>,
}

/// A group, for selectors that name groups.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawGroup {
    /// Object id (a GUID), unique among users' and groups' ids.
    #[schemars(with = "Guid")]
    id: Spanned<String>,
    #[serde(default)]
    #[schemars(with = "Option<YamlText>")]
    display_name: Option<String>,
    /// User or group ids (one that is neither is noted, not refused).
    #[serde(default)]
    #[schemars(with = "Vec<YamlText>")]
    members: Vec<Spanned<String>>,
}

mfactl_core::json_schema::fixed_schemas! {
    /// `userPrincipalName` as the reader checks it: an `@` with something on both sides.
    struct Upn => serde_json::json!({ "type": "string", "pattern": "^[^@][\\s\\S]*@[\\s\\S]*[^@]$" });
}

/// Collects problems and notes while converting the raw file.
#[derive(Default)]
struct Findings {
    problems: Vec<TenantProblem>,
    notes: Vec<TenantNote>,
}

impl Findings {
    fn problem(
        &mut self,
        at: &Location,
        code: &'static str,
        subject: Option<&str>,
        field: &'static str,
        message: String,
    ) {
        self.problems.push(TenantProblem {
            line: at.line(),
            column: at.column(),
            code,
            subject: subject.map(str::to_owned),
            field,
            message,
        });
    }

    fn note(
        &mut self,
        at: &Location,
        code: &'static str,
        subject: Option<&str>,
        field: &'static str,
        message: String,
    ) {
        self.notes.push(TenantProblem {
            line: at.line(),
            column: at.column(),
            code,
            subject: subject.map(str::to_owned),
            field,
            message,
        });
    }
}

/// The parser's limits for a file of `bytes` bytes (see [`MIN_BYTES_PER_NODE`] for the ratio).
///
/// serde-saphyr's defaults (1,000,000 events, 250,000 nodes, 64 MiB of scalar text) stay the
/// floor, so small files keep them; above ~1 MB the event and node limits grow with the file, one
/// per [`MIN_BYTES_PER_NODE`] bytes, and scalar text may be as long as the file (it cannot be
/// longer without tags, which a tenant file never needs). Depth, alias and anchor limits stay at
/// the defaults: a tenant is six levels deep and has no use for aliases.
fn parser_options(bytes: u64) -> serde_saphyr::Options {
    let limits = Limits::for_bytes(bytes);
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(to_usize(MAX_FILE_BYTES)),
            max_events: limits.events,
            max_nodes: limits.nodes,
            max_total_scalar_bytes: limits.scalar_bytes,
            max_documents: 1,
        },
        // Errors are one line each; a snippet would also keep source text around while reading.
        with_snippet: false,
    }
}

/// The scaled part of the parser budget, kept apart so that error messages can name it.
struct Limits {
    events: usize,
    nodes: usize,
    scalar_bytes: usize,
}

impl Limits {
    fn for_bytes(bytes: u64) -> Limits {
        let defaults = serde_saphyr::Budget::default();
        let per_node = to_usize(bytes / MIN_BYTES_PER_NODE);
        Limits {
            events: defaults.max_events.max(per_node),
            nodes: defaults.max_nodes.max(per_node),
            scalar_bytes: defaults.max_total_scalar_bytes.max(to_usize(bytes)),
        }
    }
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

fn parse_str(text: &str) -> Result<(Tenant, Vec<TenantNote>), TenantError> {
    let origin = "<tenant>";
    let bytes = text.len() as u64;
    if bytes > MAX_FILE_BYTES {
        return Err(TenantError::TooLarge {
            origin: origin.to_owned(),
            bytes,
        });
    }
    let raw = serde_saphyr::from_str_with_options(text, parser_options(bytes))
        .map_err(|error| parse_error(&error, origin, bytes, None))?;
    finish(raw, origin, None)
}

/// Turns serde-saphyr's error into ours: unreadable input, a parser limit, or a syntax/shape error.
fn parse_error(
    error: &serde_saphyr::Error,
    origin: &str,
    bytes: u64,
    path: Option<&Path>,
) -> TenantError {
    let mut inner = error.without_snippet();
    if let serde_saphyr::Error::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    let location = error.location();
    let line = location.map_or(0, |l| l.line());
    let column = location.map_or(0, |l| l.column());
    match inner {
        serde_saphyr::Error::IOError { cause } => {
            if cause.kind() == std::io::ErrorKind::FileTooLarge {
                return TenantError::Limit {
                    origin: origin.to_owned(),
                    line,
                    column,
                    message: format!(
                        "more than {} bytes, the most the emulator reads (the size of {} \
                         generated users); use a smaller tenant file",
                        thousands(MAX_FILE_BYTES),
                        thousands(MAX_USERS as u64)
                    ),
                };
            }
            TenantError::Read {
                path: path.map_or_else(|| PathBuf::from(origin), Path::to_path_buf),
                source: std::io::Error::new(cause.kind(), cause.to_string()),
            }
        }
        serde_saphyr::Error::Budget { breach, .. } => TenantError::Limit {
            origin: origin.to_owned(),
            line,
            column,
            message: limit_message(breach, bytes),
        },
        _ => {
            // The message repeats the place, which the error's own prefix already gives.
            let message = error.without_snippet().to_string();
            let suffix = format!(" at line {line}, column {column}");
            let message = message.strip_suffix(&suffix).unwrap_or(&message).to_owned();
            TenantError::Syntax {
                origin: origin.to_owned(),
                line,
                column,
                message,
            }
        }
    }
}

/// What a parser limit means for a tenant file, and why it is there.
fn limit_message(breach: &serde_saphyr::budget::BudgetBreach, bytes: u64) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let limits = Limits::for_bytes(bytes);
    let density = |what: &str, limit: usize| {
        format!(
            "more than {} {what}, the most a {}-byte tenant file may hold (one per {MIN_BYTES_PER_NODE} \
             bytes; mfactl's tenant files have one per 15 to 17): the file is not shaped like a tenant \
             file (long flow lists such as [a, b, c]?); the limit keeps a hostile file from \
             exhausting memory",
            thousands(limit as u64),
            thousands(bytes)
        )
    };
    match breach {
        B::Nodes { .. } => density("YAML nodes (values, lists and mappings)", limits.nodes),
        B::Events { .. } => density("YAML parser events", limits.events),
        B::ScalarBytes { .. } => format!(
            "more than {} bytes of values in a {}-byte file: YAML tags (`!!str`) make values \
             longer than the text; a tenant file needs none",
            thousands(limits.scalar_bytes as u64),
            thousands(bytes)
        ),
        B::Depth { depth } => format!(
            "nested {depth} levels deep: a tenant file is six levels deep (more only inside \
             authenticationMethodsPolicy); the limit keeps the parser's stack bounded"
        ),
        B::Documents { .. } => {
            "more than one YAML document (`---`): a tenant file is one document".to_owned()
        }
        B::Aliases { .. }
        | B::Anchors { .. }
        | B::AliasAnchorRatio { .. }
        | B::RecordedAnchorEvents { .. }
        | B::RecordedAnchorBytes { .. } => format!(
            "too many YAML anchors or aliases ({breach:?}): a tenant file needs none, and aliases \
             can make a small file expand into a huge one; write the values out"
        ),
        other => format!("the YAML parser's limit was reached ({other:?})"),
    }
}

/// `:line:column`, or nothing when the place is unknown.
struct Place(u64, u64);

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place(0, _) => Ok(()),
            Place(line, 0) => write!(f, ":{line}"),
            Place(line, column) => write!(f, ":{line}:{column}"),
        }
    }
}

/// Checks what the users did not (tenant fields, groups) and reports every problem at once.
///
/// `base` is the directory relative certificate paths start from (the tenant file's), `None`
/// for text held in memory (the working directory).
fn finish(
    raw: RawTenant,
    origin: &str,
    base: Option<&Path>,
) -> Result<(Tenant, Vec<TenantNote>), TenantError> {
    let mut findings = Findings::default();
    let tenant = convert(raw, &mut findings, base);
    // Users were checked while streaming, the rest afterwards: put everything in file order.
    findings.problems.sort_by_key(|p| p.line);
    findings.notes.sort_by_key(|n| n.line);
    if findings.problems.is_empty() {
        Ok((tenant, findings.notes))
    } else {
        Err(TenantError::Invalid {
            origin: origin.to_owned(),
            problems: findings.problems,
        })
    }
}

fn is_guid(text: &str) -> bool {
    uuid::Uuid::try_parse(text).is_ok()
}

/// Method kinds Graph holds at most once per user (they have fixed, well-known ids).
fn single_instance(kind: MethodKind) -> bool {
    matches!(
        kind,
        MethodKind::MobilePhone
            | MethodKind::AlternateMobilePhone
            | MethodKind::OfficePhone
            | MethodKind::Email
            | MethodKind::Password
            | MethodKind::TemporaryAccessPass
    )
}

fn convert(raw: RawTenant, findings: &mut Findings, base: Option<&Path>) -> Tenant {
    if !is_guid(&raw.tenant_id.value) {
        findings.problem(
            &raw.tenant_id.referenced,
            "invalid-id",
            None,
            "tenantId",
            format!("'{}' is not a GUID", raw.tenant_id.value),
        );
    }
    if raw.domain.value.trim().is_empty() {
        findings.problem(
            &raw.domain.referenced,
            "invalid-value",
            None,
            "domain",
            "must not be empty".to_owned(),
        );
    }

    let UserList {
        users,
        findings: user_findings,
        mut ids,
        upns,
    } = raw.users;
    // UPNs mattered only while the users streamed in; free them now (a million users: ~100 MB).
    drop(upns);
    findings.problems.extend(user_findings.problems);
    findings.notes.extend(user_findings.notes);

    let mut groups = Vec::with_capacity(raw.groups.len());
    for spanned in &raw.groups {
        let group = &spanned.value;
        let line = spanned.referenced.line();
        if !is_guid(&group.id.value) {
            findings.problem(
                &group.id.referenced,
                "invalid-id",
                Some(&group.id.value),
                "id",
                format!("group id '{}' is not a GUID", group.id.value),
            );
        }
        if let Some(first) = claim(&mut ids, group.id.value.to_ascii_lowercase(), line) {
            findings.problem(
                &spanned.referenced,
                "duplicate-id",
                Some(&group.id.value),
                "id",
                format!("id is already used on line {first}"),
            );
        }
    }
    for spanned in raw.groups {
        let group = spanned.value;
        for member in &group.members {
            if !ids.contains_key(&member.value.to_ascii_lowercase()) {
                findings.note(
                    &member.referenced,
                    "unknown-member",
                    Some(&group.id.value),
                    "members",
                    format!(
                        "'{}' is neither a user nor a group in this file",
                        member.value
                    ),
                );
            }
        }
        groups.push(Group {
            id: group.id.value,
            display_name: group.display_name,
            members: group.members.into_iter().map(|m| m.value).collect(),
        });
    }

    let auth = raw
        .auth
        .map(|auth| auth::convert(auth, &users, base, findings));

    // The policy is served as Graph's defaults with the file's values laid over them: what the
    // file gives must be what Graph could return, or a GET would answer what no PATCH could set.
    let policy = raw.authentication_methods_policy.map(|spanned| {
        for message in super::state::policy::file_problems(&spanned.value) {
            findings.problem(
                &spanned.referenced,
                "invalid-policy",
                None,
                "authenticationMethodsPolicy",
                message,
            );
        }
        spanned.value
    });

    let conditional_access_policies = conditional_access(raw.conditional_access_policies, findings);
    let role_assignments = role_assignments(raw.role_assignments, &ids, findings);

    Tenant {
        tenant_id: raw.tenant_id.value,
        domain: raw.domain.value,
        users,
        groups,
        authentication_methods_policy: policy,
        security_defaults: raw.security_defaults,
        conditional_access_policies,
        role_assignments,
        auth,
    }
}

/// The file's Conditional Access policies, each checked with the rules Graph's answers follow
/// ([`super::state::conditional_access`]); two policies with one id are a problem too.
fn conditional_access(
    policies: Vec<Spanned<serde_json::Value>>,
    findings: &mut Findings,
) -> Vec<serde_json::Value> {
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut out = Vec::with_capacity(policies.len());
    for spanned in policies {
        let at = spanned.referenced;
        let id = spanned
            .value
            .get("id")
            .and_then(|id| id.as_str())
            .map(str::to_owned);
        for message in super::state::conditional_access::file_problems(&spanned.value) {
            findings.problem(
                &at,
                "invalid-conditional-access-policy",
                id.as_deref(),
                "conditionalAccessPolicies",
                message,
            );
        }
        if let Some(id) = &id
            && let Some(first) = claim(&mut seen, id.to_ascii_lowercase(), at.line())
        {
            findings.problem(
                &at,
                "duplicate-id",
                Some(id),
                "conditionalAccessPolicies",
                format!("policy id is already used on line {first}"),
            );
        }
        out.push(spanned.value);
    }
    out
}

/// The file's role assignments: the role a GUID, the principal a user or group of the file
/// (else a note: Graph never lists a deleted principal, and the emulator leaves it out too).
fn role_assignments(
    assignments: Vec<Spanned<RawRoleAssignment>>,
    ids: &HashMap<String, u64>,
    findings: &mut Findings,
) -> Vec<RoleAssignment> {
    let mut out = Vec::with_capacity(assignments.len());
    for spanned in assignments {
        let raw = spanned.value;
        if !is_guid(&raw.role_definition_id.value) {
            findings.problem(
                &raw.role_definition_id.referenced,
                "invalid-id",
                None,
                "roleAssignments",
                format!(
                    "roleDefinitionId '{}' is not a GUID (a built-in role's template id)",
                    raw.role_definition_id.value
                ),
            );
        }
        if !ids.contains_key(&raw.principal_id.value.to_ascii_lowercase()) {
            findings.note(
                &raw.principal_id.referenced,
                "unknown-member",
                None,
                "roleAssignments",
                format!(
                    "principalId '{}' is neither a user nor a group in this file",
                    raw.principal_id.value
                ),
            );
        }
        out.push(RoleAssignment {
            role_definition_id: raw.role_definition_id.value,
            principal_id: raw.principal_id.value,
            directory_scope_id: raw.directory_scope_id,
        });
    }
    out
}

fn convert_user(raw: RawUser, findings: &mut Findings) -> TenantUser {
    let subject = raw.user_principal_name.value.clone();
    let subject = Some(subject.as_str());
    if !is_guid(&raw.id.value) {
        findings.problem(
            &raw.id.referenced,
            "invalid-id",
            subject,
            "id",
            format!("'{}' is not a GUID", raw.id.value),
        );
    }
    let upn = &raw.user_principal_name.value;
    if !upn.contains('@') || upn.starts_with('@') || upn.ends_with('@') {
        findings.problem(
            &raw.user_principal_name.referenced,
            "invalid-value",
            subject,
            "userPrincipalName",
            format!("'{upn}' is not of the form name@domain"),
        );
    }

    let user_type = match &raw.user_type {
        None => UserType::Member,
        Some(text) => UserType::parse(&text.value).unwrap_or_else(|| {
            findings.problem(
                &text.referenced,
                "invalid-value",
                subject,
                "userType",
                format!("'{}' is not one of: member, guest", text.value),
            );
            UserType::Member
        }),
    };

    let mut methods = Vec::with_capacity(raw.methods.len());
    for text in &raw.methods {
        match MethodKind::parse(&text.value) {
            Some(kind) => {
                if single_instance(kind) && methods.contains(&kind) {
                    findings.problem(
                        &text.referenced,
                        "duplicate-method",
                        subject,
                        "methods",
                        format!("{kind} is listed twice; a user holds at most one"),
                    );
                } else {
                    methods.push(kind);
                }
            }
            None => findings.problem(
                &text.referenced,
                "invalid-value",
                subject,
                "methods",
                format!("'{}' is not one of: {}", text.value, MethodKind::expected()),
            ),
        }
    }

    let raw_prefs = raw.sign_in_preferences.unwrap_or(RawSignInPreferences {
        is_system_preferred_authentication_method_enabled: None,
        user_preferred_method_for_secondary_authentication: None,
    });
    let preferred = raw_prefs
        .user_preferred_method_for_secondary_authentication
        .and_then(|text| match PreferredMethod::parse(&text.value) {
            Some(method) => {
                if !methods.iter().any(|m| method.is_enabled_by(*m)) {
                    findings.note(
                        &text.referenced,
                        "unregistered-preferred-method",
                        subject,
                        "userPreferredMethodForSecondaryAuthentication",
                        format!(
                            "{method} is preferred but no registered method enables it \
                             (Graph can hold this after a method is removed; a PATCH to it would fail)"
                        ),
                    );
                }
                Some(method)
            }
            None => {
                findings.problem(
                    &text.referenced,
                    "invalid-value",
                    subject,
                    "userPreferredMethodForSecondaryAuthentication",
                    format!(
                        "'{}' is not one of: {} (or null)",
                        text.value,
                        PreferredMethod::expected()
                    ),
                );
                None
            }
        });

    let mut user = TenantUser {
        id: raw.id.value,
        user_principal_name: raw.user_principal_name.value,
        display_name: raw.display_name,
        user_type,
        account_enabled: raw.account_enabled.unwrap_or(true),
        methods,
        sign_in_preferences: UserSignInPreferences {
            is_system_preferred_authentication_method_enabled: raw_prefs
                .is_system_preferred_authentication_method_enabled
                .unwrap_or(false),
            user_preferred_method_for_secondary_authentication: preferred,
        },
        per_user_mfa_state: PerUserMfaState::Disabled,
        forgets_writes: raw.forgets_writes,
    };

    if let Some(text) = &raw.per_user_mfa_state {
        match PerUserMfaState::parse(&text.value) {
            Some(state) => {
                if state == PerUserMfaState::Enabled && user.has_mfa_method() {
                    findings.note(
                        &text.referenced,
                        "enabled-with-method",
                        Some(&user.user_principal_name),
                        "perUserMfaState",
                        "enabled on a user with a registered MFA method; Graph would show \
                         enforced (kept as written)"
                            .to_owned(),
                    );
                }
                user.per_user_mfa_state = state;
            }
            None => findings.problem(
                &text.referenced,
                "invalid-value",
                Some(&user.user_principal_name),
                "perUserMfaState",
                format!(
                    "'{}' is not one of: {}",
                    text.value,
                    PerUserMfaState::expected()
                ),
            ),
        }
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "tenantId: 9c0e5f1a-0000-4000-8000-000000000001\ndomain: contoso.com\n";

    #[test]
    fn a_tenant_past_the_parsers_default_budget_loads() {
        // 12,000 generated users are ~280,000 nodes, over serde-saphyr's default 250,000.
        let tenant = Tenant::generate(12_000, 3);
        let text = tenant.to_yaml();
        assert_eq!(Tenant::from_yaml_str(&text).unwrap(), tenant);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenant.yaml");
        tenant
            .write_yaml(File::create(&path).unwrap())
            .expect("write");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let (loaded, notes) = Tenant::load_with_notes(&path).unwrap();
        assert_eq!(loaded, tenant);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn generated_users_stay_within_the_size_the_file_ceiling_assumes() {
        for seed in [1, 2] {
            let mut text = Vec::new();
            Tenant::generate(5_000, seed).write_yaml(&mut text).unwrap();
            let per_user = text.len() as u64 / 5_000;
            assert!(
                (300..MAX_BYTES_PER_GENERATED_USER).contains(&per_user),
                "{per_user} bytes a user"
            );
        }
    }

    #[test]
    fn the_budget_grows_with_the_file_from_the_parsers_defaults() {
        let defaults = serde_saphyr::Budget::default();
        let small = Limits::for_bytes(10_000);
        assert_eq!(
            (small.events, small.nodes, small.scalar_bytes),
            (
                defaults.max_events,
                defaults.max_nodes,
                defaults.max_total_scalar_bytes
            )
        );
        // A million generated users: ~392 MB, ~23 M nodes, ~26 M events.
        let big = Limits::for_bytes(392_000_000);
        assert_eq!((big.events, big.nodes), (98_000_000, 98_000_000));
        assert_eq!(big.scalar_bytes, 392_000_000);
    }

    #[test]
    fn a_file_far_denser_in_nodes_than_a_tenant_is_refused_naming_the_limit() {
        // 1.2 MB of `[a,a,a,...]`: 600,000 nodes where the limit for its size is ~300,000.
        let mut text = format!("{HEAD}authenticationMethodsPolicy: [");
        text.push_str(&"a,".repeat(600_000));
        text.push_str("a]\n");
        let err = Tenant::from_yaml_str(&text).unwrap_err();
        let TenantError::Limit { line, message, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(*line, 3, "{err}");
        let (bytes, limit) = (text.len() as u64, text.len() as u64 / 4);
        assert!(
            message.contains(&format!("more than {} YAML nodes", thousands(limit)))
                && message.contains(&format!("a {}-byte tenant file", thousands(bytes)))
                && message.contains("one per 4 bytes")
                && message.contains("hostile"),
            "{err}"
        );
    }

    #[test]
    fn aliases_are_refused_with_the_reason() {
        let mut text = format!("{HEAD}authenticationMethodsPolicy:\n  a: &x [1, 2]\n");
        for i in 0..200 {
            text.push_str(&format!("  k{i}: *x\n"));
        }
        let err = Tenant::from_yaml_str(&text).unwrap_err();
        assert!(
            matches!(&err, TenantError::Limit { message, .. } if message.contains("aliases")),
            "{err}"
        );
    }

    #[test]
    fn a_file_over_the_ceiling_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.yaml");
        // Sparse: no disk space is used, and nothing may be read from it.
        File::create(&path)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        let err = Tenant::load(&path).unwrap_err();
        assert!(
            matches!(err, TenantError::TooLarge { bytes, .. } if bytes == MAX_FILE_BYTES + 1),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("5,120,000,001 bytes")
                && message.contains("more than the 5,120,000,000")
                && message.contains("10,000,000 generated users")
                && message.contains("in memory"),
            "{message}"
        );
    }

    #[test]
    fn problems_found_while_streaming_come_back_in_file_order() {
        let text = format!(
            "{HEAD}users:\n\
             - id: 071cc716-8147-4397-a5ba-b2105951cc0b\n  userPrincipalName: a@contoso.com\n\
             - id: 071CC716-8147-4397-a5ba-b2105951cc0b\n  userPrincipalName: A@contoso.com\n\
             - id: 071cc716-8147-4397-a5ba-b2105951cc0b\n  userPrincipalName: b@contoso.com\n\
             groups:\n- id: not-a-guid\n"
        );
        let err = Tenant::from_yaml_str(&format!("{text}tenantIdx: 1\n")).unwrap_err();
        assert!(matches!(err, TenantError::Syntax { .. }), "{err}");
        let err = Tenant::from_yaml_str(&text).unwrap_err();
        let TenantError::Invalid { problems, .. } = &err else {
            panic!("{err}");
        };
        let found: Vec<_> = problems.iter().map(|p| (p.line, p.code)).collect();
        assert_eq!(
            found,
            [
                (6, "duplicate-id"),
                (6, "duplicate-upn"),
                (8, "duplicate-id"),
                (11, "invalid-id")
            ],
            "{err}"
        );
        // Each duplicate names the first user with the value, not the one before it.
        assert!(problems[2].message.ends_with("line 4"), "{err}");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(5_120_000_000), "5,120,000,000");
    }
}
