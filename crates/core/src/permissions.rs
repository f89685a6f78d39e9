//! Which Graph permissions each call mfactl makes needs: one table, read by the preflight that
//! compares a token's `roles`/`scp` claims with what a run needs, by `auth check`, by the wording
//! of a 403, and by the emulator, which enforces the same table (`$batch` items included).
//!
//! The table follows Microsoft's permission tables for the beta API (microsoft-graph-docs-contrib,
//! `api-reference/beta/includes/permissions/*-permissions.md` and the API pages that include
//! them, read 2026-12). Application and delegated tokens differ, so each access has two lists,
//! least privileged first; a permission is granted when the token holds any name of its list (an
//! app token's `roles`, a delegated token's `scp`). Where Microsoft's generated table is plainly
//! wrong for a call on *other* users, the comment says which list was used and why.

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
    /// A user or the users listing selecting only basic profile properties
    /// ([`BASIC_PROFILE`]): `/users/{upn}?$select=id,userPrincipalName`.
    UserBasic,
    /// A user or the users listing selecting any other property: the listing of `allUsers:`
    /// (`userType`, `accountEnabled`).
    Users,
    /// `/users/{id}/transitiveMemberOf`: the groups a user is in.
    Membership,
    /// `/organization`.
    Organization,
    /// `/groups?$filter=displayName eq '...'` (a group's name to its object id).
    Groups,
    /// `/groups/{id}/members` and `/transitiveMembers`: a group's members.
    GroupMembers,
    /// `/reports/authenticationMethods/userRegistrationDetails`: the registration report
    /// (read-only; a bulk hint the plan can do without).
    RegistrationReport,
    /// `/identity/conditionalAccess/policies`: the Conditional Access policies.
    ConditionalAccess,
    /// `/policies/identitySecurityDefaultsEnforcementPolicy`: security defaults.
    SecurityDefaults,
    /// `/roleManagement/directory/roleAssignments`: who holds a directory role.
    RoleAssignments,
}

/// The user properties `User.ReadBasic.All` reads: Microsoft's permissions reference lists the
/// basic profile as displayName, givenName, mail, photo, surname and userPrincipalName (with the
/// object's id and securityIdentifier). `userType` and `accountEnabled` are not among them.
pub const BASIC_PROFILE: &[&str] = &[
    "id",
    "displayName",
    "givenName",
    "mail",
    "surname",
    "userPrincipalName",
    "securityIdentifier",
];

/// What kind of token asks: an application's (`roles`) or a signed-in admin's (`scp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Application,
    Delegated,
}

impl TokenKind {
    /// "application permission" / "delegated permission (scope)", for messages.
    pub fn permission_noun(self) -> &'static str {
        match self {
            TokenKind::Application => "application permission",
            TokenKind::Delegated => "delegated permission (scope)",
        }
    }
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

    /// The resource a read of users selecting `properties` is: [`Resource::UserBasic`] when
    /// every one is in the basic profile, else [`Resource::Users`]. No `$select` at all reads
    /// Graph's default set, which is more than the basic profile.
    pub fn users_selecting<S: AsRef<str>>(properties: &[S]) -> Resource {
        let basic = !properties.is_empty()
            && properties.iter().all(|property| {
                BASIC_PROFILE
                    .iter()
                    .any(|basic| basic.eq_ignore_ascii_case(property.as_ref().trim()))
            });
        if basic {
            Resource::UserBasic
        } else {
            Resource::Users
        }
    }

    /// What the resource is called in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Resource::SignInPreferences => "signInPreferences",
            Resource::Requirements => "requirements (per-user MFA state)",
            Resource::Methods => "authentication/methods (registered methods)",
            Resource::Policy => "authenticationMethodsPolicy",
            Resource::UserBasic => "users' basic profile (userPrincipalName to object id)",
            Resource::Users => "users with userType and accountEnabled",
            Resource::Membership => "transitiveMemberOf (a user's groups)",
            Resource::Organization => "organization (tenant name)",
            Resource::Groups => "groups (display name to object id)",
            Resource::GroupMembers => "a group's (transitive) members",
            Resource::RegistrationReport => "the authentication methods registration report",
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

/// The directory-wide read permissions that also read users, groups and memberships.
const DIRECTORY_READ: [&str; 2] = ["Directory.Read.All", "Directory.ReadWrite.All"];

impl Need {
    /// The permissions that grant this access to a token of `kind`, least privileged first.
    pub fn granted_by(self, kind: TokenKind) -> &'static [&'static str] {
        use Access::*;
        use Resource::*;
        use TokenKind::*;
        match (self.resource, self.access, kind) {
            // authentication-get / authentication-list-methods, "acting on other users": the
            // `.All` permissions for both kinds (the generated table's non-`.All` names act on
            // the signed-in user only and are not application permissions at all).
            (SignInPreferences | Methods, Read, _) => &[
                "UserAuthenticationMethod.Read.All",
                "UserAuthenticationMethod.ReadWrite.All",
            ],
            (SignInPreferences | Methods, Write, _) => &["UserAuthenticationMethod.ReadWrite.All"],
            // authentication-get-3 ("acting on others", per-user MFA state).
            (Requirements, Read, _) => {
                &["Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod"]
            }
            (Requirements | Policy, Write, _) => &["Policy.ReadWrite.AuthenticationMethod"],
            // authenticationmethodspolicy-get.
            (Policy, Read, _) => &[
                "Policy.Read.AuthenticationMethod",
                "Policy.ReadWrite.AuthenticationMethod",
                "Policy.Read.All",
            ],
            // user-list and user-get: an application needs User.Read.All; a delegated token
            // may list and look up users with User.ReadBasic.All, but only their basic profile.
            (UserBasic, Read, Delegated) => &[
                "User.ReadBasic.All",
                "User.Read.All",
                "User.ReadWrite.All",
                DIRECTORY_READ[0],
                DIRECTORY_READ[1],
            ],
            (UserBasic | Users, Read, _) => &[
                "User.Read.All",
                "User.ReadWrite.All",
                DIRECTORY_READ[0],
                DIRECTORY_READ[1],
            ],
            (UserBasic | Users, Write, _) => &["User.ReadWrite.All", DIRECTORY_READ[1]],
            // user-list-transitivememberof: User.Read.All is listed for delegated tokens only.
            (Membership, Read, Application) => &[
                "GroupMember.Read.All",
                "Group.Read.All",
                DIRECTORY_READ[0],
                DIRECTORY_READ[1],
            ],
            (Membership, Read, Delegated) => &[
                "GroupMember.Read.All",
                "User.Read.All",
                "Group.Read.All",
                DIRECTORY_READ[0],
                DIRECTORY_READ[1],
            ],
            (Membership | GroupMembers, Write, _) => &[
                "GroupMember.ReadWrite.All",
                "Group.ReadWrite.All",
                DIRECTORY_READ[1],
            ],
            // organization-list (the generated table's Intune permissions left out).
            (Organization, Read, Application) => &[
                "Organization.Read.All",
                "Organization.ReadWrite.All",
                DIRECTORY_READ[0],
                DIRECTORY_READ[1],
            ],
            (Organization, Read, Delegated) => &[
                "User.Read",
                "Organization.Read.All",
                "Organization.ReadWrite.All",
                DIRECTORY_READ[0],
                DIRECTORY_READ[1],
            ],
            (Organization, Write, _) => &["Organization.ReadWrite.All"],
            // group-list: GroupMember.Read.All comes first because it is the one to ask for: a
            // group selector goes on to list the group's members, which Group.ReadBasic.All
            // (newer, listed for group-list) does not allow.
            (Groups, Read, _) => &[
                "GroupMember.Read.All",
                "Group.ReadBasic.All",
                "Group.Read.All",
                "GroupMember.ReadWrite.All",
                "Group.ReadWrite.All",
                DIRECTORY_READ[0],
                DIRECTORY_READ[1],
            ],
            (Groups, Write, _) => &["Group.ReadWrite.All", DIRECTORY_READ[1]],
            // group-list-members / group-list-transitivemembers: Group.ReadBasic.All is not
            // listed. Members of a type the token may not read come back with `id` and
            // `@odata.type` only ("limited information").
            // authenticationmethodsroot-list-userregistrationdetails (beta): AuditLog.Read.All,
            // and UserAuthenticationMethod.Read.All as the higher one. The report is read-only:
            // nothing writes it, so a "write" needs what a read does.
            (RegistrationReport, _, _) => {
                &["AuditLog.Read.All", "UserAuthenticationMethod.Read.All"]
            }
            (GroupMembers, Read, _) => &[
                "GroupMember.Read.All",
                "Group.Read.All",
                "GroupMember.ReadWrite.All",
                "Group.ReadWrite.All",
                DIRECTORY_READ[0],
                DIRECTORY_READ[1],
            ],
            // conditionalaccessroot-list-policies and conditionalaccesspolicy-get (beta and
            // v1.0): Policy.Read.All, no higher permission listed.
            (ConditionalAccess, Read, _) => &["Policy.Read.All"],
            (ConditionalAccess, Write, _) => &["Policy.ReadWrite.ConditionalAccess"],
            // identitysecuritydefaultsenforcementpolicy-get: Policy.Read.All, then
            // Policy.ReadWrite.SecurityDefaults (v1.0's table).
            (SecurityDefaults, Read, _) => {
                &["Policy.Read.All", "Policy.ReadWrite.SecurityDefaults"]
            }
            (SecurityDefaults, Write, _) => &["Policy.ReadWrite.SecurityDefaults"],
            // rbacapplication-list-roleassignments (beta), directory provider, least first.
            (RoleAssignments, Read, _) => &[
                "RoleManagement.Read.Directory",
                "RoleManagement.Read.All",
                DIRECTORY_READ[0],
                "RoleManagement.ReadWrite.Directory",
                DIRECTORY_READ[1],
            ],
            (RoleAssignments, Write, _) => {
                &["RoleManagement.ReadWrite.Directory", DIRECTORY_READ[1]]
            }
        }
    }

    /// The permission to ask an application for: the least privileged one that grants it.
    pub fn least(self) -> &'static str {
        self.least_for(TokenKind::Application)
    }

    /// The least privileged permission that grants this access to a token of `kind`.
    pub fn least_for(self, kind: TokenKind) -> &'static str {
        self.granted_by(kind)[0]
    }

    /// Whether `granted` (a token's roles or scopes, as `kind` says; compared without regard
    /// to case, as Entra does) includes a permission that grants this access.
    pub fn is_met_by<S: AsRef<str>>(self, kind: TokenKind, granted: &[S]) -> bool {
        self.granted_by(kind).iter().any(|wanted| {
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
    use TokenKind::{Application, Delegated};

    #[test]
    fn a_write_permission_also_reads_and_a_read_one_does_not_write() {
        let rw = ["UserAuthenticationMethod.ReadWrite.All", "Policy.Read.All"];
        assert!(
            Resource::SignInPreferences
                .read()
                .is_met_by(Application, &rw)
        );
        assert!(
            Resource::SignInPreferences
                .write()
                .is_met_by(Application, &rw)
        );
        assert!(Resource::Methods.read().is_met_by(Application, &rw));
        assert!(Resource::Requirements.read().is_met_by(Application, &rw));
        assert!(!Resource::Requirements.write().is_met_by(Application, &rw));
        assert_eq!(
            Resource::Requirements.write().least(),
            "Policy.ReadWrite.AuthenticationMethod"
        );
        // Entra compares permission names without regard to case.
        assert!(
            Resource::Requirements
                .read()
                .is_met_by(Application, &["policy.read.all"])
        );
        assert!(!Resource::Users.read().is_met_by::<&str>(Application, &[]));
    }

    #[test]
    fn an_application_needs_user_read_all_even_for_the_basic_profile() {
        let basic = ["User.ReadBasic.All"];
        assert!(!Resource::UserBasic.read().is_met_by(Application, &basic));
        assert!(Resource::UserBasic.read().is_met_by(Delegated, &basic));
        assert!(!Resource::Users.read().is_met_by(Delegated, &basic));
        assert_eq!(Resource::UserBasic.read().least(), "User.Read.All");
        assert_eq!(
            Resource::UserBasic.read().least_for(Delegated),
            "User.ReadBasic.All"
        );
        assert_eq!(Resource::Users.read().least_for(Delegated), "User.Read.All");
    }

    #[test]
    fn what_a_users_read_selects_decides_its_resource() {
        assert_eq!(
            Resource::users_selecting(&["id", "userPrincipalName", "displayName"]),
            Resource::UserBasic
        );
        assert_eq!(
            Resource::users_selecting(&["id", "userPrincipalName", "userType"]),
            Resource::Users
        );
        assert_eq!(
            Resource::users_selecting(&["ID", " UserPrincipalName"]),
            Resource::UserBasic
        );
        assert_eq!(Resource::users_selecting::<&str>(&[]), Resource::Users);
    }

    #[test]
    fn members_need_group_member_read_all_not_group_read_basic() {
        let read = Resource::GroupMembers.read();
        assert_eq!(read.least(), "GroupMember.Read.All");
        assert!(!read.is_met_by(Application, &["Group.ReadBasic.All"]));
        assert!(
            Resource::Groups
                .read()
                .is_met_by(Application, &["Group.ReadBasic.All"])
        );
        for granted in [
            "Group.Read.All",
            "Directory.Read.All",
            "GroupMember.Read.All",
        ] {
            assert!(read.is_met_by(Application, &[granted]), "{granted}");
            assert!(read.is_met_by(Delegated, &[granted]), "{granted}");
        }
        assert!(!read.is_met_by(Application, &["User.Read.All", "Policy.Read.All"]));
        // A user's groups: User.Read.All is listed for delegated tokens, not for apps.
        let membership = Resource::Membership.read();
        assert!(!membership.is_met_by(Application, &["User.Read.All"]));
        assert!(membership.is_met_by(Delegated, &["User.Read.All"]));
        assert_eq!(membership.least(), "GroupMember.Read.All");
    }

    #[test]
    fn needs_read_as_sentences() {
        assert_eq!(
            Resource::Requirements.write().to_string(),
            "writing requirements (per-user MFA state)"
        );
    }
}
