//! The journal: one JSON line per write, flushed as it happens, so that after a crash, a kill or
//! a lost terminal the admin still knows exactly what was changed, when, and with which
//! request-id. Appends; never rewrites. Holds no secrets: only users, bodies and Graph ids;
//! readable by the owner only (0600) all the same.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

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
    /// `authenticationMethodsPolicy` for the tenant's policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<Body<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Body<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a WriteResult>,
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

    /// Records the start of an apply run against `graph`.
    pub fn start(&self, graph: &str) -> Result<(), JournalError> {
        self.append(&Entry {
            graph: Some(graph),
            ..Entry::event("start")
        })
    }

    /// Records a write about to be sent (before the PATCH leaves, so that a crash or kill
    /// between the two still leaves a trace of a write that may have happened).
    pub fn intent(&self, user: &str, write: &crate::plan::Write<'_>) -> Result<(), JournalError> {
        self.append(&Entry {
            user: Some(user),
            endpoint: Some(write.endpoint),
            before: Some(Body::Properties(write.before())),
            body: Some(Body::Properties(write.body())),
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
        endpoint: Endpoint,
        result: &WriteResult,
    ) -> Result<(), JournalError> {
        self.append(&Entry {
            user: Some(user),
            endpoint: Some(endpoint),
            result: Some(result),
            ..Entry::event("result")
        })
    }

    /// Records the end of the run.
    pub fn finish(&self) -> Result<(), JournalError> {
        self.append(&Entry::event("finish"))
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
            user: None,
            endpoint: None,
            resource: None,
            before: None,
            body: None,
            result: None,
        }
    }
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}
