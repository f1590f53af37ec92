//! docs/cli.md names exactly the flags `acl-audit scan --help` lists and exactly the exit codes
//! the command returns.

use std::collections::BTreeSet;
use std::process::Command;

use test_support::docs::{backticked, first_cells, read};

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
    let mut documented: BTreeSet<String> = backticked(&first_cells(&read("docs/cli.md"), "flag"))
        .into_iter()
        .collect();
    // `--version` is the top-level command's; `scan --help` does not list it.
    assert!(documented.remove("--version"), "{documented:?}");
    assert_eq!(documented, listed);
}

#[test]
fn the_documented_fix_flags_are_those_fix_plan_and_fix_take() {
    let listed: BTreeSet<String> = [help(&["fix-plan", "--help"]), help(&["fix", "--help"])]
        .concat()
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[')
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| word.trim_end_matches(|c: char| !c.is_alphanumeric()).to_owned())
        .collect();
    let documented: BTreeSet<String> = backticked(&first_cells(&read("docs/cli.md"), "fix flag"))
        .into_iter()
        .collect();
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
