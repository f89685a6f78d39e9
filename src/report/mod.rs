//! Renderers: the plan or apply report as text (for people) or JSON (for machines).
//! They only format; they never decide what is in a plan.

mod text;

pub use text::{render_apply_text, render_plan_text};

use crate::plan::Plan;

/// The plan/report document as pretty JSON (design.md's format), written as it is serialised:
/// no copy of the whole document is built.
pub fn render_json(plan: &Plan, out: &mut impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, plan)?;
    out.write_all(b"\n")
}
