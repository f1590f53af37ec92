//! The same client code against `moto_server`, an S3 implementation written independently of
//! local-s3: listing across pages, ACL decoding, NoSuchBucket, NoSuchKey.
//!
//! `make test` installs moto into `.venv-moto` and sets `MOTO_SERVER` to its `moto_server`;
//! each test starts its own server on a free loopback port and stops it when it ends. Without
//! `MOTO_SERVER` these tests say so and pass, so that a bare `cargo test` needs no Python.

use test_support as common;

use acl_audit::model::KeyRange;
use acl_audit::model::{ALL_USERS_URI, AUTHENTICATED_USERS_URI, Grantee};
use acl_audit::s3::client::client_for_endpoint;
use acl_audit::s3::fetch::fetch_acl;
use acl_audit::s3::listing::{KeyPages, list_keys};
use acl_audit::strategy::InFlight;
use acl_audit::{ListError, Strategy, Target, audit_bucket};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectCannedAcl;
use futures::future::try_join_all;
use local_s3::moto::MotoServer;

/// A canonical user id that is not moto's account: a grant to it is cross-account.
const PARTNER_ID: &str = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1";

/// moto checks no signature: any key pair, never a real one.
fn client(moto: &MotoServer) -> Client {
    client_for_endpoint(moto.endpoint_url(), "moto-access-key", "moto-secret-key")
}

async fn create_bucket_with(client: &Client, bucket: &str, keys: impl IntoIterator<Item = String>) {
    client.create_bucket().bucket(bucket).send().await.unwrap();
    let keys: Vec<String> = keys.into_iter().collect();
    // A few at a time: moto serves one request at a time.
    for chunk in keys.chunks(16) {
        try_join_all(chunk.iter().map(|key| {
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from_static(b"x"))
                .send()
        }))
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_reads_every_page_in_key_order() {
    let Some(moto) = MotoServer::start() else { return };
    let client = client(&moto);
    let keys: Vec<String> = (0..1100).map(|i| format!("logs/{i:05}")).collect();
    create_bucket_with(&client, "paged", keys.clone()).await;

    let listing = list_keys(&client, &Target::bucket("paged")).await.unwrap();
    assert!(listing.complete);
    assert_eq!(listing.keys, keys);

    let mut pages = KeyPages::new(&client, &Target::bucket("paged"));
    let mut sizes = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        sizes.push(page.len());
    }
    assert_eq!(sizes, [1000, 100]);
}

/// Cut key ranges (a state machine's part) over moto's StartAfter: every key exactly once,
/// those at the cuts included.
#[tokio::test(flavor = "multi_thread")]
async fn cut_ranges_list_every_key_once() {
    let Some(moto) = MotoServer::start() else { return };
    let client = client(&moto);
    let mut keys: Vec<String> = (0..1500).map(|i| format!("logs/{i:05}")).collect();
    keys.extend(["logs/0", "logs/00", "logs/001", "logs/0011", "logs/~", "logs/é"].map(str::to_owned));
    keys.sort();
    create_bucket_with(&client, "ranges", keys.clone()).await;
    let first: Vec<String> = keys[..1000].to_vec();
    let rest = KeyRange {
        after: first.last().cloned(),
        through: None,
    };
    let mut ranges = vec![KeyRange {
        after: None,
        through: first.last().cloned(),
    }];
    ranges.extend(acl_audit::s3::ranges::cut(&rest, &first, "logs/", 8));
    assert!(ranges.len() > 2, "the key space was cut: {ranges:?}");
    let target = Target {
        prefix: Some("logs/".to_owned()),
        ..Target::bucket("ranges")
    };
    let resume = acl_audit::Resume {
        bucket: "ranges".to_owned(),
        prefix: target.prefix.clone(),
        versions: false,
        keys: Vec::new(),
        cursor: acl_audit::model::Cursor::Ranges(ranges),
    };
    let mut pages = KeyPages::resuming(&client, &target, Some(&resume));
    let mut listed = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        listed.extend(page.into_iter().map(|object| object.key));
    }
    assert_eq!(listed, keys, "in key order, each once");
}

#[tokio::test(flavor = "multi_thread")]
async fn acls_decode_and_audit_the_same_with_every_strategy() {
    let Some(moto) = MotoServer::start() else { return };
    let client = client(&moto);
    create_bucket_with(&client, "acls", ["private".to_owned()]).await;
    for (key, acl) in [
        ("public", ObjectCannedAcl::PublicRead),
        ("authenticated", ObjectCannedAcl::AuthenticatedRead),
    ] {
        let put = client.put_object().bucket("acls").key(key).acl(acl);
        put.body(ByteStream::from_static(b"x")).send().await.unwrap();
    }
    client
        .put_object()
        .bucket("acls")
        .key("shared")
        .grant_read(format!("id=\"{PARTNER_ID}\""))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();

    let public = fetch_acl(&client, "acls", "public".to_owned()).await.unwrap();
    assert!(
        public.grants.iter().any(|g| g.permission == "READ"
            && g.grantee
                == Grantee::Group {
                    uri: ALL_USERS_URI.to_owned()
                }),
        "{public:?}"
    );
    let authenticated = fetch_acl(&client, "acls", "authenticated".to_owned()).await.unwrap();
    assert!(authenticated.grants.iter().any(|g| g.grantee
        == Grantee::Group {
            uri: AUTHENTICATED_USERS_URI.to_owned()
        }));
    let owner = public.owner_id.clone().expect("moto names the owner");

    let private = fetch_acl(&client, "acls", "private".to_owned()).await.unwrap();
    assert_eq!(private.grants.len(), 1);
    assert_eq!(private.grants[0].grantee, Grantee::CanonicalUser { id: owner });
    assert_eq!(private.grants[0].permission, "FULL_CONTROL");

    for strategy in [
        Strategy::Sequential,
        Strategy::SpawnBlocking {
            pool_size: std::num::NonZeroUsize::new(4).unwrap(),
        },
        Strategy::JoinAll {
            in_flight: InFlight::All,
        },
    ] {
        let report = audit_bucket(&client, &Target::bucket("acls"), strategy).await.unwrap();
        assert_eq!((report.objects_listed, report.acls_fetched), (4, 4), "{strategy:?}");
        assert_eq!(report.audit.readable_by_all_users.keys, ["public"]);
        assert_eq!(report.audit.readable_by_authenticated_users.keys, ["authenticated"]);
        assert_eq!(report.audit.granted_to_other_accounts.keys, ["shared"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_bucket_is_no_such_bucket() {
    let Some(moto) = MotoServer::start() else { return };
    let err = audit_bucket(&client(&moto), &Target::bucket("not-there"), Strategy::Sequential)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ListError::NoSuchBucket {
            bucket: "not-there".to_owned()
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_key_is_a_no_such_key_failure() {
    let Some(moto) = MotoServer::start() else { return };
    let client = client(&moto);
    create_bucket_with(&client, "sparse", ["kept".to_owned()]).await;
    let failure = fetch_acl(&client, "sparse", "gone".to_owned()).await.unwrap_err();
    assert_eq!(failure.code, "NoSuchKey");
    // local-s3 words it the same (tests/strategies.rs), as S3 does.
    assert_eq!(failure.message, "NoSuchKey: The specified key does not exist.");
}

#[tokio::test(flavor = "multi_thread")]
async fn findings_stream_to_moto_in_parts_and_name_exactly_the_objects_with_findings() {
    use acl_audit::audit::{AuditOptions, FindingsOutput};
    use acl_audit::findings::FindingLine;
    use acl_audit::s3::upload::{PART_SIZE, StreamingUpload};

    let Some(moto) = MotoServer::start() else { return };
    let client = client(&moto);
    create_bucket_with(&client, "mixed", (0..20).map(|i| format!("private-{i:02}"))).await;
    for (key, acl) in [
        ("public", ObjectCannedAcl::PublicRead),
        ("authenticated", ObjectCannedAcl::AuthenticatedRead),
    ] {
        let put = client.put_object().bucket("mixed").key(key).acl(acl);
        put.body(ByteStream::from_static(b"x")).send().await.unwrap();
    }
    client.create_bucket().bucket("findings").send().await.unwrap();

    let file: acl_audit::model::S3Location = "s3://findings/run/findings.jsonl".parse().unwrap();
    let options = AuditOptions {
        findings: Some(FindingsOutput::s3(&client, &file)),
        ..AuditOptions::default()
    };
    let report = acl_audit::audit_bucket_with(&client, &Target::bucket("mixed"), Strategy::Sequential, options)
        .await
        .unwrap();
    let body = client
        .get_object()
        .bucket("findings")
        .key("run/findings.jsonl")
        .send()
        .await
        .unwrap();
    let text = String::from_utf8(body.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
    let mut keys: Vec<(String, String)> = text
        .lines()
        .map(|line| serde_json::from_str::<FindingLine>(line).unwrap())
        .map(|line| (line.key, format!("{:?}", line.findings)))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            ("authenticated".to_owned(), "[AuthenticatedRead]".to_owned()),
            ("public".to_owned(), "[PublicRead]".to_owned())
        ]
    );
    assert_eq!(report.findings.unwrap().objects, 2);

    // moto joins a multipart upload too.
    let data = vec![7u8; PART_SIZE + 1000];
    let mut upload = StreamingUpload::new(&client, "findings", "big", "application/octet-stream");
    upload.write(&data[..PART_SIZE]).await.unwrap();
    upload.write(&data[PART_SIZE..]).await.unwrap();
    upload.finish().await.unwrap();
    let big = client.get_object().bucket("findings").key("big").send().await.unwrap();
    assert_eq!(big.body.collect().await.unwrap().into_bytes().len(), data.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn ignore_public_acls_neutralises_public_objects_on_moto_too() {
    use acl_audit::bucket::BucketContext;
    use acl_audit::{AuditOptions, audit_bucket_with};
    use aws_sdk_s3::types::PublicAccessBlockConfiguration;

    let Some(moto) = MotoServer::start() else { return };
    let client = client(&moto);
    create_bucket_with(&client, "blocked", ["private".to_owned()]).await;
    for key in ["public-1", "public-2"] {
        let put = client
            .put_object()
            .bucket("blocked")
            .key(key)
            .acl(ObjectCannedAcl::PublicRead);
        put.body(ByteStream::from_static(b"x")).send().await.unwrap();
    }
    let audit = |context: BucketContext| {
        let client = client.clone();
        async move {
            let options = AuditOptions {
                bucket: Some(context),
                ..AuditOptions::default()
            };
            audit_bucket_with(&client, &Target::bucket("blocked"), Strategy::Sequential, options)
                .await
                .unwrap()
        }
    };

    let open = BucketContext::read(&client, "blocked", None, None).await;
    assert!(!open.public_acls_ignored && !open.acls_disabled, "{open:?}");
    let report = audit(open).await;
    assert_eq!(report.audit.findings.exposed_objects, 2);

    client
        .put_public_access_block()
        .bucket("blocked")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .ignore_public_acls(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let blocked = BucketContext::read(&client, "blocked", None, None).await;
    assert!(blocked.public_acls_ignored, "{blocked:?}");
    assert!(
        blocked.owner_id.set().is_some(),
        "moto answers GetBucketAcl: {blocked:?}"
    );
    let report = audit(blocked).await;
    assert_eq!(report.audit.findings.exposed_objects, 0);
    assert_eq!(report.audit.findings.neutralised_objects, 2);
    assert_eq!(
        report.audit.readable_by_all_users.count, 2,
        "the ACLs themselves are unchanged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_s_block_public_access_is_read_through_s3_control_on_moto_too() {
    use acl_audit::bucket::{AccountCheck, BucketContext, Check};
    use acl_audit::s3::client::control_client_for_endpoint;
    use aws_sdk_s3control::types::PublicAccessBlockConfiguration;

    let Some(moto) = MotoServer::start() else { return };
    let client = client(&moto);
    create_bucket_with(&client, "in-account", ["private".to_owned()]).await;
    let control = control_client_for_endpoint(moto.endpoint_url(), "moto-access-key", "moto-secret-key");
    // moto's default account.
    let account = AccountCheck {
        client: &control,
        account_id: "123456789012",
    };
    let before = BucketContext::read(&client, "in-account", None, Some(account)).await;
    assert_eq!(before.account_public_access_block, Check::NotConfigured, "{before:?}");
    assert!(!before.public_acls_ignored);

    control
        .put_public_access_block()
        .account_id("123456789012")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .ignore_public_acls(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let after = BucketContext::read(&client, "in-account", None, Some(account)).await;
    assert!(after.public_acls_ignored, "{after:?}");
    assert_eq!(
        after.public_access_block,
        Check::NotConfigured,
        "the bucket's own is unset"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_noncurrent_version_is_found_on_moto_too() {
    let Some(moto) = MotoServer::start() else { return };
    let client = client(&moto);
    let arranged = common::arrange_versioned(&client, "history").await;
    let current = audit_bucket(&client, &Target::bucket("history"), Strategy::Sequential)
        .await
        .unwrap();
    assert_eq!((current.acls_fetched, current.audit.findings.objects), (2, 0));

    let every_version = Target {
        include_versions: true,
        ..Target::bucket("history")
    };
    let report = audit_bucket(
        &client,
        &every_version,
        Strategy::JoinAll {
            in_flight: InFlight::All,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.acls_fetched, arranged.versions);
    assert_eq!(report.delete_markers, arranged.delete_markers);
    assert_eq!(report.failures.count, 0, "{:?}", report.failures);
    assert_eq!(report.audit.readable_by_all_users.keys, ["doc"]);
    let public = fetch_acl(
        &client,
        "history",
        acl_audit::ObjectRef::version("doc", &arranged.public_version),
    )
    .await
    .unwrap();
    assert_eq!(public.version_id.as_deref(), Some(arranged.public_version.as_str()));
    assert!(
        public
            .grants
            .iter()
            .any(|g| matches!(&g.grantee, Grantee::Group { uri } if uri == ALL_USERS_URI))
    );
}
