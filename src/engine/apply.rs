//! Execute a plan's writes: per user, one PATCH per endpoint, under the transport's write budget
//! and retry policy, each recorded in the journal as it completes.
//!
//! Users run concurrently; a user's own writes run in order (signInPreferences, then
//! requirements) and independently: one failing does not skip the other, since neither depends
//! on the other and the admin asked for both. A 401/403 or a journal failure halts the run: no
//! new write starts, and the users not reached keep their `change` status.

use std::sync::Mutex;

use futures::StreamExt;
use futures::stream;

use super::RunError;
use super::fetch::user_error;
use super::journal::Journal;
use super::progress::Progress;
use crate::graph::GraphClient;
use crate::plan::{Plan, Status, UserPlan, WriteResult};

/// Applies every `change` user's writes, updating statuses and write results in place and the
/// summary at the end (also when the run halts, so the report shows what was done).
pub async fn apply(
    client: &GraphClient,
    plan: &mut Plan,
    journal: Option<&Journal>,
    concurrency: usize,
) -> Result<(), RunError> {
    if let Some(journal) = journal {
        journal.start(client.transport().root())?;
    }
    let total_users = plan.summary.users;
    let to_apply = plan
        .users
        .iter()
        .filter(|u| u.status == Status::Change)
        .count() as u64;
    let progress = Progress::new("apply", to_apply);
    let halt: Mutex<Option<RunError>> = Mutex::new(None);
    let halt = &halt;

    let pending: Vec<(usize, UserPlan)> = plan.users.drain(..).enumerate().collect();
    let mut done: Vec<(usize, UserPlan)> = Vec::with_capacity(pending.len());
    let mut results = stream::iter(pending)
        .map(|(order, user)| async move {
            if user.status != Status::Change {
                return (order, user, false);
            }
            (order, apply_user(client, user, journal, halt).await, true)
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((order, user, attempted)) = results.next().await {
        if attempted {
            progress.user_done(&client.transport().stats());
        }
        done.push((order, user));
    }
    drop(results);
    done.sort_by_key(|(order, _)| *order);
    plan.users = done.into_iter().map(|(_, user)| user).collect();
    plan.summary = plan.count(total_users);
    plan.summary.applied.get_or_insert(0);

    if let Some(error) = halt.lock().expect("halt poisoned").take() {
        return Err(error);
    }
    if let Some(journal) = journal {
        journal.finish()?;
    }
    Ok(())
}

fn halted(halt: &Mutex<Option<RunError>>) -> bool {
    halt.lock().expect("halt poisoned").is_some()
}

fn halt_with(halt: &Mutex<Option<RunError>>, error: RunError) {
    halt.lock().expect("halt poisoned").get_or_insert(error);
}

async fn apply_user(
    client: &GraphClient,
    mut user: UserPlan,
    journal: Option<&Journal>,
    halt: &Mutex<Option<RunError>>,
) -> UserPlan {
    let mut failed = false;
    for write in &mut user.writes {
        if halted(halt) {
            // Not reached: the user keeps `change` (or `failed` if an earlier write failed).
            break;
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
                if let Some(systemic) = RunError::systemic(&error) {
                    halt_with(halt, systemic);
                }
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
        let journaled = journal.map_or(Ok(()), |journal| {
            journal.write(
                &user.user,
                write.endpoint,
                &write.before,
                &write.body,
                &result,
            )
        });
        write.result = Some(result);
        if let Err(error) = journaled {
            halt_with(halt, RunError::Journal(error));
            failed = true;
            break;
        }
    }
    let all_written = user
        .writes
        .iter()
        .all(|w| w.result.as_ref().is_some_and(|r| r.ok));
    user.status = if failed {
        Status::Failed
    } else if all_written {
        Status::Applied
    } else {
        Status::Change
    };
    user
}
