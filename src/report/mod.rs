//! Renderers: the plan or apply report, and `mfactl show`'s document, as text (for people) or
//! JSON (for machines); one file per document and format. They only format; they never decide
//! what is in a plan or a view.

mod show_json;
mod show_text;
mod text;

pub use show_json::render_show_json;
pub use show_text::render_show_text;
pub use text::{render_apply_text, render_plan_text, verify_line};

use crate::plan::Plan;

/// The plan/report document as pretty JSON (design.md's format), written as it is serialised:
/// no copy of the whole document is built.
pub fn render_json(plan: &Plan, out: &mut impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, plan)?;
    out.write_all(b"\n")
}
