//! The red team's fuzzing, kept: seeded, reproducible mutations of manifests (YAML and CSV),
//! tenant files, saved plans and journals, each fed to the reader mfactl uses for it. Every
//! input must come back as a value or an error — never a panic. `cargo test` runs a bounded
//! number of cases per kind; `MFACTL_FUZZ_CASES=N` runs more (and `MFACTL_FUZZ_SEED=S` another
//! sequence). A failure names the kind, seed and case, and leaves the input in the target
//! folder, so that it can be replayed.

use std::path::{Path, PathBuf};

use mfactl::engine::{Resume, journal_file, rollback::Rollback};
use mfactl::plan::saved;
use mfactl_emulator::Tenant;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Cases per kind in `cargo test`.
const CASES: usize = 250;

fn cases() -> usize {
    std::env::var("MFACTL_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES)
}

fn seed() -> u64 {
    std::env::var("MFACTL_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(18)
}

/// Pieces worth splicing in: structure, numbers at the edges, hostile text.
const TOKENS: &[&str] = &[
    "\n",
    "\r\n",
    "\"",
    "'",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "- ",
    "null",
    "true",
    "~",
    "1e300",
    "-1",
    "18446744073709551616",
    "0x1f",
    "NaN",
    "\u{202e}",
    "\u{1b}[2J",
    "\0",
    "#",
    "&a",
    "*a",
    "!!binary",
    "<<: *a",
    "%TAG",
    "---",
    "...",
    "\t",
    "@",
    "users",
    "user:",
    "id",
    "protect",
    "maxChanges",
    "policy",
    "\"checksum\"",
    "\"event\"",
    "\"intent\"",
    "\"result\"",
    "\"ok\"",
    "\"unsettled\"",
    "\"body\"",
    "perUserMfaState",
    "enforced",
    "signInPreferences",
    "071cc716-8147-4397-a5ba-b2105951cc0b",
    "#EXT#",
    "$x@contoso.com",
    "..",
    "%2e",
];

/// One mutation of `input`.
fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = if out.is_empty() {
            0
        } else {
            rng.random_range(0..=out.len())
        };
        match rng.random_range(0..7) {
            0 if !out.is_empty() => {
                let i = rng.random_range(0..out.len());
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                out.splice(at..at, token.bytes());
            }
            2 if !out.is_empty() => {
                let end = (at + rng.random_range(1..64)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 if !out.is_empty() => {
                let start = rng.random_range(0..out.len());
                let end = (start + rng.random_range(1..256)).min(out.len());
                let copy = out[start..end].to_vec();
                out.splice(at..at, copy);
            }
            4 => out.truncate(at),
            5 => {
                // Deep nesting or a long line.
                let (open, n) = if rng.random_bool(0.5) {
                    ("[", 2000)
                } else {
                    ("x", 70_000)
                };
                out.splice(at..at, open.repeat(n).bytes());
            }
            _ => {
                let byte = rng.random::<u8>();
                out.insert(at.min(out.len()), byte);
            }
        }
    }
    out
}

/// Feeds `cases()` mutations of each seed to `read` (which gets a file holding the input);
/// a panic fails the test naming the case, with the input kept beside the test binary.
fn fuzz(kind: &str, extension: &str, seeds: &[Vec<u8>], read: impl Fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(seed() ^ fxhash(kind));
    for case in 0..cases() {
        let seed_input = &seeds[case % seeds.len()];
        let input = mutate(&mut rng, seed_input);
        let path = dir.path().join(format!("input.{extension}"));
        std::fs::write(&path, &input).unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&path)));
        if outcome.is_err() {
            let kept = kept_input(kind, case, extension);
            std::fs::write(&kept, &input).unwrap();
            panic!(
                "{kind}: case {case} (MFACTL_FUZZ_SEED={}) panicked; its input is {}",
                seed(),
                kept.display()
            );
        }
    }
}

fn kept_input(kind: &str, case: usize, extension: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-{kind}-{case}.{extension}"))
}

/// A stable hash of the kind, so that each kind has its own sequence.
fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn example(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
    )
    .unwrap()
}

#[test]
fn fuzzed_manifests_never_panic() {
    let yaml = [example("desired.yaml"), example("migrate.yaml")];
    fuzz("manifest-yaml", "yaml", &yaml, |path| {
        let _ = mfactl::manifest::load(path);
    });
    fuzz("manifest-csv", "csv", &[example("desired.csv")], |path| {
        let _ = mfactl::manifest::load(path);
    });
}

#[test]
fn fuzzed_tenant_files_never_panic() {
    let seeds = [
        example("tenant.yaml"),
        Tenant::generate(5, 18).to_yaml().into_bytes(),
    ];
    fuzz("tenant", "yaml", &seeds, |path| {
        let _ = Tenant::load_with_notes(path);
    });
}

/// The part of a saved plan before its checksum, sealed again with the tests' key: a mutated
/// plan then reaches the content checks, as one sealed by someone holding the key would.
fn sealed(body: &[u8]) -> Vec<u8> {
    use aws_lc_rs::hmac;
    let key_text = std::fs::read_to_string(crate::support::plan_key_file()).unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, key_text.trim().as_bytes());
    let tag = hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let mut out = body.to_vec();
    out.extend_from_slice(
        format!(
            ",\n  \"checksum\": \"hmac-sha256:{}:{hex}\"\n}}\n",
            crate::support::plan_key().id()
        )
        .as_bytes(),
    );
    out
}

#[test]
fn fuzzed_saved_plans_never_panic() {
    let key = crate::support::plan_key();
    let tenant = Tenant::generate(6, 18);
    let scenario = crate::support::Scenario::new(tenant.clone());
    let yaml = scenario.write(
        "desired.yaml",
        &crate::support::to_yaml(&crate::support::manifest_changing_everyone(&tenant)),
    );
    let plan = std::fs::read(scenario.save_plan(&yaml)).unwrap();
    let text = String::from_utf8(plan).unwrap();
    let body = text.as_bytes()[..text
        .rfind(
            ",
  \"checksum\"",
        )
        .unwrap()]
        .to_vec();
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("plan.json");
    fuzz("plan", "json", &[body], |path| {
        let mutated = std::fs::read(path).unwrap();
        // Half as the attacker without the key, half as one holding it.
        for bytes in [mutated.clone(), sealed(&mutated)] {
            std::fs::write(&inner, &bytes).unwrap();
            if let Ok(mut plan) = saved::load(&inner, Some(&key)) {
                let _ = saved::check_contents(&plan);
                saved::escape_text(&mut plan);
                let _ = serde_json::to_string(&plan);
                let _ = plan.write_count();
            }
        }
    });
}

#[test]
fn fuzzed_journals_never_panic() {
    let id = "071cc716-8147-4397-a5ba-b2105951cc0b";
    let lines = [
        r#"{"time":"2026-11-23T10:00:00Z","event":"start","graph":"https://graph.microsoft.com","tenant_id":"9c0e5f1a-0000-4000-8000-000000000001","plan":"plan.json","plan_checksum":"hmac-sha256:00:00"}"#.to_owned(),
        format!(r#"{{"time":"t","event":"intent","user":"a@contoso.com","id":"{id}","endpoint":"requirements","before":{{"perUserMfaState":"enforced"}},"body":{{"perUserMfaState":"disabled"}}}}"#),
        format!(r#"{{"time":"t","event":"result","user":"a@contoso.com","id":"{id}","endpoint":"requirements","result":{{"ok":false,"status":null,"request_id":null,"code":"unsettled","unsettled":true}}}}"#),
        format!(r#"{{"time":"t","event":"intent","user":"a@contoso.com","id":"{id}","endpoint":"signInPreferences","before":{{"userPreferredMethodForSecondaryAuthentication":"sms","isSystemPreferredAuthenticationMethodEnabled":false}},"body":{{"userPreferredMethodForSecondaryAuthentication":"push","isSystemPreferredAuthenticationMethodEnabled":true}}}}"#),
        format!(r#"{{"time":"t","event":"result","user":"a@contoso.com","id":"{id}","endpoint":"signInPreferences","result":{{"ok":true,"status":204,"request_id":"r"}}}}"#),
        r#"{"time":"t","event":"intent","resource":"authenticationMethodsPolicy","before":{"systemCredentialPreferences":{"state":"default","includeTargets":[{"id":"all_users","targetType":"group"}],"excludeTargets":[]}},"body":{"systemCredentialPreferences":{"state":"enabled","includeTargets":[{"id":"all_users","targetType":"group"}],"excludeTargets":[]}}}"#.to_owned(),
        r#"{"time":"t","event":"result","resource":"authenticationMethodsPolicy","result":{"ok":true,"status":200,"request_id":null}}"#.to_owned(),
        r#"{"time":"t","event":"finish"}"#.to_owned(),
    ];
    let journal = (lines.join("\n") + "\n").into_bytes();
    fuzz("journal", "jsonl", &[journal], |path| {
        if let Ok(read) = journal_file::read(path) {
            let resume = Resume::from_records(&read.records);
            let _ = (resume.applied(), resume.unsettled());
            let _ = Rollback::from_records(&read.records).manifest("journal.jsonl");
        }
    });
}
