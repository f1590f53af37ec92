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

/// Part `index` of pass 0 naming the keys `range` of the seeded bucket, as the parts file
/// hands it to a worker.
fn part(index: usize, range: std::ops::Range<usize>) -> Value {
    let keys: Vec<_> = range
        .map(|i| acl_audit::model::ObjectRef::from(local_s3::seed_key(i)))
        .collect();
    json!({
        "resume": acl_audit::Resume::keys_only("audited".to_owned(), keys),
        "map_part": true,
        "folder": format!("s3://results-bucket/parts/run-1/pass-0/part-{index}/"),
    })
}

fn location(text: &str) -> S3Location {
    text.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn reported_and_unreported_parts_add_up_to_every_object() {
    let (_s3, client) = endpoint().await;
    let config = Config::from_vars(|_| None).unwrap();
    let parts = vec![part(0, 0..10), part(1, 10..20), part(2, 20..30)];
    put(&client, "parts/run-1/pass-0.json", &Value::Array(parts.clone())).await;
    // Parts 0 and 1 run and leave their reports; part 2's invocation fails before it does.
    for input in &parts[..2] {
        let event = LambdaEvent::new(input.clone(), Context::default());
        acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(&client), &config, event)
            .await
            .into_result()
            .unwrap();
    }

    let summary = summarize(&client, &location("s3://results-bucket/parts/run-1/"))
        .await
        .unwrap();
    assert_eq!(
        (summary.passes, summary.parts.reported, summary.parts.failed),
        (1, 2, 1)
    );
    let report = &summary.report;
    assert_eq!(report.bucket, "audited");
    assert_eq!(
        (report.objects_listed, report.acls_fetched, report.failures.count),
        (30, 20, 10)
    );
    assert!(report.accounts_for_every_object());
    assert_eq!(report.failures.by_code["PartNotReported"], 10);
    assert_eq!(report.audit.readable_by_all_users.count, 2, "objects 7 and 17");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_without_parts_says_what_to_give() {
    let (_s3, client) = endpoint().await;
    let err = summarize(&client, &location("s3://results-bucket/parts/"))
        .await
        .unwrap_err();
    assert!(matches!(err, SummarizeError::NoParts(_)), "{err}");
    assert!(err.to_string().contains("parts/<execution name>/"), "{err}");
}
