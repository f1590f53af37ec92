//! `summarize` over what a ResultWriter writes, in S3 (local-s3): parts succeeded and
//! failed add up to one report that still accounts for every object.

use acl_audit::StrategyKind;
use acl_audit::model::S3Location;
use acl_audit::s3::client::client_for_endpoint;
use acl_audit_lambda::Clients;
use acl_audit_lambda::Config;
use acl_map::results::{SummarizeError, summarize};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use lambda_runtime::{Context, LambdaEvent};
use local_s3::LocalS3;
use serde_json::{Value, json};

async fn endpoint() -> (LocalS3, Client) {
    let s3 = LocalS3::start().await.unwrap();
    local_s3::seed_bucket(s3.store(), "audited", 30).unwrap();
    s3.store().create_bucket("results-bucket").unwrap();
    let keys = s3.credentials();
    let client = client_for_endpoint(s3.endpoint_url(), &keys.access_key_id, &keys.secret_access_key);
    (s3, client)
}

async fn put(client: &Client, key: &str, value: &Value) {
    client
        .put_object()
        .bucket("results-bucket")
        .key(key)
        .body(ByteStream::from(serde_json::to_vec(value).unwrap()))
        .send()
        .await
        .unwrap();
}

/// A part naming the keys `range` of the seeded bucket, as the parts file hands it to a worker.
fn batch(range: std::ops::Range<usize>) -> Value {
    let keys: Vec<_> = range
        .map(|i| acl_audit::model::ObjectRef::from(local_s3::seed_key(i)))
        .collect();
    json!({"resume": acl_audit::Resume::keys_only("audited".to_owned(), keys), "map_part": true})
}

fn location(text: &str) -> S3Location {
    text.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn succeeded_and_failed_batches_add_up_to_every_object() {
    let (_s3, client) = endpoint().await;
    let config = Config::from_vars(|_| None).unwrap();
    let mut succeeded = Vec::new();
    for range in [0..10, 10..20] {
        let input = batch(range);
        let event = LambdaEvent::new(input.clone(), Context::default());
        let report = acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(&client), &config, event)
            .await
            .into_result()
            .unwrap();
        succeeded.push(json!({
            "ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:audit/AuditBatches:1",
            "Input": input.to_string(), "InputDetails": {"Included": true}, "Name": "1",
            "Output": serde_json::to_string(&report).unwrap(), "OutputDetails": {"Included": true},
            "RedriveCount": 0, "Status": "SUCCEEDED",
            "StartDate": "2026-11-25T04:00:00.000Z", "StopDate": "2026-11-25T04:00:01.000Z"
        }));
    }
    let failed = json!([{
        "Input": batch(20..30).to_string(), "InputDetails": {"Included": true}, "Name": "3",
        "Status": "FAILED", "Error": "States.Timeout", "Cause": "the worker timed out"
    }]);
    put(&client, "results/run-1/SUCCEEDED_0.json", &Value::Array(succeeded)).await;
    put(&client, "results/run-1/FAILED_0.json", &failed).await;
    put(
        &client,
        "results/run-1/manifest.json",
        &json!({
            "DestinationBucket": "results-bucket",
            "MapRunArn": "arn:aws:states:us-east-1:123456789012:mapRun:audit/AuditBatches:run-1",
            "ResultFiles": {
                "FAILED": [{"Key": "results/run-1/FAILED_0.json", "Size": 1}],
                "PENDING": [],
                "SUCCEEDED": [{"Key": "results/run-1/SUCCEEDED_0.json", "Size": 1}]
            }
        }),
    )
    .await;

    let summary = summarize(&client, &location("s3://results-bucket/results/run-1/"))
        .await
        .unwrap();
    assert_eq!((summary.batches.succeeded, summary.batches.failed), (2, 1));
    let report = &summary.report;
    assert_eq!(report.bucket, "audited");
    assert_eq!(
        (report.objects_listed, report.acls_fetched, report.failures.count),
        (30, 20, 10)
    );
    assert!(report.accounts_for_every_object());
    assert_eq!(report.failures.by_code["States.Timeout"], 10);
    assert_eq!(report.audit.readable_by_all_users.count, 2, "objects 7 and 17");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_without_a_manifest_says_what_to_give() {
    let (_s3, client) = endpoint().await;
    let err = summarize(&client, &location("s3://results-bucket/results/"))
        .await
        .unwrap_err();
    assert!(matches!(err, SummarizeError::NoManifest(_)), "{err}");
    assert!(err.to_string().contains("results/<map run id>/"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_with_several_runs_asks_for_one() {
    let (_s3, client) = endpoint().await;
    let empty = json!({"ResultFiles": {"FAILED": [], "PENDING": [], "SUCCEEDED": []}});
    put(&client, "results/a/manifest.json", &empty).await;
    put(&client, "results/b/manifest.json", &empty).await;
    let err = summarize(&client, &location("s3://results-bucket/results/"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "2 runs' manifests under s3://results-bucket/results/: give one run's folder, e.g. s3://results-bucket/results/a/"
    );
}
