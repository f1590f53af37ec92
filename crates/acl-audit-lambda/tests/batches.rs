//! Step Functions Distributed Map batches: the handler audits just a batch's keys, and the
//! batches' reports add up to the report of the whole bucket.

#[path = "../../acl-audit/tests/common/mod.rs"]
mod common;

use acl_audit::{AuditReport, StrategyKind};
use acl_audit_lambda::{Config, RequestError};
use acl_audit_lambda::{HandlerError, handle};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

fn config(vars: &[(&str, &str)]) -> Config {
    Config::from_vars(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())).unwrap()
}

async fn handle_batch(
    client: &aws_sdk_s3::Client,
    config: &Config,
    payload: Value,
) -> Result<AuditReport, HandlerError> {
    handle(
        StrategyKind::JoinAll,
        client,
        config,
        LambdaEvent::new(payload, Context::default()),
    )
    .await
}

/// A batch as the ItemReader (ListObjectsV2) and ItemBatcher build it.
fn batch(bucket: &str, keys: &[String]) -> Value {
    let items: Vec<Value> = keys
        .iter()
        .map(|key| json!({"Etag": "\"0\"", "Key": key, "LastModified": 1_795_574_400, "Size": 16, "StorageClass": "STANDARD"}))
        .collect();
    json!({"Items": items, "BatchInput": {"bucket": bucket}})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_distributed_map_batch_audits_exactly_its_keys() {
    let (_s3, client) = common::seeded("acl-audit-demo", 100).await;
    let report = handle_batch(&client, &config(&[]), common::fixture("distributed-map-batch.json"))
        .await
        .unwrap();
    assert_eq!((report.objects_listed, report.acls_fetched), (3, 3));
    assert_eq!(report.truncated, None);
    assert_eq!(report.audit.readable_by_all_users.keys, [local_s3::seed_key(7)]);
    assert_eq!(
        report.audit.readable_by_authenticated_users.keys,
        [local_s3::seed_key(8)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_without_a_bucket_takes_bucket_name() {
    let (_s3, client) = common::seeded("configured", 5).await;
    let payload = json!({"Items": [{"Key": local_s3::seed_key(1)}]});
    let report = handle_batch(&client, &config(&[("BUCKET_NAME", "configured")]), payload)
        .await
        .unwrap();
    assert_eq!(report.bucket, "configured");
    assert_eq!(report.acls_fetched, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_item_without_a_key_is_an_invalid_event_naming_it() {
    let (_s3, client) = common::endpoint().await;
    let payload = json!({"Items": [{"Key": "a"}, {"Size": 3}], "BatchInput": {"bucket": "b"}});
    let err = handle_batch(&client, &config(&[]), payload).await.unwrap_err();
    let HandlerError::Request(RequestError::InvalidEvent(message)) = &err else {
        panic!("{err:?}");
    };
    assert!(message.starts_with("Items[1]: missing field `Key`"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_reports_add_up_to_the_report_of_the_whole_bucket() {
    let (s3, client) = common::seeded("whole", 250).await;
    s3.store()
        .set_acl_readable("whole", &local_s3::seed_key(33), false)
        .unwrap();
    let config = config(&[]);
    let whole = handle_batch(&client, &config, json!({"bucket": "whole"}))
        .await
        .unwrap();

    let keys = acl_audit::s3::listing::list_keys(&client, &acl_audit::Target::bucket("whole"))
        .await
        .unwrap()
        .keys;
    let mut batches = Vec::new();
    for chunk in keys.chunks(60) {
        batches.push(handle_batch(&client, &config, batch("whole", chunk)).await.unwrap());
    }
    assert_eq!(batches.len(), 5);
    let mut summed = batches.remove(0);
    for report in batches {
        summed.absorb(report);
    }
    assert!(summed.accounts_for_every_object());
    assert_eq!(summed.failures.by_code["AccessDenied"], 1);
    let comparable = AuditReport {
        timings_ms: whole.timings_ms,
        ..summed
    };
    assert_eq!(comparable, whole);
}
