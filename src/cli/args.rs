//! Flags shared by plan and apply, and their check into a run configuration.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use miette::{IntoDiagnostic, WrapErr, miette};
use secrecy::SecretString;

use super::auth::AuthArgs;
use mfactl::engine;
use mfactl::graph::auth::{AuthSettings, SourceKind, TokenCredential, TokenProvider};
use mfactl::graph::{
    BucketShape, BuildError, Cloud, GraphClient, Transport, TransportConfig, ru_tier,
};
use mfactl_emulator::{Emulator, EmulatorConfig, Tenant};

/// The token `--emulate` sends to an emulator without an `auth:` section (a real token is
/// never sent there).
pub const EMULATOR_TOKEN_ENV: &str = "MFACTL_EMULATOR_TOKEN";

/// Where plan, apply and show take the token from; shown in their `--help`.
pub const TOKEN_HELP: &str = "\
Sign-in (README.md, \"Sign in\"): the first source configured, or the one --auth names:
  token        MFACTL_ACCESS_TOKEN, or --token-file FILE: a bearer token used as is
  secret       AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET
  certificate  ... + AZURE_CLIENT_CERTIFICATE_PATH (PEM, or .pfx with _PASSWORD)
  workload     ... + AZURE_FEDERATED_TOKEN_FILE (GitHub Actions, Kubernetes)
  managed      IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service, Automation); --auth managed
               on a VM
  cli          the Azure CLI's signed-in account (az login)
  device       the admin signed in with `mfactl login`
Secrets come from the environment or files, never from an argument, and never reach a log.
Reading needs UserAuthenticationMethod.Read.All and Policy.Read.All (User.Read.All for
userPrincipalNames; Policy.Read.All also reads the Conditional Access policies a plan that
disables per-user MFA checks, and GroupMember.Read.All and RoleManagement.Read.Directory read,
best effort, the groups and roles they name); writing needs
UserAuthenticationMethod.ReadWrite.All and Policy.ReadWrite.AuthenticationMethod. show also reads, best effort, the tenant policy and
users' groups (User.Read.All). With --emulate and a tenant file without an auth:
section no sign-in is needed (MFACTL_EMULATOR_TOKEN sets the token the emulator sees); its
changes live in memory only and are lost when the command ends.";

/// How plan, apply and show print their document on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Text for people (plan and apply: Terraform-like).
    #[default]
    Text,
    /// A JSON document for scripts (plan and apply: design.md's plan document).
    Json,
}

/// `x-ms-throttle-priority`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Priority {
    /// No header: Graph's default.
    #[default]
    Normal,
    /// `x-ms-throttle-priority: Low`.
    Low,
}

/// A tenant size in Graph's largest throttling tier (over 500 users): what a run assumes when
/// it lists the tenant and cannot know its size before (smaller tenants' whole runs fit in
/// their tier's first bucket, and a 429 is still honoured).
pub const LARGE_TENANT: u64 = 501;

/// Where Graph is and how hard to drive it.
#[derive(Clone, Debug, Args)]
pub struct GraphArgs {
    /// Graph root without version, e.g. http://127.0.0.1:8080 (default: the cloud's host);
    /// a trailing /beta is accepted. https only, or http to a loopback address (the emulator).
    // A string, not a `url::Url`: clap would echo a value it cannot parse, password and all.
    #[arg(
        long,
        env = "MFACTL_GRAPH_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub graph_url: Option<String>,
    /// The Microsoft cloud whose Graph to use.
    #[arg(long, value_enum, default_value_t = Cloud::Global, env = "MFACTL_CLOUD")]
    pub cloud: Cloud,
    /// Run against an in-process Graph emulator seeded from this tenant file (its changes live
    /// in memory only and are lost when the command ends).
    #[arg(long, value_name = "TENANT.yaml", conflicts_with = "graph_url")]
    pub emulate: Option<PathBuf>,
    /// The most Graph requests in flight at once (batch items counted one by one); below it,
    /// the number in flight follows the measured latency so that Graph's quota binds.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub concurrency: u16,
    /// The number of users in the tenant, for Graph's throttling tier (under 50: 3,500 resource
    /// units per 10 s; 50-500: 5,000; over 500: 8,000). Default: what the manifest proves.
    #[arg(long, value_name = "USERS")]
    pub tenant_size: Option<u64>,
    /// Resource units per 10 s that Graph allows this app in this tenant (default: Graph's
    /// tier for the tenant's size, see --tenant-size). Change it only for a tenant whose limit
    /// differs, or for an emulator started with another --ru-per-10s.
    #[arg(long, value_name = "RU", value_parser = clap::value_parser!(u32).range(1..=1_000_000_000))]
    pub ru_quota: Option<u32>,
    /// Writes per 150 s that Graph allows this app in this tenant (Graph documents 3,000).
    /// Change it only for a tenant whose limit differs, or for an emulator started with
    /// another --writes-per-150s.
    #[arg(long, value_name = "WRITES", default_value_t = 3_000, value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    pub write_quota: u32,
    /// A fixed cap on requests per second, below Graph's resource-unit bucket (to leave room
    /// for other tools of the same app registration).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub read_rate: Option<u32>,
    /// A fixed cap on writes per second, below Graph's write bucket (3,000 per 150 s: a run
    /// may write 3,000 at once, then 20 a second).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub write_rate: Option<u32>,
    /// Send every request alone instead of up to 20 in one $batch round trip.
    #[arg(long)]
    pub no_batch: bool,
    /// Throttling priority: `low` for scheduled or bulk runs (Graph throttles low-priority
    /// requests first, sparing admins working interactively in the same tenant).
    #[arg(long, value_enum, default_value_t = Priority::Normal)]
    pub priority: Priority,
    /// Times one request is sent at most on 5xx, timeouts and connection errors (429s are
    /// retried after Retry-After up to 4 times as often).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub max_attempts: u32,
    /// Seconds before one attempt times out.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,
    /// The longest single pause, in seconds, that a 429's Retry-After may impose; Graph asks
    /// for seconds, and a longer request is cut to this (and logged).
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub max_pause: u64,
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// A connected Graph: the client, and the emulator it talks to when `--emulate` was given
/// (kept alive for the run).
pub struct Connection {
    pub client: GraphClient,
    /// The tenant, when known without asking Graph (the emulated tenant file's id, or the
    /// token's `tid` claim).
    pub tenant_id: Option<String>,
    pub concurrency: usize,
    pub emulator: Option<Emulator>,
    /// How sign-in was configured (none for an emulator without an `auth:` section).
    pub auth: Option<AuthSettings>,
}

impl Connection {
    /// Where the run's tokens come from.
    pub fn tokens(&self) -> &Arc<TokenProvider> {
        &self.client.transport().config().tokens
    }

    /// A run-stopping failure, with what to do about it; a rejected token names its source.
    pub fn stop(&self, error: engine::RunError) -> miette::Report {
        match &error {
            engine::RunError::Unauthorized(_) => {
                let tokens = self.tokens();
                let help = if tokens.kind() == SourceKind::Token {
                    format!(
                        "get a fresh access token and give it again ({}); tokens live 60-90 \
                         minutes",
                        tokens.describe()
                    )
                } else {
                    format!(
                        "a new token from {} was refused too: check that the credential is for \
                         this tenant and cloud, and that the app is still registered and \
                         consented",
                        tokens.describe()
                    )
                };
                miette!(help = help, "{error}")
            }
            _ => super::plan::run_error(error),
        }
    }

    /// Asks Graph which tenant this is (`/organization`), falling back on what is known
    /// locally. Stops here, with one message, when Graph cannot be reached or refuses the token.
    pub async fn identify(&self) -> miette::Result<engine::Tenant> {
        let mut tenant = engine::identify_tenant(&self.client)
            .await
            .map_err(|error| self.stop(error))?;
        if tenant.id.is_none() {
            tenant.id = self.tenant_id.clone();
        }
        Ok(tenant)
    }
}

impl GraphArgs {
    /// Loads the tenant file first when emulating (so its errors come before anything else).
    pub fn load_emulated_tenant(&self) -> miette::Result<Option<Tenant>> {
        match &self.emulate {
            Some(path) => Tenant::load(path).map(Some).map_err(|e| miette!("{e}")),
            None => Ok(None),
        }
    }

    /// The in-process emulator answers as the chosen cloud's Graph would (China has no
    /// `/authentication/methods`).
    fn emulator_config(&self) -> EmulatorConfig {
        EmulatorConfig {
            cloud: self.cloud,
            ..EmulatorConfig::default()
        }
    }

    /// Checks `--graph-url` (before anything else, so a bad one costs nothing).
    pub fn graph_root(&self) -> miette::Result<String> {
        match &self.graph_url {
            Some(text) => graph_root(text),
            None => Ok(self.cloud.graph_root().to_owned()),
        }
    }

    /// The tenant size to assume for a manifest's run: its users, or Graph's largest tier when
    /// selectors reach populations whose size only the listing tells.
    pub fn size_of(manifest: &mfactl::manifest::Manifest) -> u64 {
        if manifest.selectors.is_empty() {
            manifest.users.len() as u64
        } else {
            LARGE_TENANT
        }
    }

    /// Starts the emulator if asked, reads the token, builds the transport. `manifest_users`
    /// is how many distinct users the manifest names: the tenant has at least that many, which
    /// sets Graph's throttling tier unless `--tenant-size` says otherwise.
    pub async fn connect(
        &self,
        tenant: Option<Tenant>,
        manifest_users: u64,
    ) -> miette::Result<Connection> {
        let tenant_size = self.tenant_size.unwrap_or(match &tenant {
            Some(tenant) => tenant.users.len() as u64,
            None => manifest_users,
        });
        let mut tenant_id = tenant.as_ref().map(|t| t.tenant_id.clone());
        let (root, tokens, emulator, auth) = match tenant {
            Some(tenant) => {
                let signs_in = tenant.auth.is_some();
                let listen = "127.0.0.1:0".parse().expect("valid address");
                let emulator = Emulator::start(tenant, self.emulator_config(), listen)
                    .await
                    .into_diagnostic()
                    .wrap_err("cannot start the in-process emulator")?;
                let url = emulator.url();
                if signs_in {
                    // It signs in like Entra ID: the real sources, against its authority.
                    let settings = self.auth.settings(self.cloud, &url, Some(&url));
                    let tokens = self.auth.provider(&settings)?;
                    (url, tokens, Some(emulator), Some(settings))
                } else {
                    // It takes any bearer token; a real one in the environment is never sent
                    // to it. MFACTL_EMULATOR_TOKEN picks the emulator's answers to bad tokens.
                    let token = std::env::var(EMULATOR_TOKEN_ENV)
                        .ok()
                        .filter(|t| !t.trim().is_empty())
                        .map_or_else(|| SecretString::from("emulator"), SecretString::from);
                    let given = TokenCredential::given(
                        token,
                        "for the emulator, which takes any token without an auth: section",
                    );
                    let tokens = Arc::new(TokenProvider::new(Arc::new(given)));
                    (url, tokens, Some(emulator), None)
                }
            }
            None => {
                let root = self.graph_root()?;
                let settings = self.auth.settings(self.cloud, &root, None);
                let tokens = self.auth.provider(&settings)?;
                (root, tokens, None, Some(settings))
            }
        };
        // Signed in before the first request: a bad credential is one message, nothing sent.
        super::auth::sign_in(&tokens).await?;
        if let Some(claims) = tokens.claims()
            && claims.tenant_id.is_some()
            && emulator.is_none()
        {
            tenant_id = claims.tenant_id;
        }
        let mut config = TransportConfig::with_tokens(root, tokens);
        config.cloud = self.cloud;
        config.concurrency = usize::from(self.concurrency);
        let ru_per_10s = self.ru_quota.unwrap_or_else(|| ru_tier(tenant_size));
        config.ru_bucket = BucketShape::new(ru_per_10s, Duration::from_secs(10));
        config.write_bucket = BucketShape::new(self.write_quota, Duration::from_secs(150));
        config.read_rate = self.read_rate;
        config.write_rate = self.write_rate;
        config.batch = !self.no_batch;
        config.low_priority = self.priority == Priority::Low;
        config.max_attempts = self.max_attempts;
        config.max_throttled = self.max_attempts.saturating_mul(4);
        config.timeout = Duration::from_secs(self.timeout);
        config.max_pause = Duration::from_secs(self.max_pause);
        let transport = Transport::new(config).map_err(|error| match error {
            BuildError::Http(error) => miette!("cannot build the HTTP client: {error}"),
        })?;
        Ok(Connection {
            client: GraphClient::new(transport),
            tenant_id,
            concurrency: usize::from(self.concurrency),
            emulator,
            auth,
        })
    }
}

/// The Graph root (`scheme://host[:port]`) from `--graph-url`, or why it is refused:
/// - not a URL: the parser's reason, never the text (it may hold a password);
/// - credentials in it (`user:pw@`): refused, shown with the credentials masked;
/// - plain http to anything but a loopback address: the token would travel unencrypted;
/// - a path other than `/` or `/beta` (`/v1.0`, `/beta/users`): mfactl adds `/beta/...`
///   itself, so a path would silently address nothing; a query or fragment likewise.
fn graph_root(text: &str) -> miette::Result<String> {
    let url = url::Url::parse(text.trim()).map_err(|error| {
        miette!(
            help = "give the Graph root, e.g. https://graph.microsoft.com",
            "--graph-url is not a valid URL ({error})"
        )
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        // Not echoed: `user:password@host` without a scheme parses as scheme `user`.
        return Err(miette!(
            help = "give the Graph root, e.g. https://graph.microsoft.com",
            "--graph-url must start with https:// (or http:// for a loopback address)"
        ));
    }
    let mut shown = url.clone();
    if !url.username().is_empty() || url.password().is_some() {
        let _ = shown.set_username("***");
        let _ = shown.set_password(None);
        return Err(miette!(
            help = "the access token comes from MFACTL_ACCESS_TOKEN; the URL must not carry \
                    credentials",
            "--graph-url {shown} contains a user name or password; refused (nothing was sent)"
        ));
    }
    let shown = mfactl::text::printable(shown.as_str()).into_owned();
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(miette!(
                help = "use https, or http only to a loopback address such as the emulator's",
                "--graph-url {shown} would send the access token unencrypted"
            ));
        }
    }
    let path = url.path().trim_end_matches('/');
    if !(path.is_empty() || path.eq_ignore_ascii_case("/beta"))
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(miette!(
            help = "give the Graph root without a version or path, e.g. \
                    https://graph.microsoft.com: mfactl adds /beta/... itself",
            "--graph-url {shown} has a path, query or fragment; it would address nothing"
        ));
    }
    let host = url.host_str().unwrap_or_default();
    Ok(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// One line on stderr about the traffic of the run.
pub fn traffic_line(client: &GraphClient, elapsed: Duration) -> String {
    let s = client.transport().stats();
    let mut line = format!(
        "Graph: {} requests in {:.2} s ({} reads, {} writes; {} retries, {} throttled (429), {} server errors, {} connection errors)",
        s.attempts,
        elapsed.as_secs_f64(),
        s.reads,
        s.writes,
        s.retries,
        s.throttled,
        s.server_errors,
        s.transport_errors
    );
    if s.pauses > 0 {
        line.push_str(&format!(
            "; paused {} {} for {:.1} s in all (longest {:.1} s)",
            s.pauses,
            if s.pauses == 1 { "time" } else { "times" },
            s.paused_ms as f64 / 1000.0,
            s.longest_pause_ms as f64 / 1000.0
        ));
    }
    if s.outages > 0 {
        line.push_str(&format!("; lost the connection {} times", s.outages));
    }
    if s.settled_by_read > 0 {
        line.push_str(&format!(
            "; {} writes confirmed by reading back (their answer was lost)",
            s.settled_by_read
        ));
    }
    if s.renewals > 0 {
        line.push_str(&format!(
            "; {} {} again with a renewed token after a 401",
            s.renewals,
            if s.renewals == 1 {
                "request sent"
            } else {
                "requests sent"
            }
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_roots_are_reduced_to_scheme_host_and_port() {
        for (given, root) in [
            ("https://graph.microsoft.com", "https://graph.microsoft.com"),
            (
                "https://graph.microsoft.com/",
                "https://graph.microsoft.com",
            ),
            (
                "https://graph.microsoft.com/beta",
                "https://graph.microsoft.com",
            ),
            (
                "https://graph.microsoft.com/beta/",
                "https://graph.microsoft.com",
            ),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://localhost:8080/beta", "http://localhost:8080"),
            ("http://[::1]:9000", "http://[::1]:9000"),
        ] {
            assert_eq!(graph_root(given).unwrap(), root, "{given}");
        }
    }

    #[test]
    fn graph_roots_with_paths_credentials_or_plain_http_are_refused() {
        for (given, says) in [
            ("https://graph.microsoft.com/v1.0", "has a path"),
            ("https://graph.microsoft.com/beta/users", "has a path"),
            ("https://graph.microsoft.com/?x=1", "query"),
            ("http://graph.microsoft.com", "unencrypted"),
            ("http://10.0.0.5:8080", "unencrypted"),
            ("graph.microsoft.com", "not a valid URL"),
        ] {
            let error = graph_root(given).unwrap_err().to_string();
            assert!(error.contains(says), "{given}: {error}");
        }
        let error = graph_root("https://admin:hunter2@graph.microsoft.com")
            .unwrap_err()
            .to_string();
        assert!(error.contains("user name or password"), "{error}");
        assert!(
            !error.contains("hunter2") && !error.contains("admin"),
            "{error}"
        );
        let error = graph_root("admin:hunter2@graph.microsoft.com")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        let error = graph_root("https://:hunter2@graph.microsoft.com")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }
}
