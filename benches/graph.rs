//! Converge at the speed Graph allows (issue 6). Every figure is printed beside an ideal that the
//! benchmark computes from the emulator's buckets and latency, with the 429s it took to get there:
//!
//! 1. plan of 20,000 users at Graph's quotas and latency, against the RU bucket's ideal;
//! 2. apply of 1,000 changes, against the latency-bound ideal (the write burst covers them);
//! 3. apply of 10,000 changes, against the write bucket's ideal;
//! 4. the transport's own overhead: plan reads per second with no limit and no latency;
//! 5. peak memory of plan and apply of 100,000 and 1,000,000 changing users, each in a process
//!    of its own, against an in-process emulator that does not throttle;
//! 6. `mfactl export` of 100,000 users (a YAML manifest, then a tenant file) by the real binary
//!    in a process of its own, the emulator not throttling: time, reads per second and peak RSS;
//! 7. and 8. the read planner's bulk reads against per-user reads (issue 17, `graph/bulk.rs`);
//! 9. one manifest across 20 tenants of 2,000 users (`plan|apply --tenants`, issue 21) by the
//!    real binary against one emulator serving them all: the plan against the largest tenant
//!    alone, the apply against the app-wide write ceiling (`graph/tenants.rs`).
//!
//! Cases 1–6 read per user (`--read-path per-user`): they measure the per-user pipeline, its
//! pacing and its memory, which the bulk reads of cases 7–8 stand in for where they can.
//!
//! Cases 1–4 run the library in-process, as the CLI wires it. Asserts only correctness (every
//! user converged, none failed), never time: the machines are shared and noisy.
//!
//! `cargo bench --bench graph` (about half an hour: case 3 alone is six minutes of Graph's write
//! bucket); `-- --quick` for smaller sizes, `-- --throughput` for cases 1–4 alone, `-- --memory`
//! for case 5 alone, `-- --export` for case 6 alone, `-- --bulk` for cases 7–8 alone,
//! `-- --tenants` for case 9 alone.
//!
//! What the ideals count:
//! - **Metered** (graph-api.md §6, as the emulator's `throttle` module applies it): every Graph
//!   call that reaches a resource costs 1 RU — a GET answered 200, a PATCH answered 2xx, a call
//!   refused with 429 (Graph keeps charging while it throttles) and a 404; a PATCH also costs 1
//!   write. A `$batch` item costs what it would alone; the envelope costs nothing.
//! - **Bucket bound**: `max(0, (spent − level at the start) / refill)`. Buckets are full when the
//!   emulator starts; an apply starts with what the plan before it left, estimated as
//!   `capacity − spent + refill × time since the start` (an upper bound: it ignores refill lost
//!   while the bucket sat full, so the ideal can only come out low, never flattering).
//! - **Latency**: the emulator's uniform latency, by its mean, once per HTTP request (a `$batch`
//!   is one round trip). Dependent round trips per user are a critical path no pacing can
//!   shorten; and with at most `TransportConfig.concurrency` calls in flight (batch items
//!   counted one by one) `calls × mean latency / in flight` is a throughput bound.
//! - **Ideal** = `max(bucket bound + critical path, in-flight bound)`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

#[path = "graph/bulk.rs"]
mod bulk;

#[path = "graph/tenants.rs"]
mod tenants;

use mfactl::engine;
use mfactl::graph::{
    BucketShape, Calls, GraphClient, Transport, TransportConfig, TransportStats, ru_tier,
};
use mfactl::manifest::{self, DesiredUser, Manifest, Origin};
use mfactl::model::{PerUserMfaState, PreferredMethod, PreferredMethods};
use mfactl::plan::{Plan, Status};
use mfactl::report;
use mfactl_emulator::{Emulator, EmulatorConfig, Stats, Tenant, TenantUser};
use secrecy::SecretString;

/// Case 6's token: opaque, so that the export's reads are not checked against `roles` (the
/// emulator without an `auth:` section takes any token).
const EXPORT_TOKEN: &str = "opaque-export-token";
/// Seeds the generated tenants.
const SEED: u64 = 42;
/// Users in flight for the engine and requests in flight for the transport: the CLI's default
/// `--concurrency`, which it passes to both.
const CONCURRENCY: usize = 256;
/// Graph-like latency per HTTP request.
const GRAPH_LATENCY: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(150));
/// Case 4's target, on this two-core machine.
const OVERHEAD_TARGET_READS_PER_S: f64 = 10_000.0;
/// The token every run sends: shaped like an app token from Entra ID, which lists its application
/// permissions in `roles` (unsigned; the emulator without an `auth:` section takes any token).
/// With it, as with any real app token, apply writes without first probing each kind of write
/// (an opaque token costs one round trip per kind: see `engine::Breaker::trust`).
const TOKEN: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpZHR5cCI6ImFwcCIsInJvbGVzIjpbIlVzZXJBdXRoZW50aWNhdGlvbk1ldGhvZC5SZWFkV3JpdGUuQWxsIiwiUG9saWN5LlJlYWRXcml0ZS5BdXRoZW50aWNhdGlvbk1ldGhvZCJdfQ.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // This executable is also the two helper processes of case 5.
    match args.get(1).map(String::as_str) {
        Some("--launch") => return launch(&args[2..]),
        Some("--standin") => return standin(&args[2..]),
        _ => {}
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `--memory`: case 5 alone (peak memory), which needs no Graph-like pacing to be meaningful.
    let memory_only = args.iter().any(|a| a == "--memory");
    // `--throughput`: cases 1-4 alone (the memory case takes about 20 minutes).
    let throughput_only = args.iter().any(|a| a == "--throughput");
    // `--export`: case 6 alone.
    let export_only = args.iter().any(|a| a == "--export");
    // `--bulk`: cases 7-8 alone.
    let bulk_only = args.iter().any(|a| a == "--bulk");
    // `--tenants`: case 9 alone.
    let tenants_only = args.iter().any(|a| a == "--tenants");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "mfactl graph benchmark{} — {} CPUs; every ratio is to an ideal computed below it",
        if quick { " (quick)" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "Emulator at Graph's quotas unless said: RU bucket by tenant size (8,000 per 10 s above \
         500 users), writes 3,000 per 150 s, both full at start; 1 RU per GET and per PATCH, \
         the PATCH also 1 write."
    );
    println!(
        "Client: TransportConfig::new defaults ({CONCURRENCY} calls in flight at most, $batch on, \
         5 ms linger) with ru_bucket = ru_tier(tenant users) per 10 s, as cli/args.rs sets it; \
         engine concurrency {CONCURRENCY}. Manifests name users by object id (no UPN lookups) \
         and change both endpoints of every user: systemPreferred and perUserMfaState flipped, \
         preferredMethod the first usable one (a /methods read where it differs)."
    );

    runtime.block_on(async {
        if export_only {
            export_case(100_000).await;
            return;
        }
        if bulk_only {
            bulk::state_only_case(if quick { 20_000 } else { 100_000 }).await;
            bulk::full_case(if quick { 5_000 } else { 20_000 }).await;
            return;
        }
        if tenants_only {
            tenants::tenants_case(20, if quick { 500 } else { 2_000 }).await;
            return;
        }
        if !memory_only {
            let plan_users = if quick { 5_000 } else { 20_000 };
            plan_case(plan_users).await;
            small_apply_case().await;
            bulk_apply_case(if quick { 4_000 } else { 10_000 }).await;
            overhead_case(if quick { 10_000 } else { 50_000 }).await;
        }
        if throughput_only {
            return;
        }
        tenants::tenants_case(20, if quick { 500 } else { 2_000 }).await;
        let groups: &[MemoryGroup] = if quick {
            &[
                MemoryGroup {
                    users: 10_000,
                    real_binary_plan: true,
                    standin_apply: false,
                },
                MemoryGroup {
                    users: 100_000,
                    real_binary_plan: false,
                    standin_apply: true,
                },
            ]
        } else {
            &[
                MemoryGroup {
                    users: 100_000,
                    real_binary_plan: true,
                    standin_apply: true,
                },
                MemoryGroup {
                    users: 1_000_000,
                    real_binary_plan: true,
                    standin_apply: true,
                },
            ]
        };
        memory_cases(groups).await;
    });
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// Cases 1–4: the library in-process.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Plan,
    Apply,
}

/// One in-process run: a tenant, a manifest changing some of its users, an emulator, a client.
struct Setup {
    tenant_users: usize,
    changing_users: usize,
    latency: Option<(Duration, Duration)>,
    /// `false`: neither the emulator nor the client's budgets limit anything.
    throttle: bool,
    batch: bool,
    /// The phase measured; an apply is measured alone, the plan made just before it.
    phase: Phase,
}

impl Setup {
    fn describe(&self) -> String {
        let latency = match self.latency {
            Some((min, max)) => format!(
                "latency {}–{} ms uniform per HTTP request (mean {} ms)",
                min.as_millis(),
                max.as_millis(),
                mean_latency(self.latency).as_millis()
            ),
            None => "no latency".to_owned(),
        };
        let limits = if self.throttle {
            format!(
                "RU {} per 10 s, writes 3,000 per 150 s; client ru_bucket the same",
                n(u64::from(ru_tier(self.tenant_users as u64)))
            )
        } else {
            "throttle: false; client budgets lifted to 10^9 per s".to_owned()
        };
        format!(
            "tenant of {} generated users (seed {SEED}), manifest of {} of them; {latency}; \
             {limits}; $batch {}",
            n(self.tenant_users as u64),
            n(self.changing_users as u64),
            if self.batch { "on" } else { "off" }
        )
    }
}

/// What a run measured, for its phase alone.
struct Run {
    plan: Plan,
    plan_elapsed: Duration,
    elapsed: Duration,
    client: TransportStats,
    server: Stats,
    in_flight_limit: usize,
    /// The RU and write buckets as the phase found them.
    ru: BucketAtStart,
    writes: BucketAtStart,
    /// Most writes any user has in the plan (apply), for the critical path.
    max_writes_per_user: usize,
    /// Users whose state the emulator shows as desired after an apply.
    converged: usize,
}

/// A bucket's shape and its estimated level when a phase started.
#[derive(Clone, Copy, Debug)]
struct BucketAtStart {
    capacity: f64,
    refill_per_s: f64,
    level: f64,
}

impl BucketAtStart {
    /// Level after `spent` since the bucket was full, `elapsed` ago (see the module doc).
    fn estimate(capacity: u32, window: Duration, spent: u64, elapsed: Duration) -> Self {
        let capacity = f64::from(capacity);
        let refill_per_s = capacity / window.as_secs_f64();
        let level = (capacity - spent as f64 + refill_per_s * elapsed.as_secs_f64())
            .clamp(-capacity, capacity);
        BucketAtStart {
            capacity,
            refill_per_s,
            level,
        }
    }

    /// Seconds the bucket needs to let `spent` through from its level.
    fn time_for(&self, spent: u64) -> f64 {
        ((spent as f64 - self.level) / self.refill_per_s).max(0.0)
    }
}

async fn run(setup: &Setup) -> Run {
    let tenant = Tenant::generate(setup.tenant_users, SEED);
    let manifest = manifest_changing(&tenant.users[..setup.changing_users]);
    let ru_per_10s = tenant.ru_tier();
    let emulator_config = EmulatorConfig {
        latency: setup.latency,
        throttle: setup.throttle,
        ..EmulatorConfig::default()
    };
    let writes_per_150s = emulator_config.writes_per_150s;
    let born = Instant::now();
    let emulator = Emulator::start(tenant, emulator_config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator");
    let mut config = TransportConfig::new(emulator.url(), SecretString::from(TOKEN));
    config.concurrency = CONCURRENCY;
    config.ru_bucket =
        BucketShape::new(ru_tier(setup.tenant_users as u64), Duration::from_secs(10));
    if !setup.throttle {
        config.ru_bucket = unmetered();
        config.write_bucket = unmetered();
    }
    config.batch = setup.batch;
    let client = GraphClient::new(Transport::new(config).expect("client"));

    let started = Instant::now();
    let (mut plan, _) = engine::plan_with(&client, &manifest, CONCURRENCY, &per_user())
        .await
        .expect("the emulator accepts the token");
    let plan_elapsed = started.elapsed();
    assert_eq!(plan.summary.failed, 0, "no user failed to plan");
    assert_eq!(
        plan.summary.to_change, setup.changing_users as u64,
        "every user changes"
    );
    let max_writes_per_user = plan
        .users
        .iter()
        .map(|u| u.write_count())
        .max()
        .unwrap_or(0);

    let before_client = client.transport().stats();
    let before_server = emulator.stats();
    let (ru, writes) = (
        BucketAtStart::estimate(
            ru_per_10s,
            Duration::from_secs(10),
            ru_metered(&before_server),
            born.elapsed(),
        ),
        BucketAtStart::estimate(
            writes_per_150s,
            Duration::from_secs(150),
            writes_metered(&before_server, &before_client),
            born.elapsed(),
        ),
    );
    let (elapsed, client_stats, server, ru, writes, converged) = match setup.phase {
        Phase::Plan => {
            let full = |b: BucketAtStart| BucketAtStart {
                level: b.capacity,
                ..b
            };
            (
                plan_elapsed,
                before_client,
                before_server,
                full(ru),
                full(writes),
                0,
            )
        }
        Phase::Apply => {
            let apply_started = Instant::now();
            engine::apply(
                &client,
                &mut plan,
                engine::ApplyOptions {
                    journal: None,
                    resume: None,
                    concurrency: CONCURRENCY,
                    interrupt: engine::Interrupt::new(),
                    check_names: false,
                },
            )
            .await
            .expect("no journal, token accepted");
            let elapsed = apply_started.elapsed();
            assert_eq!(plan.summary.failed, 0, "no user failed to apply");
            assert!(
                plan.users.iter().all(|u| u.status == Status::Applied),
                "every user applied"
            );
            let converged = assert_converged(&manifest.users, &emulator.tenant());
            (
                elapsed,
                client_since(&client.transport().stats(), &before_client),
                server_since(&emulator.stats(), &before_server),
                ru,
                writes,
                converged,
            )
        }
    };
    let in_flight_limit = client.transport().in_flight_limit();
    emulator.shutdown().await;
    Run {
        plan,
        plan_elapsed,
        elapsed,
        client: client_stats,
        server,
        in_flight_limit,
        ru,
        writes,
        max_writes_per_user,
        converged,
    }
}

/// One read per user and endpoint: what cases 1–6 measure.
fn per_user() -> engine::ReadOptions {
    engine::ReadOptions {
        path: engine::ReadPath::PerUser,
        ..engine::ReadOptions::default()
    }
}

/// A bucket that never binds: lifts the client's own pacing where the emulator does not throttle.
fn unmetered() -> BucketShape {
    BucketShape::new(1_000_000_000, Duration::from_secs(1))
}

/// RU the emulator charged (see the module doc).
fn ru_metered(s: &Stats) -> u64 {
    s.reads + s.writes + s.throttled + s.not_found
}

/// Writes the emulator charged: PATCHes answered 2xx and every PATCH refused. The emulator
/// counts only the write bucket's own refusals; a PATCH the RU bucket refused is charged a
/// write too, which the client's count of PATCHes sent covers.
fn writes_metered(s: &Stats, c: &TransportStats) -> u64 {
    (s.writes + s.throttled_writes).max(c.calls.writes)
}

/// Graph calls the emulator received: requests sent alone, and batch items.
fn graph_calls(s: &Stats) -> u64 {
    s.requests - s.batches + s.batch_items
}

fn mean_latency(latency: Option<(Duration, Duration)>) -> Duration {
    latency.map_or(Duration::ZERO, |(min, max)| (min + max) / 2)
}

/// The ideal of a phase and its parts, in seconds.
struct Ideal {
    ru_bound: f64,
    write_bound: f64,
    round_trips: usize,
    critical_path: f64,
    calls: u64,
    in_flight_bound: f64,
    total: f64,
}

impl Ideal {
    fn of(setup: &Setup, r: &Run) -> Ideal {
        let latency = mean_latency(setup.latency).as_secs_f64();
        let (ru_bound, write_bound) = if setup.throttle {
            (
                r.ru.time_for(ru_metered(&r.server)),
                r.writes.time_for(writes_metered(&r.server, &r.client)),
            )
        } else {
            (0.0, 0.0)
        };
        let round_trips = match setup.phase {
            // Both endpoints together, then /methods where the preferred method changes.
            Phase::Plan => 1 + usize::from(r.client.calls.methods > 0),
            // Re-read, then write, one endpoint after the other.
            Phase::Apply => 2 * r.max_writes_per_user,
        };
        let critical_path = round_trips as f64 * latency;
        let calls = graph_calls(&r.server);
        let in_flight_bound = calls as f64 * latency / CONCURRENCY as f64;
        let total = (ru_bound.max(write_bound) + critical_path).max(in_flight_bound);
        Ideal {
            ru_bound,
            write_bound,
            round_trips,
            critical_path,
            calls,
            in_flight_bound,
            total,
        }
    }

    fn print(&self, setup: &Setup, r: &Run) {
        let latency_ms = mean_latency(setup.latency).as_millis();
        let bucket_binds = self.ru_bound.max(self.write_bound) + self.critical_path;
        println!(
            "  ideal {} = max(bucket bound + critical path, in-flight bound) = max({} + {}, {})",
            s(self.total),
            s(self.ru_bound.max(self.write_bound)),
            s(self.critical_path),
            s(self.in_flight_bound)
        );
        if setup.throttle {
            let ru = ru_metered(&r.server);
            let writes = writes_metered(&r.server, &r.client);
            println!(
                "    RU bucket: ({} RU metered − {} in the bucket at the start) ÷ {} RU/s = {}{}",
                n(ru),
                n_f(r.ru.level),
                n_f(r.ru.refill_per_s),
                s(self.ru_bound),
                if r.ru.level < r.ru.capacity {
                    " (the level is what the plan before left, estimated)"
                } else {
                    " (full)"
                }
            );
            println!(
                "    write bucket: ({} writes metered − {} in the bucket at the start) ÷ {} writes/s = {}",
                n(writes),
                n_f(r.writes.level),
                r.writes.refill_per_s,
                s(self.write_bound)
            );
        } else {
            println!("    buckets: none (throttle off)");
        }
        println!(
            "    critical path: {} dependent round trips × {latency_ms} ms = {}",
            self.round_trips,
            s(self.critical_path)
        );
        println!(
            "    in-flight bound: {} Graph calls × {latency_ms} ms ÷ {CONCURRENCY} in flight = {}",
            n(self.calls),
            s(self.in_flight_bound)
        );
        println!(
            "    binding: {}",
            if self.in_flight_bound > bucket_binds {
                "the in-flight bound"
            } else if self.ru_bound.max(self.write_bound) < 1e-9 {
                "the critical path (no bucket binds)"
            } else if self.write_bound > self.ru_bound {
                "the write bucket"
            } else {
                "the RU bucket"
            }
        );
    }
}

/// Requests by purpose, HTTP requests and batch items, 429s, retries, the in-flight limit.
fn print_traffic(r: &Run) {
    let c = &r.client;
    let Calls {
        tenant,
        identity,
        reads,
        methods,
        reports,
        rereads,
        settles,
        verifies,
        writes,
        coverage,
    } = c.calls;
    println!(
        "  calls by purpose: read {} · methods {} · report {} · reread {} · write {} · settle {} · verify {} · identity {} · tenant {} · coverage {} (attempts {})",
        n(reads),
        n(methods),
        n(reports),
        n(rereads),
        n(writes),
        n(settles),
        n(verifies),
        n(identity),
        n(tenant),
        n(coverage),
        n(c.attempts)
    );
    let alone = c.http_requests.saturating_sub(c.batches);
    println!(
        "  on the wire: {} HTTP requests = {} $batch carrying {} items ({:.1} a batch) + {} alone",
        n(c.http_requests),
        n(c.batches),
        n(c.batch_items),
        if c.batches > 0 {
            c.batch_items as f64 / c.batches as f64
        } else {
            0.0
        },
        n(alone)
    );
    let calls = graph_calls(&r.server);
    println!(
        "  429s: {} = {} of {} Graph calls (emulator: {}, {} by the write bucket); retries {}; \
         pauses {} for {} in all; in-flight limit at the end {} (cap {CONCURRENCY}); emulator's \
         peak HTTP requests in flight {}",
        n(c.throttled),
        pct(r.server.throttled as f64 / calls.max(1) as f64),
        n(calls),
        n(r.server.throttled),
        n(r.server.throttled_writes),
        n(c.retries),
        n(c.pauses),
        s(c.paused_ms as f64 / 1000.0),
        r.in_flight_limit,
        n(r.server.peak_in_flight)
    );
}

async fn plan_case(users: usize) {
    let setup = Setup {
        tenant_users: users,
        changing_users: users,
        latency: Some(GRAPH_LATENCY),
        throttle: true,
        batch: true,
        phase: Phase::Plan,
    };
    println!();
    println!(
        "== 1. Plan of {} users (Graph-like latency)",
        n(users as u64)
    );
    println!("  setup: {}", setup.describe());
    let r = run(&setup).await;
    let ideal = Ideal::of(&setup, &r);
    let elapsed = r.elapsed.as_secs_f64();
    let ratio = ideal.total / elapsed;
    println!(
        "  plan {} users: {}; ideal {} → {} of ideal (target ≥ 90 %: {})",
        n(users as u64),
        s(elapsed),
        s(ideal.total),
        pct(ratio),
        verdict(ratio >= 0.90)
    );
    ideal.print(&setup, &r);
    // The same ideal without the 429s' charges: what the work alone needed.
    let work = r.server.reads + r.server.writes + r.server.not_found;
    let work_ideal = (r.ru.time_for(work) + ideal.critical_path).max(ideal.in_flight_bound);
    println!(
        "    without the RU the 429s cost ({} RU of work): ideal {} → {} of ideal",
        n(work),
        s(work_ideal),
        pct(work_ideal / elapsed)
    );
    print_traffic(&r);
    println!(
        "  checked: {} users planned, {} to change, 0 failed",
        n(r.plan.summary.users),
        n(r.plan.summary.to_change)
    );
}

async fn small_apply_case() {
    // 500 users × both endpoints = 1,000 writes, in a tenant large enough for the 8,000 RU tier.
    let setup = Setup {
        tenant_users: 1_000,
        changing_users: 500,
        latency: Some(GRAPH_LATENCY),
        throttle: true,
        batch: true,
        phase: Phase::Apply,
    };
    println!();
    println!("== 2. Apply of 1,000 changes (500 users × 2 endpoints; Graph-like latency)");
    println!(
        "  setup: {}; plan made just before, not measured",
        setup.describe()
    );
    let r = run(&setup).await;
    let ideal = Ideal::of(&setup, &r);
    let elapsed = r.elapsed.as_secs_f64();
    let times = elapsed / ideal.total;
    let applied = r.plan.summary.applied.unwrap_or(0);
    println!(
        "  apply {} writes: {}; latency-bound ideal {} → {times:.2}× the ideal (target ≤ 1.5×: {})",
        n(applied),
        s(elapsed),
        s(ideal.total),
        verdict(times <= 1.5)
    );
    println!(
        "  latency-bound ideal = max(critical path, in-flight bound): each user re-reads A, \
         writes A, re-reads B, writes B, as engine::apply does ({} dependent round trips × mean \
         latency); at most {CONCURRENCY} calls in flight (TransportConfig.concurrency, batch \
         items counted one by one; a $batch shares a round trip, not in-flight slots), so every \
         re-read and write × mean latency ÷ {CONCURRENCY}. The write burst (3,000) covers the \
         writes, so no bucket should bind:",
        ideal.round_trips
    );
    ideal.print(&setup, &r);
    println!("  plan before it: {}", s(r.plan_elapsed.as_secs_f64()));
    print_traffic(&r);
    println!(
        "  checked: {} users applied and converged in the emulator, 0 failed",
        n(r.converged as u64)
    );
}

async fn bulk_apply_case(changes: usize) {
    let users = changes / 2;
    let setup = Setup {
        tenant_users: users,
        changing_users: users,
        latency: Some(GRAPH_LATENCY),
        throttle: true,
        batch: true,
        phase: Phase::Apply,
    };
    println!();
    println!(
        "== 3. Apply of {} changes ({} users × 2 endpoints; Graph-like latency)",
        n(changes as u64),
        n(users as u64)
    );
    println!(
        "  setup: {}; plan made just before, not measured",
        setup.describe()
    );
    let r = run(&setup).await;
    let ideal = Ideal::of(&setup, &r);
    let elapsed = r.elapsed.as_secs_f64();
    let ratio = ideal.total / elapsed;
    let applied = r.plan.summary.applied.unwrap_or(0);
    println!(
        "  apply {} writes: {}; write-bucket ideal {} → {} of ideal (target ≥ 95 %: {})",
        n(applied),
        s(elapsed),
        s(ideal.total),
        pct(ratio),
        verdict(ratio >= 0.95)
    );
    ideal.print(&setup, &r);
    println!(
        "  plan before it: {}; writes/s over the apply: {:.1} (Graph sustains 20/s after its \
         3,000 burst)",
        s(r.plan_elapsed.as_secs_f64()),
        applied as f64 / elapsed
    );
    print_traffic(&r);
    println!(
        "  checked: {} users applied and converged in the emulator, 0 failed",
        n(r.converged as u64)
    );
}

async fn overhead_case(users: usize) {
    println!();
    println!(
        "== 4. Overhead: plan of {} users with no throttle and no latency",
        n(users as u64)
    );
    for batch in [true, false] {
        let setup = Setup {
            tenant_users: users,
            changing_users: users,
            latency: None,
            throttle: false,
            batch,
            phase: Phase::Plan,
        };
        println!("  setup: {}", setup.describe());
        let r = run(&setup).await;
        let elapsed = r.elapsed.as_secs_f64();
        let reads = r.client.reads;
        let per_s = reads as f64 / elapsed;
        println!(
            "  {}: {} reads in {} = {} reads/s → {} of {} reads/s{}",
            if batch { "$batch on " } else { "$batch off" },
            n(reads),
            s(elapsed),
            n_f(per_s),
            pct(per_s / OVERHEAD_TARGET_READS_PER_S),
            n_f(OVERHEAD_TARGET_READS_PER_S),
            if batch {
                format!(
                    " (target ≥ 100 %: {})",
                    verdict(per_s >= OVERHEAD_TARGET_READS_PER_S)
                )
            } else {
                " (for comparison)".to_owned()
            }
        );
        println!(
            "    {} HTTP requests ({} $batch, {} items); in-flight limit at the end {}; 0 failed",
            n(r.client.http_requests),
            n(r.client.batches),
            n(r.client.batch_items),
            r.in_flight_limit
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Case 5: peak memory, each run a process of its own.
//
// The child's peak RSS comes from `wait4`, exact to the KiB — but Linux folds the RSS high-water
// mark of the memory image a process replaces at `exec` into its `ru_maxrss`, and a child
// spawned by this process (which holds the emulator's tenant, up to gigabytes) would report that.
// So each child is started by a small launcher (this executable again, `--launch`) that reports
// its child's `wait4`: the figure's only error is a floor of the launcher's own few MB, printed.
//
// The real binary paces itself to Graph's buckets whether or not the emulator throttles, so it
// runs `plan` with them lifted (`--ru-quota`, `--write-quota`). A stand-in (this executable,
// `--standin`) runs what `mfactl plan` and `mfactl apply --auto-approve` run — load the
// manifest, build the transport as cli/args.rs does, identify the tenant, plan, render the text
// plan to stdout, apply, render the report — and also prints the heap after each step. The
// binary's and the stand-in's plans of the same size show how far the stand-in can be trusted.

struct MemoryGroup {
    users: usize,
    real_binary_plan: bool,
    standin_apply: bool,
}

/// What one child run gave.
struct ChildRun {
    peak_kib: u64,
    floor_kib: u64,
    wall: Duration,
    exit: i32,
    stderr: String,
    server: Stats,
}

async fn memory_cases(groups: &[MemoryGroup]) {
    println!();
    println!(
        "== 5. Peak memory: plan and apply --auto-approve of changing users, each run a process of \
         its own against an in-process emulator (throttle: false, no latency); stdout to \
         /dev/null (text format); peak RSS by wait4 through a small launcher (error: at most \
         the launcher's own RSS, printed as the floor); MB = 10^6 bytes"
    );
    println!(
        "  stand-in = this bench re-run as `mfactl plan|apply --auto-approve` does, with the \
         client's budgets lifted, printing the heap after each step; the real binary runs \
         `plan` with --ru-quota and --write-quota lifted"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    for group in groups {
        let tenant = Tenant::generate(group.users, SEED);
        let manifest = manifest_changing(&tenant.users);
        let csv = dir.path().join(format!("desired-{}.csv", group.users));
        write_csv(&manifest, &csv);
        let config = EmulatorConfig {
            throttle: false,
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(tenant, config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("emulator");
        let url = emulator.url();
        let csv_arg = csv.to_string_lossy().into_owned();
        let users = group.users as u64;
        println!(
            "  -- {} users ({} MB CSV manifest)",
            n(users),
            n_f(std::fs::metadata(&csv).map_or(0, |m| m.len()) as f64 / 1e6)
        );

        if group.real_binary_plan {
            let binary = PathBuf::from(env!("CARGO_BIN_EXE_mfactl"));
            let args = [
                "plan",
                "--read-path",
                "per-user",
                &csv_arg,
                "--graph-url",
                &url,
                "--ru-quota",
                "1000000000",
                "--write-quota",
                "100000000",
            ]
            .map(str::to_owned);
            let child = run_child(&emulator, dir.path(), &binary, &args, TOKEN).await;
            assert_eq!(child.exit, 0, "mfactl plan failed:\n{}", child.stderr);
            let calls = graph_calls(&child.server);
            print_child("plan  (real binary)", &child, users, target_mb(users));
            println!(
                "      {} Graph calls, quotas lifted with --ru-quota and --write-quota (the \
                 emulator does not throttle); it says: {}",
                n(calls),
                last_line(&child.stderr)
            );
        }

        let me = std::env::current_exe().expect("this executable");
        let args = ["--standin", "plan", &csv_arg, &url].map(str::to_owned);
        let child = run_child(&emulator, dir.path(), &me, &args, TOKEN).await;
        assert_eq!(child.exit, 0, "stand-in plan failed:\n{}", child.stderr);
        print_child("plan  (stand-in)   ", &child, users, target_mb(users));
        println!("      {}", last_line(&child.stderr));

        if group.standin_apply {
            let args = ["--standin", "apply", &csv_arg, &url].map(str::to_owned);
            let child = run_child(&emulator, dir.path(), &me, &args, TOKEN).await;
            assert_eq!(child.exit, 0, "stand-in apply failed:\n{}", child.stderr);
            assert_eq!(child.server.writes, 2 * users, "every write made");
            print_child("apply (stand-in)   ", &child, users, target_mb(users));
            println!("      {}", last_line(&child.stderr));
            let converged = assert_converged(&manifest.users, &emulator.tenant());
            println!(
                "      checked: {} users converged in the emulator, 0 failed",
                n(converged as u64)
            );
        }
        emulator.shutdown().await;
    }
    println!(
        "  (this bench's own peak RSS, emulator and tenants included: {:.0} MB)",
        (own_peak_kib() * 1024) as f64 / 1e6
    );
}

// ---------------------------------------------------------------------------------------------
// Case 6: export, streamed.

/// `mfactl export` of `users` users by the real binary, as a YAML manifest and as a tenant file,
/// its client's budgets lifted (`--ru-quota`) as the emulator does not throttle: it measures
/// the export's own cost, not Graph's quota. With Graph's quotas the ideal would be the RU
/// bucket's: 2 reads a user (3 for a tenant file) at 800 RU/s above 500 users.
async fn export_case(users: usize) {
    println!();
    println!(
        "== 6. export of {} users by the real binary, a process of its own, against an \
         in-process emulator (throttle: false, no latency); peak RSS by wait4 through a small \
         launcher; MB = 10^6 bytes",
        n(users as u64)
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let config = EmulatorConfig {
        throttle: false,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(
        Tenant::generate(users, SEED),
        config,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("emulator");
    let url = emulator.url();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_mfactl"));
    for (what, file, extra) in [
        ("manifest (YAML)", "export.yaml", None),
        ("tenant file    ", "tenant.yaml", Some("tenant")),
    ] {
        let out = dir.path().join(file).to_string_lossy().into_owned();
        let mut args = vec![
            "export",
            "--read-path",
            "per-user",
            "--out",
            &out,
            "--graph-url",
            &url,
            "--ru-quota",
            "1000000000",
        ];
        if let Some(kind) = extra {
            args.extend(["--as", kind]);
        }
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let child = run_child(&emulator, dir.path(), &binary, &args, EXPORT_TOKEN).await;
        assert_eq!(child.exit, 0, "mfactl export failed:\n{}", child.stderr);
        let written = std::fs::read_to_string(&out).expect("the export");
        let entries = written
            .lines()
            .filter(|l| l.starts_with("  - user: ") || l.starts_with("  userPrincipalName: "))
            .count();
        assert_eq!(entries, users, "every user exported once");
        let reads = child.server.reads;
        let secs = child.wall.as_secs_f64();
        println!(
            "    {what}: {} in {} wall = {} users/s, {} reads/s ({} reads, {} HTTP requests); \
             peak RSS {:.1} MB (floor {:.1} MB); file {} MB",
            n(users as u64),
            s(secs),
            n_f(users as f64 / secs),
            n_f(reads as f64 / secs),
            n(reads),
            n(child.server.requests),
            (child.peak_kib * 1024) as f64 / 1e6,
            (child.floor_kib * 1024) as f64 / 1e6,
            n_f(written.len() as f64 / 1e6)
        );
        // The ideals: the client's own speed against the overhead target of case 4, and Graph's
        // RU bucket above 500 users (8,000 per 10 s), which bounds the same export on Graph.
        let per_s = reads as f64 / secs;
        let graph_secs = reads as f64 / (EXPORT_GRAPH_RU_PER_10S / 10.0);
        println!(
            "      {} of the {} reads/s overhead ideal; on Graph the RU bucket allows it in no \
             less than {}, and mfactl's own cost is {} of that",
            pct(per_s / OVERHEAD_TARGET_READS_PER_S),
            n_f(OVERHEAD_TARGET_READS_PER_S),
            s(graph_secs),
            pct(secs / graph_secs)
        );
    }
    emulator.shutdown().await;
}

/// Graph's resource units per 10 s above 500 users (graph-api.md §6): the bound of an export on
/// Graph, each read a point read of 1 RU.
const EXPORT_GRAPH_RU_PER_10S: f64 = 8_000.0;

fn last_line(text: &str) -> &str {
    text.trim_end().lines().last().unwrap_or_default()
}

/// The targets: 100,000 changing users under 100 MB, 1,000,000 under 500 MB.
fn target_mb(users: u64) -> f64 {
    if users <= 100_000 { 100.0 } else { 500.0 }
}

fn print_child(what: &str, child: &ChildRun, users: u64, target_mb: f64) {
    let bytes = child.peak_kib * 1024;
    let mb = bytes as f64 / 1e6;
    let calls = graph_calls(&child.server);
    let secs = child.wall.as_secs_f64();
    let target = format!(
        " (target < {} MB: {})",
        n_f(target_mb),
        verdict(mb < target_mb)
    );
    println!(
        "    {what}: peak RSS {mb:.1} MB = {} bytes per user{target}; floor {:.1} MB",
        n(bytes / users.max(1)),
        (child.floor_kib * 1024) as f64 / 1e6
    );
    println!(
        "      {} Graph calls ({} HTTP requests) in {} wall = {} calls/s ({} HTTP/s)",
        n(calls),
        n(child.server.requests),
        s(secs),
        n_f(calls as f64 / secs),
        n_f(child.server.requests as f64 / secs)
    );
}

/// Runs `program args` with `token` through the launcher, the emulator serving meanwhile on this
/// runtime.
async fn run_child(
    emulator: &Emulator,
    dir: &Path,
    program: &Path,
    args: &[String],
    token: &str,
) -> ChildRun {
    let before = emulator.stats();
    let stderr_path = dir.join("child-stderr.txt");
    let mut command = Command::new(std::env::current_exe().expect("this executable"));
    command
        .arg("--launch")
        .arg(&stderr_path)
        .arg(program)
        .args(args)
        .env("MFACTL_ACCESS_TOKEN", token)
        .env_remove("MFACTL_GRAPH_URL")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("launcher thread")
        .expect("launcher starts");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    let fields: Vec<u64> = report
        .split_whitespace()
        .map(|f| f.parse().expect("launcher report"))
        .collect();
    let [peak_kib, wall_ns, exit, floor_kib] = fields[..] else {
        panic!("launcher said {report:?}");
    };
    ChildRun {
        peak_kib,
        floor_kib,
        wall: Duration::from_nanos(wall_ns),
        exit: exit as i32,
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        server: server_since(&emulator.stats(), &before),
    }
}

/// `--launch` measures a child's peak memory with `wait4`, which only Unix has.
#[cfg(not(unix))]
fn launch(_args: &[String]) -> ExitCode {
    eprintln!("--launch (the peak-memory cases) needs wait4: run them on Linux");
    ExitCode::FAILURE
}

/// `--launch STDERR PROGRAM ARGS...`: runs PROGRAM with stdout to /dev/null and stderr to
/// STDERR, reaps it with `wait4`, and prints `peak_kib wall_ns exit_code own_peak_kib`.
#[cfg(unix)]
fn launch(args: &[String]) -> ExitCode {
    let [stderr_path, program, rest @ ..] = args else {
        eprintln!("usage: --launch STDERR PROGRAM ARGS...");
        return ExitCode::FAILURE;
    };
    let stderr = std::fs::File::create(stderr_path).expect("child's stderr file");
    let floor_kib = own_peak_kib();
    let started = Instant::now();
    // Reaped by wait4 below, which `Child::wait` cannot replace: it gives no rusage.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("child starts");
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unreaped child; both pointers are to live locals. `child` is not
    // waited on again afterwards (dropping a `Child` does not wait).
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let exit = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        255
    };
    println!("{} {} {exit} {floor_kib}", usage.ru_maxrss, wall.as_nanos());
    ExitCode::SUCCESS
}

/// This process's peak RSS (VmHWM), in KiB.
fn own_peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// `--standin plan|apply MANIFEST URL`: what `mfactl plan MANIFEST` and `mfactl apply
/// --auto-approve MANIFEST` do with `--graph-url URL` (cli/plan.rs, cli/apply.rs), the client's
/// budgets lifted. Keeps what the CLI keeps alive: the manifest until the plan is made (the CLI
/// lets it go then). Says on stderr, last line, how much heap each step
/// held. Exit 0 when everything converged.
fn standin(args: &[String]) -> ExitCode {
    let [command, manifest_path, url] = args else {
        eprintln!("usage: --standin plan|apply MANIFEST URL");
        return ExitCode::FAILURE;
    };
    Heap::start();
    let apply = command == "apply";
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut steps = Vec::new();
    let converged = runtime.block_on(async {
        let manifest = manifest::load(Path::new(manifest_path)).expect("valid manifest");
        steps.push(Heap::step("manifest"));
        let token = std::env::var("MFACTL_ACCESS_TOKEN").unwrap_or_else(|_| TOKEN.to_owned());
        let mut config = TransportConfig::new(url.clone(), SecretString::from(token));
        config.concurrency = CONCURRENCY;
        config.ru_bucket = unmetered();
        config.write_bucket = unmetered();
        let client = GraphClient::new(Transport::new(config).expect("client"));
        let tenant = engine::identify_tenant(&client).await.expect("tenant");
        let (mut plan, _) = engine::plan_with(&client, &manifest, CONCURRENCY, &per_user())
            .await
            .expect("plan");
        drop(manifest);
        plan.tenant_id = tenant.id;
        plan.tenant_domain = tenant.domain;
        steps.push(Heap::step("plan"));
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        report::render_plan_text(&plan, &mut stdout).expect("stdout");
        std::io::Write::flush(&mut stdout).expect("stdout");
        steps.push(Heap::step("plan text"));
        if !apply {
            return plan.summary.failed == 0;
        }
        engine::apply(
            &client,
            &mut plan,
            engine::ApplyOptions {
                journal: None,
                resume: None,
                concurrency: CONCURRENCY,
                interrupt: engine::Interrupt::new(),
                check_names: false,
            },
        )
        .await
        .expect("apply");
        plan.summary.applied.get_or_insert(0);
        steps.push(Heap::step("apply"));
        report::render_apply_text(&plan, &mut stdout).expect("stdout");
        std::io::Write::flush(&mut stdout).expect("stdout");
        steps.push(Heap::step("report text"));
        plan.users.iter().all(|u| u.status == Status::Applied)
    });
    eprintln!("heap (MB, peak during / held after): {}", steps.join("; "));
    if converged {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Counts heap bytes in use and their peak, in the stand-in only (elsewhere one relaxed load per
/// allocation): RSS also holds what the allocator freed but kept, so the heap says what each
/// step really needs.
struct Heap;

static HEAP_COUNTING: AtomicBool = AtomicBool::new(false);
static HEAP: AtomicIsize = AtomicIsize::new(0);
static HEAP_PEAK: AtomicIsize = AtomicIsize::new(0);

#[global_allocator]
static ALLOCATOR: Heap = Heap;

impl Heap {
    fn start() {
        HEAP_COUNTING.store(true, Ordering::SeqCst);
    }

    fn grew(by: usize) {
        if HEAP_COUNTING.load(Ordering::Relaxed) {
            let now = HEAP.fetch_add(by as isize, Ordering::Relaxed) + by as isize;
            HEAP_PEAK.fetch_max(now, Ordering::Relaxed);
        }
    }

    fn shrank(by: usize) {
        if HEAP_COUNTING.load(Ordering::Relaxed) {
            HEAP.fetch_sub(by as isize, Ordering::Relaxed);
        }
    }

    /// `name peak/held`, in MB, since the last step; starts the next step's peak.
    fn step(name: &str) -> String {
        let held = HEAP.load(Ordering::Relaxed);
        let peak = HEAP_PEAK.swap(held, Ordering::Relaxed);
        format!("{name} {:.0}/{:.0}", peak as f64 / 1e6, held as f64 / 1e6)
    }
}

// SAFETY: every call is passed straight to the system allocator; the counters only observe.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            Heap::grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            Heap::grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        Heap::shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            Heap::shrank(layout.size());
            Heap::grew(new_size);
        }
        moved
    }
}

// ---------------------------------------------------------------------------------------------
// Manifests and checks.

/// The desired state for `users` with both endpoints changing for every one: systemPreferred
/// and perUserMfaState flipped, preferredMethod the first usable one (a change, with a /methods
/// read, where the user prefers another).
fn manifest_changing(users: &[TenantUser]) -> Manifest {
    let users = users
        .iter()
        .enumerate()
        .map(|(i, u)| DesiredUser {
            user: u.id.as_str().into(),
            preferred_method: PreferredMethod::usable_with(&u.methods)
                .first()
                .copied()
                .map(PreferredMethods::one),
            system_preferred: Some(
                !u.sign_in_preferences
                    .is_system_preferred_authentication_method_enabled,
            ),
            per_user_mfa_state: Some(if u.per_user_mfa_state == PerUserMfaState::Disabled {
                PerUserMfaState::Enforced
            } else {
                PerUserMfaState::Disabled
            }),
            origin: Origin::Line(i as u64 + 1),
        })
        .collect();
    Manifest {
        source: PathBuf::from("bench"),
        users,
        policy: None,
        protect: Vec::new(),
        max_changes: None,
        selectors: Default::default(),
        allow_mfa_gap: false,
    }
}

fn write_csv(manifest: &Manifest, path: &Path) {
    let mut csv = String::from("user,preferredMethod,systemPreferred,perUserMfaState\n");
    for user in &manifest.users {
        let _ = writeln!(
            csv,
            "{},{},{},{}",
            user.user,
            user.preferred_method.map_or("", |m| m.first().as_str()),
            user.system_preferred
                .map_or("", |b| if b { "true" } else { "false" }),
            user.per_user_mfa_state.map_or("", |s| s.as_str()),
        );
    }
    std::fs::write(path, csv).expect("write manifest");
}

/// Asserts that the emulator's state shows every desired value; returns how many users.
fn assert_converged(desired: &[DesiredUser], tenant: &Tenant) -> usize {
    let live: HashMap<&str, &TenantUser> =
        tenant.users.iter().map(|u| (u.id.as_str(), u)).collect();
    for want in desired {
        let user = live[&*want.user];
        let prefs = &user.sign_in_preferences;
        if let Some(system) = want.system_preferred {
            assert_eq!(
                prefs.is_system_preferred_authentication_method_enabled, system,
                "{}",
                want.user
            );
        }
        if let Some(method) = want.preferred_method {
            assert_eq!(
                prefs.user_preferred_method_for_secondary_authentication,
                Some(method.first()),
                "{}",
                want.user
            );
        }
        if let Some(state) = want.per_user_mfa_state {
            assert!(
                state.is_met_by(user.per_user_mfa_state, user.has_mfa_method()),
                "{}: {state} wanted, {} live",
                want.user,
                user.per_user_mfa_state
            );
        }
    }
    desired.len()
}

// ---------------------------------------------------------------------------------------------
// Counters over a phase, and formatting.

fn client_since(after: &TransportStats, before: &TransportStats) -> TransportStats {
    let calls = |a: Calls, b: Calls| Calls {
        tenant: a.tenant - b.tenant,
        identity: a.identity - b.identity,
        reads: a.reads - b.reads,
        methods: a.methods - b.methods,
        reports: a.reports - b.reports,
        rereads: a.rereads - b.rereads,
        settles: a.settles - b.settles,
        verifies: a.verifies - b.verifies,
        writes: a.writes - b.writes,
        coverage: a.coverage - b.coverage,
    };
    TransportStats {
        attempts: after.attempts - before.attempts,
        calls: calls(after.calls, before.calls),
        http_requests: after.http_requests - before.http_requests,
        batches: after.batches - before.batches,
        batch_items: after.batch_items - before.batch_items,
        succeeded: after.succeeded - before.succeeded,
        reads: after.reads - before.reads,
        writes: after.writes - before.writes,
        throttled: after.throttled - before.throttled,
        server_errors: after.server_errors - before.server_errors,
        transport_errors: after.transport_errors - before.transport_errors,
        retries: after.retries - before.retries,
        pauses: after.pauses - before.pauses,
        paused_ms: after.paused_ms - before.paused_ms,
        longest_pause_ms: after.longest_pause_ms,
        settled_by_read: after.settled_by_read - before.settled_by_read,
        renewals: after.renewals - before.renewals,
        outages: after.outages - before.outages,
    }
}

fn server_since(after: &Stats, before: &Stats) -> Stats {
    Stats {
        requests: after.requests - before.requests,
        reads: after.reads - before.reads,
        writes: after.writes - before.writes,
        throttled: after.throttled - before.throttled,
        throttled_writes: after.throttled_writes - before.throttled_writes,
        throttled_methods: after.throttled_methods - before.throttled_methods,
        injected_failures: after.injected_failures - before.injected_failures,
        batches: after.batches - before.batches,
        batch_items: after.batch_items - before.batch_items,
        low_priority: after.low_priority - before.low_priority,
        not_found: after.not_found - before.not_found,
        bad_requests: after.bad_requests - before.bad_requests,
        unauthorized: after.unauthorized - before.unauthorized,
        forbidden: after.forbidden - before.forbidden,
        tokens_issued: after.tokens_issued - before.tokens_issued,
        peak_in_flight: after.peak_in_flight,
    }
}

/// `12,345`.
fn n(value: u64) -> String {
    mfactl::text::thousands(value)
}

/// A rounded float as [`n`], keeping the sign.
fn n_f(value: f64) -> String {
    let rounded = value.round();
    if rounded < 0.0 {
        format!("−{}", n((-rounded) as u64))
    } else {
        n(rounded as u64)
    }
}

/// Seconds, to the precision that matters at their size.
fn s(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.2} s")
    } else {
        format!("{seconds:.1} s")
    }
}

fn pct(fraction: f64) -> String {
    if fraction < 0.01 && fraction > 0.0 {
        format!("{:.2} %", fraction * 100.0)
    } else {
        format!("{:.0} %", fraction * 100.0)
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
