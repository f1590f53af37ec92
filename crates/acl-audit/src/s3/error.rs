//! S3's errors in a caller's terms: a code and S3's own message for one object, a typed error
//! for a bucket that cannot be listed. The wording names no setting of any one caller: the
//! Lambda adapter and the command-line tools add their own advice.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;

/// The bucket could not be listed. Failures on single objects are not errors: they are
/// counted in the report.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ListError {
    #[error("the bucket {bucket:?} does not exist")]
    NoSuchBucket { bucket: String },
    #[error("access denied listing the bucket {bucket:?}: the caller needs {action} on arn:aws:s3:::{bucket}")]
    AccessDenied {
        bucket: String,
        /// The IAM action the listing needs: `s3:ListBucket`, or `s3:ListBucketVersions` for
        /// a listing of versions.
        action: &'static str,
    },
    /// S3 redirected the request: the bucket is in another region than the client's.
    #[error("the bucket {bucket:?} is in region {}: address it there", region.as_deref().unwrap_or("(S3 did not say which)"))]
    WrongRegion { bucket: String, region: Option<String> },
    #[error("listing the bucket {bucket:?} failed ({code}): {detail}")]
    Failed {
        bucket: String,
        code: String,
        detail: String,
    },
}

impl ListError {
    /// `action`: the IAM action the request needed, named when access is denied.
    pub(crate) fn from_sdk<E>(bucket: &str, action: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let bucket = bucket.to_owned();
        match err.code() {
            Some("NoSuchBucket") => ListError::NoSuchBucket { bucket },
            Some("AccessDenied") => ListError::AccessDenied { bucket, action },
            Some("PermanentRedirect" | "AuthorizationHeaderMalformed") => ListError::WrongRegion {
                region: err
                    .raw_response()
                    .and_then(|response| response.headers().get("x-amz-bucket-region"))
                    .map(str::to_owned),
                bucket,
            },
            _ => ListError::Failed {
                bucket,
                code: error_code(&err),
                detail: error_message(&err),
            },
        }
    }

    pub fn bucket(&self) -> &str {
        match self {
            ListError::NoSuchBucket { bucket }
            | ListError::AccessDenied { bucket, .. }
            | ListError::WrongRegion { bucket, .. }
            | ListError::Failed { bucket, .. } => bucket,
        }
    }
}

/// S3's own words when it answered (`NoSuchKey: The specified key does not exist.`), else
/// the whole error chain: "dispatch failure" alone tells a user nothing.
pub fn error_message<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => format!("{code}: (S3 sent no message)"),
        (None, _) => DisplayErrorContext(err).to_string(),
    }
}

/// S3's error code when S3 answered, else what kind of failure kept it from answering.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> String {
    if let Some(code) = err.code() {
        return code.to_owned();
    }
    match err {
        SdkError::TimeoutError(_) => "Timeout",
        SdkError::DispatchFailure(_) => "DispatchFailure",
        SdkError::ResponseError(_) => "ResponseError",
        SdkError::ConstructionFailure(_) => "ConstructionFailure",
        _ => "Unknown",
    }
    .to_owned()
}
