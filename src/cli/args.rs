//! Flags shared by plan and apply, and their check into a run configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use miette::{IntoDiagnostic, WrapErr, miette};
use secrecy::SecretString;

use crate::emulator::{Emulator, EmulatorConfig, Tenant};
use crate::graph::{Cloud, GraphClient, Transport, TransportConfig};

/// The environment variable holding a bearer token to use as is.
pub const TOKEN_ENV: &str = "MFACTL_ACCESS_TOKEN";

/// How plan and apply print their document on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A Terraform-like text plan.
    #[default]
    Text,
    /// The plan document of design.md.
    Json,
}

/// Where Graph is and how hard to drive it.
#[derive(Clone, Debug, Args)]
pub struct GraphArgs {
    /// Graph root without version, e.g. http://127.0.0.1:8080 (default: the cloud's host).
    #[arg(long, env = "MFACTL_GRAPH_URL", value_name = "URL")]
    pub graph_url: Option<url::Url>,
    /// The Microsoft cloud whose Graph to use.
    #[arg(long, value_enum, default_value_t = Cloud::Global, env = "MFACTL_CLOUD")]
    pub cloud: Cloud,
    /// Run against an in-process Graph emulator seeded from this tenant file.
    #[arg(long, value_name = "TENANT.yaml", conflicts_with = "graph_url")]
    pub emulate: Option<PathBuf>,
    /// Graph requests in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Cap on reads per second (Graph allows 8,000 resource units per 10 s at most).
    #[arg(long, default_value_t = 800, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub read_rate: u32,
    /// Cap on writes per second (Graph allows 3,000 writes per 150 s per app and tenant).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub write_rate: u32,
    /// Times one request is sent at most on 5xx, timeouts and connection errors (429s are
    /// retried after Retry-After up to 4 times as often).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub max_attempts: u32,
    /// Seconds before one attempt times out.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,
}

/// A connected Graph: the client, and the emulator it talks to when `--emulate` was given
/// (kept alive for the run).
pub struct Connection {
    pub client: GraphClient,
    /// The tenant, when known without asking Graph (the emulated tenant file's id).
    pub tenant_id: Option<String>,
    pub concurrency: usize,
    pub emulator: Option<Emulator>,
}

impl GraphArgs {
    /// Loads the tenant file first when emulating (so its errors come before anything else).
    pub fn load_emulated_tenant(&self) -> miette::Result<Option<Tenant>> {
        match &self.emulate {
            Some(path) => Tenant::load(path).map(Some).map_err(|e| miette!("{e}")),
            None => Ok(None),
        }
    }

    /// Starts the emulator if asked, reads the token, builds the transport.
    pub async fn connect(&self, tenant: Option<Tenant>) -> miette::Result<Connection> {
        let tenant_id = tenant.as_ref().map(|t| t.tenant_id.clone());
        let (root, token, emulator) = match tenant {
            Some(tenant) => {
                let listen = "127.0.0.1:0".parse().expect("valid address");
                let emulator = Emulator::start(tenant, EmulatorConfig::default(), listen)
                    .await
                    .into_diagnostic()
                    .wrap_err("cannot start the in-process emulator")?;
                // The emulator takes any bearer token; a real one in the environment is never
                // sent to it. MFACTL_EMULATOR_TOKEN picks the emulator's answers to bad tokens.
                let token = std::env::var("MFACTL_EMULATOR_TOKEN")
                    .ok()
                    .filter(|t| !t.trim().is_empty())
                    .map_or_else(|| SecretString::from("emulator"), SecretString::from);
                (emulator.url(), token, Some(emulator))
            }
            None => {
                let token = read_token().ok_or_else(|| {
                    miette!(
                        help = "export a Graph access token for the tenant, e.g. from \
                                `az account get-access-token --resource-type ms-graph`, or use \
                                --emulate TENANT.yaml to run against the built-in emulator",
                        "no access token: {TOKEN_ENV} is not set"
                    )
                })?;
                let root = match &self.graph_url {
                    Some(url) => {
                        check_graph_url(url)?;
                        url.as_str().trim_end_matches('/').to_owned()
                    }
                    None => self.cloud.graph_root().to_owned(),
                };
                (root, token, None)
            }
        };
        let mut config = TransportConfig::new(root, token);
        config.concurrency = usize::from(self.concurrency);
        config.read_rate = self.read_rate;
        config.write_rate = self.write_rate;
        config.max_attempts = self.max_attempts;
        config.max_throttled = self.max_attempts.saturating_mul(4);
        config.timeout = Duration::from_secs(self.timeout);
        let transport = Transport::new(config)
            .into_diagnostic()
            .wrap_err("cannot build the HTTP client")?;
        Ok(Connection {
            client: GraphClient::new(transport),
            tenant_id,
            concurrency: usize::from(self.concurrency),
            emulator,
        })
    }
}

/// The token goes only over https, or over http to this machine (the emulator).
fn check_graph_url(url: &url::Url) -> miette::Result<()> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(miette!(
            help = "use https, or http only to a loopback address such as the emulator's",
            "--graph-url {url} would send the access token unencrypted"
        )),
    }
}

/// The bearer token from the environment, never from a command-line argument.
fn read_token() -> Option<SecretString> {
    std::env::var(TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .map(SecretString::from)
}

/// One line on stderr about the traffic of the run.
pub fn traffic_line(client: &GraphClient, elapsed: Duration) -> String {
    let s = client.transport().stats();
    format!(
        "Graph: {} requests in {:.2} s ({} reads, {} writes; {} retries, {} throttled (429), {} server errors, {} connection errors)",
        s.attempts,
        elapsed.as_secs_f64(),
        s.reads,
        s.writes,
        s.retries,
        s.throttled,
        s.server_errors,
        s.transport_errors
    )
}
