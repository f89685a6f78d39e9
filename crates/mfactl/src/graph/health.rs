//! Whether Graph's host can be reached at all, decided once for the whole run.
//!
//! Retrying each request on its own is right for a lost packet and wrong for a dead network:
//! with no DNS, a refused port or a host that never answers, every user would spend all its
//! attempts (minutes each) on the same failure, and a plan would end with every user unread.
//! So connection failures (no HTTP answer at all) are also counted here, run-wide:
//!
//! - **First wave.** Until the first HTTP answer of the run, a few failures of the same kind in
//!   a row (DNS, refused, TLS, timeout, ...) mean the host cannot be reached: the run stops with
//!   one message naming the host and the cause ([`Unreachable`]), within seconds (or one
//!   `--timeout` for a host that never answers).
//! - **Outage.** Later, a burst of connection failures with no answer in between means the
//!   network or Graph went away mid-run. Requests stop going out and stop spending their
//!   attempts: one probe at a time goes out (1 s, 2 s, ... 30 s apart) and the first HTTP
//!   answer, of any status, ends the outage for everyone. An outage longer than the limit stops
//!   the run.
//!
//! Any HTTP answer (even a 429 or a 500) proves the host is there and resets the count. Time is
//! `tokio::time`, so the rules are tested under a paused clock.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// What kind of connection failure a request met (no HTTP answer came).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The host name did not resolve.
    Dns,
    /// Nothing listens on the port.
    Refused,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// No answer within the timeout (connecting or waiting for the response).
    Timeout,
    /// The connection was closed or reset before an answer came.
    Closed,
    /// Anything else below HTTP.
    Other,
}

impl FailureKind {
    /// The cause as people say it.
    pub fn describe(self) -> &'static str {
        match self {
            FailureKind::Dns => "the host name does not resolve (DNS lookup failed)",
            FailureKind::Refused => "the connection was refused (nothing listens on that port)",
            FailureKind::Tls => "the TLS handshake failed",
            FailureKind::Timeout => "no answer before the timeout",
            FailureKind::Closed => "the connection was closed before an answer came",
            FailureKind::Other => "the connection failed",
        }
    }

    /// Classifies a failure from whether it happened while connecting, whether it timed out,
    /// and its text with causes (reqwest and hyper expose no finer kind).
    pub fn classify(is_connect: bool, is_timeout: bool, text: &str) -> FailureKind {
        let text = text.to_ascii_lowercase();
        if is_timeout || text.contains("timed out") {
            FailureKind::Timeout
        } else if text.contains("dns error")
            || text.contains("failed to lookup address")
            || text.contains("name or service not known")
            || text.contains("no address associated")
            || text.contains("temporary failure in name resolution")
        {
            FailureKind::Dns
        } else if text.contains("connection refused") {
            FailureKind::Refused
        } else if text.contains("certificate") || text.contains("tls") || text.contains("handshake")
        {
            FailureKind::Tls
        } else if text.contains("connection reset")
            || text.contains("connection closed")
            || text.contains("broken pipe")
            || text.contains("incomplete message")
            || text.contains("unexpected eof")
        {
            FailureKind::Closed
        } else if is_connect {
            FailureKind::Other
        } else {
            FailureKind::Closed
        }
    }
}

/// The run cannot reach Graph: nothing more will be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreachable {
    pub host: String,
    pub cause: String,
}

/// Limits of the rules above.
#[derive(Clone, Copy, Debug)]
pub struct HealthLimits {
    /// Same-kind failures in a row, before any answer, that stop the run.
    pub first_wave: u32,
    /// Failures of any kind before any answer that stop the run.
    pub first_wave_any: u32,
    /// Failures in a row, after answers, that start an outage.
    pub burst: u32,
    /// The longest outage before the run stops.
    pub max_outage: Duration,
    /// Probe spacing: starts at `first_probe`, doubles up to `max_probe`.
    pub first_probe: Duration,
    pub max_probe: Duration,
}

impl Default for HealthLimits {
    fn default() -> Self {
        HealthLimits {
            first_wave: 3,
            first_wave_any: 8,
            burst: 8,
            max_outage: Duration::from_secs(300),
            first_probe: Duration::from_secs(1),
            max_probe: Duration::from_secs(30),
        }
    }
}

/// What a request that met a connection failure does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// An isolated failure: the request's own retry policy applies.
    Retry,
    /// An outage is on: wait at [`Health::admit`] again; this does not count as an attempt.
    Wait,
    /// The run must stop.
    Stop(Unreachable),
}

/// Whether this request may go out as the outage's probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Normal,
    Probe,
}

#[derive(Debug)]
struct Outage {
    since: Instant,
    next_probe: Instant,
    probe_in_flight: bool,
    spacing: Duration,
    kind: FailureKind,
}

#[derive(Debug, Default)]
struct State {
    answered: bool,
    in_a_row: u32,
    same_kind_in_a_row: u32,
    last_kind: Option<FailureKind>,
    outage: Option<Outage>,
    stopped: Option<Unreachable>,
    outages: u64,
}

/// The run-wide view, shared by every request of one transport.
#[derive(Debug)]
pub struct Health {
    host: String,
    limits: HealthLimits,
    state: Mutex<State>,
}

/// How often a request held by an outage looks again (the probe's answer ends it sooner for
/// nobody: waiting requests poll, which keeps this free of wake-up races).
const POLL: Duration = Duration::from_millis(100);

impl Health {
    pub fn new(host: impl Into<String>, limits: HealthLimits) -> Health {
        Health {
            host: host.into(),
            limits,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any HTTP answer has come yet this run.
    pub fn has_answered(&self) -> bool {
        self.lock().answered
    }

    /// Outages so far.
    pub fn outages(&self) -> u64 {
        self.lock().outages
    }

    /// Waits until a request may go out: at once normally; during an outage only as the probe.
    /// Errs once the run is stopped.
    pub async fn admit(&self) -> Result<Admission, Unreachable> {
        loop {
            let wake = {
                let mut state = self.lock();
                if let Some(stopped) = &state.stopped {
                    return Err(stopped.clone());
                }
                let now = Instant::now();
                let Some(outage) = state.outage.as_mut() else {
                    return Ok(Admission::Normal);
                };
                if now.duration_since(outage.since) >= self.limits.max_outage {
                    let stopped = Unreachable {
                        host: self.host.clone(),
                        cause: format!(
                            "{} (unreachable for {} s, the longest mfactl waits)",
                            outage.kind.describe(),
                            self.limits.max_outage.as_secs()
                        ),
                    };
                    state.stopped = Some(stopped.clone());
                    return Err(stopped);
                }
                if !outage.probe_in_flight && now >= outage.next_probe {
                    outage.probe_in_flight = true;
                    return Ok(Admission::Probe);
                }
                outage
                    .next_probe
                    .min(now + POLL)
                    .max(now + Duration::from_millis(1))
            };
            tokio::time::sleep_until(wake).await;
        }
    }

    /// An HTTP answer came (any status) to a request sent at `sent_at`: the host is there. An
    /// answer to a request sent before the outage began says nothing about now (it was on its
    /// way back when the connection went), so only later ones end an outage.
    pub fn answered(&self, sent_at: Instant) {
        let mut state = self.lock();
        state.answered = true;
        if state
            .outage
            .as_ref()
            .is_some_and(|outage| sent_at < outage.since)
        {
            return;
        }
        state.in_a_row = 0;
        state.same_kind_in_a_row = 0;
        state.last_kind = None;
        if let Some(outage) = state.outage.take() {
            tracing::warn!(
                host = %self.host,
                after_s = outage.since.elapsed().as_secs(),
                "Graph answers again; resuming"
            );
        }
    }

    /// A request got no HTTP answer. `admission` is what [`Health::admit`] gave it.
    pub fn failed(&self, kind: FailureKind, admission: Admission) -> AfterFailure {
        let mut state = self.lock();
        if let Some(stopped) = &state.stopped {
            return AfterFailure::Stop(stopped.clone());
        }
        state.in_a_row += 1;
        state.same_kind_in_a_row = if state.last_kind == Some(kind) {
            state.same_kind_in_a_row + 1
        } else {
            1
        };
        state.last_kind = Some(kind);
        let now = Instant::now();
        if let Some(outage) = state.outage.as_mut() {
            if admission == Admission::Probe {
                outage.probe_in_flight = false;
                outage.spacing = (outage.spacing * 2).min(self.limits.max_probe);
                outage.next_probe = now + outage.spacing;
                outage.kind = kind;
            }
            return AfterFailure::Wait;
        }
        if !state.answered {
            if state.same_kind_in_a_row >= self.limits.first_wave
                || state.in_a_row >= self.limits.first_wave_any
            {
                let stopped = Unreachable {
                    host: self.host.clone(),
                    cause: kind.describe().to_owned(),
                };
                state.stopped = Some(stopped.clone());
                return AfterFailure::Stop(stopped);
            }
            return AfterFailure::Retry;
        }
        if state.in_a_row >= self.limits.burst {
            state.outages += 1;
            state.outage = Some(Outage {
                since: now,
                next_probe: now + self.limits.first_probe,
                probe_in_flight: false,
                spacing: self.limits.first_probe,
                kind,
            });
            tracing::warn!(
                host = %self.host,
                cause = kind.describe(),
                failures = state.in_a_row,
                "lost the connection to Graph: holding every request and probing until it \
                 answers (the run stops after {} s)",
                self.limits.max_outage.as_secs()
            );
            return AfterFailure::Wait;
        }
        AfterFailure::Retry
    }

    /// Stops the run from outside (e.g. the token was refused): admissions fail from now on.
    pub fn is_stopped(&self) -> bool {
        self.lock().stopped.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> Health {
        Health::new("graph.example", HealthLimits::default())
    }

    #[test]
    fn classifies_the_usual_failures() {
        use FailureKind as K;
        let c = |connect, timeout, text| FailureKind::classify(connect, timeout, text);
        assert_eq!(
            c(
                true,
                false,
                "error sending request: client error (Connect): dns error: failed to lookup address information: Name or service not known"
            ),
            K::Dns
        );
        assert_eq!(
            c(
                true,
                false,
                "tcp connect error: Connection refused (os error 111)"
            ),
            K::Refused
        );
        assert_eq!(c(false, true, "operation timed out"), K::Timeout);
        assert_eq!(
            c(false, false, "connection closed before message completed"),
            K::Closed
        );
        assert_eq!(
            c(true, false, "invalid peer certificate: UnknownIssuer"),
            K::Tls
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_wave_of_identical_failures_stops_the_run() {
        let health = health();
        assert_eq!(health.admit().await, Ok(Admission::Normal));
        assert_eq!(
            health.failed(FailureKind::Dns, Admission::Normal),
            AfterFailure::Retry
        );
        assert_eq!(
            health.failed(FailureKind::Dns, Admission::Normal),
            AfterFailure::Retry
        );
        let AfterFailure::Stop(stopped) = health.failed(FailureKind::Dns, Admission::Normal) else {
            panic!("three DNS failures before any answer stop the run");
        };
        assert_eq!(stopped.host, "graph.example");
        assert!(stopped.cause.contains("DNS"), "{}", stopped.cause);
        assert!(health.admit().await.is_err(), "nothing more goes out");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_after_an_answer_are_retried_until_a_burst() {
        let health = health();
        health.answered(Instant::now());
        for _ in 0..7 {
            assert_eq!(
                health.failed(FailureKind::Refused, Admission::Normal),
                AfterFailure::Retry
            );
        }
        // One answer in between resets the count.
        health.answered(Instant::now());
        for _ in 0..7 {
            assert_eq!(
                health.failed(FailureKind::Refused, Admission::Normal),
                AfterFailure::Retry
            );
        }
        assert_eq!(
            health.failed(FailureKind::Refused, Admission::Normal),
            AfterFailure::Wait,
            "the eighth in a row starts an outage"
        );
        assert_eq!(health.outages(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_sends_one_probe_at_a_time_and_ends_on_an_answer() {
        let health = std::sync::Arc::new(health());
        let before = Instant::now();
        health.answered(before);
        tokio::time::advance(Duration::from_millis(10)).await;
        for _ in 0..8 {
            health.failed(FailureKind::Closed, Admission::Normal);
        }
        // A late answer to a request sent before the outage began does not end it.
        health.answered(before);
        let start = Instant::now();
        // The first probe goes out after a second; a second waiter is held meanwhile.
        assert_eq!(health.admit().await, Ok(Admission::Probe));
        assert!(Instant::now() - start >= Duration::from_secs(1));
        let waiter = {
            let health = health.clone();
            tokio::spawn(async move { health.admit().await })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiter.is_finished(), "held while the probe is out");
        // The probe fails: the next one waits twice as long.
        assert_eq!(
            health.failed(FailureKind::Closed, Admission::Probe),
            AfterFailure::Wait
        );
        let second_probe = waiter.await.unwrap();
        assert_eq!(second_probe, Ok(Admission::Probe));
        health.answered(Instant::now());
        assert_eq!(health.admit().await, Ok(Admission::Normal));
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_longer_than_the_limit_stops_the_run() {
        let health = health();
        health.answered(Instant::now());
        for _ in 0..8 {
            health.failed(FailureKind::Timeout, Admission::Normal);
        }
        loop {
            match health.admit().await {
                Ok(Admission::Probe) => {
                    health.failed(FailureKind::Timeout, Admission::Probe);
                }
                Ok(Admission::Normal) => panic!("the outage never ended"),
                Err(stopped) => {
                    assert!(stopped.cause.contains("300 s"), "{}", stopped.cause);
                    break;
                }
            }
        }
    }
}
