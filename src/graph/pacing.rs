//! Pacing: how fast requests leave, shared by every worker.
//!
//! Three pieces, each small and tested alone:
//! - [`PauseGate`]: "send nothing before T". One 429 closes it for every worker, because Graph's
//!   buckets are per app + tenant: a throttled worker's neighbours are throttled too, and usage
//!   keeps counting while throttled, so retrying early makes it worse.
//! - a fixed cap per budget (governor): Graph meters reads and writes separately (graph-api.md §6),
//!   so reads and writes each have their own.
//! - [`AdaptivePacer`]: governor's quota is immutable, so adaptation lives above it. A 429 (or
//!   `x-ms-throttle-limit-percentage` ≥ 0.8) lowers the rate; quiet time raises it again until
//!   the fixed cap alone applies.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

/// What one [`PauseGate::pause_for`] call changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PauseAdded {
    /// The gate was open and is now closed.
    pub started: bool,
    /// How much later the gate now opens (zero when an existing pause already covered it).
    pub extended: Duration,
}

/// "Do not send before T", shared by all workers.
#[derive(Debug, Default)]
pub struct PauseGate {
    until: Mutex<Option<Instant>>,
}

impl PauseGate {
    /// Closes the gate for `duration` from now (never shortens an existing pause). Says whether
    /// this started a pause (the gate was open) and how much later it now opens.
    pub fn pause_for(&self, duration: Duration) -> PauseAdded {
        let now = Instant::now();
        let until = now + duration;
        let mut guard = self.until.lock().expect("pause gate poisoned");
        let current = guard.filter(|t| *t > now);
        if current.is_some_and(|current| current >= until) {
            return PauseAdded::default();
        }
        *guard = Some(until);
        PauseAdded {
            started: current.is_none(),
            extended: until - current.unwrap_or(now),
        }
    }

    /// Waits until the gate is open. Re-checks after waking: another 429 may have moved it.
    pub async fn wait(&self) {
        loop {
            let until = *self.until.lock().expect("pause gate poisoned");
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    /// When the gate opens, if it is closed now.
    pub fn closed_until(&self) -> Option<Instant> {
        let until = *self.until.lock().expect("pause gate poisoned");
        until.filter(|t| *t > Instant::now())
    }
}

/// An adaptive rate below the fixed cap: cut on throttling signals, recovered over time.
///
/// AIMD-like, on time rather than on request counts (a count-based rule recovers 100 times
/// faster at 800 requests/s than at 8, and a per-response rule compounds when every response
/// carries the same signal):
/// - a 429 halves the rate, once per round trip: only a request sent after the last cut can cut
///   again, so the answers that come back throttled together are one signal, not sixteen;
/// - `x-ms-throttle-limit-percentage` ≥ 0.8 cuts by 10 %, at most once a second;
/// - with no signal for a second, the rate grows back by 10 % a second, up to the cap, where the
///   pacer stops adding anything and the fixed cap alone applies.
#[derive(Debug)]
pub struct AdaptivePacer {
    /// The fixed cap, in requests per second.
    cap: f64,
    state: Mutex<PacerState>,
}

/// The slowest the pacer ever goes, in requests per second.
const MIN_RATE: f64 = 0.5;
/// Growth per quiet second.
const RECOVERY_PER_SECOND: f64 = 1.10;

#[derive(Debug)]
struct PacerState {
    /// Current rate; equal to the cap when unthrottled.
    rate: f64,
    /// When the next request may leave.
    next: Instant,
    /// The last cut: requests sent before it cannot cut again.
    last_cut: Instant,
    /// The last time the rate was recomputed for recovery.
    last_update: Instant,
}

impl AdaptivePacer {
    /// A pacer for a budget capped at `rate_per_second`.
    pub fn new(rate_per_second: u32) -> Self {
        let now = Instant::now();
        let cap = f64::from(rate_per_second.max(1));
        AdaptivePacer {
            cap,
            state: Mutex::new(PacerState {
                rate: cap,
                next: now,
                last_cut: now,
                last_update: now,
            }),
        }
    }

    /// Takes the next send slot and waits for it. Returns the instant the request leaves,
    /// to hand back to [`AdaptivePacer::on_throttled`].
    pub async fn wait(&self) -> Instant {
        let slot = {
            let mut state = self.state.lock().expect("pacer poisoned");
            let now = Instant::now();
            self.recover(&mut state, now);
            if state.rate >= self.cap {
                return now;
            }
            let slot = state.next.max(now);
            state.next = slot + Duration::from_secs_f64(1.0 / state.rate);
            slot
        };
        tokio::time::sleep_until(slot).await;
        slot
    }

    /// A request sent at `sent_at` was throttled: halve the rate.
    pub fn on_throttled(&self, sent_at: Instant) {
        self.cut(sent_at, 0.5, Duration::ZERO);
    }

    /// Graph says usage is above 80 % of the limit: slow down by 10 %.
    pub fn on_pressure(&self, sent_at: Instant) {
        self.cut(sent_at, 0.9, Duration::from_secs(1));
    }

    fn cut(&self, sent_at: Instant, factor: f64, min_gap: Duration) {
        let mut state = self.state.lock().expect("pacer poisoned");
        let now = Instant::now();
        if sent_at < state.last_cut || now.duration_since(state.last_cut) < min_gap {
            return;
        }
        self.recover(&mut state, now);
        state.rate = (state.rate.min(self.cap) * factor).max(MIN_RATE);
        state.last_cut = now;
        state.last_update = now;
    }

    /// Grows the rate back after a quiet second (no cut), 10 % per second, up to the cap.
    fn recover(&self, state: &mut PacerState, now: Instant) {
        if state.rate >= self.cap {
            return;
        }
        let quiet_since = state.last_cut + Duration::from_secs(1);
        if now <= quiet_since {
            return;
        }
        let from = state.last_update.max(quiet_since);
        let seconds = now.duration_since(from).as_secs_f64();
        state.rate = (state.rate * RECOVERY_PER_SECOND.powf(seconds)).min(self.cap);
        state.last_update = now;
    }

    /// The current rate in requests per second (the cap when unthrottled).
    pub fn rate(&self) -> f64 {
        self.state.lock().expect("pacer poisoned").rate
    }
}

/// One metered budget (reads or writes): a fixed cap with adaptive pacing above it.
#[derive(Debug)]
pub struct Budget {
    cap: DefaultDirectRateLimiter,
    pub pacer: AdaptivePacer,
}

impl Budget {
    /// A budget of `rate_per_second` sustained, allowing bursts of `burst`.
    pub fn new(rate_per_second: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(rate_per_second.max(1)).expect("non-zero");
        let burst = NonZeroU32::new(burst.max(1)).expect("non-zero");
        Budget {
            cap: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            pacer: AdaptivePacer::new(rate.get()),
        }
    }

    /// Waits for a send slot under both the fixed cap and the adaptive spacing.
    pub async fn acquire(&self) -> Instant {
        let sent_at = self.pacer.wait().await;
        self.cap.until_ready().await;
        sent_at.max(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pause_gate_holds_every_waiter_until_it_opens() {
        let gate = std::sync::Arc::new(PauseGate::default());
        gate.pause_for(Duration::from_secs(3));
        let start = Instant::now();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let gate = gate.clone();
                tokio::spawn(async move {
                    gate.wait().await;
                    Instant::now()
                })
            })
            .collect();
        for w in waiters {
            assert!(w.await.unwrap() - start >= Duration::from_secs(3));
        }
        assert!(gate.closed_until().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn pause_gate_never_shortens_a_pause() {
        let gate = PauseGate::default();
        let first = gate.pause_for(Duration::from_secs(5));
        assert_eq!(
            first,
            PauseAdded {
                started: true,
                extended: Duration::from_secs(5)
            }
        );
        assert_eq!(
            gate.pause_for(Duration::from_secs(1)),
            PauseAdded::default()
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            gate.pause_for(Duration::from_secs(6)),
            PauseAdded {
                started: false,
                extended: Duration::from_secs(2)
            },
            "an extension counts only the time it adds"
        );
        let start = Instant::now();
        gate.wait().await;
        assert!(Instant::now() - start >= Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn one_round_of_throttling_cuts_once() {
        let pacer = AdaptivePacer::new(100);
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(1)).await;
        for _ in 0..16 {
            pacer.on_throttled(sent);
        }
        assert_eq!(pacer.rate(), 50.0);
        // A request sent after the cut may cut again.
        tokio::time::advance(Duration::from_millis(1)).await;
        pacer.on_throttled(Instant::now());
        assert_eq!(pacer.rate(), 25.0);
    }

    #[tokio::test(start_paused = true)]
    async fn pressure_cuts_at_most_once_a_second() {
        let pacer = AdaptivePacer::new(100);
        tokio::time::advance(Duration::from_secs(2)).await;
        for _ in 0..50 {
            pacer.on_pressure(Instant::now());
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        assert!((pacer.rate() - 90.0).abs() < 1e-9, "{}", pacer.rate());
    }

    #[tokio::test(start_paused = true)]
    async fn rate_recovers_over_quiet_time_up_to_the_cap() {
        let pacer = AdaptivePacer::new(100);
        pacer.on_throttled(Instant::now());
        pacer.on_throttled(Instant::now());
        assert_eq!(pacer.rate(), 25.0);
        // Within the first quiet second nothing changes.
        tokio::time::advance(Duration::from_millis(900)).await;
        pacer.wait().await;
        assert_eq!(pacer.rate(), 25.0);
        tokio::time::advance(Duration::from_secs(60)).await;
        pacer.wait().await;
        assert_eq!(pacer.rate(), 100.0);
    }

    #[tokio::test(start_paused = true)]
    async fn cut_pacer_spaces_sends() {
        let pacer = AdaptivePacer::new(10);
        pacer.on_throttled(Instant::now());
        let start = Instant::now();
        for _ in 0..5 {
            pacer.wait().await;
        }
        // 5 sends at 5/s: the last leaves 800 ms after the first.
        assert!(Instant::now() - start >= Duration::from_millis(800));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_never_drops_below_the_floor() {
        let pacer = AdaptivePacer::new(1);
        for _ in 0..10 {
            tokio::time::advance(Duration::from_millis(1)).await;
            pacer.on_throttled(Instant::now());
        }
        assert_eq!(pacer.rate(), MIN_RATE);
    }
}
