//! Which Graph permissions each call mfactl makes needs (graph-api.md §1–4): one table, read by
//! the preflight that compares a token's `roles`/`scp` claims with what a run needs, by the
//! wording of a 403, and by the emulator, which enforces it.
//!
//! A permission is granted when the token holds any of the names listed for the access (an app
//! token's `roles`, a delegated token's `scp`); the first name is the least privileged one, the
//! one a message asks for.

use std::fmt;

use crate::model::Endpoint;

/// A Graph resource mfactl reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// `/users/{id}/authentication/signInPreferences`.
    SignInPreferences,
    /// `/users/{id}/authentication/requirements`.
    Requirements,
    /// `/users/{id}/authentication/methods`.
    Methods,
    /// `/policies/authenticationMethodsPolicy`.
    Policy,
    /// `/users/{upn}?$select=id` and user listings.
    Users,
    /// `/users/{id}/transitiveMemberOf`: the groups a user is in.
    Membership,
    /// `/organization`.
    Organization,
    /// `/groups?$filter=displayName eq '...'` (a group's name to its object id).
    Groups,
    /// `/identity/conditionalAccess/policies`: the Conditional Access policies.
    ConditionalAccess,
    /// `/policies/identitySecurityDefaultsEnforcementPolicy`: security defaults.
    SecurityDefaults,
    /// `/roleManagement/directory/roleAssignments`: who holds a directory role.
    RoleAssignments,
}

/// Reading or writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
}

/// One access to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Need {
    pub resource: Resource,
    pub access: Access,
}

impl Resource {
    /// The resource a managed endpoint is.
    pub fn of(endpoint: Endpoint) -> Resource {
        match endpoint {
            Endpoint::SignInPreferences => Resource::SignInPreferences,
            Endpoint::Requirements => Resource::Requirements,
        }
    }

    /// What the resource is called in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Resource::SignInPreferences => "signInPreferences",
            Resource::Requirements => "requirements (per-user MFA state)",
            Resource::Methods => "authentication/methods (registered methods)",
            Resource::Policy => "authenticationMethodsPolicy",
            Resource::Users => "users (UPN to object id)",
            Resource::Membership => "transitiveMemberOf (a user's groups)",
            Resource::Organization => "organization (tenant name)",
            Resource::Groups => "groups (display name to object id)",
            Resource::ConditionalAccess => "Conditional Access policies",
            Resource::SecurityDefaults => "security defaults",
            Resource::RoleAssignments => "directory role assignments",
        }
    }

    pub fn read(self) -> Need {
        Need {
            resource: self,
            access: Access::Read,
        }
    }

    pub fn write(self) -> Need {
        Need {
            resource: self,
            access: Access::Write,
        }
    }
}

impl Need {
    /// The permissions that grant this access, least privileged first. Application permission
    /// names; the delegated scopes mfactl asks for have the same names.
    pub fn granted_by(self) -> &'static [&'static str] {
        use Access::*;
        use Resource::*;
        match (self.resource, self.access) {
            (SignInPreferences | Methods, Read) => &[
                "UserAuthenticationMethod.Read.All",
                "UserAuthenticationMethod.ReadWrite.All",
            ],
            (SignInPreferences | Methods, Write) => &["UserAuthenticationMethod.ReadWrite.All"],
            (Requirements, Read) => &["Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod"],
            (Requirements | Policy, Write) => &["Policy.ReadWrite.AuthenticationMethod"],
            (Policy, Read) => &[
                "Policy.Read.AuthenticationMethod",
                "Policy.Read.All",
                "Policy.ReadWrite.AuthenticationMethod",
            ],
            (Users, Read) => &[
                "User.ReadBasic.All",
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            (Users, Write) => &["User.ReadWrite.All", "Directory.ReadWrite.All"],
            // Another user's memberships, as an application: User.Read.All is the least; Graph
            // lists the group and directory permissions as higher ones.
            (Membership, Read) => &[
                "User.Read.All",
                "GroupMember.Read.All",
                "Group.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            (Membership, Write) => &["GroupMember.ReadWrite.All", "Directory.ReadWrite.All"],
            (Organization, Read) => &[
                "Organization.Read.All",
                "Organization.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            (Organization, Write) => &["Organization.ReadWrite.All"],
            // Listing groups: Graph's reference names GroupMember.Read.All the least privileged
            // application permission (Group.ReadBasic.All, newer, also lists them but reads no
            // members). GroupMember.Read.All comes first because it is the one to ask for: a
            // group selector goes on to read the group's members, which it also allows.
            (Groups, Read) => &[
                "GroupMember.Read.All",
                "Group.ReadBasic.All",
                "Group.Read.All",
                "GroupMember.ReadWrite.All",
                "Group.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            (Groups, Write) => &["Group.ReadWrite.All", "Directory.ReadWrite.All"],
            // Graph reference, "List policies" and "Get conditionalAccessPolicy" (beta and
            // v1.0): Policy.Read.All, no higher permission listed.
            (ConditionalAccess, Read) => &["Policy.Read.All"],
            (ConditionalAccess, Write) => &["Policy.ReadWrite.ConditionalAccess"],
            // "Get identitySecurityDefaultsEnforcementPolicy": Policy.Read.All, then
            // Policy.ReadWrite.SecurityDefaults (v1.0's table).
            (SecurityDefaults, Read) => &["Policy.Read.All", "Policy.ReadWrite.SecurityDefaults"],
            (SecurityDefaults, Write) => &["Policy.ReadWrite.SecurityDefaults"],
            // "List unifiedRoleAssignments" (beta), directory provider, least first.
            (RoleAssignments, Read) => &[
                "RoleManagement.Read.Directory",
                "RoleManagement.Read.All",
                "Directory.Read.All",
                "RoleManagement.ReadWrite.Directory",
                "Directory.ReadWrite.All",
            ],
            (RoleAssignments, Write) => &[
                "RoleManagement.ReadWrite.Directory",
                "Directory.ReadWrite.All",
            ],
        }
    }

    /// The permission to ask for: the least privileged one that grants it.
    pub fn least(self) -> &'static str {
        self.granted_by()[0]
    }

    /// Whether `granted` (a token's roles or scopes; compared without regard to case, as Entra
    /// does) includes a permission that grants this access.
    pub fn is_met_by<S: AsRef<str>>(self, granted: &[S]) -> bool {
        self.granted_by().iter().any(|wanted| {
            granted
                .iter()
                .any(|have| have.as_ref().eq_ignore_ascii_case(wanted))
        })
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = match self.access {
            Access::Read => "reading",
            Access::Write => "writing",
        };
        write!(f, "{access} {}", self.resource.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_permission_also_reads_and_a_read_one_does_not_write() {
        let rw = ["UserAuthenticationMethod.ReadWrite.All", "Policy.Read.All"];
        assert!(Resource::SignInPreferences.read().is_met_by(&rw));
        assert!(Resource::SignInPreferences.write().is_met_by(&rw));
        assert!(Resource::Methods.read().is_met_by(&rw));
        assert!(Resource::Requirements.read().is_met_by(&rw));
        assert!(!Resource::Requirements.write().is_met_by(&rw));
        assert_eq!(
            Resource::Requirements.write().least(),
            "Policy.ReadWrite.AuthenticationMethod"
        );
        // Entra compares permission names without regard to case.
        assert!(
            Resource::Requirements
                .read()
                .is_met_by(&["policy.read.all"])
        );
        assert!(!Resource::Users.read().is_met_by::<&str>(&[]));
    }

    #[test]
    fn listing_groups_asks_for_group_member_read_all() {
        let read = Resource::Groups.read();
        assert_eq!(read.least(), "GroupMember.Read.All");
        for granted in [
            "Group.Read.All",
            "Directory.Read.All",
            "GroupMember.Read.All",
        ] {
            assert!(read.is_met_by(&[granted]), "{granted}");
        }
        assert!(!read.is_met_by(&["User.Read.All", "Policy.Read.All"]));
    }

    #[test]
    fn needs_read_as_sentences() {
        assert_eq!(
            Resource::Requirements.write().to_string(),
            "writing requirements (per-user MFA state)"
        );
    }
}
