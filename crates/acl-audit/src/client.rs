//! The S3 client, built once per process: a warm Lambda container reuses it, and with it
//! its pool of open connections.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};

/// Standard retry mode: exponential backoff with jitter and a retry quota, three attempts.
const MAX_ATTEMPTS: u32 = 3;
/// An S3 endpoint in the same region connects in milliseconds; a dead one should not eat
/// the function's whole timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// GetObjectAcl and a 1 000-key ListObjectsV2 page are small; one attempt past this is stuck.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// A client from the standard AWS configuration chain (environment, profile, the Lambda
/// role), honouring `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_S3`.
pub async fn client_from_env() -> Client {
    let sdk_config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    client_from_sdk_config(&sdk_config)
}

pub fn client_from_sdk_config(sdk_config: &SdkConfig) -> Client {
    // S3-compatible endpoints (local-s3, moto, MinIO) seldom resolve bucket subdomains.
    let endpoint_overridden = sdk_config.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|url| !url.is_empty());
    let config = aws_sdk_s3::config::Builder::from(sdk_config)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .force_path_style(endpoint_overridden)
        .build();
    Client::from_conf(config)
}

/// A client for an S3-compatible endpoint with its own static key pair (`local-s3`, moto):
/// no profile or environment lookup, so tests and local runs cannot pick up real credentials.
pub fn client_for_endpoint(endpoint_url: &str, access_key_id: &str, secret_access_key: &str) -> Client {
    let credentials = Credentials::new(access_key_id, secret_access_key, None, None, "static-endpoint-keys");
    let sdk_config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint_url)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    client_from_sdk_config(&sdk_config)
}
