//! `--report FILE` on plan and apply: the format chosen by the extension, each checked as its
//! reader sees it (JSON parsed, CSV read back, markdown's tables, the HTML page run in headless
//! Chromium), hostile user names kept inert, and bad paths refused before any request.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mfactl::model::{MethodKind, PerUserMfaState};
use mfactl_emulator::Tenant;
use serde_json::Value;

use crate::support::{Row, Scenario, assert_private, manifest_for, stderr, to_yaml};

/// A spreadsheet formula, as a UPN (no whitespace: a manifest refuses it).
const FORMULA_UPN: &str = "=cmd|'/C_calc'!A0@contoso.com";
/// Markup and markdown, as a UPN.
const MARKUP_UPN: &str = "<script>alert(1)</script>*`|x@contoso.com";

/// A generated tenant with two hostile users first (phone only, so asking for push blocks
/// them) and, with `forgetful`, a user whose writes Graph accepts and does not keep.
fn tenant(forgetful: bool) -> Tenant {
    let mut tenant = Tenant::generate(60, 17);
    let template = tenant.users[0].clone();
    for (n, upn) in [FORMULA_UPN, MARKUP_UPN].into_iter().enumerate() {
        let mut user = template.clone();
        user.id = format!("00000000-0000-4000-8000-0000000000a{n}");
        user.user_principal_name = upn.to_owned();
        user.methods = vec![MethodKind::MobilePhone];
        user.sign_in_preferences
            .user_preferred_method_for_secondary_authentication = None;
        user.per_user_mfa_state = PerUserMfaState::Disabled;
        tenant.users.insert(n, user);
    }
    if forgetful {
        // manifest_for changes the per-user state of every sixth user from the second on.
        tenant.users[2 + 1].forgets_writes = true;
    }
    tenant
}

/// The hostile users blocked (one also changing its state), a user Graph does not know, then
/// [`manifest_for`]'s changes, blocked and in-sync users.
fn manifest(tenant: &Tenant) -> String {
    let generated = Tenant {
        users: tenant.users[2..].to_vec(),
        ..tenant.clone()
    };
    let (rows, _) = manifest_for(&generated, true);
    let hostile = |user: &str, state| Row {
        user: user.to_owned(),
        preferred_method: Some(mfactl::model::PreferredMethod::Push),
        per_user_mfa_state: state,
        ..Row::default()
    };
    let mut all = vec![
        hostile(FORMULA_UPN, None),
        hostile(MARKUP_UPN, Some(PerUserMfaState::Enforced)),
        Row {
            user: "ghost@contoso.com".to_owned(),
            per_user_mfa_state: Some(PerUserMfaState::Disabled),
            ..Row::default()
        },
    ];
    all.extend(rows);
    to_yaml(&all)
}

/// Runs `command MANIFEST [apply's flags] --format json --report NAME` in a new scenario;
/// returns the scenario, the run's output, its JSON document and the report's path.
fn run_with_report(command: &str, name: &str) -> (Scenario, Output, Value, PathBuf) {
    let scenario = Scenario::new(tenant(command == "apply"));
    let yaml = scenario.write("desired.yaml", &manifest(&scenario.tenant()));
    let report = scenario.dir.path().join(name);
    let mut args = vec![command, yaml.to_str().unwrap()];
    if command == "apply" {
        args.push("--auto-approve");
    }
    args.extend(["--format", "json", "--report", report.to_str().unwrap()]);
    let out = scenario.run(&args);
    let code = out.status.code();
    let expected = if command == "apply" { 3 } else { 0 };
    assert_eq!(code, Some(expected), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("the JSON document on stdout");
    assert_private(&report);
    (scenario, out, doc, report)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The JSON report is the document `--format json` printed, for a plan and a finished run.
#[test]
fn json_reports_are_the_json_document() {
    for command in ["plan", "apply"] {
        let (_scenario, _, doc, report) = run_with_report(command, "report.json");
        let written: Value = serde_json::from_str(&read(&report)).unwrap();
        assert_eq!(written["summary"], doc["summary"], "{command}");
        assert_eq!(written, doc, "{command}");
        if command == "apply" {
            assert!(written["summary"]["applied"].as_u64().unwrap() > 0);
            assert_eq!(written["summary"]["unverified"], 1);
        }
    }
}

/// The CSV report has one row per user and field (one for a user without fields), and no cell
/// a spreadsheet would run.
#[test]
fn csv_reports_have_a_row_per_user_and_field_and_no_formulas() {
    for command in ["plan", "apply"] {
        let (_scenario, _, doc, report) = run_with_report(command, "report.csv");
        let mut reader = csv::Reader::from_path(&report).unwrap();
        let header = reader.headers().unwrap().clone();
        let column = |name: &str| header.iter().position(|h| h == name).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let users = doc["users"].as_array().unwrap();
        let expected: usize = users
            .iter()
            .map(|u| u["fields"].as_array().unwrap().len().max(1))
            .sum();
        assert_eq!(rows.len(), expected, "{command}");

        let formula = rows
            .iter()
            .find(|r| r[column("user")].contains("cmd|"))
            .expect("the formula user's row");
        assert_eq!(&formula[column("user")], &format!("'{FORMULA_UPN}"));
        assert_eq!(&formula[column("status")], "blocked");
        let ghost = rows
            .iter()
            .find(|r| &r[column("user")] == "ghost@contoso.com")
            .expect("the unknown user's row");
        assert_eq!(
            (&ghost[column("status")], &ghost[column("field")]),
            ("not_found", "")
        );
        for row in &rows {
            for cell in row {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{command}: {cell:?}"
                );
            }
        }
        if command == "apply" {
            let applied = rows
                .iter()
                .filter(|r| &r[column("result_ok")] == "true")
                .count();
            assert!(applied > 0);
            assert!(
                rows.iter().any(|r| &r[column("status")] == "unverified"
                    && &r[column("error_code")] == "notKept")
            );
        }
    }
}

/// The markdown report has the counts table, the changes and the grouped reasons, with the
/// hostile names escaped.
#[test]
fn markdown_reports_summarise_counts_changes_and_reasons() {
    for command in ["plan", "apply"] {
        let (_scenario, _, doc, report) = run_with_report(command, "summary.md");
        let text = read(&report);
        let summary = &doc["summary"];
        assert!(
            text.starts_with(&format!("# mfactl {command}: contoso.onmicrosoft.com\n")),
            "{text}"
        );
        assert!(text.contains("| Users | Count |"), "{text}");
        assert!(
            text.contains(&format!("| blocked | {} |", summary["blocked"])),
            "{text}"
        );
        assert!(
            text.contains(&format!("| **total** | **{}** |", summary["users"])),
            "{text}"
        );
        assert!(text.contains("| perUserMfaState "), "{text}");
        assert!(
            text.contains("| push not registered | blocked | "),
            "{text}"
        );
        assert!(
            text.contains("| not found in the directory | not found | 1 | ghost@contoso.com |"),
            "{text}"
        );
        assert!(!text.contains("<script>"), "{text}");
        assert!(
            text.contains("&lt;script&gt;alert\\(1\\)&lt;/script&gt;\\*\\`\\|x@contoso.com"),
            "{text}"
        );
        if command == "apply" {
            assert!(text.contains("## Failures"), "{text}");
            assert!(text.contains("| notKept |"), "{text}");
        }
    }
}

/// The HTML report renders in a real browser: summary cards, both charts drawn by its script,
/// no script error, and the hostile user as text.
#[test]
fn html_reports_render_in_headless_chromium() {
    for command in ["plan", "apply"] {
        let (scenario, _, _, report) = run_with_report(command, "report.html");
        let page = read(&report);
        assert!(!page.contains("<script>alert"), "{page}");
        let Some(dom) = render_in_chromium(&report, scenario.dir.path()) else {
            continue;
        };
        assert!(dom.contains("id=\"summary\""), "{dom}");
        assert!(dom.contains("<div class=\"card blocked\">"), "{dom}");
        assert_eq!(
            dom.matches("data-drawn=\"true\"").count(),
            2,
            "{command}: both charts drawn\n{dom}"
        );
        assert!(dom.matches("<rect").count() > 8, "{dom}");
        assert!(
            dom.contains("<pre id=\"errors\" hidden=\"\"></pre>"),
            "{dom}"
        );
        assert!(!dom.contains("data-errors=\"true\""), "{dom}");
        assert!(
            dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "the hostile user, as text: {dom}"
        );
        assert!(!dom.contains("<script>alert"), "{dom}");
    }
}

/// The page's DOM after its scripts ran, from `chromium --headless=new --dump-dom`; fails on any
/// console message (a script error, a CSP refusal). `None` (with a note) when Chromium is
/// missing outside CI.
fn render_in_chromium(page: &Path, scratch: &Path) -> Option<String> {
    let chromium = crate::support::required_tool("chromium", "the HTML report runs in a browser")?;
    let profile = tempfile::tempdir_in(scratch).unwrap();
    let child = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let out = wait_at_most(child, Duration::from_secs(90));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "the page logged: {console:#?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits for `child`, killing it after `limit` (a hung browser must not hang the suite).
fn wait_at_most(mut child: std::process::Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).map(|_| buf)
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).map(|_| buf)
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    }
}

/// An extension that names no format is refused before any request, listing the four, for
/// plan and apply alike; so is a report in a folder that does not exist.
#[test]
fn bad_report_paths_are_refused_before_any_request() {
    let scenario = Scenario::new(tenant(false));
    let yaml = scenario.write("desired.yaml", &manifest(&scenario.tenant()));
    let yaml = yaml.to_str().unwrap();
    for command in [&["plan", yaml][..], &["apply", yaml, "--auto-approve"]] {
        let mut args = command.to_vec();
        args.extend(["--report", "report.txt"]);
        let out = scenario.run(&args);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("report.txt") && err.contains(".json, .csv, .md or .html"),
            "{err}"
        );
        assert!(err.contains("nothing was sent"), "{err}");

        let mut args = command.to_vec();
        args.extend(["--report", "no-such-folder/report.html"]);
        let out = scenario.run(&args);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("--report") && err.contains("cannot be written"),
            "{err}"
        );
    }
    assert_eq!(scenario.stats().requests, 0);
    assert!(!scenario.dir.path().join("report.txt").exists());
    let journals = std::fs::read_dir(scenario.dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("journal")
        })
        .count();
    assert_eq!(journals, 0, "nothing of a run was started");
}

/// A drift report names who drifted and how, and the policy property that differs, in every
/// format; and says when, against which tenant and from which manifest.
#[test]
fn a_drift_report_names_the_drifted_users_and_the_policy_change() {
    let scenario = Scenario::new(Tenant::generate(20, 23));
    let baseline = scenario.dir.path().join("baseline.yaml");
    let out = scenario.run(&["export", "--out", baseline.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut text = read(&baseline);
    text.push_str("policy:\n  systemCredentialPreferences:\n    state: disabled\n");
    std::fs::write(&baseline, text).unwrap();
    let out = scenario.run(&["apply", baseline.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Someone changes three members' per-user state and the policy.
    let drifted: Vec<_> = scenario
        .tenant()
        .users
        .into_iter()
        .filter(|u| !u.user_principal_name.contains('#'))
        .take(3)
        .collect();
    let flip = |state: PerUserMfaState| match state {
        PerUserMfaState::Disabled => PerUserMfaState::Enforced,
        _ => PerUserMfaState::Disabled,
    };
    let mut other = String::from("version: 1\nusers:\n");
    for user in &drifted {
        other.push_str(&format!(
            "  - user: {}\n    perUserMfaState: {}\n",
            user.id,
            flip(user.per_user_mfa_state)
        ));
    }
    other.push_str("policy:\n  systemCredentialPreferences:\n    state: enabled\n");
    let other = scenario.write("other.yaml", &other);
    let out = scenario.run(&["apply", other.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let names = ["drift.md", "drift.html", "drift.csv", "drift.json"];
    let mut args = vec!["plan", baseline.to_str().unwrap(), "--detailed-exitcode"];
    let paths: Vec<String> = names
        .iter()
        .map(|n| scenario.dir.path().join(n).to_string_lossy().into_owned())
        .collect();
    for path in &paths {
        args.extend(["--report", path.as_str()]);
    }
    let out = scenario.run(&args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let [md, html, csv, json] = [0, 1, 2, 3].map(|i| read(Path::new(&paths[i])));
    for user in &drifted {
        let before = flip(user.per_user_mfa_state);
        let change = format!(
            "perUserMfaState {before} \u{2192} {}",
            user.per_user_mfa_state
        );
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {} |", user.user_principal_name)))
            .unwrap_or_else(|| panic!("{} not named: {md}", user.user_principal_name));
        assert!(row.contains(&change), "{row}");
        assert!(html.contains(&user.user_principal_name), "{html}");
        assert!(
            csv.lines().any(|l| l.starts_with(&user.user_principal_name)
                && l.contains(&format!(
                    "perUserMfaState,{before},{}",
                    user.per_user_mfa_state
                ))),
            "{csv}"
        );
        assert!(json.contains(&user.user_principal_name));
    }
    assert!(
        md.contains("| systemCredentialPreferences.state | enabled | disabled |"),
        "{md}"
    );
    assert!(
        html.contains("<td>systemCredentialPreferences.state</td><td><code>enabled</code></td><td><code>disabled</code></td>"),
        "{html}"
    );
    assert!(
        csv.contains(
            "authenticationMethodsPolicy,,change,systemCredentialPreferences.state,enabled,disabled"
        ),
        "{csv}"
    );
    // When, against which tenant, from which manifest.
    let manifest = std::fs::canonicalize(&baseline).unwrap();
    let manifest = manifest.to_string_lossy();
    for page in [&md, &html] {
        assert!(page.contains("Tenant contoso.onmicrosoft.com"), "{page}");
        assert!(page.contains("Planned 20"), "{page}");
        assert!(
            page.contains(&format!("from manifest {manifest}")),
            "{page}"
        );
    }
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["manifest"]["path"], manifest.as_ref());
    assert!(doc["created"].as_str().unwrap().starts_with("20"));
}
