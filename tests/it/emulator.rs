//! `mfactl emulator generate|serve` and `--emulate` through the binary: big generated tenants
//! load everywhere, absurd sizes are refused, and the serving line tells the truth about the
//! address. Traffic goes to 127.0.0.1 only, even when the emulator binds every interface.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mfactl::model::PerUserMfaState;
use mfactl_emulator::Tenant;

use crate::support::{mfactl, stderr, stdout};

/// More users than serde-saphyr's default parser budget (250,000 nodes, ~10,700 users) allowed.
const BIG: usize = 12_000;

/// `mfactl emulator generate --users N` written to `dir/tenant-N.yaml`.
fn generated_file(dir: &Path, users: usize) -> PathBuf {
    let out = mfactl()
        .args(["emulator", "generate", "--users", &users.to_string()])
        .output()
        .expect("mfactl runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.join(format!("tenant-{users}.yaml"));
    std::fs::write(&path, &out.stdout).expect("write tenant file");
    path
}

/// A manifest flipping the per-user MFA state of the tenant's first, middle and last users
/// (the last one well past where the old parser budget stopped): three changes by construction.
fn manifest_flipping_three(tenant: &Tenant, dir: &Path) -> PathBuf {
    let mut text = String::from("version: 1\nusers:\n");
    for index in [0, tenant.users.len() / 2, tenant.users.len() - 1] {
        let user = &tenant.users[index];
        let state = match user.per_user_mfa_state {
            PerUserMfaState::Disabled => "enforced",
            _ => "disabled",
        };
        text.push_str(&format!(
            "  - user: \"{}\"\n    perUserMfaState: {state}\n",
            user.user_principal_name
        ));
    }
    let path = dir.join("desired.yaml");
    std::fs::write(&path, text).expect("write manifest");
    path
}

fn assert_three_changes(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    let summary = &doc["summary"];
    assert_eq!(
        (
            &summary["users"],
            &summary["to_change"],
            &summary["writes"],
            &summary["not_found"]
        ),
        (&3.into(), &3.into(), &3.into(), &0.into()),
        "{summary}"
    );
}

#[test]
fn plan_with_emulate_loads_a_generated_tenant_of_12000_users() {
    let dir = tempfile::tempdir().unwrap();
    let tenant_file = generated_file(dir.path(), BIG);
    // The binary writes exactly the library's tenant, so the test knows every user's state.
    let tenant = Tenant::generate(BIG, 1);
    assert_eq!(
        std::fs::read_to_string(&tenant_file).unwrap(),
        tenant.to_yaml()
    );
    let manifest = manifest_flipping_three(&tenant, dir.path());

    let out = mfactl()
        .arg("plan")
        .arg(&manifest)
        .arg("--emulate")
        .arg(&tenant_file)
        .args(["--format", "json", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_three_changes(&out);
}

/// A running `mfactl emulator serve`, killed when dropped (also when a test fails).
struct Served {
    child: Child,
    line: String,
}

impl Served {
    fn start(tenant: &Path, listen: &str) -> Served {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("mfactl"))
            .args(["emulator", "serve", "--tenant"])
            .arg(tenant)
            .args(["--listen", listen])
            .env_remove("MFACTL_LOG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mfactl starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        // The tenant is loaded before the line is printed; EOF means it exited instead.
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read serving line");
        let mut served = Served { child, line };
        if served.line.is_empty() {
            let mut err = String::new();
            let _ = served.child.wait();
            if let Some(mut stderr) = served.child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            panic!("emulator serve printed nothing; stderr: {err}");
        }
        served.line = served.line.trim_end().to_owned();
        served
    }

    /// The URL a client on this machine uses: the line's last `http://` URL.
    fn local_url(&self) -> String {
        self.line
            .split_whitespace()
            .rfind(|word| word.starts_with("http://"))
            .expect("a URL on the serving line")
            .trim_end_matches([';', ')'])
            .to_owned()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET to a loopback URL; returns (status line, body).
fn get(url: &str, path: &str) -> (String, String) {
    let host = url.strip_prefix("http://").expect("http URL");
    assert!(host.starts_with("127.0.0.1:"), "only loopback: {host}");
    let mut stream = TcpStream::connect(host).expect("connect to the emulator");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[test]
fn serve_loads_a_generated_tenant_of_12000_users_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let tenant_file = generated_file(dir.path(), BIG);
    let served = Served::start(&tenant_file, "127.0.0.1:0");
    let url = served.local_url();
    assert_eq!(
        served.line,
        format!("mfactl emulator serving {BIG} users on {url} (Ctrl-C to stop)")
    );

    let tenant = Tenant::generate(BIG, 1);
    let manifest = manifest_flipping_three(&tenant, dir.path());
    let out = mfactl()
        .arg("plan")
        .arg(&manifest)
        .args([
            "--graph-url",
            &url,
            "--format",
            "json",
            "--detailed-exitcode",
        ])
        .env("MFACTL_ACCESS_TOKEN", "test-token-not-a-secret")
        .output()
        .unwrap();
    assert_three_changes(&out);

    let (status, body) = get(&url, "/_emulator/stats");
    assert!(status.contains(" 200 "), "{status}");
    let stats: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
    // The manifest manages only perUserMfaState: per user one `requirements` read and one read
    // resolving the UPN to its object id, plus one `/organization` read for the tenant, and,
    // since it disables per-user MFA, security defaults and the Conditional Access policies.
    assert_eq!(stats["reads"], 3 * 2 + 1 + 2, "{stats}");
}

#[test]
fn serve_on_all_interfaces_prints_the_bound_address_and_the_local_url() {
    let dir = tempfile::tempdir().unwrap();
    let tenant_file = generated_file(dir.path(), 40);
    let served = Served::start(&tenant_file, "0.0.0.0:0");
    let local = served.local_url();
    let port = local
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("loopback URL for local clients: {}", served.line));
    assert_eq!(
        served.line,
        format!(
            "mfactl emulator serving 40 users on http://0.0.0.0:{port} \
             (all interfaces; from this machine: http://127.0.0.1:{port}; Ctrl-C to stop)"
        )
    );
    let (status, body) = get(&local, "/_emulator/tenant");
    assert!(status.contains(" 200 "), "{status}");
    let tenant: Tenant = serde_json::from_str(&body).expect("tenant JSON");
    assert_eq!(tenant.users.len(), 40);
}

/// Issue 18: under `auth:` the emulator's own endpoints show the tenant's users and what it
/// saw only to a caller with a token it issued.
#[test]
fn under_auth_the_admin_endpoints_answer_401_without_a_token() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tenant-signin.yaml");
    let served = Served::start(&example, "127.0.0.1:0");
    let url = served.local_url();
    for path in ["/_emulator/stats", "/_emulator/tenant"] {
        let (status, body) = get(&url, path);
        assert!(status.contains(" 401 "), "{path}: {status} {body}");
        assert!(
            body.contains("InvalidAuthenticationToken"),
            "{path}: {body}"
        );
        assert!(!body.contains("userPrincipalName"), "{path}: {body}");
    }
}

#[test]
fn generate_refuses_an_absurd_user_count_without_panicking() {
    for users in [
        "18446744073709551615",
        "99999999999999999999999",
        "10000001",
    ] {
        let out = mfactl()
            .args(["emulator", "generate", "--users", users])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{users}: {err}");
        assert!(
            err.contains("more than 10,000,000 users") && err.contains("help: ask for at most"),
            "{users}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(stdout(&out).is_empty());
    }
}

#[test]
fn serve_help_says_state_is_in_memory_only() {
    let out = mfactl()
        .args(["emulator", "serve", "--help"])
        .output()
        .unwrap();
    let help = stdout(&out);
    assert!(
        help.contains("in memory only") && help.contains("GET /_emulator/tenant"),
        "{help}"
    );
}
