//! Reading the docs' tables, for the tests that hold them to the code.

use std::path::Path;

/// The text of `path`, relative to the workspace's root.
pub fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The first cells of the rows of the table in `page` whose header's first cell is `header`.
pub fn first_cells(page: &str, header: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut in_table = false;
    for line in page.lines() {
        let row: Vec<&str> = line.split('|').map(str::trim).collect();
        if !line.starts_with('|') {
            in_table = false;
        } else if row[1] == header {
            in_table = true;
        } else if in_table && !row[1].starts_with("---") {
            cells.push(row[1].to_owned());
        }
    }
    assert!(!cells.is_empty(), "no table headed {header:?}");
    cells
}

/// The `backticked` names in `cells`.
pub fn backticked(cells: &[String]) -> Vec<String> {
    cells
        .iter()
        .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned))
        .collect()
}
