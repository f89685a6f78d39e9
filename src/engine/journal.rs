//! The journal: one JSON line per write, flushed as it happens, so that after a crash, a kill or
//! a lost terminal the admin still knows exactly what was changed, when, and with which
//! request-id. Appends; never rewrites. Holds no secrets: only users, bodies and Graph ids.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use crate::model::Endpoint;
use crate::plan::WriteResult;

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

#[derive(Serialize)]
struct Entry<'a> {
    time: String,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    graph: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<&'a serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a WriteResult>,
}

impl Journal {
    /// Opens (creating or appending to) the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| JournalError {
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

    /// Records the start of an apply run against `graph`.
    pub fn start(&self, graph: &str) -> Result<(), JournalError> {
        self.append(&Entry {
            time: now(),
            event: "start",
            graph: Some(graph),
            user: None,
            endpoint: None,
            before: None,
            body: None,
            result: None,
        })
    }

    /// Records one write and Graph's answer.
    pub fn write(
        &self,
        user: &str,
        endpoint: Endpoint,
        before: &serde_json::Map<String, serde_json::Value>,
        body: &serde_json::Map<String, serde_json::Value>,
        result: &WriteResult,
    ) -> Result<(), JournalError> {
        self.append(&Entry {
            time: now(),
            event: "write",
            graph: None,
            user: Some(user),
            endpoint: Some(endpoint),
            before: Some(before),
            body: Some(body),
            result: Some(result),
        })
    }

    /// Records the end of the run.
    pub fn finish(&self) -> Result<(), JournalError> {
        self.append(&Entry {
            time: now(),
            event: "finish",
            graph: None,
            user: None,
            endpoint: None,
            before: None,
            body: None,
            result: None,
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

fn now() -> String {
    jiff::Timestamp::now().to_string()
}
