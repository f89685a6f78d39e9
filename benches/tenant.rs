//! Big emulator tenants: how long `emulator generate` takes, how large its file is, and how long
//! loading it takes and how much memory that needs, for 100,000 and 1,000,000 users. Prints its
//! figures; asserts only that every user was read back.
//!
//! `cargo bench --bench tenant` (add `-- --quick` for 100,000 users only).
//!
//! Each step runs in a fresh child process (this binary again, with `--step`): peak RSS is a
//! per-process high-water mark, and memory freed by an earlier step (the generator's tenant, a
//! smaller load) would otherwise be reused without showing up, or show up in the wrong step.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use mfactl_emulator::Tenant;
use mfactl_emulator::state::TenantState;

/// Counts heap bytes in use and their peak: RSS also holds memory the allocator freed but kept,
/// so the heap figures say exactly what the tenant and the loading of it need.
struct Counting;

static HEAP: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed straight to the system allocator; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        new
    }
}

fn grew(bytes: usize) {
    let now = HEAP.fetch_add(bytes, Ordering::Relaxed) + bytes;
    HEAP_PEAK.fetch_max(now, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--step") {
        step(&args[at + 1..]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[100_000]
    } else {
        &[100_000, 1_000_000]
    };
    let dir = tempfile::tempdir().expect("temp dir");
    println!("mfactl tenant benchmark (peak RSS is per step, each in a fresh process)");
    for &users in sizes {
        let path = dir.path().join(format!("tenant-{users}.yaml"));
        let path = path.to_str().expect("UTF-8 temp path");
        let generated = child(&["generate", &users.to_string(), path]);
        let size = std::fs::metadata(path).expect("generated file").len();
        println!(
            "  {users:>9} users: generate {:>6.2} s, file {:>7.1} MB ({:.0} bytes a user), peak RSS {}",
            generated[0],
            size as f64 / 1e6,
            size as f64 / users as f64,
            mib(generated[1]),
        );
        for (label, how) in [("load (streamed)", "load"), ("from_yaml_str", "load-str")] {
            let f = child(&[how, &users.to_string(), path]);
            let (secs, base, peak, held, serving) = (f[0], f[1], f[2], f[3], f[4]);
            let (heap_peak, heap_tenant, heap_serving) = (f[5], f[6], f[7]);
            println!(
                "      {label:<16} {secs:>6.2} s ({:>6.0} users/s); peak RSS {} ({:.0} B a user), \
                 RSS after {}; heap: peak {:.0} B a user, tenant {:.0} B a user",
                users as f64 / secs,
                mib(peak),
                per_user(peak - base, users),
                mib(held),
                heap_peak / users as f64,
                heap_tenant / users as f64,
            );
            println!(
                "      {:<16} + serving indexes: peak RSS {} ({:.0} B a user); heap {:.0} B a user",
                "",
                mib(serving),
                per_user(serving - base, users),
                heap_serving / users as f64,
            );
        }
    }
}

/// Runs one step in a fresh process and returns the numbers it printed.
fn child(step: &[&str]) -> Vec<f64> {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .arg("--step")
        .args(step)
        .output()
        .expect("bench step runs");
    assert!(
        out.status.success(),
        "step {step:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|n| n.parse().expect("step prints numbers"))
        .collect()
}

/// The child's side: `generate N PATH` prints `seconds peak_kib`; `load|load-str N PATH` prints
/// `seconds`, RSS in KiB (`baseline peak after serving_peak`) and heap bytes (`peak tenant
/// serving`).
fn step(args: &[String]) {
    let (what, users, path) = (
        args[0].as_str(),
        args[1].parse::<usize>().expect("user count"),
        Path::new(&args[2]),
    );
    match what {
        "generate" => {
            let started = Instant::now();
            let tenant = Tenant::generate(users, 1);
            let file = std::fs::File::create(path).expect("create tenant file");
            tenant.write_yaml(file).expect("write tenant file");
            let secs = started.elapsed().as_secs_f64();
            println!("{secs} {}", rss_kib("VmHWM:"));
        }
        "load" | "load-str" => {
            reset_peak_rss();
            let base = rss_kib("VmRSS:");
            let heap_base = HEAP.load(Ordering::Relaxed);
            HEAP_PEAK.store(heap_base, Ordering::Relaxed);
            let started = Instant::now();
            let tenant = if what == "load" {
                Tenant::load(path).expect("generated tenant loads")
            } else {
                let text = std::fs::read_to_string(path).expect("read tenant file");
                Tenant::from_yaml_str(&text).expect("generated tenant loads")
            };
            let secs = started.elapsed().as_secs_f64();
            assert_eq!(tenant.users.len(), users);
            let (peak, held) = (rss_kib("VmHWM:"), rss_kib("VmRSS:"));
            let heap_peak = HEAP_PEAK.load(Ordering::Relaxed) - heap_base;
            let heap_tenant = HEAP.load(Ordering::Relaxed) - heap_base;
            // What `emulator serve` builds next: the tenant plus its id and UPN indexes.
            let state = TenantState::new(tenant);
            let serving = rss_kib("VmHWM:");
            let heap_serving = HEAP.load(Ordering::Relaxed) - heap_base;
            assert_eq!(state.tenant().users.len(), users);
            println!(
                "{secs} {base} {peak} {held} {serving} {heap_peak} {heap_tenant} {heap_serving}"
            );
        }
        other => panic!("unknown step {other}"),
    }
}

fn mib(kib: f64) -> String {
    format!("{:.0} MiB", kib / 1024.0)
}

fn per_user(kib: f64, users: usize) -> f64 {
    kib * 1024.0 / users as f64
}

/// Resets the kernel's peak-RSS mark for this process (Linux), so a step is measured alone.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A `/proc/self/status` field in KiB (Linux; 0 elsewhere).
fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with(field))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}
