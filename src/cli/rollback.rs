//! `mfactl rollback JOURNAL [--out undo.yaml]`: a manifest that restores what an apply's
//! journal says its writes replaced. Reads one file and writes one; contacts nobody: planning
//! and applying the result is the admin's next step, with the usual drift check.
//!
//! `mfactl rollback DIR` does it for each tenant of an `apply --tenants --out-dir DIR` run:
//! every `DIR/<tenant>/journal.jsonl` gives `DIR/<tenant>/undo.yaml`, for that tenant alone.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use miette::miette;

use super::exit;
use super::output::{self, OutputFile};
use mfactl::engine::journal_file;
use mfactl::engine::rollback::{Rollback, yaml_quoted};
use mfactl::text::printable;

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The journal of the apply runs to undo (`apply --journal FILE`, or the default one apply
    /// writes beside its saved plan); or the --out-dir of an `apply --tenants` run, for an
    /// undo.yaml in each tenant's folder.
    #[arg(value_name = "JOURNAL|DIR")]
    pub journal: PathBuf,
    /// Write the manifest here (readable by you only) instead of printing it on stdout.
    #[arg(long, value_name = "undo.yaml")]
    pub out: Option<PathBuf>,
}

/// Rollback's steps: check where the manifest goes, read the journal, write the manifest, say
/// on stderr what it restores and what it cannot. A folder is a multi-tenant run's.
pub fn run(args: &RollbackArgs) -> miette::Result<u8> {
    if args.journal.is_dir() {
        return per_tenant(args);
    }
    let out = args
        .out
        .as_deref()
        .map(|path| OutputFile::check(path, "--out"))
        .transpose()?;
    rollback(&args.journal, out.as_ref(), args.out.as_deref(), "")
}

/// `rollback DIR`: an undo manifest in each tenant's folder that holds a journal, each
/// tenant's summary on stderr; the exit code is the most severe of the tenants'.
fn per_tenant(args: &RollbackArgs) -> miette::Result<u8> {
    let dir = &args.journal;
    if args.out.is_some() {
        return Err(miette!(
            help = "each tenant's manifest goes to DIR/<tenant>/undo.yaml",
            "--out names one file, and {} is a folder of tenants",
            printable(&dir.display().to_string())
        ));
    }
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|error| {
            miette!(
                "cannot read {}: {error}",
                printable(&dir.display().to_string())
            )
        })?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.join("journal.jsonl").is_file())
        .collect();
    folders.sort();
    if folders.is_empty() {
        return Err(miette!(
            help = "give the --out-dir of an `apply --tenants` run, or one journal",
            "{} holds no tenant folder with a journal.jsonl",
            printable(&dir.display().to_string())
        ));
    }
    let mut code = exit::OK;
    for folder in folders {
        let tenant = folder
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        let out_path = folder.join("undo.yaml");
        let out = OutputFile::check(&out_path, "the tenant's undo manifest")?;
        let prefix = format!("[{}] ", printable(&tenant));
        let journal = folder.join("journal.jsonl");
        code = code.max(rollback(&journal, Some(&out), Some(&out_path), &prefix)?);
        eprintln!(
            "{prefix}apply it in that tenant alone: mfactl apply {} --tenant {} --auto-approve",
            printable(&out_path.display().to_string()),
            printable(&tenant)
        );
    }
    Ok(code)
}

/// Writes the undo manifest of one journal (to `out`, or stdout), says on stderr (each line
/// after `prefix`) what it restores and what it cannot, and returns the exit code.
fn rollback(
    journal: &Path,
    out: Option<&OutputFile>,
    out_path: Option<&Path>,
    prefix: &str,
) -> miette::Result<u8> {
    let (read, rollback) = read_journal(journal)?;
    let manifest = rollback.manifest(&journal.display().to_string());
    match out {
        Some(file) => file.write(|w| w.write_all(manifest.as_bytes()))?,
        None => output::to_stdout(|w| w.write_all(manifest.as_bytes()))?,
    }
    // The summary goes to stderr: stdout may be the manifest itself.
    let summary = summary(journal, out_path, &read, &rollback);
    let mut stderr = std::io::stderr().lock();
    for line in summary {
        let _ = writeln!(stderr, "{prefix}{line}");
    }
    if rollback.unrestorable.is_empty() {
        return Ok(exit::OK);
    }
    let groups = rollback.unrestorable_groups();
    let _ = writeln!(
        stderr,
        "{prefix}{} {} cannot be restored ({} {} of value, above and at the top of the \
         manifest; the journal names each); everything else is in it",
        rollback.unrestorable.len(),
        plural(rollback.unrestorable.len(), "value", "values"),
        groups.len(),
        plural(groups.len(), "kind", "kinds"),
    );
    Ok(exit::NOT_RESTORED)
}

/// The journal's records and what they restore; refused when it is not an mfactl journal.
fn read_journal(journal: &Path) -> miette::Result<(journal_file::JournalRecords, Rollback)> {
    let shown_journal = printable(&journal.display().to_string()).into_owned();
    let read = journal_file::read(journal).map_err(|error| {
        miette!(
            help = "give the journal `mfactl apply` wrote",
            "{}",
            printable(&error.to_string())
        )
    })?;
    if !read.records.iter().any(|r| r.event == "start") {
        return Err(miette!(
            help = "give the journal `mfactl apply` wrote",
            "{shown_journal} has no start line: it is not an mfactl journal"
        ));
    }
    let rollback = Rollback::from_records(&read.records);
    Ok((read, rollback))
}

/// What the rollback restores, from which runs and writes, and what it cannot, a line each.
fn summary(
    journal: &Path,
    out: Option<&Path>,
    read: &journal_file::JournalRecords,
    rollback: &Rollback,
) -> Vec<String> {
    let shown_journal = printable(&journal.display().to_string()).into_owned();
    let mut summary = Vec::new();
    if read.torn > 0 {
        summary.push(format!(
            "{shown_journal}: skipped a torn last line ({} bytes), the end of a run that was \
             killed while writing it",
            read.torn
        ));
    }
    summary.extend(runs(rollback));
    let writes = rollback.writes;
    let policy = if rollback.policy.is_empty() {
        String::new()
    } else {
        " and the authentication methods policy".to_owned()
    };
    summary.push(format!(
        "Rollback of {shown_journal} ({} {}): restores {} {}{policy}, from {}",
        rollback.runs.len(),
        plural(rollback.runs.len(), "run", "runs"),
        rollback.users.len(),
        plural(rollback.users.len(), "user", "users"),
        from_writes(rollback),
    ));
    if writes.unsettled > 0 {
        summary.push(format!(
            "{} {} no answer recorded (the run was stopped) or an unsettled one (its answer and \
             the read back were lost): restored all the same, marked \"unsettled\"; a value that \
             never changed plans as in sync",
            writes.unsettled,
            plural(writes.unsettled, "write has", "writes have"),
        ));
    }
    for group in &rollback.unrestorable_groups() {
        summary.push(format!("cannot restore {}", group.describe()));
    }
    if let Some(path) = out {
        summary.push(format!(
            "Wrote {}; next: mfactl plan {0}, then mfactl apply {0}",
            printable(&path.display().to_string())
        ));
    }
    if rollback.is_empty() && rollback.unrestorable.is_empty() {
        summary.push("Nothing to restore: no write in the journal was made".to_owned());
    }
    summary
}

/// A line per run the journal records, and a warning when they wrote to several tenants.
fn runs(rollback: &Rollback) -> Vec<String> {
    let mut lines = Vec::new();
    for (number, run) in rollback.runs.iter().enumerate() {
        lines.push(format!(
            "run {}: started {}{}{}",
            number + 1,
            printable(&run.time),
            run.tenant_id
                .as_deref()
                .map_or_else(String::new, |t| format!(", tenant {}", yaml_quoted(t))),
            if run.resumed { " (resumed)" } else { "" }
        ));
    }
    let mut tenants: Vec<&str> = rollback
        .runs
        .iter()
        .filter_map(|r| r.tenant_id.as_deref())
        .collect();
    tenants.sort_unstable();
    tenants.dedup();
    if tenants.len() > 1 {
        lines.push(format!(
            "warning: the journal's runs wrote to {} tenants; the manifest holds the users of \
             all of them: plan it against each",
            tenants.len()
        ));
    }
    lines
}

/// `3 applied writes and 1 with no answer recorded or an unsettled one; 2 failed writes
/// changed nothing`.
fn from_writes(rollback: &Rollback) -> String {
    let writes = rollback.writes;
    let mut from = format!(
        "{} applied {}",
        writes.applied,
        plural(writes.applied, "write", "writes")
    );
    if writes.unsettled > 0 {
        from.push_str(&format!(
            " and {} with no answer recorded or an unsettled one",
            writes.unsettled
        ));
    }
    if writes.failed > 0 {
        from.push_str(&format!(
            "; {} failed {} changed nothing",
            writes.failed,
            plural(writes.failed, "write", "writes")
        ));
    }
    from
}

fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}
