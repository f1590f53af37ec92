//! The core's modules are layers (README.md, "Layout"): each uses only modules of its own
//! layer or those below it, and no two use each other, directly or through others.

use std::path::Path;

/// Top-level modules, lowest layer first (`lib.rs` lists them in this order too).
const LAYERS: [(&str, u8); 14] = [
    ("model", 1),
    ("s3", 2),
    ("strategy", 3),
    ("report", 4),
    ("findings", 4),
    ("bucket", 4),
    ("audit", 4),
    ("parts", 4),
    ("suppressions", 4),
    ("changes", 4),
    ("security_hub", 4),
    ("ocsf", 4),
    ("sweep", 5),
    ("organization", 6),
];

#[test]
fn every_module_uses_only_its_own_layer_or_those_below_and_none_closes_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert_eq!(test_support::layers::check(&src, &LAYERS), Vec::<String>::new());
}
