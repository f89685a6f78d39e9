//! Renderers: the plan or apply report as text (for people) or JSON (for machines).
//! They only format; they never decide what is in a plan.

mod text;

pub use text::{render_apply_text, render_plan_text};

use crate::plan::Plan;

/// The plan/report document as pretty JSON (design.md's format).
pub fn render_json(plan: &Plan) -> String {
    let mut out = serde_json::to_string_pretty(plan).expect("plans serialise");
    out.push('\n');
    out
}
