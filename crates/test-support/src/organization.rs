//! An AWS Organization on moto_server, as the organization sweep's tests need it: the
//! management account and three member accounts, each with an ACLs-disabled bucket (public
//! grants left from before), a bucket of public-read, authenticated-read and private objects,
//! a bucket in eu-west-1 with a public object, a bucket whose Block Public Access ignores public
//! ACLs (a public object, neutralised) and a bucket with a public policy.
//!
//! [`guard`] then turns on moto's IAM checks (`/moto-api/reset-auth`): the sweep runs as an IAM
//! user who may not assume the member role of the last member account, and in every account a
//! `-secret` bucket is denied to it (to the member role in the members, to the user in the
//! management account). moto's STS otherwise assumes any role, and its S3 serves any bucket.

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
    sdk_config_as(moto, "moto-access-key", "moto-secret-key")
}

/// The same with another key pair (the auditor's, once [`guard`] has run).
pub fn sdk_config_as(moto: &MotoServer, access_key_id: &str, secret_access_key: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint_url())
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            Credentials::new(access_key_id, secret_access_key, None, None, "test"),
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
/// `<prefix>-far` in eu-west-1 (one public object), `<prefix>-ignored` (a public object under
/// IgnorePublicAcls: named, not exposed) and `<prefix>-policy` (a public bucket policy, a
/// private object). Returns the exposed (bucket, key) pairs.
async fn arrange(client: &Client, prefix: &str) -> Vec<(String, String)> {
    let ignored = format!("{prefix}-ignored");
    client.create_bucket().bucket(&ignored).send().await.unwrap();
    put(client, &ignored, "public", ObjectCannedAcl::PublicRead).await;
    client
        .put_public_access_block()
        .bucket(&ignored)
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .ignore_public_acls(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let policy = format!("{prefix}-policy");
    client.create_bucket().bucket(&policy).send().await.unwrap();
    put(client, &policy, "private", ObjectCannedAcl::Private).await;
    let public_read = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": format!("arn:aws:s3:::{policy}/*")}]
    });
    client
        .put_bucket_policy()
        .bucket(&policy)
        .policy(public_read.to_string())
        .send()
        .await
        .unwrap();
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
    /// Each account's key pair for moto's S3 before [`guard`]: the management account's, and
    /// each member's through its role.
    keys: Vec<(String, Credentials)>,
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
    let mut keys = vec![(
        management.clone(),
        Credentials::new("moto-access-key", "moto-secret-key", None, None, "test"),
    )];
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
        let member = with_credentials(&s3, credentials.clone());
        for (bucket, key) in arrange(&member, &format!("m{n}")).await {
            expected.insert((account.clone(), bucket, key));
        }
        keys.push((account.clone(), credentials));
        members.push(account);
    }

    Arranged {
        management,
        members,
        exposed: expected,
        keys,
    }
}

/// The auditor's key pair once [`guard`] has turned moto's IAM checks on.
pub struct Guarded {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The member account whose role the auditor may not assume.
    pub locked: String,
}

/// Adds a `<prefix>-secret` bucket with a public object to every account, denied to the
/// sweep; makes the member role (`ROLE`, allowed everything but that bucket) in every member
/// account, and an IAM user `auditor` in the management account allowed everything but that
/// account's secret bucket and the last member's role; then turns moto's IAM checks on. The
/// exposed objects no longer include the locked member's, whose sweep cannot start.
pub async fn guard(moto: &MotoServer, arranged: &mut Arranged) -> Guarded {
    let s3 = client_for_endpoint(moto.endpoint_url(), "moto-access-key", "moto-secret-key");
    let locked = arranged.members.last().cloned().unwrap();
    for (n, (account, credentials)) in arranged.keys.iter().enumerate() {
        let prefix = if n == 0 {
            "mgmt".to_owned()
        } else {
            format!("m{}", n - 1)
        };
        let secret = format!("{prefix}-secret");
        let client = with_credentials(&s3, credentials.clone());
        client.create_bucket().bucket(&secret).send().await.unwrap();
        put(&client, &secret, "public", ObjectCannedAcl::PublicRead).await;
        let deny_secret = serde_json::json!({"Effect": "Deny", "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{secret}"), format!("arn:aws:s3:::{secret}/*")]});
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::Config::from(&sdk_config(moto))
                .to_builder()
                .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                    credentials.clone(),
                ))
                .build(),
        );
        if *account == arranged.management {
            iam.create_user().user_name("auditor").send().await.unwrap();
            let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                deny_secret,
                {"Effect": "Deny", "Action": "sts:AssumeRole",
                 "Resource": format!("arn:aws:iam::{locked}:role/{ROLE}")}
            ]});
            iam.put_user_policy()
                .user_name("auditor")
                .policy_name("audit")
                .policy_document(policy.to_string())
                .send()
                .await
                .unwrap();
        } else {
            iam.create_role()
                .role_name(ROLE)
                .assume_role_policy_document("{}")
                .send()
                .await
                .unwrap();
            let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"}, deny_secret
            ]});
            iam.put_role_policy()
                .role_name(ROLE)
                .policy_name("audit")
                .policy_document(policy.to_string())
                .send()
                .await
                .unwrap();
        }
    }
    let iam = aws_sdk_iam::Client::new(&sdk_config(moto));
    let key = iam.create_access_key().user_name("auditor").send().await.unwrap();
    let key = key.access_key().unwrap();
    arranged.exposed.retain(|(account, _, _)| *account != locked);
    reset_auth(moto);
    Guarded {
        access_key_id: key.access_key_id().to_owned(),
        secret_access_key: key.secret_access_key().to_owned(),
        locked,
    }
}

/// `POST /moto-api/reset-auth` with 0: every request from now on is authenticated and
/// authorised by moto's IAM.
fn reset_auth(moto: &MotoServer) {
    use std::io::{Read, Write};
    let address = moto.endpoint_url().trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let request = format!(
        "POST /moto-api/reset-auth HTTP/1.1\r\nHost: {address}\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nConnection: close\r\n\r\n0"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
