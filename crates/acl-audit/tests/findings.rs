//! A run's findings file, streamed to S3 (local-s3) as the run goes: every object that is not
//! clean has its line, and nothing else does; a write that fails is an error, with the audit's
//! report kept.

use test_support as common;

use std::collections::BTreeMap;

use acl_audit::audit::{AuditError, AuditOptions, FindingsOutput};
use acl_audit::findings::{FindingKind, FindingLine};
use acl_audit::model::S3Location;
use acl_audit::s3::upload::{PART_SIZE, StreamingUpload};
use acl_audit::{Strategy, Target, audit_bucket_with};
use aws_sdk_s3::Client;
use local_s3::{SeedAcl, seed_key};
use serde_json::Value;

async fn read(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let object = client.get_object().bucket(bucket).key(key).send().await.unwrap();
    object.body.collect().await.unwrap().into_bytes().to_vec()
}

fn location(uri: &str) -> S3Location {
    uri.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_larger_than_a_part_is_uploaded_in_parts_and_joined_whole() {
    let (s3, client) = common::endpoint().await;
    s3.store().create_bucket("out").unwrap();
    let data: Vec<u8> = (0..PART_SIZE * 2 + 12_345).map(|i| (i % 251) as u8).collect();
    let mut upload = StreamingUpload::new(&client, "out", "big.bin", "application/octet-stream");
    for chunk in data.chunks(100_000) {
        upload.write(chunk).await.unwrap();
    }
    upload.finish().await.unwrap();
    assert_eq!(read(&client, "out", "big.bin").await, data);
    // A part goes once the buffer passes a part's size: two parts of just over 5 MiB, and the
    // rest (under one part) with the second. S3's multipart ETag ends with the part count.
    let listing = client.list_objects_v2().bucket("out").send().await.unwrap();
    assert!(listing.contents()[0].e_tag().unwrap().ends_with("-2\""), "{listing:?}");
    assert_eq!(s3.store().uploads_in_progress(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_object_is_one_put() {
    let (s3, client) = common::endpoint().await;
    s3.store().create_bucket("out").unwrap();
    let mut upload = StreamingUpload::new(&client, "out", "small.txt", "text/plain");
    upload.write(b"one line\n").await.unwrap();
    upload.finish().await.unwrap();
    assert_eq!(read(&client, "out", "small.txt").await, b"one line\n");
    assert_eq!(s3.store().uploads_in_progress(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_to_a_missing_bucket_fails_with_s3_s_code_and_leaves_no_part_behind() {
    let (s3, client) = common::endpoint().await;
    let mut upload = StreamingUpload::new(&client, "gone", "big.bin", "application/octet-stream");
    let err = upload.write(&vec![0; PART_SIZE]).await.unwrap_err();
    assert_eq!(err.code, "NoSuchBucket");
    assert_eq!(err.uri, "s3://gone/big.bin");
    assert_eq!(s3.store().uploads_in_progress(), 0);
}

/// The seeded mix: the kinds each seeded object must be reported with, and none for private.
fn expected_kinds(index: usize) -> Option<Vec<FindingKind>> {
    match SeedAcl::for_index(index) {
        SeedAcl::Private => None,
        SeedAcl::PublicRead => Some(vec![FindingKind::PublicRead]),
        SeedAcl::AuthenticatedRead => Some(vec![FindingKind::AuthenticatedRead]),
        SeedAcl::CrossAccountRead => Some(vec![FindingKind::OtherAccountGrant]),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_object_that_is_not_clean_has_its_line_and_no_other_object_does() {
    let (s3, client) = common::seeded("audited", 2500).await;
    s3.store().create_bucket("findings").unwrap();
    // One object whose ACL cannot be read: a failure line.
    s3.store().set_acl_readable("audited", &seed_key(3), false).unwrap();
    for strategy in common::all_strategies() {
        let file = location("s3://findings/run/findings.jsonl");
        let options = AuditOptions {
            findings: Some(FindingsOutput::s3(&client, &file)),
            ..AuditOptions::default()
        };
        let report = audit_bucket_with(&client, &Target::bucket("audited"), strategy, options)
            .await
            .unwrap();
        let text = String::from_utf8(read(&client, "findings", "run/findings.jsonl").await).unwrap();
        let mut findings = BTreeMap::new();
        let mut failures = Vec::new();
        for line in text.lines() {
            let value: Value = serde_json::from_str(line).unwrap();
            if value.get("error").is_some() {
                failures.push((
                    value["key"].as_str().unwrap().to_owned(),
                    value["error"]["code"].clone(),
                ));
            } else {
                let line: FindingLine = serde_json::from_value(value).unwrap();
                assert_eq!(line.bucket, "audited");
                assert!(!line.grants.is_empty(), "{line:?}");
                findings.insert(line.key, line.findings);
            }
        }
        let expected: BTreeMap<String, Vec<FindingKind>> = (0..2500)
            .filter_map(|i| expected_kinds(i).map(|kinds| (seed_key(i), kinds)))
            .collect();
        assert_eq!(findings, expected, "{strategy:?}");
        assert_eq!(failures, [(seed_key(3), Value::from("AccessDenied"))]);
        let written = report.findings.expect("the report names the file");
        assert_eq!(written.uri, "s3://findings/run/findings.jsonl");
        assert_eq!((written.objects, written.failures), (750, 1));
        assert_eq!(report.audit.findings.objects, 750);
        assert_eq!(report.audit.findings.exposed_objects, 500);
        assert_eq!(report.audit.findings.of_kind(FindingKind::OtherAccountGrant), 250);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn findings_that_cannot_be_written_fail_the_run_after_the_audit_with_its_report() {
    let (s3, client) = common::seeded("audited", 300).await;
    let options = AuditOptions {
        findings: Some(FindingsOutput::s3(
            &client,
            &location("s3://no-findings-bucket/f.jsonl"),
        )),
        ..AuditOptions::default()
    };
    let err = audit_bucket_with(&client, &Target::bucket("audited"), Strategy::Sequential, options)
        .await
        .unwrap_err();
    let AuditError::NotWritten { error, report } = err else {
        panic!("not a findings error: {err:?}");
    };
    assert_eq!(error.code, "NoSuchBucket");
    assert!(error.message.contains("does not exist"), "{error}");
    assert_eq!(report.acls_fetched, 300, "the audit ran to its end");
    assert_eq!(s3.store().uploads_in_progress(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn findings_go_to_a_local_file_as_well() {
    let (_s3, client) = common::seeded("audited", 100).await;
    let path = test_support::scratch!("acl-audit-findings.jsonl");
    let options = AuditOptions {
        findings: Some(FindingsOutput::file(&path).unwrap()),
        ..AuditOptions::default()
    };
    let report = audit_bucket_with(&client, &Target::bucket("audited"), Strategy::Sequential, options)
        .await
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(text.lines().count(), 30);
    assert_eq!(report.findings.unwrap().objects, 30);
}
