//! Typed Graph calls for the endpoints mfactl manages, over the one [`Transport`].

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::error::GraphError;
use super::transport::{Purpose, Response, Transport};
use super::wire::{
    Authentication, AuthenticationMethod, AuthenticationMethodsPolicyRead, Collection,
    DirectoryObjectId, DirectoryUser, GroupName, Organization, RegistrationDetails, Requirements,
    RoleAssignment, SignInPreferences, UserIdentity,
};
use crate::model::{Endpoint, MethodKind};

/// The Graph client. Clones share one transport (one pause gate, one set of budgets).
#[derive(Clone, Debug)]
pub struct GraphClient {
    transport: Arc<Transport>,
}

/// What a successful PATCH returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchOutcome {
    /// Graph's status; `None` when the answer was lost and reading back showed the write done.
    pub status: Option<u16>,
    pub request_id: Option<String>,
    /// The answer was lost; reading the endpoint back showed the write had been made.
    pub settled_by_read: bool,
}

impl GraphClient {
    pub fn new(transport: Transport) -> Self {
        GraphClient {
            transport: Arc::new(transport),
        }
    }

    /// The shared transport (for its counters).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// `GET /beta/users/{user}?$select=id,userPrincipalName`: the object a UPN or id names.
    pub async fn user_identity(&self, user: &str) -> Result<UserIdentity, GraphError> {
        let path = format!("/beta/{}?$select=id,userPrincipalName", user_segment(user));
        self.get_json(Purpose::Identity, &path).await
    }

    /// `GET /beta/users/{user}?$select=id,userPrincipalName,displayName,userType,accountEnabled`:
    /// a user named by UPN or id, with what a listing says of each user.
    pub async fn directory_user(&self, user: &str) -> Result<DirectoryUser, GraphError> {
        let path = format!("/beta/{}?$select={USER_PROPERTIES}", user_segment(user));
        self.get_json(Purpose::Identity, &path).await
    }

    /// `GET /beta/organization?$select=id,displayName,verifiedDomains`: the signed-in tenant.
    pub async fn organization(&self) -> Result<Option<Organization>, GraphError> {
        let page: Collection<Organization> = self
            .get_json(
                Purpose::Tenant,
                "/beta/organization?$select=id,displayName,verifiedDomains",
            )
            .await?;
        Ok(page.value.into_iter().next())
    }

    /// `GET .../authentication/signInPreferences`; `purpose` is [`Purpose::Read`] for a plan
    /// and [`Purpose::Reread`] just before a write.
    pub async fn sign_in_preferences(
        &self,
        user: &str,
        purpose: Purpose,
    ) -> Result<SignInPreferences, GraphError> {
        let path = endpoint_path(user, Endpoint::SignInPreferences.as_str());
        self.get_json(purpose, &path).await
    }

    /// `GET .../authentication/requirements` (see [`GraphClient::sign_in_preferences`]).
    pub async fn requirements(
        &self,
        user: &str,
        purpose: Purpose,
    ) -> Result<Requirements, GraphError> {
        let path = endpoint_path(user, Endpoint::Requirements.as_str());
        self.get_json(purpose, &path).await
    }

    /// `GET /beta/users/{user}/authentication`: `requirements` and `signInPreferences` in one
    /// read, when Graph answers them (unconfirmed on a live tenant; the caller reads each alone
    /// when either is missing). A read of live state ([`Purpose::Read`]).
    pub async fn authentication(&self, user: &str) -> Result<Authentication, GraphError> {
        let path = format!("/beta/{}/authentication", user_segment(user));
        self.get_json(Purpose::Read, &path).await
    }

    /// `GET .../authentication/methods`, following `@odata.nextLink`; method types this build
    /// does not know are skipped.
    pub async fn registered_methods(&self, user: &str) -> Result<Vec<MethodKind>, GraphError> {
        let mut kinds: Vec<MethodKind> = self
            .authentication_methods(user)
            .await?
            .iter()
            .filter_map(|m| MethodKind::from_odata(&m.odata_type, m.phone_type.as_deref()))
            .collect();
        kinds.sort();
        kinds.dedup();
        Ok(kinds)
    }

    /// `GET .../authentication/methods`, following `@odata.nextLink`: every method Graph lists,
    /// in its order, known to this build or not.
    pub async fn authentication_methods(
        &self,
        user: &str,
    ) -> Result<Vec<AuthenticationMethod>, GraphError> {
        self.get_all(Purpose::Methods, endpoint_path(user, "methods"))
            .await
    }

    /// `GET /beta/users/{user}?$select=id,userPrincipalName,displayName`: who a UPN or id is,
    /// with the name people know them by.
    pub async fn user_profile(&self, user: &str) -> Result<UserIdentity, GraphError> {
        let path = format!(
            "/beta/{}?$select=id,userPrincipalName,displayName",
            user_segment(user)
        );
        self.get_json(Purpose::Identity, &path).await
    }

    /// `GET /beta/policies/authenticationMethodsPolicy`: the tenant's policy (the part mfactl
    /// reads).
    pub async fn authentication_methods_policy(
        &self,
    ) -> Result<AuthenticationMethodsPolicyRead, GraphError> {
        self.get_json(Purpose::Read, "/beta/policies/authenticationMethodsPolicy")
            .await
    }

    /// `GET /beta/policies/authenticationMethodsPolicy` as Graph returns it, whole: the plan
    /// compares the managed parts and sends the rest of a changed sub-object back unchanged.
    /// `purpose` is [`Purpose::Read`] for a plan and [`Purpose::Reread`] just before the write.
    pub async fn authentication_methods_policy_document(
        &self,
        purpose: Purpose,
    ) -> Result<serde_json::Value, GraphError> {
        self.get_json(purpose, POLICY_PATH).await
    }

    /// `PATCH /beta/policies/authenticationMethodsPolicy` with exactly `body` (the changed
    /// sub-objects), under the write budget.
    pub async fn patch_policy(&self, body: &serde_json::Value) -> Result<PatchOutcome, GraphError> {
        let response = self
            .transport
            .send(Purpose::Write, POLICY_PATH, Some(body))
            .await?;
        Ok(PatchOutcome {
            status: response.status,
            request_id: response.request_id,
            settled_by_read: response.settled_by_read,
        })
    }

    /// `GET /beta/groups?$filter=displayName eq '...'&$select=id`: the object ids of every group
    /// with this display name (none, one, or several: names are not unique in Entra).
    pub async fn groups_named(&self, name: &str) -> Result<Vec<String>, GraphError> {
        #[derive(serde::Deserialize)]
        struct GroupId {
            id: String,
        }
        let literal = name.replace('\'', "''");
        let filter = encode_segment(&format!("displayName eq '{literal}'"));
        let path = format!("/beta/groups?$filter={filter}&$select=id&$top=999");
        let groups: Vec<GroupId> = self.get_all(Purpose::Identity, path).await?;
        Ok(groups.into_iter().map(|group| group.id).collect())
    }

    /// `GET /beta/users/{user}/transitiveMemberOf?$select=id`, following `@odata.nextLink`: the
    /// object ids of every group the user is in, directly or through nested groups. Not the
    /// `/microsoft.graph.group` cast: Graph documents OData casts on these relationships as
    /// needing `ConsistencyLevel: eventual` and `$count`; the directory roles and administrative
    /// units the plain list also holds are dropped here by their `@odata.type`.
    pub async fn group_memberships(&self, user: &str) -> Result<Vec<String>, GraphError> {
        let path = format!(
            "/beta/{}/transitiveMemberOf?$select=id&$top=999",
            user_segment(user)
        );
        let objects: Vec<DirectoryObjectId> = self.get_all(Purpose::Read, path).await?;
        Ok(objects
            .into_iter()
            .filter(|object| {
                object
                    .odata_type
                    .as_deref()
                    .is_none_or(|t| t.eq_ignore_ascii_case("#microsoft.graph.group"))
            })
            .map(|group| group.id)
            .collect())
    }

    /// `GET /beta/users?$select=...&$top=999`, a page at a time: every user of the tenant with
    /// the properties [`DirectoryUser`] holds, in Graph's order. A whole-tenant run holds one
    /// page, not the tenant.
    pub fn users(&self) -> Pages<DirectoryUser> {
        self.users_for(Purpose::Identity)
    }

    /// [`GraphClient::users`], counted under `purpose`.
    pub fn users_for(&self, purpose: Purpose) -> Pages<DirectoryUser> {
        self.pages(
            purpose,
            format!("/beta/users?$select={USER_PROPERTIES}&$top={MAX_PAGE}"),
        )
    }

    /// `GET /beta/users?$select=...[,perUserMfaState]&$top=999[&$filter=...][&$count=true]`, a
    /// page at a time: the listing of [`GraphClient::users`], also selecting `perUserMfaState`
    /// when `mfa_state` (not in Microsoft's schema for `user`: a hint, see
    /// [`DirectoryUser::per_user_mfa_state`]), narrowed by `filter` (an OData expression, sent
    /// encoded) and counted when `count` (an advanced query: the transport adds
    /// `ConsistencyLevel: eventual`; [`Pages::count`] then holds Graph's total).
    pub fn users_listing(
        &self,
        mfa_state: bool,
        filter: Option<&str>,
        count: bool,
    ) -> Pages<DirectoryUser> {
        let mut path = format!("/beta/users?$select={USER_PROPERTIES}");
        if mfa_state {
            path.push_str(",perUserMfaState");
        }
        path.push_str(&format!("&$top={MAX_PAGE}"));
        if let Some(filter) = filter {
            path.push_str(&format!("&$filter={}", encode_segment(filter)));
        }
        if count {
            path.push_str("&$count=true");
        }
        self.pages(Purpose::Identity, path)
    }

    /// The tenant's users (enabled ones only when `enabled_only`), as Graph counts them:
    /// `GET /beta/users?$select=id&$top=1&$count=true[&$filter=accountEnabled eq true]`, an
    /// advanced query (the transport adds `ConsistencyLevel: eventual`). One small read, for
    /// the read planner to cost a listing or the registration report.
    pub async fn user_count(&self, enabled_only: bool) -> Result<Option<u64>, GraphError> {
        let mut path = "/beta/users?$select=id&$top=1&$count=true".to_owned();
        if enabled_only {
            path.push_str(&format!(
                "&$filter={}",
                encode_segment("accountEnabled eq true")
            ));
        }
        let page: Collection<DirectoryObjectId> = self.get_json(Purpose::Identity, &path).await?;
        Ok(page.count)
    }

    /// `GET /beta/reports/authenticationMethods/userRegistrationDetails?$top=999`, a page at a
    /// time: every enabled user's registered methods and sign-in preferences as the report last
    /// saw them (Microsoft: "doesn't work for disabled users"). Paced to Graph's reports limit
    /// ([`Purpose::Report`]). `$top` is not on Microsoft's page for the list, which documents
    /// `$filter` alone; tools that read the report widely send `$top=999`, and a Graph that
    /// refuses it answers 400, which the caller takes as "no report".
    pub fn registration_details(&self) -> Pages<RegistrationDetails> {
        self.pages(
            Purpose::Report,
            format!("/beta/reports/authenticationMethods/userRegistrationDetails?$top={MAX_PAGE}"),
        )
    }

    /// `GET /beta/identity/conditionalAccess/policies`, following `@odata.nextLink`: every
    /// Conditional Access policy, as Graph returns it (read by [`crate::plan::coverage`]).
    pub async fn conditional_access_policies(&self) -> Result<Vec<serde_json::Value>, GraphError> {
        self.get_all(
            Purpose::Coverage,
            "/beta/identity/conditionalAccess/policies".to_owned(),
        )
        .await
    }

    /// `GET /beta/policies/identitySecurityDefaultsEnforcementPolicy`: whether security
    /// defaults are on (`isEnabled`).
    pub async fn security_defaults(&self) -> Result<bool, GraphError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct SecurityDefaults {
            is_enabled: bool,
        }
        let policy: SecurityDefaults = self
            .get_json(
                Purpose::Coverage,
                "/beta/policies/identitySecurityDefaultsEnforcementPolicy",
            )
            .await?;
        Ok(policy.is_enabled)
    }

    /// `GET /beta/roleManagement/directory/roleAssignments?$filter=roleDefinitionId eq
    /// '{role}'&$expand=principal`, following `@odata.nextLink`: the active assignments of one
    /// directory role (a built-in role's definition id is its template id), with each
    /// principal's type.
    pub async fn role_assignments(&self, role: &str) -> Result<Vec<RoleAssignment>, GraphError> {
        let literal = role.replace('\'', "''");
        let filter = encode_segment(&format!("roleDefinitionId eq '{literal}'"));
        let path = format!(
            "/beta/roleManagement/directory/roleAssignments?$filter={filter}&$expand=principal"
        );
        self.get_all(Purpose::Coverage, path).await
    }

    /// `GET /beta/groups/{group}/transitiveMembers?$select=...&$top=999`, a page at a time: the
    /// users and groups in the group (by object id), directly or through nested groups. Not
    /// the `/microsoft.graph.user` cast, which Graph documents as an advanced query
    /// (`ConsistencyLevel: eventual` and `$count`): keep the users with
    /// [`DirectoryUser::is_user`].
    pub fn transitive_members(&self, group: &str) -> Pages<DirectoryUser> {
        self.transitive_members_for(Purpose::Identity, group)
    }

    /// [`GraphClient::transitive_members`], counted under `purpose`.
    pub fn transitive_members_for(&self, purpose: Purpose, group: &str) -> Pages<DirectoryUser> {
        self.pages(
            purpose,
            format!(
                "/beta/groups/{}/transitiveMembers?$select={USER_PROPERTIES}&$top={MAX_PAGE}",
                encode_segment(group)
            ),
        )
    }

    /// `GET /beta/groups/{group}/members?$select=id`, following `@odata.nextLink`: the object
    /// ids of the group's direct members that are users or groups, in Graph's order (devices,
    /// service principals and contacts, which a group may also hold, are dropped).
    pub async fn group_members(&self, group: &str) -> Result<Vec<String>, GraphError> {
        let path = format!(
            "/beta/groups/{}/members?$select=id&$top={MAX_PAGE}",
            encode_segment(group)
        );
        let members: Vec<DirectoryObjectId> = self.get_all(Purpose::Identity, path).await?;
        Ok(members
            .into_iter()
            .filter(|member| {
                member.odata_type.as_deref().is_none_or(|t| {
                    t.eq_ignore_ascii_case("#microsoft.graph.user")
                        || t.eq_ignore_ascii_case("#microsoft.graph.group")
                })
            })
            .map(|member| member.id)
            .collect())
    }

    /// `GET /beta/groups?$select=id,displayName`, following `@odata.nextLink`: every group.
    pub async fn groups(&self) -> Result<Vec<GroupName>, GraphError> {
        let path = format!("/beta/groups?$select=id,displayName&$top={MAX_PAGE}");
        self.get_all(Purpose::Identity, path).await
    }

    /// A collection read a page at a time from `path`.
    fn pages<T>(&self, purpose: Purpose, path: String) -> Pages<T> {
        Pages {
            client: self.clone(),
            purpose,
            next: Some(path),
            count: None,
            seen: std::collections::HashSet::new(),
            _items: std::marker::PhantomData,
        }
    }

    /// Every item of a collection, following `@odata.nextLink` on the same origin only.
    async fn get_all<T: DeserializeOwned>(
        &self,
        purpose: Purpose,
        path: String,
    ) -> Result<Vec<T>, GraphError> {
        let mut pages = self.pages(purpose, path);
        let mut items = Vec::new();
        while let Some(page) = pages.next_page().await? {
            items.extend(page);
        }
        Ok(items)
    }

    /// `PATCH .../authentication/{endpoint}` with exactly `body`.
    pub async fn patch(
        &self,
        user: &str,
        endpoint: Endpoint,
        body: &impl serde::Serialize,
    ) -> Result<PatchOutcome, GraphError> {
        let body = serde_json::to_value(body).expect("PATCH bodies serialise");
        let response = self
            .transport
            .send(
                Purpose::Write,
                &endpoint_path(user, endpoint.as_str()),
                Some(&body),
            )
            .await?;
        Ok(PatchOutcome {
            status: response.status,
            request_id: response.request_id,
            settled_by_read: response.settled_by_read,
        })
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        purpose: Purpose,
        path: &str,
    ) -> Result<T, GraphError> {
        let Response {
            body, request_id, ..
        } = self.transport.send(purpose, path, None).await?;
        serde_json::from_slice(&body).map_err(|error| GraphError::Decode {
            method: "GET",
            path: path.to_owned(),
            message: error.to_string(),
            request_id,
        })
    }

    /// A `nextLink` is absolute; the transport takes paths from the root. A link to any other
    /// origin gives `None`: following it would send the bearer token there.
    fn relative(&self, link: &str) -> Option<String> {
        let root = url::Url::parse(self.transport.root()).ok()?;
        let next = url::Url::parse(link).ok()?;
        let same_origin = next.scheme() == root.scheme()
            && next.host_str() == root.host_str()
            && next.port_or_known_default() == root.port_or_known_default();
        if !same_origin {
            return None;
        }
        let mut path = next.path().to_owned();
        if let Some(query) = next.query() {
            path.push('?');
            path.push_str(query);
        }
        Some(path)
    }
}

/// The tenant's authentication methods policy.
const POLICY_PATH: &str = "/beta/policies/authenticationMethodsPolicy";

/// The user properties a listing selects ([`DirectoryUser`]).
const USER_PROPERTIES: &str = "id,userPrincipalName,displayName,userType,accountEnabled";

/// The largest `$top` Graph takes for directory objects: the fewest pages.
const MAX_PAGE: usize = 999;

/// A Graph collection read a page at a time, following `@odata.nextLink`, which must stay on
/// the client's Graph root (scheme, host and port): a link anywhere else is refused, not
/// followed, since following it would send the bearer token there. Each page goes through the
/// transport like any read (pacing, retry, token), so a throttled page waits and is sent again.
#[derive(Debug)]
pub struct Pages<T> {
    client: GraphClient,
    purpose: Purpose,
    /// The next page's path from the root; `None` after the last page.
    next: Option<String>,
    /// `@odata.count` of the last page that carried one.
    count: Option<u64>,
    /// Every page asked for so far: a link to one of them again would loop forever.
    seen: std::collections::HashSet<String>,
    _items: std::marker::PhantomData<fn() -> T>,
}

/// The most pages one listing may take: 100,000 pages of 999 is a hundred million objects, far
/// beyond any tenant; a listing that goes on longer is not Graph's.
pub const MAX_PAGES: usize = 100_000;

impl<T: DeserializeOwned> Pages<T> {
    /// The next page's items, or `None` after the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>, GraphError> {
        let Some(path) = self.next.take() else {
            return Ok(None);
        };
        let refused = |path: &str, message: String| GraphError::Decode {
            method: "GET",
            path: path.to_owned(),
            message,
            request_id: None,
        };
        if self.seen.len() >= MAX_PAGES {
            return Err(refused(
                &path,
                format!("the listing went on past {MAX_PAGES} pages; not followed further"),
            ));
        }
        let page: Collection<T> = self.client.get_json(self.purpose, &path).await?;
        self.count = page.count.or(self.count);
        self.seen.insert(path.clone());
        if let Some(link) = page.next_link {
            let next = self
                .client
                .relative(&link)
                .ok_or_else(|| GraphError::Decode {
                    method: "GET",
                    path: path.clone(),
                    message: format!(
                        "@odata.nextLink {} points outside {}; not followed",
                        crate::text::printable_capped(&link, 200),
                        self.client.transport.root()
                    ),
                    request_id: None,
                })?;
            if self.seen.contains(&next) {
                return Err(refused(
                    &path,
                    format!(
                        "@odata.nextLink {} points at a page already read: the listing would \
                         never end; not followed",
                        crate::text::printable_capped(&link, 200)
                    ),
                ));
            }
            self.next = Some(next);
        }
        Ok(Some(page.value))
    }

    /// Graph's count of the whole collection (`@odata.count`), once a page asked with
    /// `$count=true` has been read.
    pub fn count(&self) -> Option<u64> {
        self.count
    }

    /// Whether another page is left to read.
    pub fn has_next(&self) -> bool {
        self.next.is_some()
    }
}

/// `/beta/users/{user}/authentication/{leaf}` with the user encoded for a URL path.
pub fn endpoint_path(user: &str, leaf: &str) -> String {
    format!("/beta/{}/authentication/{leaf}", user_segment(user))
}

/// The `users/...` path part for a UPN or object id (graph-api.md §10): the UPN is
/// percent-encoded as a path segment (a guest's `#EXT#` becomes `%23EXT%23`); a UPN starting
/// with `$` takes the key form `users('$x@contoso.com')`, with `'` doubled inside the literal.
///
/// The user is always exactly one path segment. The manifest refuses anything that is neither
/// a GUID nor a plausible UPN, but this does not rely on it: `.`, `..` and the empty string
/// would be collapsed or dropped by URL parsing (even percent-encoded: `%2e` is a dot segment
/// too) and retarget the request, so they take the key form as well, where they are inert.
pub fn user_segment(user: &str) -> String {
    if user.starts_with('$') || matches!(user, "" | "." | "..") {
        let literal = user.replace('\'', "''");
        format!("users('{}')", encode_segment(&literal))
    } else {
        format!("users/{}", encode_segment(user))
    }
}

/// Percent-encodes everything outside RFC 3986's unreserved set, `@`, `$` and `'`, so `#`, `?`, `/`,
/// `%`, spaces and non-ASCII never change the URL's structure.
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'@'
            | b'\''
            | b'$' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_are_followed_only_on_the_same_origin() {
        let transport = Transport::new(crate::graph::TransportConfig::new(
            "https://graph.microsoft.com",
            secrecy::SecretString::from("t"),
        ))
        .unwrap();
        let client = GraphClient::new(transport);
        assert_eq!(
            client
                .relative(
                    "https://graph.microsoft.com/beta/users/x/authentication/methods?$skiptoken=a"
                )
                .as_deref(),
            Some("/beta/users/x/authentication/methods?$skiptoken=a")
        );
        for foreign in [
            "https://graph.microsoft.com.evil.example/beta/x",
            "http://graph.microsoft.com/beta/x",
            "https://graph.microsoft.com:8443/beta/x",
            "not a url",
        ] {
            assert_eq!(client.relative(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn guest_upn_hash_is_percent_encoded() {
        assert_eq!(
            user_segment("adele_fabrikam.com#EXT#@contoso.onmicrosoft.com"),
            "users/adele_fabrikam.com%23EXT%23@contoso.onmicrosoft.com"
        );
    }

    #[test]
    fn dollar_upn_uses_key_form_with_quotes_doubled() {
        assert_eq!(
            user_segment("$o'neil@contoso.com"),
            "users('$o''neil@contoso.com')"
        );
    }

    #[test]
    fn dot_segments_and_empty_users_never_leave_their_segment() {
        for user in [".", "..", ""] {
            let path = endpoint_path(user, "requirements");
            let url = url::Url::parse(&format!("https://graph.microsoft.com{path}")).unwrap();
            let segments: Vec<&str> = url.path_segments().unwrap().collect();
            assert_eq!(segments.len(), 4, "{user:?} -> {}", url.path());
            assert_eq!(segments[0], "beta");
            assert_eq!(segments[2], "authentication");
        }
    }

    #[test]
    fn object_ids_and_plain_upns_pass_through() {
        let id = "071cc716-8147-4397-a5ba-b2105951cc0b";
        assert_eq!(user_segment(id), format!("users/{id}"));
        assert_eq!(
            endpoint_path("megan@contoso.com", "requirements"),
            "/beta/users/megan@contoso.com/authentication/requirements"
        );
        assert_eq!(user_segment("a b/c?d%"), "users/a%20b%2Fc%3Fd%25");
    }
}
