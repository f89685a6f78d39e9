//! Saved plans (`plan --out`, `apply PLAN.json`): the plan document plus what apply needs to
//! trust it, and the checks that refuse one before any request.
//!
//! A saved plan ends with `"checksum": "sha256:HEX"`: the SHA-256 of every byte of the file
//! before that key. Any edit — a value, a user added or removed, a space — changes it, so apply
//! runs exactly what was reviewed or nothing. The check streams the file: a plan of a million
//! users is hashed and read without a second copy of it in memory.
//!
//! No I/O but files: no network, no tokio.

use std::fs::File;
use std::io::{self, BufReader, Read as _, Seek as _, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::digest;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{FORMAT_VERSION, Plan};

/// A file the plan was made from: where it was and what it held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SourceFile {
    /// Absolute when it could be resolved.
    pub path: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

impl SourceFile {
    /// Reads and hashes the file at `path`.
    pub fn of(path: &Path) -> io::Result<SourceFile> {
        let mut file = File::open(path)?;
        let sha256 = hex(&hash_reader(&mut file, u64::MAX)?);
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        Ok(SourceFile {
            path: path.to_string_lossy().into_owned(),
            sha256,
        })
    }
}

/// The default `--max-plan-age`.
pub const DEFAULT_MAX_AGE: &str = "24h";
/// How far ahead of this machine's clock a plan's creation time may be (another machine's
/// clock) before it is refused as from the future.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Writes `plan` as a saved plan: the pretty JSON document, its last key the checksum of the
/// bytes before it. Returns the checksum (`sha256:HEX`).
pub fn write(plan: &Plan, out: &mut impl Write) -> io::Result<String> {
    let mut hashing = Held {
        inner: out,
        context: digest::Context::new(&digest::SHA256),
        held: Vec::with_capacity(2),
    };
    // Buffered above the hashing: serde_json writes token by token, the digest takes blocks.
    let mut buffered = io::BufWriter::with_capacity(64 * 1024, &mut hashing);
    serde_json::to_writer_pretty(&mut buffered, plan)?;
    buffered.flush()?;
    drop(buffered);
    let Held {
        inner,
        context,
        held,
    } = hashing;
    // The document ends `\n}`: the checksum goes inside the closing brace.
    if held != b"\n}" {
        return Err(io::Error::other("plan document did not end with `}`"));
    }
    let checksum = format!("sha256:{}", hex(context.finish().as_ref()));
    write!(inner, ",\n  \"checksum\": \"{checksum}\"\n}}\n")?;
    Ok(checksum)
}

/// A writer that passes on (and hashes) every byte but the last two, which it holds back.
struct Held<'a, W: Write> {
    inner: &'a mut W,
    context: digest::Context,
    held: Vec<u8>,
}

impl<W: Write> Write for Held<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        if self.held.len() > 2 {
            let cut = self.held.len() - 2;
            self.context.update(&self.held[..cut]);
            self.inner.write_all(&self.held[..cut])?;
            self.held.drain(..cut);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why a file is not a plan apply will run.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a plan document: {reason}")]
    NotAPlan { path: PathBuf, reason: String },
    #[error(
        "{path} has format_version {found}; this mfactl reads plan format {FORMAT_VERSION} only"
    )]
    Format { path: PathBuf, found: u64 },
    #[error(
        "{path} has no checksum: it was not written by `mfactl plan --out`, or was reformatted"
    )]
    NoChecksum { path: PathBuf },
    #[error("{path} was edited after it was saved: its checksum does not match its content")]
    Edited { path: PathBuf },
}

impl SavedPlanError {
    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self {
            SavedPlanError::Io { .. } => "check the path",
            SavedPlanError::NotAPlan { .. } | SavedPlanError::NoChecksum { .. } => {
                "apply takes a manifest (.yaml, .yml, .csv) or a plan written by `mfactl plan \
                 MANIFEST --out PLAN.json`"
            }
            SavedPlanError::Format { .. } => {
                "make the plan again with this mfactl (`mfactl plan MANIFEST --out PLAN.json`), \
                 or apply it with the mfactl that made it"
            }
            SavedPlanError::Edited { .. } => {
                "a plan is applied exactly as reviewed: change the manifest and make the plan \
                 again (`mfactl plan MANIFEST --out PLAN.json`)"
            }
        }
    }
}

/// Reads the saved plan at `path`, refusing one of another format, one without a checksum and
/// one whose checksum does not match (in that order). Nothing is sent: the caller checks the
/// Graph root, tenant and age next.
pub fn load(path: &Path) -> Result<Plan, SavedPlanError> {
    let io_error = |source| SavedPlanError::Io {
        path: path.to_owned(),
        source,
    };
    let not_a_plan = |reason: String| SavedPlanError::NotAPlan {
        path: path.to_owned(),
        reason: crate::text::printable(&reason).into_owned(),
    };
    // The format first: a later format may not parse as this one.
    #[derive(Deserialize)]
    struct Probe {
        format_version: Option<serde_json::Value>,
    }
    let file = File::open(path).map_err(io_error)?;
    let probe: Probe = serde_json::from_reader(BufReader::new(file))
        .map_err(|error| not_a_plan(error.to_string()))?;
    match probe.format_version {
        None => return Err(not_a_plan("it has no format_version".into())),
        Some(version) if version.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
        Some(version) => {
            return Err(match version.as_u64() {
                Some(found) => SavedPlanError::Format {
                    path: path.to_owned(),
                    found,
                },
                None => not_a_plan(format!("format_version is {version}, not a number")),
            });
        }
    }

    let mut file = File::open(path).map_err(io_error)?;
    let Some((hashed, recorded)) = find_checksum(&mut file).map_err(io_error)? else {
        return Err(SavedPlanError::NoChecksum {
            path: path.to_owned(),
        });
    };
    file.rewind().map_err(io_error)?;
    let actual = format!(
        "sha256:{}",
        hex(&hash_reader(&mut file, hashed).map_err(io_error)?)
    );
    if actual != recorded {
        return Err(SavedPlanError::Edited {
            path: path.to_owned(),
        });
    }
    file.rewind().map_err(io_error)?;
    let plan: Plan = serde_json::from_reader(BufReader::new(file))
        .map_err(|error| not_a_plan(error.to_string()))?;
    Ok(plan)
}

/// The end of a saved plan: (bytes before the checksum key, the recorded checksum).
fn find_checksum(file: &mut File) -> io::Result<Option<(u64, String)>> {
    const PREFIX: &str = ",\n  \"checksum\": \"sha256:";
    let len = file.metadata()?.len();
    let tail_len = len.min(200);
    file.seek(io::SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let Ok(tail) = std::str::from_utf8(&tail) else {
        return Ok(None);
    };
    let Some(at) = tail.rfind(PREFIX) else {
        return Ok(None);
    };
    let rest = &tail[at + PREFIX.len()..];
    let Some(hex) = rest.strip_suffix("\"\n}\n").or(rest.strip_suffix("\"\n}")) else {
        return Ok(None);
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let hashed = len - tail_len + at as u64;
    Ok(Some((hashed, format!("sha256:{hex}"))))
}

/// SHA-256 of the first `limit` bytes of `reader`.
fn hash_reader(reader: &mut impl io::Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut context = digest::Context::new(&digest::SHA256);
    let mut reader = reader.take(limit);
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        context.update(&buffer[..n]);
    }
    Ok(context.finish().as_ref().to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses an age: a number and a unit (`s`, `m`, `h`, `d`), repeated (`1h30m`).
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let error = || {
        format!(
            "`{}` is not an age: give a number and a unit, e.g. 24h, 90m, 2d, 1h30m",
            crate::text::printable(text)
        )
    };
    let mut total = 0u64;
    let mut number = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(error()),
        };
        let n: u64 = number.parse().map_err(|_| error())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(error)?;
        number.clear();
        any = true;
    }
    if !number.is_empty() || !any {
        return Err(error());
    }
    Ok(Duration::from_secs(total))
}

/// Refuses a plan older than `max_age` or made in the future (beyond a few minutes of clock
/// skew), saying by how much.
pub fn check_age(plan: &Plan, now: jiff::Timestamp, max_age: Duration) -> Result<(), String> {
    let Some(created) = &plan.created else {
        return Err("it has no creation time (`created`)".into());
    };
    let created: jiff::Timestamp = created.parse().map_err(|_| {
        format!(
            "its creation time `{}` is not a time",
            crate::text::printable(created)
        )
    })?;
    let age = now.duration_since(created);
    let max = jiff::SignedDuration::try_from(max_age).unwrap_or(jiff::SignedDuration::MAX);
    if age > max {
        return Err(format!(
            "it was made {} ago ({created}), more than --max-plan-age {}",
            human(age.unsigned_abs()),
            human(max_age)
        ));
    }
    let skew = jiff::SignedDuration::try_from(CLOCK_SKEW).expect("small");
    if -age > skew {
        return Err(format!(
            "it was made {} in the future ({created}): check this machine's clock",
            human(age.unsigned_abs())
        ));
    }
    Ok(())
}

/// `3h 20m`, `2d 4h`, `45s`.
fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let mut plan = Plan::new("https://graph.microsoft.com", 3, Vec::new());
        plan.tenant_id = Some("9c0e5f1a-0000-4000-8000-000000000001".into());
        plan.created = Some("2026-11-23T10:00:00Z".into());
        plan
    }

    fn saved(plan: &Plan) -> (tempfile::TempDir, PathBuf, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let mut bytes = Vec::new();
        let checksum = write(plan, &mut bytes).unwrap();
        std::fs::write(&path, bytes).unwrap();
        (dir, path, checksum)
    }

    #[test]
    fn a_saved_plan_reads_back_with_its_checksum() {
        let (_dir, path, checksum) = saved(&plan());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with(&format!(",\n  \"checksum\": \"{checksum}\"\n}}\n")),
            "{text}"
        );
        let read = load(&path).unwrap();
        assert_eq!(read.checksum.as_deref(), Some(checksum.as_str()));
        assert_eq!(
            Plan {
                checksum: None,
                ..read
            },
            plan()
        );
    }

    #[test]
    fn any_edit_is_refused() {
        let (_dir, path, _) = saved(&plan());
        let text = std::fs::read_to_string(&path).unwrap();
        for edited in [
            text.replace("\"users\": 3", "\"users\": 4"),
            text.replace("{\n", "{ \n"),
            text.replace("9c0e5f1a", "9c0e5f1b"),
        ] {
            assert_ne!(edited, text);
            std::fs::write(&path, &edited).unwrap();
            assert!(
                matches!(load(&path), Err(SavedPlanError::Edited { .. })),
                "{edited}"
            );
        }
        // Reformatted (no checksum where mfactl puts it) or stripped of it.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        std::fs::write(&path, serde_json::to_string(&value).unwrap()).unwrap();
        assert!(matches!(
            load(&path),
            Err(SavedPlanError::NoChecksum { .. })
        ));
    }

    #[test]
    fn another_format_is_refused_before_anything_else() {
        let (_dir, path, _) = saved(&plan());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("\"format_version\": 1", "\"format_version\": 2"),
        )
        .unwrap();
        let error = load(&path).unwrap_err();
        assert!(
            matches!(error, SavedPlanError::Format { found: 2, .. }),
            "{error}"
        );
        std::fs::write(&path, "users: []\n").unwrap();
        assert!(matches!(load(&path), Err(SavedPlanError::NotAPlan { .. })));
        std::fs::write(&path, "{\"users\": []}").unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(error.contains("no format_version"), "{error}");
    }

    #[test]
    fn ages_parse_and_old_or_future_plans_are_refused() {
        assert_eq!(parse_age("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_age("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_age("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "24", "h", "1y", "-1h", "1.5h"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        let plan = plan();
        let made: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let day = Duration::from_secs(86_400);
        let at = |secs: i64| {
            made.checked_add(jiff::SignedDuration::from_secs(secs))
                .unwrap()
        };
        assert!(check_age(&plan, at(3600), day).is_ok());
        let error = check_age(&plan, at(90_000), day).unwrap_err();
        assert!(
            error.contains("1d 1h ago") && error.contains("--max-plan-age 1d 0h"),
            "{error}"
        );
        assert!(
            check_age(&plan, at(-60), day).is_ok(),
            "a minute of skew is tolerated"
        );
        let error = check_age(&plan, at(-3600), day).unwrap_err();
        assert!(error.contains("in the future"), "{error}");
    }
}
