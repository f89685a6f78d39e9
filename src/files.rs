//! Files mfactl writes that hold what admins would not show anyone: plans, journals and reports
//! name every user and their MFA settings, the token cache holds a refresh token. They are
//! created readable by the current user only, and an existing one is narrowed to that when
//! mfactl writes it: mode 0600 (folders 0700) on Unix; on Windows, where a mode means nothing, a
//! protected DACL allowing the current user alone (see `files/windows.rs`).

use std::fs::File;
use std::path::Path;

#[cfg(windows)]
mod windows;

#[cfg(not(any(unix, windows)))]
compile_error!("mfactl restricts its files to the current user on Unix and Windows only");

/// Opens (creating or appending) a file readable and writable by the owner only; an existing
/// file is narrowed to that too.
pub fn open_private(path: &Path, append: bool) -> std::io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut options = std::fs::OpenOptions::new();
        options.create(true).mode(0o600);
        if append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        let file = options.open(path)?;
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

/// Creates a new file readable and writable by the owner only; fails if it exists.
pub fn create_private_new(path: &Path) -> std::io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    }
    #[cfg(windows)]
    windows::open_owner_only(path, windows::Open::CreateNew)
}

/// Creates `dir` open to the owner only: 0700 on Unix (its missing parents too), on Windows a
/// DACL that the files created inside inherit (its parents made as usual). An existing folder
/// is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
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

#[cfg(all(test, unix))]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_and_folders_are_the_owners_alone_and_existing_files_are_narrowed() {
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
