//! `mfactl completions SHELL` and `mfactl man`: shell completion scripts and manual pages,
//! generated from the same clap definitions the parser uses, so they never name a flag the
//! binary does not take. Contacts nobody and reads no file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use miette::{IntoDiagnostic as _, WrapErr as _};

use super::exit;

/// The name the scripts complete and the pages are titled with: the binary's.
const BIN: &str = "mfactl";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for. Load the script from the shell's start-up file, e.g. bash:
    /// `source <(mfactl completions bash)`; zsh: `mfactl completions zsh > ~/.zfunc/_mfactl`
    /// (with `~/.zfunc` on `fpath`); fish: `mfactl completions fish >
    /// ~/.config/fish/completions/mfactl.fish`; PowerShell: `mfactl completions powershell |
    /// Out-String | Invoke-Expression` in `$PROFILE`.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command (`mfactl.1`, `mfactl-plan.1`, `mfactl-emulator-serve.1`, ...)
    /// into this existing folder, instead of `mfactl.1` alone on stdout. Put the folder on
    /// MANPATH, or copy the pages into a `man1` folder.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Prints the completion script of `cli` (the whole command line's clap definition) for
/// `args.shell` on stdout.
pub fn completions(args: &CompletionsArgs, mut cli: clap::Command) -> miette::Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, BIN, &mut script);
    write_stdout(&script)?;
    Ok(exit::OK)
}

/// Prints `mfactl.1` on stdout, or writes every command's page into `--out-dir`; `cli` is the
/// whole command line's clap definition.
pub fn man(args: &ManArgs, cli: clap::Command) -> miette::Result<u8> {
    match &args.out_dir {
        None => {
            let mut page = Vec::new();
            render_page(cli, &mut page).into_diagnostic()?;
            write_stdout(&page)?;
        }
        Some(dir) => {
            let written = write_pages(cli, dir).into_diagnostic().wrap_err_with(|| {
                format!("cannot write the manual pages into {}", dir.display())
            })?;
            eprintln!(
                "Wrote {} manual pages into {}",
                written,
                mfactl::text::printable(&dir.display().to_string())
            );
        }
    }
    Ok(exit::OK)
}

/// What each exit code means, for the root page's EXIT STATUS section (roff-escaped).
const EXIT_STATUS: &[(u8, &str)] = &[
    (
        exit::OK,
        "Success; with \\fBplan \\-\\-detailed\\-exitcode\\fR: nothing to write.",
    ),
    (
        exit::CHANGES,
        "\\fBplan \\-\\-detailed\\-exitcode\\fR: writes are planned.",
    ),
    (
        exit::NOT_CONVERGED,
        "\\fBapply\\fR finished but some users did not converge (failed, blocked, not found, \
         changed since the plan, unverified); \\fBrollback\\fR left out values a manifest cannot \
         express.",
    ),
    (
        exit::ERROR,
        "An error: a bad manifest, no token, Graph unreachable or refusing, a refused saved plan.",
    ),
    (
        exit::USAGE,
        "A usage error: the command line cannot be parsed (never 2, so a typo cannot read as \
         drift).",
    ),
    (
        exit::INTERRUPTED,
        "\\fBapply\\fR stopped by Ctrl\\-C (the report and stderr say how to resume).",
    ),
];

/// One command's page, titled after the whole command path (`mfactl-emulator-serve`); the root
/// page also says what the exit codes mean.
fn render_page(command: clap::Command, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let source = format!("mfactl {}", command.get_version().unwrap_or_default());
    let root = command.get_name() == BIN;
    let man = clap_mangen::Man::new(command)
        .manual("mfactl manual")
        .source(source);
    if !root {
        return man.render(out);
    }
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for (code, meaning) in EXIT_STATUS {
        writeln!(out, ".TP\n\\fB{code}\\fR\n{meaning}")?;
    }
    man.render_version_section(out)
}

/// Writes the page of every command that is not hidden (the help subcommand has none); returns
/// how many. Pages are not secret: they are written with the usual permissions.
fn write_pages(cli: clap::Command, dir: &Path) -> std::io::Result<usize> {
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such folder",
        ));
    }
    let mut root = cli.disable_help_subcommand(true);
    // Building names every subcommand after its path (`mfactl-plan`), as the pages are named.
    root.build();
    let mut pending = vec![root];
    let mut written = 0;
    while let Some(command) = pending.pop() {
        pending.extend(
            command
                .get_subcommands()
                .filter(|c| !c.is_hide_set())
                .cloned(),
        );
        let name = command
            .get_display_name()
            .unwrap_or_else(|| command.get_name())
            .to_owned();
        let mut page = Vec::new();
        render_page(command, &mut page)?;
        std::fs::write(dir.join(format!("{name}.1")), page)?;
        written += 1;
    }
    Ok(written)
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> miette::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error)
            .into_diagnostic()
            .wrap_err("cannot write to stdout"),
        _ => Ok(()),
    }
}
