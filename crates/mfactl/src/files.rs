//! Files mfactl writes that hold what admins would not show anyone: plans, journals and reports
//! name every user and their MFA settings. They are created readable by the owner only (0600),
//! and an existing one is narrowed to that when mfactl writes it.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// Opens (creating or appending) a file readable and writable by the owner only; an existing
/// file is narrowed to 0600 too.
pub fn open_private(path: &Path, append: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// Creates a new file readable and writable by the owner only; fails if it exists.
pub fn create_private_new(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
