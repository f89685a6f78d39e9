//! Graph's throttling for one application in one tenant (graph-api.md §6), as two token buckets.
//!
//! It exists so that mfactl's pacing and retry are exercised against the same arithmetic Graph
//! applies: a resource-unit (RU) bucket that every metered request draws from, and a separate
//! write bucket that only PATCHes draw from. The detail that matters most is "usage keeps
//! counting while throttled": a refused request is still charged, so a client that retries
//! before `Retry-After` digs itself deeper (down to minus one capacity).
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
}

impl Limit {
    /// The `x-ms-throttle-information` value.
    pub fn information(self) -> &'static str {
        match self {
            Limit::ResourceUnits => "ResourceUnitLimitExceeded",
            Limit::Writes => "WriteLimitExceeded",
        }
    }

    /// The first part of `x-ms-throttle-scope`; the app and tenant ids follow.
    pub fn scope_prefix(self) -> &'static str {
        match self {
            Limit::ResourceUnits => "Tenant_Application/ReadWrite",
            Limit::Writes => "Tenant_Application/Write",
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

    fn used_fraction(&self) -> f64 {
        (self.capacity - self.tokens) / self.capacity
    }
}

/// The two buckets of one app + tenant.
#[derive(Clone, Debug)]
pub struct Throttle {
    resource_units: Bucket,
    writes: Bucket,
}

impl Throttle {
    /// `ru_per_10s` RU per 10 s and `writes_per_150s` writes per 150 s, both full at start.
    pub fn new(ru_per_10s: u32, writes_per_150s: u32) -> Throttle {
        let now = Instant::now();
        Throttle {
            resource_units: Bucket::new(ru_per_10s, 10.0, now),
            writes: Bucket::new(writes_per_150s, 150.0, now),
        }
    }

    /// Meters one request: a GET costs 1 RU, a PATCH 1 RU and 1 write. A refused request is
    /// charged all the same (Graph keeps counting usage while it throttles).
    pub fn admit(&mut self, is_write: bool) -> Verdict {
        let now = Instant::now();
        self.resource_units.refill(now);
        self.writes.refill(now);
        let ru_cost = 1.0;
        let write_cost = if is_write { 1.0 } else { 0.0 };
        let ru_ok = self.resource_units.covers(ru_cost);
        let writes_ok = !is_write || self.writes.covers(write_cost);
        self.resource_units.charge(ru_cost);
        if is_write {
            self.writes.charge(write_cost);
        }
        let refused = match (ru_ok, writes_ok) {
            (true, true) => None,
            (false, true) => Some((
                Limit::ResourceUnits,
                self.resource_units.seconds_until_covers(ru_cost),
            )),
            (true, false) => Some((Limit::Writes, self.writes.seconds_until_covers(write_cost))),
            (false, false) => {
                let ru_wait = self.resource_units.seconds_until_covers(ru_cost);
                let write_wait = self.writes.seconds_until_covers(write_cost);
                // Name the bucket that keeps the client waiting longest.
                if write_wait >= ru_wait {
                    Some((Limit::Writes, write_wait))
                } else {
                    Some((Limit::ResourceUnits, ru_wait))
                }
            }
        };
        let used = self.resource_units.used_fraction();
        Verdict {
            refused,
            resource_units: 1,
            limit_percentage: (used > 0.8).then(|| used.min(1.8)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
