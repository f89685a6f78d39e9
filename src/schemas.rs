//! JSON Schemas for the files people write and read: the manifest, the emulator's tenant file,
//! the plan document and `mfactl show`'s document. Generated from the Rust types (schemars) so they cannot drift; the
//! committed copies under `schemas/` are checked against these by a test.

use schemars::{JsonSchema, schema_for};
use serde::Deserialize;

use crate::model::{PerUserMfaState, PreferredMethod};

/// The manifest as written (design.md): `version`, optional `defaults`, `users`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "mfactl manifest",
    description = "Desired MFA settings per user (mfactl)."
)]
pub struct ManifestDocument {
    /// Always 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Values for every user entry that does not set the field.
    #[serde(default)]
    pub defaults: Option<ManifestFields>,
    pub users: Vec<ManifestUser>,
}

/// The managed fields; a field left out is not managed (never touched).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManifestFields {
    /// userPreferredMethodForSecondaryAuthentication (matched case-insensitively).
    pub preferred_method: Option<PreferredMethod>,
    /// isSystemPreferredAuthenticationMethodEnabled.
    pub system_preferred: Option<bool>,
    /// perUserMfaState (matched case-insensitively); `enabled` is met by `enforced`.
    pub per_user_mfa_state: Option<PerUserMfaState>,
}

/// One user entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManifestUser {
    /// userPrincipalName or object id (GUID).
    #[schemars(length(min = 1))]
    pub user: String,
    #[serde(flatten)]
    pub fields: ManifestFields,
}

/// Every schema, by file name under `schemas/`.
pub fn all() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "manifest.schema.json",
            schema_for!(ManifestDocument).to_value(),
        ),
        (
            "tenant.schema.json",
            schema_for!(crate::emulator::Tenant).to_value(),
        ),
        (
            "plan.schema.json",
            schema_for!(crate::plan::Plan).to_value(),
        ),
        (
            "show.schema.json",
            schema_for!(crate::engine::show::ShowDocument).to_value(),
        ),
    ]
}
