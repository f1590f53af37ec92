//! Keys S3 accepts and careless clients do not (`test_support::hostile`): every one listed,
//! fetched and judged, by every strategy, on local-s3 and on moto_server. Without
//! `encoding-type=url` a key holding U+0001 makes the listing's XML unreadable and one object
//! stops the bucket's audit; a key of whitespace alone is refused by aws-sdk-s3 itself.

use test_support as common;

use std::collections::BTreeSet;

use acl_audit::findings::FindingLine;
use acl_audit::s3::client::client_for_endpoint;
use acl_audit::{AuditOptions, FindingsOutput, Strategy, Target, audit_bucket_with};
use aws_sdk_s3::Client;
use common::hostile;
use local_s3::moto::MotoServer;

async fn every_strategy_judges_every_hostile_key(client: &Client, bucket: &str, keys: &[String]) {
    hostile::arrange(client, bucket, keys).await;
    let expected: BTreeSet<String> = hostile::public_keys(keys).into_iter().collect();
    let mut strategies = common::all_strategies().to_vec();
    strategies.push(Strategy::Sequential);
    let dir = test_support::scratch!("hostile-{bucket}");
    std::fs::create_dir_all(&dir).unwrap();
    for (n, strategy) in strategies.into_iter().enumerate() {
        let path = dir.join(format!("{n}.jsonl"));
        let options = AuditOptions {
            findings: Some(FindingsOutput::file(&path).unwrap()),
            ..AuditOptions::default()
        };
        let report = audit_bucket_with(client, &Target::bucket(bucket), strategy, options)
            .await
            .unwrap();
        assert_eq!(report.objects_listed, keys.len(), "{strategy:?}: {report:?}");
        assert_eq!(report.acls_fetched, keys.len(), "{strategy:?}: {:?}", report.failures);
        assert!(report.truncated.is_none() && report.accounts_for_every_object());
        assert_eq!(report.audit.readable_by_all_users.count, expected.len(), "{strategy:?}");
        let lines = std::fs::read_to_string(&path).unwrap();
        let exposed: BTreeSet<String> = lines
            .lines()
            .map(|line| serde_json::from_str::<FindingLine>(line).unwrap().key)
            .collect();
        assert_eq!(
            exposed, expected,
            "{strategy:?}: the findings name exactly the public keys"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_hostile_key_is_audited_on_local_s3() {
    let (_s3, client) = common::endpoint().await;
    every_strategy_judges_every_hostile_key(&client, "hostile", &hostile::keys()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_hostile_key_is_audited_on_moto() {
    let Some(moto) = MotoServer::start() else { return };
    let client = client_for_endpoint(moto.endpoint_url(), "moto-access-key", "moto-secret-key");
    every_strategy_judges_every_hostile_key(&client, "hostile", &hostile::keys_moto_routes()).await;
}

/// ListObjectVersions asks for `encoding-type=url` too: every version of every hostile key.
#[tokio::test(flavor = "multi_thread")]
async fn every_version_of_every_hostile_key_is_listed() {
    let (_s3, client) = common::endpoint().await;
    let keys = hostile::keys();
    let target = Target {
        include_versions: true,
        max_objects: Some(7),
        ..Target::bucket("hostile-versions")
    };
    hostile::arrange(&client, "hostile-versions", &keys).await;
    common::enable_versioning(&client, "hostile-versions").await;
    // Small pages, so that the key marker S3 hands back (encoded) is where the next run goes on.
    let (mut listed, mut target, mut runs) = (BTreeSet::new(), target, 0);
    loop {
        runs += 1;
        let report = audit_bucket_with(&client, &target, Strategy::Sequential, AuditOptions::default())
            .await
            .unwrap();
        assert!(report.accounts_for_every_object(), "{report:?}");
        listed.extend(report.audit.readable_by_all_users.keys.iter().cloned());
        match report.resume {
            Some(resume) => target.resume = Some(resume),
            None => break,
        }
        assert!(runs < 50);
    }
    assert!(runs >= keys.len() / 7, "{runs} runs");
    let expected: BTreeSet<String> = hostile::public_keys(&keys).into_iter().collect();
    assert_eq!(listed, expected);
}
