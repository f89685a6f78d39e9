//! A stand-in for Microsoft Graph's beta endpoints that mfactl uses, served over real HTTP.
//!
//! Every test, demo and benchmark runs against it, so it must answer like Graph from the
//! client's side of the socket: the same paths (ids, UPNs, percent-encoded guests, the OAuth
//! key form for `$` UPNs), the same JSON shapes and error envelopes, the same headers
//! (`request-id`, `client-request-id`, `Retry-After`, `x-ms-throttle-*`), Graph's throttling
//! arithmetic, injected 503s and latency — and TCP_NODELAY, keep-alive, HTTP/1.1 and h2c, so that
//! timings measured against it mean something.
//!
//! It must not be a second implementation of mfactl's logic: it holds state and applies Graph's
//! rules ([`state`]), meters requests ([`throttle`]) and speaks HTTP ([`routes`], the router;
//! `call`, the steps of one Graph call; `context`, what they and the handlers share; and one
//! module per Graph resource: `users`, `listing` (the users collection),
//! `membership`, `members` (a group's), `authentication`, `policy`, `groups`, [`organization`],
//! `conditional_access` (Conditional Access policies and security defaults), `roles` (directory
//! role assignments), `registration` (the authentication methods registration report),
//! `batch`); the tenant file lives in [`tenant`] and the synthetic-tenant generator in
//! [`generate`]. When the tenant file has an `auth` section it also signs in like
//! Entra ID: [`token`] (token and device-code endpoints, the tokens and their check) and
//! `identity` (IMDS and App Service managed identity), with app certificates read by
//! [`certificate`].

mod authentication;
mod batch;
mod call;
pub mod certificate;
mod conditional_access;
mod context;
pub mod generate;
mod groups;
mod identity;
mod listing;
mod members;
mod membership;
pub mod organization;
mod policy;
mod registration;
mod roles;
pub mod routes;
pub mod serve;
pub mod state;
pub mod tenant;
mod tenants;
pub mod throttle;
pub mod token;
mod users;

#[cfg(test)]
mod tenants_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod token_tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use tenant::{
    AuthAdmin, AuthApp, Group, RoleAssignment, Secret, Tenant, TenantAuth, TenantError, TenantNote,
    TenantProblem, TenantUser, UserSignInPreferences, UserType, file_schema as tenant_file_schema,
};

/// How the emulator behaves beyond the tenant's data: latency, throttling and faults.
#[derive(Clone, Debug, PartialEq)]
pub struct EmulatorConfig {
    /// Uniform random delay per request in `[min, max]`; `None` answers at once.
    pub latency: Option<(Duration, Duration)>,
    /// `false` disables every throttling bucket (`--no-throttle`), `methods_per_10s`'s too.
    pub throttle: bool,
    /// RU bucket size per 10 s; `None` picks Graph's tier for the tenant size
    /// (under 50 users 3,500; 50–500 5,000; over 500 8,000).
    pub ru_per_10s: Option<u32>,
    /// Write bucket size per 150 s (Graph: 3,000).
    pub writes_per_150s: u32,
    /// Probability of answering a Graph call with an injected 503 `serviceUnavailable` and
    /// `Retry-After: 1` (0.0–1.0). A call is a request sent alone or one item of a `$batch`:
    /// each item rolls on its own, as if sent alone, and fails inside the batch's 200 with the
    /// 503 and `retry-after` in its own `status` and `headers`.
    pub fail_rate: f64,
    /// Probability of answering a PATCH (alone or as a batch item) with an injected 503, on top
    /// of `fail_rate`.
    pub write_fail_rate: f64,
    /// Probability of answering a whole `$batch` request with an injected 503 before any of its
    /// items runs (nothing is charged or changed). `fail_rate` does not apply to the envelope:
    /// with it, a batch of 20 would fail more often than 20 calls sent alone.
    pub batch_fail_rate: f64,
    /// Requests per 10 s for GETs of `/users/{id}/authentication/methods`, from their own bucket
    /// on top of 1 RU each (Microsoft lists `authenticationMethod` under the identity reports
    /// limit, 5 per 10 s; whether Graph meters `/methods` so is unconfirmed). `None`: only the RU
    /// bucket applies. Refusals are 429 `ReportsLimitExceeded`. The bucket is the reports
    /// limit's: the registration report draws from it too (which it always does, at 5 per 10 s
    /// when this is `None`).
    pub methods_per_10s: Option<u32>,
    /// Bulk reads to refuse, so that a client's fallback to per-user reads can be tried.
    pub refuse: Refusals,
    /// The registration report is a snapshot of the tenant as it was when the emulator started,
    /// dated this long before that, and never refreshed (a report Graph last refreshed that long
    /// ago). `None`: the report shows the current state, dated now.
    pub report_age: Option<Duration>,
    /// Seeds latency and failure randomness.
    pub seed: u64,
    /// The cloud the emulator answers as: the China cloud (21Vianet) serves no
    /// `/authentication/methods`, which it answers with Graph's 400 for an unknown segment.
    pub cloud: mfactl_core::Cloud,
    /// Each application's RU ceiling across every tenant served, per 20 s (Graph: 150,000).
    pub app_ru_per_20s: u32,
    /// Each application's write ceiling across every tenant served, per 5 min (Graph: 70,000).
    pub app_writes_per_300s: u32,
}

impl Default for EmulatorConfig {
    fn default() -> EmulatorConfig {
        EmulatorConfig {
            latency: None,
            throttle: true,
            ru_per_10s: None,
            writes_per_150s: 3_000,
            fail_rate: 0.0,
            write_fail_rate: 0.0,
            batch_fail_rate: 0.0,
            methods_per_10s: None,
            refuse: Refusals::default(),
            report_age: None,
            seed: 0,
            cloud: mfactl_core::Cloud::Global,
            app_ru_per_20s: throttle::APP_RU_PER_20S,
            app_writes_per_300s: throttle::APP_WRITES_PER_5MIN,
        }
    }
}

/// Bulk reads the emulator refuses when asked (`mfactl emulator serve --refuse ...`), as a
/// tenant or a Graph that does not serve them would.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// `$select=...perUserMfaState` on `/users`: 400 `BadRequest` "Could not find a property
    /// named 'perUserMfaState'", as Graph answers a property it does not know.
    pub per_user_mfa_state_select: bool,
    /// The registration report: 403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant`,
    /// as for a tenant without Entra ID P1/P2.
    pub registration_report: bool,
    /// `GET /users/{id}/authentication`: 400 `BadRequest`, as a Graph that does not serve a
    /// read of the whole entity might.
    pub authentication: bool,
}

/// Counters since start; `GET /_emulator/stats` serves the same value.
///
/// `requests` counts HTTP requests; every other count is of Graph calls, where an item of a
/// `$batch` counts as if it had been sent alone (the batch's own 200 is none of them).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Stats {
    /// Every Graph HTTP request received (not `/_emulator/*`); a `$batch` counts once.
    pub requests: u64,
    /// GETs answered 200.
    pub reads: u64,
    /// PATCHes answered 2xx (each one changed or confirmed state).
    pub writes: u64,
    /// Calls answered 429 (any bucket).
    pub throttled: u64,
    /// The subset of `throttled` refused by the write bucket.
    pub throttled_writes: u64,
    /// The subset of `throttled` refused by the reports bucket (`/authentication/methods` when
    /// [`EmulatorConfig::methods_per_10s`] is set, and the registration report).
    pub throttled_methods: u64,
    /// Calls, and whole `$batch` requests (`batch_fail_rate`), answered with an injected 503.
    pub injected_failures: u64,
    /// `$batch` requests whose items ran (answered 200).
    pub batches: u64,
    /// The items those batches held.
    pub batch_items: u64,
    /// Requests, and batch items whose own `headers` say so, sent with
    /// `x-ms-throttle-priority: Low`. Counted only: throttling treats them like any other.
    pub low_priority: u64,
    pub not_found: u64,
    pub bad_requests: u64,
    /// Requests, and batch items, answered 401 (no token, or one Graph refuses).
    pub unauthorized: u64,
    /// Calls answered 403: the token lacks the permission the call needs (tenant files with an
    /// `auth` section only).
    #[serde(default)]
    pub forbidden: u64,
    /// Access tokens the sign-in endpoints issued (token endpoint, IMDS, App Service).
    #[serde(default)]
    pub tokens_issued: u64,
    /// Highest number of requests being handled at the same time.
    pub peak_in_flight: u64,
}

impl Stats {
    /// Adds `other`'s counts to these (the peak in flight: the larger).
    pub fn add(&mut self, other: &Stats) {
        self.requests += other.requests;
        self.reads += other.reads;
        self.writes += other.writes;
        self.throttled += other.throttled;
        self.throttled_writes += other.throttled_writes;
        self.throttled_methods += other.throttled_methods;
        self.injected_failures += other.injected_failures;
        self.batches += other.batches;
        self.batch_items += other.batch_items;
        self.low_priority += other.low_priority;
        self.not_found += other.not_found;
        self.bad_requests += other.bad_requests;
        self.unauthorized += other.unauthorized;
        self.forbidden += other.forbidden;
        self.tokens_issued += other.tokens_issued;
        self.peak_in_flight = self.peak_in_flight.max(other.peak_in_flight);
    }
}

/// A running emulator; [`Emulator::shutdown`] stops it (dropping it stops it too, without waiting).
pub struct Emulator {
    addr: SocketAddr,
    directory: Arc<tenants::Directory>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Emulator {
    /// Binds `listen` (port 0 = ephemeral), spawns the server on the current tokio runtime and
    /// returns at once.
    pub async fn start(
        tenant: Tenant,
        config: EmulatorConfig,
        listen: SocketAddr,
    ) -> std::io::Result<Emulator> {
        Emulator::start_tenants(vec![tenant], config, listen).await
    }

    /// Serves several tenants on one port (see the `tenants` module): a Graph call is answered
    /// by the tenant its token's `tid` names, a sign-in request by the tenant its URL names.
    /// Fails when two files name the same tenant id or domain, or `tenants` is empty.
    pub async fn start_tenants(
        tenants: Vec<Tenant>,
        config: EmulatorConfig,
        listen: SocketAddr,
    ) -> std::io::Result<Emulator> {
        if tenants.is_empty() {
            return Err(std::io::Error::other("no tenant to serve"));
        }
        let directory = Arc::new(tenants::Directory::build(tenants, &config)?);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let app = tenants::router(directory.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve::serve(listener, app, stopped));
        tracing::debug!(%addr, "emulator listening");
        Ok(Emulator {
            addr,
            directory,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// The bound address (with the real port when `listen` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Graph root without version, e.g. `http://127.0.0.1:8080`; an unspecified bind
    /// address (`0.0.0.0`) is reported as loopback, which is where clients on this host reach it.
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// A snapshot of the counters (every tenant's, added up).
    pub fn stats(&self) -> Stats {
        self.directory.stats()
    }

    /// A snapshot of the current state (after PATCHes), in the tenant file's shape (the first
    /// tenant's, when several are served).
    pub fn tenant(&self) -> Tenant {
        self.directory.first().tenant()
    }

    /// The ids of the tenants served, in the order given.
    pub fn tenant_ids(&self) -> Vec<String> {
        self.directory.tenant_ids()
    }

    /// One served tenant's current state, by id or domain.
    pub fn tenant_named(&self, tenant: &str) -> Option<Tenant> {
        self.directory.find(tenant).map(|shared| shared.tenant())
    }

    /// One served tenant's counters, by id or domain.
    pub fn stats_of(&self, tenant: &str) -> Option<Stats> {
        self.directory.find(tenant).map(|shared| shared.stats())
    }

    /// The authority host to sign in at, like `https://login.microsoftonline.com`: the same root
    /// as [`Emulator::url`] (what `AZURE_AUTHORITY_HOST` would be set to). Its sign-in endpoints
    /// exist only when the tenant file has an `auth` section.
    pub fn authority(&self) -> String {
        self.url()
    }

    /// The tenant's token endpoint, `{url}/{tenantId}/oauth2/v2.0/token`; a client assertion's
    /// `aud` names it (by tenant id or domain).
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.url(), self.tenant_id())
    }

    /// The tenant's device-code endpoint, `{url}/{tenantId}/oauth2/v2.0/devicecode`.
    pub fn device_code_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/devicecode", self.url(), self.tenant_id())
    }

    /// The IMDS token endpoint (on a VM, `http://169.254.169.254/metadata/identity/oauth2/token`).
    pub fn imds_endpoint(&self) -> String {
        format!("{}/metadata/identity/oauth2/token", self.url())
    }

    /// App Service's token endpoint, what `IDENTITY_ENDPOINT` holds on such a host.
    pub fn identity_endpoint(&self) -> String {
        format!("{}/msi/token", self.url())
    }

    /// Revokes every refresh token handed out so far (the next refresh answers `invalid_grant`
    /// AADSTS50173), as an admin revoking a user's sessions would.
    pub fn revoke_refresh_tokens(&self) {
        for id in self.directory.tenant_ids() {
            if let Some(shared) = self.directory.find(&id) {
                shared.revoke_refresh_tokens();
            }
        }
    }

    fn tenant_id(&self) -> String {
        self.directory.first().tenant_id().to_owned()
    }

    /// Stops accepting, lets requests in flight finish and closes idle keep-alive connections.
    /// Connections that stay busy longer than 5 s are cut.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take() {
            match tokio::time::timeout(Duration::from_secs(5), &mut server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => tracing::warn!("emulator server ended with an error: {err}"),
                Ok(Err(err)) => tracing::warn!("emulator server task failed: {err}"),
                Err(_) => {
                    tracing::warn!("emulator connections still busy after 5 s; closing them");
                    server.abort();
                }
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
