//! The key that authenticates saved plans, so that nobody without it can make a plan apply runs.
//!
//! A saved plan ends with `"checksum": "hmac-sha256:KEYID:HEX"`: HMAC-SHA256 under this key of
//! every byte before it. An unkeyed hash could be recomputed by anyone who can edit the file (a
//! re-sealed plan would then write what nobody reviewed); an HMAC cannot without the key.
//!
//! The key is the text of `MFACTL_PLAN_KEY` (for a pipeline that plans on one runner and applies
//! on another: the same secret on both), or else of a key file made on first use, 0600 in a
//! 0700 folder of the user's configuration directory ([`default_key_path`];
//! `MFACTL_PLAN_KEY_FILE` moves it). It is never a command-line argument, and never written
//! anywhere but that file. `KEYID` names the key without revealing it (a hash of it), so that a
//! plan sealed elsewhere is refused with "another key" rather than "edited".
//!
//! Files and the environment only: no network, no tokio.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use aws_lc_rs::{digest, hmac, rand};

/// The variable holding the key itself.
pub const KEY_ENV: &str = "MFACTL_PLAN_KEY";
/// The variable naming the key file.
pub const KEY_FILE_ENV: &str = "MFACTL_PLAN_KEY_FILE";
/// The fewest characters a key may have: 32 hex digits carry 128 bits.
const MIN_KEY: usize = 32;
/// A key file is one line; anything longer is not one.
const MAX_KEY_FILE: u64 = 4096;

/// A plan key, ready to seal and check plans.
pub struct PlanKey {
    key: hmac::Key,
    id: String,
    origin: KeyOrigin,
}

/// Where the key came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    Variable,
    File(PathBuf),
}

impl std::fmt::Debug for PlanKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanKey")
            .field("id", &self.id)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{KEY_ENV} is too short ({0} characters): a plan key has at least {MIN_KEY}")]
    TooShort(usize),
    #[error("the plan key file {path} {problem}")]
    File { path: String, problem: String },
    #[error(
        "no plan key: {KEY_ENV} is not set and there is no key file (neither {KEY_FILE_ENV} nor \
         a home or configuration folder says where it would be)"
    )]
    NoPlace,
}

impl KeyError {
    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            KeyError::TooShort(_) => format!(
                "set {KEY_ENV} to a long random secret, e.g. the output of `openssl rand -hex 32`"
            ),
            KeyError::File { .. } => format!(
                "remove the file to make a new key (plans saved with the old one must then be \
                 made again), or set {KEY_ENV}"
            ),
            KeyError::NoPlace => format!("set {KEY_ENV} or {KEY_FILE_ENV}"),
        }
    }
}

impl PlanKey {
    /// The key from `MFACTL_PLAN_KEY`, else from the key file, creating it when `create` and it
    /// does not exist; `Ok(None)` when there is none and `create` is false.
    pub fn from_environment(create: bool) -> Result<Option<PlanKey>, KeyError> {
        let variable = std::env::var(KEY_ENV).ok();
        let file = std::env::var_os(KEY_FILE_ENV)
            .map(PathBuf::from)
            .or_else(default_key_path);
        PlanKey::find(variable.as_deref(), file.as_deref(), create)
    }

    /// [`PlanKey::from_environment`] with the variable's value and the key file's path given.
    pub fn find(
        variable: Option<&str>,
        file: Option<&Path>,
        create: bool,
    ) -> Result<Option<PlanKey>, KeyError> {
        if let Some(text) = variable.filter(|t| !t.trim().is_empty()) {
            return PlanKey::from_text(text.trim(), KeyOrigin::Variable).map(Some);
        }
        let Some(path) = file else {
            return if create {
                Err(KeyError::NoPlace)
            } else {
                Ok(None)
            };
        };
        match read_key_file(path)? {
            Some(text) => PlanKey::from_text(&text, KeyOrigin::File(path.to_owned())).map(Some),
            None if create => {
                let text = create_key_file(path)?;
                PlanKey::from_text(&text, KeyOrigin::File(path.to_owned())).map(Some)
            }
            None => Ok(None),
        }
    }

    fn from_text(text: &str, origin: KeyOrigin) -> Result<PlanKey, KeyError> {
        let length = text.chars().count();
        if length < MIN_KEY {
            return Err(match origin {
                KeyOrigin::Variable => KeyError::TooShort(length),
                KeyOrigin::File(path) => KeyError::File {
                    path: shown(&path),
                    problem: format!("holds {length} characters, fewer than {MIN_KEY}"),
                },
            });
        }
        let mut named = digest::Context::new(&digest::SHA256);
        named.update(b"mfactl plan key id\n");
        named.update(text.as_bytes());
        let id = hex(&named.finish().as_ref()[..8]);
        Ok(PlanKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, text.as_bytes()),
            id,
            origin,
        })
    }

    /// A short name for the key (16 hex digits of a hash of it): safe to print and to store.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `MFACTL_PLAN_KEY` or `the key file PATH`.
    pub fn describe(&self) -> String {
        match &self.origin {
            KeyOrigin::Variable => KEY_ENV.to_owned(),
            KeyOrigin::File(path) => format!("the key file {}", shown(path)),
        }
    }

    /// A running HMAC under the key.
    pub(super) fn context(&self) -> hmac::Context {
        hmac::Context::with_key(&self.key)
    }

    /// Whether `tag` is the HMAC of what `context` took (in constant time).
    pub(super) fn verify(&self, context: hmac::Context, tag: &[u8]) -> bool {
        let computed = context.sign();
        aws_lc_rs::constant_time::verify_slices_are_equal(computed.as_ref(), tag).is_ok()
    }
}

/// Where the key file goes unless `MFACTL_PLAN_KEY_FILE` says: `mfactl/plan-key` in the user's
/// configuration directory (`$XDG_CONFIG_HOME`, else `~/.config` on Linux and other Unixes;
/// `~/Library/Application Support` on macOS; `%APPDATA%` on Windows).
pub fn default_key_path() -> Option<PathBuf> {
    let file = |dir: PathBuf| dir.join("mfactl").join("plan-key");
    if cfg!(windows) {
        return std::env::var_os("APPDATA").map(|dir| file(PathBuf::from(dir)));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    if cfg!(target_os = "macos") {
        return home.map(|h| file(h.join("Library").join("Application Support")));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from)
        && dir.is_absolute()
    {
        return Some(file(dir));
    }
    home.map(|h| file(h.join(".config")))
}

/// The key file's text (trimmed), `None` when there is no file. Only a regular file readable by
/// its owner alone is taken: a key others can read is no key.
fn read_key_file(path: &Path) -> Result<Option<String>, KeyError> {
    let bad = |problem: String| KeyError::File {
        path: shown(path),
        problem,
    };
    let file = match crate::files::open_regular(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(bad(format!("cannot be read: {error}"))),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file
            .metadata()
            .map_err(|e| bad(format!("cannot be read: {e}")))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(bad(format!(
                "may be read by others (mode {:o}); run `chmod 600` on it, or remove it to \
                 make a new key",
                mode & 0o777
            )));
        }
    }
    let mut text = String::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("cannot be read: {e}")))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(bad(format!("is longer than {MAX_KEY_FILE} bytes")));
    }
    Ok(Some(text.trim().to_owned()))
}

/// Makes a new key file (256 random bits, hex) 0600 in a 0700 folder, atomically: written under
/// a temporary name and linked into place, so that two runs making it at once agree on one
/// key (the second reads the first's). Returns the key's text.
fn create_key_file(path: &Path) -> Result<String, KeyError> {
    let failed = |what: &str, error: std::io::Error| KeyError::File {
        path: shown(path),
        problem: format!("cannot be created ({what}: {error})"),
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder.create(&dir).map_err(|e| failed("its folder", e))?;
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes).map_err(|_| failed("random", std::io::Error::other("no randomness")))?;
    let text = hex(&bytes);
    let temporary = dir.join(format!(
        ".plan-key.{}.{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let written = (|| {
        let mut file = crate::files::create_private_new(&temporary)?;
        file.write_all(format!("{text}\n").as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, path)
    })();
    let _ = std::fs::remove_file(&temporary);
    match written {
        Ok(()) => Ok(text),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another run made it first: its key is the key.
            read_key_file(path)?.ok_or_else(|| failed("reading", error))
        }
        Err(error) => Err(failed("writing", error)),
    }
}

fn shown(path: &Path) -> String {
    crate::text::printable(&path.to_string_lossy()).into_owned()
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_made_once_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config").join("mfactl").join("plan-key");
        assert!(PlanKey::find(None, Some(&path), false).unwrap().is_none());
        let made = PlanKey::find(None, Some(&path), true).unwrap().unwrap();
        let again = PlanKey::find(None, Some(&path), false).unwrap().unwrap();
        assert_eq!(made.id(), again.id());
        assert!(again.describe().starts_with("the key file "));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let folder = std::fs::metadata(path.parent().unwrap()).unwrap();
            assert_eq!(folder.permissions().mode() & 0o777, 0o700);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = PlanKey::find(None, Some(&path), false).unwrap_err();
            assert!(
                error.to_string().contains("may be read by others"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_variable_wins_and_must_be_long() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan-key");
        let key = PlanKey::find(Some(&"k".repeat(40)), Some(&path), true)
            .unwrap()
            .unwrap();
        assert_eq!(key.describe(), KEY_ENV);
        assert!(
            !path.exists(),
            "no file is made when the variable gives the key"
        );
        let error = PlanKey::find(Some("short"), Some(&path), true).unwrap_err();
        assert!(matches!(error, KeyError::TooShort(5)), "{error}");
        let other = PlanKey::find(Some(&"j".repeat(40)), None, true)
            .unwrap()
            .unwrap();
        assert_ne!(key.id(), other.id());
        assert_eq!(key.id().len(), 16);
    }

    #[test]
    fn runs_making_the_key_at_once_agree_on_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan-key");
        let ids: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        PlanKey::find(None, Some(&path), true)
                            .unwrap()
                            .unwrap()
                            .id()
                            .to_owned()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    }
}
