//! The flags commands share, and their checks before anything is sent: where Graph is and how
//! hard to drive it ([`GraphArgs`]), how to read the manifest ([`ManifestArgs`]), how the text
//! plan reads ([`TextArgs`]), how live values are read ([`ReadArgs`]), how to print
//! ([`OutputFormat`]). What they connect to is `connection`'s; sign-in's flags are `sign_in`'s.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use miette::miette;

use super::sign_in::AuthArgs;
use mfactl::engine::{self, preflight};
use mfactl::graph::auth::TokenProvider;
use mfactl::graph::{BucketShape, Cloud, TransportConfig, ru_tier};
use mfactl::manifest::{self, Manifest};
use mfactl::plan::saved;
use mfactl::report;
use mfactl_emulator::{EmulatorConfig, Tenant};

/// The token `--emulate` sends to an emulator without an `auth:` section (a real token is
/// never sent there).
pub const EMULATOR_TOKEN_ENV: &str = "MFACTL_EMULATOR_TOKEN";

/// Where plan, apply and show take the token from; shown in their `--help`.
pub const TOKEN_HELP: &str = "\
Sign-in (docs/sign-in.md): the first source configured, or the one --auth names:
  token        MFACTL_ACCESS_TOKEN, or --token-file FILE: a bearer token used as is
  secret       AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET
  certificate  ... + AZURE_CLIENT_CERTIFICATE_PATH (PEM, or .pfx with _PASSWORD)
  workload     ... + AZURE_FEDERATED_TOKEN_FILE (GitHub Actions, Kubernetes)
  managed      IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service, Container Apps, Automation); --auth managed
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

/// One manifest across many tenants (`plan|apply MANIFEST --tenants TENANTS.yaml`); shared by
/// plan and apply.
#[derive(Clone, Debug, Args)]
pub struct TenantsArgs {
    /// Plan (apply) the manifest in every tenant this file lists (tenant ids or verified
    /// domains, each with optional exclude:, protect:, maxChanges:), signing in to each as one
    /// multi-tenant app (--auth secret, certificate or workload). The tenants run side by side;
    /// one that fails fails alone. Each tenant's files go to DIR/<tenant>/, a roll-up to
    /// DIR/summary.{md,json,html}; the exit code is the most severe of the tenants'.
    #[arg(long, value_name = "TENANTS.yaml", conflicts_with_all = ["emulate", "tenant"])]
    pub tenants: Option<PathBuf>,
    /// With --tenants: the folder for the tenants' files and the roll-up (default: a new
    /// mfactl-plan-<time> or mfactl-apply-<time> folder here). Created readable by you only.
    #[arg(long, value_name = "DIR", requires = "tenants")]
    pub out_dir: Option<PathBuf>,
    /// With --tenants: how many tenants are planned (applied) at once.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub max_tenants_in_flight: u16,
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
    pub fn emulator_config(&self) -> EmulatorConfig {
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
    pub fn size_of(manifest: &Manifest) -> u64 {
        if manifest.selectors.is_empty() {
            manifest.users.len() as u64
        } else {
            LARGE_TENANT
        }
    }

    /// Whether the cloud serves `/authentication/methods` (the China cloud does not).
    pub fn methods_readable(&self) -> preflight::MethodsReadable {
        preflight::MethodsReadable(self.cloud.serves_authentication_methods())
    }

    /// The transport's configuration from the flags: a Graph at `root`, tokens from `tokens`,
    /// the throttling tier of a tenant of `tenant_size` users unless `--ru-quota` says.
    pub fn transport_config(
        &self,
        root: String,
        tokens: Arc<TokenProvider>,
        tenant_size: u64,
    ) -> TransportConfig {
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
        config
    }
}

/// How the text plan reads; shared by plan and apply.
#[derive(Debug, Args)]
pub struct TextArgs {
    /// Give each blocked user's whole reason and advice, not only the grouped one.
    #[arg(long)]
    pub detail: bool,
}

impl TextArgs {
    /// The layout for stdout: colours on a terminal unless `NO_COLOR` is set (no-color.org) or
    /// the terminal cannot show them (an old Windows console).
    pub fn options(&self, summary_only: bool, to_terminal: bool) -> report::TextOptions {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        report::TextOptions {
            detail: self.detail,
            summary_only,
            color: to_terminal && !no_color && super::terminal::ansi_colours(),
        }
    }
}

/// How live values are read; shared by plan and apply (a manifest's).
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// How live values are read. auto (the default) picks, per run, the cheapest sound way
    /// from Graph's quotas and the manifest's size, and says which and why on stderr; bulk uses
    /// every bulk read that applies (the users listing for perUserMfaState, the registration
    /// report for sign-in preferences and registered methods, one GET of
    /// /users/{id}/authentication for both endpoints); per-user reads each endpoint of each
    /// user. A bulk value is a hint: what it cannot give is read per user, and apply reads
    /// every endpoint again before writing it.
    #[arg(long, value_enum, value_name = "PATH")]
    pub read_path: Option<ReadPathArg>,
    /// Rows of the registration report last updated longer ago than this are not used: those
    /// users are read per user (e.g. 24h, 90m, 2d; default 24h).
    #[arg(long, value_name = "AGE", value_parser = saved::parse_age)]
    pub max_report_age: Option<Duration>,
}

/// `--read-path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReadPathArg {
    Auto,
    Bulk,
    PerUser,
}

impl ReadPathArg {
    /// The engine's read path.
    pub fn path(self) -> engine::ReadPath {
        match self {
            ReadPathArg::Auto => engine::ReadPath::Auto,
            ReadPathArg::Bulk => engine::ReadPath::Bulk,
            ReadPathArg::PerUser => engine::ReadPath::PerUser,
        }
    }
}

impl ReadArgs {
    /// The engine's read options; `tenant_size` is `--tenant-size`.
    pub fn options(&self, tenant_size: Option<u64>) -> engine::ReadOptions {
        let defaults = engine::ReadOptions::default();
        engine::ReadOptions {
            path: self.read_path.unwrap_or(ReadPathArg::Auto).path(),
            tenant_size,
            max_report_age: self.max_report_age.unwrap_or(defaults.max_report_age),
        }
    }

    /// Whether a flag of this group was given (a saved plan takes none).
    pub fn given(&self) -> bool {
        self.read_path.is_some() || self.max_report_age.is_some()
    }
}

/// How to read the manifest; shared by plan, apply, validate and the sign-in commands' `--for`.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// CSV: skip columns mfactl does not know (an export's displayName, mail, department...)
    /// instead of reporting them; a misspelt known column is still reported. No effect on YAML.
    #[arg(long)]
    pub ignore_unknown_columns: bool,
    /// Manage the tenant's authentication methods policy from this YAML file's `policy:`
    /// section (for a CSV manifest, which has no room for one; a YAML manifest may hold it).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Disable per-user MFA even for users no Conditional Access policy is known to require
    /// MFA for (not covered, or coverage unknown); without it their change is held. The plan,
    /// journal and report say so for each. Same as the manifest's `allowMfaGap: true`.
    #[arg(long)]
    pub allow_mfa_gap: bool,
}

impl ManifestArgs {
    pub fn options(&self) -> manifest::LoadOptions {
        manifest::LoadOptions {
            ignore_unknown_columns: self.ignore_unknown_columns,
        }
    }
}

/// Reads and validates a manifest (and the `--policy` file); every problem is reported and
/// nothing is sent.
pub fn load_manifest(path: &std::path::Path, reading: &ManifestArgs) -> miette::Result<Manifest> {
    let mut loaded = manifest::load_with(path, &reading.options()).map_err(miette::Report::new)?;
    if let Some(policy_path) = &reading.policy {
        let policy = manifest::load_policy(policy_path).map_err(miette::Report::new)?;
        if loaded.policy.is_some() {
            return Err(miette::miette!(
                help = "keep one policy section: in the manifest or in the --policy file",
                "{} has a policy: section and --policy {} names another",
                path.display(),
                policy_path.display()
            ));
        }
        loaded.policy = Some(policy);
    }
    loaded.allow_mfa_gap |= reading.allow_mfa_gap;
    Ok(loaded)
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
