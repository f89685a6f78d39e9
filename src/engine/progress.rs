//! Progress reporting for long runs, as tracing spans that tracing-indicatif draws as bars on a
//! terminal (and nothing at all elsewhere: bars only on a terminal, logs never clobbered).

use tracing::Span;

use crate::graph::TransportStats;
use tracing_indicatif::span_ext::IndicatifSpanExt;
use tracing_indicatif::style::ProgressStyle;

/// The target progress spans are created under; the CLI draws bars only for it.
pub const PROGRESS_TARGET: &str = "mfactl::progress";

/// One progress bar (fetch or apply). Without the indicatif layer installed it does nothing.
#[derive(Debug)]
pub struct Progress {
    span: Span,
}

impl Progress {
    /// A bar for `total` items, labelled `label` (e.g. "fetch", "apply").
    pub fn new(label: &'static str, total: u64) -> Progress {
        let span = match label {
            "apply" => tracing::info_span!(target: PROGRESS_TARGET, "apply"),
            _ => tracing::info_span!(target: PROGRESS_TARGET, "fetch"),
        };
        let style = ProgressStyle::with_template(
            "{span_name:>6} [{bar:40}] {pos}/{len} users, {elapsed} elapsed, eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> ");
        span.pb_set_style(&style);
        span.pb_set_length(total);
        span.pb_start();
        Progress { span }
    }

    /// Counts `n` more users done.
    pub fn inc(&self, n: u64) {
        self.span.pb_inc(n);
    }

    /// Sets the bar's trailing message (e.g. "3 throttled").
    pub fn message(&self, text: &str) {
        self.span.pb_set_message(text);
    }

    /// Counts one more user done and shows the transport's trouble so far, if any.
    pub fn user_done(&self, stats: &TransportStats) {
        self.inc(1);
        if stats.throttled > 0 || stats.retries > 0 {
            self.message(&format!(
                "({} throttled, {} retries)",
                stats.throttled, stats.retries
            ));
        }
    }
}
