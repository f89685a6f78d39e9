//! The HTML report: one self-contained page (summary cards, charts, reasons, failures) to open
//! in a browser or attach to a change ticket.
//!
//! It must open offline and be safe to open: no network load at all (inline CSS and script, no
//! fonts, no images), and a Content-Security-Policy that allows only this page's own style and
//! script, by hash, so that even a name that slipped through escaping could not run. Everything
//! from the plan is HTML-escaped ([`escape`]); the charts' data is JSON inside a
//! `<script type="application/json">`, with `<`, `>` and `&` written as `\u003c`... so that no
//! `</script>` or `<!--` can end or change it ([`script_json`]); the script draws the SVG with
//! `textContent` and attributes, never markup.

use std::io;

use base64::Engine as _;
use serde_json::json;

use super::digest::{self, Digest, status_label, status_name};
use crate::plan::Plan;
use crate::text::{printable_capped, thousands};

/// At most this many failures are listed; the JSON and CSV reports list them all.
pub const FAILURES_SHOWN: usize = 500;

/// At most this many reasons are listed (each a group of users).
const REASONS_SHOWN: usize = 100;

/// At most this many users are listed with their fields; the JSON and CSV reports list them
/// all.
pub const USERS_SHOWN: usize = 1000;

/// The fields charted, before and after.
const CHARTED: [crate::model::Field; 2] = [
    crate::model::Field::PreferredMethod,
    crate::model::Field::PerUserMfaState,
];

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #1b1f24; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; }
.tenant, .note { color: #57606a; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1.2em 0; }
.card { border: 1px solid #d0d7de; border-radius: 8px; padding: 0.7em 1em; min-width: 8em; }
.card .count { font-size: 1.7em; font-weight: 600; }
.card .label { color: #57606a; }
.card.changed, .card.to_change { border-left: 5px solid #2f81f7; }
.card.blocked, .card.protected { border-left: 5px solid #bf8700; }
.card.failed, .card.not_found, .card.drifted, .card.unverified, .card.not_reached { border-left: 5px solid #cf222e; }
.card.in_sync, .card.covered { border-left: 5px solid #1a7f37; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td code { word-break: break-all; }
.chart svg { max-width: 100%; }
.chart .before { fill: #8c959f; }
.chart .after { fill: #2f81f7; }
.chart text { font-size: 12px; fill: #1b1f24; }
#errors { color: #cf222e; }
"#;

const SCRIPT: &str = r#"
"use strict";
(function () {
  var errors = document.getElementById("errors");
  function report(message) {
    errors.hidden = false;
    errors.setAttribute("data-errors", "true");
    errors.textContent += message + "\n";
  }
  window.addEventListener("error", function (event) { report("error: " + event.message); });
  document.addEventListener("securitypolicyviolation", function (event) {
    report("blocked by the page's policy: " + event.violatedDirective + " " + event.blockedURI);
  });
  var consoleError = console.error;
  console.error = function () {
    report("console.error: " + Array.prototype.join.call(arguments, " "));
    consoleError.apply(console, arguments);
  };

  var SVG = "http://www.w3.org/2000/svg";
  function add(parent, name, attributes, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (text !== undefined) { node.textContent = text; }
    parent.appendChild(node);
    return node;
  }

  // Two bars per value: the users holding it before (grey) and after (blue).
  function draw(box, chart) {
    var label = 170, width = 460, row = 34, top = 28;
    var most = 1;
    chart.values.forEach(function (v) { most = Math.max(most, v[1], v[2]); });
    var svg = add(box, "svg", {
      width: label + width + 90, height: top + row * chart.values.length + 4,
      role: "img", "aria-label": chart.field + " before and after"
    });
    add(svg, "rect", { x: label, y: 4, width: 12, height: 12, "class": "before" });
    add(svg, "text", { x: label + 18, y: 14 }, "before");
    add(svg, "rect", { x: label + 80, y: 4, width: 12, height: 12, "class": "after" });
    add(svg, "text", { x: label + 98, y: 14 }, "after");
    chart.values.forEach(function (v, i) {
      var y = top + i * row;
      add(svg, "text", { x: label - 8, y: y + 19, "text-anchor": "end" }, v[0]);
      [[v[1], "before", 2], [v[2], "after", 16]].forEach(function (bar) {
        var length = Math.max(bar[0] ? 1 : 0, Math.round(width * bar[0] / most));
        add(svg, "rect", { x: label, y: y + bar[2], width: length, height: 12, "class": bar[1] });
        add(svg, "text", { x: label + length + 6, y: y + bar[2] + 10 }, bar[0].toLocaleString("en-US"));
      });
    });
    box.setAttribute("data-drawn", "true");
  }

  var data = JSON.parse(document.getElementById("report-data").textContent);
  data.charts.forEach(function (chart) {
    var box = document.getElementById("chart-" + chart.field);
    if (box && chart.values.length > 0) { draw(box, chart); }
  });
})();
"#;

/// Writes the page.
pub fn render_html(plan: &Plan, out: &mut impl io::Write) -> io::Result<()> {
    let digest = digest::digest(plan);
    let command = if digest.applied_run { "apply" } else { "plan" };
    let tenant = plan
        .tenant_domain
        .as_deref()
        .or(plan.tenant_id.as_deref())
        .unwrap_or("unknown tenant");
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, "<html lang=\"en\">")?;
    writeln!(out, "<head>")?;
    writeln!(out, "<meta charset=\"utf-8\">")?;
    writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src \
         '{}'; script-src '{}'; base-uri 'none'; form-action 'none'\">",
        sha256(STYLE),
        sha256(SCRIPT)
    )?;
    writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(out, "<title>mfactl {command}: {}</title>", escape(tenant))?;
    writeln!(out, "<style>{STYLE}</style>")?;
    writeln!(out, "</head>")?;
    writeln!(out, "<body>")?;
    writeln!(out, "<h1>mfactl {command}: {}</h1>", escape(tenant))?;
    writeln!(
        out,
        "<p class=\"tenant\">Tenant {} (id {}), Graph {}</p>",
        escape(plan.tenant_domain.as_deref().unwrap_or("unknown")),
        escape(plan.tenant_id.as_deref().unwrap_or("unknown")),
        escape(&plan.graph)
    )?;
    for line in digest::provenance(plan) {
        writeln!(out, "<p class=\"tenant\">{}</p>", escape(&line))?;
    }
    render_cards(out, &digest)?;
    render_policy(out, plan)?;
    render_changes(out, &digest)?;
    render_charts(out, &digest)?;
    render_users(out, plan, &digest)?;
    render_reasons(out, &digest)?;
    render_failures(out, plan, &digest)?;
    writeln!(out, "<pre id=\"errors\" hidden></pre>")?;
    writeln!(
        out,
        "<script type=\"application/json\" id=\"report-data\">{}</script>",
        script_json(&chart_data(&digest))
    )?;
    writeln!(out, "<script>{SCRIPT}</script>")?;
    writeln!(out, "</body>")?;
    writeln!(out, "</html>")
}

fn render_cards(out: &mut impl io::Write, digest: &Digest) -> io::Result<()> {
    writeln!(out, "<section class=\"cards\" id=\"summary\">")?;
    let card = |out: &mut dyn io::Write, class: &str, count: u64, label: &str| {
        writeln!(
            out,
            "<div class=\"card {class}\"><div class=\"count\">{}</div><div class=\"label\">{label}</div></div>",
            thousands(count)
        )
    };
    card(out, "users", digest.summary.users, "users")?;
    for (category, count) in &digest.categories {
        card(out, category.key(), *count, category.label())?;
    }
    let s = &digest.summary;
    let writes = s.writes + s.policy_writes;
    match s.applied {
        Some(applied) => card(
            out,
            "writes",
            applied,
            &format!("of {} writes applied", thousands(writes)),
        )?,
        None => card(out, "writes", writes, "writes planned")?,
    }
    if let Some((status, properties)) = digest.policy {
        card(
            out,
            &format!("policy {}", status_name(status)),
            properties,
            &format!(
                "tenant policy properties differing ({})",
                status_label(status, digest.applied_run)
            ),
        )?;
    }
    if let Some(coverage) = s.mfa_coverage {
        card(out, "coverage covered", coverage.covered, "MFA covered")?;
        card(
            out,
            "coverage blocked",
            coverage.partly_covered,
            "MFA partly covered",
        )?;
        card(
            out,
            "coverage failed",
            coverage.not_covered + coverage.unknown,
            &format!(
                "MFA not covered or unknown ({} held)",
                thousands(coverage.held)
            ),
        )?;
    }
    writeln!(out, "</section>")?;
    if let Some(sentence) = super::digest::coverage_sentence(s) {
        writeln!(out, "<p class=\"coverage\">{}</p>", escape(&sentence))?;
    }
    Ok(())
}

/// The tenant policy's properties that differ (or were written), before and after.
fn render_policy(out: &mut impl io::Write, plan: &Plan) -> io::Result<()> {
    let Some(policy) = plan.policy.as_ref().filter(|p| !p.changes.is_empty()) else {
        return Ok(());
    };
    writeln!(
        out,
        "<section id=\"policy\"><h2>Tenant policy (authenticationMethodsPolicy)</h2>"
    )?;
    writeln!(
        out,
        "<table><tr><th>Property</th><th>Before</th><th>After</th></tr>"
    )?;
    for change in &policy.changes {
        writeln!(
            out,
            "<tr><td>{}.{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            escape(&change.part),
            escape(&change.property),
            escape(&printable_capped(&digest::show_json(&change.before), 300)),
            escape(&printable_capped(&digest::show_json(&change.after), 300)),
        )?;
    }
    writeln!(out, "</table></section>")
}

/// Who would change (or changed) and how, up to [`USERS_SHOWN`], then how many more.
fn render_users(out: &mut impl io::Write, plan: &Plan, digest: &Digest) -> io::Result<()> {
    if digest.listed_users == 0 {
        return Ok(());
    }
    writeln!(out, "<section id=\"users\"><h2>Users</h2>")?;
    writeln!(
        out,
        "<table><tr><th>User</th><th>Status</th><th>Fields</th></tr>"
    )?;
    for user in digest::listed_users(plan).take(USERS_SHOWN) {
        let (name, status, fields) = digest::user_row(user, digest.applied_run);
        let fields: Vec<String> = fields.iter().map(|field| escape(field)).collect();
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            status,
            fields.join("<br>")
        )?;
    }
    writeln!(out, "</table>")?;
    if digest.listed_users > USERS_SHOWN as u64 {
        writeln!(
            out,
            "<p class=\"note\">… and {} more: the JSON and CSV reports list every user.</p>",
            thousands(digest.listed_users - USERS_SHOWN as u64)
        )?;
    }
    writeln!(out, "</section>")
}

fn render_changes(out: &mut impl io::Write, digest: &Digest) -> io::Result<()> {
    if digest.changes.is_empty() {
        return Ok(());
    }
    writeln!(out, "<section id=\"changes\"><h2>Changes</h2>")?;
    let made = if digest.applied_run {
        "<th>Made</th>"
    } else {
        ""
    };
    writeln!(
        out,
        "<table><tr><th>Field</th><th>Before</th><th>After</th><th>Users</th>{made}</tr>"
    )?;
    for change in &digest.changes {
        let made = if digest.applied_run {
            format!("<td class=\"n\">{}</td>", thousands(change.made))
        } else {
            String::new()
        };
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>{made}</tr>",
            change.field,
            escape(&change.before),
            escape(&change.after),
            thousands(change.users)
        )?;
    }
    writeln!(out, "</table></section>")
}

fn render_charts(out: &mut impl io::Write, digest: &Digest) -> io::Result<()> {
    for field in CHARTED {
        let users = digest
            .distributions
            .iter()
            .find(|d| d.field == field)
            .map_or(0, |d| d.users);
        writeln!(out, "<section><h2>{field}, before and after</h2>")?;
        if users == 0 {
            writeln!(
                out,
                "<p class=\"note\">No user listed in the plan changes {field}.</p></section>"
            )?;
            continue;
        }
        let after = if digest.applied_run {
            "after the run (a write Graph refused, or did not keep, leaves the value before)"
        } else {
            "after applying the plan (a blocked field keeps its value)"
        };
        writeln!(
            out,
            "<p class=\"note\">The {} users listed in the plan with a {field} entry (blocked \
             ones included), before and {after}. Users already in sync are not listed in a \
             plan, so they are not counted here.</p>",
            thousands(users)
        )?;
        writeln!(
            out,
            "<div class=\"chart\" id=\"chart-{field}\"></div></section>"
        )?;
    }
    Ok(())
}

fn render_reasons(out: &mut impl io::Write, digest: &Digest) -> io::Result<()> {
    if digest.reasons.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<section id=\"reasons\"><h2>Not converging, by reason</h2>"
    )?;
    writeln!(
        out,
        "<table><tr><th>Reason</th><th>Status</th><th>Users</th><th>For example</th></tr>"
    )?;
    for reason in digest.reasons.iter().take(REASONS_SHOWN) {
        let examples: Vec<String> = reason.examples.iter().map(|u| escape(u)).collect();
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            escape(&reason.text),
            status_label(reason.status, digest.applied_run),
            thousands(reason.users),
            examples.join(", ")
        )?;
    }
    writeln!(out, "</table>")?;
    if digest.reasons.len() > REASONS_SHOWN {
        writeln!(
            out,
            "<p class=\"note\">… and {} more reasons: the JSON and CSV reports list every \
             user.</p>",
            thousands((digest.reasons.len() - REASONS_SHOWN) as u64)
        )?;
    }
    writeln!(out, "</section>")
}

fn render_failures(out: &mut impl io::Write, plan: &Plan, digest: &Digest) -> io::Result<()> {
    if digest.failures == 0 {
        return Ok(());
    }
    writeln!(out, "<section id=\"failures\"><h2>Failures</h2>")?;
    writeln!(
        out,
        "<p class=\"note\">Quote a failure's request-id when asking Microsoft support about \
         it.</p>"
    )?;
    writeln!(
        out,
        "<table><tr><th>User</th><th>Status</th><th>Endpoint</th><th>HTTP</th><th>Code</th>\
         <th>Message</th><th>request-id</th></tr>"
    )?;
    for failure in digest::failures(plan).take(FAILURES_SHOWN) {
        let optional = |text: Option<&str>| text.map_or_else(String::new, escape);
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td><code>{}</code></td></tr>",
            escape(failure.user),
            status_label(failure.status, digest.applied_run),
            failure.endpoint.map_or_else(String::new, |e| e.to_string()),
            failure
                .http_status
                .map_or_else(String::new, |s| s.to_string()),
            optional(failure.code.as_deref()),
            escape(&printable_capped(
                failure.message.as_deref().unwrap_or(""),
                300
            )),
            optional(failure.request_id.as_deref()),
        )?;
    }
    writeln!(out, "</table>")?;
    if digest.failures > FAILURES_SHOWN as u64 {
        writeln!(
            out,
            "<p class=\"note\">… and {} more: the JSON and CSV reports list every one.</p>",
            thousands(digest.failures - FAILURES_SHOWN as u64)
        )?;
    }
    writeln!(out, "</section>")
}

/// What the script charts: each charted field's `[value, before, after]` rows.
fn chart_data(digest: &Digest) -> serde_json::Value {
    let charts: Vec<serde_json::Value> = digest
        .distributions
        .iter()
        .filter(|d| CHARTED.contains(&d.field))
        .map(|d| json!({ "field": d.field.as_str(), "users": d.users, "values": d.values }))
        .collect();
    json!({ "charts": charts })
}

/// `value` as JSON that cannot end or alter the `<script>` element holding it: `<`, `>` and
/// `&` as `\u` escapes (JSON reads them back the same), so neither `</script>` nor `<!--`
/// appears in it.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// A CSP source for inline text: `sha256-BASE64`.
pub(super) fn sha256(text: &str) -> String {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(hash.as_ref())
    )
}

/// Outside text for HTML text and attribute values: the five characters that can end or
/// start markup, as entities; controls escaped visibly (a name must stay one line and show
/// what it holds).
pub fn escape(text: &str) -> String {
    let text = crate::text::printable(text);
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
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
        render_html(plan, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape("<script>alert('x')</script>&\"\n"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\n"
        );
    }

    #[test]
    fn script_json_cannot_close_its_element() {
        let value = json!({ "v": "</script><!--<script>&" });
        let text = script_json(&value);
        assert!(
            !text.contains('<') && !text.contains('>') && !text.contains('&'),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }

    #[test]
    fn a_hostile_user_shows_as_text_and_the_page_has_exactly_its_two_scripts() {
        // Both list the hostile user with its change; the apply report its refused write too.
        for plan in [fixtures::plan(), fixtures::applied()] {
            let page = render(&plan);
            assert!(!page.contains("<script>alert"), "{page}");
            assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
            assert_eq!(page.matches("<script").count(), 2, "{page}");
            assert_eq!(page.matches("</script>").count(), 2, "{page}");
        }
    }

    #[test]
    fn the_page_loads_nothing_and_allows_only_its_own_style_and_script() {
        let page = render(&fixtures::plan());
        assert!(page.contains("default-src 'none'"));
        assert!(page.contains(&format!("script-src '{}'", sha256(SCRIPT))));
        assert!(page.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(page.contains(&format!("<style>{STYLE}</style>")));
        for remote in ["http://", "https://", "src=", "href=", "@import", "url("] {
            let outside = page
                .replace(&plan_graph(), "")
                .replace("http://www.w3.org/2000/svg", "");
            assert!(!outside.contains(remote), "{remote}");
        }
    }

    fn plan_graph() -> String {
        fixtures::plan().graph
    }

    #[test]
    fn cards_and_chart_containers_are_there() {
        let page = render(&fixtures::applied());
        assert!(page.contains("<div class=\"count\">20</div><div class=\"label\">users</div>"));
        assert!(page.contains("<div class=\"card changed\"><div class=\"count\">2</div>"));
        assert!(page.contains("id=\"chart-perUserMfaState\""));
        assert!(page.contains("id=\"chart-preferredMethod\""));
        assert!(page.contains("<code>=req-2</code>"));
    }
}
