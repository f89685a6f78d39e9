//! `GET /beta/roleManagement/directory/roleAssignments`: who holds which directory role, from
//! the tenant file's `roleAssignments:`, for the Conditional Access policies that include or
//! exclude roles.
//!
//! Served as the Graph reference's "List unifiedRoleAssignments" shows (beta, directory
//! provider): each assignment's `id`, `principalId`, `roleDefinitionId`, `directoryScopeId` and
//! `resourceScope` (the same value), and with `$expand=principal` the principal with its
//! `@odata.type`. Only what mfactl sends is understood: `$filter` with one `roleDefinitionId eq
//! '...'` or `principalId eq '...'` (ids compare without regard to case), `$expand=principal`,
//! and `$top`/`$skiptoken` paging like the other collections (Graph documents neither its page
//! size nor its paging here: the emulator's page of 100 has no Microsoft source). An assignment
//! to a principal the file does not hold is left out (Graph removes the assignments of deleted
//! principals). The assignment ids are the emulator's own stable choice: Graph's are opaque.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::context::{Answer, CallContext};
use super::listing::{self, Token};
use super::state::TenantState;
use super::tenant::RoleAssignment;
use mfactl_core::text::printable_capped;

/// Assignments a page holds without `$top` (no Microsoft source).
const PAGE: usize = 100;

/// Which assignments `$filter` keeps.
enum Filter {
    All,
    Role(String),
    Principal(String),
}

/// `GET /roleManagement/directory/roleAssignments` with the request's query string.
pub(super) fn assignments(
    state: &TenantState,
    query: Option<&str>,
    context: &CallContext,
) -> Answer {
    let window = match listing::parse_window(
        query.unwrap_or_default(),
        PAGE,
        &["filter", "expand"],
        "role assignments",
    ) {
        Ok(window) => window,
        Err(answer) => return answer,
    };
    let mut filter = Filter::All;
    let mut expand = false;
    for (option, value) in &window.options {
        match option.as_str() {
            "filter" => match parse_filter(value) {
                Ok(parsed) => filter = parsed,
                Err(answer) => return answer,
            },
            _ if value.trim().eq_ignore_ascii_case("principal") => expand = true,
            _ => {
                return Answer::error(
                    400,
                    "BadRequest",
                    format!(
                        "Could not find a navigation property named {} on \
                         'microsoft.graph.unifiedRoleAssignment' (the emulator expands principal).",
                        printable_capped(&format!("'{value}'"), 80)
                    ),
                );
            }
        }
    }
    let items = state
        .tenant()
        .role_assignments
        .iter()
        .enumerate()
        .skip(window.offset)
        .filter(|(_, assignment)| match &filter {
            Filter::All => true,
            Filter::Role(id) => assignment.role_definition_id.eq_ignore_ascii_case(id),
            Filter::Principal(id) => assignment.principal_id.eq_ignore_ascii_case(id),
        })
        .filter_map(|(position, assignment)| {
            let principal = principal(state, &assignment.principal_id)?;
            Some((position, render(assignment, expand.then_some(principal))))
        });
    listing::values_page(
        items,
        window.top,
        &window.carried,
        "roleManagement/directory/roleAssignments",
        context,
    )
}

/// `roleDefinitionId eq '<id>'` or `principalId eq '<id>'`.
fn parse_filter(filter: &str) -> Result<Filter, Answer> {
    let tokens = listing::tokens(filter)?;
    match tokens.as_slice() {
        [Token::Word(property), Token::Word(op), Token::Text(id)] if op == "eq" => {
            if property.eq_ignore_ascii_case("roleDefinitionId") {
                return Ok(Filter::Role(id.clone()));
            }
            if property.eq_ignore_ascii_case("principalId") {
                return Ok(Filter::Principal(id.clone()));
            }
        }
        _ => {}
    }
    Err(Answer::error(
        400,
        "Request_UnsupportedQuery",
        format!(
            "Unsupported query: the emulator's roleAssignments filter one roleDefinitionId eq \
             '...' or principalId eq '...' (got {}).",
            printable_capped(&format!("'{filter}'"), 80)
        ),
    ))
}

/// The principal as `$expand=principal` answers it, when the file holds it.
fn principal(state: &TenantState, id: &str) -> Option<Value> {
    if let Ok(index) = state.find(id) {
        let user = state.user(index);
        return Some(json!({
            "@odata.type": "#microsoft.graph.user",
            "id": user.id,
            "userPrincipalName": user.user_principal_name,
            "displayName": user.display_name,
            "userType": user.user_type.graph_name(),
        }));
    }
    let group = state
        .tenant()
        .groups
        .iter()
        .find(|g| g.id.eq_ignore_ascii_case(id))?;
    Some(json!({
        "@odata.type": "#microsoft.graph.group",
        "id": group.id,
        "displayName": group.display_name,
    }))
}

fn render(assignment: &RoleAssignment, principal: Option<Value>) -> Value {
    let scope = assignment.directory_scope_id.as_deref().unwrap_or("/");
    let id = URL_SAFE_NO_PAD.encode(
        format!(
            "{}/{}/{scope}",
            assignment.role_definition_id.to_ascii_lowercase(),
            assignment.principal_id.to_ascii_lowercase()
        )
        .as_bytes(),
    );
    let mut object = json!({
        "id": id,
        "principalId": assignment.principal_id,
        "roleDefinitionId": assignment.role_definition_id,
        "directoryScopeId": scope,
        "resourceScope": scope,
    });
    if let Some(principal) = principal {
        object["principal"] = principal;
    }
    object
}
