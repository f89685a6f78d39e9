//! The emulator over a real socket, checked with the same HTTP client mfactl uses.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use super::*;

const MEGAN: &str = "071cc716-8147-4397-a5ba-b2105951cc0b";
const GUEST_UPN: &str = "adele_fabrikam.com#EXT#@contoso.onmicrosoft.com";
const DOLLAR_UPN: &str = "$o'brien@contoso.com";

const TENANT: &str = r#"
tenantId: 9c0e5f1a-0000-4000-8000-000000000001
domain: contoso.onmicrosoft.com
users:
  - id: 071cc716-8147-4397-a5ba-b2105951cc0b
    userPrincipalName: megan@contoso.com
    displayName: Megan Bowen
    methods: [microsoftAuthenticator, mobilePhone]
    signInPreferences:
      isSystemPreferredAuthenticationMethodEnabled: false
      userPreferredMethodForSecondaryAuthentication: sms
    perUserMfaState: disabled
  - id: 5f7e4c1a-1111-4000-8000-000000000002
    userPrincipalName: "adele_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    userType: guest
    methods: [mobilePhone]
    perUserMfaState: enforced
  - id: 5f7e4c1a-2222-4000-8000-000000000003
    userPrincipalName: "$o'brien@contoso.com"
    methods: []
    perUserMfaState: disabled
"#;

fn tenant() -> Tenant {
    Tenant::from_yaml_str(TENANT).expect("test tenant is valid")
}

async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start(tenant(), config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator starts")
}

fn client() -> Client {
    Client::new()
}

/// The percent-encoded path segment for a UPN, as the client sends it.
fn encode(upn: &str) -> String {
    upn.replace('#', "%23")
}

fn auth_url(emulator: &Emulator, user_segment: &str, endpoint: &str) -> String {
    format!(
        "{}/beta/users/{user_segment}/authentication/{endpoint}",
        emulator.url()
    )
}

async fn get(client: &Client, url: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = client.get(url).bearer_auth("token").send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn patch(
    client: &Client,
    url: &str,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = client
        .patch(url)
        .bearer_auth("token")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn sign_in_preferences_round_trip_by_id_and_upn() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client();
    let by_id = auth_url(&emulator, MEGAN, "signInPreferences");
    let (status, headers, body) = get(&client, &by_id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"isSystemPreferredAuthenticationMethodEnabled": false,
               "userPreferredMethodForSecondaryAuthentication": "sms",
               "systemPreferredAuthenticationMethod": null})
    );
    assert!(headers.contains_key("request-id"));
    assert_eq!(headers["x-ms-resource-unit"], "1");

    let (status, _, _) = patch(
        &client,
        &by_id,
        json!({"userPreferredMethodForSecondaryAuthentication": "push",
               "isSystemPreferredAuthenticationMethodEnabled": true}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Read back through the UPN, in another case.
    let by_upn = auth_url(&emulator, "Megan@Contoso.com", "signInPreferences");
    let (_, _, body) = get(&client, &by_upn).await;
    assert_eq!(
        body["userPreferredMethodForSecondaryAuthentication"],
        "push"
    );
    assert_eq!(
        body["systemPreferredAuthenticationMethod"],
        "PhoneAppNotification"
    );
    let user = &emulator.tenant().users[0];
    assert_eq!(
        user.sign_in_preferences
            .user_preferred_method_for_secondary_authentication,
        Some(mfactl_core::model::PreferredMethod::Push)
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn guest_and_dollar_upns_are_addressable() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client();
    let guest = auth_url(&emulator, &encode(GUEST_UPN), "requirements");
    let (status, _, body) = get(&client, &guest).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"perUserMfaState": "enforced"}));
    let (status, _, _) = patch(&client, &guest, json!({"perUserMfaState": "disabled"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        emulator.tenant().users[1].per_user_mfa_state,
        mfactl_core::model::PerUserMfaState::Disabled
    );

    let key_form = format!(
        "{}/beta/users('{}')/authentication/methods",
        emulator.url(),
        DOLLAR_UPN.replace('\'', "''")
    );
    let (status, _, body) = get(&client, &key_form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["value"][0]["@odata.type"],
        "#microsoft.graph.passwordAuthenticationMethod"
    );
    let plain = auth_url(&emulator, DOLLAR_UPN, "methods");
    assert_eq!(get(&client, &plain).await.0, StatusCode::BAD_REQUEST);
    emulator.shutdown().await;
}

#[tokio::test]
async fn methods_list_password_first_with_stable_ids() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client();
    let url = auth_url(&emulator, MEGAN, "methods");
    let (_, _, first) = get(&client, &url).await;
    let (_, _, second) = get(&client, &url).await;
    assert_eq!(first, second);
    let kinds: Vec<_> = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            mfactl_core::model::MethodKind::from_odata(
                m["@odata.type"].as_str().unwrap(),
                m["phoneType"].as_str(),
            )
            .unwrap()
        })
        .collect();
    use mfactl_core::model::MethodKind as M;
    assert_eq!(
        kinds,
        [M::Password, M::MicrosoftAuthenticator, M::MobilePhone]
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn unknown_user_gets_graphs_404_envelope() {
    let emulator = start(EmulatorConfig::default()).await;
    let response = client()
        .get(auth_url(
            &emulator,
            "ghost@contoso.com",
            "signInPreferences",
        ))
        .bearer_auth("token")
        .header("client-request-id", "11111111-2222-3333-4444-555555555555")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()["client-request-id"],
        "11111111-2222-3333-4444-555555555555"
    );
    let request_id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: mfactl_core::wire::ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error.code, "Request_ResourceNotFound");
    assert!(body.error.message.contains("'ghost@contoso.com'"));
    let inner = body.error.inner_error.unwrap();
    assert_eq!(inner.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(
        inner.client_request_id.as_deref(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert!(inner.date.is_some());

    let (status, _, body) = get(&client(), &format!("{}/beta/fax", emulator.url())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "BadRequest");
    assert_eq!(
        body["error"]["message"],
        "Resource not found for the segment 'fax'."
    );
    let stats = emulator.stats();
    assert_eq!((stats.not_found, stats.bad_requests), (1, 1));
    emulator.shutdown().await;
}

#[tokio::test]
async fn bad_values_are_refused_without_changing_state() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client();
    let prefs = auth_url(&emulator, MEGAN, "signInPreferences");
    for body in [
        json!({"userPreferredMethodForSecondaryAuthentication": "fax"}),
        json!({"userPreferredMethodForSecondaryAuthentication": "oath", "color": "blue"}),
        json!({"isSystemPreferredAuthenticationMethodEnabled": "yes"}),
        // Megan has Authenticator and a mobile phone, but no office phone.
        json!({"userPreferredMethodForSecondaryAuthentication": "voiceOffice"}),
    ] {
        let (status, _, error) = patch(&client, &prefs, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error["error"]["code"], "badRequest");
    }
    let (_, _, error) = patch(
        &client,
        &prefs,
        json!({"userPreferredMethodForSecondaryAuthentication": "voiceOffice"}),
    )
    .await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("voiceOffice")
    );

    let requirements = auth_url(&emulator, MEGAN, "requirements");
    let (status, _, _) = patch(&client, &requirements, json!({"perUserMfaState": "on"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(emulator.tenant(), tenant());
    assert_eq!(emulator.stats().bad_requests, 6);
    emulator.shutdown().await;
}

#[tokio::test]
async fn enabled_becomes_enforced_only_with_a_registered_method() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client();
    let megan = auth_url(&emulator, MEGAN, "requirements");
    assert_eq!(
        patch(&client, &megan, json!({"perUserMfaState": "enabled"}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(get(&client, &megan).await.2["perUserMfaState"], "enforced");

    // The `$` user has no MFA method: enabled stays enabled.
    let dollar = format!(
        "{}/beta/users('{}')/authentication/requirements",
        emulator.url(),
        DOLLAR_UPN.replace('\'', "''")
    );
    patch(&client, &dollar, json!({"perUserMfaState": "enabled"})).await;
    assert_eq!(get(&client, &dollar).await.2["perUserMfaState"], "enabled");
    emulator.shutdown().await;
}

#[tokio::test]
async fn requests_without_a_bearer_token_are_unauthorized() {
    let emulator = start(EmulatorConfig::default()).await;
    let url = auth_url(&emulator, MEGAN, "signInPreferences");
    let response = client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    let response = client()
        .get(&url)
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(emulator.stats().unauthorized, 2);
    emulator.shutdown().await;
}

#[tokio::test]
async fn spent_buckets_answer_429_with_graphs_headers_and_change_nothing() {
    let emulator = start(EmulatorConfig {
        ru_per_10s: Some(1000),
        writes_per_150s: 2,
        ..EmulatorConfig::default()
    })
    .await;
    let client = client();
    let requirements = auth_url(&emulator, MEGAN, "requirements");
    for state in ["enforced", "disabled"] {
        let (status, _, _) = patch(&client, &requirements, json!({"perUserMfaState": state})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (status, headers, body) = patch(
        &client,
        &requirements,
        json!({"perUserMfaState": "enforced"}),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "TooManyRequests");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=150).contains(&retry_after), "{retry_after}");
    assert_eq!(headers["x-ms-throttle-information"], "WriteLimitExceeded");
    assert_eq!(
        headers["x-ms-throttle-scope"],
        format!(
            "Tenant_Application/Write/{}/9c0e5f1a-0000-4000-8000-000000000001",
            call::EMULATOR_APP_ID
        )
    );
    assert_eq!(
        get(&client, &requirements).await.2["perUserMfaState"],
        "disabled"
    );

    let stats = emulator.stats();
    assert_eq!(
        (stats.throttled, stats.throttled_writes, stats.writes),
        (1, 1, 2)
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_ru_bucket_throttles_reads_and_warns_above_80_percent() {
    let emulator = start(EmulatorConfig {
        ru_per_10s: Some(10),
        ..EmulatorConfig::default()
    })
    .await;
    let client = client();
    let url = auth_url(&emulator, MEGAN, "signInPreferences");
    // The bucket holds 10 RU and refills 1 RU/s: the 11th request is throttled unless time
    // passed, so go on until the first 429 (a slow machine only makes more requests pass).
    let mut warned = false;
    let mut passed = 0;
    let (status, headers) = loop {
        let (status, headers, _) = get(&client, &url).await;
        if status != StatusCode::OK || passed >= 200 {
            break (status, headers);
        }
        passed += 1;
        warned |= headers.contains_key("x-ms-throttle-limit-percentage");
    };
    assert!(passed >= 10, "the bucket holds 10 RU: {passed} passed");
    assert!(warned, "no early warning before the limit");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        headers["x-ms-throttle-information"],
        "ResourceUnitLimitExceeded"
    );
    assert!(
        headers["x-ms-throttle-scope"]
            .to_str()
            .unwrap()
            .starts_with("Tenant_Application/ReadWrite/")
    );
    let percentage: f64 = headers["x-ms-throttle-limit-percentage"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.8..=1.8).contains(&percentage));
    emulator.shutdown().await;
}

#[tokio::test]
async fn no_throttle_means_no_limit() {
    let emulator = start(EmulatorConfig {
        throttle: false,
        ru_per_10s: Some(1),
        writes_per_150s: 1,
        ..EmulatorConfig::default()
    })
    .await;
    let client = client();
    let url = auth_url(&emulator, MEGAN, "requirements");
    for _ in 0..5 {
        let (status, headers, _) =
            patch(&client, &url, json!({"perUserMfaState": "disabled"})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(!headers.contains_key("x-ms-resource-unit"));
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn fail_rate_one_fails_everything_and_changes_nothing() {
    let emulator = start(EmulatorConfig {
        fail_rate: 1.0,
        ..EmulatorConfig::default()
    })
    .await;
    let client = client();
    let url = auth_url(&emulator, MEGAN, "requirements");
    for _ in 0..3 {
        let (status, _, body) = patch(&client, &url, json!({"perUserMfaState": "enforced"})).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "serviceUnavailable");
        assert_eq!(get(&client, &url).await.0, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(emulator.tenant(), tenant());
    let stats = emulator.stats();
    assert_eq!(
        (stats.requests, stats.injected_failures, stats.writes),
        (6, 6, 0)
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn latency_delays_answers_within_bounds() {
    let emulator = start(EmulatorConfig {
        latency: Some((Duration::from_millis(30), Duration::from_millis(40))),
        ..EmulatorConfig::default()
    })
    .await;
    let client = client();
    let url = auth_url(&emulator, MEGAN, "requirements");
    get(&client, &url).await; // connect first
    let started = std::time::Instant::now();
    get(&client, &url).await;
    let elapsed = started.elapsed();
    // A lower bound only: an upper bound would be a timing assertion on a shared machine.
    assert!(elapsed >= Duration::from_millis(30), "{elapsed:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn serves_http2_with_prior_knowledge() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = Client::builder().http2_prior_knowledge().build().unwrap();
    let response = client
        .get(auth_url(&emulator, MEGAN, "requirements"))
        .bearer_auth("token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    emulator.shutdown().await;
}

#[tokio::test]
async fn stats_and_tenant_are_served_for_tests() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client();
    get(&client, &auth_url(&emulator, MEGAN, "requirements")).await;
    patch(
        &client,
        &auth_url(&emulator, MEGAN, "requirements"),
        json!({"perUserMfaState": "enforced"}),
    )
    .await;
    let stats: Stats = client
        .get(format!("{}/_emulator/stats", emulator.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats, emulator.stats());
    assert_eq!((stats.requests, stats.reads, stats.writes), (2, 1, 1));
    let served: Tenant = client
        .get(format!("{}/_emulator/tenant", emulator.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, emulator.tenant());
    assert_eq!(
        served.users[0].per_user_mfa_state,
        mfactl_core::model::PerUserMfaState::Enforced
    );
    emulator.shutdown().await;
}

#[test]
fn generate_is_deterministic_and_round_trips_through_yaml() {
    let tenant = Tenant::generate(300, 7);
    assert_eq!(tenant, Tenant::generate(300, 7));
    assert_ne!(tenant.tenant_id, Tenant::generate(300, 8).tenant_id);
    let yaml = tenant.to_yaml();
    let (back, notes) = Tenant::from_yaml_str_with_notes(&yaml).expect("generated YAML loads");
    assert_eq!(back, tenant);
    assert!(notes.is_empty(), "{notes:?}");

    let dir = std::env::temp_dir().join(format!("mfactl-emulator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tenant.yaml");
    std::fs::write(&path, &yaml).unwrap();
    assert_eq!(Tenant::load(&path).unwrap(), tenant);
    std::fs::remove_dir_all(&dir).unwrap();

    let guests = tenant
        .users
        .iter()
        .filter(|u| u.user_type == UserType::Guest)
        .count();
    let without_mfa = tenant.users.iter().filter(|u| !u.has_mfa_method()).count();
    assert!((3..=40).contains(&guests), "{guests} guests");
    assert!(
        (10..=60).contains(&without_mfa),
        "{without_mfa} without MFA"
    );
    for user in &tenant.users {
        if let Some(method) = user
            .sign_in_preferences
            .user_preferred_method_for_secondary_authentication
        {
            assert!(
                user.methods.iter().any(|m| method.is_enabled_by(*m)),
                "{user:?}"
            );
        }
        if user.per_user_mfa_state == mfactl_core::model::PerUserMfaState::Enabled {
            assert!(!user.has_mfa_method(), "{user:?}");
        }
    }
}

#[test]
fn tenant_errors_name_the_line_user_and_field() {
    let bad = TENANT
        .replace("perUserMfaState: enforced", "perUserMfaState: sometimes")
        .replace("methods: []", "methods: [carrierPigeon]")
        .replace(
            "userPrincipalName: \"$o'brien@contoso.com\"",
            "userPrincipalName: MEGAN@contoso.com",
        );
    let err = Tenant::from_yaml_str(&bad).unwrap_err();
    let TenantError::Invalid { problems, .. } = &err else {
        panic!("{err}");
    };
    let codes: Vec<_> = problems.iter().map(|p| (p.code, p.field)).collect();
    assert!(
        codes.contains(&("invalid-value", "perUserMfaState")),
        "{err}"
    );
    assert!(codes.contains(&("invalid-value", "methods")), "{err}");
    assert!(
        codes.contains(&("duplicate-upn", "userPrincipalName")),
        "{err}"
    );
    let state = problems
        .iter()
        .find(|p| p.field == "perUserMfaState")
        .unwrap();
    assert_eq!(state.line, 17);
    assert_eq!(state.subject.as_deref(), Some(GUEST_UPN));
    assert!(err.to_string().contains("sometimes"), "{err}");

    let err = Tenant::from_yaml_str("tenantId: [\nusers: 3").unwrap_err();
    assert!(
        matches!(err, TenantError::Syntax { line: 1.., .. }),
        "{err}"
    );
    let err = Tenant::from_yaml_str(
        "tenantId: 9c0e5f1a-0000-4000-8000-000000000001\ndomain: x\nusrs: []\n",
    )
    .unwrap_err();
    assert!(matches!(err, TenantError::Syntax { line: 3, .. }), "{err}");
}

#[test]
fn an_unregistered_preferred_method_loads_with_a_note() {
    let text = TENANT.replace(
        "userPreferredMethodForSecondaryAuthentication: sms",
        "userPreferredMethodForSecondaryAuthentication: voiceOffice",
    );
    let (_, notes) = Tenant::from_yaml_str_with_notes(&text).unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].code, "unregistered-preferred-method");
    assert_eq!(notes[0].line, 11);
}

#[tokio::test]
async fn batch_items_are_metered_and_answered_one_by_one() {
    let emulator = start(EmulatorConfig {
        writes_per_150s: 1,
        ..EmulatorConfig::default()
    })
    .await;
    let requests = json!({"requests": [
        {"id": "1", "method": "PATCH", "url": format!("/users/{MEGAN}/authentication/requirements"),
         "headers": {"Content-Type": "application/json"}, "body": {"perUserMfaState": "enforced"}},
        {"id": "2", "method": "PATCH", "url": format!("/users/{MEGAN}/authentication/signInPreferences"),
         "headers": {"Content-Type": "application/json"},
         "body": {"userPreferredMethodForSecondaryAuthentication": "oath"}},
        {"id": "3", "method": "GET", "url": "/users/ghost@contoso.com/authentication/requirements"},
        {"id": "4", "method": "GET", "url": format!("/users/{MEGAN}/authentication/requirements")},
    ]});
    let response = client()
        .post(format!("{}/beta/$batch", emulator.url()))
        .bearer_auth("token")
        .json(&requests)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let responses = body["responses"].as_array().unwrap();
    let status = |id: &str| {
        responses.iter().find(|r| r["id"] == id).unwrap()["status"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        (status("1"), status("2"), status("3"), status("4")),
        (204, 429, 404, 200)
    );
    let throttled = responses.iter().find(|r| r["id"] == "2").unwrap();
    assert_eq!(
        throttled["headers"]["x-ms-throttle-information"],
        "WriteLimitExceeded"
    );
    assert!(throttled["headers"]["retry-after"].is_string());
    let read = responses.iter().find(|r| r["id"] == "4").unwrap();
    assert_eq!(read["body"]["perUserMfaState"], "enforced");
    let stats = emulator.stats();
    assert_eq!(
        (
            stats.requests,
            stats.reads,
            stats.writes,
            stats.throttled,
            stats.not_found
        ),
        (1, 1, 1, 1, 1)
    );
    emulator.shutdown().await;
}

/// Posts a `$batch` of `requests` and returns the envelope's status and body.
async fn post_batch(emulator: &Emulator, requests: Value) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{}/beta/$batch", emulator.url()))
        .bearer_auth("token")
        .json(&json!({ "requests": requests }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The response to batch item `id`.
fn item<'a>(batch: &'a Value, id: &str) -> &'a Value {
    batch["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no response for item {id}: {batch}"))
}

fn batch_get(id: &str, endpoint: &str) -> Value {
    json!({"id": id, "method": "GET", "url": format!("/users/{MEGAN}/authentication/{endpoint}")})
}

fn batch_patch(id: &str, endpoint: &str, body: Value) -> Value {
    json!({"id": id, "method": "PATCH", "url": format!("/users/{MEGAN}/authentication/{endpoint}"),
           "headers": {"Content-Type": "application/json"}, "body": body})
}

#[tokio::test]
async fn batch_items_fail_one_by_one_and_the_envelope_only_at_batch_fail_rate() {
    let emulator = start(EmulatorConfig {
        fail_rate: 1.0,
        ..EmulatorConfig::default()
    })
    .await;
    let (status, body) = post_batch(
        &emulator,
        json!([batch_get("1", "requirements"), batch_get("2", "methods")]),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "fail_rate does not fail the envelope"
    );
    for id in ["1", "2"] {
        let answer = item(&body, id);
        assert_eq!(answer["status"], 503, "{answer}");
        assert_eq!(answer["headers"]["retry-after"], "1");
        assert_eq!(answer["body"]["error"]["code"], "serviceUnavailable");
        assert!(answer["body"]["error"]["innerError"]["request-id"].is_string());
    }
    let stats = emulator.stats();
    assert_eq!(
        (
            stats.requests,
            stats.batches,
            stats.batch_items,
            stats.injected_failures,
            stats.reads
        ),
        (1, 1, 2, 2, 0)
    );
    emulator.shutdown().await;

    let emulator = start(EmulatorConfig {
        batch_fail_rate: 1.0,
        ..EmulatorConfig::default()
    })
    .await;
    let (status, body) = post_batch(&emulator, json!([batch_get("1", "requirements")])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "serviceUnavailable");
    let (status, _, _) = get(&client(), &auth_url(&emulator, MEGAN, "requirements")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "batch_fail_rate spares calls sent alone"
    );
    let stats = emulator.stats();
    assert_eq!(
        (
            stats.batches,
            stats.batch_items,
            stats.injected_failures,
            stats.reads
        ),
        (0, 0, 1, 1)
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn write_fail_rate_fails_batched_patches_only_and_changes_nothing() {
    let emulator = start(EmulatorConfig {
        write_fail_rate: 1.0,
        ..EmulatorConfig::default()
    })
    .await;
    let (status, body) = post_batch(
        &emulator,
        json!([
            batch_patch("w", "requirements", json!({"perUserMfaState": "enforced"})),
            batch_get("r", "requirements"),
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(item(&body, "w")["status"], 503);
    assert_eq!(item(&body, "r")["status"], 200);
    assert_eq!(item(&body, "r")["body"]["perUserMfaState"], "disabled");
    assert_eq!(emulator.tenant(), tenant());
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_methods_limit_refuses_methods_reads_only_alone_and_batched() {
    let emulator = start(EmulatorConfig {
        methods_per_10s: Some(2),
        ..EmulatorConfig::default()
    })
    .await;
    // Items of one batch run back to back, so no refill comes between them.
    let (_, body) = post_batch(
        &emulator,
        json!([
            batch_get("m1", "methods"),
            batch_get("m2", "methods"),
            batch_get("m3", "methods"),
            batch_get("s", "signInPreferences"),
            batch_get("q", "requirements"),
        ]),
    )
    .await;
    let statuses: Vec<_> = ["m1", "m2", "m3", "s", "q"]
        .iter()
        .map(|id| item(&body, id)["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 429, 200, 200]);
    let refused = &item(&body, "m3")["headers"];
    assert_eq!(refused["x-ms-throttle-information"], "ReportsLimitExceeded");
    assert_eq!(
        refused["x-ms-throttle-scope"],
        format!(
            "Tenant_Application/Reports/{}/9c0e5f1a-0000-4000-8000-000000000001",
            call::EMULATOR_APP_ID
        )
    );
    // 2 per 10 s, balance -1 after the charged refusal: 2 requests' worth at 0.2/s.
    let retry_after: u64 = refused["retry-after"].as_str().unwrap().parse().unwrap();
    assert!((9..=10).contains(&retry_after), "{retry_after}");
    assert_eq!(refused["x-ms-resource-unit"], "1");

    // Alone, the same: refused within the 10 s, while the other reads go on.
    let client = client();
    let (status, headers, body) = get(&client, &auth_url(&emulator, MEGAN, "methods")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(headers["x-ms-throttle-information"], "ReportsLimitExceeded");
    let (status, _, _) = get(&client, &auth_url(&emulator, MEGAN, "signInPreferences")).await;
    assert_eq!(status, StatusCode::OK);
    let stats = emulator.stats();
    assert_eq!(
        (
            stats.throttled,
            stats.throttled_methods,
            stats.throttled_writes,
            stats.reads
        ),
        (2, 2, 0, 5)
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_write_bucket_names_itself_and_leaves_the_percentage_to_the_ru_bucket() {
    let emulator = start(EmulatorConfig {
        ru_per_10s: Some(1000),
        writes_per_150s: 1,
        ..EmulatorConfig::default()
    })
    .await;
    let (_, body) = post_batch(
        &emulator,
        json!([
            batch_patch("1", "requirements", json!({"perUserMfaState": "enforced"})),
            batch_patch("2", "requirements", json!({"perUserMfaState": "disabled"})),
        ]),
    )
    .await;
    assert_eq!(item(&body, "1")["status"], 204);
    let refused = item(&body, "2");
    assert_eq!(refused["status"], 429);
    assert_eq!(refused["body"]["error"]["code"], "TooManyRequests");
    let headers = refused["headers"].as_object().unwrap();
    assert_eq!(headers["x-ms-throttle-information"], "WriteLimitExceeded");
    assert!(
        headers["x-ms-throttle-scope"]
            .as_str()
            .unwrap()
            .starts_with("Tenant_Application/Write/"),
        "{refused}"
    );
    // The write bucket is spent but the RU bucket is at 0.2 %: no early warning.
    assert!(
        !headers.contains_key("x-ms-throttle-limit-percentage"),
        "{refused}"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn low_priority_is_counted_per_request_and_per_item_and_not_inherited() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client();
    let url = auth_url(&emulator, MEGAN, "requirements");
    for priority in [Some("Low"), Some("low"), Some("High"), None] {
        let mut request = client.get(&url).bearer_auth("token");
        if let Some(priority) = priority {
            request = request.header("x-ms-throttle-priority", priority);
        }
        assert_eq!(request.send().await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(emulator.stats().low_priority, 2);

    let mut low = batch_get("low", "requirements");
    low["headers"] = json!({"X-MS-Throttle-Priority": "Low"});
    let response = client
        .post(format!("{}/beta/$batch", emulator.url()))
        .bearer_auth("token")
        .header("x-ms-throttle-priority", "Low")
        .json(&json!({"requests": [low, batch_get("plain", "requirements")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The envelope and the one item that says so; "plain" does not inherit the envelope's.
    assert_eq!(emulator.stats().low_priority, 4);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_refused_batch_runs_and_counts_no_item() {
    let emulator = start(EmulatorConfig::default()).await;
    let too_many: Vec<_> = (0..21)
        .map(|i| batch_get(&i.to_string(), "requirements"))
        .collect();
    let (status, body) = post_batch(&emulator, json!(too_many)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "BadRequest");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    let stats = emulator.stats();
    assert_eq!(
        (
            stats.requests,
            stats.batches,
            stats.batch_items,
            stats.reads,
            stats.bad_requests
        ),
        (1, 0, 0, 0, 1)
    );
    emulator.shutdown().await;
}

#[test]
fn the_tenant_file_has_a_json_schema() {
    let schema = serde_json::to_value(schemars::schema_for!(Tenant)).unwrap();
    let text = schema.to_string();
    assert!(
        text.contains("userPrincipalName") && text.contains("perUserMfaState"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// signInPreferences: the system-preferred method.

#[tokio::test]
async fn the_system_preferred_method_is_the_strongest_registered_one_or_null() {
    // Each user holds the methods below the one named, so the name shows the order.
    let cases: &[(&str, Option<&str>, bool)] = &[
        (
            "[officePhone, mobilePhone, softwareOath, hardwareOath, microsoftAuthenticator, fido2, temporaryAccessPass, email]",
            Some("TemporaryAccessPass"),
            true,
        ),
        (
            "[officePhone, mobilePhone, softwareOath, hardwareOath, microsoftAuthenticator, fido2]",
            Some("Fido2"),
            true,
        ),
        (
            "[officePhone, mobilePhone, softwareOath, hardwareOath, microsoftAuthenticator]",
            Some("PhoneAppNotification"),
            true,
        ),
        (
            "[officePhone, mobilePhone, softwareOath, hardwareOath]",
            Some("HardwareOTP"),
            true,
        ),
        (
            "[officePhone, mobilePhone, softwareOath]",
            Some("SoftwareOTP"),
            true,
        ),
        ("[officePhone, mobilePhone]", Some("Sms"), true),
        ("[alternateMobilePhone]", Some("Voice"), true),
        ("[windowsHelloForBusiness, email]", None, true),
        ("[]", None, true),
        // System-preferred off: nothing is reported, whatever is registered.
        ("[fido2, microsoftAuthenticator]", None, false),
    ];
    let mut yaml = String::from(
        "tenantId: 9c0e5f1a-0000-4000-8000-000000000001\ndomain: contoso.onmicrosoft.com\nusers:\n",
    );
    for (i, (methods, _, on)) in cases.iter().enumerate() {
        yaml.push_str(&format!(
            "  - id: 00000000-0000-4000-8000-{i:012}\n    userPrincipalName: u{i}@contoso.com\n    \
             methods: {methods}\n    signInPreferences:\n      \
             isSystemPreferredAuthenticationMethodEnabled: {on}\n"
        ));
    }
    let tenant = Tenant::from_yaml_str(&yaml).unwrap();
    let emulator = Emulator::start(
        tenant,
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client = client();
    for (i, (methods, expected, on)) in cases.iter().enumerate() {
        let url = auth_url(&emulator, &format!("u{i}@contoso.com"), "signInPreferences");
        let (status, _, body) = get(&client, &url).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["systemPreferredAuthenticationMethod"],
            json!(expected),
            "{methods}"
        );
        assert_eq!(body["isSystemPreferredAuthenticationMethodEnabled"], *on);
    }
    emulator.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// authenticationMethodsPolicy.

fn policy_url(emulator: &Emulator) -> String {
    format!(
        "{}/beta/policies/authenticationMethodsPolicy",
        emulator.url()
    )
}

/// `policy` without what a PATCH always changes (`lastModifiedDateTime`) and without `part`.
fn without(policy: &Value, part: &str) -> Value {
    let mut rest = policy.clone();
    let object = rest.as_object_mut().unwrap();
    object.remove("lastModifiedDateTime");
    object.remove(part);
    rest
}

fn last_modified(policy: &Value) -> jiff::Timestamp {
    policy["lastModifiedDateTime"]
        .as_str()
        .unwrap_or_else(|| panic!("no lastModifiedDateTime: {policy}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_policy_has_graphs_whole_shape_when_the_file_leaves_it_out() {
    let emulator = start(EmulatorConfig::default()).await;
    let (status, headers, policy) = get(&client(), &policy_url(&emulator)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let keys: Vec<&str> = policy
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "@odata.context",
            "authenticationMethodConfigurations",
            "authenticationMethodConfigurations@odata.context",
            "description",
            "displayName",
            "id",
            "lastModifiedDateTime",
            "microsoftAuthenticatorPlatformSettings",
            "policyMigrationState",
            "policyVersion",
            "reconfirmationInDays",
            "registrationEnforcement",
            "reportSuspiciousActivitySettings",
            "systemCredentialPreferences",
        ]
    );
    assert_eq!(
        policy["@odata.context"],
        "https://graph.microsoft.com/beta/$metadata#authenticationMethodsPolicy"
    );
    assert_eq!(policy["id"], "authenticationMethodsPolicy");
    assert_eq!(policy["displayName"], "Authentication Methods Policy");
    assert_eq!(policy["policyVersion"], "1.5");
    assert_eq!(policy["policyMigrationState"], "preMigration");
    last_modified(&policy);
    assert_eq!(
        policy["systemCredentialPreferences"],
        json!({"state": "default", "excludeTargets": [],
               "includeTargets": [{"id": "all_users", "targetType": "group"}]})
    );
    assert_eq!(
        policy["registrationEnforcement"],
        json!({"authenticationMethodsRegistrationCampaign": {
            "snoozeDurationInDays": 1, "enforceRegistrationAfterAllowedSnoozes": true,
            "state": "default", "excludeTargets": [],
            "includeTargets": [{"id": "all_users", "targetType": "group",
                                "targetedAuthenticationMethod": "microsoftAuthenticator"}]}})
    );
    assert_eq!(
        policy["reportSuspiciousActivitySettings"],
        json!({"state": "default", "voiceReportingCode": 0,
               "includeTarget": {"id": "all_users", "targetType": "group"}})
    );
    let configurations: Vec<&str> = policy["authenticationMethodConfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        configurations,
        [
            "Fido2",
            "MicrosoftAuthenticator",
            "Sms",
            "TemporaryAccessPass",
            "HardwareOath",
            "SoftwareOath",
            "Voice",
            "Email",
            "X509Certificate"
        ]
    );
    // A GET changes nothing, the file's `authenticationMethodsPolicy` included.
    assert_eq!(get(&client(), &policy_url(&emulator)).await.2, policy);
    assert_eq!(emulator.tenant(), tenant());
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_patch_of_one_sub_object_changes_only_the_properties_it_names() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client();
    let url = policy_url(&emulator);
    let group = "5d1b6c1e-0000-4000-8000-000000000002";
    let cases = [
        (
            "systemCredentialPreferences",
            json!({"state": "enabled"}),
            json!({"state": "enabled", "excludeTargets": [],
                   "includeTargets": [{"id": "all_users", "targetType": "group"}]}),
        ),
        (
            "systemCredentialPreferences",
            // Arrays are values: the one sent replaces the old one whole.
            json!({"@odata.type": "#microsoft.graph.systemCredentialPreferences",
                   "excludeTargets": [{"id": group, "targetType": "group"}]}),
            json!({"state": "enabled", "excludeTargets": [{"id": group, "targetType": "group"}],
                   "includeTargets": [{"id": "all_users", "targetType": "group"}]}),
        ),
        (
            "registrationEnforcement",
            json!({"authenticationMethodsRegistrationCampaign": {"snoozeDurationInDays": 14,
                   "includeTargets": [{"id": group, "targetType": "group"},
                                      {"id": "all_users", "targetType": "group",
                                       "targetedAuthenticationMethod": "Fido2"}]}}),
            json!({"authenticationMethodsRegistrationCampaign": {
                "snoozeDurationInDays": 14, "enforceRegistrationAfterAllowedSnoozes": true,
                "state": "default", "excludeTargets": [],
                "includeTargets": [
                    {"id": group, "targetType": "group",
                     "targetedAuthenticationMethod": "microsoftAuthenticator"},
                    {"id": "all_users", "targetType": "group",
                     "targetedAuthenticationMethod": "Fido2"}]}}),
        ),
        (
            "reportSuspiciousActivitySettings",
            // The one includeTarget is a value too: replaced whole, not merged.
            json!({"state": "enabled", "voiceReportingCode": 9,
                   "includeTarget": {"id": group, "targetType": "group"}}),
            json!({"state": "enabled", "voiceReportingCode": 9,
                   "includeTarget": {"id": group, "targetType": "group"}}),
        ),
    ];
    for (part, sent, expected) in cases {
        let (_, _, before) = get(&client, &url).await;
        let (status, headers, answered) = patch(&client, &url, json!({ part: sent })).await;
        assert_eq!(status, StatusCode::OK, "{answered}");
        assert!(headers.contains_key("request-id"));
        let (_, _, after) = get(&client, &url).await;
        assert_eq!(answered, after, "the PATCH answers with the whole policy");
        assert_eq!(after[part], expected, "{part}: {sent}");
        assert_eq!(
            without(&after, part),
            without(&before, part),
            "{part}: every other part is unchanged"
        );
    }
    assert_eq!(emulator.stats().writes, 4);
    // The changed policy goes back into the tenant file's shape and loads again as it is.
    let changed = emulator.tenant();
    assert_eq!(Tenant::from_yaml_str(&changed.to_yaml()).unwrap(), changed);
    emulator.shutdown().await;
}

#[tokio::test]
async fn every_patch_moves_last_modified_date_time() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client();
    let url = policy_url(&emulator);
    let (_, _, initial) = get(&client, &url).await;
    let mut previous = last_modified(&initial);
    for _ in 0..3 {
        // The same body each time: the time moves even when nothing else does.
        let body = json!({"reportSuspiciousActivitySettings": {"state": "enabled"}});
        let (status, _, policy) = patch(&client, &url, body).await;
        assert_eq!(status, StatusCode::OK);
        let text = policy["lastModifiedDateTime"].as_str().unwrap();
        // Graph's spelling: UTC with seven fractional digits.
        assert!(
            text.len() == "2024-04-26T12:44:42.0858664Z".len() && text.ends_with('Z'),
            "{text}"
        );
        let now = last_modified(&policy);
        assert!(now > previous, "{now} after {previous}");
        previous = now;
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_bad_patch_is_a_400_and_changes_nothing() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client();
    let url = policy_url(&emulator);
    let (_, _, initial) = get(&client, &url).await;
    let campaign = |fields: Value| json!({"registrationEnforcement": {"authenticationMethodsRegistrationCampaign": fields}});
    let refused = [
        // A state that is not an advancedConfigState, or not spelt as Graph spells it.
        (
            json!({"systemCredentialPreferences": {"state": "on"}}),
            "state",
        ),
        (
            json!({"systemCredentialPreferences": {"state": "Enabled"}}),
            "state",
        ),
        (
            json!({"reportSuspiciousActivitySettings": {"state": "unknownFutureValue"}}),
            "state",
        ),
        (campaign(json!({"state": null})), "state"),
        // Snooze out of 0–14, or not a whole number.
        (
            campaign(json!({"snoozeDurationInDays": 15})),
            "snoozeDurationInDays",
        ),
        (
            campaign(json!({"snoozeDurationInDays": -1})),
            "snoozeDurationInDays",
        ),
        (
            campaign(json!({"snoozeDurationInDays": 2.5})),
            "snoozeDurationInDays",
        ),
        (
            campaign(json!({"snoozeDurationInDays": "3"})),
            "snoozeDurationInDays",
        ),
        (
            campaign(json!({"enforceRegistrationAfterAllowedSnoozes": "yes"})),
            "enforceRegistrationAfterAllowedSnoozes",
        ),
        // A campaign for a method Graph does not run campaigns for.
        (
            campaign(
                json!({"includeTargets": [{"id": "all_users", "targetType": "group",
                                                "targetedAuthenticationMethod": "sms"}]}),
            ),
            "targetedAuthenticationMethod",
        ),
        (
            campaign(
                json!({"includeTargets": [{"id": "all_users", "targetType": "group",
                                                "targetedAuthenticationMethod": "MicrosoftAuthenticator"}]}),
            ),
            "targetedAuthenticationMethod",
        ),
        // The wrong kind of target for the sub-object.
        (
            json!({"systemCredentialPreferences": {"includeTargets": [{"id": "all_users", "targetType": "group",
                   "targetedAuthenticationMethod": "microsoftAuthenticator"}]}}),
            "microsoft.graph.includeTarget",
        ),
        (
            campaign(
                json!({"excludeTargets": [{"id": "all_users", "targetType": "group",
                            "targetedAuthenticationMethod": "microsoftAuthenticator"}]}),
            ),
            "microsoft.graph.excludeTarget",
        ),
        (
            json!({"systemCredentialPreferences": {"includeTargets": [{"id": "all_users", "targetType": "group",
                   "@odata.type": "#microsoft.graph.authenticationMethodsRegistrationCampaignIncludeTarget"}]}}),
            "#microsoft.graph.includeTarget",
        ),
        (
            json!({"systemCredentialPreferences": {"includeTargets": [{"id": "all_users", "targetType": "role"}]}}),
            "targetType",
        ),
        (
            json!({"systemCredentialPreferences": {"includeTargets": [{"id": "all_users"}]}}),
            "targetType",
        ),
        (
            json!({"systemCredentialPreferences": {"excludeTargets": [{"id": "MFA Pilot", "targetType": "group"}]}}),
            "id",
        ),
        (
            json!({"systemCredentialPreferences": {"includeTargets": {"id": "all_users", "targetType": "group"}}}),
            "includeTargets",
        ),
        (
            json!({"systemCredentialPreferences": {"includeTargets": [
                {"id": "all_users", "targetType": "group"},
                {"id": "5d1b6c1e-0000-4000-8000-000000000002", "targetType": "group"}]}}),
            "at most 1",
        ),
        // includeTarget given as a list where Graph takes one target.
        (
            json!({"reportSuspiciousActivitySettings": {"includeTarget": [{"id": "all_users", "targetType": "group"}]}}),
            "includeTarget",
        ),
        // A voice reporting code that is not one digit.
        (
            json!({"reportSuspiciousActivitySettings": {"voiceReportingCode": 10}}),
            "voiceReportingCode",
        ),
        (
            json!({"reportSuspiciousActivitySettings": {"voiceReportingCode": -1}}),
            "voiceReportingCode",
        ),
        // Unknown properties, at the top and inside a sub-object.
        (json!({"color": "blue"}), "color"),
        // A property of the beta schema, of the wrong type (it is an Int32).
        (
            json!({"reconfirmationInDays": "30"}),
            "reconfirmationInDays",
        ),
        (
            json!({"systemCredentialPreferences": {"stat": "enabled"}}),
            "stat",
        ),
        (
            json!({"registrationEnforcement": {"campaign": {}}}),
            "campaign",
        ),
        // Read-only and elsewhere-managed properties; sub-objects that are not objects.
        (json!({"displayName": "Mine"}), "read-only"),
        (
            json!({"authenticationMethodConfigurations": []}),
            "authenticationMethodConfigurations",
        ),
        (
            json!({"systemCredentialPreferences": null}),
            "systemCredentialPreferences",
        ),
        (
            json!({"policyMigrationState": "done"}),
            "policyMigrationState",
        ),
        // One bad part refuses the parts that were good too.
        (
            json!({"systemCredentialPreferences": {"state": "enabled"},
                   "reportSuspiciousActivitySettings": {"voiceReportingCode": 12}}),
            "voiceReportingCode",
        ),
        (json!([]), "JSON object"),
    ];
    for (body, named) in &refused {
        let (status, _, error) = patch(&client, &url, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"]["code"], "badRequest", "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{body}: {message}");
        assert!(error["error"]["innerError"]["request-id"].is_string());
        assert_eq!(
            get(&client, &url).await.2,
            initial,
            "{body} changed the policy"
        );
    }
    assert_eq!(emulator.tenant(), tenant(), "nothing changed");
    let stats = emulator.stats();
    assert_eq!(
        (stats.bad_requests, stats.writes),
        (refused.len() as u64, 0)
    );

    // Read-only properties may come back as they are (an SDK sending the object it read), and
    // annotations are read past.
    let round_trip = json!({"id": initial["id"], "displayName": initial["displayName"],
                            "@odata.context": initial["@odata.context"],
                            "systemCredentialPreferences": {"state": "disabled"}});
    let (status, _, policy) = patch(&client, &url, round_trip).await;
    assert_eq!(status, StatusCode::OK, "{policy}");
    assert_eq!(policy["systemCredentialPreferences"]["state"], "disabled");
    emulator.shutdown().await;
}

#[test]
fn the_files_policy_is_laid_over_graphs_defaults_and_checked() {
    let partial = format!(
        "{TENANT}authenticationMethodsPolicy:\n  systemCredentialPreferences:\n    state: enabled\n"
    );
    let tenant = Tenant::from_yaml_str(&partial).unwrap();
    let state = state::TenantState::new(tenant);
    let policy = state.policy();
    assert_eq!(policy["systemCredentialPreferences"]["state"], "enabled");
    assert_eq!(
        policy["systemCredentialPreferences"]["includeTargets"],
        json!([{"id": "all_users", "targetType": "group"}])
    );
    assert_eq!(policy["policyVersion"], "1.5");

    let bad = format!(
        "{TENANT}authenticationMethodsPolicy:\n  registrationEnforcement:\n    \
         authenticationMethodsRegistrationCampaign:\n      snoozeDurationInDays: 30\n  \
         reportSuspiciousActivitySettings:\n    includeTarget: []\n"
    );
    let err = Tenant::from_yaml_str(&bad).unwrap_err();
    let TenantError::Invalid { problems, .. } = &err else {
        panic!("{err}");
    };
    let found: Vec<_> = problems.iter().map(|p| (p.code, p.line)).collect();
    // The policy's place (where its mapping starts); each message names the property.
    assert_eq!(
        found,
        [("invalid-policy", 23), ("invalid-policy", 23)],
        "{err}"
    );
    assert!(err.to_string().contains("snoozeDurationInDays"), "{err}");
    let err =
        Tenant::from_yaml_str(&format!("{TENANT}authenticationMethodsPolicy: [1]\n")).unwrap_err();
    assert!(err.to_string().contains("must be a mapping"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Groups by display name.

const GROUPS: &str = r#"groups:
  - id: 5d1b6c1e-0000-4000-8000-000000000001
    displayName: MFA Pilot
    members: [071cc716-8147-4397-a5ba-b2105951cc0b]
  - id: 5d1b6c1e-0000-4000-8000-000000000002
    displayName: "O'Brien's team"
  - id: 5d1b6c1e-0000-4000-8000-000000000003
    displayName: Helpdesk
  - id: 5d1b6c1e-0000-4000-8000-000000000004
    displayName: helpdesk
  - id: 5d1b6c1e-0000-4000-8000-000000000005
"#;

async fn start_with_groups() -> Emulator {
    let tenant = Tenant::from_yaml_str(&format!("{TENANT}{GROUPS}")).unwrap();
    Emulator::start(
        tenant,
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// `GET /beta/groups` with the query options, encoded as a client encodes them.
async fn groups(emulator: &Emulator, query: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = client()
        .get(format!("{}/beta/groups", emulator.url()))
        .query(query)
        .bearer_auth("token")
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The ids of the groups an answer lists.
fn ids(answer: &Value) -> Vec<&str> {
    answer["value"]
        .as_array()
        .unwrap_or_else(|| panic!("no value: {answer}"))
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect()
}

/// The OData filter for a display name: the literal quoted, a quote inside written twice.
fn by_name(name: &str) -> String {
    format!("displayName eq '{}'", name.replace('\'', "''"))
}

#[tokio::test]
async fn groups_are_found_by_display_name() {
    let emulator = start_with_groups().await;
    let select = ("$select", "id,displayName");

    let filter = by_name("MFA Pilot");
    let (status, answer) = groups(&emulator, &[("$filter", &filter), select]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"@odata.context": "https://graph.microsoft.com/beta/$metadata#groups(id,displayName)",
               "value": [{"id": "5d1b6c1e-0000-4000-8000-000000000001", "displayName": "MFA Pilot"}]})
    );

    // A quote in the name, escaped as OData escapes it.
    let filter = by_name("O'Brien's team");
    let (_, answer) = groups(&emulator, &[("$filter", &filter), select]).await;
    assert_eq!(ids(&answer), ["5d1b6c1e-0000-4000-8000-000000000002"]);

    // None, and several (names compare without regard to case).
    let filter = by_name("Nobody's group");
    let (status, answer) = groups(&emulator, &[("$filter", &filter), select]).await;
    assert_eq!((status, &answer["value"]), (StatusCode::OK, &json!([])));
    let filter = by_name("HELPDESK");
    let (_, answer) = groups(&emulator, &[("$filter", &filter), select]).await;
    assert_eq!(
        ids(&answer),
        [
            "5d1b6c1e-0000-4000-8000-000000000003",
            "5d1b6c1e-0000-4000-8000-000000000004"
        ]
    );

    // $select is honoured; without $filter every group is listed.
    let (_, answer) = groups(&emulator, &[("$filter", &filter), ("$select", "id")]).await;
    assert_eq!(
        answer["value"],
        json!([{"id": "5d1b6c1e-0000-4000-8000-000000000003"},
               {"id": "5d1b6c1e-0000-4000-8000-000000000004"}])
    );
    let (_, answer) = groups(&emulator, &[]).await;
    assert_eq!(ids(&answer).len(), 5);
    assert_eq!(answer["value"][4]["displayName"], Value::Null);

    // What the emulator does not serve is refused, not ignored.
    for query in [
        [("$filter", "startswith(displayName,'MFA')")],
        [("$filter", "displayName eq 'O'Brien''s team'")],
        [("$select", "id,mail")],
    ] {
        let (status, answer) = groups(&emulator, &query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}: {answer}");
    }
    let response = client()
        .patch(format!("{}/beta/groups", emulator.url()))
        .bearer_auth("token")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    // In a batch, the item's query string is read the same way.
    let url = format!(
        "/groups?$filter={}&$select=id",
        by_name("O'Brien's team")
            .replace(' ', "%20")
            .replace('\'', "%27")
    );
    let (status, batch) =
        post_batch(&emulator, json!([{"id": "g", "method": "GET", "url": url}])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        item(&batch, "g")["body"]["value"],
        json!([{"id": "5d1b6c1e-0000-4000-8000-000000000002"}])
    );
    emulator.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Permissions with an `auth:` section.

const POLICY_READER: &str = "3f0c1a2b-0000-4000-8000-0000000000a1";
const POLICY_WRITER: &str = "3f0c1a2b-0000-4000-8000-0000000000a2";

/// A client-credentials token for one of the apps of [`permissions_tenant`].
async fn app_token(emulator: &Emulator, app: &str) -> String {
    let response = client()
        .post(emulator.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app),
            ("client_secret", "not-a-real-secret"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn permissions_tenant() -> Tenant {
    Tenant::from_yaml_str(&format!(
        "{TENANT}{GROUPS}auth:\n  apps:\n    - clientId: {POLICY_READER}\n      secret: not-a-real-secret\n      \
         roles: [Policy.Read.All, User.Read.All]\n    - clientId: {POLICY_WRITER}\n      \
         secret: not-a-real-secret\n      roles: [Policy.ReadWrite.AuthenticationMethod, GroupMember.Read.All]\n"
    ))
    .unwrap()
}

#[tokio::test]
async fn groups_and_policy_writes_need_their_permission_when_the_tenant_has_auth() {
    let emulator = Emulator::start(
        permissions_tenant(),
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client = client();
    let filter = by_name("MFA Pilot");
    let groups_url = format!("{}/beta/groups", emulator.url());
    let url = policy_url(&emulator);
    let initial = emulator.tenant();

    let reader = app_token(&emulator, POLICY_READER).await;
    let response = client
        .get(&groups_url)
        .query(&[("$filter", filter.as_str())])
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    let response = client.get(&url).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client
        .patch(&url)
        .bearer_auth(&reader)
        .json(&json!({"systemCredentialPreferences": {"state": "enabled"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(emulator.tenant(), initial, "a refused call changes nothing");

    let writer = app_token(&emulator, POLICY_WRITER).await;
    let response = client
        .get(&groups_url)
        .query(&[("$filter", filter.as_str()), ("$select", "id")])
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(ids(&body), ["5d1b6c1e-0000-4000-8000-000000000001"]);
    let response = client
        .patch(&url)
        .bearer_auth(&writer)
        .json(&json!({"systemCredentialPreferences": {"state": "enabled"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(emulator.stats().forbidden, 2);
    emulator.shutdown().await;
}

#[tokio::test]
async fn users_are_listed_in_pages_linked_on_the_requests_own_host() {
    let emulator = Emulator::start(
        Tenant::generate(25, 3),
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client = client();
    let mut url = format!("{}/beta/users?$select=id,userType&$top=10", emulator.url());
    let mut pages = Vec::new();
    loop {
        let (status, headers, body) = get(&client, &url).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // GET users costs 2 RU, 1 less with $select, 1 less with a $top under 20; never below 1.
        assert_eq!(headers["x-ms-resource-unit"], "1");
        let page: Vec<Value> = body["value"].as_array().unwrap().clone();
        assert!(page.iter().all(|u| u.as_object().unwrap().len() == 2));
        pages.push(page.len());
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&format!("{}/beta/users?", emulator.url())),
                    "{next}"
                );
                assert!(next.contains("skiptoken"), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, [10, 10, 5]);

    // $count needs ConsistencyLevel: eventual, as an advanced query does on Graph.
    let counted = format!(
        "{}/beta/users?$count=true&$filter=accountEnabled eq true and startswith(userPrincipalName,'A')",
        emulator.url()
    );
    let (status, _, body) = get(&client, &counted).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let response = client
        .get(&counted)
        .bearer_auth("token")
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-ms-resource-unit"], "2");
    let body: Value = response.json().await.unwrap();
    let listed = body["value"].as_array().unwrap();
    assert_eq!(body["@odata.count"], listed.len());
    assert!(listed.iter().all(|u| u["accountEnabled"] == true
        && u["userPrincipalName"].as_str().unwrap().starts_with('a')));

    for (query, code) in [
        ("$select=id,mail", "BadRequest"),
        (
            "$filter=mail eq 'x@contoso.com'",
            "Request_UnsupportedQuery",
        ),
        ("$filter=displayName eq 'Megan'", "Request_UnsupportedQuery"),
        ("$top=1000", "BadRequest"),
        ("$skiptoken=forged", "Directory_ExpiredPageToken"),
        ("$orderby=displayName", "BadRequest"),
    ] {
        let (status, _, body) =
            get(&client, &format!("{}/beta/users?{query}", emulator.url())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"]["code"], code, "{query}");
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_groups_transitive_members_page_like_users_and_cost_more() {
    let mut tenant = Tenant::generate(12, 4);
    let outer = tenant.groups[0].id.clone();
    let ids: Vec<String> = tenant.users.iter().map(|u| u.id.clone()).collect();
    tenant.groups[0].members = vec![ids[0].clone(), tenant.groups[1].id.clone()];
    tenant.groups[1].members = ids[5..9].to_vec();
    let emulator = Emulator::start(
        tenant,
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client = client();
    let base = format!("{}/beta/groups/{outer}", emulator.url());
    let (status, headers, body) = get(&client, &format!("{base}/transitiveMembers")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["x-ms-resource-unit"], "5");
    let types: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["@odata.type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 6);
    assert_eq!(types[0], "#microsoft.graph.group");

    let (_, _, body) = get(
        &client,
        &format!("{base}/transitiveMembers/microsoft.graph.user?$select=id&$top=2"),
    )
    .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
    let next = body["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.contains("/transitiveMembers/microsoft.graph.user?"),
        "{next}"
    );

    let (_, _, body) = get(&client, &format!("{base}/members?$select=id")).await;
    assert_eq!(
        body["value"].as_array().unwrap().len(),
        2,
        "direct members only"
    );
    let (status, _, body) = get(
        &client,
        &format!("{base}/members?$filter=userType eq 'Guest'"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, _) = get(
        &client,
        &format!("{}/beta/groups/{}/members", emulator.url(), ids[0]),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a user is not a group");
    emulator.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Conditional Access, security defaults and role assignments.

const ROLE: &str = "62e90394-69f5-4237-9190-012177145e10";

/// [`TENANT`] with `extra` appended (top-level YAML keys).
async fn start_with_extra(extra: &str) -> Emulator {
    let tenant = Tenant::from_yaml_str(&format!("{TENANT}{extra}")).expect("valid tenant");
    Emulator::start(
        tenant,
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("emulator starts")
}

#[tokio::test]
async fn security_defaults_follow_the_file_or_whether_it_has_policies() {
    let url = |emulator: &Emulator| {
        format!(
            "{}/beta/policies/identitySecurityDefaultsEnforcementPolicy",
            emulator.url()
        )
    };
    let client = client();
    for (extra, expected) in [
        ("", true),
        ("securityDefaults: false\n", false),
        (
            "conditionalAccessPolicies:\n  - { id: p, displayName: P, state: disabled, conditions: {} }\n",
            false,
        ),
    ] {
        let emulator = start_with_extra(extra).await;
        let (status, _, body) = get(&client, &url(&emulator)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["isEnabled"], expected, "{extra}");
        assert_eq!(body["id"], "00000000-0000-0000-0000-000000000005");
        emulator.shutdown().await;
    }
}

#[tokio::test]
async fn policies_are_paged_in_graphs_whole_shape() {
    let mut extra = String::from("conditionalAccessPolicies:\n");
    for n in 0..5 {
        extra.push_str(&format!(
            "  - id: p{n}\n    displayName: Policy {n}\n    state: enabled\n    conditions:\n      \
             users: {{ includeUsers: [All] }}\n    grantControls: {{ builtInControls: [mfa] }}\n"
        ));
    }
    let emulator = start_with_extra(&extra).await;
    let client = client();
    let mut url = format!(
        "{}/beta/identity/conditionalAccess/policies?$top=2",
        emulator.url()
    );
    let mut names = Vec::new();
    loop {
        let (status, _, page) = get(&client, &url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for policy in page["value"].as_array().unwrap() {
            names.push(policy["displayName"].as_str().unwrap().to_owned());
            assert_eq!(policy["conditions"]["clientAppTypes"], json!(["all"]));
            assert_eq!(policy["conditions"]["users"]["excludeGroups"], json!([]));
            assert_eq!(policy["grantControls"]["operator"], "OR");
            assert!(policy["grantControls"]["authenticationStrength"].is_null());
        }
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(url.contains("%24top=2") || url.contains("$top=2"), "{url}");
    let (status, _, body) = get(
        &client,
        &format!(
            "{}/beta/identity/conditionalAccess/policies?$filter=state%20eq%20'enabled'",
            emulator.url()
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn role_assignments_filter_expand_and_leave_out_unknown_principals() {
    let extra = format!(
        "groups:\n  - {{ id: 5d1b6c1e-0000-4000-8000-0000000000a2, displayName: Admins, members: [{MEGAN}] }}\n\
         roleAssignments:\n  - {{ roleDefinitionId: {ROLE}, principalId: {MEGAN} }}\n  \
         - {{ roleDefinitionId: {ROLE}, principalId: 5d1b6c1e-0000-4000-8000-0000000000a2, directoryScopeId: /administrativeUnits/x }}\n  \
         - {{ roleDefinitionId: {ROLE}, principalId: 5d1b6c1e-0000-4000-8000-00000000dead }}\n  \
         - {{ roleDefinitionId: 29232cdf-9323-42fd-ade2-1d097af3e4de, principalId: {MEGAN} }}\n"
    );
    let emulator = start_with_extra(&extra).await;
    let client = client();
    let url = format!(
        "{}/beta/roleManagement/directory/roleAssignments?$filter=roleDefinitionId%20eq%20'{}'&$expand=principal",
        emulator.url(),
        ROLE.to_uppercase()
    );
    let (status, _, body) = get(&client, &url).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let value = body["value"].as_array().unwrap();
    assert_eq!(value.len(), 2, "the deleted principal is left out: {body}");
    assert_eq!(
        value[0]["principal"]["@odata.type"],
        "#microsoft.graph.user"
    );
    assert_eq!(value[0]["directoryScopeId"], "/");
    assert_eq!(
        value[1]["principal"]["@odata.type"],
        "#microsoft.graph.group"
    );
    assert_eq!(value[1]["directoryScopeId"], "/administrativeUnits/x");
    let (_, _, plain) = get(
        &client,
        &format!(
            "{}/beta/roleManagement/directory/roleAssignments?$filter=principalId%20eq%20'{MEGAN}'",
            emulator.url()
        ),
    )
    .await;
    assert_eq!(plain["value"].as_array().unwrap().len(), 2, "{plain}");
    assert!(plain["value"][0].get("principal").is_none());
    for bad in ["$filter=displayName%20eq%20'x'", "$expand=roleDefinition"] {
        let (status, _, body) = get(
            &client,
            &format!(
                "{}/beta/roleManagement/directory/roleAssignments?{bad}",
                emulator.url()
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    emulator.shutdown().await;
}

#[test]
fn conditional_access_problems_name_their_line() {
    let text = format!(
        "{TENANT}conditionalAccessPolicies:\n  - id: p1\n    displayName: Fine\n    state: enabled\n    \
         conditions: {{ users: {{ includeUsers: [All] }} }}\n  - id: p1\n    displayName: Twice\n    \
         state: reportOnly\n    conditions: {{}}\nroleAssignments:\n  - {{ roleDefinitionId: admin, principalId: {MEGAN} }}\n"
    );
    let Err(TenantError::Invalid { problems, .. }) = Tenant::from_yaml_str(&text) else {
        panic!("the file is refused");
    };
    let codes: Vec<(&str, u64)> = problems.iter().map(|p| (p.code, p.line)).collect();
    // 1-based lines of the second policy and of the role assignment, as written.
    let line_of = |needle: &str, nth: usize| {
        text.lines()
            .enumerate()
            .filter(|(_, line)| line.contains(needle))
            .nth(nth)
            .map(|(index, _)| index as u64 + 1)
            .unwrap()
    };
    let twice = line_of("- id: p1", 1);
    assert_eq!(
        codes,
        [
            ("invalid-conditional-access-policy", twice),
            ("duplicate-id", twice),
            ("invalid-id", line_of("roleDefinitionId: admin", 0)),
        ],
        "{problems:?}"
    );
    assert!(
        problems[0].message.contains("state must be one of"),
        "{problems:?}"
    );
}
