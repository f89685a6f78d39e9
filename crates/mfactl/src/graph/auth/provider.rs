//! One token for every worker: [`TokenProvider`] caches the current access token as a ready
//! `Authorization` header and renews it ahead of its expiry without stopping anyone.
//!
//! The timeline of a token that lives `L`:
//!
//! - until `renew_at` = the later of `L − 5 min` and `0.8 L` (short tokens renew at 80 % of
//!   their lifetime), every caller gets it at once;
//! - from `renew_at` to `usable_until` (= expiry minus a skew of `min(30 s, L/10)`, for clocks
//!   and requests in flight), the first caller that finds no renewal under way renews it while
//!   every other caller keeps using the current token; a failed early renewal is logged (no
//!   secret is in any [`AuthError`]) and tried again after a pause, the current token still in
//!   use;
//! - after `usable_until`, callers wait for one renewal (single flight): one of them asks the
//!   source, the others take its result — its token, or its error (so a failing source is asked
//!   once per wave of callers, not once per worker).
//!
//! A token without a known expiry (opaque) is used until Graph refuses it. After a 401 the
//! transport calls [`TokenProvider::renew`] with the header it sent: the token is renewed only
//! if that header is still the current one (its `generation`), so a burst of 401s for the same
//! token renews it once. A source that hands back the very token Graph refused (a fixed
//! `MFACTL_ACCESS_TOKEN`) gets [`AuthError::Refused`] instead of a loop.
//!
//! Times are tokio [`Instant`]s (so tests run on a paused clock); an expiry (`SystemTime`) is
//! turned into one when the token arrives.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderValue;
use secrecy::ExposeSecret;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::token::timestamp;
use super::{AccessToken, AuthError, Claims, Credential, SourceKind};
use crate::graph::claims;

/// Renew this long before expiry (or at 80 % of the lifetime, whichever is later).
const RENEW_AHEAD: Duration = Duration::from_secs(5 * 60);
/// A token is not used in its last `min(this, L/10)`.
const EXPIRY_SKEW: Duration = Duration::from_secs(30);
/// After a failed early renewal, wait this long (at most a quarter of the time left) before
/// trying again.
const RETRY_PAUSE: Duration = Duration::from_secs(30);

/// The `Authorization` header for Graph and which token it is.
#[derive(Clone)]
pub struct Bearer {
    /// `Bearer …`, marked sensitive (never printed by `Debug`, never logged by hyper).
    pub header: HeaderValue,
    /// Counts the tokens the provider has installed; compared by [`TokenProvider::renew`].
    pub generation: u64,
    pub expires_at: Option<SystemTime>,
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("header", &"Bearer [redacted]")
            .field("generation", &self.generation)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

struct Current {
    bearer: Bearer,
    claims: Option<Claims>,
    /// From here on, renew early (`None`: never, the expiry is unknown).
    renew_at: Option<Instant>,
    /// From here on, do not use it.
    usable_until: Option<Instant>,
}

impl Current {
    fn is_fresh(&self, now: Instant) -> bool {
        self.renew_at.is_none_or(|at| now < at)
    }

    fn is_usable(&self, now: Instant) -> bool {
        self.usable_until.is_none_or(|until| now < until)
    }
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    /// Generations handed out so far.
    generation: u64,
    /// Renewal attempts finished so far (successful or not).
    attempts: u64,
    /// The last attempt's error, if it failed.
    last_failure: Option<AuthError>,
    /// No early renewal before this (after a failed one).
    retry_at: Option<Instant>,
}

/// Shares one access token among all workers (behind an `Arc`).
pub struct TokenProvider {
    credential: Arc<dyn Credential>,
    state: Mutex<State>,
    /// Held by whoever is asking the source: at most one renewal at a time.
    renewal: tokio::sync::Mutex<()>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("TokenProvider")
            .field("credential", &self.credential)
            .field(
                "current",
                &state.current.as_ref().map(|current| &current.bearer),
            )
            .finish()
    }
}

impl TokenProvider {
    pub fn new(credential: Arc<dyn Credential>) -> TokenProvider {
        TokenProvider {
            credential,
            state: Mutex::new(State::default()),
            renewal: tokio::sync::Mutex::new(()),
        }
    }

    pub fn kind(&self) -> SourceKind {
        self.credential.kind()
    }

    /// Where the token comes from, for a terminal or a log: escaped here once, since it names
    /// values from the environment (tenant, client id, paths).
    pub fn describe(&self) -> String {
        crate::text::printable(&self.credential.describe()).into_owned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The token to send now (see the module documentation for when it is renewed).
    pub async fn current(&self) -> Result<Bearer, AuthError> {
        enum Next {
            Use(Bearer),
            RenewEarly(Bearer),
            Wait { seen_attempts: u64 },
        }
        let now = Instant::now();
        let next = {
            let state = self.lock();
            match &state.current {
                Some(current) if current.is_fresh(now) => Next::Use(current.bearer.clone()),
                Some(current) if current.is_usable(now) => {
                    if state.retry_at.is_none_or(|at| now >= at) {
                        Next::RenewEarly(current.bearer.clone())
                    } else {
                        // The last early renewal failed a moment ago.
                        Next::Use(current.bearer.clone())
                    }
                }
                _ => Next::Wait {
                    seen_attempts: state.attempts,
                },
            }
        };
        let seen_attempts = match next {
            Next::Use(bearer) => return Ok(bearer),
            Next::RenewEarly(old) => {
                return Ok(match self.renewal.try_lock() {
                    Ok(_renewing) => self.renew_early(old).await,
                    // Someone is renewing: keep going with the current token.
                    Err(_) => old,
                });
            }
            Next::Wait { seen_attempts } => seen_attempts,
        };
        let _renewing = self.renewal.lock().await;
        {
            let state = self.lock();
            if let Some(current) = &state.current
                && current.is_usable(Instant::now())
            {
                return Ok(current.bearer.clone());
            }
            if state.attempts > seen_attempts
                && let Some(error) = &state.last_failure
            {
                // The renewal this caller waited for failed: its error, not another attempt.
                return Err(error.clone());
            }
        }
        self.acquire(None).await
    }

    /// An early renewal while `old` is still usable (the renewal lock is held). Never fails:
    /// on error the old token stays in use and the renewal is tried again later.
    async fn renew_early(&self, old: Bearer) -> Bearer {
        {
            let state = self.lock();
            if let Some(current) = &state.current
                && current.bearer.generation != old.generation
            {
                return current.bearer.clone();
            }
        }
        match self.acquire(None).await {
            Ok(bearer) => bearer,
            Err(error) => {
                let now = Instant::now();
                let mut state = self.lock();
                let left = state
                    .current
                    .as_ref()
                    .and_then(|current| current.usable_until)
                    .map(|until| until.saturating_duration_since(now))
                    .unwrap_or(RETRY_PAUSE);
                let pause = RETRY_PAUSE.min(left / 4).max(Duration::from_secs(1));
                state.retry_at = Some(now + pause);
                warn!(
                    source = %self.credential.kind(),
                    %error,
                    retry_in_s = pause.as_secs(),
                    "early token renewal failed; the current token stays in use until it expires"
                );
                old
            }
        }
    }

    /// After Graph answered 401 to `rejected`: a new token, unless another caller already
    /// renewed past `rejected` (then that newer one).
    pub async fn renew(&self, rejected: &Bearer) -> Result<Bearer, AuthError> {
        let _renewing = self.renewal.lock().await;
        {
            let state = self.lock();
            if let Some(current) = &state.current
                && current.bearer.generation != rejected.generation
                && current.is_usable(Instant::now())
            {
                return Ok(current.bearer.clone());
            }
        }
        self.acquire(Some(rejected)).await
    }

    /// The current token's claims, decoded without verification (`None` for an opaque token,
    /// or before the first token).
    pub fn claims(&self) -> Option<Claims> {
        self.lock()
            .current
            .as_ref()
            .and_then(|current| current.claims.clone())
    }

    /// Asks the source (the renewal lock is held by the caller) and installs the answer.
    async fn acquire(&self, rejected: Option<&Bearer>) -> Result<Bearer, AuthError> {
        let result = self.credential.acquire().await;
        let mut state = self.lock();
        state.attempts += 1;
        let installed = result.and_then(|token| {
            let kind = self.credential.kind();
            let header = header(kind, &token)?;
            if let Some(rejected) = rejected
                && rejected.header == header
            {
                return Err(AuthError::Refused {
                    kind,
                    origin: self.credential.describe(),
                    fix: match kind {
                        SourceKind::Token => {
                            "check that the token is for this tenant and Graph, or get a new one"
                        }
                        SourceKind::Cli => {
                            "run `az account get-access-token` again later, or `az login`"
                        }
                        _ => "check the token's audience and tenant",
                    }
                    .to_owned(),
                });
            }
            let now = Instant::now();
            let lifetime = token
                .expires_at
                .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
            if lifetime.is_some_and(|l| l.is_zero()) {
                return Err(AuthError::Expired {
                    kind,
                    origin: self.credential.describe(),
                    when: format!(
                        "at {}, before it was even used",
                        token.expires_at.map(timestamp).unwrap_or_default()
                    ),
                    fix: "check the machine's clock, or the source's tokens".to_owned(),
                });
            }
            state.generation += 1;
            let bearer = Bearer {
                header,
                generation: state.generation,
                expires_at: token.expires_at,
            };
            let (renew_at, usable_until) = match lifetime {
                Some(l) => (
                    Some(now + l.saturating_sub(RENEW_AHEAD).max(l.mul_f64(0.8))),
                    Some(now + l - EXPIRY_SKEW.min(l / 10)),
                ),
                None => (None, None),
            };
            debug!(
                source = %kind,
                generation = bearer.generation,
                expires = %token.expires_at.map(timestamp).unwrap_or_else(|| "unknown".to_owned()),
                "access token installed"
            );
            state.current = Some(Current {
                bearer: bearer.clone(),
                claims: claims::decode(token.token.expose_secret()),
                renew_at,
                usable_until,
            });
            Ok(bearer)
        });
        match &installed {
            Ok(_) => {
                state.last_failure = None;
                state.retry_at = None;
            }
            Err(error) => state.last_failure = Some(error.clone()),
        }
        installed
    }
}

/// `Bearer <token>`, sensitive; refuses what no header can carry (the wording of the
/// transport's `BuildError::InvalidToken`).
fn header(kind: SourceKind, token: &AccessToken) -> Result<HeaderValue, AuthError> {
    let text = token.token.expose_secret();
    let invalid = || AuthError::InvalidToken {
        kind,
        origin: match kind {
            SourceKind::Token => "the token source".to_owned(),
            _ => format!("the {kind} source's answer"),
        },
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid());
    }
    let mut value = HeaderValue::try_from(format!("Bearer {text}")).map_err(|_| invalid())?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use futures::future::BoxFuture;
    use secrecy::SecretString;
    use tokio::sync::Semaphore;
    use tokio::time::advance;

    use super::*;
    use crate::graph::auth::testing::jwt;

    const MINUTE: Duration = Duration::from_secs(60);

    /// A source whose tokens live `lifetime`, counting acquisitions; attempts for which `fails`
    /// is true fail; attempts from `gated_from` on wait for a permit of `gate`.
    struct Scripted {
        acquisitions: AtomicU64,
        lifetime: Option<Duration>,
        fails: Box<dyn Fn(u64) -> bool + Send + Sync>,
        gate: Option<(u64, Arc<Semaphore>)>,
        same_token: bool,
    }

    impl fmt::Debug for Scripted {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Scripted")
        }
    }

    impl Scripted {
        fn new(lifetime: Duration) -> Scripted {
            Scripted {
                acquisitions: AtomicU64::new(0),
                lifetime: Some(lifetime),
                fails: Box::new(|_| false),
                gate: None,
                same_token: false,
            }
        }

        fn failing(mut self, fails: impl Fn(u64) -> bool + Send + Sync + 'static) -> Scripted {
            self.fails = Box::new(fails);
            self
        }

        fn gated_from(mut self, attempt: u64, gate: Arc<Semaphore>) -> Scripted {
            self.gate = Some((attempt, gate));
            self
        }

        fn acquisitions(&self) -> u64 {
            self.acquisitions.load(Ordering::SeqCst)
        }
    }

    impl Credential for Scripted {
        fn kind(&self) -> SourceKind {
            SourceKind::Secret
        }

        fn describe(&self) -> String {
            "scripted".to_owned()
        }

        fn acquire(&self) -> BoxFuture<'_, Result<AccessToken, AuthError>> {
            Box::pin(async move {
                let attempt = self.acquisitions.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some((from, gate)) = &self.gate
                    && attempt >= *from
                {
                    gate.acquire().await.unwrap().forget();
                }
                // Give concurrent callers time to pile up behind this renewal.
                tokio::time::sleep(Duration::from_secs(1)).await;
                if (self.fails)(attempt) {
                    return Err(AuthError::Unreachable {
                        kind: SourceKind::Secret,
                        endpoint: "https://login.example".to_owned(),
                        reason: format!("attempt {attempt} failed"),
                    });
                }
                let n = if self.same_token { 1 } else { attempt };
                Ok(AccessToken {
                    token: SecretString::from(jwt(serde_json::json!({
                        "roles": [format!("Role.{n}")],
                        "tid": "9c0e5f1a-0000-4000-8000-000000000001",
                    }))),
                    expires_at: self.lifetime.map(|l| SystemTime::now() + l),
                })
            })
        }
    }

    fn provider(credential: Scripted) -> (Arc<TokenProvider>, Arc<Scripted>) {
        let credential = Arc::new(credential);
        (Arc::new(TokenProvider::new(credential.clone())), credential)
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_token_is_shared_without_asking_the_source_again() {
        let (provider, source) = provider(Scripted::new(60 * MINUTE));
        let first = provider.current().await.unwrap();
        for _ in 0..10 {
            assert_eq!(
                provider.current().await.unwrap().generation,
                first.generation
            );
        }
        advance(54 * MINUTE).await;
        assert_eq!(provider.current().await.unwrap().generation, 1);
        assert_eq!(source.acquisitions(), 1);
        assert!(first.header.is_sensitive());
        assert!(first.header.to_str().unwrap().starts_with("Bearer eyJ"));
    }

    #[tokio::test(start_paused = true)]
    async fn renewal_ahead_of_expiry_does_not_hold_up_the_other_callers() {
        let gate = Arc::new(Semaphore::new(0));
        let (provider, source) = provider(Scripted::new(60 * MINUTE).gated_from(2, gate.clone()));
        assert_eq!(provider.current().await.unwrap().generation, 1);
        // 56 minutes in: inside the last 5 minutes, still usable.
        advance(56 * MINUTE).await;
        let renewing = tokio::spawn({
            let provider = provider.clone();
            async move { provider.current().await }
        });
        while source.acquisitions() < 2 {
            tokio::task::yield_now().await;
        }
        // The renewal is stuck at the source; everyone else carries on with the old token.
        for _ in 0..20 {
            assert_eq!(provider.current().await.unwrap().generation, 1);
        }
        assert_eq!(source.acquisitions(), 2, "no second renewal started");
        gate.add_permits(1);
        assert_eq!(renewing.await.unwrap().unwrap().generation, 2);
        assert_eq!(provider.current().await.unwrap().generation, 2);
        assert_eq!(source.acquisitions(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn short_tokens_renew_at_four_fifths_of_their_lifetime() {
        let (provider, source) = provider(Scripted::new(10 * MINUTE));
        provider.current().await.unwrap();
        // 10 minutes − 5 would be 5 minutes: too early for a short token; 80 % is 8 minutes.
        advance(7 * MINUTE + Duration::from_secs(50)).await;
        provider.current().await.unwrap();
        assert_eq!(source.acquisitions(), 1);
        advance(Duration::from_secs(15)).await;
        assert_eq!(provider.current().await.unwrap().generation, 2);
        assert_eq!(source.acquisitions(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn once_expired_concurrent_callers_wait_for_a_single_renewal() {
        let (provider, source) = provider(Scripted::new(60 * MINUTE));
        provider.current().await.unwrap();
        advance(61 * MINUTE).await;
        let callers: Vec<_> = (0..64)
            .map(|_| {
                let provider = provider.clone();
                tokio::spawn(async move { provider.current().await })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap().unwrap().generation, 2);
        }
        assert_eq!(source.acquisitions(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_early_renewal_keeps_the_old_token_and_is_retried_later() {
        let (provider, source) =
            provider(Scripted::new(60 * MINUTE).failing(|attempt| attempt == 2));
        provider.current().await.unwrap();
        advance(56 * MINUTE).await;
        // The renewal fails: the caller still gets the valid old token.
        assert_eq!(provider.current().await.unwrap().generation, 1);
        assert_eq!(source.acquisitions(), 2);
        // Not retried at once by every caller...
        assert_eq!(provider.current().await.unwrap().generation, 1);
        assert_eq!(source.acquisitions(), 2);
        // ...but after a pause, while the old token is still valid.
        advance(31 * Duration::from_secs(1)).await;
        assert_eq!(provider.current().await.unwrap().generation, 2);
        assert_eq!(source.acquisitions(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_after_expiry_fails_every_waiting_caller_once() {
        let (provider, source) =
            provider(Scripted::new(60 * MINUTE).failing(|attempt| attempt >= 2));
        provider.current().await.unwrap();
        advance(61 * MINUTE).await;
        let callers: Vec<_> = (0..16)
            .map(|_| {
                let provider = provider.clone();
                tokio::spawn(async move { provider.current().await })
            })
            .collect();
        for caller in callers {
            let error = caller.await.unwrap().unwrap_err();
            assert!(error.to_string().contains("attempt 2 failed"), "{error}");
        }
        assert_eq!(source.acquisitions(), 2, "one attempt for the whole wave");
        // A later caller tries again.
        assert!(provider.current().await.is_err());
        assert_eq!(source.acquisitions(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn renew_after_a_401_renews_once_per_rejected_generation() {
        let (provider, source) = provider(Scripted::new(60 * MINUTE));
        let first = provider.current().await.unwrap();
        let second = provider.renew(&first).await.unwrap();
        assert_eq!(second.generation, 2);
        assert_eq!(source.acquisitions(), 2);
        // Another worker's 401 for the same old token: the newer token, no new request.
        let again = provider.renew(&first).await.unwrap();
        assert_eq!(again.generation, 2);
        assert_eq!(again.header, second.header);
        assert_eq!(source.acquisitions(), 2);
        // A 401 for the current token renews it.
        assert_eq!(provider.renew(&second).await.unwrap().generation, 3);
        assert_eq!(source.acquisitions(), 3);
        assert_eq!(provider.current().await.unwrap().generation, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_401s_for_one_token_renew_it_once() {
        let (provider, source) = provider(Scripted::new(60 * MINUTE));
        let first = provider.current().await.unwrap();
        let renewals: Vec<_> = (0..32)
            .map(|_| {
                let provider = provider.clone();
                let first = first.clone();
                tokio::spawn(async move { provider.renew(&first).await })
            })
            .collect();
        for renewal in renewals {
            assert_eq!(renewal.await.unwrap().unwrap().generation, 2);
        }
        assert_eq!(source.acquisitions(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_that_gives_back_the_refused_token_says_so() {
        let mut source = Scripted::new(60 * MINUTE);
        source.same_token = true;
        let (provider, _) = provider(source);
        let first = provider.current().await.unwrap();
        let error = provider.renew(&first).await.unwrap_err();
        assert!(matches!(error, AuthError::Refused { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("Graph refused the access token (401)"),
            "{error}"
        );
        // The refused token stays current: nothing better exists.
        assert_eq!(provider.current().await.unwrap().generation, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_without_expiry_are_kept_until_refused() {
        let mut source = Scripted::new(MINUTE);
        source.lifetime = None;
        let (provider, source) = provider(source);
        provider.current().await.unwrap();
        advance(24 * 60 * MINUTE).await;
        assert_eq!(provider.current().await.unwrap().generation, 1);
        assert_eq!(source.acquisitions(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn claims_are_those_of_the_current_token() {
        let (provider, _) = provider(Scripted::new(60 * MINUTE));
        assert_eq!(provider.claims(), None);
        let first = provider.current().await.unwrap();
        assert_eq!(provider.claims().unwrap().roles, ["Role.1"]);
        provider.renew(&first).await.unwrap();
        let claims = provider.claims().unwrap();
        assert_eq!(claims.roles, ["Role.2"]);
        assert_eq!(
            claims.tenant_id.as_deref(),
            Some("9c0e5f1a-0000-4000-8000-000000000001")
        );
    }

    #[test]
    fn the_provider_futures_can_run_on_any_worker_thread() {
        fn send<T: Send>(_: &T) {}
        let provider = TokenProvider::new(Arc::new(Scripted::new(MINUTE)));
        let current = provider.current();
        send(&current);
        let bearer = Bearer {
            header: HeaderValue::from_static("Bearer x"),
            generation: 0,
            expires_at: None,
        };
        let renew = provider.renew(&bearer);
        send(&renew);
        fn shared<T: Send + Sync>() {}
        shared::<TokenProvider>();
    }
}
