use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::acl::{error_code, error_message};
use crate::target::BUCKET_NAME;

/// The invocation cannot start: its event or the function's configuration is wrong.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error(
        "no bucket to audit: set the {BUCKET_NAME} environment variable or pass {{\"bucket\": \"NAME\"}} in the event"
    )]
    MissingBucket,
    #[error("invalid bucket name {name:?}: {reason}")]
    InvalidBucketName { name: String, reason: String },
    #[error("invalid configuration: {name}={value:?}: {reason}")]
    InvalidConfig {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// The bucket could not be listed. Failures on single objects are not errors: they are
/// counted in the report.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    #[error("the bucket {bucket:?} does not exist: check {BUCKET_NAME} or the event's \"bucket\"")]
    NoSuchBucket { bucket: String },
    #[error(
        "access denied listing the bucket {bucket:?}: the function's role needs s3:ListBucket on arn:aws:s3:::{bucket}"
    )]
    ListAccessDenied { bucket: String },
    #[error("listing the bucket {bucket:?} failed ({code}): {detail}")]
    ListFailed {
        bucket: String,
        code: String,
        detail: String,
    },
}

impl AuditError {
    pub(crate) fn from_list_error<E, R>(bucket: &str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let bucket = bucket.to_owned();
        match err.code() {
            Some("NoSuchBucket") => AuditError::NoSuchBucket { bucket },
            Some("AccessDenied") => AuditError::ListAccessDenied { bucket },
            _ => AuditError::ListFailed {
                bucket,
                code: error_code(&err),
                detail: error_message(&err),
            },
        }
    }
}
