//! The chart's CRD is generated from the Rust types: this test fails when they drift apart.
//! The chart's template (templates/multicasskop-crd.yaml) renders this file as it is, adding
//! only labels and annotations (e2e's chart_crds test checks that).
//! Regenerate with `UPDATE_CRD=1 cargo test --test crd_drift` (or `multi-casskop crd`).

use std::path::PathBuf;

const HEADER: &str = "# Generated from the Rust types (src/api/multicasskop.rs) by `multi-casskop crd`.\n# Do not edit: regenerate with `UPDATE_CRD=1 cargo test --test crd_drift`.\n";

fn chart_crd() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("helm/multi-casskop/files/multicasskops.db.orange.com.yaml")
}

#[test]
fn chart_crd_matches_the_rust_types() {
    let expected = format!("{HEADER}{}", multi_casskop::api::crd_yaml());
    let path = chart_crd();
    if std::env::var_os("UPDATE_CRD").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} missing ({e}); run UPDATE_CRD=1 cargo test --test crd_drift",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "{} is out of date with src/api: run `UPDATE_CRD=1 cargo test --test crd_drift` and commit it",
        path.display()
    );
}
