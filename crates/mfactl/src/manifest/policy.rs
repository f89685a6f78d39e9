//! The manifest's `policy:` section: the parts of the tenant's `authenticationMethodsPolicy`
//! (graph-api.md §4) that the admin wants managed, checked offline with every problem located.
//!
//! Only the sub-objects the section names are managed, and inside one only the properties it
//! names. Property names are Graph's, so that the section reads like the policy itself. A target
//! may name a group by display name: that is kept as written here and resolved at plan time
//! (the engine's job; this module never touches the network).
//!
//! The limits are the emulator's (`src/emulator/state/policy.rs`), which follow Microsoft's
//! Graph reference and Entra docs; keep the two equal so that the manifest refuses offline
//! exactly what Graph would refuse after the first request.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;
use serde_saphyr::Spanned;

use super::problem::{Code, Location, Problems, closest, quoted};

/// `advancedConfigState` values a PATCH may send (emulator `STATES`; Graph reference:
/// `unknownFutureValue` is the evolvable-enum sentinel and is not sent).
pub const STATES: &[&str] = &["default", "enabled", "disabled"];
/// `authenticationMethodTargetType` values (emulator `TARGET_TYPES`; Graph reference).
pub const TARGET_TYPES: &[&str] = &["group", "user"];
/// `targetedAuthenticationMethod`: "can be `Fido2` or `microsoftAuthenticator`" (Graph reference,
/// v1.0 and beta; emulator `CAMPAIGN_METHODS`).
pub const CAMPAIGN_METHODS: &[&str] = &["microsoftAuthenticator", "Fido2"];
/// `snoozeDurationInDays`: 0 to 14 (Graph reference; emulator `SNOOZE_DAYS`).
pub const SNOOZE_DAYS: std::ops::RangeInclusive<i64> = 0..=14;
/// `voiceReportingCode`: one digit (the emulator's strict choice, `VOICE_CODES`: the digit pressed
/// on the phone).
pub const VOICE_CODES: std::ops::RangeInclusive<i64> = 0..=9;
/// System-preferred MFA takes one include group and one exclude group (Entra docs, "System-
/// preferred multifactor authentication"; emulator `system_credential_preferences`, `Some(1)`).
pub const SYSTEM_PREFERRED_MAX_TARGETS: usize = 1;
/// The target id meaning every user.
pub const ALL_USERS: &str = "all_users";

/// The managed parts of the policy, in the order the manifest and plans list them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredPolicy {
    pub parts: Vec<DesiredPart>,
}

/// One managed sub-object and the properties the manifest names in it, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredPart {
    pub part: PolicyPart,
    pub properties: Vec<DesiredProperty>,
}

/// The three sub-objects mfactl manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyPart {
    /// `systemCredentialPreferences`: system-preferred MFA.
    SystemCredentialPreferences,
    /// `registrationEnforcement.authenticationMethodsRegistrationCampaign`.
    RegistrationCampaign,
    /// `reportSuspiciousActivitySettings`.
    ReportSuspiciousActivity,
}

impl PolicyPart {
    pub const ALL: [PolicyPart; 3] = [
        PolicyPart::SystemCredentialPreferences,
        PolicyPart::RegistrationCampaign,
        PolicyPart::ReportSuspiciousActivity,
    ];

    /// The key under `policy:` (and in plans).
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyPart::SystemCredentialPreferences => "systemCredentialPreferences",
            PolicyPart::RegistrationCampaign => "registrationCampaign",
            PolicyPart::ReportSuspiciousActivity => "reportSuspiciousActivity",
        }
    }

    /// Where the sub-object sits in Graph's policy.
    pub fn graph_path(self) -> &'static [&'static str] {
        match self {
            PolicyPart::SystemCredentialPreferences => &["systemCredentialPreferences"],
            PolicyPart::RegistrationCampaign => &[
                "registrationEnforcement",
                "authenticationMethodsRegistrationCampaign",
            ],
            PolicyPart::ReportSuspiciousActivity => &["reportSuspiciousActivitySettings"],
        }
    }

    /// The properties the manifest may name in this sub-object (Graph's names).
    pub fn properties(self) -> &'static [&'static str] {
        match self {
            PolicyPart::SystemCredentialPreferences => {
                &["state", "includeTargets", "excludeTargets"]
            }
            PolicyPart::RegistrationCampaign => &[
                "state",
                "snoozeDurationInDays",
                "enforceRegistrationAfterAllowedSnoozes",
                "includeTargets",
                "excludeTargets",
            ],
            PolicyPart::ReportSuspiciousActivity => {
                &["state", "includeTarget", "voiceReportingCode"]
            }
        }
    }
}

impl fmt::Display for PolicyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One property as the manifest wants it, with where it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredProperty {
    /// Graph's property name.
    pub name: &'static str,
    pub value: DesiredValue,
    pub line: u64,
    pub column: u64,
}

/// A property's wanted value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DesiredValue {
    /// A state, number or boolean, in Graph's spelling.
    Plain(Json),
    /// A target list: compared as a set.
    Targets(Vec<DesiredTarget>),
    /// `includeTarget`: one target.
    Target(DesiredTarget),
}

/// An include or exclude target as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredTarget {
    pub id: TargetId,
    /// `group` or `user`.
    pub target_type: &'static str,
    /// A campaign include target's method, in Graph's spelling (`microsoftAuthenticator` when
    /// the manifest leaves it out, as Graph defaults it).
    pub method: Option<&'static str>,
    pub line: u64,
    pub column: u64,
}

/// How a target names what it targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetId {
    AllUsers,
    /// An object id (lower-case GUID).
    ObjectId(String),
    /// A group's display name, resolved at plan time.
    DisplayName(String),
}

/// A YAML value with its position, whatever its shape.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Node {
    Text(String),
    Bool(bool),
    Integer(i64),
    /// Another number, as written back (`2.5`).
    Number(String),
    Null,
    List(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl Node {
    pub(super) fn describe(&self) -> String {
        match self {
            Node::Text(text) => quoted(text),
            Node::Bool(value) => value.to_string(),
            Node::Integer(value) => value.to_string(),
            Node::Number(text) => text.clone(),
            Node::Null => "null".to_string(),
            Node::List(_) => "a list".to_string(),
            Node::Map(_) => "a mapping".to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Node, E> {
        Ok(Node::Text(text.to_string()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Node, E> {
        Ok(Node::Text(text))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Node, E> {
        Ok(Node::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Node, E> {
        Ok(Node::Integer(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Node, E> {
        Ok(i64::try_from(value).map_or_else(|_| Node::Number(value.to_string()), Node::Integer))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Node, E> {
        Ok(Node::Number(value.to_string()))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Node, E> {
        Ok(Node::Number(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Node, E> {
        Ok(Node::Number(format!("{value:?}")))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

fn at<T>(spanned: &Spanned<T>) -> Location {
    Location::Yaml {
        line: spanned.referenced.line().max(1),
        column: spanned.referenced.column().max(1),
    }
}

fn line_column<T>(spanned: &Spanned<T>) -> (u64, u64) {
    (
        spanned.referenced.line().max(1),
        spanned.referenced.column().max(1),
    )
}

/// Checks the value of `policy:`, recording every problem; the policy when it is usable.
pub(super) fn check(node: &Spanned<Node>, problems: &mut Problems) -> Option<DesiredPolicy> {
    let before = problems.len();
    let Node::Map(entries) = &node.value else {
        problems.push(
            Code::WrongType,
            at(node),
            None,
            format!(
                "policy must be a mapping with systemCredentialPreferences, registrationCampaign \
                 or reportSuspiciousActivity, not {}",
                node.value.describe()
            ),
        );
        return None;
    };
    let allowed: Vec<&str> = PolicyPart::ALL.iter().map(|p| p.as_str()).collect();
    let mut seen = HashSet::new();
    let mut parts = Vec::new();
    for (key, value) in entries {
        let Some(part) = PolicyPart::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == key.value)
        else {
            let graph_name = match key.value.as_str() {
                "registrationEnforcement" | "authenticationMethodsRegistrationCampaign" => {
                    Some("registrationCampaign")
                }
                "reportSuspiciousActivitySettings" => Some("reportSuspiciousActivity"),
                _ => None,
            };
            unknown(problems, key, "policy: ", &allowed, graph_name);
            continue;
        };
        if !seen.insert(part) {
            duplicate(problems, key);
            continue;
        }
        if let Some(desired) = check_part(part, value, problems) {
            parts.push(desired);
        }
    }
    parts.sort_by_key(|p| p.part);
    (problems.len() == before).then_some(DesiredPolicy { parts })
}

fn unknown(
    problems: &mut Problems,
    key: &Spanned<String>,
    subject: &str,
    allowed: &[&str],
    hint: Option<&str>,
) {
    let suggestion = hint.or_else(|| closest(&key.value, allowed.iter().copied()));
    let hint = suggestion.map_or_else(String::new, |name| format!("did you mean {name}? "));
    problems.push(
        Code::UnknownField,
        at(key),
        None,
        format!(
            "{subject}unknown field {}; {hint}allowed here: {}",
            quoted(&key.value),
            allowed.join(", ")
        ),
    );
}

fn duplicate(problems: &mut Problems, key: &Spanned<String>) {
    problems.push(
        Code::DuplicateField,
        at(key),
        None,
        format!(
            "{} is given twice in this mapping; keep one",
            quoted(&key.value)
        ),
    );
}

fn check_part(
    part: PolicyPart,
    node: &Spanned<Node>,
    problems: &mut Problems,
) -> Option<DesiredPart> {
    let Node::Map(entries) = &node.value else {
        problems.push(
            Code::WrongType,
            at(node),
            None,
            format!(
                "policy.{part} must be a mapping of Graph properties such as `state: enabled`, \
                 not {}",
                node.value.describe()
            ),
        );
        return None;
    };
    let subject = format!("policy.{part}: ");
    let allowed = part.properties();
    let mut seen = HashSet::new();
    let mut properties = Vec::new();
    for (key, value) in entries {
        let Some(name) = allowed.iter().copied().find(|name| *name == key.value) else {
            unknown(problems, key, &subject, allowed, None);
            continue;
        };
        if !seen.insert(name) {
            duplicate(problems, key);
            continue;
        }
        let path = format!("policy.{part}.{name}");
        if let Node::Null = value.value {
            problems.push(
                Code::NullValue,
                at(value),
                None,
                format!(
                    "{path} is null; leave the property out to leave it unmanaged, or give a value"
                ),
            );
            continue;
        }
        let checked = match name {
            "state" => one_of(value, STATES).map(DesiredValue::Plain),
            "snoozeDurationInDays" => integer_in(value, SNOOZE_DAYS),
            "voiceReportingCode" => integer_in(value, VOICE_CODES),
            "enforceRegistrationAfterAllowedSnoozes" => match value.value {
                Node::Bool(flag) => Some(DesiredValue::Plain(Json::Bool(flag))),
                ref other => {
                    problems.push(
                        Code::InvalidBool,
                        at(value),
                        None,
                        format!("{path} {} is not true or false", other.describe()),
                    );
                    None
                }
            },
            "includeTargets" | "excludeTargets" => {
                let campaign_include =
                    part == PolicyPart::RegistrationCampaign && name == "includeTargets";
                let max = (part == PolicyPart::SystemCredentialPreferences)
                    .then_some(SYSTEM_PREFERRED_MAX_TARGETS);
                targets(value, &path, campaign_include, max, problems).map(DesiredValue::Targets)
            }
            "includeTarget" => {
                if let Node::List(_) = value.value {
                    problems.push(
                        Code::WrongType,
                        at(value),
                        None,
                        format!(
                            "{path} is one target (`{{ id: all_users, targetType: group }}`), \
                             not a list: reportSuspiciousActivitySettings takes a single \
                             includeTarget"
                        ),
                    );
                    None
                } else {
                    target(value, &path, false, problems).map(DesiredValue::Target)
                }
            }
            _ => unreachable!("every allowed property is checked"),
        };
        // States and numbers are refused here, with one message each.
        let checked = match checked {
            Some(value) => Some(value),
            None if matches!(
                name,
                "state" | "snoozeDurationInDays" | "voiceReportingCode"
            ) =>
            {
                report_plain(value, &path, name, problems);
                None
            }
            None => None,
        };
        if let Some(checked) = checked {
            let (line, column) = line_column(value);
            properties.push(DesiredProperty {
                name,
                value: checked,
                line,
                column,
            });
        }
    }
    Some(DesiredPart { part, properties })
}

/// The problem for a state or number that [`one_of`] or [`integer_in`] refused.
fn report_plain(value: &Spanned<Node>, path: &str, name: &str, problems: &mut Problems) {
    let shown = value.value.describe();
    let (code, message) = match name {
        "state" => (
            Code::UnknownState,
            format!("{path} {shown} is not one of {}", STATES.join(", ")),
        ),
        "snoozeDurationInDays" => (
            Code::OutOfRange,
            format!(
                "{path} {shown} is not a whole number of days from {} to {}",
                SNOOZE_DAYS.start(),
                SNOOZE_DAYS.end()
            ),
        ),
        _ => (
            Code::OutOfRange,
            format!(
                "{path} {shown} is not a single digit from {} to {} (the key pressed on the phone)",
                VOICE_CODES.start(),
                VOICE_CODES.end()
            ),
        ),
    };
    problems.push(code, at(value), None, message);
}

/// A text value matched case-insensitively against `allowed`, returned in Graph's spelling.
fn one_of(value: &Spanned<Node>, allowed: &[&str]) -> Option<Json> {
    let Node::Text(text) = &value.value else {
        return None;
    };
    allowed
        .iter()
        .find(|name| name.eq_ignore_ascii_case(text.trim()))
        .map(|name| Json::String((*name).to_string()))
}

fn integer_in(value: &Spanned<Node>, range: std::ops::RangeInclusive<i64>) -> Option<DesiredValue> {
    match value.value {
        Node::Integer(number) if range.contains(&number) => {
            Some(DesiredValue::Plain(Json::from(number)))
        }
        _ => None,
    }
}

fn targets(
    value: &Spanned<Node>,
    path: &str,
    campaign_include: bool,
    max: Option<usize>,
    problems: &mut Problems,
) -> Option<Vec<DesiredTarget>> {
    let Node::List(items) = &value.value else {
        problems.push(
            Code::WrongType,
            at(value),
            None,
            format!(
                "{path} must be a list of targets (`[{{ id: all_users, targetType: group }}]`), \
                 not {}",
                value.value.describe()
            ),
        );
        return None;
    };
    let mut ok = true;
    if let Some(max) = max
        && items.len() > max
    {
        problems.push(
            Code::TooManyTargets,
            at(value),
            None,
            format!(
                "{path} has {} targets; Entra takes at most {max} here (one include group and \
                 one exclude group for system-preferred MFA): use one group that holds them all",
                items.len()
            ),
        );
        ok = false;
    }
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match target(
            item,
            &format!("{path}[{index}]"),
            campaign_include,
            problems,
        ) {
            Some(target) => out.push(target),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn target(
    value: &Spanned<Node>,
    path: &str,
    campaign_include: bool,
    problems: &mut Problems,
) -> Option<DesiredTarget> {
    let Node::Map(entries) = &value.value else {
        problems.push(
            Code::WrongType,
            at(value),
            None,
            format!(
                "{path} must be a target such as `{{ id: all_users, targetType: group }}`, not {}",
                value.value.describe()
            ),
        );
        return None;
    };
    let mut allowed = vec!["id", "targetType"];
    if campaign_include {
        allowed.push("targetedAuthenticationMethod");
    }
    let before = problems.len();
    let mut seen = HashSet::new();
    let (mut id, mut target_type, mut method) = (None, None, None);
    for (key, item) in entries {
        let Some(name) = allowed.iter().copied().find(|name| *name == key.value) else {
            unknown(problems, key, &format!("{path}: "), &allowed, None);
            continue;
        };
        if !seen.insert(name) {
            duplicate(problems, key);
            continue;
        }
        let at_item = at(item);
        match (name, &item.value) {
            ("id", Node::Text(text)) if !text.trim().is_empty() => {
                let text = text.trim();
                id = Some(if text.eq_ignore_ascii_case(ALL_USERS) {
                    TargetId::AllUsers
                } else if let Ok(guid) = uuid::Uuid::try_parse(text) {
                    TargetId::ObjectId(guid.hyphenated().to_string())
                } else {
                    TargetId::DisplayName(text.to_string())
                });
            }
            ("id", other) => problems.push(
                Code::InvalidTarget,
                at_item,
                None,
                format!(
                    "{path}.id {} is not a group's object id, display name or all_users",
                    other.describe()
                ),
            ),
            ("targetType", Node::Text(text))
                if TARGET_TYPES
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(text.trim())) =>
            {
                target_type = TARGET_TYPES
                    .iter()
                    .copied()
                    .find(|t| t.eq_ignore_ascii_case(text.trim()));
            }
            ("targetType", other) => problems.push(
                Code::InvalidTarget,
                at_item,
                None,
                format!(
                    "{path}.targetType {} is not one of {}",
                    other.describe(),
                    TARGET_TYPES.join(", ")
                ),
            ),
            (_, Node::Text(text))
                if CAMPAIGN_METHODS
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(text.trim())) =>
            {
                method = CAMPAIGN_METHODS
                    .iter()
                    .copied()
                    .find(|m| m.eq_ignore_ascii_case(text.trim()));
            }
            (_, other) => problems.push(
                Code::UnknownMethod,
                at_item,
                None,
                format!(
                    "{path}.targetedAuthenticationMethod {} is not one of {}",
                    other.describe(),
                    CAMPAIGN_METHODS.join(", ")
                ),
            ),
        }
    }
    for required in ["id", "targetType"] {
        if !seen.contains(required) {
            problems.push(
                Code::InvalidTarget,
                at(value),
                None,
                format!("{path} has no {required}; a target needs id and targetType"),
            );
        }
    }
    if problems.len() != before {
        return None;
    }
    let (id, target_type) = (id?, target_type?);
    if target_type == "user" && matches!(id, TargetId::DisplayName(_)) {
        problems.push(
            Code::InvalidTarget,
            at(value),
            None,
            format!(
                "{path}: a user target needs the user's object id (a GUID); only groups are \
                 found by display name"
            ),
        );
        return None;
    }
    let (line, column) = line_column(value);
    Some(DesiredTarget {
        id,
        target_type,
        method: campaign_include.then(|| method.unwrap_or("microsoftAuthenticator")),
        line,
        column,
    })
}
