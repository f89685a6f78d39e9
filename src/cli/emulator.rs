//! `mfactl emulator serve|generate`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use miette::{IntoDiagnostic, WrapErr, miette};

use super::exit;
use crate::emulator::{Emulator, EmulatorConfig, Tenant};

#[derive(Debug, Subcommand)]
pub enum EmulatorCommand {
    /// Serve a tenant file as Microsoft Graph on a loopback address until interrupted.
    Serve(ServeArgs),
    /// Write a deterministic synthetic tenant file (YAML) on stdout.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The tenant file to serve.
    #[arg(long, value_name = "TENANT.yaml")]
    pub tenant: PathBuf,
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
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
    /// Seed for latency and failure randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of users.
    #[arg(long)]
    pub users: usize,
    /// Seed: the same seed and size always give the same tenant.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub async fn run(command: EmulatorCommand) -> miette::Result<u8> {
    match command {
        EmulatorCommand::Generate(args) => {
            let tenant = Tenant::generate(args.users, args.seed);
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(tenant.to_yaml().as_bytes())
                .into_diagnostic()?;
            Ok(exit::OK)
        }
        EmulatorCommand::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> miette::Result<u8> {
    let tenant = Tenant::load(&args.tenant).map_err(|e| miette!("{e}"))?;
    let users = tenant.users.len();
    let config = EmulatorConfig {
        latency: args.latency_ms,
        throttle: !args.no_throttle,
        ru_per_10s: args.ru_per_10s,
        writes_per_150s: args.writes_per_150s,
        fail_rate: args.fail_rate,
        write_fail_rate: args.write_fail_rate,
        batch_fail_rate: args.batch_fail_rate,
        methods_per_10s: args.methods_per_10s,
        seed: args.seed,
    };
    let emulator = Emulator::start(tenant, config, args.listen)
        .await
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "mfactl emulator serving {users} users on {} (Ctrl-C to stop)",
        emulator.url()
    );
    std::io::stdout().flush().into_diagnostic()?;
    shutdown_signal().await;
    emulator.shutdown().await;
    Ok(exit::OK)
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
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
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
