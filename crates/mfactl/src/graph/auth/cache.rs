//! The refresh-token cache `mfactl login` leaves for `--auth device`: one JSON file
//! `{authority, tenant, client_id, upn, refresh_token, scopes, saved_at}`, readable by its owner
//! only (0600 in a 0700 directory, or the Windows equivalent, through [`crate::files`]), replaced atomically
//! (a temporary file in the same directory, then a rename) so that a crash or a concurrent run
//! never leaves half a file.
//!
//! A refresh token is as good as a password for its lifetime: it is held as a [`SecretString`],
//! never logged, and written to one place only. Where the OS has a usable keyring (the kernel
//! keyring on Linux, the Keychain on macOS, the Credential Manager on Windows) that place is
//! the keyring, under an entry named by the cache file's path, and the file says
//! `"refresh_token_in": "keyring"` instead of holding it; otherwise (or with
//! `MFACTL_KEYRING=off`) it is the file. `logout` removes both.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::AuthError;
use crate::text::printable;

/// One cached sign-in.
#[derive(Clone)]
pub(super) struct CachedLogin {
    /// The authority that issued the refresh token (`https://login.microsoftonline.com`).
    pub authority: String,
    /// The tenant to refresh in: the signed-in user's tenant id when known.
    pub tenant: String,
    pub client_id: String,
    pub upn: Option<String>,
    pub refresh_token: SecretString,
    /// The scopes `login` asked for, asked again at each refresh.
    pub scopes: Vec<String>,
    /// RFC 3339.
    pub saved_at: String,
}

impl fmt::Debug for CachedLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedLogin")
            .field("authority", &self.authority)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("upn", &self.upn)
            .field("refresh_token", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("saved_at", &self.saved_at)
            .finish()
    }
}

fn shown(path: &Path) -> String {
    printable(&path.to_string_lossy()).into_owned()
}

fn damaged(path: &Path, problem: impl Into<String>) -> AuthError {
    AuthError::Cache {
        path: shown(path),
        problem: problem.into(),
    }
}

/// The cached sign-in at `path`; `None` when there is no file.
pub(super) fn load(path: &Path) -> Result<Option<CachedLogin>, AuthError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(damaged(path, format!("cannot be read: {error}"))),
    };
    let fix = "; run `mfactl login` again";
    let mut json: Value =
        serde_json::from_slice(&bytes).map_err(|_| damaged(path, format!("is not JSON{fix}")))?;
    let text = |json: &Value, name: &str| {
        json.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let field = |json: &Value, name: &str| {
        text(json, name).ok_or_else(|| damaged(path, format!("has no {name}{fix}")))
    };
    let authority = field(&json, "authority")?;
    let tenant = field(&json, "tenant")?;
    let client_id = field(&json, "client_id")?;
    let upn = text(&json, "upn");
    let saved_at = text(&json, "saved_at").unwrap_or_default();
    let scopes = json
        .get("scopes")
        .and_then(Value::as_array)
        .map(|scopes| {
            scopes
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let in_keyring = json.get("refresh_token_in").and_then(Value::as_str) == Some(KEYRING);
    let refresh_token = match json.get_mut("refresh_token").map(Value::take) {
        Some(Value::String(token)) if !token.is_empty() => SecretString::from(token),
        _ if in_keyring => match keyring_entry(path).and_then(|e| e.get_password()) {
            Ok(token) if !token.is_empty() => SecretString::from(token),
            Ok(_) | Err(keyring::Error::NoEntry) => {
                return Err(damaged(
                    path,
                    format!(
                        "names a refresh token in the system keyring that is no longer there \
                         (the Linux kernel keyring forgets it at reboot){fix}"
                    ),
                ));
            }
            Err(error) => {
                return Err(damaged(
                    path,
                    format!(
                        "names a refresh token in the system keyring, which cannot be read ({error}){fix}"
                    ),
                ));
            }
        },
        _ => return Err(damaged(path, format!("has no refresh_token{fix}"))),
    };
    Ok(Some(CachedLogin {
        authority,
        tenant,
        client_id,
        upn,
        refresh_token,
        scopes,
        saved_at,
    }))
}

/// What the file says when the refresh token is in the keyring.
const KEYRING: &str = "keyring";

/// The keyring entry for the cache at `path`: one per cache file, so that `--token-cache`
/// keeps sign-ins apart there too.
fn keyring_entry(path: &Path) -> keyring::Result<keyring::Entry> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    keyring::Entry::new("mfactl device sign-in", &absolute.to_string_lossy())
}

/// Puts the refresh token in the keyring; `false` when no keyring is usable here.
fn store_in_keyring(path: &Path, token: &SecretString) -> bool {
    match keyring_entry(path).and_then(|entry| entry.set_password(token.expose_secret())) {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(%error, "no usable keyring: the refresh token goes into the cache file");
            false
        }
    }
}

/// Writes `login` to `path` atomically, 0600, creating its directory (0700) if needed; with
/// `keyring`, the refresh token goes into the OS keyring when one is usable.
pub(super) fn save(path: &Path, login: &CachedLogin, keyring: bool) -> Result<(), AuthError> {
    let failed = |what: &str, error: std::io::Error| {
        damaged(path, format!("cannot be written ({what}: {error})"))
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    crate::files::create_private_dir(&dir)
        .map_err(|error| failed("creating its directory", error))?;
    let mut contents = json!({
        "authority": login.authority,
        "tenant": login.tenant,
        "client_id": login.client_id,
        "upn": login.upn,
        "scopes": login.scopes,
        "saved_at": login.saved_at,
    });
    if keyring && store_in_keyring(path, &login.refresh_token) {
        contents["refresh_token_in"] = json!(KEYRING);
    } else {
        if keyring_entry(path)
            .and_then(|e| e.delete_credential())
            .is_ok()
        {
            tracing::debug!("an older refresh token was removed from the keyring");
        }
        contents["refresh_token"] = json!(login.refresh_token.expose_secret());
    }
    let mut bytes = serde_json::to_vec_pretty(&contents).expect("a JSON value serialises");
    bytes.push(b'\n');
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "token-cache.json".to_owned());
    let temporary = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let written = (|| {
        let mut file = crate::files::open_private(&temporary, false)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(failed("writing", error));
    }
    Ok(())
}

/// Removes the cache file and its keyring entry; `false` when there was neither.
pub(super) fn remove(path: &Path) -> Result<bool, AuthError> {
    let in_keyring = match keyring_entry(path).and_then(|entry| entry.delete_credential()) {
        Ok(()) => true,
        Err(keyring::Error::NoEntry) => false,
        Err(error) => {
            tracing::debug!(%error, "no keyring entry removed");
            false
        }
    };
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(in_keyring),
        Err(error) => Err(damaged(path, format!("cannot be removed: {error}"))),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn login(token: &str) -> CachedLogin {
        CachedLogin {
            authority: "https://login.microsoftonline.com".into(),
            tenant: "9c0e5f1a-0000-4000-8000-000000000001".into(),
            client_id: "14d82eec-204b-4c2f-b7e8-296a70dab67e".into(),
            upn: Some("admin@contoso.com".into()),
            refresh_token: SecretString::from(token.to_owned()),
            scopes: vec!["offline_access".into()],
            saved_at: "2026-11-23T10:00:00Z".into(),
        }
    }

    #[test]
    fn the_refresh_token_goes_to_the_keyring_when_there_is_one_and_logout_removes_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token-cache.json");
        save(&path, &login("refresh-token-in-the-keyring"), true).unwrap();
        let file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let in_keyring = file["refresh_token_in"] == KEYRING;
        if in_keyring {
            assert!(file.get("refresh_token").is_none(), "{file}");
            let stored = keyring_entry(&path).unwrap().get_password().unwrap();
            assert_eq!(stored, "refresh-token-in-the-keyring");
        } else {
            // No usable keyring on this machine: the file holds it, as before.
            assert_eq!(file["refresh_token"], "refresh-token-in-the-keyring");
        }
        let loaded = load(&path).unwrap().unwrap();
        assert_eq!(
            loaded.refresh_token.expose_secret(),
            "refresh-token-in-the-keyring"
        );
        // A renewal saved without the keyring moves the token to the file, and out of it.
        save(&path, &login("rotated"), false).unwrap();
        assert!(matches!(
            keyring_entry(&path).unwrap().get_password(),
            Err(keyring::Error::NoEntry)
                | Err(keyring::Error::NoStorageAccess(_))
                | Err(keyring::Error::PlatformFailure(_))
        ));
        save(&path, &login("again"), true).unwrap();
        assert!(remove(&path).unwrap());
        assert!(!path.exists());
        assert!(keyring_entry(&path).unwrap().get_password().is_err());
        assert!(!remove(&path).unwrap(), "nothing left to remove");
        if in_keyring {
            // The file says keyring, the keyring forgot it (a reboot): log in again.
            save(&path, &login("forgotten"), true).unwrap();
            keyring_entry(&path).unwrap().delete_credential().unwrap();
            let error = load(&path).unwrap_err().to_string();
            assert!(error.contains("no longer there"), "{error}");
            remove(&path).unwrap();
        }
    }
}
