//! `mfactl emulator serve|generate`: wiring only; the emulator and the generator live in
//! `mfactl_emulator`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use miette::{IntoDiagnostic, WrapErr, miette};

use super::exit;
use mfactl::text::thousands;
use mfactl_emulator::tenant::MAX_USERS;
use mfactl_emulator::{Emulator, EmulatorConfig, Refusals, Tenant};

#[derive(Debug, Subcommand)]
pub enum EmulatorCommand {
    /// Serve a tenant file as Microsoft Graph until interrupted.
    ///
    /// The emulator keeps its state in memory only: PATCHes change its copy of the tenant, never
    /// the file, and are lost when it stops. `GET /_emulator/tenant` returns the current state in
    /// the tenant file's shape (save it to keep it); `GET /_emulator/stats` counts what it answered.
    Serve(ServeArgs),
    /// Write a deterministic synthetic tenant file (YAML) on stdout.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The tenant file to serve (read once at start, never written). Give it several times to
    /// serve several tenants on one port: a Graph call goes to the tenant its token's `tid`
    /// names, a sign-in request to the tenant its URL names.
    #[arg(long, value_name = "TENANT.yaml", required = true)]
    pub tenant: Vec<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the address is printed). 0.0.0.0 or [::]
    /// listens on every interface: anyone who can reach this machine may then read and change the
    /// tenant, with any token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Added latency per request in milliseconds: a fixed MIN or a uniform MIN-MAX.
    #[arg(long, value_name = "MIN[-MAX]", value_parser = parse_latency)]
    pub latency_ms: Option<(Duration, Duration)>,
    /// Resource units per 10 s (default: Graph's tier for the tenant's size).
    #[arg(long, value_name = "N")]
    pub ru_per_10s: Option<u32>,
    /// Writes per 150 s.
    #[arg(long, value_name = "N", default_value_t = 3000)]
    pub writes_per_150s: u32,
    /// Answer every request without throttling.
    #[arg(long)]
    pub no_throttle: bool,
    /// Probability (0 to 1) of answering a request with a 503.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_rate: f64,
    /// Probability (0 to 1) of answering a PATCH with a 503, on top of --fail-rate.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub write_fail_rate: f64,
    /// Probability (0 to 1) of answering a whole $batch request with a 503 before any item runs
    /// (--fail-rate and --write-fail-rate apply to each item, as if it were sent alone).
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub batch_fail_rate: f64,
    /// Give GETs of /authentication/methods their own limit of N per 10 s (Graph's identity
    /// reports limit is 5), on top of the resource units (default: resource units only).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub methods_per_10s: Option<u32>,
    /// Refuse a bulk read, to try a client's fallback to per-user reads (repeatable):
    /// per-user-mfa-state-select (400 for $select=perUserMfaState on /users),
    /// registration-report (403, as for a tenant without Entra ID P1/P2), authentication
    /// (400 for GET /users/{id}/authentication).
    #[arg(long, value_enum, value_name = "READ")]
    pub refuse: Vec<Refuse>,
    /// Serve the registration report as the tenant was at start, dated this many seconds
    /// before and never refreshed (default: the current state, dated now).
    #[arg(long, value_name = "SECONDS")]
    pub report_age: Option<u64>,
    /// Seed for latency and failure randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Answer as this cloud's Graph: `china` serves no /authentication/methods (as the China
    /// cloud, operated by 21Vianet).
    #[arg(long, value_enum, default_value = "global")]
    pub cloud: mfactl::graph::Cloud,
    /// Each application's resource units per 20 s across every tenant served (Graph: 150,000).
    #[arg(long, value_name = "N", default_value_t = mfactl_emulator::throttle::APP_RU_PER_20S, value_parser = clap::value_parser!(u32).range(1..))]
    pub app_ru_per_20s: u32,
    /// Each application's writes per 5 minutes across every tenant served (Graph: 70,000).
    #[arg(long = "app-writes-per-5min", value_name = "N", default_value_t = mfactl_emulator::throttle::APP_WRITES_PER_5MIN, value_parser = clap::value_parser!(u32).range(1..))]
    pub app_writes_per_5min: u32,
}

/// A bulk read `--refuse` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Refuse {
    PerUserMfaStateSelect,
    RegistrationReport,
    Authentication,
}

impl Refuse {
    /// The emulator's switches for `refuse`.
    pub fn switches(refuse: &[Refuse]) -> Refusals {
        Refusals {
            per_user_mfa_state_select: refuse.contains(&Refuse::PerUserMfaStateSelect),
            registration_report: refuse.contains(&Refuse::RegistrationReport),
            authentication: refuse.contains(&Refuse::Authentication),
        }
    }
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of users (0 to 10,000,000).
    #[arg(long, value_name = "N", value_parser = parse_user_count)]
    pub users: usize,
    /// Seed: the same seed and size always give the same tenant.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub async fn run(command: EmulatorCommand) -> miette::Result<u8> {
    match command {
        EmulatorCommand::Generate(args) => generate(&args),
        EmulatorCommand::Serve(args) => serve(args).await,
    }
}

fn generate(args: &GenerateArgs) -> miette::Result<u8> {
    if args.users > MAX_USERS {
        let most = thousands(MAX_USERS as u64);
        return Err(miette!(
            help = format!(
                "ask for at most {most}: the emulator holds a tenant in memory (about 0.5 KB a \
                 user), and no Entra tenant mfactl is meant for is larger"
            ),
            "--users asks for more than {most} users, the most emulator generate writes"
        ));
    }
    let tenant = Tenant::generate(args.users, args.seed);
    tenant
        .write_yaml(std::io::stdout().lock())
        .into_diagnostic()
        .wrap_err("cannot write the tenant to stdout")?;
    Ok(exit::OK)
}

async fn serve(args: ServeArgs) -> miette::Result<u8> {
    // Every file is read (and every problem found) before the port is opened.
    let tenants = args
        .tenant
        .iter()
        .map(|path| Tenant::load(path).map_err(|e| miette!("{e}")))
        .collect::<miette::Result<Vec<_>>>()?;
    let users: usize = tenants.iter().map(|tenant| tenant.users.len()).sum();
    let count = tenants.len();
    let config = EmulatorConfig {
        latency: args.latency_ms,
        throttle: !args.no_throttle,
        ru_per_10s: args.ru_per_10s,
        writes_per_150s: args.writes_per_150s,
        fail_rate: args.fail_rate,
        write_fail_rate: args.write_fail_rate,
        batch_fail_rate: args.batch_fail_rate,
        methods_per_10s: args.methods_per_10s,
        refuse: Refuse::switches(&args.refuse),
        report_age: args.report_age.map(Duration::from_secs),
        seed: args.seed,
        cloud: args.cloud,
        app_ru_per_20s: args.app_ru_per_20s,
        app_writes_per_300s: args.app_writes_per_5min,
    };
    let emulator = Emulator::start_tenants(tenants, config, args.listen)
        .await
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot serve on {}", args.listen))?;
    println!(
        "{}",
        serving_line(users, count, emulator.addr(), &emulator.url())
    );
    std::io::stdout().flush().into_diagnostic()?;
    shutdown_signal().await;
    emulator.shutdown().await;
    Ok(exit::OK)
}

/// The line scripts read, in one of two shapes:
///
/// ```text
/// mfactl emulator serving 40 users on http://127.0.0.1:8080 (Ctrl-C to stop)
/// mfactl emulator serving 40 users on http://0.0.0.0:8080 (all interfaces; from this machine: http://127.0.0.1:8080; Ctrl-C to stop)
/// mfactl emulator serving 120 users in 3 tenants on http://127.0.0.1:8080 (Ctrl-C to stop)
/// ```
///
/// The address really bound, as a URL, follows the first "on"; the line's last URL is always
/// the one a client on this machine uses (a wildcard address is no address to connect to, and
/// `--graph-url` refuses it as not loopback).
fn serving_line(users: usize, tenants: usize, bound: SocketAddr, local_url: &str) -> String {
    let within = if tenants > 1 {
        format!(" in {tenants} tenants")
    } else {
        String::new()
    };
    let on = format!("mfactl emulator serving {users} users{within} on http://{bound}");
    if bound.ip().is_unspecified() {
        format!("{on} (all interfaces; from this machine: {local_url}; Ctrl-C to stop)")
    } else {
        format!("{on} (Ctrl-C to stop)")
    }
}

/// `--users`: a whole number; one too large for any integer type counts as "too many" so that
/// it gets the same explanation as any other size over the limit, not a parse error.
fn parse_user_count(text: &str) -> Result<usize, String> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{text}' is not a whole number of users"));
    }
    Ok(text.parse::<usize>().unwrap_or(usize::MAX))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    // A Windows console sends Ctrl-Break as well as Ctrl-C (and a service manager sends it).
    #[cfg(windows)]
    {
        let mut ctrl_break = tokio::signal::windows::ctrl_break().expect("Ctrl-Break handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = ctrl_break.recv() => {}
        }
    }
}

fn parse_latency(text: &str) -> Result<(Duration, Duration), String> {
    let parse = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("'{s}' is not a whole number of milliseconds"))
    };
    let (min, max) = match text.split_once('-') {
        Some((min, max)) => (parse(min)?, parse(max)?),
        None => {
            let v = parse(text)?;
            (v, v)
        }
    };
    if min > max {
        return Err(format!("MIN ({min}) is larger than MAX ({max})"));
    }
    Ok((Duration::from_millis(min), Duration::from_millis(max)))
}

fn parse_probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("'{text}' is not a probability between 0 and 1")),
    }
}
