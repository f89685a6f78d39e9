//! Sign-in as every Graph command does it: the flags they share ([`AuthArgs`]), signing in
//! before the first request, and stopping before a request the token's permissions would see
//! refused. Below the commands and the connection, which all use it.
//!
//! Secrets never come from an argument: a client secret, a certificate's password and a token
//! come from the environment, a file, or the device-code prompt; the flags here name only what
//! is not secret (tenant, client id, file paths, the authority).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use miette::miette;

use mfactl::engine::preflight::{self, Requirement};
use mfactl::graph::Cloud;
use mfactl::graph::auth::{self, AuthError, AuthSettings, Env, SourceKind, TokenProvider};

/// Where the access token comes from; shared by every command that talks to Graph.
#[derive(Clone, Debug, Default, Args)]
pub struct AuthArgs {
    /// Where the access token comes from (default: the first one configured, in this order:
    /// token, secret, certificate, workload, managed, cli, device). `managed` is never guessed
    /// on a VM (no probe of the metadata address): name it.
    #[arg(long, value_enum, env = "MFACTL_AUTH", value_name = "SOURCE")]
    pub auth: Option<SourceKind>,
    /// The tenant to sign in to: its id or a verified domain (default: AZURE_TENANT_ID;
    /// `mfactl login`: organizations).
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// The application (client) id (default: AZURE_CLIENT_ID; `mfactl login`: Microsoft Graph
    /// Command Line Tools, 14d82eec-204b-4c2f-b7e8-296a70dab67e).
    #[arg(long, value_name = "GUID")]
    pub client_id: Option<String>,
    /// The app's certificate: PEM with its private key, or PKCS#12 (.pfx) whose password is in
    /// AZURE_CLIENT_CERTIFICATE_PASSWORD (default: AZURE_CLIENT_CERTIFICATE_PATH).
    #[arg(long, value_name = "FILE")]
    pub certificate: Option<PathBuf>,
    /// Read the bearer token from this file instead of MFACTL_ACCESS_TOKEN (read again each
    /// time it must be renewed, so another process may refresh it).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The sign-in authority (default: AZURE_AUTHORITY_HOST, else the cloud's, e.g.
    /// https://login.microsoftonline.us for usgov). https, or http to a loopback address.
    #[arg(long, value_name = "URL")]
    pub authority_host: Option<String>,
    /// Where `mfactl login` keeps the refresh token (default: MFACTL_TOKEN_CACHE, else
    /// ~/.cache/mfactl/token-cache.json); readable by you only.
    #[arg(long, value_name = "FILE")]
    pub token_cache: Option<PathBuf>,
}

impl AuthArgs {
    /// The sign-in settings for a Graph at `graph_root` in `cloud`; `authority` is the
    /// authority to use when neither the flag nor AZURE_AUTHORITY_HOST names one (the
    /// emulator's own, when emulating).
    pub fn settings(
        &self,
        cloud: Cloud,
        graph_root: &str,
        authority: Option<&str>,
    ) -> AuthSettings {
        // No IMDS probe: a laptop is not a VM, and a run must not send anything anywhere
        // without being asked to. On an Azure VM, `--auth managed`.
        let env = Env::from_process().with_imds_probe(None);
        let mut settings = AuthSettings::new(cloud, graph_root, env);
        settings.tenant = self.tenant.clone();
        settings.client_id = self.client_id.clone();
        settings.certificate_path = self.certificate.clone();
        settings.token_file = self.token_file.clone();
        settings.authority_host = self
            .authority_host
            .clone()
            .or_else(|| authority.map(str::to_owned));
        if let Some(cache) = &self.token_cache {
            settings.cache_path = cache.clone();
        }
        settings
    }

    /// The credential source and a token provider over it.
    pub fn provider(&self, settings: &AuthSettings) -> miette::Result<Arc<TokenProvider>> {
        let credential = auth::choose(settings, self.auth).map_err(sign_in_error)?;
        Ok(Arc::new(TokenProvider::new(credential)))
    }
}

/// A sign-in failure as the command line shows it: the source's message, and a pointer to the
/// recipes of docs/sign-in.md.
pub fn sign_in_error(error: AuthError) -> miette::Report {
    miette!(
        help = "docs/sign-in.md has a recipe per source; `mfactl auth check` shows \
                what a token holds",
        "sign-in failed: {error}"
    )
}

/// Signs in now, before anything is sent to Graph, and says on stderr which source was used.
pub async fn sign_in(tokens: &TokenProvider) -> miette::Result<()> {
    tokens.current().await.map_err(sign_in_error)?;
    eprintln!("Signed in with {}", tokens.describe());
    Ok(())
}

/// Stops before the first request that would be refused, when the token's claims say it lacks
/// a permission the run needs. Opaque tokens, and tokens that list no permission at all, are
/// not judged (Graph will say).
pub fn check_permissions(tokens: &TokenProvider, required: &[Requirement]) -> miette::Result<()> {
    let Some(claims) = tokens.claims() else {
        tracing::debug!("the token is opaque: its permissions are checked by Graph alone");
        return Ok(());
    };
    let Some((kind, granted)) = claims.granted() else {
        return Ok(());
    };
    let missing = preflight::missing(required, kind, granted);
    if missing.is_empty() {
        return Ok(());
    }
    let mut names: Vec<&str> = Vec::new();
    for name in missing.iter().map(|r| r.need.least_for(kind)) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Err(miette!(
        help = format!(
            "grant the app the {} {} with admin consent, or use a token that holds it; \
             nothing was sent. `mfactl auth check --for MANIFEST` lists what a run needs",
            kind.permission_noun(),
            names.join(" and ")
        ),
        "{} ({})",
        preflight::render_missing(&missing, kind),
        tokens.describe()
    ))
}
