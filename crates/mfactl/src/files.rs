//! Files mfactl reads and writes, with what an attacker who can name a path must not get.
//!
//! Written files (plans, journals, reports, the plan key, the token cache) hold what admins would
//! not show anyone: they are created readable by the current user only, an existing one is
//! narrowed to that when mfactl writes it, and a symlink in the last component is refused, so a
//! planted link cannot make mfactl append to, truncate or re-mode another file. On Unix that is
//! mode 0600 (folders 0700) and `O_NOFOLLOW`; on Windows, where a mode means nothing, a protected
//! access list allowing the current user alone, and the link itself opened rather than followed
//! (see `files/windows.rs`).
//!
//! Read files that mfactl expects to be files (a journal, a saved plan, a `--users` list, the
//! manifest a plan names) must be regular files: `/dev/zero` would be read forever and a FIFO
//! would block the run, so both are refused before a byte is read. They are opened without
//! blocking (`O_NONBLOCK`, which a regular file ignores) so that a FIFO is refused rather than
//! waited on. Lines read from them are capped ([`read_line_capped`]).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead};
use std::path::Path;

#[cfg(windows)]
mod windows;

#[cfg(not(any(unix, windows)))]
compile_error!("mfactl restricts its files to the current user on Unix and Windows only");

/// The error for a path that names something other than a regular file.
fn not_regular(metadata: &std::fs::Metadata) -> io::Error {
    let what = if metadata.is_dir() {
        "a folder"
    } else {
        "a device, a pipe or a socket"
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {what}, not a regular file"),
    )
}

/// Opens `path` for reading when it is a regular file (a symlink to one is fine); anything
/// else (a device such as `/dev/zero`, a FIFO, a socket, a folder) is refused without reading
/// from it or waiting on it.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(not_regular(&metadata));
    }
    Ok(file)
}

/// Opens (creating or appending) a file readable and writable by the owner only; an existing
/// file is narrowed to that too. A symlink as the last component, and anything but a regular
/// file, is refused: nothing is written through a planted link and no other file is re-moded.
pub fn open_private(path: &Path, append: bool) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut options = OpenOptions::new();
        options.create(true);
        if append {
            options.append(true);
        } else {
            options.write(true);
        }
        options
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        let file = options
            .open(path)
            .map_err(|error| refused_link(path, error))?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(not_regular(&metadata));
        }
        // Truncated only once it is known to be a regular file of our own.
        if !append {
            file.set_len(0)?;
        }
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(windows)]
    {
        let how = if append {
            windows::Open::Append
        } else {
            windows::Open::Truncate
        };
        windows::open_owner_only(path, how)
    }
}

/// The error for a symbolic link where mfactl writes.
fn symlink_refused() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "it is a symbolic link; mfactl writes only to a file it names, never through a link",
    )
}

/// `O_NOFOLLOW` on a symlink fails with `ELOOP` (Linux) or `EMLINK` (some BSDs): said plainly.
#[cfg(unix)]
fn refused_link(path: &Path, error: io::Error) -> io::Error {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link { symlink_refused() } else { error }
}

/// Creates a new file readable and writable by the owner only; fails if it exists (a symlink
/// included: `O_EXCL`, like Windows' `CREATE_NEW`, never follows one).
pub fn create_private_new(path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    }
    #[cfg(windows)]
    windows::open_owner_only(path, windows::Open::CreateNew)
}

/// Creates `dir` open to the owner only: 0700 on Unix (its missing parents too), on Windows an
/// access list that the files created inside inherit (its parents made as usual). An existing
/// folder is left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(windows)]
    {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        windows::create_owner_only_dir(dir)
    }
}

/// Reads one line (up to and including `\n`) into `line`, which is cleared first; errs when the
/// line is longer than `max` bytes, having read at most `max + 1` of them. Returns the bytes
/// read (0 at the end).
pub fn read_line_capped(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<usize> {
    line.clear();
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(line.len());
        }
        let (taken, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (chunk.len(), false),
        };
        let room = (max + 1).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..taken.min(room)]);
        reader.consume(taken.min(room));
        if line.len() > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line is longer than {max} bytes"),
            ));
        }
        if done {
            return Ok(line.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_pipes_and_folders_are_not_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open_regular(dir.path()).is_err());
        #[cfg(unix)]
        {
            let error = open_regular(Path::new("/dev/zero")).unwrap_err();
            assert!(error.to_string().contains("not a regular file"), "{error}");
            let fifo = dir.path().join("fifo");
            let made = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .is_ok_and(|s| s.success());
            if made {
                // Refused at once: no writer ever comes.
                assert!(open_regular(&fifo).is_err());
                assert!(open_private(&fifo, true).is_err());
            }
        }
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(open_regular(&file).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_never_written_through_nor_its_target_re_moded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("journal.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for append in [true, false] {
            let error = open_private(&link, append).unwrap_err();
            assert!(error.to_string().contains("symbolic link"), "{error}");
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        // A file of its own is narrowed and truncated as before.
        let own = dir.path().join("own");
        std::fs::write(&own, "old").unwrap();
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(open_private(&own, false).unwrap());
        assert_eq!(std::fs::read_to_string(&own).unwrap(), "");
        let mode = std::fs::metadata(&own).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn long_lines_are_refused_after_reading_just_past_the_cap() {
        let text = format!("short\n{}\nlast", "x".repeat(100));
        let mut reader = io::BufReader::with_capacity(8, text.as_bytes());
        let mut line = Vec::new();
        assert_eq!(read_line_capped(&mut reader, &mut line, 10).unwrap(), 6);
        assert_eq!(line, b"short\n");
        let error = read_line_capped(&mut reader, &mut line, 10).unwrap_err();
        assert!(error.to_string().contains("longer than 10 bytes"));
        assert!(line.len() <= 11);
        let mut reader = io::BufReader::new("a\nend".as_bytes());
        read_line_capped(&mut reader, &mut line, 10).unwrap();
        assert_eq!(read_line_capped(&mut reader, &mut line, 10).unwrap(), 3);
        assert_eq!(read_line_capped(&mut reader, &mut line, 10).unwrap(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn files_and_folders_are_the_owners_alone_and_existing_files_are_narrowed() {
        use std::io::Write as _;
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("a").join("b");
        create_private_dir(&folder).unwrap();
        assert_eq!(mode(&folder), 0o700);
        create_private_dir(&folder).unwrap();

        let shared = folder.join("plan.json");
        std::fs::write(&shared, "old and longer").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_private(&shared, false)
            .unwrap()
            .write_all(b"new")
            .unwrap();
        assert_eq!(mode(&shared), 0o600);
        assert_eq!(std::fs::read_to_string(&shared).unwrap(), "new");

        let journal = folder.join("journal.jsonl");
        create_private_new(&journal)
            .unwrap()
            .write_all(b"1\n")
            .unwrap();
        assert!(create_private_new(&journal).is_err(), "never over a file");
        open_private(&journal, true)
            .unwrap()
            .write_all(b"2\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&journal).unwrap(), "1\n2\n");
        assert_eq!(mode(&journal), 0o600);
    }
}
