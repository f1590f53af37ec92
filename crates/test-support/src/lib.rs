//! What the workspace's tests share: a fresh `local-s3` per test and an SDK client pointed at
//! it, configured (retries, timeouts, path-style) as the functions configure theirs; the
//! fixtures; and [`layers::check`], which each library crate's `tests/layers.rs` runs.

pub mod docs;
pub mod hostile;
pub mod layers;
pub mod organization;

use std::num::NonZeroUsize;

/// `$name` (a `format!` string) under Cargo's directory for an integration test's files
/// (`target/tmp`, which `cargo clean` removes), after this process's id: tests leave nothing in
/// the system's temporary directory. A macro because only the test crate itself knows
/// `CARGO_TARGET_TMPDIR`.
#[macro_export]
macro_rules! scratch {
    ($($name:tt)+) => {
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{}-{}", std::process::id(), format!($($name)+)))
    };
}

use acl_audit::Strategy;
use acl_audit::s3::client::client_for_endpoint;
use acl_audit::strategy::InFlight;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryPartition;
use local_s3::{Faults, LocalS3, Options};

pub async fn endpoint() -> (LocalS3, Client) {
    let s3 = LocalS3::start().await.expect("a loopback port is free");
    let client = client_for(&s3);
    (s3, client)
}

/// The functions' client for `s3`, with a retry quota of its own. The SDK shares one quota
/// among all clients of a process (a Lambda container has one client); tests run side by
/// side, and one draining the quota on purpose must not refuse another's retries.
pub fn client_for(s3: &LocalS3) -> Client {
    let keys = s3.credentials();
    let client = client_for_endpoint(s3.endpoint_url(), &keys.access_key_id, &keys.secret_access_key);
    let own_quota = RetryPartition::new(s3.endpoint_url().to_owned());
    Client::from_conf(client.config().to_builder().retry_partition(own_quota).build())
}

/// An endpoint answering with `faults` (seeded), holding `bucket` with `objects` objects.
pub async fn faulty(bucket: &str, objects: usize, faults: Faults) -> (LocalS3, Client) {
    let s3 = LocalS3::start_with(Options {
        faults,
        ..Options::default()
    })
    .await
    .expect("a loopback port is free");
    local_s3::seed_bucket(s3.store(), bucket, objects).expect("a fresh store accepts the seed");
    let client = client_for(&s3);
    (s3, client)
}

/// `objects` objects in `bucket` whose GetObjectAcl each answers 300 ms late, and an empty
/// `findings` bucket: a run with a short deadline stops part-way and must store or hand on its
/// place.
pub async fn slow_acls_and_findings_bucket(bucket: &str, objects: usize) -> (LocalS3, Client) {
    let faults = Faults {
        rules: vec!["get-object-acl:slow=1".parse().expect("a valid fault rule")],
        slow_response: std::time::Duration::from_millis(300),
        ..Faults::default()
    };
    let (s3, client) = faulty(bucket, objects, faults).await;
    s3.store().create_bucket("findings").expect("a fresh store");
    (s3, client)
}

/// Each scheduler, and join-all both capped and not.
pub fn all_strategies() -> [Strategy; 4] {
    [
        Strategy::Sequential,
        Strategy::SpawnBlocking {
            pool_size: NonZeroUsize::new(6).unwrap(),
        },
        Strategy::JoinAll {
            in_flight: InFlight::adaptive(NonZeroUsize::new(8).unwrap()),
        },
        Strategy::JoinAll {
            in_flight: InFlight::All,
        },
    ]
}

/// An endpoint holding `bucket` seeded with `objects` objects.
pub async fn seeded(bucket: &str, objects: usize) -> (LocalS3, Client) {
    let (s3, client) = endpoint().await;
    local_s3::seed_bucket(s3.store(), bucket, objects).expect("a fresh store accepts the seed");
    (s3, client)
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/../../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {path}: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path} is not JSON: {err}"))
}

/// What [`arrange_versioned`] wrote, by version id.
pub struct Versioned {
    /// `doc`'s first version: public-read, and noncurrent.
    pub public_version: String,
    /// Versions written, delete markers apart.
    pub versions: usize,
    pub delete_markers: usize,
}

/// A versioned bucket, arranged through S3's API (so that local-s3 and moto alike can hold
/// it), whose only public ACL is on a noncurrent version: `doc` written public-read and then
/// private; `notes` written and deleted (a delete marker on top); `plain` private.
pub async fn arrange_versioned(client: &Client, bucket: &str) -> Versioned {
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::ObjectCannedAcl;

    client.create_bucket().bucket(bucket).send().await.unwrap();
    enable_versioning(client, bucket).await;
    let put = |key: &'static str, acl: ObjectCannedAcl| {
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .acl(acl)
            .body(ByteStream::from_static(b"x"))
            .send()
    };
    let public = put("doc", ObjectCannedAcl::PublicRead).await.unwrap();
    put("doc", ObjectCannedAcl::Private).await.unwrap();
    put("notes", ObjectCannedAcl::Private).await.unwrap();
    client.delete_object().bucket(bucket).key("notes").send().await.unwrap();
    put("plain", ObjectCannedAcl::Private).await.unwrap();
    Versioned {
        public_version: public
            .version_id()
            .expect("a versioned bucket names each version")
            .to_owned(),
        versions: 4,
        delete_markers: 1,
    }
}

/// Turns versioning on for `bucket`, through S3's API.
pub async fn enable_versioning(client: &Client, bucket: &str) {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
}
