//! `cli`: the Azure CLI's signed-in account. Runs
//! `az account get-access-token --output json --resource {graph_root} [--tenant T]` — no shell
//! (the path to `az` is found on `PATH` here, and arguments go to it as they are), stdin closed,
//! a 60 s timeout, `AZURE_CORE_NO_COLOR=true` so its messages carry no colour codes (as the Azure
//! SDK for Python sets it).
//!
//! `--resource` with the Graph root works for every cloud and for any root, where
//! `--resource-type ms-graph` would take the Graph of whichever cloud `az` is set to (`az cloud
//! set`), possibly not mfactl's; the Azure SDK for Python asks `--resource` the same way. The
//! answer's expiry: `expires_on` (epoch seconds, Azure CLI 2.54.0 and later), else `expiresOn`
//! (a local date and time, older versions; MicrosoftDocs/azure-docs-cli, refresh-token.md).
//!
//! A failure carries the first line of `az`'s stderr, escaped, with anything token-like cut out.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use secrecy::SecretString;
use serde_json::Value;

use super::error::{QUOTE_MAX, first_line};
use super::http::number;
use super::settings::{Env, check_tenant};
use super::{AccessToken, AuthError, AuthSettings, Credential, SourceKind};
use crate::graph::cloud;
use crate::text::{printable, printable_capped};

/// How long `az` may take (it may refresh its own token over the network first).
const TIMEOUT: Duration = Duration::from_secs(60);

/// The `cli` source.
pub struct CliCredential {
    az: PathBuf,
    resource: String,
    tenant: Option<String>,
    timeout: Duration,
}

/// `az` on the `PATH` of `env` (`az.cmd` on Windows).
pub(super) fn find_az(env: &Env) -> Option<PathBuf> {
    let path = env.get_os("PATH")?;
    let names: &[&str] = if cfg!(windows) {
        &["az.cmd", "az.exe", "az.bat"]
    } else {
        &["az"]
    };
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    metadata.is_file()
}

impl CliCredential {
    pub fn new(settings: &AuthSettings) -> Result<CliCredential, AuthError> {
        let az = find_az(&settings.env).ok_or_else(|| AuthError::Misconfigured {
            kind: Some(SourceKind::Cli),
            problem: "the Azure CLI (`az`) is not on PATH; install it and run `az login`, or \
                      choose another --auth source"
                .to_owned(),
        })?;
        let tenant = settings.tenant().map(str::to_owned);
        if let Some(tenant) = &tenant {
            check_tenant(SourceKind::Cli, tenant)?;
        }
        Ok(CliCredential {
            az,
            resource: cloud::resource(&settings.graph_root),
            tenant,
            timeout: TIMEOUT,
        })
    }

    #[cfg(all(test, unix))]
    pub(super) fn with_timeout(mut self, timeout: Duration) -> CliCredential {
        self.timeout = timeout;
        self
    }

    fn command_line(&self) -> String {
        let mut line = format!(
            "az account get-access-token --output json --resource {}",
            self.resource
        );
        if let Some(tenant) = &self.tenant {
            line.push_str(&format!(" --tenant {tenant}"));
        }
        printable(&line).into_owned()
    }

    async fn run(&self) -> Result<AccessToken, AuthError> {
        let mut command = tokio::process::Command::new(&self.az);
        command
            .args([
                "account",
                "get-access-token",
                "--output",
                "json",
                "--resource",
            ])
            .arg(&self.resource);
        if let Some(tenant) = &self.tenant {
            command.args(["--tenant", tenant]);
        }
        command
            .env("AZURE_CORE_NO_COLOR", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if cfg!(unix) {
            // Not the caller's directory: nothing there should influence az.
            command.current_dir("/");
        }
        let failed = |problem: String| AuthError::Cli {
            problem: format!("`{}` {problem}", self.command_line()),
        };
        let child = command.spawn().map_err(|error| {
            failed(format!(
                "could not start ({}): {error}",
                printable(&self.az.to_string_lossy())
            ))
        })?;
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(output) => output.map_err(|error| failed(format!("failed: {error}")))?,
            Err(_) => {
                return Err(failed(format!(
                    "did not finish within {} (it was stopped)",
                    if self.timeout >= Duration::from_secs(1) {
                        format!("{} s", self.timeout.as_secs())
                    } else {
                        format!("{} ms", self.timeout.as_millis())
                    }
                )));
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let line = stderr
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .map(first_line)
                .unwrap_or_default();
            let said = if line.is_empty() {
                String::new()
            } else {
                format!(": {}", printable_capped(&redact(line), QUOTE_MAX))
            };
            let fix = if line.contains("az login") || line.contains("az account set") {
                match &self.tenant {
                    Some(tenant) => format!("; run `az login --tenant {}`", printable(tenant)),
                    None => "; run `az login`".to_owned(),
                }
            } else {
                String::new()
            };
            return Err(failed(format!("failed ({}){said}{fix}", output.status)));
        }
        parse(&output.stdout).map_err(|problem| failed(problem.to_owned()))
    }
}

/// Reads `az account get-access-token --output json`.
fn parse(stdout: &[u8]) -> Result<AccessToken, &'static str> {
    let mut json: Value =
        serde_json::from_slice(stdout).map_err(|_| "printed something that is not JSON")?;
    let token = match json.get_mut("accessToken").map(Value::take) {
        Some(Value::String(token)) if !token.is_empty() => SecretString::from(token),
        _ => return Err("printed no accessToken"),
    };
    let expires_at = number(json.get("expires_on"))
        .and_then(|epoch| super::http::expiry(SystemTime::now(), Some(epoch), None))
        .or_else(|| {
            json.get("expiresOn")
                .and_then(Value::as_str)
                .and_then(local_time)
        });
    Ok(AccessToken { token, expires_at })
}

/// `2023-10-31 21:59:10.000000`, in the machine's time zone (what older `az` prints).
fn local_time(text: &str) -> Option<SystemTime> {
    let civil: jiff::civil::DateTime = text.trim().parse().ok()?;
    let zoned = civil.to_zoned(jiff::tz::TimeZone::system()).ok()?;
    Some(SystemTime::from(zoned.timestamp()))
}

/// `line` with every run of 40 or more token characters (base64url and dots: JWTs, refresh
/// tokens, secrets) replaced by `[redacted]`. GUIDs (36) and words survive.
pub(super) fn redact(line: &str) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '~');
    let mut out = String::with_capacity(line.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 40 {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in line.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

impl fmt::Debug for CliCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CliCredential")
            .field("az", &self.az)
            .field("resource", &self.resource)
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl Credential for CliCredential {
    fn kind(&self) -> SourceKind {
        SourceKind::Cli
    }

    fn describe(&self) -> String {
        let mut text = format!("cli (az at {}", printable(&self.az.to_string_lossy()));
        if let Some(tenant) = &self.tenant {
            text.push_str(&format!(", tenant {}", printable(tenant)));
        }
        text.push(')');
        text
    }

    fn acquire(&self) -> BoxFuture<'_, Result<AccessToken, AuthError>> {
        Box::pin(self.run())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::graph::auth::testing::{epoch_in, jwt, settings};

    /// Scripts are written and run one test at a time: a script still open for writing in
    /// this process while another test forks cannot be executed (ETXTBSY).
    static SCRIPTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// A fake `az` in `dir/bin` that records its arguments, colour setting and working
    /// directory, then runs `body`.
    fn fake_az(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let record = dir.display();
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{record}/args'\nprintf '%s' \"$AZURE_CORE_NO_COLOR\" > '{record}/color'\npwd > '{record}/cwd'\n{body}\n"
        );
        let path = bin.join("az");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    fn cli_settings(bin: &Path, tenant: Option<&str>) -> AuthSettings {
        let path = format!("{}:/usr/bin:/bin", bin.display());
        let mut vars = vec![("PATH", path.as_str())];
        if let Some(tenant) = tenant {
            vars.push(("AZURE_TENANT_ID", tenant));
        }
        settings(&vars, None)
    }

    #[tokio::test]
    async fn runs_az_without_a_shell_and_reads_expires_on() {
        let _one_at_a_time = SCRIPTS.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let token = jwt(serde_json::json!({"scp": "User.Read"}));
        let expires_on = epoch_in(Duration::from_secs(3000));
        let bin = fake_az(
            dir.path(),
            &format!(
                "cat <<'JSON'\n{{\"accessToken\": \"{token}\", \"expiresOn\": \"2000-01-01 00:00:00.000000\", \"expires_on\": {expires_on}, \"subscription\": \"s\", \"tenant\": \"t\", \"tokenType\": \"Bearer\"}}\nJSON"
            ),
        );
        let settings = cli_settings(&bin, Some("contoso.onmicrosoft.com"));
        assert_eq!(find_az(&settings.env), Some(bin.join("az")));
        let credential = CliCredential::new(&settings).unwrap();
        assert_eq!(
            credential.describe(),
            format!(
                "cli (az at {}, tenant contoso.onmicrosoft.com)",
                bin.join("az").display()
            )
        );
        let access = credential.acquire().await.unwrap();
        assert_eq!(access.token.expose_secret(), token);
        assert_eq!(
            access.expires_at,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(expires_on)),
            "expires_on (epoch) wins over expiresOn"
        );
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(
            args.lines().collect::<Vec<_>>(),
            [
                "account",
                "get-access-token",
                "--output",
                "json",
                "--resource",
                "https://graph.microsoft.com",
                "--tenant",
                "contoso.onmicrosoft.com"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("color")).unwrap(),
            "true"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cwd"))
                .unwrap()
                .trim(),
            "/"
        );
    }

    #[tokio::test]
    async fn older_az_gives_a_local_expiry_time() {
        let _one_at_a_time = SCRIPTS.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_az(
            dir.path(),
            "echo '{\"accessToken\": \"opaque\", \"expiresOn\": \"2099-10-31 21:59:10.000000\", \"tokenType\": \"Bearer\"}'",
        );
        let credential = CliCredential::new(&cli_settings(&bin, None)).unwrap();
        let access = credential.acquire().await.unwrap();
        let expected = jiff::civil::date(2099, 10, 31)
            .at(21, 59, 10, 0)
            .to_zoned(jiff::tz::TimeZone::system())
            .unwrap()
            .timestamp();
        assert_eq!(access.expires_at, Some(SystemTime::from(expected)));
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert!(!args.contains("--tenant"), "{args}");
    }

    #[tokio::test]
    async fn a_failing_az_is_quoted_by_its_first_line_without_anything_token_like() {
        let _one_at_a_time = SCRIPTS.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let leaked = jwt(serde_json::json!({"upn": "megan@contoso.com"}));
        let bin = fake_az(
            dir.path(),
            &format!(
                "echo '' >&2\necho \"ERROR: AADSTS70043: The refresh token has expired {leaked} \x1b[31mPlease run 'az login' to setup account.\" >&2\necho 'second line' >&2\nexit 1"
            ),
        );
        let credential = CliCredential::new(&cli_settings(&bin, None)).unwrap();
        let error = credential.acquire().await.unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("cli: `az account get-access-token --output json --resource https://graph.microsoft.com` failed (exit status: 1): ERROR: AADSTS70043: The refresh token has expired [redacted] \\u{1b}[31mPlease run 'az login'"), "{message}");
        assert!(message.ends_with("; run `az login`"), "{message}");
        assert!(
            !message.contains(&leaked) && !message.contains("second line"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn unexpected_output_and_a_hung_az_are_reported() {
        let _one_at_a_time = SCRIPTS.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_az(dir.path(), "echo '{\"refreshToken\": \"rt-secret\"}'");
        let credential = CliCredential::new(&cli_settings(&bin, None)).unwrap();
        let error = credential.acquire().await.unwrap_err().to_string();
        assert!(error.ends_with("printed no accessToken"), "{error}");
        assert!(!error.contains("rt-secret"));

        let dir = tempfile::tempdir().unwrap();
        let bin = fake_az(dir.path(), "exec sleep 30");
        let credential = CliCredential::new(&cli_settings(&bin, None))
            .unwrap()
            .with_timeout(Duration::from_millis(200));
        let error = credential.acquire().await.unwrap_err().to_string();
        assert!(
            error.ends_with("did not finish within 200 ms (it was stopped)"),
            "{error}"
        );
    }

    #[test]
    fn az_is_looked_up_on_the_given_path_only() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_az(&Env::from_vars([("PATH", dir.path())])), None);
        // Not executable: not az.
        std::fs::write(dir.path().join("az"), "#!/bin/sh\n").unwrap();
        assert_eq!(find_az(&Env::from_vars([("PATH", dir.path())])), None);
        assert_eq!(
            find_az(&Env::from_vars(Vec::<(String, String)>::new())),
            None
        );
        let error = CliCredential::new(&settings(&[("PATH", "/nonexistent")], None))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("cli: the Azure CLI (`az`) is not on PATH"),
            "{error}"
        );
    }

    #[test]
    fn long_token_like_runs_are_redacted_and_ids_kept() {
        assert_eq!(
            redact(
                "tenant 9c0e5f1a-0000-4000-8000-000000000001: eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln, path /home/me/.azure"
            ),
            "tenant 9c0e5f1a-0000-4000-8000-000000000001: [redacted], path /home/me/.azure"
        );
        assert_eq!(
            redact("0.AAAAk3bXJ_0123456789012345678901234567890123456789"),
            "[redacted]"
        );
    }
}
