//! The roll-up of a multi-tenant run ([`Rollup`]): as text on stdout, as markdown
//! (`DIR/summary.md`, for a CI step summary) and as one self-contained HTML page with a card per
//! tenant (`DIR/summary.html`). Like the other renderers they only format, and they escape every
//! name: a tenant string, a domain or a reason Graph or Entra sent may hold anything.

use std::io;

use super::{html, markdown};
use crate::engine::tenants::{Rollup, TenantOutcome};
use crate::text::printable;

/// How the exit code is chosen, as every rendering says it.
pub const SEVERITY: &str = "the most severe of the tenants': 1 error > 3 needs attention > 2 \
                            changes > 0";

/// `Tenants: 3 (2 planned, 1 failed); exit code 1 (...)`.
fn headline(rollup: &Rollup) -> String {
    let statuses: Vec<String> = rollup
        .by_status()
        .into_iter()
        .map(|(status, n)| format!("{n} {}", status.as_str()))
        .collect();
    format!(
        "Tenants: {} ({}); exit code {} ({SEVERITY})",
        rollup.tenants.len(),
        statuses.join(", "),
        rollup.exit_code
    )
}

/// What a tenant came to in words: its counts line, or why it failed.
fn outcome(tenant: &TenantOutcome) -> String {
    match (&tenant.reason, &tenant.line) {
        (Some(reason), Some(line)) => format!("{line} Stopped: {reason}"),
        (Some(reason), None) => format!("{}: {reason}", tenant.status.as_str()),
        (None, Some(line)) => line.clone(),
        (None, None) => tenant.status.as_str().to_owned(),
    }
}

/// The tenant as shown: the tenants file's name, and the domain or id Graph gave when it says
/// more.
fn name(tenant: &TenantOutcome) -> String {
    let known = tenant
        .tenant_domain
        .as_deref()
        .or(tenant.tenant_id.as_deref());
    match known {
        Some(known) if !known.eq_ignore_ascii_case(&tenant.tenant) => {
            format!("{} ({})", tenant.tenant, known)
        }
        _ => tenant.tenant.clone(),
    }
}

/// The text roll-up for stdout.
pub fn render_rollup_text(rollup: &Rollup, out: &mut impl io::Write) -> io::Result<()> {
    writeln!(out, "{}", headline(rollup))?;
    for tenant in &rollup.tenants {
        writeln!(
            out,
            "  {}  [exit {}, {}] {}",
            printable(&name(tenant)),
            tenant.exit_code,
            tenant.status.as_str(),
            printable(&outcome(tenant))
        )?;
        writeln!(
            out,
            "      files: {}",
            printable(&format!("{}/{}/", rollup.out_dir, tenant.folder))
        )?;
    }
    writeln!(
        out,
        "Roll-up: {}",
        printable(&format!(
            "{0}/summary.md, {0}/summary.json, {0}/summary.html",
            rollup.out_dir
        ))
    )
}

/// `DIR/summary.md`.
pub fn render_rollup_markdown(rollup: &Rollup, out: &mut impl io::Write) -> io::Result<()> {
    writeln!(
        out,
        "# mfactl {} across {} tenants",
        rollup.command,
        rollup.tenants.len()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Manifest `{}`, tenants file `{}`; started {}, finished {}.",
        markdown::escape(&rollup.manifest),
        markdown::escape(&rollup.tenants_file),
        markdown::escape(&rollup.started),
        markdown::escape(&rollup.finished)
    )?;
    writeln!(out)?;
    writeln!(out, "{}", markdown::escape(&headline(rollup)))?;
    writeln!(out)?;
    writeln!(
        out,
        "| Tenant | Status | Exit | Users | To change | Changed | Writes | Blocked | Not found | \
         Failed | Files |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")?;
    for tenant in &rollup.tenants {
        let count = |pick: fn(&crate::plan::Summary) -> u64| {
            tenant
                .summary
                .as_ref()
                .map_or_else(|| "–".to_owned(), |s| crate::text::thousands(pick(s)))
        };
        let files: Vec<String> = files_of(tenant)
            .iter()
            .map(|file| format!("`{}`", markdown::escape(file)))
            .collect();
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            markdown::escape(&name(tenant)),
            tenant.status.as_str(),
            tenant.exit_code,
            count(|s| s.users),
            count(|s| s.to_change),
            count(|s| s.changed),
            count(|s| s.writes),
            count(|s| s.blocked),
            count(|s| s.not_found),
            count(|s| s.failed),
            files.join(" ")
        )?;
    }
    let failed: Vec<&TenantOutcome> = rollup
        .tenants
        .iter()
        .filter(|t| t.reason.is_some())
        .collect();
    if !failed.is_empty() {
        writeln!(out)?;
        writeln!(out, "## Why tenants failed")?;
        writeln!(out)?;
        for tenant in failed {
            writeln!(
                out,
                "- **{}**: {}",
                markdown::escape(&tenant.tenant),
                markdown::escape(tenant.reason.as_deref().unwrap_or_default())
            )?;
        }
    }
    Ok(())
}

/// A tenant's files, relative to the roll-up's folder.
fn files_of(tenant: &TenantOutcome) -> Vec<String> {
    let files = &tenant.files;
    files
        .plan
        .iter()
        .chain(files.journal.iter())
        .chain(files.reports.iter())
        .cloned()
        .collect()
}

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #1b1f24; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.note { color: #57606a; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; margin: 1.2em 0; }
.card { border: 1px solid #d0d7de; border-radius: 8px; padding: 0.8em 1em; width: 20em; }
.card h2 { font-size: 1.05em; margin: 0 0 0.4em 0; word-break: break-all; }
.card.exit-0 { border-left: 5px solid #1a7f37; }
.card.exit-2 { border-left: 5px solid #2f81f7; }
.card.exit-3 { border-left: 5px solid #bf8700; }
.card.exit-1, .card.exit-130 { border-left: 5px solid #cf222e; }
.card table { border-collapse: collapse; margin: 0.4em 0; }
.card td { padding: 0.1em 0.6em 0.1em 0; }
.card td.n { text-align: right; font-variant-numeric: tabular-nums; }
.reason { color: #cf222e; }
code { word-break: break-all; }
"#;

/// `DIR/summary.html`: one card per tenant (status, exit code, counts, reason, links to its
/// files). No script; a Content-Security-Policy that allows only its own style, by hash.
pub fn render_rollup_html(rollup: &Rollup, out: &mut impl io::Write) -> io::Result<()> {
    let e = html::escape;
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
    )?;
    writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src \
         '{}'; base-uri 'none'; form-action 'none'\">",
        html::sha256(STYLE)
    )?;
    writeln!(
        out,
        "<title>mfactl {} across {} tenants</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        e(&rollup.command),
        rollup.tenants.len()
    )?;
    writeln!(
        out,
        "<h1>mfactl {} across {} tenants</h1>",
        e(&rollup.command),
        rollup.tenants.len()
    )?;
    writeln!(
        out,
        "<p class=\"note\">Manifest <code>{}</code>, tenants file <code>{}</code>; started {}, \
         finished {}.</p>\n<p>{}</p>\n<div class=\"cards\">",
        e(&rollup.manifest),
        e(&rollup.tenants_file),
        e(&rollup.started),
        e(&rollup.finished),
        e(&headline(rollup))
    )?;
    for tenant in &rollup.tenants {
        card(tenant, out)?;
    }
    writeln!(out, "</div>\n</body>\n</html>")
}

/// One tenant's card.
fn card(tenant: &TenantOutcome, out: &mut impl io::Write) -> io::Result<()> {
    let e = html::escape;
    writeln!(
        out,
        "<section class=\"card exit-{}\" data-tenant=\"{}\">\n<h2>{}</h2>\n<p>{} · exit {}</p>",
        tenant.exit_code,
        e(&tenant.tenant),
        e(&name(tenant)),
        tenant.status.as_str(),
        tenant.exit_code
    )?;
    if let Some(summary) = &tenant.summary {
        writeln!(out, "<table>")?;
        let rows = [
            ("users", summary.users),
            ("to change", summary.to_change),
            ("changed", summary.changed),
            ("writes", summary.writes),
            ("in sync", summary.in_sync),
            ("blocked", summary.blocked),
            ("not found", summary.not_found),
            ("failed", summary.failed),
        ];
        for (label, count) in rows {
            writeln!(
                out,
                "<tr><td>{label}</td><td class=\"n\">{}</td></tr>",
                crate::text::thousands(count)
            )?;
        }
        writeln!(out, "</table>")?;
    }
    if let Some(reason) = &tenant.reason {
        writeln!(out, "<p class=\"reason\">{}</p>", e(reason))?;
    }
    let links: Vec<String> = files_of(tenant)
        .iter()
        .map(|file| format!("<a href=\"{0}\"><code>{0}</code></a>", e(&link(file))))
        .collect();
    if !links.is_empty() {
        writeln!(out, "<p>{}</p>", links.join("<br>"))?;
    }
    writeln!(out, "</section>")
}

/// A relative file path as a link target: each segment percent-encoded where a URL needs it.
fn link(path: &str) -> String {
    path.split('/')
        .map(|segment| url::form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tenants::{ROLLUP_FORMAT_VERSION, TenantFiles, TenantStatus};

    fn rollup() -> Rollup {
        let planned = TenantOutcome {
            tenant: "customer1.onmicrosoft.com".into(),
            folder: "customer1.onmicrosoft.com".into(),
            tenant_id: Some("9c0e5f1a-0000-4000-8000-000000000001".into()),
            tenant_domain: Some("customer1.onmicrosoft.com".into()),
            status: TenantStatus::Planned,
            exit_code: 2,
            reason: None,
            summary: Some(crate::plan::Summary {
                users: 4,
                to_change: 3,
                writes: 5,
                in_sync: 1,
                ..Default::default()
            }),
            line: Some("Plan: 3 users to change (5 writes), 1 in sync.".into()),
            files: TenantFiles {
                plan: Some("customer1.onmicrosoft.com/plan.json".into()),
                journal: None,
                reports: vec!["customer1.onmicrosoft.com/report.html".into()],
            },
            seconds: 1.5,
        };
        let failed = TenantOutcome {
            tenant: "evil<script>.com".into(),
            folder: "evil.com".into(),
            tenant_id: None,
            tenant_domain: None,
            status: TenantStatus::Failed,
            exit_code: 1,
            reason: Some("sign-in failed: AADSTS7000229 <b>|x|</b>".into()),
            summary: None,
            line: None,
            files: TenantFiles::default(),
            seconds: 0.2,
        };
        let mut rollup = Rollup {
            format_version: ROLLUP_FORMAT_VERSION,
            command: "plan".into(),
            manifest: "m.yaml".into(),
            tenants_file: "t.yaml".into(),
            out_dir: "runs/x".into(),
            started: "2026-01-01T00:00:00Z".into(),
            finished: "2026-01-01T00:00:02Z".into(),
            exit_code: 1,
            totals: Default::default(),
            tenants: vec![planned, failed],
        };
        rollup.add_up();
        rollup
    }

    fn render(write: impl Fn(&Rollup, &mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        write(&rollup(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_rendering_names_every_tenant_its_exit_code_and_the_failure() {
        let text = render(render_rollup_text);
        assert!(
            text.starts_with("Tenants: 2 (1 planned, 1 failed); exit code 1"),
            "{text}"
        );
        assert!(text.contains("customer1.onmicrosoft.com  [exit 2, planned] Plan: 3 users"));
        assert!(text.contains("[exit 1, failed] failed: sign-in failed: AADSTS7000229"));
        assert!(text.contains("files: runs/x/customer1.onmicrosoft.com/"));
        let md = render(render_rollup_markdown);
        assert!(
            md.contains("| customer1.onmicrosoft.com | planned | 2 | 4 | 3 |"),
            "{md}"
        );
        assert!(!md.contains("<b>|x|"), "{md}");
        let page = render(render_rollup_html);
        assert_eq!(page.matches("<section class=\"card").count(), 2);
        assert!(
            !page.contains("<script>") && !page.contains("<b>"),
            "{page}"
        );
        assert!(page.contains("href=\"customer1.onmicrosoft.com/plan.json\""));
        assert_eq!(rollup().totals.to_change, 3);
    }
}
