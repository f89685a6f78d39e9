//! The Terraform-like text plan and the apply summary.

use std::io;

use crate::engine::verify::{Skipped, Verification};
use crate::plan::policy::PolicyPlan;
use crate::plan::{Plan, Status, Summary, UserError, UserPlan, Value};
use crate::text::printable;

/// `Tenant contoso.onmicrosoft.com (9c0e…) at https://graph.microsoft.com`: which directory a
/// plan is about, before anything else (an admin with two tenants must never have to guess).
pub fn tenant_line(plan: &Plan) -> String {
    tenant_line_for(
        &plan.graph,
        plan.tenant_id.as_deref(),
        plan.tenant_domain.as_deref(),
    )
}

/// [`tenant_line`] from its parts (for documents other than plans).
pub fn tenant_line_for(graph: &str, id: Option<&str>, domain: Option<&str>) -> String {
    let tenant = match (domain, id) {
        (Some(domain), Some(id)) => format!("{} ({})", printable(domain), printable(id)),
        (Some(domain), None) => printable(domain).into_owned(),
        (None, Some(id)) => printable(id).into_owned(),
        (None, None) => "unknown (the token may not read /organization)".to_owned(),
    };
    format!("Tenant {tenant} at {graph}")
}

/// The plan as people read it: the tenant, one block per user not in sync, then the `Plan:`
/// line. A plan with users that could not be read says it is incomplete, never "no changes".
/// Written as it goes: no copy of the whole text is built.
pub fn render_plan_text(plan: &Plan, out: &mut impl io::Write) -> io::Result<()> {
    writeln!(out, "{}", tenant_line(plan))?;
    writeln!(out)?;
    if let Some(policy) = &plan.policy {
        render_policy(out, policy)?;
        writeln!(out)?;
    }
    let unread = plan.summary.failed;
    let policy_writes = plan.policy.as_ref().is_some_and(PolicyPlan::has_write);
    if plan.users.is_empty() && policy_writes {
        if plan.summary.users > 0 {
            writeln!(out, "Every user in the manifest matches the desired state.")?;
        }
    } else if plan.users.is_empty() {
        writeln!(
            out,
            "No changes. Every user in the manifest matches the desired state."
        )?;
    } else {
        if unread > 0 {
            writeln!(
                out,
                "The plan is incomplete: {} could not be read (listed with the reason below); \
                 run plan again once Graph answers for them.",
                users(unread)
            )?;
            if plan.summary.writes > 0 {
                writeln!(out, "mfactl would make these changes for the others:")?;
            }
        } else if plan.summary.writes > 0 {
            writeln!(out, "mfactl will make these changes:")?;
        } else {
            writeln!(out, "No changes to make, but these users need attention:")?;
        }
        writeln!(out)?;
        for user in &plan.users {
            render_user(out, user)?;
        }
        writeln!(out)?;
    }
    writeln!(out, "{}", plan_line(&plan.summary))?;
    if let Some(estimate) = plan.summary.estimate.filter(|e| e.writes > 0) {
        writeln!(out, "Applying it makes {}.", estimate.describe())?;
    }
    Ok(())
}

/// At most this many users not reached are named; the JSON report lists them all.
const NOT_REACHED_SHOWN: usize = 100;

/// The report after apply: failures (and writes reading back did not show) first in detail,
/// then the users the run never reached
/// (when it stopped early), then the `Apply:` line, whose counts add up to the manifest's users.
pub fn render_apply_text(plan: &Plan, out: &mut impl io::Write) -> io::Result<()> {
    if let Some(policy) = plan.policy.as_ref().filter(|p| p.status != Status::InSync) {
        render_policy(out, policy)?;
        writeln!(out)?;
    }
    let mut failed = plan
        .users
        .iter()
        .filter(|u| {
            matches!(
                u.status,
                Status::Failed | Status::Drifted | Status::Unverified
            )
        })
        .peekable();
    if failed.peek().is_some() {
        writeln!(out, "Not converged:")?;
        for user in failed {
            render_user(out, user)?;
            // Every failed write, not only the first error kept on the user.
            for write in user.writes() {
                if let Some(result) = write.result().filter(|r| !r.ok)
                    && user.error.as_ref().and_then(|e| e.endpoint) != Some(write.endpoint)
                {
                    writeln!(
                        out,
                        "      {}: {}{}{}",
                        write.endpoint,
                        result
                            .status
                            .map_or_else(|| "no answer ".to_owned(), |s| format!("HTTP {s} ")),
                        result.code.as_deref().unwrap_or(""),
                        request_id_suffix(
                            result
                                .request_id
                                .as_ref()
                                .map(|id| id.to_string())
                                .as_deref()
                        ),
                    )?;
                }
            }
        }
        writeln!(out)?;
    }
    let not_reached = || plan.users.iter().filter(|u| u.status == Status::Change);
    let not_reached_count = not_reached().count();
    if not_reached_count > 0 {
        writeln!(
            out,
            "Not reached (writes not sent: the run stopped, or Graph refused every write of that kind; they are still planned):"
        )?;
        for user in not_reached().take(NOT_REACHED_SHOWN) {
            let done = user
                .writes()
                .filter(|w| w.result().is_some_and(|r| r.ok))
                .count();
            let partly = if done > 0 {
                format!(" ({done} of {} writes made)", user.write_count())
            } else {
                String::new()
            };
            writeln!(out, "  - {}{partly}", user.user)?;
        }
        if not_reached_count > NOT_REACHED_SHOWN {
            writeln!(
                out,
                "  ... and {} more (apply --format json lists every one)",
                not_reached_count - NOT_REACHED_SHOWN
            )?;
        }
        writeln!(out)?;
    }
    let s = &plan.summary;
    let applied = s.applied.unwrap_or(0);
    let converged = plan
        .users
        .iter()
        .filter(|u| u.status == Status::Applied)
        .count();
    let drifted = if s.drifted > 0 {
        format!(", {} changed since the plan", s.drifted)
    } else {
        String::new()
    };
    let not_reached = if s.not_reached > 0 {
        format!(", {} not reached", s.not_reached)
    } else {
        String::new()
    };
    let unverified = if s.unverified > 0 {
        format!(", {} unverified", s.unverified)
    } else {
        String::new()
    };
    let confirmed = plan
        .users
        .iter()
        .flat_map(|u| u.writes())
        .filter(|w| w.result().is_some_and(|r| r.settled_by_read))
        .count();
    let confirmed = if confirmed > 0 {
        format!(" ({confirmed} confirmed by reading back: their answer was lost)")
    } else {
        String::new()
    };
    writeln!(
        out,
        "Apply: {} changed ({applied} of {} writes applied{confirmed}), {} in sync, {} blocked, {} not found, {} failed{drifted}{unverified}{not_reached}{}.",
        users(converged as u64),
        s.writes + s.policy_writes,
        s.in_sync,
        s.blocked,
        s.not_found,
        s.failed,
        protected_count(s),
    )?;
    Ok(())
}

/// What reading back after apply found, for stderr: `Verified: 300 users read back (450
/// reads), 2 unverified.`, or why it did not run.
pub fn verify_line(verification: &Verification) -> String {
    let v = verification;
    let mut line = match v.skipped_because {
        Some(Skipped::NotAsked) => {
            return "Not verified: --no-verify (the writes were not read back).".to_owned();
        }
        Some(Skipped::Interrupted) => {
            return "Not verified: the run was interrupted (run apply again to finish, then it \
                    reads its writes back)."
                .to_owned();
        }
        Some(Skipped::Halted) => {
            return "Not verified: the run stopped early (the writes were not read back)."
                .to_owned();
        }
        None => format!(
            "Verified: {} read back ({} {}), {} unverified",
            users(v.checked),
            v.reads,
            if v.reads == 1 { "read" } else { "reads" },
            v.unverified
        ),
    };
    if v.unverified == 0 && v.unreadable == 0 && v.skipped == 0 && v.checked > 0 {
        line.push_str(": every write shows");
    }
    if v.unreadable > 0 {
        line.push_str(&format!(
            "; {} could not be read back (left applied, with a note)",
            users(v.unreadable)
        ));
    }
    if v.skipped > 0 {
        line.push_str(&format!(
            "; {} not read back: verification stopped early",
            users(v.skipped)
        ));
    }
    line.push('.');
    if let Some(error) = &v.journal_error {
        line.push_str(&format!(
            " The journal's verify lines are incomplete: {}.",
            printable(&error.to_string())
        ));
    }
    line
}

/// The tenant policy's block: one line per changed property, `part.property: before -> after`.
fn render_policy(out: &mut impl io::Write, policy: &PolicyPlan) -> io::Result<()> {
    const NAME: &str = "authenticationMethodsPolicy";
    let (sign, label) = match policy.status {
        Status::InSync => ("=", " (in sync)"),
        Status::Change | Status::Blocked => ("~", ""),
        Status::Applied => ("~", " (applied)"),
        Status::Failed | Status::NotFound => ("x", " (failed)"),
        Status::Drifted => ("x", " (changed since the plan: not written)"),
        Status::Unverified => ("x", " (written, but reading back does not show it)"),
        Status::Protected => ("#", " (protected: never written)"),
    };
    writeln!(out, "  {sign} policy {NAME}{label}")?;
    for change in &policy.changes {
        writeln!(
            out,
            "      {}.{}: {} -> {}",
            change.part,
            change.property,
            printable(&compact(&change.before)),
            printable(&compact(&change.after))
        )?;
    }
    for note in &policy.notes {
        writeln!(out, "      note: {note}")?;
    }
    if let Some(error) = &policy.error {
        writeln!(out, "      {}", describe_error(error))?;
    }
    Ok(())
}

/// A policy value on one line: a string bare, anything else as JSON.
fn compact(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn render_user(out: &mut impl io::Write, user: &UserPlan) -> io::Result<()> {
    let (sign, label) = match user.status {
        Status::Change => ("~", ""),
        Status::Applied => ("~", " (applied)"),
        Status::Blocked => ("!", " (blocked)"),
        Status::NotFound => ("?", " (not found)"),
        Status::Failed => ("x", " (failed)"),
        Status::Drifted => ("x", " (changed since the plan: not written)"),
        Status::Unverified => ("x", " (written, but reading back does not show it)"),
        Status::Protected => ("#", " (protected: never written)"),
        Status::InSync => (" ", ""),
    };
    writeln!(out, "  {sign} {}{label}", user.user)?;
    for field in &user.fields {
        writeln!(
            out,
            "      {}: {} -> {}",
            field.field,
            show(&field.before),
            show(&field.after)
        )?;
    }
    if let Some(reason) = user.reason() {
        writeln!(out, "      blocked: {reason}")?;
    }
    for note in user.notes() {
        writeln!(out, "      note: {note}")?;
    }
    if let Some(error) = &user.error {
        writeln!(out, "      {}", describe_error(error))?;
    }
    Ok(())
}

fn describe_error(error: &UserError) -> String {
    let status = error
        .status
        .map_or_else(String::new, |s| format!("HTTP {s} "));
    let endpoint = error
        .endpoint
        .map_or_else(String::new, |e| format!("{e}: "));
    format!(
        "{endpoint}{status}{}: {}{}",
        error.code,
        error.message,
        request_id_suffix(error.request_id.as_deref())
    )
}

fn request_id_suffix(request_id: Option<&str>) -> String {
    request_id.map_or_else(String::new, |id| format!(" (request-id {id})"))
}

/// A value as Graph returned it, escaped: live values come from Graph and reach the terminal.
fn show(value: &Value) -> String {
    match value.as_str() {
        Some(s) => printable(s).into_owned(),
        None => printable(&value.to_string()).into_owned(),
    }
}

fn users(n: u64) -> String {
    if n == 1 {
        "1 user".to_owned()
    } else {
        format!("{n} users")
    }
}

/// `Plan: 2 users to change (3 writes), 400 in sync, 1 blocked, 1 not found, 0 failed.`
/// With unread users: `..., 3 failed (could not be read: the plan is incomplete).`
/// With protected users: `..., 0 failed, 2 protected (never written).`
pub fn plan_line(s: &Summary) -> String {
    format!(
        "Plan: {} to change ({} {}), {} in sync, {} blocked, {} not found, {} failed{}{}.",
        users(s.to_change),
        s.writes,
        if s.writes == 1 { "write" } else { "writes" },
        s.in_sync,
        s.blocked,
        s.not_found,
        s.failed,
        if s.failed > 0 {
            " (could not be read: the plan is incomplete)"
        } else {
            ""
        },
        protected_count(s),
    ) + &policy_line(s)
}

/// `, 2 protected (never written)` when the manifest's `protect:` list kept users from writes.
fn protected_count(s: &Summary) -> String {
    if s.protected == 0 {
        return String::new();
    }
    format!(", {} protected (never written)", s.protected)
}

/// ` Policy: 1 write.` after the users' counts, when the policy is written.
fn policy_line(s: &Summary) -> String {
    if s.policy_writes == 0 {
        return String::new();
    }
    format!(
        " Policy: {} {}.",
        s.policy_writes,
        if s.policy_writes == 1 {
            "write"
        } else {
            "writes"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verify_line_says_why_nothing_was_read_back() {
        let skipped = |why| Verification {
            skipped_because: Some(why),
            ..Verification::default()
        };
        assert!(verify_line(&skipped(Skipped::NotAsked)).starts_with("Not verified: --no-verify"));
        assert!(
            verify_line(&skipped(Skipped::Interrupted))
                .starts_with("Not verified: the run was interrupted")
        );
        assert!(
            verify_line(&skipped(Skipped::Halted))
                .starts_with("Not verified: the run stopped early")
        );
    }

    #[test]
    fn the_verify_line_counts_each_outcome() {
        let all_shown = Verification {
            checked: 1,
            reads: 1,
            ..Verification::default()
        };
        assert_eq!(
            verify_line(&all_shown),
            "Verified: 1 user read back (1 read), 0 unverified: every write shows."
        );
        let mixed = Verification {
            checked: 10,
            unverified: 2,
            unreadable: 1,
            skipped: 3,
            reads: 22,
            ..Verification::default()
        };
        assert_eq!(
            verify_line(&mixed),
            "Verified: 10 users read back (22 reads), 2 unverified; 1 user could not be read \
             back (left applied, with a note); 3 users not read back: verification stopped early."
        );
    }
}
