//! The README's first command: the examples, through `--emulate`.

use std::path::{Path, PathBuf};

use crate::support::{mfactl, stderr, stdout};

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn readme_quick_start_plan_is_correct() {
    let out = mfactl()
        .args([
            "plan",
            &example("desired.yaml"),
            "--emulate",
            &example("tenant.yaml"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The emulator's port changes every run.
    let text = stdout(&out);
    let text = redact_request_ids(&regex_lite_replace_url(&text));
    insta::assert_snapshot!("example_plan", text);
}

#[test]
fn example_csv_plans_like_the_yaml() {
    let run = |manifest: &str| {
        let out = mfactl()
            .args([
                "plan",
                &example(manifest),
                "--emulate",
                &example("tenant.yaml"),
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        let mut doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["graph"] = serde_json::Value::Null;
        for user in doc["users"].as_array_mut().unwrap() {
            if user["error"].is_object() {
                user["error"]["request_id"] = serde_json::Value::Null; // fresh per request
            }
        }
        crate::support::comparable(doc)
    };
    assert_eq!(run("desired.csv"), run("desired.yaml"));
}

/// Replaces `http://127.0.0.1:PORT` with `http://127.0.0.1:PORT` literally.
fn regex_lite_replace_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("http://127.0.0.1:") {
        out.push_str(&rest[..at]);
        out.push_str("http://127.0.0.1:PORT");
        rest = &rest[at + "http://127.0.0.1:".len()..];
        rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// Request ids are fresh GUIDs on every run.
fn redact_request_ids(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("(request-id ") {
            Some(at) => format!("{}(request-id [redacted])", &line[..at]),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_migration_walkthrough_plans_the_policy_and_the_users() {
    let out = mfactl()
        .args([
            "plan",
            &example("migrate.yaml"),
            "--emulate",
            &example("tenant.yaml"),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(plan["summary"]["policy_writes"], 1, "{plan}");
    assert_eq!(plan["summary"]["to_change"], 3, "{plan}");
    assert_eq!(plan["summary"]["in_sync"], 1, "{plan}");
    // Everyone it takes off per-user MFA is covered by "Require MFA for staff".
    assert_eq!(plan["summary"]["mfa_coverage"]["covered"], 3, "{plan}");
    // The walkthrough then looks at the user left out of Authenticator.
    let out = mfactl()
        .args([
            "show",
            "lee.gu@contoso.com",
            "--emulate",
            &example("tenant.yaml"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "push                     not usable: Microsoft Authenticator is not registered"
        ),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("MFA coverage           covered by \"Require MFA for staff\""),
        "{}",
        stdout(&out)
    );
}

/// README's quick start, run as written: `emulator serve` in the background (on a free port in
/// place of the one README names), `plan --graph-url` against it, then sign-in against an
/// emulator that signs in like Entra ID (`AZURE_AUTHORITY_HOST`), `login` and a plan with the
/// cached sign-in.
#[test]
fn readme_quick_start_commands_run_as_written() {
    let readme =
        std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README opens with a sh block");
    let home = tempfile::tempdir().unwrap();
    let empty_path = home.path().join("bin");
    std::fs::create_dir(&empty_path).unwrap();
    let mut shell = Shell::new(Path::new(env!("CARGO_MANIFEST_DIR")));
    // The sign-in is cached here, and no `az` is found on the way to it.
    shell.env.push((
        "MFACTL_TOKEN_CACHE".into(),
        home.path()
            .join("cache.json")
            .to_string_lossy()
            .into_owned(),
    ));
    shell
        .env
        .push(("PATH".into(), empty_path.to_string_lossy().into_owned()));
    let ran = shell.run(block);
    for run in &ran {
        assert_eq!(run.code, Some(0), "{}\n{}", run.line, run.stderr);
    }
    let find = |word: &str| {
        ran.iter()
            .find(|run| run.line.contains(word))
            .unwrap_or_else(|| panic!("no {word} line ran"))
    };
    let served_plan = &find("examples/desired.yaml --graph-url").stdout;
    assert!(served_plan.contains("Plan: "), "{served_plan}");
    let login = &find(" login ").stderr;
    assert!(login.contains("Signed in as admin@contoso.com"), "{login}");
    let signed = find("examples/signin.yaml");
    assert!(
        signed.stderr.contains("Signed in with device"),
        "{}",
        signed.stderr
    );
    assert!(
        signed.stdout.contains("preferredMethod: sms -> push"),
        "megan gets push, the first of her list: {}",
        signed.stdout
    );
}

/// README's "Many tenants" walkthrough, run as written in a fresh folder holding a copy of
/// `examples/`: three customers served by one emulator, the MSP's app consented in A and B.
/// `plan --tenants` and `apply --tenants` exit 1 (C fails alone, with Entra's reason), A and B
/// are applied, the roll-up names all three with each one's files, and a second plan of A and
/// B alone (not in README) finds nothing to change.
#[test]
fn readme_many_tenants_walkthrough_runs_as_written() {
    let readme =
        std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let block = readme
        .split("\n## Many tenants\n")
        .nth(1)
        .and_then(|section| section.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("README's \"Many tenants\" has a sh block");
    let dir = tempfile::tempdir().unwrap();
    copy_examples(&dir.path().join("examples"));
    let mut shell = Shell::new(dir.path());
    let ran = shell.run(block);
    let find = |word: &str| {
        ran.iter()
            .find(|run| run.line.contains(word))
            .unwrap_or_else(|| panic!("no {word} line ran"))
    };
    for (command, folder, done) in [
        ("mfactl plan ", "runs/plan", "planned"),
        ("mfactl apply ", "runs/apply", "applied"),
    ] {
        let run = find(command);
        assert_eq!(
            run.code,
            Some(1),
            "{}\n{}\n{}",
            run.line,
            run.stdout,
            run.stderr
        );
        let text = &run.stdout;
        assert!(
            text.contains(&format!("Tenants: 3 (2 {done}, 1 failed); exit code 1")),
            "{text}"
        );
        for tenant in [
            "customer-a.onmicrosoft.com",
            "3f7a0c2e-0000-4000-8000-00000000000b",
        ] {
            assert!(text.contains(tenant), "{text}");
            let files = dir.path().join(folder).join(tenant);
            for file in ["plan.json", "report.json", "report.md", "report.html"] {
                assert!(files.join(file).is_file(), "{}", files.join(file).display());
            }
        }
        assert!(
            text.contains("customer-c.onmicrosoft.com  [exit 1, failed]")
                && text.contains("AADSTS7000229"),
            "{text}"
        );
        for file in ["summary.md", "summary.json", "summary.html"] {
            assert!(
                dir.path().join(folder).join(file).is_file(),
                "{folder}/{file}"
            );
        }
    }
    let applied = &find("mfactl apply ").stdout;
    // A: everyone; B: everyone but its break-glass account (excluded in tenants.yaml).
    assert!(
        applied.contains("[exit 0, applied] Apply: 3 users changed (3 of 3 writes applied)"),
        "{applied}"
    );
    assert!(
        applied.contains("[exit 0, applied] Apply: 2 users changed (2 of 2 writes applied)"),
        "{applied}"
    );
    for tenant in [
        "customer-a.onmicrosoft.com",
        "3f7a0c2e-0000-4000-8000-00000000000b",
    ] {
        let journal = dir
            .path()
            .join("runs/apply")
            .join(tenant)
            .join("journal.jsonl");
        assert!(journal.is_file(), "{}", journal.display());
    }
    let rollup = find("cat runs/apply/summary.md");
    assert_eq!(rollup.code, Some(0));
    for tenant in [
        "| customer-a.onmicrosoft.com",
        "| 3f7a0c2e-0000-4000-8000-00000000000b | applied | 0 |",
        "| customer-c.onmicrosoft.com | failed | 1 |",
    ] {
        assert!(
            rollup.stdout.contains(tenant),
            "{tenant}: {}",
            rollup.stdout
        );
    }
    // Converged: A and B alone plan nothing (exit 0 with --detailed-exitcode).
    std::fs::write(
        dir.path().join("consented.yaml"),
        "tenants:\n  - tenant: customer-a.onmicrosoft.com\n  - tenant: \
         3f7a0c2e-0000-4000-8000-00000000000b\n    exclude: [{group: Break-glass}]\n",
    )
    .unwrap();
    let plan = find("mfactl plan ")
        .line
        .replace("examples/tenants.yaml", "consented.yaml");
    let again = shell.run(&format!(
        "{} --detailed-exitcode\n",
        plan.replace("runs/plan", "runs/again")
    ));
    assert_eq!(
        again[0].code,
        Some(0),
        "{}\n{}",
        again[0].stdout,
        again[0].stderr
    );
    assert!(
        again[0].stdout.contains("Tenants: 2 (2 planned)"),
        "{}",
        again[0].stdout
    );
}

/// A copy of the repository's `examples/` at `to`.
fn copy_examples(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// What one line of a sh block did.
struct Ran {
    line: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the lines of a README sh block as a shell would, in `dir`: `export NAME=VALUE`,
/// `NAME=VALUE mfactl ...`, `mfactl ...` (or `cargo run --release -- ...`), `mfactl ... &` (an
/// emulator server, on a free port standing for the address written) and `cat FILE`; comments,
/// blank lines and `cargo test` are skipped. Any other line fails the test.
struct Shell {
    dir: PathBuf,
    env: Vec<(String, String)>,
    servers: Servers,
}

impl Shell {
    fn new(dir: &Path) -> Shell {
        Shell {
            dir: dir.to_owned(),
            env: Vec::new(),
            servers: Servers::default(),
        }
    }

    fn run(&mut self, block: &str) -> Vec<Ran> {
        let mut ran = Vec::new();
        for line in block.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line == "cargo test" {
                continue;
            }
            let line = self.servers.substitute(line);
            if let Some(assignment) = line.strip_prefix("export ") {
                let (name, value) = assignment.split_once('=').unwrap();
                self.env.push((name.into(), value.into()));
                continue;
            }
            if let Some(file) = line.strip_prefix("cat ") {
                let text = std::fs::read_to_string(self.dir.join(file)).unwrap();
                ran.push(Ran {
                    line: line.clone(),
                    code: Some(0),
                    stdout: text,
                    stderr: String::new(),
                });
                continue;
            }
            let mut words: Vec<&str> = line.split_whitespace().collect();
            let mut own_env = Vec::new();
            while let Some((name, value)) = words[0].split_once('=') {
                own_env.push((name.to_owned(), value.to_owned()));
                words.remove(0);
            }
            let args: Vec<&str> = match words.as_slice() {
                ["cargo", "run", "--release", "--", rest @ ..] => rest.to_vec(),
                ["mfactl", rest @ ..] => rest.to_vec(),
                other => panic!("a README line this test does not know: {other:?}"),
            };
            if args.last() == Some(&"&") {
                self.servers.start(&self.dir, &args[..args.len() - 1]);
                continue;
            }
            let mut cmd = mfactl();
            cmd.current_dir(&self.dir)
                .args(&args)
                .timeout(std::time::Duration::from_secs(90));
            for (name, value) in self.env.iter().chain(&own_env) {
                cmd.env(name, value);
            }
            let out = cmd.output().unwrap();
            ran.push(Ran {
                line: line.clone(),
                code: out.status.code(),
                stdout: stdout(&out),
                stderr: stderr(&out),
            });
        }
        ran
    }
}

/// `mfactl emulator serve` processes started by a test, each on a free port, and the README
/// address each stands for.
#[derive(Default)]
struct Servers {
    running: Vec<(String, String, std::process::Child)>,
}

impl Servers {
    /// Starts `emulator serve ... --listen ADDR` in `dir` on a free port; ADDR then stands for
    /// it.
    fn start(&mut self, dir: &Path, args: &[&str]) {
        use std::io::BufRead as _;
        let listen = args.iter().position(|a| *a == "--listen").unwrap() + 1;
        let named = args[listen].to_owned();
        let mut args: Vec<&str> = args.to_vec();
        args[listen] = "127.0.0.1:0";
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
        // `mfactl emulator serving N users [in T tenants] on http://127.0.0.1:PORT (Ctrl-C
        // to stop)`: the address follows the first "on".
        let url = first
            .split_whitespace()
            .skip_while(|word| *word != "on")
            .nth(1)
            .expect(&first);
        let bound = url.trim_start_matches("http://").to_owned();
        self.running.push((named, bound, child));
    }

    /// `line` with each README address replaced by its server's.
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
