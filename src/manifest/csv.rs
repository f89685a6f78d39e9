//! The CSV manifest reader: a header row, then one user a row, as admins export from a
//! spreadsheet or from Graph itself.
//!
//! Header names match case-insensitively and also accept Graph's property names, so an export
//! of `userPreferredMethodForSecondaryAuthentication` columns can be fed back as is. An empty
//! cell means "not managed". Every bad row is reported, not just the first. Rows are numbered
//! as a spreadsheet does (the header is row 1): the number is the line the row starts on,
//! blank lines included, which is the spreadsheet row unless a quoted cell spans lines. This module must not touch the
//! network or apply any policy beyond the manifest format.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use csv::{ByteRecord, ErrorKind};

use super::problem::{Code, Location, Problems, closest, quoted};
use super::{DesiredUser, Manifest, ManifestError, Origin, RawValue, Settings, duplicate_users};
use crate::model::Field;

/// What a header cell names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    User,
    Setting(Field),
}

/// Accepted header names (compared case-insensitively) and the column each one names.
const HEADER_NAMES: &[(&str, Column)] = &[
    ("user", Column::User),
    ("userPrincipalName", Column::User),
    ("id", Column::User),
    ("objectId", Column::User),
    ("preferredMethod", Column::Setting(Field::PreferredMethod)),
    (
        "userPreferredMethodForSecondaryAuthentication",
        Column::Setting(Field::PreferredMethod),
    ),
    ("systemPreferred", Column::Setting(Field::SystemPreferred)),
    (
        "isSystemPreferredAuthenticationMethodEnabled",
        Column::Setting(Field::SystemPreferred),
    ),
    ("perUserMfaState", Column::Setting(Field::PerUserMfaState)),
];

const ALLOWED_COLUMNS: &str = "user (or userPrincipalName, id, objectId), preferredMethod, \
    systemPreferred, perUserMfaState, or their Graph property names";

/// The header row, resolved: what each position holds and how the file names it.
struct Header {
    /// One per cell; `None` for a column that is reported and then ignored.
    columns: Vec<Option<Column>>,
    /// The header cells as written (trimmed), for messages.
    names: Vec<String>,
    /// Which cell holds the user, if any does.
    user: Option<usize>,
}

/// Reads and checks a CSV manifest.
pub(super) fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let read_error = |source: std::io::Error| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let lines = LineCounter::new(&file).map_err(read_error)?;
    // The header is read as an ordinary record so it is checked like the rest; with
    // `flexible` off, every row must then have as many cells as it has.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(BufReader::with_capacity(1 << 16, file));
    let mut problems = Problems::new(path);
    let mut users: Vec<DesiredUser> = Vec::new();
    let mut header: Option<Header> = None;
    let mut record = ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let row = lines.start_of(reader.position(), newlines_in(&record));
                match &header {
                    None => header = Some(read_header(&record, row, &mut problems)),
                    Some(header) => {
                        if let Some(user) = read_row(header, &record, row, &mut problems) {
                            users.push(user);
                        }
                    }
                }
            }
            Err(error) => {
                // The record is consumed; a quoted newline in it would shift this by one.
                let row = lines.start_of(reader.position(), 0);
                match error.into_kind() {
                    ErrorKind::Io(source) => return Err(read_error(source)),
                    ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        problems.push(
                            Code::CsvSyntax,
                            Location::Csv { row, column: None },
                            None,
                            format!(
                                "this row has {len} cells but the header has {expected_len}; \
                                 every row needs one cell per column (leave a cell empty to \
                                 leave that setting unmanaged)"
                            ),
                        );
                    }
                    other => {
                        problems.push(
                            Code::CsvSyntax,
                            Location::Csv { row, column: None },
                            None,
                            format!("cannot read this row: {other:?}"),
                        );
                        // Only I/O and length errors are recoverable; do not loop on others.
                        break;
                    }
                }
            }
        }
    }
    let Some(header) = header else {
        problems.push(
            Code::MissingUsers,
            Location::Csv { row: 1, column: None },
            None,
            format!("the file is empty; the first row must be a header naming the columns: {ALLOWED_COLUMNS}"),
        );
        return problems.finish(Manifest {
            source: path.to_path_buf(),
            users,
        });
    };
    let user_column = header.user.map(|index| header.names[index].clone());
    for (first, later) in duplicate_users(&users) {
        let (Origin::Row(first_row) | Origin::Line(first_row)) = users[first].origin;
        let (Origin::Row(row) | Origin::Line(row)) = users[later].origin;
        let user = &users[later].user;
        problems.push(
            Code::DuplicateUser,
            Location::Csv {
                row,
                column: user_column.clone(),
            },
            Some(user),
            format!(
                "{user} is listed twice: here and at row {first_row} (users match \
                 case-insensitively); keep one row"
            ),
        );
    }
    problems.finish(Manifest {
        source: path.to_path_buf(),
        users,
    })
}

/// Works out the line a record starts on. csv's own record position is where the reader
/// began looking, before any blank lines it skipped, so it is counted back from the position
/// after the record instead: that line, less the newlines inside the record and its
/// terminator. With `\r\n` line ends csv stops at the `\r` and takes the `\n` with the next
/// record, so the terminator has not been counted yet; the first line end decides the style.
struct LineCounter {
    /// File length and whether the file ends with a newline: the last record may not.
    length: u64,
    ends_with_newline: bool,
    crlf: bool,
}

impl LineCounter {
    fn new(file: &File) -> std::io::Result<LineCounter> {
        use std::io::{Read, Seek, SeekFrom};
        let length = file.metadata()?.len();
        let mut handle = file;
        let mut last = [0u8; 1];
        if length > 0 {
            handle.seek(SeekFrom::End(-1))?;
            handle.read_exact(&mut last)?;
        }
        handle.seek(SeekFrom::Start(0))?;
        let mut head = Vec::with_capacity(4096);
        handle.take(1 << 16).read_to_end(&mut head)?;
        handle.seek(SeekFrom::Start(0))?;
        let crlf = head
            .iter()
            .position(|&byte| byte == b'\n')
            .is_some_and(|at| at > 0 && head[at - 1] == b'\r');
        Ok(LineCounter {
            length,
            ends_with_newline: last[0] == b'\n',
            crlf,
        })
    }

    /// The start line of the record just read, given the reader's position after it.
    fn start_of(&self, after: &csv::Position, newlines_inside: u64) -> u64 {
        let unterminated = after.byte() >= self.length && !self.ends_with_newline;
        let terminator = u64::from(!unterminated && !self.crlf);
        after
            .line()
            .saturating_sub(newlines_inside + terminator)
            .max(1)
    }
}

fn newlines_in(record: &ByteRecord) -> u64 {
    record
        .iter()
        .map(|cell| cell.iter().filter(|&&byte| byte == b'\n').count() as u64)
        .sum()
}

/// A cell as text, trimmed; `Err` when it is not UTF-8.
fn cell(record: &ByteRecord, index: usize) -> Result<&str, std::str::Utf8Error> {
    let bytes = record.get(index).unwrap_or_default();
    // A spreadsheet's UTF-8 export often starts with a byte-order mark.
    let bytes = if index == 0 {
        bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
    } else {
        bytes
    };
    std::str::from_utf8(bytes).map(str::trim)
}

fn read_header(record: &ByteRecord, row: u64, problems: &mut Problems) -> Header {
    let mut header = Header {
        columns: Vec::with_capacity(record.len()),
        names: Vec::with_capacity(record.len()),
        user: None,
    };
    let mut named: Vec<(Column, usize)> = Vec::new();
    for index in 0..record.len() {
        let position = index + 1;
        let name = match cell(record, index) {
            Ok(name) => name.to_string(),
            Err(_) => {
                problems.push(
                    Code::CsvSyntax,
                    Location::Csv {
                        row,
                        column: Some(format!("#{position}")),
                    },
                    None,
                    format!("header cell {position} is not UTF-8 text; save the file as UTF-8"),
                );
                header.columns.push(None);
                header.names.push(format!("#{position}"));
                continue;
            }
        };
        let column = HEADER_NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(&name))
            .map(|(_, column)| *column);
        let location = Location::Csv {
            row,
            column: Some(if name.is_empty() {
                format!("#{position}")
            } else {
                name.clone()
            }),
        };
        let resolved = match column {
            None => {
                let hint = closest(&name, HEADER_NAMES.iter().map(|(known, _)| *known))
                    .map_or_else(String::new, |known| format!("did you mean {known}? "));
                let message = if name.is_empty() {
                    format!(
                        "header cell {position} is empty; name the column ({ALLOWED_COLUMNS}) or delete it"
                    )
                } else {
                    format!(
                        "unknown column {}; {hint}allowed columns: {ALLOWED_COLUMNS}",
                        quoted(&name)
                    )
                };
                problems.push(Code::UnknownField, location, None, message);
                None
            }
            Some(column) => match named.iter().find(|(seen, _)| *seen == column) {
                Some((_, earlier)) => {
                    let earlier = &header.names[*earlier];
                    problems.push(
                        Code::DuplicateField,
                        location,
                        None,
                        format!(
                            "column {} is another name for column {}; keep one of them",
                            quoted(&name),
                            quoted(earlier)
                        ),
                    );
                    None
                }
                None => {
                    named.push((column, index));
                    if column == Column::User {
                        header.user = Some(index);
                    }
                    Some(column)
                }
            },
        };
        header.columns.push(resolved);
        header.names.push(name);
    }
    if header.user.is_none() {
        problems.push(
            Code::MissingUsers,
            Location::Csv { row, column: None },
            None,
            "the header has no user column; add one named user (or userPrincipalName, id, \
             objectId) holding each user's userPrincipalName or object id"
                .to_string(),
        );
    }
    header
}

/// Checks one row; the desired user when the row names one (problems or not, so duplicates
/// are still found).
fn read_row(
    header: &Header,
    record: &ByteRecord,
    row: u64,
    problems: &mut Problems,
) -> Option<DesiredUser> {
    // Spreadsheets export trailing empty rows as `,,,`; such a row says nothing.
    if record.iter().all(|bytes| bytes.trim_ascii().is_empty()) {
        return None;
    }
    let column_name = |index: usize| Some(header.names[index].clone());
    let not_utf8 = |index: usize, problems: &mut Problems| {
        problems.push(
            Code::CsvSyntax,
            Location::Csv {
                row,
                column: column_name(index),
            },
            None,
            "this cell is not UTF-8 text; save the file as UTF-8".to_string(),
        );
    };
    let user = match header.user {
        None => None,
        Some(index) => match cell(record, index) {
            Ok("") => {
                problems.push(
                    Code::EmptyUser,
                    Location::Csv {
                        row,
                        column: column_name(index),
                    },
                    None,
                    "this row has no user; fill in the userPrincipalName or object id, or \
                     delete the row"
                        .to_string(),
                );
                None
            }
            Ok(user) => Some(user.to_string()),
            Err(_) => {
                not_utf8(index, problems);
                None
            }
        },
    };
    let subject = user
        .as_ref()
        .map_or_else(String::new, |user| format!("{user}: "));
    let mut settings = Settings::default();
    for (index, column) in header.columns.iter().enumerate() {
        let Some(Column::Setting(field)) = column else {
            continue;
        };
        match cell(record, index) {
            Ok("") => {}
            Ok(value) => {
                if let Err(problem) = settings.set(*field, RawValue::Text(value), &subject) {
                    problems.push(
                        problem.code,
                        Location::Csv {
                            row,
                            column: column_name(index),
                        },
                        user.as_deref(),
                        problem.message,
                    );
                }
            }
            Err(_) => not_utf8(index, problems),
        }
    }
    user.map(|user| settings.for_user(user, Origin::Row(row)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Problem, load};
    use crate::model::{PerUserMfaState, PreferredMethod};

    fn load_file(name: &str, bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        load(&path)
    }

    fn load_csv(text: &str) -> Result<Manifest, ManifestError> {
        load_file("users.csv", text.as_bytes())
    }

    fn problems(text: &str) -> Vec<Problem> {
        match load_csv(text) {
            Ok(manifest) => panic!("expected problems, got {manifest:?}"),
            Err(error) => error.problems().to_vec(),
        }
    }

    /// `(code, row, column)` of every problem, in order.
    fn where_(text: &str) -> Vec<(&'static str, u64, Option<String>)> {
        problems(text)
            .into_iter()
            .map(|problem| match problem.location {
                Location::Csv { row, column } => (problem.code.as_str(), row, column),
                Location::Yaml { .. } => panic!("YAML location in CSV: {problem:?}"),
            })
            .collect()
    }

    fn col(name: &str) -> Option<String> {
        Some(name.to_string())
    }

    /// The users without their origin, which differs between formats by design.
    fn settings(manifest: &Manifest) -> Vec<DesiredUser> {
        manifest
            .users
            .iter()
            .map(|user| DesiredUser {
                origin: Origin::Row(0),
                ..user.clone()
            })
            .collect()
    }

    #[test]
    fn csv_and_yaml_give_the_same_users() {
        let csv = load_csv(
            "user,preferredMethod,systemPreferred,perUserMfaState\n\
             megan@contoso.com,oath,true,disabled\n\
             071cc716-8147-4397-a5ba-b2105951cc0b,push,false,\n\
             adele@contoso.com,,,enforced\n",
        )
        .unwrap();
        let yaml = load_file(
            "users.yaml",
            b"version: 1\nusers:\n  - user: megan@contoso.com\n    preferredMethod: oath\n\
              \x20   systemPreferred: true\n    perUserMfaState: disabled\n\
              \x20 - user: 071cc716-8147-4397-a5ba-b2105951cc0b\n    preferredMethod: push\n\
              \x20   systemPreferred: false\n  - user: adele@contoso.com\n    perUserMfaState: enforced\n",
        )
        .unwrap();
        assert_eq!(settings(&csv), settings(&yaml));
        let origins: Vec<_> = csv.users.iter().map(|user| user.origin).collect();
        assert_eq!(origins, [Origin::Row(2), Origin::Row(3), Origin::Row(4)]);
        assert_eq!(csv.users[2].preferred_method, None);
        assert_eq!(
            csv.users[2].per_user_mfa_state,
            Some(PerUserMfaState::Enforced)
        );
    }

    #[test]
    fn headers_accept_aliases_graph_names_any_case_and_order_with_a_bom() {
        let manifest = load_file(
            "users.CSV",
            "\u{feff}PerUserMfaState , ISSYSTEMPREFERREDAUTHENTICATIONMETHODENABLED,\
             userPreferredMethodForSecondaryAuthentication,UserPrincipalName\n\
             Enabled,TRUE,SMS,  megan@contoso.com  \n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            manifest.users,
            [DesiredUser {
                user: "megan@contoso.com".into(),
                preferred_method: Some(PreferredMethod::Sms),
                system_preferred: Some(true),
                per_user_mfa_state: Some(PerUserMfaState::Enabled),
                origin: Origin::Row(2),
            }]
        );
        for alias in ["id", "objectId", "OBJECTID", "user", "userPrincipalName"] {
            let manifest =
                load_csv(&format!("{alias}\n071cc716-8147-4397-a5ba-b2105951cc0b\n")).unwrap();
            assert_eq!(
                manifest.users[0].user, "071cc716-8147-4397-a5ba-b2105951cc0b",
                "{alias}"
            );
        }
    }

    #[test]
    fn empty_cells_and_blank_rows_manage_nothing() {
        let manifest =
            load_csv("user,preferredMethod,systemPreferred\n\na@x,,\n,,\n\"b@x\",\"push\",\n")
                .unwrap();
        assert_eq!(manifest.users.len(), 2);
        assert_eq!(manifest.users[0].origin, Origin::Row(3));
        assert!(!manifest.users[0].manages_sign_in_preferences());
        assert_eq!(
            manifest.users[1].preferred_method,
            Some(PreferredMethod::Push)
        );
        assert!(load_csv("user\n").unwrap().users.is_empty());
    }

    #[test]
    fn every_value_problem_names_its_row_and_column() {
        let text = "\
user,preferredMethod,systemPreferred,perUserMfaState
megan@contoso.com,fax,yes,on
,sms,,
b@x,push,1,Enabled
";
        assert_eq!(
            where_(text),
            [
                ("unknown-method", 2, col("preferredMethod")),
                ("invalid-bool", 2, col("systemPreferred")),
                ("unknown-state", 2, col("perUserMfaState")),
                ("empty-user", 3, col("user")),
                ("invalid-bool", 4, col("systemPreferred")),
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
            found[4].message,
            "b@x: systemPreferred \"1\" is not true or false"
        );
    }

    #[test]
    fn bad_headers_are_reported_and_the_rows_still_checked() {
        let text = "user,preferedMethod,id,,perUserMfaState\na@x,push,b,c,sometimes\n";
        assert_eq!(
            where_(text),
            [
                ("unknown-field", 1, col("preferedMethod")),
                ("duplicate-field", 1, col("id")),
                ("unknown-field", 1, col("#4")),
                ("unknown-state", 2, col("perUserMfaState")),
            ]
        );
        let found = problems(text);
        assert!(
            found[0].message.contains("did you mean preferredMethod?"),
            "{}",
            found[0].message
        );
        assert_eq!(
            found[1].message,
            "column \"id\" is another name for column \"user\"; keep one of them"
        );
    }

    #[test]
    fn a_header_without_a_user_column_is_reported() {
        assert_eq!(
            where_("preferredMethod\npush\n"),
            [("missing-users", 1, None)]
        );
        assert_eq!(where_(""), [("missing-users", 1, None)]);
    }

    #[test]
    fn rows_with_the_wrong_number_of_cells_are_all_reported() {
        let text = "user,preferredMethod\na@x\nb@x,push\nc@x,push,extra\nd@x,fax\n";
        assert_eq!(
            where_(text),
            [
                ("csv-syntax", 2, None),
                ("csv-syntax", 4, None),
                ("unknown-method", 5, col("preferredMethod")),
            ]
        );
        assert_eq!(
            problems(text)[0].message,
            "this row has 1 cells but the header has 2; every row needs one cell per column \
             (leave a cell empty to leave that setting unmanaged)"
        );
    }

    #[test]
    fn cells_that_are_not_utf8_are_reported() {
        let error = load_file("users.csv", b"user,preferredMethod\na@x,\xff\xfe\n").unwrap_err();
        let codes: Vec<_> = error.problems().iter().map(|p| p.code).collect();
        assert_eq!(codes, [Code::CsvSyntax]);
    }

    #[test]
    fn duplicate_users_point_at_both_rows() {
        let text = "user,preferredMethod\nmegan@contoso.com,push\nb@x,\n MEGAN@contoso.com ,oath\n";
        assert_eq!(where_(text), [("duplicate-user", 4, col("user"))]);
        assert_eq!(
            problems(text)[0].message,
            "MEGAN@contoso.com is listed twice: here and at row 2 (users match \
             case-insensitively); keep one row"
        );
    }

    #[test]
    fn problems_render_with_row_and_column() {
        let error = load_csv("user,preferredMethod\na@x,fax\n,\n").unwrap_err();
        let path = error.path().display().to_string();
        assert_eq!(
            error.to_string(),
            format!(
                "{path}: row 2, column preferredMethod: error[unknown-method]: a@x: preferredMethod \
                 \"fax\" is not one of push, oath, voiceMobile, voiceAlternateMobile, voiceOffice, sms\n\
                 1 problem in {path}; nothing was sent"
            )
        );
    }

    #[test]
    fn rows_are_numbered_by_the_line_they_start_on() {
        let text = "user,preferredMethod\r\n\r\n\"a@x\",fax\r\n\"b\n@x\",push\r\n\nc@x,fax";
        assert_eq!(
            where_(text),
            [
                ("unknown-method", 3, col("preferredMethod")),
                ("unknown-method", 7, col("preferredMethod")),
            ]
        );
    }

    #[test]
    fn rows_are_numbered_by_the_line_they_start_on_with_lf_too() {
        let text = "user,preferredMethod\n\n\"a@x\",fax\n\"b\n@x\",push\n\nc@x,fax\n";
        assert_eq!(
            where_(text),
            [
                ("unknown-method", 3, col("preferredMethod")),
                ("unknown-method", 7, col("preferredMethod")),
            ]
        );
        let short = "user,preferredMethod\n\nshort\n";
        assert_eq!(where_(short), [("csv-syntax", 3, None)]);
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = load(&dir.path().join("absent.csv")).unwrap_err();
        assert!(error.to_string().starts_with("cannot read "), "{error}");
    }
}
