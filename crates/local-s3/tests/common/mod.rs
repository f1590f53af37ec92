//! An `aws-sdk-s3` client for a local-s3 endpoint, as any S3 user would configure one.

#![allow(dead_code)] // Each test binary uses its own subset.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use local_s3::LocalS3;

pub fn client(endpoint_url: &str, access_key_id: &str, secret_access_key: &str) -> Client {
    let credentials = Credentials::new(access_key_id, secret_access_key, None, None, "test");
    let config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint_url)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

pub fn client_for(s3: &LocalS3) -> Client {
    let keys = s3.credentials();
    client(s3.endpoint_url(), &keys.access_key_id, &keys.secret_access_key)
}
