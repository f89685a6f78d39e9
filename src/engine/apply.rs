//! Execute a plan's writes: per user, one PATCH per endpoint, under the transport's write budget
//! and retry policy, each recorded in the journal as it completes.
//!
//! Users run concurrently; a user's own writes run in order (signInPreferences, then
//! requirements) and independently: one failing does not skip the other, since neither depends
//! on the other and the admin asked for both.

use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use futures::stream;

use super::fetch::user_error;
use super::journal::{Journal, JournalError};
use super::progress::Progress;
use crate::graph::GraphClient;
use crate::plan::{Plan, Status, UserPlan, WriteResult};

/// Applies every `change` user's writes, updating statuses and write results in place and the
/// summary at the end. Returns an error only when the journal cannot be written (then the run
/// stops: a write that cannot be recorded must not be made).
pub async fn apply(
    client: &GraphClient,
    plan: &mut Plan,
    journal: Option<&Journal>,
    concurrency: usize,
) -> Result<(), JournalError> {
    if let Some(journal) = journal {
        journal.start(client.transport().root())?;
    }
    let total_users = plan.summary.users;
    let pending: Vec<(usize, UserPlan)> = plan.users.drain(..).enumerate().collect();
    let to_apply = pending
        .iter()
        .filter(|(_, u)| u.status == Status::Change)
        .count() as u64;
    let progress = Progress::new("apply", to_apply);

    let mut done: Vec<(usize, UserPlan)> = Vec::with_capacity(pending.len());
    let mut first_journal_error = None;
    let halted = AtomicBool::new(false);
    let halted = &halted;
    let mut results = stream::iter(pending)
        .map(|(order, user)| async move {
            if user.status != Status::Change {
                return (order, user, false, Ok(()));
            }
            let (user, journaled) = apply_user(client, user, journal, halted).await;
            (order, user, true, journaled)
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((order, user, attempted, journaled)) = results.next().await {
        if attempted {
            progress.inc(1);
        }
        if let Err(error) = journaled {
            halted.store(true, Ordering::SeqCst);
            first_journal_error.get_or_insert(error);
        }
        done.push((order, user));
    }
    drop(results);
    done.sort_by_key(|(order, _)| *order);
    plan.users = done.into_iter().map(|(_, user)| user).collect();
    plan.summary = plan.count(total_users);
    plan.summary.applied.get_or_insert(0);
    if let Some(journal) = journal {
        journal.finish()?;
    }
    match first_journal_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

async fn apply_user(
    client: &GraphClient,
    mut user: UserPlan,
    journal: Option<&Journal>,
    halted: &AtomicBool,
) -> (UserPlan, Result<(), JournalError>) {
    let mut failed = false;
    for write in &mut user.writes {
        // The journal failed elsewhere: make no write that could not be recorded.
        if halted.load(Ordering::SeqCst) {
            return (user, Ok(()));
        }
        let result = match client.patch(&user.user, write.endpoint, &write.body).await {
            Ok(outcome) => WriteResult {
                ok: true,
                status: Some(outcome.status),
                request_id: outcome.request_id,
                code: None,
            },
            Err(error) => {
                tracing::warn!(user = %user.user, endpoint = %write.endpoint, %error, "write failed");
                if user.error.is_none() {
                    user.error = Some(user_error(Some(write.endpoint), &error));
                }
                failed = true;
                WriteResult {
                    ok: false,
                    status: error.status(),
                    request_id: error.request_id().map(str::to_owned),
                    code: Some(error.code().to_owned()),
                }
            }
        };
        if let Some(journal) = journal
            && let Err(error) = journal.write(
                &user.user,
                write.endpoint,
                &write.before,
                &write.body,
                &result,
            )
        {
            write.result = Some(result);
            halted.store(true, Ordering::SeqCst);
            user.status = Status::Failed;
            return (user, Err(error));
        }
        write.result = Some(result);
    }
    user.status = if failed {
        Status::Failed
    } else {
        Status::Applied
    };
    (user, Ok(()))
}
