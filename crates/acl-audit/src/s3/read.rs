//! Reading one small object whole (a manifest, a results file, a stored token), its error in
//! full, and never more than [`MOST_READ_BYTES`]: what an object holds is not the reader's to
//! choose, and a function of 128 MB must not be made to hold a 5 GB one.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use bytes::{Bytes, BytesMut};

/// The most an object read whole may hold: far above a manifest, a stored token or a Distributed
/// Map's result file (each child's output is at most 256 KiB), and below a small function's memory.
pub const MOST_READ_BYTES: u64 = 64 << 20;

/// The object's body; the error's whole chain (S3's code and message, or what kept S3 from
/// answering) as text for the caller's own error. An object over [`MOST_READ_BYTES`] is an
/// error naming its size and the cap, whether S3 says its length or the body runs past it.
pub async fn read_object(client: &Client, bucket: &str, key: &str) -> Result<Bytes, String> {
    read_object_if_any(client, bucket, key)
        .await?
        .ok_or_else(|| format!("s3://{bucket}/{key} does not exist (NoSuchKey)"))
}

/// The same, `None` when S3 says the key does not exist (NoSuchKey): for what a run may not
/// have written, such as a failed part's report.
pub async fn read_object_if_any(client: &Client, bucket: &str, key: &str) -> Result<Option<Bytes>, String> {
    let too_large = |size: u64| {
        format!("s3://{bucket}/{key} holds {size} bytes or more, over the {MOST_READ_BYTES} bytes read whole")
    };
    let mut object = match Box::pin(client.get_object().bucket(bucket).key(key).send()).await {
        Ok(object) => object,
        Err(err) if err.as_service_error().is_some_and(|err| err.is_no_such_key()) => return Ok(None),
        Err(err) => return Err(DisplayErrorContext(&err).to_string()),
    };
    let length = object.content_length().and_then(|n| u64::try_from(n).ok());
    if let Some(length) = length.filter(|length| *length > MOST_READ_BYTES) {
        return Err(too_large(length));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = object.body.try_next().await.map_err(|err| err.to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > MOST_READ_BYTES {
            return Err(too_large(body.len() as u64));
        }
    }
    Ok(Some(body.freeze()))
}
