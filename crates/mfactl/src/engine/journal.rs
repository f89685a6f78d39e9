//! The journal: one JSON line per write, flushed as it happens, so that after a crash, a kill or
//! a lost terminal the admin still knows exactly what was changed, when, and with which
//! request-id. Appends; never rewrites (resuming drops only a torn last line, which no complete
//! write can be). Holds no secrets: only users, bodies and Graph ids; readable by the owner
//! only (0600) all the same.
//!
//! Lines (docs/saved-plans.md, "Journals"): `start` (the Graph root, tenant, and the saved plan the run
//! applies, with its checksum), then per write an `intent` (before the PATCH leaves: user, object
//! id, endpoint, `before`, `body`, and `mfa_gap` when it disables per-user MFA that no
//! Conditional Access policy is known to replace, allowed with `--allow-mfa-gap`) and a `result` (Graph's answer), then `finish`. After
//! `finish`, read-back verification adds a `verify` line for each endpoint that did not show
//! what was written (user, object id, endpoint, the `body` written, what Graph showed as
//! `seen`). [`read`] reads them back for `apply --resume` and `rollback`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use serde_json::{Map, Value as Json};

use crate::model::Endpoint;
use crate::plan::{Properties, WriteResult};

/// A write's `before` or `body`: a user endpoint's properties, or the policy's sub-objects.
#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Properties(Properties<'a>),
    Policy(&'a Map<String, Json>),
}

/// What the journal calls the tenant's policy (in place of a user and endpoint).
const POLICY: &str = "authenticationMethodsPolicy";

/// An open journal file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<BufWriter<File>>,
}

/// The journal could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {source}")]
pub struct JournalError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// What a `start` line says about the run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunInfo<'a> {
    /// The Graph root written to.
    pub graph: &'a str,
    pub tenant_id: Option<&'a str>,
    /// The saved plan the run applies, and its checksum.
    pub plan: Option<&'a Path>,
    pub plan_checksum: Option<&'a str>,
    /// The run resumes an earlier one recorded in the same journal.
    pub resumed: bool,
}

#[derive(Serialize)]
struct Entry<'a> {
    time: String,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    graph: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_checksum: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    resumed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    /// The user's object id (what the write addressed), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<Endpoint>,
    /// `authenticationMethodsPolicy` for the tenant's policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<Body<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Body<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a WriteResult>,
    /// Why a run stopped early (`stop` lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// What reading back showed of the written properties (`verify` lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    seen: Option<&'a Map<String, Json>>,
    /// An intent that disables per-user MFA although no Conditional Access policy is known to
    /// require MFA for the user (`--allow-mfa-gap`): the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_gap: Option<String>,
}

impl Journal {
    /// Opens (creating or appending to) the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let file = crate::files::open_private(path, true).map_err(|source| JournalError {
            path: path.to_owned(),
            source,
        })?;
        Ok(Journal {
            path: path.to_owned(),
            file: Mutex::new(BufWriter::new(file)),
        })
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a new journal at `path`; fails if the file exists.
    pub fn create(path: &Path) -> Result<Journal, JournalError> {
        let file = crate::files::create_private_new(path).map_err(|source| JournalError {
            path: path.to_owned(),
            source,
        })?;
        Ok(Journal {
            path: path.to_owned(),
            file: Mutex::new(BufWriter::new(file)),
        })
    }

    /// Opens the journal of an earlier run to append to it, first dropping a torn last line
    /// (a line the killed run did not finish writing: never a whole write's record, since each
    /// line is written whole before the PATCH it announces). Returns the journal and how many
    /// bytes were dropped.
    pub fn reopen(path: &Path) -> Result<(Journal, u64), JournalError> {
        let error = |source| JournalError {
            path: path.to_owned(),
            source,
        };
        let file = crate::files::open_private(path, true).map_err(error)?;
        let len = file.metadata().map_err(error)?.len();
        let complete = complete_length(path).map_err(error)?;
        let mut dropped = 0;
        if complete < len {
            let mut tail = Vec::new();
            let mut reader = File::open(path).map_err(error)?;
            reader
                .seek(std::io::SeekFrom::Start(complete))
                .map_err(error)?;
            reader.read_to_end(&mut tail).map_err(error)?;
            if serde_json::from_slice::<Record>(tail.trim_ascii()).is_ok() {
                // A whole line that lost only its newline: kept, and ended.
                (&file).write_all(b"\n").map_err(error)?;
            } else {
                file.set_len(complete).map_err(error)?;
                dropped = len - complete;
            }
            file.sync_data().map_err(error)?;
        }
        Ok((
            Journal {
                path: path.to_owned(),
                file: Mutex::new(BufWriter::new(file)),
            },
            dropped,
        ))
    }

    /// Records the start of an apply run.
    pub fn start(&self, run: &RunInfo<'_>) -> Result<(), JournalError> {
        self.append(&Entry {
            graph: Some(run.graph),
            tenant_id: run.tenant_id,
            plan: run.plan.map(|p| p.to_string_lossy()),
            plan_checksum: run.plan_checksum,
            resumed: run.resumed,
            ..Entry::event("start")
        })
    }

    /// Records a write about to be sent (before the PATCH leaves, so that a crash or kill
    /// between the two still leaves a trace of a write that may have happened).
    pub fn intent(
        &self,
        user: &str,
        id: Option<uuid::Uuid>,
        write: &crate::plan::Write<'_>,
    ) -> Result<(), JournalError> {
        self.append(&Entry {
            user: Some(user),
            id: id.map(|id| id.hyphenated().to_string()),
            endpoint: Some(write.endpoint),
            before: Some(Body::Properties(write.before())),
            body: Some(Body::Properties(write.body())),
            mfa_gap: write.mfa_gap(),
            ..Entry::event("intent")
        })
    }

    /// Records the policy write about to be sent: the sub-objects as the plan saw them and the
    /// PATCH body.
    pub fn policy_intent(
        &self,
        before: &Map<String, Json>,
        body: &Map<String, Json>,
    ) -> Result<(), JournalError> {
        self.append(&Entry {
            resource: Some(POLICY),
            before: Some(Body::Policy(before)),
            body: Some(Body::Policy(body)),
            ..Entry::event("intent")
        })
    }

    /// Records Graph's answer to the policy write.
    pub fn policy_result(&self, result: &WriteResult) -> Result<(), JournalError> {
        self.append(&Entry {
            resource: Some(POLICY),
            result: Some(result),
            ..Entry::event("result")
        })
    }

    /// Records Graph's answer to a write (or why it was not sent).
    pub fn result(
        &self,
        user: &str,
        id: Option<uuid::Uuid>,
        endpoint: Endpoint,
        result: &WriteResult,
    ) -> Result<(), JournalError> {
        self.append(&Entry {
            user: Some(user),
            id: id.map(|id| id.hyphenated().to_string()),
            endpoint: Some(endpoint),
            result: Some(result),
            ..Entry::event("result")
        })
    }

    /// Records a write Graph accepted that reading back did not show: the body written, and
    /// what Graph showed of those properties.
    pub fn verify(
        &self,
        user: &str,
        id: Option<uuid::Uuid>,
        write: &crate::plan::Write<'_>,
        seen: &Map<String, Json>,
    ) -> Result<(), JournalError> {
        self.append(&Entry {
            user: Some(user),
            id: id.map(|id| id.hyphenated().to_string()),
            endpoint: Some(write.endpoint),
            body: Some(Body::Properties(write.body())),
            seen: Some(seen),
            ..Entry::event("verify")
        })
    }

    /// Records the end of the run.
    pub fn finish(&self) -> Result<(), JournalError> {
        self.append(&Entry::event("finish"))
    }

    /// Records that the run stopped before its end (Ctrl-C, a refused token, Graph unreachable),
    /// after the writes in flight were recorded: `--resume` finishes it.
    pub fn stop(&self, reason: &str) -> Result<(), JournalError> {
        self.append(&Entry {
            reason: Some(reason),
            ..Entry::event("stop")
        })
    }

    fn append(&self, entry: &Entry<'_>) -> Result<(), JournalError> {
        let mut file = self.file.lock().expect("journal poisoned");
        let line = serde_json::to_string(entry).expect("journal entries serialise");
        writeln!(file, "{line}")
            .and_then(|()| file.flush())
            .map_err(|source| JournalError {
                path: self.path.clone(),
                source,
            })
    }
}

impl Entry<'_> {
    /// An entry of kind `event`, stamped now, with nothing else set.
    fn event(event: &'static str) -> Self {
        Entry {
            time: now(),
            event,
            graph: None,
            tenant_id: None,
            plan: None,
            plan_checksum: None,
            resumed: false,
            user: None,
            id: None,
            endpoint: None,
            resource: None,
            before: None,
            body: None,
            result: None,
            reason: None,
            seen: None,
            mfa_gap: None,
        }
    }
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// How many leading bytes of the file end in a newline: the complete lines.
fn complete_length(path: &Path) -> std::io::Result<u64> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    // Lines are short: the last newline is near the end; read backwards in blocks.
    let mut end = len;
    let mut block = vec![0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(end - start) as usize];
        file.seek(std::io::SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(at) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// One line of a journal, as [`read`] gives it back. Fields a line's kind does not carry are
/// `None`.
#[derive(Clone, Debug, Deserialize)]
pub struct Record {
    pub time: String,
    /// `start`, `intent`, `result`, `finish`, `verify` (other kinds, from later versions, are
    /// kept and ignored by resume and rollback).
    pub event: String,
    #[serde(default)]
    pub graph: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub plan_checksum: Option<String>,
    #[serde(default)]
    pub resumed: bool,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// `authenticationMethodsPolicy` for the tenant's policy.
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub before: Option<Map<String, Json>>,
    #[serde(default)]
    pub body: Option<Map<String, Json>>,
    #[serde(default)]
    pub result: Option<WriteResult>,
    /// Why the run stopped (`stop` lines).
    #[serde(default)]
    pub reason: Option<String>,
    /// What reading back showed (`verify` lines).
    #[serde(default)]
    pub seen: Option<Map<String, Json>>,
}

impl Record {
    /// Whether the line is about the tenant's policy (not a user).
    pub fn is_policy(&self) -> bool {
        self.resource.as_deref() == Some(POLICY)
    }

    /// The user the line is about, as the plan knows them: the object id when recorded (what
    /// the write addressed), else the name.
    pub fn user_key(&self) -> Option<&str> {
        self.id.as_deref().or(self.user.as_deref())
    }
}

/// A journal read back.
#[derive(Debug, Default)]
pub struct JournalRecords {
    pub records: Vec<Record>,
    /// Bytes of a torn last line that were skipped (0 when the file ended cleanly).
    pub torn: u64,
}

/// A journal that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal {path}, line {line}: not a journal line ({reason})")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// The longest journal line read back: an intent is a few hundred bytes, a policy write's a few
/// kilobytes; a line longer than this is not one mfactl wrote.
const MAX_LINE: usize = 1 << 20;

/// Reads every line of the journal at `path`. A last line without its newline that does not
/// parse is the torn end of a killed run and is skipped; any other line that does not parse
/// is an error naming it.
pub fn read(path: &Path) -> Result<JournalRecords, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::new(crate::files::open_regular(path).map_err(io)?);
    let mut read = JournalRecords::default();
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        let n = crate::files::read_line_capped(&mut reader, &mut line, MAX_LINE).map_err(|e| {
            ReadError::Line {
                path: path.to_owned(),
                line: number + 1,
                reason: e.to_string(),
            }
        })?;
        if n == 0 {
            break;
        }
        number += 1;
        let complete = line.last() == Some(&b'\n');
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Record>(text) {
            Ok(record) => read.records.push(record),
            Err(_) if !complete => read.torn = n as u64,
            Err(error) => {
                return Err(ReadError::Line {
                    path: path.to_owned(),
                    line: number,
                    reason: crate::text::printable(&error.to_string()).into_owned(),
                });
            }
        }
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_with(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const START: &str = r#"{"time":"2026-11-23T10:00:00Z","event":"start","graph":"https://graph.microsoft.com","plan_checksum":"sha256:00"}"#;
    const INTENT: &str = r#"{"time":"2026-11-23T10:00:01Z","event":"intent","user":"a@contoso.com","id":"071cc716-8147-4397-a5ba-b2105951cc0b","endpoint":"requirements","before":{"perUserMfaState":"enforced"},"body":{"perUserMfaState":"disabled"}}"#;

    #[test]
    fn a_torn_last_line_is_skipped_and_dropped_on_reopen() {
        let torn = r#"{"time":"2026-11-23T10:00:02Z","event":"res"#;
        let (_dir, path) = journal_with(&format!("{START}\n{INTENT}\n{torn}"));
        let read = read(&path).unwrap();
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.torn, torn.len() as u64);
        assert_eq!(
            read.records[1].user_key(),
            Some("071cc716-8147-4397-a5ba-b2105951cc0b")
        );
        assert_eq!(read.records[1].endpoint, Some(Endpoint::Requirements));

        let (journal, dropped) = Journal::reopen(&path).unwrap();
        assert_eq!(dropped, torn.len() as u64);
        journal.finish().unwrap();
        drop(journal);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(&format!("{START}\n{INTENT}\n{{")),
            "{text}"
        );
        let again = super::read(&path).unwrap();
        assert_eq!(again.torn, 0);
        assert_eq!(again.records.last().unwrap().event, "finish");
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error_naming_it() {
        let (_dir, path) = journal_with(&format!("{START}\nnot json\n{INTENT}\n"));
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn a_complete_last_line_without_newline_is_kept() {
        let (_dir, path) = journal_with(&format!("{START}\n{INTENT}"));
        let read = read(&path).unwrap();
        assert_eq!((read.records.len(), read.torn), (2, 0));
        // Reopening keeps it and ends it: only an unparseable tail is torn.
        let (journal, dropped) = Journal::reopen(&path).unwrap();
        assert_eq!(dropped, 0);
        journal.finish().unwrap();
        assert_eq!(super::read(&path).unwrap().records.len(), 3);
    }
}
