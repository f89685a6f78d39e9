//! Issue 18's red-team findings, each as a story through the binary: forged plans, unknown
//! outcomes, unbounded input, sign-in leaks and planted files. What the emulator cannot do
//! (a gzip bomb, a looping nextLink, an echoing token endpoint) the fault proxy does.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mfactl::plan::{Plan, Status, saved};
use mfactl_emulator::Tenant;
use serde_json::{Value, json};

use crate::fault_proxy::{Action, FaultProxy, RequestHead};
use crate::support::{Scenario, manifest_changing_everyone, plan_key, stderr, stdout, to_yaml};

/// A tenant of `users`, a manifest changing both endpoints of each (by object id), and the
/// plan saved from it.
fn planned(users: usize, seed: u64) -> (Scenario, PathBuf, PathBuf) {
    let tenant = Tenant::generate(users, seed);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let plan = scenario.save_plan(&yaml);
    (scenario, yaml, plan)
}

/// The saved plan at `path`, read with the tests' key.
fn read_plan(path: &Path) -> Plan {
    saved::load(path, Some(&plan_key())).expect("a plan the tests sealed")
}

/// `plan` sealed with the tests' key (as someone holding the key, or a buggy build, would) and
/// saved as `name` in the scenario's folder.
fn reseal(scenario: &Scenario, name: &str, plan: &Plan) -> PathBuf {
    let mut bytes = Vec::new();
    saved::write(plan, &mut bytes, &plan_key()).unwrap();
    scenario.write(name, std::str::from_utf8(&bytes).unwrap())
}

/// `apply PLAN`, which must be refused before any request with `says` on stderr.
fn refused_offline(scenario: &Scenario, plan: &Path, extra: &[&str], says: &str) -> String {
    let mut args = vec!["apply", plan.to_str().unwrap()];
    args.extend_from_slice(extra);
    let before = scenario.stats().requests;
    let out = scenario.run(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(says), "expected {says:?} in: {err}");
    assert_eq!(scenario.stats().requests, before, "nothing was sent: {err}");
    err
}

// ---------------------------------------------------------------------------------------------
// 1. Plans an attacker cannot re-seal, and that must hold together whoever sealed them.

#[test]
fn a_plan_re_sealed_with_an_unkeyed_checksum_makes_no_write() {
    let (scenario, _, plan) = planned(4, 181);
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(text.contains("\"checksum\": \"hmac-sha256:"), "{text}");
    // The attacker edits the plan and recomputes the SHA-256 the old format trusted.
    let body = &text[..text.rfind(",\n  \"checksum\"").unwrap()];
    let edited = body.replace("\"max_changes\"", "\"max_changez\"");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, edited.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let forged = scenario.write(
        "forged.json",
        &format!("{edited},\n  \"checksum\": \"sha256:{hex}\"\n}}\n"),
    );
    let err = refused_offline(&scenario, &forged, &[], "is not authenticated");
    assert!(
        err.contains("MFACTL_PLAN_KEY"),
        "says how to make one: {err}"
    );
    // And a plan sealed with another key is refused as such, naming this run's key.
    let other = scenario
        .mfactl(&["apply", plan.to_str().unwrap()])
        .env(
            "MFACTL_PLAN_KEY",
            "another-secret-of-at-least-32-characters",
        )
        .output()
        .unwrap();
    let err = stderr(&other);
    assert_eq!(other.status.code(), Some(1), "{err}");
    assert!(err.contains("was sealed with plan key"), "{err}");
    assert_eq!(scenario.stats().writes, 0);
}

#[test]
fn a_plan_whose_summary_understates_its_writes_makes_no_write() {
    let (scenario, _, path) = planned(4, 182);
    let mut plan = read_plan(&path);
    assert_eq!(plan.summary.writes, 8);
    plan.summary.writes = 1;
    plan.summary.to_change = 1;
    let forged = reseal(&scenario, "understated.json", &plan);
    refused_offline(
        &scenario,
        &forged,
        &["--max-changes", "1"],
        "its summary says writes: 1, but its entries hold 8",
    );
    assert_eq!(scenario.stats().writes, 0);
}

#[test]
fn plans_without_a_tenant_or_with_missing_or_repeated_ids_are_refused() {
    let (scenario, _, path) = planned(3, 183);
    let plan = read_plan(&path);
    let mut no_tenant = plan.clone();
    no_tenant.tenant_id = None;
    let forged = reseal(&scenario, "no-tenant.json", &no_tenant);
    refused_offline(&scenario, &forged, &[], "names no tenant");

    let mut by_name = plan.clone();
    by_name.users[0].user = "someone@contoso.com".into();
    by_name.users[0].id = None;
    let forged = reseal(&scenario, "by-name.json", &by_name);
    refused_offline(&scenario, &forged, &[], "has writes but no object id");

    let mut thrice = plan.clone();
    let first = thrice.users[0].clone();
    thrice.users.push(first.clone());
    thrice.users.push(first);
    thrice.summary = thrice.count(thrice.summary.users + 2);
    let forged = reseal(&scenario, "thrice.json", &thrice);
    refused_offline(&scenario, &forged, &[], "is listed 3 times");
}

#[test]
fn a_user_named_with_another_users_object_id_is_not_written() {
    let tenant = Tenant::generate(2, 184);
    let (megan, adele) = (&tenant.users[0], &tenant.users[1]);
    let yaml = format!(
        "version: 1\nusers:\n  - user: {}\n    systemPreferred: {}\n",
        megan.user_principal_name,
        !megan
            .sign_in_preferences
            .is_system_preferred_authentication_method_enabled
    );
    let adele_before = adele.sign_in_preferences.clone();
    let scenario = Scenario::new(tenant.clone());
    let path = scenario.save_plan(&scenario.write("desired.yaml", &yaml));
    // The reviewer reads megan; the write would go to adele's object id.
    let mut plan = read_plan(&path);
    plan.users[0].id = Some(adele.id.parse().unwrap());
    let forged = reseal(&scenario, "swapped.json", &plan);
    let out = scenario.run(&["apply", forged.to_str().unwrap()]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(3), "{text}\n{err}");
    assert!(text.contains("nameMismatch"), "{text}");
    assert!(
        text.contains(&adele.user_principal_name),
        "names who the id is: {text}"
    );
    assert_eq!(scenario.stats().writes, 0, "{text}");
    assert_eq!(scenario.tenant().users[1].sign_in_preferences, adele_before);
}

#[test]
fn the_manifest_s_guards_hold_against_a_plan_that_dropped_them() {
    let tenant = Tenant::generate(3, 185);
    let rows = manifest_changing_everyone(&tenant);
    let breakglass = tenant.users[0].user_principal_name.clone();
    let manifest = |max_changes: u64| {
        format!("protect: [{breakglass}]\nmaxChanges: {max_changes}\n")
            + &to_yaml(&rows).replacen("version: 1\n", "", 1)
    };
    let scenario = Scenario::new(tenant.clone());
    let yaml = scenario.write("desired.yaml", &format!("version: 1\n{}", manifest(1)));
    let path = scenario.save_plan(&yaml);
    let mut plan = read_plan(&path);
    let protected = plan
        .users
        .iter_mut()
        .find(|u| u.status == Status::Protected)
        .expect("the break-glass account is in the plan, protected");
    protected.status = Status::Change;
    plan.max_changes = None;
    plan.summary = plan.count(plan.summary.users);
    let forged = reseal(&scenario, "unguarded.json", &plan);

    // The manifest's maxChanges: 1 still stops it, before any write.
    let out = scenario.run(&["apply", forged.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the manifest's maxChanges"), "{err}");
    assert_eq!(scenario.stats().writes, 0);

    // With a roomier limit, its protect: list still keeps the account from any write.
    std::fs::write(&yaml, format!("version: 1\n{}", manifest(100))).unwrap();
    let out = scenario.run(&["apply", forged.to_str().unwrap()]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    assert!(
        err.contains("Protected by the manifest's protect: list"),
        "{err}"
    );
    assert!(
        err.contains(&tenant.users[0].id),
        "names the account: {err}"
    );
    assert_eq!(
        scenario.stats().writes,
        4,
        "the two other users' writes only"
    );
    let now = &scenario.tenant().users[0];
    assert_eq!(now.per_user_mfa_state, tenant.users[0].per_user_mfa_state);
    assert_eq!(now.sign_in_preferences, tenant.users[0].sign_in_preferences);
}

#[test]
fn a_policy_body_that_writes_more_than_its_changes_show_is_refused() {
    let scenario = Scenario::new(Tenant::generate(2, 186));
    let yaml = scenario.write(
        "policy.yaml",
        "version: 1\npolicy:\n  reportSuspiciousActivity:\n    state: enabled\n    voiceReportingCode: 5\n",
    );
    let path = scenario.save_plan(&yaml);
    let mut plan = read_plan(&path);
    let policy = plan.policy.as_mut().expect("a policy plan");
    assert!(
        policy
            .changes
            .iter()
            .all(|c| c.part == "reportSuspiciousActivity")
    );
    // Shown: a voice reporting code. Written too: system-preferred MFA off for everyone.
    policy.body.insert(
        "systemCredentialPreferences".into(),
        json!({ "state": "disabled", "excludeTargets": [],
                "includeTargets": [{ "id": "all_users", "targetType": "group" }] }),
    );
    let forged = reseal(&scenario, "policy-forged.json", &plan);
    refused_offline(&scenario, &forged, &[], "the policy body writes");
}

#[test]
fn text_a_plan_carries_is_escaped_on_the_terminal() {
    let (scenario, _, path) = planned(2, 187);
    let mut plan = read_plan(&path);
    let hostile = "fine\u{1b}[2J\n\nPlan: 0 users to change (0 writes).";
    plan.users[0].add_note(hostile.into());
    // A blocked user's reason is shown in the plan's summary ("Needs attention").
    let user = plan.users[0].clone();
    let mut fields = user.fields.to_vec();
    fields[0].blocked = true;
    plan.users[0] = mfactl::plan::UserPlan::new(
        user.user.clone(),
        Status::Blocked,
        fields,
        Some(format!("push is not registered{hostile}")),
        vec![hostile.into()],
    );
    plan.users[0].id = user.id;
    plan.summary = plan.count(plan.summary.users);
    plan.tenant_domain = Some("contoso.com\u{202e}moc".into());
    let forged = reseal(&scenario, "noisy.json", &plan);
    // Applied: the text summary names the tenant; the JSON report carries the reason and the
    // note; all of it escaped.
    let out = scenario.run(&["apply", forged.to_str().unwrap(), "--format", "json"]);
    let (json, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(3), "{json}\n{err}");
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["tenant_domain"], "contoso.com\\u{202e}moc");
    let shown = doc["users"][0]["notes"][0].as_str().unwrap();
    assert_eq!(
        shown,
        "fine\\u{1b}[2J\\n\\nPlan: 0 users to change (0 writes)."
    );
    assert!(
        doc["users"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("\\u{1b}[2J")
    );
    for shown in [&json, &err] {
        assert!(
            !shown.contains('\u{1b}') && !shown.contains("\\u001b"),
            "ESC: {shown}"
        );
        assert!(!shown.contains('\u{202e}'), "raw bidi override: {shown}");
    }
    let out = scenario.run(&["apply", forged.to_str().unwrap(), "--max-changes", "0"]);
    let text = stdout(&out);
    assert!(text.contains("Tenant contoso.com\\u{202e}moc"), "{text}");
    assert!(!text.contains('\u{202e}'), "{text}");
}

// ---------------------------------------------------------------------------------------------
// 2. Unknown outcomes stay unknown.

#[test]
fn a_write_whose_answer_and_read_back_were_lost_is_unsettled_rolled_back_and_settled_on_resume() {
    let tenant = Tenant::generate(1, 188);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let journal = scenario.dir.path().join("run.jsonl");
    let proxy = FaultProxy::in_front_of(&scenario.url());
    // Each PATCH is carried out and its answer lost; reading that endpoint back then fails.
    let written: Arc<Mutex<HashSet<String>>> = Arc::default();
    let seen = Arc::clone(&written);
    proxy.set_rule(move |head: &RequestHead, _| {
        let mut written = seen.lock().unwrap();
        if head.method == "PATCH" {
            written.insert(head.path.clone());
            Action::ForwardThenDrop
        } else if written.contains(&head.path) {
            Action::Respond {
                status: 503,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: br#"{"error":{"code":"serviceUnavailable","message":"later"}}"#.to_vec(),
            }
        } else {
            Action::Forward
        }
    });
    let out = proxy
        .mfactl(&[
            "apply",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--no-batch",
            "--max-attempts",
            "1",
            "--journal",
            journal.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(3), "{text}\n{err}");
    assert_eq!(scenario.stats().writes, 2, "both writes were made");
    let results: Vec<Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "result")
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    for result in &results {
        assert_eq!(result["result"]["ok"], false, "{result}");
        assert_eq!(result["result"]["unsettled"], true, "{result}");
        assert_eq!(result["result"]["code"], "unsettled", "{result}");
    }

    // Rollback restores them: they may have been made.
    let undo = crate::support::mfactl()
        .args(["rollback", journal.to_str().unwrap()])
        .output()
        .unwrap();
    let manifest = stdout(&undo);
    assert_eq!(undo.status.code(), Some(0), "{}", stderr(&undo));
    assert!(manifest.contains(&rows[0].user), "{manifest}");
    assert!(manifest.contains("unsettled"), "{manifest}");

    // Resume reads them back, finds them made, and sends nothing again.
    proxy.set_rule(|_, _| Action::Forward);
    let plan = scenario.dir.path().join("run.plan.json");
    let out = proxy
        .mfactl(&[
            "apply",
            plan.to_str().unwrap(),
            "--resume",
            journal.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    assert!(err.contains("2 announced without an answer"), "{err}");
    assert!(text.contains("confirmed by reading back"), "{text}");
    assert_eq!(scenario.stats().writes, 2, "nothing was sent twice");
}

// ---------------------------------------------------------------------------------------------
// 3. Bounds on everything from outside.

#[cfg(unix)]
fn mkfifo(path: &Path) -> bool {
    std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(unix)]
#[test]
fn devices_and_fifos_are_refused_where_files_are_expected() {
    let (scenario, _, path) = planned(2, 189);
    let fifo = scenario.dir.path().join("fifo.json");
    let has_fifo = mkfifo(&fifo);
    let mut inputs = vec![Path::new("/dev/zero").to_owned()];
    if has_fifo {
        inputs.push(fifo.clone());
    }
    for input in &inputs {
        let input = input.to_str().unwrap();
        let runs: [Vec<&str>; 3] = [
            vec!["rollback", input],
            vec!["apply", path.to_str().unwrap(), "--resume", input],
            vec!["export", "--out", "x.yaml", "--users", input],
        ];
        for args in runs {
            let mut cmd = if args[0] == "rollback" {
                let mut cmd = crate::support::mfactl();
                cmd.args(&args);
                cmd
            } else {
                scenario.mfactl(&args)
            };
            let out = cmd.timeout(Duration::from_secs(60)).output().unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains("not a regular file"), "{args:?}: {err}");
        }
    }
    if has_fifo {
        // A plan given as a FIFO: refused, not waited on.
        let out = scenario
            .mfactl(&["apply", fifo.to_str().unwrap()])
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("not a regular file"),
            "{}",
            stderr(&out)
        );
    }
    // A plan whose manifest is a device or a FIFO is applied without reading it.
    for manifest in inputs {
        let mut plan = read_plan(&path);
        plan.manifest.as_mut().unwrap().path = manifest.to_string_lossy().into_owned();
        let forged = reseal(&scenario, "device-manifest.json", &plan);
        let out = scenario
            .mfactl(&["apply", forged.to_str().unwrap(), "--max-changes", "0"])
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(err.contains("cannot be read again"), "{err}");
        assert!(
            err.contains("more than the limit"),
            "ran to the guard: {err}"
        );
    }
    assert_eq!(scenario.stats().writes, 0);
}

#[cfg(unix)]
#[test]
fn a_journal_is_never_written_through_a_symlink() {
    use std::os::unix::fs::PermissionsExt as _;
    let (scenario, _, path) = planned(2, 190);
    let before = scenario.stats().requests;
    let target = scenario.write("precious.txt", "keep me\n");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = scenario.dir.path().join("journal.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = scenario.run(&[
        "apply",
        path.to_str().unwrap(),
        "--journal",
        link.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "the target keeps its mode");
    assert_eq!(scenario.stats().requests, before);
}

/// 2 GiB of zeros as one gzip member (about 2 MB): deflate blocks ending in a full flush
/// compress each MiB alike, so one block is made and repeated.
fn gzip_bomb(mib: u32) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut compress = Compress::new(Compression::best(), false);
    let mut block = |input: &[u8], flush| {
        let mut out = Vec::with_capacity(1 << 16);
        let before = compress.total_in();
        loop {
            let consumed = (compress.total_in() - before) as usize;
            out.reserve(1 << 16);
            compress
                .compress_vec(&input[consumed..], &mut out, flush)
                .unwrap();
            if compress.total_in() - before == input.len() as u64 && out.len() < out.capacity() {
                return out;
            }
        }
    };
    let first = block(&zeros, FlushCompress::Full);
    let repeated = block(&zeros, FlushCompress::Full);
    assert_eq!(
        block(&zeros, FlushCompress::Full),
        repeated,
        "a MiB compresses alike"
    );
    let last = block(&[], FlushCompress::Finish);
    let mut crc = crc32fast::Hasher::new();
    let mut one = crc32fast::Hasher::new();
    one.update(&zeros);
    for _ in 0..mib {
        crc.combine(&one);
    }
    let mut gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gzip.extend_from_slice(&first);
    for _ in 0..mib.saturating_sub(3) {
        gzip.extend_from_slice(&repeated);
    }
    gzip.extend_from_slice(&repeated);
    gzip.extend_from_slice(&repeated);
    gzip.extend_from_slice(&last);
    gzip.extend_from_slice(&crc.finalize().to_le_bytes());
    gzip.extend_from_slice(&((u64::from(mib) << 20) as u32).to_le_bytes());
    gzip
}

#[test]
fn the_gzip_bomb_inflates_to_what_it_says() {
    use std::io::Read as _;
    let bomb = gzip_bomb(8);
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&bomb[..])
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated.len(), 8 << 20);
    assert!(inflated.iter().all(|b| *b == 0));
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
}

/// The most a bounded run may hold: well under the 2 GiB a bomb inflates to.
#[cfg(target_os = "linux")]
const PEAK_KIB: u64 = 300 * 1000;

#[cfg(target_os = "linux")]
#[test]
fn rollback_of_dev_zero_ends_with_an_error_in_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let run = crate::support::peak_rss(&["rollback", "/dev/zero"], &[], dir.path());
    assert_eq!(run.exit, 1, "{}", run.stderr);
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
    eprintln!("peak {} KiB (limit {PEAK_KIB} KiB)", run.peak_kib);
    assert!(run.peak_kib < PEAK_KIB, "peak {} KiB", run.peak_kib);
}

#[cfg(target_os = "linux")]
#[test]
fn a_2_gib_gzip_answer_ends_with_an_error_in_little_memory() {
    let (scenario, yaml, _) = planned(1, 191);
    let proxy = FaultProxy::in_front_of(&scenario.url());
    let bomb = gzip_bomb(2048);
    assert!(bomb.len() < 4 << 20, "{}", bomb.len());
    proxy.set_rule(move |_, _| Action::Respond {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("Content-Encoding".into(), "gzip".into()),
        ],
        body: bomb.clone(),
    });
    let run = crate::support::peak_rss(
        &["plan", yaml.to_str().unwrap(), "--graph-url", &proxy.url()],
        &[("MFACTL_ACCESS_TOKEN", "test-token-not-a-secret")],
        scenario.dir.path(),
    );
    assert_eq!(run.exit, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("larger than 16 MiB once decompressed"),
        "{}",
        run.stderr
    );
    eprintln!("peak {} KiB (limit {PEAK_KIB} KiB)", run.peak_kib);
    assert!(run.peak_kib < PEAK_KIB, "peak {} KiB", run.peak_kib);
    assert_eq!(scenario.stats().writes, 0);
}

#[cfg(target_os = "linux")]
#[test]
fn a_next_link_to_itself_ends_with_an_error_in_little_memory() {
    let scenario = Scenario::new(Tenant::generate(3, 192));
    let yaml = scenario.write(
        "everyone.yaml",
        "version: 1\nallUsers:\n  perUserMfaState: disabled\n",
    );
    let proxy = FaultProxy::in_front_of(&scenario.url());
    let root = proxy.url();
    let user = scenario.tenant().users[0].clone();
    proxy.set_rule(move |head: &RequestHead, _| {
        if head.method == "GET" && head.path.starts_with("/beta/users?") {
            let page = json!({
                "value": [{ "id": user.id, "userPrincipalName": user.user_principal_name,
                            "userType": "Member", "accountEnabled": true }],
                "@odata.nextLink": format!("{root}/beta/users?$skiptoken=again"),
            });
            Action::Respond {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: page.to_string().into_bytes(),
            }
        } else {
            Action::Forward
        }
    });
    let env = [("MFACTL_ACCESS_TOKEN", "test-token-not-a-secret")];
    for args in [
        vec!["plan", yaml.to_str().unwrap()],
        vec!["export", "--out", "all.yaml"],
    ] {
        let mut args = args;
        let url = proxy.url();
        // One request at a time, so that the proxy sees the listing's own GETs.
        args.extend(["--graph-url", url.as_str(), "--no-batch"]);
        let run = crate::support::peak_rss(&args, &env, scenario.dir.path());
        assert_eq!(run.exit, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("points at a page already read"),
            "{args:?}: {}",
            run.stderr
        );
        eprintln!(
            "{}: peak {} KiB (limit {PEAK_KIB} KiB)",
            args[0], run.peak_kib
        );
        assert!(
            run.peak_kib < PEAK_KIB,
            "{args:?}: peak {} KiB",
            run.peak_kib
        );
    }
    assert!(
        proxy.stats().responded <= 10,
        "a few pages, not thousands: {:?}",
        proxy.stats()
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Sign-in.

/// The app's variables signing in with a secret at `authority` (the fault proxy).
fn with_secret(cmd: &mut assert_cmd::Command, scenario: &Scenario, authority: &str, secret: &str) {
    cmd.env_remove("MFACTL_ACCESS_TOKEN")
        .env("AZURE_TENANT_ID", scenario.tenant().tenant_id)
        .env("AZURE_CLIENT_ID", "2b1a1d9e-0000-4000-8000-000000000001")
        .env("AZURE_CLIENT_SECRET", secret)
        .env("AZURE_AUTHORITY_HOST", authority)
        .args(["--auth", "secret"]);
}

#[test]
fn a_token_lifetime_of_1e300_does_not_panic() {
    let (scenario, yaml, _) = planned(2, 193);
    let proxy = FaultProxy::in_front_of(&scenario.url());
    proxy.set_rule(|head: &RequestHead, _| {
        if head.path.ends_with("/oauth2/v2.0/token") {
            Action::Respond {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: br#"{"token_type":"Bearer","expires_in":1e300,"access_token":"opaque-token-for-the-emulator"}"#.to_vec(),
            }
        } else {
            Action::Forward
        }
    });
    let mut cmd = proxy.mfactl(&["plan", yaml.to_str().unwrap(), "--detailed-exitcode"]);
    with_secret(&mut cmd, &scenario, &proxy.url(), "a-client-secret-value");
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "planned, no panic: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_token_endpoint_that_echoes_the_request_never_shows_the_secret() {
    let (scenario, yaml, _) = planned(1, 194);
    let proxy = FaultProxy::in_front_of(&scenario.url());
    proxy.set_rule(|head: &RequestHead, _| {
        if head.path.ends_with("/oauth2/v2.0/token") {
            let echoed = String::from_utf8_lossy(&head.body).into_owned();
            let body = json!({ "error": "invalid_client",
                "error_description": format!("AADSTS7000215: Invalid client secret. You sent: {echoed}") });
            Action::Respond {
                status: 401,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: body.to_string().into_bytes(),
            }
        } else {
            Action::Forward
        }
    });
    let secret = "Sup3r~secret/value+with=chars";
    let before = scenario.stats().requests;
    let mut cmd = proxy.mfactl(&["plan", yaml.to_str().unwrap()]);
    with_secret(&mut cmd, &scenario, &proxy.url(), secret);
    let out = cmd.env("MFACTL_LOG", "trace").output().unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("AADSTS7000215"),
        "the refusal is still said: {err}"
    );
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    for shown in [&text, &err] {
        assert!(!shown.contains("Sup3r"), "{shown}");
        assert!(!shown.contains(&encoded), "{shown}");
    }
    assert_eq!(scenario.stats().requests, before, "nothing reached Graph");
}

#[test]
fn a_loopback_graph_is_never_reached_through_the_environment_s_proxy() {
    // A "proxy" that counts the connections it is offered and answers none.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let offered = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&offered);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let watcher = std::thread::spawn(move || {
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((stream, _)) = listener.accept() {
                *counted.lock().unwrap() += 1;
                drop(stream);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let (scenario, yaml, _) = planned(3, 195);
    let tenant_file = scenario.write("tenant.yaml", &scenario.tenant().to_yaml());
    let proxied = |cmd: &mut assert_cmd::Command| {
        for name in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env(name, &proxy_url);
        }
    };
    let mut plan = scenario.mfactl(&["plan", yaml.to_str().unwrap(), "--detailed-exitcode"]);
    proxied(&mut plan);
    let out = plan.timeout(Duration::from_secs(60)).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let mut emulated = crate::support::mfactl();
    emulated
        .current_dir(scenario.dir.path())
        .args([
            "plan",
            yaml.to_str().unwrap(),
            "--detailed-exitcode",
            "--emulate",
        ])
        .arg(&tenant_file);
    proxied(&mut emulated);
    let out = emulated.timeout(Duration::from_secs(60)).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap();
    assert_eq!(*offered.lock().unwrap(), 0, "the proxy was offered nothing");
}
