//! The CSV manifest reader: a header row, then one user a row, as admins export from a
//! spreadsheet or from Graph itself.
//!
//! Header names match case-insensitively and also accept Graph's property names, so an export
//! of `userPreferredMethodForSecondaryAuthentication` columns can be fed back as is. An empty
//! cell means "not managed". Every bad row is reported, not just the first. Rows are numbered
//! as a spreadsheet does (the header is row 1): the number is the line the row starts on,
//! blank lines included, which is the spreadsheet row unless a quoted cell spans lines.
//! The separator is `,`, or `;` or a tab when that is what makes the header name a user
//! column (Excel writes `;` in many European locales). This module must not touch the
//! network or apply any policy beyond the manifest format.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use csv::{ByteRecord, ErrorKind};

use super::problem::{Code, Location, Problems, closest, quoted};
use super::{
    DesiredUser, LoadOptions, Manifest, ManifestError, Origin, RawValue, Settings, check_user,
    duplicate_users, looks_like_utf16_or_32,
};
use crate::model::Field;

/// What a header cell names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    User,
    Setting(Field),
    /// A note mfactl writes and never reads (`mfaCoverage`, from `mfactl export`): its cells
    /// are skipped, whatever they hold.
    Note,
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
    ("mfaCoverage", Column::Note),
];

const ALLOWED_COLUMNS: &str = "user (or userPrincipalName, id, objectId), preferredMethod, \
    systemPreferred, perUserMfaState, or their Graph property names (and mfaCoverage, a note \
    export writes and nothing reads)";

/// The separators tried on the header, in order of preference: the first that makes the
/// header name a user column wins, and `,` when none does.
const SEPARATORS: [u8; 3] = [b',', b';', b'\t'];

/// How much of the file is looked at before reading it: enough for any real header row.
const HEAD_BYTES: u64 = 1 << 16;

/// The header row, resolved: what each position holds and how the file names it.
struct Header {
    /// One per cell; `None` for a column that is reported or skipped, and then ignored.
    columns: Vec<Option<Column>>,
    /// The header cells as written (trimmed), for messages.
    names: Vec<String>,
    /// Which cell holds the user, if any does.
    user: Option<usize>,
}

impl Header {
    /// A cell's column as the header names it, or `#N` when the header cell is blank or
    /// missing (as in an unreadable header).
    fn column_name(&self, index: usize) -> String {
        match self.names.get(index) {
            Some(name) if !name.is_empty() => name.clone(),
            _ => format!("#{}", index + 1),
        }
    }
}

/// Reads and checks a CSV manifest.
pub(super) fn load(path: &Path, options: &LoadOptions) -> Result<Manifest, ManifestError> {
    let read_error = |source: std::io::Error| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_error)?;
    let head = read_head(&mut file).map_err(read_error)?;
    let lines = LineCounter::new(&file, &head).map_err(read_error)?;
    let mut problems = Problems::new(path);
    if looks_like_utf16_or_32(&head) {
        problems.push(
            Code::CsvSyntax,
            Location::Csv {
                row: 1,
                column: None,
            },
            None,
            "the file is UTF-16 (as Excel's \"Unicode Text\" saves it); save it as UTF-8: in \
             Excel, Save As \"CSV UTF-8 (Comma delimited)\""
                .to_string(),
        );
        return problems.finish(Manifest {
            source: path.to_path_buf(),
            users: Vec::new(),
            policy: None,
            protect: Vec::new(),
            max_changes: None,
            selectors: Default::default(),
            allow_mfa_gap: false,
        });
    }
    let separator = detect_separator(&head);
    // The header is read as an ordinary record so it is checked like the rest; with
    // `flexible` off, every row must then have as many cells as it has.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .delimiter(separator)
        .from_reader(BufReader::with_capacity(1 << 16, file));
    let mut users: Vec<DesiredUser> = Vec::new();
    let mut header: Option<Header> = None;
    let mut record = ByteRecord::new();
    loop {
        let start = reader.position().byte();
        let outcome = reader.read_byte_record(&mut record);
        // A quote that is never closed takes the rest of the file into its cell, and csv
        // reports nothing; such a record always ends at the end of the file.
        if !matches!(outcome, Ok(false)) && reader.position().byte() >= lines.length {
            let unclosed = unclosed_quote(path, start, separator).map_err(read_error)?;
            if let Some((row, index)) = unclosed {
                let column = header.as_ref().map_or_else(
                    || format!("#{}", index + 1),
                    |header| header.column_name(index),
                );
                problems.push(
                    Code::CsvSyntax,
                    Location::Csv {
                        row,
                        column: Some(column),
                    },
                    None,
                    "a quote (\") opens this cell and is never closed, so the rest of the file \
                     was read as part of it; close the quote, or write a quote inside a cell \
                     as two (\"\")"
                        .to_string(),
                );
                break;
            }
        }
        match outcome {
            Ok(false) => break,
            Ok(true) => {
                let row = lines.start_of(reader.position(), newlines_in(&record));
                match &header {
                    None => {
                        header = Some(read_header(&record, row, separator, options, &mut problems))
                    }
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
        if problems.is_empty() {
            problems.push(
                Code::MissingUsers,
                Location::Csv {
                    row: 1,
                    column: None,
                },
                None,
                format!(
                    "the file is empty; the first row must be a header naming the columns: \
                     {ALLOWED_COLUMNS}"
                ),
            );
        }
        return problems.finish(Manifest {
            source: path.to_path_buf(),
            users,
            policy: None,
            protect: Vec::new(),
            max_changes: None,
            selectors: Default::default(),
            allow_mfa_gap: false,
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
        policy: None,
        protect: Vec::new(),
        max_changes: None,
        selectors: Default::default(),
        allow_mfa_gap: false,
    })
}

/// The first bytes of the file (for the encoding, the separator and the line-end style),
/// leaving the file at its start.
fn read_head(file: &mut File) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(4096);
    file.take(HEAD_BYTES).read_to_end(&mut head)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(head)
}

/// The separator that makes the header name a user column, else `,`.
fn detect_separator(head: &[u8]) -> u8 {
    SEPARATORS
        .into_iter()
        .find(|&separator| {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(separator)
                .from_reader(head);
            let mut record = ByteRecord::new();
            matches!(reader.read_byte_record(&mut record), Ok(true))
                && (0..record.len()).any(|index| {
                    cell(&record, index).is_ok_and(|name| column_named(name) == Some(Column::User))
                })
        })
        .unwrap_or(b',')
}

fn column_named(name: &str) -> Option<Column> {
    HEADER_NAMES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, column)| *column)
}

/// Where a quote that is never closed opens: its row and cell index, found by reading the
/// file again from `start` (the start of the last record) as csv does: a quote opens a quoted
/// cell only at the start of a cell, and `""` inside one is a quote. Runs only on the last
/// record; the lines before it are counted only when a quote is left open.
fn unclosed_quote(path: &Path, start: u64, separator: u8) -> std::io::Result<Option<(u64, usize)>> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        StartOfCell,
        InCell,
        InQuotes,
        QuoteInQuotes,
    }
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut newlines = 0u64;
    let (mut state, mut cell_index) = (State::StartOfCell, 0usize);
    // The newlines before the opening quote (from `start`) and the cell it opens.
    let mut opened = (0u64, 0usize);
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        for &byte in chunk {
            state = match state {
                State::StartOfCell if byte == b'"' => {
                    opened = (newlines, cell_index);
                    State::InQuotes
                }
                State::InQuotes if byte == b'"' => State::QuoteInQuotes,
                State::InQuotes => State::InQuotes,
                State::QuoteInQuotes if byte == b'"' => State::InQuotes,
                _ if byte == separator => {
                    cell_index += 1;
                    State::StartOfCell
                }
                _ if byte == b'\n' || byte == b'\r' => {
                    cell_index = 0;
                    State::StartOfCell
                }
                _ => State::InCell,
            };
            newlines += u64::from(byte == b'\n');
        }
        let consumed = chunk.len();
        reader.consume(consumed);
    }
    if state != State::InQuotes {
        return Ok(None);
    }
    let mut before = BufReader::with_capacity(1 << 16, File::open(path)?.take(start));
    let mut lines_before = 0u64;
    loop {
        let chunk = before.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        lines_before += chunk.iter().filter(|&&byte| byte == b'\n').count() as u64;
        let consumed = chunk.len();
        before.consume(consumed);
    }
    let (newlines_before_quote, cell_index) = opened;
    Ok(Some((1 + lines_before + newlines_before_quote, cell_index)))
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
    fn new(file: &File, head: &[u8]) -> std::io::Result<LineCounter> {
        let length = file.metadata()?.len();
        let mut handle = file;
        let mut last = [0u8; 1];
        if length > 0 {
            handle.seek(SeekFrom::End(-1))?;
            handle.read_exact(&mut last)?;
        }
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

/// Why a cell cannot be read as text.
#[derive(Debug, PartialEq, Eq)]
enum BadCell {
    /// A NUL byte: binary data, or a UTF-16 file without a byte-order mark.
    Nul,
    /// Not UTF-8: the text before the first bad byte, and that byte.
    NotUtf8 { before: String, byte: u8 },
}

impl BadCell {
    fn message(&self, what: &str) -> String {
        match self {
            BadCell::Nul => format!(
                "{what} holds a NUL byte (\\0); a manifest is text: save the file as UTF-8 text"
            ),
            BadCell::NotUtf8 { before, byte } => {
                let place = if before.is_empty() {
                    "at its start".to_string()
                } else {
                    format!("after {}", quoted(before))
                };
                format!(
                    "{what} is not UTF-8 text (byte 0x{byte:02X} {place}); it was probably \
                     saved in a legacy encoding such as Windows-1252: save the file as UTF-8 \
                     (in Excel, \"CSV UTF-8 (Comma delimited)\")"
                )
            }
        }
    }
}

/// A cell as text, trimmed.
fn cell(record: &ByteRecord, index: usize) -> Result<&str, BadCell> {
    let bytes = record.get(index).unwrap_or_default();
    // A spreadsheet's UTF-8 export often starts with a byte-order mark.
    let bytes = if index == 0 {
        bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
    } else {
        bytes
    };
    if bytes.contains(&0) {
        return Err(BadCell::Nul);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.trim()),
        Err(error) => {
            let valid = error.valid_up_to();
            let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
            Err(BadCell::NotUtf8 {
                before: before.trim_start().to_string(),
                byte: bytes[valid],
            })
        }
    }
}

fn read_header(
    record: &ByteRecord,
    row: u64,
    separator: u8,
    options: &LoadOptions,
    problems: &mut Problems,
) -> Header {
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
            Err(bad) => {
                problems.push(
                    Code::CsvSyntax,
                    Location::Csv {
                        row,
                        column: Some(format!("#{position}")),
                    },
                    None,
                    bad.message(&format!("header cell {position}")),
                );
                header.columns.push(None);
                header.names.push(String::new());
                continue;
            }
        };
        let location = Location::Csv {
            row,
            column: Some(if name.is_empty() {
                format!("#{position}")
            } else {
                name.clone()
            }),
        };
        let resolved = match column_named(&name) {
            None => {
                let suggestion = closest(&name, HEADER_NAMES.iter().map(|(known, _)| *known));
                if options.ignore_unknown_columns && suggestion.is_none() {
                    // An export's displayName, mail, department...: skipped, not reported.
                    header.columns.push(None);
                    header.names.push(name);
                    continue;
                }
                let hint = suggestion.map_or_else(String::new, |known| {
                    if options.ignore_unknown_columns {
                        format!(
                            "did you mean {known}? (not skipped: --ignore-unknown-columns \
                             skips only names that are not close to a known one); "
                        )
                    } else {
                        format!("did you mean {known}? ")
                    }
                });
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
        // Reaching here with `,` means no separator made the header name a user column.
        let other_separator = if separator != b',' {
            None
        } else if header.names.iter().any(|name| name.contains(';')) {
            Some("`;`")
        } else if header.names.iter().any(|name| name.contains('\t')) {
            Some("tab")
        } else {
            None
        };
        let looks_like = other_separator.map_or_else(String::new, |other| {
            format!(
                "this looks like a {other}-separated file, but split at {other} its header \
                 names no user column either; "
            )
        });
        problems.push(
            Code::MissingUsers,
            Location::Csv { row, column: None },
            None,
            format!(
                "the header has no user column; {looks_like}add one named user (or \
                 userPrincipalName, id, objectId) holding each user's userPrincipalName or \
                 object id"
            ),
        );
    }
    header
}

/// Checks one row; the desired user when the row names a valid one (problems in its other
/// cells or not, so duplicates are still found).
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
    let at_column = |index: usize| Location::Csv {
        row,
        column: Some(header.column_name(index)),
    };
    let bad_cell = |index: usize, bad: BadCell, problems: &mut Problems| {
        problems.push(
            Code::CsvSyntax,
            at_column(index),
            None,
            bad.message("this cell"),
        );
    };
    // What messages about the row's other cells call the user: the name, or the escaped
    // value when the name is not valid.
    let mut label = None;
    let user = match header.user {
        None => None,
        Some(index) => match cell(record, index) {
            Ok("") => {
                problems.push(
                    Code::EmptyUser,
                    at_column(index),
                    None,
                    "this row has no user; fill in the userPrincipalName or object id, or \
                     delete the row"
                        .to_string(),
                );
                None
            }
            Ok(user) => match check_user(user) {
                Ok(()) => Some(user.to_string()),
                Err(invalid) => {
                    problems.push(
                        Code::InvalidUser,
                        at_column(index),
                        None,
                        invalid.to_string(),
                    );
                    label = Some(quoted(user));
                    None
                }
            },
            Err(bad) => {
                bad_cell(index, bad, problems);
                None
            }
        },
    };
    let subject = user
        .clone()
        .or(label)
        .map_or_else(String::new, |user| format!("{user}: "));
    let mut settings = Settings::default();
    for (index, column) in header.columns.iter().enumerate() {
        let Some(Column::Setting(field)) = column else {
            continue;
        };
        match cell(record, index) {
            Ok("") => {}
            Ok(value) => {
                // `push|oath|sms`: the methods to try in order.
                let items = super::split_methods(value);
                let raw = if *field == Field::PreferredMethod && items.len() > 1 {
                    RawValue::List(&items)
                } else {
                    RawValue::Text(value)
                };
                if let Err(problem) = settings.set(*field, raw, &subject) {
                    problems.push(
                        problem.code,
                        at_column(index),
                        user.as_deref(),
                        problem.message,
                    );
                }
            }
            Err(bad) => bad_cell(index, bad, problems),
        }
    }
    user.map(|user| settings.for_user(user, Origin::Row(row)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{LoadOptions, Problem, load};
    use crate::model::{PerUserMfaState, PreferredMethod, PreferredMethods};

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
                preferred_method: Some(PreferredMethods::one(PreferredMethod::Sms)),
                system_preferred: Some(true),
                per_user_mfa_state: Some(PerUserMfaState::Enabled),
                origin: Origin::Row(2),
            }]
        );
        for alias in ["id", "objectId", "OBJECTID", "user", "userPrincipalName"] {
            let manifest =
                load_csv(&format!("{alias}\n071cc716-8147-4397-a5ba-b2105951cc0b\n")).unwrap();
            assert_eq!(
                &*manifest.users[0].user, "071cc716-8147-4397-a5ba-b2105951cc0b",
                "{alias}"
            );
        }
    }

    #[test]
    fn the_mfa_coverage_note_an_export_writes_is_never_read() {
        let manifest = load_csv(
            "user,perUserMfaState,mfaCoverage\nmegan@contoso.com,enforced,\"not covered: =x, anything\"\n",
        )
        .unwrap();
        assert_eq!(manifest.users.len(), 1);
        assert_eq!(
            manifest.users[0].per_user_mfa_state,
            Some(PerUserMfaState::Enforced)
        );
    }

    #[test]
    fn empty_cells_and_blank_rows_manage_nothing() {
        let manifest = load_csv(
            "user,preferredMethod,systemPreferred\n\na@x.com,,\n,,\n\"b@x.com\",\"push\",\n",
        )
        .unwrap();
        assert_eq!(manifest.users.len(), 2);
        assert_eq!(manifest.users[0].origin, Origin::Row(3));
        assert!(!manifest.users[0].manages_sign_in_preferences());
        assert_eq!(
            manifest.users[1].preferred_method,
            Some(PreferredMethods::one(PreferredMethod::Push))
        );
        assert!(load_csv("user\n").unwrap().users.is_empty());
    }

    #[test]
    fn every_value_problem_names_its_row_and_column() {
        let text = "\
user,preferredMethod,systemPreferred,perUserMfaState
megan@contoso.com,fax,yes,on
,sms,,
b@x.com,push,1,Enabled
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
            "b@x.com: systemPreferred \"1\" is not true or false"
        );
    }

    #[test]
    fn bad_headers_are_reported_and_the_rows_still_checked() {
        let text = "user,preferedMethod,id,,perUserMfaState\na@x.com,push,b,c,sometimes\n";
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
        let text = "user,preferredMethod\na@x.com\nb@x.com,push\nc@x.com,push,extra\nd@x.com,fax\n";
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
        let error =
            load_file("users.csv", b"user,preferredMethod\na@x.com,pu\xff\xfe\n").unwrap_err();
        let codes: Vec<_> = error.problems().iter().map(|p| p.code).collect();
        assert_eq!(codes, [Code::CsvSyntax]);
        assert!(
            error.problems()[0]
                .message
                .starts_with("this cell is not UTF-8 text (byte 0xFF after \"pu\")"),
            "{}",
            error.problems()[0].message
        );
    }

    #[test]
    fn duplicate_users_point_at_both_rows() {
        let text =
            "user,preferredMethod\nmegan@contoso.com,push\nb@x.com,\n MEGAN@contoso.com ,oath\n";
        assert_eq!(where_(text), [("duplicate-user", 4, col("user"))]);
        assert_eq!(
            problems(text)[0].message,
            "MEGAN@contoso.com is listed twice: here and at row 2 (users match \
             case-insensitively); keep one row"
        );
    }

    #[test]
    fn problems_render_with_row_and_column() {
        let error = load_csv("user,preferredMethod\na@x.com,fax\n,\n").unwrap_err();
        let path = error.path().display().to_string();
        assert_eq!(
            error.to_string(),
            format!(
                "{path}: row 2, column preferredMethod: error[unknown-method]: a@x.com: preferredMethod \
                 \"fax\" is not one of push, oath, voiceMobile, voiceAlternateMobile, voiceOffice, sms\n\
                 1 problem in {path}; nothing was sent"
            )
        );
    }

    #[test]
    fn rows_are_numbered_by_the_line_they_start_on() {
        let text =
            "user,preferredMethod\r\n\r\n\"a@x.com\",fax\r\nb@x.com,\"push\n\"\r\n\nc@x.com,fax";
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
        let text = "user,preferredMethod\n\n\"a@x.com\",fax\nb@x.com,\"push\n\"\n\nc@x.com,fax\n";
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

    fn load_csv_with(text: &str, options: &LoadOptions) -> Result<Manifest, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.csv");
        std::fs::write(&path, text).unwrap();
        crate::manifest::load_with(&path, options)
    }

    const IGNORE: LoadOptions = LoadOptions {
        ignore_unknown_columns: true,
    };

    #[test]
    fn users_must_be_guids_or_plausible_user_principal_names() {
        let text = "\
user,preferredMethod
..,push
.,fax
megan@contoso,
adele_fabrikam.com#EXT#@contoso.onmicrosoft.com,push
$o'neil@contoso.com,oath
071CC716-8147-4397-A5BA-B2105951CC0B,sms
\"megan@contoso.com\x1b[2J\",
";
        assert_eq!(
            where_(text),
            [
                ("invalid-user", 2, col("user")),
                ("invalid-user", 3, col("user")),
                ("unknown-method", 3, col("preferredMethod")),
                ("invalid-user", 4, col("user")),
                ("invalid-user", 8, col("user")),
            ]
        );
        let found = problems(text);
        assert_eq!(
            found[0].message,
            "user \"..\" is not valid: it is neither a GUID nor a name@domain; give the \
             userPrincipalName (name@domain) or the object id (a GUID)"
        );
        assert_eq!(found[0].user, None);
        // The row's other problems name the value as written, escaped.
        assert!(
            found[2]
                .message
                .starts_with("\".\": preferredMethod \"fax\""),
            "{}",
            found[2].message
        );
        assert!(
            found[4].message.contains("\"megan@contoso.com\\u{1b}[2J\""),
            "{}",
            found[4].message
        );

        let valid = load_csv(
            "user\nadele_fabrikam.com#EXT#@contoso.onmicrosoft.com\n$o'neil@contoso.com\n",
        )
        .unwrap();
        assert_eq!(valid.users.len(), 2);
    }

    #[test]
    fn semicolon_and_tab_separators_are_detected_from_the_header() {
        let comma =
            load_csv("user,preferredMethod,systemPreferred\na@x.com,push,true\nb@x.com,,false\n")
                .unwrap();
        for text in [
            "user;preferredMethod;systemPreferred\na@x.com;push;true\nb@x.com;;false\n",
            "\u{feff}\"User\";\"preferredMethod\";systemPreferred\r\n\"a@x.com\";push;true\r\nb@x.com;;false\r\n",
            "user\tpreferredMethod\tsystemPreferred\na@x.com\tpush\ttrue\nb@x.com\t\tfalse\n",
        ] {
            let manifest = load_csv(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(manifest.users, comma.users, "{text:?}");
        }
        // A comma file keeps `,` even when a header or cell holds a `;`.
        assert_eq!(detect_separator(b"user,preferredMethod\na;b,push\n"), b',');
        assert_eq!(detect_separator(b"objectId;perUserMfaState\n"), b';');
        assert_eq!(detect_separator(b"mail;department\n"), b',');
    }

    #[test]
    fn a_header_that_only_makes_sense_with_another_separator_says_so() {
        for (text, other) in [
            ("mail;preferredMethod\na@x.com;push\n", "`;`"),
            ("mail\tpreferredMethod\na@x.com\tpush\n", "tab"),
        ] {
            let found = problems(text);
            let missing = found
                .iter()
                .find(|problem| problem.code == Code::MissingUsers)
                .unwrap();
            assert!(
                missing
                    .message
                    .contains(&format!("this looks like a {other}-separated file")),
                "{}",
                missing.message
            );
        }
        let plain = problems("mail,preferredMethod\na@x.com,push\n");
        assert!(
            !plain
                .iter()
                .any(|problem| problem.message.contains("looks like"))
        );
    }

    #[test]
    fn unknown_columns_can_be_skipped_but_misspelt_ones_are_still_reported() {
        let export = "\
displayName,userPrincipalName,mail,department,,preferredMethod
\"Bowen, Megan\",megan@contoso.com,megan@contoso.com,Sales,,push
";
        let strict = load_csv(export).unwrap_err();
        let codes: Vec<_> = strict.problems().iter().map(|p| p.code).collect();
        assert_eq!(codes, [Code::UnknownField; 4]);
        let help = miette::Diagnostic::help(&strict).unwrap().to_string();
        assert!(help.contains("--ignore-unknown-columns"), "{help}");

        let manifest = load_csv_with(export, &IGNORE).unwrap();
        assert_eq!(manifest.users.len(), 1);
        assert_eq!(&*manifest.users[0].user, "megan@contoso.com");
        assert_eq!(
            manifest.users[0].preferred_method,
            Some(PreferredMethods::one(PreferredMethod::Push))
        );

        let typo =
            load_csv_with("user,mail,preferedMethod\na@x.com,b,push\n", &IGNORE).unwrap_err();
        let found = typo.problems();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, Code::UnknownField);
        assert!(
            found[0].message.contains("did you mean preferredMethod?"),
            "{}",
            found[0].message
        );

        // YAML keys are the manifest's own: the option changes nothing there.
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("users.yaml");
        std::fs::write(
            &yaml,
            "version: 1\nusers:\n  - user: a@x.com\n    mail: a@x.com\n",
        )
        .unwrap();
        let error = crate::manifest::load_with(&yaml, &IGNORE).unwrap_err();
        assert_eq!(error.problems()[0].code, Code::UnknownField);
    }

    #[test]
    fn an_unclosed_quote_is_reported_where_it_opens() {
        let text =
            "user,preferredMethod\na@x.com,push\nb@x.com,\"push\nc@x.com,oath\nd@x.com,sms\n";
        assert_eq!(where_(text), [("csv-syntax", 3, col("preferredMethod"))]);
        assert!(
            problems(text)[0]
                .message
                .starts_with("a quote (\") opens this cell and is never closed"),
        );
        // In the header, on the last line without a newline, in a row of the wrong length.
        assert_eq!(
            where_("user,\"preferredMethod\na@x.com,push\n"),
            [("csv-syntax", 1, col("#2"))]
        );
        assert_eq!(
            where_("user,preferredMethod\r\na@x.com,push\r\n\r\nb@x.com,\"push"),
            [("csv-syntax", 4, col("preferredMethod"))]
        );
        assert_eq!(
            where_("user,preferredMethod\na@x.com,fax\n\"b@x.com,push\nc@x.com,sms\n"),
            [
                ("unknown-method", 2, col("preferredMethod")),
                ("csv-syntax", 3, col("user"))
            ]
        );
        // Closed quotes, doubled quotes and quotes inside a cell are fine.
        let fine = "user,preferredMethod\n\"a@x.com\",\"pu\"\"sh\"\nb@x.com,pu\"sh\n\"c@x.com\",\"push\n\"";
        let codes: Vec<_> = where_(fine)
            .into_iter()
            .map(|(code, row, _)| (code, row))
            .collect();
        assert_eq!(codes, [("unknown-method", 2), ("unknown-method", 3)]);
        assert_eq!(unclosed_quote_in(fine), None);
    }

    fn unclosed_quote_in(text: &str) -> Option<(u64, usize)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.csv");
        std::fs::write(&path, text).unwrap();
        unclosed_quote(&path, 0, b',').unwrap()
    }

    #[test]
    fn nul_bytes_and_bad_bytes_are_named_by_row_and_column() {
        let error = load_file(
            "users.csv",
            b"user,preferredMethod,pe\0rUserMfaState\na@x.com,pu\0sh,\nb@x.com,\xe9,\n",
        )
        .unwrap_err();
        let found: Vec<_> = error
            .problems()
            .iter()
            .map(|p| (p.code, p.location.to_string(), p.message.clone()))
            .collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].1, "row 1, column #3");
        assert!(
            found[0]
                .2
                .starts_with("header cell 3 holds a NUL byte (\\0)"),
            "{}",
            found[0].2
        );
        assert_eq!(found[1].1, "row 2, column preferredMethod");
        assert!(
            found[1].2.starts_with("this cell holds a NUL byte (\\0)"),
            "{}",
            found[1].2
        );
        assert_eq!(found[2].1, "row 3, column preferredMethod");
        assert!(
            found[2]
                .2
                .starts_with("this cell is not UTF-8 text (byte 0xE9 at its start)")
        );
        assert!(found.iter().all(|(code, ..)| *code == Code::CsvSyntax));
    }

    #[test]
    fn utf16_files_are_named_as_such() {
        let utf16le: Vec<u8> = "\u{feff}user\tpreferredMethod\r\na@x.com\tpush\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let utf16be: Vec<u8> = "\u{feff}user,preferredMethod\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let no_bom: Vec<u8> = "user,preferredMethod\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        for bytes in [utf16le, utf16be, no_bom] {
            let error = load_file("users.csv", &bytes).unwrap_err();
            let found = error.problems();
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].code, Code::CsvSyntax);
            assert!(
                found[0].message.starts_with("the file is UTF-16"),
                "{}",
                found[0].message
            );
        }
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = load(&dir.path().join("absent.csv")).unwrap_err();
        assert!(error.to_string().starts_with("cannot read "), "{error}");
    }

    #[test]
    fn a_pipe_separated_cell_is_an_ordered_list_of_methods() {
        use PreferredMethod::*;
        let manifest = load_csv(
            "user,preferredMethod\na@contoso.com,push|oath|sms\nb@contoso.com, Oath | sms \n",
        )
        .unwrap();
        let lists = manifest.preferred_lists();
        assert_eq!(lists, vec![vec![Push, Oath, Sms], vec![Oath, Sms]]);
        assert_eq!(
            where_("user,preferredMethod\na@contoso.com,push|fax\nb@contoso.com,sms|sms\n"),
            vec![
                ("unknown-method", 2, col("preferredMethod")),
                ("duplicate-method", 3, col("preferredMethod")),
            ]
        );
    }
}
