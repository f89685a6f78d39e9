//! `mfactl export`: the live state of a tenant's users as a manifest whose plan is empty, or as
//! an emulator tenant file. Reads only; the file is written 0600 under a temporary name and
//! renamed when the export is whole, so a failed export never leaves half a file behind.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use miette::miette;

use super::args::{GraphArgs, LARGE_TENANT, ReadPathArg, TOKEN_HELP};
use super::connection::{Connection, say_read_path};
use super::exit;
use super::output::OutputFile;
use super::sign_in::check_permissions;
use mfactl::engine::export::{ExportFormat, Selection};
use mfactl::engine::{self, preflight};
use mfactl::manifest::write::ManifestFormat;
use mfactl::manifest::{self, check_user};
use mfactl::text::{printable, thousands};

#[derive(Debug, Args)]
#[command(after_help = TOKEN_HELP)]
pub struct ExportArgs {
    /// Where to write: a manifest (CSV by a .csv extension, YAML otherwise) or, with `--as
    /// tenant`, a tenant file (YAML). Readable by you only; replaced only when the export is
    /// whole.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Only the users in this group, directly or through nested groups: its object id or its
    /// display name (which must name one group).
    #[arg(long, value_name = "GROUP", conflicts_with = "users")]
    pub group: Option<String>,
    /// Only these users: a manifest (.yaml, .yml or .csv; its users, whatever it manages) or a
    /// plain list, one userPrincipalName or object id a line (blank lines and # comments
    /// skipped).
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Write an emulator tenant file instead of a manifest (to rehearse a migration on a copy
    /// of the tenant with `mfactl emulator serve --tenant FILE`).
    #[arg(long = "as", value_enum, value_name = "KIND")]
    pub kind: Option<ExportKind>,
    /// How live values are read when every user is exported: auto and bulk take each user's
    /// perUserMfaState from the users listing (one read a user instead of two; a Graph that
    /// refuses it is read per user, saying so); per-user reads both endpoints of each user.
    #[arg(long, value_enum, value_name = "PATH", default_value = "auto")]
    pub read_path: ReadPathArg,
    #[command(flatten)]
    pub graph: GraphArgs,
}

/// What `--as` may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportKind {
    /// An emulator tenant file.
    Tenant,
}

/// Export's steps: check offline what and where, connect, export, say what was written.
pub async fn run(args: ExportArgs) -> miette::Result<u8> {
    // Everything that can be checked offline is, before the first request.
    let format = export_format(&args)?;
    let selection = match (&args.group, &args.users) {
        (Some(group), _) => Selection::Group(group.trim().to_owned()),
        (None, Some(path)) => Selection::Users(named_users(path)?),
        (None, None) => Selection::Everyone,
    };
    args.graph.graph_root()?;
    let out = OutputFile::check(&args.out, "--out")?;
    let connection = connect(&args, format, &selection).await?;
    let exported = export(connection, &selection, format, args.read_path, &out).await?;
    say_read_path(&exported.said);
    Ok(say(&args, format, &exported))
}

/// What `--as` and `--out`'s extension ask for; a tenant file is YAML.
fn export_format(args: &ExportArgs) -> miette::Result<ExportFormat> {
    match args.kind {
        Some(ExportKind::Tenant) => {
            if ManifestFormat::of(&args.out) == ManifestFormat::Csv {
                return Err(miette!(
                    help = "name the tenant file .yaml",
                    "a tenant file is YAML; --out {} says CSV",
                    printable(&args.out.display().to_string())
                ));
            }
            Ok(ExportFormat::Tenant)
        }
        None => Ok(ExportFormat::Manifest(ManifestFormat::of(&args.out))),
    }
}

/// Starts the emulator or signs in, and stops before the first request when the token lacks
/// a permission the export's reads need.
async fn connect(
    args: &ExportArgs,
    format: ExportFormat,
    selection: &Selection,
) -> miette::Result<Connection> {
    let tenant = args.graph.load_emulated_tenant()?;
    // The tenant's size picks Graph's throttling tier (--tenant-size overrides it). A listing's
    // size is unknown until it is read, so it is taken for the largest tier: a smaller tenant's
    // whole export (3 reads a user, 4 for a tenant file) fits in its tier's full bucket anyway
    // (3,500 RU under 50 users, 5,000 up to 500), and a 429 is still honoured.
    let size = match selection {
        Selection::Users(names) => names.len() as u64,
        _ => LARGE_TENANT,
    };
    let connection = Connection::open(&args.graph, tenant, size).await?;
    check_permissions(
        connection.tokens(),
        &preflight::export_reads(
            format == ExportFormat::Tenant,
            matches!(selection, Selection::Group(_)),
            args.graph.methods_readable(),
        ),
    )?;
    Ok(connection)
}

/// Reads and writes the users (to a staged file, renamed into place when whole); then says
/// what the run sent to Graph and stops the emulator, whether it succeeded or not.
async fn export(
    mut connection: Connection,
    selection: &Selection,
    format: ExportFormat,
    read_path: ReadPathArg,
    out: &OutputFile,
) -> miette::Result<engine::export::Exported> {
    let started = Instant::now();
    let exported = async {
        let tenant = connection.identify().await?;
        let mut staged = out.stage()?;
        let exported = engine::export::export(
            &connection.client,
            &tenant,
            selection,
            format,
            connection.concurrency,
            read_path.path(),
            staged.writer(),
        )
        .await
        .map_err(|error| match error {
            engine::export::ExportError::Run(error) => connection.stop(error),
            other => miette!("{other}; nothing was written"),
        })?;
        staged.commit()?;
        Ok::<_, miette::Report>(exported)
    }
    .await;
    connection.finish(started).await;
    exported
}

/// What was written, on stderr; 1 when some named users were not found.
fn say(args: &ExportArgs, format: ExportFormat, exported: &engine::export::Exported) -> u8 {
    let mut line = format!(
        "Exported {} {} to {}",
        thousands(exported.users),
        if exported.users == 1 { "user" } else { "users" },
        printable(&args.out.display().to_string())
    );
    if format == ExportFormat::Tenant {
        line.push_str(&format!(", with {} groups", thousands(exported.groups)));
    }
    if exported.fields_left_out > 0 {
        line.push_str(&format!(
            "; {} fields left out (no value a manifest can hold, e.g. no preferred method: not managed)",
            thousands(exported.fields_left_out)
        ));
    }
    eprintln!("{line}");
    if exported.not_found.is_empty() {
        return exit::OK;
    }
    let names: Vec<String> = exported
        .not_found
        .iter()
        .map(|name| printable(name).into_owned())
        .collect();
    eprintln!(
        "error: {} not found, not exported: {}",
        thousands(names.len() as u64),
        names.join(", ")
    );
    exit::ERROR
}

/// The users `--users FILE` names, in file order: a manifest's users (`.yaml`, `.yml`,
/// `.csv`), or one name a line. Every invalid name is reported at once, with its line.
fn named_users(path: &Path) -> miette::Result<Vec<String>> {
    let is_manifest = path.extension().is_some_and(|ext| {
        ["yaml", "yml", "csv"]
            .iter()
            .any(|known| ext.eq_ignore_ascii_case(known))
    });
    if is_manifest {
        let loaded = manifest::load(path).map_err(miette::Report::new)?;
        return Ok(loaded.users.iter().map(|u| u.user.to_string()).collect());
    }
    let shown = printable(&path.display().to_string()).into_owned();
    let cannot = |error: std::io::Error| miette!("cannot read --users {shown}: {error}");
    let mut reader = std::io::BufReader::new(mfactl::files::open_regular(path).map_err(cannot)?);
    let mut names = Vec::new();
    let mut problems = Vec::new();
    let mut line = Vec::new();
    for number in 0.. {
        // A name is at most 113 characters: a longer line is not a list of names.
        let read = mfactl::files::read_line_capped(&mut reader, &mut line, 4096)
            .map_err(|e| miette!("cannot read --users {shown}: line {}: {e}", number + 1))?;
        if read == 0 {
            break;
        }
        let Ok(line) = std::str::from_utf8(&line) else {
            problems.push(format!("{shown}:{}: not UTF-8 text", number + 1));
            continue;
        };
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        match check_user(name) {
            Ok(()) => names.push(name.to_owned()),
            Err(problem) => problems.push(format!("{shown}:{}: {problem}", number + 1)),
        }
    }
    match problems.as_slice() {
        [] => Ok(names),
        many => Err(miette!(
            help = "one userPrincipalName or object id a line; nothing was sent",
            "{} invalid {} in --users {shown}:\n  {}",
            many.len(),
            if many.len() == 1 { "name" } else { "names" },
            many.join("\n  ")
        )),
    }
}
