//! What an apply will cost before it starts: the calls it makes and the least time Graph's
//! quotas let it take. Pure arithmetic over the plan's counts and the budgets' shapes; no I/O.
//!
//! An apply makes, per planned write, one re-read (the drift check) and one PATCH. Writes are
//! what binds: Graph's write bucket holds 3,000 and refills 20 a second (graph-api.md §6), so a
//! run of up to 3,000 writes goes at network speed and a larger one takes at least
//! (writes − 3,000) / 20 seconds. The resource-unit bucket (every request costs one) rarely
//! binds, but is checked too, and so is any fixed cap the admin set.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The quotas an apply runs under (the transport's budgets, as numbers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quotas {
    /// Write bucket: capacity and refill per second.
    pub write_capacity: f64,
    pub write_refill: f64,
    /// Resource-unit bucket: capacity and refill per second.
    pub ru_capacity: f64,
    pub ru_refill: f64,
    /// Fixed caps per second (`--write-rate`, `--read-rate`), if any.
    pub write_cap: Option<f64>,
    pub ru_cap: Option<f64>,
    /// Mean round trip measured while planning, in seconds.
    pub latency: f64,
    /// Requests in flight at most.
    pub in_flight: f64,
}

impl Quotas {
    /// Graph's documented quotas for a tenant of over 500 users (graph-api.md §6): 3,000 writes
    /// per 150 s, 8,000 resource units per 10 s, no fixed caps.
    pub fn graph(latency: f64, in_flight: f64) -> Quotas {
        Quotas {
            write_capacity: 3000.0,
            write_refill: 20.0,
            ru_capacity: 8000.0,
            ru_refill: 800.0,
            write_cap: None,
            ru_cap: None,
            latency,
            in_flight,
        }
    }
}

/// What binds an apply's duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The writes fit Graph's write burst: round trips bind.
    Latency,
    /// Graph's write bucket: its refill after the burst.
    WriteBucket,
    /// Graph's resource-unit bucket.
    ResourceUnits,
    /// The admin's `--write-rate`.
    WriteCap,
    /// The admin's `--read-rate`.
    ReadCap,
}

/// The cost of applying a plan.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Estimate {
    /// GETs the apply makes (one re-read per write).
    pub reads: u64,
    /// PATCHes.
    pub writes: u64,
    /// The least time it can take, in seconds.
    pub seconds: f64,
    /// What sets that time.
    pub bound: Bound,
    /// The quota behind `bound`, for the description: writes per window, requests per 10 s,
    /// or the fixed cap per second.
    pub quota: f64,
    /// The write bucket's window in seconds (150 on Graph).
    pub window: f64,
}

/// The least time `work` requests take through a bucket of `capacity` refilled at `refill` a
/// second (full at the start), and under a fixed cap (a second's burst) if any.
fn through(work: f64, capacity: f64, refill: f64) -> f64 {
    ((work - capacity) / refill.max(f64::MIN_POSITIVE)).max(0.0)
}

/// The estimate for an apply of `writes` PATCHes (each preceded by a re-read).
pub fn estimate(writes: u64, quotas: &Quotas) -> Estimate {
    let reads = writes;
    let w = writes as f64;
    let requests = w + reads as f64;
    // Each write waits for its re-read, then for its own answer: at least two round trips,
    // and more when there are more requests than may be on their way at once.
    let rounds = (requests / quotas.in_flight.max(1.0)).ceil().max(2.0);
    let mut candidates = vec![
        (rounds * quotas.latency, Bound::Latency),
        (
            through(w, quotas.write_capacity, quotas.write_refill),
            Bound::WriteBucket,
        ),
        (
            through(requests, quotas.ru_capacity, quotas.ru_refill),
            Bound::ResourceUnits,
        ),
    ];
    if let Some(cap) = quotas.write_cap {
        candidates.push((through(w, cap, cap), Bound::WriteCap));
    }
    if let Some(cap) = quotas.ru_cap {
        candidates.push((through(requests, cap, cap), Bound::ReadCap));
    }
    let (seconds, bound) = candidates
        .into_iter()
        .fold((0.0, Bound::Latency), |best, candidate| {
            if candidate.0 > best.0 {
                candidate
            } else {
                best
            }
        });
    let quota = match bound {
        Bound::Latency | Bound::WriteBucket => quotas.write_capacity,
        Bound::ResourceUnits => quotas.ru_refill * 10.0,
        Bound::WriteCap => quotas.write_cap.unwrap_or_default(),
        Bound::ReadCap => quotas.ru_cap.unwrap_or_default(),
    };
    Estimate {
        reads,
        writes,
        seconds: if writes == 0 { 0.0 } else { seconds },
        bound,
        quota,
        window: quotas.write_capacity / quotas.write_refill.max(f64::MIN_POSITIVE),
    }
}

impl Estimate {
    /// `1,240 writes and 1,240 re-reads: about 4 s, within Graph's write burst` or
    /// `62,000 writes and 62,000 re-reads: at least 49 min at 3,000 writes per 150 s`.
    pub fn describe(&self) -> String {
        let work = format!(
            "{} {} and {} {}",
            thousands(self.writes),
            if self.writes == 1 { "write" } else { "writes" },
            thousands(self.reads),
            if self.reads == 1 {
                "re-read"
            } else {
                "re-reads"
            }
        );
        let time = duration(self.seconds);
        let quota = thousands(self.quota.round() as u64);
        match self.bound {
            Bound::Latency if self.seconds < 0.5 => {
                format!("{work}: under a second, within Graph's write burst of {quota}")
            }
            Bound::Latency => {
                format!("{work}: about {time}, within Graph's write burst of {quota}")
            }
            Bound::WriteBucket => format!(
                "{work}: at least {time} at {quota} writes per {} s (Graph's write quota)",
                self.window.round()
            ),
            Bound::ResourceUnits => format!(
                "{work}: at least {time} at {quota} requests per 10 s (Graph's quota for this \
                 tenant size)"
            ),
            Bound::WriteCap => format!("{work}: at least {time} at --write-rate {quota}/s"),
            Bound::ReadCap => format!("{work}: at least {time} at --read-rate {quota}/s"),
        }
    }
}

/// `49 min`, `2 h 05 min`, `4 s`, `under a second`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0 => "under a second".to_owned(),
        1..=119 => format!("{s} s"),
        120..=3599 => format!("{} min", (seconds / 60.0).round() as u64),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

pub use crate::text::thousands;

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> Quotas {
        Quotas::graph(0.1, 256.0)
    }

    #[test]
    fn writes_within_the_burst_are_bound_by_latency() {
        let estimate = estimate(1240, &graph());
        assert_eq!(estimate.bound, Bound::Latency);
        assert!(estimate.seconds < 5.0, "{estimate:?}");
        assert_eq!(
            estimate.describe(),
            format!(
                "1,240 writes and 1,240 re-reads: about {}, within Graph's write burst of 3,000",
                duration(estimate.seconds)
            )
        );
    }

    #[test]
    fn writes_past_the_burst_take_the_refill_time() {
        let estimate = estimate(62_000, &graph());
        assert_eq!(estimate.bound, Bound::WriteBucket);
        assert_eq!(estimate.seconds, 2950.0);
        assert_eq!(
            estimate.describe(),
            "62,000 writes and 62,000 re-reads: at least 49 min at 3,000 writes per 150 s \
             (Graph's write quota)"
        );
    }

    #[test]
    fn a_fixed_cap_binds_when_it_is_tighter() {
        let quotas = Quotas {
            write_cap: Some(10.0),
            ..graph()
        };
        let estimate = estimate(100, &quotas);
        assert_eq!(estimate.bound, Bound::WriteCap);
        assert_eq!(estimate.seconds, 9.0);
    }

    #[test]
    fn nothing_to_write_costs_nothing() {
        assert_eq!(estimate(0, &graph()).seconds, 0.0);
    }

    #[test]
    fn durations_and_numbers_read_naturally() {
        assert_eq!(duration(0.3), "under a second");
        assert_eq!(duration(4.4), "4 s");
        assert_eq!(duration(2950.0), "49 min");
        assert_eq!(duration(5000.0), "1 h 23 min");
        assert_eq!(thousands(62_000), "62,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
