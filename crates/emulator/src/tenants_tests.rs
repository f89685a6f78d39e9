//! Several tenants on one port, over a real socket: the token's `tid` picks the tenant of a
//! Graph call, the URL's tenant picks the authority, an app consented in one tenant only gets
//! Entra's "missing service principal" in the others, and the app-wide ceilings hold across
//! tenants.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use super::*;

const APP: &str = "2b1a8e61-0000-4000-8000-0000000000aa";
const ONLY_IN_FIRST: &str = "2b1a8e61-0000-4000-8000-0000000000bb";
const SECRET: &str = "not-a-real-secret";

/// Tenant `n`: one user, and the app `APP` (and, in the first, `ONLY_IN_FIRST`) with a secret.
fn tenant(n: u32, apps: &[&str]) -> Tenant {
    let apps: String = apps
        .iter()
        .map(|app| {
            format!(
                "  - clientId: {app}\n    secret: {SECRET}\n    roles: \
                 [UserAuthenticationMethod.ReadWrite.All, Policy.ReadWrite.AuthenticationMethod, \
                 Policy.Read.All, User.Read.All]\n"
            )
        })
        .collect();
    let apps = if apps.is_empty() {
        " []\n".to_owned()
    } else {
        format!("\n{apps}")
    };
    let text = format!(
        "tenantId: 9c0e5f1a-0000-4000-8000-00000000000{n}\ndomain: customer{n}.onmicrosoft.com\n\
         users:\n- id: 071cc716-8147-4397-a5ba-b2105951cc0{n}\n  userPrincipalName: \
         user{n}@customer{n}.com\n  methods: [mobilePhone]\n  perUserMfaState: enforced\n\
         auth:\n  apps:{apps}"
    );
    Tenant::from_yaml_str(&text).expect("valid tenant")
}

async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start_tenants(
        vec![
            tenant(1, &[APP, ONLY_IN_FIRST]),
            tenant(2, &[APP]),
            tenant(3, &[]),
        ],
        config,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("emulator starts")
}

async fn token(emulator: &Emulator, tenant: &str, app: &str) -> (StatusCode, Value) {
    let response = Client::new()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", emulator.url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app),
            ("client_secret", SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn get(emulator: &Emulator, path: &str, token: &str) -> (StatusCode, Value) {
    let response = Client::new()
        .get(format!("{}{path}", emulator.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn each_tenant_signs_in_and_answers_for_itself() {
    let emulator = start(EmulatorConfig::default()).await;
    let (status, first) = token(&emulator, "customer1.onmicrosoft.com", APP).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = token(&emulator, "9C0E5F1A-0000-4000-8000-000000000002", APP).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let first = first["access_token"].as_str().unwrap();
    let second = second["access_token"].as_str().unwrap();
    for (token, upn) in [
        (first, "user1@customer1.com"),
        (second, "user2@customer2.com"),
    ] {
        let (status, users) =
            get(&emulator, "/beta/users?$select=id,userPrincipalName", token).await;
        assert_eq!(status, StatusCode::OK, "{users}");
        assert_eq!(users["value"][0]["userPrincipalName"], upn, "{users}");
        assert_eq!(users["value"].as_array().unwrap().len(), 1);
    }
    // A token names its tenant in `tid`; rewriting the claim makes it another tenant's token,
    // whose signature that tenant refuses.
    let forged = forge_tid(first, "9c0e5f1a-0000-4000-8000-000000000002");
    assert_eq!(get(&emulator, "/beta/organization", &forged).await.0, 401);
    assert_eq!(get(&emulator, "/beta/organization", "opaque").await.0, 401);
    // The emulator's own endpoints need a token one of the tenants issued.
    let stats_url = format!("{}/_emulator/stats", emulator.url());
    let open = Client::new().get(&stats_url).send().await.unwrap();
    assert_eq!(open.status(), StatusCode::UNAUTHORIZED);
    let (status, summed) = get(&emulator, "/_emulator/stats", second).await;
    assert_eq!(status, StatusCode::OK, "{summed}");
    let (status, one) = get(
        &emulator,
        "/_emulator/tenants/customer1.onmicrosoft.com/tenant",
        first,
    )
    .await;
    assert_eq!(
        (status, one["domain"].as_str()),
        (StatusCode::OK, Some("customer1.onmicrosoft.com"))
    );
    assert!(one.get("auth").is_none_or(Value::is_null), "{one}");
    let stats = emulator.stats_of("customer2.onmicrosoft.com").unwrap();
    assert_eq!((stats.tokens_issued, stats.reads), (1, 1));
    assert_eq!(emulator.stats().tokens_issued, 2);
    assert_eq!(emulator.tenant_ids().len(), 3);
}

fn forge_tid(token: &str, tid: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["tid"] = json!(tid);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{claims}.{}", parts[0], parts[2])
}

#[tokio::test]
async fn an_app_not_consented_in_a_tenant_gets_entras_missing_service_principal() {
    let emulator = start(EmulatorConfig::default()).await;
    let (status, body) = token(&emulator, "customer3.onmicrosoft.com", APP).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000229]));
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!(
            "AADSTS7000229: The client application {APP} is missing service principal in the \
             tenant 9c0e5f1a-0000-4000-8000-000000000003."
        )),
        "{description}"
    );
    let (_, body) = token(&emulator, "customer2.onmicrosoft.com", ONLY_IN_FIRST).await;
    assert_eq!(body["error_codes"], json!([7000229]));
    let (_, body) = token(
        &emulator,
        "customer1.onmicrosoft.com",
        "2b1a8e61-0000-4000-8000-0000000000cc",
    )
    .await;
    assert_eq!(body["error_codes"], json!([700016]), "unknown everywhere");
    let (status, body) = token(&emulator, "customer9.onmicrosoft.com", APP).await;
    assert_eq!(
        (status, body["error_codes"].clone()),
        (StatusCode::BAD_REQUEST, json!([90002]))
    );
}

#[tokio::test]
async fn the_app_wide_write_ceiling_holds_across_tenants() {
    let emulator = start(EmulatorConfig {
        app_writes_per_300s: 3,
        ..EmulatorConfig::default()
    })
    .await;
    let mut tokens = Vec::new();
    for tenant in ["customer1.onmicrosoft.com", "customer2.onmicrosoft.com"] {
        let (_, body) = token(&emulator, tenant, APP).await;
        tokens.push((tenant, body["access_token"].as_str().unwrap().to_owned()));
    }
    let mut answers = Vec::new();
    for n in 0..4 {
        let (tenant, token) = &tokens[n % 2];
        let digit = &tenant["customer".len()..][..1];
        let response = Client::new()
            .patch(format!(
                "{}/beta/users/071cc716-8147-4397-a5ba-b2105951cc0{digit}/authentication/requirements",
                emulator.url()
            ))
            .bearer_auth(token)
            .json(&json!({"perUserMfaState": if n < 2 { "disabled" } else { "enforced" }}))
            .send()
            .await
            .unwrap();
        let scope = response
            .headers()
            .get("x-ms-throttle-scope")
            .map(|v| v.to_str().unwrap().to_owned());
        answers.push((response.status().as_u16(), scope));
    }
    assert_eq!(
        answers[..3].iter().map(|a| a.0).collect::<Vec<_>>(),
        [204, 204, 204]
    );
    assert_eq!(
        answers[3].0, 429,
        "the app's fourth write, in either tenant"
    );
    assert_eq!(
        answers[3].1.as_deref(),
        Some(format!("Application/Write/{APP}").as_str())
    );
}
