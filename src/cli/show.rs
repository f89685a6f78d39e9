//! `mfactl show USER...`: one user at a glance — the three managed values, what Graph reports,
//! the registered methods, which preferred methods are usable, and the tenant policy's verdict.
//! Reads only. Every user name is checked before anything is sent.

use std::time::Instant;

use clap::Args;
use miette::miette;

use super::args::{GraphArgs, OutputFormat, TOKEN_HELP};
use super::connection::Connection;
use super::exit;
use super::output;
use super::sign_in::check_permissions;
use mfactl::engine::show::ShowDocument;
use mfactl::engine::{self, preflight};
use mfactl::manifest::check_user;
use mfactl::model::{MethodListProblem, PreferredMethod, PreferredMethods};
use mfactl::report;
use mfactl::text::printable;

#[derive(Debug, Args)]
#[command(after_help = TOKEN_HELP)]
pub struct ShowArgs {
    /// The users to show: userPrincipalName or object id (GUID), one or more.
    #[arg(value_name = "USER", required = true, num_args = 1..)]
    pub users: Vec<String>,
    /// How to print: text for people, or JSON for scripts (schemas/show.schema.json).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Also say which method a manifest's preferredMethod list gives each user (the first
    /// they have registered, as plan sets it): methods in order, separated by `,` or `|`,
    /// e.g. push,oath,sms.
    #[arg(long, value_name = "LIST", value_parser = parse_method_list)]
    pub preferred_method: Option<PreferredMethods>,
    #[command(flatten)]
    pub graph: GraphArgs,
}

/// The users as given (trimmed), or every invalid one at once; nothing is sent either way.
fn checked_users(given: &[String]) -> miette::Result<Vec<String>> {
    let users: Vec<String> = given.iter().map(|u| u.trim().to_owned()).collect();
    let problems: Vec<String> = users
        .iter()
        .filter_map(|user| check_user(user).err())
        .map(|problem| problem.to_string())
        .collect();
    match problems.as_slice() {
        [] => Ok(users),
        [one] => Err(miette!(help = "nothing was sent", "{one}")),
        many => Err(miette!(
            help = "nothing was sent",
            "{} user names are not valid:\n  {}",
            many.len(),
            many.join("\n  ")
        )),
    }
}

/// `push,oath,sms` or `push|oath|sms`: the methods in order, each once (a usage error
/// otherwise, before anything is sent).
fn parse_method_list(text: &str) -> Result<PreferredMethods, String> {
    let methods = text
        .split([',', '|'])
        .map(|item| {
            PreferredMethod::parse(item).ok_or_else(|| {
                format!(
                    "{} is not one of {}",
                    printable(item.trim()),
                    PreferredMethod::expected()
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    PreferredMethods::new(&methods).map_err(|problem| match problem {
        MethodListProblem::Empty => "give at least one method".to_owned(),
        MethodListProblem::Repeated(method) => format!("{method} is named twice"),
    })
}

/// Show's steps: check the names offline, connect, read, print, say who was not shown.
pub async fn run(args: ShowArgs) -> miette::Result<u8> {
    // Everything that can be checked offline is, before the first request.
    let users = checked_users(&args.users)?;
    args.graph.graph_root()?;
    let connection = connect(&args, &users).await?;
    let document = read(&args, connection, &users).await?;
    output::to_stdout(|stdout| match args.format {
        OutputFormat::Text => report::render_show_text(&document, stdout),
        OutputFormat::Json => report::render_show_json(&document, stdout),
    })?;
    Ok(say_missing(&document))
}

/// Starts the emulator or signs in, and stops before the first request when the token lacks
/// a permission the reads need.
async fn connect(args: &ShowArgs, users: &[String]) -> miette::Result<Connection> {
    let tenant = args.graph.load_emulated_tenant()?;
    let connection = Connection::open(&args.graph, tenant, users.len() as u64).await?;
    check_permissions(
        connection.tokens(),
        &preflight::show_reads(users, args.graph.methods_readable()),
    )?;
    Ok(connection)
}

/// Reads the users (and the tenant's verdicts); then says what the run sent to Graph and stops
/// the emulator, whether reading succeeded or not.
async fn read(
    args: &ShowArgs,
    mut connection: Connection,
    users: &[String],
) -> miette::Result<ShowDocument> {
    let started = Instant::now();
    let shown = async {
        let tenant = connection.identify().await?;
        let mut document = engine::show(
            &connection.client,
            users,
            args.preferred_method,
            connection.concurrency,
        )
        .await
        .map_err(|error| connection.stop(error))?;
        document.tenant_id = tenant.id;
        document.tenant_domain = tenant.domain;
        Ok::<_, miette::Report>(document)
    }
    .await;
    connection.finish(started).await;
    shown
}

/// 0 when every user was shown; else 1, with the users not shown named on stderr too (with
/// `--format json` the reason would otherwise be inside the document).
fn say_missing(document: &ShowDocument) -> u8 {
    if document.all_found() {
        return exit::OK;
    }
    let missing: Vec<String> = document
        .users
        .iter()
        .filter(|u| u.status != engine::show::ViewStatus::Found)
        .map(|u| {
            let what = match u.status {
                engine::show::ViewStatus::NotFound => "not found",
                _ => "could not be read",
            };
            format!("{} ({what})", printable(&u.user))
        })
        .collect();
    eprintln!(
        "error: {} of {} users not shown: {}",
        missing.len(),
        document.summary.users,
        missing.join(", ")
    );
    exit::ERROR
}
