//! Test helpers: a loopback HTTP server that records every request and answers from a script
//! (a stand-in for Entra's token endpoint, IMDS and App Service until the emulator has them),
//! unsigned JWTs, and settings over a made-up environment.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::{AuthSettings, Env};
use crate::graph::Cloud;

/// One request as the fake server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub form: Vec<(String, String)>,
}

impl Recorded {
    pub fn form(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn form_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.form.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        names
    }
}

type Respond = dyn Fn(&Recorded, usize) -> (u16, String) + Send + Sync;

/// A loopback HTTP server answering every request with `respond(request, index)`.
pub struct FakeServer {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    pub async fn start(
        respond: impl Fn(&Recorded, usize) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeServer {
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let respond: Arc<Respond> = Arc::new(respond);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, respond) = (seen.clone(), respond.clone());
                let service = service_fn(move |request: Request<Incoming>| {
                    let (seen, respond) = (seen.clone(), respond.clone());
                    async move {
                        let (head, body) = request.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let (status, body) = answer(&seen, &*respond, head, &body);
                        Ok::<_, hyper::Error>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        FakeServer {
            url,
            requests,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// Records one request and asks the script for its answer.
fn answer(
    seen: &Mutex<Vec<Recorded>>,
    respond: &Respond,
    head: hyper::http::request::Parts,
    body: &[u8],
) -> (u16, String) {
    let pairs = |text: &[u8]| -> Vec<(String, String)> {
        url::form_urlencoded::parse(text).into_owned().collect()
    };
    let recorded = Recorded {
        method: head.method.to_string(),
        path: head.uri.path().to_owned(),
        query: pairs(head.uri.query().unwrap_or_default().as_bytes()),
        headers: head.headers,
        form: pairs(body),
    };
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.push(recorded.clone());
        seen.len() - 1
    };
    respond(&recorded, index)
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An unsigned JWT (`alg: none`) with these claims.
pub fn jwt(claims: serde_json::Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

/// Seconds since the epoch, `ahead` from now.
pub fn epoch_in(ahead: Duration) -> u64 {
    (SystemTime::now() + ahead)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Settings over exactly `vars`, against a Graph root on loopback, signing in at `authority`
/// (a fake server) and caching in `cache` (a temporary file).
pub fn settings(vars: &[(&str, &str)], authority: Option<&str>) -> AuthSettings {
    let env = Env::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut settings = AuthSettings::new(Cloud::Global, "https://graph.microsoft.com", env);
    settings.authority_host = authority.map(str::to_owned);
    // Unit tests keep the refresh token in the file they inspect, unless they ask otherwise.
    settings.keyring = vars
        .iter()
        .any(|(k, v)| *k == super::settings::KEYRING_ENV && *v != "off");
    settings
}

/// A successful Entra token answer.
pub fn token_answer(access_token: &str, expires_in: u64) -> String {
    serde_json::json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access_token,
    })
    .to_string()
}

/// An RSA key and its self-signed certificate, made once per test run (never committed).
pub struct Rsa {
    pub key: rcgen::KeyPair,
    pub certificate: rcgen::Certificate,
}

pub fn rsa() -> &'static Rsa {
    static RSA: OnceLock<Rsa> = OnceLock::new();
    RSA.get_or_init(|| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let certificate = rcgen::CertificateParams::new(vec!["mfactl-test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        Rsa { key, certificate }
    })
}
