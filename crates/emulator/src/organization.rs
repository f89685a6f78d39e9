//! `GET /beta/organization`: the tenant itself, so that mfactl can name the tenant it talks to
//! (its id and primary domain) next to the Graph root. Read-only; built from the tenant file's
//! `tenantId` and `domain`, which is both the initial and the default verified domain.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Tenant;
use super::context::Answer;

/// `GET /organization`.
pub(super) fn get(tenant: &Tenant) -> Answer {
    Answer::json(StatusCode::OK, organization(tenant))
}

/// The collection Graph answers: one organization.
pub fn organization(tenant: &Tenant) -> Value {
    let display_name = tenant
        .domain
        .split('.')
        .next()
        .filter(|name| !name.is_empty())
        .unwrap_or("Contoso");
    json!({
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#organization",
        "value": [{
            "id": tenant.tenant_id,
            "displayName": display_name,
            "verifiedDomains": [{
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": true,
                "isInitial": true,
                "name": tenant.domain,
                "type": "Managed",
            }],
        }],
    })
}
