//! What Microsoft publishes, and mfactl now agrees with (issue 15): permissions per token kind
//! from Graph's permission tables, enforced alike by the preflight and the emulator (`$batch`
//! included); the whole beta policy kept through PATCH, `/_emulator/tenant` and
//! `export --as tenant`; 400 for a path segment Graph does not know; the China cloud without
//! `/authentication/methods`; `auth check` judging selectors, the policy and opaque tokens.

use std::path::Path;

use mfactl::graph::Cloud;
use mfactl_emulator::{EmulatorConfig, Group, Tenant};
use serde_json::{Value, json};

use crate::support::{Scenario, mfactl, stderr, stdout};

const SECRET: &str = "emulator-only-published-secret-4f1c";
/// User.ReadBasic.All with everything else a plan of `allUsers:` needs.
const BASIC_APP: &str = "2b1a8e61-0000-4000-8000-0000000000b1";
/// Reads users and groups and the policy, but no authentication method or MFA state.
const DIRECTORY_APP: &str = "2b1a8e61-0000-4000-8000-0000000000b2";
/// May list a group's members, nothing about users.
const MEMBERS_APP: &str = "2b1a8e61-0000-4000-8000-0000000000b3";
const PILOT: &str = "5d1b6c1e-0000-4000-8000-00000000e001";

/// A generated tenant with a "Pilot" group and an `auth:` section of the three apps above.
fn tenant_signing_in() -> Tenant {
    let mut tenant = Tenant::generate(8, 83);
    let members = tenant.users[..3].iter().map(|u| u.id.clone()).collect();
    tenant.groups = vec![Group {
        id: PILOT.into(),
        display_name: Some("Pilot".into()),
        members,
    }];
    let mut text = tenant.to_yaml();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "auth:
  apps:
    - clientId: {BASIC_APP}
      secret: {SECRET}
      roles: [UserAuthenticationMethod.ReadWrite.All, Policy.ReadWrite.AuthenticationMethod, User.ReadBasic.All, GroupMember.Read.All]
    - clientId: {DIRECTORY_APP}
      secret: {SECRET}
      roles: [User.Read.All, GroupMember.Read.All, Policy.Read.All]
    - clientId: {MEMBERS_APP}
      secret: {SECRET}
      roles: [GroupMember.Read.All]
"
    ));
    Tenant::from_yaml_str(&text).expect("the tenant file with an auth section loads")
}

/// `mfactl ARGS --graph-url URL`, signed in as `app` with its secret.
fn as_app(scenario: &Scenario, app: &str, args: &[&str]) -> std::process::Output {
    mfactl()
        .args(args)
        .args(["--graph-url", &scenario.url()])
        .env("AZURE_TENANT_ID", scenario.tenant().tenant_id)
        .env("AZURE_CLIENT_ID", app)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .env("AZURE_AUTHORITY_HOST", scenario.url())
        .output()
        .expect("mfactl runs")
}

/// An app token from the emulator's token endpoint (client credentials).
fn app_token(scenario: &Scenario, app: &str) -> String {
    let scope = format!("{}/.default", scenario.url());
    let answer: Value = scenario.block_on(async {
        reqwest::Client::new()
            .post(scenario.emulator().token_url())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", app),
                ("client_secret", SECRET),
                ("scope", scope.as_str()),
            ])
            .send()
            .await
            .expect("the token endpoint answers")
            .json()
            .await
            .expect("JSON")
    });
    answer["access_token"].as_str().expect("a token").to_owned()
}

/// `method target` (under the root) with `token` and `body`: (status, JSON body or null).
fn call(
    scenario: &Scenario,
    method: reqwest::Method,
    target: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{target}", scenario.url());
    scenario.block_on(async {
        let mut request = reqwest::Client::new()
            .request(method, &url)
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("the emulator answers");
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    })
}

fn get(scenario: &Scenario, target: &str, token: &str) -> (u16, Value) {
    call(scenario, reqwest::Method::GET, target, token, None)
}

#[test]
fn an_app_with_user_read_basic_only_is_refused_before_any_request_for_all_users() {
    let scenario = Scenario::new(tenant_signing_in());
    let manifest = scenario.write(
        "all.yaml",
        "version: 1\nallUsers:\n  perUserMfaState: disabled\n",
    );
    let out = as_app(&scenario, BASIC_APP, &["plan", manifest.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("User.Read.All"), "{err}");
    assert!(
        err.contains("`allUsers:` (line 3)"),
        "names the part: {err}"
    );
    assert!(err.contains("nothing was sent"), "{err}");
    let stats = scenario.stats();
    assert_eq!((stats.reads, stats.forbidden), (0, 0), "{stats:?}");
}

#[test]
fn the_emulator_refuses_an_app_user_reads_without_user_read_all_alone_and_in_a_batch() {
    let scenario = Scenario::new(tenant_signing_in());
    let user = scenario.tenant().users[0].id.clone();
    let token = app_token(&scenario, BASIC_APP);
    // Microsoft's tables: an application lists and looks up users with User.Read.All, whatever
    // it selects; User.ReadBasic.All serves delegated calls only.
    for target in [
        "/beta/users?$select=id,userType,accountEnabled".to_owned(),
        format!("/beta/users/{user}?$select=id,userPrincipalName"),
    ] {
        let (status, body) = get(&scenario, &target, &token);
        assert_eq!(status, 403, "{target}: {body}");
        assert_eq!(
            body["error"]["code"], "Authorization_RequestDenied",
            "{body}"
        );
    }
    let batch = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users?$select=id,userType"},
        {"id": "2", "method": "GET", "url": format!("/users/{user}/authentication/requirements")},
    ]});
    let (status, answer) = call(
        &scenario,
        reqwest::Method::POST,
        "/beta/$batch",
        &token,
        Some(batch),
    );
    assert_eq!(status, 200, "{answer}");
    let by_id = |id: &str| {
        answer["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_id("1")["status"], 403, "{answer}");
    assert_eq!(by_id("2")["status"], 200, "{answer}");
}

#[test]
fn members_read_without_user_permissions_come_back_with_id_and_type_only() {
    let scenario = Scenario::new(tenant_signing_in());
    let token = app_token(&scenario, MEMBERS_APP);
    let target = format!("/beta/groups/{PILOT}/transitiveMembers?$select=id,userPrincipalName");
    let (status, body) = get(&scenario, &target, &token);
    assert_eq!(status, 200, "{body}");
    let members = body["value"].as_array().expect("value");
    assert_eq!(members.len(), 3, "{body}");
    for member in members {
        assert_eq!(member["@odata.type"], "#microsoft.graph.user", "{member}");
        assert!(member["id"].is_string(), "{member}");
        assert_eq!(member["userPrincipalName"], Value::Null, "{member}");
    }
}

#[test]
fn auth_check_for_a_selector_manifest_without_user_authentication_method_permissions_exits_1() {
    let scenario = Scenario::new(tenant_signing_in());
    let manifest = scenario.write(
        "selectors.yaml",
        "version: 1\nallUsers:\n  preferredMethod: push\ngroups:\n  - group: Pilot\n    \
         perUserMfaState: enforced\npolicy:\n  systemCredentialPreferences:\n    state: enabled\n",
    );
    let out = as_app(
        &scenario,
        DIRECTORY_APP,
        &["auth", "check", "--for", manifest.to_str().unwrap()],
    );
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}\n{err}");
    let missing: Vec<&str> = text.lines().filter(|l| l.contains("MISSING")).collect();
    let has = |permission: &str, part: &str| {
        missing
            .iter()
            .any(|l| l.contains(permission) && l.contains(part))
    };
    assert!(
        has("UserAuthenticationMethod.Read.All", "`allUsers:` (line 3)"),
        "{text}"
    );
    assert!(
        has(
            "UserAuthenticationMethod.ReadWrite.All",
            "`allUsers:` (line 3)"
        ),
        "{text}"
    );
    assert!(
        has(
            "Policy.ReadWrite.AuthenticationMethod",
            "`groups:` \"Pilot\" (line 5)"
        ),
        "{text}"
    );
    assert!(
        has("Policy.ReadWrite.AuthenticationMethod", "`policy:`"),
        "{text}"
    );
    // What the app holds is not asked for: the users listing, the members, the policy read.
    for line in text.lines().filter(|l| l.trim_start().starts_with("ok")) {
        assert!(!line.contains("UserAuthenticationMethod"), "{line}");
    }
    assert!(err.contains("needed permissions are missing"), "{err}");
    assert!(err.contains("`allUsers:` (line 3)"), "{err}");
}

#[test]
fn auth_check_asks_graph_once_and_exits_1_when_graph_refuses_an_opaque_token() {
    let scenario = Scenario::new(tenant_signing_in());
    let check = |scenario: &Scenario| {
        mfactl()
            .args(["auth", "check", "--graph-url", &scenario.url()])
            .env("MFACTL_ACCESS_TOKEN", "opaque-token-graph-never-issued")
            .output()
            .expect("mfactl runs")
    };
    let out = check(&scenario);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}\n{err}");
    assert!(text.contains("Graph:       REFUSED the token"), "{text}");
    assert!(err.contains("Graph refused the token"), "{err}");
    assert_eq!(scenario.stats().unauthorized, 1, "one cheap read");

    // The same opaque token, taken by a Graph that signs nobody in: accepted, exit 0.
    let open = Scenario::new(Tenant::generate(2, 5));
    let out = check(&open);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Graph:       accepted the token"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_patched_reconfirmation_and_platform_settings_survive_the_tenant_dump_serve_and_export() {
    let scenario = Scenario::new(Tenant::generate(3, 9));
    let token = "test-token-not-a-secret";
    let platform = json!({"enforceAppPIN": {
        "includeTargets": [{"id": "all_users", "targetType": "group"}],
        "excludeTargets": [{"id": PILOT, "targetType": "group"}],
    }});
    let (status, body) = call(
        &scenario,
        reqwest::Method::PATCH,
        "/beta/policies/authenticationMethodsPolicy",
        token,
        Some(
            json!({"reconfirmationInDays": 90, "microsoftAuthenticatorPlatformSettings": platform}),
        ),
    );
    assert!(status == 200 || status == 204, "{status} {body}");
    let kept = |scenario: &Scenario, what: &str| {
        let (status, policy) = get(
            scenario,
            "/beta/policies/authenticationMethodsPolicy",
            token,
        );
        assert_eq!(status, 200, "{what}: {policy}");
        assert_eq!(policy["reconfirmationInDays"], 90, "{what}: {policy}");
        assert_eq!(
            policy["microsoftAuthenticatorPlatformSettings"], platform,
            "{what}: {policy}"
        );
        // The rest of the policy is Graph's default, untouched.
        assert_eq!(
            policy["systemCredentialPreferences"]["state"], "default",
            "{what}"
        );
    };
    kept(&scenario, "after the PATCH");

    // `/_emulator/tenant`, loaded as a tenant file by a new emulator.
    let dump = scenario.block_on(async {
        reqwest::get(format!("{}/_emulator/tenant", scenario.url()))
            .await
            .expect("the emulator answers")
            .text()
            .await
            .expect("text")
    });
    let reloaded = Scenario::new(Tenant::from_yaml_str(&dump).expect("the dump loads"));
    kept(&reloaded, "served again from /_emulator/tenant");

    // `export --as tenant` of that emulator, loaded again.
    let file = reloaded.write("exported.yaml", "");
    let out = reloaded.run(&["export", "--as", "tenant", "--out", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let exported = Scenario::new(Tenant::load(&file).expect("the export loads"));
    kept(&exported, "served from export --as tenant");
}

#[test]
fn an_unknown_segment_is_a_400_and_only_a_missing_object_a_404() {
    let scenario = Scenario::new(Tenant::generate(2, 4));
    let user = scenario.tenant().users[0].id.clone();
    let token = "test-token-not-a-secret";
    let (status, body) = get(
        &scenario,
        &format!("/beta/users/{user}/authentication/fax"),
        token,
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadRequest");
    assert_eq!(
        body["error"]["message"],
        "Resource not found for the segment 'fax'."
    );
    let (status, body) = get(&scenario, "/beta/users/ghost@contoso.com", token);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
}

/// A scenario whose emulator answers as the China cloud's Graph: no `/authentication/methods`.
fn china(tenant: Tenant) -> Scenario {
    Scenario::with_config(
        tenant,
        EmulatorConfig {
            cloud: Cloud::China,
            ..EmulatorConfig::default()
        },
    )
}

#[test]
fn in_the_china_cloud_a_preferred_method_change_is_planned_with_a_note_and_show_says_so() {
    let mut tenant = Tenant::generate(2, 12);
    // Nothing registered that makes `sms` usable: outside China the change is blocked.
    tenant.users[0].methods.clear();
    tenant.users[0]
        .sign_in_preferences
        .user_preferred_method_for_secondary_authentication = None;
    let upn = tenant.users[0].user_principal_name.clone();
    let scenario = china(tenant);
    let manifest = scenario.write(
        "china.yaml",
        &format!("version: 1\nusers:\n  - user: {upn}\n    preferredMethod: sms\n"),
    );
    let plan = |cloud: &str, path: &Path| {
        let out = scenario.run(&[
            "plan",
            path.to_str().unwrap(),
            "--cloud",
            cloud,
            "--format",
            "json",
        ]);
        let doc: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
        (out.status.code(), doc)
    };
    let (code, doc) = plan("china", &manifest);
    assert_eq!(code, Some(0), "{doc}");
    let user = &doc["users"][0];
    assert_eq!(user["status"], "change", "{user}");
    assert!(
        user["notes"].to_string().contains(
            "registration of sms could not be checked: /authentication/methods is not \
             available in the China cloud (operated by 21Vianet)"
        ),
        "{user}"
    );
    assert_eq!(
        scenario.stats().bad_requests,
        0,
        "no /methods read was sent"
    );

    let out = scenario.run(&["show", "--cloud", "china", &upn]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text.contains(
            "registered methods     not read: /authentication/methods is not available in the \
             China cloud (operated by 21Vianet)"
        ),
        "{text}"
    );
    assert!(
        text.contains("unknown: registration could not be checked"),
        "{text}"
    );

    let file = scenario.write("china-tenant.yaml", "");
    let out = scenario.run(&[
        "export",
        "--as",
        "tenant",
        "--cloud",
        "china",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the tenant file lists no registered methods"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        scenario.stats().bad_requests,
        0,
        "no /methods read was sent"
    );
}
