//! apply's journal files: where a new journal and the plan saved beside it go, reading back the
//! journal of an interrupted run to resume it, and the command that finishes such a run. Every
//! apply that writes has a journal, and every journal the saved plan it applies: the two are
//! what `--resume` needs.

use std::path::{Path, PathBuf};

use miette::miette;

use mfactl::engine::{self, Journal, Resume};
use mfactl::plan::Plan;

/// A path for the terminal: control characters escaped.
pub fn shown(path: &Path) -> String {
    mfactl::text::printable(&path.display().to_string()).into_owned()
}

/// `--resume` with a manifest: the journal's start line names the plan to give instead.
pub fn resume_needs_plan(journal: &Path) -> miette::Report {
    let named = engine::journal_file::read(journal)
        .ok()
        .and_then(|read| read.records.into_iter().rev().find_map(|r| r.plan));
    let help = match named {
        Some(plan) => format!(
            "the journal records the plan it applied: mfactl apply {} --resume {}",
            quote(std::ffi::OsStr::new(&plan)),
            quote(journal.as_os_str())
        ),
        None => "give the saved plan the journal's run applied".to_owned(),
    };
    miette!(
        help = mfactl::text::printable(&help).into_owned(),
        "--resume continues a saved plan (PLAN.json), not a manifest; nothing was sent"
    )
}

/// Reads the journal to resume, checking that it records a run of this very plan.
pub fn read_resume(
    path: &Path,
    plan: &Plan,
    journal: Option<&Path>,
) -> miette::Result<(PathBuf, Resume)> {
    if let Some(other) = journal
        && other != path
    {
        return Err(miette!(
            help = "drop --journal: a resumed run appends to the journal it resumes",
            "--journal {} and --resume {} name different files",
            shown(other),
            shown(path)
        ));
    }
    let read = engine::journal_file::read(path).map_err(|error| {
        miette!(
            help = "nothing was sent",
            "{}",
            mfactl::text::printable(&error.to_string())
        )
    })?;
    let starts: Vec<_> = read.records.iter().filter(|r| r.event == "start").collect();
    if starts.is_empty() {
        return Err(miette!(
            help = "give the journal an earlier `mfactl apply` of this plan wrote",
            "{} has no start line: it is not an mfactl journal; nothing was sent",
            shown(path)
        ));
    }
    if let Some(other) = starts
        .iter()
        .find(|r| r.plan_checksum.as_deref() != plan.checksum.as_deref())
    {
        return Err(miette!(
            help = format!(
                "resume a run with the plan it applied (the journal's start line names it: {})",
                mfactl::text::printable(other.plan.as_deref().unwrap_or("none recorded"))
            ),
            "{} records a run of another plan (checksum {}, not {}); nothing was sent",
            shown(path),
            mfactl::text::printable(other.plan_checksum.as_deref().unwrap_or("none")),
            plan.checksum.as_deref().unwrap_or("none")
        ));
    }
    if read.torn > 0 {
        eprintln!(
            "Note: the journal's last line was cut off by the interrupted run ({} bytes); it is \
             dropped, and the write it began is read back.",
            read.torn
        );
    }
    Ok((path.to_owned(), Resume::from_records(&read.records)))
}

/// Opens the resumed journal for appending.
pub fn reopen_journal(path: &Path) -> miette::Result<Journal> {
    Journal::reopen(path)
        .map(|(journal, _)| journal)
        .map_err(|e| miette!(help = "nothing was sent", "{e}"))
}

/// A timestamp for file names: `20261123T164501Z`.
fn file_stamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// Where the plan a manifest apply saves goes: beside `--journal` (its name with
/// `.plan.json`), or a new timestamped name in the current folder.
pub fn plan_beside(journal: Option<&Path>) -> PathBuf {
    match journal {
        Some(journal) => {
            let name = journal
                .file_name()
                .map_or_else(|| "journal".into(), |n| n.to_string_lossy().into_owned());
            let stem = name
                .strip_suffix(".jsonl")
                .or_else(|| name.strip_suffix(".json"))
                .unwrap_or(&name);
            let stem = stem.strip_suffix(".journal").unwrap_or(stem);
            journal.with_file_name(format!("{stem}.plan.json"))
        }
        None => unused(|n| PathBuf::from(format!("mfactl-apply-{}{n}.plan.json", file_stamp()))),
    }
}

/// A new journal beside the saved plan: `PLAN.<stamp>.journal.jsonl`.
pub fn new_journal(plan: &Path, saved_plan: bool) -> miette::Result<Journal> {
    let name = plan
        .file_name()
        .map_or_else(|| "plan".into(), |n| n.to_string_lossy().into_owned());
    let stem = name.strip_suffix(".json").unwrap_or(&name);
    let stem = stem.strip_suffix(".plan").unwrap_or(stem).to_owned();
    let stamp = file_stamp();
    let mut n = 0;
    loop {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let file = if saved_plan {
            format!("{stem}.{stamp}{suffix}.journal.jsonl")
        } else {
            format!("{stem}{suffix}.journal.jsonl")
        };
        let path = plan.with_file_name(file);
        match Journal::create(&path) {
            Ok(journal) => return Ok(journal),
            Err(error) if error.source.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => {
                n += 1;
            }
            Err(error) => {
                return Err(miette!(
                    help = "pass --journal FILE to put it elsewhere; nothing was sent",
                    "{error}"
                ));
            }
        }
    }
}

/// The first of `name(""), name("-1"), ...` that does not exist.
fn unused(name: impl Fn(&str) -> PathBuf) -> PathBuf {
    (0..100)
        .map(|n| {
            if n == 0 {
                String::new()
            } else {
                format!("-{n}")
            }
        })
        .map(|suffix| name(&suffix))
        .find(|path| !path.exists())
        .unwrap_or_else(|| name("-x"))
}

/// The command that finishes an interrupted run: this one, with the saved plan in place of
/// the manifest, `--resume JOURNAL`, and without the flags a saved plan does not take.
pub fn resume_command(given: &Path, plan: &Path, journal: &Path) -> String {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut out = vec![quote(std::ffi::OsStr::new("mfactl"))];
    let mut rest = args.iter();
    let mut replaced = false;
    let mut seen_apply = false;
    while let Some(arg) = rest.next() {
        let text = arg.to_string_lossy();
        if !seen_apply {
            out.push(quote(arg));
            seen_apply = text == "apply";
            continue;
        }
        let flag = text.split('=').next().unwrap_or("");
        match flag {
            "--journal" | "--resume" | "--policy" => {
                if !text.contains('=') {
                    rest.next();
                }
                continue;
            }
            "--auto-approve" | "--ignore-unknown-columns" => continue,
            _ => {}
        }
        if !replaced && arg.as_os_str() == given.as_os_str() {
            out.push(quote(plan.as_os_str()));
            replaced = true;
            continue;
        }
        out.push(quote(arg));
    }
    if !replaced {
        out.push(quote(plan.as_os_str()));
    }
    out.push("--resume".into());
    out.push(quote(journal.as_os_str()));
    mfactl::text::printable(&out.join(" ")).into_owned()
}

/// An argument as the user's shell reads it back: a POSIX shell, or on Windows PowerShell
/// (where admins run mfactl).
fn quote(arg: &std::ffi::OsStr) -> String {
    let shell = if cfg!(windows) {
        Shell::PowerShell
    } else {
        Shell::Posix
    };
    quote_for(shell, &arg.to_string_lossy())
}

#[derive(Clone, Copy)]
enum Shell {
    Posix,
    PowerShell,
}

/// `text` as one word for `shell`: as is when every character is plain there, else in single
/// quotes (POSIX: a quote becomes `'\''`; PowerShell: `''`). PowerShell takes `\` as is (paths)
/// but reads `,` as an array and `@` as splatting, so those are quoted there.
fn quote_for(shell: Shell, text: &str) -> String {
    let plain_punctuation = match shell {
        Shell::Posix => "_./:=@%+,-",
        Shell::PowerShell => "_./:=%+-\\",
    };
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || plain_punctuation.contains(c));
    match shell {
        _ if plain => text.to_owned(),
        Shell::Posix => format!("'{}'", text.replace('\'', r"'\''")),
        Shell::PowerShell => format!("'{}'", text.replace('\'', "''")),
    }
}

#[cfg(test)]
mod quoting {
    use super::{Shell, quote_for};

    #[test]
    fn arguments_read_back_as_one_word_in_the_users_shell() {
        assert_eq!(quote_for(Shell::Posix, "plan.json"), "plan.json");
        assert_eq!(
            quote_for(Shell::Posix, "my plan's.json"),
            r"'my plan'\''s.json'"
        );
        assert_eq!(quote_for(Shell::Posix, ""), "''");
        assert_eq!(
            quote_for(Shell::PowerShell, r"C:\runs\plan.json"),
            r"C:\runs\plan.json"
        );
        assert_eq!(
            quote_for(Shell::PowerShell, r"C:\My Runs\o'brien.json"),
            r"'C:\My Runs\o''brien.json'"
        );
        assert_eq!(quote_for(Shell::PowerShell, "a,b"), "'a,b'");
        assert_eq!(quote_for(Shell::PowerShell, "@x"), "'@x'");
        assert_eq!(quote_for(Shell::Posix, "a,b"), "a,b");
    }
}
