//! `apply --resume`: a run killed at any moment is finished by resuming it, with no write lost
//! and none made twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mfactl_emulator::{EmulatorConfig, Tenant};
use serde_json::Value;

use crate::support::{Scenario, assert_converged, manifest_changing_everyone, stderr, to_yaml};

/// Graph-like trouble: latency, and a resource-unit bucket much smaller than the client
/// expects, so reads are throttled (429 with Retry-After) throughout the run.
fn throttled() -> EmulatorConfig {
    EmulatorConfig {
        latency: Some((Duration::from_millis(10), Duration::from_millis(40))),
        ru_per_10s: Some(600),
        ..EmulatorConfig::default()
    }
}

const USERS: usize = 150;
const WRITES: u64 = 2 * USERS as u64;

fn journal_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn results(path: &Path) -> usize {
    journal_lines(path)
        .iter()
        .filter(|e| e["event"] == "result")
        .count()
}

/// Waits until the journal at `path` (or the first `*.journal.jsonl` in `dir`) holds at least
/// `n` results, then kills the child with SIGKILL; returns the journal's path.
fn kill_after(
    mut child: std::process::Child,
    journal: impl Fn() -> Option<PathBuf>,
    n: usize,
) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(path) = journal()
            && results(&path) >= n
        {
            child.kill().unwrap(); // SIGKILL: no chance to finish anything
            let status = child.wait().unwrap();
            assert!(!status.success(), "killed before it finished");
            // The emulator finishes any request already in its hands before the resume.
            std::thread::sleep(Duration::from_millis(300));
            return path;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("apply ended ({status}) before {n} results were journalled");
        }
        assert!(Instant::now() < deadline, "apply never got to {n} results");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every planned write has exactly one `ok` result in the journal.
fn assert_each_write_recorded_applied_once(journal: &Path) {
    let mut applied: HashMap<(String, String), usize> = HashMap::new();
    for entry in journal_lines(journal)
        .iter()
        .filter(|e| e["event"] == "result" && e["result"]["ok"] == true)
    {
        let key = (
            entry["id"].as_str().unwrap().to_owned(),
            entry["endpoint"].as_str().unwrap().to_owned(),
        );
        *applied.entry(key).or_default() += 1;
    }
    assert_eq!(
        applied.len() as u64,
        WRITES,
        "every write is recorded applied"
    );
    assert!(
        applied.values().all(|n| *n == 1),
        "and applied once: {applied:?}"
    );
}

/// `apply PLAN --resume JOURNAL`, which must succeed; its stderr.
fn resume(scenario: &Scenario, plan: &Path, journal: &Path) -> String {
    let out = scenario.run(&[
        "apply",
        plan.to_str().unwrap(),
        "--resume",
        journal.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    err
}

/// Resumes and checks the outcome: converged, every write made exactly once (by the emulator's
/// count and by the journal's), and the journal telling the whole story.
fn resume_and_check(scenario: &Scenario, plan: &Path, journal: &Path, rows_tenant: &Tenant) {
    let killed_at = results(journal);
    assert!(killed_at < WRITES as usize, "the kill came before the end");
    let err = resume(scenario, plan, journal);
    assert!(err.contains("Resuming:"), "{err}");
    assert!(scenario.stats().throttled > 0, "the run was throttled");

    assert_converged(&scenario.tenant(), &manifest_changing_everyone(rows_tenant));
    assert_eq!(
        scenario.stats().writes,
        WRITES,
        "each write reached Graph exactly once"
    );
    let entries = journal_lines(journal);
    assert_each_write_recorded_applied_once(journal);
    let starts: Vec<&Value> = entries.iter().filter(|e| e["event"] == "start").collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[1]["resumed"], true);
    assert_eq!(starts[0]["plan_checksum"], starts[1]["plan_checksum"]);
    assert_eq!(entries.last().unwrap()["event"], "finish");
}

/// `apply PLAN --journal run.jsonl`, started: the child and the journal's path.
fn apply_in_background(scenario: &Scenario, plan: &Path) -> (std::process::Child, PathBuf) {
    let journal = scenario.dir.path().join("run.jsonl");
    let child = scenario
        .std_command(&[
            "apply",
            plan.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    (child, journal)
}

/// A tenant, its manifest, and a plan saved from it.
fn planned(seed: u64) -> (Scenario, Tenant, PathBuf, PathBuf) {
    let tenant = Tenant::generate(USERS, seed);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::with_config(tenant.clone(), throttled());
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let plan = scenario.save_plan(&yaml);
    (scenario, tenant, yaml, plan)
}

#[cfg(unix)]
#[test]
fn killed_just_after_the_first_write_a_resume_converges() {
    let (scenario, tenant, _, plan) = planned(51);
    let (child, journal) = apply_in_background(&scenario, &plan);
    let path = kill_after(child, || Some(journal.clone()), 1);
    resume_and_check(&scenario, &plan, &path, &tenant);
}

#[cfg(unix)]
#[test]
fn killed_half_way_a_resume_converges() {
    let (scenario, tenant, _, plan) = planned(52);
    let (child, journal) = apply_in_background(&scenario, &plan);
    let path = kill_after(child, || Some(journal.clone()), WRITES as usize / 2);
    resume_and_check(&scenario, &plan, &path, &tenant);
}

/// A manifest apply saves the plan it applies beside its default journal, in the current
/// folder: that pair resumes it.
#[cfg(unix)]
#[test]
fn killed_near_the_end_of_a_manifest_apply_its_saved_plan_resumes_it() {
    let (scenario, tenant, yaml, _) = planned(53);
    let dir = scenario.dir.path().to_owned();
    let child = scenario
        .std_command(&["apply", yaml.to_str().unwrap(), "--auto-approve"])
        .spawn()
        .unwrap();
    let find = |suffix: &str| {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
    };
    let journal = kill_after(child, || find(".journal.jsonl"), WRITES as usize * 9 / 10);
    let plan = find(".plan.json").expect("the applied plan is saved beside the journal");
    assert_eq!(
        plan.to_string_lossy().trim_end_matches(".plan.json"),
        journal.to_string_lossy().trim_end_matches(".journal.jsonl")
    );
    resume_and_check(&scenario, &plan, &journal, &tenant);
}

#[cfg(unix)]
#[test]
fn a_torn_last_line_is_dropped_and_the_write_it_began_is_checked() {
    let (scenario, tenant, _, plan) = planned(54);
    let (child, journal) = apply_in_background(&scenario, &plan);
    let path = kill_after(child, || Some(journal.clone()), 20);
    // As if the kill had come in the middle of writing a line.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(r#"{"time":"2026-11-23T10:00:00Z","event":"resu"#);
    std::fs::write(&path, text).unwrap();
    resume_and_check(&scenario, &plan, &path, &tenant);
}

/// Ctrl-C prints the exact command that finishes the run; running it does.
#[cfg(unix)]
#[test]
fn ctrl_c_prints_a_resume_command_that_works() {
    let tenant = Tenant::generate(20, 55);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant.clone());
    let yaml = scenario.write("desired file.yaml", &to_yaml(&rows));
    let journal = scenario.dir.path().join("run's journal.jsonl");
    let child = scenario
        .std_command(&[
            "apply",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--write-rate",
            "10",
            "--journal",
            journal.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    crate::support::wait_for_journal(&journal, |text| text.matches("\"result\"").count() >= 2);
    let out = crate::support::interrupt(child);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let command = err
        .lines()
        .find_map(|l| l.strip_prefix("To finish the run: "))
        .unwrap_or_else(|| panic!("no resume command in: {err}"));
    assert!(command.starts_with("mfactl apply "), "{command}");
    assert!(command.contains("--resume"), "{command}");
    assert!(!command.contains("--auto-approve"), "{command}");
    assert!(!command.contains("test-token"), "{command}");
    let stop = journal_lines(&journal).last().cloned().unwrap();
    assert_eq!(stop["event"], "stop", "{stop}");
    assert!(
        stop["reason"].as_str().unwrap().contains("Ctrl-C"),
        "{stop}"
    );

    // Run exactly that, by a shell, with the binary in place of `mfactl`.
    let binary = assert_cmd::cargo::cargo_bin("mfactl");
    let script = format!(
        "{} {}",
        binary.display(),
        command.strip_prefix("mfactl ").unwrap()
    );
    let mut shell = std::process::Command::new("sh");
    for name in crate::support::INHERITED {
        shell.env_remove(name);
    }
    let out = shell
        .args(["-c", &script])
        .current_dir(scenario.dir.path())
        .env("MFACTL_ACCESS_TOKEN", "test-token-not-a-secret")
        .env("MFACTL_PLAN_KEY_FILE", crate::support::plan_key_file())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{script}\n{}", stderr(&out));
    assert_converged(&scenario.tenant(), &rows);
    assert_eq!(scenario.stats().writes, 40);
}

/// A kill between Graph taking a write and the journal recording its answer: the write is
/// announced with no result. Resuming reads it back, finds it made, and does not send it again.
#[test]
fn writes_made_whose_answer_was_lost_are_read_back_not_sent_again() {
    let tenant = Tenant::generate(30, 56);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant.clone());
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let plan = scenario.save_plan(&yaml);
    let journal = scenario.dir.path().join("run.jsonl");
    let out = scenario.run(&[
        "apply",
        plan.to_str().unwrap(),
        "--journal",
        journal.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(scenario.stats().writes, 60);

    // Drop the finish line and the last ten results: ten writes made, their answers lost.
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut kept: Vec<&str> = text.lines().collect();
    kept.pop();
    let mut dropped = 0;
    kept.retain(|line| {
        let lost = dropped < 10 && line.contains("\"event\":\"result\"");
        dropped += usize::from(lost);
        !lost
    });
    std::fs::write(&journal, kept.join("\n") + "\n").unwrap();

    let err = resume(&scenario, &plan, &journal);
    assert!(err.contains("50 writes already made"), "{err}");
    assert!(err.contains("10 announced without an answer"), "{err}");
    assert_eq!(scenario.stats().writes, 60, "nothing sent twice: {err}");
    assert_converged(&scenario.tenant(), &rows);
    let settled = journal_lines(&journal)
        .iter()
        .filter(|e| e["event"] == "result" && e["result"]["settled_by_read"] == true)
        .count();
    assert_eq!(settled, 10);
}

/// Issue 18's crash-consistency story: `kill -9` at seeded random points, run after run, against
/// a throttled emulator; after the last resume every user converged, the emulator made each
/// planned write exactly once (as many writes as planned, and every one needed), and the
/// journal records each write applied once. `MFACTL_CRASH_ROUNDS` runs more rounds,
/// `MFACTL_CRASH_SEED` another sequence.
#[cfg(unix)]
#[test]
fn killed_at_random_points_again_and_again_a_resume_converges_with_each_write_made_once() {
    use rand::{Rng, SeedableRng};
    let env_number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = env_number("MFACTL_CRASH_ROUNDS", 4);
    let seed = env_number("MFACTL_CRASH_SEED", 1818);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (scenario, tenant, _, plan) = planned(57);
    let journal = scenario.dir.path().join("run.jsonl");
    let mut resumed = false;
    for round in 0..rounds {
        let mut args = vec!["apply", plan.to_str().unwrap()];
        if resumed {
            args.extend(["--resume", journal.to_str().unwrap()]);
        } else {
            args.extend(["--journal", journal.to_str().unwrap()]);
        }
        let mut child = scenario.std_command(&args).spawn().unwrap();
        // A point in the run: after some more results, or after a moment (which may land
        // between an intent and its result, or before the first write).
        let done = results(&journal);
        let left = (WRITES as usize).saturating_sub(done);
        let by_count = rng.random_bool(0.6) && left > 1;
        let target = done + rng.random_range(1..left.max(2));
        let delay = Duration::from_millis(rng.random_range(0..400));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(120);
        let finished = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            let due = if by_count {
                results(&journal) >= target
            } else {
                started.elapsed() >= delay
            };
            if due {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                break None;
            }
            assert!(Instant::now() < deadline, "round {round} never got there");
            std::thread::sleep(Duration::from_millis(2));
        };
        // The emulator finishes any request already in its hands before the next run.
        std::thread::sleep(Duration::from_millis(300));
        // Killed before writing started, the journal has no start line yet: the next round
        // starts the run afresh with it.
        resumed = journal_lines(&journal)
            .iter()
            .any(|e| e["event"] == "start");
        if let Some(status) = finished {
            assert!(status.success(), "round {round} ended on its own: {status}");
            break;
        }
    }
    let out = scenario.run(&[
        "apply",
        plan.to_str().unwrap(),
        "--resume",
        journal.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_converged(&scenario.tenant(), &manifest_changing_everyone(&tenant));
    assert_eq!(
        scenario.stats().writes,
        WRITES,
        "each planned write reached Graph exactly once (seed {seed})"
    );
    assert_each_write_recorded_applied_once(&journal);
    assert_eq!(journal_lines(&journal).last().unwrap()["event"], "finish");
}
