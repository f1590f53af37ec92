//! Fault injection as a client sees it: S3's own error answers, closed connections and late
//! answers, on the operations the rules name, at the rates they give.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object_acl::GetObjectAclError;
use local_s3::{FaultCounts, Faults, LocalS3, Options};

/// An endpoint injecting `rules`, a bucket "faulty" of `objects` objects, and a client that
/// does not retry, so that every fault reaches the test.
async fn endpoint_with(rules: &[&str], objects: usize) -> (LocalS3, Client) {
    let s3 = LocalS3::start_with(Options {
        faults: Faults {
            seed: 42,
            rules: rules.iter().map(|rule| rule.parse().unwrap()).collect(),
            slow_response: Duration::from_millis(300),
        },
        ..Options::default()
    })
    .await
    .unwrap();
    local_s3::seed_bucket(s3.store(), "faulty", objects).unwrap();
    let client = common::client_for(&s3);
    let client = Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    (s3, client)
}

async fn get_acl(client: &Client, i: usize) -> Result<(), SdkError<GetObjectAclError>> {
    client
        .get_object_acl()
        .bucket("faulty")
        .key(local_s3::seed_key(i))
        .send()
        .await
        .map(drop)
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_down_is_a_503_with_s3_s_code() {
    let (s3, client) = endpoint_with(&["get-object-acl:slow-down=1"], 1).await;
    let err = get_acl(&client, 0).await.unwrap_err();
    assert_eq!(err.code(), Some("SlowDown"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 503);
    assert_eq!(s3.faults_injected().slow_down, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_error_is_a_500_with_s3_s_code() {
    let (_s3, client) = endpoint_with(&["get-object-acl:internal-error=1"], 1).await;
    let err = get_acl(&client, 0).await.unwrap_err();
    assert_eq!(err.code(), Some("InternalError"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 500);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_closes_the_connection_without_an_answer() {
    let (s3, client) = endpoint_with(&["*:reset=1"], 1).await;
    let err = get_acl(&client, 0).await.unwrap_err();
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
    assert_eq!(s3.faults_injected().reset, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_answer_is_the_right_answer_late() {
    let (s3, client) = endpoint_with(&["get-object-acl:slow=1"], 1).await;
    let started = Instant::now();
    get_acl(&client, 0).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(s3.faults_injected().slow, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_for_one_operation_leaves_the_others_alone() {
    let (s3, client) = endpoint_with(&["list-objects-v2:internal-error=1"], 3).await;
    for i in 0..3 {
        get_acl(&client, i).await.unwrap();
    }
    let err = client.list_objects_v2().bucket("faulty").send().await.unwrap_err();
    assert_eq!(err.code(), Some("InternalError"));
    assert_eq!(s3.faults_injected().internal_error, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_fails_about_that_share_and_the_same_requests_on_every_run() {
    async fn failed_keys(rules: &[&str]) -> (Vec<usize>, FaultCounts) {
        let (s3, client) = endpoint_with(rules, 400).await;
        let mut failed = Vec::new();
        for i in 0..400 {
            if get_acl(&client, i).await.is_err() {
                failed.push(i);
            }
        }
        (failed, s3.faults_injected())
    }
    let rules = ["get-object-acl:slow-down=0.05", "get-object-acl:internal-error=0.05"];
    let (first, counts) = failed_keys(&rules).await;
    assert!((20..=60).contains(&first.len()), "{} of 400 failed", first.len());
    assert_eq!(counts.failed_requests(), first.len() as u64);
    assert_eq!(
        failed_keys(&rules).await.0,
        first,
        "the same seed fails the same requests"
    );
}
