//! A small fluent harness: start an emulator with a scenario, run the binary against it, and
//! look at what the emulator saw.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use mfactl::model::{MethodKind, PerUserMfaState, PreferredMethod};
use mfactl_emulator::{Emulator, EmulatorConfig, Stats, Tenant, TenantUser};
use serde_json::Value;

/// A running emulator plus a scratch directory for manifests, plans and journals.
pub struct Scenario {
    runtime: tokio::runtime::Runtime,
    emulator: Option<Emulator>,
    pub dir: tempfile::TempDir,
}

impl Scenario {
    /// An emulator over `tenant` with Graph's default limits.
    pub fn new(tenant: Tenant) -> Scenario {
        Scenario::with_config(tenant, EmulatorConfig::default())
    }

    pub fn with_config(tenant: Tenant, config: EmulatorConfig) -> Scenario {
        Scenario::with_tenants(vec![tenant], config)
    }

    /// One emulator serving several tenants on one port (a Graph call goes to the tenant its
    /// token's `tid` names, a sign-in request to the tenant its URL names).
    pub fn with_tenants(tenants: Vec<Tenant>, config: EmulatorConfig) -> Scenario {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listen = "127.0.0.1:0".parse().unwrap();
        let emulator = runtime
            .block_on(Emulator::start_tenants(tenants, config, listen))
            .expect("emulator starts");
        Scenario {
            runtime,
            emulator: Some(emulator),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The running emulator (its sign-in endpoints, `revoke_refresh_tokens`, ...).
    pub fn emulator(&self) -> &Emulator {
        self.emulator.as_ref().expect("running")
    }

    /// Runs a future on the emulator's runtime (for tests that drive the library directly).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    pub fn url(&self) -> String {
        self.emulator().url()
    }

    pub fn stats(&self) -> Stats {
        self.emulator().stats()
    }

    pub fn tenant(&self) -> Tenant {
        self.emulator().tenant()
    }

    /// Writes a file into the scratch directory.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }

    /// `mfactl ARGS --graph-url URL` with a test token, stdin closed.
    pub fn mfactl(&self, args: &[&str]) -> Command {
        let mut cmd = mfactl();
        cmd.current_dir(self.dir.path())
            .args(args)
            .args(["--graph-url", &self.url()])
            .env("MFACTL_ACCESS_TOKEN", "test-token-not-a-secret");
        cmd
    }

    /// The same command as a `std::process::Command`, to run several at once.
    pub fn std_command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("mfactl"));
        for name in INHERITED {
            cmd.env_remove(name);
        }
        cmd.env("MFACTL_PLAN_KEY_FILE", plan_key_file());
        cmd.current_dir(self.dir.path())
            .args(args)
            .args(["--graph-url", &self.url()])
            .env("MFACTL_ACCESS_TOKEN", "test-token-not-a-secret")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    }

    /// Runs `mfactl ARGS` against the emulator and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.mfactl(args).output().expect("mfactl runs")
    }

    /// `plan MANIFEST --out plan.json` in the scenario's folder, which must succeed; the saved
    /// plan's path.
    pub fn save_plan(&self, manifest: &Path) -> PathBuf {
        let plan = self.dir.path().join("plan.json");
        let out = self.run(&[
            "plan",
            manifest.to_str().unwrap(),
            "--out",
            plan.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        plan
    }

    /// `plan MANIFEST --format json --detailed-exitcode`: (exit code, plan document).
    pub fn plan_json(&self, manifest: &Path) -> (i32, Value) {
        let out = self.run(&[
            "plan",
            manifest.to_str().unwrap(),
            "--format",
            "json",
            "--detailed-exitcode",
        ]);
        let code = out.status.code().expect("exit code");
        let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "plan printed no JSON ({e}); exit {code}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, doc)
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            self.runtime.block_on(emulator.shutdown());
        }
    }
}

/// The variables of the developer's environment that could change what the binary does or
/// where it signs in: tests set the ones they need.
pub const INHERITED: &[&str] = &[
    "MFACTL_ACCESS_TOKEN",
    "MFACTL_GRAPH_URL",
    "MFACTL_CLOUD",
    "MFACTL_LOG",
    "MFACTL_AUTH",
    "MFACTL_TOKEN_CACHE",
    "MFACTL_EMULATOR_TOKEN",
    "RUST_LOG",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MFACTL_PLAN_KEY",
    "MFACTL_PLAN_KEY_FILE",
    "MFACTL_KEYRING",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// The key the tests' plans are sealed with (made by the first `plan --out` if need be).
pub fn plan_key() -> mfactl::plan::seal::PlanKey {
    mfactl::plan::seal::PlanKey::find(None, Some(&plan_key_file()), true)
        .expect("the tests' plan key")
        .expect("made")
}

/// The plan key file every test run shares (made by the first `plan --out`), never the
/// developer's own.
pub fn plan_key_file() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plan-key")
}

/// The binary, with nothing inherited that could change its behaviour.
pub fn mfactl() -> Command {
    let mut cmd = Command::cargo_bin("mfactl").expect("binary built");
    for name in INHERITED {
        cmd.env_remove(name);
    }
    cmd.env("MFACTL_PLAN_KEY_FILE", plan_key_file());
    // apply writes its journal and plan in the current folder by default: never the repo's.
    cmd.current_dir(scratch_cwd());
    cmd
}

/// A folder under target/ for commands run without a scenario of their own.
pub fn scratch_cwd() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cwd");
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// A file of the repository (a guide, the Dockerfile, .ci/run), as text.
pub fn repo_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name))
        .unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// Whether this run is CI's, where a missing tool (a browser, a shell, groff) must fail the
/// test that needs it rather than skip it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `name` on PATH; outside CI `None` with a note saying what was not checked (`.ci/run`
/// installs every tool a test needs, so in CI a missing one fails).
pub fn required_tool(name: &str, unchecked: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            !in_ci(),
            "{name} is not installed: CI must check that {unchecked} (.ci/run installs it)"
        );
        eprintln!("note: {name} is not installed; not checked: {unchecked}");
    }
    found
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What a generated manifest asks of one user, and what the plan must therefore say.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    pub to_change: u64,
    pub writes: u64,
    pub blocked: u64,
    pub in_sync: u64,
    /// user -> the fields the plan must list for them.
    pub fields: std::collections::BTreeMap<String, Vec<&'static str>>,
}

/// One manifest row.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub user: String,
    pub preferred_method: Option<PreferredMethod>,
    pub system_preferred: Option<bool>,
    pub per_user_mfa_state: Option<PerUserMfaState>,
}

/// Builds a manifest for `tenant` whose plan is known by construction: users cycle through
/// "in sync", "change per-user state", "change preferred method", "flip system-preferred",
/// "change two fields"; with `blocking`, some users ask for a method they have not registered.
pub fn manifest_for(tenant: &Tenant, blocking: bool) -> (Vec<Row>, Expected) {
    let mut rows = Vec::new();
    let mut expected = Expected::default();
    for (i, user) in tenant.users.iter().enumerate() {
        let key = if i % 2 == 0 {
            user.user_principal_name.clone()
        } else {
            user.id.clone()
        };
        let mut row = Row {
            user: key.clone(),
            ..Row::default()
        };
        let live_state = user.per_user_mfa_state;
        let live_pref = user
            .sign_in_preferences
            .user_preferred_method_for_secondary_authentication;
        let live_sys = user
            .sign_in_preferences
            .is_system_preferred_authentication_method_enabled;
        let usable = PreferredMethod::usable_with(&user.methods);
        let other_method = usable.iter().copied().find(|m| Some(*m) != live_pref);
        let mut fields = Vec::new();
        match i % 6 {
            // In sync: restate what is there (enabled stays enabled; never ask for a null).
            0 => {
                row.per_user_mfa_state = Some(live_state);
                row.system_preferred = Some(live_sys);
                row.preferred_method = live_pref;
            }
            1 => {
                let state = if live_state == PerUserMfaState::Disabled {
                    PerUserMfaState::Enforced
                } else {
                    PerUserMfaState::Disabled
                };
                row.per_user_mfa_state = Some(state);
                fields.push("perUserMfaState");
            }
            2 => {
                if let Some(method) = other_method {
                    row.preferred_method = Some(method);
                    fields.push("preferredMethod");
                } else {
                    row.preferred_method = live_pref;
                }
            }
            3 => {
                row.system_preferred = Some(!live_sys);
                fields.push("systemPreferred");
            }
            4 => {
                row.system_preferred = Some(!live_sys);
                fields.push("systemPreferred");
                if let Some(method) = other_method {
                    row.preferred_method = Some(method);
                    fields.push("preferredMethod");
                }
            }
            _ => {
                let has_authenticator = user.methods.contains(&MethodKind::MicrosoftAuthenticator);
                if blocking && !has_authenticator && live_pref != Some(PreferredMethod::Push) {
                    row.preferred_method = Some(PreferredMethod::Push);
                    expected.blocked += 1;
                    expected.fields.insert(key.clone(), vec!["preferredMethod"]);
                    rows.push(row);
                    continue;
                }
                row.per_user_mfa_state = Some(live_state);
            }
        }
        if fields.is_empty() {
            expected.in_sync += 1;
        } else {
            expected.to_change += 1;
            let sign_in = fields.iter().any(|f| *f != "perUserMfaState");
            let requirements = fields.contains(&"perUserMfaState");
            expected.writes += u64::from(sign_in) + u64::from(requirements);
            expected.fields.insert(key, fields);
        }
        rows.push(row);
    }
    (rows, expected)
}

/// A manifest that changes both endpoints of every user (flips per-user state between disabled
/// and enforced, and system-preferred): two reads and two writes each.
pub fn manifest_changing_everyone(tenant: &Tenant) -> Vec<Row> {
    tenant
        .users
        .iter()
        .map(|user| Row {
            user: user.id.clone(),
            preferred_method: None,
            system_preferred: Some(
                !user
                    .sign_in_preferences
                    .is_system_preferred_authentication_method_enabled,
            ),
            per_user_mfa_state: Some(if user.per_user_mfa_state == PerUserMfaState::Disabled {
                PerUserMfaState::Enforced
            } else {
                PerUserMfaState::Disabled
            }),
        })
        .collect()
}

pub fn to_yaml(rows: &[Row]) -> String {
    let mut out = String::from("version: 1\nusers:\n");
    for row in rows {
        out.push_str(&format!("  - user: \"{}\"\n", row.user));
        if let Some(m) = row.preferred_method {
            // Mixed case on purpose: values match case-insensitively.
            out.push_str(&format!(
                "    preferredMethod: {}\n",
                m.as_str().to_uppercase()
            ));
        }
        if let Some(b) = row.system_preferred {
            out.push_str(&format!("    systemPreferred: {b}\n"));
        }
        if let Some(s) = row.per_user_mfa_state {
            out.push_str(&format!("    perUserMfaState: {s}\n"));
        }
    }
    out
}

pub fn to_csv(rows: &[Row]) -> String {
    let mut out =
        String::from("userPrincipalName,PreferredMethod,systemPreferred,perUserMfaState\n");
    for row in rows {
        out.push_str(&format!(
            "{},{},{},{}\n",
            row.user,
            row.preferred_method.map(|m| m.as_str()).unwrap_or(""),
            row.system_preferred
                .map(|b| b.to_string())
                .unwrap_or_default(),
            row.per_user_mfa_state.map(|s| s.as_str()).unwrap_or(""),
        ));
    }
    out
}

/// Checks the tenant now holds every value the rows ask for (`enabled` met by `enforced` only
/// for a user with a registered MFA method, whom Graph promotes; the planner's rule).
pub fn assert_converged(tenant: &Tenant, rows: &[Row]) {
    for row in rows {
        let user: &TenantUser = tenant
            .users
            .iter()
            .find(|u| u.id == row.user || u.user_principal_name.eq_ignore_ascii_case(&row.user))
            .unwrap_or_else(|| panic!("{} is in the tenant", row.user));
        if let Some(m) = row.preferred_method {
            assert_eq!(
                user.sign_in_preferences
                    .user_preferred_method_for_secondary_authentication,
                Some(m),
                "{}",
                row.user
            );
        }
        if let Some(b) = row.system_preferred {
            assert_eq!(
                user.sign_in_preferences
                    .is_system_preferred_authentication_method_enabled,
                b,
                "{}",
                row.user
            );
        }
        if let Some(s) = row.per_user_mfa_state {
            assert!(
                s.is_met_by(user.per_user_mfa_state, user.has_mfa_method()),
                "{}: {:?}",
                row.user,
                user.per_user_mfa_state
            );
        }
    }
}

/// A plan document without what legitimately differs between two runs of the same plan: the
/// estimate's seconds (from measured latency) and the call counts (batching groups requests as
/// they happen to be ready). Everything a user would act on stays.
pub fn comparable(mut doc: Value) -> Value {
    // When and from which file: each run's own.
    if let Some(doc) = doc.as_object_mut() {
        doc.remove("created");
        doc.remove("manifest");
    }
    if let Some(summary) = doc.get_mut("summary").and_then(Value::as_object_mut) {
        summary.remove("calls");
        if let Some(estimate) = summary.get_mut("estimate").and_then(Value::as_object_mut) {
            estimate.remove("seconds");
        }
    }
    doc
}

/// Waits (a minute at most) until the journal at `path` satisfies `ready`.
#[cfg(unix)]
pub fn wait_for_journal(path: &Path, ready: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(path).is_ok_and(|text| ready(&text)) {
        assert!(std::time::Instant::now() < deadline, "apply never wrote");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Sends SIGINT (Ctrl-C) to `child` and waits for it to end.
#[cfg(unix)]
pub fn interrupt(child: std::process::Child) -> Output {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait_with_output().unwrap()
}

/// How one child run measured by [`peak_rss`] went.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct Measured {
    /// The child's peak resident set (`ru_maxrss` from `wait4`), in KiB.
    pub peak_kib: u64,
    /// Its exit code (-1 when a signal ended it, -9 when the launcher's guard killed it).
    pub exit: i32,
    pub stderr: String,
}

/// Runs the binary with `args` (in `cwd`, with `env` and nothing inherited) from a small
/// launcher process and returns its peak memory, as benches/graph.rs measures it: Linux folds the
/// RSS high-water mark of the memory image a process replaces at `exec` into its `ru_maxrss`,
/// so a child spawned straight from this test binary (emulators and all) would report this
/// process's peak. The launcher is this test binary again, running only
/// [`launch_for_peak_rss`]: a few MB, the measurement's floor. A guard in the launcher kills
/// the child after three minutes (a hang is a failure, not a figure).
#[cfg(target_os = "linux")]
pub fn peak_rss(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Measured {
    let stderr_path = cwd.join(format!("peak-{}.stderr", uuid::Uuid::new_v4().simple()));
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push((
        "MFACTL_PLAN_KEY_FILE".into(),
        plan_key_file().to_string_lossy().into_owned(),
    ));
    let spec = serde_json::json!({
        "program": assert_cmd::cargo::cargo_bin("mfactl"),
        "args": args,
        "env": env,
        "remove": INHERITED,
        "cwd": cwd,
        "stderr": stderr_path,
    });
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "support::launch_for_peak_rss",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(LAUNCH_ENV, spec.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the launcher runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.split_once("LAUNCHED ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("the launcher said: {text}\n{}", stderr(&out)));
    let fields: Vec<i64> = line
        .split_whitespace()
        .map(|f| f.parse().expect("launcher report"))
        .collect();
    Measured {
        peak_kib: fields[0] as u64,
        exit: fields[1] as i32,
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    }
}

/// Where [`peak_rss`] hands the launcher what to run.
#[cfg(target_os = "linux")]
const LAUNCH_ENV: &str = "MFACTL_TEST_LAUNCH";

/// The launcher [`peak_rss`] runs (this test binary, this test only): does nothing unless
/// `MFACTL_TEST_LAUNCH` says what to run.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "run by support::peak_rss as a launcher"]
fn launch_for_peak_rss() {
    let Ok(spec) = std::env::var(LAUNCH_ENV) else {
        return;
    };
    let spec: Value = serde_json::from_str(&spec).unwrap();
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    let mut command = std::process::Command::new(text(&spec["program"]));
    for name in spec["remove"].as_array().unwrap() {
        command.env_remove(text(name));
    }
    for pair in spec["env"].as_array().unwrap() {
        command.env(text(&pair[0]), text(&pair[1]));
    }
    command
        .args(spec["args"].as_array().unwrap().iter().map(text))
        .current_dir(text(&spec["cwd"]))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(text(&spec["stderr"])).unwrap());
    // Reaped by wait4 below, which `Child::wait` cannot replace: it gives no rusage.
    #[allow(clippy::zombie_processes)]
    let child = command.spawn().expect("the child starts");
    let pid = child.id() as libc::pid_t;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        // SAFETY: `pid` is our own unreaped child; both pointers are to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            break;
        }
        assert_eq!(reaped, 0, "wait4: {}", std::io::Error::last_os_error());
        if std::time::Instant::now() > deadline && !killed {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let exit = if killed {
        -9
    } else if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    println!("LAUNCHED {} {exit}", usage.ru_maxrss);
}

/// Fails unless `path` is a file readable and writable by its owner only (0600; on other
/// systems: a file).
#[cfg(unix)]
pub fn assert_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", path.display());
}

#[cfg(not(unix))]
pub fn assert_private(path: &Path) {
    assert!(path.is_file(), "{}", path.display());
}

/// The files `apply --tenants` leaves in each tenant's folder it applied.
pub const APPLIED_TENANT_FILES: [&str; 5] = [
    "plan.json",
    "journal.jsonl",
    "report.json",
    "report.md",
    "report.html",
];
