//! What `apply PLAN.json` checks again that the plan's seal cannot vouch for: a plan is a file,
//! and whoever could seal it (a stolen key, another machine's build) could also have left a
//! guard out of it. So, independently of the seal, the guards of the manifest the plan was made
//! from are applied again while that manifest can still be read: its `protect:` list (resolved
//! to object ids afresh) keeps its accounts from any write whatever the plan says, and its
//! `maxChanges:` limits the run together with the plan's own. (Each user's name is checked
//! against its object id by the apply itself, just before that user's first write.)

use std::path::Path;

use mfactl::engine::preflight::Requirement;
use mfactl::engine::{self, RunError};
use mfactl::graph::GraphClient;
use mfactl::graph::permissions::Resource;
use mfactl::plan::{Plan, Status};
use mfactl::text::printable;

/// Applies the plan's manifest's `protect:` and `maxChanges:` to `plan`, when the manifest is
/// still a readable regular file; says on stderr what it could not read or what it caught.
pub async fn manifest_guards(
    client: &GraphClient,
    plan: &mut Plan,
    concurrency: usize,
) -> Result<(), RunError> {
    let Some(source) = &plan.manifest else {
        return Ok(());
    };
    let path = Path::new(&source.path).to_owned();
    let guards = match read_guards(&path) {
        Ok(guards) => guards,
        Err(reason) => {
            eprintln!(
                "Note: the plan's manifest {} cannot be read again ({reason}); the plan's own \
                 guards apply.",
                printable(&source.path)
            );
            return Ok(());
        }
    };
    if let Some(limit) = guards.max_changes {
        plan.max_changes = Some(plan.max_changes.map_or(limit, |own| own.min(limit)));
    }
    if guards.protect.is_empty() {
        return Ok(());
    }
    let protected = engine::resolve_protected(client, &guards.protect, concurrency).await?;
    let mut caught = Vec::new();
    for user in &mut plan.users {
        let was = user.status;
        protected.mark(user);
        if was != Status::Protected && user.status == Status::Protected {
            caught.push(printable(&user.user).into_owned());
        }
    }
    if !caught.is_empty() {
        eprintln!(
            "Protected by the manifest's protect: list and not written, though the plan would \
             have written them: {}",
            caught.join(", ")
        );
        let estimate = plan.summary.estimate;
        plan.summary = plan.count(plan.summary.users);
        plan.summary.estimate = estimate;
    }
    Ok(())
}

/// What a manifest says of the guards.
struct Guards {
    protect: Vec<String>,
    max_changes: Option<u64>,
}

/// The manifest's guards; why not, when it is not a readable regular file or not a valid
/// manifest. A CSV manifest has no room for guards.
fn read_guards(path: &Path) -> Result<Guards, String> {
    // Refused before the manifest reader opens it: a device or a FIFO would never end.
    mfactl::files::open_regular(path).map_err(|error| error.to_string())?;
    let is_csv = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
    if is_csv {
        return Ok(Guards {
            protect: Vec::new(),
            max_changes: None,
        });
    }
    let manifest =
        mfactl::manifest::load(path).map_err(|_| "it is no longer a valid manifest".to_owned())?;
    Ok(Guards {
        protect: manifest.protect,
        max_changes: manifest.max_changes,
    })
}

/// The reads checking names need: a saved plan's users named by userPrincipalName are looked up
/// by object id before their first write.
pub fn name_reads(plan: &Plan) -> Vec<Requirement> {
    let named = plan
        .users
        .iter()
        .filter(|u| matches!(u.status, Status::Change | Status::Blocked))
        .filter(|u| u.write_count() > 0 && uuid::Uuid::parse_str(&u.user).is_err())
        .count();
    if named == 0 {
        return Vec::new();
    }
    vec![Requirement {
        need: Resource::Users.read(),
        why: format!("checking that {named} users' object ids still carry the plan's names"),
    }]
}
