//! `managed`: the managed identity of the Azure resource mfactl runs on (graph-api.md §9).
//!
//! - App Service, Functions, Container Apps, Automation set `IDENTITY_ENDPOINT` and
//!   `IDENTITY_HEADER`: `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=…` with
//!   `X-IDENTITY-HEADER` (the header is a secret: never logged). The answer's `expires_on` is a
//!   string of epoch seconds.
//! - Elsewhere (VMs, scale sets, AKS nodes): IMDS,
//!   `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`
//!   with `Metadata: true`; `expires_in`/`expires_on` are strings of seconds. Its host can be
//!   replaced with `AZURE_POD_IDENTITY_AUTHORITY_HOST`, as in the Azure SDK for Python's
//!   `ImdsCredential` (which also uses api-version 2018-02-01, like MSAL Python).
//!
//! `resource` is the Graph root without `/.default` (see [`crate::graph::cloud::resource`]);
//! `AZURE_CLIENT_ID` (or `--client-id`) picks a user-assigned identity (`client_id=`).
//! Service Fabric (`IDENTITY_SERVER_THUMBPRINT`) and Azure Arc (`IMDS_ENDPOINT`) use other
//! protocols and are refused with a message. Plain http goes only to loopback addresses and
//! IMDS's 169.254.169.254; requests never go through a proxy.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::http::{SignInHttp, TokenAnswer};
use super::settings::{
    Allow, Env, IDENTITY_ENDPOINT_ENV, IDENTITY_HEADER_ENV, IDENTITY_SERVER_THUMBPRINT_ENV,
    IMDS_ADDRESS, IMDS_ENDPOINT_ENV, IMDS_HOST_ENV, check_url, shown,
};
use super::{AccessToken, AuthError, AuthSettings, Credential, SourceKind, abbreviate};
use crate::graph::cloud;

const IMDS_HOST: &str = "http://169.254.169.254";
const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
const IMDS_API_VERSION: &str = "2018-02-01";
const APP_SERVICE_API_VERSION: &str = "2019-08-01";

enum Endpoint {
    AppService { url: Url, header: SecretString },
    Imds { url: Url },
}

/// The `managed` source.
pub struct ManagedCredential {
    endpoint: Endpoint,
    resource: String,
    /// A user-assigned identity's client id; `None`: the system-assigned identity.
    client_id: Option<String>,
    http: SignInHttp,
}

/// Whether the automatic choice should take `managed`: `IDENTITY_ENDPOINT` or an IMDS host
/// override is set, or IMDS answers a probe in time.
pub(super) fn is_configured(env: &Env) -> bool {
    if env.get(IDENTITY_ENDPOINT_ENV).is_some() || env.get(IMDS_HOST_ENV).is_some() {
        return true;
    }
    env.imds_probe()
        .is_some_and(|timeout| probe(SocketAddr::from((IMDS_ADDRESS, 80)), timeout))
}

/// Whether an HTTP server answers at `address` within `timeout`, all included. Like the Azure
/// SDKs' probe, the request lacks the `Metadata` header, so IMDS refuses it at once (400) and
/// nothing is issued; any HTTP answer means "IMDS is here". Blocking, bounded by `timeout`.
pub(super) fn probe(address: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let Ok(mut stream) = TcpStream::connect_timeout(&address, timeout) else {
        return false;
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero()
        || stream.set_write_timeout(Some(remaining)).is_err()
        || stream.set_read_timeout(Some(remaining)).is_err()
    {
        return false;
    }
    let request = format!(
        "GET {IMDS_PATH}?api-version={IMDS_API_VERSION} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        address.ip()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut start = [0u8; 5];
    stream.read_exact(&mut start).is_ok() && &start == b"HTTP/"
}

impl ManagedCredential {
    pub fn new(settings: &AuthSettings) -> Result<ManagedCredential, AuthError> {
        let env = &settings.env;
        let unsupported = |problem: String| AuthError::Misconfigured {
            kind: Some(SourceKind::Managed),
            problem,
        };
        let endpoint = match env.get(IDENTITY_ENDPOINT_ENV) {
            Some(_) if env.get(IDENTITY_SERVER_THUMBPRINT_ENV).is_some() => {
                return Err(unsupported(
                    "this is Service Fabric (IDENTITY_SERVER_THUMBPRINT is set), whose managed \
                     identity endpoint mfactl does not support; use another --auth source"
                        .to_owned(),
                ));
            }
            Some(text) => match env.get(IDENTITY_HEADER_ENV) {
                Some(header) => Endpoint::AppService {
                    url: check_url(
                        IDENTITY_ENDPOINT_ENV,
                        text,
                        Some(SourceKind::Managed),
                        Allow::LoopbackOrImds,
                    )?,
                    header: SecretString::from(header.to_owned()),
                },
                None if env.get(IMDS_ENDPOINT_ENV).is_some() => {
                    return Err(unsupported(
                        "this is Azure Arc (IDENTITY_ENDPOINT and IMDS_ENDPOINT are set), whose \
                         managed identity protocol mfactl does not support; use another --auth \
                         source"
                            .to_owned(),
                    ));
                }
                None => {
                    return Err(unsupported(format!(
                        "{IDENTITY_ENDPOINT_ENV} is set but {IDENTITY_HEADER_ENV} is not: both \
                         come from the platform (App Service, Functions, Container Apps)"
                    )));
                }
            },
            None => {
                let (origin, host) = match env.get(IMDS_HOST_ENV) {
                    Some(host) => (IMDS_HOST_ENV, host),
                    None => ("IMDS", IMDS_HOST),
                };
                let url = format!("{}{IMDS_PATH}", host.trim_end_matches('/'));
                Endpoint::Imds {
                    url: check_url(
                        origin,
                        &url,
                        Some(SourceKind::Managed),
                        Allow::LoopbackOrImds,
                    )?,
                }
            }
        };
        Ok(ManagedCredential {
            endpoint,
            resource: cloud::resource(&settings.graph_root),
            client_id: settings.client_id().map(str::to_owned),
            http: SignInHttp::local()?,
        })
    }

    #[cfg(test)]
    pub(super) fn without_backoff(mut self) -> ManagedCredential {
        self.http = self.http.without_backoff();
        self
    }

    /// The request URL (with its query) and headers.
    fn request(&self) -> (Url, HeaderMap) {
        let (mut url, api_version) = match &self.endpoint {
            Endpoint::AppService { url, .. } => (url.clone(), APP_SERVICE_API_VERSION),
            Endpoint::Imds { url } => (url.clone(), IMDS_API_VERSION),
        };
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("api-version", api_version);
            query.append_pair("resource", &self.resource);
            if let Some(client_id) = &self.client_id {
                query.append_pair("client_id", client_id);
            }
        }
        let mut headers = HeaderMap::new();
        // Required by IMDS; harmless for App Service, and Azure Automation wants it there too
        // (MSAL Python sends both).
        headers.insert("metadata", HeaderValue::from_static("true"));
        if let Endpoint::AppService { header, .. } = &self.endpoint
            && let Ok(mut value) = HeaderValue::from_str(header.expose_secret())
        {
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-identity-header"), value);
        }
        (url, headers)
    }
}

impl fmt::Debug for ManagedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = match &self.endpoint {
            Endpoint::AppService { url, .. } => format!("App Service {}", shown(url)),
            Endpoint::Imds { url } => format!("IMDS {}", shown(url)),
        };
        f.debug_struct("ManagedCredential")
            .field("endpoint", &endpoint)
            .field("identity_header", &"[redacted]")
            .field("resource", &self.resource)
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl Credential for ManagedCredential {
    fn kind(&self) -> SourceKind {
        SourceKind::Managed
    }

    fn describe(&self) -> String {
        let endpoint = match &self.endpoint {
            Endpoint::AppService { url, .. } => format!("App Service endpoint {}", shown(url)),
            Endpoint::Imds { url } => format!("IMDS {}", shown(url)),
        };
        let identity = match &self.client_id {
            Some(client_id) => format!("user-assigned identity {}", abbreviate(client_id)),
            None => "system-assigned identity".to_owned(),
        };
        format!("managed ({identity}, {endpoint})")
    }

    fn acquire(&self) -> BoxFuture<'_, Result<AccessToken, AuthError>> {
        Box::pin(async move {
            let (url, headers) = self.request();
            if matches!(self.endpoint, Endpoint::AppService { .. })
                && !headers.contains_key("x-identity-header")
            {
                return Err(AuthError::Misconfigured {
                    kind: Some(SourceKind::Managed),
                    problem: format!(
                        "{IDENTITY_HEADER_ENV} holds characters no HTTP header can carry"
                    ),
                });
            }
            let answer = self.http.get(SourceKind::Managed, &url, &headers).await?;
            let answer = TokenAnswer::read(
                SourceKind::Managed,
                "the managed identity endpoint",
                &url,
                answer,
            )?;
            Ok(answer.access)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::auth::testing::{FakeServer, epoch_in, jwt, settings};

    fn imds_answer(token: &str) -> String {
        // IMDS (2018-02-01) answers with strings for every number.
        serde_json::json!({
            "access_token": token,
            "refresh_token": "",
            "expires_in": "3599",
            "expires_on": epoch_in(Duration::from_secs(3599)).to_string(),
            "not_before": epoch_in(Duration::ZERO).to_string(),
            "resource": "https://graph.microsoft.com",
            "token_type": "Bearer",
        })
        .to_string()
    }

    #[tokio::test]
    async fn imds_is_asked_with_the_metadata_header_and_the_graph_resource() {
        let token = jwt(serde_json::json!({"roles": []}));
        let answer = imds_answer(&token);
        let server = FakeServer::start(move |_, _| (200, answer.clone())).await;
        let settings = settings(&[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &server.url)], None);
        assert!(is_configured(&settings.env));
        let credential = ManagedCredential::new(&settings).unwrap();
        assert_eq!(
            credential.describe(),
            format!(
                "managed (system-assigned identity, IMDS {}/metadata/identity/oauth2/token)",
                server.url
            )
        );
        let access = credential.acquire().await.unwrap();
        assert_eq!(access.token.expose_secret(), token);
        let left = access
            .expires_at
            .unwrap()
            .duration_since(std::time::SystemTime::now())
            .unwrap();
        assert!(left > Duration::from_secs(3500), "{left:?}");

        let request = &server.requests()[0];
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/metadata/identity/oauth2/token");
        assert_eq!(request.query("api-version"), Some("2018-02-01"));
        assert_eq!(
            request.query("resource"),
            Some("https://graph.microsoft.com")
        );
        assert_eq!(request.query("client_id"), None);
        assert_eq!(request.header("metadata"), Some("true"));
        assert_eq!(request.header("x-identity-header"), None);
    }

    #[tokio::test]
    async fn a_user_assigned_identity_is_named_by_its_client_id() {
        let server = FakeServer::start(|_, _| (200, imds_answer("opaque"))).await;
        let settings = settings(
            &[
                ("AZURE_POD_IDENTITY_AUTHORITY_HOST", &server.url),
                ("AZURE_CLIENT_ID", "5e2b0000-0000-4000-8000-000000000003"),
            ],
            None,
        );
        let credential = ManagedCredential::new(&settings).unwrap();
        assert!(
            credential
                .describe()
                .starts_with("managed (user-assigned identity 5e2b…")
        );
        credential.acquire().await.unwrap();
        assert_eq!(
            server.requests()[0].query("client_id"),
            Some("5e2b0000-0000-4000-8000-000000000003")
        );
    }

    #[tokio::test]
    async fn app_service_gets_its_identity_header_and_api_version() {
        const HEADER: &str = "4f3c1b2a-identity-header-secret";
        let expires_on = epoch_in(Duration::from_secs(86_000));
        let server = FakeServer::start(move |_, _| {
            (
                200,
                serde_json::json!({
                    "access_token": "opaque-app-service-token",
                    "expires_on": expires_on.to_string(),
                    "resource": "https://graph.microsoft.com",
                    "token_type": "Bearer",
                    "client_id": "5e2b0000-0000-4000-8000-000000000003",
                })
                .to_string(),
            )
        })
        .await;
        let endpoint = format!("{}/msi/token", server.url);
        let settings = settings(
            &[
                ("IDENTITY_ENDPOINT", &endpoint),
                ("IDENTITY_HEADER", HEADER),
            ],
            None,
        );
        let credential = ManagedCredential::new(&settings).unwrap();
        assert!(
            credential
                .describe()
                .contains(&format!("App Service endpoint {endpoint}"))
        );
        let access = credential.acquire().await.unwrap();
        assert_eq!(
            access.expires_at,
            Some(std::time::UNIX_EPOCH + Duration::from_secs(expires_on))
        );
        let request = &server.requests()[0];
        assert_eq!(request.path, "/msi/token");
        assert_eq!(request.query("api-version"), Some("2019-08-01"));
        assert_eq!(
            request.query("resource"),
            Some("https://graph.microsoft.com")
        );
        assert_eq!(request.header("x-identity-header"), Some(HEADER));
        assert!(!format!("{credential:?}").contains(HEADER));
        assert!(!credential.describe().contains(HEADER));
    }

    #[tokio::test]
    async fn imds_warming_up_is_waited_for_and_a_missing_identity_is_explained() {
        let server = FakeServer::start(|_, index| match index {
            0 => (404, "{}".to_owned()),
            1 => (503, "{}".to_owned()),
            2 => (200, imds_answer("opaque")),
            _ => (
                400,
                r#"{"error":"invalid_request","error_description":"Identity not found"}"#
                    .to_owned(),
            ),
        })
        .await;
        let settings = settings(&[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &server.url)], None);
        let credential = ManagedCredential::new(&settings).unwrap().without_backoff();
        credential.acquire().await.unwrap();
        assert_eq!(server.requests().len(), 3);
        let error = credential.acquire().await.unwrap_err().to_string();
        assert!(
            error.starts_with(
                "managed: the managed identity endpoint refused the token request (HTTP 400, \
                 invalid_request): Identity not found; check that a managed identity is assigned"
            ),
            "{error}"
        );
    }

    #[test]
    fn plain_http_goes_only_to_loopback_and_imds() {
        for endpoint in [
            "http://127.0.0.1:41741/msi/token",
            "http://localhost:8081/msi/token",
            "https://example.net/msi/token",
        ] {
            let settings = settings(
                &[("IDENTITY_ENDPOINT", endpoint), ("IDENTITY_HEADER", "h")],
                None,
            );
            ManagedCredential::new(&settings).unwrap();
        }
        let settings_for =
            |host: &str| settings(&[("AZURE_POD_IDENTITY_AUTHORITY_HOST", host)], None);
        ManagedCredential::new(&settings_for("http://169.254.169.254")).unwrap();
        ManagedCredential::new(&settings(&[], None)).unwrap();
        let error = ManagedCredential::new(&settings_for("http://10.0.0.5:2579"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("managed: AZURE_POD_IDENTITY_AUTHORITY_HOST http://10.0.0.5:2579"),
            "{error}"
        );
        assert!(error.contains("unencrypted"), "{error}");
        let settings = settings(
            &[
                ("IDENTITY_ENDPOINT", "http://10.1.2.3/msi/token"),
                ("IDENTITY_HEADER", "h"),
            ],
            None,
        );
        let error = ManagedCredential::new(&settings).unwrap_err().to_string();
        assert!(
            error.contains("IDENTITY_ENDPOINT http://10.1.2.3/msi/token would send"),
            "{error}"
        );
    }

    #[test]
    fn other_managed_identity_flavours_are_refused_by_name() {
        let cases = [
            (
                vec![
                    ("IDENTITY_ENDPOINT", "https://127.0.0.1:2377/x"),
                    ("IDENTITY_HEADER", "h"),
                    ("IDENTITY_SERVER_THUMBPRINT", "AB"),
                ],
                "Service Fabric",
            ),
            (
                vec![
                    ("IDENTITY_ENDPOINT", "http://localhost:40342/x"),
                    ("IMDS_ENDPOINT", "http://localhost:40342"),
                ],
                "Azure Arc",
            ),
            (
                vec![("IDENTITY_ENDPOINT", "http://localhost:1/x")],
                "IDENTITY_HEADER is not",
            ),
        ];
        for (vars, says) in cases {
            let error = ManagedCredential::new(&settings(&vars, None))
                .unwrap_err()
                .to_string();
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn the_probe_takes_any_http_answer_and_nothing_else() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 512];
            let n = stream.read(&mut request).unwrap();
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            request
        });
        assert!(probe(address, Duration::from_secs(5)));
        let request = server.join().unwrap();
        assert!(
            request
                .starts_with("GET /metadata/identity/oauth2/token?api-version=2018-02-01 HTTP/1.1")
        );
        assert!(
            !request.to_ascii_lowercase().contains("metadata: true"),
            "the probe asks for no token"
        );
        // Nothing listening.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        assert!(!probe(closed, Duration::from_secs(1)));
        // A made-up environment never probes.
        assert!(!is_configured(&Env::from_vars(
            Vec::<(String, String)>::new()
        )));
    }
}
