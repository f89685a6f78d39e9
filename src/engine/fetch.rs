//! Fetch live state concurrently and plan each user as its answers arrive.
//!
//! Only the endpoints whose fields the manifest manages for a user are read; registered methods
//! only when a preferred method would change. A user Graph does not know is `not_found`, a user
//! whose reads failed after retries is `failed`; neither stops the others.

use futures::StreamExt;
use futures::stream;

use super::progress::Progress;
use super::{Breaker, RunError};
use crate::graph::{GraphClient, GraphError};
use crate::manifest::{DesiredUser, Manifest};
use crate::model::Endpoint;
use crate::plan::{self, LiveUser, Plan, Status, UserError, UserPlan};

/// Reads the live state of every manifest user and returns the plan.
/// `concurrency` bounds users in flight (the transport bounds requests in flight).
///
/// A 401, or 403s before anything succeeded, stop the run (see [`Breaker`]): every other user
/// would get the same answer, and 50,000 identical failures help nobody.
pub async fn plan(
    client: &GraphClient,
    manifest: &Manifest,
    concurrency: usize,
) -> Result<Plan, RunError> {
    let progress = Progress::new("fetch", manifest.users.len() as u64);
    let breaker = Breaker::default();
    let stop = &breaker;
    let mut not_in_sync = Vec::new();
    let mut results = stream::iter(manifest.users.iter().enumerate())
        .map(|(order, desired)| async move {
            if stop.is_tripped() {
                return None;
            }
            Some((order, plan_user(client, desired, stop).await))
        })
        .buffer_unordered(concurrency.max(1) * 2);
    while let Some(result) = results.next().await {
        let Some((order, user)) = result else {
            continue;
        };
        progress.inc(1);
        if user.status != Status::InSync {
            not_in_sync.push((order, user));
        }
    }
    drop(results);
    if let Some(error) = breaker.into_error() {
        return Err(error);
    }
    Ok(Plan::new(
        client.transport().root(),
        manifest.users.len() as u64,
        not_in_sync,
    ))
}

async fn plan_user(client: &GraphClient, desired: &DesiredUser, stop: &Breaker) -> UserPlan {
    let sign_in = async {
        if desired.manages_sign_in_preferences() {
            Some(client.sign_in_preferences(&desired.user).await)
        } else {
            None
        }
    };
    let requirements = async {
        if desired.manages_requirements() {
            Some(client.requirements(&desired.user).await)
        } else {
            None
        }
    };
    let (sign_in, requirements) = futures::join!(sign_in, requirements);

    let unreadable = |endpoint, error: GraphError| {
        stop.failure(&error);
        unreadable(desired, endpoint, &error)
    };
    let mut live = LiveUser::default();
    match sign_in.transpose() {
        Ok(value) => live.sign_in = value,
        Err(error) => return unreadable(Some(Endpoint::SignInPreferences), error),
    }
    match requirements.transpose() {
        Ok(value) => live.requirements = value,
        Err(error) => return unreadable(Some(Endpoint::Requirements), error),
    }
    if live.sign_in.is_some() || live.requirements.is_some() {
        stop.success();
    }
    if plan::needs_methods(desired, &live) {
        match client.registered_methods(&desired.user).await {
            Ok(methods) => live.methods = Some(methods),
            Err(error) => return unreadable(None, error),
        }
    }
    plan::diff(desired, &live)
}

/// The plan entry for a user whose state could not be read.
fn unreadable(desired: &DesiredUser, endpoint: Option<Endpoint>, error: &GraphError) -> UserPlan {
    let status = if error.is_not_found() {
        Status::NotFound
    } else if error.status() == Some(401) {
        Status::Failed // the run stops with one message saying so; not one line per user
    } else {
        tracing::warn!(user = %desired.user, %error, "could not read the user's live state");
        Status::Failed
    };
    UserPlan {
        user: desired.user.clone(),
        id: plan::object_id(&desired.user),
        status,
        fields: Vec::new(),
        writes: Vec::new(),
        reason: None,
        notes: Vec::new(),
        error: Some(user_error(endpoint, error)),
    }
}

/// A Graph error as recorded against a user.
pub(super) fn user_error(endpoint: Option<Endpoint>, error: &GraphError) -> UserError {
    UserError {
        endpoint,
        status: error.status(),
        code: error.code().to_owned(),
        message: error.message().to_owned(),
        request_id: error.request_id().map(str::to_owned),
    }
}
