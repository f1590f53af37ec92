//! docs/report.md documents exactly the environment variables the functions read and exactly
//! the errorTypes they answer: a name in the code but not in the docs, or in the docs but not in
//! the code, fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use acl_audit_lambda::Config;
use test_support::docs::{backticked, first_cells, read};

/// The backticked names in the first column of the table headed `header`.
fn first_column(page: &str, header: &str) -> BTreeSet<String> {
    backticked(&first_cells(page, header)).into_iter().collect()
}

/// The string literals in `source` that look like `prefix…`: `"AWS_…"`.
fn literals_starting(source: &str, prefix: &str) -> BTreeSet<String> {
    source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|literal| {
            literal.starts_with(prefix)
                && literal
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
        })
        .map(str::to_owned)
        .collect()
}

/// The names `fn error_type` in `source` answers.
fn error_types_in(source: &str) -> BTreeSet<String> {
    let start = source.find("fn error_type").expect("an error_type function");
    let body = &source[start..];
    let end = body.find("\n    }\n").expect("its end");
    body[..end]
        .split("=> \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

fn differences(code: &BTreeSet<String>, docs: &BTreeSet<String>) -> BTreeMap<&'static str, Vec<String>> {
    BTreeMap::from([
        ("in the code, not in the docs", code.difference(docs).cloned().collect()),
        ("in the docs, not in the code", docs.difference(code).cloned().collect()),
    ])
}

fn none() -> BTreeMap<&'static str, Vec<String>> {
    BTreeMap::from([
        ("in the code, not in the docs", Vec::new()),
        ("in the docs, not in the code", Vec::new()),
    ])
}

#[test]
fn the_documented_environment_variables_are_those_the_functions_read() {
    let asked = Mutex::new(BTreeSet::new());
    Config::from_vars(|name| {
        asked.lock().unwrap().insert(name.to_owned());
        None
    })
    .unwrap();
    let mut code = asked.into_inner().unwrap();
    // The S3 client's own: the CA bundle, the endpoints, the retry settings.
    code.extend(literals_starting(&read("crates/acl-audit/src/s3/client.rs"), "AWS_"));
    let docs = first_column(&read("docs/report.md"), "environment variable");
    assert_eq!(differences(&code, &docs), none());
}

#[test]
fn the_documented_error_types_are_those_the_functions_answer() {
    let mut code = error_types_in(&read("crates/acl-audit-lambda/src/error.rs"));
    code.extend(error_types_in(&read("crates/acl-audit-lambda/src/map_run.rs")));
    assert!(
        code.contains("InvalidEvent") && code.contains("PartsNotRead"),
        "{code:?}"
    );
    let docs = first_column(&read("docs/report.md"), "errorType");
    assert_eq!(differences(&code, &docs), none());
}
