//! Sign-in (issue 7) through the real binary: every credential source against the emulator's
//! sign-in server, a cached device-code login, tokens renewed ahead of expiry and after a 401,
//! least privilege checked before the first write, plain-http endpoints refused before any
//! connection, and no secret or token in any output, even at trace level.
//!
//! Credentials (RSA keys, certificates, PKCS#12 files) are made when the tests run; the secrets
//! below are the emulator's only. Every command starts from an environment with no credential
//! (`support::INHERITED` is cleared) and gets exactly the variables its source needs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
#[cfg(unix)]
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use mfactl_emulator::token::federated_assertion;
use mfactl_emulator::{EmulatorConfig, Tenant};
use serde_json::{Value, json};

use crate::fault_proxy::{Action, FaultProxy, RequestHead};
use crate::support::{
    Row, Scenario, assert_converged, manifest_changing_everyone, mfactl, stderr, stdout, to_yaml,
};

const SECRET_APP: &str = "2b1a8e61-0000-4000-8000-00000000000a";
const SECRET: &str = "emulator-only-client-secret-Qx7vR2wK";
const CERTIFICATE_APP: &str = "2b1a8e61-0000-4000-8000-00000000000b";
const FEDERATED_APP: &str = "2b1a8e61-0000-4000-8000-00000000000c";
const FEDERATED_SUBJECT: &str = "repo:contoso/mfa:ref:refs/heads/main";
const FEDERATED_ISSUER: &str = "https://token.actions.githubusercontent.com";
const MANAGED_APP: &str = "2b1a8e61-0000-4000-8000-00000000000d";
const IDENTITY_HEADER: &str = "emulator-only-identity-header-5d1f";
/// May read and write sign-in preferences, but only read per-user MFA states.
const LIMITED_APP: &str = "2b1a8e61-0000-4000-8000-00000000000e";
const LIMITED_SECRET: &str = "emulator-only-limited-secret-8c2e";
const PFX_PASSWORD: &str = "emulator-only-pfx-password";
const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const ALL_ROLES: &str = "[UserAuthenticationMethod.ReadWrite.All, \
     Policy.ReadWrite.AuthenticationMethod, Policy.Read.All, User.Read.All, Organization.Read.All]";

/// An RSA key and its self-signed certificate, made once per test run.
struct Credentials {
    certificate_pem: String,
    certificate_der: Vec<u8>,
    key_pem: String,
    key_der: Vec<u8>,
}

fn credentials() -> &'static Credentials {
    static CREDENTIALS: OnceLock<Credentials> = OnceLock::new();
    CREDENTIALS.get_or_init(|| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        let certificate = rcgen::CertificateParams::new(vec!["mfactl-signin-test".to_owned()])
            .expect("certificate parameters")
            .self_signed(&key)
            .expect("self-signed certificate");
        Credentials {
            certificate_pem: certificate.pem(),
            certificate_der: certificate.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    })
}

/// A generated tenant whose file has an `auth:` section: one app per credential kind (all
/// holding every permission a run needs), the limited app, and an admin for the device code
/// flow (approved on the third poll, polled every second).
fn tenant_signing_in(users: usize, seed: u64, token_lifetime_seconds: u64) -> Tenant {
    let mut text = Tenant::generate(users, seed).to_yaml();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let certificate: String = credentials()
        .certificate_pem
        .lines()
        .map(|line| format!("        {line}\n"))
        .collect();
    text.push_str(&format!(
        "auth:
  tokenLifetimeSeconds: {token_lifetime_seconds}
  deviceCodeApprovalPolls: 3
  deviceCodeIntervalSeconds: 1
  identityHeader: {IDENTITY_HEADER}
  apps:
    - clientId: {SECRET_APP}
      secret: {SECRET}
      roles: {ALL_ROLES}
    - clientId: {CERTIFICATE_APP}
      certificate: |
{certificate}      roles: {ALL_ROLES}
    - clientId: {FEDERATED_APP}
      federatedSubject: \"{FEDERATED_SUBJECT}\"
      federatedIssuer: {FEDERATED_ISSUER}
      roles: {ALL_ROLES}
    - clientId: {MANAGED_APP}
      managedIdentity: true
      roles: {ALL_ROLES}
    - clientId: {LIMITED_APP}
      secret: {LIMITED_SECRET}
      roles: [UserAuthenticationMethod.ReadWrite.All, Policy.Read.All]
  admins:
    - userPrincipalName: {ADMIN}
      scopes: [UserAuthenticationMethod.ReadWrite.All, Policy.ReadWrite.AuthenticationMethod, Policy.Read.All, User.Read.All]
"
    ));
    Tenant::from_yaml_str(&text).expect("the tenant file with an auth section loads")
}

/// A small tenant that signs in, and a manifest (by object id) changing both endpoints of every
/// user: a plan of it reads both and exits 2 with `--detailed-exitcode`.
fn small_scenario() -> (Scenario, PathBuf, Vec<Row>) {
    let scenario = Scenario::new(tenant_signing_in(6, 71, 3599));
    let rows = manifest_changing_everyone(&scenario.tenant());
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    (scenario, yaml, rows)
}

/// `mfactl ARGS --graph-url GRAPH` with no credential at all: the test adds the one it means.
fn mfactl_at(graph: &str, args: &[&str]) -> Command {
    let mut cmd = mfactl();
    cmd.args(args)
        .args(["--graph-url", graph])
        // A backstop: no test may wait forever.
        .timeout(Duration::from_secs(90));
    cmd
}

/// The Azure SDK variables of an app signing in at `authority`, the secret aside.
fn as_app(cmd: &mut Command, scenario: &Scenario, client_id: &str, authority: &str) {
    cmd.env("AZURE_TENANT_ID", tenant_id(scenario))
        .env("AZURE_CLIENT_ID", client_id)
        .env("AZURE_AUTHORITY_HOST", authority);
}

fn tenant_id(scenario: &Scenario) -> String {
    scenario.tenant().tenant_id
}

/// `plan MANIFEST --detailed-exitcode`.
fn plan_args(yaml: &Path) -> Vec<&str> {
    vec!["plan", yaml.to_str().unwrap(), "--detailed-exitcode"]
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn execute(cmd: &mut Command) -> Run {
    let output = cmd.output().expect("mfactl runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        out: stdout(&output),
        err: stderr(&output),
    }
}

/// The plan ran to the end (changes found), signed in with `source`, and Graph never refused
/// the token or a call.
fn assert_planned_with(scenario: &Scenario, run: &Run, source: &str) {
    assert_planned_refused(scenario, run, source, 0);
}

/// The same, with `forbidden` calls refused 403 (an identity that may not read `/organization`:
/// the plan names the tenant from the token's `tid` instead).
fn assert_planned_refused(scenario: &Scenario, run: &Run, source: &str, forbidden: u64) {
    assert_eq!(run.code, 2, "stdout:\n{}\nstderr:\n{}", run.out, run.err);
    assert!(
        run.err.contains(&format!("Signed in with {source}")),
        "stderr names the source: {}",
        run.err
    );
    let stats = scenario.stats();
    assert!(stats.tokens_issued >= 1, "{stats:?}");
    assert!(stats.reads > 0, "{stats:?}");
    assert_eq!(stats.unauthorized, 0, "{stats:?}");
    assert_eq!(stats.forbidden, forbidden, "{stats:?}");
    assert_eq!(stats.writes, 0, "a plan writes nothing: {stats:?}");
}

/// The first JWT-looking run (`eyJ` and more than 20 base64url characters) in `text`.
fn jwt_like(text: &str) -> Option<&str> {
    text.match_indices("eyJ").find_map(|(at, _)| {
        let rest = &text[at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(rest.len());
        (len > 20).then(|| &rest[..len])
    })
}

fn assert_no_token(what: &str, text: &str) {
    if let Some(token) = jwt_like(text) {
        panic!("{what} holds something token-like ({token}):\n{text}");
    }
}

/// An app token from the emulator's token endpoint, by client credentials (what `az` would hold).
#[cfg(unix)]
fn app_token(scenario: &Scenario) -> (String, u64) {
    let url = scenario.emulator().token_url();
    let scope = format!("{}/.default", scenario.url());
    let answer: Value = scenario.block_on(async {
        reqwest::Client::new()
            .post(url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", SECRET_APP),
                ("client_secret", SECRET),
                ("scope", scope.as_str()),
            ])
            .send()
            .await
            .expect("the token endpoint answers")
            .error_for_status()
            .expect("a token is issued")
            .json()
            .await
            .expect("JSON")
    });
    (
        answer["access_token"].as_str().expect("a token").to_owned(),
        answer["expires_in"].as_u64().expect("expires_in"),
    )
}

fn write_file(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

// ---------------------------------------------------------------------------------------------
// 1. Every source signs in and plans.

#[test]
fn a_client_secret_signs_in_and_plans() {
    let (scenario, yaml, _) = small_scenario();
    let mut cmd = mfactl_at(&scenario.url(), &plan_args(&yaml));
    as_app(&mut cmd, &scenario, SECRET_APP, &scenario.url());
    cmd.env("AZURE_CLIENT_SECRET", SECRET);
    let run = execute(&mut cmd);
    assert_planned_with(&scenario, &run, "secret (client 2b1a…");
    assert!(run.err.contains(&tenant_id(&scenario)), "{}", run.err);
    assert_eq!(scenario.stats().tokens_issued, 1);
}

#[test]
fn a_pem_certificate_with_its_key_signs_in_and_plans() {
    let (scenario, yaml, _) = small_scenario();
    let c = credentials();
    let pem = format!("{}{}", c.certificate_pem, c.key_pem);
    let path = write_file(scenario.dir.path(), "app.pem", pem.as_bytes());
    let mut cmd = mfactl_at(&scenario.url(), &plan_args(&yaml));
    cmd.args(["--certificate", path.to_str().unwrap()]);
    as_app(&mut cmd, &scenario, CERTIFICATE_APP, &scenario.url());
    let run = execute(&mut cmd);
    assert_planned_with(&scenario, &run, "certificate (client 2b1a…");
    assert!(run.err.contains("thumbprint"), "{}", run.err);
}

#[test]
fn a_pkcs12_certificate_with_a_password_signs_in_and_plans() {
    use p12_keystore::{
        Certificate, KeyStore, KeyStoreEntry, LocalKeyId, PrivateKey, PrivateKeyChain,
    };
    let (scenario, yaml, _) = small_scenario();
    let c = credentials();
    let chain = PrivateKeyChain::new(
        LocalKeyId(vec![7, 7, 7, 7]),
        PrivateKey::from_der(&c.key_der).expect("PKCS#8 key"),
        [Certificate::from_der(&c.certificate_der).expect("certificate")],
    );
    let mut store = KeyStore::new();
    store.add_entry("mfactl", KeyStoreEntry::PrivateKeyChain(chain));
    let pfx = store.writer(PFX_PASSWORD).write().expect("PKCS#12");
    let path = write_file(scenario.dir.path(), "app.pfx", &pfx);
    let mut cmd = mfactl_at(&scenario.url(), &plan_args(&yaml));
    as_app(&mut cmd, &scenario, CERTIFICATE_APP, &scenario.url());
    cmd.env("AZURE_CLIENT_CERTIFICATE_PATH", &path)
        .env("AZURE_CLIENT_CERTIFICATE_PASSWORD", PFX_PASSWORD);
    let run = execute(&mut cmd);
    assert_planned_with(&scenario, &run, "certificate (client 2b1a…");
    assert!(!run.err.contains(PFX_PASSWORD), "{}", run.err);
}

#[test]
fn workload_identity_federation_signs_in_with_the_federated_token_file() {
    let (scenario, yaml, _) = small_scenario();
    let assertion = federated_assertion(
        FEDERATED_SUBJECT,
        FEDERATED_ISSUER,
        Duration::from_secs(600),
    );
    let path = write_file(scenario.dir.path(), "federated-token", assertion.as_bytes());
    let mut cmd = mfactl_at(&scenario.url(), &plan_args(&yaml));
    as_app(&mut cmd, &scenario, FEDERATED_APP, &scenario.url());
    cmd.env("AZURE_FEDERATED_TOKEN_FILE", &path);
    let run = execute(&mut cmd);
    assert_planned_with(&scenario, &run, "workload (client 2b1a…");
    assert!(!run.err.contains(&assertion), "{}", run.err);
}

#[test]
fn an_app_service_managed_identity_signs_in_and_plans() {
    let (scenario, yaml, _) = small_scenario();
    let mut cmd = mfactl_at(&scenario.url(), &plan_args(&yaml));
    cmd.env("IDENTITY_ENDPOINT", scenario.emulator().identity_endpoint())
        .env("IDENTITY_HEADER", IDENTITY_HEADER);
    let run = execute(&mut cmd);
    assert_planned_with(
        &scenario,
        &run,
        "managed (system-assigned identity, App Service endpoint http://127.0.0.1",
    );
    assert!(!run.err.contains(IDENTITY_HEADER), "{}", run.err);

    // The emulator checks the header: a wrong one is refused, so the right one was sent.
    let before = scenario.stats();
    let mut cmd = mfactl_at(&scenario.url(), &plan_args(&yaml));
    cmd.env("IDENTITY_ENDPOINT", scenario.emulator().identity_endpoint())
        .env("IDENTITY_HEADER", "not-the-header");
    let refused = execute(&mut cmd);
    assert_eq!(refused.code, 1, "{}", refused.err);
    assert!(refused.err.contains("sign-in failed"), "{}", refused.err);
    assert_eq!(
        scenario.stats().requests,
        before.requests,
        "no Graph request"
    );
}

#[test]
fn imds_signs_in_when_managed_is_named() {
    let (scenario, yaml, _) = small_scenario();
    let mut cmd = mfactl_at(&scenario.url(), &plan_args(&yaml));
    cmd.args(["--auth", "managed"])
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", scenario.url());
    let run = execute(&mut cmd);
    assert_planned_with(
        &scenario,
        &run,
        &format!(
            "managed (system-assigned identity, IMDS {})",
            scenario.emulator().imds_endpoint()
        ),
    );
}

#[cfg(unix)]
#[test]
fn the_azure_cli_signs_in_through_az_on_path() {
    use std::os::unix::fs::PermissionsExt as _;

    let (scenario, yaml, _) = small_scenario();
    let (token, expires_in) = app_token(&scenario);
    let expires_on = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + expires_in;
    let answer = json!({
        "accessToken": token,
        "expiresOn": "2099-01-01 00:00:00.000000",
        "expires_on": expires_on,
        "subscription": "00000000-0000-0000-0000-000000000000",
        "tenant": tenant_id(&scenario),
        "tokenType": "Bearer",
    });
    let bin = scenario.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let calls = scenario.dir.path().join("az-calls");
    // Shell built-ins only: PATH holds nothing but this directory.
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\nprintf '%s\\n' '{answer}'\n",
        calls.display()
    );
    let az = write_file(&bin, "az", script.as_bytes());
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut cmd = mfactl_at(&scenario.url(), &plan_args(&yaml));
    cmd.env("PATH", &bin);
    let run = execute(&mut cmd);
    assert_planned_with(&scenario, &run, "cli (az at ");
    assert!(!run.err.contains(&token), "{}", run.err);
    let args: Vec<String> = std::fs::read_to_string(&calls)
        .expect("az was run")
        .lines()
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = [
        "account",
        "get-access-token",
        "--output",
        "json",
        "--resource",
        &scenario.url(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(args, expected, "az was asked once, for the Graph root");
    assert_eq!(
        scenario.stats().tokens_issued,
        1,
        "only the test's token: mfactl asked az, not Entra"
    );
}

#[test]
fn an_auth_section_in_an_emulated_tenant_makes_the_in_process_emulator_the_authority() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = tenant_signing_in(4, 72, 3599);
    let rows = manifest_changing_everyone(&tenant);
    let tenant_file = write_file(dir.path(), "tenant.yaml", tenant.to_yaml().as_bytes());
    let yaml = write_file(dir.path(), "desired.yaml", to_yaml(&rows).as_bytes());
    let mut cmd = mfactl();
    cmd.args(["plan", yaml.to_str().unwrap(), "--detailed-exitcode"])
        .args(["--emulate", tenant_file.to_str().unwrap()])
        .env("AZURE_TENANT_ID", &tenant.tenant_id)
        .env("AZURE_CLIENT_ID", SECRET_APP)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .timeout(Duration::from_secs(60));
    let run = execute(&mut cmd);
    assert_eq!(run.code, 2, "{}\n{}", run.out, run.err);
    assert!(
        run.err
            .contains("Signed in with secret (client 2b1a…, tenant ")
            && run.err.contains("authority http://127.0.0.1:"),
        "{}",
        run.err
    );

    // A wrong secret is refused by that authority: the emulator really checks.
    let mut cmd = mfactl();
    cmd.args(["plan", yaml.to_str().unwrap()])
        .args(["--emulate", tenant_file.to_str().unwrap()])
        .env("AZURE_TENANT_ID", &tenant.tenant_id)
        .env("AZURE_CLIENT_ID", SECRET_APP)
        .env("AZURE_CLIENT_SECRET", "wrong")
        .timeout(Duration::from_secs(60));
    let refused = execute(&mut cmd);
    assert_eq!(refused.code, 1, "{}", refused.err);
    assert!(refused.err.contains("AADSTS"), "{}", refused.err);
}

// ---------------------------------------------------------------------------------------------
// 1 and 2. Device code: `mfactl login` once, then runs without a prompt until revoked.

#[test]
fn a_device_code_login_is_cached_used_without_a_prompt_and_refused_once_revoked() {
    let (scenario, yaml, _) = small_scenario();
    // Through the proxy, to count the polls.
    let proxy = FaultProxy::in_front_of(&scenario.url());
    let polls = Arc::new(AtomicU64::new(0));
    let counter = polls.clone();
    proxy.set_rule(move |head: &RequestHead, _| {
        if head.path.ends_with("/oauth2/v2.0/token") && head.body_contains("device_code=") {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Action::Forward
    });
    let cache = scenario.dir.path().join("cache").join("token-cache.json");
    let cache_arg = cache.to_str().unwrap();
    // No `az` to find: the automatic choice reaches the cached sign-in.
    let empty_path = scenario.dir.path().join("empty-bin");
    std::fs::create_dir(&empty_path).unwrap();
    let with_env = |cmd: &mut Command| {
        cmd.env("AZURE_AUTHORITY_HOST", proxy.url())
            .env("PATH", &empty_path)
            .env("MFACTL_LOG", "trace");
    };

    let mut login = mfactl_at(&proxy.url(), &["login", "--token-cache", cache_arg]);
    with_env(&mut login);
    let login = execute(&mut login);
    assert_eq!(login.code, 0, "{}", login.err);
    assert!(
        login.err.contains(
            "To sign in, use a web browser to open the page https://microsoft.com/devicelogin"
        ),
        "the device-code message is shown: {}",
        login.err
    );
    assert!(
        login.err.contains(&format!("Signed in as {ADMIN}")),
        "{}",
        login.err
    );
    assert_eq!(
        polls.load(Ordering::Relaxed),
        3,
        "approved on the third poll"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the cache is readable by its owner only"
        );
    }
    // In the OS keyring where there is one (the file then says so and holds no token), else
    // in the file.
    let keyring_entry = |cache: &Path| {
        keyring::Entry::new("mfactl device sign-in", &cache.to_string_lossy()).unwrap()
    };
    let refresh_token = |cache: &Path| -> String {
        let doc: Value = serde_json::from_slice(&std::fs::read(cache).unwrap()).unwrap();
        if doc["refresh_token_in"] == "keyring" {
            assert!(doc.get("refresh_token").is_none(), "{doc}");
            return keyring_entry(cache).get_password().expect("in the keyring");
        }
        doc["refresh_token"].as_str().expect("cached").to_owned()
    };
    let first_refresh = refresh_token(&cache);
    assert!(!login.err.contains(&first_refresh), "{}", login.err);
    assert_no_token("login's trace", &login.err);

    // The next run renews from the cache: no prompt, no poll.
    let mut plan = mfactl_at(
        &proxy.url(),
        &[
            "plan",
            yaml.to_str().unwrap(),
            "--detailed-exitcode",
            "--token-cache",
            cache_arg,
        ],
    );
    with_env(&mut plan);
    let plan = execute(&mut plan);
    // `mfactl login` asks for no Organization.Read.All: /organization is refused, and the plan
    // names the tenant from the token.
    assert_planned_refused(
        &scenario,
        &plan,
        &format!("device (user {ADMIN}, tenant "),
        1,
    );
    assert!(plan.out.contains(&tenant_id(&scenario)), "{}", plan.out);
    assert!(
        !plan.err.contains("devicelogin") && !plan.err.contains("enter the code"),
        "no prompt: {}",
        plan.err
    );
    assert_eq!(polls.load(Ordering::Relaxed), 3, "no new device code poll");
    let rotated = refresh_token(&cache);
    assert_ne!(
        rotated, first_refresh,
        "the rotated refresh token was cached"
    );
    for secret in [&first_refresh, &rotated] {
        assert!(!plan.err.contains(secret.as_str()), "{}", plan.err);
    }
    assert_no_token("plan's trace", &plan.err);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "still private after the refresh token rotated"
        );
    }

    // Revoked sessions: the run stops before Graph, telling to log in again.
    scenario.emulator().revoke_refresh_tokens();
    let before = scenario.stats();
    let mut plan = mfactl_at(
        &proxy.url(),
        &[
            "plan",
            yaml.to_str().unwrap(),
            "--auth",
            "device",
            "--token-cache",
            cache_arg,
        ],
    );
    with_env(&mut plan);
    let revoked = execute(&mut plan);
    assert_eq!(revoked.code, 1, "{}", revoked.err);
    assert!(
        revoked.err.contains("run `mfactl login` again"),
        "{}",
        revoked.err
    );
    assert_eq!(
        scenario.stats().requests,
        before.requests,
        "nothing sent to Graph"
    );

    // Logout removes the cache.
    let logout = execute(mfactl().args(["logout", "--token-cache", cache_arg]));
    assert_eq!(logout.code, 0, "{}", logout.err);
    assert!(logout.err.contains("Signed out"), "{}", logout.err);
    assert!(!cache.exists(), "the cache is gone");
    assert!(
        keyring_entry(&cache).get_password().is_err(),
        "and so is its keyring entry"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Tokens living 2 s are renewed through a throttled apply of several hundred users.

#[test]
fn short_lived_tokens_are_renewed_through_a_long_throttled_apply() {
    let tenant = tenant_signing_in(300, 73, 2);
    // One write per user: flip system-preferred.
    let rows: Vec<Row> = tenant
        .users
        .iter()
        .map(|user| Row {
            user: user.id.clone(),
            system_preferred: Some(
                !user
                    .sign_in_preferences
                    .is_system_preferred_authentication_method_enabled,
            ),
            ..Row::default()
        })
        .collect();
    // 300 reads, 300 re-reads and 300 writes at 600 resource units per 10 s: a burst of 600,
    // then 60 a second, so the apply outlives several tokens.
    let config = EmulatorConfig {
        ru_per_10s: Some(600),
        ..EmulatorConfig::default()
    };
    let scenario = Scenario::with_config(tenant, config);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let mut cmd = mfactl_at(
        &scenario.url(),
        &[
            "apply",
            yaml.to_str().unwrap(),
            "--auto-approve",
            "--format",
            "json",
            "--ru-quota",
            "600",
        ],
    );
    as_app(&mut cmd, &scenario, SECRET_APP, &scenario.url());
    cmd.env("AZURE_CLIENT_SECRET", SECRET);
    let run = execute(&mut cmd);
    assert_eq!(run.code, 0, "{}", run.err);
    assert!(run.err.contains("Signed in with secret"), "{}", run.err);
    let report: Value = serde_json::from_str(&run.out).expect("JSON report");
    assert_eq!(report["summary"]["failed"], 0, "{}", report["summary"]);
    assert_eq!(report["summary"]["applied"], 300, "{}", report["summary"]);
    assert_converged(&scenario.tenant(), &rows);
    let stats = scenario.stats();
    assert!(
        stats.tokens_issued > 1,
        "the token was renewed during the run: {stats:?}\n{}",
        run.err
    );
    assert_eq!(stats.writes, 300, "{stats:?}");
    eprintln!("{}\n{stats:?}", run.err);
}

// ---------------------------------------------------------------------------------------------
// 4. A 401 mid-run renews the token once, and the run goes on.

#[test]
fn a_401_mid_run_renews_the_token_once_and_the_apply_converges() {
    let tenant = tenant_signing_in(40, 74, 3599);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let proxy = FaultProxy::in_front_of(&scenario.url());
    // Every Graph request's Authorization header, in order; the third is refused.
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let token_requests = Arc::new(AtomicU64::new(0));
    let (seen, tokens) = (sent.clone(), token_requests.clone());
    proxy.set_rule(move |head: &RequestHead, _| {
        if head.path.ends_with("/oauth2/v2.0/token") {
            tokens.fetch_add(1, Ordering::Relaxed);
            return Action::Forward;
        }
        let mut seen = seen.lock().unwrap();
        seen.push(head.header("authorization").unwrap_or_default().to_owned());
        if seen.len() == 3 {
            return Action::Respond {
                status: 401,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: json!({"error": {"code": "InvalidAuthenticationToken",
                                       "message": "Access token has expired or is not yet valid."}})
                .to_string()
                .into_bytes(),
            };
        }
        Action::Forward
    });
    // Graph and the authority both through the proxy: the token's audience is the root the
    // requests reach.
    let mut cmd = mfactl_at(
        &proxy.url(),
        &["apply", yaml.to_str().unwrap(), "--auto-approve"],
    );
    as_app(&mut cmd, &scenario, SECRET_APP, &proxy.url());
    cmd.env("AZURE_CLIENT_SECRET", SECRET);
    let run = execute(&mut cmd);
    assert_eq!(run.code, 0, "{}\n{}", run.out, run.err);
    assert_converged(&scenario.tenant(), &rows);
    assert!(
        run.err.contains("again with a renewed token after a 401"),
        "the traffic line says so: {}",
        run.err
    );
    assert_eq!(scenario.stats().tokens_issued, 2, "renewed once");
    assert_eq!(token_requests.load(Ordering::Relaxed), 2);
    let sent = sent.lock().unwrap();
    let refused = &sent[2];
    let last = sent.last().unwrap();
    assert_ne!(refused, last, "the run went on with another token");
    let distinct: std::collections::BTreeSet<&String> = sent.iter().collect();
    assert_eq!(distinct.len(), 2, "two tokens in all");
    assert!(
        sent.iter().all(|h| h.starts_with("Bearer ")),
        "every request carried a token"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Least privilege: missing write permission found before any write.

#[test]
fn an_app_that_may_not_write_mfa_states_is_stopped_before_any_write_and_may_still_plan() {
    let (scenario, yaml, _) = small_scenario();
    let limited = |args: &[&str]| {
        let mut cmd = mfactl_at(&scenario.url(), args);
        as_app(&mut cmd, &scenario, LIMITED_APP, &scenario.url());
        cmd.env("AZURE_CLIENT_SECRET", LIMITED_SECRET);
        cmd
    };
    let apply = execute(&mut limited(&[
        "apply",
        yaml.to_str().unwrap(),
        "--auto-approve",
    ]));
    assert_eq!(apply.code, 1, "{}\n{}", apply.out, apply.err);
    assert!(
        apply
            .err
            .contains("the token lacks Policy.ReadWrite.AuthenticationMethod"),
        "the preflight names the permission: {}",
        apply.err
    );
    assert!(
        !apply
            .err
            .contains("UserAuthenticationMethod.ReadWrite.All with admin consent"),
        "only the missing permission is asked for: {}",
        apply.err
    );
    assert!(apply.err.contains("nothing was sent"), "{}", apply.err);
    let stats = scenario.stats();
    assert_eq!(stats.writes, 0, "no write reached Graph: {stats:?}");
    // The one 403 is /organization (the app may not read it; the tenant comes from the token):
    // no write was even tried.
    assert_eq!(stats.forbidden, 1, "{stats:?}");

    let plan = execute(&mut limited(&plan_args(&yaml)));
    assert_eq!(plan.code, 2, "{}\n{}", plan.out, plan.err);
    assert!(plan.err.contains("Signed in with secret"), "{}", plan.err);
    assert_eq!(scenario.stats().writes, 0);
}

#[test]
fn auth_check_shows_the_token_and_the_missing_permission_but_never_the_token() {
    let (scenario, yaml, _) = small_scenario();
    let mut cmd = mfactl_at(
        &scenario.url(),
        &["auth", "check", "--for", yaml.to_str().unwrap()],
    );
    as_app(&mut cmd, &scenario, LIMITED_APP, &scenario.url());
    cmd.env("AZURE_CLIENT_SECRET", LIMITED_SECRET);
    let run = execute(&mut cmd);
    assert_eq!(run.code, 1, "{}\n{}", run.out, run.err);
    let out = &run.out;
    let line = |label: &str| -> &str {
        out.lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line in:\n{out}"))
    };
    assert!(line("Cloud:").contains("global"), "{out}");
    assert!(line("Cloud:").contains(&scenario.url()), "{out}");
    assert!(line("Source:").contains("secret (client 2b1a…"), "{out}");
    assert!(line("Tenant:").contains(&tenant_id(&scenario)), "{out}");
    assert!(line("Client id:").contains(LIMITED_APP), "{out}");
    assert!(line("Expires:").contains("(in 59 min)"), "{out}");
    let missing: Vec<&str> = out.lines().filter(|l| l.contains("MISSING")).collect();
    assert_eq!(missing.len(), 1, "{out}");
    assert!(
        missing[0].contains("Policy.ReadWrite.AuthenticationMethod"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("ok") && l.contains("UserAuthenticationMethod")),
        "{out}"
    );
    assert!(
        run.err.contains("1 needed permission is missing"),
        "{}",
        run.err
    );
    assert_no_token("auth check's stdout", &run.out);
    assert_no_token("auth check's stderr", &run.err);
    assert!(!run.out.contains(LIMITED_SECRET) && !run.err.contains(LIMITED_SECRET));
}

// ---------------------------------------------------------------------------------------------
// 6. Plain http off loopback is refused before any connection.

/// What the HTTP client logs at debug and trace level before it resolves a name or connects
/// (hyper-util's connector); the hygiene test below shows a real run logs them.
const CONNECTING: [&str; 3] = ["starting new connection", "Http::connect", "connecting to"];

/// A trace-level log in which the HTTP client never started a connection (nor, so, a lookup).
fn assert_no_connection(trace: &str) {
    for marker in CONNECTING {
        assert!(!trace.contains(marker), "{marker}: {trace}");
    }
}

#[test]
fn plain_http_authorities_and_graph_urls_off_loopback_are_refused_before_any_connection() {
    let (scenario, yaml, _) = small_scenario();

    let mut cmd = mfactl_at(&scenario.url(), &plan_args(&yaml));
    as_app(&mut cmd, &scenario, SECRET_APP, &scenario.url());
    cmd.args(["--authority-host", "http://login.example.com"])
        .env("AZURE_CLIENT_SECRET", SECRET)
        // Trace: had a connection (or a name lookup) been tried, the HTTP stack would say.
        .env("MFACTL_LOG", "trace");
    let authority = execute(&mut cmd);
    assert_eq!(authority.code, 1, "{}", authority.err);
    assert!(
        authority.err.contains(
            "--authority-host http://login.example.com would send credentials unencrypted"
        ),
        "{}",
        authority.err
    );
    assert!(
        authority.err.contains("refused before any connection"),
        "{}",
        authority.err
    );
    assert_no_connection(&authority.err);

    let mut cmd = mfactl();
    cmd.args(plan_args(&yaml))
        .args(["--graph-url", "http://graph.example.com"])
        .env("AZURE_TENANT_ID", tenant_id(&scenario))
        .env("AZURE_CLIENT_ID", SECRET_APP)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .env("AZURE_AUTHORITY_HOST", scenario.url())
        .env("MFACTL_LOG", "trace");
    let graph = execute(&mut cmd);
    assert_eq!(graph.code, 1, "{}", graph.err);
    assert!(
        graph.err.contains(
            "--graph-url http://graph.example.com/ would send the access token unencrypted"
        ),
        "{}",
        graph.err
    );
    assert_no_connection(&graph.err);
    assert!(
        !graph.err.contains("Signed in"),
        "no sign-in either: {}",
        graph.err
    );

    let stats = scenario.stats();
    assert_eq!(stats.requests, 0, "{stats:?}");
    assert_eq!(stats.tokens_issued, 0, "{stats:?}");
}

// ---------------------------------------------------------------------------------------------
// 7. Trace logs hold no secret and no token.

#[test]
fn trace_logs_of_a_plan_and_an_apply_with_a_secret_hold_neither_the_secret_nor_a_token() {
    let (scenario, yaml, rows) = small_scenario();
    for args in [
        plan_args(&yaml),
        vec!["apply", yaml.to_str().unwrap(), "--auto-approve"],
    ] {
        let mut cmd = mfactl_at(&scenario.url(), &args);
        as_app(&mut cmd, &scenario, SECRET_APP, &scenario.url());
        cmd.env("AZURE_CLIENT_SECRET", SECRET)
            .env("MFACTL_LOG", "trace");
        let run = execute(&mut cmd);
        assert!(matches!(run.code, 0 | 2), "{}\n{}", run.out, run.err);
        assert!(run.err.contains("Signed in with secret"), "{}", run.err);
        // The log is really at trace level, the HTTP client's included.
        assert!(run.err.contains("TRACE"), "{}", run.err);
        for marker in CONNECTING {
            assert!(run.err.contains(marker), "{marker}: {}", run.err);
        }
        assert!(!run.err.contains(SECRET), "the secret leaked: {}", run.err);
        assert!(!run.out.contains(SECRET));
        assert_no_token("the trace log", &run.err);
        assert_no_token("stdout", &run.out);
    }
    assert_converged(&scenario.tenant(), &rows);
}

// ---------------------------------------------------------------------------------------------
// Saved plans and journals (issue 9) hold no secret and no token.

#[test]
fn a_saved_plan_and_its_journal_hold_no_secret_or_token() {
    let (scenario, yaml, rows) = small_scenario();
    let dir = scenario.dir.path().to_owned();
    let plan = dir.join("plan.json");
    let journal = dir.join("run.jsonl");
    let signed_in = |args: &[&str]| {
        let mut cmd = mfactl_at(&scenario.url(), args);
        cmd.current_dir(&dir);
        as_app(&mut cmd, &scenario, SECRET_APP, &scenario.url());
        cmd.env("AZURE_CLIENT_SECRET", SECRET);
        execute(&mut cmd)
    };
    let run = signed_in(&[
        "plan",
        yaml.to_str().unwrap(),
        "--out",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.err);
    // The token's tenant is the plan's: checked offline, then applied.
    let run = signed_in(&[
        "apply",
        plan.to_str().unwrap(),
        "--journal",
        journal.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.err);
    assert_converged(&scenario.tenant(), &rows);
    for path in [&plan, &journal] {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(!text.contains(SECRET), "{}", path.display());
        assert_no_token(&path.display().to_string(), &text);
    }
    for text in [&run.out, &run.err] {
        assert!(!text.contains(SECRET));
        assert_no_token("apply's output", text);
    }
}

// ---------------------------------------------------------------------------------------------
// `mfactl login --for MANIFEST` asks for what that manifest needs; `--scope` adds permissions.

#[test]
fn login_asks_for_what_the_manifest_needs_and_the_scopes_added() {
    let mut text = Tenant::generate(3, 77).to_yaml();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "auth:
  deviceCodeApprovalPolls: 1
  deviceCodeIntervalSeconds: 1
  admins:
    - userPrincipalName: {ADMIN}
      scopes: [UserAuthenticationMethod.ReadWrite.All, Policy.ReadWrite.AuthenticationMethod, User.Read.All, User.ReadBasic.All, GroupMember.Read.All, Organization.Read.All]
"
    ));
    let scenario = Scenario::new(Tenant::from_yaml_str(&text).unwrap());
    let groups = scenario.write(
        "groups.yaml",
        "version: 1\ngroups:\n  - group: MFA Pilot\n    preferredMethod: push\n",
    );
    let login = |extra: &[&str]| {
        let cache = scenario.dir.path().join("cache.json");
        let mut args = vec!["login", "--token-cache", cache.to_str().unwrap()];
        args.extend_from_slice(extra);
        let mut cmd = mfactl_at(&scenario.url(), &args);
        cmd.env("AZURE_AUTHORITY_HOST", scenario.url());
        execute(&mut cmd)
    };
    let granted = |run: &Run| -> Vec<String> {
        let line = run
            .err
            .lines()
            .find(|l| l.starts_with("Granted: "))
            .unwrap_or_else(|| panic!("{}", run.err));
        line["Granted: ".len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };

    // The default set: no group permission.
    let plain = login(&[]);
    assert_eq!(plain.code, 0, "{}", plain.err);
    assert!(
        !granted(&plain).iter().any(|s| s == "GroupMember.Read.All"),
        "{}",
        plain.err
    );

    // For a group manifest: the group listing's permission, and its reads and writes.
    let for_groups = login(&["--for", groups.to_str().unwrap()]);
    assert_eq!(for_groups.code, 0, "{}", for_groups.err);
    let asked = for_groups
        .err
        .lines()
        .find(|l| l.starts_with("Asking for: "))
        .unwrap()
        .to_owned();
    assert!(
        asked.contains("/GroupMember.Read.All") && asked.contains("offline_access"),
        "{asked}"
    );
    let scopes = granted(&for_groups);
    // Listing the group's members and naming them, and reading and writing their preferred
    // method: nothing more (no per-user state, no policy).
    assert_eq!(
        scopes,
        [
            "UserAuthenticationMethod.ReadWrite.All",
            "User.Read.All",
            "GroupMember.Read.All"
        ],
        "{}",
        for_groups.err
    );

    // --scope adds to either.
    let more = login(&[
        "--scope",
        "Organization.Read.All",
        "--scope",
        "GroupMember.Read.All",
    ]);
    assert_eq!(more.code, 0, "{}", more.err);
    let scopes = granted(&more);
    for added in [
        "Organization.Read.All",
        "GroupMember.Read.All",
        "User.Read.All",
    ] {
        assert!(scopes.iter().any(|s| s == added), "{added}: {scopes:?}");
    }
    // A scope that is not one word is a usage error, before anything is sent.
    let bad = login(&["--scope", "User.Read.All offline_access"]);
    assert_eq!(bad.code, 64, "{}", bad.err);
}
