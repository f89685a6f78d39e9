//! What can be wrong with a manifest, said so that the admin can fix all of it in one go.
//!
//! Readers collect [`Problem`]s instead of stopping at the first one; [`ManifestError`] carries
//! them all and renders one compiler-style line per problem, so a 5,000-row file with forty bad
//! rows is fixed in one pass. Codes are stable: scripts and docs may match on them.
//! Nothing here reads files or decides what is valid; it only describes and renders.

use std::fmt;
use std::path::{Path, PathBuf};

use miette::Diagnostic;

use crate::model::Field;

/// The stable identifier of a kind of problem, printed as `error[CODE]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// The YAML does not parse (or has a shape serde cannot read), as reported by the parser;
    /// also bytes that are not UTF-8 text and NUL bytes.
    YamlSyntax,
    /// A CSV record cannot be read: a quote never closed, a cell that is not UTF-8 or holds a
    /// NUL byte, a wrong number of cells, or a UTF-16 file.
    CsvSyntax,
    /// `version:` is missing or is not `1`.
    UnsupportedVersion,
    /// A key (YAML) or column (CSV) that mfactl does not know.
    UnknownField,
    /// The same key twice in one YAML mapping, or the same column twice in a CSV header.
    DuplicateField,
    /// A value of the wrong kind where a mapping, list or single value belongs (`protect:` not a
    /// list, `maxChanges:` not a whole number).
    WrongType,
    /// The YAML has neither `users:` nor `policy:`, or the CSV has no `user` column.
    MissingUsers,
    /// `preferredMethod` is not one of Graph's values (or a list item is not), or is an empty
    /// list.
    UnknownMethod,
    /// A `preferredMethod` list names one method twice.
    DuplicateMethod,
    /// `systemPreferred` is not `true` or `false`.
    InvalidBool,
    /// `perUserMfaState` is not one of Graph's values.
    UnknownState,
    /// A user entry without a `user`, or with a blank one; a blank `protect:` entry.
    EmptyUser,
    /// A user (an entry's or a `protect:` entry) that is neither an object id (a GUID) nor a
    /// plausible userPrincipalName, or that holds control, bidi or invisible characters.
    InvalidUser,
    /// The same user (case-insensitively) in two entries, or twice in `protect:`.
    DuplicateUser,
    /// A field written as YAML null (`~`, `null` or nothing after the colon).
    NullValue,
    /// `user:` inside `defaults:`.
    UserInDefaults,
    /// A policy number outside its range (`snoozeDurationInDays` 0-14, `voiceReportingCode` 0-9),
    /// or a negative `maxChanges`.
    OutOfRange,
    /// A policy target without `id` or `targetType`, with a `targetType` that is not `group` or
    /// `user`, or a user named by display name.
    InvalidTarget,
    /// More policy targets than Entra takes (system-preferred MFA: one include, one exclude).
    TooManyTargets,
    /// A tenants file's `tenant:` that is neither a tenant id (GUID) nor a domain name.
    InvalidTenant,
    /// The same tenant (case-insensitively) twice in a tenants file.
    DuplicateTenant,
    /// A tenants file without `tenants:`, or with an empty list.
    MissingTenants,
}

impl Code {
    /// Every code, for documentation and tests.
    pub const ALL: &'static [Code] = &[
        Code::YamlSyntax,
        Code::CsvSyntax,
        Code::UnsupportedVersion,
        Code::UnknownField,
        Code::DuplicateField,
        Code::WrongType,
        Code::MissingUsers,
        Code::UnknownMethod,
        Code::DuplicateMethod,
        Code::InvalidBool,
        Code::UnknownState,
        Code::EmptyUser,
        Code::InvalidUser,
        Code::DuplicateUser,
        Code::NullValue,
        Code::UserInDefaults,
        Code::OutOfRange,
        Code::InvalidTarget,
        Code::TooManyTargets,
        Code::InvalidTenant,
        Code::DuplicateTenant,
        Code::MissingTenants,
    ];

    /// The code as printed, e.g. `unknown-method`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::YamlSyntax => "yaml-syntax",
            Code::CsvSyntax => "csv-syntax",
            Code::UnsupportedVersion => "unsupported-version",
            Code::UnknownField => "unknown-field",
            Code::DuplicateField => "duplicate-field",
            Code::WrongType => "wrong-type",
            Code::MissingUsers => "missing-users",
            Code::UnknownMethod => "unknown-method",
            Code::DuplicateMethod => "duplicate-method",
            Code::InvalidBool => "invalid-bool",
            Code::UnknownState => "unknown-state",
            Code::EmptyUser => "empty-user",
            Code::InvalidUser => "invalid-user",
            Code::DuplicateUser => "duplicate-user",
            Code::NullValue => "null-value",
            Code::UserInDefaults => "user-in-defaults",
            Code::OutOfRange => "out-of-range",
            Code::InvalidTarget => "invalid-target",
            Code::TooManyTargets => "too-many-targets",
            Code::InvalidTenant => "invalid-tenant",
            Code::DuplicateTenant => "duplicate-tenant",
            Code::MissingTenants => "missing-tenants",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in the file a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A YAML position, 1-based.
    Yaml { line: u64, column: u64 },
    /// A CSV row (the header is row 1) and, when one is to blame, the column as the header
    /// names it.
    Csv { row: u64, column: Option<String> },
}

impl Location {
    /// File order: by line and column, or by row (a row's problems stay in column order,
    /// which is the order they were found in).
    fn sort_key(&self) -> (u64, u64) {
        match self {
            Location::Yaml { line, column } => (*line, *column),
            Location::Csv { row, .. } => (*row, 0),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Yaml { line, column } => write!(f, "{line}:{column}"),
            Location::Csv { row, column: None } => write!(f, "row {row}"),
            // A header cell is file text: escaped like any quoted value.
            Location::Csv {
                row,
                column: Some(name),
            } => write!(f, "row {row}, column {}", escaped(name)),
        }
    }
}

/// One thing wrong with a manifest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct Problem {
    /// What kind of problem, stable across releases.
    pub code: Code,
    /// The manifest file.
    pub file: PathBuf,
    /// Where in the file.
    pub location: Location,
    /// The user the entry is for, when the entry names one.
    pub user: Option<String>,
    /// What is wrong and how to fix it, naming the user, field and value.
    pub message: String,
}

impl Problem {
    /// The problem as one line: `PATH:LINE:COL: error[CODE]: MESSAGE` for YAML,
    /// `PATH: row N, column NAME: error[CODE]: MESSAGE` for CSV.
    pub fn render(&self) -> String {
        let file = self.file.display();
        let (code, message) = (self.code, &self.message);
        match &self.location {
            location @ Location::Yaml { .. } => {
                format!("{file}:{location}: error[{code}]: {message}")
            }
            location @ Location::Csv { .. } => {
                format!("{file}: {location}: error[{code}]: {message}")
            }
        }
    }
}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
}

/// Why a manifest could not be loaded. Nothing is sent to Graph when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be opened or read (missing, unreadable, a directory...).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read and has problems; all of them are here, ordered by position.
    #[error("{}", render_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ManifestError {
    /// The manifest file.
    pub fn path(&self) -> &Path {
        match self {
            ManifestError::Read { path, .. } | ManifestError::Invalid { path, .. } => path,
        }
    }

    /// The problems found; empty for a read error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ManifestError::Read { .. } => &[],
            ManifestError::Invalid { problems, .. } => problems,
        }
    }
}

/// At most this many problems are printed; the count line still gives the total.
const SHOWN_PROBLEMS: usize = 1000;

fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for problem in problems.iter().take(SHOWN_PROBLEMS) {
        out.push_str(&problem.render());
        out.push('\n');
    }
    if problems.len() > SHOWN_PROBLEMS {
        out.push_str(&format!(
            "... and {} more (the first {SHOWN_PROBLEMS} are shown)\n",
            problems.len() - SHOWN_PROBLEMS
        ));
    }
    let count = problems.len();
    let noun = if count == 1 { "problem" } else { "problems" };
    out.push_str(&format!(
        "{count} {noun} in {}; nothing was sent",
        path.display()
    ));
    out
}

impl Diagnostic for ManifestError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(match self {
            ManifestError::Read { .. } => "manifest-read",
            ManifestError::Invalid { .. } => "manifest-invalid",
        }))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(match self {
            ManifestError::Read { .. } => {
                "check the path; the manifest is a .yaml file, or a .csv file with a header row"
                    .to_string()
            }
            ManifestError::Invalid { problems, .. } => {
                let noun = if problems.len() == 1 {
                    "problem"
                } else {
                    "problems"
                };
                let unknown_columns = problems.iter().any(|problem| {
                    problem.code == Code::UnknownField
                        && matches!(problem.location, Location::Csv { .. })
                });
                let skip = if unknown_columns {
                    "; to use an export with other columns (displayName, mail, ...) as it is, \
                     pass --ignore-unknown-columns (a misspelt known column is still reported)"
                } else {
                    ""
                };
                format!(
                    "fix the {noun} listed and run again; a field left out is not managed{skip}"
                )
            }
        }))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self {
            ManifestError::Read { .. } => None,
            ManifestError::Invalid { problems, .. } => Some(Box::new(
                problems.iter().map(|problem| problem as &dyn Diagnostic),
            )),
        }
    }
}

/// Collects problems for one file while a reader walks it.
#[derive(Debug)]
pub(crate) struct Problems {
    file: PathBuf,
    found: Vec<Problem>,
}

impl Problems {
    pub(crate) fn new(file: &Path) -> Problems {
        Problems {
            file: file.to_path_buf(),
            found: Vec::new(),
        }
    }

    /// Records a problem.
    pub(crate) fn push(
        &mut self,
        code: Code,
        location: Location,
        user: Option<&str>,
        message: String,
    ) {
        self.found.push(Problem {
            code,
            file: self.file.clone(),
            location,
            user: user.map(str::to_string),
            // Values are quoted with `quoted` where the message is built; this catches any
            // file text that reached a message another way (a parser's own message, a key).
            message: escaped(&message),
        });
    }

    /// Keeps only the problems `keep` accepts.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&Problem) -> bool) {
        self.found.retain(keep);
    }

    /// How many problems were found so far.
    pub(crate) fn len(&self) -> usize {
        self.found.len()
    }

    /// Whether nothing was found so far.
    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// `Ok(value)` when nothing was found, else every problem in file order.
    pub(crate) fn finish<T>(mut self, value: T) -> Result<T, ManifestError> {
        if self.found.is_empty() {
            return Ok(value);
        }
        self.found
            .sort_by_key(|problem| problem.location.sort_key());
        Err(ManifestError::Invalid {
            path: self.file,
            problems: self.found,
        })
    }
}

/// The known name closest to a misspelt one, if it is close enough to be a typo: same letters
/// in another case, or at most a third of the letters off (edit distance).
pub(crate) fn closest<'a>(
    wrong: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    known
        .into_iter()
        .map(|name| (edit_distance(&wrong_lower, &name.to_lowercase()), name))
        .filter(|(distance, name)| *distance <= (name.chars().count() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// `subject` + "unknown field X; did you mean Y? allowed here: ...". A Graph property name
/// (`userPreferredMethodForSecondaryAuthentication`) is pointed at the manifest's name for it.
pub(super) fn unknown_field_message(subject: &str, key: &str, allowed: &[&str]) -> String {
    let graph_name = Field::ALL
        .iter()
        .find(|field| field.graph_property().eq_ignore_ascii_case(key))
        .map(|field| field.as_str())
        .filter(|name| allowed.contains(name));
    let suggestion = graph_name.or_else(|| closest(key, allowed.iter().copied()));
    let hint = suggestion.map_or_else(String::new, |name| format!("did you mean {name}? "));
    format!(
        "{subject}unknown field {}; {hint}allowed here: {}",
        quoted(key),
        allowed.join(", ")
    )
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Quotes a value as written in the file, with `"` and `\` backslash-escaped and every
/// character that could break the line, reorder or hide text escaped (`\n`, `\u{202e}`), so a
/// crafted value can never forge or disguise output on the admin's terminal.
pub(crate) fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
            out.push(c);
        } else {
            push_shown(&mut out, c);
        }
    }
    out.push('"');
    out
}

/// `text` with the same characters escaped as [`quoted`] escapes, but no quotes added and `"`,
/// `\` left as they are: for text that is already part of a message.
pub(crate) fn escaped(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_shown(&mut out, c);
    }
    out
}

/// Whether `c` is written escaped in messages: the characters [`is_hidden_or_control`] names,
/// and whatever Rust's `escape_debug` escapes (unprintable and combining characters), except
/// the quotes and backslash, which only [`quoted`] escapes.
fn needs_escape(c: char) -> bool {
    !matches!(c, '\'' | '"' | '\\') && (is_hidden_or_control(c) || c.escape_debug().len() > 1)
}

fn push_shown(out: &mut String, c: char) {
    if !needs_escape(c) {
        out.push(c);
    } else if c.escape_debug().len() > 1 {
        out.extend(c.escape_debug());
    } else {
        // Not escaped by `escape_debug` (a Hangul filler renders as a letter-wide blank).
        out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
    }
}

/// Whether `c` can move the cursor, end a line, reorder or hide text on a terminal (see
/// [`crate::text::is_hidden_or_control`], the one definition every output shares).
pub use crate::text::is_hidden_or_control;

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(location: Location) -> Problem {
        Problem {
            code: Code::UnknownMethod,
            file: PathBuf::from("users.yaml"),
            location,
            user: Some("megan@contoso.com".into()),
            message: "preferredMethod \"fax\" is not one of push, oath".into(),
        }
    }

    #[test]
    fn renders_yaml_and_csv_locations_like_a_compiler() {
        let yaml = problem(Location::Yaml {
            line: 3,
            column: 22,
        });
        assert_eq!(
            yaml.to_string(),
            "users.yaml:3:22: error[unknown-method]: preferredMethod \"fax\" is not one of push, oath"
        );
        let csv = problem(Location::Csv {
            row: 5,
            column: Some("preferredMethod".into()),
        });
        assert_eq!(
            csv.to_string(),
            "users.yaml: row 5, column preferredMethod: error[unknown-method]: preferredMethod \"fax\" is not one of push, oath"
        );
        let row_only = problem(Location::Csv {
            row: 7,
            column: None,
        });
        assert!(
            row_only
                .to_string()
                .starts_with("users.yaml: row 7: error[unknown-method]")
        );
    }

    #[test]
    fn error_lists_every_problem_then_a_count() {
        let error = ManifestError::Invalid {
            path: PathBuf::from("users.yaml"),
            problems: vec![
                problem(Location::Yaml {
                    line: 3,
                    column: 22,
                }),
                problem(Location::Yaml {
                    line: 9,
                    column: 22,
                }),
            ],
        };
        let text = error.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("users.yaml:3:22: "));
        assert!(lines[1].starts_with("users.yaml:9:22: "));
        assert_eq!(lines[2], "2 problems in users.yaml; nothing was sent");
        assert_eq!(error.related().unwrap().count(), 2);
        assert_eq!(error.code().unwrap().to_string(), "manifest-invalid");
    }

    #[test]
    fn codes_are_distinct_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-')
            );
        }
    }

    #[test]
    fn quoted_escapes_everything_that_could_break_or_reorder_a_line() {
        assert_eq!(quoted("megan@contoso.com"), "\"megan@contoso.com\"");
        assert_eq!(quoted("$o'neil \"x\" \\"), "\"$o'neil \\\"x\\\" \\\\\"");
        let cases = [
            ("a\nb\r\tc", "\"a\\nb\\r\\tc\""),
            ("\u{1b}[2J", "\"\\u{1b}[2J\""),
            ("\u{7f}\u{85}\u{9b}", "\"\\u{7f}\\u{85}\\u{9b}\""),
            ("\0", "\"\\0\""),
            ("\u{2028}\u{2029}", "\"\\u{2028}\\u{2029}\""),
            ("\u{3164}", "\"\\u{3164}\""),
        ];
        for (value, shown) in cases {
            assert_eq!(quoted(value), shown);
        }
        let hidden = [
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200e}',
            '\u{200f}',
            '\u{061c}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{feff}',
            '\u{2060}',
            '\u{00ad}',
            '\u{e0041}',
            '\u{180e}',
        ];
        for c in hidden {
            assert!(is_hidden_or_control(c), "{:x}", u32::from(c));
            let shown = quoted(&format!("a{c}b"));
            assert_eq!(shown, format!("\"a\\u{{{:x}}}b\"", u32::from(c)));
        }
        for c in ['a', 'é', 'ü', '中', '😀', '$', '#', '\''] {
            assert!(!is_hidden_or_control(c), "{c}");
            assert_eq!(quoted(&c.to_string()), format!("\"{c}\""));
        }
    }

    #[test]
    fn messages_and_column_names_are_escaped_however_they_were_built() {
        let dir = PathBuf::from("users.csv");
        let mut problems = Problems::new(&dir);
        problems.push(
            Code::UnknownField,
            Location::Csv {
                row: 1,
                column: Some("dis\u{1b}[2Jplay\u{202e}".into()),
            },
            None,
            "forged\nPlan: 0 users to change \u{2067}".into(),
        );
        let error = problems.finish(()).unwrap_err();
        let text = error.to_string();
        assert_eq!(
            text.lines().next().unwrap(),
            "users.csv: row 1, column dis\\u{1b}[2Jplay\\u{202e}: error[unknown-field]: \
             forged\\nPlan: 0 users to change \\u{2067}"
        );
        assert_eq!(text.lines().count(), 2);
        let help = error.help().unwrap().to_string();
        assert!(help.contains("--ignore-unknown-columns"), "{help}");
    }

    #[test]
    fn closest_suggests_typos_only() {
        let known = [
            "user",
            "preferredMethod",
            "systemPreferred",
            "perUserMfaState",
        ];
        assert_eq!(closest("preferedMethod", known), Some("preferredMethod"));
        assert_eq!(closest("PREFERREDMETHOD", known), Some("preferredMethod"));
        assert_eq!(closest("usr", known), Some("user"));
        assert_eq!(closest("department", known), None);
    }
}
