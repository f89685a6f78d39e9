//! The CSV report: one row per user and field, for a spreadsheet, then one per tenant policy
//! property that differs (`user` `authenticationMethodsPolicy`). A table has no room for a
//! header: when and from which manifest are in the JSON report. The per-user MFA row of a user
//! whose per-user MFA the plan disables carries the Conditional Access verdict.
//!
//! A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return
//! before one) as a formula, and UPNs, values and Graph's error messages are not ours to trust:
//! `=HYPERLINK(...)@contoso.com` is a valid UPN. Every such cell is neutralised with a leading
//! `'` (OWASP's advice for CSV injection); quoting is the `csv` crate's.

use std::borrow::Cow;
use std::io;

use super::digest::{show_json, show_value, status_name};
use crate::model::Endpoint;
use crate::plan::policy::{PolicyChange, PolicyPlan};
use crate::plan::{FieldChange, Plan, UserError, UserPlan, WriteResult};

const HEADER: [&str; 15] = [
    "user",
    "id",
    "status",
    "field",
    "before",
    "after",
    "blocked",
    "endpoint",
    "result_ok",
    "result_status",
    "request_id",
    "error_code",
    "error_message",
    "reason",
    "mfa_coverage",
];

/// Writes the report: a header, then one row per user and field (a user with no field, not
/// found or unreadable, has one row with the field's columns empty). Streamed: nothing but the
/// current row is held.
pub fn render_csv(plan: &Plan, out: &mut impl io::Write) -> io::Result<()> {
    let mut writer = ::csv::Writer::from_writer(out);
    writer.write_record(HEADER)?;
    for user in &plan.users {
        if user.fields.is_empty() {
            write_row(&mut writer, &row(user, None))?;
        }
        for field in &user.fields {
            write_row(&mut writer, &row(user, Some(field)))?;
        }
    }
    if let Some(policy) = &plan.policy {
        for change in &policy.changes {
            write_row(&mut writer, &policy_row(policy, change))?;
        }
    }
    writer.flush()
}

/// The tenant policy's rows, after the users': one per property that differs (or was
/// written), `user` naming the policy and `field` the property (`part.property`).
fn policy_row(policy: &PolicyPlan, change: &PolicyChange) -> [String; 15] {
    let result = policy.result.as_ref();
    let error = policy.error.as_ref();
    let text = |value: Option<String>| value.unwrap_or_default();
    [
        POLICY.to_owned(),
        String::new(),
        status_name(policy.status).to_owned(),
        format!("{}.{}", change.part, change.property),
        show_json(&change.before),
        show_json(&change.after),
        String::new(),
        format!("policies/{POLICY}"),
        text(result.map(|r| r.ok.to_string())),
        text(result.and_then(|r| r.status).map(|s| s.to_string())),
        text(request_id(result, error)),
        text(
            result
                .filter(|r| !r.ok)
                .and_then(|r| r.code.as_deref().map(str::to_owned))
                .or_else(|| error.map(|e| e.code.clone())),
        ),
        text(error.map(|e| e.message.clone())),
        String::new(),
        // No Conditional Access verdict: it is a user's.
        String::new(),
    ]
}

/// The `user` of the policy's rows.
const POLICY: &str = "authenticationMethodsPolicy";

/// Writes one row, each cell [`neutralise`]d.
fn write_row(writer: &mut ::csv::Writer<impl io::Write>, cells: &[String]) -> io::Result<()> {
    for cell in cells {
        writer.write_field(neutralise(cell).as_bytes())?;
    }
    // An empty record after the fields ends the row.
    writer.write_record(std::iter::empty::<&[u8]>())?;
    Ok(())
}

/// The cells of one row, raw.
fn row(user: &UserPlan, field: Option<&FieldChange>) -> [String; 15] {
    let endpoint = field.map(|field| field.field.endpoint());
    // A blocked field is in no write: the result of its endpoint's write is another field's.
    let result = field
        .filter(|field| !field.blocked)
        .and_then(|field| user.write(field.field.endpoint()))
        .and_then(|write| write.result());
    let error = user
        .error
        .as_deref()
        .filter(|error| applies(error, endpoint));
    let failed = result.as_ref().filter(|result| !result.ok);
    let text = |value: Option<String>| value.unwrap_or_default();
    [
        user.user.to_string(),
        text(user.id.map(|id| id.hyphenated().to_string())),
        status_name(user.status).to_owned(),
        text(field.map(|f| f.field.to_string())),
        text(field.map(|f| show_value(&f.before))),
        text(field.map(|f| show_value(&f.after))),
        text(field.map(|f| f.blocked.to_string())),
        text(endpoint.map(|e| e.to_string())),
        text(result.as_ref().map(|r| r.ok.to_string())),
        text(
            result
                .as_ref()
                .and_then(|r| r.status)
                .map(|s| s.to_string()),
        ),
        text(request_id(result.as_ref(), error)),
        text(
            failed
                .and_then(|r| r.code.as_deref().map(str::to_owned))
                .or_else(|| {
                    let not_kept = result.as_ref().is_some_and(|r| r.not_kept);
                    not_kept.then(|| crate::plan::NOT_KEPT.to_owned())
                })
                .or_else(|| error.map(|e| e.code.clone())),
        ),
        text(error.map(|e| e.message.clone())),
        text(
            user.reason()
                .filter(|_| field.is_none_or(|f| f.blocked))
                .map(str::to_owned),
        ),
        // On the per-user MFA row: the Conditional Access verdict for disabling it.
        text(
            user.coverage
                .as_ref()
                .filter(|_| field.is_some_and(|f| f.field == crate::model::Field::PerUserMfaState))
                .map(|coverage| coverage.summary()),
        ),
    ]
}

/// Whether the user's error concerns a row of `endpoint` (an error without an endpoint, such as
/// not found, concerns every row).
fn applies(error: &UserError, endpoint: Option<Endpoint>) -> bool {
    error.endpoint.is_none() || endpoint.is_none() || error.endpoint == endpoint
}

fn request_id(result: Option<&WriteResult>, error: Option<&UserError>) -> Option<String> {
    result
        .and_then(|r| r.request_id.as_ref().map(|id| id.to_string()))
        .or_else(|| error.and_then(|e| e.request_id.clone()))
}

/// `cell`, with `'` before it when a spreadsheet would read it as a formula.
fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::super::digest::fixtures;
    use super::*;

    fn rows(plan: &Plan) -> Vec<::csv::StringRecord> {
        let mut out = Vec::new();
        render_csv(plan, &mut out).unwrap();
        ::csv::Reader::from_reader(out.as_slice())
            .records()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for text in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"] {
            assert_eq!(neutralise(text), format!("'{text}"));
        }
        assert_eq!(neutralise("megan@contoso.com"), "megan@contoso.com");
        assert_eq!(neutralise(""), "");
    }

    #[test]
    fn one_row_per_user_and_field_and_one_for_a_user_without_fields() {
        let plan = fixtures::plan();
        let rows = rows(&plan);
        let fields: usize = plan.users.iter().map(|u| u.fields.len().max(1)).sum();
        assert_eq!(rows.len(), fields);
        let ghost = rows.iter().find(|r| &r[0] == "ghost@contoso.com").unwrap();
        assert_eq!(
            (&ghost[2], &ghost[3], &ghost[11]),
            ("not_found", "", "Request_ResourceNotFound")
        );
        let blocked = rows.iter().find(|r| &r[0] == "d@contoso.com").unwrap();
        assert_eq!(&blocked[6], "true");
        assert_eq!(&blocked[13], "push is not registered for d@contoso.com");
    }

    #[test]
    fn hostile_names_and_answers_cannot_become_formulas() {
        let rows = rows(&fixtures::applied());
        let hostile = rows.iter().find(|r| r[0].contains("<script>")).unwrap();
        assert_eq!(&hostile[0], &format!("'{}", fixtures::HOSTILE));
        assert_eq!((&hostile[10], &hostile[11]), ("'=req-2", "'@badRequest"));
        let failed = rows.iter().find(|r| r[0].contains("failed@")).unwrap();
        assert_eq!(
            (&failed[0], &failed[10]),
            ("'-failed@contoso.com", "'+req-1")
        );
        let at = rows.iter().find(|r| r[0].contains("e@contoso")).unwrap();
        assert_eq!(&at[0], "'@e@contoso.com");
        for row in &rows {
            for cell in row {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{cell:?}"
                );
            }
        }
    }
}
