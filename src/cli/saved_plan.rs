//! A plan as it is saved for `mfactl apply PLAN.json`: stamped with when and from what it was
//! made, sealed with the plan key, written readable by you only. Shared by plan (`--out`) and
//! apply (the plan a manifest apply saves beside its journal, for `--resume`).

use std::path::Path;
use std::time::Duration;

use super::args::ManifestArgs;
use super::journal::shown;
use super::output::OutputFile;
use mfactl::plan::Plan;
use mfactl::plan::saved::{self, SourceFile};
use mfactl::plan::seal::PlanKey;

/// Records in `plan` when it was made and the files it was made from: what a saved plan
/// carries to be trusted, and what reports say they come from.
pub fn stamp(plan: &mut Plan, manifest: &Path, reading: &ManifestArgs) -> miette::Result<()> {
    let source = |path: &Path| {
        SourceFile::of(path).map_err(|error| {
            miette::miette!(
                "cannot read {} again to record its checksum: {error}",
                mfactl::text::printable(&path.display().to_string())
            )
        })
    };
    plan.created = Some(jiff::Timestamp::now().to_string());
    plan.manifest = Some(source(manifest)?);
    plan.policy_file = reading.policy.as_deref().map(source).transpose()?;
    Ok(())
}

/// The plan key that seals saved plans ([`PlanKey`]): `MFACTL_PLAN_KEY`, or the key file,
/// made on first use.
pub fn plan_key() -> miette::Result<PlanKey> {
    PlanKey::from_environment(true)
        .map_err(|error| miette::miette!(help = error.help(), "{error}; nothing was sent"))?
        .ok_or_else(|| miette::miette!("no plan key could be made; nothing was sent"))
}

/// Writes `plan` as a saved plan (0600, atomically), sealed with `key`; returns its checksum.
pub fn save(out: &OutputFile, plan: &Plan, key: &PlanKey) -> miette::Result<String> {
    let mut checksum = String::new();
    out.write(|file| {
        checksum = saved::write(plan, file, key)?;
        Ok(())
    })?;
    Ok(checksum)
}

/// Reads a saved plan and refuses it, before any request, when it is of another format, was
/// edited (its seal is checked with `key`, when there is one), does not hold together, or is
/// older than `max_age`; its text comes back escaped for the terminal. `remake` says how to
/// make the plan again, for the help.
pub fn load_checked(
    path: &Path,
    key: Option<&PlanKey>,
    max_age: Duration,
    remake: &str,
) -> miette::Result<Plan> {
    let mut plan = saved::load(path, key).map_err(|error| {
        miette::miette!(
            help = error.help(),
            "{}; nothing was sent",
            mfactl::text::printable(&error.to_string())
        )
    })?;
    saved::check_contents(&plan).map_err(|problems| {
        miette::miette!(
            help = format!(
                "a plan mfactl saved holds together; make it again ({remake}) and review it"
            ),
            "{} is refused:\n  {}\nnothing was sent",
            shown(path),
            problems.join("\n  ")
        )
    })?;
    saved::escape_text(&mut plan);
    saved::check_age(&plan, jiff::Timestamp::now(), max_age).map_err(|reason| {
        miette::miette!(
            help = format!(
                "make the plan again ({remake}), or allow an older one with --max-plan-age"
            ),
            "{} is refused: {reason}; nothing was sent",
            shown(path)
        )
    })?;
    Ok(plan)
}
