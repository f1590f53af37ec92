//! docs/cli.md names exactly the flags `acl-audit scan --help` lists and exactly the exit codes
//! the command returns.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The first cells of the rows of the table whose header's first cell is `header`.
fn first_cells(page: &str, header: &str) -> Vec<String> {
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

fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_acl-audit"))
        .args(args)
        .output()
        .expect("acl-audit runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("UTF-8 help")
}

#[test]
fn the_documented_flags_are_those_scan_takes() {
    let listed: BTreeSet<String> = help(&["scan", "--help"])
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[')
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| word.trim_end_matches(|c: char| !c.is_alphanumeric()).to_owned())
        .collect();
    let mut documented: BTreeSet<String> = first_cells(&read("docs/cli.md"), "flag")
        .iter()
        .flat_map(|cell| {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    // `--version` is the top-level command's; `scan --help` does not list it.
    assert!(documented.remove("--version"), "{documented:?}");
    assert_eq!(documented, listed);
}

#[test]
fn the_documented_exit_codes_are_those_the_command_returns() {
    let source = read("crates/acl-audit-cli/src/main.rs");
    let mut returned: BTreeSet<String> = source
        .lines()
        .filter_map(|line| line.strip_prefix("const ")?.split_once(": u8 = "))
        .map(|(_, value)| value.trim_end_matches(';').to_owned())
        .collect();
    // clap exits with 2 on a command line it cannot read.
    returned.insert("2".to_owned());
    let documented: BTreeSet<String> = first_cells(&read("docs/cli.md"), "exit code").into_iter().collect();
    assert_eq!(documented, returned);
    let top = help(&["--help"]);
    for code in &returned {
        assert!(
            top.contains(&format!("{code} ")),
            "--help names exit code {code}: {top}"
        );
    }
}
