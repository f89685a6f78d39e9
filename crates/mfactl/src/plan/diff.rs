//! `diff(desired, live)`: the pure heart of mfactl.

use super::{FieldChange, Status, UserPlan, Value};
use crate::graph::wire::{Requirements, SignInPreferences};
use crate::manifest::DesiredUser;
use crate::model::{Field, MethodKind, PerUserMfaState, PreferredMethod, PreferredMethods};

/// What Graph said about one user. An endpoint the manifest does not manage for this user is
/// not fetched and stays `None`; `methods` is fetched only when [`needs_methods`] says so.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveUser {
    pub sign_in: Option<SignInPreferences>,
    pub requirements: Option<Requirements>,
    pub methods: Option<Vec<MethodKind>>,
}

/// Whether the planner needs the user's registered methods, read from the endpoints already
/// fetched. Only in two cases, so that a run reads `/authentication/methods` (a separately
/// metered call) for as few users as it can:
/// - the live preferred method is not the first one desired (a write is coming, and it must be
///   usable; or, with a fallback list, the user may have registered a method earlier in it);
/// - `enabled` is desired and `enforced` is live: that is in sync only for a user with a
///   registered MFA method, whom Graph promoted ([`PerUserMfaState::is_met_by`]).
pub fn needs_methods(desired: &DesiredUser, live: &LiveUser) -> bool {
    let preferred_changes = desired
        .preferred_method
        .is_some_and(|wanted| live_preferred(live) != Some(wanted.first()));
    let promotion_in_question = desired.per_user_mfa_state == Some(PerUserMfaState::Enabled)
        && live_per_user_state(live) == Some(PerUserMfaState::Enforced);
    preferred_changes || promotion_in_question
}

/// Whether the user has a registered MFA method, as far as `live` knows. Methods not read are
/// taken as present: desired `enabled` then counts as met by `enforced`, the conservative side
/// (no write is planned on a guess). The fetch always reads them when it matters
/// ([`needs_methods`]).
fn has_mfa_method(live: &LiveUser) -> bool {
    live.methods.as_deref().is_none_or(MethodKind::any_for_mfa)
}

fn live_preferred(live: &LiveUser) -> Option<PreferredMethod> {
    live.sign_in
        .as_ref()
        .and_then(|s| {
            s.user_preferred_method_for_secondary_authentication
                .as_deref()
        })
        .and_then(PreferredMethod::parse)
}

fn live_per_user_state(live: &LiveUser) -> Option<PerUserMfaState> {
    live.requirements
        .as_ref()
        .and_then(|r| r.per_user_mfa_state.as_deref())
        .and_then(PerUserMfaState::parse)
}

/// Compares one user's desired and live state. The result's status is `InSync`, `Change` or
/// `Blocked` (a preferred method the user has not registered: that field is shown but not
/// written, the user's other fields still are); `user` and `id` are copied from the manifest.
///
/// A live value Graph spells differently (`SMS`) or that this build does not know
/// (`unknownFutureValue`) is compared by meaning and shown as Graph returned it.
pub fn diff(desired: &DesiredUser, live: &LiveUser) -> UserPlan {
    let mut fields = Vec::new();
    let mut notes = Vec::new();
    let mut reason = None;

    let system_preferred_live = live
        .sign_in
        .as_ref()
        .and_then(|s| s.is_system_preferred_authentication_method_enabled);

    if let Some(wanted) = desired.preferred_method
        && live_preferred(live) != Some(wanted.first())
    {
        let registered = live.methods.as_deref();
        // Methods unread: the fetch reads them whenever the diff depends on them
        // ([`needs_methods`]); only a caller without them gets here, and the first method stands.
        let choice = registered.map_or(Some(wanted.first()), |methods| wanted.choose(methods));
        match choice {
            // A fallback list whose first usable method is the one set: in sync.
            Some(method) if live_preferred(live) == Some(method) => {}
            Some(method) => {
                // With system-preferred MFA on, Graph ignores the preferred method at sign-in.
                let system_preferred_after = desired
                    .system_preferred
                    .or(system_preferred_live)
                    .unwrap_or(false);
                if system_preferred_after {
                    notes.push(ignored_note(&desired.user, method));
                }
                fields.push(FieldChange {
                    field: Field::PreferredMethod,
                    before: live_value(Field::PreferredMethod, live),
                    after: Value::Method(method),
                    blocked: false,
                });
            }
            // A blocked field is shown, never written: Graph would refuse it or, worse, accept
            // it silently.
            None => {
                let methods = registered.unwrap_or_default();
                reason = Some(unregistered_reason(&desired.user, wanted, methods));
                fields.push(FieldChange {
                    field: Field::PreferredMethod,
                    before: live_value(Field::PreferredMethod, live),
                    after: wanted_value(wanted),
                    blocked: true,
                });
            }
        }
    }

    if let Some(wanted) = desired.system_preferred
        && system_preferred_live != Some(wanted)
    {
        fields.push(FieldChange {
            field: Field::SystemPreferred,
            before: live_value(Field::SystemPreferred, live),
            after: Value::Bool(wanted),
            blocked: false,
        });
    }

    if let Some(wanted) = desired.per_user_mfa_state {
        let met = live_per_user_state(live)
            .is_some_and(|state| wanted.is_met_by(state, has_mfa_method(live)));
        if !met {
            fields.push(FieldChange {
                field: Field::PerUserMfaState,
                before: live_value(Field::PerUserMfaState, live),
                after: Value::State(wanted),
                blocked: false,
            });
        }
    }

    let status = if reason.is_some() {
        Status::Blocked
    } else if fields.iter().all(|f| f.blocked) {
        Status::InSync
    } else {
        Status::Change
    };
    UserPlan::new(desired.user.clone(), status, fields, reason, notes)
}

/// A managed field's live value as Graph returned it (`null` when unset or not read).
pub fn live_value(field: Field, live: &LiveUser) -> Value {
    let sign_in = live.sign_in.as_ref();
    match field {
        Field::PreferredMethod => Value::from_text(sign_in.and_then(|s| {
            s.user_preferred_method_for_secondary_authentication
                .as_deref()
        })),
        Field::SystemPreferred => Value::from_bool(
            sign_in.and_then(|s| s.is_system_preferred_authentication_method_enabled),
        ),
        Field::PerUserMfaState => Value::from_text(
            live.requirements
                .as_ref()
                .and_then(|r| r.per_user_mfa_state.as_deref()),
        ),
    }
}

/// The note on a preferred-method change for a user whose own system-preferred MFA is on.
pub fn ignored_note(user: &str, method: PreferredMethod) -> String {
    format!(
        "system-preferred MFA is on for {user}: the preferred method {method} is ignored at \
         sign-in (except by the NPS extension and the AD FS adapter)"
    )
}

/// What a blocked preferred-method field shows as its `after`: the method, or the whole list
/// (`["push", "oath", "sms"]`) when the manifest gave one, none of which is registered.
fn wanted_value(wanted: PreferredMethods) -> Value {
    if wanted.is_list() {
        let list: Vec<&str> = wanted.iter().map(PreferredMethod::as_str).collect();
        Value::from_json(serde_json::json!(list))
    } else {
        Value::Method(wanted.first())
    }
}

fn unregistered_reason(user: &str, wanted: PreferredMethods, methods: &[MethodKind]) -> String {
    let registered: Vec<&str> = methods
        .iter()
        .filter(|m| **m != MethodKind::Password)
        .map(|m| m.as_str())
        .collect();
    let usable: Vec<&str> = PreferredMethod::usable_with(methods)
        .iter()
        .map(|p| p.as_str())
        .collect();
    let registered = if registered.is_empty() {
        "none".to_owned()
    } else {
        registered.join(", ")
    };
    let fix = if usable.is_empty() {
        "the user must register a method first, or leave preferredMethod out".to_owned()
    } else {
        format!(
            "choose one of {}, or have the user register one",
            usable.join(", ")
        )
    };
    let wanted = if wanted.is_list() {
        format!("none of {} is", wanted.join(", "))
    } else {
        format!("{} is not", wanted.first())
    };
    format!("{wanted} registered for {user} (registered: {registered}); {fix}")
}

/// The object id when the manifest named the user by one (a GUID).
pub fn object_id(user: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(user).ok()
}

/// The live state after Graph accepted the user's writes (the emulator's and Graph's semantics
/// for these two endpoints: each PATCH sets exactly the properties in its body).
pub fn apply_writes(live: &LiveUser, plan: &UserPlan) -> LiveUser {
    let mut after = live.clone();
    for write in plan.writes() {
        for (field, value) in write.body().iter() {
            match field {
                Field::SystemPreferred => {
                    after
                        .sign_in
                        .get_or_insert_with(SignInPreferences::default)
                        .is_system_preferred_authentication_method_enabled = value.as_bool()
                }
                Field::PreferredMethod => {
                    after
                        .sign_in
                        .get_or_insert_with(SignInPreferences::default)
                        .user_preferred_method_for_secondary_authentication =
                        value.as_str().map(str::to_owned)
                }
                Field::PerUserMfaState => {
                    after
                        .requirements
                        .get_or_insert_with(Requirements::default)
                        .per_user_mfa_state = value.as_str().map(str::to_owned)
                }
            }
        }
    }
    after
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::manifest::Origin;
    use crate::model::Endpoint;

    fn desired_strategy() -> impl Strategy<Value = DesiredUser> {
        // One method, or a fallback list of up to three in any order.
        let methods = prop::sample::subsequence(PreferredMethod::ALL, 1..=3).prop_shuffle();
        (
            prop::option::of(methods),
            prop::option::of(any::<bool>()),
            prop::option::of(prop::sample::select(PerUserMfaState::ALL)),
        )
            .prop_map(|(preferred_method, system_preferred, per_user_mfa_state)| {
                DesiredUser {
                    user: "megan@contoso.com".into(),
                    preferred_method: preferred_method
                        .map(|list| PreferredMethods::new(&list).unwrap()),
                    system_preferred,
                    per_user_mfa_state,
                    origin: Origin::Line(3),
                }
            })
    }

    /// Live values as Graph could return them: any casing, unknown values, nulls.
    fn live_strategy() -> impl Strategy<Value = LiveUser> {
        let method = prop_oneof![
            Just(None),
            prop::sample::select(PreferredMethod::ALL).prop_map(|m| Some(m.as_str().to_owned())),
            prop::sample::select(PreferredMethod::ALL)
                .prop_map(|m| Some(m.as_str().to_uppercase())),
            Just(Some("unknownFutureValue".to_owned())),
        ];
        let state = prop_oneof![
            Just(None),
            prop::sample::select(PerUserMfaState::ALL).prop_map(|s| Some(s.as_str().to_owned())),
            Just(Some("unknownFutureValue".to_owned())),
        ];
        (
            prop::option::of((prop::option::of(any::<bool>()), method)),
            prop::option::of(state),
            prop::option::of(prop::collection::vec(
                prop::sample::select(MethodKind::ALL),
                0..4,
            )),
        )
            .prop_map(|(sign_in, requirements, methods)| LiveUser {
                sign_in: sign_in.map(|(system, method)| SignInPreferences {
                    is_system_preferred_authentication_method_enabled: system,
                    user_preferred_method_for_secondary_authentication: method,
                    system_preferred_authentication_method: None,
                }),
                requirements: requirements
                    .map(|per_user_mfa_state| Requirements { per_user_mfa_state }),
                methods,
            })
    }

    /// The live state exactly as the manifest wants it.
    fn live_matching(desired: &DesiredUser) -> LiveUser {
        LiveUser {
            sign_in: Some(SignInPreferences {
                is_system_preferred_authentication_method_enabled: desired.system_preferred,
                user_preferred_method_for_secondary_authentication: desired
                    .preferred_method
                    .map(|m| m.first().as_str().to_owned()),
                system_preferred_authentication_method: None,
            }),
            requirements: Some(Requirements {
                per_user_mfa_state: desired.per_user_mfa_state.map(|s| s.as_str().to_owned()),
            }),
            methods: None,
        }
    }

    proptest! {
        #[test]
        fn diff_of_equal_states_is_empty(desired in desired_strategy()) {
            let plan = diff(&desired, &live_matching(&desired));
            prop_assert_eq!(plan.status, Status::InSync);
            prop_assert!(plan.fields.is_empty());
            prop_assert_eq!(plan.write_count(), 0);
        }

        #[test]
        fn applying_the_writes_converges(desired in desired_strategy(), live in live_strategy()) {
            let plan = diff(&desired, &live);
            let after = apply_writes(&live, &plan);
            let again = diff(&desired, &after);
            prop_assert_eq!(again.write_count(), 0, "second diff still writes: {:?}", again);
            if plan.status == Status::Blocked {
                prop_assert_eq!(again.status, Status::Blocked);
            } else {
                prop_assert_eq!(again.status, Status::InSync);
            }
        }

        /// A fallback list converges on the first method the user has registered, or blocks
        /// when none is.
        #[test]
        fn a_list_converges_on_the_first_registered_method(
            desired in desired_strategy(),
            live in live_strategy(),
        ) {
            let Some(wanted) = desired.preferred_method else { return Ok(()) };
            let live = LiveUser { methods: Some(live.methods.clone().unwrap_or_default()), ..live };
            let plan = diff(&desired, &live);
            let after = apply_writes(&live, &plan);
            let ends_with = live_preferred(&after);
            match wanted.choose(live.methods.as_deref().unwrap()) {
                Some(method) => {
                    let kept = live_preferred(&live) == Some(wanted.first());
                    prop_assert!(kept || ends_with == Some(method), "{:?} -> {:?}", wanted, ends_with);
                }
                None => {
                    let first_kept = live_preferred(&live) == Some(wanted.first());
                    prop_assert!(first_kept || plan.status == Status::Blocked, "{:?}", plan);
                }
            }
        }

        /// The compact plan serialises exactly as the JSON shape's types do, and reads back.
        #[test]
        fn plans_round_trip_through_todays_json(desired in desired_strategy(), live in live_strategy()) {
            let plan = diff(&desired, &live);
            let text = serde_json::to_string_pretty(&plan).unwrap();
            let wire: crate::plan::wire::UserPlan = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(serde_json::to_string_pretty(&wire).unwrap(), text.clone());
            let back: UserPlan = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back, plan);
        }

        #[test]
        fn writes_are_minimal(desired in desired_strategy(), live in live_strategy()) {
            let plan = diff(&desired, &live);
            // At most one PATCH per endpoint, never an empty body, never an unmanaged field.
            prop_assert!(plan.write_count() <= 2);
            let mut endpoints: Vec<_> = plan.writes().map(|w| w.endpoint).collect();
            endpoints.dedup();
            prop_assert_eq!(endpoints.len(), plan.write_count());
            for write in plan.writes() {
                prop_assert!(!write.body().is_empty());
                prop_assert_eq!(write.before().len(), write.body().len());
            }
            let fields_written: usize = plan.writes().map(|w| w.body().len()).sum();
            let blocked = usize::from(plan.status == Status::Blocked);
            prop_assert_eq!(fields_written + blocked, plan.fields.len());
            if plan.status == Status::Blocked {
                prop_assert!(plan.writes().all(|w| w.body().get(Field::PreferredMethod).is_none()));
            }
            for field in &plan.fields {
                let managed = match field.field {
                    Field::PreferredMethod => desired.preferred_method.is_some(),
                    Field::SystemPreferred => desired.system_preferred.is_some(),
                    Field::PerUserMfaState => desired.per_user_mfa_state.is_some(),
                };
                prop_assert!(managed, "{:?} is not managed but changes", field.field);
            }
        }
    }

    fn user(preferred: Option<PreferredMethod>, state: Option<PerUserMfaState>) -> DesiredUser {
        DesiredUser {
            user: "megan@contoso.com".into(),
            preferred_method: preferred.map(PreferredMethods::one),
            system_preferred: None,
            per_user_mfa_state: state,
            origin: Origin::Line(1),
        }
    }

    fn live_state(state: &str, methods: Option<Vec<MethodKind>>) -> LiveUser {
        LiveUser {
            requirements: Some(Requirements {
                per_user_mfa_state: Some(state.into()),
            }),
            methods,
            ..LiveUser::default()
        }
    }

    #[test]
    fn enabled_desired_against_enforced_live_is_in_sync_for_a_user_with_an_mfa_method() {
        let desired = user(None, Some(PerUserMfaState::Enabled));
        for methods in [
            vec![MethodKind::MobilePhone],
            vec![MethodKind::Password, MethodKind::Fido2],
        ] {
            let plan = diff(&desired, &live_state("enforced", Some(methods)));
            assert_eq!(plan.status, Status::InSync);
        }
    }

    #[test]
    fn enabled_desired_against_enforced_live_is_a_change_for_a_user_without_one() {
        let desired = user(None, Some(PerUserMfaState::Enabled));
        for methods in [vec![], vec![MethodKind::Password, MethodKind::Email]] {
            let plan = diff(&desired, &live_state("enforced", Some(methods)));
            assert_eq!(plan.status, Status::Change);
            assert_eq!(plan.write_count(), 1);
            let write = plan.write(Endpoint::Requirements).unwrap();
            assert_eq!(
                serde_json::to_value(write.before()).unwrap(),
                serde_json::json!({"perUserMfaState": "enforced"})
            );
            assert_eq!(
                serde_json::to_value(write.body()).unwrap(),
                serde_json::json!({"perUserMfaState": "enabled"})
            );
        }
    }

    #[test]
    fn enabled_against_enforced_with_methods_unread_writes_nothing() {
        let plan = diff(
            &user(None, Some(PerUserMfaState::Enabled)),
            &live_state("enforced", None),
        );
        assert_eq!(plan.status, Status::InSync);
    }

    #[test]
    fn methods_are_needed_only_for_a_preferred_change_or_enabled_against_enforced() {
        let enabled = user(None, Some(PerUserMfaState::Enabled));
        assert!(needs_methods(&enabled, &live_state("enforced", None)));
        // Case-insensitive, as every live value is compared by meaning.
        assert!(needs_methods(&enabled, &live_state("Enforced", None)));
        for live in ["enabled", "disabled", "unknownFutureValue"] {
            assert!(!needs_methods(&enabled, &live_state(live, None)), "{live}");
        }
        assert!(!needs_methods(&enabled, &LiveUser::default()));
        for state in [PerUserMfaState::Enforced, PerUserMfaState::Disabled] {
            assert!(!needs_methods(
                &user(None, Some(state)),
                &live_state("enforced", None)
            ));
        }
        let push = user(Some(PreferredMethod::Push), None);
        assert!(needs_methods(&push, &LiveUser::default()));
        let same = LiveUser {
            sign_in: Some(SignInPreferences {
                user_preferred_method_for_secondary_authentication: Some("push".into()),
                ..SignInPreferences::default()
            }),
            ..LiveUser::default()
        };
        assert!(!needs_methods(&push, &same));
    }

    #[test]
    fn unregistered_preferred_method_blocks_with_a_fix() {
        let live = LiveUser {
            sign_in: Some(SignInPreferences {
                user_preferred_method_for_secondary_authentication: Some("sms".into()),
                ..SignInPreferences::default()
            }),
            methods: Some(vec![MethodKind::MobilePhone, MethodKind::Password]),
            ..LiveUser::default()
        };
        let plan = diff(
            &user(Some(PreferredMethod::Push), Some(PerUserMfaState::Disabled)),
            &live,
        );
        assert_eq!(plan.status, Status::Blocked);
        // The blocked field is shown, not written; the other field is still written.
        assert_eq!(plan.fields.len(), 2);
        assert_eq!(plan.write_count(), 1);
        assert_eq!(
            plan.writes().next().unwrap().endpoint,
            Endpoint::Requirements
        );
        assert_eq!(
            plan.reason(),
            Some(
                "push is not registered for megan@contoso.com (registered: mobilePhone); \
                 choose one of voiceMobile, sms, or have the user register one"
            )
        );
    }

    #[test]
    fn only_changed_fields_are_in_the_body() {
        let live = LiveUser {
            sign_in: Some(SignInPreferences {
                is_system_preferred_authentication_method_enabled: Some(true),
                user_preferred_method_for_secondary_authentication: Some("SMS".into()),
                system_preferred_authentication_method: Some("Sms".into()),
            }),
            methods: Some(vec![MethodKind::MicrosoftAuthenticator]),
            ..LiveUser::default()
        };
        let mut desired = user(Some(PreferredMethod::Oath), None);
        desired.system_preferred = Some(true);
        let plan = diff(&desired, &live);
        assert_eq!(plan.write_count(), 1);
        assert_eq!(
            serde_json::to_value(plan.writes().next().unwrap().body()).unwrap(),
            serde_json::json!({"userPreferredMethodForSecondaryAuthentication": "oath"})
        );
        assert_eq!(
            plan.notes().len(),
            1,
            "system-preferred on makes the change ineffective"
        );
    }

    fn sign_in(method: Option<&str>) -> Option<SignInPreferences> {
        Some(SignInPreferences {
            is_system_preferred_authentication_method_enabled: Some(false),
            user_preferred_method_for_secondary_authentication: method.map(str::to_owned),
            system_preferred_authentication_method: None,
        })
    }

    fn fallback() -> DesiredUser {
        use PreferredMethod::*;
        DesiredUser {
            preferred_method: Some(PreferredMethods::new(&[Push, Oath, Sms]).unwrap()),
            ..user(None, None)
        }
    }

    #[test]
    fn a_phone_only_user_gets_sms_from_push_oath_sms() {
        let live = LiveUser {
            sign_in: sign_in(Some("voiceMobile")),
            methods: Some(vec![MethodKind::MobilePhone]),
            ..LiveUser::default()
        };
        let plan = diff(&fallback(), &live);
        assert_eq!(plan.status, Status::Change);
        let body = serde_json::to_value(plan.writes().next().unwrap().body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"userPreferredMethodForSecondaryAuthentication": "sms"}),
            "the write carries the one method chosen"
        );
        // Once it has sms, the list is met: sms is the first method the user has.
        let again = diff(&fallback(), &apply_writes(&live, &plan));
        assert_eq!(again.status, Status::InSync);
        assert!(needs_methods(&fallback(), &apply_writes(&live, &plan)));
    }

    #[test]
    fn a_method_registered_later_moves_the_user_up_the_list() {
        let live = LiveUser {
            sign_in: sign_in(Some("sms")),
            methods: Some(vec![MethodKind::MobilePhone, MethodKind::HardwareOath]),
            ..LiveUser::default()
        };
        let plan = diff(&fallback(), &live);
        assert_eq!(plan.fields[0].after, Value::Method(PreferredMethod::Oath));
        // The first method set: nothing to read, nothing to change.
        let live = LiveUser {
            sign_in: sign_in(Some("push")),
            ..LiveUser::default()
        };
        assert!(!needs_methods(&fallback(), &live));
        assert_eq!(diff(&fallback(), &live).status, Status::InSync);
    }

    #[test]
    fn a_user_with_none_of_the_list_is_blocked_with_the_list_in_the_reason() {
        let live = LiveUser {
            sign_in: sign_in(None),
            methods: Some(vec![MethodKind::OfficePhone]),
            ..LiveUser::default()
        };
        let plan = diff(&fallback(), &live);
        assert_eq!(plan.status, Status::Blocked);
        assert_eq!(plan.write_count(), 0);
        assert_eq!(
            serde_json::to_value(&plan.fields[0].after).unwrap(),
            serde_json::json!(["push", "oath", "sms"])
        );
        assert_eq!(
            plan.reason(),
            Some(
                "none of push, oath, sms is registered for megan@contoso.com (registered: \
                 officePhone); choose one of voiceOffice, or have the user register one"
            )
        );
    }
}
