//! Runs of one target compared through the functions' entry point against local-s3 and moto: the first
//! run finds every finding new; between runs an object is made public, one made private, one
//! deleted, and the next run's `changes.jsonl` names exactly those; Block Public Access turned
//! on then resolves every exposure it neutralises. Every findings line carries `first_seen`. A
//! run stopped early compares only what it audited and leaves the baseline where it was.

use test_support as common;

use std::collections::{BTreeSet, HashMap};

use acl_audit::StrategyKind;
use acl_audit::changes::{ChangeCounts, ChangeLine};
use acl_audit::findings::FindingLine;
use acl_audit_lambda::{Clients, Config};
use aws_sdk_s3::types::{ObjectCannedAcl, PublicAccessBlockConfiguration};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;

fn config() -> Config {
    let vars: HashMap<&str, &str> = [("BUCKET_NAME", "audited"), ("FINDINGS_URI", "s3://findings/acl-audit/")].into();
    Config::from_vars(|name| vars.get(name).map(|v| (*v).to_owned())).unwrap()
}

async fn run(client: &aws_sdk_s3::Client, request_id: &str) -> acl_audit::AuditReport {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(client),
        &config(),
        LambdaEvent::new(json!({}), context),
    )
    .await
    .into_result()
    .unwrap_or_else(|err| panic!("{err}"))
}

async fn text(client: &aws_sdk_s3::Client, uri: &str) -> String {
    let key = uri.strip_prefix("s3://findings/").unwrap();
    let file = client.get_object().bucket("findings").key(key).send().await.unwrap();
    String::from_utf8(file.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
}

/// `changes.jsonl` of `report` as (key, kind, change).
async fn changes(client: &aws_sdk_s3::Client, report: &acl_audit::AuditReport) -> BTreeSet<(String, String, String)> {
    let counts: &ChangeCounts = report.changes.as_ref().expect("a compared run says so");
    text(client, &counts.uri)
        .await
        .lines()
        .map(|line| serde_json::from_str::<ChangeLine>(line).unwrap())
        .map(|line| {
            let kind = serde_json::to_value(line.kind).unwrap().as_str().unwrap().to_owned();
            let change = serde_json::to_value(line.change).unwrap().as_str().unwrap().to_owned();
            (line.key, kind, change)
        })
        .collect()
}

fn set(items: &[(&str, &str, &str)]) -> BTreeSet<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_names_what_changed_since_the_last_completed_run() {
    // Objects 7, 17, 27 public-read; 8, 18, 28 authenticated-read; 9, 19, 29 another account's.
    let (s3, client) = common::seeded("audited", 30).await;
    s3.store().create_bucket("findings").unwrap();

    let first = run(&client, "run-1").await;
    let counts = first.changes.clone().unwrap();
    assert_eq!(counts.baseline, None, "the target's first run has no baseline");
    assert_eq!((counts.new, counts.resolved, counts.new_exposed_objects), (9, 0, 6));

    let acl = |key: &'static str, canned: ObjectCannedAcl| {
        let client = client.clone();
        async move {
            client
                .put_object_acl()
                .bucket("audited")
                .key(key)
                .acl(canned)
                .send()
                .await
                .unwrap();
        }
    };
    acl("object-0000001", ObjectCannedAcl::PublicRead).await;
    acl("object-0000007", ObjectCannedAcl::Private).await;
    client
        .delete_object()
        .bucket("audited")
        .key("object-0000017")
        .send()
        .await
        .unwrap();

    let second = run(&client, "run-2").await;
    assert_eq!(
        changes(&client, &second).await,
        set(&[
            ("object-0000001", "public_read", "new"),
            ("object-0000007", "public_read", "resolved"),
            ("object-0000017", "public_read", "resolved"),
        ])
    );
    let counts = second.changes.clone().unwrap();
    assert_eq!(
        counts.baseline.as_deref(),
        Some(first.findings.as_ref().unwrap().uri.as_str())
    );
    assert_eq!(
        (counts.new, counts.resolved, counts.persisting, counts.complete),
        (1, 2, 7, true)
    );
    assert_eq!((counts.new_exposed_objects, counts.resolved_exposed_objects), (1, 2));
    let findings = text(&client, &second.findings.as_ref().unwrap().uri).await;
    let seen: Vec<(String, Option<String>)> = findings
        .lines()
        .map(|line| serde_json::from_str::<FindingLine>(line).unwrap())
        .map(|line| (line.key, line.first_seen))
        .collect();
    assert_eq!(seen.len(), 8);
    assert!(seen.iter().all(|(_, first_seen)| first_seen.is_some()), "{seen:?}");

    client
        .put_public_access_block()
        .bucket("audited")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .ignore_public_acls(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let third = run(&client, "run-3").await;
    assert_eq!(
        changes(&client, &third).await,
        set(&[
            ("object-0000001", "public_read", "resolved"),
            ("object-0000027", "public_read", "resolved"),
            ("object-0000008", "authenticated_read", "resolved"),
            ("object-0000018", "authenticated_read", "resolved"),
            ("object-0000028", "authenticated_read", "resolved"),
        ]),
        "Block Public Access neutralises the public grants; other accounts' grants persist"
    );
    let counts = third.changes.unwrap();
    assert_eq!((counts.new, counts.resolved, counts.persisting), (0, 5, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_early_compares_only_what_it_audited_and_keeps_the_baseline() {
    let (s3, client) = common::seeded("audited", 30).await;
    s3.store().create_bucket("findings").unwrap();
    let first = run(&client, "whole").await;
    client
        .delete_object()
        .bucket("audited")
        .key("object-0000027")
        .send()
        .await
        .unwrap();
    let mut context = Context::default();
    context.request_id = "partial".to_owned();
    let partial = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(),
        LambdaEvent::new(json!({"max_objects": 10}), context),
    )
    .await
    .into_result()
    .unwrap_or_else(|err| panic!("{err}"));
    let counts = partial.changes.clone().unwrap();
    assert!(!counts.complete, "{counts:?}");
    assert_eq!(counts.resolved, 0, "object 27 lies beyond what the run audited");
    assert_eq!(counts.persisting, 3, "objects 7, 8 and 9 were audited");
    assert_eq!(counts.not_compared, 6);
    // The next run takes up the stored token: it too compares only what it audited.
    let tail = run(&client, "tail").await;
    let counts = tail.changes.unwrap();
    assert!(!counts.complete);
    assert_eq!(
        counts.resolved, 0,
        "a deleted object is not audited, so not known resolved"
    );
    // The pointer still names the whole run: the next complete run compares with it.
    let next = run(&client, "whole-again").await;
    let counts = next.changes.clone().unwrap();
    assert_eq!(
        counts.baseline.as_deref(),
        Some(first.findings.as_ref().unwrap().uri.as_str())
    );
    assert_eq!(
        changes(&client, &next).await.into_iter().collect::<Vec<_>>(),
        vec![(
            "object-0000027".to_owned(),
            "public_read".to_owned(),
            "resolved".to_owned()
        )]
    );
}

/// The same on moto_server, S3 of an implementation this project did not write: an object made
/// public, one made private, one deleted, then Block Public Access on.
#[tokio::test(flavor = "multi_thread")]
async fn on_moto_a_run_names_what_changed() {
    let Some(moto) = local_s3::moto::MotoServer::start() else {
        return;
    };
    let client = acl_audit::s3::client::client_for_endpoint(moto.endpoint_url(), "moto-access-key", "moto-secret-key");
    for bucket in ["audited", "findings"] {
        client.create_bucket().bucket(bucket).send().await.unwrap();
    }
    for (key, acl) in [
        ("a", ObjectCannedAcl::PublicRead),
        ("b", ObjectCannedAcl::PublicRead),
        ("c", ObjectCannedAcl::AuthenticatedRead),
        ("d", ObjectCannedAcl::Private),
    ] {
        client
            .put_object()
            .bucket("audited")
            .key(key)
            .acl(acl)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let first = run(&client, "moto-1").await;
    assert_eq!(first.changes.as_ref().unwrap().new, 3);
    let acl = |key: &'static str, canned: ObjectCannedAcl| {
        let client = client.clone();
        async move {
            client
                .put_object_acl()
                .bucket("audited")
                .key(key)
                .acl(canned)
                .send()
                .await
                .unwrap();
        }
    };
    acl("d", ObjectCannedAcl::PublicRead).await;
    acl("a", ObjectCannedAcl::Private).await;
    client.delete_object().bucket("audited").key("b").send().await.unwrap();
    let second = run(&client, "moto-2").await;
    assert_eq!(
        changes(&client, &second).await,
        set(&[
            ("a", "public_read", "resolved"),
            ("b", "public_read", "resolved"),
            ("d", "public_read", "new"),
        ])
    );
    client
        .put_public_access_block()
        .bucket("audited")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .ignore_public_acls(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let third = run(&client, "moto-3").await;
    assert_eq!(
        changes(&client, &third).await,
        set(&[
            ("c", "authenticated_read", "resolved"),
            ("d", "public_read", "resolved"),
        ])
    );
}
