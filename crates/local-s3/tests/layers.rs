//! The endpoint's modules are layers: each uses only modules of its own layer or those below
//! it, and no two use each other, directly or through others.

use std::path::Path;

const LAYERS: [(&str, u8); 15] = [
    ("acl", 1),
    ("credentials", 1),
    ("faults", 1),
    ("network", 1),
    ("tls", 1),
    ("moto", 1),
    ("store", 2),
    ("load", 2),
    ("listing", 3),
    ("seed", 3),
    ("inventory", 3),
    ("control", 3),
    ("service", 4),
    ("server", 5),
    // The `local-s3` binary's own modules, if any, sit above the library's.
    ("main", 6),
];

#[test]
fn every_module_uses_only_its_own_layer_or_those_below_and_none_closes_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert_eq!(test_support::layers::check(&src, &LAYERS), Vec::<String>::new());
}
