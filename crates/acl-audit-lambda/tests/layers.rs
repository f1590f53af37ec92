//! The adapter's modules are layers (docs/architecture.md): each uses only modules of its own
//! layer or those below it, and no two use each other, directly or through others. Leaf
//! modules own their errors; `error` only gathers them.

use std::path::Path;

const LAYERS: [(&str, u8); 20] = [
    // What comes in: the environment, the wire formats, the clients.
    ("config", 1),
    ("event", 1),
    ("clients", 1),
    // The one way in, and what the jobs read and keep.
    ("job", 2),
    ("map_run", 2),
    ("stored_resume", 2),
    ("suppression_file", 2),
    ("compare_runs", 3),
    ("to_security_hub", 3),
    ("error", 3),
    ("record", 3),
    ("outcome", 4),
    // The jobs.
    ("steps", 5),
    ("listing_audit", 5),
    ("inventory_audit", 5),
    ("add_up", 5),
    ("account_sweep", 5),
    ("handler", 6),
    ("metrics", 7),
    ("runtime", 7),
];

#[test]
fn every_module_uses_only_its_own_layer_or_those_below_and_none_closes_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert_eq!(test_support::layers::check(&src, &LAYERS), Vec::<String>::new());
}
