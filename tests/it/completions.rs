//! `mfactl completions SHELL` and `mfactl man`, through the binary: each script loads in its
//! shell and completes commands and flags there; the manual pages render with groff, without a
//! warning, and hold the sections a page has.

use std::path::Path;
use std::process::Command;

use clap::CommandFactory as _;

use crate::support::{mfactl, required_tool, stderr, stdout};

/// Every command and subcommand the parser knows (`plan`, `emulator`, `serve`, ...).
fn command_names() -> Vec<String> {
    fn walk(command: &clap::Command, names: &mut Vec<String>) {
        for sub in command.get_subcommands() {
            names.push(sub.get_name().to_owned());
            walk(sub, names);
        }
    }
    let mut names = Vec::new();
    walk(&mfactl_cli::cli::Cli::command(), &mut names);
    names
}

/// `mfactl completions SHELL`, which must succeed; the script is saved in `dir`.
fn script(shell: &str, dir: &Path) -> std::path::PathBuf {
    let out = mfactl().args(["completions", shell]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
    let text = stdout(&out);
    for name in command_names() {
        assert!(text.contains(&name), "{shell}'s script never names {name}");
    }
    let path = dir.join(format!("mfactl.{shell}"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `script` in `shell` and returns its stdout; it must succeed with nothing on stderr.
fn run_in(shell: &Path, args: &[&str], script: &str) -> String {
    let out = Command::new(shell).args(args).arg(script).output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}: {}\n{script}",
        shell.display(),
        stderr(&out)
    );
    stdout(&out)
}

/// The words bash offers for `line` (the word being completed last, possibly empty), asking
/// the function the script registered for mfactl, as bash itself does on Tab.
fn bash_offers(script: &Path, line: &str) -> Vec<String> {
    let mut words: Vec<&str> = line.split(' ').collect();
    let current = words.len() - 1;
    let previous = words[current.saturating_sub(1)];
    let quoted: Vec<String> = words.iter_mut().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\n\
         function=$(complete -p mfactl | sed -E 's/.*-F ([^ ]+) .*/\\1/')\n\
         COMP_WORDS=({}); COMP_CWORD={current}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}\n\
         \"$function\" mfactl '{}' '{previous}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words[current],
    );
    run_in(Path::new("bash"), &["-c"], &program)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_sources_cleanly_and_completes_commands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = script("bash", dir.path());
    let offers = |line: &str| bash_offers(&script, line);
    assert_eq!(offers("mfactl pl"), ["plan"]);
    assert!(offers("mfactl ").contains(&"completions".to_owned()));
    assert!(offers("mfactl plan --detailed").contains(&"--detailed-exitcode".to_owned()));
    assert_eq!(offers("mfactl emulator se"), ["serve"]);
    assert!(offers("mfactl auth ").contains(&"check".to_owned()));
    let shells = offers("mfactl completions ");
    for shell in ["bash", "zsh", "fish", "powershell"] {
        assert!(shells.contains(&shell.to_owned()), "{shells:?}");
    }
    // A value list clap knows is completed from it, and a flag that takes a file from files.
    assert!(offers("mfactl plan --format ").contains(&"json".to_owned()));
    assert!(offers("mfactl apply --auto").contains(&"--auto-approve".to_owned()));
}

#[test]
fn fish_completion_completes_commands_and_flags() {
    let Some(fish) = required_tool("fish", "fish completes mfactl's commands") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = script("fish", dir.path());
    let offers = |line: &str| -> Vec<String> {
        let program = format!("source '{}'; complete -C '{line}'", script.display());
        run_in(&fish, &["--no-config", "-c"], &program)
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(offers("mfactl pl"), ["plan"]);
    assert!(offers("mfactl plan --detailed").contains(&"--detailed-exitcode".to_owned()));
    assert_eq!(offers("mfactl emulator se"), ["serve"]);
}

#[test]
fn zsh_completion_loads_and_registers_for_mfactl() {
    let Some(zsh) = required_tool("zsh", "zsh loads mfactl's completion") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = script("zsh", dir.path());
    run_in(&zsh, &["-n"], &script.display().to_string());
    // Loaded after compinit, as a `source` from .zshrc would, the script registers itself.
    let program = format!(
        "autoload -U compinit && compinit -u -d '{}/zcompdump' && source '{}' && print -r -- $_comps[mfactl]",
        dir.path().display(),
        script.display()
    );
    assert_eq!(run_in(&zsh, &["-f", "-c"], &program).trim(), "_mfactl");
}

/// No PowerShell on this machine: the script must at least register a completer for mfactl
/// and name every command (`script` checks the names).
#[test]
fn powershell_completion_registers_a_completer_naming_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(script("powershell", dir.path())).unwrap();
    assert!(
        text.contains("Register-ArgumentCompleter -Native -CommandName 'mfactl'"),
        "{text}"
    );
    assert!(text.contains("'--detailed-exitcode'"));
    if let Some(pwsh) = which("pwsh") {
        let program = format!(". '{}'", dir.path().join("mfactl.powershell").display());
        run_in(&pwsh, &["-NoProfile", "-Command"], &program);
    }
}

/// `name` on PATH, for tools no test requires (PowerShell is not in Debian).
fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = mfactl().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(stderr(&out).contains("possible values"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

/// `page` rendered by groff as a terminal would show it; groff must not warn about it.
fn render(page: &Path) -> Option<String> {
    let groff = required_tool("groff", "the manual pages render")?;
    let out = Command::new(groff)
        .args(["-man", "-Tutf8", "-ww", "-rLL=200n"])
        .arg(page)
        .env("GROFF_NO_SGR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "groff: {}",
        stderr(&out)
    );
    // Without SGR, bold and underline are overstrikes: keep the letters.
    let text = stdout(&out);
    let mut plain = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    Some(plain)
}

#[test]
fn the_man_page_renders_with_its_sections_and_every_command() {
    let out = mfactl().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("mfactl.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let roff = stdout(&out);
    assert!(roff.contains(".TH mfactl 1"), "{roff}");
    let Some(text) = render(&page) else {
        return;
    };
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "SUBCOMMANDS",
        "EXIT STATUS",
        "VERSION",
    ] {
        assert!(
            text.lines().any(|line| line == section),
            "no {section} section:\n{text}"
        );
    }
    for command in mfactl_cli::cli::Cli::command().get_subcommands() {
        let reference = format!("mfactl-{}(1)", command.get_name());
        assert!(text.contains(&reference), "{reference} missing:\n{text}");
    }
    assert!(text.contains("64     A usage error"), "{text}");
}

#[test]
fn man_out_dir_writes_a_page_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = mfactl()
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for expected in [
        "mfactl.1",
        "mfactl-plan.1",
        "mfactl-emulator-serve.1",
        "mfactl-auth-check.1",
    ] {
        assert!(pages.contains(&expected.to_owned()), "{pages:?}");
    }
    assert!(stderr(&out).contains(&format!("Wrote {} manual pages", pages.len())));
    let Some(plan) = render(&dir.path().join("mfactl-plan.1")) else {
        return;
    };
    assert!(plan.contains("--detailed-exitcode"), "{plan}");
    assert!(
        plan.contains("mfactl-plan - Show what apply would change"),
        "{plan}"
    );
    // A folder that does not exist is an error, not a page on stdout.
    let out = mfactl()
        .args(["man", "--out-dir"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot write the manual pages"));
}
