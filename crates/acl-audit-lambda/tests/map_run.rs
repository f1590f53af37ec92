//! The state machine's last step through the handler (`{"add_up": {"pass": …}}`): the function
//! reads the run's parts file and the report each part left in its own folder in S3
//! (local-s3), adds the parts up and, under `FINDINGS_URI`, writes the run's findings file and
//! report in the run's own folder, named by the execution.

use test_support as common;

use std::collections::HashMap;

use acl_audit::findings::{FailureLine, FindingLine, utc_date};
use acl_audit::{AuditReport, StrategyKind};
use acl_audit_lambda::{Clients, Config, Scope};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};

const RUN_ID: &str = "exec-6dbfba93";

fn config(vars: &[(&str, &str)]) -> Config {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_vars(|name| vars.get(name).cloned()).expect("valid test configuration")
}

fn event(payload: Value, request_id: &str) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    LambdaEvent::new(payload, context)
}

/// The last step's payload: the run's one pass, done.
fn add_up() -> Value {
    json!({"add_up": {"pass": {
        "bucket": "audited", "folder": format!("s3://results-bucket/parts/{RUN_ID}/"), "pass": 1, "count": 0,
        "items": {"Bucket": "results-bucket", "Key": format!("parts/{RUN_ID}/pass-0.json")}
    }}})
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

/// Part `index` naming the keys `range` of the seeded bucket, as the parts file hands it to a
/// worker.
fn part(index: usize, range: std::ops::Range<usize>) -> Value {
    let keys: Vec<_> = range
        .map(|i| acl_audit::model::ObjectRef::from(local_s3::seed_key(i)))
        .collect();
    json!({
        "resume": acl_audit::Resume::keys_only("audited".to_owned(), keys),
        "map_part": true,
        "folder": format!("s3://results-bucket/parts/{RUN_ID}/pass-0/part-{index}/"),
    })
}

/// A run of one pass as its parts leave it: parts 0..10 and 10..20 audited by the handler
/// (each writing its report and findings to its folder), 20..30 failed before it wrote any.
/// The parts' reports, in order.
async fn map_run(client: &Client, config: &Config) -> Vec<AuditReport> {
    let parts = vec![part(0, 0..10), part(1, 10..20), part(2, 20..30)];
    put(
        client,
        &format!("parts/{RUN_ID}/pass-0.json"),
        &Value::Array(parts.clone()),
    )
    .await;
    let mut reports = Vec::new();
    for (n, input) in parts[..2].iter().enumerate() {
        let invocation = acl_audit_lambda::invoke(
            StrategyKind::JoinAll,
            &Clients::new(client),
            config,
            event(input.clone(), &format!("part-{n}")),
        )
        .await;
        assert_eq!(invocation.scope(), Scope::Part, "a part counts per strategy only");
        let report = invocation.into_result().unwrap();
        let written = report.findings.as_ref().expect("a part writes its findings file");
        assert_eq!(
            written.uri,
            format!("s3://results-bucket/parts/{RUN_ID}/pass-0/part-{n}/findings.jsonl"),
            "in its own folder, whether FINDINGS_URI is set or not"
        );
        reports.push(report);
    }
    reports
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_step_adds_the_parts_up_and_writes_the_runs_findings_and_report() {
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
        event(add_up(), "summary"),
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
    assert_eq!(report.failures.by_code["PartNotReported"], 10);

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
    assert_eq!(findings.len(), batch_findings, "every part's lines, once");
    for line in findings {
        serde_json::from_value::<FindingLine>(line.clone()).unwrap();
    }
    let mut failed: Vec<String> = failures
        .into_iter()
        .map(|line| {
            let line: FailureLine = serde_json::from_value(line.clone()).unwrap();
            assert_eq!(
                (line.bucket.as_str(), line.error.code.as_str()),
                ("audited", "PartNotReported")
            );
            line.key
        })
        .collect();
    failed.sort();
    let expected: Vec<String> = (20..30).map(local_s3::seed_key).collect();
    assert_eq!(failed, expected, "a failure line for every key of the failed part");

    let mut stored: AuditReport =
        serde_json::from_slice(&read(&client, "findings", &format!("{folder}report.json")).await).unwrap();
    // serde_json reads a float back to within an ulp only (no `float_roundtrip`).
    stored.timings_ms = report.timings_ms;
    assert_eq!(stored, report, "report.json is the answered report");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_findings_uri_the_sum_is_the_answer() {
    let (s3, client) = common::seeded("audited", 30).await;
    s3.store().create_bucket("results-bucket").unwrap();
    let config = config(&[]);
    map_run(&client, &config).await;
    let payload = add_up();
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
async fn a_parts_file_that_is_not_there_is_a_named_error() {
    let (s3, client) = common::seeded("audited", 1).await;
    s3.store().create_bucket("results-bucket").unwrap();
    s3.store().create_bucket("findings").unwrap();
    let config = config(&[("BUCKET_NAME", "audited"), ("FINDINGS_URI", "s3://findings/acl-audit/")]);
    let err = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config,
        event(add_up(), "summary"),
    )
    .await
    .into_result()
    .unwrap_err();
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "PartsNotRead");
    assert!(
        diagnostic
            .error_message
            .contains(&format!("parts/{RUN_ID}/pass-0.json")),
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
async fn a_pass_with_a_field_it_does_not_know_is_refused_by_name() {
    let (_s3, client) = common::seeded("audited", 1).await;
    let mut payload = add_up();
    payload["add_up"]["pass"]["items"]["Prefix"] = json!("results");
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
