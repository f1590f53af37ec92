//! `acl-bench bench` as `make bench` runs it, on a small sweep: it starts local-s3, runs its
//! children, prints the table, writes the JSON and leaves no process or cgroup behind.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn binaries() -> (PathBuf, PathBuf) {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_acl-bench"));
    let local_s3 = exe.with_file_name("local-s3");
    assert!(
        local_s3.exists(),
        "{} is missing: the workspace build (`make test`) builds it",
        local_s3.display()
    );
    (exe, local_s3)
}

/// Runs a 3-variant sweep at one size, starting each invocation as `start` says, and checks
/// the table, the JSON and that no cgroup is left behind.
fn small_sweep(start: &str) {
    let (exe, _) = binaries();
    let out = test_support::scratch!("acl-bench-cli-{start}.json");
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
    // With a CPU to spare, the embedded endpoint gets one of its own, and the header says which.
    let plan = acl_bench::cores::CorePlan::for_this_process().map(|plan| plan.to_string());
    assert_eq!(json["cpu_pinning"].as_str(), plan.as_deref());
    let pinning = plan.as_deref().unwrap_or("not pinned");
    assert!(stdout.contains(&format!("; CPUs: {pinning}\n")), "{stdout}");
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 3);
    for cell in cells {
        assert_eq!(cell["summary"]["runs"], 2);
        assert_eq!(cell["summary"]["failures"], 0);
        assert!(cell["summary"]["p50_ms"].as_f64().unwrap() > 0.0);
        assert!(cell["peak_rss_kb"].as_u64().unwrap() > 0);
        // A warm invocation reuses the warm-up's connections; any other opens its own.
        let connections = cell["summary"]["connections_per_invocation"].as_f64().unwrap();
        if start == "warm" {
            assert_eq!(connections, 0.0, "{cell}");
        } else {
            assert!(connections >= 1.0, "{cell}");
        }
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

/// The Node.js peers run as the Python ones do: same endpoint (its CA through
/// NODE_EXTRA_CA_CERTS), same cgroup, one row each, every ACL fetched. `make test` installs
/// their SDK (and sets ACL_BENCH_REQUIRE_PEERS); a bare `cargo test` without it skips.
#[test]
fn the_node_peers_join_a_sweep_when_their_sdk_is_installed() {
    let (exe, _) = binaries();
    let peers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../peers/node");
    if !peers.join("node_modules/@aws-sdk/client-s3").exists() {
        assert!(
            std::env::var("ACL_BENCH_REQUIRE_PEERS").as_deref() != Ok("1"),
            "{} has no SDK installed (`make bench-peers` installs it)",
            peers.display()
        );
        eprintln!("skipped: the Node.js peers' SDK is not installed (`make bench-peers`)");
        return;
    }
    for start in ["warm", "cold"] {
        let out = test_support::scratch!("acl-bench-node-{start}.json");
        let output = Command::new(&exe)
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
            ])
            .args([
                "--strategies",
                "join-all",
                "--caps",
                "--rtt-ms",
                "1",
                "--service-ms",
                "1",
            ])
            .arg("--node-peers-dir")
            .arg(&peers)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let cells = json["cells"].as_array().unwrap();
        let labels: Vec<&str> = cells.iter().map(|c| c["variant"].as_str().unwrap()).collect();
        assert_eq!(labels, ["join-all", "node-serial", "node-promise-all"], "{start}");
        for cell in cells {
            assert_eq!(cell["summary"]["failures"], 0, "{cell}");
            // The sweep refuses a cell whose invocations did not account for every object.
            assert!(cell["summary"]["p50_ms"].as_f64().unwrap() > 0.0, "{cell}");
        }
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(out.with_extension("svg"));
    }
}

/// A plain-HTTP local-s3 with no bucket, killed when dropped, and the environment its
/// `export` lines give a client.
struct ExternalEndpoint {
    process: Child,
    env: Vec<(String, String)>,
}

impl Drop for ExternalEndpoint {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn external_endpoint() -> ExternalEndpoint {
    let (_, local_s3) = binaries();
    let mut process = Command::new(local_s3)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(process.stdout.take().unwrap());
    let env = stdout
        .lines()
        .take(4)
        .map(|line| {
            let line = line.unwrap();
            let (name, value) = line.strip_prefix("export ").unwrap().split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    ExternalEndpoint { process, env }
}

fn bench_against(endpoint: &ExternalEndpoint, extra: &[&str]) -> std::process::Output {
    let (exe, _) = binaries();
    let url = &endpoint
        .env
        .iter()
        .find(|(name, _)| name == "AWS_ENDPOINT_URL")
        .unwrap()
        .1;
    let out = test_support::scratch!("acl-bench-external.json");
    let output = Command::new(exe)
        .args(["bench", "--endpoint", url, "--bucket", "outside"])
        .args(["--sizes", "3008", "--objects", "15", "--runs", "1", "--caps", "--out"])
        .arg(&out)
        .args(extra)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(endpoint.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(out.with_extension("svg"));
    output
}

#[test]
fn an_external_endpoint_is_seeded_on_request_and_swept_with_the_user_s_credentials() {
    let endpoint = external_endpoint();
    let output = bench_against(&endpoint, &["--seed"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("\n15 objects, 1 runs per cell"), "{stdout}");
    assert!(stdout.contains("(its own network)"), "{stdout}");
    // Nothing of the endpoint's runs here, so nothing is kept off the children's CPUs.
    assert!(stdout.contains("; CPUs: not pinned"), "{stdout}");
    for variant in ["sequential", "spawn-blocking", "join-all"] {
        assert!(
            stdout.lines().any(|l| l.contains(" 3008 ") && l.contains(variant)),
            "{stdout}"
        );
    }
}

#[test]
fn a_missing_external_bucket_is_named_before_any_child_runs() {
    let endpoint = external_endpoint();
    let output = bench_against(&endpoint, &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"outside\" does not exist"), "{stderr}");
    assert!(stderr.contains("add --seed"), "{stderr}");
    // The Lambda adapter's advice is not a command-line user's.
    assert!(!stderr.contains("BUCKET_NAME"), "{stderr}");
}

#[test]
fn with_findings_every_object_is_a_finding_written_by_the_children() {
    let (exe, _) = binaries();
    let out = test_support::scratch!("acl-bench-cli-findings.json");
    let output = Command::new(&exe)
        .args(["bench", "--sizes", "3008", "--objects", "40", "--runs", "1", "--caps"])
        .args([
            "--strategies",
            "join-all",
            "--rtt-ms",
            "1",
            "--service-ms",
            "1",
            "--findings",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("every one public-read, each finding streamed to FINDINGS_URI"),
        "{stdout}"
    );
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(json["findings"], true);
    // A child whose findings were not written fails its cell; this one counted its RSS.
    assert!(json["cells"][0]["peak_rss_kb"].as_u64().unwrap() > 0);
    assert_eq!(json["cells"][0]["summary"]["failures"], 0);
}
