//! Execute a plan's writes: per user, one PATCH per endpoint, under the transport's write budget
//! and retry policy, each recorded in the journal as it happens.
//!
//! Before each PATCH the endpoint is read again and compared with what the plan saw: if the
//! value changed since (another admin, a script, the user), nothing is written over it and the
//! user is `drifted` — a plan can sit at the confirmation prompt for hours. A value that
//! changed to exactly what the write sets is not drift but the plan already applied (an
//! earlier run of it): nothing is sent, and the write is `already_applied`. Reads are cheap
//! (Graph meters writes 40 times tighter), so the check costs no time in a bulk run.
//!
//! Users run concurrently; a user's own writes run in order (signInPreferences, then
//! requirements) and independently: one failing does not skip the other, since neither depends
//! on the other and the admin asked for both. A 401 (or 403s before any write succeeded) or a
//! journal failure halts the run: no new write starts, users not reached keep `change`.

use futures::StreamExt;
use futures::stream;

use super::journal::{Journal, RunInfo};
use super::outcome::{failure, user_error, written};
use super::progress::Progress;
use super::resume::{Earlier, Resume};
use super::{Breaker, Interrupt, RunError};
use crate::graph::permissions::Resource;
use crate::graph::{GraphClient, GraphError, Purpose};
use crate::model::Endpoint;
use crate::plan::{LiveUser, Plan, Status, UserError, UserPlan, Write, WriteResult, live_value};

/// How to run an apply.
pub struct ApplyOptions<'a> {
    /// Where every write is recorded, and what its `start` line says.
    pub journal: Option<(&'a Journal, RunInfo<'a>)>,
    /// What earlier runs of the same plan did (`apply --resume`).
    pub resume: Option<&'a Resume>,
    pub concurrency: usize,
    /// Once set no new write starts; writes in flight finish and are journalled.
    pub interrupt: Interrupt,
    /// Before a user's first write, read the object id's userPrincipalName and refuse the
    /// user's writes when it is not the name the plan shows (a saved plan: a file, whose
    /// names and ids could have been paired by someone else).
    pub check_names: bool,
}

/// Applies the writes of every user that has some, updating statuses and write results in
/// place and the summary at the end (also when the run halts, so the report shows what was
/// done). Users are addressed by the object id the plan resolved, so a saved plan never acts
/// on an account renamed or re-created since.
pub async fn apply(
    client: &GraphClient,
    plan: &mut Plan,
    options: ApplyOptions<'_>,
) -> Result<(), RunError> {
    let ApplyOptions {
        journal,
        resume,
        concurrency,
        interrupt,
        check_names,
    } = options;
    let journal = match journal {
        Some((journal, run)) => {
            journal.start(&run)?;
            Some(journal)
        }
        None => None,
    };
    let total_users = plan.summary.users;
    let to_apply = plan.users.iter().filter(|u| has_writes(u)).count() as u64;
    let progress = Progress::new("apply", to_apply);
    let breaker = Breaker::with_interrupt(interrupt);
    if let Some(claims) = client.transport().config().tokens.claims()
        && let Some((kind, granted)) = claims.granted()
    {
        let writes = Endpoint::ALL.iter().map(|e| Resource::of(*e).write());
        breaker.trust(writes.filter(|need| need.is_met_by(kind, granted)));
    }
    let shared = &breaker;
    // The policy first: one write, and the users' notes were planned with it in mind.
    if let Some(policy) = &mut plan.policy
        && let Err(error) = super::policy::apply(
            client,
            policy,
            journal,
            resume.and_then(Resume::policy),
            shared,
        )
        .await
    {
        breaker.trip(RunError::Journal(error));
    }

    // Each user is updated where it lies in the plan: no second list of a million users.
    let total_writes = plan.write_count();
    let mut results = stream::iter(plan.users.iter_mut())
        .map(|user| async move {
            if !has_writes(user) {
                return None;
            }
            apply_user(client, user, journal, resume, shared, check_names).await;
            Some(user.write_count() as u64)
        })
        .buffer_unordered(concurrency.max(1));
    let quotas = super::quotas(client);
    let started = std::time::Instant::now();
    let mut writes_left = total_writes;
    while let Some(attempted) = results.next().await {
        if let Some(writes) = attempted {
            writes_left = writes_left.saturating_sub(writes);
            // What is left of the write burst now: spent by the writes made, refilled since.
            let spent = (total_writes - writes_left) as f64;
            let refilled = quotas.write_refill * started.elapsed().as_secs_f64();
            let now = crate::plan::estimate::Quotas {
                write_capacity: (quotas.write_capacity - spent + refilled)
                    .clamp(0.0, quotas.write_capacity),
                ..quotas
            };
            let transport = client.transport();
            progress.apply_step(
                &crate::plan::estimate::estimate(writes_left, &now),
                transport.paused_for(),
                &transport.stats(),
            );
        }
    }
    drop(results);
    plan.summary = plan.count_after_apply(total_users);

    if let Some(error) = breaker.into_error() {
        if let Some(journal) = journal
            && !matches!(error, RunError::Journal(_))
        {
            // The run's own error matters more than a journal that also failed.
            if let Err(stop) = journal.stop(&error.to_string()) {
                tracing::warn!(error = %stop, "could not record the stop in the journal");
            }
        }
        return Err(error);
    }
    if let Some(journal) = journal {
        journal.finish()?;
    }
    Ok(())
}

/// Users with writes to make: `change`, and `blocked` users' other fields.
fn has_writes(user: &UserPlan) -> bool {
    matches!(user.status, Status::Change | Status::Blocked) && user.write_count() > 0
}

/// What happened to one write.
enum Outcome {
    Written(WriteResult),
    Failed(WriteResult, GraphError),
    Drifted(UserError),
}

async fn apply_user(
    client: &GraphClient,
    user: &mut UserPlan,
    journal: Option<&Journal>,
    resume: Option<&Resume>,
    breaker: &Breaker,
    check_names: bool,
) {
    let mut failed = false;
    let mut drifted = false;
    let mut name_checked = !check_names;
    // The object id when the plan resolved it: never the name, which may since belong to
    // someone else.
    let name = std::sync::Arc::clone(&user.user);
    let address: std::borrow::Cow<'_, str> = match user.id {
        Some(id) => id.hyphenated().to_string().into(),
        None => (*name).into(),
    };
    let address = &*address;
    for endpoint in Endpoint::ALL.iter().copied() {
        let Some(write) = user.write(endpoint) else {
            continue;
        };
        let earlier = resume.and_then(|r| r.write(address, endpoint));
        if let Some(Earlier::Applied(result)) = earlier {
            user.set_result(endpoint, result.clone()); // an earlier run made it: not sent again
            continue;
        }
        if breaker.is_tripped() {
            break; // Not reached: no result, and the user keeps its status unless it failed.
        }
        if !std::mem::replace(&mut name_checked, true)
            && let Err(error) = check_name(client, &name, user.id, breaker).await
        {
            tracing::warn!(user = %crate::text::printable(&user.user), message = %error.message, "not written");
            user.error = Some(Box::new(error));
            user.status = Status::Failed;
            return;
        }
        let need = Resource::of(endpoint).write();
        let permit = breaker.admit(need).await;
        if breaker.is_stopped(need) || breaker.is_tripped() {
            continue; // Always refused (the token lacks the permission): not sent, still planned.
        }
        let target = Target {
            name: &name,
            id: user.id,
            address,
            earlier: earlier.is_some(),
        };
        let outcome = write_one(client, &target, &write, journal, breaker).await;
        // A refusal keeps its probe slot: the fifth refusal, not the ninth, ends the probing.
        if let (Ok(Outcome::Failed(_, error)), Some(permit)) = (&outcome, permit)
            && error.status() == Some(403)
        {
            permit.forget();
        }
        match outcome {
            Ok(Outcome::Written(result)) => user.set_result(endpoint, result),
            Ok(Outcome::Failed(result, error)) => {
                // A run-wide failure is said once, when the run stops.
                if !Breaker::is_run_wide(&error) {
                    tracing::warn!(user = %crate::text::printable(&user.user), %endpoint, %error, "write failed");
                }
                user.error
                    .get_or_insert_with(|| Box::new(user_error(Some(endpoint), &error)));
                user.set_result(endpoint, result);
                failed = true;
            }
            Ok(Outcome::Drifted(error)) => {
                tracing::warn!(user = %crate::text::printable(&user.user), %endpoint, message = %error.message, "changed since the plan: not written");
                user.error.get_or_insert(Box::new(error));
                drifted = true;
            }
            Err(journal_error) => {
                breaker.trip(RunError::Journal(journal_error));
                break;
            }
        }
    }
    let all_written = user.writes().all(|w| w.result().is_some_and(|r| r.ok));
    user.status = if failed {
        Status::Failed
    } else if drifted {
        Status::Drifted
    } else if user.status == Status::Blocked {
        Status::Blocked // its other fields were written; the blocked one still stands
    } else if all_written {
        Status::Applied
    } else {
        user.status
    };
}

/// Checks that the object id `id` still carries the userPrincipalName `name` (a user named by
/// object id needs no look-up): the name is what the reviewer read and what the journal and
/// report say, so a write to an id that bears another name is refused.
async fn check_name(
    client: &GraphClient,
    name: &str,
    id: Option<uuid::Uuid>,
    breaker: &Breaker,
) -> Result<(), UserError> {
    let Some(id) = id else {
        return Ok(());
    };
    if uuid::Uuid::parse_str(name).is_ok() {
        return Ok(());
    }
    let need = Resource::Users.read();
    let refused = |code: &str, message: String| UserError {
        endpoint: None,
        status: None,
        code: code.to_owned(),
        message,
        request_id: None,
    };
    match client.user_identity(&id.hyphenated().to_string()).await {
        Ok(identity) => {
            breaker.success(need);
            let now = identity.user_principal_name.unwrap_or_default();
            if now.eq_ignore_ascii_case(name) {
                return Ok(());
            }
            Err(refused(
                "nameMismatch",
                format!(
                    "object id {id} is {}, not {} as the plan says; nothing was written",
                    crate::text::printable(&now),
                    crate::text::printable(name)
                ),
            ))
        }
        Err(error) => {
            breaker.failure(need, &error);
            Err(UserError {
                message: format!(
                    "cannot check that object id {id} is {}: {}; nothing was written",
                    crate::text::printable(name),
                    error
                ),
                ..user_error(None, &error)
            })
        }
    }
}

/// The user a write is for.
struct Target<'a> {
    /// As the manifest named them (the journal's `user`).
    name: &'a str,
    id: Option<uuid::Uuid>,
    /// What goes into the URL: the object id when known.
    address: &'a str,
    /// An earlier run announced this write and recorded no answer, an unsettled one or a
    /// failure.
    earlier: bool,
}

/// Re-reads, compares with the plan's `before`, journals the intent, PATCHes, journals the
/// result. A write an earlier run of the plan tried is done already when the endpoint shows its
/// body. Errs only when the journal cannot be written (then nothing more may be sent).
async fn write_one(
    client: &GraphClient,
    target: &Target<'_>,
    write: &Write<'_>,
    journal: Option<&Journal>,
    breaker: &Breaker,
) -> Result<Outcome, super::JournalError> {
    let resource = Resource::of(write.endpoint);
    let user = target.address;
    match reread(client, user, write.endpoint).await {
        Ok(live) => {
            // A read, not a write: a token that reads but cannot write must still be found out.
            breaker.success(resource.read());
            if target.earlier && shows(write, &live) {
                // An earlier run's PATCH was made (its answer lost with the run, or unsettled),
                // or the value is there anyway: done, not sent again and not "changed since".
                let result = WriteResult::settled_by_read();
                if let Some(journal) = journal {
                    journal.result(target.name, target.id, write.endpoint, &result)?;
                }
                return Ok(Outcome::Written(result));
            }
            if let Some(drift) = drift(write, &live) {
                if super::verify::mismatches(write, &live).is_empty() {
                    // Not someone else's change: the plan's own values, made by an earlier
                    // run of it (re-applying an applied plan). Nothing to send; not journalled,
                    // since this run made no write (the run that did recorded it).
                    return Ok(Outcome::Written(WriteResult::already_applied()));
                }
                return Ok(Outcome::Drifted(UserError {
                    endpoint: Some(write.endpoint),
                    status: None,
                    code: "changedSincePlan".into(),
                    message: format!(
                        "{drift} since the plan; nothing was written over it, run plan again"
                    ),
                    request_id: None,
                }));
            }
        }
        Err(error) => {
            breaker.failure(resource.read(), &error);
            return Ok(Outcome::Failed(failure(&error), error));
        }
    }
    if let Some(journal) = journal {
        journal.intent(target.name, target.id, write)?;
    }
    let outcome = match client.patch(user, write.endpoint, &write.body()).await {
        Ok(outcome) => {
            breaker.success(resource.write());
            Outcome::Written(written(outcome))
        }
        Err(error) => {
            breaker.failure(resource.write(), &error);
            Outcome::Failed(failure(&error), error)
        }
    };
    if let Some(journal) = journal {
        let (Outcome::Written(result) | Outcome::Failed(result, _)) = &outcome else {
            unreachable!("a sent write is written or failed");
        };
        journal.result(target.name, target.id, write.endpoint, result)?;
    }
    Ok(outcome)
}

/// The endpoint's current state, as Graph returns it (the other endpoint stays unread).
async fn reread(
    client: &GraphClient,
    user: &str,
    endpoint: Endpoint,
) -> Result<LiveUser, GraphError> {
    let mut live = LiveUser::default();
    match endpoint {
        Endpoint::SignInPreferences => {
            live.sign_in = Some(client.sign_in_preferences(user, Purpose::Reread).await?)
        }
        Endpoint::Requirements => {
            live.requirements = Some(client.requirements(user, Purpose::Reread).await?)
        }
    }
    Ok(live)
}

/// Whether the endpoint shows every value the write sets.
fn shows(write: &Write<'_>, live: &LiveUser) -> bool {
    write
        .body()
        .iter()
        .all(|(field, value)| live_value(field, live) == *value)
}

/// How the live values differ from the plan's `before`, if they do: `perUserMfaState was
/// "enforced", is now "disabled"`.
fn drift(write: &Write<'_>, live: &LiveUser) -> Option<String> {
    let changes: Vec<String> = write
        .before()
        .iter()
        .filter_map(|(field, was)| {
            let now = live_value(field, live);
            // Graph's values reach the terminal: escaped.
            (now != *was).then(|| {
                crate::text::printable(&format!(
                    "{} was {was}, is now {now}",
                    field.graph_property()
                ))
                .into_owned()
            })
        })
        .collect();
    (!changes.is_empty()).then(|| changes.join("; "))
}
