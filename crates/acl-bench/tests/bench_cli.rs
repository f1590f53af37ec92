//! `acl-bench bench` as `make bench` runs it, on a small sweep: it starts local-s3, runs its
//! children, prints the table, writes the JSON and leaves no process or cgroup behind.

use std::process::Command;

/// Runs a 3-variant sweep at one size, starting each invocation as `start` says, and checks
/// the table, the JSON and that no cgroup is left behind.
fn small_sweep(start: &str) {
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_acl-bench"));
    let local_s3 = exe.with_file_name("local-s3");
    assert!(
        local_s3.exists(),
        "{} is missing: the workspace build (`make test`) builds it",
        local_s3.display()
    );
    let out = std::env::temp_dir().join(format!("acl-bench-cli-{}-{start}.json", std::process::id()));
    let child = Command::new(&exe)
        .args([
            "bench",
            "--start",
            start,
            "--sizes",
            "3008",
            "--objects",
            "12",
            "--runs",
            "2",
            "--caps",
        ])
        .args(["--rtt-ms", "1", "--service-ms", "1", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let bench_pid = child.id();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for variant in ["sequential", "spawn-blocking", "join-all"] {
        assert!(
            stdout.lines().any(|l| l.contains(" 3008 ") && l.contains(variant)),
            "{stdout}"
        );
    }

    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(json["start"], start);
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 3);
    for cell in cells {
        assert_eq!(cell["summary"]["runs"], 2);
        assert_eq!(cell["summary"]["failures"], 0);
        assert!(cell["summary"]["p50_ms"].as_f64().unwrap() > 0.0);
        assert!(cell["peak_rss_kb"].as_u64().unwrap() > 0);
    }
    let fastest = cells.iter().filter(|c| c["vs_fastest"] == 1.0).count();
    assert_eq!(fastest, 1, "exactly one variant is the fastest: {cells:?}");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(out.with_extension("svg"));

    // The sweep names its groups after its own pid; other tests' sweeps may be running.
    let own_group = format!("acl-bench-{bench_pid}-3008mb");
    for parent in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let path = std::path::Path::new(parent).join(&own_group);
        assert!(!path.exists(), "a cgroup was left behind: {}", path.display());
    }
}

#[test]
fn a_warm_sweep_prints_the_table_and_writes_the_json() {
    small_sweep("warm");
}

#[test]
fn an_empty_pool_sweep_prints_the_table_and_writes_the_json() {
    small_sweep("empty-pool");
}

#[test]
fn a_cold_sweep_prints_the_table_and_writes_the_json() {
    small_sweep("cold");
}
