//! Bad manifests fail with their location, before any request.

use mfactl_emulator::Tenant;

use crate::support::{Scenario, manifest_for, mfactl, stderr, to_csv};

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

/// Writes raw bytes (not UTF-8 text) into the scenario's directory.
fn write_bytes(scenario: &Scenario, name: &str, bytes: &[u8]) -> String {
    let path = scenario.dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// Whether any character of `text` could break a line, move the cursor or reorder text.
fn has_hidden_or_control(text: &str) -> bool {
    text.chars()
        .any(|c| c != '\n' && mfactl::manifest::is_hidden_or_control(c))
}

#[test]
fn dot_segment_and_malformed_users_are_refused_before_any_request() {
    let scenario = Scenario::new(Tenant::generate(5, 1));
    let yaml = scenario.write(
        "users.yaml",
        "version: 1\nusers:\n  - user: '..'\n    perUserMfaState: disabled\n  - user: '.'\n    \
         perUserMfaState: disabled\n  - user: megan@contoso\n  - user: adele_fabrikam.com#EXT#@contoso.onmicrosoft.com\n  \
         - user: \"$o'neil@contoso.com\"\n    preferredMethod: fax\n",
    );
    let csv = scenario.write(
        "users.csv",
        "user,perUserMfaState\n..,disabled\n.,disabled\n{071cc716-8147-4397-a5ba-b2105951cc0b},\n",
    );
    let yaml = yaml.to_str().unwrap();
    let csv = csv.to_str().unwrap();
    for args in [
        vec!["plan", yaml],
        vec!["apply", yaml, "--auto-approve"],
        vec!["plan", csv],
        vec!["apply", csv, "--auto-approve"],
    ] {
        let out = scenario.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        if args[1] == yaml {
            assert!(
                err.contains("users.yaml:3:11: error[invalid-user]: user \"..\" is not valid"),
                "{err}"
            );
            assert!(
                err.contains("users.yaml:5:11: error[invalid-user]: user \".\""),
                "{err}"
            );
            assert!(
                err.contains("users.yaml:7:11: error[invalid-user]"),
                "{err}"
            );
            // Guests and `$` names are users; the bad method beside one is still reported.
            assert!(
                err.contains("users.yaml:10:22: error[unknown-method]"),
                "{err}"
            );
            assert!(err.contains("4 problems in"), "{err}");
        } else {
            assert!(
                err.contains("users.csv: row 2, column user: error[invalid-user]"),
                "{err}"
            );
            assert!(
                err.contains("row 3, column user: error[invalid-user]"),
                "{err}"
            );
            assert!(
                err.contains(
                    "write the object id as Graph does, 071cc716-8147-4397-a5ba-b2105951cc0b"
                ),
                "{err}"
            );
        }
        assert!(
            err.contains("give the userPrincipalName (name@domain) or the object id (a GUID)"),
            "{err}"
        );
    }
    assert_eq!(scenario.stats().requests, 0, "nothing was sent");
}

#[test]
fn control_and_bidi_characters_cannot_forge_output_lines() {
    let scenario = Scenario::new(Tenant::generate(5, 1));
    let yaml = scenario.write(
        "forged.yaml",
        "version: 1\nusers:\n  - user: \"megan@contoso.com\\nPlan: 0 users to change\"\n  \
         - user: \"\\e[2Jlee@contoso.com\"\n  - user: \"adele\\u202Emoc.osotnoc@contoso.com\"\n  \
         - user: \"a\\u200Bb@contoso.com\"\n  - user: b@contoso.com\n    \"preferred\\e[1AMethod\": push\n",
    );
    let csv = scenario.write(
        "forged.csv",
        "user,preferredMethod,\"dis\u{1b}[2Jplay\"\n\"megan@contoso.com\nPlan: 0 users to change\",push,x\nb@contoso.com,\"fa\u{202e}x\",y\n",
    );
    for path in [&yaml, &csv] {
        let out = scenario.run(&["plan", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            !has_hidden_or_control(&err),
            "raw control or bidi character: {err:?}"
        );
        assert!(
            !err.lines().any(|line| line.starts_with("Plan:")),
            "a forged line: {err}"
        );
        assert!(err.contains("\\nPlan: 0 users to change"), "{err}");
        assert!(err.contains("error[invalid-user]"), "{err}");
    }
    let err = stderr(&scenario.run(&["plan", yaml.to_str().unwrap()]));
    for shown in [
        "\\u{1b}[2Jlee",
        "\\u{202e}",
        "\\u{200b}",
        "\"preferred\\u{1b}[1AMethod\"",
    ] {
        assert!(err.contains(shown), "{shown} in {err}");
    }
    let err = stderr(&scenario.run(&["plan", csv.to_str().unwrap()]));
    assert!(err.contains("\"fa\\u{202e}x\""), "{err}");
    assert!(err.contains("column dis\\u{1b}[2Jplay"), "{err}");
    assert_eq!(scenario.stats().requests, 0);
}

#[test]
fn semicolon_and_tab_separated_csv_plan_like_the_comma_file() {
    let tenant = Tenant::generate(30, 7);
    let (rows, _) = manifest_for(&tenant, false);
    let scenario = Scenario::new(tenant);
    let comma = to_csv(&rows);
    let (code, comma_plan) = scenario.plan_json(&scenario.write("comma.csv", &comma));
    assert_eq!(code, 2, "the manifest changes some users");
    for (name, separator) in [("semicolon.csv", ";"), ("tab.csv", "\t")] {
        let path = scenario.write(name, &comma.replace(',', separator));
        let (code, plan) = scenario.plan_json(&path);
        assert_eq!(code, 2, "{name}");
        assert_eq!(
            crate::support::comparable(plan),
            crate::support::comparable(comma_plan.clone()),
            "{name} plans like the comma file"
        );
    }
}

#[test]
fn a_semicolon_file_without_a_user_column_says_so() {
    let scenario = Scenario::new(Tenant::generate(5, 1));
    let path = scenario.write(
        "excel.csv",
        "mail;preferredMethod\nmegan@contoso.com;push\n",
    );
    let out = scenario.run(&["plan", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("error[missing-users]"), "{err}");
    assert!(
        err.contains("this looks like a `;`-separated file"),
        "{err}"
    );
    assert_eq!(scenario.stats().requests, 0);
}

#[test]
fn an_export_with_extra_columns_needs_ignore_unknown_columns() {
    let tenant = Tenant::generate(6, 3);
    let (rows, _) = manifest_for(&tenant, false);
    let scenario = Scenario::new(tenant);
    let mut export =
        String::from("displayName,userPrincipalName,mail,department,perUserMfaState\n");
    for row in &rows {
        let state = row.per_user_mfa_state.map_or("", |state| state.as_str());
        export.push_str(&format!(
            "\"Bowen, Megan\",{},x@y.com,Sales,{state}\n",
            row.user
        ));
    }
    let path = scenario.write("export.csv", &export);
    let path = path.to_str().unwrap();

    let out = scenario.run(&["plan", path]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.matches("error[unknown-field]").count(), 3, "{err}");
    assert!(
        err.contains("--ignore-unknown-columns"),
        "the help names the flag: {err}"
    );
    assert_eq!(scenario.stats().requests, 0);

    let out = mfactl()
        .args(["validate", path, "--ignore-unknown-columns"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok, 6 users"));
    let out = scenario.run(&["plan", path, "--ignore-unknown-columns", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = scenario.run(&["apply", path, "--ignore-unknown-columns", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(scenario.stats().requests > 0);

    // A misspelt known column is not skipped: it would leave a setting silently unmanaged.
    let typo = scenario.write(
        "typo.csv",
        "user,mail,perUserMfaStat\nmegan@contoso.com,x@y.com,disabled\n",
    );
    let out = scenario.run(&["plan", typo.to_str().unwrap(), "--ignore-unknown-columns"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("column perUserMfaStat: error[unknown-field]"),
        "{err}"
    );
    assert!(!err.contains("column mail"), "{err}");
}

#[test]
fn unclosed_quotes_nul_bytes_and_foreign_encodings_are_located() {
    let scenario = Scenario::new(Tenant::generate(5, 1));
    let cases: [(&str, &[u8], &str); 7] = [
        (
            "unclosed.csv",
            b"user,preferredMethod\nmegan@contoso.com,push\nlee@contoso.com,\"push\nadele@contoso.com,oath\n",
            "unclosed.csv: row 3, column preferredMethod: error[csv-syntax]: a quote (\") opens this cell and is never closed",
        ),
        (
            "nul.csv",
            b"user,preferredMethod\nmegan@contoso.com,pu\0sh\n",
            "nul.csv: row 2, column preferredMethod: error[csv-syntax]: this cell holds a NUL byte",
        ),
        (
            "latin1.csv",
            b"user,preferredMethod\nmegan@contoso.com,push\nj\xfcrgen@contoso.com,oath\n",
            "latin1.csv: row 3, column user: error[csv-syntax]: this cell is not UTF-8 text (byte 0xFC after \"j\")",
        ),
        (
            "unicode.csv",
            b"\xff\xfeu\0s\0e\0r\0\t\0p\0u\0s\0h\0\r\0\n\0",
            "unicode.csv: row 1: error[csv-syntax]: the file is UTF-16",
        ),
        (
            "latin1.yaml",
            b"version: 1\nusers:\n  - user: megan@contoso.com\n    preferredMethod: fax\n  - user: j\xfcrgen@contoso.com\n",
            "latin1.yaml:5:12: error[yaml-syntax]: the file is not UTF-8 text here (byte 0xFC)",
        ),
        (
            "nul.yaml",
            b"version: 1\nusers:\n  - user: megan@contoso.com\0\n",
            "nul.yaml:3:28: error[yaml-syntax]: the file holds a NUL byte",
        ),
        (
            "cut.yaml",
            b"version: 1\nusers:\n  - user: megan@contoso.com\n    preferredMethod: fax\n  - user: \"j\xc3",
            "cut.yaml:5:13: error[yaml-syntax]: the file is not UTF-8 text here (byte 0xC3)",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = write_bytes(&scenario, name, bytes);
        let out = scenario.run(&["plan", &path]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{name}: {err}");
        assert!(!has_hidden_or_control(&err), "{name}: {err:?}");
    }
    // Problems before a bad byte are still reported.
    let err = stderr(&scenario.run(&[
        "plan",
        &scenario.dir.path().join("latin1.yaml").to_string_lossy(),
    ]));
    assert!(
        err.contains("latin1.yaml:4:22: error[unknown-method]"),
        "{err}"
    );
    assert_eq!(scenario.stats().requests, 0);
}
