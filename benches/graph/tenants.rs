//! Case 9 (issue 21): one manifest across many tenants, by the real binary (`mfactl plan|apply
//! MANIFEST --tenants TENANTS.yaml`), against one in-process emulator serving every tenant at
//! Graph's quotas (per tenant and app-wide) and Graph-like latency. Each tenant signs in with the
//! same multi-tenant app's secret at its own authority.
//!
//! - **Plan**: every tenant read at once should take about as long as the largest tenant alone
//!   (the tenants are independent; only the app-wide buckets and this machine are shared). The
//!   ideal is the measured single-tenant time of the same binary, manifest and tenant size;
//!   target ratio ≤ 1.5.
//! - **Apply**: every user of every tenant changes (two writes each), and the emulator enforces
//!   the app-wide write ceiling (70,000 per 5 min per app across tenants) on top of each tenant's
//!   3,000 per 150 s: the run must meet no 429. The ideal of the writes is the per-tenant write
//!   bucket's, `(writes per tenant − 3,000) ÷ 20/s`, since all tenants write side by side. The
//!   app bucket's level is followed from the emulator's write count, sampled every 100 ms.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mfactl::model::PerUserMfaState;
use mfactl_emulator::{Emulator, EmulatorConfig, Tenant, UserType};

use super::{GRAPH_LATENCY, SEED, n, n_f, pct, s, verdict};

const APP: &str = "7a3c1e55-0000-4000-8000-0000000000aa";
const SECRET: &str = "bench-secret-not-a-real-one";
/// Microsoft's app-wide write ceiling (per app across tenants): 70,000 per 5 min.
const APP_WRITES: f64 = 70_000.0;
const APP_WINDOW_S: f64 = 300.0;
/// The manifest every tenant runs: every user gets both settings (the tenants' users start with
/// both off, so each user is two writes).
const MANIFEST: &str =
    "version: 1\nallUsers:\n  systemPreferred: true\n  perUserMfaState: enforced\n";

/// Customer `index`: `users` generated users, all members, enabled, with system-preferred MFA
/// and per-user MFA off; the multi-tenant app consented with every permission the run needs.
fn customer(index: usize, users: usize) -> Tenant {
    let mut tenant = Tenant::generate(users, SEED + index as u64);
    tenant.tenant_id = format!("9c0e5f1a-0000-4000-8000-{:012}", index + 1);
    tenant.domain = format!("customer{}.onmicrosoft.com", index + 1);
    for user in &mut tenant.users {
        user.user_type = UserType::Member;
        user.account_enabled = true;
        user.sign_in_preferences
            .is_system_preferred_authentication_method_enabled = false;
        user.per_user_mfa_state = PerUserMfaState::Disabled;
    }
    let auth = format!(
        "tenantId: {}\ndomain: x.com\nusers: []\nauth:\n  apps:\n  - clientId: {APP}\n    \
         secret: {SECRET}\n    roles: [UserAuthenticationMethod.ReadWrite.All, \
         Policy.ReadWrite.AuthenticationMethod, Policy.Read.All, User.Read.All, \
         GroupMember.Read.All, Organization.Read.All]\n",
        tenant.tenant_id
    );
    tenant.auth = Tenant::from_yaml_str(&auth).expect("auth section").auth;
    tenant
}

/// Whose CPU time [`cpu_seconds`] counts.
#[derive(Clone, Copy, Debug)]
enum Whose {
    /// This process: the emulator.
    This,
    /// Its children that ended: the binary's runs.
    Children,
}

/// CPU seconds (user + system) used so far by this process (the emulator) or by its children
/// that ended (the binary's runs).
#[cfg(unix)]
fn cpu_seconds(whose: Whose) -> f64 {
    let who = match whose {
        Whose::This => libc::RUSAGE_SELF,
        Whose::Children => libc::RUSAGE_CHILDREN,
    };
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Off Unix there is no rusage: CPU time is not measured (NaN, printed as such); the bench's
/// figures are wall times, which do not need it.
#[cfg(not(unix))]
fn cpu_seconds(_: Whose) -> f64 {
    f64::NAN
}

/// What one run of the binary took: wall time, and CPU time of the binary and of the emulator.
#[derive(Clone, Copy, Debug)]
struct Took {
    wall: Duration,
    client_cpu: f64,
    emulator_cpu: f64,
}

/// Runs `mfactl ARGS` as the app against the emulator; its wall and CPU time.
async fn mfactl(emulator: &Emulator, dir: &Path, args: &[&str]) -> Took {
    let (children, own) = (cpu_seconds(Whose::Children), cpu_seconds(Whose::This));
    let binary = env!("CARGO_BIN_EXE_mfactl");
    let started = Instant::now();
    let out = tokio::process::Command::new(binary)
        .current_dir(dir)
        .args(args)
        .args(["--graph-url", &emulator.url()])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AZURE_CLIENT_ID", APP)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .env("AZURE_AUTHORITY_HOST", emulator.url())
        .env("MFACTL_PLAN_KEY_FILE", dir.join("plan.key"))
        .output()
        .await
        .expect("mfactl runs");
    let wall = started.elapsed();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 2,
        "mfactl {args:?} exited {code}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Took {
        wall,
        client_cpu: cpu_seconds(Whose::Children) - children,
        emulator_cpu: cpu_seconds(Whose::This) - own,
    }
}

fn tenants_file(dir: &Path, name: &str, count: usize) -> String {
    let entries: String = (1..=count)
        .map(|i| format!("  - tenant: customer{i}.onmicrosoft.com\n"))
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, format!("tenants:\n{entries}")).expect("tenants file");
    path.to_string_lossy().into_owned()
}

/// Case 9: `tenants` tenants of `users` users each.
pub async fn tenants_case(tenants: usize, users: usize) {
    println!();
    println!(
        "== 9. one manifest across {tenants} tenants of {} users each (issue 21), by the real \
         binary; one emulator serves them all on one port at Graph's quotas (per tenant: RU \
         8,000 per 10 s, writes 3,000 per 150 s; per app across tenants: 150,000 RU per 20 s, \
         70,000 writes per 5 min) with latency {}–{} ms; the app signs in to each tenant with its \
         secret",
        n(users as u64),
        GRAPH_LATENCY.0.as_millis(),
        GRAPH_LATENCY.1.as_millis()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let config = EmulatorConfig {
        latency: Some(GRAPH_LATENCY),
        ..EmulatorConfig::default()
    };
    let customers = (0..tenants).map(|i| customer(i, users)).collect();
    let emulator = Arc::new(
        Emulator::start_tenants(customers, config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("emulator"),
    );
    let manifest = dir.path().join("standard.yaml");
    std::fs::write(&manifest, MANIFEST).expect("manifest");
    let manifest = manifest.to_string_lossy().into_owned();
    let one = tenants_file(dir.path(), "one.yaml", 1);
    let all = tenants_file(dir.path(), "all.yaml", tenants);
    let in_flight = tenants.to_string();
    let plan = |tenants_file: &str, out: &str| {
        let args = [
            "plan",
            manifest.as_str(),
            "--tenants",
            tenants_file,
            "--out-dir",
            out,
            "--max-tenants-in-flight",
            in_flight.as_str(),
        ]
        .map(str::to_owned);
        let (emulator, dir) = (emulator.clone(), dir.path().to_owned());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            mfactl(&emulator, &dir, &args).await
        }
    };
    // A warm-up (page cache, first connections), then each measured once; the buckets refill
    // in between (a tenant's RU bucket in 10 s, the app's in 20 s).
    plan(&one, "warm-up").await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let single = plan(&one, "single").await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let before = emulator.stats();
    let multi = plan(&all, "all").await;
    let after = emulator.stats();
    let ratio = multi.wall.as_secs_f64() / single.wall.as_secs_f64();
    println!(
        "    plan: {tenants} tenants in {} wall; ideal {} (the largest tenant alone, same binary \
         and manifest); ratio {:.2}× (target ≤ 1.5: {}); {} Graph reads, {} 429s",
        s(multi.wall.as_secs_f64()),
        s(single.wall.as_secs_f64()),
        ratio,
        verdict(ratio <= 1.5),
        n(after.reads - before.reads),
        n(after.throttled - before.throttled)
    );
    println!(
        "      CPU: mfactl {} for {tenants} tenants ({} alone), the emulator {} ({} alone); the \
         machine's load average when it ended: {}",
        s(multi.client_cpu),
        s(single.client_cpu),
        s(multi.emulator_cpu),
        s(single.emulator_cpu),
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".to_owned())
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    apply_case(&emulator, dir.path(), &manifest, &all, tenants, users).await;
    if let Ok(emulator) = Arc::try_unwrap(emulator) {
        emulator.shutdown().await;
    }
}

/// The apply across every tenant, with the emulator's write count sampled to follow the
/// app-wide write bucket.
async fn apply_case(
    emulator: &Arc<Emulator>,
    dir: &Path,
    manifest: &str,
    all: &str,
    tenants: usize,
    users: usize,
) {
    let before = emulator.stats();
    let started = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (emulator, done) = (emulator.clone(), done.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                samples.push((started.elapsed().as_secs_f64(), emulator.stats().writes));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        })
    };
    let in_flight = tenants.to_string();
    let took = mfactl(
        emulator,
        dir,
        &[
            "apply",
            manifest,
            "--tenants",
            all,
            "--out-dir",
            "applied",
            "--max-tenants-in-flight",
            &in_flight,
            "--auto-approve",
        ],
    )
    .await;
    let wall = took.wall;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut samples = sampler.await.expect("the sampler ends");
    let after = emulator.stats();
    samples.push((started.elapsed().as_secs_f64(), after.writes));
    let writes = after.writes - before.writes;
    let expected = (tenants * users * 2) as u64;
    assert_eq!(writes, expected, "every user of every tenant written twice");
    let (first, last, lowest) = app_bucket(&samples, before.writes, writes);
    let per_tenant = (users * 2) as f64;
    let ideal = ((per_tenant - 3_000.0) / 20.0).max(0.0);
    println!(
        "    apply: {} writes in {} wall ({} of writing, from the first write to the last); \
         ideal of the writes {} (each tenant's write bucket: ({} − 3,000) ÷ 20/s, side by \
         side); ratio {:.2}×; {} 429s (target 0: {})",
        n(writes),
        s(wall.as_secs_f64()),
        s(last - first),
        s(ideal),
        n_f(per_tenant),
        (last - first) / ideal.max(0.001),
        n(after.throttled - before.throttled),
        verdict(after.throttled == before.throttled)
    );
    println!(
        "      app-wide write ceiling: {} writes in the busiest 5 minutes, against the {} the \
         app's bucket lets through in 5 minutes from full ({} + {} refill); its level fell to \
         {} of {} at the lowest ({} full), never empty: {}; {} tenants writing at their own \
         refill (20/s) would hold it at its refill rate ({:.0}/s)",
        n(writes),
        n_f(2.0 * APP_WRITES),
        n_f(APP_WRITES),
        n_f(APP_WRITES),
        n_f(lowest),
        n_f(APP_WRITES),
        pct(lowest / APP_WRITES),
        verdict(lowest > 0.0),
        n_f((APP_WRITES / APP_WINDOW_S / 20.0).floor()),
        APP_WRITES / APP_WINDOW_S
    );
}

/// From `(seconds, emulator writes)` samples: when the first and the last of `writes` writes
/// happened, and the lowest level the app-wide write bucket (full at 70,000, refilled at
/// 70,000 per 300 s) reached, charging each interval's writes before its refill.
fn app_bucket(samples: &[(f64, u64)], start: u64, writes: u64) -> (f64, f64, f64) {
    let refill = APP_WRITES / APP_WINDOW_S;
    let mut level = APP_WRITES;
    let mut lowest = APP_WRITES;
    let (mut first, mut last) = (None, 0.0);
    let mut previous = (samples.first().map_or(0.0, |s| s.0), start);
    for &(at, count) in samples {
        let done = count - start;
        if done > 0 && first.is_none() {
            first = Some(previous.0);
        }
        if done >= writes && last == 0.0 {
            last = at;
        }
        level -= (count - previous.1) as f64;
        lowest = lowest.min(level);
        level = (level + refill * (at - previous.0)).min(APP_WRITES);
        previous = (at, count);
    }
    (first.unwrap_or(0.0), last, lowest)
}
