//! A Conditional Access policy as Graph returns it (`conditionalAccessPolicy`, beta), read into
//! what the coverage judge needs: who it targets, which applications, the conditions that
//! narrow when it applies, and whether its grant requires MFA.
//!
//! Reading is lenient and never fails: Graph adds properties and enum values over time
//! (`authenticationFlows`, `insiderRiskLevels`, `verifiedID` controls), and a policy mfactl does
//! not fully understand must not stop a plan. Every part that is not understood is kept as an
//! [`CaPolicy::unjudged`] note instead, so that the judge says "unknown" rather than guess:
//! a condition mfactl cannot read could narrow when the policy applies, and a grant control it
//! does not know could be satisfied without MFA. Every text taken from the policy is made
//! printable here, once (names and ids from Graph are hostile). Nothing here does I/O.
//!
//! Shapes and values follow Microsoft's beta schema (`conditionalAccessConditionSet`,
//! `conditionalAccessUsers`, `conditionalAccessApplications`, `conditionalAccessGrantControls`,
//! `conditionalAccessGuestsOrExternalUsers`, `authenticationStrengthPolicy`) and the Graph
//! reference pages of those types.

use serde_json::{Map, Value};

use crate::graph::wire::conditional_access as schema;
use crate::text::printable_capped;

/// The longest text from a policy a message repeats (a name, an id, a filter rule).
const MAX_TEXT: usize = 80;

/// The built-in authentication strengths, all of which satisfy MFA (Graph reference,
/// `authenticationStrengthPolicy`): Multifactor authentication, Passwordless MFA,
/// Phishing-resistant MFA. Used only when Graph's answer names a strength without saying
/// whether it satisfies MFA (`requirementsSatisfied`).
const BUILT_IN_MFA_STRENGTHS: [&str; 3] = [
    "00000000-0000-0000-0000-000000000002",
    "00000000-0000-0000-0000-000000000003",
    "00000000-0000-0000-0000-000000000004",
];

/// One policy, as the judge sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaPolicy {
    /// The policy's id (printable).
    pub id: String,
    /// `displayName` (printable; the id when it has none).
    pub name: String,
    pub state: PolicyState,
    /// `conditions.users`; `None` when the policy targets no users (workload identities).
    pub users: Option<UserScope>,
    pub applications: Applications,
    /// Conditions that narrow when the policy applies, each described (`locations: all except
    /// AllTrusted`).
    pub narrowing: Vec<String>,
    pub grant: Grant,
    /// Parts of the policy mfactl does not understand (an unknown condition, a malformed
    /// value), each described: a policy with any cannot be said to require MFA.
    pub unjudged: Vec<String>,
}

/// `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyState {
    Enabled,
    /// `enabledForReportingButNotEnforced`: evaluated and logged, never enforced.
    ReportOnly,
    Disabled,
    /// A value this build does not know (printable).
    Other(String),
}

/// `conditions.users`: object ids are kept lower-case, as the directory compares them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserScope {
    /// `includeUsers` holds `All`.
    pub all: bool,
    pub include_users: Vec<String>,
    pub include_groups: Vec<String>,
    pub include_roles: Vec<String>,
    pub include_guests: Option<Guests>,
    pub exclude_users: Vec<String>,
    pub exclude_groups: Vec<String>,
    pub exclude_roles: Vec<String>,
    pub exclude_guests: Option<Guests>,
}

/// Guest and external users a policy includes or excludes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Guests {
    /// The legacy `GuestsOrExternalUsers` value of `includeUsers`/`excludeUsers`: every guest
    /// and external user.
    All,
    /// `includeGuestsOrExternalUsers`/`excludeGuestsOrExternalUsers`: these kinds
    /// (`guestOrExternalUserTypes`, a flags enum Graph sends as a comma-separated string), from
    /// all tenants or only some (`externalTenants`).
    Types {
        types: Vec<String>,
        /// `externalTenants.membershipKind` is `enumerated`: only users from listed tenants.
        enumerated_tenants: bool,
    },
}

/// `conditions.applications`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applications {
    /// `includeApplications: [All]`: every cloud app (exclusions and a filter are narrowing
    /// conditions, listed in [`CaPolicy::narrowing`]).
    All,
    /// Some applications only (ids or groups such as `Office365`; printable).
    Some(Vec<String>),
    /// User actions (`urn:user:registersecurityinfo`...), not sign-ins to applications.
    UserActions(Vec<String>),
    /// Authentication contexts (`c1`...), required by applications for some actions only.
    AuthenticationContexts(Vec<String>),
    /// `None`, or nothing at all.
    None,
}

/// What the grant controls ask of a sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Whether the grant requires MFA on every path through it.
    pub requires: GrantVerdict,
    /// Whether it names MFA at all (`mfa`, or an authentication strength): a policy that does
    /// is a candidate for the closest one when no policy covers a user.
    pub mentions_mfa: bool,
}

/// Whether a grant requires MFA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantVerdict {
    Mfa,
    /// It does not; why, e.g. `accepts compliantDevice instead of MFA`.
    NotMfa(String),
    /// It cannot be told (an authentication strength without `requirementsSatisfied`, an
    /// unknown operator); why.
    Unknown(String),
}

impl CaPolicy {
    /// Reads one policy from Graph's JSON; never fails (see the module documentation).
    pub fn from_json(json: &Value) -> CaPolicy {
        let mut unjudged = Vec::new();
        let object = json.as_object();
        let text = |key: &str| object.and_then(|o| o.get(key)).and_then(Value::as_str);
        let id = shown(text("id").unwrap_or_default());
        let name = text("displayName")
            .filter(|n| !n.trim().is_empty())
            .map_or_else(|| id.clone(), shown);
        let state = match text("state") {
            Some("enabled") => PolicyState::Enabled,
            Some("enabledForReportingButNotEnforced") => PolicyState::ReportOnly,
            Some("disabled") => PolicyState::Disabled,
            Some(other) => PolicyState::Other(shown(other)),
            None => PolicyState::Other("(no state)".to_owned()),
        };
        let empty = Map::new();
        let conditions = match object.and_then(|o| o.get("conditions")) {
            Some(Value::Object(conditions)) => conditions,
            Some(Value::Null) | None => {
                unjudged.push("it has no conditions".to_owned());
                &empty
            }
            Some(_) => {
                unjudged.push("its conditions are not an object".to_owned());
                &empty
            }
        };
        let mut reader = Conditions {
            narrowing: Vec::new(),
            unjudged,
        };
        let users = reader.users(conditions.get("users"));
        let applications = reader.applications(conditions.get("applications"));
        reader.others(conditions);
        let grant = grant(object.and_then(|o| o.get("grantControls")));
        CaPolicy {
            id,
            name,
            state,
            users,
            applications,
            narrowing: reader.narrowing,
            grant,
            unjudged: reader.unjudged,
        }
    }

    /// The policy as messages name it: `"Require MFA for staff"`.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.name)
    }
}

/// Text from Graph, safe to show and of bounded length.
fn shown(text: &str) -> String {
    printable_capped(text, MAX_TEXT)
}

/// A list of strings, or `None` (with a note) when the value is something else. `null` and a
/// missing key are an empty list.
fn strings(value: Option<&Value>, what: &str, unjudged: &mut Vec<String>) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(text) => out.push(text.to_owned()),
                    None => unjudged.push(format!("{what} holds a value that is not a string")),
                }
            }
            out
        }
        Some(_) => {
            unjudged.push(format!("{what} is not a list"));
            Vec::new()
        }
    }
}

/// Whether a JSON value says nothing: null, an empty list, an empty object or string.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.iter().all(|(k, v)| k.starts_with('@') || is_empty(v)),
        Value::String(text) => text.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// `a, b, c`, each made printable, at most five and a count of the rest.
fn listed(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut out: Vec<String> = items.iter().take(SHOWN).map(|i| shown(i)).collect();
    if items.len() > SHOWN {
        out.push(format!("{} more", items.len() - SHOWN));
    }
    out.join(", ")
}

fn is_all(items: &[String]) -> bool {
    items.len() == 1 && items[0].eq_ignore_ascii_case("all")
}

/// The conditions read so far.
struct Conditions {
    narrowing: Vec<String>,
    unjudged: Vec<String>,
}

impl Conditions {
    fn users(&mut self, value: Option<&Value>) -> Option<UserScope> {
        let users = match value {
            None | Some(Value::Null) => return None,
            Some(Value::Object(users)) => users,
            Some(_) => {
                self.unjudged
                    .push("conditions.users is not an object".to_owned());
                return None;
            }
        };
        let mut list = |key: &str| {
            strings(
                users.get(key),
                &format!("conditions.users.{key}"),
                &mut self.unjudged,
            )
        };
        let include_users = list("includeUsers");
        let exclude_users = list("excludeUsers");
        let mut scope = UserScope {
            include_groups: lower(list("includeGroups")),
            include_roles: lower(list("includeRoles")),
            exclude_groups: lower(list("excludeGroups")),
            exclude_roles: lower(list("excludeRoles")),
            ..UserScope::default()
        };
        for user in include_users {
            match user.as_str() {
                u if u.eq_ignore_ascii_case("All") => scope.all = true,
                u if u.eq_ignore_ascii_case("None") => {}
                u if u.eq_ignore_ascii_case("GuestsOrExternalUsers") => {
                    scope.include_guests = Some(Guests::All)
                }
                u => scope.include_users.push(u.to_ascii_lowercase()),
            }
        }
        for user in exclude_users {
            match user.as_str() {
                u if u.eq_ignore_ascii_case("GuestsOrExternalUsers") => {
                    scope.exclude_guests = Some(Guests::All)
                }
                u => scope.exclude_users.push(u.to_ascii_lowercase()),
            }
        }
        for (key, slot) in [
            ("includeGuestsOrExternalUsers", &mut scope.include_guests),
            ("excludeGuestsOrExternalUsers", &mut scope.exclude_guests),
        ] {
            match users.get(key) {
                None | Some(Value::Null) => {}
                Some(value) => match guests(value) {
                    // The object names the kinds more precisely than the legacy value would.
                    Some(selected) => *slot = Some(selected),
                    None => self
                        .unjudged
                        .push(format!("conditions.users.{key} is not understood")),
                },
            }
        }
        for (key, value) in users {
            if !schema::USERS.contains(&key.as_str()) && !key.starts_with('@') && !is_empty(value) {
                self.unjudged
                    .push(format!("conditions.users.{} is not understood", shown(key)));
            }
        }
        Some(scope)
    }

    fn applications(&mut self, value: Option<&Value>) -> Applications {
        let apps = match value {
            None | Some(Value::Null) => return Applications::None,
            Some(Value::Object(apps)) => apps,
            Some(_) => {
                self.unjudged
                    .push("conditions.applications is not an object".to_owned());
                return Applications::None;
            }
        };
        let mut list = |key: &str| {
            strings(
                apps.get(key),
                &format!("conditions.applications.{key}"),
                &mut self.unjudged,
            )
        };
        let include = list("includeApplications");
        let exclude = list("excludeApplications");
        let actions = list("includeUserActions");
        let contexts = list("includeAuthenticationContextClassReferences");
        for (key, value) in apps {
            if !schema::APPLICATIONS.contains(&key.as_str())
                && !key.starts_with('@')
                && !is_empty(value)
            {
                self.unjudged.push(format!(
                    "conditions.applications.{} is not understood",
                    shown(key)
                ));
            }
        }
        let included: Vec<String> = include
            .into_iter()
            .filter(|app| !app.eq_ignore_ascii_case("None"))
            .collect();
        // Global Secure Access traffic in place of (or beside) cloud apps: not judged.
        for key in ["globalSecureAccess", "networkAccess"] {
            if apps.get(key).is_some_and(|value| !value.is_null()) {
                self.unjudged.push(format!(
                    "conditions.applications.{key} (Global Secure Access traffic) is not judged"
                ));
            }
        }
        if included.is_empty() {
            return if !actions.is_empty() {
                Applications::UserActions(actions.iter().map(|a| shown(a)).collect())
            } else if !contexts.is_empty() {
                Applications::AuthenticationContexts(contexts.iter().map(|c| shown(c)).collect())
            } else {
                Applications::None
            };
        }
        if !is_all(&included) && included.iter().any(|a| a.eq_ignore_ascii_case("all")) {
            self.unjudged.push(
                "conditions.applications.includeApplications holds All beside other values"
                    .to_owned(),
            );
        }
        if !exclude.is_empty() {
            self.narrowing
                .push(format!("applications: all except {}", listed(&exclude)));
        }
        if let Some(filter) = apps.get("applicationFilter").filter(|f| !is_empty(f)) {
            self.narrowing
                .push(format!("applications: {}", filter_text(filter)));
        }
        if included.iter().any(|a| a.eq_ignore_ascii_case("all")) {
            Applications::All
        } else {
            Applications::Some(included.iter().map(|a| shown(a)).collect())
        }
    }

    /// Every condition other than users and applications: narrowing, empty, or not understood.
    fn others(&mut self, conditions: &Map<String, Value>) {
        for (key, value) in conditions {
            if matches!(key.as_str(), "users" | "applications") || key.starts_with('@') {
                continue;
            }
            if is_empty(value) {
                continue;
            }
            let narrowing = match key.as_str() {
                "clientAppTypes" => self.client_app_types(value),
                "platforms" => self.include_exclude(
                    value,
                    "platforms",
                    ("includePlatforms", "excludePlatforms"),
                    "device platforms",
                ),
                "locations" => self.include_exclude(
                    value,
                    "locations",
                    ("includeLocations", "excludeLocations"),
                    "locations",
                ),
                "deviceStates" => self.include_exclude(
                    value,
                    "deviceStates",
                    ("includeStates", "excludeStates"),
                    "device states",
                ),
                "devices" => self.devices(value),
                "signInRiskLevels" => self.levels(value, key, "sign-in risk"),
                "userRiskLevels" => self.levels(value, key, "user risk"),
                "servicePrincipalRiskLevels" => self.levels(value, key, "service principal risk"),
                "insiderRiskLevels" => Some(format!("insider risk: {}", flags_text(value))),
                "agentIdRiskLevels" => Some(format!("agent identity risk: {}", flags_text(value))),
                "authenticationFlows" => {
                    let methods = value.get("transferMethods").unwrap_or(value);
                    let text = flags_text(methods);
                    (!text.eq_ignore_ascii_case("none"))
                        .then(|| format!("authentication flows: {text}"))
                }
                "clientApplications" => {
                    Some("client applications: only some service principals or agents".to_owned())
                }
                other => {
                    self.unjudged
                        .push(format!("the condition {} is not understood", shown(other)));
                    None
                }
            };
            self.narrowing.extend(narrowing);
        }
    }

    fn client_app_types(&mut self, value: &Value) -> Option<String> {
        let types = strings(Some(value), "conditions.clientAppTypes", &mut self.unjudged);
        (!types.is_empty() && !types.iter().any(|t| t.eq_ignore_ascii_case("all")))
            .then(|| format!("client apps: only {}", listed(&types)))
    }

    /// A `{include..., exclude...}` condition: narrowing unless it includes `All` (any case)
    /// and excludes nothing.
    fn include_exclude(
        &mut self,
        value: &Value,
        name: &str,
        (include_key, exclude_key): (&str, &str),
        what: &str,
    ) -> Option<String> {
        let Some(object) = value.as_object() else {
            self.unjudged
                .push(format!("conditions.{name} is not an object"));
            return None;
        };
        let include = strings(
            object.get(include_key),
            &format!("conditions.{name}.{include_key}"),
            &mut self.unjudged,
        );
        let exclude = strings(
            object.get(exclude_key),
            &format!("conditions.{name}.{exclude_key}"),
            &mut self.unjudged,
        );
        let all = include.is_empty() || include.iter().any(|i| i.eq_ignore_ascii_case("all"));
        match (all, exclude.is_empty()) {
            (true, true) => None,
            (true, false) => Some(format!("{what}: all except {}", listed(&exclude))),
            (false, true) => Some(format!("{what}: only {}", listed(&include))),
            (false, false) => Some(format!(
                "{what}: only {}, except {}",
                listed(&include),
                listed(&exclude)
            )),
        }
    }

    fn devices(&mut self, value: &Value) -> Option<String> {
        let Some(object) = value.as_object() else {
            self.unjudged
                .push("conditions.devices is not an object".to_owned());
            return None;
        };
        let mut parts = Vec::new();
        if let Some(filter) = object.get("deviceFilter").filter(|f| !is_empty(f)) {
            parts.push(format!("device filter: {}", filter_text(filter)));
        }
        let include = strings(
            object.get("includeDevices"),
            "conditions.devices.includeDevices",
            &mut self.unjudged,
        );
        if !include.is_empty() && !is_all(&include) {
            parts.push(format!("devices: only {}", listed(&include)));
        }
        for key in [
            "excludeDevices",
            "includeDeviceStates",
            "excludeDeviceStates",
        ] {
            let items = strings(
                object.get(key),
                &format!("conditions.devices.{key}"),
                &mut self.unjudged,
            );
            let everything = key == "includeDeviceStates" && is_all(&items);
            if !items.is_empty() && !everything {
                parts.push(format!("devices {key}: {}", listed(&items)));
            }
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn levels(&mut self, value: &Value, key: &str, what: &str) -> Option<String> {
        let levels = strings(
            Some(value),
            &format!("conditions.{key}"),
            &mut self.unjudged,
        );
        (!levels.is_empty()).then(|| format!("{what}: {}", listed(&levels)))
    }
}

fn lower(items: Vec<String>) -> Vec<String> {
    items
        .into_iter()
        .map(|item| item.to_ascii_lowercase())
        .collect()
}

/// A flags value (`"low,medium"`) or a list of them, as text.
fn flags_text(value: &Value) -> String {
    match value {
        Value::String(text) => shown(text),
        Value::Array(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect();
            listed(&items)
        }
        other => shown(&other.to_string()),
    }
}

/// `(exclude) device.isCompliant -eq True`: a `conditionalAccessFilter`.
fn filter_text(filter: &Value) -> String {
    let mode = filter.get("mode").and_then(Value::as_str).unwrap_or("?");
    let rule = filter.get("rule").and_then(Value::as_str).unwrap_or("?");
    format!("({}) {}", shown(mode), shown(rule))
}

/// `conditionalAccessGuestsOrExternalUsers`.
fn guests(value: &Value) -> Option<Guests> {
    let object = value.as_object()?;
    let types = match object.get("guestOrExternalUserTypes")? {
        Value::String(text) => text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("none"))
            .map(str::to_owned)
            .collect(),
        _ => return None,
    };
    let enumerated_tenants = match object.get("externalTenants") {
        None | Some(Value::Null) => false,
        Some(tenants) => match tenants.get("membershipKind").and_then(Value::as_str) {
            Some(kind) if kind.eq_ignore_ascii_case("all") => false,
            Some(kind) if kind.eq_ignore_ascii_case("enumerated") => true,
            _ => return None,
        },
    };
    Some(Guests::Types {
        types,
        enumerated_tenants,
    })
}

/// `grantControls`: whether every way through it requires MFA.
fn grant(value: Option<&Value>) -> Grant {
    let not = |why: &str, mentions_mfa| Grant {
        requires: GrantVerdict::NotMfa(why.to_owned()),
        mentions_mfa,
    };
    let controls = match value {
        None | Some(Value::Null) => {
            return not("has no grant controls (session controls only)", false);
        }
        Some(Value::Object(controls)) => controls,
        Some(_) => {
            return Grant {
                requires: GrantVerdict::Unknown("its grantControls are not an object".to_owned()),
                mentions_mfa: false,
            };
        }
    };
    let mut unjudged = Vec::new();
    let built_in = strings(
        controls.get("builtInControls"),
        "grantControls.builtInControls",
        &mut unjudged,
    );
    let custom = strings(
        controls.get("customAuthenticationFactors"),
        "grantControls.customAuthenticationFactors",
        &mut unjudged,
    );
    let terms = strings(
        controls.get("termsOfUse"),
        "grantControls.termsOfUse",
        &mut unjudged,
    );
    let strength = controls
        .get("authenticationStrength")
        .filter(|s| !s.is_null());
    let mentions_mfa = built_in.iter().any(|c| c.eq_ignore_ascii_case("mfa")) || strength.is_some();
    if let Some(first) = unjudged.into_iter().next() {
        return Grant {
            requires: GrantVerdict::Unknown(first),
            mentions_mfa,
        };
    }
    if built_in.iter().any(|c| c.eq_ignore_ascii_case("block")) {
        return not("blocks access rather than requiring MFA", mentions_mfa);
    }
    // Each control, and whether it is MFA: Some(true) yes, Some(false) no, None unknown.
    let mut alternatives: Vec<(String, Option<bool>)> = Vec::new();
    for control in &built_in {
        alternatives.push((shown(control), Some(control.eq_ignore_ascii_case("mfa"))));
    }
    for factor in &custom {
        alternatives.push((format!("custom control {}", shown(factor)), Some(false)));
    }
    for term in &terms {
        alternatives.push((format!("terms of use {}", shown(term)), Some(false)));
    }
    if let Some(strength) = strength {
        alternatives.push(strength_is_mfa(strength));
    }
    if alternatives.is_empty() {
        return not("requires no grant control", mentions_mfa);
    }
    let operator = match controls.get("operator") {
        None | Some(Value::Null) => "OR".to_owned(),
        Some(Value::String(op)) => op.to_ascii_uppercase(),
        Some(_) => String::new(),
    };
    let requires = combine(&operator, &alternatives);
    Grant {
        requires,
        mentions_mfa,
    }
}

/// Whether a grant whose controls are `alternatives` (each a name, and whether it is MFA: yes,
/// no, or cannot tell) requires MFA under `operator` (`AND`: one MFA control is enough; `OR`:
/// every one must be MFA).
fn combine(operator: &str, alternatives: &[(String, Option<bool>)]) -> GrantVerdict {
    match operator {
        // All of them are required: one MFA control is enough.
        "AND" => {
            if alternatives.iter().any(|(_, mfa)| *mfa == Some(true)) {
                GrantVerdict::Mfa
            } else if let Some((name, _)) = alternatives.iter().find(|(_, mfa)| mfa.is_none()) {
                GrantVerdict::Unknown(format!("cannot tell whether {name} requires MFA"))
            } else {
                GrantVerdict::NotMfa(format!(
                    "requires {} but not MFA",
                    alternatives
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ))
            }
        }
        // Any one of them is enough: every one must be MFA.
        "OR" => {
            let others: Vec<&str> = alternatives
                .iter()
                .filter(|(_, mfa)| *mfa == Some(false))
                .map(|(n, _)| n.as_str())
                .collect();
            if !others.is_empty() {
                let why = if alternatives.iter().any(|(_, mfa)| *mfa == Some(true)) {
                    format!("accepts {} instead of MFA", others.join(" or "))
                } else {
                    format!("requires {} rather than MFA", others.join(" or "))
                };
                GrantVerdict::NotMfa(why)
            } else if let Some((name, _)) = alternatives.iter().find(|(_, mfa)| mfa.is_none()) {
                GrantVerdict::Unknown(format!("cannot tell whether {name} requires MFA"))
            } else {
                GrantVerdict::Mfa
            }
        }
        _ => GrantVerdict::Unknown(format!(
            "its grant operator {} is not AND or OR",
            shown(operator)
        )),
    }
}

/// An authentication strength as a grant alternative: its name, and whether it satisfies MFA
/// (`requirementsSatisfied` holds `mfa`; a built-in strength by its id when Graph did not say).
fn strength_is_mfa(strength: &Value) -> (String, Option<bool>) {
    let name = strength
        .get("displayName")
        .and_then(Value::as_str)
        .or_else(|| strength.get("id").and_then(Value::as_str))
        .map_or_else(
            || "an authentication strength".to_owned(),
            |n| format!("authentication strength {}", shown(n)),
        );
    let satisfied = match strength.get("requirementsSatisfied") {
        Some(Value::String(flags)) => Some(
            flags
                .split(',')
                .any(|f| f.trim().eq_ignore_ascii_case("mfa")),
        ),
        _ => strength
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| BUILT_IN_MFA_STRENGTHS.contains(id))
            .map(|_| true),
    };
    (name, satisfied)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn policy(grant: Value, conditions: Value) -> CaPolicy {
        CaPolicy::from_json(&json!({
            "id": "p1", "displayName": "Require MFA", "state": "enabled",
            "conditions": conditions, "grantControls": grant,
        }))
    }

    fn all_users_all_apps() -> Value {
        json!({
            "users": { "includeUsers": ["All"], "excludeUsers": [], "includeGroups": [],
                       "excludeGroups": [], "includeRoles": [], "excludeRoles": [],
                       "includeGuestsOrExternalUsers": null, "excludeGuestsOrExternalUsers": null },
            "applications": { "includeApplications": ["All"], "excludeApplications": [],
                              "includeUserActions": [] },
            "clientAppTypes": ["all"], "platforms": null, "locations": null,
            "signInRiskLevels": [], "userRiskLevels": [], "servicePrincipalRiskLevels": [],
            "devices": null, "clientApplications": null
        })
    }

    fn mfa() -> Value {
        json!({ "operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": [],
                "termsOfUse": [], "authenticationStrength@odata.context": "x",
                "authenticationStrength": null })
    }

    #[test]
    fn microsofts_require_mfa_for_all_users_reads_without_narrowing() {
        let p = policy(mfa(), all_users_all_apps());
        assert_eq!(p.state, PolicyState::Enabled);
        assert!(p.users.as_ref().unwrap().all);
        assert_eq!(p.applications, Applications::All);
        assert!(p.narrowing.is_empty(), "{:?}", p.narrowing);
        assert!(p.unjudged.is_empty(), "{:?}", p.unjudged);
        assert_eq!(p.grant.requires, GrantVerdict::Mfa);
        assert!(p.grant.mentions_mfa);
    }

    #[test]
    fn an_or_grant_needs_every_alternative_to_be_mfa() {
        let or = |controls: Value, strength: Value| {
            policy(
                json!({ "operator": "OR", "builtInControls": controls,
                        "authenticationStrength": strength }),
                all_users_all_apps(),
            )
            .grant
        };
        let device = or(json!(["mfa", "compliantDevice"]), Value::Null);
        assert_eq!(
            device.requires,
            GrantVerdict::NotMfa("accepts compliantDevice instead of MFA".into())
        );
        assert!(device.mentions_mfa);
        let strength = json!({ "id": "x", "displayName": "Phish", "requirementsSatisfied": "mfa" });
        assert_eq!(or(json!([]), strength).requires, GrantVerdict::Mfa);
        let weak = json!({ "id": "x", "displayName": "Weak", "requirementsSatisfied": "none" });
        assert!(matches!(
            or(json!([]), weak).requires,
            GrantVerdict::NotMfa(_)
        ));
        let built_in = json!({ "id": "00000000-0000-0000-0000-000000000004" });
        assert_eq!(or(json!(["mfa"]), built_in).requires, GrantVerdict::Mfa);
        let custom = json!({ "id": "1234" });
        assert!(matches!(
            or(json!(["mfa"]), custom).requires,
            GrantVerdict::Unknown(_)
        ));
        // A control this build does not know could be met without MFA.
        assert!(matches!(
            or(json!(["mfa", "verifiedID"]), Value::Null).requires,
            GrantVerdict::NotMfa(_)
        ));
        assert!(matches!(
            or(json!(["block"]), Value::Null).requires,
            GrantVerdict::NotMfa(_)
        ));
    }

    #[test]
    fn an_and_grant_needs_one_mfa_control() {
        let and = |controls: Value| {
            policy(
                json!({ "operator": "AND", "builtInControls": controls }),
                all_users_all_apps(),
            )
            .grant
            .requires
        };
        assert_eq!(and(json!(["mfa", "compliantDevice"])), GrantVerdict::Mfa);
        assert_eq!(and(json!(["passwordChange", "mfa"])), GrantVerdict::Mfa);
        assert!(matches!(
            and(json!(["compliantDevice"])),
            GrantVerdict::NotMfa(_)
        ));
        assert!(matches!(
            policy(
                json!({ "operator": "XOR", "builtInControls": ["mfa"] }),
                all_users_all_apps()
            )
            .grant
            .requires,
            GrantVerdict::Unknown(_)
        ));
        assert!(matches!(
            policy(Value::Null, all_users_all_apps()).grant.requires,
            GrantVerdict::NotMfa(_)
        ));
    }

    #[test]
    fn narrowing_conditions_are_named() {
        let mut conditions = all_users_all_apps();
        conditions["locations"] =
            json!({ "includeLocations": ["All"], "excludeLocations": ["AllTrusted"] });
        conditions["clientAppTypes"] = json!(["browser", "mobileAppsAndDesktopClients"]);
        conditions["platforms"] = json!({ "includePlatforms": ["android", "iOS"],
                                          "excludePlatforms": [] });
        conditions["signInRiskLevels"] = json!(["high"]);
        conditions["devices"] = json!({ "deviceFilter": { "mode": "exclude",
                                        "rule": "device.isCompliant -eq True" } });
        conditions["applications"]["excludeApplications"] = json!(["app-1"]);
        let p = policy(mfa(), conditions);
        assert_eq!(
            p.narrowing,
            [
                "applications: all except app-1",
                "client apps: only browser, mobileAppsAndDesktopClients",
                "device filter: (exclude) device.isCompliant -eq True",
                "locations: all except AllTrusted",
                "device platforms: only android, iOS",
                "sign-in risk: high",
            ]
        );
        assert!(p.unjudged.is_empty());
    }

    #[test]
    fn what_is_not_understood_is_kept_not_guessed() {
        let mut conditions = all_users_all_apps();
        conditions["timeOfDay"] = json!({ "from": "09:00" });
        conditions["users"]["includeUsers"] = json!("All");
        let p = policy(mfa(), conditions);
        assert_eq!(p.unjudged.len(), 2, "{:?}", p.unjudged);
        let weird = CaPolicy::from_json(&json!("not a policy"));
        assert!(!weird.unjudged.is_empty());
        assert_eq!(weird.state, PolicyState::Other("(no state)".into()));
    }

    #[test]
    fn users_and_guests_are_read_in_both_forms() {
        let mut conditions = all_users_all_apps();
        conditions["users"] = json!({
            "includeUsers": ["GuestsOrExternalUsers", "AB-12"], "includeGroups": ["G1"],
            "excludeGuestsOrExternalUsers": {
                "guestOrExternalUserTypes": "internalGuest,b2bCollaborationMember",
                "externalTenants": { "@odata.type": "#microsoft.graph.conditionalAccessEnumeratedExternalTenants",
                                     "membershipKind": "enumerated", "members": ["t1"] } }
        });
        let users = policy(mfa(), conditions).users.unwrap();
        assert!(!users.all);
        assert_eq!(users.include_users, ["ab-12"]);
        assert_eq!(users.include_groups, ["g1"]);
        assert_eq!(users.include_guests, Some(Guests::All));
        assert_eq!(
            users.exclude_guests,
            Some(Guests::Types {
                types: vec!["internalGuest".into(), "b2bCollaborationMember".into()],
                enumerated_tenants: true
            })
        );
    }

    #[test]
    fn applications_other_than_all_are_told_apart() {
        let apps = |value: Value| {
            let mut conditions = all_users_all_apps();
            conditions["applications"] = value;
            policy(mfa(), conditions).applications
        };
        assert_eq!(
            apps(json!({ "includeApplications": ["Office365"] })),
            Applications::Some(vec!["Office365".into()])
        );
        assert_eq!(
            apps(json!({ "includeApplications": [],
                         "includeUserActions": ["urn:user:registersecurityinfo"] })),
            Applications::UserActions(vec!["urn:user:registersecurityinfo".into()])
        );
        assert_eq!(
            apps(json!({ "includeApplications": ["None"] })),
            Applications::None
        );
        assert_eq!(
            apps(
                json!({ "includeApplications": [], "includeAuthenticationContextClassReferences": ["c1"] })
            ),
            Applications::AuthenticationContexts(vec!["c1".into()])
        );
    }

    #[test]
    fn names_from_graph_are_made_printable() {
        let p = CaPolicy::from_json(&json!({
            "id": "p", "displayName": "evil\u{1b}[2J\u{202e}", "state": "enabled",
            "conditions": all_users_all_apps(), "grantControls": mfa() }));
        assert!(!p.name.contains('\u{1b}') && !p.name.contains('\u{202e}'));
        assert!(p.quoted().starts_with("\"evil"));
    }
}
