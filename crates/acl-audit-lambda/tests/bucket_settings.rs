//! The bucket's own settings through the functions' entry, against local-s3 over HTTP: ACLs
//! disabled (no GetObjectAcl at all), Block Public Access ignoring public ACLs, a bucket in
//! another region, the bucket's own ACL, and S3's one-object EventBridge events.

use test_support as common;

use std::collections::HashMap;

use acl_audit::StrategyKind;
use acl_audit::bucket::Check;
use acl_audit::findings::{FindingKind, FindingLine};
use acl_audit::s3::client::client_for_endpoint;
use acl_audit::{ListError, Target, audit_bucket};
use acl_audit_lambda::{Clients, Config};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::types::{
    BucketCannedAcl, BucketLocationConstraint, CreateBucketConfiguration, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration,
};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

fn config(vars: &[(&str, &str)]) -> Config {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_vars(|name| vars.get(name).cloned()).expect("valid test configuration")
}

fn event(payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = "req-settings".to_owned();
    LambdaEvent::new(payload, context)
}

async fn enforce_bucket_owner(client: &Client, bucket: &str) {
    let rule = OwnershipControlsRule::builder()
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .build()
        .unwrap();
    client
        .put_bucket_ownership_controls()
        .bucket(bucket)
        .ownership_controls(OwnershipControls::builder().rules(rule).build().unwrap())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_acls_disabled_no_acl_is_fetched_unless_asked() {
    let (s3, client) = common::seeded("enforced", 10_000).await;
    enforce_bucket_owner(&client, "enforced").await;

    let report = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[]),
        event(json!({"bucket": "enforced"})),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(s3.requests("GetObjectAcl"), 0, "not one GetObjectAcl request");
    assert_eq!(report.objects_listed, 10_000);
    assert_eq!(report.objects_with_acls_disabled, 10_000);
    assert_eq!(report.acls_fetched, 0);
    assert!(report.accounts_for_every_object());
    let settings = report.bucket_settings.as_ref().unwrap();
    assert!(settings.acls_disabled, "the report says why");
    assert_eq!(settings.object_ownership, Check::Set("BucketOwnerEnforced".to_owned()));

    let event_asks = json!({"bucket": "enforced", "audit_when_acls_disabled": true});
    let anyway = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[]),
        event(event_asks),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(s3.requests("GetObjectAcl"), 10_000);
    assert_eq!((anyway.acls_fetched, anyway.objects_with_acls_disabled), (10_000, 0));
    assert_eq!(
        anyway.audit.findings.objects, 0,
        "every ACL is the owner's full control"
    );

    let from_env = config(&[("AUDIT_WHEN_ACLS_DISABLED", "true"), ("MAX_OBJECTS", "10")]);
    let report = acl_audit_lambda::invoke(
        StrategyKind::Sequential,
        &Clients::new(&client),
        &from_env,
        event(json!({"bucket": "enforced"})),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(report.acls_fetched, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_acls_disabled_s3_refuses_new_acls_and_answers_the_owner_s_full_control() {
    let (s3, client) = common::seeded("refusing", 10).await;
    enforce_bucket_owner(&client, "refusing").await;
    let put = client
        .put_object()
        .bucket("refusing")
        .key("new")
        .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&put),
        Some("AccessControlListNotSupported")
    );
    // object-0000007 was seeded public-read: with ACLs disabled S3 shows the owner only.
    let acl = client
        .get_object_acl()
        .bucket("refusing")
        .key(local_s3::seed_key(7))
        .send()
        .await
        .unwrap();
    assert_eq!(acl.grants().len(), 1);
    assert_eq!(acl.grants()[0].permission().unwrap().as_str(), "FULL_CONTROL");
    drop(s3);
}

#[tokio::test(flavor = "multi_thread")]
async fn ignore_public_acls_makes_the_same_public_objects_not_effective() {
    let (s3, client) = common::seeded("blocked", 100).await;
    s3.store().create_bucket("findings").unwrap();
    let with_findings = config(&[("FINDINGS_URI", "s3://findings/runs/")]);
    let exposed = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &with_findings,
        event(json!({"bucket": "blocked"})),
    )
    .await
    .into_result()
    .unwrap();
    // The seed: 10 public-read, 10 authenticated-read of 100.
    assert_eq!(exposed.audit.findings.exposed_objects, 20);
    assert_eq!(exposed.audit.findings.neutralised_objects, 0);

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
    let ignored = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &with_findings,
        event(json!({"bucket": "blocked"})),
    )
    .await
    .into_result()
    .unwrap();
    let findings = &ignored.audit.findings;
    assert_eq!((findings.exposed_objects, findings.public_objects), (0, 0));
    assert_eq!(findings.neutralised_objects, 20);
    assert_eq!(
        findings.of_kind(FindingKind::PublicRead),
        10,
        "the ACLs are still counted"
    );
    assert!(ignored.bucket_settings.as_ref().unwrap().public_acls_ignored);

    let uri = ignored.findings.as_ref().unwrap().uri.clone();
    let key = uri.strip_prefix("s3://findings/").unwrap();
    let (body, _) = s3.store().object("findings", key).unwrap();
    let lines: Vec<FindingLine> = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let public: Vec<&FindingLine> = lines
        .iter()
        .filter(|l| l.findings.contains(&FindingKind::PublicRead))
        .collect();
    assert_eq!(public.len(), 10);
    assert!(
        public.iter().all(|line| !line.effective),
        "neutralised by IgnorePublicAcls"
    );
    let cross: Vec<&FindingLine> = lines
        .iter()
        .filter(|l| l.findings == [FindingKind::OtherAccountGrant])
        .collect();
    assert!(
        !cross.is_empty() && cross.iter().all(|line| line.effective),
        "BPA ignores only public grants"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_bucket_acl_is_a_finding_of_the_bucket() {
    let (_s3, client) = common::seeded("open-bucket", 10).await;
    client
        .put_bucket_acl()
        .bucket("open-bucket")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let report = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[]),
        event(json!({"bucket": "open-bucket"})),
    )
    .await
    .into_result()
    .unwrap();
    let settings = report.bucket_settings.unwrap();
    assert_eq!(settings.acl_findings, [FindingKind::PublicRead]);
    assert!(settings.effective_acl_findings());
    assert!(settings.owner_id.set().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_in_another_region_is_audited_there() {
    let (s3, _) = common::endpoint().await;
    let keys = s3.credentials();
    let base = client_for_endpoint(s3.endpoint_url(), &keys.access_key_id, &keys.secret_access_key);
    let in_region = |region: &str| {
        Client::from_conf(
            base.config()
                .to_builder()
                .region(Region::new(region.to_owned()))
                .build(),
        )
    };
    let ireland = in_region("eu-west-1");
    let location = CreateBucketConfiguration::builder()
        .location_constraint(BucketLocationConstraint::EuWest1)
        .build();
    ireland
        .create_bucket()
        .bucket("far-away")
        .create_bucket_configuration(location)
        .send()
        .await
        .unwrap();
    for i in 0..25 {
        s3.store()
            .put_object(
                "far-away",
                &local_s3::seed_key(i),
                local_s3::store::StoredObject::new("x".into(), local_s3::acl::Acl::private()),
            )
            .unwrap();
    }

    let virginia = in_region("us-east-1");
    // Unlocated, S3's redirect is an error that names the region.
    let err = audit_bucket(&virginia, &Target::bucket("far-away"), acl_audit::Strategy::Sequential)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ListError::WrongRegion {
            bucket: "far-away".to_owned(),
            region: Some("eu-west-1".to_owned())
        }
    );
    assert!(err.to_string().contains("eu-west-1"), "{err}");

    let report = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&virginia),
        &config(&[]),
        event(json!({"bucket": "far-away"})),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!((report.objects_listed, report.acls_fetched), (25, 25));
    assert_eq!(report.bucket_settings.unwrap().region.as_deref(), Some("eu-west-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_s_object_events_audit_exactly_their_object_and_version() {
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::ObjectCannedAcl;

    // The seed's object-0000007 is public-read, written before versioning (the "null"
    // version); versioning on, a private object-0000007 then becomes current.
    let (s3, client) = common::seeded("acl-audit-demo", 100).await;
    common::enable_versioning(&client, "acl-audit-demo").await;
    let put_private = |key: &'static str| {
        client
            .put_object()
            .bucket("acl-audit-demo")
            .key(key)
            .acl(ObjectCannedAcl::Private)
            .body(ByteStream::from_static(b"x"))
            .send()
    };
    let created_version = put_private("object-0000000").await.unwrap().version_id.unwrap();
    put_private("object-0000007").await.unwrap();
    // The fixtures hold S3's documented example version id; each event here names a version
    // this bucket has.
    let with_version = |name: &str, version_id: Option<&str>| {
        let mut payload = common::fixture(name);
        payload["detail"]["object"]["version-id"] = json!(version_id);
        event(payload)
    };

    let created = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[]),
        with_version("eventbridge-object-created.json", Some(&created_version)),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!((created.objects_listed, created.acls_fetched), (1, 1));
    assert_eq!(created.audit.findings.objects, 0, "object-0000000 is private");
    assert_eq!(s3.requests("ListObjectsV2"), 0, "one object: nothing listed");

    // The ACL that changed is the null version's, public; the current one is private.
    let updated = acl_audit_lambda::invoke(
        StrategyKind::Sequential,
        &Clients::new(&client),
        &config(&[]),
        with_version("eventbridge-object-acl-updated.json", Some("null")),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(updated.acls_fetched, 1);
    assert_eq!(updated.audit.readable_by_all_users.keys, ["object-0000007"]);
    assert_eq!(updated.audit.findings.exposed_objects, 1);
    let current = acl_audit_lambda::invoke(
        StrategyKind::Sequential,
        &Clients::new(&client),
        &config(&[]),
        with_version("eventbridge-object-acl-updated.json", None),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!((current.acls_fetched, current.audit.findings.objects), (1, 0));

    // A version the bucket does not have (S3's example id): a counted failure, no crash.
    let unknown = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[]),
        event(common::fixture("eventbridge-object-created.json")),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(unknown.failures.by_code.get("NoSuchVersion"), Some(&1));
    assert_eq!(
        unknown.failures.sample[0].version_id.as_deref(),
        Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
    );
    assert_eq!(s3.requests("GetObjectAcl"), 4);

    let mut other = common::fixture("eventbridge-object-created.json");
    other["detail-type"] = json!("Object Deleted");
    let err = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[]),
        event(other),
    )
    .await
    .into_result()
    .unwrap_err();
    assert!(err.to_string().contains("Object Deleted"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn include_versions_comes_from_the_event_or_the_environment() {
    let (s3, client) = common::endpoint().await;
    let arranged = common::arrange_versioned(&client, "history").await;
    let from_env = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[("INCLUDE_VERSIONS", "true")]),
        event(json!({"bucket": "history"})),
    )
    .await
    .into_result()
    .unwrap();
    assert!(from_env.include_versions);
    assert_eq!(
        (from_env.acls_fetched, from_env.delete_markers),
        (arranged.versions, arranged.delete_markers)
    );
    assert_eq!(from_env.audit.findings.exposed_objects, 1);

    let overridden = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[("INCLUDE_VERSIONS", "true")]),
        event(json!({"bucket": "history", "include_versions": false})),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!((overridden.acls_fetched, overridden.audit.findings.objects), (2, 0));

    let from_event = acl_audit_lambda::invoke(
        StrategyKind::Sequential,
        &Clients::new(&client),
        &config(&[]),
        event(json!({"bucket": "history", "include_versions": true, "max_objects": 3})),
    )
    .await
    .into_result()
    .unwrap();
    let resume = from_event.resume.unwrap();
    assert!(resume.versions);
    let err = acl_audit_lambda::invoke(
        StrategyKind::Sequential,
        &Clients::new(&client),
        &config(&[]),
        event(json!({"resume": resume, "include_versions": false})),
    )
    .await
    .into_result()
    .unwrap_err();
    assert!(err.to_string().contains("include_versions"), "{err}");
    let rest = acl_audit_lambda::invoke(
        StrategyKind::Sequential,
        &Clients::new(&client),
        &config(&[]),
        event(json!({"resume": resume})),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(from_event.acls_fetched + rest.acls_fetched, arranged.versions);
    assert_eq!(
        rest.audit.findings.exposed_objects + from_event.audit.findings.exposed_objects,
        1
    );
    // One page for the environment's run and the resumed one; the event's run of 3 asks for
    // a second, since a delete marker took one of its first page's 3 places.
    assert_eq!(s3.requests("ListObjectVersions"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_s_ignore_public_acls_neutralises_too_read_for_the_function_s_account() {
    use acl_audit::s3::client::control_client_for_endpoint;
    use acl_audit_lambda::Clients;

    let (s3, client) = common::seeded("account-blocked", 100).await;
    let keys = s3.credentials();
    let control = control_client_for_endpoint(s3.endpoint_url(), &keys.access_key_id, &keys.secret_access_key);
    let mut context = Context::default();
    context.invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:acl-audit-join-all".to_owned();
    let invoke = |context: Context| {
        let (client, control) = (client.clone(), control.clone());
        async move {
            let event = LambdaEvent::new(json!({"bucket": "account-blocked"}), context);
            acl_audit_lambda::invoke(
                StrategyKind::JoinAll,
                &Clients::new(&client).with_control(&control),
                &config(&[]),
                event,
            )
            .await
            .into_result()
            .unwrap()
        }
    };

    let open = invoke(context.clone()).await;
    let settings = open.bucket_settings.as_ref().unwrap();
    assert_eq!(settings.account_public_access_block, Check::NotConfigured);
    assert_eq!(open.audit.findings.exposed_objects, 20);

    control
        .put_public_access_block()
        .account_id("111122223333")
        .public_access_block_configuration(
            aws_sdk_s3control::types::PublicAccessBlockConfiguration::builder()
                .ignore_public_acls(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(s3.store().account_public_access_block().unwrap().ignore_public_acls);
    let blocked = invoke(context.clone()).await;
    let settings = blocked.bucket_settings.as_ref().unwrap();
    assert!(settings.public_acls_ignored, "{settings:?}");
    assert!(matches!(&settings.account_public_access_block, Check::Set(b) if b.ignore_public_acls));
    assert_eq!(blocked.audit.findings.exposed_objects, 0);
    assert_eq!(blocked.audit.findings.neutralised_objects, 20);

    // Without an account id (no ARN in the context) the account's setting is not checked.
    let unchecked = invoke(Context::default()).await;
    let settings = unchecked.bucket_settings.unwrap();
    assert!(matches!(settings.account_public_access_block, Check::NotChecked { .. }));
    assert_eq!(unchecked.audit.findings.exposed_objects, 20);
}

/// local-s3's S3 Control endpoint is an s3s route: its requests pass the same SigV4 check as
/// every S3 request, so a client with the right key id and a wrong secret changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_account_control_endpoint_checks_the_signature() {
    use acl_audit::s3::client::control_client_for_endpoint;

    let (s3, _client) = common::seeded("signed-control", 1).await;
    let keys = s3.credentials();
    let forged = control_client_for_endpoint(s3.endpoint_url(), &keys.access_key_id, "not-the-secret");
    let block = aws_sdk_s3control::types::PublicAccessBlockConfiguration::builder()
        .ignore_public_acls(true)
        .build();
    let refused = forged
        .put_public_access_block()
        .account_id("111122223333")
        .public_access_block_configuration(block.clone())
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(s3.store().account_public_access_block(), None, "nothing was written");

    let signed = control_client_for_endpoint(s3.endpoint_url(), &keys.access_key_id, &keys.secret_access_key);
    signed
        .put_public_access_block()
        .account_id("111122223333")
        .public_access_block_configuration(block)
        .send()
        .await
        .unwrap();
    let read = signed
        .get_public_access_block()
        .account_id("111122223333")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read.public_access_block_configuration()
            .and_then(|block| block.ignore_public_acls()),
        Some(true)
    );
}
