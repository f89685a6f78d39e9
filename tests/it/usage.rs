//! Usage errors exit 64 (EX_USAGE), never a code a plan result uses: a mistyped flag in a
//! scheduled `plan --detailed-exitcode` must not read as drift (2). The automation recipes of
//! docs/automation.md and docs/reports.md (the GitHub Actions steps, the Azure Automation runbook,
//! the cron script) are run here as the guides write them.

use std::path::Path;
use std::process::Command;

use mfactl_emulator::Tenant;

use crate::support::{INHERITED, Scenario, manifest_for, mfactl, repo_file, stderr, to_yaml};

fn readme() -> String {
    repo_file("README.md")
}

/// The README and the guides, one text.
fn all_docs() -> String {
    let mut text = readme();
    let mut guides: Vec<_> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    guides.sort();
    for guide in guides {
        text.push_str(&std::fs::read_to_string(guide).unwrap());
    }
    text
}

#[test]
fn a_mistyped_flag_exits_64_not_the_drift_code() {
    let scenario = Scenario::new(Tenant::generate(6, 3));
    let (rows, _) = manifest_for(&scenario.tenant(), false);
    let yaml = scenario.write("baseline.yaml", &to_yaml(&rows));
    let yaml = yaml.to_str().unwrap();
    for args in [
        vec!["plan", yaml, "--detailed-exitcode", "--sumary"],
        vec!["plan", yaml, "--detailed-exitcod"],
        vec!["plan", "--detailed-exitcode"],
        vec!["plan", yaml, "--detailed-exitcode", "--concurrency", "0"],
        vec!["apply", yaml, "--auto-aprove"],
        vec!["plna", yaml],
    ] {
        let out = scenario.run(&args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("error:"), "{}", stderr(&out));
    }
    assert_eq!(scenario.stats().requests, 0, "nothing was sent");
    // Asking for help or the version is not an error.
    for args in [vec!["--help"], vec!["plan", "--help"], vec!["--version"]] {
        let out = mfactl().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
    let table = readme();
    assert!(
        table.contains("| 64 | usage error"),
        "README's exit-code table lists 64"
    );
}

/// A folder with `mfactl` on its PATH (a link to the binary under test), and the variables
/// that point it at the scenario's emulator with a test token.
fn shell(scenario: &Scenario, script: &str, shell: &str) -> std::process::Output {
    let bin = scenario.dir.path().join("bin");
    if !bin.exists() {
        std::fs::create_dir(&bin).unwrap();
        link(&assert_cmd::cargo::cargo_bin("mfactl"), &bin.join("mfactl"));
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(shell);
    for name in INHERITED {
        cmd.env_remove(name);
    }
    cmd.current_dir(scenario.dir.path())
        .args(["-e", "-c", script])
        .env("PATH", path)
        .env("MFACTL_GRAPH_URL", scenario.url())
        .env("MFACTL_ACCESS_TOKEN", "test-token-not-a-secret")
        .output()
        .unwrap()
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

#[cfg(not(unix))]
fn link(target: &Path, at: &Path) {
    std::fs::copy(target, at).unwrap();
}

/// A scenario with drift, its manifest saved as the recipes name it.
fn drifted(manifest: &str) -> Scenario {
    let scenario = Scenario::new(Tenant::generate(12, 8));
    let (rows, expected) = manifest_for(&scenario.tenant(), false);
    assert!(expected.to_change > 0);
    scenario.write(manifest, &to_yaml(&rows));
    scenario
}

/// Every step the docs show that tolerates the drift code with `|| test $? -eq 2`, as GitHub
/// Actions runs it (`bash -e`): it passes on drift and fails on a mistyped flag.
#[test]
fn ci_steps_pass_on_drift_and_fail_on_a_typo() {
    let text = all_docs();
    let steps: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("|| test $? -eq 2"))
        .map(|line| line.split_once("run: ").expect("a run: step").1)
        .collect();
    assert!(steps.len() >= 2, "{steps:?}");
    for step in steps {
        let manifest = step.split_whitespace().nth(2).unwrap();
        let scenario = drifted(manifest);
        let out = shell(&scenario, step, "bash");
        assert_eq!(out.status.code(), Some(0), "{step}: {}", stderr(&out));
        let report = step
            .split_whitespace()
            .skip_while(|w| *w != "--report")
            .nth(1)
            .unwrap();
        assert!(scenario.dir.path().join(report).exists(), "{step}");
        for (right, wrong) in [
            ("--detailed-exitcode", "--detailed-exitcod"),
            ("--report", "--reprot"),
        ] {
            let typo = step.replacen(right, wrong, 1);
            let out = shell(&scenario, &typo, "bash");
            assert_ne!(out.status.code(), Some(0), "{typo} passed");
            assert!(stderr(&out).contains("error:"), "{}", stderr(&out));
        }
    }
}

/// The runbook's `switch ($LASTEXITCODE)`: the case bodies by label (`0`, `2`, `default`).
fn runbook() -> (Vec<String>, Vec<(String, String)>) {
    let text = repo_file("docs/automation.md");
    let block = text
        .split("```powershell\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/automation.md has the runbook");
    let commands: Vec<String> = block
        .lines()
        .filter_map(|line| line.trim().strip_prefix("& ./mfactl "))
        .map(|line| line.split(" }").next().unwrap().trim().to_owned())
        .collect();
    let switch = block.split("switch ($LASTEXITCODE) {").nth(1).unwrap();
    let cases = switch
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let (label, body) = line.split_once(" { ")?;
            Some((label.to_owned(), body.to_owned()))
        })
        .collect();
    (commands, cases)
}

/// The case of the runbook's switch that `code` takes.
fn case_for(cases: &[(String, String)], code: i32) -> &str {
    cases
        .iter()
        .find(|(label, _)| *label == code.to_string())
        .or_else(|| cases.iter().find(|(label, _)| label == "default"))
        .map(|(label, _)| label.as_str())
        .unwrap()
}

/// The Azure Automation runbook, its commands run as written and its switch followed: drift
/// is applied, then there is none, and a typo lands on `default`, which throws.
#[test]
fn the_runbook_applies_drift_and_throws_on_a_typo() {
    let (commands, cases) = runbook();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(
        cases
            .iter()
            .any(|(label, body)| label == "default" && body.starts_with("throw"))
    );
    let scenario = drifted("baseline.yaml");
    let run = |line: &str| {
        let args: Vec<String> = line
            .split_whitespace()
            .map(|word| word.strip_prefix("./").unwrap_or(word).to_owned())
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        scenario.run(&args)
    };
    let plan = run(&commands[0]);
    assert_eq!(
        case_for(&cases, plan.status.code().unwrap()),
        "2",
        "{}",
        stderr(&plan)
    );
    let apply = run(&commands[1]);
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    assert!(scenario.dir.path().join("applied.md").exists());
    let again = run(&commands[0]);
    assert_eq!(
        case_for(&cases, again.status.code().unwrap()),
        "0",
        "{}",
        stderr(&again)
    );
    let typo = run(&commands[0].replacen("--detailed-exitcode", "--detailed-exitcod", 1));
    assert_eq!(typo.status.code(), Some(64));
    assert_eq!(case_for(&cases, 64), "default");
}

/// `mfactl --version` names the commit it was built from (build.rs); built outside a git
/// checkout it says the commit is unknown rather than failing the build.
#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = mfactl().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let version = crate::support::stdout(&out);
    let expected = format!("mfactl {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected), "{version}");
    let head = Command::new("git")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["rev-parse", "--verify", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success());
    match head {
        Some(head) => {
            let head = String::from_utf8_lossy(&head.stdout);
            assert!(
                version.starts_with(&format!("{expected}{}", &head[..12])),
                "{version} names another commit than {head}"
            );
        }
        None => assert!(version.contains("commit unknown"), "{version}"),
    }
    // Every command's --version says the same.
    let plan = mfactl().args(["plan", "--version"]).output().unwrap();
    assert!(crate::support::stdout(&plan).ends_with(&version[version.find(" (").unwrap()..]));
}

/// docs/automation.md's cron script, run by `sh` as cron would, with its credentials file giving
/// the emulator's address and a test token, and a `mail` on PATH that records what it is given:
/// drift is mailed with the report, no drift is not mailed, a typo mails the error and fails.
#[cfg(unix)]
#[test]
fn the_cron_script_mails_drift_and_errors_only() {
    let text = repo_file("docs/automation.md");
    let script = text
        .split("```bash\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/automation.md has the cron script");
    let crontab = text
        .split("```crontab\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("and its crontab line");
    let installed = script
        .lines()
        .find_map(|line| line.strip_prefix("# "))
        .and_then(|line| line.split(':').next())
        .expect("the script says where it is installed");
    assert!(
        crontab.lines().any(|line| line.ends_with(installed)),
        "{crontab}"
    );

    let scenario = drifted("baseline.yaml");
    let dir = scenario.dir.path();
    let credentials = dir.join("credentials");
    std::fs::write(
        &credentials,
        format!(
            "export MFACTL_GRAPH_URL={} MFACTL_ACCESS_TOKEN=test-token-not-a-secret\n",
            scenario.url()
        ),
    )
    .unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    link(&assert_cmd::cargo::cargo_bin("mfactl"), &bin.join("mfactl"));
    let mailbox = dir.join("mailbox");
    let mail = bin.join("mail");
    std::fs::write(
        &mail,
        format!(
            "#!/bin/sh\n{{ echo \"$*\"; cat; echo ---; }} >> '{}'\n",
            mailbox.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&mail, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = script
        .replace("/var/lib/mfactl", &dir.display().to_string())
        .replace(
            "/etc/mfactl/credentials",
            &credentials.display().to_string(),
        );
    let run = |script: &str| {
        let mut cmd = Command::new("sh");
        for name in INHERITED {
            cmd.env_remove(name);
        }
        cmd.args(["-c", script])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("MFACTL_PLAN_KEY_FILE", crate::support::plan_key_file())
            .output()
            .unwrap()
    };
    let mailed = || std::fs::read_to_string(&mailbox).unwrap_or_default();

    let drift = run(&script);
    assert_eq!(drift.status.code(), Some(0), "{}", stderr(&drift));
    assert!(
        mailed().starts_with("-s MFA drift identity-team@contoso.com"),
        "{}",
        mailed()
    );
    assert!(
        mailed().contains("# mfactl plan"),
        "the report is the mail's body: {}",
        mailed()
    );
    let apply = scenario.run(&["apply", "baseline.yaml", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));

    std::fs::remove_file(&mailbox).unwrap();
    let quiet = run(&script);
    assert_eq!(quiet.status.code(), Some(0), "{}", stderr(&quiet));
    assert_eq!(mailed(), "", "no drift, no mail");

    let typo = run(&script.replacen("--detailed-exitcode", "--detailed-exitcod", 1));
    assert_eq!(typo.status.code(), Some(1));
    assert!(mailed().starts_with("-s mfactl failed"), "{}", mailed());
    assert!(mailed().contains("error:"), "{}", mailed());
}
