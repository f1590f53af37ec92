//! Object versions (`include_versions`) against local-s3: every version's ACL is audited and
//! named by its version id, delete markers are counted and never fetched, and a listing of
//! versions resumes where it stopped without losing or repeating a version.

use test_support as common;

use std::collections::BTreeSet;

use acl_audit::audit::{AuditOptions, FindingsOutput, audit_bucket_with};
use acl_audit::findings::{FindingKind, FindingLine};
use acl_audit::model::ObjectRef;
use acl_audit::strategy::InFlight;
use acl_audit::{Resume, Strategy, Target, audit_bucket};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectCannedAcl;

/// Audits `target`, writing its findings to a file, and returns the report and the lines.
async fn audit_with_lines(client: &Client, target: &Target, name: &str) -> (acl_audit::AuditReport, Vec<FindingLine>) {
    let path = test_support::scratch!("acl-audit-versions-{name}.jsonl");
    let options = AuditOptions {
        findings: Some(FindingsOutput::file(&path).unwrap()),
        ..AuditOptions::default()
    };
    let report = audit_bucket_with(
        client,
        target,
        Strategy::JoinAll {
            in_flight: InFlight::All,
        },
        options,
    )
    .await
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let lines = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    (report, lines)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_noncurrent_version_is_found_with_its_version_id() {
    let (s3, client) = common::endpoint().await;
    let arranged = common::arrange_versioned(&client, "history").await;

    let (current, lines) = audit_with_lines(&client, &Target::bucket("history"), "current").await;
    assert_eq!((current.objects_listed, current.acls_fetched), (2, 2), "doc and plain");
    assert!(lines.is_empty(), "every current version is private: {lines:?}");
    assert!(!current.include_versions);

    let every_version = Target {
        include_versions: true,
        ..Target::bucket("history")
    };
    let (report, lines) = audit_with_lines(&client, &every_version, "all").await;
    assert!(report.include_versions);
    assert_eq!(report.objects_listed, arranged.versions);
    assert_eq!(report.acls_fetched, arranged.versions);
    assert_eq!(report.delete_markers, arranged.delete_markers);
    assert!(report.accounts_for_every_object());
    assert_eq!(report.audit.findings.exposed_objects, 1);
    assert_eq!(report.audit.readable_by_all_users.keys, ["doc"]);
    let [line] = &lines[..] else {
        panic!("one finding expected: {lines:?}")
    };
    assert_eq!(line.key, "doc");
    assert_eq!(line.version_id.as_deref(), Some(arranged.public_version.as_str()));
    assert_eq!(line.findings, [FindingKind::PublicRead]);
    assert!(line.effective);
    assert_eq!(s3.requests("ListObjectVersions"), 1);
    assert_eq!(
        s3.requests("GetObjectAcl"),
        2 + arranged.versions as u64,
        "no request for the delete marker"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_of_versions_resumes_where_it_stopped_with_every_version_once() {
    let (_s3, client) = common::endpoint().await;
    client.create_bucket().bucket("many").send().await.unwrap();
    common::enable_versioning(&client, "many").await;
    // Public, every version, so that each one's findings line names it: 7 keys of 3 versions
    // (a page of 4 ends inside a key's versions), and a delete marker on every third key.
    let mut written = BTreeSet::new();
    for key in 0..7 {
        let key = format!("k{key}");
        for _ in 0..3 {
            let put = client
                .put_object()
                .bucket("many")
                .key(&key)
                .acl(ObjectCannedAcl::PublicRead)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
                .unwrap();
            written.insert(ObjectRef::version(&key, put.version_id().unwrap()));
        }
        if key.ends_with(['0', '3', '6']) {
            client.delete_object().bucket("many").key(&key).send().await.unwrap();
        }
    }
    let mut target = Target {
        max_objects: Some(4),
        include_versions: true,
        ..Target::bucket("many")
    };
    let mut seen = Vec::new();
    let mut delete_markers = 0;
    for run in 0.. {
        assert!(run < 10, "the listing never ended");
        let (report, lines) = audit_with_lines(&client, &target, &format!("run{run}")).await;
        assert!(report.accounts_for_every_object());
        delete_markers += report.delete_markers;
        seen.extend(
            lines
                .into_iter()
                .map(|line| ObjectRef::version(line.key, line.version_id.unwrap())),
        );
        let Some(resume) = report.resume else { break };
        assert!(resume.versions, "a token of a listing of versions says so");
        // Through JSON, as the next invocation's event carries it.
        let resume: Resume = serde_json::from_str(&serde_json::to_string(&resume).unwrap()).unwrap();
        target = Target {
            resume: Some(resume),
            include_versions: false,
            ..target
        };
    }
    let unique: BTreeSet<ObjectRef> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), unique.len(), "a version audited twice: {seen:?}");
    assert_eq!(unique, written, "every version, none lost at a page's edge");
    assert_eq!(delete_markers, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_that_is_gone_is_a_counted_failure() {
    let (_s3, client) = common::endpoint().await;
    let arranged = common::arrange_versioned(&client, "pruned").await;
    client
        .delete_object()
        .bucket("pruned")
        .key("doc")
        .version_id(&arranged.public_version)
        .send()
        .await
        .unwrap();
    let target = Target {
        resume: Some(Resume::keys_only(
            "pruned".to_owned(),
            [ObjectRef::version("doc", &arranged.public_version)],
        )),
        ..Target::bucket("pruned")
    };
    let report = audit_bucket(&client, &target, Strategy::Sequential).await.unwrap();
    assert_eq!(report.failures.count, 1);
    assert_eq!(report.failures.by_code.get("NoSuchVersion"), Some(&1));
    let failure = &report.failures.sample[0];
    assert_eq!(failure.version_id.as_deref(), Some(arranged.public_version.as_str()));
}
