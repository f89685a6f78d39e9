//! Graph's throttling for one application in one tenant (graph-api.md §6), as token buckets.
//!
//! It exists so that mfactl's pacing and retry are exercised against the same arithmetic Graph
//! applies: a resource-unit (RU) bucket that every metered request draws from, a separate
//! write bucket that only PATCHes draw from, and the identity *reports* limit (5 requests per
//! 10 s per app and tenant), which the registration report draws from and, when configured,
//! GETs of `/authentication/methods` too (Microsoft lists `authenticationMethod` under that
//! limit; whether it meters `/methods` is unconfirmed, so `/methods` stays out of it unless
//! asked for). The detail that matters most is "usage keeps counting while
//! throttled": a refused request is still charged, in every bucket it draws from, so a client
//! that retries before `Retry-After` digs itself deeper (down to minus one capacity).
//!
//! Time comes from `tokio::time::Instant`, so tests can run it under a paused clock. This module
//! knows nothing about HTTP; the routes turn a [`Verdict`] into headers.

use tokio::time::Instant;

/// Which bucket refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// The RU bucket (`ResourceUnitLimitExceeded`, scope `Tenant_Application/ReadWrite/...`).
    ResourceUnits,
    /// The write bucket (`WriteLimitExceeded`, scope `Tenant_Application/Write/...`).
    Writes,
    /// The reports bucket: the registration report, and `/authentication/methods` when limited
    /// (`ReportsLimitExceeded`, scope `Tenant_Application/Reports/...`; Graph's exact strings
    /// for it are not documented).
    Reports,
}

impl Limit {
    /// The `x-ms-throttle-information` value.
    pub fn information(self) -> &'static str {
        match self {
            Limit::ResourceUnits => "ResourceUnitLimitExceeded",
            Limit::Writes => "WriteLimitExceeded",
            Limit::Reports => "ReportsLimitExceeded",
        }
    }

    /// The first part of `x-ms-throttle-scope`; the app and tenant ids follow.
    pub fn scope_prefix(self) -> &'static str {
        match self {
            Limit::ResourceUnits => "Tenant_Application/ReadWrite",
            Limit::Writes => "Tenant_Application/Write",
            Limit::Reports => "Tenant_Application/Reports",
        }
    }
}

/// What the throttle decided for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// `None` when admitted; otherwise the refusing bucket and the whole seconds to wait.
    pub refused: Option<(Limit, u64)>,
    /// RU charged (`x-ms-resource-unit`).
    pub resource_units: u32,
    /// RU usage as a fraction of the limit when above 0.8, clamped to 0.8–1.8
    /// (`x-ms-throttle-limit-percentage`); `None` below 80 %.
    pub limit_percentage: Option<f64>,
}

/// One token bucket: `capacity` tokens, refilled continuously at `per_second`.
#[derive(Clone, Debug)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn new(capacity: u32, window_seconds: f64, now: Instant) -> Bucket {
        let capacity = f64::from(capacity.max(1));
        Bucket {
            capacity,
            per_second: capacity / window_seconds,
            tokens: capacity,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.updated = now;
    }

    fn covers(&self, cost: f64) -> bool {
        self.tokens >= cost
    }

    /// Charges the cost; the balance may go negative but never below minus one capacity.
    fn charge(&mut self, cost: f64) {
        self.tokens = (self.tokens - cost).max(-self.capacity);
    }

    /// Whole seconds (at least 1) until the balance covers `cost` again.
    fn seconds_until_covers(&self, cost: f64) -> u64 {
        let missing = (cost - self.tokens).max(0.0);
        // Float noise must not turn an exact 2.0 into a 3.
        let seconds = (missing / self.per_second - 1e-9).ceil();
        (seconds as u64).max(1)
    }

    /// Refills to `now` and charges `cost`; when the balance did not cover it, the whole
    /// seconds until it would.
    fn draw(&mut self, cost: f64, now: Instant) -> Option<u64> {
        self.refill(now);
        let covered = self.covers(cost);
        self.charge(cost);
        (!covered).then(|| self.seconds_until_covers(cost))
    }

    fn used_fraction(&self) -> f64 {
        (self.capacity - self.tokens) / self.capacity
    }
}

/// Keeps in `refused` the bucket that keeps the client waiting longest; on a tie the later one
/// (a narrower limit comes after the one it narrows).
fn keep_longest(refused: &mut Option<(Limit, u64)>, limit: Limit, wait: u64) {
    if refused.is_none_or(|(_, longest)| wait >= longest) {
        *refused = Some((limit, wait));
    }
}

/// What every bucket a request draws from charges it (graph-api.md §6: a GET is 1 RU, a PATCH
/// 1 RU and 1 write, a reports-limited GET 1 RU and 1 request of the reports limit).
const COST: f64 = 1.0;

/// Graph's identity and access reports limit per app and tenant (Microsoft's throttling
/// limits page): 5 requests per 10 s.
pub const REPORTS_PER_10S: u32 = 5;

/// The buckets of one app + tenant.
#[derive(Clone, Debug)]
pub struct Throttle {
    resource_units: Bucket,
    writes: Bucket,
    reports: Bucket,
    /// `false`: `/authentication/methods` costs 1 RU like any other GET.
    methods_reports_limited: bool,
}

impl Throttle {
    /// `ru_per_10s` RU per 10 s and `writes_per_150s` writes per 150 s, both full at start.
    pub fn new(ru_per_10s: u32, writes_per_150s: u32) -> Throttle {
        let now = Instant::now();
        Throttle {
            resource_units: Bucket::new(ru_per_10s, 10.0, now),
            writes: Bucket::new(writes_per_150s, 150.0, now),
            reports: Bucket::new(REPORTS_PER_10S, 10.0, now),
            methods_reports_limited: false,
        }
    }

    /// Puts [`Throttle::admit_methods_read`] under the reports bucket, made `per_10s` requests
    /// per 10 s, full at start.
    pub fn with_methods_limit(mut self, per_10s: u32) -> Throttle {
        self.reports = Bucket::new(per_10s, 10.0, Instant::now());
        self.methods_reports_limited = true;
        self
    }

    /// Meters one request: a GET costs 1 RU, a PATCH 1 RU and 1 write. A refused request is
    /// charged all the same (Graph keeps counting usage while it throttles).
    pub fn admit(&mut self, is_write: bool) -> Verdict {
        self.meter(is_write.then_some(Limit::Writes), COST)
    }

    /// Meters a GET that costs `resource_units` RU (at least 1): Graph charges a listing page
    /// more than a point read (the emulator's costs are in [`super::listing`]). Charged even
    /// when refused, like every other request.
    pub fn admit_read_costing(&mut self, resource_units: u32) -> Verdict {
        self.meter(None, f64::from(resource_units.max(1)))
    }

    /// Meters a GET of `/authentication/methods`: 1 RU and, when the reports limit applies to
    /// it, 1 from that bucket too, charged even when refused.
    pub fn admit_methods_read(&mut self) -> Verdict {
        let narrower = self.methods_reports_limited.then_some(Limit::Reports);
        self.meter(narrower, COST)
    }

    /// Meters a page of the registration report: 1 request from the reports bucket, charged
    /// even when refused, and no resource units. Microsoft lists the identity and access reports
    /// limit apart from the directory's RU buckets and does not say whether a report page draws
    /// resource units too; charging none is the emulator's choice, without a Microsoft source.
    pub fn admit_report_read(&mut self) -> Verdict {
        let now = Instant::now();
        let refused = self
            .reports
            .draw(COST, now)
            .map(|wait| (Limit::Reports, wait));
        Verdict {
            refused,
            resource_units: 0,
            limit_percentage: None,
        }
    }

    fn bucket(&mut self, limit: Limit) -> Option<&mut Bucket> {
        match limit {
            Limit::ResourceUnits => Some(&mut self.resource_units),
            Limit::Writes => Some(&mut self.writes),
            Limit::Reports => Some(&mut self.reports),
        }
    }

    /// Charges `resource_units` to the RU bucket and one request to `narrower` (when it
    /// exists), and names the bucket that refuses.
    fn meter(&mut self, narrower: Option<Limit>, resource_units: f64) -> Verdict {
        let now = Instant::now();
        let mut refused: Option<(Limit, u64)> = None;
        for limit in std::iter::once(Limit::ResourceUnits).chain(narrower) {
            let Some(bucket) = self.bucket(limit) else {
                continue;
            };
            let cost = match limit {
                Limit::ResourceUnits => resource_units,
                Limit::Writes | Limit::Reports => COST,
            };
            if let Some(wait) = bucket.draw(cost, now) {
                keep_longest(&mut refused, limit, wait);
            }
        }
        // The percentage header is the RU bucket's usage only: graph-api.md §6 describes it as
        // the share of "the limit" next to RU charges, and the narrower buckets say so in their
        // 429's x-ms-throttle-information instead.
        let used = self.resource_units.used_fraction();
        Verdict {
            refused,
            resource_units: resource_units as u32,
            limit_percentage: (used > 0.8).then(|| used.min(1.8)),
        }
    }
}

/// Microsoft's app-wide resource-unit ceiling for the identity and access service: 150,000 RU
/// per 20 s per application across all tenants ("Microsoft Graph service-specific throttling
/// limits", Identity and access service limits).
pub const APP_RU_PER_20S: u32 = 150_000;
/// Microsoft's app-wide write ceiling: 70,000 writes per 5 minutes per application across all
/// tenants (the same table).
pub const APP_WRITES_PER_5MIN: u32 = 70_000;

/// One application's buckets across every tenant the emulator serves: Microsoft's app-wide
/// ceilings for the identity and access service (150,000 RU per 20 s and 70,000 writes per
/// 5 min per application across all tenants, "Microsoft Graph service-specific throttling
/// limits"), as token buckets like the per-tenant ones. One tenant never reaches them (its own
/// buckets are 20 times smaller); a multi-tenant run does.
#[derive(Debug)]
pub struct AppThrottle {
    ru_per_20s: u32,
    writes_per_300s: u32,
    /// By application id (the token's `appid`), lower case.
    apps: std::collections::HashMap<String, (Bucket, Bucket)>,
}

impl AppThrottle {
    pub fn new(ru_per_20s: u32, writes_per_300s: u32) -> AppThrottle {
        AppThrottle {
            ru_per_20s,
            writes_per_300s,
            apps: std::collections::HashMap::new(),
        }
    }

    /// Meters one call of `app`: `resource_units` from its RU bucket and, for a write, one from
    /// its write bucket, charged even when refused. `None` when admitted, else the refusing
    /// bucket and the whole seconds to wait.
    pub fn admit(
        &mut self,
        app: &str,
        is_write: bool,
        resource_units: u32,
    ) -> Option<(Limit, u64)> {
        let now = Instant::now();
        let (ru_per_20s, writes_per_300s) = (self.ru_per_20s, self.writes_per_300s);
        let (ru, writes) = self
            .apps
            .entry(app.to_ascii_lowercase())
            .or_insert_with(|| {
                (
                    Bucket::new(ru_per_20s, 20.0, now),
                    Bucket::new(writes_per_300s, 300.0, now),
                )
            });
        let mut refused = None;
        let charges = [
            (
                Limit::ResourceUnits,
                Some(&mut *ru),
                f64::from(resource_units.max(1)),
            ),
            (Limit::Writes, is_write.then_some(&mut *writes), COST),
        ];
        for (limit, bucket, cost) in charges {
            let Some(bucket) = bucket else { continue };
            if let Some(wait) = bucket.draw(cost, now) {
                keep_longest(&mut refused, limit, wait);
            }
        }
        refused
    }

    /// The first part of `x-ms-throttle-scope` for a refusal by the app-wide bucket `limit`:
    /// `Application/ReadWrite` or `Application/Write` (Graph documents the per-tenant scope's
    /// shape, `Tenant_Application/...`, but not the app-wide one: the emulator's choice).
    pub fn scope_prefix(limit: Limit) -> &'static str {
        match limit {
            Limit::Writes => "Application/Write",
            Limit::ResourceUnits | Limit::Reports => "Application/ReadWrite",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_app_ceiling_is_one_per_application_across_tenants() {
        let mut app = AppThrottle::new(1000, 3);
        for _ in 0..3 {
            assert_eq!(app.admit("A", true, 1), None);
        }
        // The fourth write of app A, whichever tenant it is for, waits a write's refill (100 s).
        assert_eq!(app.admit("a", true, 1), Some((Limit::Writes, 200)));
        assert_eq!(app.admit("B", true, 1), None, "another app has its own");
        assert_eq!(
            app.admit("A", false, 1),
            None,
            "reads are not write-limited"
        );
        tokio::time::advance(Duration::from_secs(200)).await;
        assert_eq!(app.admit("A", true, 1), None);
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_when_spent_and_keeps_counting_while_throttled() {
        let mut throttle = Throttle::new(10, 1000);
        for _ in 0..10 {
            assert_eq!(throttle.admit(false).refused, None);
        }
        // Spent: 1 RU per second comes back; the refused request is charged too.
        let verdict = throttle.admit(false);
        assert_eq!(verdict.refused, Some((Limit::ResourceUnits, 2)));
        assert_eq!(verdict.limit_percentage, Some(1.1));
        let verdict = throttle.admit(false);
        assert_eq!(verdict.refused, Some((Limit::ResourceUnits, 3)));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(throttle.admit(false).refused, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_listing_page_draws_its_cost_from_the_ru_bucket() {
        let mut throttle = Throttle::new(10, 1000);
        let verdict = throttle.admit_read_costing(5);
        assert_eq!((verdict.refused, verdict.resource_units), (None, 5));
        assert_eq!(throttle.admit_read_costing(5).refused, None);
        // Spent: the next page is charged anyway (balance -5), so 10 RU are missing at 1 RU/s.
        assert_eq!(
            throttle.admit_read_costing(5).refused,
            Some((Limit::ResourceUnits, 10))
        );
        assert_eq!(
            throttle.admit(false).refused,
            Some((Limit::ResourceUnits, 7))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn writes_have_their_own_bucket() {
        let mut throttle = Throttle::new(1000, 2);
        assert_eq!(throttle.admit(true).refused, None);
        assert_eq!(throttle.admit(true).refused, None);
        let verdict = throttle.admit(true);
        assert_eq!(verdict.refused.map(|(limit, _)| limit), Some(Limit::Writes));
        // 2 writes per 150 s = one per 75 s; the balance is -1, so 2 writes' worth is missing.
        assert_eq!(verdict.refused.map(|(_, wait)| wait), Some(150));
        assert_eq!(
            throttle.admit(false).refused,
            None,
            "reads are not write-limited"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn balance_never_drops_below_minus_capacity() {
        let mut throttle = Throttle::new(10, 1000);
        for _ in 0..100 {
            throttle.admit(false);
        }
        // -10 at worst: 11 RU missing at 1 RU/s.
        assert_eq!(
            throttle.admit(false).refused,
            Some((Limit::ResourceUnits, 11))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn methods_reads_have_their_own_bucket_when_asked() {
        let mut throttle = Throttle::new(1000, 1000).with_methods_limit(5);
        for _ in 0..5 {
            assert_eq!(throttle.admit_methods_read().refused, None);
        }
        // 5 per 10 s = 0.5 per second; the refused sixth is charged, so the balance is -1 and
        // 2 requests' worth (4 s) is missing.
        let verdict = throttle.admit_methods_read();
        assert_eq!(verdict.refused, Some((Limit::Reports, 4)));
        assert_eq!(verdict.resource_units, 1);
        assert_eq!(
            verdict.limit_percentage, None,
            "the RU bucket is nearly full"
        );
        assert_eq!(throttle.admit(false).refused, None, "other reads go on");
        assert_eq!(throttle.admit(true).refused, None, "writes go on");
        // Retrying before Retry-After is refused and charged again: -1 + 1.95 - 1 = -0.05, so
        // 1.05 requests' worth (2.1 s) is missing.
        tokio::time::advance(Duration::from_millis(3_900)).await;
        assert_eq!(
            throttle.admit_methods_read().refused,
            Some((Limit::Reports, 3))
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(throttle.admit_methods_read().refused, None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_report_meets_the_reports_limit_alone_and_shares_it_with_limited_methods() {
        let mut throttle = Throttle::new(1, 1000);
        for _ in 0..REPORTS_PER_10S {
            let verdict = throttle.admit_report_read();
            assert_eq!((verdict.refused, verdict.resource_units), (None, 0));
        }
        // The RU bucket never saw them: its one RU is still there.
        assert_eq!(throttle.admit(false).refused, None);
        // 5 per 10 s: the refused sixth is charged, so 2 requests' worth (4 s) is missing.
        assert_eq!(
            throttle.admit_report_read().refused,
            Some((Limit::Reports, 4))
        );
        // With /methods limited, the two draw on one bucket.
        let mut throttle = Throttle::new(1000, 1000).with_methods_limit(2);
        assert_eq!(throttle.admit_methods_read().refused, None);
        assert_eq!(throttle.admit_report_read().refused, None);
        assert_eq!(
            throttle
                .admit_methods_read()
                .refused
                .map(|(limit, _)| limit),
            Some(Limit::Reports)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn methods_reads_cost_one_ru_and_nothing_else_by_default() {
        let mut throttle = Throttle::new(3, 1000);
        for _ in 0..3 {
            assert_eq!(throttle.admit_methods_read().refused, None);
        }
        assert_eq!(
            throttle
                .admit_methods_read()
                .refused
                .map(|(limit, _)| limit),
            Some(Limit::ResourceUnits)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_names_the_bucket_that_keeps_the_client_waiting_longest() {
        // RU: 2 per 10 s (0.2/s); reports: 1 per 10 s (0.1/s).
        let mut throttle = Throttle::new(2, 1000).with_methods_limit(1);
        assert_eq!(throttle.admit_methods_read().refused, None);
        // RU 1 -> 0 is still covered; reports 0 -> -1: 2 requests' worth at 0.1/s.
        assert_eq!(
            throttle.admit_methods_read().refused,
            Some((Limit::Reports, 20))
        );
        // Both refuse now: RU (-1) needs 10 s, reports (floored at -1) 20 s.
        assert_eq!(
            throttle.admit_methods_read().refused,
            Some((Limit::Reports, 20))
        );
        // A plain read meets only the RU bucket: -2 needs 15 s.
        assert_eq!(
            throttle.admit(false).refused,
            Some((Limit::ResourceUnits, 15))
        );

        // The other way round: RU 1 per 10 s, reports 2 per 10 s.
        let mut throttle = Throttle::new(1, 1000).with_methods_limit(2);
        assert_eq!(throttle.admit_methods_read().refused, None);
        assert_eq!(
            throttle.admit_methods_read().refused,
            Some((Limit::ResourceUnits, 20))
        );
        // RU (floored at -1) needs 20 s, reports (-1) 10 s.
        assert_eq!(
            throttle.admit_methods_read().refused,
            Some((Limit::ResourceUnits, 20))
        );
    }
}
