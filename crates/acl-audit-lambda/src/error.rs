//! What an invocation can fail with, and the `errorType` each failure shows the Lambda console
//! and `Invoke` callers. The advice here names the function's settings (`BUCKET_NAME`, the
//! role); the core's errors name none.

use acl_audit::ListError;
use acl_audit::s3::inventory::InventoryError;
use acl_audit::s3::upload::{Artifact, NotWritten};
use lambda_runtime::Diagnostic;

use crate::config::ConfigError;
use crate::job::RequestError;
use crate::map_run::SummarizeError;
use crate::suppression_file::SuppressionsError;

/// Every way an invocation fails: each module's own error, gathered.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HandlerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("{0}{advice}", advice = list_advice(.0))]
    List(#[from] ListError),
    /// One of the run's files is not where it should be: a scheduled run must not lose its
    /// findings, report, token or parts quietly.
    #[error("{0}{advice}", advice = write_advice(.0))]
    NotWritten(NotWritten),
    /// The S3 Inventory report named as the source cannot be read as one with ACLs.
    #[error("{0} (the role needs s3:GetObject on the inventory's destination)")]
    Inventory(InventoryError),
    /// The state machine's last step could not add its batches up.
    #[error("the run's parts cannot be read back: {0}")]
    MapRun(SummarizeError),
    /// A plan or collect step of a state machine run of parts failed.
    #[error(transparent)]
    Step(#[from] StepError),
    /// An account sweep could not list the account's buckets.
    #[error("{0}")]
    BucketsNotListed(String),
    /// An organization sweep could not list the organization's accounts.
    #[error("{0}")]
    AccountsNotListed(String),
    /// A sweep's part could not assume the member role of its bucket's account.
    #[error("{0}")]
    RoleNotAssumed(String),
    /// `SUPPRESSIONS_URI` cannot be read, or is not a suppression file.
    #[error(transparent)]
    Suppressions(#[from] crate::suppression_file::SuppressionsError),
    /// A panic, caught: a bug, answered as an error with its message, and the process serves
    /// the next event.
    #[error("internal error (a bug; please report it): {0}")]
    Internal(String),
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
}

/// Where the function's owner looks when a write fails.
fn write_advice(err: &NotWritten) -> &'static str {
    match err.what {
        Artifact::Parts => " (the role needs s3:PutObject under the results bucket's parts/)",
        Artifact::SecurityHub => {
            " (the role needs securityhub:BatchImportFindings on the account's default product, and Security Hub enabled in the function's region)"
        }
        Artifact::Findings | Artifact::Report | Artifact::Token | Artifact::Changes => {
            " (FINDINGS_URI names the location; the role needs s3:PutObject there)"
        }
    }
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
            HandlerError::NotWritten(err) => match err.what {
                Artifact::Findings => "FindingsNotWritten",
                Artifact::Report => "ReportNotWritten",
                Artifact::Token => "TokenNotWritten",
                Artifact::Parts => "PartsNotWritten",
                Artifact::Changes => "ChangesNotWritten",
                Artifact::SecurityHub => "FindingsNotImported",
            },
            HandlerError::MapRun(err) => err.error_type(),
            HandlerError::Inventory(_) => "InventoryNotRead",
            HandlerError::Step(StepError::NoProgress { .. }) => "NoProgress",
            HandlerError::Step(StepError::TooManyPasses { .. }) => "TooManyPasses",
            HandlerError::Internal(_) => "InternalError",
            HandlerError::BucketsNotListed(_) => "BucketsNotListed",
            HandlerError::AccountsNotListed(_) => "AccountsNotListed",
            HandlerError::RoleNotAssumed(_) => "RoleNotAssumed",
            HandlerError::Suppressions(SuppressionsError::NotRead { .. }) => "SuppressionsNotRead",
            HandlerError::Suppressions(SuppressionsError::Invalid(_)) => "InvalidSuppressions",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn not_written(what: Artifact) -> HandlerError {
        HandlerError::NotWritten(NotWritten {
            what,
            uri: "s3://findings/x".to_owned(),
            code: "AccessDenied".to_owned(),
            message: "Access Denied".to_owned(),
        })
    }

    #[test]
    fn a_failed_write_says_what_was_not_written() {
        let answers = [Artifact::Findings, Artifact::Report, Artifact::Token, Artifact::Parts]
            .map(|what| Diagnostic::from(not_written(what)));
        let types = answers.each_ref().map(|answer| answer.error_type.as_str());
        assert_eq!(
            types,
            [
                "FindingsNotWritten",
                "ReportNotWritten",
                "TokenNotWritten",
                "PartsNotWritten"
            ]
        );
        assert!(
            answers[2]
                .error_message
                .starts_with("cannot write the resume token s3://findings/x (AccessDenied)"),
            "{}",
            answers[2].error_message
        );
        assert!(answers[2].error_message.contains("FINDINGS_URI"));
        assert!(answers[3].error_message.contains("parts/"));
    }
}
