//! A plan as it is saved for `mfactl apply PLAN.json`: stamped with when and from what it was
//! made, sealed with the plan key, written readable by you only. Shared by plan (`--out`) and
//! apply (the plan a manifest apply saves beside its journal, for `--resume`).

use std::path::Path;

use super::args::ManifestArgs;
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
