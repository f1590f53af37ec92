//! The three functions' own binaries (`sequential`, `spawn-blocking`, `join-all`, as `make test`
//! builds them), each under the benchmark's Runtime API, audit a bucket of hostile keys
//! (`test_support::hostile`: control characters, U+FFFE, NFC/NFD twins, 1 024-byte keys, keys of
//! whitespace alone, `+` and `%2B`) whole, on local-s3 and on moto_server, and their findings
//! files name exactly the public keys, byte for byte.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use acl_audit::findings::FindingLine;
use acl_audit::s3::client::client_for_endpoint;
use acl_bench::runtime_api::RuntimeApi;
use aws_sdk_s3::Client;
use local_s3::LocalS3;
use local_s3::moto::MotoServer;
use test_support::hostile;

const FUNCTIONS: [&str; 3] = ["sequential", "spawn-blocking", "join-all"];

/// A function's process, killed when dropped.
struct Function(Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binary(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_acl-bench")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: the workspace build (`make test`) builds it",
        path.display()
    );
    path
}

/// Runs each function's binary against `endpoint` over the bucket `bucket` (holding `keys`) and
/// checks its findings file names exactly the public keys.
async fn each_binary_audits_every_key(client: &Client, endpoint: &str, credentials: (&str, &str), keys: &[String]) {
    client.create_bucket().bucket("findings").send().await.unwrap();
    let expected: BTreeSet<String> = hostile::public_keys(keys).into_iter().collect();
    for name in FUNCTIONS {
        let api = RuntimeApi::start().unwrap();
        let child = Command::new(binary(name))
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", credentials.0)
            .env("AWS_SECRET_ACCESS_KEY", credentials.1)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent/aws/config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("FINDINGS_URI", format!("s3://findings/{name}/"))
            .env("WARM_CONNECTIONS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let _function = Function(child);
        api.wait_for_poll(Duration::from_secs(60))
            .expect("the init ends with a poll");
        let outcome = api
            .invoke(
                &serde_json::json!({"bucket": "hostile"}),
                Duration::from_secs(120),
                Duration::from_secs(120),
            )
            .unwrap();
        let body = String::from_utf8_lossy(&outcome.body);
        assert!(!outcome.error, "{name}: {body}");
        let report: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(report["objects_listed"], keys.len(), "{name}: {body}");
        assert_eq!(report["acls_fetched"], keys.len(), "{name}: {body}");
        let uri = report["findings"]["uri"].as_str().unwrap();
        let key = uri.strip_prefix("s3://findings/").unwrap();
        let file = client.get_object().bucket("findings").key(key).send().await.unwrap();
        let lines = file.body.collect().await.unwrap().into_bytes();
        let named: BTreeSet<String> = String::from_utf8(lines.to_vec())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<FindingLine>(line).unwrap().key)
            .collect();
        assert_eq!(named, expected, "{name}: the findings name exactly the public keys");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_function_audits_every_hostile_key_on_local_s3() {
    let s3 = LocalS3::start().await.unwrap();
    let client = test_support::client_for(&s3);
    let keys = hostile::keys();
    hostile::arrange(&client, "hostile", &keys).await;
    let credentials = s3.credentials();
    let pair = (
        credentials.access_key_id.as_str(),
        credentials.secret_access_key.as_str(),
    );
    each_binary_audits_every_key(&client, s3.endpoint_url(), pair, &keys).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_function_audits_every_hostile_key_on_moto() {
    let Some(moto) = MotoServer::start() else { return };
    let pair = ("moto-access-key", "moto-secret-key");
    let client = client_for_endpoint(moto.endpoint_url(), pair.0, pair.1);
    let keys = hostile::keys_moto_routes();
    hostile::arrange(&client, "hostile", &keys).await;
    each_binary_audits_every_key(&client, moto.endpoint_url(), pair, &keys).await;
}
