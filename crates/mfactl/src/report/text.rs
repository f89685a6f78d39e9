//! The Terraform-like text plan and the apply summary.

use std::io;

use crate::engine::verify::{Skipped, Verification};
use crate::plan::category::{Category, Phase};
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

/// How the text plan is laid out.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    /// Each blocked user's whole reason and advice, not only the grouped one (`--detail`).
    pub detail: bool,
    /// The summary alone, without the users (`--summary`).
    pub summary_only: bool,
    /// ANSI colours (a terminal, and `NO_COLOR` unset).
    pub color: bool,
}

/// At most this many kinds of change, and of reason, open the plan: a summary that fits the
/// first screen, whatever the number of users.
const CHANGES_SHOWN: usize = 10;
const REASONS_SHOWN: usize = 8;

/// The plan as people read it, with the default layout ([`render_plan_text_with`]).
pub fn render_plan_text(plan: &Plan, out: &mut impl io::Write) -> io::Result<()> {
    render_plan_text_with(plan, out, TextOptions::default())
}

/// The plan as people read it: the tenant, then the summary (the counts, each kind of change
/// with how many users it moves, the reasons users need attention, grouped, and the cost), then
/// the policy and one block per user not in sync, and the `Plan:` line again at the end. A plan
/// with users that could not be read says it is incomplete, never "no changes". Written as it
/// goes: no copy of the whole text is built.
pub fn render_plan_text_with(
    plan: &Plan,
    out: &mut impl io::Write,
    options: TextOptions,
) -> io::Result<()> {
    let paint = Paint(options.color);
    writeln!(out, "{}", paint.bold(&tenant_line(plan)))?;
    writeln!(out)?;
    render_summary(plan, out, paint)?;
    writeln!(out)?;
    // The tenant policy is one block, not a population: the summary shows it whole.
    if let Some(policy) = &plan.policy {
        render_policy(out, policy)?;
        if options.summary_only {
            return Ok(());
        }
        writeln!(out)?;
    }
    if options.summary_only {
        return Ok(());
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
            render_user_with(out, user, options.detail, paint)?;
        }
        writeln!(out)?;
    }
    // Again at the end, where a long listing leaves the reader.
    writeln!(out, "{}", paint.bold(&plan_line(&plan.summary)))?;
    if let Some(estimate) = plan.summary.estimate.filter(|e| e.writes > 0) {
        writeln!(out, "Applying it makes {}.", estimate.describe())?;
    }
    Ok(())
}

/// The opening summary: the `Plan:` line, each kind of change with its users (most first),
/// the grouped reasons users need attention, and what applying costs. A few dozen lines at
/// most, for 50 users or 50,000.
fn render_summary(plan: &Plan, out: &mut impl io::Write, paint: Paint) -> io::Result<()> {
    let digest = super::digest::digest(plan);
    writeln!(out, "{}", paint.bold(&plan_line(&plan.summary)))?;
    if let Some(coverage) = super::digest::coverage_sentence(&plan.summary) {
        writeln!(out, "{coverage}")?;
    }
    if !digest.changes.is_empty() {
        writeln!(out, "Changes:")?;
        let width = digest
            .changes
            .iter()
            .take(CHANGES_SHOWN)
            .map(|c| change_label(c).chars().count())
            .max()
            .unwrap_or(0);
        for change in digest.changes.iter().take(CHANGES_SHOWN) {
            let label = change_label(change);
            writeln!(out, "  {label:<width$}  {}", people(change.users))?;
        }
        if digest.changes.len() > CHANGES_SHOWN {
            writeln!(
                out,
                "  ... and {} more {} of change (listed per user below; --format json has all)",
                digest.changes.len() - CHANGES_SHOWN,
                if digest.changes.len() - CHANGES_SHOWN == 1 {
                    "kind"
                } else {
                    "kinds"
                }
            )?;
        }
    }
    if !digest.reasons.is_empty() {
        writeln!(out, "Needs attention:")?;
        for reason in digest.reasons.iter().take(REASONS_SHOWN) {
            let examples: Vec<String> = reason
                .examples
                .iter()
                .map(|user| printable(user).into_owned())
                .collect();
            let more = if reason.users > reason.examples.len() as u64 {
                ", ..."
            } else {
                ""
            };
            let label = super::digest::status_label(reason.status, digest.applied_run);
            // "not found in the directory" says its status already.
            let text = if reason.text.starts_with(label) {
                paint.status(reason.status, &printable(&reason.text))
            } else {
                format!(
                    "{}: {}",
                    paint.status(reason.status, label),
                    printable(&reason.text)
                )
            };
            writeln!(
                out,
                "  {text} \u{2014} {} (e.g. {}{more})",
                people(reason.users),
                examples.join(", ")
            )?;
        }
        if digest.reasons.len() > REASONS_SHOWN {
            writeln!(
                out,
                "  ... and {} more {} (listed per user below)",
                digest.reasons.len() - REASONS_SHOWN,
                if digest.reasons.len() - REASONS_SHOWN == 1 {
                    "reason"
                } else {
                    "reasons"
                }
            )?;
        }
    }
    if let Some(estimate) = plan.summary.estimate.filter(|e| e.writes > 0) {
        writeln!(out, "Applying it makes {}.", estimate.describe())?;
    }
    Ok(())
}

/// `41,210 users`, `1 user`.
fn people(n: u64) -> String {
    format!(
        "{} {}",
        crate::text::thousands(n),
        if n == 1 { "user" } else { "users" }
    )
}

/// `perUserMfaState enforced → disabled`.
fn change_label(change: &super::digest::ChangeCount) -> String {
    format!(
        "{} {} \u{2192} {}",
        change.field,
        printable(&change.before),
        printable(&change.after)
    )
}

/// ANSI colours, or none.
#[derive(Clone, Copy, Debug)]
struct Paint(bool);

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }

    /// A status's sign or label in its colour: changes yellow, trouble red, blocked magenta,
    /// protected cyan, done green.
    fn status(self, status: Status, text: &str) -> String {
        let code = match status {
            Status::Change => "33",
            Status::Applied | Status::InSync => "32",
            Status::Blocked => "35",
            Status::Protected => "36",
            Status::NotFound | Status::Failed | Status::Drifted | Status::Unverified => "31",
        };
        self.wrap(code, text)
    }
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
            writeln!(out, "  - {}{partly}", printable(&user.user))?;
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
    writeln!(out, "{}", apply_line(plan))?;
    if let Some(coverage) = super::digest::coverage_sentence(&plan.summary) {
        writeln!(out, "{coverage}")?;
    }
    Ok(())
}

/// `Apply: 3 users changed (5 of 5 writes applied), 1 in sync, 0 blocked, 0 not found, 0
/// failed, 1 unverified.`: every user in one of its counts ([`Category`]). Writes confirmed by
/// reading back, and writes found already applied, are said inside the parentheses.
pub fn apply_line(plan: &Plan) -> String {
    let results = || {
        plan.users
            .iter()
            .flat_map(|u| u.writes())
            .filter_map(|w| w.result())
    };
    let confirmed = results().filter(|r| r.settled_by_read).count();
    let already = results().filter(|r| r.already_applied).count();
    let mut notes = String::new();
    if confirmed > 0 {
        notes.push_str(&format!(
            " ({confirmed} confirmed by reading back: their answer was lost)"
        ));
    }
    if already > 0 {
        notes.push_str(&format!(
            "; {already} already applied: Graph showed their values before they were sent, so \
             nothing was sent for them"
        ));
    }
    format!("Apply: {}.", counts(&plan.summary, Phase::Apply, &notes))
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
        None if v.checked == 0
            && v.unreadable == 0
            && v.skipped == 0
            && v.journal_error.is_none() =>
        {
            return "Verified: nothing to read back (Graph accepted no write in this run)."
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
    if v.unverified == 0
        && v.not_kept_elsewhere == 0
        && v.unreadable == 0
        && v.skipped == 0
        && v.checked > 0
    {
        line.push_str(": every write shows");
    }
    if v.not_kept_elsewhere > 0 {
        line.push_str(&format!(
            "; {} also failed or changed since the plan, and a write Graph accepted for them \
             does not show either (noted on each)",
            users(v.not_kept_elsewhere)
        ));
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
            printable(&super::digest::show_json(&change.before)),
            printable(&super::digest::show_json(&change.after))
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

fn render_user(out: &mut impl io::Write, user: &UserPlan) -> io::Result<()> {
    render_user_with(out, user, true, Paint(false))
}

/// One user's block. Without `detail`, a blocked field's reason is its short, grouped form
/// (the summary counts it; the advice is the same for every such user).
fn render_user_with(
    out: &mut impl io::Write,
    user: &UserPlan,
    detail: bool,
    paint: Paint,
) -> io::Result<()> {
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
    writeln!(
        out,
        "  {} {}{label}",
        paint.status(user.status, sign),
        // A name a selector's listing gave comes from Graph unchecked.
        printable(&user.user)
    )?;
    for field in &user.fields {
        let held = if field.blocked && field.field == crate::model::Field::PerUserMfaState {
            " (held: not written)"
        } else {
            ""
        };
        writeln!(
            out,
            "      {}: {} -> {}{held}",
            field.field,
            show(&field.before),
            show(&field.after)
        )?;
    }
    // A verdict with a gap or conditions says itself in the reason or a note.
    if let Some(coverage) = user
        .coverage
        .as_ref()
        .filter(|c| c.status == crate::plan::coverage::CoverageStatus::Covered)
    {
        writeln!(out, "      MFA stays required: {}", coverage.detail)?;
    }
    if let Some(reason) = user.reason() {
        if detail {
            writeln!(out, "      blocked: {reason}")?;
        } else {
            for short in super::digest::reason_texts(user, false) {
                writeln!(
                    out,
                    "      blocked: {} (--detail says why and what to do)",
                    printable(&short)
                )?;
            }
        }
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
    printable(&super::digest::show_value(value)).into_owned()
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
/// With protected users: `..., 0 failed, 2 protected (never written).` Every user is in one
/// of its counts ([`Category`]), so they add up to the manifest's users.
pub fn plan_line(s: &Summary) -> String {
    format!("Plan: {}.", counts(s, Phase::Plan, "")) + &policy_line(s)
}

/// The users of each category the document names, in order, with what each needs said:
/// `2 users to change (3 writes), 400 in sync, 1 blocked (1 with other changes), ...`.
/// `applied_notes` goes inside the parentheses of the users changed (apply only).
fn counts(s: &Summary, phase: Phase, applied_notes: &str) -> String {
    let parts: Vec<String> = s
        .categories(phase)
        .into_iter()
        .map(|(category, n)| match category {
            Category::ToChange => format!(
                "{} to change ({} {})",
                users(n),
                s.writes,
                if s.writes == 1 { "write" } else { "writes" }
            ),
            Category::Changed => format!(
                "{} changed ({} of {} writes applied{applied_notes})",
                users(n),
                s.applied.unwrap_or(0),
                s.writes + s.policy_writes
            ),
            Category::Blocked if s.blocked_with_writes > 0 => {
                format!("{n} blocked ({} with other changes)", s.blocked_with_writes)
            }
            Category::Failed if n > 0 && phase == Phase::Plan => {
                format!("{n} failed (could not be read: the plan is incomplete)")
            }
            Category::Protected => format!("{n} protected (never written)"),
            other => format!("{n} {}", other.label()),
        })
        .collect();
    parts.join(", ")
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

    fn text(options: TextOptions) -> String {
        let mut out = Vec::new();
        render_plan_text_with(&crate::report::digest::fixtures::plan(), &mut out, options).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_summary_opens_the_plan_grouped_and_coloured_only_when_asked() {
        let plain = text(TextOptions::default());
        let lines: Vec<&str> = plain.lines().collect();
        assert!(lines[2].starts_with("Plan: "), "{plain}");
        assert!(lines[3] == "Changes:", "{plain}");
        assert!(
            plain.contains("perUserMfaState enforced \u{2192} disabled  3 users"),
            "{plain}"
        );
        assert!(
            plain.contains("blocked: push not registered \u{2014} 2 users (e.g. "),
            "{plain}"
        );
        assert!(!plain.contains('\u{1b}'));
        // Hostile names reach the terminal escaped, in the summary's examples too.
        assert!(!plain.contains('\u{202e}'));

        let coloured = text(TextOptions {
            color: true,
            ..TextOptions::default()
        });
        assert!(coloured.contains("\x1b[1mPlan: "), "{coloured}");
        assert!(coloured.contains("\x1b[35mblocked\x1b[0m"), "{coloured}");

        let summary = text(TextOptions {
            summary_only: true,
            ..TextOptions::default()
        });
        assert!(plain.starts_with(&summary), "{summary}");
        assert!(summary.lines().count() < plain.lines().count());
    }

    #[test]
    fn the_summary_alone_still_shows_the_tenant_policy_block() {
        let plan = crate::report::digest::fixtures::with_policy();
        let mut out = Vec::new();
        let options = TextOptions {
            summary_only: true,
            ..TextOptions::default()
        };
        render_plan_text_with(&plan, &mut out, options).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("  ~ policy authenticationMethodsPolicy\n"),
            "{text}"
        );
        assert!(
            text.contains("systemCredentialPreferences.state: disabled -> enabled"),
            "{text}"
        );
        assert!(
            !text.contains("a@contoso.com\n      perUserMfaState"),
            "{text}"
        );
    }

    #[test]
    fn the_plan_line_counts_each_user_once() {
        let plan = crate::report::digest::fixtures::plan();
        assert_eq!(
            plan_line(&plan.summary),
            "Plan: 4 users to change (4 writes), 11 in sync, 3 blocked, 1 not found, 1 failed \
             (could not be read: the plan is incomplete)."
        );
        assert_eq!(plan.summary.categorised(), plan.summary.users);
    }

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
