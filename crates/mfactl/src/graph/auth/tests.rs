//! Across the sources: which one is chosen, which authority hosts are refused, and that no
//! secret reaches a `Debug` output, an error message or a log line.

use std::path::Path;
use std::sync::{Arc, Mutex};

use secrecy::ExposeSecret as _;

use super::testing::{FakeServer, jwt, rsa, settings};
use super::*;
use crate::graph::Cloud;

const SECRET: &str = "Xy8Q~client-secret-value-that-must-never-show";
const TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.eyJzZWNyZXQiOiJ0b2tlbiJ9.access-token-that-must-never-show";
const HEADER: &str = "identity-header-that-must-never-show";
const PASSWORD: &str = "pfx-password-that-must-never-show";
const REFRESH: &str = "refresh-token-that-must-never-show";

fn app_vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
        ("AZURE_CLIENT_ID", "2b1a7c3e-0000-4000-8000-000000000002"),
    ]
}

/// An executable `az` (never run here) in `dir`.
fn az_in(dir: &Path) -> String {
    let path = dir.join("az");
    std::fs::write(&path, "#!/bin/sh\nexit 1\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir.to_str().unwrap().to_owned()
}

fn cached_login(path: &Path) {
    let login = cache::CachedLogin {
        authority: "https://login.microsoftonline.com".to_owned(),
        tenant: "contoso.onmicrosoft.com".to_owned(),
        client_id: DEFAULT_PUBLIC_CLIENT_ID.to_owned(),
        upn: Some("admin@contoso.com".to_owned()),
        refresh_token: secrecy::SecretString::from(REFRESH.to_owned()),
        scopes: AuthSettings::default_delegated_scopes("https://graph.microsoft.com"),
        saved_at: "2025-01-01T00:00:00Z".to_owned(),
    };
    cache::save(path, &login, false).unwrap();
}

#[test]
fn the_first_configured_source_is_chosen_in_the_documented_order() {
    let dir = tempfile::tempdir().unwrap();
    let certificate = dir.path().join("app.pem");
    let rsa = rsa();
    std::fs::write(
        &certificate,
        format!("{}{}", rsa.certificate.pem(), rsa.key.serialize_pem()),
    )
    .unwrap();
    let certificate = certificate.to_str().unwrap().to_owned();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let path = az_in(&bin);
    let cache = dir.path().join("token-cache.json");
    cached_login(&cache);

    // Each step removes the winner of the step before.
    let layers: Vec<(SourceKind, Vec<(&str, &str)>)> = vec![
        (SourceKind::Token, vec![("MFACTL_ACCESS_TOKEN", TOKEN)]),
        (SourceKind::Secret, vec![("AZURE_CLIENT_SECRET", SECRET)]),
        (
            SourceKind::Certificate,
            vec![("AZURE_CLIENT_CERTIFICATE_PATH", certificate.as_str())],
        ),
        (
            SourceKind::Workload,
            vec![("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/token")],
        ),
        (
            SourceKind::Managed,
            vec![
                ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
                ("IDENTITY_HEADER", HEADER),
            ],
        ),
        (SourceKind::Cli, vec![("PATH", path.as_str())]),
        (SourceKind::Device, vec![]),
    ];
    for (i, (expected, _)) in layers.iter().enumerate() {
        let mut vars = app_vars();
        for (_, layer) in &layers[i..] {
            vars.extend(layer.iter().copied());
        }
        let mut settings = settings(&vars, None);
        settings.cache_path = cache.clone();
        let credential = choose(&settings, None).unwrap();
        assert_eq!(credential.kind(), *expected, "{vars:?}");
        assert!(
            credential.describe().starts_with(expected.name()),
            "{}",
            credential.describe()
        );
    }
    // --token-file alone is enough for `token`.
    let mut settings = settings(&[], None);
    settings.token_file = Some(dir.path().join("token"));
    assert_eq!(choose(&settings, None).unwrap().kind(), SourceKind::Token);
    // An IMDS override chooses `managed` without probing.
    let settings = settings_with(&[("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:1")]);
    assert_eq!(choose(&settings, None).unwrap().kind(), SourceKind::Managed);
}

fn settings_with(vars: &[(&str, &str)]) -> AuthSettings {
    let mut settings = settings(vars, None);
    settings.cache_path = std::path::PathBuf::from("/nonexistent/mfactl/token-cache.json");
    settings
}

#[test]
fn nothing_configured_names_every_source_and_its_variables() {
    let settings = settings_with(&[("AZURE_CLIENT_ID", "only-this")]);
    let error = choose(&settings, None).unwrap_err();
    assert!(matches!(error, AuthError::NothingConfigured { .. }));
    let message = error.to_string();
    assert!(
        message.starts_with("no sign-in is configured."),
        "{message}"
    );
    for name in [
        "token ",
        "MFACTL_ACCESS_TOKEN",
        "--token-file",
        "secret ",
        "AZURE_CLIENT_SECRET",
        "certificate ",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "workload ",
        "AZURE_FEDERATED_TOKEN_FILE",
        "managed ",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        "cli ",
        "az login",
        "device ",
        "mfactl login",
        "/nonexistent/mfactl/token-cache.json",
        "--auth",
    ] {
        assert!(message.contains(name), "{name} missing from:\n{message}");
    }
    // In the order they are tried.
    let order: Vec<usize> = SourceKind::ALL
        .iter()
        .map(|kind| message.find(&format!("  {kind} ")).unwrap())
        .collect();
    assert!(order.is_sorted(), "{message}");
}

#[test]
fn a_requested_source_must_be_configured_and_says_what_it_lacks() {
    let settings = settings_with(&app_vars());
    for (kind, says) in [
        (SourceKind::Token, "MFACTL_ACCESS_TOKEN is not set"),
        (SourceKind::Secret, "AZURE_CLIENT_SECRET is not set"),
        (
            SourceKind::Certificate,
            "AZURE_CLIENT_CERTIFICATE_PATH is not set",
        ),
        (
            SourceKind::Workload,
            "AZURE_FEDERATED_TOKEN_FILE is not set",
        ),
        (
            SourceKind::Device,
            "no cached sign-in at /nonexistent/mfactl/token-cache.json",
        ),
    ] {
        let error = choose(&settings, Some(kind)).unwrap_err().to_string();
        assert!(error.starts_with(&format!("{kind}: ")), "{error}");
        assert!(error.contains(says), "{error}");
    }
    // `managed` and `cli` may be asked for anywhere; `cli` needs az on PATH.
    assert_eq!(
        choose(&settings, Some(SourceKind::Managed)).unwrap().kind(),
        SourceKind::Managed
    );
    let error = choose(
        &settings_with(&[("PATH", "/nonexistent")]),
        Some(SourceKind::Cli),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("not on PATH"), "{error}");
}

#[test]
fn source_names_are_lowercase_for_auth_and_display() {
    use clap::ValueEnum as _;
    for kind in SourceKind::ALL {
        assert_eq!(kind.to_string(), kind.name());
        assert_eq!(SourceKind::from_str(kind.name(), false).unwrap(), kind);
    }
}

#[test]
fn authority_hosts_are_https_or_loopback_only() {
    let authority = |field: Option<&str>, env: &[(&str, &str)], cloud: Cloud| {
        let mut settings = settings(env, field);
        settings.cloud = cloud;
        settings.authority()
    };
    assert_eq!(
        authority(None, &[], Cloud::Global).unwrap(),
        "https://login.microsoftonline.com"
    );
    assert_eq!(
        authority(None, &[], Cloud::China).unwrap(),
        "https://login.chinacloudapi.cn"
    );
    assert_eq!(
        authority(
            None,
            &[("AZURE_AUTHORITY_HOST", "login.microsoftonline.us")],
            Cloud::Global
        )
        .unwrap(),
        "https://login.microsoftonline.us"
    );
    assert_eq!(
        authority(
            Some("http://127.0.0.1:8400/"),
            &[("AZURE_AUTHORITY_HOST", "https://ignored.example")],
            Cloud::Global
        )
        .unwrap(),
        "http://127.0.0.1:8400",
        "the flag wins over the variable"
    );
    for loopback in [
        "http://localhost:9000",
        "http://[::1]:9000",
        "http://127.0.0.2",
    ] {
        authority(Some(loopback), &[], Cloud::Global).unwrap();
    }
    for (given, says) in [
        (
            "http://login.microsoftonline.com",
            "would send credentials unencrypted",
        ),
        (
            "http://169.254.169.254",
            "would send credentials unencrypted",
        ),
        ("ftp://login.example", "must be an https:// URL"),
        ("https://login.example/?x=1", "no query or fragment"),
        ("https://", "not a valid URL"),
    ] {
        let error = authority(Some(given), &[], Cloud::Global)
            .unwrap_err()
            .to_string();
        assert!(error.contains(says), "{given}: {error}");
        assert!(error.starts_with("--authority-host"), "{given}: {error}");
    }
    let error = authority(
        Some("https://admin:hunter2@login.example"),
        &[],
        Cloud::Global,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("user name or password"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    let error = authority(
        None,
        &[("AZURE_AUTHORITY_HOST", "http://login.example")],
        Cloud::Global,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("AZURE_AUTHORITY_HOST http://login.example would send"),
        "{error}"
    );
    assert!(error.ends_with("refused before any connection"), "{error}");
    // Refused when the source is built: nothing is ever sent.
    let mut vars = app_vars();
    vars.push(("AZURE_CLIENT_SECRET", SECRET));
    let settings = settings(&vars, Some("http://login.example"));
    let error = choose(&settings, None).unwrap_err().to_string();
    assert!(error.contains("unencrypted"), "{error}");
    assert!(!error.contains(SECRET));
}

/// Windows keeps per-user caches under %LOCALAPPDATA%; XDG_CACHE_HOME is a Unix convention.
#[test]
fn the_token_cache_is_under_local_app_data_on_windows() {
    let local = Path::new(r"C:\Users\me\AppData\Local");
    let env = Env::from_vars([
        ("LOCALAPPDATA", local.as_os_str()),
        ("USERPROFILE", std::ffi::OsStr::new(r"C:\Users\me")),
        ("XDG_CACHE_HOME", std::ffi::OsStr::new("/xdg")),
    ]);
    let expected = local.join("mfactl").join("token-cache.json");
    assert_eq!(AuthSettings::cache_path_on(&env, true), expected);
    // A service without LOCALAPPDATA: the same folder, from the profile.
    let env = Env::from_vars([("USERPROFILE", r"C:\Users\me")]);
    let profile = Path::new(r"C:\Users\me").join("AppData").join("Local");
    assert_eq!(
        AuthSettings::cache_path_on(&env, true),
        profile.join("mfactl").join("token-cache.json")
    );
    // The process's own platform decides which rule applies.
    assert_eq!(
        AuthSettings::default_cache_path(&env),
        AuthSettings::cache_path_on(&env, cfg!(windows))
    );
}

#[test]
fn default_settings_follow_the_environment() {
    let env = Env::from_vars([("XDG_CACHE_HOME", "/xdg"), ("HOME", "/home/me")]);
    assert_eq!(
        AuthSettings::cache_path_on(&env, false),
        Path::new("/xdg/mfactl/token-cache.json")
    );
    let env = Env::from_vars([("XDG_CACHE_HOME", "relative"), ("HOME", "/home/me")]);
    assert_eq!(
        AuthSettings::cache_path_on(&env, false),
        Path::new("/home/me/.cache/mfactl/token-cache.json")
    );
    let env = Env::from_vars([("MFACTL_TOKEN_CACHE", "/etc/mfactl.json"), ("HOME", "/h")]);
    assert_eq!(
        AuthSettings::default_cache_path(&env),
        Path::new("/etc/mfactl.json")
    );
    assert_eq!(
        AuthSettings::cache_path_on(&env, true),
        Path::new("/etc/mfactl.json")
    );
    let settings = AuthSettings::new(Cloud::Usgov, "https://graph.microsoft.us/", env);
    assert_eq!(settings.graph_root, "https://graph.microsoft.us");
    assert_eq!(settings.scope(), "https://graph.microsoft.us/.default");
    assert_eq!(
        settings.delegated_scopes,
        [
            "https://graph.microsoft.us/UserAuthenticationMethod.ReadWrite.All",
            "https://graph.microsoft.us/Policy.ReadWrite.AuthenticationMethod",
            "https://graph.microsoft.us/Policy.Read.All",
            "https://graph.microsoft.us/User.Read.All",
            "offline_access"
        ]
    );
    assert_eq!(
        settings.authority().unwrap(),
        "https://login.microsoftonline.us"
    );
    // Empty variables count as unset.
    let settings = settings_with(&[("AZURE_TENANT_ID", "  "), ("AZURE_CLIENT_SECRET", "")]);
    assert_eq!(settings.tenant(), None);
    assert!(matches!(
        choose(&settings, None),
        Err(AuthError::NothingConfigured { .. })
    ));
}

#[tokio::test]
async fn no_debug_output_shows_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = rsa();
    let pfx = {
        use p12_keystore::{
            Certificate, KeyStore, KeyStoreEntry, LocalKeyId, PrivateKey, PrivateKeyChain,
        };
        let chain = PrivateKeyChain::new(
            LocalKeyId(vec![1]),
            PrivateKey::from_der(&rsa.key.serialize_der()).unwrap(),
            [Certificate::from_der(rsa.certificate.der()).unwrap()],
        );
        let mut store = KeyStore::new();
        store.add_entry("app", KeyStoreEntry::PrivateKeyChain(chain));
        store.writer(PASSWORD).write().unwrap()
    };
    let pfx_path = dir.path().join("app.pfx");
    std::fs::write(&pfx_path, pfx).unwrap();
    let pfx_path = pfx_path.to_str().unwrap().to_owned();
    let cache = dir.path().join("token-cache.json");
    cached_login(&cache);
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let path = az_in(&bin);

    let mut vars = app_vars();
    vars.extend([
        ("MFACTL_ACCESS_TOKEN", TOKEN),
        ("AZURE_CLIENT_SECRET", SECRET),
        ("AZURE_CLIENT_CERTIFICATE_PATH", pfx_path.as_str()),
        ("AZURE_CLIENT_CERTIFICATE_PASSWORD", PASSWORD),
        ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/token"),
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
        ("IDENTITY_HEADER", HEADER),
        ("PATH", path.as_str()),
    ]);
    let mut settings = settings(&vars, None);
    settings.cache_path = cache;

    let key_material = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        rsa.key.serialize_der(),
    );
    let mut outputs = vec![format!("{settings:?}"), format!("{:?}", settings.env)];
    for kind in SourceKind::ALL {
        let credential = choose(&settings, Some(kind)).unwrap();
        outputs.push(format!("{credential:?}"));
        outputs.push(format!("{credential:#?}"));
        outputs.push(credential.describe());
        if kind == SourceKind::Token {
            let provider = TokenProvider::new(credential.clone());
            let bearer = provider.current().await.unwrap();
            assert_eq!(
                bearer.header.to_str().unwrap(),
                format!("Bearer {TOKEN}"),
                "the header carries it"
            );
            outputs.push(format!("{bearer:?}"));
            outputs.push(format!("{provider:?}"));
            outputs.push(format!("{:?}", credential.acquire().await.unwrap()));
        }
    }
    let cached = cache::load(&settings.cache_path).unwrap().unwrap();
    assert_eq!(cached.refresh_token.expose_secret(), REFRESH);
    outputs.push(format!("{cached:?}"));
    for output in &outputs {
        for secret in [
            SECRET,
            TOKEN,
            HEADER,
            PASSWORD,
            REFRESH,
            &key_material[..40],
        ] {
            assert!(!output.contains(secret), "{secret} in {output}");
        }
    }
    // The Debug of the environment still names what is set.
    assert!(outputs[1].contains("AZURE_CLIENT_SECRET"), "{}", outputs[1]);
}

/// A `Write` into a shared buffer, for capturing log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_log_line_at_any_level_shows_a_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    // Other tests' threads may have cached a callsite's interest as "never" while no subscriber
    // listened there: ask every callsite again, now that this one does.
    tracing::callsite::rebuild_interest_cache();

    let access = |n: usize| {
        jwt(serde_json::json!({"secret": format!("access-token-payload-{n}-never-shown")}))
    };
    let answer = move |n: usize| {
        serde_json::json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "access_token": access(n),
            "refresh_token": "rotated-refresh-token-never-shown",
        })
        .to_string()
    };
    let server = FakeServer::start(move |request, index| match index {
        // A transient failure, a success, then a refusal: every logging path of a renewal.
        0 => (503, "{}".to_owned()),
        1 | 2 => (200, answer(index)),
        _ => (
            400,
            serde_json::json!({
                "error": "invalid_grant",
                "error_description": format!("AADSTS700082: expired for {}", request.form("client_id").unwrap_or_default()),
                "error_codes": [700082],
            })
            .to_string(),
        ),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut vars = app_vars();
    vars.push(("AZURE_CLIENT_SECRET", SECRET));
    let mut settings = settings(&vars, Some(&server.url));
    settings.cache_path = dir.path().join("token-cache.json");

    let secret = SecretCredential::new(&settings).unwrap().without_backoff();
    let provider = TokenProvider::new(Arc::new(secret));
    let bearer = provider.current().await.unwrap();
    provider.renew(&bearer).await.unwrap();

    let login = cache::CachedLogin {
        authority: server.url.clone(),
        tenant: "contoso.onmicrosoft.com".to_owned(),
        client_id: DEFAULT_PUBLIC_CLIENT_ID.to_owned(),
        upn: None,
        refresh_token: secrecy::SecretString::from(REFRESH.to_owned()),
        scopes: vec!["offline_access".to_owned()],
        saved_at: String::new(),
    };
    cache::save(&settings.cache_path, &login, false).unwrap();
    let device = DeviceCredential::new(&settings).unwrap();
    let error = device.acquire().await.unwrap_err();
    tracing::error!(%error, "as the CLI would log it");
    drop(_logging);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("access token installed"), "{logs}");
    assert!(logs.contains("retrying"), "{logs}");
    for secret in [
        SECRET,
        REFRESH,
        &jwt(serde_json::json!({"secret": "access-token-payload-1-never-shown"})),
        "access-token-payload-1-never-shown",
        "access-token-payload-2-never-shown",
        "rotated-refresh-token-never-shown",
    ] {
        assert!(!logs.contains(secret), "{secret} in\n{logs}");
    }
}
