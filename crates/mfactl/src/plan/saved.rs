//! Saved plans (`plan --out`, `apply PLAN.json`): the plan document plus what apply needs to
//! trust it, and the checks that refuse one before any request.
//!
//! A saved plan ends with `"checksum": "hmac-sha256:KEYID:HEX"`: an HMAC-SHA256, under the plan
//! key ([`super::seal`]), of every byte of the file before that key. Any edit — a value, a user
//! added or removed, a space — changes it, and without the key nobody can compute the new one,
//! so apply runs exactly what was reviewed or nothing. (Plans made before the key existed end
//! with an unkeyed `sha256:HEX`, which anyone could recompute: they are refused.) The check
//! streams the file: a plan of a million users is checked and read without a second copy of it
//! in memory, from one opening of one regular file.
//!
//! What the seal cannot vouch for (a plan sealed with a stolen key, or made by a buggy build) is
//! checked again from the plan's own content by [`check_contents`].
//!
//! No I/O but files: no network, no tokio.

use std::fs::File;
use std::io::{self, BufReader, Read as _, Seek as _, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::{digest, hmac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::seal::{PlanKey, hex};
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
        let mut file = crate::files::open_regular(path)?;
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

/// Writes `plan` as a saved plan: the pretty JSON document, its last key the HMAC under `key`
/// of the bytes before it. Returns the checksum (`hmac-sha256:KEYID:HEX`).
pub fn write(plan: &Plan, out: &mut impl Write, key: &PlanKey) -> io::Result<String> {
    let mut hashing = Held {
        inner: out,
        context: key.context(),
        held: Vec::with_capacity(2),
    };
    // Buffered above the hashing: serde_json writes token by token, the HMAC takes blocks.
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
    let checksum = format!("{KEYED}{}:{}", key.id(), hex(context.sign().as_ref()));
    write!(inner, ",\n  \"checksum\": \"{checksum}\"\n}}\n")?;
    Ok(checksum)
}

/// How a keyed checksum starts.
const KEYED: &str = "hmac-sha256:";

/// A writer that passes on (and hashes) every byte but the last two, which it holds back.
struct Held<'a, W: Write> {
    inner: &'a mut W,
    context: hmac::Context,
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
    #[error(
        "{path} is not authenticated: it carries only an unkeyed checksum (sha256), which anyone \
         who can edit the file can recompute"
    )]
    Unauthenticated { path: PathBuf },
    #[error(
        "{path} was sealed with plan key {found}, and this machine has no plan key (neither \
         MFACTL_PLAN_KEY nor a key file)"
    )]
    NoKey { path: PathBuf, found: String },
    #[error("{path} was sealed with plan key {found}, not with {ours} (key {ours_id})")]
    OtherKey {
        path: PathBuf,
        found: String,
        ours: String,
        ours_id: String,
    },
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
            SavedPlanError::Unauthenticated { .. } => {
                "make the plan again with this mfactl (`mfactl plan MANIFEST --out PLAN.json`): \
                 it is sealed with this machine's plan key; to plan on one machine and apply on \
                 another, set MFACTL_PLAN_KEY to the same secret on both"
            }
            SavedPlanError::NoKey { .. } | SavedPlanError::OtherKey { .. } => {
                "apply the plan where it was made, or set MFACTL_PLAN_KEY to the same secret \
                 where it is made and where it is applied (then make the plan again)"
            }
            SavedPlanError::Edited { .. } => {
                "a plan is applied exactly as reviewed: change the manifest and make the plan \
                 again (`mfactl plan MANIFEST --out PLAN.json`)"
            }
        }
    }
}

/// Reads the saved plan at `path` (a regular file, opened once), refusing one of another
/// format, one without a checksum, one without an HMAC, one sealed with another key than
/// `key`, and one whose HMAC does not match (in that order). Nothing is sent: the caller checks
/// the content ([`check_contents`]), the Graph root, tenant and age next.
pub fn load(path: &Path, key: Option<&PlanKey>) -> Result<Plan, SavedPlanError> {
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
    let mut file = crate::files::open_regular(path).map_err(io_error)?;
    let probe: Probe = serde_json::from_reader(BufReader::new(&file))
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

    let Some((hashed, seal)) = find_checksum(&mut file).map_err(io_error)? else {
        return Err(SavedPlanError::NoChecksum {
            path: path.to_owned(),
        });
    };
    let (found, tag) = match seal {
        Seal::Unkeyed => {
            return Err(SavedPlanError::Unauthenticated {
                path: path.to_owned(),
            });
        }
        Seal::Keyed { id, tag } => (id, tag),
    };
    let Some(key) = key else {
        return Err(SavedPlanError::NoKey {
            path: path.to_owned(),
            found,
        });
    };
    if found != key.id() {
        return Err(SavedPlanError::OtherKey {
            path: path.to_owned(),
            found,
            ours: key.describe(),
            ours_id: key.id().to_owned(),
        });
    }
    file.rewind().map_err(io_error)?;
    let mut context = key.context();
    feed(&mut file, hashed, |block| context.update(block)).map_err(io_error)?;
    if !key.verify(context, &tag) {
        return Err(SavedPlanError::Edited {
            path: path.to_owned(),
        });
    }
    file.rewind().map_err(io_error)?;
    let plan: Plan = serde_json::from_reader(BufReader::new(file))
        .map_err(|error| not_a_plan(error.to_string()))?;
    Ok(plan)
}

/// What a saved plan's checksum says.
enum Seal {
    /// `sha256:HEX`, from before plans were keyed.
    Unkeyed,
    /// `hmac-sha256:KEYID:HEX`.
    Keyed { id: String, tag: Vec<u8> },
}

/// The end of a saved plan: (bytes before the checksum key, the checksum).
fn find_checksum(file: &mut File) -> io::Result<Option<(u64, Seal)>> {
    const PREFIX: &str = ",\n  \"checksum\": \"";
    let len = file.metadata()?.len();
    let tail_len = len.min(200);
    file.seek(io::SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::new();
    (&mut *file).take(tail_len).read_to_end(&mut tail)?;
    let Ok(tail) = std::str::from_utf8(&tail) else {
        return Ok(None);
    };
    let Some(at) = tail.rfind(PREFIX) else {
        return Ok(None);
    };
    let rest = &tail[at + PREFIX.len()..];
    let Some(value) = rest.strip_suffix("\"\n}\n").or(rest.strip_suffix("\"\n}")) else {
        return Ok(None);
    };
    let is_hex = |text: &str, length: usize| {
        text.len() == length && text.bytes().all(|b| b.is_ascii_hexdigit())
    };
    let seal = if let Some(digest) = value.strip_prefix("sha256:") {
        if !is_hex(digest, 64) {
            return Ok(None);
        }
        Seal::Unkeyed
    } else if let Some(keyed) = value.strip_prefix(KEYED) {
        let Some((id, tag)) = keyed.split_once(':') else {
            return Ok(None);
        };
        if !is_hex(id, 16) || !is_hex(tag, 64) {
            return Ok(None);
        }
        let tag = (0..tag.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&tag[i..i + 2], 16).expect("hex checked"))
            .collect();
        Seal::Keyed {
            id: id.to_ascii_lowercase(),
            tag,
        }
    } else {
        return Ok(None);
    };
    let hashed = len - tail_len + at as u64;
    Ok(Some((hashed, seal)))
}

/// Hands the first `limit` bytes of `reader` to `take`, a block at a time.
fn feed(reader: &mut impl io::Read, limit: u64, mut take: impl FnMut(&[u8])) -> io::Result<()> {
    let mut reader = reader.take(limit);
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        take(&buffer[..n]);
    }
}

/// SHA-256 of the first `limit` bytes of `reader`.
fn hash_reader(reader: &mut impl io::Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut context = digest::Context::new(&digest::SHA256);
    feed(reader, limit, |block| context.update(block))?;
    Ok(context.finish().as_ref().to_vec())
}

/// Checks what a saved plan says of itself, whoever sealed it, and returns every problem found:
/// a tenant (`tenant_id` must be an object id: a null one would be applied to whatever tenant
/// the token names), an object id for every user with writes (a write by name could reach an
/// account renamed or re-created since), no object id listed twice (it would be written twice),
/// a user named by object id carrying that id, a summary that counts exactly the users' writes
/// (every guard is computed from the writes, but a reviewer read the summary), and a policy
/// body that writes exactly the changes shown ([`super::policy::check_body`]).
pub fn check_contents(plan: &Plan) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let shown = |text: &str| crate::text::printable_capped(text, 120);
    match plan.tenant_id.as_deref() {
        None => problems.push(
            "it names no tenant (tenant_id is null): it would be applied to whatever tenant the \
             token names"
                .to_owned(),
        ),
        Some(tenant) if uuid::Uuid::parse_str(tenant).is_err() => problems.push(format!(
            "its tenant_id {} is not a tenant's object id",
            shown(tenant)
        )),
        Some(_) => {}
    }
    let mut ids = std::collections::HashMap::new();
    for user in &plan.users {
        if let Some(id) = user.id {
            *ids.entry(id).or_insert(0u32) += 1;
        }
        if let Ok(named) = uuid::Uuid::parse_str(&user.user)
            && user.id.is_some_and(|id| id != named)
        {
            problems.push(format!(
                "user {} is named by one object id and carries another ({})",
                shown(&user.user),
                user.id.map(|id| id.to_string()).unwrap_or_default()
            ));
        }
        let writes = matches!(user.status, super::Status::Change | super::Status::Blocked)
            && user.write_count() > 0;
        if writes && user.id.is_none() {
            problems.push(format!(
                "user {} has writes but no object id (id is null): it would be written by name",
                shown(&user.user)
            ));
        }
    }
    let mut repeated: Vec<_> = ids.into_iter().filter(|(_, n)| *n > 1).collect();
    repeated.sort_unstable();
    for (id, times) in repeated {
        problems.push(format!("object id {id} is listed {times} times"));
    }
    let listed = plan.users.len() as u64;
    let counted = plan.count(plan.summary.users.max(listed));
    let said = &plan.summary;
    let pairs = [
        ("writes", said.writes, counted.writes),
        ("to_change", said.to_change, counted.to_change),
        ("policy_writes", said.policy_writes, counted.policy_writes),
        ("blocked", said.blocked, counted.blocked),
        ("not_found", said.not_found, counted.not_found),
        ("failed", said.failed, counted.failed),
        ("protected", said.protected, counted.protected),
    ];
    for (name, said, counted) in pairs {
        if said != counted {
            problems.push(format!(
                "its summary says {name}: {said}, but its entries hold {counted}"
            ));
        }
    }
    if said.users < listed {
        problems.push(format!(
            "its summary says users: {}, but it lists {listed}",
            said.users
        ));
    }
    if let Some(policy) = &plan.policy
        && let Err(problem) = super::policy::check_body(policy)
    {
        problems.push(problem);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Escapes every free text a saved plan carries that mfactl prints (reasons, notes, errors, the
/// tenant's domain, the creation time): a plan is a file, and its text may hold escape
/// sequences or line breaks meant to hide a line on the admin's screen. Text mfactl wrote
/// itself was escaped already and stays as it is.
pub fn escape_text(plan: &mut Plan) {
    fn escape(text: &mut String) {
        if let std::borrow::Cow::Owned(safe) = crate::text::printable(text) {
            *text = safe;
        }
    }
    fn escape_error(error: &mut super::UserError) {
        escape(&mut error.code);
        escape(&mut error.message);
        if let Some(id) = &mut error.request_id {
            escape(id);
        }
    }
    for text in [&mut plan.tenant_domain, &mut plan.created]
        .into_iter()
        .flatten()
    {
        escape(text);
    }
    for user in &mut plan.users {
        if let Some(remarks) = &mut user.remarks {
            if let Some(reason) = &mut remarks.reason {
                escape(reason);
            }
            remarks.notes.iter_mut().for_each(escape);
            for answer in remarks.answers.iter_mut().flat_map(|a| a.iter_mut()) {
                for text in [&mut answer.request_id, &mut answer.code]
                    .into_iter()
                    .flatten()
                {
                    if let std::borrow::Cow::Owned(safe) = crate::text::printable(text) {
                        *text = safe.into_boxed_str();
                    }
                }
            }
        }
        if let Some(error) = &mut user.error {
            escape_error(error);
        }
    }
    if let Some(policy) = &mut plan.policy {
        policy.notes.iter_mut().for_each(escape);
        if let Some(error) = &mut policy.error {
            escape_error(error);
        }
    }
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

    fn key() -> PlanKey {
        PlanKey::find(Some(&"a-plan-key-for-tests-only-".repeat(2)), None, false)
            .unwrap()
            .unwrap()
    }

    fn load(path: &Path) -> Result<Plan, SavedPlanError> {
        super::load(path, Some(&key()))
    }

    fn saved(plan: &Plan) -> (tempfile::TempDir, PathBuf, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let mut bytes = Vec::new();
        let checksum = write(plan, &mut bytes, &key()).unwrap();
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
    fn a_re_sealed_or_unkeyed_plan_is_refused() {
        let (_dir, path, checksum) = saved(&plan());
        let text = std::fs::read_to_string(&path).unwrap();
        // Re-sealed with the unkeyed SHA-256 an attacker can compute.
        let body = &text[..text.rfind(",\n  \"checksum\"").unwrap()];
        let edited = body.replace("\"users\": 3", "\"users\": 4");
        let sha = hex(digest::digest(&digest::SHA256, edited.as_bytes()).as_ref());
        std::fs::write(
            &path,
            format!("{edited},\n  \"checksum\": \"sha256:{sha}\"\n}}\n"),
        )
        .unwrap();
        let error = load(&path).unwrap_err();
        assert!(
            matches!(error, SavedPlanError::Unauthenticated { .. }),
            "{error}"
        );
        assert!(error.help().contains("MFACTL_PLAN_KEY"));
        // Sealed with another key, or read where there is none.
        std::fs::write(&path, &text).unwrap();
        let other = PlanKey::find(Some(&"another-key-entirely-".repeat(3)), None, false)
            .unwrap()
            .unwrap();
        let error = super::load(&path, Some(&other)).unwrap_err();
        assert!(matches!(error, SavedPlanError::OtherKey { .. }), "{error}");
        let error = super::load(&path, None).unwrap_err();
        assert!(matches!(error, SavedPlanError::NoKey { .. }), "{error}");
        assert!(checksum.starts_with(&format!("hmac-sha256:{}:", key().id())));
    }

    #[test]
    fn a_plan_must_hold_together_whoever_sealed_it() {
        use crate::model::Field;
        use crate::plan::{FieldChange, Status, UserPlan, Value};
        let change = |user: &str| {
            UserPlan::new(
                user.into(),
                Status::Change,
                vec![FieldChange {
                    field: Field::PerUserMfaState,
                    before: Value::text("enforced"),
                    after: Value::text("disabled"),
                    blocked: false,
                }],
                None,
                Vec::new(),
            )
        };
        let id = "071cc716-8147-4397-a5ba-b2105951cc0b";
        let mut megan = change("megan@contoso.com");
        megan.id = Some(id.parse().unwrap());
        let mut good = Plan::new("https://graph.microsoft.com", 3, vec![(0, megan.clone())]);
        good.tenant_id = Some("9c0e5f1a-0000-4000-8000-000000000001".into());
        assert_eq!(check_contents(&good), Ok(()));

        let mut understated = good.clone();
        understated.summary.writes = 0;
        let problems = check_contents(&understated).unwrap_err();
        assert!(problems[0].contains("writes: 0"), "{problems:?}");

        let mut no_tenant = good.clone();
        no_tenant.tenant_id = None;
        assert!(check_contents(&no_tenant).unwrap_err()[0].contains("names no tenant"));

        let by_name = change("adele@contoso.com");
        let mut twice = Plan::new(
            "https://graph.microsoft.com",
            4,
            vec![(0, megan.clone()), (1, megan.clone()), (2, by_name)],
        );
        twice.tenant_id = good.tenant_id.clone();
        let problems = check_contents(&twice).unwrap_err().join("\n");
        assert!(problems.contains("listed 2 times"), "{problems}");
        assert!(
            problems.contains("adele@contoso.com has writes but no object id"),
            "{problems}"
        );
    }

    #[test]
    fn text_from_a_plan_is_escaped_before_it_is_printed() {
        let mut plan = plan();
        let mut user = crate::plan::UserPlan::new(
            "u@contoso.com".into(),
            crate::plan::Status::Blocked,
            Vec::new(),
            Some("push\u{1b}[2Jnot registered".into()),
            vec!["ok\nPlan: 0 users to change".into()],
        );
        user.error = Some(Box::new(crate::plan::UserError {
            endpoint: None,
            status: Some(400),
            code: "x\u{202e}y".into(),
            message: "m\u{1b}".into(),
            request_id: None,
        }));
        plan.users.push(user);
        plan.tenant_domain = Some("contoso\u{1b}[31m".into());
        escape_text(&mut plan);
        let text = serde_json::to_string(&plan).unwrap();
        assert!(
            !text.contains("\\u001b") && !text.contains('\u{202e}'),
            "{text}"
        );
        assert_eq!(plan.users[0].notes()[0], "ok\\nPlan: 0 users to change");
        assert_eq!(plan.users[0].reason(), Some("push\\u{1b}[2Jnot registered"));
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
