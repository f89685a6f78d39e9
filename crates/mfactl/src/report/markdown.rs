//! The markdown report: a summary sized for a CI job's step summary (`$GITHUB_STEP_SUMMARY`),
//! read on a pull request or a scheduled run's page.
//!
//! GitHub renders it with HTML and math enabled, and user names come from the manifest and
//! Graph: a UPN holding `|` would split a table cell, `<img onerror>` would be HTML, `*` or a
//! backtick would restyle the rest of the line. Every piece of outside text goes through
//! [`escape`]. The summary is bounded (GitHub caps a step summary at 1 MiB): failures are cut
//! at [`FAILURES_SHOWN`], the other tables are groups, not users.

use std::io;

use super::digest::{self, Digest, status_label};
use crate::plan::Plan;
use crate::text::{printable, printable_capped, thousands};

/// At most this many failures are listed; the JSON and CSV reports list them all.
pub const FAILURES_SHOWN: usize = 50;

/// At most this many reasons are listed (each a group of users).
const REASONS_SHOWN: usize = 20;

/// At most this many users are listed with their fields; the JSON and CSV reports list them
/// all. A step summary is read, not searched: a hundred names say who, and how many more.
pub const USERS_SHOWN: usize = 100;

/// Writes the report.
pub fn render_markdown(plan: &Plan, out: &mut impl io::Write) -> io::Result<()> {
    let digest = digest::digest(plan);
    let command = if digest.applied_run { "apply" } else { "plan" };
    let tenant = match (&plan.tenant_domain, &plan.tenant_id) {
        (Some(domain), _) => escape(domain),
        (None, Some(id)) => escape(id),
        (None, None) => "unknown tenant".to_owned(),
    };
    writeln!(out, "# mfactl {command}: {tenant}")?;
    writeln!(out)?;
    writeln!(
        out,
        "Tenant {} (id {}), Graph {}",
        plan.tenant_domain
            .as_deref()
            .map_or("unknown".into(), escape),
        plan.tenant_id.as_deref().map_or("unknown".into(), escape),
        escape(&plan.graph)
    )?;
    for line in digest::provenance(plan) {
        writeln!(out)?;
        writeln!(out, "{}", escape(&line))?;
    }
    writeln!(out)?;
    render_counts(out, &digest)?;
    render_policy(out, plan)?;
    render_changes(out, &digest)?;
    render_users(out, plan, &digest)?;
    render_reasons(out, &digest)?;
    render_failures(out, plan, &digest)
}

/// The tenant policy's properties that differ (a plan) or were written (an apply report), each
/// with its value before and after.
fn render_policy(out: &mut impl io::Write, plan: &Plan) -> io::Result<()> {
    let Some(policy) = plan.policy.as_ref().filter(|p| !p.changes.is_empty()) else {
        return Ok(());
    };
    writeln!(out, "## Tenant policy (authenticationMethodsPolicy)")?;
    writeln!(out)?;
    writeln!(out, "| Property | Before | After |")?;
    writeln!(out, "|:--|:--|:--|")?;
    for change in &policy.changes {
        writeln!(
            out,
            "| {}.{} | {} | {} |",
            escape(&change.part),
            escape(&change.property),
            escape(&printable_capped(&digest::show_json(&change.before), 200)),
            escape(&printable_capped(&digest::show_json(&change.after), 200)),
        )?;
    }
    writeln!(out)
}

/// Who would change (or changed) and how: each user with a field, up to [`USERS_SHOWN`], then
/// how many more.
fn render_users(out: &mut impl io::Write, plan: &Plan, digest: &Digest) -> io::Result<()> {
    if digest.listed_users == 0 {
        return Ok(());
    }
    writeln!(out, "## Users")?;
    writeln!(out)?;
    writeln!(out, "| User | Status | Fields |")?;
    writeln!(out, "|:--|:--|:--|")?;
    for user in digest::listed_users(plan).take(USERS_SHOWN) {
        let (name, status, fields) = digest::user_row(user, digest.applied_run);
        let fields: Vec<String> = fields.iter().map(|field| escape(field)).collect();
        writeln!(
            out,
            "| {} | {} | {} |",
            escape(name),
            status,
            fields.join("<br>")
        )?;
    }
    if digest.listed_users > USERS_SHOWN as u64 {
        writeln!(out)?;
        writeln!(
            out,
            "_… and {} more: the JSON and CSV reports list every user._",
            thousands(digest.listed_users - USERS_SHOWN as u64)
        )?;
    }
    writeln!(out)
}

fn render_counts(out: &mut impl io::Write, digest: &Digest) -> io::Result<()> {
    writeln!(out, "| Users | Count |")?;
    writeln!(out, "|:--|--:|")?;
    for (category, count) in &digest.categories {
        writeln!(out, "| {} | {} |", category.label(), thousands(*count))?;
    }
    writeln!(
        out,
        "| **total** | **{}** |",
        thousands(digest.summary.users)
    )?;
    writeln!(out)?;
    let s = &digest.summary;
    match s.applied {
        Some(applied) => writeln!(
            out,
            "Writes: {} of {} applied.",
            thousands(applied),
            thousands(s.writes + s.policy_writes)
        )?,
        None => writeln!(
            out,
            "Writes: {} planned.",
            thousands(s.writes + s.policy_writes)
        )?,
    }
    if let Some(coverage) = digest::coverage_sentence(s) {
        writeln!(out)?;
        writeln!(out, "{}", escape(&coverage))?;
    }
    if let Some((status, properties)) = digest.policy {
        writeln!(out)?;
        writeln!(
            out,
            "Tenant policy (authenticationMethodsPolicy): {}, {} {} differing.",
            status_label(status, digest.applied_run),
            thousands(properties),
            if properties == 1 {
                "property"
            } else {
                "properties"
            }
        )?;
    }
    writeln!(out)
}

fn render_changes(out: &mut impl io::Write, digest: &Digest) -> io::Result<()> {
    if digest.changes.is_empty() {
        return Ok(());
    }
    writeln!(out, "## Changes")?;
    writeln!(out)?;
    if digest.applied_run {
        writeln!(out, "| Change | Users | Made |")?;
        writeln!(out, "|:--|--:|--:|")?;
    } else {
        writeln!(out, "| Change | Users |")?;
        writeln!(out, "|:--|--:|")?;
    }
    for change in &digest.changes {
        let made = if digest.applied_run {
            format!(" {} |", thousands(change.made))
        } else {
            String::new()
        };
        writeln!(
            out,
            "| {} {} → {} | {} |{made}",
            change.field,
            escape(&change.before),
            escape(&change.after),
            thousands(change.users)
        )?;
    }
    writeln!(out)
}

fn render_reasons(out: &mut impl io::Write, digest: &Digest) -> io::Result<()> {
    if digest.reasons.is_empty() {
        return Ok(());
    }
    writeln!(out, "## Not converging, by reason")?;
    writeln!(out)?;
    writeln!(out, "| Reason | Status | Users | For example |")?;
    writeln!(out, "|:--|:--|--:|:--|")?;
    for reason in digest.reasons.iter().take(REASONS_SHOWN) {
        let examples: Vec<String> = reason.examples.iter().map(|u| escape(u)).collect();
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            escape(&reason.text),
            status_label(reason.status, digest.applied_run),
            thousands(reason.users),
            examples.join(", ")
        )?;
    }
    if digest.reasons.len() > REASONS_SHOWN {
        writeln!(out)?;
        writeln!(
            out,
            "_… and {} more reasons: the JSON and CSV reports list every user._",
            thousands((digest.reasons.len() - REASONS_SHOWN) as u64)
        )?;
    }
    writeln!(out)
}

fn render_failures(out: &mut impl io::Write, plan: &Plan, digest: &Digest) -> io::Result<()> {
    if digest.failures == 0 {
        return Ok(());
    }
    writeln!(out, "## Failures")?;
    writeln!(out)?;
    writeln!(
        out,
        "Quote a failure's request-id when asking Microsoft support about it."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| User | Status | Endpoint | HTTP | Code | Message | request-id |"
    )?;
    writeln!(out, "|:--|:--|:--|--:|:--|:--|:--|")?;
    for failure in digest::failures(plan).take(FAILURES_SHOWN) {
        let optional = |text: Option<&str>| text.map_or_else(String::new, escape);
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            escape(failure.user),
            status_label(failure.status, digest.applied_run),
            failure.endpoint.map_or_else(String::new, |e| e.to_string()),
            failure
                .http_status
                .map_or_else(String::new, |s| s.to_string()),
            optional(failure.code.as_deref()),
            escape(&printable_capped(
                failure.message.as_deref().unwrap_or(""),
                200
            )),
            optional(failure.request_id.as_deref()),
        )?;
    }
    if digest.failures > FAILURES_SHOWN as u64 {
        writeln!(out)?;
        writeln!(
            out,
            "_… and {} more: the JSON and CSV reports list every one._",
            thousands(digest.failures - FAILURES_SHOWN as u64)
        )?;
    }
    Ok(())
}

/// Outside text made inert in GitHub-flavoured markdown: on one line (controls escaped), with
/// HTML's `&`, `<`, `>` as entities, and every character that could end a table cell, start
/// emphasis, code, a link, strikethrough or math backslash-escaped.
pub fn escape(text: &str) -> String {
    let text = printable(text);
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '|' | '~' | '$' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::digest::fixtures;
    use super::*;

    fn render(plan: &Plan) -> String {
        let mut out = Vec::new();
        render_markdown(plan, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escaping_keeps_tables_whole_and_html_out() {
        assert_eq!(
            escape("a|b*c`d<script>&_e\\"),
            "a\\|b\\*c\\`d&lt;script&gt;&amp;\\_e\\\\"
        );
        assert_eq!(escape("two\nlines"), "two\\\\nlines");
        assert_eq!(escape("$x$ ![i](u)"), "\\$x\\$ \\!\\[i\\]\\(u\\)");
    }

    #[test]
    fn the_summary_has_counts_changes_reasons_and_failures() {
        let text = render(&fixtures::plan());
        assert!(
            text.starts_with("# mfactl plan: contoso.onmicrosoft.com\n"),
            "{text}"
        );
        assert!(text.contains("| to change | 4 |"), "{text}");
        assert!(text.contains("| in sync | 11 |"), "{text}");
        assert!(text.contains("| **total** | **20** |"), "{text}");
        assert!(
            text.contains("| perUserMfaState enforced → disabled | 3 |"),
            "{text}"
        );
        assert!(
            text.contains("| push not registered | blocked | 2 | d@contoso.com, @e@contoso.com |"),
            "{text}"
        );
        assert!(
            text.contains("| Insufficient privileges | +req-1 |"),
            "{text}"
        );
    }

    #[test]
    fn a_hostile_user_cannot_break_a_row_or_inject_html() {
        let text = render(&fixtures::applied());
        assert!(text.starts_with("# mfactl apply: "), "{text}");
        let rows: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("| =cmd"))
            .collect();
        // Its row among the users (three cells), then its failure (seven).
        let unescaped = |row: &str| {
            row.match_indices('|')
                .filter(|(i, _)| !row[..*i].ends_with('\\'))
                .count()
        };
        assert_eq!(rows.len(), 2, "{text}");
        assert_eq!(unescaped(rows[0]), 4, "{}", rows[0]);
        let row = rows[1];
        assert!(!row.contains("<script>"), "{row}");
        // Seven cells: eight unescaped pipes.
        let pipes = row
            .match_indices('|')
            .filter(|(i, _)| !row[..*i].ends_with('\\'));
        assert_eq!(pipes.count(), 8, "{row}");
        assert!(
            text.contains("| perUserMfaState enforced → disabled | 3 | 2 |"),
            "{text}"
        );
    }

    #[test]
    fn a_managed_tenant_policy_is_summarised() {
        let plan = fixtures::with_policy();
        let text = render(&plan);
        assert!(
            text.contains(
                "Tenant policy (authenticationMethodsPolicy): to change, 1 property differing."
            ),
            "{text}"
        );
    }

    #[test]
    fn failures_are_capped_and_say_how_many_more() {
        let mut plan = fixtures::plan();
        let failed = plan.users.pop().unwrap();
        plan.users = std::iter::repeat_n(failed, FAILURES_SHOWN + 7).collect();
        let text = render(&plan);
        let rows = text
            .lines()
            .filter(|l| l.starts_with("| -failed@contoso.com |"))
            .count();
        assert_eq!(rows, FAILURES_SHOWN);
        assert!(text.contains("… and 7 more"), "{text}");
    }

    #[test]
    fn users_are_listed_with_their_fields_and_capped() {
        let text = render(&fixtures::plan());
        assert!(text.contains("## Users"), "{text}");
        assert!(
            text.contains("| a@contoso.com | to change | perUserMfaState enforced → disabled |"),
            "{text}"
        );
        assert!(
            text.contains("| d@contoso.com | blocked | preferredMethod sms → push \\(blocked\\) |"),
            "{text}"
        );
        let mut plan = fixtures::plan();
        let first = plan.users[0].clone();
        plan.users = std::iter::repeat_n(first, USERS_SHOWN + 3).collect();
        let text = render(&plan);
        let rows = text
            .lines()
            .filter(|l| l.starts_with("| a@contoso.com |"))
            .count();
        assert_eq!(rows, USERS_SHOWN);
        assert!(text.contains("… and 3 more: the JSON and CSV reports list every user"));
    }
}
