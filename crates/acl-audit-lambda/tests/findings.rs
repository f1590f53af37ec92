//! The handler with `FINDINGS_URI`: each run writes its findings and report under
//! `<uri><bucket>/<yyyy>/<mm>/<dd>/<request id>/`, and fails with `FindingsNotWritten` when it
//! cannot.

use test_support as common;

use std::collections::HashMap;

use acl_audit::findings::utc_date;
use acl_audit::{AuditReport, StrategyKind};
use acl_audit_lambda::{Clients, Config};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};

fn config(vars: &[(&str, &str)]) -> Config {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_vars(|name| vars.get(name).cloned()).expect("valid test configuration")
}

fn event(request_id: &str) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    LambdaEvent::new(json!({}), context)
}

async fn read(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let object = client.get_object().bucket(bucket).key(key).send().await.unwrap();
    object.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_writes_its_findings_and_report_under_the_findings_uri() {
    let (s3, client) = common::seeded("audited", 2500).await;
    s3.store().create_bucket("findings").unwrap();
    let config = config(&[("BUCKET_NAME", "audited"), ("FINDINGS_URI", "s3://findings/acl-audit/")]);
    let report = acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(&client), &config, event("req-42"))
        .await
        .into_result()
        .unwrap();
    let (year, month, day) = utc_date(std::time::SystemTime::now());
    let folder = format!("acl-audit/audited/{year:04}/{month:02}/{day:02}/req-42/");
    let written = report.findings.clone().unwrap();
    assert_eq!(written.uri, format!("s3://findings/{folder}findings.jsonl"));
    assert_eq!(written.objects, 750);
    let findings = read(&client, "findings", &format!("{folder}findings.jsonl")).await;
    assert_eq!(String::from_utf8(findings).unwrap().lines().count(), 750);
    let stored: AuditReport =
        serde_json::from_slice(&read(&client, "findings", &format!("{folder}report.json")).await).unwrap();
    assert_eq!(stored, report);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_findings_uri_nothing_is_written() {
    let (_s3, client) = common::seeded("audited", 50).await;
    let report = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[("BUCKET_NAME", "audited")]),
        event("r"),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(report.findings, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_findings_bucket_fails_the_invocation_with_findings_not_written() {
    let (_s3, client) = common::seeded("audited", 250).await;
    let config = config(&[("BUCKET_NAME", "audited"), ("FINDINGS_URI", "s3://no-findings-here/x/")]);
    let err = acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(&client), &config, event("req-1"))
        .await
        .into_result()
        .unwrap_err();
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "FindingsNotWritten");
    assert!(
        diagnostic.error_message.contains("NoSuchBucket")
            && diagnostic.error_message.contains("s3://no-findings-here/x/audited/"),
        "{}",
        diagnostic.error_message
    );
}

#[test]
fn a_findings_uri_that_is_not_an_s3_location_is_refused() {
    let err = Config::from_vars(|name| (name == "FINDINGS_URI").then(|| "my-bucket/prefix".to_owned())).unwrap_err();
    assert!(err.to_string().contains("FINDINGS_URI"), "{err}");
}
