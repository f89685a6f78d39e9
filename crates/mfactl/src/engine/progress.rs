//! Progress reporting for long runs, as tracing spans that tracing-indicatif draws as bars on a
//! terminal (and nothing at all elsewhere: bars only on a terminal, logs never clobbered).

use tracing::Span;

use std::time::Duration;

use crate::graph::TransportStats;
use crate::plan::estimate::{self, Estimate};
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
            "export" => tracing::info_span!(target: PROGRESS_TARGET, "export"),
            _ => tracing::info_span!(target: PROGRESS_TARGET, "fetch"),
        };
        // The apply bar's ETA is computed from Graph's quotas (see `Progress::apply_step`), not
        // from the recent average: a run that spent the write burst slows down at a known rate.
        let template = match label {
            "apply" => "{span_name:>6} [{bar:40}] {pos}/{len} users, {elapsed} elapsed{msg}",
            _ => "{span_name:>6} [{bar:40}] {pos}/{len} users, {elapsed} elapsed, eta {eta} {msg}",
        };
        let style = ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> ");
        span.pb_set_style(&style);
        span.pb_set_length(total);
        span.pb_start();
        Progress { span }
    }

    /// Counts `n` more users to do, for a run that learns its total as it goes (an export
    /// lists the tenant a page at a time).
    pub fn add_total(&self, n: u64) {
        self.span.pb_inc_length(n);
    }

    /// Counts `n` more users done.
    pub fn inc(&self, n: u64) {
        self.span.pb_inc(n);
    }

    /// Sets the bar's trailing message (e.g. "3 throttled").
    pub fn message(&self, text: &str) {
        self.span.pb_set_message(text);
    }

    /// Counts one more user done and shows the ETA from Graph's quotas for the writes still to
    /// make, a 429 pause under way, and the trouble so far.
    pub fn apply_step(
        &self,
        remaining: &Estimate,
        paused: Option<Duration>,
        stats: &TransportStats,
    ) {
        self.inc(1);
        self.message(&apply_message(remaining, paused, stats));
    }
}

/// `, eta 3 min (waiting on a 429 for 12 s; 40 throttled, 3 retries)`.
fn apply_message(remaining: &Estimate, paused: Option<Duration>, stats: &TransportStats) -> String {
    let mut text = format!(", eta {}", estimate::duration(remaining.seconds));
    let mut notes = Vec::new();
    if let Some(paused) = paused.filter(|p| !p.is_zero()) {
        notes.push(format!(
            "waiting on a 429 for {}",
            estimate::duration(paused.as_secs_f64())
        ));
    }
    if stats.throttled > 0 || stats.retries > 0 {
        notes.push(format!(
            "{} throttled, {} retries",
            stats.throttled, stats.retries
        ));
    }
    if !notes.is_empty() {
        text.push_str(&format!(" ({})", notes.join("; ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::estimate::{Quotas, estimate};

    #[test]
    fn the_apply_eta_comes_from_the_quotas_and_says_when_a_429_holds_it() {
        let quotas = Quotas::graph(0.1, 256.0);
        let remaining = estimate(4200, &quotas);
        let stats = TransportStats {
            throttled: 4,
            retries: 5,
            ..TransportStats::default()
        };
        assert_eq!(
            apply_message(&remaining, Some(Duration::from_secs(12)), &stats),
            ", eta 60 s (waiting on a 429 for 12 s; 4 throttled, 5 retries)"
        );
        assert_eq!(
            apply_message(&remaining, None, &TransportStats::default()),
            ", eta 60 s"
        );
    }
}
