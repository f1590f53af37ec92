//! Reading one small object whole (a manifest, a results file), its error in full.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use bytes::Bytes;

/// The object's body; the error's whole chain (S3's code and message, or what kept S3 from
/// answering) as text for the caller's own error.
pub async fn read_object(client: &Client, bucket: &str, key: &str) -> Result<Bytes, String> {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| DisplayErrorContext(&err).to_string())?;
    Ok(object.body.collect().await.map_err(|err| err.to_string())?.into_bytes())
}
