//! The desired state: what the admin's file asks for, parsed and validated before any network call.
//!
//! A field left out of the file is `None` and is never touched. Every problem in the file is
//! collected (not just the first) and reported with its file and line (YAML) or row (CSV).

mod csv;
pub mod policy;
mod problem;
pub mod selectors;
pub mod tenants;
mod user;
pub mod write;
mod yaml;

use std::path::{Path, PathBuf};

use crate::model::{Field, MethodListProblem, PerUserMfaState, PreferredMethod, PreferredMethods};

pub use problem::{Code as ProblemCode, Location, ManifestError, Problem, is_hidden_or_control};
use problem::{Code, quoted};
pub use user::{InvalidUser, check_user};
pub use yaml::TOP_LEVEL_KEYS;

/// A parsed, validated manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The file it was read from, for messages.
    pub source: PathBuf,
    /// One entry per user, in file order, with `defaults:` already applied.
    pub users: Vec<DesiredUser>,
    /// The tenant's authentication methods policy, when the file has a `policy:` section.
    pub policy: Option<policy::DesiredPolicy>,
    /// `protect:`: accounts never written whatever an entry asks (break-glass admins), as
    /// written (trimmed), in file order; each a userPrincipalName or an object id.
    pub protect: Vec<String>,
    /// `maxChanges:`: the most writes an apply of this manifest may make.
    pub max_changes: Option<u64>,
    /// `allUsers:`, `groups:` and `exclude:`: resolved to users at plan time.
    pub selectors: selectors::Selectors,
    /// `allowMfaGap: true` (or `--allow-mfa-gap`): disable per-user MFA even for users no
    /// Conditional Access policy is known to require MFA for.
    pub allow_mfa_gap: bool,
}

/// What one user's settings should be. `None` means "not managed": left as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredUser {
    /// userPrincipalName or object id, as written (trimmed). Shared (not copied) with the user's
    /// plan entry: a million-user migration holds each name once.
    pub user: std::sync::Arc<str>,
    /// One method, or several to try in order (the first the user has registered wins).
    pub preferred_method: Option<PreferredMethods>,
    pub system_preferred: Option<bool>,
    pub per_user_mfa_state: Option<PerUserMfaState>,
    /// Where the entry stands in the file: a YAML line or a CSV row (1-based, header is row 1).
    pub origin: Origin,
}

/// Where a manifest entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Line(u64),
    Row(u64),
}

impl DesiredUser {
    /// The managed fields.
    pub fn settings(&self) -> Settings {
        Settings {
            preferred_method: self.preferred_method,
            system_preferred: self.system_preferred,
            per_user_mfa_state: self.per_user_mfa_state,
        }
    }

    /// Replaces the managed fields.
    pub fn set_settings(&mut self, settings: Settings) {
        self.preferred_method = settings.preferred_method;
        self.system_preferred = settings.system_preferred;
        self.per_user_mfa_state = settings.per_user_mfa_state;
    }

    /// Whether the entry manages any field on `signInPreferences`.
    pub fn manages_sign_in_preferences(&self) -> bool {
        self.preferred_method.is_some() || self.system_preferred.is_some()
    }

    /// Whether the entry manages `perUserMfaState` (on `requirements`).
    pub fn manages_requirements(&self) -> bool {
        self.per_user_mfa_state.is_some()
    }
}

#[cfg(test)]
impl Manifest {
    /// Each user's preferred methods, in order (tests of both readers).
    pub(crate) fn preferred_lists(&self) -> Vec<Vec<PreferredMethod>> {
        self.users
            .iter()
            .map(|u| {
                u.preferred_method
                    .map_or_else(Vec::new, |m| m.iter().collect())
            })
            .collect()
    }
}

/// How to read a manifest. The default is the strict reading: every unknown column is a problem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// CSV only: skip columns mfactl does not know (an export's `displayName`, `mail`,
    /// `department`...) instead of reporting them. A column whose name looks like a misspelt
    /// known one is still reported, so a typo cannot silently leave a setting unmanaged.
    /// YAML is unaffected: its keys are the manifest's own, and an unknown one is a mistake.
    pub ignore_unknown_columns: bool,
}

/// Reads and validates a manifest with the default options; see [`load_with`].
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    load_with(path, &LoadOptions::default())
}

/// Reads and validates a manifest; the format follows the extension (`.csv` is CSV, anything
/// else is YAML).
pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Manifest, ManifestError> {
    let is_csv = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
    if is_csv {
        csv::load(path, options)
    } else {
        yaml::load(path)
    }
}

/// Reads a YAML file for its `policy:` section alone (`--policy FILE`, beside a CSV manifest):
/// `version: 1` and `policy:`; `users:` is refused here, so that no user is managed by surprise.
pub fn load_policy(path: &Path) -> Result<policy::DesiredPolicy, ManifestError> {
    let manifest = yaml::load(path)?;
    let mut problems = problem::Problems::new(path);
    if !manifest.users.is_empty() {
        problems.push(
            Code::UnknownField,
            Location::Yaml { line: 1, column: 1 },
            None,
            "a --policy file holds `version: 1` and `policy:` only; move its users to the \
             manifest"
                .to_string(),
        );
    }
    // They guard or choose the users' writes, which this file does not make: left here they
    // would do nothing, silently.
    if !manifest.selectors.is_empty() || !manifest.selectors.exclude.is_empty() {
        problems.push(
            Code::UnknownField,
            Location::Yaml { line: 1, column: 1 },
            None,
            "a --policy file holds `version: 1` and `policy:` only; `allUsers:`, `groups:` and \
             `exclude:` belong in a YAML manifest"
                .to_string(),
        );
    }
    if !manifest.protect.is_empty() || manifest.max_changes.is_some() || manifest.allow_mfa_gap {
        problems.push(
            Code::UnknownField,
            Location::Yaml { line: 1, column: 1 },
            None,
            "a --policy file holds `version: 1` and `policy:` only; `protect:`, \
             `maxChanges:` and `allowMfaGap:` belong in a YAML manifest (for a CSV manifest, \
             pass --max-changes or --allow-mfa-gap)"
                .to_string(),
        );
    }
    if manifest.policy.is_none() {
        problems.push(
            Code::MissingUsers,
            Location::Yaml { line: 1, column: 1 },
            None,
            "the --policy file has no `policy:` section".to_string(),
        );
    }
    problems.finish(manifest.policy.unwrap_or_default())
}

/// A value as the file spells it, before it is checked against the field it is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RawValue<'a> {
    /// A string (YAML) or a non-empty cell (CSV).
    Text(&'a str),
    /// A YAML boolean.
    Bool(bool),
    /// A YAML number, as Rust prints it.
    Number(&'a str),
    /// A YAML null: `~`, `null`, or nothing after the colon.
    Null,
    /// A YAML list or mapping where a single value belongs (`"a list"`, `"a mapping"`).
    Collection(&'static str),
    /// A YAML list (or a CSV cell `push|oath|sms`), its items, where a list may belong
    /// (`preferredMethod`); elsewhere it is taken as a [`RawValue::Collection`].
    List(&'a [RawValue<'a>]),
}

impl RawValue<'_> {
    /// The value for a message: strings quoted, other kinds as YAML would print them.
    fn describe(self) -> String {
        match self {
            RawValue::Text(text) => quoted(text),
            RawValue::Bool(value) => value.to_string(),
            RawValue::Number(text) => text.to_string(),
            RawValue::Null => "null".to_string(),
            RawValue::Collection(kind) => kind.to_string(),
            RawValue::List(_) => "a list".to_string(),
        }
    }
}

/// The managed settings of one entry (or of `defaults:`), as far as they are set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub preferred_method: Option<PreferredMethods>,
    pub system_preferred: Option<bool>,
    pub per_user_mfa_state: Option<PerUserMfaState>,
}

/// What is wrong with one value: its code and a message naming field, value and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ValueProblem {
    pub(crate) code: Code,
    pub(crate) message: String,
}

impl Settings {
    /// Checks `value` for `field` and records it. `subject` prefixes the message: the user
    /// (`megan@contoso.com: `), `defaults: `, or nothing when the entry names no user.
    pub(crate) fn set(
        &mut self,
        field: Field,
        value: RawValue<'_>,
        subject: &str,
    ) -> Result<(), ValueProblem> {
        let name = field.as_str();
        if let RawValue::Null = value {
            return Err(ValueProblem {
                code: Code::NullValue,
                message: format!(
                    "{subject}{name} is null; leave the field out to leave it unmanaged, \
                     or give a value"
                ),
            });
        }
        let wrong = |code: Code, expected: String| ValueProblem {
            code,
            message: format!(
                "{subject}{name} {} is not one of {expected}",
                value.describe()
            ),
        };
        match field {
            Field::PreferredMethod => {
                self.preferred_method = Some(match value {
                    RawValue::List(items) => method_list(items, subject)?,
                    _ => {
                        let parsed = text(value).and_then(PreferredMethod::parse);
                        PreferredMethods::one(parsed.ok_or_else(|| {
                            wrong(Code::UnknownMethod, PreferredMethod::expected())
                        })?)
                    }
                });
            }
            Field::SystemPreferred => {
                let parsed = match value {
                    RawValue::Bool(flag) => Some(flag),
                    RawValue::Text(text) => parse_bool(text),
                    _ => None,
                };
                let flag = parsed.ok_or_else(|| ValueProblem {
                    code: Code::InvalidBool,
                    message: format!("{subject}{name} {} is not true or false", value.describe()),
                })?;
                self.system_preferred = Some(flag);
            }
            Field::PerUserMfaState => {
                let parsed = text(value).and_then(PerUserMfaState::parse);
                let state =
                    parsed.ok_or_else(|| wrong(Code::UnknownState, PerUserMfaState::expected()))?;
                self.per_user_mfa_state = Some(state);
            }
        }
        Ok(())
    }

    /// Fills every field the entry leaves out from `defaults`.
    pub(crate) fn or(self, defaults: Settings) -> Settings {
        Settings {
            preferred_method: self.preferred_method.or(defaults.preferred_method),
            system_preferred: self.system_preferred.or(defaults.system_preferred),
            per_user_mfa_state: self.per_user_mfa_state.or(defaults.per_user_mfa_state),
        }
    }

    /// The value set for `field`, as a manifest writes it (for messages).
    pub fn value_of(&self, field: Field) -> Option<String> {
        match field {
            Field::PreferredMethod => self.preferred_method.map(|m| m.to_string()),
            Field::SystemPreferred => self.system_preferred.map(|b| b.to_string()),
            Field::PerUserMfaState => self.per_user_mfa_state.map(|s| s.as_str().to_owned()),
        }
    }

    /// Sets `field` to `other`'s value for it.
    pub fn take(&mut self, field: Field, other: &Settings) {
        match field {
            Field::PreferredMethod => self.preferred_method = other.preferred_method,
            Field::SystemPreferred => self.system_preferred = other.system_preferred,
            Field::PerUserMfaState => self.per_user_mfa_state = other.per_user_mfa_state,
        }
    }

    /// The desired user these settings describe.
    pub(crate) fn for_user(self, user: String, origin: Origin) -> DesiredUser {
        DesiredUser {
            user: user.into(),
            preferred_method: self.preferred_method,
            system_preferred: self.system_preferred,
            per_user_mfa_state: self.per_user_mfa_state,
            origin,
        }
    }
}

/// `preferredMethod` as a list: each item one of Graph's methods, none twice, at least one.
fn method_list(items: &[RawValue<'_>], subject: &str) -> Result<PreferredMethods, ValueProblem> {
    let name = Field::PreferredMethod.as_str();
    let mut methods = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let method = text(*item)
            .and_then(PreferredMethod::parse)
            .ok_or_else(|| ValueProblem {
                code: Code::UnknownMethod,
                message: format!(
                    "{subject}{name} item {} ({}) is not one of {}",
                    n + 1,
                    item.describe(),
                    PreferredMethod::expected()
                ),
            })?;
        methods.push(method);
    }
    PreferredMethods::new(&methods).map_err(|problem| match problem {
        MethodListProblem::Empty => ValueProblem {
            code: Code::UnknownMethod,
            message: format!(
                "{subject}{name} is an empty list; give one method, or several in the order to \
                 try them"
            ),
        },
        MethodListProblem::Repeated(method) => ValueProblem {
            code: Code::DuplicateMethod,
            message: format!(
                "{subject}{name} names {method} twice; give each method once, in the order to \
                 try them"
            ),
        },
    })
}

/// A CSV cell for `preferredMethod` holding `|`: the list it writes (`push|oath|sms`), each
/// item trimmed.
pub(crate) fn split_methods(cell: &str) -> Vec<RawValue<'_>> {
    cell.split('|')
        .map(|item| RawValue::Text(item.trim()))
        .collect()
}

fn text(value: RawValue<'_>) -> Option<&str> {
    match value {
        RawValue::Text(text) => Some(text),
        _ => None,
    }
}

/// `true`/`false` in any case, surrounding whitespace ignored; nothing else (no `yes`, `1`).
fn parse_bool(text: &str) -> Option<bool> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Whether a file's first bytes are UTF-16 or UTF-32 rather than UTF-8: a UTF-16 byte-order
/// mark (which UTF-32LE's starts with too), or a NUL in the first two bytes, which no UTF-8
/// manifest has (YAML 1.2 detects its encodings the same way). Excel's "Unicode Text" export
/// is UTF-16LE with a mark.
pub(crate) fn looks_like_utf16_or_32(head: &[u8]) -> bool {
    head.starts_with(b"\xFF\xFE")
        || head.starts_with(b"\xFE\xFF")
        || head.get(..2).is_some_and(|two| two.contains(&0))
}

/// The entries whose user repeats an earlier entry's user (compared case-insensitively, as
/// Entra compares userPrincipalNames): `(earlier, later)` index pairs, each later entry
/// paired with the first one naming that user.
///
/// Sorting indices instead of hashing lowered copies keeps a million-user manifest to one
/// extra `u32` per user.
pub(crate) fn duplicate_users(users: &[DesiredUser]) -> Vec<(usize, usize)> {
    duplicate_names(users, |user| &user.user)
}

/// [`duplicate_users`] over any list whose items `name` a user (`protect:` entries).
pub(crate) fn duplicate_names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<(usize, usize)> {
    let folded = |index: u32| {
        name(&items[index as usize])
            .chars()
            .flat_map(char::to_lowercase)
    };
    let count = u32::try_from(items.len()).expect("fewer than 4 billion users");
    let mut order: Vec<u32> = (0..count).collect();
    // Stable sort: equal users stay in file order, so the first of each run is the earliest.
    order.sort_by(|&a, &b| folded(a).cmp(folded(b)));
    let mut pairs = Vec::new();
    let mut first = None;
    for window in order.windows(2) {
        let (earlier, later) = (window[0], window[1]);
        if folded(earlier).eq(folded(later)) {
            let first = *first.get_or_insert(earlier);
            pairs.push((first as usize, later as usize));
        } else {
            first = None;
        }
    }
    pairs.sort_unstable_by_key(|&(_, later)| later);
    pairs
}
