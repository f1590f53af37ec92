//! `SUPPRESSIONS_URI` through the functions' entry point against local-s3: the findings a file
//! accepts are written marked `suppressed` with their reason and counted apart from the
//! exposures, an entry past its `until` no longer applies and the report names it, and a file
//! that is malformed or missing fails the invocation before any ACL is fetched.

use test_support as common;

use std::collections::{BTreeMap, HashMap};

use acl_audit::StrategyKind;
use acl_audit::findings::FindingLine;
use acl_audit_lambda::{Clients, Config};
use aws_sdk_s3::primitives::ByteStream;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::json;

fn config() -> Config {
    let vars: HashMap<&str, &str> = [
        ("BUCKET_NAME", "audited"),
        ("FINDINGS_URI", "s3://findings/acl-audit/"),
        ("SUPPRESSIONS_URI", "s3://config/suppressions.json"),
    ]
    .into();
    Config::from_vars(|name| vars.get(name).map(|v| (*v).to_owned())).unwrap()
}

async fn put_file(client: &aws_sdk_s3::Client, body: &str) {
    client
        .put_object()
        .bucket("config")
        .key("suppressions.json")
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
}

async fn invoke(client: &aws_sdk_s3::Client) -> Result<acl_audit::AuditReport, Diagnostic> {
    let mut context = Context::default();
    context.request_id = "suppressed-run".to_owned();
    acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(client),
        &config(),
        LambdaEvent::new(json!({}), context),
    )
    .await
    .into_result()
    .map_err(Diagnostic::from)
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_findings_are_marked_and_counted_apart_and_an_expired_entry_is_named() {
    // Objects 7, 17, 27 public-read; 8, 18, 28 authenticated-read; 9, 19, 29 another account's.
    let (s3, client) = common::seeded("audited", 30).await;
    for bucket in ["findings", "config"] {
        s3.store().create_bucket(bucket).unwrap();
    }
    put_file(
        &client,
        r#"[
            {"bucket": "audited", "key": "object-000000?", "kinds": ["authenticated_read"], "reason": "partners"},
            {"bucket": "audited", "key": "object-0000017", "reason": "the public website"},
            {"bucket": "audited", "reason": "last year's campaign", "until": "2020-01-31"}
        ]"#,
    )
    .await;
    let report = invoke(&client).await.unwrap();
    let findings = &report.audit.findings;
    assert_eq!(findings.suppressed_objects, 2, "{findings:?}");
    assert_eq!(findings.exposed_objects, 4, "6 exposures, 2 of them accepted");
    let used = report
        .suppressions
        .as_ref()
        .expect("the report says which file applied");
    assert_eq!(used.active, 2);
    assert_eq!(used.expired.len(), 1);
    assert_eq!(used.expired[0].reason, "last year's campaign");

    let uri = report.findings.as_ref().unwrap().uri.clone();
    let key = uri.strip_prefix("s3://findings/").unwrap();
    let file = client.get_object().bucket("findings").key(key).send().await.unwrap();
    let text = String::from_utf8(file.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
    let suppressed: BTreeMap<String, String> = text
        .lines()
        .map(|line| serde_json::from_str::<FindingLine>(line).unwrap())
        .filter_map(|line| line.suppressed.map(|s| (line.key, s.reason)))
        .collect();
    assert_eq!(
        suppressed,
        BTreeMap::from([
            ("object-0000008".to_owned(), "partners".to_owned()),
            ("object-0000017".to_owned(), "the public website".to_owned()),
        ]),
        "exactly the accepted lines, still written"
    );
    assert_eq!(text.lines().count(), 9, "every finding is still written");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_or_missing_file_fails_the_invocation_before_any_acl() {
    let (s3, client) = common::seeded("audited", 30).await;
    for bucket in ["findings", "config"] {
        s3.store().create_bucket(bucket).unwrap();
    }
    let missing = invoke(&client).await.unwrap_err();
    assert_eq!(missing.error_type, "SuppressionsNotRead", "{}", missing.error_message);
    assert!(
        missing.error_message.contains("s3://config/suppressions.json"),
        "{}",
        missing.error_message
    );
    put_file(
        &client,
        r#"[{"bucket": "audited", "reason": "ok"}, {"bucket": "audited"}]"#,
    )
    .await;
    let malformed = invoke(&client).await.unwrap_err();
    assert_eq!(malformed.error_type, "InvalidSuppressions");
    assert!(
        malformed.error_message.contains("entry 1: missing field `reason`"),
        "{}",
        malformed.error_message
    );
    assert_eq!(s3.requests("GetObjectAcl"), 0, "refused before the audit");
}
