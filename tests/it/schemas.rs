//! The committed JSON Schemas match the types. `UPDATE_SCHEMAS=1 cargo test schemas` rewrites them.

#[test]
fn committed_schemas_match_the_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    for (name, schema) in mfactl::schemas::all() {
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
