//! What an invocation can fail with, and the `errorType` each failure shows the Lambda console
//! and `Invoke` callers. The advice here names the function's settings (`BUCKET_NAME`, the
//! role); the core's errors name none.

use acl_audit::ListError;
use acl_audit::audit::FindingsNotWritten;
use acl_audit::s3::inventory::InventoryError;
use lambda_runtime::Diagnostic;

use crate::config::ConfigError;
use crate::job::RequestError;
use crate::map_run::SummarizeError;

/// Every way an invocation fails: each module's own error, gathered.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HandlerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("{0}{advice}", advice = list_advice(.0))]
    List(#[from] ListError),
    /// The audit ran, but its findings (or report) are not in `FINDINGS_URI`: a scheduled run
    /// must not lose them quietly.
    #[error("{0} (FINDINGS_URI names the location; the role needs s3:PutObject there)")]
    FindingsNotWritten(FindingsNotWritten),
    /// The S3 Inventory report named as the source cannot be read as one with ACLs.
    #[error("{0} (the role needs s3:GetObject on the inventory's destination)")]
    Inventory(InventoryError),
    /// The state machine's last step could not add its batches up.
    #[error("the map run's results cannot be added up: {0}")]
    MapRun(SummarizeError),
    /// A plan or collect step of a state machine run of parts failed.
    #[error(transparent)]
    Step(#[from] StepError),
}

/// Why a plan or collect step (`crate::steps`) failed, beyond the errors it shares with a run.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StepError {
    /// Every part of a pass stopped at its deadline having taken on no object: the next pass
    /// would do the same.
    #[error(
        "pass {pass}: every part stopped at its deadline before taking on an object; raise the function's timeout or lower DEADLINE_MARGIN_MS"
    )]
    NoProgress { pass: usize },
    #[error(
        "the run has taken {passes} passes and parts are still left: its state machine is stopped as going nowhere"
    )]
    TooManyPasses { passes: usize },
    /// The parts file the Map reads could not be written.
    #[error(
        "cannot write the parts file {uri}: {code}: {message} (the role needs s3:PutObject under the results bucket's parts/)"
    )]
    PartsNotWritten { uri: String, code: String, message: String },
}

/// What the function's owner can change about a listing that failed.
fn list_advice(err: &ListError) -> &'static str {
    match err {
        ListError::NoSuchBucket { .. } => ": check BUCKET_NAME or the event's \"bucket\"",
        ListError::AccessDenied { .. } => " (the caller is the function's role)",
        ListError::WrongRegion { .. } => {
            ": the function audits a bucket in its own region; one in another region needs s3:ListBucket (HeadBucket names the region)"
        }
        ListError::Failed { .. } => "",
    }
}

impl HandlerError {
    /// The `errorType` the Lambda console and `Invoke` callers see.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::Request(RequestError::InvalidEvent(_)) => "InvalidEvent",
            HandlerError::Request(RequestError::MissingBucket) => "MissingBucketName",
            HandlerError::Request(RequestError::InvalidBucketName(_)) => "InvalidBucketName",
            HandlerError::Config(_) => "InvalidConfiguration",
            HandlerError::List(ListError::NoSuchBucket { .. }) => "NoSuchBucket",
            HandlerError::List(ListError::AccessDenied { .. }) => "AccessDenied",
            HandlerError::List(ListError::WrongRegion { .. }) => "WrongRegion",
            HandlerError::List(ListError::Failed { .. }) => "ListObjectsFailed",
            HandlerError::FindingsNotWritten(_) => "FindingsNotWritten",
            HandlerError::MapRun(err) => err.error_type(),
            HandlerError::Inventory(_) => "InventoryNotRead",
            HandlerError::Step(StepError::NoProgress { .. }) => "NoProgress",
            HandlerError::Step(StepError::TooManyPasses { .. }) => "TooManyPasses",
            HandlerError::Step(StepError::PartsNotWritten { .. }) => "PartsNotWritten",
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(err: HandlerError) -> Self {
        Diagnostic {
            error_type: err.error_type().to_owned(),
            error_message: err.to_string(),
        }
    }
}
