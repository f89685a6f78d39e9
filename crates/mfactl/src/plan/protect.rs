//! Which manifest users the `protect:` list keeps from any write (break-glass admins).
//!
//! An account can be named two ways, by userPrincipalName or by object id, and a protect entry
//! must catch an entry naming the same account either way: a UPN is compared with the user's
//! name case-insensitively (as Entra compares UPNs), and an object id with the user's object id
//! (named, or resolved from its UPN at plan time). The engine resolves the protect entries'
//! UPNs to object ids before planning the users; this module only decides, without I/O.

use std::collections::HashSet;

use uuid::Uuid;

use super::{Status, UserPlan};

/// The protected accounts, ready to match users against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Protected {
    /// The entries that are userPrincipalNames, lower-cased.
    names: HashSet<String>,
    /// The entries that are object ids, and the object ids the UPN entries resolved to.
    ids: HashSet<Uuid>,
}

impl Protected {
    /// The protect list `entries` (as the manifest holds them), with `resolved`: the object ids
    /// Graph gave for them.
    pub fn new(entries: &[String], resolved: impl IntoIterator<Item = Uuid>) -> Protected {
        let mut protected = Protected::default();
        for entry in entries {
            match Uuid::parse_str(entry) {
                Ok(id) => protected.ids.insert(id),
                Err(_) => protected.names.insert(folded(entry)),
            };
        }
        protected.ids.extend(resolved);
        protected
    }

    /// Whether no account is protected.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.ids.is_empty()
    }

    /// Whether the user the manifest names `user` (object id `id`, when known) is protected.
    pub fn covers(&self, user: &str, id: Option<Uuid>) -> bool {
        id.is_some_and(|id| self.ids.contains(&id))
            || Uuid::parse_str(user).is_ok_and(|id| self.ids.contains(&id))
            || (!self.names.is_empty() && self.names.contains(&folded(user)))
    }

    /// Marks `user` protected when it is: it keeps its fields (what the manifest would have
    /// changed, for the reviewer) and has no writes. A user Graph does not know, or whose state
    /// could not be read, keeps that status: there is nothing to protect, or it is not known
    /// what would have changed.
    pub fn mark(&self, user: &mut UserPlan) {
        let readable = matches!(
            user.status,
            Status::InSync | Status::Change | Status::Blocked
        );
        if readable && self.covers(&user.user, user.id) {
            user.status = Status::Protected;
        }
    }
}

/// A userPrincipalName lower-cased char by char, as the manifest compares users for duplicates.
fn folded(name: &str) -> String {
    name.chars().flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Field;
    use crate::plan::{FieldChange, Value};

    const MEGAN: &str = "071cc716-8147-4397-a5ba-b2105951cc0b";
    const ADELE: &str = "5d1b6c1e-0000-4000-8000-000000000002";

    fn id(text: &str) -> Uuid {
        Uuid::parse_str(text).unwrap()
    }

    fn protected(entries: &[&str], resolved: &[&str]) -> Protected {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        Protected::new(&entries, resolved.iter().map(|r| id(r)))
    }

    #[test]
    fn a_upn_entry_matches_the_upn_in_any_case() {
        let list = protected(&["BreakGlass@Contoso.com"], &[]);
        assert!(list.covers("breakglass@contoso.com", None));
        assert!(list.covers("BREAKGLASS@CONTOSO.COM", Some(id(ADELE))));
        assert!(!list.covers("breakglass2@contoso.com", None));
        assert!(!list.covers("megan@contoso.com", Some(id(MEGAN))));
    }

    #[test]
    fn a_upn_entry_catches_a_user_named_by_object_id_once_resolved() {
        let list = protected(&["megan@contoso.com"], &[MEGAN]);
        // The users entry names the object id: its id is the name.
        assert!(list.covers(MEGAN, Some(id(MEGAN))));
        assert!(list.covers(&MEGAN.to_uppercase(), None));
        assert!(!list.covers(ADELE, Some(id(ADELE))));
    }

    #[test]
    fn an_object_id_entry_catches_a_user_named_by_upn_once_resolved() {
        let list = protected(&[&MEGAN.to_uppercase()], &[]);
        assert!(list.covers("megan@contoso.com", Some(id(MEGAN))));
        assert!(list.covers(MEGAN, None));
        // Not resolved (Graph does not know the user): the UPN alone says nothing.
        assert!(!list.covers("megan@contoso.com", None));
    }

    #[test]
    fn an_empty_list_protects_nobody() {
        let list = protected(&[], &[]);
        assert!(list.is_empty());
        assert!(!list.covers("megan@contoso.com", Some(id(MEGAN))));
        assert!(!protected(&[MEGAN], &[]).is_empty());
    }

    #[test]
    fn a_protected_user_keeps_its_fields_and_has_no_writes() {
        let change = FieldChange {
            field: Field::PerUserMfaState,
            before: Value::text("enforced"),
            after: Value::text("disabled"),
            blocked: false,
        };
        let list = protected(&["megan@contoso.com"], &[]);
        for status in [Status::Change, Status::InSync, Status::Blocked] {
            let mut user = UserPlan::new(
                "Megan@contoso.com".into(),
                status,
                vec![change.clone()],
                None,
                Vec::new(),
            );
            list.mark(&mut user);
            assert_eq!(user.status, Status::Protected);
            assert_eq!(user.fields.len(), 1);
            assert_eq!(user.write_count(), 0);
        }
        for status in [Status::NotFound, Status::Failed] {
            let mut user = UserPlan::new(
                "megan@contoso.com".into(),
                status,
                Vec::new(),
                None,
                Vec::new(),
            );
            list.mark(&mut user);
            assert_eq!(user.status, status, "nothing read, nothing to protect");
        }
        let mut other = UserPlan::new(
            "adele@contoso.com".into(),
            Status::Change,
            vec![change],
            None,
            Vec::new(),
        );
        list.mark(&mut other);
        assert_eq!((other.status, other.write_count()), (Status::Change, 1));
    }

    #[test]
    fn a_plan_counts_protected_users_apart_and_without_writes() {
        let change = FieldChange {
            field: Field::SystemPreferred,
            before: Value::Bool(false),
            after: Value::Bool(true),
            blocked: false,
        };
        let mut user = UserPlan::new(MEGAN.into(), Status::Change, vec![change], None, Vec::new());
        protected(&["megan@contoso.com"], &[MEGAN]).mark(&mut user);
        let plan = crate::plan::Plan::new("https://graph.microsoft.com", 3, vec![(0, user)]);
        let summary = plan.summary;
        assert_eq!(
            (
                summary.protected,
                summary.to_change,
                summary.writes,
                summary.in_sync
            ),
            (1, 0, 0, 2)
        );
        assert!(!plan.has_changes());
    }
}
