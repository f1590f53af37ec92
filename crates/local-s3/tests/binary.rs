//! The `local-s3` binary as a user runs it: it serves a seeded bucket and prints the
//! environment a client needs.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the server when the test ends, whichever way it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with `args` and reads the `export` lines it prints (`lines` of them).
fn start(args: &[&str], lines: usize) -> (Server, Vec<(String, String)>) {
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_local-s3"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts"),
    );
    let stdout = server.0.stdout.take().expect("piped stdout");
    let exports = BufReader::new(stdout)
        .lines()
        .take(lines)
        .map(|line| {
            let line = line.expect("a line of output");
            let (name, value) = line
                .strip_prefix("export ")
                .and_then(|l| l.split_once('='))
                .expect("export NAME=value");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    (server, exports)
}

fn var(exports: &[(String, String)], name: &str) -> String {
    exports
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .expect(name)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_a_seeded_bucket_and_prints_its_environment() {
    let (_server, exports) = start(&["--port", "0", "--seed-bucket", "from-cli", "--objects", "25"], 4);
    assert_eq!(var(&exports, "AWS_REGION"), "us-east-1");
    let client = common::client(
        &var(&exports, "AWS_ENDPOINT_URL"),
        &var(&exports, "AWS_ACCESS_KEY_ID"),
        &var(&exports, "AWS_SECRET_ACCESS_KEY"),
    );
    let listing = client.list_objects_v2().bucket("from-cli").send().await.unwrap();
    assert_eq!(listing.key_count(), Some(25));
}

#[test]
fn with_tls_the_binary_serves_https_and_writes_its_ca_for_aws_ca_bundle() {
    let bundle = test_support::scratch!("local-s3-binary-test.pem");
    let bundle_arg = bundle.display().to_string();
    let (_server, exports) = start(&["--port", "0", "--tls", "--ca-bundle-out", &bundle_arg], 5);
    assert!(var(&exports, "AWS_ENDPOINT_URL").starts_with("https://127.0.0.1:"));
    assert_eq!(var(&exports, "AWS_CA_BUNDLE"), bundle_arg);
    let pem = std::fs::read_to_string(&bundle).expect("the CA file is written before the exports");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let _ = std::fs::remove_file(&bundle);
}

#[test]
fn print_env_json_gives_the_whole_environment_in_one_line_for_programs() {
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_local-s3"))
            .args(["--port", "0", "--tls", "--print-env", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts"),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("a line of output");
    let env: std::collections::BTreeMap<String, String> = serde_json::from_str(&line).expect("one JSON object");
    let names: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "AWS_ACCESS_KEY_ID",
            "AWS_CA_BUNDLE",
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
            "AWS_SECRET_ACCESS_KEY"
        ]
    );
    assert!(env["AWS_ENDPOINT_URL"].starts_with("https://127.0.0.1:"));
    let _ = std::fs::remove_file(&env["AWS_CA_BUNDLE"]);
}
