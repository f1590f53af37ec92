//! Writing one object of any size in bounded memory: bytes are buffered up to a part and sent
//! as a multipart upload part by part; an object that never fills a part is one PutObject.
//! A failed upload is aborted, so no part is left behind to be billed.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::model::S3Location;
use crate::s3::error::{error_code, error_message};

/// S3's smallest part but for the last one: the least memory a multipart upload can use.
pub const PART_SIZE: usize = 5 * 1024 * 1024;
/// Past this, a buffer that must grow is given a whole part's room at once ([`PART_ROOM`]): a
/// part is then one allocation rather than a series of doublings to 8 MiB, each copying the
/// last and leaving the allocator a freed block to keep (docs/benchmark.md, "Findings at
/// scale").
const SMALL: usize = 64 * 1024;
/// A part and the write that fills it.
const PART_ROOM: usize = PART_SIZE + SMALL;

/// An object that could not be written, in S3's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write {uri} ({code}): {message}")]
pub struct UploadError {
    pub uri: String,
    pub code: String,
    pub message: String,
}

impl UploadError {
    /// The same, saying which of a run's files it was.
    pub fn of(self, what: Artifact) -> NotWritten {
        NotWritten {
            what,
            uri: self.uri,
            code: self.code,
            message: self.message,
        }
    }
}

/// What a run writes: each one's failure is an error of the run, never a shrug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    /// The findings file (JSON Lines).
    Findings,
    /// The report beside it.
    Report,
    /// The resume token stored for the next run of the target.
    Token,
    /// A state machine pass's parts file.
    Parts,
    /// What changed since the last completed run (`changes.jsonl`), or the pointer to this run
    /// that the next one compares with.
    Changes,
    /// The findings sent to AWS Security Hub (`BatchImportFindings`); its "uri" is the
    /// product's ARN.
    SecurityHub,
}

impl Artifact {
    pub fn name(self) -> &'static str {
        match self {
            Artifact::Findings => "findings file",
            Artifact::Report => "report",
            Artifact::Token => "resume token",
            Artifact::Parts => "parts file",
            Artifact::Changes => "changes file",
            Artifact::SecurityHub => "Security Hub findings",
        }
    }
}

/// One of a run's files not written: which, where, and S3's (or the file system's) words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write the {} {uri} ({code}): {message}", what.name())]
pub struct NotWritten {
    pub what: Artifact,
    pub uri: String,
    pub code: String,
    pub message: String,
}

/// One object being written: `write` as often as needed, then `finish` (or `abort`).
pub struct StreamingUpload {
    client: Client,
    bucket: String,
    key: String,
    content_type: &'static str,
    buffer: Vec<u8>,
    /// Set once the first part is sent.
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    bytes_written: usize,
}

impl StreamingUpload {
    pub fn new(client: &Client, bucket: &str, key: &str, content_type: &'static str) -> Self {
        StreamingUpload {
            client: client.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            content_type,
            buffer: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            bytes_written: 0,
        }
    }

    pub fn uri(&self) -> String {
        S3Location {
            bucket: self.bucket.clone(),
            prefix: self.key.clone(),
        }
        .to_string()
    }

    /// Appends `bytes`, sending a part whenever the buffer holds one.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), UploadError> {
        let needed = self.buffer.len() + bytes.len();
        if needed > self.buffer.capacity() && needed > SMALL {
            self.buffer.reserve_exact(PART_ROOM.max(needed) - self.buffer.len());
        }
        self.buffer.extend_from_slice(bytes);
        self.bytes_written += bytes.len();
        if self.buffer.len() >= PART_SIZE {
            // Boxed, as below: the SDK's request futures are kilobytes, and a writer that
            // awaits one inline carries them in every caller's future.
            Box::pin(self.send_part()).await?;
        }
        Ok(())
    }

    pub fn bytes_written(&self) -> usize {
        self.bytes_written
    }

    /// Sends what is left and makes the object visible. On an error the upload is aborted.
    pub async fn finish(mut self) -> Result<(), UploadError> {
        let result = Box::pin(self.complete()).await;
        if result.is_err() {
            self.abort().await;
        }
        result
    }

    async fn complete(&mut self) -> Result<(), UploadError> {
        if self.upload_id.is_none() {
            let body = std::mem::take(&mut self.buffer);
            let put = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(self.content_type)
                .body(ByteStream::from(body))
                .send()
                .await;
            return put.map(drop).map_err(|err| self.error(&err));
        }
        if !self.buffer.is_empty() {
            self.send_part().await?;
        }
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(std::mem::take(&mut self.parts)))
            .build();
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .set_upload_id(self.upload_id.clone())
            .multipart_upload(completed)
            .send()
            .await;
        done.map(drop).map_err(|err| self.error(&err))?;
        self.upload_id = None;
        Ok(())
    }

    /// Gives up: a multipart upload under way is aborted (best effort: an abort that fails
    /// leaves the parts to the bucket's lifecycle rule for incomplete uploads).
    pub async fn abort(&mut self) {
        if let Some(upload_id) = self.upload_id.take() {
            let aborted = Box::pin(
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .upload_id(upload_id)
                    .send(),
            )
            .await;
            if let Err(err) = aborted {
                tracing::warn!(uri = %self.uri(), error = %self.error(&err), "cannot abort the multipart upload");
            }
        }
        self.buffer = Vec::new();
    }

    async fn send_part(&mut self) -> Result<(), UploadError> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let created = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .content_type(self.content_type)
                    .send()
                    .await
                    .map_err(|err| self.error(&err))?;
                let id = created.upload_id().unwrap_or_default().to_owned();
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let body = std::mem::take(&mut self.buffer);
        let sent = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await;
        match sent {
            Ok(output) => {
                self.parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(output.e_tag().map(str::to_owned))
                        .build(),
                );
                Ok(())
            }
            Err(err) => {
                let error = self.error(&err);
                self.abort().await;
                Err(error)
            }
        }
    }

    fn error<E, R>(&self, err: &aws_sdk_s3::error::SdkError<E, R>) -> UploadError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        UploadError {
            uri: self.uri(),
            code: error_code(err),
            message: error_message(err),
        }
    }
}

/// Writes `body` as one object.
pub async fn put_object(
    client: &Client,
    location: &S3Location,
    content_type: &'static str,
    body: Vec<u8>,
) -> Result<(), UploadError> {
    let mut upload = StreamingUpload::new(client, &location.bucket, &location.prefix, content_type);
    upload.write(&body).await?;
    upload.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_part_is_filled_in_one_allocation_of_its_room() {
        // Never contacted: the object stays under a part.
        let client = crate::s3::client::client_for_endpoint("http://127.0.0.1:9", "key", "secret");
        let mut upload = StreamingUpload::new(&client, "bucket", "findings.jsonl", "application/x-ndjson");
        let line = [b'x'; 1000];
        upload.write(&line).await.unwrap();
        assert!(upload.buffer.capacity() <= SMALL, "a small object stays small");
        let mut grew_to_room = false;
        while upload.buffer.len() + line.len() < PART_SIZE {
            upload.write(&line).await.unwrap();
            // Doubling stops short of twice SMALL; the next growth is the part's room.
            if upload.buffer.len() > 2 * SMALL {
                assert_eq!(upload.buffer.capacity(), PART_ROOM, "grown once, to a part's room");
                grew_to_room = true;
            }
        }
        assert!(grew_to_room);
        assert_eq!(upload.bytes_written(), upload.buffer.len());
    }
}
