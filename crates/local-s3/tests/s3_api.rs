//! The endpoint as an S3 client sees it: every operation it serves, through `aws-sdk-s3`.

mod common;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{AccessControlPolicy, Grant, Grantee, ObjectCannedAcl, Owner, Permission, Type};
use local_s3::LocalS3;
use local_s3::acl::{ALL_USERS_URI, AUTHENTICATED_USERS_URI, OWNER, PARTNER};

async fn start() -> (LocalS3, Client) {
    let s3 = LocalS3::start().await.unwrap();
    let client = common::client_for(&s3);
    (s3, client)
}

/// (type, id or uri, permission) of each grant, for compact assertions.
async fn grants(client: &Client, bucket: &str, key: &str) -> Vec<(String, String, String)> {
    let acl = client.get_object_acl().bucket(bucket).key(key).send().await.unwrap();
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(OWNER.id));
    acl.grants()
        .iter()
        .map(|g| {
            let grantee = g.grantee().unwrap();
            let who = grantee
                .id()
                .or(grantee.uri())
                .or(grantee.email_address())
                .unwrap_or_default();
            (
                grantee.r#type().as_str().to_owned(),
                who.to_owned(),
                g.permission().unwrap().as_str().to_owned(),
            )
        })
        .collect()
}

fn owner_fc() -> (String, String, String) {
    ("CanonicalUser".into(), OWNER.id.into(), "FULL_CONTROL".into())
}

#[tokio::test(flavor = "multi_thread")]
async fn bucket_lifecycle_answers_with_s3_error_codes() {
    let (_s3, client) = start().await;
    client.create_bucket().bucket("life").send().await.unwrap();
    client.head_bucket().bucket("life").send().await.unwrap();

    let again = client.create_bucket().bucket("life").send().await.unwrap_err();
    assert_eq!(again.code(), Some("BucketAlreadyOwnedByYou"));
    assert_eq!(again.raw_response().unwrap().status().as_u16(), 409);

    client
        .put_object()
        .bucket("life")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let not_empty = client.delete_bucket().bucket("life").send().await.unwrap_err();
    assert_eq!(not_empty.code(), Some("BucketNotEmpty"));

    client.delete_object().bucket("life").key("k").send().await.unwrap();
    client
        .delete_object()
        .bucket("life")
        .key("never-existed")
        .send()
        .await
        .unwrap();
    client.delete_bucket().bucket("life").send().await.unwrap();

    let gone = client.head_bucket().bucket("life").send().await.unwrap_err();
    assert_eq!(gone.raw_response().unwrap().status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_bucket_and_key_are_404s() {
    let (_s3, client) = start().await;
    let err = client.list_objects_v2().bucket("nope").send().await.unwrap_err();
    assert_eq!(err.code(), Some("NoSuchBucket"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 404);

    client.create_bucket().bucket("bkt").send().await.unwrap();
    let err = client
        .get_object_acl()
        .bucket("bkt")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NoSuchKey"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_signature_is_refused() {
    let (s3, _) = start().await;
    let intruder = common::client(s3.endpoint_url(), &s3.credentials().access_key_id, "not-the-secret");
    let err = intruder.list_objects_v2().bucket("bkt").send().await.unwrap_err();
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn put_object_applies_canned_acls_and_grant_headers() {
    let (_s3, client) = start().await;
    client.create_bucket().bucket("bkt").send().await.unwrap();
    let put = |key: &'static str| {
        client
            .put_object()
            .bucket("bkt")
            .key(key)
            .body(ByteStream::from_static(b"data"))
    };

    put("default").send().await.unwrap();
    assert_eq!(grants(&client, "bkt", "default").await, [owner_fc()]);

    put("public").acl(ObjectCannedAcl::PublicRead).send().await.unwrap();
    assert_eq!(
        grants(&client, "bkt", "public").await,
        [owner_fc(), ("Group".into(), ALL_USERS_URI.into(), "READ".into())]
    );

    put("authenticated")
        .acl(ObjectCannedAcl::AuthenticatedRead)
        .send()
        .await
        .unwrap();
    assert_eq!(
        grants(&client, "bkt", "authenticated").await,
        [
            owner_fc(),
            ("Group".into(), AUTHENTICATED_USERS_URI.into(), "READ".into())
        ]
    );

    put("granted")
        .grant_full_control(format!("id=\"{}\"", OWNER.id))
        .grant_read(format!("id=\"{}\", uri=\"{ALL_USERS_URI}\"", PARTNER.id))
        .send()
        .await
        .unwrap();
    assert_eq!(
        grants(&client, "bkt", "granted").await,
        [
            owner_fc(),
            ("CanonicalUser".into(), PARTNER.id.into(), "READ".into()),
            ("Group".into(), ALL_USERS_URI.into(), "READ".into()),
        ]
    );

    let both = put("both")
        .acl(ObjectCannedAcl::Private)
        .grant_read("id=\"x\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(both.code(), Some("InvalidRequest"));
}

#[tokio::test(flavor = "multi_thread")]
async fn put_object_acl_replaces_the_acl_from_a_policy_or_canned_acl() {
    let (_s3, client) = start().await;
    client.create_bucket().bucket("bkt").send().await.unwrap();
    client
        .put_object()
        .bucket("bkt")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();

    let partner_read = Grant::builder()
        .grantee(
            Grantee::builder()
                .r#type(Type::CanonicalUser)
                .id(PARTNER.id)
                .build()
                .unwrap(),
        )
        .permission(Permission::Read)
        .build();
    let policy = AccessControlPolicy::builder()
        .owner(Owner::builder().id(OWNER.id).build())
        .grants(partner_read)
        .build();
    client
        .put_object_acl()
        .bucket("bkt")
        .key("k")
        .access_control_policy(policy)
        .send()
        .await
        .unwrap();
    assert_eq!(
        grants(&client, "bkt", "k").await,
        [("CanonicalUser".into(), PARTNER.id.into(), "READ".into())]
    );

    client
        .put_object_acl()
        .bucket("bkt")
        .key("k")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await
        .unwrap();
    assert_eq!(grants(&client, "bkt", "k").await, [owner_fc()]);

    let missing = client
        .put_object_acl()
        .bucket("bkt")
        .key("nope")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await;
    assert_eq!(missing.unwrap_err().code(), Some("NoSuchKey"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acl_marked_unreadable_answers_access_denied() {
    let (s3, client) = start().await;
    local_s3::seed_bucket(s3.store(), "bkt", 3).unwrap();
    s3.store()
        .set_acl_readable("bkt", &local_s3::seed_key(1), false)
        .unwrap();
    let err = client
        .get_object_acl()
        .bucket("bkt")
        .key(local_s3::seed_key(1))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn list_objects_v2_pages_with_delimiter_and_start_after() {
    let (_s3, client) = start().await;
    client.create_bucket().bucket("bkt").send().await.unwrap();
    for key in ["a/1", "a/2", "b", "c/1", "d", "e f+g"] {
        client
            .put_object()
            .bucket("bkt")
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let first = client
        .list_objects_v2()
        .bucket("bkt")
        .delimiter("/")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    let prefixes: Vec<_> = first.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    let keys: Vec<_> = first.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!((prefixes, keys), (vec!["a/"], vec!["b"]));
    assert_eq!(first.key_count(), Some(2));
    assert_eq!(first.is_truncated(), Some(true));

    let token = first.next_continuation_token().unwrap();
    let rest = client
        .list_objects_v2()
        .bucket("bkt")
        .delimiter("/")
        .continuation_token(token)
        .send()
        .await
        .unwrap();
    let prefixes: Vec<_> = rest.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    let keys: Vec<_> = rest.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!((prefixes, keys), (vec!["c/"], vec!["d", "e f+g"]));
    assert_eq!(rest.is_truncated(), Some(false));

    let after = client
        .list_objects_v2()
        .bucket("bkt")
        .start_after("c/1")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = after.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["d", "e f+g"]);
    assert_eq!(after.contents()[0].size(), Some(1));
    assert_eq!(
        after.contents()[0].e_tag(),
        Some("\"9dd4e461268c8034f5c8564e155c67a6\"")
    );

    let bad = client
        .list_objects_v2()
        .bucket("bkt")
        .continuation_token("not-hex")
        .send()
        .await;
    assert_eq!(bad.unwrap_err().code(), Some("InvalidArgument"));
}

#[tokio::test(flavor = "multi_thread")]
async fn url_encoding_type_escapes_keys_for_clients_that_ask() {
    let (_s3, client) = start().await;
    client.create_bucket().bucket("bkt").send().await.unwrap();
    client
        .put_object()
        .bucket("bkt")
        .key("dir/e f+g")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let listing = client
        .list_objects_v2()
        .bucket("bkt")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(listing.contents()[0].key(), Some("dir/e%20f%2Bg"));
}

#[tokio::test(flavor = "multi_thread")]
async fn get_object_returns_the_body_that_was_put() {
    let (_s3, client) = start().await;
    client.create_bucket().bucket("bodies").send().await.unwrap();
    let body = br#"{"report": "json"}"#;
    client
        .put_object()
        .bucket("bodies")
        .key("results/manifest.json")
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap();
    let object = client
        .get_object()
        .bucket("bodies")
        .key("results/manifest.json")
        .send()
        .await
        .unwrap();
    assert_eq!(object.content_length(), Some(body.len() as i64));
    assert_eq!(object.body.collect().await.unwrap().into_bytes().as_ref(), body);
    let missing = client
        .get_object()
        .bucket("bodies")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("NoSuchKey"));
}

#[tokio::test]
async fn an_unknown_access_key_is_invalid_access_key_id_as_on_s3() {
    let (s3, _) = start().await;
    let stranger = common::client(s3.endpoint_url(), "AKIDNOTKNOWNHERE", "whatever");
    let err = stranger.list_buckets().send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidAccessKeyId"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
}

#[tokio::test]
async fn ownership_controls_and_public_access_block_round_trip() {
    use aws_sdk_s3::types::{
        ObjectOwnership, OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration,
    };
    let (_s3, client) = start().await;
    client.create_bucket().bucket("settings").send().await.unwrap();
    let missing = client
        .get_bucket_ownership_controls()
        .bucket("settings")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("OwnershipControlsNotFoundError"));
    let missing = client
        .get_public_access_block()
        .bucket("settings")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("NoSuchPublicAccessBlockConfiguration"));

    let rule = OwnershipControlsRule::builder()
        .object_ownership(ObjectOwnership::BucketOwnerPreferred)
        .build()
        .unwrap();
    let controls = OwnershipControls::builder().rules(rule).build().unwrap();
    client
        .put_bucket_ownership_controls()
        .bucket("settings")
        .ownership_controls(controls)
        .send()
        .await
        .unwrap();
    let read = client
        .get_bucket_ownership_controls()
        .bucket("settings")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read.ownership_controls().unwrap().rules()[0].object_ownership(),
        &ObjectOwnership::BucketOwnerPreferred
    );
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .build();
    client
        .put_public_access_block()
        .bucket("settings")
        .public_access_block_configuration(block)
        .send()
        .await
        .unwrap();
    let read = client
        .get_public_access_block()
        .bucket("settings")
        .send()
        .await
        .unwrap();
    let read = read.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            read.block_public_acls(),
            read.ignore_public_acls(),
            read.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(false))
    );
}

#[tokio::test]
async fn a_request_signed_for_another_region_is_redirected_with_the_bucket_s_region() {
    let (s3, client) = start().await;
    s3.store().create_bucket_in("in-ireland", "eu-west-1").unwrap();
    let err = client.list_objects_v2().bucket("in-ireland").send().await.unwrap_err();
    assert_eq!(err.code(), Some("PermanentRedirect"));
    let response = err.raw_response().unwrap();
    assert_eq!(response.status().as_u16(), 301);
    assert_eq!(response.headers().get("x-amz-bucket-region"), Some("eu-west-1"));
    let head = client.head_bucket().bucket("in-ireland").send().await.unwrap_err();
    let response = head.raw_response().unwrap();
    assert_eq!(response.headers().get("x-amz-bucket-region"), Some("eu-west-1"));
    let ireland = Client::from_conf(
        client
            .config()
            .to_builder()
            .region(aws_sdk_s3::config::Region::new("eu-west-1"))
            .build(),
    );
    let head = ireland.head_bucket().bucket("in-ireland").send().await.unwrap();
    assert_eq!(head.bucket_region(), Some("eu-west-1"));
    assert_eq!(s3.requests("HeadBucket"), 2, "requests are counted by operation");
}

async fn enable_versioning(client: &Client, bucket: &str, status: aws_sdk_s3::types::BucketVersioningStatus) {
    use aws_sdk_s3::types::VersioningConfiguration;
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn versioning_keeps_every_version_with_its_own_acl_and_lists_them_in_pages() {
    use aws_sdk_s3::types::BucketVersioningStatus;
    let (_s3, client) = start().await;
    client.create_bucket().bucket("versioned").send().await.unwrap();
    let status = client.get_bucket_versioning().bucket("versioned").send().await.unwrap();
    assert_eq!(status.status(), None, "never versioned");
    let put = |key: &'static str, acl: ObjectCannedAcl| {
        client
            .put_object()
            .bucket("versioned")
            .key(key)
            .acl(acl)
            .body(ByteStream::from_static(b"x"))
            .send()
    };
    let before = put("a", ObjectCannedAcl::PublicRead).await.unwrap();
    assert_eq!(before.version_id(), None, "unversioned: no version id");
    enable_versioning(&client, "versioned", BucketVersioningStatus::Enabled).await;
    let status = client.get_bucket_versioning().bucket("versioned").send().await.unwrap();
    assert_eq!(status.status(), Some(&BucketVersioningStatus::Enabled));
    let v2 = put("a", ObjectCannedAcl::Private).await.unwrap().version_id.unwrap();
    let v3 = put("a", ObjectCannedAcl::AuthenticatedRead)
        .await
        .unwrap()
        .version_id
        .unwrap();
    let b1 = put("b", ObjectCannedAcl::Private).await.unwrap().version_id.unwrap();
    let marker = client
        .delete_object()
        .bucket("versioned")
        .key("b")
        .send()
        .await
        .unwrap();
    assert_eq!(marker.delete_marker(), Some(true));
    let marker = marker.version_id.unwrap();

    // Each version keeps its own ACL; the "null" one is the one written before versioning.
    let acl_of = |version: &str| {
        client
            .get_object_acl()
            .bucket("versioned")
            .key("a")
            .version_id(version)
            .send()
    };
    let public = acl_of("null").await.unwrap();
    assert!(
        public
            .grants()
            .iter()
            .any(|g| g.grantee().unwrap().uri() == Some(ALL_USERS_URI))
    );
    assert_eq!(acl_of(&v2).await.unwrap().grants().len(), 1, "owner only");
    assert_eq!(
        grants(&client, "versioned", "a").await.len(),
        2,
        "current: v3, authenticated-read"
    );
    let missing = acl_of("no-such-version").await.unwrap_err();
    assert_eq!(missing.code(), Some("NoSuchVersion"));
    let on_marker = client
        .get_object_acl()
        .bucket("versioned")
        .key("b")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(on_marker.code(), Some("MethodNotAllowed"));
    assert_eq!(
        client
            .get_object()
            .bucket("versioned")
            .key("b")
            .send()
            .await
            .unwrap_err()
            .code(),
        Some("NoSuchKey"),
        "deleted: the delete marker is latest"
    );
    // PutObjectAcl on one version leaves the others as they were.
    client
        .put_object_acl()
        .bucket("versioned")
        .key("a")
        .version_id(&v2)
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    assert_eq!(acl_of(&v2).await.unwrap().grants().len(), 2);
    assert_eq!(grants(&client, "versioned", "a").await.len(), 2);

    // Keys ascending, each key's versions newest first; pages of 2 cut inside a key.
    let mut entries = Vec::new();
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    for _ in 0..5 {
        let page = client
            .list_object_versions()
            .bucket("versioned")
            .max_keys(2)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .unwrap();
        let mut page_entries: Vec<(String, String, bool, bool)> = page
            .versions()
            .iter()
            .map(|v| {
                (
                    v.key().unwrap().to_owned(),
                    v.version_id().unwrap().to_owned(),
                    v.is_latest().unwrap(),
                    false,
                )
            })
            .chain(page.delete_markers().iter().map(|m| {
                (
                    m.key().unwrap().to_owned(),
                    m.version_id().unwrap().to_owned(),
                    m.is_latest().unwrap(),
                    true,
                )
            }))
            .collect();
        assert!(page_entries.len() <= 2);
        page_entries.sort_by(|x, y| x.0.cmp(&y.0));
        entries.extend(page_entries);
        if !page.is_truncated().unwrap() {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
    let names: Vec<(&str, &str, bool, bool)> = entries
        .iter()
        .map(|(k, v, latest, dm)| (k.as_str(), v.as_str(), *latest, *dm))
        .collect();
    assert_eq!(
        names,
        [
            ("a", v3.as_str(), true, false),
            ("a", v2.as_str(), false, false),
            ("a", "null", false, false),
            ("b", marker.as_str(), true, true),
            ("b", b1.as_str(), false, false),
        ]
    );

    // Deleting the delete marker brings the object back; deleting a version removes it.
    client
        .delete_object()
        .bucket("versioned")
        .key("b")
        .version_id(&marker)
        .send()
        .await
        .unwrap();
    client.get_object().bucket("versioned").key("b").send().await.unwrap();
    client
        .delete_object()
        .bucket("versioned")
        .key("a")
        .version_id(&v2)
        .send()
        .await
        .unwrap();
    assert_eq!(acl_of(&v2).await.unwrap_err().code(), Some("NoSuchVersion"));
}

#[tokio::test]
async fn with_versioning_suspended_a_write_replaces_the_null_version() {
    use aws_sdk_s3::types::BucketVersioningStatus;
    let (_s3, client) = start().await;
    client.create_bucket().bucket("suspended").send().await.unwrap();
    enable_versioning(&client, "suspended", BucketVersioningStatus::Enabled).await;
    let put = || {
        client
            .put_object()
            .bucket("suspended")
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .send()
    };
    let kept = put().await.unwrap().version_id.unwrap();
    enable_versioning(&client, "suspended", BucketVersioningStatus::Suspended).await;
    assert_eq!(put().await.unwrap().version_id(), None);
    put().await.unwrap();
    let listed = client.list_object_versions().bucket("suspended").send().await.unwrap();
    let ids: Vec<&str> = listed.versions().iter().filter_map(|v| v.version_id()).collect();
    assert_eq!(ids, ["null", kept.as_str()], "one null version, the enabled one kept");
}
