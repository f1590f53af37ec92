//! The state machine's last step through the handler: given the Distributed Map's output
//! (`fixtures/distributed-map-run-output.json`, Step Functions' documented shape), the function
//! reads the ResultWriter's manifest and result files in S3 (local-s3), adds the batches up and,
//! under `FINDINGS_URI`, writes the run's findings file and report in the run's own folder.

use test_support as common;

use std::collections::HashMap;

use acl_audit::findings::{FailureLine, FindingLine, utc_date};
use acl_audit::{AuditReport, StrategyKind};
use acl_audit_lambda::{Clients, Config, Scope};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};

const RUN_ID: &str = "6dbfba93-bcff-410b-9b5c-abf41ae9eddb";

fn config(vars: &[(&str, &str)]) -> Config {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_vars(|name| vars.get(name).cloned()).expect("valid test configuration")
}

fn event(payload: Value, request_id: &str) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    LambdaEvent::new(payload, context)
}

fn fixture() -> Value {
    serde_json::from_str(include_str!("../../../fixtures/distributed-map-run-output.json")).unwrap()
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

async fn read(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let object = client.get_object().bucket(bucket).key(key).send().await.unwrap();
    object.body.collect().await.unwrap().into_bytes().to_vec()
}

/// A part naming the keys `range` of the seeded bucket, as the parts file hands it to a worker.
fn batch(range: std::ops::Range<usize>) -> Value {
    let keys: Vec<_> = range
        .map(|i| acl_audit::model::ObjectRef::from(local_s3::seed_key(i)))
        .collect();
    json!({"resume": acl_audit::Resume::keys_only("audited".to_owned(), keys), "map_part": true})
}

/// A map run as its ResultWriter leaves it: batches 0..10 and 10..20 audited by the handler
/// (each writing its own findings under `config`'s FINDINGS_URI), 20..30 failed. The batch
/// reports, in order.
async fn map_run(client: &Client, config: &Config) -> Vec<AuditReport> {
    let (mut reports, mut succeeded) = (Vec::new(), Vec::new());
    for (n, range) in [0..10, 10..20].into_iter().enumerate() {
        let input = batch(range);
        let invocation = acl_audit_lambda::invoke(
            StrategyKind::JoinAll,
            &Clients::new(client),
            config,
            event(input.clone(), &format!("batch-{n}")),
        )
        .await;
        assert_eq!(invocation.scope(), Scope::Part, "a batch counts per strategy only");
        let report = invocation.into_result().unwrap();
        succeeded.push(json!({
            "Input": input.to_string(), "Name": n.to_string(),
            "Output": serde_json::to_string(&report).unwrap(), "Status": "SUCCEEDED"
        }));
        reports.push(report);
    }
    let failed = json!([{
        "Input": batch(20..30).to_string(), "Name": "2",
        "Status": "FAILED", "Error": "States.Timeout", "Cause": "the worker timed out"
    }]);
    let folder = format!("results/{RUN_ID}");
    put(client, &format!("{folder}/SUCCEEDED_0.json"), &Value::Array(succeeded)).await;
    put(client, &format!("{folder}/FAILED_0.json"), &failed).await;
    put(
        client,
        &format!("{folder}/manifest.json"),
        &json!({
            "DestinationBucket": "results-bucket",
            "MapRunArn": fixture()["MapRunArn"],
            "ResultFiles": {
                "FAILED": [{"Key": format!("{folder}/FAILED_0.json"), "Size": 1}],
                "PENDING": [],
                "SUCCEEDED": [{"Key": format!("{folder}/SUCCEEDED_0.json"), "Size": 1}]
            }
        }),
    )
    .await;
    reports
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_step_adds_the_batches_up_and_writes_the_runs_findings_and_report() {
    let (s3, client) = common::seeded("audited", 30).await;
    s3.store().create_bucket("results-bucket").unwrap();
    s3.store().create_bucket("findings").unwrap();
    let config = config(&[("BUCKET_NAME", "audited"), ("FINDINGS_URI", "s3://findings/acl-audit/")]);
    let batches = map_run(&client, &config).await;
    let batch_findings: usize = batches.iter().map(|b| b.findings.as_ref().unwrap().objects).sum();
    assert!(batch_findings > 0, "the seeded bucket has public objects");

    let invocation = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config,
        event(fixture(), "summary"),
    )
    .await;
    assert_eq!(invocation.scope(), Scope::MapRun, "counted per bucket, once");
    let report = invocation.into_result().unwrap();
    assert_eq!(report.bucket, "audited");
    assert_eq!(
        (report.objects_listed, report.acls_fetched, report.failures.count),
        (30, 20, 10)
    );
    assert!(report.accounts_for_every_object());
    assert_eq!(report.failures.by_code["States.Timeout"], 10);

    let (year, month, day) = utc_date(std::time::SystemTime::now());
    let folder = format!("acl-audit/audited/{year:04}/{month:02}/{day:02}/{RUN_ID}/");
    let written = report.findings.as_ref().expect("the run's findings file");
    assert_eq!(written.uri, format!("s3://findings/{folder}findings.jsonl"));
    assert_eq!((written.objects, written.failures), (batch_findings, 10));

    let file = read(&client, "findings", &format!("{folder}findings.jsonl")).await;
    let lines: Vec<Value> = file
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    let (failures, findings): (Vec<&Value>, Vec<&Value>) = lines.iter().partition(|line| line.get("error").is_some());
    assert_eq!(findings.len(), batch_findings, "every batch's lines, once");
    for line in findings {
        serde_json::from_value::<FindingLine>(line.clone()).unwrap();
    }
    let mut failed: Vec<String> = failures
        .into_iter()
        .map(|line| {
            let line: FailureLine = serde_json::from_value(line.clone()).unwrap();
            assert_eq!(
                (line.bucket.as_str(), line.error.code.as_str()),
                ("audited", "States.Timeout")
            );
            line.key
        })
        .collect();
    failed.sort();
    let expected: Vec<String> = (20..30).map(local_s3::seed_key).collect();
    assert_eq!(failed, expected, "a failure line for every key of the failed batch");

    let mut stored: AuditReport =
        serde_json::from_slice(&read(&client, "findings", &format!("{folder}report.json")).await).unwrap();
    // serde_json reads a float back to within an ulp only (no `float_roundtrip`).
    stored.timings_ms = report.timings_ms;
    assert_eq!(stored, report, "report.json is the answered report");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_findings_uri_the_sum_is_the_answer_and_the_bucket_comes_from_bucket_name() {
    let (s3, client) = common::seeded("audited", 30).await;
    s3.store().create_bucket("results-bucket").unwrap();
    let config = config(&[("BUCKET_NAME", "audited")]);
    map_run(&client, &config).await;
    let mut payload = fixture();
    payload.as_object_mut().unwrap().remove("bucket");
    let report = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config,
        event(payload, "summary"),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!((report.bucket.as_str(), report.objects_listed), ("audited", 30));
    assert_eq!(report.findings, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_that_is_not_there_is_a_named_error() {
    let (s3, client) = common::seeded("audited", 1).await;
    s3.store().create_bucket("results-bucket").unwrap();
    s3.store().create_bucket("findings").unwrap();
    let config = config(&[("BUCKET_NAME", "audited"), ("FINDINGS_URI", "s3://findings/acl-audit/")]);
    let err = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config,
        event(fixture(), "summary"),
    )
    .await
    .into_result()
    .unwrap_err();
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "MapRunResultsNotRead");
    assert!(
        diagnostic
            .error_message
            .contains(&format!("results/{RUN_ID}/manifest.json")),
        "{}",
        diagnostic.error_message
    );
    let left = client.list_objects_v2().bucket("findings").send().await.unwrap();
    assert_eq!(
        left.key_count(),
        Some(0),
        "no findings file from a run that was not added up"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_map_output_with_a_field_it_does_not_know_is_refused_by_name() {
    let (_s3, client) = common::seeded("audited", 1).await;
    let mut payload = fixture();
    payload["ResultWriterDetails"]["Prefix"] = json!("results");
    let err = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[]),
        event(payload, "summary"),
    )
    .await
    .into_result()
    .unwrap_err();
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "InvalidEvent");
    assert!(
        diagnostic.error_message.contains("Prefix"),
        "{}",
        diagnostic.error_message
    );
}
