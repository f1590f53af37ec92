//! An organization's sweep against moto_server, which serves Organizations, STS AssumeRole
//! across accounts and S3 per account: the management account and three member accounts, each
//! with buckets mixing ACLs disabled, public-read, authenticated-read and cross-account objects
//! and a bucket in another region. One sweep names exactly the exposed objects with their
//! account, bucket and region, every bucket in the report, and no GetObjectAcl on an
//! ACLs-disabled bucket (its objects' public grants would be named otherwise).

use std::collections::BTreeSet;

use acl_audit::findings::FindingLine;
use acl_audit::organization::{AccountState, OrganizationClients, OrganizationOptions, sweep_organization};
use acl_audit::s3::client::{client_for_endpoint, with_credentials};
use acl_audit::sweep::BucketState;
use acl_audit::{FindingsOutput, Strategy};
use aws_credential_types::Credentials;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, ObjectCannedAcl, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule,
};
use local_s3::moto::MotoServer;

const ROLE: &str = "AclAuditMember";

fn sdk_config(moto: &MotoServer) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint_url())
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            Credentials::new("moto-access-key", "moto-secret-key", None, None, "test"),
        ))
        .build()
}

async fn put(client: &Client, bucket: &str, key: &str, acl: ObjectCannedAcl) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .acl(acl)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
}

/// An account's buckets: `<prefix>-disabled` (public grants, then ACLs disabled),
/// `<prefix>-open` (public-read and authenticated-read objects and a private one),
/// `<prefix>-far` in eu-west-1 (one public object). Returns the exposed (bucket, key) pairs.
async fn arrange(client: &Client, prefix: &str) -> Vec<(String, String)> {
    let disabled = format!("{prefix}-disabled");
    client.create_bucket().bucket(&disabled).send().await.unwrap();
    put(client, &disabled, "k", ObjectCannedAcl::PublicRead).await;
    let enforced = OwnershipControls::builder()
        .rules(
            OwnershipControlsRule::builder()
                .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    client
        .put_bucket_ownership_controls()
        .bucket(&disabled)
        .ownership_controls(enforced)
        .send()
        .await
        .unwrap();
    let open = format!("{prefix}-open");
    client.create_bucket().bucket(&open).send().await.unwrap();
    put(client, &open, "public", ObjectCannedAcl::PublicRead).await;
    put(client, &open, "authenticated", ObjectCannedAcl::AuthenticatedRead).await;
    put(client, &open, "private", ObjectCannedAcl::Private).await;
    let far = format!("{prefix}-far");
    client
        .create_bucket()
        .bucket(&far)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let eu = Client::from_conf(
        client
            .config()
            .to_builder()
            .region(aws_config::Region::new("eu-west-1"))
            .build(),
    );
    put(&eu, &far, "public", ObjectCannedAcl::PublicRead).await;
    [(open.clone(), "public"), (open, "authenticated"), (far, "public")]
        .map(|(b, k)| (b, k.to_owned()))
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_sweep_names_every_exposed_object_with_its_account() {
    let Some(moto) = MotoServer::start() else { return };
    let config = sdk_config(&moto);
    let organizations = aws_sdk_organizations::Client::new(&config);
    let sts = aws_sdk_sts::Client::new(&config);
    let s3 = client_for_endpoint(moto.endpoint_url(), "moto-access-key", "moto-secret-key");
    organizations
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let management = sts
        .get_caller_identity()
        .send()
        .await
        .unwrap()
        .account()
        .unwrap()
        .to_owned();
    let mut expected: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (bucket, key) in arrange(&s3, "mgmt").await {
        expected.insert((management.clone(), bucket, key));
    }
    let mut members = Vec::new();
    for n in 0..3 {
        let created = organizations
            .create_account()
            .account_name(format!("member-{n}"))
            .email(format!("member-{n}@example.com"))
            .send()
            .await
            .unwrap();
        let account = created
            .create_account_status()
            .unwrap()
            .account_id()
            .unwrap()
            .to_owned();
        let assumed = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/{ROLE}"))
            .role_session_name("arrange")
            .send()
            .await
            .unwrap();
        let c = assumed.credentials().unwrap();
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "test",
        );
        let member = with_credentials(&s3, credentials);
        for (bucket, key) in arrange(&member, &format!("m{n}")).await {
            expected.insert((account.clone(), bucket, key));
        }
        members.push(account);
    }

    let path = std::env::temp_dir().join(format!("organization-{}.jsonl", std::process::id()));
    let options = OrganizationOptions {
        role_name: ROLE.to_owned(),
        findings: Some(FindingsOutput::file(&path).unwrap()),
        ..OrganizationOptions::default()
    };
    let clients = OrganizationClients {
        s3: &s3,
        control: None,
        organizations: &organizations,
        sts: &sts,
    };
    let report = sweep_organization(clients, Strategy::JoinAll { max_in_flight: None }, options)
        .await
        .unwrap();
    assert_eq!(report.accounts.len(), 4, "{report:#?}");
    assert!(
        report.accounts.iter().all(|a| a.state == AccountState::Swept),
        "{report:#?}"
    );
    for account in &report.accounts {
        let swept = account.report.as_ref().unwrap();
        assert_eq!(swept.buckets.len(), 3, "{}: {:?}", account.account_id, swept.buckets);
        let disabled = swept.buckets.iter().find(|b| b.bucket.ends_with("-disabled")).unwrap();
        assert_eq!(disabled.state, BucketState::AclsDisabled);
        assert_eq!(disabled.acls_fetched, 0);
    }
    let lines = std::fs::read_to_string(&path).unwrap();
    let named: BTreeSet<(String, String, String)> = lines
        .lines()
        .map(|line| serde_json::from_str::<FindingLine>(line).unwrap())
        .map(|line| (line.account_id.unwrap_or_default(), line.bucket, line.key))
        .collect();
    assert_eq!(named, expected);
    for line in lines.lines() {
        let line: FindingLine = serde_json::from_str(line).unwrap();
        let region = if line.bucket.ends_with("-far") {
            "eu-west-1"
        } else {
            "us-east-1"
        };
        assert_eq!(line.region.as_deref(), Some(region), "{line:?}");
    }
}
