//! Logs and progress bars, both on stderr. Bars only on a terminal, drawn by tracing-indicatif so
//! log lines never clobber them.

use std::io::IsTerminal;

use tracing_indicatif::IndicatifLayer;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use mfactl::engine::progress_target;

/// Installs the subscriber: progress bars only when stderr is a terminal and logs are text.
pub fn init(verbose: u8, json: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("MFACTL_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},hyper=warn,reqwest=warn,h2=warn")));
    let bars = std::io::stderr().is_terminal() && !json;
    if bars {
        let indicatif: IndicatifLayer<Registry> = IndicatifLayer::new();
        let writer = indicatif.get_stderr_writer();
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(super::terminal::ansi_colours())
            .with_target(false)
            .with_filter(filter);
        let indicatif = indicatif.with_filter(filter_fn(|meta| meta.target() == progress_target()));
        let _ = tracing_subscriber::registry()
            .with(indicatif)
            .with(fmt)
            .try_init();
    } else if json {
        let fmt = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter);
        let _ = tracing_subscriber::registry().with(fmt).try_init();
    } else {
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_target(false)
            .with_filter(filter);
        let _ = tracing_subscriber::registry().with(fmt).try_init();
    }
}
