//! The manifest's selectors: `allUsers:`, `groups:` and `exclude:`, whole populations that
//! carry the same fields as a user entry. They are checked here, offline, with every problem
//! located; the engine lists their members at plan time and [`resolve`] turns them into
//! desired users, each pinned to its object id.
//!
//! Precedence is field by field: a `users:` entry (with `defaults:`) beats a group, a group
//! beats `allUsers`. Two groups giving one user different values for one field is an error
//! naming the user and both groups, unless their `priority` differs (the lower number wins,
//! like Conditional Access's ordering; an entry with a priority beats one without).
//! `exclude:` takes users and groups' members out of `allUsers` and `groups`; a `users:` entry
//! still applies to them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::policy::Node;
use super::problem::{Code, Location, Problems, quoted, unknown_field_message};
use super::{DesiredUser, Origin, RawValue, Settings, check_user};
use crate::model::Field;

/// `allUsers:`, `groups:` and `exclude:` as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selectors {
    pub all_users: Option<AllUsers>,
    pub groups: Vec<GroupSelector>,
    pub exclude: Vec<Exclusion>,
}

impl Selectors {
    /// Whether the manifest names no population (only `users:` entries).
    pub fn is_empty(&self) -> bool {
        self.all_users.is_none() && self.groups.is_empty()
    }
}

/// Every user of the tenant of some kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllUsers {
    pub settings: Settings,
    pub user_type: UserTypes,
    /// Only enabled (`true`) or disabled (`false`) accounts; both when `None`.
    pub account_enabled: Option<bool>,
    pub line: u64,
}

/// `userType:` of `allUsers:`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserTypes {
    /// Members only (the default: guests' MFA is usually their home tenant's business).
    #[default]
    Member,
    Guest,
    All,
}

impl UserTypes {
    const NAMES: [&'static str; 3] = ["member", "guest", "all"];

    pub fn as_str(self) -> &'static str {
        match self {
            UserTypes::Member => "member",
            UserTypes::Guest => "guest",
            UserTypes::All => "all",
        }
    }
}

/// The transitive members of one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSelector {
    /// Display name or object id, as written (trimmed).
    pub group: String,
    pub settings: Settings,
    /// Lower wins over higher, and any over none.
    pub priority: Option<u32>,
    pub line: u64,
}

/// One `exclude:` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exclusion {
    pub excluded: Excluded,
    pub line: u64,
}

/// What an `exclude:` entry takes out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Excluded {
    /// A userPrincipalName or object id.
    User(String),
    /// A group's transitive members, by display name or object id.
    Group(String),
}

/// The keys of `allUsers:` besides the managed fields.
pub const ALL_USERS_KEYS: [&str; 2] = ["userType", "accountEnabled"];
/// The keys of a `groups:` entry besides the managed fields.
pub const GROUP_KEYS: [&str; 2] = ["group", "priority"];

fn at<T>(spanned: &Spanned<T>) -> Location {
    Location::Yaml {
        line: spanned.referenced.line().max(1),
        column: spanned.referenced.column().max(1),
    }
}

/// A node where a single value belongs, as the field checks take it.
fn raw(node: &Node) -> RawValue<'_> {
    match node {
        Node::Text(text) => RawValue::Text(text),
        Node::Bool(value) => RawValue::Bool(*value),
        Node::Number(text) => RawValue::Number(text),
        Node::Integer(_) => RawValue::Number("a number"),
        Node::Null => RawValue::Null,
        Node::List(_) => RawValue::Collection("a list"),
        Node::Map(_) => RawValue::Collection("a mapping"),
    }
}

/// The entries of a mapping, or `None` after reporting what it is instead.
fn mapping<'n>(
    node: &'n Spanned<Node>,
    what: &str,
    example: &str,
    problems: &mut Problems,
) -> Option<&'n [(Spanned<String>, Spanned<Node>)]> {
    match &node.value {
        Node::Map(entries) => Some(entries),
        other => {
            problems.push(
                Code::WrongType,
                at(node),
                None,
                format!(
                    "{what} must be a mapping such as `{example}`, not {}",
                    other.describe()
                ),
            );
            None
        }
    }
}

/// Reads a selector's mapping: its managed fields into `settings`, and every other key it
/// knows through `other` (which returns `false` for a key it does not know).
fn fields(
    entries: &[(Spanned<String>, Spanned<Node>)],
    subject: &str,
    extra: &[&str],
    problems: &mut Problems,
    mut other: impl FnMut(&Spanned<String>, &Spanned<Node>, &mut Problems),
) -> Settings {
    let mut settings = Settings::default();
    let mut seen = HashSet::new();
    for (key, value) in entries {
        if !seen.insert(key.value.as_str()) {
            problems.push(
                Code::DuplicateField,
                at(key),
                None,
                format!("{subject}{} is given twice; keep one", quoted(&key.value)),
            );
            continue;
        }
        if let Some(field) = Field::ALL.iter().find(|f| f.as_str() == key.value) {
            let items: Vec<RawValue<'_>> = match &value.value {
                Node::List(items) => items.iter().map(|item| raw(&item.value)).collect(),
                _ => Vec::new(),
            };
            let value_raw = match &value.value {
                Node::List(_) => RawValue::List(&items),
                single => raw(single),
            };
            if let Err(problem) = settings.set(*field, value_raw, subject) {
                problems.push(problem.code, at(value), None, problem.message);
            }
        } else if extra.contains(&key.value.as_str()) {
            other(key, value, problems);
        } else {
            let allowed: Vec<&str> = extra
                .iter()
                .copied()
                .chain(Field::ALL.iter().map(|f| f.as_str()))
                .collect();
            problems.push(
                Code::UnknownField,
                at(key),
                None,
                unknown_field_message(subject, &key.value, &allowed),
            );
        }
    }
    settings
}

/// A reported problem unless `settings` manage something: a selector that sets no field
/// would reach users and change nothing, which is never what was meant.
fn manages_something(node: &Spanned<Node>, what: &str, p: &mut Problems) {
    let Node::Map(entries) = &node.value else {
        return;
    };
    let names_a_field = entries
        .iter()
        .any(|(key, _)| Field::ALL.iter().any(|f| f.as_str() == key.value));
    if !names_a_field {
        p.push(
            Code::MissingUsers,
            at(node),
            None,
            format!(
                "{what} sets no field; give at least one of preferredMethod, systemPreferred, \
                 perUserMfaState"
            ),
        );
    }
}

/// `allUsers:`.
pub(super) fn check_all_users(node: &Spanned<Node>, problems: &mut Problems) -> Option<AllUsers> {
    let before = problems.len();
    let entries = mapping(
        node,
        "allUsers",
        "allUsers: {perUserMfaState: disabled}",
        problems,
    )?;
    let mut user_type = UserTypes::default();
    let mut account_enabled = None;
    let settings = fields(
        entries,
        "allUsers: ",
        &ALL_USERS_KEYS,
        problems,
        |key, value, problems| match (key.value.as_str(), &value.value) {
            ("userType", Node::Text(text)) => {
                match UserTypes::NAMES
                    .iter()
                    .position(|name| name.eq_ignore_ascii_case(text.trim()))
                {
                    Some(0) => user_type = UserTypes::Member,
                    Some(1) => user_type = UserTypes::Guest,
                    Some(_) => user_type = UserTypes::All,
                    None => problems.push(
                        Code::WrongType,
                        at(value),
                        None,
                        format!(
                            "allUsers: userType {} is not one of member, guest, all",
                            quoted(text)
                        ),
                    ),
                }
            }
            ("accountEnabled", Node::Bool(enabled)) => account_enabled = Some(*enabled),
            (key, other) => problems.push(
                Code::WrongType,
                at(value),
                None,
                format!(
                    "allUsers: {key} must be {}, not {}",
                    if key == "userType" {
                        "member, guest or all"
                    } else {
                        "true or false"
                    },
                    other.describe()
                ),
            ),
        },
    );
    manages_something(node, "allUsers:", problems);
    (problems.len() == before).then(|| AllUsers {
        settings,
        user_type,
        account_enabled,
        line: node.referenced.line(),
    })
}

/// `groups:`: a list of group selectors, none naming a group twice.
pub(super) fn check_groups(node: &Spanned<Node>, problems: &mut Problems) -> Vec<GroupSelector> {
    let Some(items) = list(
        node,
        "groups",
        "groups: [{group: MFA Pilot, preferredMethod: push}]",
        problems,
    ) else {
        return Vec::new();
    };
    let mut groups: Vec<GroupSelector> = Vec::new();
    // Every group named, valid or not, for duplicates.
    let mut names: Vec<(String, u64)> = Vec::new();
    for item in items {
        let before = problems.len();
        let Some(entries) = mapping(
            item,
            "each entry under groups:",
            "group: MFA Pilot",
            problems,
        ) else {
            continue;
        };
        let name = entries
            .iter()
            .find(|(key, _)| key.value == "group")
            .and_then(|(_, value)| match &value.value {
                Node::Text(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
                _ => None,
            });
        let subject = name.as_ref().map_or_else(
            || "groups: ".to_owned(),
            |n| format!("group {}: ", quoted(n)),
        );
        let mut priority = None;
        let settings = fields(
            entries,
            &subject,
            &GROUP_KEYS,
            problems,
            |key, value, problems| match (key.value.as_str(), &value.value) {
                ("group", Node::Text(text)) if !text.trim().is_empty() => {}
                ("group", other) => problems.push(
                    Code::EmptyUser,
                    at(value),
                    None,
                    format!(
                        "groups: group must be a display name or object id written as text, not {}",
                        other.describe()
                    ),
                ),
                ("priority", Node::Integer(n)) if (0..=i64::from(u32::MAX)).contains(n) => {
                    priority = u32::try_from(*n).ok();
                }
                (_, other) => problems.push(
                    Code::WrongType,
                    at(value),
                    None,
                    format!(
                        "{subject}priority must be a whole number, 0 or more (the lower wins), \
                         not {}",
                        other.describe()
                    ),
                ),
            },
        );
        if name.is_none() && problems.len() == before {
            problems.push(
                Code::EmptyUser,
                at(item),
                None,
                "this entry under groups: has no group; add `group:` with the display name or \
                 object id"
                    .to_owned(),
            );
        }
        manages_something(item, subject.trim_end_matches(": "), problems);
        let Some(name) = name else { continue };
        if let Some((_, first)) = names.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            problems.push(
                Code::DuplicateUser,
                at(item),
                None,
                format!(
                    "group {} is listed twice under groups: here and at line {}; keep one entry",
                    quoted(&name),
                    first
                ),
            );
            continue;
        }
        names.push((name.clone(), item.referenced.line()));
        if problems.len() == before {
            groups.push(GroupSelector {
                group: name,
                settings,
                priority,
                line: item.referenced.line(),
            });
        }
    }
    groups
}

/// `exclude:`: a list of `user:` and `group:` entries.
pub(super) fn check_exclude(node: &Spanned<Node>, problems: &mut Problems) -> Vec<Exclusion> {
    let Some(items) = list(
        node,
        "exclude",
        "exclude: [{user: breakglass@contoso.com}]",
        problems,
    ) else {
        return Vec::new();
    };
    let mut exclude = Vec::new();
    for item in items {
        let Some(entries) = mapping(
            item,
            "each entry under exclude:",
            "user: breakglass@contoso.com",
            problems,
        ) else {
            continue;
        };
        let [(key, value)] = entries else {
            problems.push(
                Code::WrongType,
                at(item),
                None,
                "each entry under exclude: is one `user:` or one `group:`".to_owned(),
            );
            continue;
        };
        let text = match &value.value {
            Node::Text(text) if !text.trim().is_empty() => text.trim(),
            other => {
                problems.push(
                    Code::EmptyUser,
                    at(value),
                    None,
                    format!(
                        "exclude: {} must be written as text, not {}",
                        key.value,
                        other.describe()
                    ),
                );
                continue;
            }
        };
        let excluded = match key.value.as_str() {
            "user" => match check_user(text) {
                Ok(()) => Excluded::User(text.to_owned()),
                Err(invalid) => {
                    problems.push(
                        Code::InvalidUser,
                        at(value),
                        None,
                        format!("exclude: {invalid}"),
                    );
                    continue;
                }
            },
            "group" => Excluded::Group(text.to_owned()),
            other => {
                problems.push(
                    Code::UnknownField,
                    at(key),
                    None,
                    unknown_field_message("exclude: ", other, &["user", "group"]),
                );
                continue;
            }
        };
        exclude.push(Exclusion {
            excluded,
            line: item.referenced.line(),
        });
    }
    exclude
}

fn list<'n>(
    node: &'n Spanned<Node>,
    what: &str,
    example: &str,
    problems: &mut Problems,
) -> Option<&'n [Spanned<Node>]> {
    match &node.value {
        Node::List(items) => Some(items),
        other => {
            problems.push(
                Code::WrongType,
                at(node),
                None,
                format!(
                    "{what} must be a list such as `{example}`, not {}",
                    other.describe()
                ),
            );
            None
        }
    }
}

/// A user a selector reaches, as the directory listed them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: uuid::Uuid,
    pub user_principal_name: Arc<str>,
}

/// What the engine found for the selectors: `allUsers`'s population (when the manifest has
/// one), each group selector's transitive members (in `groups:` order), and the object ids
/// `exclude:` takes out.
#[derive(Debug, Default)]
pub struct Populations {
    pub all_users: Vec<Member>,
    pub groups: Vec<Vec<Member>>,
    pub excluded: HashSet<uuid::Uuid>,
}

/// Two groups of the same rank give one user different values for one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub user: Arc<str>,
    pub field: Field,
    /// (group as written, its line, the value it gives).
    pub first: (String, u64, String),
    pub second: (String, u64, String),
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is in group {} (line {}: {} {}) and group {} (line {}: {} {}); give one \
             of the two entries a lower `priority:` to win, or exclude the user from one",
            crate::text::printable(&self.user),
            quoted(&self.first.0),
            self.first.1,
            self.field,
            self.first.2,
            quoted(&self.second.0),
            self.second.1,
            self.field,
            self.second.2,
        )
    }
}

/// The users of a manifest with selectors, and the object ids of those the listing named.
pub type Resolved = (Vec<DesiredUser>, HashMap<Arc<str>, uuid::Uuid>);

/// The desired users of a manifest with selectors: its `users:` entries (each taking the
/// selectors' value for a field it leaves out), then every other user a selector reaches,
/// named by userPrincipalName with its object id in `ids`, in listing order. Users excluded
/// are left out of the selectors (not of `users:`); a user whose merged settings manage
/// nothing is left out.
pub fn resolve(
    entries: Vec<DesiredUser>,
    selectors: &Selectors,
    populations: &Populations,
) -> Result<Resolved, Vec<Conflict>> {
    // For each user a selector reaches: the index of the groups holding them.
    let mut reached: HashMap<uuid::Uuid, (Arc<str>, Vec<usize>, bool)> = HashMap::new();
    let mut order = Vec::new();
    let mut reach = |member: &Member, group: Option<usize>| {
        if populations.excluded.contains(&member.id) {
            return;
        }
        let slot = reached.entry(member.id).or_insert_with(|| {
            order.push(member.id);
            (member.user_principal_name.clone(), Vec::new(), false)
        });
        match group {
            Some(index) => {
                if !slot.1.contains(&index) {
                    slot.1.push(index);
                }
            }
            None => slot.2 = true,
        }
    };
    if selectors.all_users.is_some() {
        populations.all_users.iter().for_each(|m| reach(m, None));
    }
    for (index, members) in populations.groups.iter().enumerate() {
        members.iter().for_each(|m| reach(m, Some(index)));
    }

    let mut conflicts = Vec::new();
    let mut layered: HashMap<uuid::Uuid, (Settings, u64)> = HashMap::with_capacity(reached.len());
    for id in &order {
        let (upn, groups, in_all) = &reached[id];
        let mut settings = Settings::default();
        for field in Field::ALL.iter().copied() {
            // The winning rank: Some(p) beats None, and a lower p beats a higher one.
            let rank = |g: &GroupSelector| g.priority.map_or((1, 0), |p| (0, p));
            let setting: Vec<(&GroupSelector, String)> = groups
                .iter()
                .map(|i| &selectors.groups[*i])
                .filter_map(|g| g.settings.value_of(field).map(|v| (g, v)))
                .collect();
            let Some(best) = setting.iter().map(|(g, _)| rank(g)).min() else {
                continue;
            };
            let winners: Vec<&(&GroupSelector, String)> =
                setting.iter().filter(|(g, _)| rank(g) == best).collect();
            if let Some(other) = winners.iter().find(|(_, v)| *v != winners[0].1) {
                conflicts.push(Conflict {
                    user: upn.clone(),
                    field,
                    first: (
                        winners[0].0.group.clone(),
                        winners[0].0.line,
                        winners[0].1.clone(),
                    ),
                    second: (other.0.group.clone(), other.0.line, other.1.clone()),
                });
                continue;
            }
            settings.take(field, &winners[0].0.settings);
        }
        let line = groups
            .first()
            .map(|i| selectors.groups[*i].line)
            .or(selectors.all_users.as_ref().map(|a| a.line))
            .unwrap_or(1);
        if *in_all && let Some(all) = &selectors.all_users {
            settings = settings.or(all.settings);
        }
        layered.insert(*id, (settings, line));
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }

    // `users:` entries take the selectors' values for the fields they leave out.
    let by_name: HashMap<String, uuid::Uuid> = order
        .iter()
        .map(|id| (reached[id].0.to_lowercase(), *id))
        .collect();
    let mut users = entries;
    let mut taken = HashSet::new();
    let mut ids = HashMap::new();
    for entry in &mut users {
        let id = uuid::Uuid::parse_str(&entry.user)
            .ok()
            .or_else(|| by_name.get(&entry.user.to_lowercase()).copied());
        let Some((id, (selected, _))) = id.and_then(|id| Some((id, layered.get(&id)?))) else {
            continue;
        };
        taken.insert(id);
        // The listing named the entry's user: no lookup needed for it either.
        ids.insert(entry.user.clone(), id);
        let merged = entry.settings().or(*selected);
        entry.set_settings(merged);
    }
    for id in order {
        if taken.contains(&id) {
            continue;
        }
        let (settings, line) = layered[&id];
        if settings == Settings::default() {
            continue;
        }
        let upn = reached[&id].0.clone();
        ids.insert(upn.clone(), id);
        users.push(DesiredUser {
            user: upn,
            preferred_method: settings.preferred_method,
            system_preferred: settings.system_preferred,
            per_user_mfa_state: settings.per_user_mfa_state,
            origin: Origin::Line(line),
        });
    }
    Ok((users, ids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Manifest, ManifestError};
    use crate::model::{PerUserMfaState, PreferredMethod, PreferredMethods};

    fn load(text: &str) -> Result<Manifest, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, text).unwrap();
        crate::manifest::load(&path)
    }

    fn problems(text: &str) -> Vec<String> {
        load(text)
            .unwrap_err()
            .problems()
            .iter()
            .map(|p| format!("{}: {}", p.location, p.message))
            .collect()
    }

    const MANIFEST: &str = "version: 1
allUsers:
  perUserMfaState: disabled
  systemPreferred: true
  accountEnabled: true
groups:
  - group: MFA Pilot
    preferredMethod: push
  - group: Helpdesk
    preferredMethod: oath
    priority: 1
exclude:
  - user: breakglass@contoso.com
  - group: Break-glass admins
users:
  - user: megan@contoso.com
    perUserMfaState: enforced
";

    #[test]
    fn selectors_are_read_with_their_fields() {
        let manifest = load(MANIFEST).unwrap();
        let s = &manifest.selectors;
        let all = s.all_users.as_ref().unwrap();
        assert_eq!(
            all.settings.per_user_mfa_state,
            Some(PerUserMfaState::Disabled)
        );
        assert_eq!(all.user_type, UserTypes::Member);
        assert_eq!(all.account_enabled, Some(true));
        assert_eq!(all.line, 3);
        assert_eq!(s.groups.len(), 2);
        assert_eq!(s.groups[1].priority, Some(1));
        assert_eq!(
            s.groups[0].settings.preferred_method,
            Some(PreferredMethods::one(PreferredMethod::Push))
        );
        assert_eq!(
            s.exclude
                .iter()
                .map(|e| e.excluded.clone())
                .collect::<Vec<_>>(),
            [
                Excluded::User("breakglass@contoso.com".into()),
                Excluded::Group("Break-glass admins".into())
            ]
        );
        // A manifest of selectors alone needs no `users:`.
        load("version: 1\nallUsers:\n  perUserMfaState: disabled\n").unwrap();
    }

    #[test]
    fn every_problem_is_located() {
        let found = problems(
            "version: 1
allUsers:
  perUserMfaState: off
  userType: robots
  colour: blue
groups:
  - preferredMethod: push
  - group: Pilot
    priority: -1
    preferredMethod: push
  - group: pilot
    preferredMethod: sms
  - group: Empty
exclude:
  - user: not a user
  - team: x
users: []
",
        );
        let text = found.join("\n");
        for expected in [
            "3:20: allUsers: perUserMfaState \"off\"",
            "4:13: allUsers: userType \"robots\"",
            "5:3: allUsers: unknown field \"colour\"",
            "7:5: this entry under groups: has no group",
            "9:15: group \"Pilot\": priority",
            "11:5: group \"pilot\" is listed twice",
            "13:5: group \"Empty\" sets no field",
            "15:11: exclude:",
            "16:5: exclude: unknown field \"team\"",
        ] {
            assert!(text.contains(expected), "{expected} in:\n{text}");
        }
        assert_eq!(
            found.len(),
            9,
            "one problem each, nothing spurious:\n{text}"
        );
    }

    fn member(n: u128, upn: &str) -> Member {
        Member {
            id: uuid::Uuid::from_u128(n),
            user_principal_name: upn.into(),
        }
    }

    #[test]
    fn precedence_is_users_then_groups_then_all_users_field_by_field() {
        let manifest = load(MANIFEST).unwrap();
        let populations = Populations {
            all_users: vec![
                member(1, "megan@contoso.com"),
                member(2, "alex@contoso.com"),
                member(3, "breakglass@contoso.com"),
                member(4, "pilot@contoso.com"),
            ],
            groups: vec![
                vec![
                    member(4, "pilot@contoso.com"),
                    member(5, "guest@contoso.com"),
                ],
                vec![member(5, "guest@contoso.com")],
            ],
            excluded: [uuid::Uuid::from_u128(3)].into(),
        };
        let (users, ids) =
            resolve(manifest.users.clone(), &manifest.selectors, &populations).unwrap();
        let find = |name: &str| users.iter().find(|u| &*u.user == name).unwrap();
        // The users: entry keeps its own state and takes allUsers' systemPreferred.
        let megan = find("megan@contoso.com");
        assert_eq!(megan.per_user_mfa_state, Some(PerUserMfaState::Enforced));
        assert_eq!(megan.system_preferred, Some(true));
        // allUsers alone.
        let alex = find("alex@contoso.com");
        assert_eq!(
            (alex.preferred_method, alex.per_user_mfa_state),
            (None, Some(PerUserMfaState::Disabled))
        );
        // The group's method over allUsers' other fields.
        let pilot = find("pilot@contoso.com");
        assert_eq!(
            pilot.preferred_method,
            Some(PreferredMethods::one(PreferredMethod::Push))
        );
        assert_eq!(pilot.per_user_mfa_state, Some(PerUserMfaState::Disabled));
        // Two groups: priority decides; not in allUsers (a guest), so only the group's field.
        let guest = find("guest@contoso.com");
        assert_eq!(
            guest.preferred_method,
            Some(PreferredMethods::one(PreferredMethod::Oath))
        );
        assert_eq!(guest.per_user_mfa_state, None);
        // Excluded from the selectors.
        assert!(users.iter().all(|u| &*u.user != "breakglass@contoso.com"));
        assert_eq!(
            ids[&Arc::<str>::from("alex@contoso.com")],
            uuid::Uuid::from_u128(2)
        );
        assert_eq!(
            ids[&Arc::<str>::from("megan@contoso.com")],
            uuid::Uuid::from_u128(1)
        );
        assert_eq!(users.len(), 4);
    }

    #[test]
    fn two_groups_of_one_rank_disagreeing_is_a_conflict_naming_both() {
        let manifest = load(
            "version: 1\ngroups:\n  - group: A\n    preferredMethod: push\n  - group: B\n    preferredMethod: sms\n  - group: C\n    preferredMethod: push\n",
        )
        .unwrap();
        let both = vec![member(7, "x@contoso.com")];
        let populations = Populations {
            groups: vec![both.clone(), both.clone(), both],
            ..Populations::default()
        };
        let conflicts = resolve(Vec::new(), &manifest.selectors, &populations).unwrap_err();
        assert_eq!(conflicts.len(), 1);
        let text = conflicts[0].to_string();
        assert!(
            text.contains("x@contoso.com") && text.contains("\"A\"") && text.contains("\"B\""),
            "{text}"
        );
        assert!(text.contains("line 3") && text.contains("line 5"), "{text}");
    }
}
