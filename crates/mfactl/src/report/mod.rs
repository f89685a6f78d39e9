//! Renderers: the plan or apply report, and `mfactl show`'s document, as text (for people) or
//! JSON (for machines); and report files (`--report FILE`: JSON, CSV, markdown, HTML, chosen by
//! the file's extension). One file per document and format. They only format; they never decide
//! what is in a plan or a view. What the summaries add up to is computed once, in [`digest`].

mod csv;
pub mod digest;
mod html;
mod markdown;
mod rollup;
mod show_json;
mod show_text;
mod text;

use std::path::Path;

pub use self::csv::render_csv;
pub use html::render_html;
pub use markdown::render_markdown;
pub use rollup::{render_rollup_html, render_rollup_markdown, render_rollup_text};
pub use show_json::render_show_json;
pub use show_text::render_show_text;
pub use text::{
    TextOptions, apply_line, plan_line, render_apply_text, render_plan_text, render_plan_text_with,
    verify_line,
};

use crate::plan::Plan;

/// The plan/report document as pretty JSON (design.md's format), written as it is serialised:
/// no copy of the whole document is built.
pub fn render_json(plan: &Plan, out: &mut impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, plan)?;
    out.write_all(b"\n")
}

/// A report file's format, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    /// The plan document, as `--format json` prints it.
    Json,
    /// One row per user and field, for spreadsheets.
    Csv,
    /// A summary for a CI job's step summary (`$GITHUB_STEP_SUMMARY`).
    Markdown,
    /// A self-contained page with charts, for people.
    Html,
}

/// `--report` named a file whose extension says no format mfactl writes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--report {path}: mfactl cannot tell the report's format from {extension}; name the file \
     .json, .csv, .md or .html"
)]
pub struct UnknownReportKind {
    /// The path as given, escaped for the terminal.
    pub path: String,
    /// `".txt"`, or `no extension`.
    pub extension: String,
}

impl ReportKind {
    /// Every format, with its extension.
    pub const ALL: [(ReportKind, &'static str); 4] = [
        (ReportKind::Json, "json"),
        (ReportKind::Csv, "csv"),
        (ReportKind::Markdown, "md"),
        (ReportKind::Html, "html"),
    ];

    /// The format `path`'s extension names (case-insensitively).
    pub fn from_path(path: &Path) -> Result<ReportKind, UnknownReportKind> {
        let extension = path.extension().map(|e| e.to_string_lossy());
        let known = extension.as_deref().and_then(|extension| {
            ReportKind::ALL
                .iter()
                .find(|(_, name)| extension.eq_ignore_ascii_case(name))
        });
        match known {
            Some((kind, _)) => Ok(*kind),
            None => Err(UnknownReportKind {
                path: crate::text::printable(&path.display().to_string()).into_owned(),
                extension: extension.map_or_else(
                    || "no extension".to_owned(),
                    |e| format!("\".{}\"", crate::text::printable(&e)),
                ),
            }),
        }
    }
}

/// Writes `plan` (a plan, or the report of a finished apply) as `kind`.
pub fn write_report(
    plan: &Plan,
    kind: ReportKind,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    match kind {
        ReportKind::Json => render_json(plan, out),
        ReportKind::Csv => render_csv(plan, out),
        ReportKind::Markdown => render_markdown(plan, out),
        ReportKind::Html => render_html(plan, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_chooses_the_format() {
        assert_eq!(
            ReportKind::from_path(Path::new("out/r.JSON")),
            Ok(ReportKind::Json)
        );
        assert_eq!(
            ReportKind::from_path(Path::new("r.csv")),
            Ok(ReportKind::Csv)
        );
        assert_eq!(
            ReportKind::from_path(Path::new("summary.md")),
            Ok(ReportKind::Markdown)
        );
        assert_eq!(
            ReportKind::from_path(Path::new("r.Html")),
            Ok(ReportKind::Html)
        );
    }

    #[test]
    fn an_unknown_extension_lists_the_four() {
        let error = ReportKind::from_path(Path::new("report.txt")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--report report.txt: mfactl cannot tell the report's format from \".txt\"; name \
             the file .json, .csv, .md or .html"
        );
        let error = ReportKind::from_path(Path::new("report")).unwrap_err();
        assert!(error.to_string().contains("from no extension"), "{error}");
    }
}
