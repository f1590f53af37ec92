//! An account's sweep against local-s3: buckets mixing ACLs disabled, ACLs enabled with public,
//! authenticated and cross-account objects, IgnorePublicAcls, a public bucket policy, a bucket
//! in another region and one the caller may not list. Every bucket is in the report with its
//! state; the one findings file names exactly the exposed objects with their bucket and
//! region; no GetObjectAcl is sent to a bucket whose ACLs are disabled.

use test_support as common;

use std::collections::BTreeSet;

use acl_audit::findings::FindingLine;
use acl_audit::s3::region::RegionalClients;
use acl_audit::strategy::InFlight;
use acl_audit::sweep::{BucketState, SweepOptions, SweepScope, sweep_account};
use acl_audit::{FindingsOutput, Strategy};
use local_s3::acl::{Acl, CannedAcl, Grantee, Permission};
use local_s3::store::{ObjectOwnership, PublicAccessBlock, StoredObject};

const PARTNER_ID: &str = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1";

fn put(s3: &local_s3::LocalS3, bucket: &str, key: &str, acl: Acl) {
    s3.store()
        .put_object(bucket, key, StoredObject::new("x".into(), acl))
        .unwrap();
}

/// The account: what each bucket holds, and the (bucket, key) pairs whose exposure takes effect.
fn arrange(s3: &local_s3::LocalS3) -> BTreeSet<(String, String)> {
    let store = s3.store();
    // ACLs disabled: a public grant left from before means nothing, and is never fetched.
    store.create_bucket("disabled-a").unwrap();
    store.create_bucket("disabled-b").unwrap();
    for bucket in ["disabled-a", "disabled-b"] {
        for n in 0..20 {
            put(s3, bucket, &format!("k{n}"), Acl::canned(CannedAcl::PublicRead));
        }
        store
            .set_ownership(bucket, Some(ObjectOwnership::BucketOwnerEnforced))
            .unwrap();
    }
    // ACLs enabled, every kind of exposure.
    store.create_bucket("enabled").unwrap();
    put(s3, "enabled", "private", Acl::private());
    put(s3, "enabled", "public", Acl::canned(CannedAcl::PublicRead));
    put(
        s3,
        "enabled",
        "authenticated",
        Acl::canned(CannedAcl::AuthenticatedRead),
    );
    let partner = Acl::private().with_grant(
        Grantee::CanonicalUser {
            id: PARTNER_ID.to_owned(),
            display_name: None,
        },
        Permission::Read,
    );
    put(s3, "enabled", "shared", partner);
    // IgnorePublicAcls: the public object is neutralised, not exposed.
    store.create_bucket("ignored").unwrap();
    put(s3, "ignored", "public", Acl::canned(CannedAcl::PublicRead));
    store
        .set_public_access_block(
            "ignored",
            Some(PublicAccessBlock {
                ignore_public_acls: true,
                ..PublicAccessBlock::default()
            }),
        )
        .unwrap();
    // A public bucket policy, ACLs disabled: a bucket-level finding, nothing crawled.
    store.create_bucket("policy").unwrap();
    store
        .set_ownership("policy", Some(ObjectOwnership::BucketOwnerEnforced))
        .unwrap();
    store.set_policy_public("policy", Some(true)).unwrap();
    // Another region.
    store.create_bucket_in("faraway", "eu-west-1").unwrap();
    put(s3, "faraway", "public", Acl::canned(CannedAcl::PublicRead));
    // One the caller may not list.
    store.create_bucket("locked").unwrap();
    put(s3, "locked", "public", Acl::canned(CannedAcl::PublicRead));
    store.set_listing_denied("locked", true).unwrap();
    [
        ("enabled", "public"),
        ("enabled", "authenticated"),
        ("enabled", "shared"),
        ("faraway", "public"),
    ]
    .map(|(b, k)| (b.to_owned(), k.to_owned()))
    .into()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_sweep_reports_every_bucket_and_crawls_only_where_acls_apply() {
    let (s3, client) = common::endpoint().await;
    let expected = arrange(&s3);
    let path = test_support::scratch!("sweep.jsonl");
    let options = SweepOptions {
        findings: Some(FindingsOutput::file(&path).unwrap()),
        ..SweepOptions::default()
    };
    let clients = RegionalClients::new(client);
    let strategy = Strategy::JoinAll {
        in_flight: InFlight::All,
    };
    let report = sweep_account(&clients, None, strategy, options).await.unwrap();

    let state = |name: &str| report.buckets.iter().find(|b| b.bucket == name).unwrap().state;
    assert_eq!(report.totals.buckets, 7);
    assert_eq!(state("disabled-a"), BucketState::AclsDisabled);
    assert_eq!(state("policy"), BucketState::AclsDisabled);
    assert_eq!(state("enabled"), BucketState::Audited);
    assert_eq!(state("ignored"), BucketState::Audited);
    assert_eq!(state("faraway"), BucketState::Audited);
    assert_eq!(state("locked"), BucketState::Failed);
    let locked = report.buckets.iter().find(|b| b.bucket == "locked").unwrap();
    assert_eq!(locked.error.as_ref().unwrap().code, "AccessDenied");
    let policy = report.buckets.iter().find(|b| b.bucket == "policy").unwrap();
    assert_eq!(policy.bucket_findings, ["public_policy"]);
    assert_eq!(report.totals.public_policy_buckets, 1);
    let faraway = report.buckets.iter().find(|b| b.bucket == "faraway").unwrap();
    assert_eq!(faraway.region.as_deref(), Some("eu-west-1"));
    // Only the ACL-enabled buckets' objects are fetched: 4 + 1 + 1.
    assert_eq!(s3.requests("GetObjectAcl"), 6);
    assert_eq!(report.totals.acls_fetched, 6);
    // Public and authenticated: the cross-account grant is a finding, not an exposure.
    assert_eq!(report.totals.exposed_objects, 3);

    let lines = std::fs::read_to_string(&path).unwrap();
    let exposed: BTreeSet<(String, String)> = lines
        .lines()
        .map(|line| serde_json::from_str::<FindingLine>(line).unwrap())
        .filter(|line| line.effective)
        .map(|line| (line.bucket, line.key))
        .collect();
    assert_eq!(exposed, expected);
    for line in lines.lines() {
        let line: FindingLine = serde_json::from_str(line).unwrap();
        let region = if line.bucket == "faraway" {
            "eu-west-1"
        } else {
            "us-east-1"
        };
        assert_eq!(line.region.as_deref(), Some(region), "{line:?}");
    }
    assert_eq!(report.findings.unwrap().objects, lines.lines().count());
}

#[tokio::test(flavor = "multi_thread")]
async fn include_and_exclude_globs_choose_the_buckets() {
    let (s3, client) = common::endpoint().await;
    arrange(&s3);
    let options = SweepOptions {
        scope: SweepScope {
            include: vec!["disabled-*".to_owned(), "enabled".to_owned()],
            exclude: vec!["*-b".to_owned()],
            ..SweepScope::default()
        },
        ..SweepOptions::default()
    };
    let clients = RegionalClients::new(client);
    let report = sweep_account(&clients, None, Strategy::Sequential, options)
        .await
        .unwrap();
    let names: Vec<&str> = report.buckets.iter().map(|b| b.bucket.as_str()).collect();
    assert_eq!(names, ["disabled-a", "enabled"]);
}
