//! `mfactl show` (issue 8, point 4): one user at a glance, through the binary against the
//! emulator. The tenant below has fixed ids, so method ids, phone numbers and e-mail addresses
//! (which the emulator derives from the user's id) are the same on every run; only the
//! emulator's port and Graph's request-ids change, and are redacted.

use mfactl_emulator::Tenant;
use serde_json::{Value, json};

use crate::fault_proxy::{Action, FaultProxy, RequestHead};
use crate::support::{Scenario, stderr, stdout};

/// Five users, one per case issue 8 names, and a policy that turns system-preferred MFA on for
/// the pilot group (with a nested team in it) and excludes the break-glass group.
const TENANT: &str = r#"
tenantId: 9c0e5f1a-0000-4000-8000-000000000001
domain: contoso.onmicrosoft.com
users:
  - id: 00000000-0000-4000-8000-00000000000a
    userPrincipalName: nomethods@contoso.com
    displayName: No Methods
    perUserMfaState: disabled
  - id: 00000000-0000-4000-8000-00000000000b
    userPrincipalName: phone@contoso.com
    displayName: Phone Only
    methods: [mobilePhone]
    signInPreferences:
      userPreferredMethodForSecondaryAuthentication: sms
    perUserMfaState: enforced
  - id: 00000000-0000-4000-8000-00000000000c
    userPrincipalName: authenticator@contoso.com
    displayName: Authenticator User
    methods: [microsoftAuthenticator]
    signInPreferences:
      userPreferredMethodForSecondaryAuthentication: push
    perUserMfaState: enabled
  - id: 00000000-0000-4000-8000-00000000000d
    userPrincipalName: sysuser@contoso.com
    displayName: System Preferred By User
    methods: [fido2, mobilePhone, officePhone, email, windowsHelloForBusiness, softwareOath, temporaryAccessPass]
    signInPreferences:
      isSystemPreferredAuthenticationMethodEnabled: true
      userPreferredMethodForSecondaryAuthentication: voiceOffice
    perUserMfaState: enforced
  - id: 00000000-0000-4000-8000-00000000000e
    userPrincipalName: pilot@contoso.com
    displayName: Pilot User
    methods: [microsoftAuthenticator, mobilePhone, alternateMobilePhone]
    signInPreferences:
      isSystemPreferredAuthenticationMethodEnabled: false
      userPreferredMethodForSecondaryAuthentication: voiceAlternateMobile
    perUserMfaState: disabled
groups:
  - id: 5d1b6c1e-0000-4000-8000-000000000002
    displayName: MFA Pilot
    members: [00000000-0000-4000-8000-00000000000e, 5d1b6c1e-0000-4000-8000-000000000004]
  - id: 5d1b6c1e-0000-4000-8000-000000000004
    displayName: Nested Team
    members: [00000000-0000-4000-8000-00000000000c]
  - id: 5d1b6c1e-0000-4000-8000-000000000003
    displayName: Break Glass
    members: [00000000-0000-4000-8000-00000000000d]
authenticationMethodsPolicy:
  systemCredentialPreferences:
    state: enabled
    includeTargets:
      - {id: 5d1b6c1e-0000-4000-8000-000000000002, targetType: group}
    excludeTargets:
      - {id: 5d1b6c1e-0000-4000-8000-000000000003, targetType: group}
"#;

fn scenario() -> Scenario {
    Scenario::new(Tenant::from_yaml_str(TENANT).expect("the test tenant is valid"))
}

/// `show ARGS` against the scenario: (exit code, stdout, stderr).
fn show(scenario: &Scenario, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["show"];
    all.extend_from_slice(args);
    let out = scenario.run(&all);
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

/// The emulator's port and Graph's request-ids change every run.
fn redact(text: &str, url: &str) -> String {
    text.replace(url, "http://127.0.0.1:PORT")
        .lines()
        .map(|line| match line.find("(request-id ") {
            Some(at) => format!("{}(request-id [redacted])", &line[..at]),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The JSON document as printed (keys in the document's order), with the port and request-ids
/// redacted; checked to be JSON first.
fn redact_json(text: &str, url: &str) -> String {
    serde_json::from_str::<Value>(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    text.replace(url, "http://127.0.0.1:PORT")
        .lines()
        .map(|line| match line.find("\"request_id\": \"") {
            Some(at) => format!("{}\"request_id\": \"[redacted]\"", &line[..at]),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn show_matches_the_snapshots_for_each_kind_of_user_in_text_and_json() {
    let scenario = scenario();
    for (case, user) in [
        ("no_methods", "nomethods@contoso.com"),
        ("phone_only", "phone@contoso.com"),
        ("authenticator", "authenticator@contoso.com"),
        // Named by object id: the UPN comes from Graph.
        (
            "system_preferred_by_user",
            "00000000-0000-4000-8000-00000000000d",
        ),
        ("system_preferred_by_policy", "pilot@contoso.com"),
    ] {
        let (code, text, err) = show(&scenario, &[user]);
        assert_eq!(code, 0, "{case}: {err}");
        insta::assert_snapshot!(format!("show_{case}_text"), redact(&text, &scenario.url()));
        let (code, json, err) = show(&scenario, &[user, "--format", "json"]);
        assert_eq!(code, 0, "{case}: {err}");
        insta::assert_snapshot!(
            format!("show_{case}_json"),
            redact_json(&json, &scenario.url())
        );
    }
    assert_eq!(scenario.stats().writes, 0, "show only reads");
}

#[test]
fn the_cases_say_what_issue_8_asks_for() {
    let scenario = scenario();
    let (code, json, err) = show(
        &scenario,
        &[
            "nomethods@contoso.com",
            "phone@contoso.com",
            "authenticator@contoso.com",
            "sysuser@contoso.com",
            "pilot@contoso.com",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["format_version"], 1);
    let users = doc["users"].as_array().unwrap();
    let choice = |user: &Value, method: &str| -> Value {
        user["preferred_method_choices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["method"] == method)
            .cloned()
            .unwrap()
    };
    // No methods: nothing usable, nothing listed.
    assert_eq!(users[0]["methods"], json!([]));
    assert!(
        users[0]["preferred_method_choices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["usable"] == false)
    );
    // Phone only: masked number, sms and voiceMobile usable, sms current.
    let phone = &users[1]["methods"][0];
    assert_eq!(phone["kind"], "mobilePhone");
    let label = phone["label"].as_str().unwrap();
    assert!(label.starts_with("+1 ••••••••"), "{label}");
    assert!(!label.contains("425555"), "the number is masked: {label}");
    assert_eq!(choice(&users[1], "sms")["current"], true);
    assert_eq!(choice(&users[1], "voiceMobile")["usable"], true);
    assert_eq!(
        choice(&users[1], "push")["reason"],
        "Microsoft Authenticator is not registered"
    );
    // Authenticator: device name; push and oath usable; covered through a nested group.
    assert_eq!(users[2]["methods"][0]["label"], "iPhone");
    assert_eq!(choice(&users[2], "oath")["usable"], true);
    assert_eq!(users[2]["policy_coverage"]["covered"], true);
    // System-preferred on by the user; Graph's spelling kept (a temporary access pass comes first
    // in Microsoft's order); the policy excludes them.
    assert_eq!(users[3]["system_preferred"], true);
    assert_eq!(users[3]["system_preferred_method"], "TemporaryAccessPass");
    assert_eq!(users[3]["policy_coverage"]["covered"], false);
    let labels: Vec<&str> = users[3]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["label"].as_str())
        .collect();
    assert!(labels.contains(&"YubiKey 5 NFC"), "{labels:?}");
    assert!(
        labels.iter().any(|l| l.contains("•••@example.com")),
        "{labels:?}"
    );
    // On by the policy, off for the user.
    assert_eq!(users[4]["system_preferred"], false);
    assert_eq!(users[4]["policy_coverage"]["covered"], true);
    // The emulator's softwareOath carries a `secretKey` property: never read, never shown.
    assert!(!json.contains("secretKey"), "{json}");
}

#[test]
fn several_users_in_one_call_keep_their_order_by_upn_and_by_id() {
    let scenario = scenario();
    let users = [
        "pilot@contoso.com",
        "00000000-0000-4000-8000-00000000000a",
        "PHONE@contoso.com",
    ];
    let mut args = users.to_vec();
    args.extend(["--format", "json"]);
    let (code, json, err) = show(&scenario, &args);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&json).unwrap();
    let shown: Vec<&str> = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    assert_eq!(shown, users);
    assert_eq!(
        doc["users"][1]["user_principal_name"],
        "nomethods@contoso.com"
    );
    assert_eq!(
        doc["users"][2]["id"],
        "00000000-0000-4000-8000-00000000000b"
    );
    assert_eq!(
        doc["summary"],
        json!({"users": 3, "found": 3, "not_found": 0, "failed": 0})
    );
    // Read like any read: concurrently, in $batch round trips, never a write.
    let stats = scenario.stats();
    assert!(
        stats.batches > 0 && stats.requests < stats.reads,
        "{stats:?}"
    );
    assert_eq!(stats.writes, 0);

    let (code, text, _) = show(&scenario, &users);
    assert_eq!(code, 0);
    let headers: Vec<&str> = text.lines().filter(|l| users.contains(l)).collect();
    assert_eq!(headers, users, "one block per user, in order:\n{text}");
    assert!(
        text.ends_with("Show: 3 users, 3 shown, 0 not found, 0 failed.\n"),
        "{text}"
    );
}

#[test]
fn an_unknown_user_is_not_found_after_the_others_are_shown_and_exits_1() {
    let scenario = scenario();
    let (code, text, err) = show(&scenario, &["ghost@contoso.com", "phone@contoso.com"]);
    assert_eq!(code, 1, "{text}\n{err}");
    insta::assert_snapshot!("show_not_found_text", redact(&text, &scenario.url()));
    assert!(
        err.contains("error: 1 of 2 users not shown: ghost@contoso.com (not found)"),
        "{err}"
    );
    let (code, json, _) = show(
        &scenario,
        &["ghost@contoso.com", "phone@contoso.com", "--format", "json"],
    );
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["users"][0]["status"], "not_found");
    assert_eq!(doc["users"][0]["error"]["code"], "Request_ResourceNotFound");
    assert_eq!(doc["users"][1]["status"], "found");
    assert_eq!(doc["summary"]["not_found"], 1);
}

#[test]
fn invalid_user_names_are_a_usage_error_before_any_request() {
    let scenario = scenario();
    let (code, out, err) = show(
        &scenario,
        &[
            "phone@contoso.com",
            "..",
            "megan@contoso",
            "{00000000-0000-4000-8000-00000000000a}",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("3 user names are not valid"), "{err}");
    assert!(err.contains("user \"..\" is not valid"), "{err}");
    assert!(err.contains("user \"megan@contoso\" is not valid"), "{err}");
    assert!(
        err.contains("write the object id as Graph does, 00000000-0000-4000-8000-00000000000a"),
        "{err}"
    );
    assert!(err.contains("nothing was sent"), "{err}");
    assert!(
        !err.contains("Signed in"),
        "it stopped before signing in: {err}"
    );
    assert_eq!(scenario.stats().requests, 0);

    let (code, _, err) = show(&scenario, &["megan\u{202e}@contoso.com"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("\\u{202e}") && !err.contains('\u{202e}'),
        "{err}"
    );
    assert_eq!(scenario.stats().requests, 0);
}

#[test]
fn show_runs_against_the_in_process_emulator_too() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = dir.path().join("tenant.yaml");
    std::fs::write(&tenant, TENANT).unwrap();
    let out = crate::support::mfactl()
        .args([
            "show",
            "pilot@contoso.com",
            "--emulate",
            tenant.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("tenant policy          covers the user"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_microsoft_managed_policy_counts_as_enabled_as_entra_documents() {
    let tenant = TENANT.replace("    state: enabled", "    state: default");
    let scenario = Scenario::new(Tenant::from_yaml_str(&tenant).unwrap());
    let (code, text, err) = show(&scenario, &["pilot@contoso.com"]);
    assert_eq!(code, 0, "{err}");
    let managed = "Microsoft managed (state default, which Entra documents as enabled)";
    assert!(
        text.contains(&format!("System-preferred MFA (tenant policy): {managed}")),
        "{text}"
    );
    // Covered as `enabled` would be: pilot is in the included group, not the excluded one.
    assert!(
        text.contains(&format!(
            "tenant policy          covers the user: {managed} for group"
        )),
        "{text}"
    );
}

/// A Graph error envelope, as the proxy answers it by itself.
fn graph_error(status: u16, code: &str) -> Action {
    Action::Respond {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: json!({"error": {"code": code, "message": "Insufficient privileges to complete the operation."}})
            .to_string()
            .into_bytes(),
    }
}

#[test]
fn a_403_on_the_policy_says_it_cannot_be_read_and_shows_the_user() {
    let scenario = scenario();
    let proxy = FaultProxy::in_front_of(&scenario.url());
    proxy.set_rule(|head: &RequestHead, _| {
        if head.path.contains("authenticationMethodsPolicy") {
            graph_error(403, "Authorization_RequestDenied")
        } else {
            Action::Forward
        }
    });
    let out = proxy
        .mfactl(&["show", "--no-batch", "phone@contoso.com"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains(
            "System-preferred MFA (tenant policy): cannot read the tenant policy (policy: HTTP 403 \
             Authorization_RequestDenied"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "undecided: cannot read the tenant policy (HTTP 403 Authorization_RequestDenied; the \
             token lacks Policy.Read.AuthenticationMethod)"
        ),
        "{text}"
    );
    assert!(text.contains("+1 ••••••••"), "the user is shown: {text}");
}

#[test]
fn unreadable_groups_leave_the_policy_verdict_depending_on_the_group() {
    let scenario = scenario();
    let proxy = FaultProxy::in_front_of(&scenario.url());
    proxy.set_rule(|head: &RequestHead, _| {
        if head.path.contains("/transitiveMemberOf") {
            graph_error(403, "Authorization_RequestDenied")
        } else {
            Action::Forward
        }
    });
    let out = proxy
        .mfactl(&[
            "show",
            "--no-batch",
            "pilot@contoso.com",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let verdict = &doc["users"][0]["policy_coverage"];
    assert_eq!(verdict["covered"], Value::Null);
    assert_eq!(
        verdict["reason"],
        "enabled; depends on membership of group 5d1b6c1e-0000-4000-8000-000000000002 (cannot \
         read the user's groups (HTTP 403 Authorization_RequestDenied; the token lacks \
         GroupMember.Read.All)), and on membership of group 5d1b6c1e-0000-4000-8000-000000000003 \
         (cannot read the user's groups (HTTP 403 Authorization_RequestDenied; the token lacks \
         GroupMember.Read.All)) (excluded)"
    );
}

#[test]
fn what_graph_says_about_methods_is_escaped_and_masked() {
    let scenario = scenario();
    let proxy = FaultProxy::in_front_of(&scenario.url());
    proxy.set_rule(|head: &RequestHead, _| {
        if head.path.ends_with("/authentication/methods") {
            let body = json!({"value": [
                {"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
                 "id": "a", "displayName": "evil\u{1b}[2J\nPlan: 0 users\u{202e}"},
                {"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "b",
                 "phoneNumber": "+1 4255550199", "phoneType": "mobile"},
                {"@odata.type": "#microsoft.graph.emailAuthenticationMethod", "id": "c",
                 "emailAddress": "megan@contoso.com"},
                {"@odata.type": "#microsoft.graph.softwareOathAuthenticationMethod", "id": "d",
                 "secretKey": "JBSWY3DPEHPK3PXP"},
                {"@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
                 "id": "e", "temporaryAccessPass": "tap-secret-123", "isUsable": true},
                {"@odata.type": "#microsoft.graph.qrCodePinAuthenticationMethod", "id": "f"}
            ]});
            Action::Respond {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: body.to_string().into_bytes(),
            }
        } else {
            Action::Forward
        }
    });
    for format in ["text", "json"] {
        let out = proxy
            .mfactl(&[
                "show",
                "--no-batch",
                "phone@contoso.com",
                "--format",
                format,
            ])
            .output()
            .unwrap();
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
        for secret in ["JBSWY3DPEHPK3PXP", "tap-secret-123", "4255550199", "megan@"] {
            assert!(!text.contains(secret), "{secret} shown: {text}");
        }
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("Plan: ")),
            "a forged line: {text}"
        );
        assert!(text.contains("+1 ••••••••99"), "{text}");
        assert!(text.contains("m•••@contoso.com"), "{text}");
        assert!(text.contains("qrCodePinAuthenticationMethod"), "{text}");
        if format == "text" {
            assert!(
                text.contains("evil\\u{1b}[2J\\nPlan: 0 users\\u{202e}"),
                "{text}"
            );
        }
    }
}
