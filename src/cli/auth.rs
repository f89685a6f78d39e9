//! `mfactl login`, `mfactl logout` and `mfactl auth check`: signing in ahead of the runs, and
//! what a token is and may do. The sign-in every Graph command shares is `sign_in`'s.
//!
//! Secrets never come from an argument: a client secret, a certificate's password and a token
//! come from the environment, a file, or the device-code prompt.

use std::path::PathBuf;
use std::time::SystemTime;

use clap::{Args, Subcommand};

use super::args::{GraphArgs, ManifestArgs, load_manifest};
use super::connection::Connection;
use super::sign_in::sign_in_error;
use mfactl::engine::preflight::{self, Requirement};
use mfactl::graph::Cloud;
use mfactl::graph::auth::{self, AuthSettings, Env, TokenProvider};
use mfactl::graph::permissions::{Resource, TokenKind};
use mfactl::text::printable;

/// `mfactl login`, `logout`, `auth check`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Ask for what planning and applying this manifest need (its reads, the writes it may
    /// make, group and user listings for its selectors), instead of the default set.
    #[arg(long = "for", value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,
    /// Also ask for this delegated permission (e.g. GroupMember.Read.All; a bare name is
    /// Graph's, qualified with the Graph root). May be given several times.
    #[arg(long = "scope", value_name = "PERMISSION", value_parser = parse_scope)]
    pub scopes: Vec<String>,
    #[command(flatten)]
    pub reading: ManifestArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
}

/// A permission name as `--scope` takes it: one word of printable ASCII.
fn parse_scope(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "{} is not a permission name such as GroupMember.Read.All",
            printable(text)
        ));
    }
    Ok(text.to_owned())
}

/// The OpenID Connect scopes, asked for as they are (not qualified with the Graph root).
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// What `mfactl login` asks for: the manifest's needs (`--for`) or the default set, then each
/// `--scope`, every permission qualified with the Graph root, none twice, and
/// `offline_access` (the refresh token).
fn login_scopes(args: &LoginArgs, root: &str, defaults: &[String]) -> miette::Result<Vec<String>> {
    let mut scopes: Vec<String> = match &args.manifest {
        Some(path) => {
            let manifest = load_manifest(path, &args.reading)?;
            let mut required = preflight::reads(&manifest, args.graph.methods_readable());
            required.extend(preflight::possible_writes(&manifest));
            required
                .iter()
                .map(|r| r.need.least_for(TokenKind::Delegated))
                .map(|permission| mfactl::graph::cloud::delegated_scope(root, permission))
                .collect()
        }
        None => defaults.to_vec(),
    };
    for scope in &args.scopes {
        let oidc = OIDC_SCOPES.iter().any(|s| s.eq_ignore_ascii_case(scope));
        scopes.push(if oidc || scope.contains('/') {
            scope.clone()
        } else {
            mfactl::graph::cloud::delegated_scope(root, scope)
        });
    }
    scopes.push("offline_access".to_owned());
    let mut unique: Vec<String> = Vec::new();
    for scope in scopes {
        if !unique.iter().any(|s| s.eq_ignore_ascii_case(&scope)) {
            unique.push(scope);
        }
    }
    Ok(unique)
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The refresh-token cache to remove (default: MFACTL_TOKEN_CACHE, else
    /// ~/.cache/mfactl/token-cache.json).
    #[arg(long, value_name = "FILE")]
    pub token_cache: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Sign in, then print the cloud, tenant, client id, credential source, token expiry and
    /// the permissions the token holds against those a run needs (never the token).
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Compare with what planning and applying this manifest need (default: everything mfactl
    /// can do with users).
    #[arg(long = "for", value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,
    #[command(flatten)]
    pub reading: ManifestArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
}

/// `mfactl login`: the device code flow; the refresh token goes to the cache file.
pub async fn login(args: LoginArgs) -> miette::Result<u8> {
    let root = args.graph.graph_root()?;
    let mut settings = args.graph.auth.settings(args.graph.cloud, &root, None);
    settings.delegated_scopes = login_scopes(&args, &root, &settings.delegated_scopes)?;
    eprintln!(
        "Asking for: {}",
        printable(&settings.delegated_scopes.join(" "))
    );
    let outcome = auth::login(&settings, &mut |message| {
        eprintln!("{}", printable(message));
    })
    .await
    .map_err(sign_in_error)?;
    let who = outcome.upn.as_deref().map_or_else(
        || "Signed in".to_owned(),
        |upn| format!("Signed in as {}", printable(upn)),
    );
    eprintln!(
        "{who}; the refresh token is in {} (readable by you only; `mfactl logout` removes it).",
        printable(&outcome.cache_path.to_string_lossy())
    );
    if !outcome.scopes.is_empty() {
        eprintln!("Granted: {}", printable(&outcome.scopes.join(" ")));
    }
    if let Some(at) = outcome.expires_at {
        eprintln!("The first access token expires {}.", when(at));
    }
    Ok(super::exit::OK)
}

/// `mfactl logout`: removes the cached refresh token.
pub fn logout(args: &LogoutArgs) -> miette::Result<u8> {
    let mut settings = AuthSettings::new(Cloud::Global, Cloud::Global.graph_root(), {
        Env::from_process().with_imds_probe(None)
    });
    if let Some(cache) = &args.token_cache {
        settings.cache_path = cache.clone();
    }
    match auth::logout(&settings).map_err(sign_in_error)? {
        Some(path) => eprintln!(
            "Signed out: removed {}.",
            printable(&path.to_string_lossy())
        ),
        None => eprintln!(
            "Not signed in: there is no {}.",
            printable(&settings.cache_path.to_string_lossy())
        ),
    }
    Ok(super::exit::OK)
}

/// `mfactl auth check`: what the token is and may do. Steps: load the manifest, sign in, say
/// who the token is, ask Graph once whether it takes the token, compare the permissions it
/// lists with what the manifest (or everything mfactl does) needs. Exit 1 when Graph refuses
/// the token or a needed permission is missing from its claims.
pub async fn check(args: CheckArgs) -> miette::Result<u8> {
    let manifest = args
        .manifest
        .as_deref()
        .map(|path| load_manifest(path, &args.reading))
        .transpose()?;
    let tenant = args.graph.load_emulated_tenant()?;
    let connection = Connection::open(&args.graph, tenant, 0).await?;
    let tokens = connection.client.transport().config().tokens.clone();
    let claims = tokens.claims().unwrap_or_default();
    print_identity(&args, &connection, &tokens, &claims);
    let verdict = ask_graph(&connection.client).await;
    println!("Graph:       {}", verdict.describe());
    let required = match &manifest {
        Some(manifest) => {
            let mut required = preflight::reads(manifest, args.graph.methods_readable());
            required.extend(preflight::possible_writes(manifest));
            required
        }
        None => everything(args.graph.methods_readable()),
    };
    let missing = print_requirements(&args, &claims, &required);
    if let Some(emulator) = connection.emulator {
        emulator.shutdown().await;
    }
    let mut failed = false;
    if let GraphVerdict::Refused(error) = &verdict {
        eprintln!("Graph refused the token: {error}");
        failed = true;
    }
    if !missing.is_empty() {
        eprintln!(
            "{} needed permission{} missing from the token: {}",
            missing.len(),
            if missing.len() == 1 { " is" } else { "s are" },
            missing.join("; ")
        );
        failed = true;
    }
    Ok(if failed {
        super::exit::ERROR
    } else {
        super::exit::OK
    })
}

/// Cloud, source, tenant, client id, signed-in user and expiry, from the connection and the
/// token's claims (never the token).
fn print_identity(
    args: &CheckArgs,
    connection: &Connection,
    tokens: &TokenProvider,
    claims: &mfactl::graph::claims::Claims,
) {
    let authority = connection
        .auth
        .as_ref()
        .map(|s| s.authority().unwrap_or_else(|_| "(invalid)".to_owned()));
    let show = |text: Option<&str>| {
        text.map_or_else(|| "(unknown)".to_owned(), |t| printable(t).into_owned())
    };
    println!(
        "Cloud:       {} (Graph {}{})",
        clap::ValueEnum::to_possible_value(&args.graph.cloud)
            .map_or_else(String::new, |v| v.get_name().to_owned()),
        connection.client.transport().root(),
        authority.map_or_else(String::new, |a| format!(", sign-in {a}"))
    );
    println!("Source:      {}", tokens.describe());
    println!("Tenant:      {}", show(claims.tenant_id.as_deref()));
    println!("Client id:   {}", show(claims.app_id.as_deref()));
    if let Some(upn) = &claims.upn {
        println!("Signed in:   {} (delegated)", printable(upn));
    }
    println!(
        "Expires:     {}",
        claims
            .expires_at
            .map_or_else(|| "(not said: an opaque token)".to_owned(), when)
    );
}

/// What Graph made of the token.
enum GraphVerdict {
    /// `GET /organization` answered; the tenant's primary domain when it said.
    Accepted(Option<String>),
    /// Graph took the token but it may not read `/organization` (403): nothing mfactl needs.
    AcceptedWithoutOrganization(String),
    /// Graph refused the token (401), or could not be asked.
    Refused(String),
}

impl GraphVerdict {
    fn describe(&self) -> String {
        match self {
            GraphVerdict::Accepted(Some(domain)) => format!(
                "accepted the token (GET /organization: {})",
                printable(domain)
            ),
            GraphVerdict::Accepted(None) => "accepted the token (GET /organization)".to_owned(),
            GraphVerdict::AcceptedWithoutOrganization(code) => format!(
                "accepted the token (GET /organization answered 403 {}: it may not read the \
                 tenant's name, which no run needs)",
                printable(code)
            ),
            GraphVerdict::Refused(_) => "REFUSED the token".to_owned(),
        }
    }
}

/// One cheap read (`GET /organization`, 1 RU) that tells whether Graph takes the token at all:
/// the only judge of an opaque token, and of a JWT whose claims look fine but whose signature,
/// audience or lifetime Graph does not accept.
async fn ask_graph(client: &mfactl::graph::GraphClient) -> GraphVerdict {
    match client.organization().await {
        Ok(organization) => {
            GraphVerdict::Accepted(organization.and_then(|o| o.primary_domain().map(str::to_owned)))
        }
        Err(error) if error.status() == Some(403) => {
            GraphVerdict::AcceptedWithoutOrganization(error.code().to_owned())
        }
        Err(error) => GraphVerdict::Refused(error.to_string()),
    }
}

/// Prints the granted permissions and one line per requirement (ok, MISSING, or `?` when the
/// token lists none); returns the missing ones as "permission (why)".
fn print_requirements(
    args: &CheckArgs,
    claims: &mfactl::graph::claims::Claims,
    required: &[Requirement],
) -> Vec<String> {
    let granted = claims.granted();
    match granted {
        None => println!("Granted:     (the token lists no permission; Graph alone can say)"),
        Some((kind, names)) => println!(
            "Granted:     {}: {}",
            match kind {
                TokenKind::Application => "roles (application)",
                TokenKind::Delegated => "scopes (delegated)",
            },
            printable(&names.join(", "))
        ),
    }
    let what = args.manifest.as_ref().map_or_else(
        || "everything plan and apply can do".to_owned(),
        |path| {
            format!(
                "planning and applying {}",
                printable(&path.to_string_lossy())
            )
        },
    );
    println!("Needed for {what}:");
    let mut missing = Vec::new();
    for requirement in required {
        let (mark, permission) = match granted {
            None => ("?", requirement.need.least()),
            Some((kind, names)) if requirement.need.is_met_by(kind, names) => {
                ("ok", requirement.need.least_for(kind))
            }
            Some((kind, _)) => {
                let permission = requirement.need.least_for(kind);
                missing.push(format!("{permission} ({})", requirement.why));
                ("MISSING", permission)
            }
        };
        println!("  {mark:<8} {permission:<40} {}", requirement.why);
    }
    missing
}

/// Every access plan and apply may need, without a manifest.
fn everything(methods: preflight::MethodsReadable) -> Vec<Requirement> {
    let requirement = |need, why: &str| Requirement {
        need,
        why: why.to_owned(),
    };
    let mut out = vec![
        requirement(
            Resource::SignInPreferences.read(),
            "reading signInPreferences",
        ),
        requirement(Resource::Requirements.read(), "reading perUserMfaState"),
        requirement(Resource::UserBasic.read(), "resolving userPrincipalNames"),
        requirement(
            Resource::SignInPreferences.write(),
            "changing preferredMethod and systemPreferred",
        ),
        requirement(Resource::Requirements.write(), "changing perUserMfaState"),
    ];
    if methods.0 {
        out.insert(
            1,
            requirement(
                Resource::Methods.read(),
                "checking registered methods before a preferred-method change",
            ),
        );
    }
    out
}

/// `2026-11-23T15:40:00Z (in 59 min)`.
fn when(at: SystemTime) -> String {
    let stamp = jiff::Timestamp::try_from(at)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .unwrap_or_else(|_| "(unreadable)".to_owned());
    match at.duration_since(SystemTime::now()) {
        Ok(left) => format!("{stamp} (in {} min)", left.as_secs() / 60),
        Err(_) => format!("{stamp} (expired)"),
    }
}
