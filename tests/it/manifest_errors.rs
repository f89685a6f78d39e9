//! Bad manifests fail with their location, before any request.

use mfactl::emulator::Tenant;

use crate::support::{Scenario, mfactl, stderr};

#[test]
fn bad_yaml_manifest_fails_with_line_numbers_and_sends_nothing() {
    let scenario = Scenario::new(Tenant::generate(5, 1));
    let manifest = scenario.write(
        "bad.yaml",
        "version: 1\nusers:\n  - user: megan@contoso.com\n    preferredMethod: fax\n  - user: lee@contoso.com\n    systemPreferred: maybe\n",
    );
    let path = manifest.to_str().unwrap();
    for args in [vec!["plan", path], vec!["apply", path, "--auto-approve"]] {
        let out = scenario.run(&args);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains("bad.yaml:4"), "{err}");
        assert!(err.contains("fax"), "{err}");
        assert!(
            err.contains("bad.yaml:6"),
            "every problem is reported: {err}"
        );
    }
    assert_eq!(scenario.stats().requests, 0, "nothing was sent");
}

#[test]
fn bad_csv_manifest_fails_with_row_numbers() {
    let scenario = Scenario::new(Tenant::generate(5, 1));
    let manifest = scenario.write(
        "bad.csv",
        "user,preferredMethod,systemPreferred,perUserMfaState\nmegan@contoso.com,oath,,\n,sms,,\nlee@contoso.com,,,sometimes\n",
    );
    let out = scenario.run(&["plan", manifest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("row 3"), "{err}");
    assert!(err.contains("row 4"), "{err}");
    assert!(err.contains("sometimes"), "{err}");
    assert_eq!(scenario.stats().requests, 0);
}

#[test]
fn validate_checks_without_graph() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "version: 1\ndefaults:\n  systemPreferred: true\nusers:\n  - user: megan@contoso.com\n    preferredMethod: Oath\n",
    )
    .unwrap();
    let out = mfactl()
        .args(["validate", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok, 1 users"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\nusers:\n  - user: megan@contoso.com\n    preferedMethod: oath\n",
    )
    .unwrap();
    let out = mfactl()
        .args(["validate", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("bad.yaml:4"), "{err}");
    assert!(
        err.contains("preferredMethod"),
        "suggests the right name: {err}"
    );
}
