//! The contract test (issue 15): every property name and enum value the emulator serves, and
//! every one the client sends or expects, must be in Microsoft's published beta schema, the
//! slice of msgraph-metadata's `beta-Prod.csdl` vendored in `tests/fixtures/graph-beta-schema.xml`
//! (its header says where it came from and when). A name Graph is seen to use but does not
//! declare is a known exception, listed below with why.
//!
//! Adding a name is a one-line change: a route Graph serves is a line of [`ROUTES`], a struct the
//! client reads a line of `the_client_expects_only_names_in_the_schema`, an exception a line of
//! [`KNOWN_EXCEPTIONS`]. What mfactl sends is recorded, not listed: every request of a plan, an
//! apply, `show`, `export` and `auth check`, batched and not, through a recording proxy.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use mfactl::graph::wire;
use mfactl::model::MethodKind;
use mfactl_emulator::{Group, Tenant};
use serde::Serialize;
use serde_json::{Value, json};

use crate::fault_proxy::{Action, FaultProxy, RequestHead};
use crate::support::{Scenario, stderr};

/// The vendored schema slice.
const FIXTURE: &str = include_str!("../fixtures/graph-beta-schema.xml");

/// Names Graph uses that its beta schema does not declare: (type, property, why).
const KNOWN_EXCEPTIONS: &[(&str, &str, &str)] = &[
    // Returned by GET signInPreferences on real tenants (graph-api.md §1), read-only, absent
    // from beta-Prod.csdl and the type mappings; `show` prints it as Graph's word.
    (
        "signInPreferences",
        "systemPreferredAuthenticationMethod",
        "undocumented, seen in real answers",
    ),
    // Declared in v1.0 (v1.0-entity-types.json) and on the beta resource page, but not in
    // beta-Prod.csdl; `show` labels a Temporary Access Pass with them when Graph sends them.
    (
        "temporaryAccessPassAuthenticationMethod",
        "isUsable",
        "v1.0 and beta docs, not beta CSDL",
    ),
    (
        "temporaryAccessPassAuthenticationMethod",
        "methodUsabilityReason",
        "v1.0 and beta docs, not beta CSDL",
    ),
    // Selected on the users listing by the read planner's bulk path (issue 17): not in
    // beta-Prod.csdl nor on the user resource page, but answered by Graph to
    // `/users?$select=...,perUserMfaState` (CIPP lists users so since 2025-03). mfactl takes it
    // as a hint and reads `requirements` alone when it is refused or missing.
    (
        "user",
        "perUserMfaState",
        "undocumented, answered to $select on /users",
    ),
];

/// The routes mfactl uses, under `/beta`, and the schema type of the answer (a `Collection(...)`
/// answers `{"value": [...]}`); `*` is one key segment. A PATCH body is the same type.
const ROUTES: &[(&str, &str)] = &[
    (
        "users/*/authentication/signInPreferences",
        "graph.signInPreferences",
    ),
    (
        "users/*/authentication/requirements",
        "graph.strongAuthenticationRequirements",
    ),
    (
        "users/*/authentication/methods",
        "Collection(graph.authenticationMethod)",
    ),
    (
        "users/*/transitiveMemberOf",
        "Collection(graph.directoryObject)",
    ),
    (
        "users/*/transitiveMemberOf/microsoft.graph.group",
        "Collection(graph.group)",
    ),
    ("users/*/authentication", "graph.authentication"),
    ("users/*", "graph.user"),
    ("users", "Collection(graph.user)"),
    ("groups", "Collection(graph.group)"),
    ("groups/*/members", "Collection(graph.directoryObject)"),
    (
        "groups/*/transitiveMembers",
        "Collection(graph.directoryObject)",
    ),
    (
        "groups/*/transitiveMembers/microsoft.graph.user",
        "Collection(graph.user)",
    ),
    ("organization", "Collection(graph.organization)"),
    (
        "policies/authenticationMethodsPolicy",
        "graph.authenticationMethodsPolicy",
    ),
    (
        "reports/authenticationMethods/userRegistrationDetails",
        "Collection(graph.userRegistrationDetails)",
    ),
    (
        "policies/identitySecurityDefaultsEnforcementPolicy",
        "graph.identitySecurityDefaultsEnforcementPolicy",
    ),
    (
        "identity/conditionalAccess/policies",
        "Collection(graph.conditionalAccessPolicy)",
    ),
    (
        "roleManagement/directory/roleAssignments",
        "Collection(graph.unifiedRoleAssignment)",
    ),
];

/// The entity sets (and the one singleton) the routes start from, and their types.
const ROOTS: &[(&str, &str)] = &[
    ("users", "user"),
    ("groups", "group"),
    ("organization", "organization"),
    (
        "policies/authenticationMethodsPolicy",
        "authenticationMethodsPolicy",
    ),
    // The `reports` singleton's `authenticationMethods` (reportRoot is not vendored; Microsoft's
    // authenticationMethodsRoot page names this path's type).
    ("reports/authenticationMethods", "authenticationMethodsRoot"),
    (
        "policies/identitySecurityDefaultsEnforcementPolicy",
        "identitySecurityDefaultsEnforcementPolicy",
    ),
    // The containers above these collections (identityContainer, conditionalAccessRoot,
    // rbacApplication) are not vendored: the routes start at the collection itself.
    (
        "identity/conditionalAccess/policies",
        "conditionalAccessPolicy",
    ),
    (
        "roleManagement/directory/roleAssignments",
        "unifiedRoleAssignment",
    ),
];

// ---------------------------------------------------------------------------------------------
// The schema slice.

/// One structured type: its base type, its properties and navigation properties (name to type).
#[derive(Debug, Default)]
struct TypeDef {
    base: Option<String>,
    properties: HashMap<String, String>,
}

/// The vendored slice: structured types and enums, by name (without `graph.`).
#[derive(Debug, Default)]
struct Schema {
    types: HashMap<String, TypeDef>,
    enums: HashMap<String, BTreeSet<String>>,
}

/// `name="value"` of one CSDL element line.
fn attribute<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = line.find(&key)? + key.len();
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

fn unqualified(name: &str) -> String {
    name.strip_prefix("graph.").unwrap_or(name).to_owned()
}

impl Schema {
    /// Reads the fixture: one element per line, as `beta-Prod.csdl` is written.
    fn parse(text: &str) -> Schema {
        let mut schema = Schema::default();
        let mut current_type: Option<String> = None;
        let mut current_enum: Option<String> = None;
        for line in text.lines().map(str::trim) {
            let name = attribute(line, "Name");
            if line.starts_with("<EntityType ") || line.starts_with("<ComplexType ") {
                let name = name.expect("a type has a name").to_owned();
                let def = TypeDef {
                    base: attribute(line, "BaseType").map(unqualified),
                    ..TypeDef::default()
                };
                schema.types.insert(name.clone(), def);
                current_type = (!line.ends_with("/>")).then_some(name);
            } else if line.starts_with("</EntityType>") || line.starts_with("</ComplexType>") {
                current_type = None;
            } else if line.starts_with("<EnumType ") {
                let name = name.expect("an enum has a name").to_owned();
                schema.enums.insert(name.clone(), BTreeSet::new());
                current_enum = Some(name);
            } else if line.starts_with("</EnumType>") {
                current_enum = None;
            } else if line.starts_with("<Member ")
                && let Some(owner) = &current_enum
            {
                let member = name.expect("a member has a name").to_owned();
                schema
                    .enums
                    .get_mut(owner)
                    .expect("open enum")
                    .insert(member);
            } else if (line.starts_with("<Property ") || line.starts_with("<NavigationProperty "))
                && let Some(owner) = &current_type
            {
                let (name, ty) = (
                    name.expect("named"),
                    attribute(line, "Type").expect("typed"),
                );
                let def = schema.types.get_mut(owner).expect("open type");
                def.properties.insert(name.to_owned(), ty.to_owned());
            }
        }
        schema
    }

    /// The type of `property` on `ty` or a base type of it.
    fn property(&self, ty: &str, property: &str) -> Option<&str> {
        let mut at = Some(ty);
        while let Some(name) = at {
            let def = self.types.get(name)?;
            if let Some(found) = def.properties.get(property) {
                return Some(found);
            }
            at = def.base.as_deref();
        }
        None
    }

    /// Whether `ty` is `ancestor` or derives from it.
    fn derives_from(&self, ty: &str, ancestor: &str) -> bool {
        let mut at = Some(ty);
        while let Some(name) = at {
            if name == ancestor {
                return true;
            }
            at = self.types.get(name).and_then(|d| d.base.as_deref());
        }
        false
    }

    /// Whether `property` is on `ty`, a base type of it, or (for a property of a polymorphic
    /// value such as an authentication method, or a directory object that is a user) a type
    /// derived from it; a known exception counts.
    fn in_family(&self, ty: &str, property: &str) -> bool {
        let family = |t: &str| t == ty || self.derives_from(t, ty);
        self.property(ty, property).is_some()
            || self
                .types
                .keys()
                .filter(|t| family(t))
                .any(|t| self.property(t, property).is_some())
            || KNOWN_EXCEPTIONS
                .iter()
                .any(|(t, p, _)| *p == property && family(t))
    }

    fn is_exception(ty: &str, property: &str) -> bool {
        KNOWN_EXCEPTIONS
            .iter()
            .any(|(t, p, _)| *t == ty && *p == property)
    }

    /// Every name and enum value in `value` that the type `ty` (`graph.x`, `Collection(...)`,
    /// `Edm.*`) does not declare, each as "path: problem".
    fn check(&self, ty: &str, value: &Value, at: &str, out: &mut Vec<String>) {
        if let Some(inner) = ty
            .strip_prefix("Collection(")
            .and_then(|t| t.strip_suffix(')'))
        {
            if let Value::Array(items) = value {
                for (index, item) in items.iter().enumerate() {
                    self.check(inner, item, &format!("{at}[{index}]"), out);
                }
            }
            return;
        }
        let Some(name) = ty.strip_prefix("graph.") else {
            return; // Edm.*: a primitive
        };
        if let Some(members) = self.enums.get(name) {
            // A flags enum holds several members, comma-separated.
            for member in value.as_str().into_iter().flat_map(|v| v.split(',')) {
                if !members.contains(member.trim()) {
                    out.push(format!("{at}: {member:?} is not a member of enum {name}"));
                }
            }
            return;
        }
        let Value::Object(object) = value else {
            return;
        };
        let actual = self.actual_type(name, object, at, out);
        for (key, item) in object {
            if key.contains('@') {
                continue; // an instance annotation: @odata.type, x@odata.context
            }
            match self.property(&actual, key) {
                Some(inner) => self.check(inner, item, &format!("{at}.{key}"), out),
                None if Schema::is_exception(&actual, key) => {}
                None if !self.types.contains_key(&actual) => {
                    out.push(format!("{at}: type {actual} is not in the fixture"));
                }
                None => out.push(format!("{at}.{key}: {actual} has no property {key}")),
            }
        }
    }

    /// The type an object says it is (`@odata.type`), which must be `declared` or derive from
    /// it; else `declared`.
    fn actual_type(
        &self,
        declared: &str,
        object: &serde_json::Map<String, Value>,
        at: &str,
        out: &mut Vec<String>,
    ) -> String {
        let Some(said) = object.get("@odata.type").and_then(Value::as_str) else {
            return declared.to_owned();
        };
        let said = said
            .trim_start_matches('#')
            .trim_start_matches("microsoft.graph.");
        if !self.derives_from(said, declared) {
            out.push(format!("{at}: @odata.type {said} is not a {declared}"));
            return declared.to_owned();
        }
        said.to_owned()
    }
}

fn schema() -> Schema {
    Schema::parse(FIXTURE)
}

// ---------------------------------------------------------------------------------------------
// Routes and requests.

/// The `ROUTES` line a path under `/beta` (without query) matches: `(pattern, answer type)`.
fn route(path: &str) -> Option<(&'static str, &'static str)> {
    let path = path.trim_start_matches('/');
    let path = path.strip_prefix("beta/").unwrap_or(path);
    // `users('key')/...` is `users/key/...`.
    let path = match path.strip_prefix("users('") {
        Some(rest) => match rest.split_once("')") {
            Some((key, tail)) => format!("users/{key}{tail}"),
            None => path.to_owned(),
        },
        None => path.to_owned(),
    };
    let segments: Vec<&str> = path.split('/').collect();
    ROUTES.iter().copied().find(|(pattern, _)| {
        let wanted: Vec<&str> = pattern.split('/').collect();
        wanted.len() == segments.len()
            && wanted
                .iter()
                .zip(&segments)
                .all(|(w, s)| *w == "*" || w.eq_ignore_ascii_case(s))
    })
}

/// The type of one item of an answer of type `ty` (a collection's items, or `ty` itself).
fn item_type(ty: &str) -> &str {
    ty.strip_prefix("Collection(")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(ty)
}

/// The property names a query names: `$select`, `$orderby`, `$expand`, and the left side of
/// each comparison in `$filter` (`displayName eq '...'`).
fn queried_names(query: &str) -> Vec<String> {
    let mut names = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match key {
            "$select" | "$orderby" | "$expand" => names.extend(
                value
                    .split(',')
                    .map(|n| n.split_whitespace().next().unwrap_or("").to_owned()),
            ),
            "$filter" => {
                let words: Vec<&str> = value.split([' ', '(', ')']).collect();
                for pair in words.windows(2) {
                    if ["eq", "ne", "in", "gt", "lt", "ge", "le"].contains(&pair[1]) {
                        names.push(pair[0].to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One Graph request as sent, a `$batch` item included.
struct Sent {
    method: String,
    /// Path with query, under the Graph root (`/beta/...`).
    target: String,
    body: Option<Value>,
}

/// The requests in what the proxy recorded, each `$batch` opened into its items.
fn sent(recorded: &[RequestHead]) -> Vec<Sent> {
    let mut out = Vec::new();
    for head in recorded {
        let body: Option<Value> = serde_json::from_slice(&head.body).ok();
        if head.path.split('?').next() == Some("/beta/$batch") {
            let batch = body.expect("a $batch body is JSON");
            for item in batch["requests"].as_array().expect("requests") {
                let url = item["url"].as_str().expect("url");
                out.push(Sent {
                    method: item["method"].as_str().expect("method").to_owned(),
                    target: format!("/beta/{}", url.trim_start_matches('/')),
                    body: item.get("body").cloned(),
                });
            }
        } else {
            out.push(Sent {
                method: head.method.clone(),
                target: head.path.clone(),
                body,
            });
        }
    }
    out
}

/// The problems with one request: an unknown route, a queried name or a body name not in the
/// schema.
fn check_sent(schema: &Schema, request: &Sent, out: &mut Vec<String>) {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    let at = format!("{} {}", request.method, request.target);
    let Some((pattern, ty)) = route(path) else {
        out.push(format!("{at}: no line of ROUTES matches"));
        return;
    };
    let item = item_type(ty).trim_start_matches("graph.");
    // A list of directory objects takes the names of the types its items may be: Graph answers
    // `$select=userPrincipalName` on a group's members with each user's (its docs' examples
    // select user properties on member lists).
    for name in queried_names(query) {
        if !schema.in_family(item, &name) {
            out.push(format!("{at}: {item} has no property {name} ({pattern})"));
        }
    }
    if let Some(body) = &request.body {
        schema.check(ty, body, &at, out);
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn the_fixture_holds_what_the_other_checks_rely_on() {
    let schema = schema();
    assert!(schema.types.len() > 60, "{} types", schema.types.len());
    assert!(schema.enums.len() > 30, "{} enums", schema.enums.len());
    for (ty, property) in [
        ("authenticationMethodsPolicy", "reconfirmationInDays"),
        (
            "authenticationMethodsPolicy",
            "microsoftAuthenticatorPlatformSettings",
        ),
        (
            "signInPreferences",
            "userPreferredMethodForSecondaryAuthentication",
        ),
        ("strongAuthenticationRequirements", "perUserMfaState"),
        ("userRegistrationDetails", "isMfaCapable"),
        ("conditionalAccessPolicy", "conditions"),
        ("identitySecurityDefaultsEnforcementPolicy", "isEnabled"),
        ("user", "id"), // from entity, through directoryObject
    ] {
        assert!(schema.property(ty, property).is_some(), "{ty}.{property}");
    }
    for (ty, property, _) in KNOWN_EXCEPTIONS {
        assert!(
            schema.types.contains_key(*ty) && schema.property(ty, property).is_none(),
            "{ty}.{property} is an exception only while the schema lacks it"
        );
    }
    // Every route walks the schema: each segment after a key is a (navigation) property of the
    // type reached, or a cast to a type derived from it.
    for (pattern, ty) in ROUTES {
        let (root, root_type) = ROOTS
            .iter()
            .find(|(root, _)| pattern.starts_with(root))
            .unwrap_or_else(|| panic!("{pattern}: no line of ROOTS"));
        let mut current = root_type.to_string();
        for segment in pattern[root.len()..].split('/').filter(|s| !s.is_empty()) {
            if segment == "*" {
                continue;
            }
            current = match segment.strip_prefix("microsoft.graph.") {
                Some(cast) => {
                    assert!(schema.derives_from(cast, &current), "{pattern}: {cast}");
                    cast.to_owned()
                }
                None => item_type(
                    schema
                        .property(&current, segment)
                        .unwrap_or_else(|| panic!("{pattern}: {current} has no {segment}")),
                )
                .trim_start_matches("graph.")
                .to_owned(),
            };
        }
        assert_eq!(
            item_type(ty).trim_start_matches("graph."),
            current,
            "{pattern}"
        );
    }
    // The checker finds what it must.
    let mut problems = Vec::new();
    let bad = json!({"state": "on", "includeTargets": [{"id": "all_users", "targetTyp": "group"}]});
    schema.check(
        "graph.systemCredentialPreferences",
        &bad,
        "x",
        &mut problems,
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
}

/// A tenant in which every route answers something: every kind of method registered, groups
/// (one nested) with members.
fn tenant() -> Tenant {
    let mut tenant = Tenant::generate(12, 151);
    tenant.users[0].methods = MethodKind::ALL.to_vec();
    let ids: Vec<String> = tenant.users.iter().map(|u| u.id.clone()).collect();
    tenant.groups = vec![
        Group {
            id: "5d1b6c1e-0000-4000-8000-00000000d001".into(),
            display_name: Some("Pilot".into()),
            members: vec![
                ids[0].clone(),
                ids[1].clone(),
                "5d1b6c1e-0000-4000-8000-00000000d002".into(),
            ],
        },
        Group {
            id: "5d1b6c1e-0000-4000-8000-00000000d002".into(),
            display_name: Some("Nested".into()),
            members: vec![ids[2].clone()],
        },
    ];
    // Conditional Access that makes the coverage check read every route it uses: a group, a
    // role (held by a user and by a group), guests, an authentication strength, narrowing
    // conditions.
    tenant.security_defaults = Some(false);
    tenant.conditional_access_policies = vec![
        json!({
            "id": "ca-1", "displayName": "MFA for the pilot", "state": "enabled",
            "conditions": {
                "users": { "includeGroups": ["5d1b6c1e-0000-4000-8000-00000000d001"],
                           "includeRoles": ["62e90394-69f5-4237-9190-012177145e10"],
                           "excludeGuestsOrExternalUsers": {
                               "guestOrExternalUserTypes": "internalGuest,b2bCollaborationGuest",
                               "externalTenants": { "membershipKind": "all" } } },
                "applications": { "includeApplications": ["All"], "excludeApplications": ["app"] },
                "locations": { "includeLocations": ["All"], "excludeLocations": ["AllTrusted"] },
                "clientAppTypes": ["browser", "mobileAppsAndDesktopClients"],
                "platforms": { "includePlatforms": ["all"], "excludePlatforms": ["iOS"] },
                "signInRiskLevels": ["high"]
            },
            "grantControls": { "operator": "OR",
                "authenticationStrength": { "id": "00000000-0000-0000-0000-000000000004" } }
        }),
        json!({
            "id": "ca-2", "displayName": "MFA for all (report-only)",
            "state": "enabledForReportingButNotEnforced",
            "conditions": { "users": { "includeUsers": ["All"] },
                            "applications": { "includeApplications": ["All"] } },
            "grantControls": { "operator": "AND", "builtInControls": ["mfa", "compliantDevice"] }
        }),
    ];
    tenant.role_assignments = vec![
        mfactl_emulator::RoleAssignment {
            role_definition_id: "62e90394-69f5-4237-9190-012177145e10".into(),
            principal_id: ids[3].clone(),
            directory_scope_id: None,
        },
        mfactl_emulator::RoleAssignment {
            role_definition_id: "62e90394-69f5-4237-9190-012177145e10".into(),
            principal_id: "5d1b6c1e-0000-4000-8000-00000000d002".into(),
            directory_scope_id: Some("/".into()),
        },
    ];
    tenant
}

/// What the emulator answers to GET `target` (a path under the root, with query).
fn served(scenario: &Scenario, target: &str) -> Value {
    let url = format!("{}{target}", scenario.url());
    scenario.block_on(async {
        let mut request = reqwest::Client::new()
            .get(&url)
            .bearer_auth("test-token-not-a-secret");
        // `$count` is an advanced query, which Graph answers only with this header (mfactl's
        // transport sends it with every `$count=true`).
        if target.contains("$count=true") {
            request = request.header("ConsistencyLevel", "eventual");
        }
        let answer = request.send().await.expect("the emulator answers");
        assert!(answer.status().is_success(), "{url}: {}", answer.status());
        answer.json().await.expect("JSON")
    })
}

#[test]
fn the_emulator_serves_only_names_in_the_schema_alone_and_in_a_batch() {
    let schema = schema();
    let scenario = Scenario::new(tenant());
    let user = scenario.tenant().users[0].id.clone();
    let group = "5d1b6c1e-0000-4000-8000-00000000d001";
    let mut problems = Vec::new();
    let mut batch = Vec::new();
    for (pattern, ty) in ROUTES {
        let key = if pattern.starts_with("groups") {
            group
        } else {
            &user
        };
        let target = format!("/beta/{}", pattern.replace('*', key));
        schema.check(ty, &served(&scenario, &target), &target, &mut problems);
        batch.push(json!({"id": batch.len().to_string(), "method": "GET", "url": &target[5..]}));
    }
    // The same reads inside one `$batch`: each item's body is checked against its route.
    let answer: Value = scenario.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/beta/$batch", scenario.url()))
            .bearer_auth("test-token-not-a-secret")
            .json(&json!({ "requests": batch }))
            .send()
            .await
            .expect("the emulator answers")
            .json()
            .await
            .expect("JSON")
    });
    let responses = answer["responses"].as_array().expect("responses");
    assert_eq!(responses.len(), ROUTES.len(), "{answer}");
    for response in responses {
        let index: usize = response["id"].as_str().unwrap().parse().unwrap();
        let (pattern, ty) = ROUTES[index];
        assert_eq!(response["status"], 200, "{pattern}: {response}");
        schema.check(
            ty,
            &response["body"],
            &format!("$batch {pattern}"),
            &mut problems,
        );
    }
    assert!(
        problems.is_empty(),
        "not in Microsoft's beta schema:\n{}",
        problems.join("\n")
    );
}

/// Runs mfactl `args` through a proxy that records every request.
fn recorded(scenario: &Scenario, runs: &[Vec<String>]) -> Vec<RequestHead> {
    let proxy = FaultProxy::in_front_of(&scenario.url());
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    proxy.set_rule(move |head: &RequestHead, _| {
        sink.lock().unwrap().push(head.clone());
        Action::Forward
    });
    for args in runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = proxy.mfactl(&args).output().expect("mfactl runs");
        let code = out.status.code();
        assert_eq!(code, Some(0), "{args:?}: {}", stderr(&out));
    }
    log.lock().unwrap().clone()
}

#[test]
fn mfactl_sends_only_names_in_the_schema_and_every_answer_it_reads_is_in_it_too() {
    let schema = schema();
    let scenario = Scenario::new(tenant());
    let tenant = scenario.tenant();
    let (first, second) = (&tenant.users[0], &tenant.users[1]);
    let manifest = scenario.write(
        "contract.yaml",
        &format!(
            "version: 1
users:
  - user: {}
    preferredMethod: sms
    systemPreferred: true
    perUserMfaState: enforced
  - user: {}
    perUserMfaState: enabled
groups:
  - group: Pilot
    systemPreferred: false
exclude:
  - group: Nested
policy:
  systemCredentialPreferences:
    state: enabled
    includeTargets: [{{ id: all_users, targetType: group }}]
    excludeTargets: [{{ id: Nested, targetType: group }}]
  registrationCampaign:
    state: enabled
    snoozeDurationInDays: 3
    enforceRegistrationAfterAllowedSnoozes: true
    includeTargets: [{{ id: Pilot, targetType: group, targetedAuthenticationMethod: Fido2 }}]
    excludeTargets: []
  reportSuspiciousActivity:
    state: enabled
    includeTarget: {{ id: all_users, targetType: group }}
    voiceReportingCode: 8
",
            first.user_principal_name, second.id
        ),
    );
    let all_users = scenario.write(
        "all.yaml",
        "version: 1\nallUsers:\n  perUserMfaState: disabled\n",
    );
    let export = scenario.write("export.yaml", "");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let strings = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let runs = vec![
        strings(&["plan", &path(&manifest), "--no-batch"]),
        strings(&["plan", &path(&all_users)]),
        // The read planner's bulk reads (issue 17): the listing with perUserMfaState, the
        // registration report and `/users/{id}/authentication`.
        strings(&["plan", &path(&manifest), "--read-path", "bulk"]),
        strings(&["apply", &path(&manifest), "--auto-approve"]),
        strings(&["show", &first.user_principal_name, &second.id]),
        strings(&["export", "--as", "tenant", "--out", &path(&export)]),
        strings(&["auth", "check", "--for", &path(&manifest)]),
    ];
    let recorded = recorded(&scenario, &runs);
    let requests = sent(&recorded);
    assert!(
        requests.iter().any(|r| r.method == "PATCH"),
        "the apply wrote"
    );
    let gets = |pattern: &str| {
        requests.iter().any(|r| {
            r.method == "GET"
                && route(r.target.split('?').next().unwrap()).map(|(p, _)| p) == Some(pattern)
        })
    };
    for bulk in [
        "reports/authenticationMethods/userRegistrationDetails",
        "users/*/authentication",
    ] {
        assert!(gets(bulk), "a bulk plan reads {bulk}");
    }
    assert!(
        requests
            .iter()
            .any(|r| r.target.starts_with("/beta/users?") && r.target.contains("perUserMfaState")),
        "a listing selects perUserMfaState"
    );
    let mut problems = Vec::new();
    for request in &requests {
        check_sent(&schema, request, &mut problems);
    }
    // What mfactl read, as the emulator answers it.
    let targets: BTreeSet<&str> = requests
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.target.as_str())
        .collect();
    for target in targets {
        if let Some((_, ty)) = route(target.split('?').next().unwrap()) {
            schema.check(ty, &served(&scenario, target), target, &mut problems);
        }
    }
    assert!(
        problems.is_empty(),
        "not in Microsoft's beta schema:\n{}",
        problems.join("\n")
    );
}

/// `value` as JSON, for the client's wire types.
fn as_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializes")
}

/// Every wire type the client reads, with every field set so that every name is serialized,
/// and the schema type it reads: a field added to a wire type fails to compile here until it is
/// given, and so checked.
fn client_wire_values() -> Vec<(&'static str, Value)> {
    let text = || Some("x".to_owned());
    let target = wire::PolicyTarget {
        id: "all_users".into(),
        target_type: Some("group".into()),
    };
    vec![
        (
            "graph.signInPreferences",
            as_json(&wire::SignInPreferences {
                is_system_preferred_authentication_method_enabled: Some(true),
                user_preferred_method_for_secondary_authentication: Some("push".into()),
                system_preferred_authentication_method: text(),
            }),
        ),
        (
            "graph.strongAuthenticationRequirements",
            as_json(&wire::Requirements {
                per_user_mfa_state: Some("enforced".into()),
            }),
        ),
        (
            "graph.authenticationMethod",
            as_json(&wire::AuthenticationMethod {
                odata_type: "#microsoft.graph.authenticationMethod".into(),
                id: "m".into(),
                phone_type: Some("mobile".into()),
                phone_number: text(),
                display_name: text(),
                model: text(),
                email_address: text(),
                is_usable: Some(true),
                method_usability_reason: text(),
            }),
        ),
        (
            "graph.user",
            as_json(&wire::UserIdentity {
                id: "u".into(),
                user_principal_name: text(),
                display_name: text(),
            }),
        ),
        (
            "graph.authenticationMethodsPolicy",
            as_json(&wire::AuthenticationMethodsPolicyRead {
                system_credential_preferences: Some(wire::SystemCredentialPreferences {
                    state: Some("default".into()),
                    include_targets: vec![target.clone()],
                    exclude_targets: vec![target],
                }),
            }),
        ),
        (
            "graph.directoryObject",
            as_json(&wire::DirectoryObjectId {
                id: "o".into(),
                odata_type: Some("#microsoft.graph.group".into()),
            }),
        ),
        (
            "graph.user",
            as_json(&wire::DirectoryUser {
                id: "u".into(),
                odata_type: Some("#microsoft.graph.user".into()),
                user_principal_name: text(),
                display_name: text(),
                user_type: Some("Member".into()),
                account_enabled: Some(true),
                per_user_mfa_state: Some("enforced".into()),
            }),
        ),
        (
            "graph.userRegistrationDetails",
            as_json(&wire::RegistrationDetails {
                id: "u".into(),
                user_principal_name: text(),
                user_type: Some("member".into()),
                methods_registered: Some(vec!["mobilePhone".into()]),
                user_preferred_method_for_secondary_authentication: Some("none".into()),
                is_system_preferred_authentication_method_enabled: Some(true),
                last_updated_date_time: Some("2026-12-07T00:00:00Z".into()),
            }),
        ),
        (
            "graph.authentication",
            as_json(&wire::Authentication {
                requirements: Some(wire::Requirements {
                    per_user_mfa_state: Some("enabled".into()),
                }),
                sign_in_preferences: Some(wire::SignInPreferences {
                    is_system_preferred_authentication_method_enabled: Some(false),
                    user_preferred_method_for_secondary_authentication: Some("sms".into()),
                    system_preferred_authentication_method: None,
                }),
            }),
        ),
        (
            "graph.group",
            as_json(&wire::GroupName {
                id: "g".into(),
                display_name: text(),
            }),
        ),
        (
            "graph.organization",
            as_json(&wire::Organization {
                id: "t".into(),
                display_name: text(),
                verified_domains: vec![wire::VerifiedDomain {
                    name: "contoso.com".into(),
                    is_default: true,
                    is_initial: false,
                }],
            }),
        ),
        (
            "graph.unifiedRoleAssignment",
            as_json(&wire::RoleAssignment {
                principal_id: "p".into(),
                directory_scope_id: text(),
                principal: Some(wire::DirectoryObjectId {
                    id: "p".into(),
                    odata_type: Some("#microsoft.graph.user".into()),
                }),
            }),
        ),
    ]
}

#[test]
fn the_client_expects_only_names_in_the_schema() {
    let schema = schema();
    let expected = client_wire_values();
    let mut problems = Vec::new();
    for (ty, value) in &expected {
        // The method's fields belong to its several derived types: each must be on one.
        if *ty == "graph.authenticationMethod" {
            for key in value
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| !k.contains('@'))
            {
                if !schema.in_family("authenticationMethod", key) {
                    problems.push(format!(
                        "authenticationMethod (or a derived type) has no {key}"
                    ));
                }
            }
            continue;
        }
        schema.check(ty, value, ty, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "not in Microsoft's beta schema:\n{}",
        problems.join("\n")
    );
}
