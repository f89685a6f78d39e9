//! Every command the README and the guides under docs/ show in a `sh` block is run here, as
//! written and in order, one scratch folder per file: `mfactl emulator serve ... &` starts a
//! server (on a free port, standing in for the address the text names), `export` sets variables
//! for the lines after it, `NAME=value mfactl ...` for one line. A line's exit code must be 0, or
//! what its comment says (`# exits 3: ...`). A command that talks to Graph without naming one
//! (`--graph-url`, `--emulate`, or `MFACTL_GRAPH_URL` exported by the text) goes to an emulator
//! serving `examples/tenant.yaml`, with a test token, as it would go to your tenant. The folder
//! holds a copy of `examples/` and its files at the top too (`baseline.yaml` is
//! `examples/baseline.yaml`).
//!
//! Programs this machine cannot run (Docker, the Azure CLI, kubectl) or that CI runs itself
//! (`cargo install`, the Windows build, `cargo test`) are named in [`NOT_RUN`]; any other
//! program fails the test, so a guide cannot show a command nobody runs. YAML, PowerShell,
//! Dockerfile and script blocks have tests of their own (`usage.rs`, `packaging.rs`, `schemas.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mfactl_emulator::Tenant;

use crate::support::{APPLIED_TENANT_FILES, Scenario, mfactl, stderr, stdout};

/// Programs shown but not run here, and why.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "cargo install",
        "a release build of this crate; .ci/run builds it",
    ),
    (
        "cargo build",
        "the Windows and static builds, which .ci/run runs",
    ),
    (
        "rustup",
        "installs a target; .ci/run does when it is missing",
    ),
    (
        "sudo",
        "installs a Debian package; .ci/run does when it is missing",
    ),
    (
        "docker",
        "no container engine on the machines the tests run on",
    ),
    (
        "az",
        "Azure cannot be reached from the machines the tests run on",
    ),
    (
        "kubectl",
        "no Kubernetes cluster on the machines the tests run on",
    ),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file under docs/, in a stable order.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, repo().join("README.md"));
    docs
}

/// The `sh` blocks of `markdown`: the line each starts on, and its lines with `\`-continued
/// ones joined.
fn sh_blocks(markdown: &str) -> Vec<(usize, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, Vec<String>)> = None;
    for (number, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        match &mut open {
            None if trimmed == "```sh" => open = Some((number + 1, Vec::new())),
            Some(_) if trimmed == "```" => blocks.push(open.take().unwrap()),
            Some((_, lines)) => match lines.last_mut() {
                Some(last) if last.ends_with('\\') => {
                    last.pop();
                    last.truncate(last.trim_end().len());
                    last.push(' ');
                    last.push_str(trimmed);
                }
                _ => lines.push(trimmed.to_owned()),
            },
            None => {}
        }
    }
    assert!(open.is_none(), "an sh block is never closed");
    blocks
}

/// A line split into shell words (single and double quotes, no expansions) and its comment.
fn words_and_comment(line: &str) -> (Vec<String>, String) {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, '#') if word.is_none() => {
                return (words, chars.collect::<String>().trim().to_owned());
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    assert!(quote.is_none(), "an unclosed quote: {line}");
    words.extend(word);
    (words, String::new())
}

/// The exit code a line's comment promises (`exits 3: ...`), else 0.
fn expected_code(comment: &str) -> i32 {
    comment
        .split_once("exits ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// A command that ran: where it was shown, what it printed.
struct Ran {
    line: String,
    stdout: String,
    stderr: String,
}

/// One document's scratch folder, the servers its text started, its variables, and the emulator
/// its Graph commands go to when they name none.
struct World {
    dir: tempfile::TempDir,
    servers: Servers,
    exported: BTreeMap<String, String>,
    tenant: Option<Scenario>,
    ran: Vec<Ran>,
    not_run: Vec<String>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let examples = dir.path().join("examples");
        std::fs::create_dir(&examples).unwrap();
        for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap();
            std::fs::copy(&path, examples.join(name)).unwrap();
            std::fs::copy(&path, dir.path().join(name)).unwrap();
        }
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        World {
            dir,
            servers: Servers::default(),
            exported: BTreeMap::new(),
            tenant: None,
            ran: Vec::new(),
            not_run: Vec::new(),
        }
    }

    /// The variables every command gets: the sign-in cache in the folder and in no keyring, and
    /// a PATH on which no `az` is found.
    fn base_env(&self) -> Vec<(String, String)> {
        let path = |name: &str| self.dir.path().join(name).to_string_lossy().into_owned();
        vec![
            ("MFACTL_TOKEN_CACHE".into(), path("token-cache.json")),
            ("MFACTL_KEYRING".into(), "off".into()),
            ("PATH".into(), path("bin")),
        ]
    }

    /// Runs one line of `place`'s block.
    fn run(&mut self, place: &str, line: &str) {
        let line = self.servers.substitute(line);
        let (mut words, comment) = words_and_comment(&line);
        if words.is_empty() {
            return;
        }
        if words[0] == "export" {
            for assignment in &words[1..] {
                let (name, value) = assignment.split_once('=').expect("export NAME=value");
                self.exported.insert(name.into(), value.into());
            }
            return;
        }
        let mut own = Vec::new();
        while let Some((name, value)) = words[0].split_once('=') {
            own.push((name.to_owned(), value.to_owned()));
            words.remove(0);
        }
        let shown = words.join(" ");
        if let Some((program, _)) = NOT_RUN.iter().find(|(p, _)| shown.starts_with(p)) {
            self.not_run.push(format!("{place}: {program}"));
            return;
        }
        if shown == "cargo test" {
            let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
            assert!(
                ci.lines().any(|l| l.ends_with(" cargo test")),
                "{place}: .ci/run must run the test command shown, `cargo test`"
            );
            return;
        }
        let args: Vec<String> = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["cargo", "run", "--release", "--", ..] => words[4..].to_vec(),
            ["mfactl", ..] => words[1..].to_vec(),
            _ => panic!("{place}: a command this test does not know: {line}"),
        };
        for word in &args {
            assert!(
                !["|", ">", ">>", "<", ";", "&&", "||"].contains(&word.as_str())
                    && !word.contains("$("),
                "{place}: shell syntax this test does not run: {line}"
            );
        }
        if args.last().map(String::as_str) == Some("&") {
            self.servers.start(&args[..args.len() - 1], self.dir.path());
            return;
        }
        let mut env = self.base_env();
        env.extend(self.exported.clone());
        let names_graph = args.iter().any(|a| a == "--graph-url" || a == "--emulate")
            || env.iter().any(|(name, _)| name == "MFACTL_GRAPH_URL");
        if !names_graph {
            let url = self.tenant().url();
            env.push(("MFACTL_GRAPH_URL".into(), url));
            env.push((
                "MFACTL_ACCESS_TOKEN".into(),
                "test-token-not-a-secret".into(),
            ));
        }
        env.extend(own);
        let out = mfactl()
            .current_dir(self.dir.path())
            .args(&args)
            .envs(env)
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(expected_code(&comment)),
            "{place}: {line}\nstdout:\n{}\nstderr:\n{}",
            stdout(&out),
            stderr(&out)
        );
        self.ran.push(Ran {
            line: line.clone(),
            stdout: stdout(&out),
            stderr: stderr(&out),
        });
    }

    /// The emulator serving examples/tenant.yaml, started when first needed.
    fn tenant(&mut self) -> &Scenario {
        self.tenant.get_or_insert_with(|| {
            let text = std::fs::read_to_string(repo().join("examples/tenant.yaml")).unwrap();
            Scenario::new(Tenant::from_yaml_str(&text).expect("the example tenant loads"))
        })
    }

    /// Checks that the first line containing `words` ran and printed `text` (on stdout or
    /// stderr).
    fn printed(&self, words: &str, text: &str) {
        let ran = self
            .ran
            .iter()
            .find(|ran| ran.line.contains(words))
            .unwrap_or_else(|| panic!("no line with {words} ran"));
        assert!(
            ran.stdout.contains(text) || ran.stderr.contains(text),
            "{}: no {text}\nstdout:\n{}\nstderr:\n{}",
            ran.line,
            ran.stdout,
            ran.stderr
        );
    }
}

/// Runs every `sh` block of `doc`; returns the world it ran in.
fn run_document(doc: &Path) -> World {
    let text = std::fs::read_to_string(doc).unwrap();
    let name = doc.strip_prefix(repo()).unwrap().display().to_string();
    let mut world = World::new();
    for (start, lines) in sh_blocks(&text) {
        for (offset, line) in lines.iter().enumerate() {
            world.run(&format!("{name}:{}", start + offset + 1), line);
        }
    }
    world
}

#[test]
fn the_readme_runs_as_written() {
    let world = run_document(&repo().join("README.md"));
    assert!(world.ran.len() >= 7, "{} commands ran", world.ran.len());
    for (line, printed) in [
        ("--emulate examples/tenant.yaml", "Plan: "),
        ("--out plan.json", "Plan: 10 users to change"),
        ("apply plan.json", "Apply: 10 users changed"),
        ("show megan@contoso.com", "MFA coverage"),
        ("--detailed-exitcode", "Plan: 0 users to change"),
        (" login ", "Signed in as admin@contoso.com"),
        ("examples/signin.yaml", "Signed in with device"),
        // megan gets push, the first method of her list she has
        ("examples/signin.yaml", "preferredMethod: sms -> push"),
    ] {
        world.printed(line, printed);
    }
}

#[test]
fn every_guide_runs_as_written() {
    let mut ran = 0;
    // The README, the migration guide and the many-tenants guide have tests of their own, which
    // also check what they printed.
    let own = ["README.md", "migration.md", "many-tenants.md"];
    for doc in documents()
        .into_iter()
        .filter(|doc| !own.iter().any(|name| doc.ends_with(name)))
    {
        let text = std::fs::read_to_string(&doc).unwrap();
        let blocks = sh_blocks(&text).len();
        let world = run_document(&doc);
        assert!(
            blocks == 0 || !world.ran.is_empty() || !world.not_run.is_empty(),
            "{}: nothing ran",
            doc.display()
        );
        ran += world.ran.len();
    }
    assert!(ran >= 3, "the guides ran {ran} commands");
}

/// The migration guide's waves do what it says, against the served stand-in.
#[test]
fn the_migration_guide_moves_the_pilot_then_holds_the_uncovered() {
    let world = run_document(&repo().join("docs/migration.md"));
    for (line, printed) in [
        (
            "show lee.gu@contoso.com",
            "push                     not usable: Microsoft Authenticator is not registered",
        ),
        ("apply wave1.plan.json", "Apply: 3 users changed"),
        (
            "apply everyone.plan.json",
            "not covered: no Conditional Access policy requires MFA",
        ),
        // the policy's change is written
        ("apply everyone.plan.json", "(1 of 1 writes applied)"),
    ] {
        world.printed(line, printed);
    }
    let undo = std::fs::read_to_string(world.dir.path().join("undo-wave1.yaml")).unwrap();
    assert!(undo.contains("perUserMfaState: \"enforced\""), "{undo}");
    let before = std::fs::read_to_string(world.dir.path().join("before.yaml")).unwrap();
    assert!(before.contains("# MFA coverage: covered by"), "{before}");
}

/// The many-tenants guide (issue 21): three customers on one emulator, the MSP's app consented
/// in A and B. `plan --tenants` and `apply --tenants` exit 1 (C fails alone, with Entra's
/// reason), A and B are applied, the roll-up names all three with each one's files, and a
/// second plan of A and B alone (not in the guide) finds nothing to change.
#[test]
fn the_many_tenants_guide_converges_two_customers_and_fails_the_third_alone() {
    let mut world = run_document(&repo().join("docs/many-tenants.md"));
    for (line, printed) in [
        (
            "plan examples/standard.yaml",
            "Tenants: 3 (2 planned, 1 failed); exit code 1",
        ),
        (
            "plan examples/standard.yaml",
            "customer-c.onmicrosoft.com  [exit 1, failed] failed: sign-in failed",
        ),
        ("plan examples/standard.yaml", "AADSTS7000229"),
        (
            "apply examples/standard.yaml",
            "Tenants: 3 (2 applied, 1 failed); exit code 1",
        ),
        // A: everyone; B: everyone but its break-glass account (excluded in tenants.yaml).
        (
            "apply examples/standard.yaml",
            "(3f7a0c2e-0000-4000-8000-00000000000a)  [exit 0, applied] Apply: 3 users changed",
        ),
        (
            "apply examples/standard.yaml",
            "3f7a0c2e-0000-4000-8000-00000000000b  [exit 0, applied] Apply: 2 users changed",
        ),
        (
            "apply examples/standard.yaml",
            "customer-c.onmicrosoft.com  [exit 1, failed]",
        ),
    ] {
        world.printed(line, printed);
    }
    let run = world.dir.path().join("runs/apply");
    for tenant in [
        "customer-a.onmicrosoft.com",
        "3f7a0c2e-0000-4000-8000-00000000000b",
    ] {
        for file in APPLIED_TENANT_FILES {
            let path = run.join(tenant).join(file);
            assert!(path.is_file(), "{}", path.display());
        }
    }
    let rollup = std::fs::read_to_string(run.join("summary.md")).unwrap();
    for row in [
        "| customer-a.onmicrosoft.com",
        "| 3f7a0c2e-0000-4000-8000-00000000000b | applied | 0 |",
        "| customer-c.onmicrosoft.com | failed | 1 |",
    ] {
        assert!(rollup.contains(row), "{row}: {rollup}");
    }
    assert!(run.join("summary.json").is_file() && run.join("summary.html").is_file());
    // Converged: A and B alone plan nothing (exit 0 with --detailed-exitcode).
    std::fs::write(
        world.dir.path().join("consented.yaml"),
        "tenants:\n  - tenant: customer-a.onmicrosoft.com\n  - tenant: \
         3f7a0c2e-0000-4000-8000-00000000000b\n    exclude: [{group: Break-glass}]\n",
    )
    .unwrap();
    world.run(
        "many-tenants.md (converged)",
        "mfactl plan examples/standard.yaml --tenants consented.yaml --out-dir runs/again \
         --detailed-exitcode --graph-url http://127.0.0.1:8082",
    );
    world.printed("runs/again", "Tenants: 2 (2 planned); exit code 0");
}

#[test]
fn comments_promise_exit_codes_and_words_split_like_a_shell() {
    assert_eq!(expected_code("exits 3: a few users"), 3);
    assert_eq!(expected_code("nothing here"), 0);
    let (words, comment) =
        words_and_comment("A='x y' mfactl plan \"a b.yaml\" --out p.json   # exits 2: drift");
    assert_eq!(
        words,
        ["A=x y", "mfactl", "plan", "a b.yaml", "--out", "p.json"]
    );
    assert_eq!(comment, "exits 2: drift");
    let blocks = sh_blocks("text\n```sh\nmfactl plan a \\\n  --out b\n# c\n```\n");
    assert_eq!(
        blocks,
        [(2, vec!["mfactl plan a --out b".to_owned(), "# c".into()])]
    );
}

/// `mfactl emulator serve` processes a text started, each on a free port, and the address the
/// text gave each.
#[derive(Default)]
struct Servers {
    running: Vec<(String, String, std::process::Child)>,
}

impl Servers {
    /// Starts `emulator serve ... --listen ADDR` on a free port in `dir`; ADDR then stands for it.
    fn start(&mut self, args: &[String], dir: &Path) {
        use std::io::BufRead as _;
        let listen = args.iter().position(|a| a == "--listen").unwrap() + 1;
        let named = args[listen].clone();
        let mut args = args.to_vec();
        args[listen] = "127.0.0.1:0".into();
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mfactl"))
            .current_dir(dir)
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // `mfactl emulator serving N users [in T tenants] on http://127.0.0.1:PORT (Ctrl-C to
        // stop)`: the address follows the first "on".
        let url = first
            .split_whitespace()
            .skip_while(|word| *word != "on")
            .nth(1)
            .expect(&first);
        let bound = url.trim_start_matches("http://").to_owned();
        self.running.push((named, bound, child));
    }

    /// `line` with each address a text named replaced by its server's.
    fn substitute(&self, line: &str) -> String {
        self.running
            .iter()
            .fold(line.to_owned(), |line, (named, bound, _)| {
                line.replace(named, bound)
            })
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for (_, _, child) in &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A heading's anchor as GitHub makes it: lower case, punctuation but `-` and `_` dropped,
/// spaces made `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every relative link in the README and the guides leads to a file that exists, and to a
/// heading there when it names one.
#[test]
fn every_link_between_the_docs_leads_somewhere() {
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (_, rest) in text
            .match_indices("](")
            .map(|(at, _)| ((), &text[at + 2..]))
        {
            let target = &rest[..rest.find(')').unwrap()];
            if target.contains("://") || target.contains(' ') {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let path = if file.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(file)
            };
            assert!(path.exists(), "{}: {target} leads nowhere", doc.display());
            if !fragment.is_empty() {
                let headings = std::fs::read_to_string(&path).unwrap();
                let found = headings
                    .lines()
                    .filter_map(|line| line.strip_prefix('#'))
                    .map(|line| anchor(line.trim_start_matches('#')))
                    .any(|a| a == fragment);
                assert!(found, "{}: no heading for {target}", doc.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} links");
    assert_eq!(
        anchor(" Never leave a user without MFA (Conditional Access coverage)"),
        "never-leave-a-user-without-mfa-conditional-access-coverage"
    );
    assert_eq!(
        anchor(" Guards (`protect:`, `maxChanges:`)"),
        "guards-protect-maxchanges"
    );
}
