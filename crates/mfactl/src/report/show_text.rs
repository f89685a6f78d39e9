//! `mfactl show` as text: which tenant, its system-preferred MFA policy, then a block per user
//! (the three managed values, what Graph reports, the tenant policy's verdict, whether MFA would
//! stay required without per-user MFA, the registered methods, the six preferred-method values)
//! and a `Show:` line. It only formats: every string
//! in the view was made printable when the view was built.

use std::io;

use super::text::tenant_line_for;
use crate::engine::show::{
    ListChoice, PolicyStatus, ShowDocument, ShowSummary, Target, TenantPolicy, UserView, ViewStatus,
};

/// The width of the key column in a user's block.
const KEY: usize = 22;
/// The width of the method column in the lists of methods and choices (the longest name,
/// `windowsHelloForBusiness`, and a space).
const METHOD: usize = 24;

/// The whole text, written as it goes.
pub fn render_show_text(document: &ShowDocument, out: &mut impl io::Write) -> io::Result<()> {
    writeln!(
        out,
        "{}",
        tenant_line_for(
            &document.graph,
            document.tenant_id.as_deref(),
            document.tenant_domain.as_deref()
        )
    )?;
    writeln!(
        out,
        "System-preferred MFA (tenant policy): {}",
        describe_policy(&document.tenant_policy)
    )?;
    for user in &document.users {
        writeln!(out)?;
        render_user(out, user)?;
    }
    writeln!(out)?;
    writeln!(out, "{}", show_line(&document.summary))
}

/// `enabled for all users; excludes group 5d1b…`.
fn describe_policy(policy: &TenantPolicy) -> String {
    match policy.status {
        PolicyStatus::Unreadable => match &policy.error {
            Some(error) => format!("cannot read the tenant policy ({error})"),
            None => "cannot read the tenant policy".to_owned(),
        },
        PolicyStatus::NotSet => {
            "not set (the policy has no systemCredentialPreferences)".to_owned()
        }
        PolicyStatus::Read => {
            let state = policy.state.as_deref().unwrap_or("(no state)");
            let mut out = match state {
                // Entra documents Microsoft managed as enabled (crate::plan::policy).
                "default" => {
                    "Microsoft managed (state default, which Entra documents as enabled)".to_owned()
                }
                other => other.to_owned(),
            };
            if !policy.include_targets.is_empty() {
                out.push_str(" for ");
                out.push_str(&targets(&policy.include_targets));
            }
            if !policy.exclude_targets.is_empty() {
                out.push_str("; excludes ");
                out.push_str(&targets(&policy.exclude_targets));
            }
            out
        }
    }
}

/// `all users, group 5d1b…, user 071c…`.
fn targets(targets: &[Target]) -> String {
    let names: Vec<String> = targets
        .iter()
        .map(|target| {
            if target.id.eq_ignore_ascii_case("all_users") {
                "all users".to_owned()
            } else if target
                .target_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("user"))
            {
                format!("user {}", target.id)
            } else {
                format!("group {}", target.id)
            }
        })
        .collect();
    names.join(", ")
}

fn render_user(out: &mut impl io::Write, user: &UserView) -> io::Result<()> {
    match user.status {
        ViewStatus::Found => writeln!(out, "{}", user.user)?,
        ViewStatus::NotFound => writeln!(out, "{} (not found)", user.user)?,
        ViewStatus::Failed => writeln!(out, "{} (could not be read)", user.user)?,
    }
    if let Some(error) = &user.error {
        writeln!(out, "  {error}")?;
    }
    if user.status != ViewStatus::Found {
        return Ok(());
    }
    let row = |out: &mut dyn io::Write, key: &str, value: &str| -> io::Result<()> {
        writeln!(out, "  {key:<KEY$} {value}")
    };
    let given = |value: Option<&str>| value.unwrap_or("(not returned)").to_owned();
    row(out, "object id", &given(user.id.as_deref()))?;
    row(
        out,
        "userPrincipalName",
        &given(user.user_principal_name.as_deref()),
    )?;
    if let Some(name) = &user.display_name {
        row(out, "displayName", name)?;
    }
    row(
        out,
        "preferredMethod",
        user.preferred_method.as_deref().unwrap_or("none"),
    )?;
    row(
        out,
        "systemPreferred",
        &user
            .system_preferred
            .map_or_else(|| "(not returned)".to_owned(), |b| b.to_string()),
    )?;
    row(
        out,
        "perUserMfaState",
        &given(user.per_user_mfa_state.as_deref()),
    )?;
    row(
        out,
        "systemPreferredMethod",
        &match &user.system_preferred_method {
            Some(method) => format!("{method} (as Graph reports it; read-only)"),
            None => "none reported".to_owned(),
        },
    )?;
    if let Some(coverage) = &user.policy_coverage {
        let verdict = match coverage.covered {
            Some(true) => "covers the user",
            Some(false) => "does not cover the user",
            None => "undecided",
        };
        row(
            out,
            "tenant policy",
            &format!("{verdict}: {}", coverage.reason),
        )?;
    }
    if let Some(coverage) = &user.mfa_coverage {
        // Whether MFA would stay required with per-user MFA disabled.
        row(out, "MFA coverage", &coverage.summary())?;
    }
    render_methods(out, user)?;
    for note in notes(user) {
        writeln!(out, "  note: {note}")?;
    }
    Ok(())
}

/// A user's registered methods and which preferred methods they make usable; when the methods
/// could not be read (the China cloud), why.
fn render_methods(out: &mut impl io::Write, user: &UserView) -> io::Result<()> {
    let row = |out: &mut dyn io::Write, key: &str, value: &str| -> io::Result<()> {
        writeln!(out, "  {key:<KEY$} {value}")
    };
    if let Some(why) = &user.methods_unread {
        row(out, "registered methods", why)?;
        row(
            out,
            "preferred-method choices",
            "unknown: registration could not be checked",
        )?;
    } else if user.methods.is_empty() {
        row(out, "registered methods", "none besides the password")?;
    } else {
        writeln!(out, "  registered methods")?;
        for method in &user.methods {
            let kind = method.kind.map_or_else(
                || {
                    method
                        .odata_type
                        .trim_start_matches("#microsoft.graph.")
                        .to_owned()
                },
                |kind| kind.as_str().to_owned(),
            );
            match &method.label {
                Some(label) => writeln!(out, "    {kind:<METHOD$} {label}")?,
                None => writeln!(out, "    {kind}")?,
            }
        }
    }
    if user.methods_unread.is_none() {
        writeln!(out, "  preferred-method choices")?;
    }
    for choice in &user.preferred_method_choices {
        let mut said = match &choice.reason {
            None => "usable".to_owned(),
            Some(reason) => format!("not usable: {reason}"),
        };
        if choice.current {
            said.push_str(" (current)");
        }
        writeln!(out, "    {:<METHOD$} {said}", choice.method.as_str())?;
    }
    if let Some(list) = &user.preferred_method_list {
        writeln!(out, "  {}", list_line(list))?;
    }
    Ok(())
}

/// `preferred-method list [push, oath, sms] gives sms (the first registered; current)`.
fn list_line(list: &ListChoice) -> String {
    let methods: Vec<&str> = list.methods.iter().map(|m| m.as_str()).collect();
    let methods = methods.join(", ");
    match list.chosen {
        Some(method) => format!(
            "preferred-method list [{methods}] gives {method} (the first of them registered{})",
            if list.current {
                "; current: plan changes nothing"
            } else {
                ""
            }
        ),
        None => format!(
            "preferred-method list [{methods}] gives nothing: none of them is registered, so \
             plan blocks the user"
        ),
    }
}

/// What an admin should not miss: a preferred method that does nothing.
fn notes(user: &UserView) -> Vec<String> {
    let mut notes = Vec::new();
    let Some(preferred) = &user.preferred_method else {
        return notes;
    };
    if let Some(choice) = user
        .preferred_method_choices
        .iter()
        .find(|c| c.current && !c.usable)
    {
        notes.push(format!(
            "the preferred method {preferred} is not usable: {}",
            choice.reason.as_deref().unwrap_or("not registered")
        ));
    }
    let by_user = user.system_preferred == Some(true);
    let by_policy = user.policy_coverage.as_ref().and_then(|c| c.covered) == Some(true);
    if by_user || by_policy {
        let why = match (by_user, by_policy) {
            (true, true) => "on for the user and in the tenant policy",
            (true, false) => "on for the user",
            _ => "on in the tenant policy",
        };
        notes.push(format!(
            "system-preferred MFA is {why}: the preferred method {preferred} is ignored at \
             sign-in (except by the NPS extension and the AD FS adapter)"
        ));
    }
    notes
}

/// `Show: 3 users, 2 shown, 1 not found, 0 failed.`
fn show_line(summary: &ShowSummary) -> String {
    format!(
        "Show: {} {}, {} shown, {} not found, {} failed.",
        summary.users,
        if summary.users == 1 { "user" } else { "users" },
        summary.found,
        summary.not_found,
        summary.failed
    )
}
