//! Plan and apply against the emulator under Graph's documented limits: how close mfactl gets
//! to the ceiling, and how many 429s it takes to get there. Prints its figures; asserts nothing
//! about time (the machines are shared and noisy).
//!
//! `cargo bench --bench graph` (add `-- --quick` for a smaller run).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mfactl::emulator::{Emulator, EmulatorConfig, Stats, Tenant};
use mfactl::engine;
use mfactl::graph::{GraphClient, Transport, TransportConfig, TransportStats};
use mfactl::manifest::{DesiredUser, Manifest, Origin};
use mfactl::model::{PerUserMfaState, PreferredMethod};
use mfactl::plan::Plan;
use secrecy::SecretString;

struct Case {
    name: &'static str,
    users: usize,
    emulator: EmulatorConfig,
    read_rate: u32,
    write_rate: u32,
    concurrency: usize,
    apply: bool,
}

struct Measured {
    /// The emulator's RU bucket per 10 s (the tier for the tenant's size unless the case set one).
    ru_per_10s: u32,
    elapsed: Duration,
    client: TransportStats,
    server: Stats,
    plan: Plan,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 4 } else { 1 };
    let graph = EmulatorConfig::default(); // Graph's tiers: 8,000 RU/10 s above 500 users; 3,000 writes/150 s
    let cases = [
        Case {
            name: "plan, default client (800 reads/s cap)",
            users: 4000 / scale,
            emulator: graph.clone(),
            read_rate: 800,
            write_rate: 20,
            concurrency: 16,
            apply: false,
        },
        Case {
            name: "plan, client cap lifted: the emulator's bucket is the limit",
            users: 12_000 / scale,
            emulator: graph.clone(),
            read_rate: 100_000,
            write_rate: 20,
            concurrency: 32,
            apply: false,
        },
        Case {
            name: "plan, 50-150 ms latency per request (Graph-like)",
            users: 1000 / scale,
            emulator: EmulatorConfig {
                latency: Some((Duration::from_millis(50), Duration::from_millis(150))),
                ..graph.clone()
            },
            read_rate: 800,
            write_rate: 20,
            concurrency: 16,
            apply: false,
        },
        Case {
            name: "apply, default client (20 writes/s cap)",
            users: 600 / scale,
            emulator: graph.clone(),
            read_rate: 800,
            write_rate: 20,
            concurrency: 16,
            apply: true,
        },
    ];

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "mfactl graph benchmark{}",
        if quick { " (quick)" } else { "" }
    );
    for case in &cases {
        let m = runtime.block_on(run(case));
        report(case, &m);
    }
}

async fn run(case: &Case) -> Measured {
    let tenant = Tenant::generate(case.users, 42);
    let manifest = manifest_changing_everyone(&tenant);
    let ru_per_10s = case.emulator.ru_per_10s.unwrap_or_else(|| tenant.ru_tier());
    let config = EmulatorConfig {
        ru_per_10s: Some(ru_per_10s),
        ..case.emulator.clone()
    };
    let emulator = Emulator::start(tenant, config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator");
    let mut transport = TransportConfig::new(emulator.url(), SecretString::from("bench"));
    transport.read_rate = Some(case.read_rate);
    transport.write_rate = Some(case.write_rate);
    transport.concurrency = case.concurrency;
    let client = GraphClient::new(Transport::new(transport).expect("client"));

    let started = Instant::now();
    let mut plan = engine::plan(&client, &manifest, case.concurrency)
        .await
        .expect("the emulator accepts the token");
    let elapsed = if case.apply {
        let apply_started = Instant::now();
        engine::apply(
            &client,
            &mut plan,
            None,
            case.concurrency,
            engine::Interrupt::new(),
        )
        .await
        .expect("no journal, token accepted");
        apply_started.elapsed()
    } else {
        started.elapsed()
    };
    let measured = Measured {
        ru_per_10s,
        elapsed,
        client: client.transport().stats(),
        server: emulator.stats(),
        plan,
    };
    emulator.shutdown().await;
    measured
}

/// Every user gets a per-user state and a system-preferred flag that differ from the tenant's,
/// so a plan reads both endpoints and an apply writes both.
fn manifest_changing_everyone(tenant: &Tenant) -> Manifest {
    let users = tenant
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| DesiredUser {
            user: u.id.clone(),
            preferred_method: PreferredMethod::usable_with(&u.methods).first().copied(),
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
    }
}

fn report(case: &Case, m: &Measured) {
    let secs = m.elapsed.as_secs_f64();
    println!();
    println!(
        "== {} ({} users, concurrency {})",
        case.name, case.users, case.concurrency
    );
    let ru_per_10s = f64::from(m.ru_per_10s);
    if case.apply {
        let applied = m.plan.summary.applied.unwrap_or(0);
        let writes_per_150s = f64::from(case.emulator.writes_per_150s);
        let sustained = writes_per_150s / 150.0;
        // With a full bucket, the most the emulator can accept in `secs`.
        let possible = (writes_per_150s + sustained * secs) / secs;
        println!(
            "  apply: {applied} writes in {secs:.1} s = {:.1} writes/s (client cap {}/s; emulator sustained {sustained:.1}/s, {possible:.0}/s with its burst)",
            applied as f64 / secs,
            case.write_rate
        );
        println!(
            "  failed users: {}, PATCHes sent (with retries): {}, 429s over plan and apply: {}",
            m.plan.summary.failed, m.client.writes, m.server.throttled
        );
    } else {
        let reads = m.client.reads as f64;
        let sustained = ru_per_10s / 10.0;
        let possible = (ru_per_10s + sustained * secs) / secs;
        println!(
            "  plan: {} users, {} reads in {secs:.2} s = {:.0} reads/s (client cap {}/s; emulator sustained {sustained:.0}/s, {possible:.0}/s with its burst)",
            case.users,
            m.client.reads,
            reads / secs,
            case.read_rate
        );
        println!(
            "  429s: {}, retries: {}, failed users: {}, to change: {}",
            m.server.throttled, m.client.retries, m.plan.summary.failed, m.plan.summary.to_change
        );
    }
}
