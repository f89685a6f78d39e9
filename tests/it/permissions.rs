//! Least privilege (issue 7): a token missing one permission is found out by a handful of
//! refused requests, with a message naming the permission, and costs nothing else.

use std::sync::Mutex;

use mfactl_emulator::Tenant;
use serde_json::json;

use crate::fault_proxy::{Action, FaultProxy, RequestHead};
use crate::support::{Scenario, manifest_changing_everyone, stderr, stdout, to_yaml};

/// Graph's answer to a write the token may not make.
fn denied() -> Action {
    Action::Respond {
        status: 403,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: json!({"error": {"code": "Authorization_RequestDenied",
                               "message": "Insufficient privileges to complete the operation."}})
        .to_string()
        .into_bytes(),
    }
}

#[test]
fn writes_always_refused_on_one_endpoint_stop_after_a_handful_and_the_other_endpoint_lands() {
    let tenant = Tenant::generate(120, 21);
    let rows = manifest_changing_everyone(&tenant);
    let scenario = Scenario::new(tenant);
    let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
    let proxy = FaultProxy::in_front_of(&scenario.url());
    // The token may write signInPreferences but not requirements (reading both is allowed).
    let refused = Mutex::new(0u32);
    let refused_count = std::sync::Arc::new(Mutex::new(0u32));
    let counter = refused_count.clone();
    proxy.set_rule(move |head: &RequestHead, _| {
        if head.method == "PATCH" && head.path.ends_with("/authentication/requirements") {
            *refused.lock().unwrap() += 1;
            *counter.lock().unwrap() += 1;
            denied()
        } else {
            Action::Forward
        }
    });
    let out = proxy
        .mfactl(&[
            "apply",
            "--no-batch",
            yaml.to_str().unwrap(),
            "--auto-approve",
        ])
        .output()
        .unwrap();
    let (err, report) = (stderr(&out), stdout(&out));
    assert_eq!(out.status.code(), Some(1), "{err}\n{report}");
    // A handful of refusals, not one per user.
    let sent = *refused_count.lock().unwrap();
    assert!((1..=5).contains(&sent), "{sent} refused writes were sent");
    assert!(
        err.contains("writing requirements (per-user MFA state): the token lacks Policy.ReadWrite.AuthenticationMethod"),
        "{err}"
    );
    assert!(
        err.contains("Policy.ReadWrite.AuthenticationMethod with admin consent"),
        "{err}"
    );
    // Every signInPreferences write landed; no requirements value moved.
    let now = scenario.tenant();
    for (row, user) in rows.iter().zip(&now.users) {
        assert_eq!(
            Some(
                user.sign_in_preferences
                    .is_system_preferred_authentication_method_enabled
            ),
            row.system_preferred,
            "{}",
            row.user
        );
        assert_ne!(
            Some(user.per_user_mfa_state),
            row.per_user_mfa_state,
            "{}",
            row.user
        );
    }
    // Only the users actually refused are failed; the rest are still planned, not failed.
    let failed = report.matches("failed").count();
    assert!(report.contains(&format!("{sent} failed")), "{report}");
    assert!(
        report.contains(&format!("{} not reached", 120 - sent)),
        "{report} {failed}"
    );
    eprintln!("{err}\n{report}");
    // One message for the run, not a warning per user.
    assert!(err.matches("WARN").count() <= sent as usize + 1, "{err}");
}
