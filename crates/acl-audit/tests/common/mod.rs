//! A fresh `local-s3` per test and an SDK client pointed at it, configured (retries,
//! timeouts, path-style) as the functions configure theirs.

#![allow(dead_code)] // Each test binary uses its own subset.

use acl_audit::client::client_for_endpoint;
use aws_sdk_s3::Client;
use local_s3::LocalS3;

pub async fn endpoint() -> (LocalS3, Client) {
    let s3 = LocalS3::start().await.expect("a loopback port is free");
    let keys = s3.credentials();
    let client = client_for_endpoint(s3.endpoint_url(), &keys.access_key_id, &keys.secret_access_key);
    (s3, client)
}

/// An endpoint holding `bucket` seeded with `objects` objects.
pub async fn seeded(bucket: &str, objects: usize) -> (LocalS3, Client) {
    let (s3, client) = endpoint().await;
    local_s3::seed_bucket(s3.store(), bucket, objects).expect("a fresh store accepts the seed");
    (s3, client)
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/../../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {path}: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path} is not JSON: {err}"))
}
