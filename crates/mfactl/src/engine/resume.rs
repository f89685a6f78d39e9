//! What an earlier, interrupted run of the same plan did, read from its journal: which writes
//! Graph took (never sent again), which were announced but have no answer or an unsettled one
//! (read back before anything is sent: done if the endpoint shows the body, written again if it
//! still shows the plan's `before`), and which failed (tried again like any other, unless the
//! endpoint already shows the body: then it is done too).

use std::collections::HashMap;

use super::journal::Record;
use crate::model::Endpoint;
use crate::plan::WriteResult;

/// What the journal says of one write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Earlier {
    /// Graph took it: its answer as recorded.
    Applied(WriteResult),
    /// Announced (`intent`) but no answer was recorded: it may or may not have been made.
    Unsettled,
    /// Sent and refused (or no answer after retries): tried again.
    Failed,
}

/// The earlier runs of a plan, by user and endpoint.
#[derive(Debug, Default)]
pub struct Resume {
    writes: HashMap<(String, Endpoint), Earlier>,
    policy: Option<Earlier>,
}

impl Resume {
    /// Folds the journal's lines in order: the last word on each write stands, except that
    /// once applied a write stays applied.
    pub fn from_records(records: &[Record]) -> Resume {
        let mut resume = Resume::default();
        for record in records {
            let earlier = match (record.event.as_str(), &record.result) {
                ("intent", _) => Earlier::Unsettled,
                ("result", Some(result)) if result.ok => Earlier::Applied(result.clone()),
                // Failed, but an attempt's answer was lost and reading back failed too: it may
                // have been made, so it is read back like one with no answer at all.
                ("result", Some(result)) if result.unsettled => Earlier::Unsettled,
                ("result", Some(_)) => Earlier::Failed,
                _ => continue,
            };
            // A new slot is never applied, so the placeholder is always overwritten.
            let slot = if record.is_policy() {
                resume.policy.get_or_insert(Earlier::Unsettled)
            } else {
                let (Some(user), Some(endpoint)) = (record.user_key(), record.endpoint) else {
                    continue;
                };
                resume
                    .writes
                    .entry((user.to_ascii_lowercase(), endpoint))
                    .or_insert(Earlier::Unsettled)
            };
            if !matches!(slot, Earlier::Applied(_)) {
                *slot = earlier;
            }
        }
        resume
    }

    /// What the earlier runs did to `user`'s (object id, else name) write to `endpoint`.
    pub fn write(&self, user: &str, endpoint: Endpoint) -> Option<&Earlier> {
        if self.writes.is_empty() {
            return None;
        }
        self.writes.get(&(user.to_ascii_lowercase(), endpoint))
    }

    /// What the earlier runs did to the policy write.
    pub fn policy(&self) -> Option<&Earlier> {
        self.policy.as_ref()
    }

    /// How many writes the earlier runs made.
    pub fn applied(&self) -> usize {
        self.writes
            .values()
            .chain(&self.policy)
            .filter(|e| matches!(e, Earlier::Applied(_)))
            .count()
    }

    /// How many writes were announced with no answer recorded.
    pub fn unsettled(&self) -> usize {
        self.writes
            .values()
            .chain(&self.policy)
            .filter(|e| matches!(e, Earlier::Unsettled))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str) -> Record {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn the_journal_decides_each_write() {
        let id = "071cc716-8147-4397-a5ba-b2105951cc0b";
        let records = [
            record(r#"{"time":"t","event":"start","graph":"g"}"#),
            // Applied on the first try.
            record(&format!(
                r#"{{"time":"t","event":"intent","user":"a@x","id":"{id}","endpoint":"signInPreferences"}}"#
            )),
            record(&format!(
                r#"{{"time":"t","event":"result","user":"a@x","id":"{id}","endpoint":"signInPreferences","result":{{"ok":true,"status":204,"request_id":null}}}}"#
            )),
            // Announced, never answered.
            record(&format!(
                r#"{{"time":"t","event":"intent","user":"a@x","id":"{id}","endpoint":"requirements"}}"#
            )),
            // Failed: tried again.
            record(r#"{"time":"t","event":"intent","user":"B@x","endpoint":"requirements"}"#),
            record(
                r#"{"time":"t","event":"result","user":"B@x","endpoint":"requirements","result":{"ok":false,"status":400,"request_id":null}}"#,
            ),
            record(r#"{"time":"t","event":"intent","resource":"authenticationMethodsPolicy"}"#),
        ];
        let resume = Resume::from_records(&records);
        assert!(matches!(
            resume.write(id, Endpoint::SignInPreferences),
            Some(Earlier::Applied(r)) if r.status == Some(204)
        ));
        assert_eq!(
            resume.write(&id.to_uppercase(), Endpoint::Requirements),
            Some(&Earlier::Unsettled)
        );
        assert_eq!(
            resume.write("b@x", Endpoint::Requirements),
            Some(&Earlier::Failed)
        );
        assert_eq!(resume.write("b@x", Endpoint::SignInPreferences), None);
        assert_eq!(resume.policy(), Some(&Earlier::Unsettled));
        assert_eq!((resume.applied(), resume.unsettled()), (1, 2));
    }

    #[test]
    fn an_applied_write_stays_applied() {
        let records = [
            record(
                r#"{"time":"t","event":"result","user":"a","endpoint":"requirements","result":{"ok":true,"status":204,"request_id":null}}"#,
            ),
            record(r#"{"time":"t","event":"intent","user":"a","endpoint":"requirements"}"#),
        ];
        let resume = Resume::from_records(&records);
        assert!(matches!(
            resume.write("a", Endpoint::Requirements),
            Some(Earlier::Applied(_))
        ));
    }
}
