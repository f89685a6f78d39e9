//! The emulator's live directory: the tenant plus indexes, and Graph's rules for reading and
//! changing it.
//!
//! It exists to keep Graph's semantics (what a PATCH accepts, the `enabled` → `enforced`
//! promotion, which method is "system preferred", what `/methods` lists, which groups a name
//! finds) in plain functions that tests can call without a socket; the authentication methods
//! policy's rules, being many, live in the child module [`policy`]. It must not know about HTTP beyond the status code and the
//! Graph error code each failure maps to; throttling, latency and faults happen before it is called.

pub mod conditional_access;
mod error;
pub mod policy;

use std::collections::HashMap;

use serde_json::{Map, Value, json};

pub use error::GraphError;

use super::tenant::{Group, Tenant, TenantUser};
use mfactl_core::model::{MethodKind, PerUserMfaState, PreferredMethod};

/// The tenant plus case-insensitive indexes by object id and by UPN.
#[derive(Clone, Debug)]
pub struct TenantState {
    tenant: Tenant,
    by_id: HashMap<String, usize>,
    by_upn: HashMap<String, usize>,
}

/// The read-only `systemPreferredAuthenticationMethod` Graph reports in signInPreferences: the
/// strongest registered method in Microsoft's documented order, in Graph's spelling for it, or
/// `None` when no registered method is a second factor.
///
/// The order is Microsoft's ("How does system-preferred MFA determine the most secure method?",
/// Entra docs, 2025): Temporary Access Pass, passkey (FIDO2), external methods, Authenticator
/// notifications, TOTP (hardware or software OATH), telephony (SMS, then voice),
/// certificate-based authentication. External methods and certificates are not in the tenant
/// file's vocabulary; Windows Hello, email and password are not second factors and never appear.
/// Within TOTP, hardware comes before software, and within telephony SMS over a mobile comes
/// before voice, as the older, itemised version of that list put them.
///
/// The property is undocumented, and so is its vocabulary, which is the legacy MFA one rather
/// than `userPreferredMethodForSecondaryAuthentication`'s. The spellings are those seen in real
/// responses and in tools that read them (see docs/emulator.md): `Sms` (a published
/// response), `Fido2`, `HardwareOTP`, `SoftwareOTP`, `PhoneAppNotification`; `Voice` for a
/// voice-only phone and `TemporaryAccessPass` are the spellings such tools expect, not seen in a
/// response.
fn system_preferred(methods: &[MethodKind]) -> Option<&'static str> {
    use MethodKind as M;
    const ORDER: &[(&[MethodKind], &str)] = &[
        (&[M::TemporaryAccessPass], "TemporaryAccessPass"),
        (&[M::Fido2], "Fido2"),
        (&[M::MicrosoftAuthenticator], "PhoneAppNotification"),
        (&[M::HardwareOath], "HardwareOTP"),
        (&[M::SoftwareOath], "SoftwareOTP"),
        (&[M::MobilePhone], "Sms"),
        (&[M::AlternateMobilePhone, M::OfficePhone], "Voice"),
    ];
    ORDER
        .iter()
        .find(|(kinds, _)| methods.iter().any(|m| kinds.contains(m)))
        .map(|(_, name)| *name)
}

/// Well-known method ids Graph uses for single-instance methods (the same in every tenant).
fn well_known_id(kind: MethodKind) -> Option<&'static str> {
    match kind {
        MethodKind::Password => Some("28c10230-6103-485e-b985-444c60001490"),
        MethodKind::MobilePhone => Some("3179e48a-750b-4051-897c-87b9720928f7"),
        MethodKind::AlternateMobilePhone => Some("b6332ec1-7057-4abe-9331-3d72feddfe41"),
        MethodKind::OfficePhone => Some("e37fc753-ff3b-4958-9484-eaa9425c82bc"),
        MethodKind::Email => Some("3ddfcfc8-9383-446f-83cc-3ab9be4be18f"),
        _ => None,
    }
}

/// 64-bit FNV-1a: a stable hash (unlike `std`'s, it is fixed forever) for derived ids.
fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325 ^ seed;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A stable GUID for the `index`-th method of `kind` registered by `user_id`.
fn method_id(user_id: &str, kind: MethodKind, index: usize) -> String {
    if let Some(id) = well_known_id(kind) {
        return id.to_owned();
    }
    let key = format!("{}/{}/{index}", user_id.to_ascii_lowercase(), kind.as_str());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&fnv1a(key.as_bytes(), 0).to_be_bytes());
    bytes[8..].copy_from_slice(&fnv1a(key.as_bytes(), 0x9e37_79b9_7f4a_7c15).to_be_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// A plausible, stable phone number for a user's phone of one kind.
fn phone_number(user_id: &str, kind: MethodKind) -> String {
    let hash = fnv1a(format!("{user_id}/{}", kind.as_str()).as_bytes(), 7);
    format!("+1 425555{:04}", hash % 10_000)
}

/// The Graph object for one registered method (graph-api.md §3), with a few realistic properties.
fn method_object(user: &TenantUser, kind: MethodKind, index: usize) -> Value {
    let (odata_type, phone_type) = kind.odata();
    let id = method_id(&user.id, kind, index);
    let mut object = json!({ "@odata.type": odata_type, "id": id });
    let extra = match kind {
        MethodKind::MobilePhone | MethodKind::AlternateMobilePhone | MethodKind::OfficePhone => {
            json!({
                "phoneNumber": phone_number(&user.id, kind),
                "phoneType": phone_type,
                "smsSignInState": "notSupported",
            })
        }
        MethodKind::MicrosoftAuthenticator => json!({
            "displayName": "iPhone",
            "deviceTag": "SoftwareTokenActivated",
            "phoneAppVersion": "6.8.7",
            "clientAppName": "microsoftAuthenticator",
        }),
        MethodKind::SoftwareOath => json!({ "secretKey": null }),
        MethodKind::HardwareOath => json!({
            "displayName": "Token",
            "serialNumber": format!("{:08}", fnv1a(id.as_bytes(), 3) % 100_000_000),
            "manufacturer": "Contoso",
            "model": "OTP-C200",
        }),
        MethodKind::Fido2 => json!({
            "displayName": "YubiKey 5 NFC",
            "model": "YubiKey 5 NFC",
            "aaGuid": "fa2b99dc-9e39-4257-8f92-4a30d23c4118",
            "attestationLevel": "attested",
        }),
        MethodKind::WindowsHelloForBusiness => json!({
            "displayName": "DESKTOP-1234",
            "keyStrength": "normal",
        }),
        MethodKind::Email => json!({
            "emailAddress": format!("{}@example.com", user.id.get(..8).unwrap_or("user")),
        }),
        MethodKind::TemporaryAccessPass => json!({
            "lifetimeInMinutes": 60,
            "isUsableOnce": false,
            "isUsable": true,
            "methodUsabilityReason": "EnabledByPolicy",
        }),
        MethodKind::Password => json!({ "password": null }),
    };
    if let (Value::Object(object), Value::Object(extra)) = (&mut object, extra) {
        object.extend(extra);
    }
    object
}

impl TenantState {
    pub fn new(tenant: Tenant) -> TenantState {
        let mut by_id = HashMap::with_capacity(tenant.users.len());
        let mut by_upn = HashMap::with_capacity(tenant.users.len());
        for (index, user) in tenant.users.iter().enumerate() {
            by_id.insert(user.id.to_ascii_lowercase(), index);
            by_upn.insert(user.user_principal_name.to_lowercase(), index);
        }
        TenantState {
            tenant,
            by_id,
            by_upn,
        }
    }

    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Finds a user by object id or UPN, both case-insensitively; the key is already decoded.
    pub fn find(&self, key: &str) -> Result<usize, GraphError> {
        self.by_id
            .get(&key.to_ascii_lowercase())
            .or_else(|| self.by_upn.get(&key.to_lowercase()))
            .copied()
            .ok_or_else(|| GraphError::resource_not_found(key))
    }

    pub fn user(&self, index: usize) -> &TenantUser {
        &self.tenant.users[index]
    }

    /// Runs `write` on the user at `index`; for a user marked [`TenantUser::forgets_writes`]
    /// the write is checked and succeeds as usual, and its effect is then dropped.
    pub fn write_user(
        &mut self,
        index: usize,
        body: &Value,
        write: fn(&mut TenantState, usize, &Value) -> Result<(), GraphError>,
    ) -> Result<(), GraphError> {
        let kept = self
            .user(index)
            .forgets_writes
            .then(|| self.user(index).clone());
        write(self, index, body)?;
        if let Some(user) = kept {
            self.tenant.users[index] = user;
        }
        Ok(())
    }

    /// `GET /users/{u}` with the properties mfactl selects.
    pub fn user_object(&self, index: usize) -> Value {
        let user = self.user(index);
        json!({
            "id": user.id,
            "userPrincipalName": user.user_principal_name,
            "displayName": user.display_name,
            "userType": user.user_type.graph_name(),
            "accountEnabled": user.account_enabled,
        })
    }

    /// `GET /users/{u}/authentication/signInPreferences`.
    pub fn sign_in_preferences(&self, index: usize) -> Value {
        let user = self.user(index);
        let prefs = &user.sign_in_preferences;
        let system = if prefs.is_system_preferred_authentication_method_enabled {
            system_preferred(&user.methods)
        } else {
            None
        };
        json!({
            "isSystemPreferredAuthenticationMethodEnabled": prefs.is_system_preferred_authentication_method_enabled,
            "userPreferredMethodForSecondaryAuthentication":
                prefs.user_preferred_method_for_secondary_authentication.map(PreferredMethod::as_str),
            "systemPreferredAuthenticationMethod": system,
        })
    }

    /// `PATCH /users/{u}/authentication/signInPreferences`: validates the whole body first,
    /// then applies it, so a refused PATCH changes nothing.
    ///
    /// Enum values must be in Graph's exact spelling (Graph's OData enums are case-sensitive);
    /// a preferred method no registered method enables is refused with 400 `badRequest`
    /// (graph-api.md §3 leaves Graph's answer unconfirmed; the emulator chose the strict one).
    pub fn patch_sign_in_preferences(
        &mut self,
        index: usize,
        body: &Value,
    ) -> Result<(), GraphError> {
        let object = body_object(body)?;
        let user = self.user(index);
        let mut system_enabled = None;
        let mut preferred = None;
        for (key, value) in object {
            match key.as_str() {
                k if k.starts_with("@odata.") => {}
                "isSystemPreferredAuthenticationMethodEnabled" => match value {
                    Value::Bool(flag) => system_enabled = Some(*flag),
                    other => {
                        return Err(GraphError::bad_request(format!(
                            "Invalid value for property '{key}': expected a boolean, got {other}."
                        )));
                    }
                },
                "userPreferredMethodForSecondaryAuthentication" => match value {
                    Value::Null => preferred = Some(None),
                    Value::String(text) => {
                        let method = PreferredMethod::ALL
                            .iter()
                            .copied()
                            .find(|m| m.as_str() == text)
                            .ok_or_else(|| {
                                GraphError::bad_request(format!(
                                    "Invalid value '{text}' for property '{key}'. Expected one of: {}.",
                                    PreferredMethod::expected()
                                ))
                            })?;
                        if !user.methods.iter().any(|m| method.is_enabled_by(*m)) {
                            let usable = PreferredMethod::usable_with(&user.methods)
                                .iter()
                                .map(|m| m.as_str())
                                .collect::<Vec<_>>()
                                .join(", ");
                            return Err(GraphError::bad_request(format!(
                                "The preferred method '{method}' is not registered for user '{}' (usable: {}).",
                                user.user_principal_name,
                                if usable.is_empty() { "none" } else { &usable }
                            )));
                        }
                        preferred = Some(Some(method));
                    }
                    other => {
                        return Err(GraphError::bad_request(format!(
                            "Invalid value for property '{key}': expected a string or null, got {other}."
                        )));
                    }
                },
                "systemPreferredAuthenticationMethod" => {
                    return Err(GraphError::bad_request(format!(
                        "Property '{key}' is read-only and cannot be set."
                    )));
                }
                _ => return Err(unknown_property(key, "signInPreferences")),
            }
        }
        let prefs = &mut self.tenant.users[index].sign_in_preferences;
        if let Some(flag) = system_enabled {
            prefs.is_system_preferred_authentication_method_enabled = flag;
        }
        if let Some(method) = preferred {
            prefs.user_preferred_method_for_secondary_authentication = method;
        }
        Ok(())
    }

    /// `GET /users/{u}/authentication/requirements`.
    pub fn requirements(&self, index: usize) -> Value {
        json!({ "perUserMfaState": self.user(index).per_user_mfa_state.as_str() })
    }

    /// `PATCH /users/{u}/authentication/requirements`. `enabled` on a user who has a registered
    /// MFA method becomes `enforced`, as Graph does: enabling only lasts until the user registers.
    pub fn patch_requirements(&mut self, index: usize, body: &Value) -> Result<(), GraphError> {
        let object = body_object(body)?;
        let mut state = None;
        for (key, value) in object {
            match key.as_str() {
                k if k.starts_with("@odata.") => {}
                "perUserMfaState" => {
                    let text = value.as_str().ok_or_else(|| {
                        GraphError::bad_request(format!(
                            "Invalid value for property '{key}': expected a string, got {value}."
                        ))
                    })?;
                    let parsed = PerUserMfaState::ALL
                        .iter()
                        .copied()
                        .find(|s| s.as_str() == text)
                        .ok_or_else(|| {
                            GraphError::bad_request(format!(
                                "Invalid value '{text}' for property '{key}'. Expected one of: {}.",
                                PerUserMfaState::expected()
                            ))
                        })?;
                    state = Some(parsed);
                }
                _ => return Err(unknown_property(key, "strongAuthenticationRequirements")),
            }
        }
        if let Some(mut state) = state {
            let user = &mut self.tenant.users[index];
            if state == PerUserMfaState::Enabled && user.has_mfa_method() {
                state = PerUserMfaState::Enforced;
            }
            user.per_user_mfa_state = state;
        }
        Ok(())
    }

    /// `GET /users/{u}/authentication/methods`: password first (always present), then the
    /// registered methods in file order.
    pub fn methods(&self, index: usize) -> Value {
        let user = self.user(index);
        let mut value = vec![method_object(user, MethodKind::Password, 0)];
        let mut seen: HashMap<MethodKind, usize> = HashMap::new();
        for kind in user.methods.iter().copied() {
            if kind == MethodKind::Password {
                continue;
            }
            let nth = seen.entry(kind).or_default();
            value.push(method_object(user, kind, *nth));
            *nth += 1;
        }
        json!({ "value": value })
    }

    /// `GET /policies/authenticationMethodsPolicy`: Graph's whole policy, the tenant file's
    /// `authenticationMethodsPolicy:` laid over Graph's defaults ([`policy::effective`]).
    pub fn policy(&self) -> Value {
        policy::answer(self.effective_policy())
    }

    /// The policy without its annotations.
    fn effective_policy(&self) -> Value {
        policy::effective(self.tenant.authentication_methods_policy.as_ref())
    }

    /// `PATCH /policies/authenticationMethodsPolicy`: checks the whole body first (a refused
    /// PATCH changes nothing), merges it ([`policy::patch`]), stores the whole policy and
    /// answers with it, as Graph does.
    pub fn patch_policy(&mut self, body: &Value) -> Result<Value, GraphError> {
        let changed = policy::patch(&self.effective_policy(), body, jiff::Timestamp::now())?;
        self.tenant.authentication_methods_policy = Some(changed);
        Ok(self.policy())
    }

    /// The groups whose `displayName` is `name` (compared without regard to case, as Entra
    /// compares directory strings), or every group for `None`; in file order.
    pub fn groups(&self, name: Option<&str>) -> Vec<&Group> {
        self.tenant
            .groups
            .iter()
            .filter(|group| match name {
                None => true,
                Some(name) => group
                    .display_name
                    .as_deref()
                    .is_some_and(|have| eq_ignore_case(have, name)),
            })
            .collect()
    }
}

/// Unicode case-insensitive equality (display names are not ASCII-only).
fn eq_ignore_case(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

fn body_object(body: &Value) -> Result<&Map<String, Value>, GraphError> {
    body.as_object()
        .ok_or_else(|| GraphError::bad_request("The request body must be a JSON object."))
}

fn unknown_property(key: &str, entity: &str) -> GraphError {
    GraphError::bad_request(format!(
        "Invalid property '{key}': the type 'microsoft.graph.{entity}' has no such property."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{UserSignInPreferences, UserType};

    fn state(methods: Vec<MethodKind>) -> TenantState {
        TenantState::new(Tenant {
            tenant_id: "9c0e5f1a-0000-4000-8000-000000000001".into(),
            domain: "contoso.onmicrosoft.com".into(),
            users: vec![TenantUser {
                id: "071cc716-8147-4397-a5ba-b2105951cc0b".into(),
                user_principal_name: "Megan@contoso.com".into(),
                display_name: None,
                user_type: UserType::Member,
                account_enabled: true,
                methods,
                sign_in_preferences: UserSignInPreferences::default(),
                per_user_mfa_state: PerUserMfaState::Disabled,
                forgets_writes: false,
            }],
            groups: vec![],
            authentication_methods_policy: None,
            security_defaults: None,
            conditional_access_policies: Vec::new(),
            role_assignments: Vec::new(),
            auth: None,
        })
    }

    #[test]
    fn finds_users_case_insensitively_by_id_and_upn() {
        let state = state(vec![]);
        assert_eq!(state.find("071CC716-8147-4397-A5BA-B2105951CC0B"), Ok(0));
        assert_eq!(state.find("megan@CONTOSO.com"), Ok(0));
        assert_eq!(state.find("nobody@contoso.com").unwrap_err().status, 404);
    }

    #[test]
    fn system_preferred_follows_microsofts_order() {
        use MethodKind as M;
        // Strongest first; each step down removes the strongest method left.
        let mut methods = vec![
            M::OfficePhone,
            M::MobilePhone,
            M::SoftwareOath,
            M::HardwareOath,
            M::MicrosoftAuthenticator,
            M::Fido2,
            M::TemporaryAccessPass,
            M::WindowsHelloForBusiness,
            M::Email,
            M::Password,
        ];
        let mut seen = Vec::new();
        while let Some(name) = system_preferred(&methods) {
            seen.push(name);
            methods.retain(|m| system_preferred(&[*m]) != Some(name));
        }
        assert_eq!(
            seen,
            [
                "TemporaryAccessPass",
                "Fido2",
                "PhoneAppNotification",
                "HardwareOTP",
                "SoftwareOTP",
                "Sms",
                "Voice"
            ]
        );
        assert_eq!(methods, [M::WindowsHelloForBusiness, M::Email, M::Password]);
        assert_eq!(system_preferred(&[M::AlternateMobilePhone]), Some("Voice"));
        assert_eq!(system_preferred(&[]), None);
    }

    #[test]
    fn a_refused_patch_changes_nothing() {
        let mut state = state(vec![MethodKind::MobilePhone]);
        let body = json!({"isSystemPreferredAuthenticationMethodEnabled": true,
                          "userPreferredMethodForSecondaryAuthentication": "push"});
        let err = state.patch_sign_in_preferences(0, &body).unwrap_err();
        assert!(err.message.contains("'push'"), "{err}");
        assert!(
            !state
                .user(0)
                .sign_in_preferences
                .is_system_preferred_authentication_method_enabled
        );
    }

    #[test]
    fn a_user_that_forgets_writes_accepts_them_and_keeps_nothing() {
        let mut state = state(vec![MethodKind::MobilePhone]);
        state.tenant.users[0].forgets_writes = true;
        let body = json!({"perUserMfaState": "enforced"});
        state
            .write_user(0, &body, TenantState::patch_requirements)
            .unwrap();
        assert_eq!(state.user(0).per_user_mfa_state, PerUserMfaState::Disabled);
        // Still checked like any write: a bad value is refused.
        let bad = json!({"perUserMfaState": "sometimes"});
        assert!(
            state
                .write_user(0, &bad, TenantState::patch_requirements)
                .is_err()
        );
        state.tenant.users[0].forgets_writes = false;
        state
            .write_user(0, &body, TenantState::patch_requirements)
            .unwrap();
        assert_eq!(state.user(0).per_user_mfa_state, PerUserMfaState::Enforced);
    }

    #[test]
    fn method_ids_are_stable_and_distinct() {
        let state = state(vec![
            MethodKind::Fido2,
            MethodKind::Fido2,
            MethodKind::MobilePhone,
        ]);
        let first = state.methods(0);
        assert_eq!(first, state.methods(0));
        let ids: std::collections::HashSet<_> = first["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn policy_patch_merges_sub_objects() {
        let mut state = state(vec![]);
        state
            .patch_policy(&json!({"systemCredentialPreferences": {"state": "enabled"}}))
            .unwrap();
        let policy = state
            .patch_policy(&json!({"systemCredentialPreferences": {"excludeTargets": []}}))
            .unwrap();
        assert_eq!(policy["systemCredentialPreferences"]["state"], "enabled");
        assert_eq!(
            policy["systemCredentialPreferences"]["excludeTargets"],
            json!([])
        );
        assert_eq!(
            policy["systemCredentialPreferences"]["includeTargets"],
            json!([{"id": "all_users", "targetType": "group"}])
        );
    }

    #[test]
    fn a_refused_policy_patch_changes_nothing() {
        let mut state = state(vec![]);
        let err = state
            .patch_policy(&json!({"systemCredentialPreferences": {"state": "enabled"},
                                  "reportSuspiciousActivitySettings": {"voiceReportingCode": 10}}))
            .unwrap_err();
        assert_eq!((err.status, err.code), (400, "badRequest"));
        assert!(err.message.contains("voiceReportingCode"), "{err}");
        assert_eq!(state.tenant().authentication_methods_policy, None);
    }

    #[test]
    fn groups_match_by_display_name_without_regard_to_case() {
        let mut state = state(vec![]);
        state.tenant.groups = vec![
            Group {
                id: "5d1b6c1e-0000-4000-8000-000000000002".into(),
                display_name: Some("MFA Pilot".into()),
                members: vec![],
            },
            Group {
                id: "5d1b6c1e-0000-4000-8000-000000000003".into(),
                display_name: None,
                members: vec![],
            },
        ];
        assert_eq!(state.groups(Some("mfa pilot")).len(), 1);
        assert_eq!(state.groups(Some("MFA")).len(), 0);
        assert_eq!(state.groups(None).len(), 2);
    }
}
