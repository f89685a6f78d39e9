//! The README's first command: the examples, through `--emulate`.

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
    let mut env: Vec<(String, String)> = vec![
        // The sign-in is cached here, and no `az` is found on the way to it.
        (
            "MFACTL_TOKEN_CACHE".into(),
            home.path()
                .join("cache.json")
                .to_string_lossy()
                .into_owned(),
        ),
        ("PATH".into(), empty_path.to_string_lossy().into_owned()),
    ];
    let mut servers = Servers::default();
    let mut ran = Vec::new();
    for line in block.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line == "cargo test" {
            continue;
        }
        let line = servers.substitute(line);
        if let Some(assignment) = line.strip_prefix("export ") {
            let (name, value) = assignment.split_once('=').unwrap();
            env.push((name.into(), value.into()));
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
            other => panic!("a quick-start line this test does not know: {other:?}"),
        };
        if args.last() == Some(&"&") {
            servers.start(&args[..args.len() - 1]);
            continue;
        }
        let mut cmd = mfactl();
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(&args)
            .timeout(std::time::Duration::from_secs(90));
        for (name, value) in env.iter().chain(&own_env) {
            cmd.env(name, value);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{line}\n{}", stderr(&out));
        ran.push((line.clone(), stdout(&out), stderr(&out)));
    }
    let find = |word: &str| {
        ran.iter()
            .find(|(line, _, _)| line.contains(word))
            .unwrap_or_else(|| panic!("no {word} line ran"))
    };
    let (_, served_plan, _) = find("examples/desired.yaml --graph-url");
    assert!(served_plan.contains("Plan: "), "{served_plan}");
    let (_, _, login) = find(" login ");
    assert!(login.contains("Signed in as admin@contoso.com"), "{login}");
    let (_, signed_plan, signed_err) = find("examples/signin.yaml");
    assert!(signed_err.contains("Signed in with device"), "{signed_err}");
    assert!(
        signed_plan.contains("preferredMethod: sms -> push"),
        "megan gets push, the first of her list: {signed_plan}"
    );
}

/// `mfactl emulator serve` processes started by a test, each on a free port, and the README
/// address each stands for.
#[derive(Default)]
struct Servers {
    running: Vec<(String, String, std::process::Child)>,
}

impl Servers {
    /// Starts `emulator serve ... --listen ADDR` on a free port; ADDR then stands for it.
    fn start(&mut self, args: &[&str]) {
        use std::io::BufRead as _;
        let listen = args.iter().position(|a| *a == "--listen").unwrap() + 1;
        let named = args[listen].to_owned();
        let mut args: Vec<&str> = args.to_vec();
        args[listen] = "127.0.0.1:0";
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mfactl"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // `mfactl emulator serving N users on http://127.0.0.1:PORT (Ctrl-C to stop)`
        let url = first.split_whitespace().nth(6).expect(&first);
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
