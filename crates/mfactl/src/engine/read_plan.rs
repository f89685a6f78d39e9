//! The read planner: per run, the cheapest sound way to learn what a manifest needs, from the
//! quotas and the manifest's size, and the words that say which way was taken and why.
//!
//! Three bulk reads can stand in for per-user ones (docs/performance.md, "Reading in bulk"):
//! - the users listing with `$select=...,perUserMfaState` (not in Microsoft's schema, answered by
//!   Graph, read so by CIPP since 2025-03): a page of 999 users for 1 resource unit, in place of
//!   999 `requirements` reads; free when `allUsers:` lists the tenant anyway;
//! - the registration report (`/reports/authenticationMethods/userRegistrationDetails`): both
//!   sign-in preference values and the registered methods of every enabled user, 999 a page,
//!   under Graph's reports limit of 5 requests per 10 s; it replaces `/authentication/methods`,
//!   which Microsoft lists under the same limit, and is costed so;
//! - `GET /users/{id}/authentication`: requirements and signInPreferences in one read where both
//!   are read per user (unconfirmed on a live tenant).
//!
//! Every one is a hint, never the last word ([`super::bulk_reads`]): what it cannot give is read
//! per user, with one line saying so, and apply still reads each endpoint again before writing
//! it, so a stale value costs a skipped write, never a wrong one. This module is pure: it decides
//! from counts and quotas, and renders the lines; it sends nothing.

use std::time::Duration;

use crate::manifest::DesiredUser;
use crate::model::PerUserMfaState;
use crate::plan::estimate::Quotas;
use crate::text::thousands;

/// How live values are read (`--read-path`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadPath {
    /// Per run, whichever the quotas and the manifest's size make cheapest.
    #[default]
    Auto,
    /// Every bulk read that applies to what the manifest manages.
    Bulk,
    /// One read per user and endpoint, as before bulk reads existed.
    PerUser,
}

impl ReadPath {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadPath::Auto => "auto",
            ReadPath::Bulk => "bulk",
            ReadPath::PerUser => "per-user",
        }
    }
}

/// How a run reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    pub path: ReadPath,
    /// The tenant's size when the run was told (`--tenant-size`): what a listing costs.
    pub tenant_size: Option<u64>,
    /// Rows of the registration report last updated longer ago than this are not used.
    pub max_report_age: Duration,
}

/// The registration report's rows older than this are not used: Microsoft refreshes the report
/// periodically without saying how often, and apply's re-read guards every write anyway, so a
/// day bounds how far a plan made from it can lag without making it useless after a quiet night.
pub const MAX_REPORT_AGE: Duration = Duration::from_secs(24 * 3600);

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            path: ReadPath::Auto,
            tenant_size: None,
            max_report_age: MAX_REPORT_AGE,
        }
    }
}

/// The users a directory page holds at most (`$top=999`), for the listing and the report.
pub const PAGE: u64 = 999;
/// Parallel streams a large listing is split into ([`super::bulk_reads`]).
pub const STREAMS: u64 = 45;
/// Graph's identity and access reports limit: 5 requests per 10 s per app and tenant. The
/// client paces at 98 % of it, so 4 go at once and one every 2.04 s after.
const REPORTS_BURST: f64 = 4.0;
const REPORTS_INTERVAL_S: f64 = 10.0 / (5.0 * 0.98);

/// What the manifest asks to read, counted over the users planned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Users whose `perUserMfaState` is managed (`requirements`).
    pub requirements: u64,
    /// Users whose `preferredMethod` or `systemPreferred` is managed (`signInPreferences`).
    pub sign_in: u64,
    /// Users whose registered methods may matter: a preferred method is set, or `enabled`.
    pub methods: u64,
    /// Users named by userPrincipalName, resolved by a read each unless a listing names them.
    pub identity: u64,
}

/// The bulk reads chosen, each with the sentence that says why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Choice {
    pub listing: bool,
    pub report: bool,
    /// `GET /users/{id}/authentication` for users read per user on both endpoints.
    pub combined: bool,
    pub lines: Vec<String>,
}

/// Seconds `reads` per-user reads are held beyond the one round trip every read pays: by the
/// RU bucket once its burst is spent, or by the in-flight bound.
fn held(reads: u64, quotas: &Quotas) -> f64 {
    let reads = reads as f64;
    let bucket = ((reads - quotas.ru_capacity) / quotas.ru_refill.max(1e-9)).max(0.0);
    let in_flight = reads * quotas.latency / quotas.in_flight.max(1.0);
    bucket.max(in_flight)
}

/// Seconds `requests` under the reports limit are held beyond the first round trip (the
/// report's pages, one at a time, and `/methods` reads, which Microsoft lists under the same
/// limit).
fn reports_held(requests: u64) -> f64 {
    (requests as f64 - REPORTS_BURST).max(0.0) * REPORTS_INTERVAL_S
}

/// Per-user reads held less than this cost about one round trip: no bulk read can do better,
/// and the tenant is not even counted to find out.
const WORTH_A_LOOK: f64 = 1.0;

/// Pages of `users` users.
pub fn pages(users: u64) -> u64 {
    users.div_ceil(PAGE).max(1)
}

/// Seconds a listing of `tenant` users takes: a first page, then the rest in parallel streams.
fn listing_time(tenant: u64, latency: f64) -> f64 {
    let pages = pages(tenant);
    let rounds = if pages <= 3 {
        pages
    } else {
        1 + (pages - 1).div_ceil(STREAMS).max(1)
    };
    rounds as f64 * latency
}

/// "about 3 min", "about 37 s", "0.3 s".
fn duration(seconds: f64) -> String {
    if seconds >= 3600.0 {
        format!("about {:.1} h", seconds / 3600.0)
    } else if seconds >= 120.0 {
        format!("about {:.0} min", seconds / 60.0)
    } else if seconds >= 10.0 {
        format!("about {seconds:.0} s")
    } else {
        format!("{seconds:.1} s")
    }
}

/// A read planner's decision on one bulk read.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Read per user, because of what the words say.
    PerUser(String),
    /// Use the bulk read, because of what the words say.
    Bulk(String),
    /// The per-user reads would be held long enough for the bulk read to be worth it, but what
    /// it costs depends on the tenant's size: count the tenant's users and ask again.
    NeedsSize,
}

impl Verdict {
    pub fn is_bulk(&self) -> bool {
        matches!(self, Verdict::Bulk(_))
    }
}

/// Whether to read `perUserMfaState` from the users listing. `listed_anyway`: `allUsers:` lists
/// the tenant in any case, and selecting one more property costs nothing. `tenant`: the
/// tenant's size, when known. `None` when the manifest manages no state.
pub fn choose_listing(
    path: ReadPath,
    needs: &Needs,
    listed_anyway: bool,
    tenant: Option<u64>,
    quotas: &Quotas,
) -> Option<Verdict> {
    if needs.requirements == 0 && !listed_anyway {
        return None;
    }
    Some(match path {
        ReadPath::PerUser => Verdict::PerUser("--read-path per-user".to_owned()),
        _ if listed_anyway => Verdict::Bulk("allUsers: lists the tenant anyway".to_owned()),
        ReadPath::Bulk => Verdict::Bulk("--read-path bulk".to_owned()),
        ReadPath::Auto => {
            // A listing also names the userPrincipalNames the manifest gives.
            let all = needs.requirements + needs.sign_in + needs.identity;
            let saved = held(all, quotas) - held(needs.sign_in, quotas);
            match tenant {
                _ if saved < WORTH_A_LOOK => Verdict::PerUser(format!(
                    "{} reads fit Graph's burst of {} resource units",
                    thousands(needs.requirements),
                    thousands(quotas.ru_capacity as u64)
                )),
                None => Verdict::NeedsSize,
                Some(tenant) => {
                    let listing = listing_time(tenant, quotas.latency);
                    let words = format!(
                        "listing {} users takes {}; {} reads per user, {}",
                        thousands(tenant),
                        duration(listing),
                        thousands(needs.requirements),
                        duration(saved)
                    );
                    if listing < saved {
                        Verdict::Bulk(words)
                    } else {
                        Verdict::PerUser(words)
                    }
                }
            }
        }
    })
}

/// The line that says how `perUserMfaState` was read: from a listing of `pages` pages (split
/// into parallel streams when `streamed`), or per user.
pub fn listing_line(verdict: &Verdict, pages: u64, streamed: bool) -> String {
    match verdict {
        Verdict::Bulk(why) => format!(
            "Read path: perUserMfaState from the users listing ($select=perUserMfaState, {} {}{}) \
             in place of one requirements read per user ({why}).",
            thousands(pages),
            if pages == 1 { "page" } else { "pages" },
            if streamed {
                format!(" in {STREAMS} parallel streams")
            } else {
                String::new()
            }
        ),
        Verdict::PerUser(why) => format!("Read path: requirements per user ({why})."),
        Verdict::NeedsSize => "Read path: requirements per user.".to_owned(),
    }
}

/// Whether to read signInPreferences and registered methods from the registration report.
/// `enabled`: the tenant's enabled users (what the report's pages hold), when known;
/// `other_reads`: the per-user reads the run makes anyway (requirements not listed, identity).
/// `None` when the manifest manages neither.
pub fn choose_report(
    path: ReadPath,
    needs: &Needs,
    enabled: Option<u64>,
    other_reads: u64,
    quotas: &Quotas,
) -> Option<Verdict> {
    if needs.sign_in == 0 && needs.methods == 0 {
        return None;
    }
    let per_user = (held(other_reads + needs.sign_in, quotas) - held(other_reads, quotas))
        .max(reports_held(needs.methods));
    let per_user_words = format!(
        "{} signInPreferences reads and up to {} /authentication/methods reads, which Microsoft \
         lists under the reports limit of 5 requests per 10 s: {}",
        thousands(needs.sign_in),
        thousands(needs.methods),
        duration(per_user)
    );
    Some(match (path, enabled) {
        (ReadPath::PerUser, _) => Verdict::PerUser("--read-path per-user".to_owned()),
        (ReadPath::Bulk, _) => Verdict::Bulk("--read-path bulk".to_owned()),
        _ if per_user < WORTH_A_LOOK => Verdict::PerUser(per_user_words),
        (_, None) => Verdict::NeedsSize,
        (_, Some(enabled)) => {
            let pages = pages(enabled);
            let report = reports_held(pages) + pages as f64 * quotas.latency;
            let words = format!(
                "{} {} at that limit: {}, against {per_user_words}",
                thousands(pages),
                if pages == 1 { "page" } else { "pages" },
                duration(report)
            );
            if report < per_user {
                Verdict::Bulk(words)
            } else {
                Verdict::PerUser(words)
            }
        }
    })
}

/// The line that says how signInPreferences and registered methods are read.
pub fn report_line(verdict: &Verdict, needs: &Needs) -> String {
    let what = match (needs.sign_in > 0, needs.methods > 0) {
        (true, true) => "signInPreferences and registered methods",
        (true, false) => "signInPreferences",
        _ => "registered methods",
    };
    match verdict {
        Verdict::Bulk(why) => format!("Read path: {what} from the registration report ({why})."),
        Verdict::PerUser(why) => format!("Read path: {what} per user ({why})."),
        Verdict::NeedsSize => format!("Read path: {what} per user."),
    }
}

/// Whether users read per user on both endpoints are read with one GET of their
/// `authentication` entity (one read instead of two; a probe finds out whether Graph serves it,
/// and what it costs when Graph does not is that one read).
pub fn choose_combined(path: ReadPath, needs: &Needs) -> bool {
    path != ReadPath::PerUser && needs.requirements.min(needs.sign_in) > 0
}

/// What `users` ask to read; `resolved` says whether a user's object id is known without a
/// read (named by id, or named by a listing).
pub fn needs_of(users: &[DesiredUser], resolved: impl Fn(&DesiredUser) -> bool) -> Needs {
    let mut needs = Needs::default();
    for user in users {
        needs.requirements += u64::from(user.manages_requirements());
        needs.sign_in += u64::from(user.manages_sign_in_preferences());
        needs.methods += u64::from(
            user.preferred_method.is_some()
                || user.per_user_mfa_state == Some(PerUserMfaState::Enabled),
        );
        needs.identity += u64::from(!resolved(user));
    }
    needs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Graph's largest tier, 100 ms latency, 256 in flight.
    fn quotas() -> Quotas {
        Quotas {
            write_capacity: 3_000.0,
            write_refill: 20.0,
            ru_capacity: 8_000.0,
            ru_refill: 800.0,
            write_cap: None,
            ru_cap: None,
            latency: 0.1,
            in_flight: 256.0,
        }
    }

    #[test]
    fn a_listing_that_happens_anyway_always_carries_the_state() {
        let needs = Needs {
            requirements: 3,
            ..Needs::default()
        };
        let verdict = choose_listing(ReadPath::Auto, &needs, true, None, &quotas()).unwrap();
        assert!(verdict.is_bulk());
        assert!(listing_line(&verdict, 101, true).contains("101 pages in 45 parallel streams"));
        assert!(listing_line(&verdict, 101, true).contains("allUsers"));
        let verdict = choose_listing(ReadPath::PerUser, &needs, true, None, &quotas()).unwrap();
        assert_eq!(verdict, Verdict::PerUser("--read-path per-user".into()));
        let none = Needs::default();
        assert_eq!(
            choose_listing(ReadPath::Auto, &none, false, None, &quotas()),
            None
        );
    }

    #[test]
    fn named_users_are_listed_only_when_their_reads_would_be_held() {
        let few = Needs {
            requirements: 50,
            sign_in: 50,
            ..Needs::default()
        };
        let chosen = |path, needs: &Needs, tenant| {
            choose_listing(path, needs, false, tenant, &quotas()).unwrap()
        };
        // Fifty reads fit the burst: not even the tenant's size is asked for.
        assert!(matches!(
            chosen(ReadPath::Auto, &few, None),
            Verdict::PerUser(_)
        ));
        assert!(chosen(ReadPath::Bulk, &few, None).is_bulk());
        let many = Needs {
            requirements: 20_000,
            sign_in: 20_000,
            ..Needs::default()
        };
        assert_eq!(chosen(ReadPath::Auto, &many, None), Verdict::NeedsSize);
        assert!(chosen(ReadPath::Auto, &many, Some(100_000)).is_bulk());
        // A tenant far larger than the manifest costs more to list than to read the users.
        assert!(!chosen(ReadPath::Auto, &many, Some(50_000_000)).is_bulk());
    }

    #[test]
    fn the_report_wins_when_methods_would_be_read_at_the_reports_limit() {
        // 20,000 users with a preferred method: /methods at 5 per 10 s would take hours.
        let full = Needs {
            requirements: 20_000,
            sign_in: 20_000,
            methods: 20_000,
            identity: 0,
        };
        let chosen = |path, needs: &Needs, enabled, other| {
            choose_report(path, needs, enabled, other, &quotas()).unwrap()
        };
        assert_eq!(chosen(ReadPath::Auto, &full, None, 0), Verdict::NeedsSize);
        let verdict = chosen(ReadPath::Auto, &full, Some(20_000), 0);
        assert!(verdict.is_bulk(), "{verdict:?}");
        assert!(report_line(&verdict, &full).contains("21 pages at that limit"));
        // systemPreferred alone for a large tenant: 800 reads a second beat 490 users a second.
        let flag = Needs {
            sign_in: 100_000,
            ..Needs::default()
        };
        assert!(!chosen(ReadPath::Auto, &flag, Some(100_000), 0).is_bulk());
        // A few users: within both bursts, read them.
        let few = Needs {
            sign_in: 4,
            methods: 4,
            ..Needs::default()
        };
        assert!(matches!(
            chosen(ReadPath::Auto, &few, None, 0),
            Verdict::PerUser(_)
        ));
        // Twenty /methods reads past the burst, but a tenant of 100,000: still per user.
        let some = Needs {
            sign_in: 20,
            methods: 20,
            ..Needs::default()
        };
        assert!(!chosen(ReadPath::Auto, &some, Some(100_000), 0).is_bulk());
        assert!(chosen(ReadPath::Bulk, &few, None, 0).is_bulk());
        let verdict = chosen(ReadPath::PerUser, &full, None, 0);
        assert!(report_line(&verdict, &full).ends_with("per user (--read-path per-user)."));
    }

    #[test]
    fn times_are_said_in_round_figures() {
        assert_eq!(duration(0.25), "0.2 s");
        assert_eq!(duration(37.4), "about 37 s");
        assert_eq!(duration(600.0), "about 10 min");
        assert_eq!(duration(9_000.0), "about 2.5 h");
        assert_eq!(pages(0), 1);
        assert_eq!(pages(20_000), 21);
    }
}
