//! Writing a manifest a user at a time: `mfactl export` streams a whole tenant into one, so
//! nothing here holds more than the entry being written.
//!
//! What is written must read back as exactly the same desired state ([`super::load`]), whatever
//! Graph sent: the user is written as its userPrincipalName only when that is a user the
//! reader takes ([`super::check_user`]) and, in CSV, does not start with a character a
//! spreadsheet reads as a formula (`=`, `+`, `-`, `@`); otherwise as its object id, a GUID that
//! never does. That is how the CSV stays spreadsheet-safe without the usual `'` prefix, which
//! the reader would keep as part of the name. YAML strings are double-quoted with every
//! character that could end or bend the scalar escaped; CSV cells are quoted as RFC 4180 needs.
//! No I/O beyond the writer it is given.

use std::io::{self, Write};
use std::path::Path;

use crate::model::{PerUserMfaState, PreferredMethod};

/// The two manifest formats, chosen by the file's extension as [`super::load_with`] chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    Yaml,
    Csv,
}

impl ManifestFormat {
    /// `.csv` (any case) is CSV, anything else YAML.
    pub fn of(path: &Path) -> ManifestFormat {
        if path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"))
        {
            ManifestFormat::Csv
        } else {
            ManifestFormat::Yaml
        }
    }
}

/// One user's entry: a field left `None` is not managed and not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManifestEntry<'a> {
    pub user_principal_name: Option<&'a str>,
    pub id: &'a str,
    pub preferred_method: Option<PreferredMethod>,
    pub system_preferred: Option<bool>,
    pub per_user_mfa_state: Option<PerUserMfaState>,
    /// Whether MFA would stay required without per-user MFA (a Conditional Access verdict,
    /// already printable): a YAML comment, or the CSV's `mfaCoverage` column, never a field.
    pub coverage: Option<&'a str>,
}

/// Characters a spreadsheet treats as the start of a formula (OWASP's CSV injection list; tab
/// and carriage return are refused by [`super::check_user`] already).
const FORMULA_STARTS: [char; 4] = ['=', '+', '-', '@'];

impl ManifestEntry<'_> {
    /// The name the entry is written under (see the module documentation).
    pub fn user(&self, format: ManifestFormat) -> &str {
        match self.user_principal_name {
            Some(upn)
                if super::check_user(upn).is_ok()
                    && !(format == ManifestFormat::Csv && upn.starts_with(FORMULA_STARTS)) =>
            {
                upn
            }
            _ => self.id,
        }
    }
}

/// Writes a manifest's header, then entries as they come, then its end.
#[derive(Debug)]
pub struct ManifestWriter {
    format: ManifestFormat,
    entries: u64,
}

impl ManifestWriter {
    /// Writes the header: for YAML a comment saying what the file is, and `version: 1`; for
    /// CSV the header row.
    pub fn start(
        format: ManifestFormat,
        comment: &str,
        out: &mut dyn Write,
    ) -> io::Result<ManifestWriter> {
        match format {
            ManifestFormat::Yaml => {
                for line in comment.lines() {
                    writeln!(out, "# {line}")?;
                }
                writeln!(out, "version: 1")?;
            }
            ManifestFormat::Csv => {
                writeln!(
                    out,
                    "user,preferredMethod,systemPreferred,perUserMfaState,mfaCoverage"
                )?;
            }
        }
        Ok(ManifestWriter { format, entries: 0 })
    }

    /// Writes one entry.
    pub fn entry(&mut self, entry: &ManifestEntry<'_>, out: &mut dyn Write) -> io::Result<()> {
        let user = entry.user(self.format);
        match self.format {
            ManifestFormat::Yaml => {
                if self.entries == 0 {
                    writeln!(out, "users:")?;
                }
                writeln!(out, "  - user: {}", yaml_quoted(user))?;
                if let Some(coverage) = entry.coverage {
                    // One line whatever it holds: a line break would end the comment.
                    let line: String = coverage.chars().filter(|c| !c.is_control()).collect();
                    writeln!(out, "    # MFA coverage: {line}")?;
                }
                if let Some(method) = entry.preferred_method {
                    writeln!(out, "    preferredMethod: {method}")?;
                }
                if let Some(on) = entry.system_preferred {
                    writeln!(out, "    systemPreferred: {on}")?;
                }
                if let Some(state) = entry.per_user_mfa_state {
                    writeln!(out, "    perUserMfaState: {state}")?;
                }
            }
            ManifestFormat::Csv => {
                let text = |value: Option<String>| value.unwrap_or_default();
                writeln!(
                    out,
                    "{},{},{},{},{}",
                    csv_cell(user),
                    text(entry.preferred_method.map(|m| m.to_string())),
                    text(entry.system_preferred.map(|on| on.to_string())),
                    text(entry.per_user_mfa_state.map(|s| s.to_string())),
                    csv_cell(&text(entry.coverage.map(note_cell))),
                )?;
            }
        }
        self.entries += 1;
        Ok(())
    }

    /// Ends the manifest (a YAML manifest without entries says `users: []`); returns how many
    /// entries were written.
    pub fn finish(self, out: &mut dyn Write) -> io::Result<u64> {
        if self.format == ManifestFormat::Yaml && self.entries == 0 {
            writeln!(out, "users: []")?;
        }
        Ok(self.entries)
    }
}

/// `text` as a YAML double-quoted scalar in printable ASCII: `"` and `\` escaped, every other
/// character outside space..`~` as `\uXXXX` or `\UXXXXXXXX` (YAML 1.2 escapes, which any YAML
/// reader, serde's included, reads back to the same string). No line break, BOM, bidi control,
/// `#` comment or flow indicator can leave the quotes, so the result is safe inside a value or a
/// comment. Exports and rollback manifests quote everything from Graph or a journal with it.
pub fn yaml_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// A note as a CSV cell a spreadsheet will not run: a leading formula character gets a `'`
/// (the reader never reads this column, so the prefix changes nothing it reads).
fn note_cell(note: &str) -> String {
    if note.starts_with(FORMULA_STARTS) {
        format!("'{note}")
    } else {
        note.to_owned()
    }
}

/// A CSV cell, quoted (with `"` doubled) when it holds a separator the reader may use (`,` `;`
/// tab), a quote or a line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', ';', '\t', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(format: ManifestFormat, entries: &[ManifestEntry<'_>]) -> String {
        let mut out = Vec::new();
        let mut writer = ManifestWriter::start(format, "exported", &mut out).unwrap();
        for entry in entries {
            writer.entry(entry, &mut out).unwrap();
        }
        writer.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const ID: &str = "071cc716-8147-4397-a5ba-b2105951cc0b";

    fn entry(upn: &str) -> ManifestEntry<'_> {
        ManifestEntry {
            user_principal_name: Some(upn),
            id: ID,
            preferred_method: Some(PreferredMethod::VoiceMobile),
            system_preferred: Some(false),
            per_user_mfa_state: None,
            coverage: None,
        }
    }

    #[test]
    fn names_a_user_by_upn_only_when_it_reads_back_safely() {
        let guest = entry("adele_fabrikam.com#EXT#@contoso.onmicrosoft.com");
        assert_eq!(
            guest.user(ManifestFormat::Csv),
            guest.user_principal_name.unwrap()
        );
        let formula = entry("-2+3@contoso.com");
        assert_eq!(formula.user(ManifestFormat::Yaml), "-2+3@contoso.com");
        assert_eq!(formula.user(ManifestFormat::Csv), ID);
        assert_eq!(entry("not a upn\u{202e}").user(ManifestFormat::Yaml), ID);
        let unnamed = ManifestEntry {
            user_principal_name: None,
            ..guest
        };
        assert_eq!(unnamed.user(ManifestFormat::Yaml), ID);
    }

    #[test]
    fn escapes_what_could_bend_a_scalar() {
        assert_eq!(yaml_quoted("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            yaml_quoted("é\n\u{202e}😀"),
            r#""\u00E9\u000A\u202E\U0001F600""#
        );
        assert_eq!(csv_cell("a,b\"c"), "\"a,b\"\"c\"");
        assert_eq!(csv_cell("plain@contoso.com"), "plain@contoso.com");
    }

    #[test]
    fn written_manifests_read_back_as_the_same_desired_state() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [
            entry("megan@contoso.com"),
            ManifestEntry {
                user_principal_name: Some("$o'brien@contoso.com"),
                id: "a5a5a5a5-8147-4397-a5ba-b2105951cc0b",
                preferred_method: None,
                system_preferred: None,
                per_user_mfa_state: Some(PerUserMfaState::Enforced),
                // A note is never read back, whatever it holds.
                coverage: Some("=not covered: \"x\", y; z\n# perUserMfaState: disabled"),
            },
        ];
        for (name, format) in [
            ("m.yaml", ManifestFormat::Yaml),
            ("m.csv", ManifestFormat::Csv),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, written(format, &entries)).unwrap();
            let manifest = crate::manifest::load(&path).unwrap();
            let read: Vec<_> = manifest
                .users
                .iter()
                .map(|u| {
                    (
                        u.user.to_string(),
                        u.preferred_method.map(|m| m.first()),
                        u.system_preferred,
                        u.per_user_mfa_state,
                    )
                })
                .collect();
            assert_eq!(
                read,
                vec![
                    (
                        "megan@contoso.com".to_owned(),
                        Some(PreferredMethod::VoiceMobile),
                        Some(false),
                        None
                    ),
                    (
                        "$o'brien@contoso.com".to_owned(),
                        None,
                        None,
                        Some(PerUserMfaState::Enforced)
                    ),
                ],
                "{name}"
            );
        }
        let empty = dir.path().join("empty.yaml");
        std::fs::write(&empty, written(ManifestFormat::Yaml, &[])).unwrap();
        assert!(crate::manifest::load(&empty).unwrap().users.is_empty());
    }
}
