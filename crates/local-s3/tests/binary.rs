//! The `local-s3` binary as a user runs it: it serves a seeded bucket and prints the
//! environment a client needs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};

/// Kills the server when the test ends, whichever way it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_a_seeded_bucket_and_prints_its_environment() {
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_local-s3"))
            .args(["--port", "0", "--seed-bucket", "from-cli", "--objects", "25"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts"),
    );
    let stdout = server.0.stdout.take().expect("piped stdout");
    let exports: Vec<(String, String)> = BufReader::new(stdout)
        .lines()
        .take(4)
        .map(|line| {
            let line = line.expect("a line of output");
            let (name, value) = line.trim_start_matches("export ").split_once('=').expect("NAME=value");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let var = |name: &str| {
        exports
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .expect(name)
    };

    let config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(var("AWS_REGION")))
        .endpoint_url(var("AWS_ENDPOINT_URL"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            var("AWS_ACCESS_KEY_ID"),
            var("AWS_SECRET_ACCESS_KEY"),
            None,
            None,
            "cli",
        )))
        .build();
    let client = aws_sdk_s3::Client::new(&config);
    let listing = client.list_objects_v2().bucket("from-cli").send().await.unwrap();
    assert_eq!(listing.key_count(), Some(25));
}
