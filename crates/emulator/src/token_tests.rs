//! Signing in like Entra ID, over a real socket: every grant and the refusals Entra answers
//! with (by AADSTS code), managed identity, and Graph's 401 and 403 once a tenant file has an
//! `auth` section. Certificates and keys are made when the tests run, never committed.

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use super::certificate::AppCertificate;
use super::certificate::tests::rsa_certificate;
use super::token::{FEDERATION_AUDIENCE, federated_assertion};
use super::*;

const TENANT_ID: &str = "9c0e5f1a-0000-4000-8000-000000000001";
const DOMAIN: &str = "contoso.onmicrosoft.com";
const MEGAN: &str = "071cc716-8147-4397-a5ba-b2105951cc0b";
const ADMIN_ID: &str = "5f7e4c1a-3333-4000-8000-000000000004";
/// Secret; UserAuthenticationMethod.ReadWrite.All and Policy.Read.All.
const SECRET_APP: &str = "2b1a8e61-0000-4000-8000-00000000000a";
const SECRET: &str = "not-a-real-secret";
/// Certificate; every permission mfactl uses.
const CERT_APP: &str = "2b1a8e61-0000-4000-8000-00000000000b";
/// Federated credential (GitHub Actions); Policy.Read.All.
const FED_APP: &str = "2b1a8e61-0000-4000-8000-00000000000c";
/// The managed identity; UserAuthenticationMethod.Read.All.
const MI_APP: &str = "2b1a8e61-0000-4000-8000-00000000000d";
/// Azure CLI's public client id: not an app in the file, so a public client.
const PUBLIC_CLIENT: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
const SUBJECT: &str = "repo:contoso/mfa:ref:refs/heads/main";
const GITHUB: &str = "https://token.actions.githubusercontent.com";
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The app certificate and its private key, shared by the tests (RSA keys take a moment).
fn app_certificate() -> &'static (String, String) {
    static CERTIFICATE: OnceLock<(String, String)> = OnceLock::new();
    CERTIFICATE.get_or_init(|| rsa_certificate("mfactl-test-app"))
}

/// Another certificate, registered nowhere.
fn stranger_certificate() -> &'static (String, String) {
    static CERTIFICATE: OnceLock<(String, String)> = OnceLock::new();
    CERTIFICATE.get_or_init(|| rsa_certificate("stranger"))
}

/// What a test changes in the `auth` section.
struct Options {
    lifetime: u64,
    interval: u64,
    polls: u32,
    device_code_expires_in: u64,
    strict: bool,
    identity_header: Option<&'static str>,
    certificate_pem: String,
    managed_identity: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            lifetime: 3599,
            interval: 0,
            polls: 3,
            device_code_expires_in: 900,
            strict: false,
            identity_header: None,
            certificate_pem: app_certificate().0.clone(),
            managed_identity: true,
        }
    }
}

fn tenant_yaml(options: &Options) -> String {
    let pem: String = options
        .certificate_pem
        .lines()
        .map(|line| format!("        {line}\n"))
        .collect();
    let identity_header = options
        .identity_header
        .map(|h| format!("  identityHeader: {h}\n"))
        .unwrap_or_default();
    format!(
        r#"tenantId: {TENANT_ID}
domain: {DOMAIN}
users:
  - id: {MEGAN}
    userPrincipalName: megan@contoso.com
    methods: [microsoftAuthenticator, mobilePhone]
    signInPreferences:
      userPreferredMethodForSecondaryAuthentication: sms
    perUserMfaState: disabled
  - id: {ADMIN_ID}
    userPrincipalName: admin@contoso.com
    displayName: Alex Admin
auth:
  tokenLifetimeSeconds: {lifetime}
  deviceCodeApprovalPolls: {polls}
  deviceCodeIntervalSeconds: {interval}
  deviceCodeExpiresInSeconds: {expires}
  strictAssertions: {strict}
{identity_header}  apps:
    - clientId: {SECRET_APP}
      secret: {SECRET}
      roles: [UserAuthenticationMethod.ReadWrite.All, Policy.Read.All]
    - clientId: {CERT_APP}
      certificate: |
{pem}      roles: [UserAuthenticationMethod.ReadWrite.All, Policy.ReadWrite.AuthenticationMethod, User.Read.All, Organization.Read.All]
    - clientId: {FED_APP}
      federatedSubject: "{SUBJECT}"
      federatedIssuer: {GITHUB}
      roles: [Policy.Read.All]
    - clientId: {MI_APP}
      managedIdentity: {managed}
      secret: mi-secret
      roles: [UserAuthenticationMethod.Read.All]
  admins:
    - userPrincipalName: admin@contoso.com
      scopes: [UserAuthenticationMethod.ReadWrite.All, Policy.ReadWrite.AuthenticationMethod]
"#,
        lifetime = options.lifetime,
        polls = options.polls,
        interval = options.interval,
        expires = options.device_code_expires_in,
        strict = options.strict,
        managed = options.managed_identity,
    )
}

async fn start_with(options: Options) -> Emulator {
    let tenant = Tenant::from_yaml_str(&tenant_yaml(&options)).expect("test tenant is valid");
    Emulator::start(
        tenant,
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("emulator starts")
}

async fn start() -> Emulator {
    start_with(Options::default()).await
}

async fn post_form(url: &str, form: &[(&str, &str)]) -> (StatusCode, HeaderMap, Value) {
    let response = Client::new().post(url).form(form).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// Asserts an Entra refusal: status, `error`, the AADSTS code in `error_codes` and at the start
/// of `error_description`, and the ids Entra adds.
#[track_caller]
fn assert_refused(answer: &(StatusCode, HeaderMap, Value), status: u16, error: &str, code: u32) {
    let (got, _, body) = answer;
    assert_eq!(got.as_u16(), status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with(&format!("AADSTS{code}: "))
            && description.contains("\r\nTrace ID: ")
            && description.contains("\r\nCorrelation ID: ")
            && description.contains("\r\nTimestamp: "),
        "{body}"
    );
    for id in ["trace_id", "correlation_id"] {
        assert!(
            uuid::Uuid::try_parse(body[id].as_str().unwrap_or_default()).is_ok(),
            "{body}"
        );
    }
    assert!(
        body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
}

/// An app token from the client-credentials grant with a secret.
async fn secret_token(emulator: &Emulator, scope: &str) -> String {
    let (status, _, body) = post_form(
        &emulator.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SECRET_APP),
            ("client_secret", SECRET),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// A JWT's header and claims, read without checking anything.
fn decoded(token: &str) -> (Value, Value) {
    let part = |n: usize| -> Value {
        let text = token.split('.').nth(n).expect("three parts");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).expect("base64url")).expect("JSON")
    };
    (part(0), part(1))
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A client assertion as certificate-credentials.md describes it, signed with `key_pem`; the
/// header names `certificate_pem` by `x5t#S256` (or, with `legacy`, by `x5t`).
fn client_assertion(
    key_pem: &str,
    certificate_pem: &str,
    alg: Algorithm,
    legacy: bool,
    claims: Value,
) -> String {
    let certificate = AppCertificate::load(certificate_pem, None).unwrap();
    let mut header = Header::new(alg);
    header.typ = Some("JWT".into());
    if legacy {
        header.x5t = Some(certificate.x5t());
    } else {
        header.x5t_s256 = Some(certificate.x5t_s256());
    }
    let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn assertion_claims(emulator: &Emulator) -> Value {
    let now = now();
    json!({
        "aud": emulator.token_url(),
        "iss": CERT_APP,
        "sub": CERT_APP,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    })
}

async fn redeem_assertion(emulator: &Emulator, assertion: &str) -> (StatusCode, HeaderMap, Value) {
    redeem_assertion_for(emulator, CERT_APP, assertion).await
}

async fn redeem_assertion_for(
    emulator: &Emulator,
    client_id: &str,
    assertion: &str,
) -> (StatusCode, HeaderMap, Value) {
    post_form(
        &emulator.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await
}

/// A Graph call with a bearer token: (status, headers, JSON body or null).
async fn graph(
    emulator: &Emulator,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut request = Client::new().request(method, format!("{}{path}", emulator.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn user_path(endpoint: &str) -> String {
    format!("/beta/users/{MEGAN}/authentication/{endpoint}")
}

// ---------------------------------------------------------------------------------------------
// Client credentials: secret.

#[tokio::test]
async fn a_client_secret_gets_a_graph_shaped_app_token_graph_accepts() {
    let emulator = start().await;
    let (status, headers, body) = post_form(
        &emulator.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SECRET_APP),
            ("client_secret", SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store, no-cache");
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["access_token", "expires_in", "ext_expires_in", "token_type"]
    );
    assert_eq!(
        (
            &body["token_type"],
            &body["expires_in"],
            &body["ext_expires_in"]
        ),
        (&json!("Bearer"), &json!(3599), &json!(3599))
    );

    let token = body["access_token"].as_str().unwrap();
    let (header, claims) = decoded(token);
    assert_eq!(
        (&header["typ"], &header["alg"]),
        (&json!("JWT"), &json!("RS256"))
    );
    assert!(header["kid"].is_string());
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(
        claims["iss"],
        format!("https://sts.windows.net/{TENANT_ID}/")
    );
    assert_eq!(claims["tid"], TENANT_ID);
    assert_eq!(claims["appid"], SECRET_APP);
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["appidacr"], "1");
    assert_eq!(
        claims["roles"],
        json!(["UserAuthenticationMethod.ReadWrite.All", "Policy.Read.All"])
    );
    assert_eq!(claims["oid"], claims["sub"]);
    assert!(claims["uti"].is_string() && claims["scp"].is_null());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3599
    );

    let (status, _, body) = graph(
        &emulator,
        Method::GET,
        &user_path("signInPreferences"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(emulator.stats().tokens_issued, 1);
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_tenant_may_be_named_by_domain_and_the_resource_may_be_the_emulator() {
    let emulator = start().await;
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        emulator.url(),
        DOMAIN.to_uppercase()
    );
    let scope = format!("{}/.default", emulator.url());
    let (status, _, body) = post_form(
        &url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SECRET_APP),
            ("client_secret", SECRET),
            ("scope", &scope),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(decoded(token).1["aud"], emulator.url());
    let (status, _, _) = graph(
        &emulator,
        Method::GET,
        &user_path("requirements"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    emulator.shutdown().await;
}

#[tokio::test]
async fn client_credentials_are_refused_as_entra_refuses_them() {
    let emulator = start().await;
    let url = emulator.token_url();
    let graph_default = "https://graph.microsoft.com/.default";
    let ask = |client_id: &'static str, secret: &'static str, scope: &'static str| {
        let url = url.clone();
        async move {
            post_form(
                &url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    assert_refused(
        &ask(SECRET_APP, "wrong", graph_default).await,
        401,
        "invalid_client",
        7000215,
    );
    let unknown = ask(
        "2b1a8e61-0000-4000-8000-0000000000ff",
        SECRET,
        graph_default,
    )
    .await;
    assert_refused(&unknown, 400, "unauthorized_client", 700016);
    assert!(
        unknown.2["error_description"]
            .as_str()
            .unwrap()
            .contains(DOMAIN)
    );
    assert_refused(
        &ask(
            SECRET_APP,
            SECRET,
            "https://graph.microsoft.com/User.Read.All",
        )
        .await,
        400,
        "invalid_scope",
        1002012,
    );
    assert_refused(
        &ask(
            SECRET_APP,
            SECRET,
            "https://graph.microsoft.com/.default https://management.azure.com/.default",
        )
        .await,
        400,
        "invalid_scope",
        700022,
    );
    assert_refused(
        &ask(SECRET_APP, SECRET, "https://vault.azure.net/.default").await,
        400,
        "invalid_resource",
        500011,
    );

    let other_tenant = format!(
        "{}/fabrikam.onmicrosoft.com/oauth2/v2.0/token",
        emulator.url()
    );
    let answer = post_form(
        &other_tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SECRET_APP),
            ("client_secret", SECRET),
            ("scope", graph_default),
        ],
    )
    .await;
    assert_refused(&answer, 400, "invalid_request", 90002);
    assert!(
        answer.2["error_description"]
            .as_str()
            .unwrap()
            .contains("fabrikam.onmicrosoft.com")
    );

    let no_credential = post_form(
        &url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SECRET_APP),
            ("scope", graph_default),
        ],
    )
    .await;
    assert_refused(&no_credential, 401, "invalid_client", 7000218);
    let no_scope = post_form(
        &url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SECRET_APP),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_refused(&no_scope, 400, "invalid_request", 900144);
    let common = format!("{}/common/oauth2/v2.0/token", emulator.url());
    let answer = post_form(
        &common,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SECRET_APP),
            ("client_secret", SECRET),
            ("scope", graph_default),
        ],
    )
    .await;
    assert_refused(&answer, 400, "invalid_request", 50059);
    let answer = post_form(&url, &[("grant_type", "password")]).await;
    assert_refused(&answer, 400, "unsupported_grant_type", 70003);

    // A GET is not a token request.
    let response = Client::new().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_codes"], json!([900561]));
    assert_eq!(emulator.stats().tokens_issued, 0);
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_correlation_id_is_the_client_request_id() {
    let emulator = start().await;
    let id = "6a2b3c4d-0000-4000-8000-0000000000aa";
    let response = Client::new()
        .post(emulator.token_url())
        .header("client-request-id", id)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", SECRET_APP),
            ("client_secret", "x"),
            ("scope", "x/.default"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["correlation_id"], id);
    assert!(body["error_description"].as_str().unwrap().contains(id));
    emulator.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Client credentials: certificate assertions.

#[tokio::test]
async fn certificate_assertions_ps256_with_x5t_s256_and_rs256_with_x5t_are_accepted() {
    let emulator = start().await;
    let (certificate, key) = app_certificate();
    for (alg, legacy) in [(Algorithm::PS256, false), (Algorithm::RS256, true)] {
        let assertion =
            client_assertion(key, certificate, alg, legacy, assertion_claims(&emulator));
        let (status, _, body) = redeem_assertion(&emulator, &assertion).await;
        assert_eq!(status, StatusCode::OK, "{alg:?}: {body}");
        let (_, claims) = decoded(body["access_token"].as_str().unwrap());
        assert_eq!(
            (&claims["appid"], &claims["appidacr"]),
            (&json!(CERT_APP), &json!("2"))
        );
    }
    // The audience may name the tenant by its domain as well.
    let mut claims = assertion_claims(&emulator);
    claims["aud"] = json!(format!("{}/{DOMAIN}/oauth2/v2.0/token", emulator.url()));
    let assertion = client_assertion(key, certificate, Algorithm::PS256, false, claims);
    assert_eq!(
        redeem_assertion(&emulator, &assertion).await.0,
        StatusCode::OK
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn certificate_assertions_are_refused_as_entra_refuses_them() {
    let emulator = start().await;
    let (certificate, key) = app_certificate();
    let sign = |claims: Value| client_assertion(key, certificate, Algorithm::PS256, false, claims);

    let mut claims = assertion_claims(&emulator);
    claims["aud"] = json!("https://login.microsoftonline.com/common/oauth2/v2.0/token");
    assert_refused(
        &redeem_assertion(&emulator, &sign(claims)).await,
        401,
        "invalid_client",
        700023,
    );

    let mut claims = assertion_claims(&emulator);
    claims["exp"] = json!(now() - 10);
    let expired = redeem_assertion(&emulator, &sign(claims)).await;
    assert_refused(&expired, 401, "invalid_client", 700024);
    assert!(
        expired.2["error_description"]
            .as_str()
            .unwrap()
            .contains("Current time: ")
    );

    let mut claims = assertion_claims(&emulator);
    claims["nbf"] = json!(now() + 120);
    assert_refused(
        &redeem_assertion(&emulator, &sign(claims)).await,
        401,
        "invalid_client",
        700024,
    );

    let mut claims = assertion_claims(&emulator);
    claims["sub"] = json!(SECRET_APP);
    assert_refused(
        &redeem_assertion(&emulator, &sign(claims)).await,
        401,
        "invalid_client",
        700021,
    );

    // A certificate the app does not have.
    let (stranger, stranger_key) = stranger_certificate();
    let unknown = client_assertion(
        stranger_key,
        stranger,
        Algorithm::PS256,
        false,
        assertion_claims(&emulator),
    );
    let answer = redeem_assertion(&emulator, &unknown).await;
    assert_refused(&answer, 401, "invalid_client", 700027);
    assert!(
        answer.2["error_description"]
            .as_str()
            .unwrap()
            .contains("The key was not found")
    );

    // The app's certificate named in the header, another key's signature.
    let forged = client_assertion(
        stranger_key,
        certificate,
        Algorithm::PS256,
        false,
        assertion_claims(&emulator),
    );
    let answer = redeem_assertion(&emulator, &forged).await;
    assert_refused(&answer, 401, "invalid_client", 700027);
    assert!(
        answer.2["error_description"]
            .as_str()
            .unwrap()
            .contains("signature validation")
    );

    // Not a JWT at all.
    assert_refused(
        &redeem_assertion(&emulator, "not-a-jwt").await,
        401,
        "invalid_client",
        50027,
    );
    let answer = post_form(
        &emulator.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CERT_APP),
            ("client_assertion_type", "password"),
            ("client_assertion", "x.y.z"),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_refused(&answer, 400, "invalid_request", 90023);
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused_with_its_validity() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["old".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let old = params.self_signed(&key).unwrap().pem();
    let emulator = start_with(Options {
        certificate_pem: old.clone(),
        ..Options::default()
    })
    .await;
    let assertion = client_assertion(
        &key.serialize_pem(),
        &old,
        Algorithm::PS256,
        false,
        assertion_claims(&emulator),
    );
    let answer = redeem_assertion(&emulator, &assertion).await;
    assert_refused(&answer, 401, "invalid_client", 700027);
    let description = answer.2["error_description"].as_str().unwrap();
    assert!(
        description.contains("The key used is expired") && description.contains("End=01/01/2020"),
        "{description}"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_reused_or_long_lived_assertion_passes_as_on_entra_unless_strict() {
    let (certificate, key) = app_certificate();
    for strict in [false, true] {
        let emulator = start_with(Options {
            strict,
            ..Options::default()
        })
        .await;
        let assertion = client_assertion(
            key,
            certificate,
            Algorithm::PS256,
            false,
            assertion_claims(&emulator),
        );
        assert_eq!(
            redeem_assertion(&emulator, &assertion).await.0,
            StatusCode::OK
        );
        let again = redeem_assertion(&emulator, &assertion).await;
        let mut long = assertion_claims(&emulator);
        long["exp"] = json!(now() + 3600);
        let long = redeem_assertion(
            &emulator,
            &client_assertion(key, certificate, Algorithm::PS256, false, long),
        )
        .await;
        if strict {
            assert_refused(&again, 401, "invalid_client", 50013);
            assert_refused(&long, 401, "invalid_client", 700024);
        } else {
            assert_eq!((again.0, long.0), (StatusCode::OK, StatusCode::OK));
        }
        emulator.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Client credentials: workload identity federation.

/// An external token with any claims (its signature is never checked).
fn external_token(claims: Value) -> String {
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[tokio::test]
async fn a_federated_assertion_is_exchanged_and_mismatches_are_refused() {
    let emulator = start().await;
    let good = federated_assertion(SUBJECT, GITHUB, Duration::from_secs(300));
    let (status, _, body) = redeem_assertion_for(&emulator, FED_APP, &good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, claims) = decoded(body["access_token"].as_str().unwrap());
    assert_eq!(
        (&claims["appid"], &claims["roles"]),
        (&json!(FED_APP), &json!(["Policy.Read.All"]))
    );

    let other_subject = federated_assertion(
        "repo:contoso/mfa:pull_request",
        GITHUB,
        Duration::from_secs(300),
    );
    assert_refused(
        &redeem_assertion_for(&emulator, FED_APP, &other_subject).await,
        401,
        "invalid_client",
        700213,
    );
    let other_issuer = federated_assertion(SUBJECT, "https://gitlab.com", Duration::from_secs(300));
    assert_refused(
        &redeem_assertion_for(&emulator, FED_APP, &other_issuer).await,
        401,
        "invalid_client",
        700211,
    );
    let now = now();
    let wrong_audience = external_token(
        json!({"iss": GITHUB, "sub": SUBJECT, "aud": "api://AzureADMyOrg", "nbf": now, "exp": now + 300}),
    );
    assert_refused(
        &redeem_assertion_for(&emulator, FED_APP, &wrong_audience).await,
        401,
        "invalid_client",
        700212,
    );
    let expired = external_token(
        json!({"iss": GITHUB, "sub": SUBJECT, "aud": FEDERATION_AUDIENCE, "nbf": now - 600, "exp": now - 300}),
    );
    assert_refused(
        &redeem_assertion_for(&emulator, FED_APP, &expired).await,
        401,
        "invalid_client",
        700024,
    );
    // An app without a federated credential.
    assert_refused(
        &redeem_assertion_for(&emulator, SECRET_APP, &good).await,
        401,
        "invalid_client",
        70021,
    );
    emulator.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Device code and refresh token.

async fn device_code(emulator: &Emulator, client_id: &str, scope: &str) -> Value {
    let (status, _, body) = post_form(
        &format!("{}/organizations/oauth2/v2.0/devicecode", emulator.url()),
        &[("client_id", client_id), ("scope", scope)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn poll(
    emulator: &Emulator,
    client_id: &str,
    device_code: &str,
) -> (StatusCode, HeaderMap, Value) {
    post_form(
        &format!("{}/organizations/oauth2/v2.0/token", emulator.url()),
        &[
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", client_id),
            ("device_code", device_code),
        ],
    )
    .await
}

const ADMIN_SCOPE: &str = "https://graph.microsoft.com/UserAuthenticationMethod.ReadWrite.All \
                           https://graph.microsoft.com/Policy.ReadWrite.AuthenticationMethod \
                           https://graph.microsoft.com/User.Read.All offline_access";

#[tokio::test]
async fn a_device_code_is_approved_on_the_configured_poll_with_the_consented_scopes() {
    let emulator = start().await;
    let code = device_code(&emulator, PUBLIC_CLIENT, ADMIN_SCOPE).await;
    let user_code = code["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(
        code["verification_uri"],
        "https://microsoft.com/devicelogin"
    );
    assert_eq!(
        (&code["expires_in"], &code["interval"]),
        (&json!(900), &json!(0))
    );
    assert_eq!(
        code["message"],
        format!(
            "To sign in, use a web browser to open the page https://microsoft.com/devicelogin \
             and enter the code {user_code} to authenticate."
        )
    );
    let device = code["device_code"].as_str().unwrap();
    for _ in 0..2 {
        assert_refused(
            &poll(&emulator, PUBLIC_CLIENT, device).await,
            400,
            "authorization_pending",
            70016,
        );
    }
    let (status, _, body) = poll(&emulator, PUBLIC_CLIENT, device).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // User.Read.All was asked for but not consented to: it is not granted.
    assert_eq!(
        body["scope"],
        "UserAuthenticationMethod.ReadWrite.All Policy.ReadWrite.AuthenticationMethod"
    );
    assert_eq!(
        (
            &body["token_type"],
            &body["expires_in"],
            &body["ext_expires_in"]
        ),
        (&json!("Bearer"), &json!(3599), &json!(3599))
    );
    assert!(body["refresh_token"].is_string());
    let token = body["access_token"].as_str().unwrap();
    let (_, claims) = decoded(token);
    assert_eq!(claims["idtyp"], "user");
    assert_eq!(claims["upn"], "admin@contoso.com");
    assert_eq!(claims["oid"], ADMIN_ID);
    assert_eq!(claims["appid"], PUBLIC_CLIENT);
    assert_eq!(claims["scp"], body["scope"]);

    // The delegated permissions decide, as roles do for an app.
    let write = Some(json!({"perUserMfaState": "enforced"}));
    let (status, _, _) = graph(
        &emulator,
        Method::PATCH,
        &user_path("requirements"),
        Some(token),
        write,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, body) = graph(
        &emulator,
        Method::GET,
        &format!("/beta/users/{MEGAN}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // The code was used up.
    assert_refused(
        &poll(&emulator, PUBLIC_CLIENT, device).await,
        400,
        "invalid_grant",
        90120,
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn device_code_polls_are_refused_as_entra_refuses_them() {
    let emulator = start().await;
    assert_refused(
        &poll(&emulator, PUBLIC_CLIENT, "no-such-code").await,
        400,
        "invalid_grant",
        7000014,
    );
    // Another client cannot redeem someone else's code.
    let code = device_code(&emulator, PUBLIC_CLIENT, ADMIN_SCOPE).await;
    let device = code["device_code"].as_str().unwrap();
    assert_refused(
        &poll(&emulator, "11111111-0000-4000-8000-000000000000", device).await,
        400,
        "invalid_grant",
        7000014,
    );
    // A confidential app polls without its credential.
    let code = device_code(&emulator, SECRET_APP, ADMIN_SCOPE).await;
    let device = code["device_code"].as_str().unwrap();
    assert_refused(
        &poll(&emulator, SECRET_APP, device).await,
        401,
        "invalid_client",
        7000218,
    );
    // A scope for a resource Entra does not know.
    let (status, _, body) = post_form(
        &format!("{}/common/oauth2/v2.0/devicecode", emulator.url()),
        &[
            ("client_id", PUBLIC_CLIENT),
            ("scope", "api://unknown/Read offline_access"),
        ],
    )
    .await;
    assert_eq!(
        (status, &body["error_codes"]),
        (StatusCode::BAD_REQUEST, &json!([500011]))
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn nothing_consented_is_refused_at_approval() {
    let emulator = start_with(Options {
        polls: 1,
        ..Options::default()
    })
    .await;
    let code = device_code(
        &emulator,
        PUBLIC_CLIENT,
        "https://graph.microsoft.com/Mail.Read",
    )
    .await;
    let answer = poll(
        &emulator,
        PUBLIC_CLIENT,
        code["device_code"].as_str().unwrap(),
    )
    .await;
    assert_refused(&answer, 400, "invalid_grant", 65001);
    emulator.shutdown().await;
}

#[tokio::test]
async fn polling_faster_than_the_interval_slows_down_and_at_the_interval_never() {
    let emulator = start_with(Options {
        interval: 1,
        polls: 2,
        ..Options::default()
    })
    .await;
    let code = device_code(&emulator, PUBLIC_CLIENT, ADMIN_SCOPE).await;
    assert_eq!(code["interval"], 1);
    let device = code["device_code"].as_str().unwrap();
    assert_refused(
        &poll(&emulator, PUBLIC_CLIENT, device).await,
        400,
        "authorization_pending",
        70016,
    );
    let (status, _, body) = poll(&emulator, PUBLIC_CLIENT, device).await;
    assert_eq!(
        (status, &body["error"], &body["error_codes"]),
        (StatusCode::BAD_REQUEST, &json!("slow_down"), &json!([])),
        "{body}"
    );
    // Exactly the interval after the last poll: the second counted poll approves.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, _, body) = poll(&emulator, PUBLIC_CLIENT, device).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_device_code_expires_after_expires_in() {
    let emulator = start_with(Options {
        device_code_expires_in: 1,
        ..Options::default()
    })
    .await;
    let code = device_code(&emulator, PUBLIC_CLIENT, ADMIN_SCOPE).await;
    assert_eq!(code["expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let answer = poll(
        &emulator,
        PUBLIC_CLIENT,
        code["device_code"].as_str().unwrap(),
    )
    .await;
    assert_refused(&answer, 400, "expired_token", 70020);
    emulator.shutdown().await;
}

/// Signs the admin in (one poll) and returns the token answer.
async fn admin_tokens(emulator: &Emulator, scope: &str) -> Value {
    let code = device_code(emulator, PUBLIC_CLIENT, scope).await;
    let device = code["device_code"].as_str().unwrap();
    loop {
        let (status, _, body) = poll(emulator, PUBLIC_CLIENT, device).await;
        if status == StatusCode::OK {
            return body;
        }
        assert_eq!(body["error"], "authorization_pending", "{body}");
    }
}

async fn refresh(
    emulator: &Emulator,
    refresh_token: &str,
    scope: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", PUBLIC_CLIENT),
        ("refresh_token", refresh_token),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    post_form(
        &format!("{}/organizations/oauth2/v2.0/token", emulator.url()),
        &form,
    )
    .await
}

#[tokio::test]
async fn a_refresh_token_rotates_and_the_old_one_stays_valid_until_revoked() {
    let emulator = start().await;
    let first = admin_tokens(&emulator, &format!("{ADMIN_SCOPE} openid profile")).await;
    assert!(first["id_token"].is_string());
    assert_eq!(
        first["scope"],
        "UserAuthenticationMethod.ReadWrite.All Policy.ReadWrite.AuthenticationMethod openid profile"
    );
    let old = first["refresh_token"].as_str().unwrap();

    let (status, _, second) = refresh(
        &emulator,
        old,
        Some("https://graph.microsoft.com/Policy.ReadWrite.AuthenticationMethod offline_access"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let new = second["refresh_token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(second["scope"], "Policy.ReadWrite.AuthenticationMethod");
    // Without a scope, a refresh gets again what the token stood for.
    let (status, _, third) = refresh(&emulator, old, None).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_eq!(third["scope"], first["scope"]);
    assert_eq!(refresh(&emulator, new, None).await.0, StatusCode::OK);

    assert_refused(
        &refresh(&emulator, "1.not-a-token", None).await,
        400,
        "invalid_grant",
        70000,
    );
    emulator.revoke_refresh_tokens();
    assert_refused(
        &refresh(&emulator, new, None).await,
        400,
        "invalid_grant",
        50173,
    );
    emulator.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Managed identity.

#[tokio::test]
async fn imds_answers_with_strings_and_requires_the_metadata_header() {
    let emulator = start().await;
    let url = format!(
        "{}?api-version=2018-02-01&resource=https%3A%2F%2Fgraph.microsoft.com%2F",
        emulator.imds_endpoint()
    );
    let get = |metadata: Option<&'static str>, url: String| async move {
        let mut request = Client::new().get(url);
        if let Some(value) = metadata {
            request = request.header("Metadata", value);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    };
    for metadata in [None, Some("True")] {
        let (status, body) = get(metadata, url.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"error": "bad_request_102", "error_description": "Required metadata header not specified"})
        );
    }
    let (status, body) = get(Some("true"), url.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for field in ["expires_in", "expires_on", "ext_expires_in", "not_before"] {
        assert!(
            body[field]
                .as_str()
                .is_some_and(|v| v.parse::<i64>().is_ok()),
            "{field}: {body}"
        );
    }
    assert_eq!(
        (
            &body["expires_in"],
            &body["resource"],
            &body["token_type"],
            &body["client_id"]
        ),
        (
            &json!("3599"),
            &json!("https://graph.microsoft.com/"),
            &json!("Bearer"),
            &json!(MI_APP)
        )
    );
    let expires_on: i64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    let not_before: i64 = body["not_before"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_on - not_before, 3599);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(decoded(token).1["appid"], MI_APP);
    // UserAuthenticationMethod.Read.All reads and does not write.
    let (status, _, _) = graph(
        &emulator,
        Method::GET,
        &user_path("methods"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = graph(
        &emulator,
        Method::PATCH,
        &user_path("signInPreferences"),
        Some(token),
        Some(json!({"isSystemPreferredAuthenticationMethodEnabled": true})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Asking for another user-assigned identity finds none.
    let (status, body) = get(Some("true"), format!("{url}&client_id={SECRET_APP}")).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "Identity not found"})
        )
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn without_a_managed_identity_imds_finds_none() {
    let emulator = start_with(Options {
        managed_identity: false,
        ..Options::default()
    })
    .await;
    let response = Client::new()
        .get(format!(
            "{}?api-version=2018-02-01&resource=https://graph.microsoft.com",
            emulator.imds_endpoint()
        ))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error_description"],
        "Identity not found"
    );
    emulator.shutdown().await;
}

async fn app_service(
    emulator: &Emulator,
    header: Option<&str>,
    api_version: &str,
) -> (StatusCode, Value) {
    let mut request = Client::new().get(format!(
        "{}?api-version={api_version}&resource=https://graph.microsoft.com",
        emulator.identity_endpoint()
    ));
    if let Some(value) = header {
        request = request.header("X-IDENTITY-HEADER", value);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn app_service_checks_its_identity_header_and_answers_its_shape() {
    let emulator = start().await;
    assert_eq!(
        app_service(&emulator, None, "2019-08-01").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = app_service(&emulator, Some("any-value"), "2019-08-01").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "access_token",
            "client_id",
            "expires_on",
            "resource",
            "token_type"
        ]
    );
    assert!(
        body["expires_on"]
            .as_str()
            .is_some_and(|v| v.parse::<i64>().is_ok())
    );
    assert_eq!(
        (&body["client_id"], &body["resource"]),
        (&json!(MI_APP), &json!("https://graph.microsoft.com"))
    );
    assert_eq!(
        app_service(&emulator, Some("any-value"), "2017-09-01")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    emulator.shutdown().await;

    let emulator = start_with(Options {
        identity_header: Some("the-host-header"),
        ..Options::default()
    })
    .await;
    assert_eq!(
        app_service(&emulator, Some("another"), "2019-08-01")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app_service(&emulator, Some("the-host-header"), "2019-08-01")
            .await
            .0,
        StatusCode::OK
    );
    emulator.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Graph: 401.

#[track_caller]
fn assert_unauthorized(answer: &(StatusCode, HeaderMap, Value), message: &str) {
    let (status, headers, body) = answer;
    assert_eq!(*status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        body["error"]["code"], "InvalidAuthenticationToken",
        "{body}"
    );
    assert_eq!(body["error"]["message"], message, "{body}");
    let inner = &body["error"]["innerError"];
    assert!(
        inner["date"].is_string()
            && inner["request-id"].is_string()
            && inner["client-request-id"].is_string(),
        "{body}"
    );
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"\", authorization_uri=")
            && challenge.contains("client_id=\"00000003-0000-0000-c000-000000000000\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn graph_refuses_missing_malformed_foreign_and_misaddressed_tokens() {
    let emulator = start().await;
    let path = user_path("signInPreferences");
    assert_unauthorized(
        &graph(&emulator, Method::GET, &path, None, None).await,
        "Access token is empty.",
    );
    let answer = graph(
        &emulator,
        Method::GET,
        &path,
        Some("test-token-not-a-secret"),
        None,
    )
    .await;
    let message = answer.2["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("IDX14100: JWT is not well formed, there are no dots (.)."),
        "{message}"
    );
    assert_unauthorized(&answer, message);
    let answer = graph(&emulator, Method::GET, &path, Some("a.b.c"), None).await;
    assert_unauthorized(&answer, "Access token validation failure.");

    // A token another emulator signed, for Graph, in the same tenant: a foreign signature.
    let other = start().await;
    let foreign = secret_token(&other, "https://graph.microsoft.com/.default").await;
    other.shutdown().await;
    assert_unauthorized(
        &graph(&emulator, Method::GET, &path, Some(&foreign), None).await,
        "Access token validation failure.",
    );

    // A token for the emulator as reached under another name is not for this one.
    let port = emulator.addr().port();
    let response = Client::new()
        .post(emulator.token_url())
        .header(reqwest::header::HOST, format!("localhost:{port}"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", SECRET_APP),
            ("client_secret", SECRET),
            ("scope", &format!("http://localhost:{port}/.default")),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let elsewhere = body["access_token"].as_str().expect("token for localhost");
    assert_unauthorized(
        &graph(&emulator, Method::GET, &path, Some(elsewhere), None).await,
        "Access token validation failure. Invalid audience.",
    );

    // v1.0 and unknown paths need a token as much as beta does.
    assert_unauthorized(
        &graph(&emulator, Method::GET, "/v1.0/organization", None, None).await,
        "Access token is empty.",
    );
    assert_eq!(emulator.stats().unauthorized, 6);
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let emulator = start_with(Options {
        lifetime: 1,
        ..Options::default()
    })
    .await;
    let token = secret_token(&emulator, "https://graph.microsoft.com/.default").await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let answer = graph(
        &emulator,
        Method::GET,
        &user_path("requirements"),
        Some(&token),
        None,
    )
    .await;
    assert_unauthorized(&answer, "Access token has expired or is not yet valid.");
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_signing_key_is_published_and_verifies_the_tokens() {
    let emulator = start().await;
    let token = secret_token(&emulator, "https://graph.microsoft.com/.default").await;
    let config: Value = Client::new()
        .get(format!(
            "{}/{TENANT_ID}/v2.0/.well-known/openid-configuration",
            emulator.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["token_endpoint"], emulator.token_url());
    assert_eq!(
        config["device_authorization_endpoint"],
        emulator.device_code_url()
    );
    let keys: Value = Client::new()
        .get(config["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &keys["keys"][0];
    assert_eq!(key["kid"], decoded(&token).0["kid"]);
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap(),
        key["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
    validation.set_audience(&["https://graph.microsoft.com"]);
    validation.set_issuer(&[format!("https://sts.windows.net/{TENANT_ID}/")]);
    let data = jsonwebtoken::decode::<Value>(&token, &decoding, &validation)
        .expect("the published key verifies the token");
    assert_eq!(data.claims["appid"], SECRET_APP);
    emulator.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Graph: 403, per endpoint, alone and batched.

#[tokio::test]
async fn each_endpoint_needs_its_own_permission() {
    let emulator = start().await;
    // UserAuthenticationMethod.ReadWrite.All and Policy.Read.All.
    let token = secret_token(&emulator, "https://graph.microsoft.com/.default").await;
    let token = Some(token.as_str());
    let (status, _, _) = graph(
        &emulator,
        Method::PATCH,
        &user_path("signInPreferences"),
        token,
        Some(json!({"userPreferredMethodForSecondaryAuthentication": "push"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, body) = graph(
        &emulator,
        Method::PATCH,
        &user_path("requirements"),
        token,
        Some(json!({"perUserMfaState": "enforced"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "accessDenied");
    assert_eq!(body["error"]["message"], "Request Authorization failed");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    let (status, _, body) = graph(
        &emulator,
        Method::GET,
        &user_path("requirements"),
        token,
        None,
    )
    .await;
    assert_eq!(
        (status, &body["perUserMfaState"]),
        (StatusCode::OK, &json!("disabled"))
    );
    let (status, _, body) = graph(&emulator, Method::GET, "/beta/organization", token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(
        body["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    // Authorization comes before the lookup: an unknown user is still a 403 without permission.
    let (status, _, _) = graph(
        &emulator,
        Method::GET,
        "/beta/users/nobody@contoso.com",
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = graph(
        &emulator,
        Method::GET,
        "/beta/policies/authenticationMethodsPolicy",
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A refused call changed nothing and cost nothing.
    assert_eq!(
        emulator.tenant().users[0].per_user_mfa_state,
        mfactl_core::model::PerUserMfaState::Disabled
    );
    let stats = emulator.stats();
    assert_eq!((stats.forbidden, stats.reads, stats.writes), (3, 2, 1));
    emulator.shutdown().await;
}

async fn post_batch(
    emulator: &Emulator,
    token: Option<&str>,
    requests: Value,
) -> (StatusCode, Value) {
    let (status, _, body) = graph(
        emulator,
        Method::POST,
        "/beta/$batch",
        token,
        Some(json!({"requests": requests})),
    )
    .await;
    (status, body)
}

fn item_status(batch: &Value, id: &str) -> (u16, Value) {
    let item = batch["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == id)
        .unwrap_or_else(|| panic!("no item {id}: {batch}"));
    (
        item["status"].as_u64().unwrap() as u16,
        item["body"].clone(),
    )
}

#[tokio::test]
async fn batch_items_are_authorized_one_by_one() {
    let emulator = start().await;
    let token = secret_token(&emulator, "https://graph.microsoft.com/.default").await;
    let requests = json!([
        {"id": "1", "method": "PATCH", "url": format!("/users/{MEGAN}/authentication/signInPreferences"), "body": {"userPreferredMethodForSecondaryAuthentication": "push"}, "headers": {"Content-Type": "application/json"}},
        {"id": "2", "method": "PATCH", "url": format!("/users/{MEGAN}/authentication/requirements"), "body": {"perUserMfaState": "enforced"}, "headers": {"Content-Type": "application/json"}},
        {"id": "3", "method": "GET", "url": format!("/users/{MEGAN}/authentication/requirements")},
        {"id": "4", "method": "GET", "url": "/organization"},
    ]);
    let (status, batch) = post_batch(&emulator, Some(&token), requests.clone()).await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    assert_eq!(item_status(&batch, "1").0, 204);
    let (status, body) = item_status(&batch, "2");
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("accessDenied"))
    );
    assert!(
        body["error"]["innerError"]["request-id"].is_string(),
        "{body}"
    );
    assert_eq!(item_status(&batch, "3").0, 200);
    assert_eq!(item_status(&batch, "4").0, 403);
    assert_eq!(emulator.stats().forbidden, 2);

    // A token Graph refuses fails every item with its own 401; no token fails the batch.
    let (status, batch) = post_batch(&emulator, Some("a.b.c"), requests.clone()).await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    for id in ["1", "2", "3", "4"] {
        let (status, body) = item_status(&batch, id);
        assert_eq!(
            (status, &body["error"]["code"]),
            (401, &json!("InvalidAuthenticationToken")),
            "{batch}"
        );
    }
    let (status, body) = post_batch(&emulator, None, requests).await;
    assert_eq!(
        (status, &body["error"]["message"]),
        (StatusCode::UNAUTHORIZED, &json!("Access token is empty."))
    );
    assert_eq!(emulator.stats().unauthorized, 5);
    emulator.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Without `auth`.

#[tokio::test]
async fn without_an_auth_section_any_token_passes_and_there_is_no_sign_in() {
    let tenant = Tenant::from_yaml_str(&format!(
        "tenantId: {TENANT_ID}\ndomain: {DOMAIN}\nusers:\n  - id: {MEGAN}\n    userPrincipalName: megan@contoso.com\n"
    ))
    .unwrap();
    let emulator = Emulator::start(
        tenant,
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let (status, _, _) = graph(
        &emulator,
        Method::GET,
        &user_path("requirements"),
        Some("anything-at-all"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = post_form(
        &emulator.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SECRET_APP),
            ("client_secret", SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    // The path is Graph's to answer, as it was before sign-in existed: no token, 401.
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    let stats = emulator.stats();
    assert_eq!((stats.tokens_issued, stats.forbidden), (0, 0));
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_admin_endpoints_need_a_token_and_never_serve_the_auth_section() {
    let emulator = start().await;
    for endpoint in ["tenant", "stats"] {
        for token in [None, Some("not-a-token-it-issued")] {
            let mut request = Client::new().get(format!("{}/_emulator/{endpoint}", emulator.url()));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{endpoint}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
        }
    }
    let token = secret_token(&emulator, "https://graph.microsoft.com/.default").await;
    let served: Value = Client::new()
        .get(format!("{}/_emulator/tenant", emulator.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(served.get("auth").is_none(), "{served}");
    assert!(!served.to_string().contains(SECRET));
    assert!(emulator.tenant().auth.is_some());
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_sign_in_example_loads_and_its_secret_app_signs_in() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tenant-signin.yaml");
    let (tenant, notes) = Tenant::load_with_notes(&path).expect("the example loads");
    assert!(notes.is_empty(), "{notes:?}");
    let auth = tenant.auth.as_ref().expect("an auth section");
    assert!(
        auth.managed_identity().is_some() && auth.admin_for_public_client(PUBLIC_CLIENT) == Some(0)
    );
    let emulator = Emulator::start(
        tenant,
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let token = secret_token(&emulator, "https://graph.microsoft.com/.default").await;
    let (status, _, _) = graph(
        &emulator,
        Method::GET,
        "/beta/users/megan@contoso.com/authentication/signInPreferences",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    emulator.shutdown().await;
}

#[tokio::test]
async fn conditional_access_needs_policy_read_all_and_role_assignments_their_own() {
    let emulator = start().await;
    // UserAuthenticationMethod.ReadWrite.All and Policy.Read.All.
    let token = secret_token(&emulator, "https://graph.microsoft.com/.default").await;
    let token = Some(token.as_str());
    for path in [
        "/beta/identity/conditionalAccess/policies",
        "/beta/policies/identitySecurityDefaultsEnforcementPolicy",
    ] {
        let (status, _, body) = graph(&emulator, Method::GET, path, token, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, _, body) = graph(
        &emulator,
        Method::GET,
        "/beta/roleManagement/directory/roleAssignments?$filter=roleDefinitionId%20eq%20'62e90394-69f5-4237-9190-012177145e10'",
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    // The managed identity holds UserAuthenticationMethod.Read.All only.
    let (status, body) = app_service(&emulator, Some("any"), "2019-08-01").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mi = body["access_token"].as_str().unwrap().to_owned();
    let (status, _, _) = graph(
        &emulator,
        Method::GET,
        "/beta/identity/conditionalAccess/policies",
        Some(&mi),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(emulator.stats().forbidden, 2);
    emulator.shutdown().await;
}
