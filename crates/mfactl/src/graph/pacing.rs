//! Pacing: how fast requests leave, shared by every worker.
//!
//! Graph meters an app in a tenant with token buckets (graph-api.md §6): resource units (RU,
//! 3,500 / 5,000 / 8,000 per 10 s by tenant size; every request costs one) and writes (3,000 per
//! 150 s). Both are full when a run starts. So each [`Budget`] here is shaped like one of them:
//! a run spends the burst at network speed, then goes at the refill rate — not at a cautious
//! fixed rate from the first request. Pieces, each small and tested alone:
//! - [`PauseGate`]: "send nothing before T". A 429 closes the gate of the bucket that refused
//!   (the RU gate holds everything, the write gate only writes), because the bucket is per
//!   app + tenant: every worker's requests draw on it, and usage keeps counting while
//!   throttled, so retrying early makes it worse.
//! - the local mirror of the bucket (GCRA on tokio time), plus an optional fixed cap per second
//!   (governor) for admins who want to leave room for other tools;
//! - [`AdaptivePacer`]: Graph's real usage may differ from the mirror (other runs of the same
//!   app, a smaller tier than assumed), so Graph's signals — 429s and
//!   `x-ms-throttle-limit-percentage` — switch to pacing at or below the refill rate, and quiet
//!   time frees it again.

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

/// An adaptive layer over a bucket-shaped budget: free while Graph is relaxed, paced at or
/// below the bucket's refill rate when it is not.
///
/// - **Free** (the start): no spacing at all; the local bucket mirror alone decides, so a run
///   spends Graph's burst at network speed.
/// - `x-ms-throttle-limit-percentage` between 0.8 and 1.0 (Graph's bucket is nearly spent):
///   stop bursting, pace at the refill rate. Not a cut: at the refill rate usage stays near
///   100 % by design, and cutting on that signal would collapse the rate for nothing.
/// - above 1.0 (in debt): pace at refill / percentage, at most once a second;
/// - a 429: halve, once per round trip (only a request sent after the last cut can cut again,
///   so the answers that come back throttled together are one signal, not sixteen);
/// - after a quiet second (no 429, no debt) the rate grows 10 % a second up to the refill rate,
///   and after five seconds without any pressure signal it is free again.
///
/// On time rather than request counts: a count-based rule recovers 100 times faster at 800
/// requests/s than at 8.
#[derive(Debug)]
pub struct AdaptivePacer {
    /// The bucket's refill rate, in requests per second.
    refill: f64,
    state: Mutex<PacerState>,
}

/// The slowest the pacer ever goes, in requests per second.
const MIN_RATE: f64 = 0.5;
/// Growth per quiet second.
const RECOVERY_PER_SECOND: f64 = 1.10;
/// Time without any pressure signal after which bursting is allowed again.
const FREE_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct PacerState {
    /// `None` while free; otherwise the paced rate (at most the refill rate).
    rate: Option<f64>,
    /// When the next request may leave (paced only).
    next: Instant,
    /// The last cut: requests sent before it cannot cut again.
    last_cut: Instant,
    /// The last time the rate was recomputed for recovery.
    last_update: Instant,
    /// The last pressure signal of any kind.
    last_signal: Instant,
}

impl AdaptivePacer {
    /// A pacer for a bucket refilled at `refill_per_second`.
    pub fn new(refill_per_second: f64) -> Self {
        let now = Instant::now();
        AdaptivePacer {
            refill: refill_per_second.max(MIN_RATE),
            state: Mutex::new(PacerState {
                rate: None,
                next: now,
                last_cut: now,
                last_update: now,
                last_signal: now,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PacerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the next send slot and waits for it. Returns the instant the request leaves,
    /// to hand back to [`AdaptivePacer::on_throttled`].
    pub async fn wait(&self) -> Instant {
        let slot = {
            let mut state = self.lock();
            let now = Instant::now();
            self.recover(&mut state, now);
            let Some(rate) = state.rate else {
                return now;
            };
            let slot = state.next.max(now);
            state.next = slot + Duration::from_secs_f64(1.0 / rate);
            slot
        };
        tokio::time::sleep_until(slot).await;
        slot
    }

    /// A request sent at `sent_at` was throttled: halve the rate.
    pub fn on_throttled(&self, sent_at: Instant) {
        self.cut(sent_at, 0.5, Duration::ZERO);
    }

    /// Graph reports the bucket's usage as `percentage` of its limit (only sent above 0.8).
    pub fn on_pressure(&self, sent_at: Instant, percentage: f64) {
        if percentage > 1.0 {
            self.cut(sent_at, 1.0 / percentage, Duration::from_secs(1));
            return;
        }
        let mut state = self.lock();
        let now = Instant::now();
        state.last_signal = now;
        if state.rate.is_none() {
            state.rate = Some(self.refill);
            state.next = now;
            state.last_update = now;
        }
    }

    fn cut(&self, sent_at: Instant, factor: f64, min_gap: Duration) {
        let mut state = self.lock();
        let now = Instant::now();
        if sent_at < state.last_cut || now.duration_since(state.last_cut) < min_gap {
            state.last_signal = now;
            return;
        }
        self.recover(&mut state, now);
        let rate = state.rate.unwrap_or(self.refill).min(self.refill);
        state.rate = Some((rate * factor).max(MIN_RATE));
        state.next = state.next.max(now);
        state.last_cut = now;
        state.last_update = now;
        state.last_signal = now;
    }

    /// Grows the rate back after a quiet second, 10 % per second, up to the refill rate; frees
    /// it after a while with no signal at all.
    fn recover(&self, state: &mut PacerState, now: Instant) {
        let Some(rate) = state.rate else {
            return;
        };
        let quiet_since = state.last_cut + Duration::from_secs(1);
        if rate < self.refill && now > quiet_since {
            let from = state.last_update.max(quiet_since);
            let seconds = now.duration_since(from).as_secs_f64();
            state.rate = Some((rate * RECOVERY_PER_SECOND.powf(seconds)).min(self.refill));
            state.last_update = now;
        }
        if state.rate.is_some_and(|rate| rate >= self.refill)
            && now.duration_since(state.last_signal) >= FREE_AFTER
        {
            state.rate = None;
        }
    }

    /// The current paced rate in requests per second; `None` while free.
    pub fn rate(&self) -> Option<f64> {
        self.lock().rate
    }

    /// The bucket's refill rate.
    pub fn refill(&self) -> f64 {
        self.refill
    }
}

/// The shape of one of Graph's token buckets (graph-api.md §6): `capacity` requests, refilled
/// continuously over `window` (RU: 8,000 per 10 s for a large tenant; writes: 3,000 per 150 s).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketShape {
    pub capacity: u32,
    pub window: Duration,
}

impl BucketShape {
    pub fn new(capacity: u32, window: Duration) -> BucketShape {
        BucketShape {
            capacity: capacity.max(1),
            window: window.max(Duration::from_millis(1)),
        }
    }

    /// Requests per second the bucket refills.
    pub fn refill_per_second(&self) -> f64 {
        f64::from(self.capacity) / self.window.as_secs_f64()
    }
}

/// How much of Graph's bucket the local mirror allows itself: a little under, so that requests
/// arriving at Graph with network jitter do not find its bucket empty a moment early.
const HEADROOM: f64 = 0.98;

/// A local mirror of one of Graph's token buckets, as GCRA on tokio time (so it runs under a
/// paused clock in tests): full at start, as Graph's is, then refilled continuously. Each
/// request reserves the next slot, so waiters leave in order and never stampede.
#[derive(Debug)]
struct Mirror {
    /// Time one request's worth of tokens takes to refill.
    interval: Duration,
    /// How far ahead of now reservations may run: the burst.
    tolerance: Duration,
    /// The theoretical arrival time of the next request.
    next: Mutex<Instant>,
}

impl Mirror {
    fn new(burst: u32, interval: Duration) -> Mirror {
        Mirror {
            interval,
            tolerance: interval * burst.saturating_sub(1),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let at = (*next).max(now);
            let slot = at.checked_sub(self.tolerance).unwrap_or(now).max(now);
            *next = at + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// One metered budget: a local mirror of Graph's bucket, an optional fixed cap per second
/// (`--read-rate` / `--write-rate`, governor), and the adaptive pacer above both.
#[derive(Debug)]
pub struct Budget {
    bucket: Mirror,
    cap: Option<DefaultDirectRateLimiter>,
    pub pacer: AdaptivePacer,
    shape: BucketShape,
}

impl Budget {
    /// A budget shaped like `shape`, optionally capped at `cap_per_second` (with a second's
    /// burst).
    pub fn new(shape: BucketShape, cap_per_second: Option<u32>) -> Self {
        let burst = ((f64::from(shape.capacity) * HEADROOM) as u32).max(1);
        let interval = shape
            .window
            .div_f64(f64::from(shape.capacity) * HEADROOM)
            .max(Duration::from_nanos(1));
        let cap = cap_per_second.map(|rate| {
            let rate = NonZeroU32::new(rate.max(1)).expect("non-zero");
            RateLimiter::direct(Quota::per_second(rate).allow_burst(rate))
        });
        let refill = shape.refill_per_second() * HEADROOM;
        let paced = cap_per_second.map_or(refill, |cap| refill.min(f64::from(cap)));
        Budget {
            bucket: Mirror::new(burst, interval),
            cap,
            pacer: AdaptivePacer::new(paced),
            shape,
        }
    }

    /// The Graph bucket this budget mirrors.
    pub fn shape(&self) -> BucketShape {
        self.shape
    }

    /// Waits for a send slot under the adaptive pacing, the fixed cap and the bucket.
    pub async fn acquire(&self) -> Instant {
        let sent_at = self.pacer.wait().await;
        if let Some(cap) = &self.cap {
            cap.until_ready().await;
        }
        self.bucket.acquire().await;
        sent_at.max(Instant::now())
    }
}

/// Microsoft's app-wide resource-unit ceiling for the identity and access service: 150,000 RU
/// per 20 s per application across all tenants ("Microsoft Graph service-specific throttling
/// limits", Identity and access service limits: a token bucket, like the per-tenant ones).
pub const APP_RU_BUCKET: (u32, Duration) = (150_000, Duration::from_secs(20));
/// Microsoft's app-wide write ceiling: 70,000 writes per 5 minutes per application across all
/// tenants (the same table).
pub const APP_WRITE_BUCKET: (u32, Duration) = (70_000, Duration::from_secs(300));

/// The budgets one application shares across every tenant it works in (a multi-tenant run):
/// each tenant's transport keeps its own per-tenant budgets and draws from these too, so that
/// twenty tenants at full speed stay under the app's ceilings instead of meeting them as 429s.
/// A 429 whose scope is the application closes the gate here, holding every tenant.
#[derive(Debug)]
pub struct AppBudgets {
    /// Every request draws one resource unit.
    pub ru: Budget,
    /// Every PATCH draws one write.
    pub writes: Budget,
    /// Closed by a 429 from the app's RU bucket: holds every request of every tenant.
    pub all_gate: PauseGate,
    /// Closed by a 429 from the app's write bucket: holds every tenant's writes.
    pub write_gate: PauseGate,
}

impl AppBudgets {
    /// Budgets shaped like `ru` and `writes`.
    pub fn new(ru: BucketShape, writes: BucketShape) -> AppBudgets {
        AppBudgets {
            ru: Budget::new(ru, None),
            writes: Budget::new(writes, None),
            all_gate: PauseGate::default(),
            write_gate: PauseGate::default(),
        }
    }

    /// Budgets at Microsoft's documented app-wide ceilings ([`APP_RU_BUCKET`],
    /// [`APP_WRITE_BUCKET`]).
    pub fn documented() -> AppBudgets {
        AppBudgets::new(
            BucketShape::new(APP_RU_BUCKET.0, APP_RU_BUCKET.1),
            BucketShape::new(APP_WRITE_BUCKET.0, APP_WRITE_BUCKET.1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn app_budgets_hold_the_sum_of_tenants_to_the_app_ceiling() {
        // Three tenants of 100 writes per 10 s each under an app ceiling of 150 per 10 s: the
        // burst is the app's (147 with headroom), then the app's refill (14.7/s), not 3 × 9.8.
        let app = std::sync::Arc::new(AppBudgets::new(
            BucketShape::new(1_000_000, Duration::from_secs(10)),
            BucketShape::new(150, Duration::from_secs(10)),
        ));
        let start = Instant::now();
        let tenants: Vec<_> = (0..3)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move {
                    let own = Budget::new(BucketShape::new(100, Duration::from_secs(10)), None);
                    for _ in 0..98 {
                        own.acquire().await;
                        app.writes.acquire().await;
                    }
                })
            })
            .collect();
        for tenant in tenants {
            tenant.await.unwrap();
        }
        // 294 writes: 147 at once, 147 more at 14.7/s = 10 s (alone, each tenant would be done
        // at once: 98 is its own burst).
        let took = (Instant::now() - start).as_secs_f64();
        assert!((9.9..10.3).contains(&took), "{took}");
    }

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
    async fn a_free_pacer_adds_no_spacing() {
        let pacer = AdaptivePacer::new(10.0);
        let start = Instant::now();
        for _ in 0..100 {
            pacer.wait().await;
        }
        assert_eq!(Instant::now(), start);
        assert_eq!(pacer.rate(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn one_round_of_throttling_cuts_once() {
        let pacer = AdaptivePacer::new(100.0);
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(1)).await;
        for _ in 0..16 {
            pacer.on_throttled(sent);
        }
        assert_eq!(pacer.rate(), Some(50.0));
        // A request sent after the cut may cut again.
        tokio::time::advance(Duration::from_millis(1)).await;
        pacer.on_throttled(Instant::now());
        assert_eq!(pacer.rate(), Some(25.0));
    }

    #[tokio::test(start_paused = true)]
    async fn pressure_below_the_limit_stops_bursting_but_never_cuts() {
        let pacer = AdaptivePacer::new(100.0);
        for _ in 0..50 {
            pacer.on_pressure(Instant::now(), 0.95);
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        assert_eq!(pacer.rate(), Some(100.0), "paced at the refill rate");
        // In debt: paced below the refill rate, at most once a second.
        pacer.on_pressure(Instant::now(), 1.25);
        pacer.on_pressure(Instant::now(), 1.25);
        assert!(
            (pacer.rate().unwrap() - 80.0).abs() < 1e-9,
            "{:?}",
            pacer.rate()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_recovers_over_quiet_time_then_bursts_again() {
        let pacer = AdaptivePacer::new(100.0);
        pacer.on_throttled(Instant::now());
        tokio::time::advance(Duration::from_millis(1)).await;
        pacer.on_throttled(Instant::now());
        assert_eq!(pacer.rate(), Some(25.0));
        // Within the first quiet second nothing changes.
        tokio::time::advance(Duration::from_millis(900)).await;
        pacer.wait().await;
        assert_eq!(pacer.rate(), Some(25.0));
        tokio::time::advance(Duration::from_secs(60)).await;
        pacer.wait().await;
        assert_eq!(pacer.rate(), None, "free again after a quiet spell");
    }

    #[tokio::test(start_paused = true)]
    async fn cut_pacer_spaces_sends() {
        let pacer = AdaptivePacer::new(10.0);
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
        let pacer = AdaptivePacer::new(1.0);
        for _ in 0..10 {
            tokio::time::advance(Duration::from_millis(1)).await;
            pacer.on_throttled(Instant::now());
        }
        assert_eq!(pacer.rate(), Some(MIN_RATE));
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_spends_its_burst_at_once_then_refills() {
        // 100 per 10 s: 98 at once (headroom), then 9.8 a second.
        let budget = Budget::new(BucketShape::new(100, Duration::from_secs(10)), None);
        let start = Instant::now();
        for _ in 0..98 {
            budget.acquire().await;
        }
        assert!(
            Instant::now() - start < Duration::from_millis(1),
            "the burst is free"
        );
        for _ in 0..49 {
            budget.acquire().await;
        }
        let took = (Instant::now() - start).as_secs_f64();
        assert!((4.9..5.2).contains(&took), "49 more at 9.8/s: {took}");
    }
}
