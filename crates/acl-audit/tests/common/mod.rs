//! A fresh `local-s3` per test and an SDK client pointed at it through the same
//! `client_from_sdk_config` the functions use.

#![allow(dead_code)] // Each test binary uses its own subset.

use acl_audit::client::client_from_sdk_config;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use local_s3::LocalS3;

pub async fn endpoint() -> (LocalS3, Client) {
    let s3 = LocalS3::start().await.expect("a loopback port is free");
    let credentials = Credentials::new(
        &s3.credentials().access_key_id,
        &s3.credentials().secret_access_key,
        None,
        None,
        "local-s3",
    );
    let sdk_config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(s3.endpoint_url())
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    let client = client_from_sdk_config(&sdk_config);
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
