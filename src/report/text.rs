//! The Terraform-like text plan and the apply summary.

use std::fmt::Write as _;

use serde_json::Value;

use crate::plan::{Plan, Status, Summary, UserError, UserPlan};

/// The plan as people read it: one block per user not in sync, then the `Plan:` line.
pub fn render_plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.users.is_empty() {
        let _ = writeln!(
            out,
            "No changes. Every user in the manifest matches the desired state."
        );
    } else {
        if plan.summary.writes > 0 {
            let _ = writeln!(out, "mfactl will make these changes in {}:", plan.graph);
        } else {
            let _ = writeln!(
                out,
                "No changes to make in {}, but these users need attention:",
                plan.graph
            );
        }
        let _ = writeln!(out);
        for user in &plan.users {
            render_user(&mut out, user);
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "{}", plan_line(&plan.summary));
    out
}

/// The report after apply: failures first in detail, then the `Apply:` line.
pub fn render_apply_text(plan: &Plan) -> String {
    let mut out = String::new();
    let failed: Vec<&UserPlan> = plan
        .users
        .iter()
        .filter(|u| matches!(u.status, Status::Failed | Status::Drifted))
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "Not converged:");
        for user in failed {
            render_user(&mut out, user);
            // Every failed write, not only the first error kept on the user.
            for write in &user.writes {
                if let Some(result) = write.result.as_ref().filter(|r| !r.ok)
                    && user.error.as_ref().and_then(|e| e.endpoint) != Some(write.endpoint)
                {
                    let _ = writeln!(
                        out,
                        "      {}: {}{}{}",
                        write.endpoint,
                        result
                            .status
                            .map_or_else(|| "no answer ".to_owned(), |s| format!("HTTP {s} ")),
                        result.code.as_deref().unwrap_or(""),
                        request_id_suffix(result.request_id.as_deref()),
                    );
                }
            }
        }
        let _ = writeln!(out);
    }
    let s = &plan.summary;
    let applied = s.applied.unwrap_or(0);
    let converged = plan
        .users
        .iter()
        .filter(|u| u.status == Status::Applied)
        .count();
    let drifted = if s.drifted > 0 {
        format!(", {} changed since the plan", s.drifted)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "Apply: {} changed ({applied} of {} writes applied), {} in sync, {} blocked, {} not found, {} failed{drifted}.",
        users(converged as u64),
        s.writes,
        s.in_sync,
        s.blocked,
        s.not_found,
        s.failed,
    );
    out
}

fn render_user(out: &mut String, user: &UserPlan) {
    let (sign, label) = match user.status {
        Status::Change => ("~", ""),
        Status::Applied => ("~", " (applied)"),
        Status::Blocked => ("!", " (blocked)"),
        Status::NotFound => ("?", " (not found)"),
        Status::Failed => ("x", " (failed)"),
        Status::Drifted => ("x", " (changed since the plan: not written)"),
        Status::InSync => (" ", ""),
    };
    let _ = writeln!(out, "  {sign} {}{label}", user.user);
    for field in &user.fields {
        let _ = writeln!(
            out,
            "      {}: {} -> {}",
            field.field,
            show(&field.before),
            show(&field.after)
        );
    }
    if let Some(reason) = &user.reason {
        let _ = writeln!(out, "      blocked: {reason}");
    }
    for note in &user.notes {
        let _ = writeln!(out, "      note: {note}");
    }
    if let Some(error) = &user.error {
        let _ = writeln!(out, "      {}", describe_error(error));
    }
}

fn describe_error(error: &UserError) -> String {
    let status = error
        .status
        .map_or_else(String::new, |s| format!("HTTP {s} "));
    let endpoint = error
        .endpoint
        .map_or_else(String::new, |e| format!("{e}: "));
    format!(
        "{endpoint}{status}{}: {}{}",
        error.code,
        error.message,
        request_id_suffix(error.request_id.as_deref())
    )
}

fn request_id_suffix(request_id: Option<&str>) -> String {
    request_id.map_or_else(String::new, |id| format!(" (request-id {id})"))
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

fn users(n: u64) -> String {
    if n == 1 {
        "1 user".to_owned()
    } else {
        format!("{n} users")
    }
}

/// `Plan: 2 users to change (3 writes), 400 in sync, 1 blocked, 1 not found, 0 failed.`
pub fn plan_line(s: &Summary) -> String {
    format!(
        "Plan: {} to change ({} {}), {} in sync, {} blocked, {} not found, {} failed.",
        users(s.to_change),
        s.writes,
        if s.writes == 1 { "write" } else { "writes" },
        s.in_sync,
        s.blocked,
        s.not_found,
        s.failed
    )
}
