//! `acl-map rehearse` as a user runs it: the state machine's run with K workers, its parts
//! audited and added up.

use std::process::Command;

#[test]
fn a_small_rehearsal_accounts_for_every_object_with_each_count_of_workers() {
    let output = Command::new(env!("CARGO_BIN_EXE_acl-map"))
        .args([
            "rehearse",
            "--objects",
            "1500",
            "--parts",
            "4",
            "--workers",
            "1,3",
            "--json",
        ])
        .args(["--rtt-ms", "1", "--service-ms", "1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let runs: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert!(run["parts_per_pass"][0].as_u64().unwrap() > 1, "{run}");
        let report = &run["report"];
        assert_eq!(report["objects_listed"], 1500);
        assert_eq!(report["acls_fetched"], 1500);
        assert_eq!(run["get_object_acl_requests"], 1500);
    }
    assert_eq!(runs[0]["speedup"], 1.0);
}

#[test]
fn summarize_refuses_a_location_that_is_not_s3() {
    let output = Command::new(env!("CARGO_BIN_EXE_acl-map"))
        .args(["summarize", "results/run-1/"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not an s3://bucket/prefix location"), "{stderr}");
}

#[test]
fn an_inventory_rehearsal_reads_every_acl_from_the_report_and_none_by_request() {
    let output = Command::new(env!("CARGO_BIN_EXE_acl-map"))
        .args(["rehearse-inventory", "--objects", "1500", "--compare-listing"])
        .args(["--rtt-ms", "1", "--service-ms", "1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let table = String::from_utf8(output.stdout).unwrap();
    let counts: Vec<(&str, &str)> = table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() == 4 && fields[0] != "source").then(|| (fields[0], fields[3]))
        })
        .collect();
    assert_eq!(counts, [("inventory", "0"), ("listing", "1500")], "{table}");
}

#[test]
fn a_sweep_rehearsal_fetches_no_acl_on_the_disabled_buckets() {
    let output = Command::new(env!("CARGO_BIN_EXE_acl-map"))
        .args(["rehearse-sweep", "--buckets", "40", "--enabled", "2", "--objects", "50"])
        .args(["--rtt-ms", "1", "--service-ms", "1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let table = String::from_utf8(output.stdout).unwrap();
    // The last three columns of each run: ACLs fetched, GetObjectAcl requests, the ratio.
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|line| line.contains("account") || line.contains("alone"))
        .filter(|line| !line.trim_start().starts_with("account"))
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    for row in rows {
        let n = row.len();
        assert_eq!((row[n - 3], row[n - 2]), ("100", "100"), "{table}");
    }
}
