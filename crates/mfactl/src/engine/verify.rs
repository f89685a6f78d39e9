//! Read-back verification after apply: Graph can answer 204 to a PATCH and not keep the value
//! (docs/commands.md, "Read-back"), so after the writes every endpoint that was written
//! is read once more and a user whose endpoints do not show what was written is `unverified`
//! (exit code 3).
//!
//! Every write Graph accepted is read back, whatever became of the user's other fields: a
//! blocked user's other writes, and the accepted writes of a user whose other write failed or
//! drifted, included (a write not sent because the endpoint already showed it is not read
//! again). One GET per PATCH, through the same client as everything else (paced, retried,
//! batched), so verification costs reads, which Graph meters 40 times looser than writes. A
//! value that does not show yet is read once more after a short pause before it is called not
//! kept: a read straight after a write may reach a replica that has not seen it.
//!
//! A write not kept is marked on its result (`not_kept`), and its user becomes `unverified`
//! (a blocked user too: its `reason` stays), except a user already `failed` or `drifted`, who
//! keeps that status (already not converged, with its error) and gets a note; either way apply
//! exits 3.
//!
//! A read that fails (after the transport's retries) is not evidence that a write was lost: the
//! user keeps its status, with a note saying it could not be read back, and is counted apart
//! ([`Verification::unreadable`]). Verification is skipped when the writes were interrupted or
//! halted (the run's report says what was done; run apply again to finish), and stops early on
//! Ctrl-C or a run-wide failure, counting the users it did not read ([`Verification::skipped`]).
//! It never writes to Graph.

use std::time::Duration;

use futures::StreamExt;
use futures::stream;
use serde_json::{Map, Value as Json};

use super::journal::{Journal, JournalError};
use super::outcome::user_error;
use super::{Breaker, Interrupt, RunError};
use crate::graph::permissions::Resource;
use crate::graph::{GraphClient, GraphError, Purpose};
use crate::model::{Endpoint, Field, PerUserMfaState};
use crate::plan::{
    LiveUser, NOT_KEPT, Plan, Status, UserError, UserPlan, Value, Write, live_value,
};

/// How to verify.
pub struct VerifyOptions<'a> {
    /// `false` skips verification (`apply --no-verify`).
    pub enabled: bool,
    /// Where each unverified endpoint is recorded (a `verify` line).
    pub journal: Option<&'a Journal>,
    /// Users read back at once (the transport bounds requests in flight).
    pub concurrency: usize,
    /// Once set no new user is read.
    pub interrupt: Interrupt,
    /// How long to wait before reading a value that did not show a second time.
    pub recheck_after: Duration,
}

/// Why verification did not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// `--no-verify`.
    NotAsked,
    /// The writes were stopped by Ctrl-C.
    Interrupted,
    /// The writes stopped early (a refused token, Graph unreachable, the journal).
    Halted,
}

/// What reading back found.
#[derive(Debug, Default)]
pub struct Verification {
    /// Set when verification did not run at all.
    pub skipped_because: Option<Skipped>,
    /// Users read back (every endpoint written for them was read).
    pub checked: u64,
    /// Of those, users an endpoint of which did not show what was written: now `unverified`.
    pub unverified: u64,
    /// Of those, `failed` or `drifted` users whose other, accepted, write did not show either:
    /// they keep their status, with a note.
    pub not_kept_elsewhere: u64,
    /// Users whose read-back failed: left as they were, with a note.
    pub unreadable: u64,
    /// Users not read back because verification stopped (Ctrl-C, a run-wide failure).
    pub skipped: u64,
    /// GETs sent to verify (rechecks included).
    pub reads: u64,
    /// The journal could not be written: the `verify` lines after it are missing.
    pub journal_error: Option<JournalError>,
}

/// One written property that reading back did not show.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    pub field: Field,
    /// What was written.
    pub expected: Value,
    /// What Graph showed.
    pub seen: Value,
}

/// Whether a written value shows as `seen`. Graph promotes a user written `enabled` to
/// `enforced` when they have a registered MFA method (graph-api.md §2): that is the write
/// kept, as the planner counts it, not lost.
pub fn kept(expected: &Value, seen: &Value) -> bool {
    expected == seen
        || (*expected == Value::State(PerUserMfaState::Enabled)
            && *seen == Value::State(PerUserMfaState::Enforced))
}

/// The properties of `write`'s body that `live` does not show; empty when Graph kept them all.
pub fn mismatches(write: &Write<'_>, live: &LiveUser) -> Vec<Mismatch> {
    write
        .body()
        .iter()
        .filter_map(|(field, expected)| {
            let seen = live_value(field, live);
            (!kept(expected, &seen)).then(|| Mismatch {
                field,
                expected: expected.clone(),
                seen,
            })
        })
        .collect()
}

/// Reads back the endpoints apply wrote, unless `halted` says the writes stopped early or the
/// options say not to; marks users whose writes did not show `unverified` (with an error
/// saying what was expected and what Graph shows) and recounts the summary.
pub async fn after_apply(
    client: &GraphClient,
    plan: &mut Plan,
    halted: Option<&RunError>,
    options: VerifyOptions<'_>,
) -> Verification {
    let skipped_because = match halted {
        _ if !options.enabled => Some(Skipped::NotAsked),
        Some(RunError::Interrupted) => Some(Skipped::Interrupted),
        Some(_) => Some(Skipped::Halted),
        None if options.interrupt.is_set() => Some(Skipped::Interrupted),
        None => None,
    };
    if skipped_because.is_some() {
        return Verification {
            skipped_because,
            ..Verification::default()
        };
    }
    let before = client.transport().stats().calls.verifies;
    let mut verification = verify(client, plan, &options).await;
    verification.reads = client.transport().stats().calls.verifies - before;
    plan.summary = plan.count_after_apply(plan.summary.users);
    verification
}

/// What reading one user back found.
enum Outcome {
    /// Every written endpoint shows what was written.
    Verified,
    /// These endpoints do not (after a second look).
    Unverified(Vec<(Endpoint, Vec<Mismatch>)>),
    /// A read failed, and nothing read showed a lost write.
    Unreadable(Endpoint, GraphError),
    /// Not read: verification stopped first.
    Skipped,
}

async fn verify(
    client: &GraphClient,
    plan: &mut Plan,
    options: &VerifyOptions<'_>,
) -> Verification {
    let breaker = Breaker::with_interrupt(options.interrupt.clone());
    let breaker = &breaker;
    let recheck_after = options.recheck_after;
    let mut outcomes = stream::iter(plan.users.iter_mut().filter(|u| is_verifiable(u)))
        .map(|user| async move {
            let outcome = if breaker.is_tripped() {
                Outcome::Skipped
            } else {
                verify_user(client, user, breaker, recheck_after).await
            };
            (user, outcome)
        })
        .buffer_unordered(options.concurrency.max(1));
    let mut verification = Verification::default();
    while let Some((user, outcome)) = outcomes.next().await {
        match outcome {
            Outcome::Verified => verification.checked += 1,
            Outcome::Unverified(endpoints) => {
                verification.checked += 1;
                if let (Some(journal), None) = (options.journal, &verification.journal_error)
                    && let Err(error) = journal_unverified(journal, user, &endpoints)
                {
                    verification.journal_error = Some(error);
                }
                if mark_unverified(user, &endpoints) {
                    verification.unverified += 1;
                } else {
                    verification.not_kept_elsewhere += 1;
                }
            }
            Outcome::Unreadable(endpoint, error) => {
                verification.unreadable += 1;
                if !Breaker::is_run_wide(&error) {
                    tracing::warn!(user = %crate::text::printable(&user.user), %endpoint, %error, "could not read the write back");
                }
                let error = user_error(Some(endpoint), &error);
                user.add_note(crate::text::printable(&format!(
                    "not verified: reading {endpoint} back failed ({}{}); the write was accepted",
                    error.status.map_or_else(String::new, |s| format!("HTTP {s} ")),
                    error.code
                )).into_owned());
            }
            Outcome::Skipped => verification.skipped += 1,
        }
    }
    verification
}

/// The writes of `user` a read-back can say something about: those Graph accepted in this run
/// (a write not sent because the endpoint already showed it was read just before).
fn verifiable<'a>(user: &'a UserPlan) -> impl Iterator<Item = Write<'a>> + 'a {
    user.writes()
        .filter(|w| w.result().is_some_and(|r| r.ok && !r.already_applied))
}

/// Users with a write to read back, whatever their status.
fn is_verifiable(user: &UserPlan) -> bool {
    verifiable(user).next().is_some()
}

/// Reads each written endpoint of `user` (concurrently: the transport batches them), and
/// reads a mismatched one once more after `recheck_after`.
async fn verify_user(
    client: &GraphClient,
    user: &UserPlan,
    breaker: &Breaker,
    recheck_after: Duration,
) -> Outcome {
    let address = address(user);
    let address = &*address;
    let writes: Vec<Write<'_>> = verifiable(user).collect();
    let first = futures::future::join_all(
        writes
            .iter()
            .map(|write| read_back(client, address, write.endpoint, breaker)),
    )
    .await;
    let mut lost = Vec::new();
    let mut failed = None;
    for (write, read) in writes.iter().zip(first) {
        match read {
            Ok(live) => {
                let missing = mismatches(write, &live);
                if !missing.is_empty() {
                    lost.push((*write, missing));
                }
            }
            Err(error) => {
                failed.get_or_insert((write.endpoint, error));
            }
        }
    }
    if !lost.is_empty() {
        tokio::time::sleep(recheck_after).await;
        let again = futures::future::join_all(
            lost.iter()
                .map(|(write, _)| read_back(client, address, write.endpoint, breaker)),
        )
        .await;
        let mut unverified = Vec::new();
        for ((write, first_missing), read) in lost.into_iter().zip(again) {
            // A second read that fails leaves the first one standing: Graph showed the old
            // value, and nothing since showed the new one.
            let missing = match read {
                Ok(live) => mismatches(&write, &live),
                Err(_) => first_missing,
            };
            if !missing.is_empty() {
                unverified.push((write.endpoint, missing));
            }
        }
        if !unverified.is_empty() {
            return Outcome::Unverified(unverified);
        }
    }
    match failed {
        Some((endpoint, error)) => Outcome::Unreadable(endpoint, error),
        None => Outcome::Verified,
    }
}

/// What goes into the URL: the object id when the plan resolved it (as apply addressed it).
fn address(user: &UserPlan) -> std::borrow::Cow<'_, str> {
    match user.id {
        Some(id) => id.hyphenated().to_string().into(),
        None => (*user.user).into(),
    }
}

/// One endpoint's current state, read for verification; counted by the breaker like any read.
async fn read_back(
    client: &GraphClient,
    user: &str,
    endpoint: Endpoint,
    breaker: &Breaker,
) -> Result<LiveUser, GraphError> {
    let mut live = LiveUser::default();
    let read = match endpoint {
        Endpoint::SignInPreferences => client
            .sign_in_preferences(user, Purpose::Verify)
            .await
            .map(|answer| live.sign_in = Some(answer)),
        Endpoint::Requirements => client
            .requirements(user, Purpose::Verify)
            .await
            .map(|answer| live.requirements = Some(answer)),
    };
    let need = Resource::of(endpoint).read();
    match read {
        Ok(()) => {
            breaker.success(need);
            Ok(live)
        }
        Err(error) => {
            breaker.failure(need, &error);
            Err(error)
        }
    }
}

/// Marks each of `endpoints`' writes not kept, and `user` unverified, its error saying, per
/// endpoint, what was written and what Graph shows (escaped: Graph's values reach the
/// terminal), with the PATCH's request-id. A `failed` or `drifted` user keeps its status and
/// error (already not converged) and gets the same words as a note. Returns whether the user is
/// now unverified.
fn mark_unverified(user: &mut UserPlan, endpoints: &[(Endpoint, Vec<Mismatch>)]) -> bool {
    let one = endpoints.len() == 1;
    let message = endpoints
        .iter()
        .map(|(endpoint, missing)| {
            let shown = describe(missing);
            if one {
                shown
            } else {
                format!("{endpoint}: {shown}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    for (endpoint, _) in endpoints {
        user.set_not_kept(*endpoint);
    }
    if matches!(user.status, Status::Failed | Status::Drifted) {
        let endpoint = if one {
            format!("{} ", endpoints[0].0)
        } else {
            String::new()
        };
        user.add_note(format!(
            "not kept: Graph accepted the {endpoint}write but reading it back shows {message}"
        ));
        return false;
    }
    let first = endpoints[0].0;
    let request_id = user
        .write(first)
        .and_then(|w| w.result())
        .and_then(|r| r.request_id)
        .map(|id| id.to_string());
    user.status = Status::Unverified;
    user.error = Some(Box::new(UserError {
        endpoint: one.then_some(first),
        status: None,
        code: NOT_KEPT.into(),
        message: format!(
            "Graph accepted the write but reading it back shows {message}; run plan to see the \
             user's state, and apply again"
        ),
        request_id,
    }));
    true
}

/// `perUserMfaState "enforced", expected "disabled"`, escaped.
fn describe(missing: &[Mismatch]) -> String {
    let parts: Vec<String> = missing
        .iter()
        .map(|m| {
            format!(
                "{} {}, expected {}",
                m.field.graph_property(),
                m.seen,
                m.expected
            )
        })
        .collect();
    crate::text::printable(&parts.join(", ")).into_owned()
}

/// One `verify` line per unverified endpoint: the user, what was written, what Graph shows.
fn journal_unverified(
    journal: &Journal,
    user: &UserPlan,
    endpoints: &[(Endpoint, Vec<Mismatch>)],
) -> Result<(), JournalError> {
    for (endpoint, missing) in endpoints {
        let Some(write) = user.write(*endpoint) else {
            continue;
        };
        let seen: Map<String, Json> = missing
            .iter()
            .map(|m| {
                let value = serde_json::to_value(&m.seen).expect("values serialise");
                (m.field.graph_property().to_owned(), value)
            })
            .collect();
        journal.verify(&user.user, user.id, &write, &seen)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::wire::{Requirements, SignInPreferences};
    use crate::plan::FieldChange;

    fn user(fields: Vec<(Field, Value, Value)>) -> UserPlan {
        let fields = fields
            .into_iter()
            .map(|(field, before, after)| FieldChange {
                field,
                before,
                after,
                blocked: false,
            })
            .collect();
        UserPlan::new(
            "megan@contoso.com".into(),
            Status::Applied,
            fields,
            None,
            vec![],
        )
    }

    fn state(text: &str) -> Value {
        Value::text(text)
    }

    fn live(preferred: Option<&str>, system: Option<bool>, mfa: Option<&str>) -> LiveUser {
        LiveUser {
            sign_in: Some(SignInPreferences {
                is_system_preferred_authentication_method_enabled: system,
                user_preferred_method_for_secondary_authentication: preferred.map(str::to_owned),
                system_preferred_authentication_method: None,
            }),
            requirements: Some(Requirements {
                per_user_mfa_state: mfa.map(str::to_owned),
            }),
            methods: None,
        }
    }

    #[test]
    fn a_kept_write_has_no_mismatch() {
        let user = user(vec![
            (Field::PreferredMethod, state("sms"), state("oath")),
            (
                Field::SystemPreferred,
                Value::Bool(true),
                Value::Bool(false),
            ),
            (Field::PerUserMfaState, state("enforced"), state("disabled")),
        ]);
        let live = live(Some("oath"), Some(false), Some("disabled"));
        for write in user.writes() {
            assert_eq!(mismatches(&write, &live), vec![], "{}", write.endpoint);
        }
    }

    #[test]
    fn a_lost_write_names_each_property_not_shown() {
        let user = user(vec![
            (Field::PreferredMethod, state("sms"), state("oath")),
            (
                Field::SystemPreferred,
                Value::Bool(true),
                Value::Bool(false),
            ),
        ]);
        // The flag was kept, the preferred method was not.
        let live = live(Some("sms"), Some(false), None);
        let write = user.write(Endpoint::SignInPreferences).unwrap();
        assert_eq!(
            mismatches(&write, &live),
            vec![Mismatch {
                field: Field::PreferredMethod,
                expected: state("oath"),
                seen: state("sms"),
            }]
        );
        assert_eq!(
            describe(&mismatches(&write, &live)),
            r#"userPreferredMethodForSecondaryAuthentication "sms", expected "oath""#
        );
    }

    #[test]
    fn enabled_promoted_to_enforced_counts_as_kept() {
        assert!(kept(&state("enabled"), &state("enforced")));
        assert!(!kept(&state("enforced"), &state("enabled")));
        assert!(!kept(&state("disabled"), &state("enforced")));
        assert!(!kept(&state("enabled"), &state("disabled")));
    }

    #[test]
    fn spelling_and_nulls_are_compared_exactly() {
        // Graph's own spelling is what was written; another spelling is another value.
        assert!(!kept(&state("sms"), &state("SMS")));
        assert!(!kept(&Value::Bool(false), &Value::Null));
        assert!(kept(&Value::Null, &Value::Null));
    }

    #[test]
    fn what_graph_shows_is_escaped() {
        let shown = describe(&[Mismatch {
            field: Field::PreferredMethod,
            expected: state("oath"),
            seen: state("sms\u{202e}\x1b[2J"),
        }]);
        assert!(
            !shown.contains('\u{202e}') && !shown.contains('\x1b'),
            "{shown}"
        );
        assert!(shown.contains(r"\u{202e}"), "{shown}");
    }

    fn accepted() -> crate::plan::WriteResult {
        crate::plan::WriteResult {
            status: Some(204),
            ..crate::plan::WriteResult::accepted()
        }
    }

    fn lost_state() -> Vec<(Endpoint, Vec<Mismatch>)> {
        vec![(
            Endpoint::Requirements,
            vec![Mismatch {
                field: Field::PerUserMfaState,
                expected: state("disabled"),
                seen: state("enforced"),
            }],
        )]
    }

    #[test]
    fn a_blocked_users_lost_write_makes_it_unverified_and_keeps_the_reason() {
        let fields = vec![
            FieldChange {
                field: Field::PreferredMethod,
                before: state("sms"),
                after: state("push"),
                blocked: true,
            },
            FieldChange {
                field: Field::PerUserMfaState,
                before: state("enforced"),
                after: state("disabled"),
                blocked: false,
            },
        ];
        let mut user = UserPlan::new(
            "megan@contoso.com".into(),
            Status::Blocked,
            fields,
            Some("push is not registered for megan@contoso.com".into()),
            vec![],
        );
        user.set_result(Endpoint::Requirements, accepted());
        assert!(
            is_verifiable(&user),
            "a blocked user's other write is read back"
        );
        assert!(mark_unverified(&mut user, &lost_state()));
        assert_eq!(user.status, Status::Unverified);
        assert_eq!(
            user.reason(),
            Some("push is not registered for megan@contoso.com")
        );
        let result = user
            .write(Endpoint::Requirements)
            .unwrap()
            .result()
            .unwrap();
        assert!(result.ok && result.not_kept && !result.landed());
        assert_eq!(user.error.as_ref().unwrap().code, NOT_KEPT);
    }

    #[test]
    fn a_failed_user_keeps_its_status_and_error_and_notes_the_lost_write() {
        let mut user = user(vec![
            (Field::PreferredMethod, state("sms"), state("oath")),
            (Field::PerUserMfaState, state("enforced"), state("disabled")),
        ]);
        user.status = Status::Failed;
        user.error = Some(Box::new(UserError {
            endpoint: Some(Endpoint::SignInPreferences),
            status: Some(503),
            code: "serviceUnavailable".into(),
            message: "try later".into(),
            request_id: None,
        }));
        user.set_result(Endpoint::Requirements, accepted());
        assert_eq!(
            verifiable(&user).map(|w| w.endpoint).collect::<Vec<_>>(),
            vec![Endpoint::Requirements],
            "only the accepted write is read back"
        );
        assert!(!mark_unverified(&mut user, &lost_state()));
        assert_eq!(user.status, Status::Failed);
        assert_eq!(user.error.as_ref().unwrap().code, "serviceUnavailable");
        assert!(
            user.notes()[0].starts_with("not kept: "),
            "{:?}",
            user.notes()
        );
        let result = user
            .write(Endpoint::Requirements)
            .unwrap()
            .result()
            .unwrap();
        assert!(result.not_kept);
    }

    #[test]
    fn a_write_found_already_applied_is_not_read_back() {
        let mut user = user(vec![(
            Field::PerUserMfaState,
            state("enforced"),
            state("disabled"),
        )]);
        user.set_result(
            Endpoint::Requirements,
            crate::plan::WriteResult::already_applied(),
        );
        assert!(!is_verifiable(&user));
    }

    #[test]
    fn an_unverified_user_says_what_was_expected_and_seen() {
        let mut user = user(vec![
            (Field::PreferredMethod, state("sms"), state("oath")),
            (Field::PerUserMfaState, state("enforced"), state("disabled")),
        ]);
        let only = vec![(
            Endpoint::Requirements,
            vec![Mismatch {
                field: Field::PerUserMfaState,
                expected: state("disabled"),
                seen: state("enforced"),
            }],
        )];
        mark_unverified(&mut user, &only);
        assert_eq!(user.status, Status::Unverified);
        let error = user.error.as_ref().unwrap();
        assert_eq!(error.endpoint, Some(Endpoint::Requirements));
        assert_eq!(error.code, "notKept");
        assert!(
            error
                .message
                .contains(r#"perUserMfaState "enforced", expected "disabled""#),
            "{}",
            error.message
        );
        let both = vec![
            (
                Endpoint::SignInPreferences,
                vec![Mismatch {
                    field: Field::PreferredMethod,
                    expected: state("oath"),
                    seen: state("sms"),
                }],
            ),
            only[0].clone(),
        ];
        mark_unverified(&mut user, &both);
        let error = user.error.as_ref().unwrap();
        assert_eq!(error.endpoint, None);
        assert!(
            error.message.contains("signInPreferences: ")
                && error.message.contains("; requirements: "),
            "{}",
            error.message
        );
    }
}
