//! A sweep against an S3 endpoint the benchmark does not start: check the bucket before any
//! child runs, and seed it when asked.

use acl_audit::s3::client::client_from_env_at;
use acl_audit::s3::listing::list_keys;
use acl_audit::{ListError, Target};
use anyhow::{Context as _, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use futures::StreamExt as _;

/// Puts under way at once while seeding.
const SEED_CONCURRENCY: usize = 32;

/// Seeds `bucket` with `seed` objects when given, then counts its objects: a missing or
/// unreadable bucket fails here, with S3's reason, rather than in every child.
pub async fn prepare(url: &str, bucket: &str, seed: Option<usize>) -> anyhow::Result<usize> {
    let client = client_from_env_at(Some(url)).await?;
    if let Some(objects) = seed {
        create_bucket(&client, bucket).await?;
        put_objects(&client, bucket, objects).await?;
    }
    let listing = list_keys(&client, &Target::bucket(bucket))
        .await
        .map_err(|err| match err {
            ListError::NoSuchBucket { .. } => {
                anyhow::anyhow!("{err} at {url} (add --seed to create it and fill it)")
            }
            err => anyhow::Error::new(err).context(format!("cannot list {bucket:?} at {url}")),
        })?;
    if listing.keys.is_empty() {
        bail!("{bucket:?} at {url} holds no object to fetch an ACL of (add --seed to fill it)");
    }
    Ok(listing.keys.len())
}

async fn create_bucket(client: &Client, bucket: &str) -> anyhow::Result<()> {
    // us-east-1 takes no location constraint; every other region needs its own.
    let region = client.config().region().map(|r| r.as_ref().to_owned());
    let configuration = region.filter(|r| r != "us-east-1").map(|region| {
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(region.as_str()))
            .build()
    });
    let created = client
        .create_bucket()
        .bucket(bucket)
        .set_create_bucket_configuration(configuration)
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(err) if err.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
        Err(err) => Err(anyhow::anyhow!(
            "cannot create the bucket {bucket:?}: {}",
            DisplayErrorContext(&err)
        )),
    }
}

async fn put_objects(client: &Client, bucket: &str, objects: usize) -> anyhow::Result<()> {
    let puts = futures::stream::iter(0..objects)
        .map(|index| {
            let key = local_s3::seed_key(index);
            async move {
                client
                    .put_object()
                    .bucket(bucket)
                    .key(&key)
                    .body(ByteStream::from_static(b"acl-bench seed object\n"))
                    .send()
                    .await
                    .map_err(|err| anyhow::anyhow!("cannot put {key:?}: {}", DisplayErrorContext(&err)))
            }
        })
        .buffer_unordered(SEED_CONCURRENCY);
    futures::pin_mut!(puts);
    while let Some(put) = puts.next().await {
        put.with_context(|| format!("seeding {bucket:?}"))?;
    }
    Ok(())
}
