//! What the shared Graph flags ([`GraphArgs`]) connect to: the in-process emulator when
//! `--emulate` is given, the signed-in token source, and the transport under Graph's quotas.
//! Every command that talks to Graph opens one [`Connection`], and its failures and traffic
//! are said the same way everywhere.

use std::sync::Arc;
use std::time::{Duration, Instant};

use miette::{IntoDiagnostic, WrapErr, miette};
use secrecy::SecretString;

use super::args::{EMULATOR_TOKEN_ENV, GraphArgs};
use super::sign_in::sign_in;
use mfactl::engine;
use mfactl::graph::auth::{AuthSettings, SourceKind, TokenCredential, TokenProvider};
use mfactl::graph::{BuildError, GraphClient, Transport};
use mfactl_emulator::{Emulator, Tenant};

/// Prints the lines that say how a run read its live values, on stderr.
pub fn say_read_path(lines: &[String]) {
    for line in lines {
        eprintln!("{line}");
    }
}

/// A connected Graph: the client, and the emulator it talks to when `--emulate` was given
/// (kept alive for the run).
pub struct Connection {
    pub client: GraphClient,
    /// The tenant, when known without asking Graph (the emulated tenant file's id, or the
    /// token's `tid` claim).
    pub tenant_id: Option<String>,
    pub concurrency: usize,
    pub emulator: Option<Emulator>,
    /// How sign-in was configured (none for an emulator without an `auth:` section).
    pub auth: Option<AuthSettings>,
}

/// Where a run's tokens come from and where it sends them.
struct TokenSource {
    root: String,
    tokens: Arc<TokenProvider>,
    emulator: Option<Emulator>,
    auth: Option<AuthSettings>,
}

impl Connection {
    /// Starts the emulator if asked, signs in, builds the transport. `manifest_users` is how
    /// many distinct users the manifest names: the tenant has at least that many, which sets
    /// Graph's throttling tier unless `--tenant-size` says otherwise.
    pub async fn open(
        graph: &GraphArgs,
        tenant: Option<Tenant>,
        manifest_users: u64,
    ) -> miette::Result<Connection> {
        let tenant_size = graph.tenant_size.unwrap_or(match &tenant {
            Some(tenant) => tenant.users.len() as u64,
            None => manifest_users,
        });
        let mut tenant_id = tenant.as_ref().map(|t| t.tenant_id.clone());
        let source = match tenant {
            Some(tenant) => emulated(graph, tenant).await?,
            None => {
                let root = graph.graph_root()?;
                let auth = graph.auth.settings(graph.cloud, &root, None);
                let tokens = graph.auth.provider(&auth)?;
                TokenSource {
                    root,
                    tokens,
                    emulator: None,
                    auth: Some(auth),
                }
            }
        };
        // Signed in before the first request: a bad credential is one message, nothing sent.
        sign_in(&source.tokens).await?;
        if let Some(claims) = source.tokens.claims()
            && claims.tenant_id.is_some()
            && source.emulator.is_none()
        {
            tenant_id = claims.tenant_id;
        }
        let config = graph.transport_config(source.root, source.tokens, tenant_size);
        let transport = Transport::new(config).map_err(|error| match error {
            BuildError::Http(error) => miette!("cannot build the HTTP client: {error}"),
        })?;
        Ok(Connection {
            client: GraphClient::new(transport),
            tenant_id,
            concurrency: usize::from(graph.concurrency),
            emulator: source.emulator,
            auth: source.auth,
        })
    }

    /// Where the run's tokens come from.
    pub fn tokens(&self) -> &Arc<TokenProvider> {
        &self.client.transport().config().tokens
    }

    /// A run-stopping failure, with what to do about it; a rejected token names its source.
    pub fn stop(&self, error: engine::RunError) -> miette::Report {
        match &error {
            engine::RunError::Unauthorized(_) => {
                let tokens = self.tokens();
                let help = if tokens.kind() == SourceKind::Token {
                    format!(
                        "get a fresh access token and give it again ({}); tokens live 60-90 \
                         minutes",
                        tokens.describe()
                    )
                } else {
                    format!(
                        "a new token from {} was refused too: check that the credential is for \
                         this tenant and cloud, and that the app is still registered and \
                         consented",
                        tokens.describe()
                    )
                };
                miette!(help = help, "{error}")
            }
            _ => run_error(error),
        }
    }

    /// Asks Graph which tenant this is (`/organization`), falling back on what is known
    /// locally. Stops here, with one message, when Graph cannot be reached or refuses the token.
    pub async fn identify(&self) -> miette::Result<engine::Tenant> {
        let mut tenant = engine::identify_tenant(&self.client)
            .await
            .map_err(|error| self.stop(error))?;
        if tenant.id.is_none() {
            tenant.id = self.tenant_id.clone();
        }
        Ok(tenant)
    }

    /// The end of a run's Graph traffic: one line on stderr about what was sent since
    /// `started`, and the in-process emulator (if any) stopped.
    pub async fn finish(&mut self, started: Instant) {
        eprintln!("{}", traffic_line(&self.client, started.elapsed()));
        if let Some(emulator) = self.emulator.take() {
            emulator.shutdown().await;
        }
    }
}

/// Starts the in-process emulator over `tenant`, and the token source it takes: with an
/// `auth:` section it signs in like Entra ID (the real sources, against its authority);
/// without one it takes any bearer token, and a real one in the environment is never sent to
/// it (MFACTL_EMULATOR_TOKEN picks the emulator's answers to bad tokens).
async fn emulated(graph: &GraphArgs, tenant: Tenant) -> miette::Result<TokenSource> {
    let signs_in = tenant.auth.is_some();
    let listen = "127.0.0.1:0".parse().expect("valid address");
    let emulator = Emulator::start(tenant, graph.emulator_config(), listen)
        .await
        .into_diagnostic()
        .wrap_err("cannot start the in-process emulator")?;
    let url = emulator.url();
    let (tokens, auth) = if signs_in {
        let settings = graph.auth.settings(graph.cloud, &url, Some(&url));
        (graph.auth.provider(&settings)?, Some(settings))
    } else {
        let token = std::env::var(EMULATOR_TOKEN_ENV)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map_or_else(|| SecretString::from("emulator"), SecretString::from);
        let given = TokenCredential::given(
            token,
            "for the emulator, which takes any token without an auth: section",
        );
        (Arc::new(TokenProvider::new(Arc::new(given))), None)
    };
    Ok(TokenSource {
        root: url,
        tokens,
        emulator: Some(emulator),
        auth,
    })
}

/// A run-stopping failure, with what to do about it.
pub fn run_error(error: engine::RunError) -> miette::Report {
    miette::miette!(help = error.help(), "{error}")
}

/// One line on stderr about the traffic of the run.
pub fn traffic_line(client: &GraphClient, elapsed: Duration) -> String {
    let s = client.transport().stats();
    let mut line = format!(
        "Graph: {} requests in {:.2} s ({} reads, {} writes; {} retries, {} throttled (429), {} server errors, {} connection errors)",
        s.attempts,
        elapsed.as_secs_f64(),
        s.reads,
        s.writes,
        s.retries,
        s.throttled,
        s.server_errors,
        s.transport_errors
    );
    if s.pauses > 0 {
        line.push_str(&format!(
            "; paused {} {} for {:.1} s in all (longest {:.1} s)",
            s.pauses,
            if s.pauses == 1 { "time" } else { "times" },
            s.paused_ms as f64 / 1000.0,
            s.longest_pause_ms as f64 / 1000.0
        ));
    }
    if s.outages > 0 {
        line.push_str(&format!("; lost the connection {} times", s.outages));
    }
    if s.settled_by_read > 0 {
        line.push_str(&format!(
            "; {} writes confirmed by reading back (their answer was lost)",
            s.settled_by_read
        ));
    }
    if s.renewals > 0 {
        line.push_str(&format!(
            "; {} {} again with a renewed token after a 401",
            s.renewals,
            if s.renewals == 1 {
                "request sent"
            } else {
                "requests sent"
            }
        ));
    }
    line
}
