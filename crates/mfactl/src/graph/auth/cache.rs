//! The refresh-token cache `mfactl login` leaves for `--auth device`: one JSON file
//! `{authority, tenant, client_id, upn, refresh_token, scopes, saved_at}`, readable by its owner
//! only (0600, through [`crate::files::open_private`], in a 0700 directory), replaced atomically
//! (a temporary file in the same directory, then a rename) so that a crash or a concurrent run
//! never leaves half a file.
//!
//! A refresh token is as good as a password for its lifetime: it is held as a [`SecretString`],
//! never logged, and its file is the only place it is written.

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
    let refresh_token = match json.get_mut("refresh_token").map(Value::take) {
        Some(Value::String(token)) if !token.is_empty() => SecretString::from(token),
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

/// Writes `login` to `path` atomically, 0600, creating its directory (0700) if needed.
pub(super) fn save(path: &Path, login: &CachedLogin) -> Result<(), AuthError> {
    let failed = |what: &str, error: std::io::Error| {
        damaged(path, format!("cannot be written ({what}: {error})"))
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir).map_err(|error| failed("creating its directory", error))?;
    let contents = json!({
        "authority": login.authority,
        "tenant": login.tenant,
        "client_id": login.client_id,
        "upn": login.upn,
        "refresh_token": login.refresh_token.expose_secret(),
        "scopes": login.scopes,
        "saved_at": login.saved_at,
    });
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

/// Removes the cache file; `false` when there was none.
pub(super) fn remove(path: &Path) -> Result<bool, AuthError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(damaged(path, format!("cannot be removed: {error}"))),
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}
