//! The schemas say what the readers say: for a table of accepted and refused values, the
//! manifest schema and `mfactl validate` (the real binary) agree, and the tenant schema and the
//! emulator's tenant loader agree. An editor must never flag a file mfactl reads, and should
//! flag the ones it refuses.
//!
//! Known differences, each a row marked [`Verdict::Looser`] with its reason: rules no JSON
//! Schema can state, where the schema accepts and the reader refuses (never the other way):
//! - uniqueness across entries by a value inside them, or without regard to case (a user listed
//!   twice, `[push, PUSH]`, two groups of one name, a phone registered twice);
//! - a whole number written with a point (`1.0`): JSON Schema's `integer` is the value 1, while
//!   the readers refuse the spelling;
//! - a number the tenant file writes as text (`"999999"`): the reader's range is not checked on
//!   text, and a certificate that cannot be read or a timestamp jiff cannot parse;
//! - a quoted YAML 1.1 word (`"yes"`) where the tenant's policy wants a boolean (only the plain
//!   word is one to the reader; an editor sees text either way).
//!
//! Duplicate keys in one mapping are refused by both readers and are left to the editor's YAML
//! parser, which flags them itself (a JSON document cannot hold them). CSV manifests have no
//! schema.

use std::path::Path;

use crate::schemas::{check, yaml_as_json};
use crate::support::{mfactl, stderr, stdout};
use mfactl::model::{MethodKind, PerUserMfaState, PreferredMethod};

/// What both sides must say of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Refused,
    /// The schema accepts what the reader refuses, for the reason given (see the module docs).
    Looser(&'static str),
}

use Verdict::{Accepted, Looser, Refused};

struct Row {
    text: String,
    verdict: Verdict,
}

fn row(text: impl Into<String>, verdict: Verdict) -> Row {
    Row {
        text: text.into(),
        verdict,
    }
}

/// A manifest with one user entry holding `fields` (YAML lines, `; ` between them).
fn entry(fields: &str) -> String {
    let mut text = "version: 1\nusers:\n  - user: megan@contoso.com\n".to_owned();
    for field in fields.split("; ") {
        text.push_str(&format!("    {field}\n"));
    }
    text
}

/// A manifest with one user, `user: VALUE`.
fn user(value: &str) -> String {
    format!("version: 1\nusers:\n  - user: {value}\n    perUserMfaState: disabled\n")
}

/// `version: 1` and `body`.
fn top(body: &str) -> String {
    format!("version: 1\n{body}\n")
}

/// A manifest whose `policy:` holds `part: {body}`.
fn policy(part: &str, body: &str) -> String {
    format!("version: 1\npolicy:\n  {part}: {body}\n")
}

fn upper(text: &str) -> String {
    text.to_ascii_uppercase()
}

fn manifest_rows() -> Vec<Row> {
    let guid = "071cc716-8147-4397-a5ba-b2105951cc0b";
    let mut rows = vec![
        // The document.
        row(top("users: []"), Accepted),
        row(top("users:"), Accepted),
        row(top("users: {}"), Refused),
        row("version: 2\nusers: []\n", Refused),
        row("version: '1'\nusers: []\n", Refused),
        row(
            "version: 1.0\nusers: []\n",
            Looser("1.0 is the integer 1 to JSON Schema"),
        ),
        row("users: []\n", Refused),
        row(top(""), Refused),
        row(top("exclude: []"), Refused),
        row(top("groups: []"), Refused),
        row(top("users: []\nextra: 1"), Refused),
        row("- version: 1\n", Refused),
        row(top("defaults:\nusers: []"), Accepted),
        row(
            top("defaults: {systemPreferred: true}\nusers: []"),
            Accepted,
        ),
        row(top("defaults: {user: a@contoso.com}\nusers: []"), Refused),
        row(top("defaults: [systemPreferred]\nusers: []"), Refused),
        row(top("defaults: {preferredMethod: null}\nusers: []"), Refused),
        // Fields of an entry.
        row(entry("preferredMethod: ' Sms '"), Accepted),
        row(entry("preferredMethod: fax"), Refused),
        row(entry("preferredMethod: 1"), Refused),
        row(entry("preferredMethod:"), Refused),
        row(entry("preferredMethod: {push: 1}"), Refused),
        row(entry("preferredMethod: [push, oath, sms]"), Accepted),
        row(entry("preferredMethod: [PUSH, Oath]"), Accepted),
        row(entry("preferredMethod: []"), Refused),
        row(entry("preferredMethod: [push, push]"), Refused),
        row(
            entry("preferredMethod: [push, PUSH]"),
            Looser("uniqueness without regard to case"),
        ),
        row(entry("preferredMethod: [push, fax]"), Refused),
        row(entry("preferredMethod: [[push]]"), Refused),
        row(
            entry(
                "preferredMethod: [push, oath, sms, voiceMobile, voiceOffice, voiceAlternateMobile, push]",
            ),
            Refused,
        ),
        row(entry("systemPreferred: true"), Accepted),
        row(entry("systemPreferred: False"), Accepted),
        row(entry("systemPreferred: 'TRUE'"), Accepted),
        row(entry("systemPreferred: ' false '"), Accepted),
        row(entry("systemPreferred: yes"), Refused),
        row(entry("systemPreferred: 1"), Refused),
        row(entry("systemPreferred: ~"), Refused),
        row(entry("systemPreferred: maybe"), Refused),
        row(entry("perUserMfaState: Enabled"), Accepted),
        row(entry("perUserMfaState: on"), Refused),
        row(entry("perUserMfaState: null"), Refused),
        row(entry("perUserMfaState: 1"), Refused),
        row(entry("color: blue"), Refused),
        row(
            entry("userPreferredMethodForSecondaryAuthentication: push"),
            Refused,
        ),
        // Users.
        row(user("megan@contoso.com"), Accepted),
        row(user(guid), Accepted),
        row(user(&upper(guid)), Accepted),
        row(user("'  megan@contoso.com  '"), Accepted),
        row(user("\"\\tmegan@contoso.com\\u2028\""), Accepted),
        row(
            user("adele_fabrikam.com#EXT#@contoso.onmicrosoft.com"),
            Accepted,
        ),
        row(user("\"$o'neil@contoso.com\""), Accepted),
        row(user(".leading@contoso.com"), Accepted),
        row(user("user@xn--mnchen-3ya.de"), Accepted),
        row(user(&format!("'{{{guid}}}'")), Refused),
        row(user(&guid.replace('-', "")), Refused),
        row(user(&format!("urn:uuid:{guid}")), Refused),
        row(user("'..'"), Refused),
        row(user("megan"), Refused),
        row(user("megan@contoso"), Refused),
        row(user("megan@@contoso.com"), Refused),
        row(user("'megan @contoso.com'"), Refused),
        row(user("\"megan\\u200b@contoso.com\""), Refused),
        row(user("\"megan@contoso.com\\u202e\""), Refused),
        row(user("\"megan\\x1b@contoso.com\""), Refused),
        row(user("megan.@contoso.com"), Refused),
        row(user("a@contoso_x.com"), Refused),
        row(user("a@-contoso.com"), Refused),
        row(user("a@contoso..com"), Refused),
        row(user("a@münchen.de"), Refused),
        row(user(&format!("{}@contoso.com", "a".repeat(64))), Accepted),
        row(user(&format!("{}@contoso.com", "a".repeat(65))), Refused),
        row(user(&format!("a@{}.com", "d".repeat(44))), Accepted),
        row(user(&format!("a@{}.com", "d".repeat(45))), Refused),
        row(
            user(&format!(
                "{}_f.com#EXT#@contoso.onmicrosoft.com",
                "g".repeat(60)
            )),
            Accepted,
        ),
        row(
            user(&format!(
                "{}_f.com#EXT#@contoso.onmicrosoft.com",
                "g".repeat(80)
            )),
            Refused,
        ),
        row(user("''"), Refused),
        row(user("123"), Refused),
        row(top("users:\n  - preferredMethod: push"), Refused),
        row(top("users:\n  - megan@contoso.com"), Refused),
        row(
            top("users:\n  - user: megan@contoso.com\n  - user: megan@contoso.com"),
            Looser("a user listed twice (uniqueness by a value inside entries)"),
        ),
        row(
            top("users:\n  - user: megan@contoso.com\n  - user: MEGAN@contoso.com"),
            Looser("a user listed twice, without regard to case"),
        ),
        // Guards.
        row(
            top("users: []\nprotect: [breakglass@contoso.com]"),
            Accepted,
        ),
        row(top("users: []\nprotect: []"), Accepted),
        row(top("users: []\nprotect:"), Refused),
        row(top("users: []\nprotect: breakglass@contoso.com"), Refused),
        row(
            top("users: []\nprotect: [breakglass@contoso.com, breakglass@contoso.com]"),
            Refused,
        ),
        row(
            top("users: []\nprotect: [a@contoso.com, A@contoso.com]"),
            Looser("uniqueness without regard to case"),
        ),
        row(top("users: []\nprotect: ['']"), Refused),
        row(top("users: []\nprotect: ['..']"), Refused),
        row(top("users: []\nprotect: [1]"), Refused),
        row(top("users: []\nmaxChanges: 500"), Accepted),
        row(top("users: []\nmaxChanges: 0"), Accepted),
        row(top("users: []\nmaxChanges: 9223372036854775807"), Accepted),
        row(top("users: []\nmaxChanges: 9223372036854775808"), Refused),
        row(top("users: []\nmaxChanges: -1"), Refused),
        row(top("users: []\nmaxChanges: '500'"), Refused),
        row(top("users: []\nmaxChanges:"), Refused),
        row(top("users: []\nmaxChanges: 1.5"), Refused),
        row(
            top("users: []\nmaxChanges: 5.0"),
            Looser("5.0 is the integer 5 to JSON Schema"),
        ),
        // Selectors.
        row(top("allUsers: {perUserMfaState: disabled}"), Accepted),
        row(
            top("allUsers: {userType: GUEST, perUserMfaState: disabled}"),
            Accepted,
        ),
        row(
            top("allUsers: {userType: all, accountEnabled: true, systemPreferred: true}"),
            Accepted,
        ),
        row(
            top("allUsers: {userType: robot, perUserMfaState: disabled}"),
            Refused,
        ),
        row(
            top("allUsers: {accountEnabled: 'true', perUserMfaState: disabled}"),
            Refused,
        ),
        row(top("allUsers: {userType: member}"), Refused),
        row(top("allUsers:"), Refused),
        row(top("allUsers: []"), Refused),
        row(
            top("allUsers: {user: a@contoso.com, perUserMfaState: disabled}"),
            Refused,
        ),
        row(top("allUsers: {perUserMfaState: null}"), Refused),
        row(
            top("groups: [{group: MFA Pilot, preferredMethod: push}]"),
            Accepted,
        ),
        row(
            top("groups: [{group: MFA Pilot, priority: 0, preferredMethod: [push, sms]}]"),
            Accepted,
        ),
        row(
            top("groups: [{group: MFA Pilot, priority: -1, preferredMethod: push}]"),
            Refused,
        ),
        row(
            top("groups: [{group: MFA Pilot, priority: 4294967296, preferredMethod: push}]"),
            Refused,
        ),
        row(
            top("groups: [{group: MFA Pilot, priority: '1', preferredMethod: push}]"),
            Refused,
        ),
        row(top("groups: [{group: '', preferredMethod: push}]"), Refused),
        row(top("groups: [{group: MFA Pilot}]"), Refused),
        row(top("groups: [{preferredMethod: push}]"), Refused),
        row(
            top(
                "groups: [{group: Pilot, systemPreferred: true}, {group: PILOT, systemPreferred: true}]",
            ),
            Looser("a group listed twice, without regard to case"),
        ),
        row(top("groups: {}"), Refused),
        row(top("groups: [MFA Pilot]"), Refused),
        row(
            top("users: []\nexclude: [{user: breakglass@contoso.com}]"),
            Accepted,
        ),
        row(
            top("users: []\nexclude: [{group: Break-glass admins}]"),
            Accepted,
        ),
        row(top("users: []\nexclude: [{user: '..'}]"), Refused),
        row(
            top("users: []\nexclude: [{user: a@contoso.com, group: x}]"),
            Refused,
        ),
        row(top("users: []\nexclude: [{device: x}]"), Refused),
        row(top("users: []\nexclude: [{group: ''}]"), Refused),
        row(top("users: []\nexclude: [{user: 1}]"), Refused),
        row(top("users: []\nexclude:"), Refused),
        row(top("users: []\nallowMfaGap: true"), Accepted),
        row(top("users: []\nallowMfaGap: False"), Accepted),
        row(top("users: []\nallowMfaGap: yes"), Refused),
        row(top("users: []\nallowMfaGap: 'true'"), Refused),
        row(top("users: []\nallowMfaGap:"), Refused),
        // The policy.
        row(top("policy: {}"), Accepted),
        row(top("policy:"), Refused),
        row(top("policy: []"), Refused),
        row(policy("registrationEnforcement", "{}"), Refused),
        row(
            policy("systemCredentialPreferences", "{state: Enabled}"),
            Accepted,
        ),
        row(
            policy("systemCredentialPreferences", "{state: ' DISABLED '}"),
            Accepted,
        ),
        row(
            policy("systemCredentialPreferences", "{state: on}"),
            Refused,
        ),
        row(
            policy("systemCredentialPreferences", "{state: null}"),
            Refused,
        ),
        row(policy("systemCredentialPreferences", "null"), Refused),
        row(
            policy("systemCredentialPreferences", "{color: blue}"),
            Refused,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                "{includeTargets: [{id: all_users, targetType: group}]}",
            ),
            Accepted,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                "{includeTargets: [{id: a, targetType: group}, {id: b, targetType: group}]}",
            ),
            Refused,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                "{includeTargets: [{id: ALL_USERS, targetType: GROUP}]}",
            ),
            Accepted,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                "{excludeTargets: [{id: Break-glass admins, targetType: group}]}",
            ),
            Accepted,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                "{excludeTargets: [{id: Break-glass admins, targetType: user}]}",
            ),
            Refused,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                &format!("{{excludeTargets: [{{id: {guid}, targetType: User}}]}}"),
            ),
            Accepted,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                &format!("{{excludeTargets: [{{id: '{{{guid}}}', targetType: user}}]}}"),
            ),
            Accepted,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                "{excludeTargets: [{id: all_users, targetType: user}]}",
            ),
            Accepted,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                "{includeTargets: [{id: all_users}]}",
            ),
            Refused,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                "{includeTargets: [{id: '', targetType: group}]}",
            ),
            Refused,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                "{includeTargets: [{id: 5, targetType: group}]}",
            ),
            Refused,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                "{includeTargets: [{id: all_users, targetType: robot}]}",
            ),
            Refused,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                "{includeTargets: [{id: x, targetType: group, targetedAuthenticationMethod: Fido2}]}",
            ),
            Refused,
        ),
        row(
            policy(
                "systemCredentialPreferences",
                "{includeTargets: {id: all_users, targetType: group}}",
            ),
            Refused,
        ),
        row(
            policy("registrationCampaign", "{snoozeDurationInDays: 14}"),
            Accepted,
        ),
        row(
            policy("registrationCampaign", "{snoozeDurationInDays: 15}"),
            Refused,
        ),
        row(
            policy("registrationCampaign", "{snoozeDurationInDays: -1}"),
            Refused,
        ),
        row(
            policy("registrationCampaign", "{snoozeDurationInDays: '3'}"),
            Refused,
        ),
        row(
            policy("registrationCampaign", "{snoozeDurationInDays: 1.5}"),
            Refused,
        ),
        row(
            policy("registrationCampaign", "{snoozeDurationInDays: 3.0}"),
            Looser("3.0 is the integer 3 to JSON Schema"),
        ),
        row(
            policy(
                "registrationCampaign",
                "{enforceRegistrationAfterAllowedSnoozes: true}",
            ),
            Accepted,
        ),
        row(
            policy(
                "registrationCampaign",
                "{enforceRegistrationAfterAllowedSnoozes: 'true'}",
            ),
            Refused,
        ),
        row(
            policy(
                "registrationCampaign",
                "{enforceRegistrationAfterAllowedSnoozes: yes}",
            ),
            Refused,
        ),
        row(
            policy(
                "registrationCampaign",
                "{includeTargets: [{id: all_users, targetType: group, targetedAuthenticationMethod: FIDO2}]}",
            ),
            Accepted,
        ),
        row(
            policy(
                "registrationCampaign",
                "{includeTargets: [{id: all_users, targetType: group, targetedAuthenticationMethod: sms}]}",
            ),
            Refused,
        ),
        row(
            policy(
                "registrationCampaign",
                "{includeTargets: [{id: all_users, targetType: group, targetedAuthenticationMethod: null}]}",
            ),
            Refused,
        ),
        row(
            policy("reportSuspiciousActivity", "{voiceReportingCode: 9}"),
            Accepted,
        ),
        row(
            policy("reportSuspiciousActivity", "{voiceReportingCode: 10}"),
            Refused,
        ),
        row(
            policy(
                "reportSuspiciousActivity",
                "{state: Default, includeTarget: {id: all_users, targetType: group}}",
            ),
            Accepted,
        ),
        row(
            policy(
                "reportSuspiciousActivity",
                "{includeTarget: [{id: all_users, targetType: group}]}",
            ),
            Refused,
        ),
    ];
    // Every value of every enum, in its own case and in capitals.
    for method in PreferredMethod::ALL {
        rows.push(row(entry(&format!("preferredMethod: {method}")), Accepted));
        rows.push(row(
            entry(&format!("preferredMethod: {}", upper(method.as_str()))),
            Accepted,
        ));
    }
    for state in PerUserMfaState::ALL {
        rows.push(row(entry(&format!("perUserMfaState: {state}")), Accepted));
        rows.push(row(
            entry(&format!("perUserMfaState: {}", upper(state.as_str()))),
            Accepted,
        ));
    }
    for state in mfactl::manifest::policy::STATES {
        let part = format!("{{state: {}}}", upper(state));
        rows.push(row(policy("registrationCampaign", &part), Accepted));
    }
    rows
}

/// What `mfactl validate` says of a manifest.
fn validate(path: &Path) -> Result<(), String> {
    let out = mfactl().arg("validate").arg(path).output().unwrap();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(stderr(&out)),
        other => panic!(
            "validate exited {other:?}: {}{}",
            stdout(&out),
            stderr(&out)
        ),
    }
}

/// Checks every row on both sides, and fails listing every row where they disagree.
fn agree(schema: &str, rows: &[Row], reader: impl Fn(usize, &str) -> Result<(), String> + Sync) {
    let disagreements: Vec<String> = std::thread::scope(|scope| {
        let half = rows.len().div_ceil(2);
        let workers: Vec<_> = rows
            .chunks(half)
            .enumerate()
            .map(|(chunk, rows)| {
                let reader = &reader;
                scope.spawn(move || {
                    rows.iter()
                        .enumerate()
                        .filter_map(|(index, row)| {
                            disagreement(schema, chunk * half + index, row, reader)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap())
            .collect()
    });
    assert!(
        disagreements.is_empty(),
        "{} of {} rows disagree:\n\n{}",
        disagreements.len(),
        rows.len(),
        disagreements.join("\n\n")
    );
}

/// What is wrong with one row, if anything.
fn disagreement(
    schema: &str,
    index: usize,
    row: &Row,
    reader: &(impl Fn(usize, &str) -> Result<(), String> + Sync),
) -> Option<String> {
    let document =
        yaml_as_json(&row.text).unwrap_or_else(|| panic!("row {index} is not YAML:\n{}", row.text));
    let by_schema = check(schema, &document);
    let by_reader = reader(index, &row.text);
    let (schema_ok, reader_ok) = (by_schema.is_ok(), by_reader.is_ok());
    let expected = match row.verdict {
        Accepted => (true, true),
        Refused => (false, false),
        Looser(_) => (true, false),
    };
    ((schema_ok, reader_ok) != expected).then(|| {
        format!(
            "row {index} ({:?}):\n{}  schema: {}\n  reader: {}",
            row.verdict,
            row.text,
            by_schema.err().unwrap_or_else(|| "accepts".to_owned()),
            by_reader.err().unwrap_or_else(|| "accepts".to_owned())
        )
    })
}

#[test]
fn the_manifest_schema_and_validate_agree() {
    let dir = tempfile::tempdir().unwrap();
    let rows = manifest_rows();
    agree("manifest.schema.json", &rows, |index, text| {
        let path = dir.path().join(format!("row-{index}.yaml"));
        std::fs::write(&path, text).unwrap();
        validate(&path)
    });
}

const HEAD: &str =
    "tenantId: 9c0e5f1a-0000-4000-8000-000000000001\ndomain: contoso.onmicrosoft.com\n";
const ID: &str = "bdd640fb-0667-4ad1-9c80-317fa3b1799d";

/// A tenant with one user holding `fields` (`; ` between them).
fn tenant_user(fields: &str) -> String {
    let mut text =
        format!("{HEAD}users:\n  - id: {ID}\n    userPrincipalName: megan@contoso.com\n");
    for field in fields.split("; ").filter(|f| !f.is_empty()) {
        text.push_str(&format!("    {field}\n"));
    }
    text
}

/// A tenant whose `authenticationMethodsPolicy:` is `body`.
fn tenant_policy(body: &str) -> String {
    format!("{HEAD}authenticationMethodsPolicy: {body}\n")
}

/// A tenant with one Conditional Access policy `p` (named) holding `fields` (`; ` between them).
fn tenant_ca(fields: &str) -> String {
    let mut text =
        format!("{HEAD}conditionalAccessPolicies:\n  - id: p\n    displayName: MFA for all\n");
    for field in fields.split("; ") {
        text.push_str(&format!("    {field}\n"));
    }
    text
}

/// A tenant whose `auth:` is `body`.
fn tenant_auth(body: &str) -> String {
    format!("{HEAD}auth: {body}\n")
}

fn tenant_rows() -> Vec<Row> {
    let guid = "071cc716-8147-4397-a5ba-b2105951cc0b";
    let target = "{id: all_users, targetType: group}";
    let mut rows = vec![
        row(HEAD, Accepted),
        row("domain: contoso.com\n", Refused),
        row(
            format!("tenantId: '{{{guid}}}'\ndomain: contoso.com\n"),
            Accepted,
        ),
        row(
            format!("tenantId: URN:UUID:{guid}\ndomain: contoso.com\n"),
            Accepted,
        ),
        row(
            format!("tenantId: {}\ndomain: contoso.com\n", guid.replace('-', "")),
            Accepted,
        ),
        row(
            format!("tenantId: ' {guid}'\ndomain: contoso.com\n"),
            Refused,
        ),
        row("tenantId: nope\ndomain: contoso.com\n", Refused),
        row(format!("tenantId: {guid}\ndomain: ''\n"), Refused),
        row(format!("tenantId: {guid}\ndomain: '  '\n"), Refused),
        row(format!("tenantId: {guid}\ndomain: 123\n"), Accepted),
        row(format!("{HEAD}users:\n"), Refused),
        row(format!("{HEAD}color: blue\n"), Refused),
        row(tenant_user(""), Accepted),
        row(tenant_user("userType: GUEST"), Accepted),
        row(tenant_user("userType: robot"), Refused),
        row(tenant_user("userType: null"), Accepted),
        row(
            tenant_user("methods: [MOBILEPHONE, ' softwareOath ']"),
            Accepted,
        ),
        row(tenant_user("methods: [fax]"), Refused),
        row(tenant_user("methods: null"), Refused),
        row(
            tenant_user("methods: [softwareOath, softwareOath]"),
            Accepted,
        ),
        row(
            tenant_user("methods: [mobilePhone, mobilePhone]"),
            Looser("a phone registered twice (uniqueness of some values only)"),
        ),
        row(tenant_user("accountEnabled: yes"), Accepted),
        row(tenant_user("accountEnabled: 'OFF'"), Accepted),
        row(tenant_user("accountEnabled: null"), Accepted),
        row(tenant_user("accountEnabled: maybe"), Refused),
        row(tenant_user("accountEnabled: 1"), Refused),
        row(tenant_user("forgetsWrites: true"), Accepted),
        row(tenant_user("forgetsWrites: null"), Refused),
        row(
            tenant_user(
                "signInPreferences: {userPreferredMethodForSecondaryAuthentication: SMS}; methods: [mobilePhone]",
            ),
            Accepted,
        ),
        row(
            tenant_user("signInPreferences: {userPreferredMethodForSecondaryAuthentication: null}"),
            Accepted,
        ),
        row(
            tenant_user("signInPreferences: {userPreferredMethodForSecondaryAuthentication: fax}"),
            Refused,
        ),
        row(
            tenant_user(
                "signInPreferences: {isSystemPreferredAuthenticationMethodEnabled: 'TRUE'}",
            ),
            Accepted,
        ),
        row(tenant_user("signInPreferences: null"), Accepted),
        row(tenant_user("signInPreferences: {color: blue}"), Refused),
        row(tenant_user("perUserMfaState: Enforced"), Accepted),
        row(tenant_user("perUserMfaState: on"), Refused),
        row(tenant_user("displayName: 123"), Accepted),
        row(tenant_user("displayName: null"), Accepted),
        row(tenant_user("displayName: [a]"), Refused),
        row(tenant_user("color: blue"), Refused),
        row(
            format!("{HEAD}users:\n  - id: nope\n    userPrincipalName: megan@contoso.com\n"),
            Refused,
        ),
        row(
            format!("{HEAD}users:\n  - id: {ID}\n    userPrincipalName: megan\n"),
            Refused,
        ),
        row(
            format!("{HEAD}users:\n  - id: {ID}\n    userPrincipalName: '@contoso.com'\n"),
            Refused,
        ),
        row(
            format!("{HEAD}users:\n  - id: {ID}\n    userPrincipalName: 'megan@'\n"),
            Refused,
        ),
        row(format!("{HEAD}users:\n  - id: {ID}\n"), Refused),
        row(
            format!(
                "{HEAD}users:\n  - id: {ID}\n    userPrincipalName: a@contoso.com\n  \
                 - id: {ID}\n    userPrincipalName: b@contoso.com\n"
            ),
            Looser("an id used twice (uniqueness by a value inside entries)"),
        ),
        row(
            format!(
                "{HEAD}groups:\n  - id: {guid}\n    displayName: Pilot\n    members: [{ID}, 123]\n"
            ),
            Accepted,
        ),
        row(format!("{HEAD}groups:\n  - id: nope\n"), Refused),
        row(format!("{HEAD}groups:\n  - displayName: Pilot\n"), Refused),
        // The policy, as Graph holds it: enums spelt as Graph spells them.
        row(tenant_policy("{}"), Accepted),
        row(tenant_policy("null"), Accepted),
        row(tenant_policy("[]"), Refused),
        row(
            tenant_policy("{systemCredentialPreferences: {state: enabled}}"),
            Accepted,
        ),
        row(
            tenant_policy("{systemCredentialPreferences: {state: Enabled}}"),
            Refused,
        ),
        row(
            tenant_policy("{systemCredentialPreferences: null}"),
            Refused,
        ),
        row(
            tenant_policy(&format!(
                "{{systemCredentialPreferences: {{includeTargets: [{target}, {target}]}}}}"
            )),
            Refused,
        ),
        row(
            tenant_policy(
                "{systemCredentialPreferences: {includeTargets: [{id: Pilot, targetType: group}]}}",
            ),
            Refused,
        ),
        row(
            tenant_policy(
                "{systemCredentialPreferences: {includeTargets: [{id: ALL_USERS, targetType: group}]}}",
            ),
            Refused,
        ),
        row(
            tenant_policy(&format!(
                "{{systemCredentialPreferences: {{excludeTargets: [{{id: '{{{guid}}}', targetType: user}}]}}}}"
            )),
            Accepted,
        ),
        row(
            tenant_policy("{systemCredentialPreferences: {includeTargets: [{id: all_users}]}}"),
            Refused,
        ),
        row(
            tenant_policy(&format!(
                "{{registrationEnforcement: {{authenticationMethodsRegistrationCampaign: \
                 {{snoozeDurationInDays: 14, enforceRegistrationAfterAllowedSnoozes: yes, \
                 includeTargets: [{{id: all_users, targetType: group, targetedAuthenticationMethod: Fido2}}], \
                 excludeTargets: [{target}]}}}}}}"
            )),
            Accepted,
        ),
        row(
            tenant_policy(
                "{registrationEnforcement: {authenticationMethodsRegistrationCampaign: {snoozeDurationInDays: 15}}}",
            ),
            Refused,
        ),
        row(
            tenant_policy(
                "{registrationEnforcement: {authenticationMethodsRegistrationCampaign: {enforceRegistrationAfterAllowedSnoozes: maybe}}}",
            ),
            Refused,
        ),
        row(
            tenant_policy(
                "{registrationEnforcement: {authenticationMethodsRegistrationCampaign: {enforceRegistrationAfterAllowedSnoozes: 'yes'}}}",
            ),
            Looser("a quoted YAML 1.1 word is text to the reader"),
        ),
        row(
            tenant_policy(
                "{registrationEnforcement: {authenticationMethodsRegistrationCampaign: {includeTargets: [{id: all_users, targetType: group, targetedAuthenticationMethod: fido2}]}}}",
            ),
            Refused,
        ),
        row(
            tenant_policy(
                "{registrationEnforcement: {authenticationMethodsRegistrationCampaign: \
                 {excludeTargets: [{id: all_users, targetType: group, targetedAuthenticationMethod: Fido2}]}}}",
            ),
            Refused,
        ),
        row(
            tenant_policy(&format!(
                "{{reportSuspiciousActivitySettings: {{state: disabled, voiceReportingCode: 9, includeTarget: {target}}}}}"
            )),
            Accepted,
        ),
        row(
            tenant_policy(&format!(
                "{{reportSuspiciousActivitySettings: {{includeTarget: [{target}]}}}}"
            )),
            Refused,
        ),
        row(
            tenant_policy("{reportSuspiciousActivitySettings: {voiceReportingCode: 10}}"),
            Refused,
        ),
        row(tenant_policy("{reconfirmationInDays: 90}"), Accepted),
        row(tenant_policy("{reconfirmationInDays: null}"), Accepted),
        row(tenant_policy("{reconfirmationInDays: '90'}"), Refused),
        row(tenant_policy("{reconfirmationInDays: 2147483648}"), Refused),
        row(
            tenant_policy(&format!(
                "{{microsoftAuthenticatorPlatformSettings: {{enforceAppPIN: {{includeTargets: [{target}], excludeTargets: []}}}}}}"
            )),
            Accepted,
        ),
        row(
            tenant_policy("{microsoftAuthenticatorPlatformSettings: {enforceAppPin: {}}}"),
            Refused,
        ),
        row(
            tenant_policy(
                "{'@odata.type': '#microsoft.graph.authenticationMethodsPolicy', 'x@odata.context': [1]}",
            ),
            Accepted,
        ),
        row(
            tenant_policy("{'@odata.type': '#microsoft.graph.policy'}"),
            Refused,
        ),
        row(
            tenant_policy(
                "{systemCredentialPreferences: {'@odata.type': microsoft.graph.systemCredentialPreferences}}",
            ),
            Accepted,
        ),
        row(
            tenant_policy("{authenticationMethodConfigurations: [{id: Fido2, state: enabled}]}"),
            Accepted,
        ),
        row(
            tenant_policy("{authenticationMethodConfigurations: [1]}"),
            Refused,
        ),
        row(
            tenant_policy("{policyMigrationState: migrationComplete}"),
            Accepted,
        ),
        row(tenant_policy("{policyMigrationState: done}"), Refused),
        row(
            tenant_policy(
                "{lastModifiedDateTime: '2024-04-26T12:44:42.0858664Z', displayName: Policy, policyVersion: '1.5'}",
            ),
            Accepted,
        ),
        row(
            tenant_policy("{lastModifiedDateTime: yesterday}"),
            Looser("a timestamp jiff cannot parse"),
        ),
        row(tenant_policy("{displayName: 5}"), Refused),
        row(tenant_policy("{color: blue}"), Refused),
        // Conditional Access, security defaults and roles.
        row(format!("{HEAD}securityDefaults: on\n"), Accepted),
        row(format!("{HEAD}securityDefaults: null\n"), Accepted),
        row(format!("{HEAD}securityDefaults: maybe\n"), Refused),
        row(tenant_ca("state: enabled; conditions: {}"), Accepted),
        row(
            tenant_ca(
                "state: enabledForReportingButNotEnforced; '@odata.type': x; \
                 conditions: {users: {includeUsers: [All], excludeGroups: [], includeGuestsOrExternalUsers: null}, \
                 applications: {includeApplications: [All]}, clientAppTypes: [all]}; \
                 grantControls: {operator: OR, builtInControls: [mfa], authenticationStrength: null}",
            ),
            Accepted,
        ),
        row(tenant_ca("state: Enabled; conditions: {}"), Refused),
        row(tenant_ca("state: enabled"), Refused),
        row(tenant_ca("state: enabled; conditions: null"), Refused),
        row(
            tenant_ca("state: enabled; conditions: {color: blue}"),
            Refused,
        ),
        row(
            tenant_ca("state: enabled; conditions: {users: {includeUsers: All}}"),
            Refused,
        ),
        row(
            tenant_ca("state: enabled; conditions: {users: {includeUsers: [1]}}"),
            Refused,
        ),
        row(
            tenant_ca("state: enabled; conditions: {users: {includeMonkeys: []}}"),
            Refused,
        ),
        row(
            tenant_ca("state: enabled; conditions: {}; grantControls: {operator: XOR}"),
            Refused,
        ),
        row(
            tenant_ca("state: enabled; conditions: {}; grantControls: {builtInControls: [magic]}"),
            Refused,
        ),
        row(
            tenant_ca(
                "state: enabled; conditions: {}; grantControls: {authenticationStrength: {}}",
            ),
            Refused,
        ),
        row(
            tenant_ca("state: enabled; conditions: {}; color: blue"),
            Refused,
        ),
        row(
            format!(
                "{HEAD}conditionalAccessPolicies:\n  - {{id: p, displayName: '', state: enabled, conditions: {{}}}}\n"
            ),
            Refused,
        ),
        row(
            format!(
                "{HEAD}conditionalAccessPolicies:\n  - {{id: p, displayName: a, state: enabled, conditions: {{}}}}\n  \
                 - {{id: P, displayName: b, state: enabled, conditions: {{}}}}\n"
            ),
            Looser("a policy id used twice (uniqueness by a value inside entries)"),
        ),
        row(
            format!(
                "{HEAD}roleAssignments:\n  - {{roleDefinitionId: 62e90394-69f5-4237-9190-012177145e10, principalId: {ID}, directoryScopeId: /}}\n"
            ),
            Accepted,
        ),
        row(
            format!("{HEAD}roleAssignments:\n  - {{roleDefinitionId: admin, principalId: {ID}}}\n"),
            Refused,
        ),
        row(
            format!("{HEAD}roleAssignments:\n  - {{roleDefinitionId: {guid}}}\n"),
            Refused,
        ),
        // Sign-in.
        row(
            tenant_auth(&format!(
                "{{apps: [{{clientId: {guid}, secret: s3cr3t, roles: [Policy.Read.All, 1]}}]}}"
            )),
            Accepted,
        ),
        row(
            tenant_auth(&format!("{{apps: [{{clientId: {guid}}}]}}")),
            Refused,
        ),
        row(
            tenant_auth(&format!("{{apps: [{{clientId: {guid}, secret: null}}]}}")),
            Refused,
        ),
        row(
            tenant_auth(&format!(
                "{{apps: [{{clientId: {guid}, managedIdentity: true}}]}}"
            )),
            Accepted,
        ),
        row(
            tenant_auth(&format!(
                "{{apps: [{{clientId: {guid}, managedIdentity: false}}]}}"
            )),
            Refused,
        ),
        row(
            tenant_auth(&format!(
                "{{apps: [{{clientId: ' {guid} ', secret: 123}}]}}"
            )),
            Accepted,
        ),
        row(
            tenant_auth("{apps: [{clientId: nope, secret: s}]}"),
            Refused,
        ),
        row(
            tenant_auth(&format!("{{apps: [{{clientId: {guid}, secret: ''}}]}}")),
            Refused,
        ),
        row(
            tenant_auth(&format!(
                "{{apps: [{{clientId: {guid}, secret: s, roles: ['two words']}}]}}"
            )),
            Refused,
        ),
        row(
            tenant_auth(&format!(
                "{{apps: [{{clientId: {guid}, certificate: missing.pem}}]}}"
            )),
            Looser("a certificate file that cannot be read"),
        ),
        row(tenant_auth("{tokenLifetimeSeconds: 3600}"), Accepted),
        row(tenant_auth("{tokenLifetimeSeconds: '3600'}"), Accepted),
        row(tenant_auth("{tokenLifetimeSeconds: 0}"), Refused),
        row(tenant_auth("{tokenLifetimeSeconds: 86401}"), Refused),
        row(
            tenant_auth("{tokenLifetimeSeconds: '86401'}"),
            Looser("a number written as text is not range-checked"),
        ),
        row(tenant_auth("{tokenLifetimeSeconds: 1.5}"), Refused),
        row(
            tenant_auth("{deviceCodeIntervalSeconds: 0, strictAssertions: on}"),
            Accepted,
        ),
        row(tenant_auth("{identityHeader: ' '}"), Refused),
        row(
            format!(
                "{}auth: {{admins: [{{userPrincipalName: admin@contoso.com, scopes: [User.Read.All], publicClientId: {guid}}}]}}\n",
                tenant_user("")
            ),
            Accepted,
        ),
        row(
            tenant_auth("{admins: [{userPrincipalName: admin@contoso.com, publicClientId: nope}]}"),
            Refused,
        ),
        row(
            tenant_auth("{admins: [{userPrincipalName: admin}]}"),
            Refused,
        ),
        row(tenant_auth("{color: blue}"), Refused),
    ];
    for kind in MethodKind::ALL {
        rows.push(row(
            tenant_user(&format!("methods: [{}]", upper(kind.as_str()))),
            Accepted,
        ));
    }
    rows
}

#[test]
fn the_tenant_schema_and_the_emulators_loader_agree() {
    let rows = tenant_rows();
    agree("tenant.schema.json", &rows, |_, text| {
        mfactl_emulator::Tenant::from_yaml_str(text)
            .map(drop)
            .map_err(|e| e.to_string())
    });
}

/// A tenants file with one entry holding `fields` (YAML lines, `; ` between them).
fn tenants_entry(fields: &str) -> String {
    let mut text = "tenants:\n  - tenant: contoso.onmicrosoft.com\n".to_owned();
    for field in fields.split("; ").filter(|f| !f.is_empty()) {
        text.push_str(&format!("    {field}\n"));
    }
    text
}

/// A tenants file whose one entry is `tenant: VALUE`.
fn tenant_named(value: &str) -> String {
    format!("tenants:\n  - tenant: {value}\n")
}

fn tenants_rows() -> Vec<Row> {
    vec![
        row(tenants_entry(""), Accepted),
        row("tenants: []\n", Refused),
        row("tenants:\n", Refused),
        row("{}\n", Refused),
        row("tenants:\n  - contoso.com\n", Refused),
        row(tenants_entry("extra: 1"), Refused),
        row("tenants:\n  - exclude: []\n", Refused),
        row(format!("{}other: 1\n", tenants_entry("")), Refused),
        row(
            tenant_named("9C0E5F1A-0000-4000-8000-000000000001"),
            Accepted,
        ),
        row(tenant_named("9c0e5f1a000040008000000000000001"), Refused),
        row(
            tenant_named("'{9c0e5f1a-0000-4000-8000-000000000001}'"),
            Refused,
        ),
        row(tenant_named("' Contoso.OnMicrosoft.com '"), Accepted),
        row(tenant_named("contoso"), Refused),
        row(tenant_named("contoso..com"), Refused),
        row(tenant_named("-contoso.com"), Refused),
        row(tenant_named("contoso-.com"), Refused),
        row(tenant_named("../../etc"), Refused),
        row(tenant_named("a/b.com"), Refused),
        row(tenant_named("''"), Refused),
        row(tenant_named("42"), Refused),
        row(tenant_named(&format!("{}.com", "a".repeat(63))), Accepted),
        row(tenant_named(&format!("{}.com", "a".repeat(64))), Refused),
        row(
            tenant_named(&format!("{}.com", vec!["a".repeat(60); 5].join("."))),
            Refused,
        ),
        row(tenants_entry("maxChanges: 0"), Accepted),
        row(tenants_entry("maxChanges: -1"), Refused),
        row(tenants_entry("maxChanges: many"), Refused),
        row(tenants_entry("maxChanges:"), Refused),
        row(tenants_entry("protect: [bg@contoso.com]"), Accepted),
        row(tenants_entry("protect: [' bg@contoso.com ']"), Accepted),
        row(tenants_entry("protect: [not-a-user]"), Refused),
        row(tenants_entry("protect: []"), Accepted),
        row(tenants_entry("protect:"), Refused),
        row(
            tenants_entry("protect: [bg@contoso.com, BG@contoso.com]"),
            Looser("uniqueness without regard to case"),
        ),
        row(tenants_entry("exclude: [{group: Break-glass}]"), Accepted),
        row(tenants_entry("exclude: [{user: bg@contoso.com}]"), Accepted),
        row(tenants_entry("exclude: [{user: nobody}]"), Refused),
        row(tenants_entry("exclude: [{team: x}]"), Refused),
        row(tenants_entry("exclude: {group: x}"), Refused),
        row(
            "tenants:\n  - tenant: a.com\n  - tenant: A.com\n",
            Looser("uniqueness without regard to case"),
        ),
    ]
}

#[test]
fn the_tenants_schema_and_the_tenants_reader_agree() {
    let dir = tempfile::tempdir().unwrap();
    let rows = tenants_rows();
    agree("tenants.schema.json", &rows, |index, text| {
        let path = dir.path().join(format!("tenants-{index}.yaml"));
        std::fs::write(&path, text).unwrap();
        mfactl::manifest::tenants::load(&path)
            .map(drop)
            .map_err(|e| e.to_string())
    });
}

/// A validator for the manifest schema's `$defs/NAME` alone.
fn definition(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/manifest.schema.json"),
    )
    .unwrap();
    let mut schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let defs = schema["$defs"].take();
    let root = serde_json::json!({ "$ref": format!("#/$defs/{name}"), "$defs": defs });
    jsonschema::draft202012::new(&root).unwrap()
}

/// Text made of what user names and enum values are made of, and of what breaks them: the
/// separators, dots and hyphens, whitespace of every kind, hidden characters, case.
fn tricky_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let pieces = prop_oneof![
        Just("megan".to_owned()),
        Just("@".to_owned()),
        Just(".".to_owned()),
        Just("-".to_owned()),
        Just("contoso".to_owned()),
        Just("com".to_owned()),
        Just("#EXT#".to_owned()),
        Just("071cc716".to_owned()),
        Just("8147".to_owned()),
        Just("b2105951cc0b".to_owned()),
        Just("SMS".to_owned()),
        Just("push".to_owned()),
        Just("voiceMobile".to_owned()),
        Just("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned()),
        Just("_".to_owned()),
        Just("$".to_owned()),
        Just("ü".to_owned()),
        Just("ſ".to_owned()),
        prop::sample::select(vec![
            ' ',
            '\t',
            '\n',
            '\u{85}',
            '\u{a0}',
            '\u{2028}',
            '\u{3000}',
            '\u{200b}',
            '\u{202e}',
            '\u{feff}',
            '\u{1b}',
            '\u{e0041}',
            '\u{3164}',
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(pieces, 0..12).prop_map(|pieces| pieces.concat())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// The schema's user pattern is `check_user` after trimming, on any text.
    #[test]
    fn the_user_pattern_is_check_user(text in tricky_text()) {
        static USER: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
        let schema = USER.get_or_init(|| definition("UserName"));
        let trimmed = text.trim();
        let reader = !trimmed.is_empty() && mfactl::manifest::check_user(trimmed).is_ok();
        proptest::prop_assert_eq!(schema.is_valid(&serde_json::json!(text)), reader, "{:?}", text);
    }

    /// The schema's preferred methods are `PreferredMethod::parse`, on any text.
    #[test]
    fn the_method_pattern_is_parse(text in tricky_text()) {
        static METHOD: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
        let schema = METHOD.get_or_init(|| definition("PreferredMethod"));
        let reader = PreferredMethod::parse(&text).is_some();
        proptest::prop_assert_eq!(schema.is_valid(&serde_json::json!(text)), reader, "{:?}", text);
    }
}
