//! Issue 5's red-team and new-user findings, each as a story through the binary: against the
//! emulator, or through the fault proxy where the emulator cannot misbehave that way.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use mfactl_emulator::{EmulatorConfig, Tenant};
use serde_json::{Value, json};

use crate::fault_proxy::{Action, FaultProxy, RequestHead};
use crate::support::{
    Scenario, assert_converged, manifest_changing_everyone, manifest_for, mfactl, stderr, stdout,
    to_yaml,
};

/// `plan`/`apply` through `proxy`: (exit code, stdout, stderr).
fn run_via(proxy: &FaultProxy, args: &[&str]) -> (i32, String, String) {
    let out = proxy.mfactl(args).output().expect("mfactl runs");
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

/// A Graph error envelope, as the proxy answers it by itself.
fn graph_error(status: u16, code: &str, message: &str) -> Action {
    Action::Respond {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: json!({"error": {"code": code, "message": message}})
            .to_string()
            .into_bytes(),
    }
}

/// The counts of the `Apply:` line, in order: changed, writes applied, writes, in sync,
/// blocked, not found, failed, [changed since the plan], [not reached].
fn apply_line_numbers(text: &str) -> Vec<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("Apply: "))
        .unwrap_or_else(|| panic!("no Apply line in:\n{text}"));
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 2. Redirects are never followed.

#[test]
fn a_redirect_is_a_failure_naming_its_location_and_nothing_is_applied() {
    let tenant = Tenant::generate(40, 2);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let proxy = FaultProxy::in_front_of(&scenario.url());
    // Reads go through; every write is redirected to another host, over plain http. (Sent one
    // by one, so that the proxy sees each request's method.)
    proxy.set_rule(|head: &RequestHead, _| {
        if head.method == "PATCH" {
            Action::redirect(307, "http://graph.example.invalid/beta/elsewhere")
        } else {
            Action::Forward
        }
    });
    let (code, out, err) = run_via(
        &proxy,
        &[
            "apply",
            "--no-batch",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--concurrency",
            "2",
        ],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("redirect") && err.contains("http://graph.example.invalid/beta/elsewhere"),
        "the error names the Location: {err}"
    );
    assert_eq!(scenario.stats().writes, 0, "no write reached Graph");
    let numbers = apply_line_numbers(&out);
    assert_eq!(numbers[1], 0, "no write is reported applied: {out}");
    let redirected = proxy.stats().responded;
    assert!(
        (1..=2).contains(&redirected),
        "the run stops at the first redirect (two users in flight): {redirected}"
    );
}

#[test]
fn a_redirect_from_the_graph_root_stops_the_plan_before_any_user() {
    let scenario = Scenario::new(Tenant::generate(4, 2));
    let (rows, _) = manifest_for(&scenario.tenant(), false);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let proxy = FaultProxy::in_front_of(&scenario.url());
    proxy.set_rule(|_, _| Action::redirect(301, "https://login.example.invalid/"));
    let (code, _, err) = run_via(&proxy, &["plan", yaml.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("https://login.example.invalid/"), "{err}");
    assert!(
        err.contains("--graph-url"),
        "the help says what to fix: {err}"
    );
    assert_eq!(
        proxy.stats().requests,
        1,
        "one request, then the run stopped"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. What Graph says is escaped before it reaches a terminal.

#[test]
fn control_and_bidi_characters_from_graph_are_escaped_in_every_output() {
    let scenario = Scenario::new(Tenant::generate(6, 4));
    let (rows, _) = manifest_for(&scenario.tenant(), false);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let proxy = FaultProxy::in_front_of(&scenario.url());
    let forged = "nope\n\nPlan: 0 users to change (0 writes), 6 in sync.\u{1b}[2J\u{202e}kcatta";
    proxy.set_rule(move |head: &RequestHead, _| {
        if head.path.ends_with("/requirements") {
            graph_error(400, "bad\u{1b}[31mCode", forged)
        } else {
            Action::Forward
        }
    });
    for format in ["text", "json"] {
        let (code, out, err) = run_via(
            &proxy,
            &[
                "plan",
                "--no-batch",
                yaml.to_str().unwrap(),
                "--format",
                format,
            ],
        );
        assert_eq!(code, 1, "users whose reads failed: {out}\n{err}");
        for text in [&out, &err] {
            assert!(!text.contains('\u{1b}'), "raw ESC printed: {text}");
            assert!(
                !text.contains('\u{202e}'),
                "raw bidi override printed: {text}"
            );
            assert!(
                !text.lines().any(|l| l.starts_with("Plan: 0 users")),
                "a forged summary line: {text}"
            );
        }
        if format == "text" {
            assert!(out.contains("\\u{202e}kcatta"), "shown escaped: {out}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Files are private; credentials in a URL are refused without being echoed.

#[cfg(unix)]
#[test]
fn plan_files_and_journals_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tenant = Tenant::generate(10, 5);
    let (rows, _) = manifest_for(&tenant, false);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let plan = scenario.dir.path().join("plan.json");
    let journal = scenario.dir.path().join("journal.jsonl");
    // An existing journal with wide permissions is narrowed too.
    std::fs::write(&journal, "").unwrap();
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = scenario.run(&[
        "plan",
        yaml.to_str().unwrap(),
        "--out",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = scenario.run(&[
        "apply",
        yaml.to_str().unwrap(),
        "--auto-approve",
        "--write-rate",
        "500",
        "--journal",
        journal.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for path in [&plan, &journal] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(doc["format_version"], 1);
}

#[test]
fn a_graph_url_with_credentials_is_refused_without_echoing_them() {
    let scenario = Scenario::new(Tenant::generate(3, 5));
    let yaml = scenario.write(
        "desired.yaml",
        "version: 1\nusers:\n  - user: a@contoso.com\n    perUserMfaState: disabled\n",
    );
    let port = scenario.url().rsplit(':').next().unwrap().to_owned();
    for url in [
        format!("http://admin:Sup3rSecret@127.0.0.1:{port}"),
        format!("http://:Sup3rSecret@127.0.0.1:{port}"),
        "admin:Sup3rSecret@127.0.0.1".to_owned(),
    ] {
        let out = mfactl()
            .args(["plan", yaml.to_str().unwrap(), "--graph-url", &url])
            .env("MFACTL_ACCESS_TOKEN", "t")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            !err.contains("Sup3rSecret"),
            "the password was echoed: {err}"
        );
        assert!(err.contains("--graph-url"), "{err}");
    }
    assert_eq!(scenario.stats().requests, 0, "nothing was sent");
}

// ---------------------------------------------------------------------------------------------
// 5. No network, a dead port, a hanging host, an outage mid-run.

fn manifest_of(users: usize) -> String {
    let mut yaml = String::from("version: 1\nusers:\n");
    for i in 0..users {
        yaml.push_str(&format!(
            "  - user: user{i}@contoso.com\n    perUserMfaState: disabled\n"
        ));
    }
    yaml
}

#[test]
fn a_host_that_does_not_resolve_stops_the_plan_in_seconds_with_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("desired.yaml");
    std::fs::write(&yaml, manifest_of(33)).unwrap();
    let started = Instant::now();
    // `.invalid` never resolves (RFC 6761): the only packet is the resolver's NXDOMAIN query.
    let out = mfactl()
        .args([
            "plan",
            yaml.to_str().unwrap(),
            "--graph-url",
            "https://graph.mfactl-test.invalid",
        ])
        .env("MFACTL_ACCESS_TOKEN", "t")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot reach graph.mfactl-test.invalid") && err.contains("DNS"),
        "names the host and the cause: {err}"
    );
    assert!(!stdout(&out).contains("No changes"), "{}", stdout(&out));
    assert_eq!(
        err.matches("cannot reach").count(),
        1,
        "one message, not one per user: {err}"
    );
    // Not a timing assertion on the machine's speed: without the breaker this takes minutes.
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn a_refused_port_stops_the_run_without_burning_every_users_attempts() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener); // nothing listens there now
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("desired.yaml");
    std::fs::write(&yaml, manifest_of(96)).unwrap();
    let out = mfactl()
        .args([
            "apply",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--graph-url",
            &format!("http://127.0.0.1:{port}"),
            "-v",
        ])
        .env("MFACTL_ACCESS_TOKEN", "t")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot reach 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("refused"), "{err}");
    let requests: u64 = err
        .lines()
        .find(|l| l.starts_with("Graph: "))
        .and_then(|l| l["Graph: ".len()..].split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no traffic line: {err}"));
    assert!(requests <= 20, "{requests} attempts for a dead port: {err}");
}

#[test]
fn a_host_that_never_answers_stops_the_run_after_one_timeout() {
    let scenario = Scenario::new(Tenant::generate(4, 9));
    let yaml = scenario.write("desired.yaml", &manifest_of(40));
    let proxy = FaultProxy::in_front_of(&scenario.url());
    proxy.set_rule(|_, _| Action::Hang);
    let (code, out, err) = run_via(&proxy, &["plan", yaml.to_str().unwrap(), "--timeout", "2"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot reach") && err.contains("timeout"),
        "{err}"
    );
    assert!(!out.contains("No changes"), "{out}");
    assert!(
        proxy.stats().hung <= 8,
        "a few requests, not 40 users × 8 attempts: {:?}",
        proxy.stats()
    );
}

#[test]
fn an_outage_mid_run_is_waited_out_without_spending_attempts_and_the_apply_converges() {
    let tenant = Tenant::generate(40, 12);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let proxy = FaultProxy::in_front_of(&scenario.url());
    // From the 60th request on, every connection is closed unanswered for three seconds.
    let outage_started: Mutex<Option<Instant>> = Mutex::new(None);
    proxy.set_rule(move |_, n| {
        if n < 60 {
            return Action::Forward;
        }
        let mut started = outage_started.lock().unwrap();
        let since = *started.get_or_insert_with(Instant::now);
        if since.elapsed() < Duration::from_secs(3) {
            Action::Close
        } else {
            Action::Forward
        }
    });
    // Two attempts per request: without the outage hold, users would fail within a second.
    let (code, out, err) = run_via(
        &proxy,
        &[
            "apply",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--write-rate",
            "30",
            "--max-attempts",
            "2",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("lost the connection to Graph"), "{err}");
    assert!(err.contains("Graph answers again"), "{err}");
    assert!(err.contains("lost the connection 1 times"), "{err}");
    assert!(proxy.stats().closed > 0, "{:?}", proxy.stats());
    assert_converged(&scenario.tenant(), &rows);
}

#[test]
fn a_plan_with_unread_users_never_says_no_changes() {
    let tenant = Tenant::generate(6, 6);
    let (rows, _) = manifest_for(&tenant, false);
    let scenario = Scenario::with_config(
        tenant,
        EmulatorConfig {
            fail_rate: 1.0,
            ..EmulatorConfig::default()
        },
    );
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario.run(&["plan", yaml.to_str().unwrap(), "--max-attempts", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(!text.contains("No changes"), "{text}");
    assert!(
        text.contains("The plan is incomplete: 6 users could not be read"),
        "{text}"
    );
    assert!(text.contains("the plan is incomplete)."), "{text}");
}

// ---------------------------------------------------------------------------------------------
// 6. A write whose answer was lost is settled by reading it back.

#[test]
fn writes_whose_answer_was_lost_are_confirmed_by_reading_back_not_failed() {
    let tenant = Tenant::generate(16, 5);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let journal = scenario.dir.path().join("journal.jsonl");
    let proxy = FaultProxy::in_front_of(&scenario.url());
    proxy.set_rule(|head: &RequestHead, _| {
        if head.method == "PATCH" {
            Action::ForwardThenDrop
        } else {
            Action::Forward
        }
    });
    let (code, out, err) = run_via(
        &proxy,
        &[
            "apply",
            "--no-batch",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--write-rate",
            "500",
            "--journal",
            journal.to_str().unwrap(),
        ],
    );
    let writes = 2 * rows.len() as u64;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "({writes} of {writes} writes applied ({writes} confirmed by reading back"
        )),
        "{out}"
    );
    assert_eq!(
        scenario.stats().writes,
        writes,
        "each write was made once: none was sent again after reading back showed it"
    );
    assert_converged(&scenario.tenant(), &rows);
    let results: Vec<Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "result")
        .collect();
    assert_eq!(results.len() as u64, writes);
    assert!(
        results
            .iter()
            .all(|r| r["result"]["ok"] == true && r["result"]["settled_by_read"] == true),
        "{results:?}"
    );
}

#[test]
fn batches_whose_answer_was_lost_are_settled_item_by_item() {
    let tenant = Tenant::generate(60, 15);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let proxy = FaultProxy::in_front_of(&scenario.url());
    // The first three batches that carry writes are carried out and their answers lost.
    let dropped = Mutex::new(0u32);
    proxy.set_rule(move |head: &RequestHead, _| {
        let mut dropped = dropped.lock().unwrap();
        if head.path.contains("$batch") && head.body_contains("\"PATCH\"") && *dropped < 3 {
            *dropped += 1;
            Action::ForwardThenDrop
        } else {
            Action::Forward
        }
    });
    let (code, out, err) = run_via(&proxy, &["apply", yaml.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("confirmed by reading back: their answer was lost"),
        "{out}"
    );
    assert!(proxy.stats().dropped_after_forward > 0);
    assert_eq!(
        scenario.stats().writes,
        2 * rows.len() as u64,
        "each write was made once, lost answer or not"
    );
    assert_converged(&scenario.tenant(), &rows);
}

#[test]
fn a_lost_answer_to_a_write_that_did_not_happen_is_sent_again() {
    let tenant = Tenant::generate(6, 7);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let proxy = FaultProxy::in_front_of(&scenario.url());
    // The first PATCH of each connection never reaches Graph; the connection is closed.
    let closed = Mutex::new(0u32);
    proxy.set_rule(move |head: &RequestHead, _| {
        let mut closed = closed.lock().unwrap();
        if head.method == "PATCH" && *closed < 3 {
            *closed += 1;
            Action::Close
        } else {
            Action::Forward
        }
    });
    let (code, out, err) = run_via(
        &proxy,
        &[
            "apply",
            "--no-batch",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--write-rate",
            "500",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("confirmed by reading back"), "{out}");
    assert_eq!(scenario.stats().writes, 2 * rows.len() as u64);
    assert_converged(&scenario.tenant(), &rows);
}

// ---------------------------------------------------------------------------------------------
// 7. Retry-After far in the future is capped, said, and counted.

#[test]
fn a_retry_after_in_the_year_9999_pauses_at_most_the_cap_and_says_so() {
    for retry_after in ["Fri, 31 Dec 9999 23:59:59 GMT", "99999999"] {
        let scenario = Scenario::new(Tenant::generate(6, 8));
        let (rows, _) = manifest_for(&scenario.tenant(), false);
        let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
        let proxy = FaultProxy::in_front_of(&scenario.url());
        let value = retry_after.to_owned();
        proxy.set_rule(move |_, n| {
            if n == 1 {
                Action::Respond {
                    status: 429,
                    headers: vec![
                        ("Retry-After".into(), value.clone()),
                        ("Content-Type".into(), "application/json".into()),
                    ],
                    body: br#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#.to_vec(),
                }
            } else {
                Action::Forward
            }
        });
        let started = Instant::now();
        let (code, _, err) = run_via(
            &proxy,
            &["plan", yaml.to_str().unwrap(), "--max-pause", "2"],
        );
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("WARN") && err.contains("pausing every request for 2 s"),
            "logged at the default level with its reason: {err}"
        );
        assert!(err.contains("the longest mfactl waits at once"), "{err}");
        assert!(err.contains("paused 1 time for 2.0 s"), "counted: {err}");
        assert!(started.elapsed() < Duration::from_secs(30), "{retry_after}");
    }
}

// ---------------------------------------------------------------------------------------------
// 8. A token no header can carry; one message when the 403 breaker trips.

#[test]
fn a_token_with_a_line_break_is_refused_at_start_with_one_message() {
    let scenario = Scenario::new(Tenant::generate(3, 1));
    let yaml = scenario.write("desired.yaml", &manifest_of(30));
    let out = scenario
        .mfactl(&["plan", yaml.to_str().unwrap()])
        .env(
            "MFACTL_ACCESS_TOKEN",
            "eyJhbGciOi.secretpart\nX-Injected: 1",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("MFACTL_ACCESS_TOKEN") && err.contains("cannot be sent in an HTTP header"),
        "{err}"
    );
    assert!(
        !err.contains("secretpart"),
        "the token is never printed: {err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{err}"
    );
    assert_eq!(scenario.stats().requests, 0);
}

#[test]
fn a_403_breaker_trip_prints_one_message_and_no_warning_per_user() {
    let scenario = Scenario::new(Tenant::generate(40, 3));
    let (rows, _) = manifest_for(&scenario.tenant(), false);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario
        .mfactl(&["plan", yaml.to_str().unwrap()])
        .env("MFACTL_ACCESS_TOKEN", "denied-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(!err.contains("WARN"), "{err}");
    assert_eq!(
        err.matches("Authorization_RequestDenied").count(),
        1,
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// 9. A run that stops lists the users it never reached; the summary adds up.

#[test]
fn a_401_mid_apply_lists_the_users_never_reached_and_the_summary_adds_up() {
    let tenant = Tenant::generate(30, 10);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let proxy = FaultProxy::in_front_of(&scenario.url());
    // Reads pass; after six writes the token "expires".
    let writes_seen = Mutex::new(0u32);
    proxy.set_rule(move |head: &RequestHead, _| {
        if head.method != "PATCH" {
            return Action::Forward;
        }
        let mut seen = writes_seen.lock().unwrap();
        *seen += 1;
        if *seen <= 6 {
            Action::Forward
        } else {
            graph_error(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed",
            )
        }
    });
    let (code, out, err) = run_via(
        &proxy,
        &[
            "apply",
            "--no-batch",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--concurrency",
            "2",
            "--write-rate",
            "200",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rejected the access token"), "{err}");
    assert!(
        out.contains("Not reached (writes not sent: the run stopped"),
        "{out}"
    );
    let n = apply_line_numbers(&out);
    // changed + in sync + blocked + not found + failed + not reached = every manifest user.
    let total = n[0] + n[3] + n[4] + n[5] + n[6] + n.get(7).copied().unwrap_or(0);
    assert_eq!(total, 30, "{out}");
    assert!(n.len() == 8 && n[7] > 0, "not reached is counted: {out}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_new_writes_reports_the_rest_and_exits_130() {
    let tenant = Tenant::generate(40, 11);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let journal = scenario.dir.path().join("journal.jsonl");
    let child = scenario
        .std_command(&[
            "apply",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--write-rate",
            "4",
            "--journal",
            journal.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    // Wait for the first written result, then interrupt.
    crate::support::wait_for_journal(&journal, |text| text.contains("\"result\""));
    let out = crate::support::interrupt(child);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(130), "{text}\n{err}");
    assert!(err.contains("no new writes will start"), "{err}");
    // Not "Applied in": the run did not finish.
    assert!(err.contains("Stopped by Ctrl-C after "), "{err}");
    assert!(!err.contains("Applied in"), "{err}");
    let n = apply_line_numbers(&text);
    assert!(n.len() == 8 && n[7] > 0, "{text}");
    assert_eq!(n[0] + n[3] + n[4] + n[5] + n[6] + n[7], 40, "{text}");
    // Every intent in the journal has its result: in-flight writes finished and were recorded.
    let lines = std::fs::read_to_string(&journal).unwrap();
    let count = |event: &str| lines.matches(&format!("\"event\":\"{event}\"")).count();
    assert_eq!(count("intent"), count("result"), "{lines}");
}

// ---------------------------------------------------------------------------------------------
// 11. One user named twice (by UPN and by object id) is found before any write.

#[test]
fn the_same_user_by_upn_and_by_object_id_is_a_duplicate_before_any_write() {
    let tenant = Tenant::generate(5, 13);
    let user = tenant.users[2].clone();
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write(
        "desired.yaml",
        &format!(
            "version: 1\nusers:\n  - user: {}\n    perUserMfaState: disabled\n  - user: {}\n    perUserMfaState: enforced\n",
            user.user_principal_name, user.id
        ),
    );
    let path = yaml.to_str().unwrap();
    for args in [vec!["plan", path], vec!["apply", path, "--auto-approve"]] {
        let out = scenario.run(&args);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("desired.yaml:5: error[duplicate-user]"),
            "{err}"
        );
        assert!(err.contains("at line 3"), "both locations: {err}");
        assert!(err.contains(&user.id), "{err}");
    }
    assert_eq!(scenario.stats().writes, 0);
}

#[test]
fn every_planned_user_carries_its_object_id() {
    let tenant = Tenant::generate(30, 14);
    let (rows, _) = manifest_for(&tenant, true);
    let scenario = Scenario::new(tenant.clone());
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let (_, doc) = scenario.plan_json(&yaml);
    for entry in doc["users"].as_array().unwrap() {
        let user = tenant
            .users
            .iter()
            .find(|u| u.id == entry["user"] || u.user_principal_name == entry["user"])
            .unwrap();
        assert_eq!(entry["id"], user.id.as_str(), "{entry}");
    }
}

// ---------------------------------------------------------------------------------------------
// 12. --graph-url takes a root (or a trailing /beta) only; the header names the tenant.

#[test]
fn a_graph_url_with_a_version_path_is_refused_and_beta_is_accepted() {
    let tenant = Tenant::generate(6, 15);
    let (rows, _) = manifest_for(&tenant, false);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    for path in ["/v1.0", "/beta/users", "/graph"] {
        let out = mfactl()
            .args([
                "plan",
                yaml.to_str().unwrap(),
                "--graph-url",
                &format!("{}{path}", scenario.url()),
            ])
            .env("MFACTL_ACCESS_TOKEN", "t")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{path}");
        assert!(stderr(&out).contains("has a path"), "{}", stderr(&out));
    }
    assert_eq!(scenario.stats().requests, 0);
    let out = mfactl()
        .args([
            "plan",
            yaml.to_str().unwrap(),
            "--graph-url",
            &format!("{}/beta/", scenario.url()),
            "--format",
            "json",
        ])
        .env("MFACTL_ACCESS_TOKEN", "t")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["graph"], scenario.url());
}

#[test]
fn the_plan_names_the_tenant_next_to_the_graph_root() {
    let tenant = Tenant::generate(6, 16);
    let (rows, _) = manifest_for(&tenant, false);
    let (id, domain) = (tenant.tenant_id.clone(), tenant.domain.clone());
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let out = scenario.run(&["plan", yaml.to_str().unwrap()]);
    let first = stdout(&out).lines().next().unwrap_or_default().to_owned();
    assert_eq!(
        first,
        format!("Tenant {domain} ({id}) at {}", scenario.url())
    );
    let (_, doc) = scenario.plan_json(&yaml);
    assert_eq!(doc["tenant_id"], id.as_str());
    assert_eq!(doc["tenant_domain"], domain.as_str());
}

// ---------------------------------------------------------------------------------------------
// 14. Output paths are checked before the first request.

#[test]
fn unwritable_out_and_journal_paths_fail_before_any_request() {
    let scenario = Scenario::new(Tenant::generate(4, 17));
    let (rows, _) = manifest_for(&scenario.tenant(), false);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let missing = scenario.dir.path().join("no-such-folder").join("x.json");
    let missing = missing.to_str().unwrap();
    let folder = scenario.dir.path().to_str().unwrap();
    for args in [
        vec!["plan", yaml.to_str().unwrap(), "--out", missing],
        vec!["plan", yaml.to_str().unwrap(), "--out", folder],
        vec![
            "apply",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--journal",
            missing,
        ],
    ] {
        let out = scenario.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("x.json") || args.contains(&folder),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(scenario.stats().requests, 0, "nothing was sent");
}

// ---------------------------------------------------------------------------------------------
// 15. The help says where the token comes from.

#[test]
fn plan_and_apply_help_name_the_token_variable() {
    for command in ["plan", "apply"] {
        let out = mfactl().args([command, "--help"]).output().unwrap();
        let text = stdout(&out);
        assert!(text.contains("MFACTL_ACCESS_TOKEN"), "{command}: {text}");
        assert!(text.contains("in memory only"), "{command}: {text}");
    }
}
