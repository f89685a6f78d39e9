//! Reading big manifests: time and peak memory for YAML and CSV files of a million users (the
//! size of the largest migrations). Prints its figures; asserts only that every user was read.
//!
//! `cargo bench --bench manifest` (add `-- --quick` for 100,000 users).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use mfactl::manifest;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let users = if quick { 100_000 } else { 1_000_000 };
    let dir = tempfile::tempdir().expect("temp dir");

    let yaml = dir.path().join("desired.yaml");
    let csv = dir.path().join("desired.csv");
    write_manifests(users, &yaml, &csv);
    println!("mfactl manifest benchmark: {users} users");
    for path in [&yaml, &csv] {
        reset_peak_rss();
        let before = peak_rss_kib();
        let started = Instant::now();
        let manifest = manifest::load(path).expect("valid manifest");
        let elapsed = started.elapsed();
        assert_eq!(manifest.users.len(), users);
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!(
            "  {:<5} {:>6.1} MB file: {:>6.2} s ({:>7.0} users/s), peak RSS {} (was {} before)",
            path.extension().unwrap().to_string_lossy(),
            size as f64 / 1e6,
            elapsed.as_secs_f64(),
            users as f64 / elapsed.as_secs_f64(),
            peak_rss_kib().map_or("n/a".into(), |k| format!("{} MiB", k / 1024)),
            before.map_or("n/a".into(), |k| format!("{} MiB", k / 1024)),
        );
        drop(manifest);
    }
}

fn write_manifests(users: usize, yaml: &Path, csv: &Path) {
    let methods = ["push", "oath", "sms", "voiceMobile"];
    let states = ["disabled", "enabled", "enforced"];
    let mut y = String::from("version: 1\ndefaults:\n  systemPreferred: true\nusers:\n");
    let mut c = String::from("user,preferredMethod,systemPreferred,perUserMfaState\n");
    for i in 0..users {
        let (m, s) = (methods[i % 4], states[i % 3]);
        let _ = write!(
            y,
            "  - user: user{i:07}@contoso.onmicrosoft.com\n    preferredMethod: {m}\n    perUserMfaState: {s}\n"
        );
        let _ = writeln!(c, "user{i:07}@contoso.onmicrosoft.com,{m},true,{s}");
    }
    std::fs::write(yaml, y).expect("write yaml");
    std::fs::write(csv, c).expect("write csv");
}

/// Resets the kernel's peak-RSS mark for this process (Linux), so each file is measured alone.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// VmHWM from /proc (Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
