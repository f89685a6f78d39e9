//! Files mfactl writes for the admin (plans, reports): checked before the first request, written
//! readable by the owner only, and replaced atomically.
//!
//! A plan or report names every user and what their MFA is; it is nobody else's business, so it
//! is created 0600 (the journal too, in `engine::journal`). A path that cannot be written is
//! found before anything is sent, not after an hour of reading Graph; and a file is written to a
//! temporary name beside it and renamed, so a crash never leaves half a plan under the real name.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use miette::miette;

use mfactl::files::open_private;
use mfactl::plan::Plan;
use mfactl::report::{self, ReportKind};

/// An output path that was checked writable; [`OutputFile::write`] fills it at the end.
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
}

impl OutputFile {
    /// Checks, before any request, that `path` can be written: its folder exists and takes a
    /// new file there, and the file itself (if it exists) is a writable regular file.
    /// `what` names the flag for the message (`--out`).
    pub fn check(path: &Path, what: &str) -> miette::Result<OutputFile> {
        let shown = mfactl::text::printable(&path.display().to_string()).into_owned();
        if path.is_dir() {
            return Err(miette!(
                help = "give a file name, e.g. plan.json",
                "{what} {shown} is a folder"
            ));
        }
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().readonly()
        {
            return Err(miette!("{what} {shown} is read-only"));
        }
        let probe = temporary_beside(path);
        // Closed before it is removed: Windows deletes an open file only when it is closed.
        open_private(&probe, false)
            .map(drop)
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|error| {
                miette!(
                    help = "check that the folder exists and that you may write there",
                    "{what} {shown} cannot be written: {error}; nothing was sent"
                )
            })?;
        Ok(OutputFile {
            path: path.to_owned(),
        })
    }

    /// Writes what `contents` writes (0600, buffered) under a temporary name beside the file,
    /// then renames it over the file.
    pub fn write(
        &self,
        contents: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
    ) -> miette::Result<()> {
        let mut staged = self.stage()?;
        contents(staged.writer()).map_err(|error| staged.failed(error))?;
        staged.commit()
    }

    /// The temporary file beside this one (0600, buffered), for output written as it is made
    /// (an export): [`Staged::commit`] renames it over the file; dropped uncommitted (an error)
    /// it is removed, and the file is left as it was.
    pub fn stage(&self) -> miette::Result<Staged> {
        let temporary = temporary_beside(&self.path);
        let file = open_private(&temporary, false)
            .map_err(|error| miette!("cannot write {}: {error}", self.path.display()))?;
        Ok(Staged {
            out: Some(BufWriter::with_capacity(1 << 16, file)),
            temporary,
            path: self.path.clone(),
        })
    }
}

/// An output being written under its temporary name (see [`OutputFile::stage`]).
#[derive(Debug)]
pub struct Staged {
    /// `None` once committed.
    out: Option<BufWriter<File>>,
    temporary: PathBuf,
    path: PathBuf,
}

impl Staged {
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.out
            .as_mut()
            .expect("a staged file is written before it is committed")
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> miette::Result<()> {
        let out = self.out.take().expect("committed once");
        out.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .and_then(|()| std::fs::rename(&self.temporary, &self.path))
            .map_err(|error| self.failed(error))
    }

    /// The report for `error` while writing (the temporary is removed when `self` drops).
    fn failed(&self, error: std::io::Error) -> miette::Report {
        miette!("cannot write {}: {error}", self.path.display())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // After a rename there is nothing left to remove; before it, nothing must be left.
        let _ = std::fs::remove_file(&self.temporary);
    }
}

/// `--report FILE`: the format its extension names and the path, both checked before any
/// request; [`ReportFile::write`] writes the plan or the finished run's report at the end.
#[derive(Debug)]
pub struct ReportFile {
    kind: ReportKind,
    file: OutputFile,
}

impl ReportFile {
    pub fn check(path: &Path) -> miette::Result<ReportFile> {
        let kind = ReportKind::from_path(path).map_err(|error| {
            miette!(
                help = "e.g. --report report.html, or --report summary.md for a CI step summary",
                "{error}; nothing was sent"
            )
        })?;
        Ok(ReportFile {
            kind,
            file: OutputFile::check(path, "--report")?,
        })
    }

    /// Checks every `--report` given, before any request.
    pub fn check_all(paths: &[PathBuf]) -> miette::Result<Vec<ReportFile>> {
        paths.iter().map(|path| ReportFile::check(path)).collect()
    }

    pub fn write(&self, plan: &Plan) -> miette::Result<()> {
        self.file
            .write(|out| report::write_report(plan, self.kind, out))
    }
}

/// `.NAME.mfactl-PID.tmp` in the same folder (a rename is atomic only within one file system).
fn temporary_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.mfactl-{}.tmp", std::process::id()))
}

/// Writes to stdout through a buffer, as `write` produces it (a million-user report is never
/// held whole), and flushes.
pub fn to_stdout(
    write: impl FnOnce(&mut BufWriter<std::io::StdoutLock<'static>>) -> std::io::Result<()>,
) -> miette::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(|error| miette!("cannot write to stdout: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    #[cfg(unix)]
    fn outputs_are_private_and_replace_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        std::fs::write(&path, "old").unwrap();
        let out = OutputFile::check(&path, "--out").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "old",
            "check changes nothing"
        );
        out.write(|file| file.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn unwritable_paths_are_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-folder").join("plan.json");
        let error = OutputFile::check(&missing, "--out").unwrap_err();
        assert!(error.to_string().contains("cannot be written"), "{error}");
        assert!(OutputFile::check(dir.path(), "--out").is_err());
    }
}
