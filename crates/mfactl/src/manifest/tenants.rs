//! The tenants file of a multi-tenant run (`mfactl plan|apply MANIFEST --tenants TENANTS.yaml`):
//! the customer tenants one manifest is planned and applied in, each with optional exclusions,
//! protected accounts and a write limit of its own. It is read like a manifest: every problem at
//! once, each with its file, line and column, before anything is sent.
//!
//! ```yaml
//! tenants:
//!   - tenant: customer1.onmicrosoft.com        # a tenant id (GUID) or a verified domain
//!   - tenant: 5f1c2a9e-0000-4000-8000-000000000001
//!     exclude: [{group: "Break-glass"}]         # optional: exclude:, protect:, maxChanges:
//! ```
//!
//! A tenant string is hostile input twice over: it becomes a path segment of the sign-in URL
//! (`{authority}/{tenant}/oauth2/v2.0/token`) and the name of a folder under `--out-dir`. Only a
//! GUID or a domain name passes ([`check_tenant`]), and [`TenantTarget::dir_name`] turns it into
//! exactly one safe path component. This module must not touch the network.

use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::policy::Node;
use super::problem::{Code, Location, Problems, quoted};
use super::selectors::{Exclusion, check_exclude};
use super::yaml::{at, check_max_changes, check_protect, position, syntax_message};
use super::{Manifest, ManifestError};

/// Keys of one `tenants:` entry (the schema names exactly these).
pub const ENTRY_KEYS: [&str; 4] = ["tenant", "exclude", "protect", "maxChanges"];
/// The largest tenants file read (an MSP's thousands of customers fit in a few hundred KB).
const MAX_FILE_BYTES: u64 = 16 << 20;
/// Names Windows reserves for devices, with or without an extension (`con.com` is `CON`).
const WINDOWS_DEVICES: [&str; 4] = ["con", "prn", "aux", "nul"];

/// A checked tenants file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantsFile {
    /// The file it was read from, for messages.
    pub source: PathBuf,
    /// One entry per tenant, in file order; no tenant twice.
    pub tenants: Vec<TenantTarget>,
}

/// One tenant of a multi-tenant run, with what it adds to the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantTarget {
    /// The tenant id (GUID) or verified domain, as written (trimmed).
    pub tenant: String,
    /// Taken out of the manifest's `allUsers:` and `groups:` in this tenant only (after the
    /// manifest's own `exclude:`).
    pub exclude: Vec<Exclusion>,
    /// Accounts never written in this tenant, on top of the manifest's `protect:`.
    pub protect: Vec<String>,
    /// The most writes an apply may make in this tenant (the smaller of this and the
    /// manifest's `maxChanges:` wins).
    pub max_changes: Option<u64>,
    /// The line of the entry's `tenant:` value in the tenants file.
    pub line: u64,
    /// Its column.
    pub column: u64,
}

impl TenantTarget {
    /// The folder under `--out-dir` holding this tenant's files: the tenant in lower case (a
    /// GUID or a domain name: letters, digits, `-` and `.`, never `..` nor a leading dot), with
    /// an `_` in front when Windows reserves the name (`con.example.com`). One path component
    /// that cannot climb out of the folder.
    pub fn dir_name(&self) -> String {
        dir_name(&self.tenant)
    }

    /// The manifest as this tenant runs it: the tenant's exclusions and protected accounts
    /// added, and the smaller of the two write limits.
    pub fn apply_to(&self, manifest: &Manifest) -> Manifest {
        let mut own = manifest.clone();
        own.selectors.exclude.extend(self.exclude.iter().cloned());
        for account in &self.protect {
            if !own
                .protect
                .iter()
                .any(|known| known.eq_ignore_ascii_case(account))
            {
                own.protect.push(account.clone());
            }
        }
        own.max_changes = match (own.max_changes, self.max_changes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        own
    }

    /// Whether the tenant is given by its id (a GUID) rather than a domain.
    pub fn is_tenant_id(&self) -> bool {
        is_guid(&self.tenant)
    }
}

/// The folder name for `tenant` (see [`TenantTarget::dir_name`]); `tenant` must have passed
/// [`check_tenant`].
pub fn dir_name(tenant: &str) -> String {
    let lower = tenant.trim().to_ascii_lowercase();
    let stem = lower.split('.').next().unwrap_or_default();
    let reserved = WINDOWS_DEVICES.contains(&stem)
        || ((stem.starts_with("com") || stem.starts_with("lpt"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved { format!("_{lower}") } else { lower }
}

/// Whether `text` is a GUID in its plain 36-character form (no braces, any case).
fn is_guid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

/// Checks a tenant as the tenants file names it: a tenant id (a GUID, 36 characters, no braces)
/// or a domain name (labels of letters, digits and `-`, not starting or ending with `-`, joined
/// by dots, at least two of them, 253 characters at most). The error says why not.
pub fn check_tenant(tenant: &str) -> Result<(), String> {
    if is_guid(tenant) {
        return Ok(());
    }
    let shown = quoted(tenant);
    if tenant.is_empty() {
        return Err(
            "the tenant is blank; give its tenant id (a GUID) or a verified domain such \
                    as contoso.onmicrosoft.com"
                .to_owned(),
        );
    }
    if tenant.len() > 253 {
        return Err(format!(
            "{} is longer than a domain name may be (253 characters)",
            quoted(&tenant.chars().take(40).collect::<String>())
        ));
    }
    let labels: Vec<&str> = tenant.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(format!(
            "{shown} is neither a tenant id (a GUID such as 5f1c2a9e-0000-4000-8000-000000000001) \
             nor a domain name (such as contoso.onmicrosoft.com)"
        ));
    }
    Ok(())
}

/// Reads and checks a tenants file: `tenants:`, a non-empty list of entries, each with a valid
/// `tenant:` (no tenant twice) and optional `exclude:`, `protect:` and `maxChanges:` in the
/// manifest's own syntax. Every problem is reported at once, located.
pub fn load(path: &Path) -> Result<TenantsFile, ManifestError> {
    let text = read_text(path)?;
    let mut problems = Problems::new(path);
    let document = match text {
        Ok(text) => serde_saphyr::from_str_with_options::<Option<Spanned<Node>>>(
            &text,
            super::yaml::options(),
        ),
        Err((line, column)) => {
            problems.push(
                Code::YamlSyntax,
                position(line, column),
                None,
                "the file is not UTF-8 text here; save it as UTF-8".to_owned(),
            );
            return problems.finish(empty(path));
        }
    };
    let tenants = match document {
        Ok(Some(node)) => read_document(&node, &mut problems),
        Ok(None) => {
            missing(&mut problems, position(1, 1));
            Vec::new()
        }
        Err(error) => {
            let location = error
                .location()
                .map_or(position(1, 1), |at| position(at.line(), at.column()));
            problems.push(Code::YamlSyntax, location, None, syntax_message(&error));
            Vec::new()
        }
    };
    problems.finish(TenantsFile {
        source: path.to_path_buf(),
        tenants,
    })
}

fn empty(path: &Path) -> TenantsFile {
    TenantsFile {
        source: path.to_path_buf(),
        tenants: Vec::new(),
    }
}

/// The file's text, or where it stops being UTF-8 (line and column, 1-based).
#[allow(clippy::type_complexity)]
fn read_text(path: &Path) -> Result<Result<String, (u64, u64)>, ManifestError> {
    use std::io::Read as _;
    let read_error = |source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(read_error(std::io::Error::other(format!(
            "it is larger than {} MiB; a tenants file lists tenants, not users",
            MAX_FILE_BYTES >> 20
        ))));
    }
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(&bytes)
        .to_vec();
    let valid_up_to = match std::str::from_utf8(&bytes) {
        Ok(_) if !bytes.contains(&0) => {
            return Ok(Ok(String::from_utf8(bytes).expect("checked")));
        }
        Ok(_) => bytes.iter().position(|b| *b == 0).unwrap_or_default(),
        Err(error) => error.valid_up_to(),
    };
    let before = &bytes[..valid_up_to];
    let line = before.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |at| at + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count() as u64
        + 1;
    Ok(Err((line, column)))
}

fn missing(problems: &mut Problems, location: Location) {
    problems.push(
        Code::MissingTenants,
        location,
        None,
        "the tenants file lists no tenant; write `tenants:` with one entry per tenant (`- \
         tenant: contoso.onmicrosoft.com`)"
            .to_owned(),
    );
}

/// The top level: a mapping with `tenants:` and nothing else.
fn read_document(node: &Spanned<Node>, problems: &mut Problems) -> Vec<TenantTarget> {
    let Node::Map(entries) = &node.value else {
        problems.push(
            Code::WrongType,
            at(&node.referenced),
            None,
            format!(
                "a tenants file is a mapping with `tenants:`, not {}",
                node.value.describe()
            ),
        );
        return Vec::new();
    };
    let mut list = None;
    for (key, value) in entries {
        if key.value != "tenants" {
            problems.push(
                Code::UnknownField,
                at(&key.referenced),
                None,
                super::problem::unknown_field_message("", &key.value, &["tenants"]),
            );
        } else if list.is_some() {
            problems.push(
                Code::DuplicateField,
                at(&key.referenced),
                None,
                "\"tenants\" is given twice at the top level; keep one".to_owned(),
            );
        } else {
            list = Some(value);
        }
    }
    let Some(list) = list else {
        missing(problems, position(1, 1));
        return Vec::new();
    };
    let tenants = match &list.value {
        Node::List(items) if !items.is_empty() => items
            .iter()
            .filter_map(|item| read_entry(item, problems))
            .collect(),
        Node::List(_) | Node::Null => {
            missing(problems, at(&list.referenced));
            Vec::new()
        }
        other => {
            problems.push(
                Code::WrongType,
                at(&list.referenced),
                None,
                format!(
                    "tenants must be a list of entries (`- tenant: contoso.onmicrosoft.com`), \
                     not {}",
                    other.describe()
                ),
            );
            Vec::new()
        }
    };
    report_duplicates(&tenants, problems);
    tenants
}

/// One `tenants:` entry, or `None` when it has no valid `tenant:` (its problems reported).
fn read_entry(item: &Spanned<Node>, problems: &mut Problems) -> Option<TenantTarget> {
    let Node::Map(fields) = &item.value else {
        problems.push(
            Code::WrongType,
            at(&item.referenced),
            None,
            format!(
                "each entry under tenants: is a mapping such as `tenant: \
                 contoso.onmicrosoft.com`, not {}",
                item.value.describe()
            ),
        );
        return None;
    };
    let mut target = TenantTarget {
        tenant: String::new(),
        exclude: Vec::new(),
        protect: Vec::new(),
        max_changes: None,
        line: item.referenced.line().max(1),
        column: item.referenced.column().max(1),
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut valid = true;
    for (key, value) in fields {
        if seen.contains(&key.value.as_str()) {
            problems.push(
                Code::DuplicateField,
                at(&key.referenced),
                None,
                format!(
                    "{} is given twice in this entry; keep one",
                    quoted(&key.value)
                ),
            );
            continue;
        }
        seen.push(&key.value);
        match key.value.as_str() {
            "tenant" => valid &= read_tenant(value, &mut target, problems),
            "exclude" => target.exclude = check_exclude(value, problems),
            "protect" => target.protect = check_protect(value, problems),
            "maxChanges" => target.max_changes = check_max_changes(value, problems),
            other => problems.push(
                Code::UnknownField,
                at(&key.referenced),
                None,
                super::problem::unknown_field_message("", other, &ENTRY_KEYS),
            ),
        }
    }
    if !seen.contains(&"tenant") {
        problems.push(
            Code::InvalidTenant,
            at(&item.referenced),
            None,
            "this entry has no `tenant:`; give the tenant id (a GUID) or a verified domain"
                .to_owned(),
        );
        return None;
    }
    valid.then_some(target)
}

/// `tenant:`: checked with [`check_tenant`]; says whether it is valid.
fn read_tenant(value: &Spanned<Node>, target: &mut TenantTarget, problems: &mut Problems) -> bool {
    let Node::Text(text) = &value.value else {
        problems.push(
            Code::InvalidTenant,
            at(&value.referenced),
            None,
            format!(
                "tenant must be written as text (a tenant id or a domain), not {}",
                value.value.describe()
            ),
        );
        return false;
    };
    match check_tenant(text.trim()) {
        Ok(()) => {
            target.tenant = text.trim().to_owned();
            target.line = value.referenced.line().max(1);
            target.column = value.referenced.column().max(1);
            true
        }
        Err(reason) => {
            problems.push(Code::InvalidTenant, at(&value.referenced), None, reason);
            false
        }
    }
}

/// A tenant named twice (case-insensitively) is one problem at its later entry.
fn report_duplicates(tenants: &[TenantTarget], problems: &mut Problems) {
    for (first, later) in super::duplicate_names(tenants, |t| t.tenant.as_str()) {
        problems.push(
            Code::DuplicateTenant,
            position(tenants[later].line, tenants[later].column),
            None,
            format!(
                "{} is listed twice: here and at line {} (tenants match case-insensitively); \
                 keep one entry",
                quoted(&tenants[later].tenant),
                tenants[first].line
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn load_text(text: &str) -> Result<TenantsFile, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenants.yaml");
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    fn problems(text: &str) -> Vec<(String, String, String)> {
        match load_text(text) {
            Ok(file) => panic!("loaded: {file:?}"),
            Err(error) => error
                .problems()
                .iter()
                .map(|p| {
                    (
                        p.location.to_string(),
                        p.code.to_string(),
                        p.message.clone(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn the_issue_example_loads_with_its_per_tenant_parts() {
        let file = load_text(
            "tenants:\n  - tenant: customer1.onmicrosoft.com\n  - tenant: \
             5F1C2A9E-0000-4000-8000-000000000001\n    exclude: [{group: \"Break-glass\"}]\n    \
             protect: [bg@customer2.com]\n    maxChanges: 50\n",
        )
        .unwrap();
        assert_eq!(file.tenants.len(), 2);
        assert_eq!(file.tenants[0].tenant, "customer1.onmicrosoft.com");
        assert_eq!(file.tenants[0].line, 2);
        let second = &file.tenants[1];
        assert!(second.is_tenant_id());
        assert_eq!(second.dir_name(), "5f1c2a9e-0000-4000-8000-000000000001");
        assert_eq!(second.exclude.len(), 1);
        assert_eq!(second.protect, ["bg@customer2.com"]);
        assert_eq!(second.max_changes, Some(50));
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let found = problems(
            "tenants:\n  - tenant: ../../etc\n  - tenant: a.com\n    maxChanges: -1\n    \
             color: red\n  - tenant: A.COM\n  - exclude: [{user: x@a.com}]\n  - tenant: 42\n",
        );
        let summary: Vec<(&str, &str)> = found
            .iter()
            .map(|(at, code, _)| (at.as_str(), code.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("2:13", "invalid-tenant"),
                ("4:17", "out-of-range"),
                ("5:5", "unknown-field"),
                ("6:13", "duplicate-tenant"),
                ("7:5", "invalid-tenant"),
                ("8:13", "invalid-tenant"),
            ],
            "{found:#?}"
        );
        assert!(found[3].2.contains("here and at line 3"), "{found:#?}");
    }

    #[test]
    fn an_empty_or_missing_list_is_one_problem() {
        for text in ["", "tenants: []\n", "tenants:\n", "other: 1\n"] {
            let found = problems(text);
            assert!(
                found.iter().any(|(_, code, _)| code == "missing-tenants"),
                "{text:?}: {found:?}"
            );
        }
        let found = problems("- tenant: a.com\n");
        assert_eq!(found[0].1, "wrong-type");
    }

    #[test]
    fn syntax_errors_and_bad_bytes_are_located() {
        let found = problems("tenants:\n  - tenant: [a.com\n");
        assert_eq!(found[0].1, "yaml-syntax");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, b"tenants:\n  - tenant: a\xff.com\n").unwrap();
        let error = load(&path).unwrap_err();
        assert_eq!(error.problems()[0].location.to_string(), "2:14");
    }

    #[test]
    fn a_tenant_becomes_the_per_tenant_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(
            &path,
            "version: 1\nallUsers: {perUserMfaState: disabled}\nprotect: [a@x.com]\n\
             maxChanges: 100\nusers: []\n",
        )
        .unwrap();
        let manifest = crate::manifest::load(&path).unwrap();
        let target = TenantTarget {
            tenant: "x.com".into(),
            exclude: vec![Exclusion {
                excluded: crate::manifest::selectors::Excluded::Group("BG".into()),
                line: 3,
            }],
            protect: vec!["A@X.com".into(), "b@x.com".into()],
            max_changes: Some(500),
            line: 2,
            column: 13,
        };
        let own = target.apply_to(&manifest);
        assert_eq!(own.protect, ["a@x.com", "b@x.com"]);
        assert_eq!(own.max_changes, Some(100), "the smaller limit wins");
        assert_eq!(own.selectors.exclude.len(), 1);
    }

    #[test]
    fn windows_device_names_get_an_underscore() {
        assert_eq!(dir_name("con.example.com"), "_con.example.com");
        assert_eq!(dir_name("COM1.example.com"), "_com1.example.com");
        assert_eq!(dir_name("contoso.com"), "contoso.com");
        assert_eq!(dir_name("com.example.com"), "com.example.com");
    }

    proptest! {
        /// Whatever text a tenants file holds, a tenant that passes the check is one path
        /// component: no separator, no `..`, no leading dot, nothing but [a-z0-9._-].
        #[test]
        fn a_valid_tenant_is_one_safe_path_component(text in "\\PC{0,40}|[a-zA-Z0-9.\\-/\\\\]{1,30}") {
            if check_tenant(&text).is_ok() {
                let name = dir_name(&text);
                prop_assert!(!name.is_empty());
                prop_assert!(name != "." && name != ".." && !name.starts_with('.'));
                prop_assert!(!name.contains(".."));
                prop_assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()
                    || c == '.' || c == '-' || c == '_'));
                let path = Path::new("out").join(&name);
                prop_assert_eq!(path.components().count(), 2);
            }
        }
    }
}
