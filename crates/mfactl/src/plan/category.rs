//! The one place where users are sorted into the categories every output counts: the text
//! plan's `Plan:` line and the apply's `Apply:` line, the JSON summary, the CSV report's status
//! column, and the markdown and HTML reports' tables and cards all read these counts, so they
//! agree to the user, and they add up to the manifest's users.
//!
//! Each user is in exactly one category, decided by its status alone ([`Category::of`]): a
//! blocked user whose other fields are written is `blocked` (its writes still count in
//! `writes`, and [`Summary::blocked_with_writes`] says how many such users there are), never
//! also `to_change`. A user still at `change` after an apply was not reached.
//!
//! To add a category (a new reason a user is held back, say): add the [`Status`], a variant
//! here with its place in [`Category::ALL`], its summary field in [`Summary::users_in_mut`], and
//! its wording in [`Category::label`]; every output then counts and shows it. Pure: no I/O.

use super::{Status, Summary};

/// Which documents a category appears in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A plan (`plan`, and the plan `apply` shows before asking).
    Plan,
    /// The report of a finished (or stopped) apply.
    Apply,
}

/// What a user is counted as: one category per user, the same in every output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Writes are planned (plans only).
    ToChange,
    /// Every write was made (apply reports only).
    Changed,
    InSync,
    /// A field cannot be written (a preferred method the user has not registered); the user's
    /// other fields still are.
    Blocked,
    NotFound,
    /// Reading or writing failed.
    Failed,
    /// Changed since the plan: not written over (apply reports only).
    Drifted,
    /// Written, but reading back does not show it (apply reports only).
    Unverified,
    /// The run stopped before this user's writes (apply reports only).
    NotReached,
    /// Named by `protect:`: never written.
    Protected,
}

impl Category {
    /// Every category, in the order lines, tables and cards show them.
    pub const ALL: [Category; 10] = [
        Category::ToChange,
        Category::Changed,
        Category::InSync,
        Category::Blocked,
        Category::NotFound,
        Category::Failed,
        Category::Drifted,
        Category::Unverified,
        Category::NotReached,
        Category::Protected,
    ];

    /// The category of a user with `status`, in a plan or in an apply report.
    pub fn of(status: Status, phase: Phase) -> Category {
        match status {
            Status::Change if phase == Phase::Apply => Category::NotReached,
            Status::Change => Category::ToChange,
            Status::Applied => Category::Changed,
            Status::InSync => Category::InSync,
            Status::Blocked => Category::Blocked,
            Status::NotFound => Category::NotFound,
            Status::Failed => Category::Failed,
            Status::Drifted => Category::Drifted,
            Status::Unverified => Category::Unverified,
            Status::Protected => Category::Protected,
        }
    }

    /// The summary's key for it (`to_change`), as the plan document spells it.
    pub fn key(self) -> &'static str {
        match self {
            Category::ToChange => "to_change",
            Category::Changed => "changed",
            Category::InSync => "in_sync",
            Category::Blocked => "blocked",
            Category::NotFound => "not_found",
            Category::Failed => "failed",
            Category::Drifted => "drifted",
            Category::Unverified => "unverified",
            Category::NotReached => "not_reached",
            Category::Protected => "protected",
        }
    }

    /// For people: `to change`, `changed since the plan`.
    pub fn label(self) -> &'static str {
        match self {
            Category::ToChange => "to change",
            Category::Changed => "changed",
            Category::InSync => "in sync",
            Category::Blocked => "blocked",
            Category::NotFound => "not found",
            Category::Failed => "failed",
            Category::Drifted => "changed since the plan",
            Category::Unverified => "unverified",
            Category::NotReached => "not reached",
            Category::Protected => "protected",
        }
    }

    /// Whether the `Plan:` or `Apply:` line names it even at zero (the others only when some
    /// user is in them), and whether it can occur in that document at all.
    pub fn always_shown(self, phase: Phase) -> bool {
        match self {
            Category::ToChange => phase == Phase::Plan,
            Category::Changed => phase == Phase::Apply,
            Category::InSync | Category::Blocked | Category::NotFound | Category::Failed => true,
            Category::Drifted
            | Category::Unverified
            | Category::NotReached
            | Category::Protected => false,
        }
    }

    /// Whether a user in it has converged (or was left alone by design): any other category
    /// makes apply exit 3.
    pub fn converged(self) -> bool {
        matches!(
            self,
            Category::Changed | Category::InSync | Category::Protected
        )
    }
}

impl Summary {
    /// How many users are in `category`.
    pub fn users_in(&self, category: Category) -> u64 {
        let mut copy = *self;
        *copy.users_in_mut(category)
    }

    /// The summary's count for `category`: the one place a category meets its JSON key.
    pub fn users_in_mut(&mut self, category: Category) -> &mut u64 {
        match category {
            Category::ToChange => &mut self.to_change,
            Category::Changed => &mut self.changed,
            Category::InSync => &mut self.in_sync,
            Category::Blocked => &mut self.blocked,
            Category::NotFound => &mut self.not_found,
            Category::Failed => &mut self.failed,
            Category::Drifted => &mut self.drifted,
            Category::Unverified => &mut self.unverified,
            Category::NotReached => &mut self.not_reached,
            Category::Protected => &mut self.protected,
        }
    }

    /// Every category with its users, in [`Category::ALL`] order: those with users, and those
    /// the document always names.
    pub fn categories(&self, phase: Phase) -> Vec<(Category, u64)> {
        Category::ALL
            .iter()
            .map(|category| (*category, self.users_in(*category)))
            .filter(|(category, users)| *users > 0 || category.always_shown(phase))
            .collect()
    }

    /// The users of every category, added up: the manifest's users when the counts are right.
    pub fn categorised(&self) -> u64 {
        Category::ALL.iter().map(|c| self.users_in(*c)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUSES: [Status; 9] = [
        Status::InSync,
        Status::Change,
        Status::Blocked,
        Status::NotFound,
        Status::Failed,
        Status::Drifted,
        Status::Applied,
        Status::Protected,
        Status::Unverified,
    ];

    #[test]
    fn every_status_has_one_category_in_each_phase() {
        for phase in [Phase::Plan, Phase::Apply] {
            for status in STATUSES {
                let category = Category::of(status, phase);
                assert!(Category::ALL.contains(&category));
            }
        }
        assert_eq!(
            Category::of(Status::Change, Phase::Apply),
            Category::NotReached
        );
        assert_eq!(
            Category::of(Status::Change, Phase::Plan),
            Category::ToChange
        );
    }

    #[test]
    fn each_category_has_its_own_count() {
        let mut summary = Summary::default();
        for (n, category) in Category::ALL.iter().enumerate() {
            *summary.users_in_mut(*category) = 1 << n;
        }
        for (n, category) in Category::ALL.iter().enumerate() {
            assert_eq!(summary.users_in(*category), 1 << n, "{}", category.key());
        }
        assert_eq!(summary.categorised(), (1 << Category::ALL.len()) - 1);
    }

    #[test]
    fn keys_are_the_summarys_json_keys() {
        let mut summary = Summary::default();
        for (n, category) in Category::ALL.iter().enumerate() {
            *summary.users_in_mut(*category) = n as u64 + 1;
        }
        let json = serde_json::to_value(summary).unwrap();
        for (n, category) in Category::ALL.iter().enumerate() {
            assert_eq!(json[category.key()], n as u64 + 1, "{}", category.key());
        }
    }
}
