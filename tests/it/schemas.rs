//! The JSON Schemas in `schemas/` are the types' (`UPDATE_SCHEMAS=1 cargo test schemas` rewrites
//! them), and they hold for what people and the binary actually use: every example and every
//! manifest or tenant file the README shows validates against the schema its
//! `# yaml-language-server: $schema=` comment names (and mfactl reads it), and the plans and
//! `show` documents the binary writes against the emulator validate against `plan.schema.json`
//! and `show.schema.json`. `schema_agreement` checks the manifest and tenant schemas value by
//! value against the readers.
//!
//! The validator is the `jsonschema` crate (draft 2020-12), as an editor or a CI job would run
//! one. A YAML file is given to it as a YAML 1.2 editor reads it (`yes` is text, `True` a
//! boolean): serde-saphyr with YAML 1.2 booleans. CSV manifests have no JSON Schema (a CSV row is
//! not a JSON document); they are checked with `mfactl validate` alone.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{mfactl, stderr, stdout};

/// Every committed schema, by file name under `schemas/`: the library's and the emulator's
/// tenant file's.
fn all_schemas() -> Vec<(&'static str, Value)> {
    let mut all = mfactl::schemas::all();
    all.push((
        "tenant.schema.json",
        mfactl_emulator::tenant_file_schema().to_value(),
    ));
    all
}

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

#[test]
fn committed_schemas_match_the_types() {
    let dir = repo("schemas");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    for (name, schema) in all_schemas() {
        let path = dir.join(name);
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run UPDATE_SCHEMAS=1 cargo test schemas",
                path.display()
            )
        });
        assert_eq!(
            committed, text,
            "{name} is stale: run UPDATE_SCHEMAS=1 cargo test schemas"
        );
    }
}

/// Every `pattern` (and `patternProperties` key) in `value`.
fn patterns(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                match (key.as_str(), child) {
                    ("pattern", Value::String(pattern)) => out.push(pattern.clone()),
                    ("patternProperties", Value::Object(keys)) => out.extend(keys.keys().cloned()),
                    _ => {}
                }
                patterns(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| patterns(item, out)),
        _ => {}
    }
}

/// Editors run patterns as ECMA-262 (`u` flag), other validators in their own dialect (Python's
/// `re`, PCRE, Rust's `regex`): the patterns keep to what they all read alike.
#[test]
fn schema_patterns_keep_to_syntax_every_validator_reads() {
    for (name, schema) in all_schemas() {
        let mut found = Vec::new();
        patterns(&schema, &mut found);
        for pattern in found {
            for unportable in [
                "\\u{", "\\p{", "\\P{", "(?i", "(?s", "(?<", "\\d", "\\w", "\\z",
            ] {
                assert!(
                    !pattern.contains(unportable),
                    "{name}: {unportable} in {pattern}"
                );
            }
        }
    }
}

/// The committed schemas, compiled once: the files editors and CI jobs use, not the types.
pub(crate) fn validator(name: &str) -> &'static jsonschema::Validator {
    static VALIDATORS: OnceLock<Vec<(String, jsonschema::Validator)>> = OnceLock::new();
    let all = VALIDATORS.get_or_init(|| {
        ["manifest", "tenant", "plan", "show", "tenants", "summary"]
            .into_iter()
            .map(|kind| {
                let file = format!("{kind}.schema.json");
                let text = std::fs::read_to_string(repo("schemas").join(&file)).unwrap();
                let schema: Value = serde_json::from_str(&text).unwrap();
                let validator = jsonschema::draft202012::new(&schema)
                    .unwrap_or_else(|e| panic!("{file} is not a valid schema: {e}"));
                (file, validator)
            })
            .collect()
    });
    &all.iter()
        .find(|(file, _)| file == name)
        .unwrap_or_else(|| panic!("no schema {name}"))
        .1
}

/// What the schema says of `document`: `Err` with every error (place and message).
pub(crate) fn check(schema: &str, document: &Value) -> Result<(), String> {
    let errors: Vec<String> = validator(schema)
        .iter_errors(document)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// YAML as a YAML 1.2 editor reads it, as JSON: `None` when it is not YAML at all.
pub(crate) fn yaml_as_json(text: &str) -> Option<Value> {
    let options = serde_saphyr::options! { strict_booleans: true };
    serde_saphyr::from_str_with_options(text, options).ok()
}

/// The schema a YAML file names in its `# yaml-language-server: $schema=PATH` comment, as a
/// file name under `schemas/`, checking that the path leads there from the file's folder.
fn named_schema(file: &Path, text: &str) -> Option<String> {
    let path = text
        .lines()
        .take_while(|line| line.starts_with('#'))
        .find_map(|line| line.strip_prefix("# yaml-language-server: $schema="))?;
    let target = file.parent().unwrap().join(path.trim());
    let target = target
        .canonicalize()
        .unwrap_or_else(|e| panic!("{}: $schema={path}: {e}", file.display()));
    assert_eq!(
        target.parent().unwrap(),
        repo("schemas").canonicalize().unwrap(),
        "{}: $schema={path} is not under schemas/",
        file.display()
    );
    Some(target.file_name().unwrap().to_str().unwrap().to_owned())
}

/// What a YAML document is, by its top-level keys: a manifest has `version`, a tenant file
/// `tenantId`, a multi-tenant run's tenants file `tenants`; anything else (a CI workflow) is
/// none of them.
fn kind_of(document: &Value) -> Option<&'static str> {
    let object = document.as_object()?;
    if object.contains_key("version") {
        Some("manifest.schema.json")
    } else if object.contains_key("tenantId") {
        Some("tenant.schema.json")
    } else if object.contains_key("tenants") {
        Some("tenants.schema.json")
    } else {
        None
    }
}

/// Whether mfactl reads the file: `mfactl validate` for a manifest, the emulator's loader for a
/// tenant file.
fn mfactl_reads(schema: &str, path: &Path) -> Result<(), String> {
    if schema == "tenant.schema.json" {
        return mfactl_emulator::Tenant::load(path)
            .map(drop)
            .map_err(|e| e.to_string());
    }
    if schema == "tenants.schema.json" {
        return mfactl::manifest::tenants::load(path)
            .map(drop)
            .map_err(|e| e.to_string());
    }
    let out = mfactl().arg("validate").arg(path).output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", stdout(&out), stderr(&out)))
    }
}

#[test]
fn every_example_names_its_schema_validates_and_is_read() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo("examples")).unwrap() {
        let path = entry.unwrap().path();
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if extension == "csv" {
            // No JSON Schema applies to CSV: the reader is the only check.
            mfactl_reads("manifest.schema.json", &path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
            continue;
        }
        assert!(
            matches!(extension, "yaml" | "yml"),
            "{}: examples/ holds YAML and CSV files",
            path.display()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let document = yaml_as_json(&text).expect("YAML");
        let kind = kind_of(&document).unwrap_or_else(|| {
            panic!(
                "{}: not a manifest, a tenant or a tenants file",
                path.display()
            )
        });
        let named = named_schema(&path, &text).unwrap_or_else(|| {
            panic!(
                "{} has no `# yaml-language-server: $schema=../schemas/{kind}` comment",
                path.display()
            )
        });
        assert_eq!(
            named,
            kind,
            "{}: the comment names the wrong schema",
            path.display()
        );
        check(kind, &document).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
        mfactl_reads(kind, &path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 6, "examples/ holds {seen} files");
}

/// The fenced blocks of `language` in a Markdown file: (line of the opening fence, text).
fn fenced(markdown: &str, language: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, usize, String)> = None;
    for (number, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None if trimmed.strip_prefix("```") == Some(language) => {
                open = Some((number + 1, indent, String::new()));
            }
            Some((start, _, text)) if trimmed == "```" => {
                blocks.push((*start, std::mem::take(text)));
                open = None;
            }
            Some((_, indent, text)) => {
                text.push_str(line.get(*indent..).unwrap_or(line.trim_start()));
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// The README and every Markdown file under docs/.
fn documentation() -> Vec<PathBuf> {
    let mut files = vec![repo("README.md")];
    let mut folders = vec![repo("docs")];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn every_manifest_and_tenant_file_the_docs_show_validates_and_is_read() {
    let scratch = tempfile::tempdir().unwrap();
    let mut shown = 0;
    for doc in documentation() {
        let markdown = std::fs::read_to_string(&doc).unwrap();
        // A block of several documents (Kubernetes objects) is checked document by document.
        let documents = fenced(&markdown, "yaml")
            .into_iter()
            .flat_map(|(line, text)| {
                let parts: Vec<String> = text.split("\n---\n").map(str::to_owned).collect();
                parts.into_iter().map(move |part| (line, part))
            });
        for (line, text) in documents {
            let place = format!("{}:{line}", doc.display());
            let document = yaml_as_json(&text).unwrap_or_else(|| panic!("{place}: not YAML"));
            let Some(kind) = kind_of(&document) else {
                continue; // a CI workflow or a Kubernetes object, not a file mfactl reads
            };
            check(kind, &document).unwrap_or_else(|e| panic!("{place}:\n{e}"));
            let path = scratch.path().join(format!("shown-{line}.yaml"));
            std::fs::write(&path, &text).unwrap();
            mfactl_reads(kind, &path).unwrap_or_else(|e| panic!("{place}: {e}"));
            shown += 1;
        }
        for (line, text) in fenced(&markdown, "csv") {
            let path = scratch.path().join(format!("shown-{line}.csv"));
            std::fs::write(&path, &text).unwrap();
            mfactl_reads("manifest.schema.json", &path)
                .unwrap_or_else(|e| panic!("{}:{line}: {e}", doc.display()));
            shown += 1;
        }
    }
    assert!(shown >= 5, "the docs show {shown} manifests");
}

/// Runs `mfactl ARGS` (with `--emulate` in them) and returns its JSON document.
fn document(args: &[&str], codes: &[i32]) -> Value {
    let out = mfactl().args(args).output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        codes.contains(&code),
        "{args:?}: exit {code}\n{}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: no JSON ({e}): {}", stdout(&out)))
}

fn example(name: &str) -> String {
    repo("examples").join(name).display().to_string()
}

#[test]
fn plans_and_show_documents_the_binary_writes_validate() {
    let tenant = example("tenant.yaml");
    let scratch = tempfile::tempdir().unwrap();
    let selectors = scratch.path().join("selectors.yaml");
    std::fs::write(
        &selectors,
        "version: 1\nallUsers: {perUserMfaState: disabled}\n\
         protect: [megan@contoso.com]\nmaxChanges: 100\n\
         exclude: [{user: ghost@contoso.com}]\n\
         users:\n  - user: lee.gu@contoso.com\n    preferredMethod: [push, oath, sms]\n",
    )
    .unwrap();
    let selectors = selectors.display().to_string();
    let mut plans = Vec::new();
    for manifest in [
        example("desired.yaml"),
        example("desired.csv"),
        example("migrate.yaml"),
        selectors.clone(),
    ] {
        let args = ["plan", &manifest, "--emulate", &tenant, "--format", "json"];
        plans.push((manifest.clone(), document(&args, &[0])));
        let saved = scratch.path().join("saved.json");
        let saved_arg = saved.display().to_string();
        let args = ["plan", &manifest, "--emulate", &tenant, "--out", &saved_arg];
        let out = mfactl().args(args).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let saved_doc = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
        plans.push((format!("{manifest} --out"), saved_doc));
        let args = [
            "apply",
            &manifest,
            "--emulate",
            &tenant,
            "--auto-approve",
            "--format",
            "json",
        ];
        plans.push((format!("apply {manifest}"), document(&args, &[0, 3])));
    }
    for (what, plan) in &plans {
        check("plan.schema.json", plan).unwrap_or_else(|e| panic!("{what}:\n{e}"));
    }
    let statuses: Vec<&str> = plans
        .iter()
        .flat_map(|(_, plan)| plan["users"].as_array().unwrap())
        .filter_map(|user| user["status"].as_str())
        .collect();
    for status in ["change", "blocked", "not_found", "protected", "applied"] {
        assert!(
            statuses.contains(&status),
            "no {status} user in {statuses:?}"
        );
    }

    let show = |users: &[&str]| {
        let mut args = vec!["show"];
        args.extend(users);
        args.extend(["--emulate", &tenant, "--format", "json"]);
        // One not found is exit 1, with the document still printed.
        document(&args, &[0, 1])
    };
    for users in [
        &["megan@contoso.com"][..],
        &[
            "irvin.sayers@contoso.com",
            "071cc716-8147-4397-a5ba-b2105951cc0b",
        ],
        &["ghost@contoso.com", "$svc-helpdesk@contoso.com"],
    ] {
        let doc = show(users);
        check("show.schema.json", &doc).unwrap_or_else(|e| panic!("show {users:?}:\n{e}"));
    }
}
