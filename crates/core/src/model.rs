//! The domain vocabulary shared by every layer: the values mfactl manages, the Graph endpoints
//! that hold them, and the registered-method kinds that make a preferred method usable.
//!
//! Enum values parse case-insensitively (admins type `SMS`, `Oath`, `Enabled`) and are always
//! written back in Graph's spelling. Nothing here does I/O.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Implements `ALL`, `as_str` (Graph's spelling), case-insensitive `parse` and `Display`.
macro_rules! graph_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in Graph's documentation order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as Graph spells it on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses a value case-insensitively (`SMS`, `sms` and `Sms` are all `sms`).
            pub fn parse(text: &str) -> Option<Self> {
                let text = text.trim();
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(text))
            }

            /// The accepted spellings, for error messages: `push, oath, ...`.
            pub fn expected() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

graph_enum! {
    /// `userPreferredMethodForSecondaryAuthentication` on `signInPreferences`.
    PreferredMethod {
        Push => "push",
        Oath => "oath",
        VoiceMobile => "voiceMobile",
        VoiceAlternateMobile => "voiceAlternateMobile",
        VoiceOffice => "voiceOffice",
        Sms => "sms",
    }
}

graph_enum! {
    /// `perUserMfaState` on `requirements`.
    PerUserMfaState {
        Disabled => "disabled",
        Enabled => "enabled",
        Enforced => "enforced",
    }
}

graph_enum! {
    /// A registered authentication method, in the tenant file's vocabulary (design.md).
    MethodKind {
        MicrosoftAuthenticator => "microsoftAuthenticator",
        SoftwareOath => "softwareOath",
        HardwareOath => "hardwareOath",
        MobilePhone => "mobilePhone",
        AlternateMobilePhone => "alternateMobilePhone",
        OfficePhone => "officePhone",
        Fido2 => "fido2",
        WindowsHelloForBusiness => "windowsHelloForBusiness",
        Email => "email",
        TemporaryAccessPass => "temporaryAccessPass",
        Password => "password",
    }
}

graph_enum! {
    /// A per-user value mfactl manages, named as in the manifest.
    Field {
        PreferredMethod => "preferredMethod",
        SystemPreferred => "systemPreferred",
        PerUserMfaState => "perUserMfaState",
    }
}

graph_enum! {
    /// A Graph endpoint under `/beta/users/{user}/authentication/`.
    Endpoint {
        SignInPreferences => "signInPreferences",
        Requirements => "requirements",
    }
}

impl PerUserMfaState {
    /// Whether a live state satisfies this desired state, for a user who has (`has_mfa_method`)
    /// or has not registered an MFA method ([`MethodKind::counts_for_mfa`]).
    ///
    /// Desired `enabled` is met by live `enforced` only for a user with a registered MFA method:
    /// Graph promotes such a user from enabled to enforced by itself, so writing `enabled` would
    /// change nothing, every run. A user without one stays `enabled` when it is written (Graph
    /// promotes at registration), so `enforced` live is a real difference for them: they would
    /// be refused at sign-in instead of being asked to register.
    pub fn is_met_by(self, live: PerUserMfaState, has_mfa_method: bool) -> bool {
        self == live
            || (self == PerUserMfaState::Enabled
                && live == PerUserMfaState::Enforced
                && has_mfa_method)
    }
}

impl PreferredMethod {
    /// Whether a registered method makes this preferred method usable (graph-api.md §3):
    /// `push` needs Authenticator; `oath` a software or hardware token, or Authenticator (it also
    /// generates codes); `sms`/`voiceMobile` a mobile phone; the other voice methods their phone.
    pub fn is_enabled_by(self, method: MethodKind) -> bool {
        use MethodKind as M;
        match self {
            PreferredMethod::Push => method == M::MicrosoftAuthenticator,
            PreferredMethod::Oath => matches!(
                method,
                M::SoftwareOath | M::HardwareOath | M::MicrosoftAuthenticator
            ),
            PreferredMethod::Sms | PreferredMethod::VoiceMobile => method == M::MobilePhone,
            PreferredMethod::VoiceAlternateMobile => method == M::AlternateMobilePhone,
            PreferredMethod::VoiceOffice => method == M::OfficePhone,
        }
    }

    /// The preferred methods that a set of registered methods makes usable, in Graph's order.
    pub fn usable_with(methods: &[MethodKind]) -> Vec<PreferredMethod> {
        PreferredMethod::ALL
            .iter()
            .copied()
            .filter(|p| methods.iter().any(|m| p.is_enabled_by(*m)))
            .collect()
    }
}

/// The preferred methods a manifest asks for, in order: `[push, oath, sms]` in YAML,
/// `push|oath|sms` in CSV; the first one the user has registered wins ([`PreferredMethods::choose`]).
/// One method is a list of one. At most the six methods, none twice, held in four bytes (a
/// million-user manifest holds a million of these): slot `i` is bits `3i..3i+3`, holding the
/// method's place in [`PreferredMethod::ALL`] plus one, 0 after the last.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PreferredMethods(std::num::NonZeroU32);

/// Why a list of preferred methods cannot be one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodListProblem {
    /// `[]`: no method at all.
    Empty,
    /// A method named twice: the second could never be reached.
    Repeated(PreferredMethod),
}

impl PreferredMethods {
    /// One method.
    pub fn one(method: PreferredMethod) -> PreferredMethods {
        PreferredMethods::new(&[method]).expect("one method is a list")
    }

    /// The methods in the order to try them.
    pub fn new(methods: &[PreferredMethod]) -> Result<PreferredMethods, MethodListProblem> {
        let mut bits = 0u32;
        for (slot, method) in methods.iter().enumerate() {
            if methods[..slot].contains(method) {
                return Err(MethodListProblem::Repeated(*method));
            }
            let code = PreferredMethod::ALL
                .iter()
                .position(|m| m == method)
                .expect("every method is in ALL") as u32
                + 1;
            bits |= code << (3 * slot);
        }
        std::num::NonZeroU32::new(bits)
            .map(PreferredMethods)
            .ok_or(MethodListProblem::Empty)
    }

    /// The methods, in order.
    pub fn iter(self) -> impl Iterator<Item = PreferredMethod> {
        (0..PreferredMethod::ALL.len())
            .map(move |slot| (self.0.get() >> (3 * slot)) & 0b111)
            .take_while(|code| *code != 0)
            .map(|code| PreferredMethod::ALL[code as usize - 1])
    }

    /// The first method: what the user gets when they have registered it.
    pub fn first(self) -> PreferredMethod {
        self.iter().next().expect("never empty")
    }

    /// Whether it names more than one method (a fallback list).
    pub fn is_list(self) -> bool {
        self.iter().nth(1).is_some()
    }

    /// The first method `registered` makes usable, if any.
    pub fn choose(self, registered: &[MethodKind]) -> Option<PreferredMethod> {
        self.iter()
            .find(|method| registered.iter().any(|kind| method.is_enabled_by(*kind)))
    }

    /// The methods joined with `separator` (`push|oath|sms`, `push, oath, sms`).
    pub fn join(self, separator: &str) -> String {
        self.iter()
            .map(PreferredMethod::as_str)
            .collect::<Vec<_>>()
            .join(separator)
    }
}

/// `push` for one method, `[push, oath, sms]` for a list (YAML's way of writing it).
impl fmt::Display for PreferredMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_list() {
            write!(f, "[{}]", self.join(", "))
        } else {
            f.write_str(self.first().as_str())
        }
    }
}

impl fmt::Debug for PreferredMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Field {
    /// The endpoint that holds this field.
    pub fn endpoint(self) -> Endpoint {
        match self {
            Field::PreferredMethod | Field::SystemPreferred => Endpoint::SignInPreferences,
            Field::PerUserMfaState => Endpoint::Requirements,
        }
    }

    /// The Graph property that holds this field.
    pub fn graph_property(self) -> &'static str {
        match self {
            Field::PreferredMethod => "userPreferredMethodForSecondaryAuthentication",
            Field::SystemPreferred => "isSystemPreferredAuthenticationMethodEnabled",
            Field::PerUserMfaState => "perUserMfaState",
        }
    }
}

impl MethodKind {
    /// Whether a registered method of this kind counts for MFA: anything but a password or an
    /// email address (email is for self-service password reset only). This is the condition
    /// under which Graph promotes a per-user `enabled` to `enforced`, shared by the planner
    /// ([`PerUserMfaState::is_met_by`]) and the emulator, so that both sides agree.
    pub fn counts_for_mfa(self) -> bool {
        !matches!(self, MethodKind::Password | MethodKind::Email)
    }

    /// Whether any of `methods` counts for MFA ([`MethodKind::counts_for_mfa`]).
    pub fn any_for_mfa(methods: &[MethodKind]) -> bool {
        methods.iter().any(|m| m.counts_for_mfa())
    }

    /// The method kind for a Graph `@odata.type` (and `phoneType` for phones), as in
    /// graph-api.md §3. Unknown types yield `None` and are ignored, and so does a phone whose
    /// `phoneType` is missing or not `mobile`, `alternateMobile` or `office` (compared without
    /// regard to case): guessing "mobile" would make `sms` and `voiceMobile` look usable on a
    /// phone that may not take them.
    pub fn from_odata(odata_type: &str, phone_type: Option<&str>) -> Option<MethodKind> {
        let short = odata_type
            .strip_prefix("#microsoft.graph.")
            .unwrap_or(odata_type);
        Some(match short {
            "phoneAuthenticationMethod" => match phone_type? {
                p if p.eq_ignore_ascii_case("mobile") => MethodKind::MobilePhone,
                p if p.eq_ignore_ascii_case("alternateMobile") => MethodKind::AlternateMobilePhone,
                p if p.eq_ignore_ascii_case("office") => MethodKind::OfficePhone,
                _ => return None,
            },
            "microsoftAuthenticatorAuthenticationMethod" => MethodKind::MicrosoftAuthenticator,
            "softwareOathAuthenticationMethod" => MethodKind::SoftwareOath,
            "hardwareOathAuthenticationMethod" => MethodKind::HardwareOath,
            "fido2AuthenticationMethod" => MethodKind::Fido2,
            "windowsHelloForBusinessAuthenticationMethod" => MethodKind::WindowsHelloForBusiness,
            "emailAuthenticationMethod" => MethodKind::Email,
            "temporaryAccessPassAuthenticationMethod" => MethodKind::TemporaryAccessPass,
            "passwordAuthenticationMethod" => MethodKind::Password,
            _ => return None,
        })
    }

    /// The Graph `@odata.type` and, for phones, the `phoneType` of this method kind.
    pub fn odata(self) -> (&'static str, Option<&'static str>) {
        match self {
            MethodKind::MobilePhone => {
                ("#microsoft.graph.phoneAuthenticationMethod", Some("mobile"))
            }
            MethodKind::AlternateMobilePhone => (
                "#microsoft.graph.phoneAuthenticationMethod",
                Some("alternateMobile"),
            ),
            MethodKind::OfficePhone => {
                ("#microsoft.graph.phoneAuthenticationMethod", Some("office"))
            }
            MethodKind::MicrosoftAuthenticator => (
                "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
                None,
            ),
            MethodKind::SoftwareOath => ("#microsoft.graph.softwareOathAuthenticationMethod", None),
            MethodKind::HardwareOath => ("#microsoft.graph.hardwareOathAuthenticationMethod", None),
            MethodKind::Fido2 => ("#microsoft.graph.fido2AuthenticationMethod", None),
            MethodKind::WindowsHelloForBusiness => (
                "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
                None,
            ),
            MethodKind::Email => ("#microsoft.graph.emailAuthenticationMethod", None),
            MethodKind::TemporaryAccessPass => (
                "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
                None,
            ),
            MethodKind::Password => ("#microsoft.graph.passwordAuthenticationMethod", None),
        }
    }
}

/// What one `methodsRegistered` value of the registration report
/// (`/reports/authenticationMethods/userRegistrationDetails`) says, for the planner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportedMethod {
    /// A method `/authentication/methods` lists as this kind.
    Kind(MethodKind),
    /// Something `/authentication/methods` does not list as a kind this build knows (security
    /// questions, app passwords, a platform credential, an external method): left out, as the
    /// per-user read leaves those types out.
    Ignored,
    /// A value whose kind cannot be told from its name alone (`microsoftAuthenticatorPasswordless`,
    /// `sms`, a value newer than this build): the row cannot stand in for `/methods`.
    Unknown,
}

impl MethodKind {
    /// The name the registration report gives a registered method of this kind, from the
    /// members of Microsoft's `usageAuthMethod` enumeration (beta), which that report's
    /// `methodsRegistered` uses (`mobilePhone`, `microsoftAuthenticatorPush`,
    /// `softwareOneTimePasscode`, `passKeyDeviceBound`...). `None` for the password, which the
    /// report does not list.
    pub fn report_name(self) -> Option<&'static str> {
        Some(match self {
            MethodKind::MicrosoftAuthenticator => "microsoftAuthenticatorPush",
            MethodKind::SoftwareOath => "softwareOneTimePasscode",
            MethodKind::HardwareOath => "hardwareOneTimePasscode",
            MethodKind::MobilePhone => "mobilePhone",
            MethodKind::AlternateMobilePhone => "alternateMobilePhone",
            MethodKind::OfficePhone => "officePhone",
            MethodKind::Fido2 => "passKeyDeviceBound",
            MethodKind::WindowsHelloForBusiness => "windowsHelloForBusiness",
            MethodKind::Email => "email",
            MethodKind::TemporaryAccessPass => "temporaryAccessPass",
            MethodKind::Password => return None,
        })
    }

    /// What a `methodsRegistered` value means (compared without regard to case). Passkeys of
    /// every kind are FIDO2 credentials (`fido2AuthenticationMethod` in `/methods`), a Windows
    /// Hello passkey a Windows Hello credential; the values that name no method a preferred
    /// method or the enabled-to-enforced promotion depends on are [`ReportedMethod::Ignored`].
    pub fn from_report_name(name: &str) -> ReportedMethod {
        let name = name.trim();
        if let Some(kind) = MethodKind::ALL.iter().find(|kind| {
            kind.report_name()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        }) {
            return ReportedMethod::Kind(*kind);
        }
        let is = |candidates: &[&str]| candidates.iter().any(|c| c.eq_ignore_ascii_case(name));
        if is(&[
            "fido2SecurityKey",
            "passKeyDeviceBoundAuthenticator",
            "passKeySynced",
        ]) {
            ReportedMethod::Kind(MethodKind::Fido2)
        } else if is(&["passKeyDeviceBoundWindowsHello"]) {
            ReportedMethod::Kind(MethodKind::WindowsHelloForBusiness)
        } else if is(&[
            "securityQuestion",
            "appPassword",
            "macOsSecureEnclaveKey",
            "externalAuthMethod",
        ]) {
            ReportedMethod::Ignored
        } else {
            ReportedMethod::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_round_trip_and_ambiguous_ones_are_unknown() {
        for kind in MethodKind::ALL {
            if let Some(name) = kind.report_name() {
                assert_eq!(
                    MethodKind::from_report_name(name),
                    ReportedMethod::Kind(*kind)
                );
            }
        }
        assert_eq!(
            MethodKind::from_report_name("MobilePhone"),
            ReportedMethod::Kind(MethodKind::MobilePhone)
        );
        for unknown in ["microsoftAuthenticatorPasswordless", "sms", "qrCode", ""] {
            assert_eq!(
                MethodKind::from_report_name(unknown),
                ReportedMethod::Unknown,
                "{unknown}"
            );
        }
        assert_eq!(
            MethodKind::from_report_name("securityQuestion"),
            ReportedMethod::Ignored
        );
    }

    #[test]
    fn enums_parse_case_insensitively_and_print_graph_spelling() {
        assert_eq!(
            PreferredMethod::parse("VOICEMOBILE"),
            Some(PreferredMethod::VoiceMobile)
        );
        assert_eq!(PreferredMethod::parse(" Sms "), Some(PreferredMethod::Sms));
        assert_eq!(PreferredMethod::parse("fax"), None);
        assert_eq!(
            PerUserMfaState::parse("Enforced").unwrap().as_str(),
            "enforced"
        );
        assert_eq!(
            PreferredMethod::VoiceAlternateMobile.to_string(),
            "voiceAlternateMobile"
        );
    }

    #[test]
    fn a_method_list_keeps_its_order_and_refuses_repeats_and_nothing() {
        use PreferredMethod::*;
        let list = PreferredMethods::new(&[Push, Oath, Sms]).unwrap();
        assert_eq!(list.iter().collect::<Vec<_>>(), vec![Push, Oath, Sms]);
        assert_eq!(
            (list.first(), list.iter().count(), list.is_list()),
            (Push, 3, true)
        );
        assert_eq!(list.to_string(), "[push, oath, sms]");
        assert_eq!(list.join("|"), "push|oath|sms");
        let every = PreferredMethods::new(PreferredMethod::ALL).unwrap();
        assert_eq!(every.iter().collect::<Vec<_>>(), PreferredMethod::ALL);
        assert_eq!(
            PreferredMethods::one(VoiceOffice).to_string(),
            "voiceOffice"
        );
        assert!(!PreferredMethods::one(Sms).is_list());
        assert_eq!(PreferredMethods::new(&[]), Err(MethodListProblem::Empty));
        assert_eq!(
            PreferredMethods::new(&[Sms, Push, Sms]),
            Err(MethodListProblem::Repeated(Sms))
        );
        assert_eq!(std::mem::size_of::<Option<PreferredMethods>>(), 4);
    }

    #[test]
    fn the_first_registered_method_of_a_list_wins() {
        use MethodKind as M;
        use PreferredMethod::*;
        let list = PreferredMethods::new(&[Push, Oath, Sms]).unwrap();
        assert_eq!(list.choose(&[M::MobilePhone]), Some(Sms));
        assert_eq!(list.choose(&[M::MobilePhone, M::SoftwareOath]), Some(Oath));
        assert_eq!(
            list.choose(&[M::MicrosoftAuthenticator, M::MobilePhone]),
            Some(Push)
        );
        assert_eq!(list.choose(&[M::OfficePhone, M::Email]), None);
    }

    #[test]
    fn enabled_is_met_by_enforced_only_with_an_mfa_method() {
        use PerUserMfaState::*;
        assert!(Enabled.is_met_by(Enforced, true));
        assert!(!Enabled.is_met_by(Enforced, false));
        assert!(!Enforced.is_met_by(Enabled, true));
        assert!(!Disabled.is_met_by(Enforced, true));
        for state in PerUserMfaState::ALL {
            assert!(state.is_met_by(*state, false) && state.is_met_by(*state, true));
        }
    }

    #[test]
    fn password_and_email_are_not_mfa_methods() {
        use MethodKind as M;
        assert!(!M::any_for_mfa(&[M::Password, M::Email]));
        assert!(M::any_for_mfa(&[M::Email, M::OfficePhone]));
        assert!(M::ALL.iter().filter(|m| !m.counts_for_mfa()).count() == 2);
    }

    #[test]
    fn an_unrecognised_phone_type_is_not_a_mobile_phone() {
        let phone = "#microsoft.graph.phoneAuthenticationMethod";
        assert_eq!(
            MethodKind::from_odata(phone, Some("MOBILE")),
            Some(MethodKind::MobilePhone)
        );
        assert_eq!(
            MethodKind::from_odata(phone, Some("unknownFutureValue")),
            None
        );
        assert_eq!(MethodKind::from_odata(phone, Some("")), None);
        assert_eq!(MethodKind::from_odata(phone, None), None);
    }

    #[test]
    fn odata_round_trips_for_every_method_kind() {
        for kind in MethodKind::ALL {
            let (odata, phone) = kind.odata();
            assert_eq!(MethodKind::from_odata(odata, phone), Some(*kind));
        }
    }
}
