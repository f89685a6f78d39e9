//! The YAML manifest reader: streams the file through serde-saphyr and checks each user entry
//! as it goes, so every problem is found in one pass and a million-user file never exists
//! twice in memory.
//!
//! Derived `Deserialize` would stop at the first bad value and lose where it was. Instead the
//! top level is a [`DeserializeSeed`] that owns the results, and each entry (and `defaults:`)
//! is read as a list of `(Spanned<key>, Spanned<Scalar>)` pairs: any YAML value is accepted
//! and its position kept, and the checks happen here, collecting problems instead of failing.
//! Only real YAML syntax (or a shape serde-saphyr itself refuses) ends the reading early.
//! This module must not touch the network or apply any policy beyond the manifest format.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Spanned};

use super::policy::{self, DesiredPolicy};
use super::problem::{Code, Location, Problems, quoted, unknown_field_message};
use super::{
    DesiredUser, Manifest, ManifestError, Origin, RawValue, Settings, check_user, duplicate_names,
    duplicate_users, looks_like_utf16_or_32,
};
use crate::model::Field;

/// The manifest format versions this build reads.
const SUPPORTED_VERSION: i64 = 1;
/// Keys allowed at the top of the file.
pub const TOP_LEVEL_KEYS: [&str; 10] = [
    "version",
    "defaults",
    "users",
    "allUsers",
    "groups",
    "exclude",
    "policy",
    "protect",
    "maxChanges",
    "allowMfaGap",
];
/// The key naming the user in an entry.
const USER_KEY: &str = "user";

/// Parser limits, raised from serde-saphyr's defaults (1M events, 250k nodes, 64 MiB of
/// scalars), which a 100k-user file already exceeds. A user entry with all four fields is
/// ten events and nine nodes and about 100 bytes, so these allow several million users while
/// still refusing a runaway or hostile file. Depth, alias and anchor limits stay at their
/// defaults: a manifest is three levels deep and has no reason to use many anchors.
pub(super) fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(2 << 30),
            max_events: 100_000_000,
            max_nodes: 100_000_000,
            max_total_scalar_bytes: 1 << 30,
            max_documents: 1,
        },
        // Repeated keys reach our visitors, which report them with the rest of the problems.
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        // YAML 1.2 booleans only: `systemPreferred: yes` is a typo to report, and
        // `perUserMfaState: on` must stay the text "on" so its message makes sense.
        strict_booleans: true,
        // Problems are rendered one line each; serde-saphyr's source snippets would not fit.
        with_snippet: false,
    }
}

/// Reads and checks a YAML manifest.
pub(super) fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let file = File::open(path).map_err(|source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad_text = Rc::new(Cell::new(None));
    let reader = TextCheck::new(file, bad_text.clone());
    let mut collector = Collector::new(path);
    let parsed = serde_saphyr::with_deserializer_from_reader_with_options(
        reader,
        options(),
        |deserializer| (&mut collector).deserialize(deserializer),
    );
    if let Some(bad) = bad_text.get() {
        return collector.finish_cut(bad, parsed.err());
    }
    match parsed {
        Ok(()) => collector.finish(),
        Err(error) => {
            if let serde_saphyr::Error::IOError { cause, .. } = error.without_snippet() {
                return Err(ManifestError::Read {
                    path: path.to_path_buf(),
                    source: std::io::Error::new(cause.kind(), cause.to_string()),
                });
            }
            // Keep what was found before the syntax error: it is as real as the error.
            collector.syntax_error(&error);
            collector.problems.finish(Manifest {
                source: path.to_path_buf(),
                users: Vec::new(),
                policy: None,
                protect: Vec::new(),
                max_changes: None,
                selectors: Default::default(),
                allow_mfa_gap: false,
            })
        }
    }
}

/// Where the file stops being UTF-8 text: the position of the first byte that is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BadText {
    line: u64,
    column: u64,
    /// The offending byte: `0` for a NUL, else the first byte of an invalid UTF-8 sequence.
    byte: u8,
}

impl BadText {
    fn message(self) -> String {
        if self.byte == 0 {
            "the file holds a NUL byte (\\0) here; a manifest is text: save it as UTF-8 text"
                .to_string()
        } else {
            format!(
                "the file is not UTF-8 text here (byte 0x{:02X}); it was probably saved in a \
                 legacy encoding such as Windows-1252: save it as UTF-8",
                self.byte
            )
        }
    }
}

/// Hands the file to the parser unchanged while checking that it is UTF-8 without NUL bytes,
/// and counts lines and columns so the first bad byte can be named by its position.
/// serde-saphyr's own decoding error carries no position and reads as an I/O failure
/// ("cannot read ...: invalid UTF-8 leading byte"). Only checked bytes are handed over, and the
/// file seems to end just before a bad byte, so the problems before it are still found (see
/// [`Collector::finish_cut`]).
///
/// A file that starts like UTF-16 or UTF-32 (a BOM, or a NUL in its first two bytes, as YAML
/// 1.2 detects encodings) is passed through unchecked: serde-saphyr decodes those itself.
struct TextCheck<R> {
    inner: R,
    found: Rc<Cell<Option<BadText>>>,
    /// `None` until the first bytes are seen; then whether to check them.
    check: Option<bool>,
    /// The line and column of the byte after the checked ones.
    line: u64,
    column: u64,
    buffer: Box<[u8]>,
    /// `buffer[start..ready]` is checked and not handed over yet; `buffer[ready..filled]` is
    /// the start of a UTF-8 sequence cut by the end of the last read (at most 3 bytes).
    start: usize,
    ready: usize,
    filled: usize,
    /// Nothing comes after `ready`: the end of the file, or a bad byte.
    ended: bool,
}

impl<R: Read> TextCheck<R> {
    fn new(inner: R, found: Rc<Cell<Option<BadText>>>) -> TextCheck<R> {
        TextCheck {
            inner,
            found,
            check: None,
            line: 1,
            column: 1,
            buffer: vec![0; 1 << 16].into_boxed_slice(),
            start: 0,
            ready: 0,
            filled: 0,
            ended: false,
        }
    }

    /// Reads more of the file into the buffer and checks it.
    fn refill(&mut self) -> std::io::Result<()> {
        self.buffer.copy_within(self.ready..self.filled, 0);
        self.filled -= self.ready;
        (self.start, self.ready) = (0, 0);
        let read = self.inner.read(&mut self.buffer[self.filled..])?;
        let check = *self
            .check
            .get_or_insert_with(|| !looks_like_utf16_or_32(&self.buffer[..read]));
        if read == 0 {
            self.ended = true;
            if self.filled > 0 {
                // A sequence cut by the end of the file.
                self.fail(self.buffer[0]);
            }
            return Ok(());
        }
        self.filled += read;
        if !check {
            self.ready = self.filled;
            return Ok(());
        }
        let data = &self.buffer[..self.filled];
        let (valid, invalid) = match std::str::from_utf8(data) {
            Ok(_) => (data.len(), false),
            Err(error) => (error.valid_up_to(), error.error_len().is_some()),
        };
        let nul = data[..valid].iter().position(|&byte| byte == 0);
        self.ready = nul.unwrap_or(valid);
        for index in 0..self.ready {
            let byte = self.buffer[index];
            if byte == b'\n' {
                self.line += 1;
                self.column = 1;
            } else if byte & 0xC0 != 0x80 {
                // The first byte of a character: continuation bytes do not move the column.
                self.column += 1;
            }
        }
        if nul.is_some() || invalid {
            self.ended = true;
            self.fail(self.buffer[self.ready]);
        }
        Ok(())
    }

    /// Records the bad byte at the current position.
    fn fail(&mut self, byte: u8) {
        self.found.set(Some(BadText {
            line: self.line,
            column: self.column,
            byte,
        }));
    }
}

impl<R: Read> Read for TextCheck<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.start == self.ready && !self.ended {
            self.refill()?;
        }
        let count = out.len().min(self.ready - self.start);
        out[..count].copy_from_slice(&self.buffer[self.start..self.start + count]);
        self.start += count;
        Ok(count)
    }
}

/// serde-saphyr's user-facing message without its location suffix (ours comes first) and
/// without line breaks.
pub(super) fn syntax_message(error: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter;
    let mut inner = error.without_snippet();
    if let serde_saphyr::Error::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    let message = serde_saphyr::UserMessageFormatter.format_message(inner);
    message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub(super) fn position(line: u64, column: u64) -> Location {
    // serde-saphyr reports 0:0 for an unknown location; point at the start of the file.
    Location::Yaml {
        line: line.max(1),
        column: column.max(1),
    }
}

pub(super) fn at(location: &serde_saphyr::Location) -> Location {
    position(location.line(), location.column())
}

/// Everything found while streaming the file: the users so far, `defaults:`, problems.
struct Collector {
    source: std::path::PathBuf,
    problems: Problems,
    users: Vec<DesiredUser>,
    /// Where each user's `user:` value is, parallel to `users`, for duplicate reports.
    user_positions: Vec<(u64, u64)>,
    /// `defaults:` as read; applied at the end because it may come after `users:`.
    defaults: Settings,
    version_seen: bool,
    users_seen: bool,
    /// `policy:` as read, when given and without problems.
    policy: Option<DesiredPolicy>,
    policy_seen: bool,
    /// `protect:` as read, valid entries only.
    protect: Vec<String>,
    /// `maxChanges:` as read, when valid.
    max_changes: Option<u64>,
    /// `allowMfaGap:` as read (false when left out or invalid).
    allow_mfa_gap: bool,
    /// `allUsers:`, `groups:`, `exclude:` as read (valid entries).
    selectors: super::selectors::Selectors,
    top_level_keys: HashSet<String>,
}

impl Collector {
    fn new(path: &Path) -> Collector {
        Collector {
            source: path.to_path_buf(),
            problems: Problems::new(path),
            users: Vec::new(),
            user_positions: Vec::new(),
            defaults: Settings::default(),
            version_seen: false,
            users_seen: false,
            policy: None,
            policy_seen: false,
            protect: Vec::new(),
            max_changes: None,
            allow_mfa_gap: false,
            selectors: super::selectors::Selectors::default(),
            top_level_keys: HashSet::new(),
        }
    }

    fn syntax_error(&mut self, error: &serde_saphyr::Error) {
        let location = error
            .location()
            .map_or(position(1, 1), |at| position(at.line(), at.column()));
        self.problems
            .push(Code::YamlSyntax, location, None, syntax_message(error));
    }

    /// The file stops being text at `bad`, and the parser saw it as if it ended there.
    /// Problems before that line stand; those on it or after it may be artefacts of the cut
    /// (a value cut short, a bracket left open), and so are "no version" and "no users",
    /// which need the whole file, so they are all left out.
    fn finish_cut(
        mut self,
        bad: BadText,
        syntax: Option<serde_saphyr::Error>,
    ) -> Result<Manifest, ManifestError> {
        if let Some(error) = syntax {
            self.syntax_error(&error);
        }
        self.problems.retain(
            |problem| matches!(problem.location, Location::Yaml { line, .. } if line < bad.line),
        );
        self.problems.push(
            Code::YamlSyntax,
            position(bad.line, bad.column),
            None,
            bad.message(),
        );
        self.problems.finish(Manifest {
            source: self.source,
            users: Vec::new(),
            policy: None,
            protect: Vec::new(),
            max_changes: None,
            selectors: super::selectors::Selectors::default(),
            allow_mfa_gap: false,
        })
    }

    fn finish(mut self) -> Result<Manifest, ManifestError> {
        if !self.version_seen {
            self.problems.push(
                Code::UnsupportedVersion,
                position(1, 1),
                None,
                format!(
                    "the manifest has no version; add `version: {SUPPORTED_VERSION}` at the top"
                ),
            );
        }
        // A manifest may manage the tenant's policy alone, or whole populations.
        if !self.users_seen && !self.policy_seen && self.selectors.is_empty() {
            self.problems.push(
                Code::MissingUsers,
                position(1, 1),
                None,
                "the manifest has no `users:` key; add `users:` with one entry per user \
                 (`users: []` for none), or a `policy:` section"
                    .to_string(),
            );
        }
        for (first, later) in duplicate_users(&self.users) {
            let (first_line, first_column) = self.user_positions[first];
            let (line, column) = self.user_positions[later];
            let user = &self.users[later].user;
            self.problems.push(
                Code::DuplicateUser,
                position(line, column),
                Some(user),
                format!(
                    "{user} is listed twice: here and at line {first_line}, column \
                     {first_column} (users match case-insensitively); keep one entry"
                ),
            );
        }
        let defaults = self.defaults;
        let mut users = self.users;
        for user in &mut users {
            let explicit = Settings {
                preferred_method: user.preferred_method,
                system_preferred: user.system_preferred,
                per_user_mfa_state: user.per_user_mfa_state,
            };
            let merged = explicit.or(defaults);
            user.preferred_method = merged.preferred_method;
            user.system_preferred = merged.system_preferred;
            user.per_user_mfa_state = merged.per_user_mfa_state;
        }
        self.problems.finish(Manifest {
            source: self.source,
            users,
            policy: self.policy,
            protect: self.protect,
            max_changes: self.max_changes,
            selectors: self.selectors,
            allow_mfa_gap: self.allow_mfa_gap,
        })
    }

    fn version(&mut self, key: &Spanned<String>, value: Spanned<Scalar>) {
        self.version_seen = true;
        let supported = matches!(&value.value, Scalar::Number(number) if number == "1");
        if !supported {
            self.problems.push(
                Code::UnsupportedVersion,
                at(&value.referenced),
                None,
                format!(
                    "{} {} is not supported; this mfactl reads `version: {SUPPORTED_VERSION}`",
                    key.value,
                    value.value.as_raw().describe()
                ),
            );
        }
    }

    fn defaults(&mut self, entry: Spanned<Entry>) {
        let Some(fields) = self.mapping_or_report(entry, "defaults:") else {
            return;
        };
        let mut settings = Settings::default();
        let mut seen = HashSet::new();
        for (key, value) in &fields {
            if !self.first_time(&mut seen, key) {
                continue;
            }
            if key.value == USER_KEY {
                self.problems.push(
                    Code::UserInDefaults,
                    at(&key.referenced),
                    None,
                    "defaults: cannot name a user; defaults apply to every entry under \
                     `users:`, so move `user:` into an entry there"
                        .to_string(),
                );
                continue;
            }
            self.set_field(&mut settings, key, value, "defaults: ", None, true);
        }
        self.defaults = settings;
    }

    fn user(&mut self, entry: Spanned<Entry>) {
        let origin_line = entry.referenced.line();
        let entry_position = at(&entry.referenced);
        let Some(fields) = self.mapping_or_report(entry, "each entry under users:") else {
            return;
        };
        // The user first, so every message about the entry can name them.
        let user_field = fields.iter().find(|(key, _)| key.value == USER_KEY);
        // What messages about the entry's other fields call the user: the name, or the
        // escaped value when the name is not valid.
        let mut label = None;
        let user = match user_field {
            Some((_, value)) => match &value.value {
                Scalar::Text(text) if !text.trim().is_empty() => match check_user(text.trim()) {
                    Ok(()) => Some((text.trim().to_string(), &value.referenced)),
                    Err(invalid) => {
                        self.problems.push(
                            Code::InvalidUser,
                            at(&value.referenced),
                            None,
                            invalid.to_string(),
                        );
                        label = Some(quoted(text.trim()));
                        None
                    }
                },
                Scalar::Text(_) | Scalar::Null => {
                    self.problems.push(
                        Code::EmptyUser,
                        at(&value.referenced),
                        None,
                        "user is blank; give the userPrincipalName or object id".to_string(),
                    );
                    None
                }
                other => {
                    self.problems.push(
                        Code::WrongType,
                        at(&value.referenced),
                        None,
                        format!(
                            "user must be a userPrincipalName or object id written as text, \
                             not {}",
                            other.as_raw().describe()
                        ),
                    );
                    None
                }
            },
            None => {
                self.problems.push(
                    Code::EmptyUser,
                    entry_position,
                    None,
                    "this entry has no user; add `user:` with the userPrincipalName or object id"
                        .to_string(),
                );
                None
            }
        };
        let name = user.as_ref().map(|(name, _)| name.as_str());
        let subject = name
            .map(str::to_string)
            .or(label)
            .map_or_else(String::new, |name| format!("{name}: "));
        let mut settings = Settings::default();
        let mut seen = HashSet::new();
        for (key, value) in &fields {
            if !self.first_time(&mut seen, key) || key.value == USER_KEY {
                continue;
            }
            self.set_field(&mut settings, key, value, &subject, name, false);
        }
        if let Some((name, location)) = user {
            self.user_positions
                .push((location.line(), location.column()));
            self.users
                .push(settings.for_user(name, Origin::Line(origin_line)));
        }
    }

    /// The entry's fields, or `None` after reporting that it is not a mapping.
    fn mapping_or_report(
        &mut self,
        entry: Spanned<Entry>,
        what: &str,
    ) -> Option<Vec<(Spanned<String>, Spanned<Scalar>)>> {
        match entry.value {
            Entry::Mapping(fields) => Some(fields),
            Entry::Other(kind) => {
                self.problems.push(
                    Code::WrongType,
                    at(&entry.referenced),
                    None,
                    format!(
                        "{what} must be a mapping of fields such as `preferredMethod: push`, \
                         not {}",
                        kind.describe()
                    ),
                );
                None
            }
        }
    }

    /// Whether `key` is new in its mapping; reports it when it is not.
    fn first_time(&mut self, seen: &mut HashSet<String>, key: &Spanned<String>) -> bool {
        if seen.insert(key.value.clone()) {
            return true;
        }
        self.problems.push(
            Code::DuplicateField,
            at(&key.referenced),
            None,
            format!(
                "{} is given twice in this mapping; keep one",
                quoted(&key.value)
            ),
        );
        false
    }

    fn set_field(
        &mut self,
        settings: &mut Settings,
        key: &Spanned<String>,
        value: &Spanned<Scalar>,
        subject: &str,
        user: Option<&str>,
        in_defaults: bool,
    ) {
        let Some(field) = Field::ALL
            .iter()
            .copied()
            .find(|field| field.as_str() == key.value)
        else {
            let allowed: Vec<&str> = if in_defaults {
                Field::ALL.iter().map(|field| field.as_str()).collect()
            } else {
                std::iter::once(USER_KEY)
                    .chain(Field::ALL.iter().map(|field| field.as_str()))
                    .collect()
            };
            let message = unknown_field_message(subject, &key.value, &allowed);
            self.problems
                .push(Code::UnknownField, at(&key.referenced), user, message);
            return;
        };
        let items = value.value.items();
        let raw = match &value.value {
            Scalar::List(_) => RawValue::List(&items),
            single => single.as_raw(),
        };
        if let Err(problem) = settings.set(field, raw, subject) {
            self.problems
                .push(problem.code, at(&value.referenced), user, problem.message);
        }
    }

    /// `protect:`: a list of users, each checked like an entry's `user:`, none twice.
    fn protect(&mut self, node: &Spanned<policy::Node>) {
        self.protect = check_protect(node, &mut self.problems);
    }

    /// `maxChanges:`: a whole number of writes, 0 or more.
    fn max_changes(&mut self, node: &Spanned<policy::Node>) {
        self.max_changes = check_max_changes(node, &mut self.problems);
    }

    /// `allowMfaGap:`: true or false.
    fn allow_mfa_gap(&mut self, node: &Spanned<policy::Node>) {
        match &node.value {
            policy::Node::Bool(allow) => self.allow_mfa_gap = *allow,
            other => self.problems.push(
                Code::InvalidBool,
                at(&node.referenced),
                None,
                format!(
                    "allowMfaGap must be true or false (true disables per-user MFA even for \
                     users no Conditional Access policy requires MFA for), not {}",
                    other.describe()
                ),
            ),
        }
    }

    fn unknown_top_level(&mut self, key: &Spanned<String>) {
        let message = unknown_field_message("", &key.value, &TOP_LEVEL_KEYS);
        self.problems
            .push(Code::UnknownField, at(&key.referenced), None, message);
    }
}

/// `protect:`: a list of users, each checked like an entry's `user:`, none twice; the valid
/// entries, trimmed, in file order (also a tenants file's per-tenant `protect:`).
pub(super) fn check_protect(node: &Spanned<policy::Node>, problems: &mut Problems) -> Vec<String> {
    let mut protect = Vec::new();
    let items = match &node.value {
        policy::Node::List(items) => items,
        policy::Node::Null => {
            problems.push(
                Code::NullValue,
                at(&node.referenced),
                None,
                "protect is null; list the accounts never to write \
                     (`protect: [breakglass@contoso.com]`), or leave the key out"
                    .to_string(),
            );
            return Vec::new();
        }
        other => {
            problems.push(
                Code::WrongType,
                at(&node.referenced),
                None,
                format!(
                    "protect must be a list of userPrincipalNames or object ids \
                         (`protect: [breakglass@contoso.com]`), not {}",
                    other.describe()
                ),
            );
            return Vec::new();
        }
    };
    let mut positions = Vec::with_capacity(items.len());
    for item in items {
        let position = (item.referenced.line(), item.referenced.column());
        match &item.value {
            policy::Node::Text(text) if !text.trim().is_empty() => match check_user(text.trim()) {
                Ok(()) => {
                    protect.push(text.trim().to_string());
                    positions.push(position);
                }
                Err(invalid) => problems.push(
                    Code::InvalidUser,
                    at(&item.referenced),
                    None,
                    format!("protect: {invalid}"),
                ),
            },
            policy::Node::Text(_) | policy::Node::Null => problems.push(
                Code::EmptyUser,
                at(&item.referenced),
                None,
                "protect: an entry is blank; give the userPrincipalName or object id".to_string(),
            ),
            other => problems.push(
                Code::WrongType,
                at(&item.referenced),
                None,
                format!(
                    "protect: each entry must be a userPrincipalName or object id written \
                         as text, not {}",
                    other.describe()
                ),
            ),
        }
    }
    for (first, later) in duplicate_names(&protect, String::as_str) {
        let (first_line, first_column) = positions[first];
        let (line, column) = positions[later];
        let user = &protect[later];
        problems.push(
            Code::DuplicateUser,
            position(line, column),
            None,
            format!(
                "protect: {user} is listed twice: here and at line {first_line}, column \
                     {first_column} (users match case-insensitively); keep one"
            ),
        );
    }
    protect
}

/// `maxChanges:`: a whole number of writes, 0 or more (also a tenants file's per-tenant one).
pub(super) fn check_max_changes(
    node: &Spanned<policy::Node>,
    problems: &mut Problems,
) -> Option<u64> {
    let problem = match &node.value {
        policy::Node::Integer(limit) => match u64::try_from(*limit) {
            Ok(limit) => {
                return Some(limit);
            }
            Err(_) => (
                Code::OutOfRange,
                format!(
                    "maxChanges {limit} is below 0; give the most writes an apply may make \
                         (e.g. `maxChanges: 500`)"
                ),
            ),
        },
        policy::Node::Null => (
            Code::NullValue,
            "maxChanges is null; give the most writes an apply may make (e.g. \
                 `maxChanges: 500`), or leave the key out for no limit"
                .to_string(),
        ),
        other => (
            Code::WrongType,
            format!(
                "maxChanges must be a whole number of writes (e.g. `maxChanges: 500`), \
                     not {}",
                other.describe()
            ),
        ),
    };
    problems.push(problem.0, at(&node.referenced), None, problem.1);
    None
}

/// The top level, read with the collector as seed so users are checked as they stream by.
impl<'de> DeserializeSeed<'de> for &mut Collector {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(TopLevel(self))
    }
}

struct TopLevel<'c>(&'c mut Collector);

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping with `version: 1` and `users:`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let collector = self.0;
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            if !collector.top_level_keys.insert(key.value.clone()) {
                collector.problems.push(
                    Code::DuplicateField,
                    at(&key.referenced),
                    None,
                    format!(
                        "{} is given twice at the top level; keep one",
                        quoted(&key.value)
                    ),
                );
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            match key.value.as_str() {
                "version" => {
                    let value = map.next_value::<Spanned<Scalar>>()?;
                    collector.version(&key, value);
                }
                "defaults" => {
                    let entry = map.next_value::<Spanned<Entry>>()?;
                    // `defaults:` with nothing under it sets nothing.
                    if !matches!(entry.value, Entry::Other(Kind::Null)) {
                        collector.defaults(entry);
                    }
                }
                "policy" => {
                    collector.policy_seen = true;
                    let node = map.next_value::<Spanned<policy::Node>>()?;
                    collector.policy = policy::check(&node, &mut collector.problems);
                }
                "protect" => {
                    let node = map.next_value::<Spanned<policy::Node>>()?;
                    collector.protect(&node);
                }
                "maxChanges" => {
                    let node = map.next_value::<Spanned<policy::Node>>()?;
                    collector.max_changes(&node);
                }
                "allowMfaGap" => {
                    let node = map.next_value::<Spanned<policy::Node>>()?;
                    collector.allow_mfa_gap(&node);
                }
                "allUsers" => {
                    let node = map.next_value::<Spanned<policy::Node>>()?;
                    collector.selectors.all_users =
                        super::selectors::check_all_users(&node, &mut collector.problems);
                }
                "groups" => {
                    let node = map.next_value::<Spanned<policy::Node>>()?;
                    collector.selectors.groups =
                        super::selectors::check_groups(&node, &mut collector.problems);
                }
                "exclude" => {
                    let node = map.next_value::<Spanned<policy::Node>>()?;
                    collector.selectors.exclude =
                        super::selectors::check_exclude(&node, &mut collector.problems);
                }
                "users" => {
                    collector.users_seen = true;
                    map.next_value_seed(Users {
                        collector: &mut *collector,
                        key: &key,
                    })?;
                }
                _ => {
                    collector.unknown_top_level(&key);
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    /// An empty file: `finish` reports the missing version and users.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.0.not_a_mapping(Kind::List);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        self.0.not_a_mapping(Kind::Scalar(RawScalar::text(text)));
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        self.0.not_a_mapping(Kind::Scalar(RawScalar::Bool(value)));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.0
            .not_a_mapping(Kind::Scalar(RawScalar::Number(value.to_string())));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.0
            .not_a_mapping(Kind::Scalar(RawScalar::Number(value.to_string())));
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.0
            .not_a_mapping(Kind::Scalar(RawScalar::Number(value.to_string())));
        Ok(())
    }
}

impl Collector {
    fn not_a_mapping(&mut self, kind: Kind) {
        // `finish` would add "no version" and "no users"; this one problem says it all.
        self.version_seen = true;
        self.users_seen = true;
        self.problems.push(
            Code::WrongType,
            position(1, 1),
            None,
            format!(
                "the manifest must be a mapping with `version: {SUPPORTED_VERSION}` and \
                 `users:`, not {}",
                kind.describe()
            ),
        );
    }
}

/// The value of `users:`: a list of entries, each checked as soon as it is read.
struct Users<'c, 'k> {
    collector: &'c mut Collector,
    key: &'k Spanned<String>,
}

impl<'de> DeserializeSeed<'de> for Users<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Users<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of user entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(entry) = seq.next_element::<Spanned<Entry>>()? {
            self.collector.user(entry);
        }
        Ok(())
    }

    /// `users:` with nothing under it: no users, like `users: []`.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.wrong(Kind::Mapping);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        self.wrong(Kind::Scalar(RawScalar::text(text)));
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        self.wrong(Kind::Scalar(RawScalar::Bool(value)));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.wrong(Kind::Scalar(RawScalar::Number(value.to_string())));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.wrong(Kind::Scalar(RawScalar::Number(value.to_string())));
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.wrong(Kind::Scalar(RawScalar::Number(value.to_string())));
        Ok(())
    }
}

impl Users<'_, '_> {
    fn wrong(self, kind: Kind) {
        self.collector.problems.push(
            Code::WrongType,
            at(&self.key.referenced),
            None,
            format!(
                "users must be a list of entries (`- user: megan@contoso.com`), not {}",
                kind.describe()
            ),
        );
    }
}

/// A single YAML value as written, whatever its type, so a bad one is reported, not fatal.
#[derive(Clone, Debug, PartialEq)]
enum RawScalar {
    Text(String),
    Bool(bool),
    /// An integer or float, as Rust prints it (`1`, `2.5`).
    Number(String),
}

impl RawScalar {
    fn text(text: &str) -> RawScalar {
        RawScalar::Text(text.to_string())
    }
}

/// The value of a field in an entry: a single value, null, or a collection where a single
/// value belongs. Deserialized with `deserialize_any` (not an untagged enum, which would
/// buffer the value and lose its position inside `Spanned`).
#[derive(Clone, Debug, PartialEq)]
enum Scalar {
    Text(String),
    Bool(bool),
    Number(String),
    Null,
    Collection(&'static str),
    /// A list, its items (a nested list or mapping is a `Collection` item).
    List(Vec<Scalar>),
}

impl Scalar {
    /// The value as a single value: a list is `a list`.
    fn as_raw(&self) -> RawValue<'_> {
        match self {
            Scalar::Text(text) => RawValue::Text(text),
            Scalar::Bool(value) => RawValue::Bool(*value),
            Scalar::Number(text) => RawValue::Number(text),
            Scalar::Null => RawValue::Null,
            Scalar::Collection(kind) => RawValue::Collection(kind),
            Scalar::List(_) => RawValue::Collection("a list"),
        }
    }

    /// The items of a list, as single values (empty for anything else).
    fn items(&self) -> Vec<RawValue<'_>> {
        match self {
            Scalar::List(items) => items.iter().map(Scalar::as_raw).collect(),
            _ => Vec::new(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(text.to_string()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(text))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Scalar, E> {
        Ok(Scalar::Number(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Scalar, E> {
        Ok(Scalar::Number(value.to_string()))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Scalar, E> {
        Ok(Scalar::Number(value.to_string()))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Scalar, E> {
        Ok(Scalar::Number(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Scalar, E> {
        // `{:?}` keeps the point (`1.0`), so `version: 1.0` is not mistaken for `1`.
        Ok(Scalar::Number(format!("{value:?}")))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Scalar>()? {
            items.push(item);
        }
        Ok(Scalar::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Collection("a mapping"))
    }
}

/// What a non-mapping entry was, for the message.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Null,
    List,
    Mapping,
    Scalar(RawScalar),
}

impl Kind {
    fn describe(&self) -> String {
        match self {
            Kind::Null => "an empty value".to_string(),
            Kind::List => "a list".to_string(),
            Kind::Mapping => "a mapping".to_string(),
            Kind::Scalar(RawScalar::Text(text)) => format!("the text {}", quoted(text)),
            Kind::Scalar(RawScalar::Bool(value)) => format!("the value {value}"),
            Kind::Scalar(RawScalar::Number(text)) => format!("the number {text}"),
        }
    }
}

/// One entry under `users:` (or `defaults:`): its key/value pairs in file order, repeats
/// included, or what it was instead of a mapping.
#[derive(Clone, Debug, PartialEq)]
enum Entry {
    Mapping(Vec<(Spanned<String>, Spanned<Scalar>)>),
    Other(Kind),
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Entry, D::Error> {
        deserializer.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping of fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        let mut fields = Vec::with_capacity(4);
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Scalar>>()?;
            fields.push((key, value));
        }
        Ok(Entry::Mapping(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Entry::Other(Kind::List))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
        Ok(Entry::Other(Kind::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Entry, E> {
        Ok(Entry::Other(Kind::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Entry, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Entry, E> {
        Ok(Entry::Other(Kind::Scalar(RawScalar::text(text))))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Entry, E> {
        Ok(Entry::Other(Kind::Scalar(RawScalar::Bool(value))))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Entry, E> {
        Ok(Entry::Other(Kind::Scalar(RawScalar::Number(
            value.to_string(),
        ))))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Entry, E> {
        Ok(Entry::Other(Kind::Scalar(RawScalar::Number(
            value.to_string(),
        ))))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Entry, E> {
        Ok(Entry::Other(Kind::Scalar(RawScalar::Number(
            value.to_string(),
        ))))
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use crate::manifest::{Problem, load};
    use crate::model::{PerUserMfaState, PreferredMethod, PreferredMethods};

    /// Writes `text` to a temporary `users.yaml` and loads it.
    fn load_yaml(text: &str) -> Result<Manifest, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.yaml");
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    fn problems(text: &str) -> Vec<Problem> {
        match load_yaml(text) {
            Ok(manifest) => panic!("expected problems, got {manifest:?}"),
            Err(error) => error.problems().to_vec(),
        }
    }

    /// `(code, line, column)` of every problem, in order.
    fn where_(text: &str) -> Vec<(&'static str, u64, u64)> {
        problems(text)
            .iter()
            .map(|problem| match problem.location {
                Location::Yaml { line, column } => (problem.code.as_str(), line, column),
                Location::Csv { .. } => panic!("CSV location in YAML: {problem:?}"),
            })
            .collect()
    }

    const EXAMPLE: &str = "\
version: 1
defaults:                      # optional
  systemPreferred: true
users:
  - user: megan@contoso.com    # userPrincipalName or object id (GUID)
    preferredMethod: oath
    perUserMfaState: disabled
  - user: 071cc716-8147-4397-a5ba-b2105951cc0b
    preferredMethod: push
    systemPreferred: false
";

    #[test]
    fn design_example_applies_defaults_and_lets_entries_override_them() {
        let manifest = load_yaml(EXAMPLE).unwrap();
        assert_eq!(
            manifest.users,
            vec![
                DesiredUser {
                    user: "megan@contoso.com".into(),
                    preferred_method: Some(PreferredMethods::one(PreferredMethod::Oath)),
                    system_preferred: Some(true),
                    per_user_mfa_state: Some(PerUserMfaState::Disabled),
                    origin: Origin::Line(5),
                },
                DesiredUser {
                    user: "071cc716-8147-4397-a5ba-b2105951cc0b".into(),
                    preferred_method: Some(PreferredMethods::one(PreferredMethod::Push)),
                    system_preferred: Some(false),
                    per_user_mfa_state: None,
                    origin: Origin::Line(8),
                },
            ]
        );
        assert!(manifest.source.ends_with("users.yaml"));
    }

    #[test]
    fn defaults_written_after_users_still_apply() {
        let manifest = load_yaml(
            "users:\n  - user: a@x.com\n  - user: b@x.com\n    perUserMfaState: enforced\n\
             defaults:\n  perUserMfaState: enabled\nversion: 1\n",
        )
        .unwrap();
        let states: Vec<_> = manifest
            .users
            .iter()
            .map(|u| u.per_user_mfa_state)
            .collect();
        assert_eq!(
            states,
            [
                Some(PerUserMfaState::Enabled),
                Some(PerUserMfaState::Enforced)
            ]
        );
    }

    #[test]
    fn values_match_case_insensitively_and_come_out_in_graph_spelling() {
        let manifest = load_yaml(
            "version: 1\nusers:\n  - user: ' Megan@Contoso.com '\n    preferredMethod: SMS\n\
             \x20   systemPreferred: \"TRUE\"\n    perUserMfaState: Enabled\n\
             \x20 - user: b@x.com\n    preferredMethod: VoiceAlternateMOBILE\n    systemPreferred: False\n",
        )
        .unwrap();
        let megan = &manifest.users[0];
        assert_eq!(&*megan.user, "Megan@Contoso.com");
        assert_eq!(
            megan.preferred_method,
            Some(PreferredMethods::one(PreferredMethod::Sms))
        );
        assert_eq!(megan.system_preferred, Some(true));
        assert_eq!(megan.per_user_mfa_state, Some(PerUserMfaState::Enabled));
        let b = &manifest.users[1];
        assert_eq!(
            b.preferred_method,
            Some(PreferredMethods::one(PreferredMethod::VoiceAlternateMobile))
        );
        assert_eq!(b.system_preferred, Some(false));
    }

    #[test]
    fn no_users_is_fine_but_no_users_key_is_not() {
        assert!(
            load_yaml("version: 1\nusers: []\n")
                .unwrap()
                .users
                .is_empty()
        );
        assert!(load_yaml("version: 1\nusers:\n").unwrap().users.is_empty());
        assert_eq!(where_("version: 1\n"), [("missing-users", 1, 1)]);
    }

    #[test]
    fn empty_file_needs_version_and_users() {
        assert_eq!(
            where_(""),
            [("unsupported-version", 1, 1), ("missing-users", 1, 1)]
        );
    }

    #[test]
    fn version_must_be_the_integer_one() {
        assert_eq!(where_("users: []\n"), [("unsupported-version", 1, 1)]);
        assert_eq!(
            where_("version: 2\nusers: []\n"),
            [("unsupported-version", 1, 10)]
        );
        assert_eq!(
            where_("version: 1.0\nusers: []\n"),
            [("unsupported-version", 1, 10)]
        );
        assert_eq!(
            where_("users: []\nversion: \"1\"\n"),
            [("unsupported-version", 2, 10)]
        );
        let message = &problems("version: 2\nusers: []\n")[0].message;
        assert_eq!(
            message,
            "version 2 is not supported; this mfactl reads `version: 1`"
        );
    }

    #[test]
    fn syntax_error_is_reported_with_its_position_after_earlier_problems() {
        let found = problems(
            "version: 1\nusers:\n  - user: a@x.com\n    preferredMethod: fax\n  - user: [b@x.com\n",
        );
        let codes: Vec<_> = found.iter().map(|p| p.code).collect();
        assert_eq!(codes, [Code::UnknownMethod, Code::YamlSyntax]);
        let Location::Yaml { line, .. } = found[1].location else {
            panic!("not a YAML location")
        };
        assert!(line >= 5, "syntax error at line {line}");
        assert!(!found[1].message.contains('\n'));
    }

    #[test]
    fn unknown_fields_are_reported_at_every_level_with_a_suggestion() {
        let text = "\
version: 1
default:
  systemPreferred: true
defaults:
  systemPrefered: true
users:
  - user: megan@contoso.com
    preferedMethod: oath
    department: sales
    userPreferredMethodForSecondaryAuthentication: push
";
        assert_eq!(
            where_(text),
            [
                ("unknown-field", 2, 1),
                ("unknown-field", 5, 3),
                ("unknown-field", 8, 5),
                ("unknown-field", 9, 5),
                ("unknown-field", 10, 5),
            ]
        );
        let messages: Vec<String> = problems(text).into_iter().map(|p| p.message).collect();
        assert_eq!(
            messages[0],
            "unknown field \"default\"; did you mean defaults? allowed here: version, defaults, users, allUsers, groups, exclude, policy, protect, maxChanges, allowMfaGap"
        );
        assert_eq!(
            messages[1],
            "defaults: unknown field \"systemPrefered\"; did you mean systemPreferred? \
             allowed here: preferredMethod, systemPreferred, perUserMfaState"
        );
        assert_eq!(
            messages[2],
            "megan@contoso.com: unknown field \"preferedMethod\"; did you mean preferredMethod? \
             allowed here: user, preferredMethod, systemPreferred, perUserMfaState"
        );
        assert!(!messages[3].contains("did you mean"), "{}", messages[3]);
        assert!(
            messages[4].contains("did you mean preferredMethod?"),
            "{}",
            messages[4]
        );
    }

    #[test]
    fn every_value_problem_points_at_the_value() {
        let text = "\
version: 1
users:
  - user: megan@contoso.com
    preferredMethod: fax
    systemPreferred: yes
    perUserMfaState: on
  - user: b@x.com
    preferredMethod: 3
    systemPreferred: [true]
    perUserMfaState: ~
";
        assert_eq!(
            where_(text),
            [
                ("unknown-method", 4, 22),
                ("invalid-bool", 5, 22),
                ("unknown-state", 6, 22),
                ("unknown-method", 8, 22),
                ("invalid-bool", 9, 22),
                ("null-value", 10, 22),
            ]
        );
        let found = problems(text);
        assert_eq!(
            found[0].message,
            "megan@contoso.com: preferredMethod \"fax\" is not one of push, oath, voiceMobile, \
             voiceAlternateMobile, voiceOffice, sms"
        );
        assert_eq!(found[0].user.as_deref(), Some("megan@contoso.com"));
        assert_eq!(
            found[1].message,
            "megan@contoso.com: systemPreferred \"yes\" is not true or false"
        );
        assert_eq!(
            found[2].message,
            "megan@contoso.com: perUserMfaState \"on\" is not one of disabled, enabled, enforced"
        );
        assert_eq!(
            found[5].message,
            "b@x.com: perUserMfaState is null; leave the field out to leave it unmanaged, or give a value"
        );
    }

    #[test]
    fn null_values_in_all_spellings_are_reported() {
        let text = "version: 1\nusers:\n  - user: a@x.com\n    preferredMethod:\n    systemPreferred: null\n    perUserMfaState: ~\n";
        assert_eq!(
            where_(text),
            [
                ("null-value", 4, 20),
                ("null-value", 5, 22),
                ("null-value", 6, 22)
            ]
        );
    }

    #[test]
    fn entries_without_a_user_are_reported() {
        let text = "\
version: 1
users:
  - preferredMethod: push
  - user: ''
  - user:
  - user: '   '
    systemPreferred: true
";
        assert_eq!(
            where_(text),
            [
                ("empty-user", 3, 5),
                ("empty-user", 4, 11),
                ("empty-user", 5, 9),
                ("empty-user", 6, 11)
            ]
        );
    }

    #[test]
    fn duplicate_users_point_at_both_entries() {
        let text = "\
version: 1
users:
  - user: megan@contoso.com
  - user: b@x.com
  - user: MEGAN@Contoso.com
  - user: megan@contoso.com
";
        let found = problems(text);
        assert_eq!(
            where_(text),
            [("duplicate-user", 5, 11), ("duplicate-user", 6, 11)]
        );
        assert_eq!(
            found[0].message,
            "MEGAN@Contoso.com is listed twice: here and at line 3, column 11 (users match \
             case-insensitively); keep one entry"
        );
        assert!(found[1].message.contains("at line 3, column 11"));
        assert_eq!(found[0].user.as_deref(), Some("MEGAN@Contoso.com"));
    }

    #[test]
    fn a_user_in_defaults_is_reported() {
        let text = "version: 1\ndefaults:\n  user: megan@contoso.com\n  systemPreferred: true\nusers: []\n";
        assert_eq!(where_(text), [("user-in-defaults", 3, 3)]);
    }

    #[test]
    fn repeated_keys_and_wrong_shapes_are_reported() {
        let text = "\
version: 1
defaults: push
users:
  - user: a@x.com
    systemPreferred: true
    systemPreferred: false
  - b@x.com
  - [c@x.com]
  -
";
        assert_eq!(
            where_(text),
            [
                ("wrong-type", 2, 11),
                ("duplicate-field", 6, 5),
                ("wrong-type", 7, 5),
                ("wrong-type", 8, 5),
                ("wrong-type", 9, 4),
            ]
        );
        assert_eq!(where_("- user: a@x.com\n"), [("wrong-type", 1, 1)]);
        assert_eq!(
            where_("version: 1\nusers: {user: a@x.com}\n"),
            [("wrong-type", 2, 1)]
        );
        assert_eq!(
            where_("version: 1\nversion: 1\nusers: []\n"),
            [("duplicate-field", 2, 1)]
        );
    }

    #[test]
    fn every_problem_in_a_file_is_reported_and_rendered_in_order() {
        let text = "\
version: 1
users:
  - user: megan@contoso.com
    preferredMethod: fax
  - user: b@x.com
    preferedMethod: push
    systemPreferred: ~
";
        let error = load_yaml(text).unwrap_err();
        let rendered = error.to_string();
        let path = error.path().display().to_string();
        let expected = format!(
            "{path}:4:22: error[unknown-method]: megan@contoso.com: preferredMethod \"fax\" is not \
             one of push, oath, voiceMobile, voiceAlternateMobile, voiceOffice, sms\n\
             {path}:6:5: error[unknown-field]: b@x.com: unknown field \"preferedMethod\"; did you mean \
             preferredMethod? allowed here: user, preferredMethod, systemPreferred, perUserMfaState\n\
             {path}:7:22: error[null-value]: b@x.com: systemPreferred is null; leave the field out to \
             leave it unmanaged, or give a value\n\
             3 problems in {path}; nothing was sent"
        );
        assert_eq!(rendered, expected);
    }

    #[test]
    fn protect_and_max_changes_are_read() {
        let manifest = load_yaml(
            "version: 1\nprotect: [BreakGlass@contoso.com, ' 071cc716-8147-4397-a5ba-b2105951cc0b ']\n\
             maxChanges: 500\nusers:\n  - user: megan@contoso.com\n    preferredMethod: push\n",
        )
        .unwrap();
        assert_eq!(
            manifest.protect,
            [
                "BreakGlass@contoso.com",
                "071cc716-8147-4397-a5ba-b2105951cc0b"
            ]
        );
        assert_eq!(manifest.max_changes, Some(500));
        let bare = load_yaml("version: 1\nusers: []\nprotect: []\nmaxChanges: 0\n").unwrap();
        assert!(bare.protect.is_empty());
        assert_eq!(bare.max_changes, Some(0));
        let none = load_yaml("version: 1\nusers: []\n").unwrap();
        assert_eq!((none.protect.len(), none.max_changes), (0, None));
    }

    #[test]
    fn allow_mfa_gap_is_a_boolean() {
        let allowed = load_yaml("version: 1\nallowMfaGap: true\nusers: []\n").unwrap();
        assert!(allowed.allow_mfa_gap);
        assert!(!load_yaml("version: 1\nusers: []\n").unwrap().allow_mfa_gap);
        let problems = problems("version: 1\nallowMfaGap: yes\nusers: []\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, Code::InvalidBool);
        assert_eq!(problems[0].location, position(2, 14));
    }

    #[test]
    fn every_protect_and_max_changes_problem_points_at_its_value() {
        let text = "\
version: 1
protect:
  - breakglass@contoso.com
  - megan@contoso
  - ''
  - 42
  - [a@x.com]
  - BREAKGLASS@contoso.com
  - \"adele\\u202Emoc@contoso.com\"
maxChanges: -1
users: []
";
        assert_eq!(
            where_(text),
            [
                ("invalid-user", 4, 5),
                ("empty-user", 5, 5),
                ("wrong-type", 6, 5),
                ("wrong-type", 7, 5),
                ("duplicate-user", 8, 5),
                ("invalid-user", 9, 5),
                ("out-of-range", 10, 13),
            ]
        );
        let found = problems(text);
        assert!(
            found[0]
                .message
                .starts_with("protect: user \"megan@contoso\" is not valid: "),
            "{}",
            found[0].message
        );
        assert_eq!(
            found[4].message,
            "protect: BREAKGLASS@contoso.com is listed twice: here and at line 3, column 5 \
             (users match case-insensitively); keep one"
        );
        assert!(
            found[5].message.contains("\\u{202e}"),
            "{}",
            found[5].message
        );
        assert_eq!(
            where_("version: 1\nprotect: breakglass@contoso.com\nmaxChanges: \"500\"\nusers: []\n"),
            [("wrong-type", 2, 10), ("wrong-type", 3, 13)]
        );
        assert_eq!(
            where_("version: 1\nprotect:\nmaxChanges: 2.5\nusers: []\n"),
            [("null-value", 2, 8), ("wrong-type", 3, 13)]
        );
        assert_eq!(
            problems("version: 1\nmaxChanges: ~\nusers: []\n")[0].code,
            Code::NullValue
        );
    }

    #[test]
    fn a_policy_file_takes_no_guards() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(
            &path,
            "version: 1\nprotect: [breakglass@contoso.com]\nmaxChanges: 5\npolicy:\n  \
             systemCredentialPreferences:\n    state: enabled\n",
        )
        .unwrap();
        let error = crate::manifest::load_policy(&path).unwrap_err();
        assert_eq!(error.problems().len(), 1, "{error}");
        assert!(
            error.problems()[0]
                .message
                .contains("`maxChanges:` and `allowMfaGap:` belong in a YAML manifest"),
            "{error}"
        );
    }

    fn load_bytes(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.yaml");
        std::fs::write(&path, bytes).unwrap();
        load(&path)
    }

    #[test]
    fn users_must_be_guids_or_plausible_user_principal_names() {
        let text = r#"version: 1
users:
  - user: ..
    preferredMethod: fax
  - user: "."
  - user: megan@contoso
  - user: "megan@contoso.com\nPlan: 0 users to change"
  - user: "\e[2Jlee@contoso.com"
  - user: "adele\u202Emoc.osotnoc@contoso.com"
  - user: "{071cc716-8147-4397-a5ba-b2105951cc0b}"
  - user: adele_fabrikam.com#EXT#@contoso.onmicrosoft.com
  - user: $o'neil@contoso.com
  - user: 071CC716-8147-4397-A5BA-B2105951CC0B
"#;
        assert_eq!(
            where_(text),
            [
                ("invalid-user", 3, 11),
                ("unknown-method", 4, 22),
                ("invalid-user", 5, 11),
                ("invalid-user", 6, 11),
                ("invalid-user", 7, 11),
                ("invalid-user", 8, 11),
                ("invalid-user", 9, 11),
                ("invalid-user", 10, 11),
            ]
        );
        let found = problems(text);
        assert_eq!(
            found[1].message,
            format!(
                "\"..\": preferredMethod \"fax\" is not one of {}",
                PreferredMethod::expected()
            )
        );
        assert!(
            found[4]
                .message
                .contains("\"megan@contoso.com\\nPlan: 0 users to change\"")
        );
        assert!(found[5].message.contains("\"\\u{1b}[2Jlee@contoso.com\""));
        assert!(
            found[6]
                .message
                .contains("\"adele\\u{202e}moc.osotnoc@contoso.com\"")
        );
        assert!(found.iter().all(|problem| problem.user.is_none()));
        for problem in &found {
            assert!(
                !problem
                    .to_string()
                    .chars()
                    .any(crate::manifest::is_hidden_or_control)
            );
        }
        let valid = load_yaml(
            "version: 1\nusers:\n  - user: adele_fabrikam.com#EXT#@contoso.onmicrosoft.com\n  \
             - user: \"$o'neil@contoso.com\"\n  - user: 071CC716-8147-4397-A5BA-B2105951CC0B\n",
        )
        .unwrap();
        assert_eq!(valid.users.len(), 3);
    }

    #[test]
    fn keys_from_the_file_are_escaped_in_messages() {
        let text = "version: 1\nusers:\n  - user: a@x.com\n    \"pre\\u202Ef\": push\n    \"pre\\u202Ef\": push\n";
        let found = problems(text);
        assert_eq!(found.len(), 2);
        assert!(
            found[0].message.contains("\"pre\\u{202e}f\""),
            "{}",
            found[0].message
        );
        assert_eq!(
            found[1].message,
            "\"pre\\u{202e}f\" is given twice in this mapping; keep one"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_named_by_line_and_column_after_earlier_problems() {
        let text = b"version: 1\nusers:\n  - user: a@x.com\n    preferredMethod: fax\n  - user: b\xe9@x.com\n    preferredMethod: pu\n  - user: [c@x.com\n";
        let error = load_bytes(text).unwrap_err();
        let found: Vec<_> = error
            .problems()
            .iter()
            .map(|p| (p.code.as_str(), p.location.to_string()))
            .collect();
        // Nothing after the bad byte is reported: the parser saw the file end there.
        assert_eq!(
            found,
            [
                ("unknown-method", "4:22".to_string()),
                ("yaml-syntax", "5:12".to_string())
            ]
        );
        assert_eq!(
            error.problems()[1].message,
            "the file is not UTF-8 text here (byte 0xE9); it was probably saved in a legacy \
             encoding such as Windows-1252: save it as UTF-8"
        );
        // A sequence cut by the end of the file; one after multibyte text on its line; a NUL.
        let cut = load_bytes(b"version: 1\nusers: []\n# caf\xc3").unwrap_err();
        assert_eq!(cut.problems()[0].location.to_string(), "3:6");
        let after =
            load_bytes("version: 1\nusers: []\n# café \u{1F600} \u{ff}".as_bytes()).unwrap();
        assert!(after.users.is_empty());
        let wide = load_bytes(b"version: 1\nusers: []\n# caf\xc3\xa9 \xff\n").unwrap_err();
        assert_eq!(wide.problems()[0].location.to_string(), "3:8");
        let nul = load_bytes(b"version: 1\nusers:\n  - user: a@x.com\0\n").unwrap_err();
        assert_eq!(nul.problems()[0].location.to_string(), "3:18");
        assert!(
            nul.problems()[0]
                .message
                .starts_with("the file holds a NUL byte (\\0) here")
        );
    }

    /// Hands over one byte per read, to split every UTF-8 sequence across reads.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            out[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn the_text_check_passes_split_sequences_and_stops_at_the_first_bad_byte() {
        let text = "naïve ✓ 😀\nok\n".as_bytes();
        let found = Rc::new(Cell::new(None));
        let mut passed = Vec::new();
        TextCheck::new(Trickle(text), found.clone())
            .read_to_end(&mut passed)
            .unwrap();
        assert_eq!(passed, text);
        assert_eq!(found.get(), None);

        let bad = b"ab\n\xc3\xa9\xe2\x9c\x93x\xe2\x9cy";
        let mut passed = Vec::new();
        TextCheck::new(Trickle(bad), found.clone())
            .read_to_end(&mut passed)
            .unwrap();
        assert_eq!(passed, &bad[..9], "everything before the cut sequence");
        assert_eq!(
            found.get(),
            Some(BadText {
                line: 2,
                column: 4,
                byte: 0xe2
            })
        );
    }

    #[test]
    fn utf16_yaml_is_decoded_by_the_parser() {
        let text =
            "\u{feff}version: 1\nusers:\n  - user: megan@contoso.com\n    preferredMethod: push\n";
        for bytes in [
            text.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
            text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        ] {
            let manifest = load_bytes(&bytes).unwrap();
            assert_eq!(&*manifest.users[0].user, "megan@contoso.com");
            assert_eq!(
                manifest.users[0].preferred_method,
                Some(PreferredMethods::one(PreferredMethod::Push))
            );
        }
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.yaml");
        let error = load(&path).unwrap_err();
        assert!(matches!(error, ManifestError::Read { .. }));
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot read {}: ", path.display())),
            "{error}"
        );
    }

    /// A streamed manifest keeps every entry, in order, with its line. Kept to 20,000 users so
    /// the debug test stays fast; `cargo bench --bench manifest` measures a million.
    #[test]
    fn many_users_stream_through_in_order() {
        assert_many_users_parse(20_000);
    }

    fn assert_many_users_parse(count: usize) {
        let mut text = String::from("version: 1\ndefaults:\n  systemPreferred: true\nusers:\n");
        let methods = ["push", "oath", "sms"];
        for index in 0..count {
            let method = methods[index % 3];
            write!(
                text,
                "  - user: user{index}@contoso.com\n    preferredMethod: {method}\n    perUserMfaState: enabled\n"
            )
            .unwrap();
        }
        let manifest = load_yaml(&text).unwrap();
        assert_eq!(manifest.users.len(), count);
        let last = manifest.users.last().unwrap();
        assert_eq!(
            last.user.to_string(),
            format!("user{}@contoso.com", count - 1)
        );
        assert_eq!(last.origin, Origin::Line(4 + 3 * (count as u64 - 1) + 1));
        assert_eq!(last.system_preferred, Some(true));
    }

    #[test]
    fn preferred_method_takes_an_ordered_list() {
        use PreferredMethod::*;
        let manifest = load_yaml(
            "version: 1\ndefaults:\n  preferredMethod: [push, OATH, sms]\nusers:\n  - user: a@contoso.com\n  \
             - user: b@contoso.com\n    preferredMethod:\n      - oath\n      - voiceMobile\n",
        )
        .unwrap();
        let lists = manifest.preferred_lists();
        assert_eq!(lists, vec![vec![Push, Oath, Sms], vec![Oath, VoiceMobile]]);
    }

    #[test]
    fn a_bad_preferred_method_list_is_reported_with_its_line() {
        let found = problems(
            "version: 1\nusers:\n  - user: a@contoso.com\n    preferredMethod: [push, fax]\n  \
             - user: b@contoso.com\n    preferredMethod: [sms, push, SMS]\n  - user: c@contoso.com\n    \
             preferredMethod: []\n",
        );
        let got: Vec<(&str, &str)> = found
            .iter()
            .map(|p| (p.code.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].0, "unknown-method");
        assert!(
            got[0]
                .1
                .contains("preferredMethod item 2 (\"fax\") is not one of push"),
            "{got:?}"
        );
        assert_eq!(got[1].0, "duplicate-method");
        assert!(got[1].1.contains("names sms twice"), "{got:?}");
        assert_eq!(got[2].0, "unknown-method");
        assert!(got[2].1.contains("an empty list"), "{got:?}");
        assert!(matches!(found[0].location, Location::Yaml { line: 4, .. }));
    }
}
