//! Cases 7–8 (issue 17): the read planner's bulk reads against per-user reads, at Graph's
//! quotas and latency (the emulator's RU bucket for the tenant's size, writes 3,000 per 150 s,
//! 50–150 ms a request), every figure beside its ideal and ratio:
//!
//! 7. a `perUserMfaState`-only plan of `allUsers` (`userType: all`) of 100,000 users: auto
//!    (which reads the state from the users listing), per user, and auto with every bulk read
//!    refused by the emulator (the fallback). The per-user ideal is 100,000 reads at the
//!    largest tier's 800 RU a second (the 125 s); the target is an eighth of it, in
//!    fewer than 2,000 requests, with the same changes as the per-user plan;
//! 8. a full plan (all three fields, `allUsers` of the accounts that can sign in) of 20,000
//!    users with `/authentication/methods` under the reports limit of 5 per 10 s: auto (the
//!    listing and the registration report), target 60 s. Per user, `/methods` at that limit
//!    would take hours, so the per-user and fallback runs of this plan are measured with
//!    `/methods` at the RU bucket only, and compared with each other.
//!
//! `cargo bench --bench graph -- --bulk` runs these alone (`--quick` for 20,000 and 5,000
//! users).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mfactl::engine::{self, ReadOptions, ReadPath};
use mfactl::graph::{
    BucketShape, GraphClient, Transport, TransportConfig, TransportStats, ru_tier,
};
use mfactl::manifest;
use mfactl::plan::Plan;
use mfactl_emulator::{Emulator, EmulatorConfig, Refusals, Stats, Tenant};
use secrecy::SecretString;

use super::{
    CONCURRENCY, GRAPH_LATENCY, SEED, TOKEN, graph_calls, mean_latency, n, pct, s, verdict,
};

/// Graph's largest tier refills 800 resource units a second.
const LARGE_TIER_RU_PER_S: f64 = 800.0;
/// The reports limit: 5 requests per 10 s, full at start.
const REPORTS_BURST: f64 = 5.0;
const REPORTS_PER_S: f64 = 0.5;

/// One plan of a case: the plan, the read planner's lines, the time, the traffic.
struct BulkRun {
    plan: Plan,
    said: Vec<String>,
    elapsed: Duration,
    server: Stats,
    client: TransportStats,
}

/// Plans `manifest` (YAML) against an emulator over `tenant` configured by `config`, reading by
/// `path`; the client as the CLI builds it for a tenant of that size.
async fn bulk_run(
    tenant: &Tenant,
    manifest: &str,
    config: EmulatorConfig,
    path: ReadPath,
) -> BulkRun {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("manifest.yaml");
    std::fs::write(&file, manifest).expect("manifest written");
    let manifest = manifest::load(&file).expect("a valid manifest");
    let users = tenant.users.len() as u64;
    let emulator = Emulator::start(tenant.clone(), config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator");
    let mut transport = TransportConfig::new(emulator.url(), SecretString::from(TOKEN));
    transport.concurrency = CONCURRENCY;
    transport.ru_bucket = BucketShape::new(ru_tier(users), Duration::from_secs(10));
    let client = GraphClient::new(Transport::new(transport).expect("client"));
    let options = ReadOptions {
        path,
        ..ReadOptions::default()
    };
    let started = Instant::now();
    let (plan, said) = engine::plan_with(&client, &manifest, CONCURRENCY, &options)
        .await
        .expect("the emulator accepts the token");
    let elapsed = started.elapsed();
    assert_eq!(plan.summary.failed, 0, "no user failed to plan");
    let run = BulkRun {
        plan,
        said,
        elapsed,
        server: emulator.stats(),
        client: client.transport().stats(),
    };
    emulator.shutdown().await;
    run
}

/// What the plan changes, by user: the changes, not their order (a listing split into streams
/// lists users in another order).
fn changes(plan: &Plan) -> BTreeMap<String, String> {
    let doc = serde_json::to_value(plan).expect("a plan serialises");
    doc["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|user| {
            let mut user = user.clone();
            let id = user["id"].as_str().unwrap_or_default().to_owned();
            user.as_object_mut().map(|u| u.remove("notes"));
            (id, user.to_string())
        })
        .collect()
}

fn emulator_config(methods_per_10s: Option<u32>, refuse: Refusals) -> EmulatorConfig {
    EmulatorConfig {
        latency: Some(GRAPH_LATENCY),
        methods_per_10s,
        refuse,
        ..EmulatorConfig::default()
    }
}

/// Every bulk read refused.
fn refusing_all() -> Refusals {
    Refusals {
        per_user_mfa_state_select: true,
        registration_report: true,
        authentication: true,
    }
}

fn print_run(label: &str, run: &BulkRun) {
    println!(
        "  {label}: {} — {} Graph calls in {} HTTP requests (calls by purpose: identity {}, \
         read {}, report {}, methods {}; 429s {})",
        s(run.elapsed.as_secs_f64()),
        n(graph_calls(&run.server)),
        n(run.server.requests),
        n(run.client.calls.identity),
        n(run.client.calls.reads),
        n(run.client.calls.reports),
        n(run.client.calls.methods),
        n(run.server.throttled)
    );
    for line in &run.said {
        println!("    {line}");
    }
}

/// The three plans of a case, checked to list the same changes: auto with `/methods` at
/// `methods_per_10s`, per user, and auto with every bulk read refused (those two with `/methods`
/// at the RU bucket only).
async fn three_runs(tenant: &Tenant, manifest: &str, methods_per_10s: Option<u32>) -> [BulkRun; 3] {
    let none = Refusals::default();
    let bulk = bulk_run(
        tenant,
        manifest,
        emulator_config(methods_per_10s, none),
        ReadPath::Auto,
    )
    .await;
    let per_user = bulk_run(
        tenant,
        manifest,
        emulator_config(None, none),
        ReadPath::PerUser,
    )
    .await;
    let refused = bulk_run(
        tenant,
        manifest,
        emulator_config(None, refusing_all()),
        ReadPath::Auto,
    )
    .await;
    assert_eq!(
        changes(&bulk.plan),
        changes(&per_user.plan),
        "bulk plans what per-user plans"
    );
    assert_eq!(
        changes(&refused.plan),
        changes(&per_user.plan),
        "so does the fallback"
    );
    [bulk, per_user, refused]
}

/// The fallback run's time as a share of the per-user run's, against the 5 % target.
fn print_fallback(refused: &BulkRun, per_user_elapsed: f64) {
    let ratio = refused.elapsed.as_secs_f64() / per_user_elapsed;
    println!(
        "  fallback: {} = {} of the per-user time (target within 5 %: {})",
        s(refused.elapsed.as_secs_f64()),
        pct(ratio),
        verdict((ratio - 1.0).abs() <= 0.05 || ratio < 1.0)
    );
}

/// The listing's critical path: a first page, then the longest stream (one per first
/// character of the userPrincipalName), a page at a time.
fn listing_round_trips(tenant: &Tenant) -> u64 {
    let mut by_first: BTreeMap<char, u64> = BTreeMap::new();
    for user in &tenant.users {
        let first = user
            .user_principal_name
            .chars()
            .next()
            .unwrap_or('?')
            .to_ascii_lowercase();
        *by_first.entry(first).or_default() += 1;
    }
    let longest = by_first
        .values()
        .map(|c| c.div_ceil(999))
        .max()
        .unwrap_or(1);
    1 + longest
}

pub async fn state_only_case(users: usize) {
    println!();
    println!(
        "== 7. perUserMfaState-only plan of allUsers (userType: all), {} users (issue 17)",
        n(users as u64)
    );
    let tenant = Tenant::generate(users, SEED);
    let manifest = "version: 1\nallUsers:\n  userType: all\n  perUserMfaState: disabled\n";
    println!(
        "  setup: tenant of {} generated users (seed {SEED}); latency {}–{} ms; emulator at \
         Graph's quotas (RU {} per 10 s); manifest `allUsers: {{userType: all, perUserMfaState: \
         disabled}}`",
        n(users as u64),
        GRAPH_LATENCY.0.as_millis(),
        GRAPH_LATENCY.1.as_millis(),
        n(u64::from(tenant.ru_tier()))
    );
    let [bulk, per_user, refused] = three_runs(&tenant, manifest, None).await;

    let latency = mean_latency(Some(GRAPH_LATENCY)).as_secs_f64();
    let per_user_ideal = users as f64 / LARGE_TIER_RU_PER_S;
    let target = per_user_ideal / 8.0;
    let bulk_ideal = listing_round_trips(&tenant) as f64 * latency + latency;
    let elapsed = bulk.elapsed.as_secs_f64();
    let calls = graph_calls(&bulk.server);
    print_run("auto (bulk listing)", &bulk);
    println!(
        "  auto: {} against the target {} (= the per-user ideal {} ÷ 8: {} reads at {} RU/s) → \
         {} of the target: {}; {} Graph calls (target < 2,000: {}); same changes as per user \
         ({} users): yes",
        s(elapsed),
        s(target),
        s(per_user_ideal),
        n(users as u64),
        LARGE_TIER_RU_PER_S,
        pct(elapsed / target),
        verdict(elapsed <= target),
        n(calls),
        verdict(calls < 2_000),
        n(per_user.plan.summary.to_change)
    );
    println!(
        "    bulk ideal {} = ({} listing round trips on the critical path: a first page, then \
         the longest of 45 streams; + 1 for /organization) × {} ms → {} of ideal",
        s(bulk_ideal),
        listing_round_trips(&tenant),
        (latency * 1000.0).round(),
        pct(bulk_ideal / elapsed)
    );
    print_run("per user", &per_user);
    let per_user_elapsed = per_user.elapsed.as_secs_f64();
    let from_full = (users as f64 - f64::from(tenant.ru_tier())).max(0.0) / LARGE_TIER_RU_PER_S;
    println!(
        "  per user: {} against its ideal {} (the issue's: every read at {} RU/s) → {} of ideal; \
         {} of the bucket bound {} (the first {} reads from the full bucket at once)",
        s(per_user_elapsed),
        s(per_user_ideal),
        LARGE_TIER_RU_PER_S,
        pct(per_user_ideal / per_user_elapsed),
        pct(from_full / per_user_elapsed),
        s(from_full),
        n(u64::from(tenant.ru_tier()))
    );
    print_run("auto, every bulk read refused (fallback)", &refused);
    print_fallback(&refused, per_user_elapsed);
}

pub async fn full_case(users: usize) {
    println!();
    println!(
        "== 8. Full plan (three fields) of allUsers that can sign in, {} users, /methods at the \
         reports limit (issue 17)",
        n(users as u64)
    );
    let tenant = Tenant::generate(users, SEED);
    let disabled = tenant.users.iter().filter(|u| !u.account_enabled).count() as u64;
    let enabled = users as u64 - disabled;
    let manifest = "version: 1
allUsers:
  userType: all
  accountEnabled: true
  perUserMfaState: disabled
  preferredMethod: [push, oath, sms]
  systemPreferred: true
";
    println!(
        "  setup: tenant of {} generated users (seed {SEED}; {} disabled, whom the registration \
         report leaves out); latency {}–{} ms; emulator at Graph's quotas with \
         --methods-per-10s 5; manifest `allUsers: {{userType: all, accountEnabled: true, \
         perUserMfaState: disabled, preferredMethod: [push, oath, sms], systemPreferred: true}}`",
        n(users as u64),
        n(disabled),
        GRAPH_LATENCY.0.as_millis(),
        GRAPH_LATENCY.1.as_millis()
    );
    let [bulk, per_user, refused] = three_runs(&tenant, manifest, Some(5)).await;

    let latency = mean_latency(Some(GRAPH_LATENCY)).as_secs_f64();
    let pages = enabled.div_ceil(999) as f64;
    let listing = listing_round_trips(&tenant) as f64 * latency;
    // The report's pages follow one another (each names the next); past the first five, the
    // reports limit lets one through every 2 s.
    let report = (pages * latency).max((pages - REPORTS_BURST).max(0.0) / REPORTS_PER_S + latency);
    let ideal = latency + listing + report;
    let elapsed = bulk.elapsed.as_secs_f64();
    print_run("auto (listing and registration report)", &bulk);
    println!(
        "  auto: {} (target ≤ 60 s: {}); ideal {} = /organization {} + the listing {} + the \
         report {} (max({} pages × {} ms, ({} − 5 at once) ÷ 0.5 a second + one round trip)) → \
         {} of ideal; same changes as per user ({} users to change, {} blocked): yes",
        s(elapsed),
        verdict(elapsed <= 60.0),
        s(ideal),
        s(latency),
        s(listing),
        s(report),
        pages,
        (latency * 1000.0).round(),
        pages,
        pct(ideal / elapsed),
        n(per_user.plan.summary.to_change),
        n(per_user.plan.summary.blocked)
    );
    println!(
        "    per user, the {} /methods reads this plan needs would take {:.1} h at 5 per 10 s; \
         `allUsers` with the {} disabled accounts too would add up to as many /methods reads \
         ({:.0} min at that limit), the report having no row for them",
        n(per_user.client.calls.methods),
        per_user.client.calls.methods as f64 / REPORTS_PER_S / 3600.0,
        n(disabled),
        disabled as f64 / REPORTS_PER_S / 60.0
    );
    print_run("per user (/methods at the RU bucket only)", &per_user);
    let per_user_elapsed = per_user.elapsed.as_secs_f64();
    print_run(
        "auto, every bulk read refused (/methods at the RU bucket only)",
        &refused,
    );
    print_fallback(&refused, per_user_elapsed);
}
