//! An AWS Organization on moto_server, as the organization sweep's tests need it: the
//! management account and three member accounts, each with an ACLs-disabled bucket (public
//! grants left from before), a bucket of public-read, authenticated-read and private objects,
//! and a bucket in eu-west-1 with a public object.

use std::collections::BTreeSet;

use acl_audit::s3::client::{client_for_endpoint, with_credentials};
use aws_credential_types::Credentials;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, ObjectCannedAcl, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule,
};
use local_s3::moto::MotoServer;

/// The member role the sweep assumes (moto does not check that it exists).
pub const ROLE: &str = "AclAuditMember";

pub fn sdk_config(moto: &MotoServer) -> aws_config::SdkConfig {
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

/// The organization, arranged: its exposed objects as (account, bucket, key).
pub struct Arranged {
    pub management: String,
    pub members: Vec<String>,
    pub exposed: BTreeSet<(String, String, String)>,
}

/// Creates the organization and its accounts' buckets on `moto`.
pub async fn arrange_organization(moto: &MotoServer) -> Arranged {
    let config = sdk_config(moto);
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

    Arranged {
        management,
        members,
        exposed: expected,
    }
}
