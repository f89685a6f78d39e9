//! The tenant's authentication methods policy in a run: resolve the groups the manifest names
//! by display name, read the policy once, plan it; at apply time re-read, refuse to write over
//! a change made since the plan, PATCH the changed sub-objects, journal it like a user's write.
//!
//! Every group name is resolved before anything is written: an unknown or ambiguous name stops
//! the run with the manifest location, since writing a policy that targets the wrong group (or
//! none) is worse than not writing it.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as Json;

use super::journal::{Journal, JournalError};
use super::outcome::{failure, user_error, written};
use super::resume::Earlier;
use super::{Breaker, RunError};
use crate::graph::permissions::Resource;
use crate::graph::{GraphClient, GraphError, Purpose};
use crate::manifest::policy::{DesiredPolicy, DesiredTarget, DesiredValue, TargetId};
use crate::plan::policy::{self as planned, PolicyPlan};
use crate::plan::{Status, UserError, WriteResult};

/// The policy's plan, and what it means for the users' preferred methods.
pub(super) struct PlannedPolicy {
    pub plan: PolicyPlan,
    /// When system-preferred MFA will be on for all users: the excluded groups, by the name the
    /// manifest gave them (or their id).
    pub system_preferred_for_all: Option<Vec<String>>,
    /// Whether it is on because it is left Microsoft managed (`state: default`).
    pub system_preferred_managed: bool,
}

/// A read that failed: as the run stops on it.
fn stop(resource: Resource, error: GraphError) -> RunError {
    if error.status() == Some(403) {
        return RunError::Forbidden {
            needs: vec![resource.read()],
            error,
        };
    }
    let breaker = Breaker::default();
    breaker.failure(resource.read(), &error);
    breaker
        .into_error()
        .unwrap_or(RunError::PolicyUnreadable(error))
}

/// Every display-name target in the manifest, with where it is written.
fn named_targets(policy: &DesiredPolicy) -> Vec<(&str, u64, u64)> {
    let mut out = Vec::new();
    for part in &policy.parts {
        for property in &part.properties {
            let targets: &[DesiredTarget] = match &property.value {
                DesiredValue::Targets(targets) => targets,
                DesiredValue::Target(target) => std::slice::from_ref(target),
                DesiredValue::Plain(_) => &[],
            };
            for target in targets {
                if let TargetId::DisplayName(name) = &target.id {
                    out.push((name.as_str(), target.line, target.column));
                }
            }
        }
    }
    out
}

/// Resolves the group names, reads the policy, and plans it.
pub(super) async fn plan(
    client: &GraphClient,
    source: &Path,
    desired: &DesiredPolicy,
) -> Result<PlannedPolicy, RunError> {
    let named = named_targets(desired);
    let mut ids: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, _, _) in &named {
        if ids.contains_key(name) {
            continue;
        }
        let found = client
            .groups_named(name)
            .await
            .map_err(|error| stop(Resource::Groups, error))?;
        ids.insert(name, found);
    }
    let mut problems = Vec::new();
    for (name, line, column) in &named {
        let found = &ids[name];
        let shown = crate::text::printable(name);
        let file = source.display();
        match found.len() {
            1 => {}
            0 => problems.push(format!(
                "{file}:{line}:{column}: error[unknown-group]: no group is named \"{shown}\"; \
                 give the group's exact display name or its object id"
            )),
            n => problems.push(format!(
                "{file}:{line}:{column}: error[ambiguous-group]: {n} groups are named \
                 \"{shown}\" ({}); name the group by its object id",
                found.join(", ")
            )),
        }
    }
    if !problems.is_empty() {
        return Err(RunError::PolicyTargets(problems));
    }
    let live = client
        .authentication_methods_policy_document(Purpose::Read)
        .await
        .map_err(|error| stop(Resource::Policy, error))?;
    let resolve = |name: &str| ids.get(name).and_then(|found| found.first().cloned());
    let wanted = planned::wanted(desired, resolve);
    let plan = planned::diff(&wanted, &live);
    let system_preferred_for_all =
        planned::system_preferred_for_all(&wanted, &live).map(|excluded| {
            excluded
                .into_iter()
                .map(|id| {
                    ids.iter()
                        .find(|(_, found)| found.first() == Some(&id))
                        .map_or(id, |(name, _)| (*name).to_owned())
                })
                .collect()
        });
    Ok(PlannedPolicy {
        plan,
        system_preferred_for_all,
        system_preferred_managed: planned::system_preferred_is_microsoft_managed(&wanted, &live),
    })
}

/// Writes the policy when its plan has a write: re-read, compare the sub-objects the write
/// replaces with what the plan saw, journal the intent, PATCH, journal the result. Errs only
/// when the journal cannot be written.
pub(super) async fn apply(
    client: &GraphClient,
    policy: &mut PolicyPlan,
    journal: Option<&Journal>,
    earlier: Option<&Earlier>,
    breaker: &Breaker,
) -> Result<(), JournalError> {
    if policy.status != Status::Change || !policy.has_write() || breaker.is_tripped() {
        return Ok(());
    }
    if let Some(Earlier::Applied(result)) = earlier {
        // An earlier run of this plan made it: not sent again.
        policy.status = Status::Applied;
        policy.result = Some(result.clone());
        return Ok(());
    }
    let resource = Resource::Policy;
    let live = match client
        .authentication_methods_policy_document(Purpose::Reread)
        .await
    {
        Ok(live) => {
            breaker.success(resource.read());
            live
        }
        Err(error) => {
            breaker.failure(resource.read(), &error);
            tracing::warn!(%error, "could not read the authentication methods policy again");
            policy.status = Status::Failed;
            policy.error = Some(user_error(None, &error));
            return Ok(());
        }
    };
    if earlier == Some(&Earlier::Unsettled)
        && planned::parts_in(&policy.body)
            .into_iter()
            .all(|part| planned::live_part(&live, part) == planned::nested(&policy.body, part))
    {
        // The interrupted run's PATCH was made; its answer was lost with the run.
        let result = WriteResult::settled_by_read();
        if let Some(journal) = journal {
            journal.policy_result(&result)?;
        }
        policy.status = Status::Applied;
        policy.result = Some(result);
        return Ok(());
    }
    let drifted: Vec<&str> = planned::parts_in(&policy.before)
        .into_iter()
        .filter(|part| planned::live_part(&live, *part) != planned::nested(&policy.before, *part))
        .map(|part| part.as_str())
        .collect();
    if !drifted.is_empty() {
        let message = format!(
            "{} changed since the plan; nothing was written over it, run plan again",
            drifted.join(", ")
        );
        tracing::warn!("authenticationMethodsPolicy: {message}");
        policy.status = Status::Drifted;
        policy.error = Some(UserError {
            endpoint: None,
            status: None,
            code: "changedSincePlan".into(),
            message,
            request_id: None,
        });
        return Ok(());
    }
    if let Some(journal) = journal {
        journal.policy_intent(&policy.before, &policy.body)?;
    }
    let body = Json::Object(policy.body.clone());
    let result = match client.patch_policy(&body).await {
        Ok(outcome) => {
            breaker.success(resource.write());
            policy.status = Status::Applied;
            written(outcome)
        }
        Err(error) => {
            breaker.failure(resource.write(), &error);
            if !Breaker::is_run_wide(&error) {
                tracing::warn!(%error, "the authentication methods policy write failed");
            }
            policy.status = Status::Failed;
            policy.error = Some(user_error(None, &error));
            failure(&error)
        }
    };
    if let Some(journal) = journal {
        journal.policy_result(&result)?;
    }
    policy.result = Some(result);
    Ok(())
}
