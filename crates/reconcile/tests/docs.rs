//! docs/resources.md and docs/stack.schema.json are generated from the kinds'
//! schemas by `reconcile docs` and `reconcile schema`; these tests keep the
//! committed files in step with the code.

use std::process::Command;

#[test]
fn resources_md_is_up_to_date() {
    let out = Command::new(env!("CARGO_BIN_EXE_reconcile"))
        .arg("docs")
        .output()
        .expect("run reconcile docs");
    assert!(
        out.status.success(),
        "`reconcile docs` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).expect("docs are UTF-8");
    let path = concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/docs/resources.md"
    );
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if generated != committed {
        let first = generated
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| generated.lines().count().min(committed.lines().count()));
        panic!(
            "docs/resources.md is out of date with the schemas (first difference at line {}).\n\
             Regenerate it with:\n\n    cargo run -q -- docs > docs/resources.md\n\n\
             and commit the result.",
            first + 1
        );
    }
}

#[test]
fn stack_schema_json_is_up_to_date() {
    let out = Command::new(env!("CARGO_BIN_EXE_reconcile"))
        .arg("schema")
        .output()
        .expect("run reconcile schema");
    assert!(
        out.status.success(),
        "`reconcile schema` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).expect("the schema is UTF-8");
    let parsed: serde_json::Value =
        serde_json::from_str(&generated).expect("`reconcile schema` prints JSON");
    assert!(
        parsed["properties"]["vpc"].is_object(),
        "the schema declares no `vpc` kind"
    );
    let path = concat!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        "/docs/stack.schema.json"
    );
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if generated != committed {
        let first = generated
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| generated.lines().count().min(committed.lines().count()));
        panic!(
            "docs/stack.schema.json is out of date with the schemas (first difference at line {}).\n\
             Regenerate it with:\n\n    cargo run -q -- schema > docs/stack.schema.json\n\n\
             and commit the result.",
            first + 1
        );
    }
}
