//! A run's findings into AWS Security Hub, in the AWS Security Finding Format (ASFF) through
//! `BatchImportFindings` (docs/report.md, "Security Hub"). One Security Hub finding per kind
//! of finding on an object, its `Id` a hash of account, bucket, key, version and kind, so a
//! later run updates it instead of adding another. A finding that takes effect is `ACTIVE`
//! with compliance `FAILED`; one a suppression entry accepts, or that Block Public Access or
//! disabled ACLs neutralise, and one this run resolved (`changes.jsonl`) are `ARCHIVED`.
//!
//! Security Hub takes at most 100 findings a call
//! (<https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchImportFindings.html>);
//! the entries it refuses (`FailedFindings`) are sent again, and those still refused are
//! returned, never dropped.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use aws_sdk_securityhub::error::DisplayErrorContext;
use aws_sdk_securityhub::types::{
    AwsS3ObjectDetails, AwsSecurityFinding, Compliance, ComplianceStatus, FindingProviderFields, Note, Partition,
    RecordState, Resource, ResourceDetails, Severity, SeverityLabel, Workflow, WorkflowStatus,
};
use serde::{Deserialize, Serialize};

use crate::changes::{Change, ChangeLine, ChangesError, LineSource};
use crate::findings::{AnyLine, FindingKind, FindingLine, finding_id};
use crate::model::excerpt;

/// Security Hub's most findings per `BatchImportFindings` call.
pub const MOST_PER_CALL: usize = 100;
/// Calls of the same entries before a refused one is given up and reported.
const ATTEMPTS: u32 = 3;

/// Where the findings go: the account's default product in its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// The importing account: Security Hub takes a product's findings only for its own account,
    /// so a finding of another account's object (an organization's sweep) names that account
    /// in its resource and product fields.
    pub account_id: String,
    pub region: String,
    pub partition: String,
}

impl Product {
    /// `arn:<partition>:securityhub:<region>:<account>:product/<account>/default`.
    pub fn arn(&self) -> String {
        let Product {
            account_id,
            region,
            partition,
        } = self;
        format!("arn:{partition}:securityhub:{region}:{account_id}:product/{account_id}/default")
    }
}

/// What a report says of the findings sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    pub product_arn: String,
    /// Findings imported `ACTIVE`.
    pub active: usize,
    /// Findings imported `ARCHIVED` (suppressed, neutralised, resolved).
    pub archived: usize,
    /// Entries Security Hub still refused after the retries: each with its code and message.
    pub failed: Vec<NotImported>,
}

/// One finding Security Hub refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotImported {
    pub id: String,
    pub code: String,
    pub message: String,
}

/// Why the findings were not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Read(#[from] ChangesError),
    /// A call failed as a whole: the findings sent before it are in `imported`.
    #[error("BatchImportFindings into {product_arn} failed: {message}")]
    Call {
        product_arn: String,
        message: String,
        imported: Imported,
    },
}

/// Sends `findings` (this run's file) and the resolved lines of `changes` (its changes file,
/// when the run was compared) to `product`'s Security Hub.
pub async fn import(
    client: &aws_sdk_securityhub::Client,
    product: &Product,
    findings: &mut LineSource,
    changes: Option<&mut LineSource>,
    now: SystemTime,
) -> Result<Imported, ImportError> {
    let now = DateTime::from(now).fmt(DateTimeFormat::DateTime).unwrap_or_default();
    let mut batch = Batch {
        client,
        product_arn: product.arn(),
        findings: Vec::with_capacity(MOST_PER_CALL),
        imported: Imported {
            product_arn: product.arn(),
            ..Imported::default()
        },
    };
    while let Some(line) = findings.next_line().await? {
        let parsed: AnyLine = crate::ocsf::parse_line(&line).map_err(|err| ChangesError {
            uri: findings.uri(),
            detail: format!("a line is not a findings line: {err}"),
        })?;
        let AnyLine::Finding(line) = parsed else {
            continue;
        };
        for kind in &line.findings {
            let neutralised = !line.effective || line.neutralised.contains(kind);
            let state = match (&line.suppressed, neutralised) {
                (Some(suppressed), _) => State::Suppressed(&suppressed.reason),
                (None, true) => State::Neutralised,
                (None, false) => State::Active,
            };
            let object = Object::of_line(&line);
            batch
                .push(Box::new(finding(product, &object, *kind, state, &now)))
                .await?;
        }
    }
    if let Some(changes) = changes {
        while let Some(line) = changes.next_line().await? {
            let change: ChangeLine = serde_json::from_slice(&line).map_err(|err| ChangesError {
                uri: changes.uri(),
                detail: format!("a line is not a change line: {err}"),
            })?;
            if change.change == Change::Resolved {
                let object = Object {
                    account_id: change.account_id.as_deref(),
                    bucket: &change.bucket,
                    region: None,
                    key: &change.key,
                    version_id: change.version_id.as_deref(),
                    first_seen: Some(&change.first_seen),
                };
                batch
                    .push(Box::new(finding(product, &object, change.kind, State::Resolved, &now)))
                    .await?;
            }
        }
    }
    Box::pin(batch.flush()).await?;
    Ok(batch.imported)
}

/// Where a finding is.
struct Object<'a> {
    account_id: Option<&'a str>,
    bucket: &'a str,
    region: Option<&'a str>,
    key: &'a str,
    version_id: Option<&'a str>,
    first_seen: Option<&'a str>,
}

impl<'a> Object<'a> {
    fn of_line(line: &'a FindingLine) -> Self {
        Object {
            account_id: line.account_id.as_deref(),
            bucket: &line.bucket,
            region: line.region.as_deref(),
            key: &line.key,
            version_id: line.version_id.as_deref(),
            first_seen: line.first_seen.as_deref(),
        }
    }
}

#[derive(Clone, Copy)]
enum State<'a> {
    Active,
    Suppressed(&'a str),
    Neutralised,
    Resolved,
}

/// Severity and title: who may do what.
fn judged(kind: FindingKind) -> (SeverityLabel, &'static str) {
    match kind {
        FindingKind::PublicWriteAcp => (SeverityLabel::Critical, "anyone may rewrite its ACL"),
        FindingKind::AuthenticatedWriteAcp => (SeverityLabel::Critical, "any AWS account may rewrite its ACL"),
        FindingKind::PublicRead => (SeverityLabel::High, "anyone may read it"),
        FindingKind::AuthenticatedRead => (SeverityLabel::High, "any AWS account may read it"),
        FindingKind::PublicReadAcp => (SeverityLabel::Medium, "anyone may read its ACL"),
        FindingKind::AuthenticatedReadAcp => (SeverityLabel::Medium, "any AWS account may read its ACL"),
        FindingKind::OtherAccountGrant => (SeverityLabel::Medium, "its ACL grants another account"),
        FindingKind::ForeignOwner => (SeverityLabel::Low, "another account owns it and controls its ACL"),
    }
}

fn finding(
    product: &Product,
    object: &Object<'_>,
    kind: FindingKind,
    state: State<'_>,
    now: &str,
) -> AwsSecurityFinding {
    let (severity, what) = judged(kind);
    let object_account = object.account_id.unwrap_or(&product.account_id);
    let arn = format!("arn:{}:s3:::{}/{}", product.partition, object.bucket, object.key);
    let first_seen = object
        .first_seen
        .map_or_else(|| now.to_owned(), |day| format!("{day}T00:00:00Z"));
    let (record_state, compliance) = match state {
        State::Active | State::Suppressed(_) => (RecordState::Active, ComplianceStatus::Failed),
        State::Neutralised | State::Resolved => (RecordState::Archived, ComplianceStatus::Passed),
    };
    let record_state = match state {
        State::Suppressed(_) => RecordState::Archived,
        _ => record_state,
    };
    let partition = match product.partition.as_str() {
        "aws-cn" => Partition::AwsCn,
        "aws-us-gov" => Partition::AwsUsGov,
        _ => Partition::Aws,
    };
    let mut details = AwsS3ObjectDetails::builder();
    if let Some(version) = object.version_id {
        details = details.version_id(version);
    }
    let resource = Resource::builder()
        .r#type("AwsS3Object")
        .id(&arn)
        .partition(partition)
        .region(object.region.unwrap_or(&product.region))
        .details(
            ResourceDetails::builder()
                .aws_s3_object(details.build())
                .other("AccountId", object_account)
                .other("Bucket", object.bucket)
                .build(),
        )
        .build();
    let types = if kind.is_exposure() {
        "Effects/Data Exposure"
    } else {
        "Software and Configuration Checks/AWS Security Best Practices"
    };
    let neutralised = matches!(state, State::Neutralised);
    let mut built = AwsSecurityFinding::builder()
        .schema_version("2018-10-08")
        .id(finding_id(
            object.account_id,
            object.bucket,
            object.key,
            object.version_id,
            kind,
        ))
        .product_arn(product.arn())
        .generator_id(format!("acl-audit/{}", kind.name()))
        .aws_account_id(&product.account_id)
        .types(types)
        .first_observed_at(&first_seen)
        .last_observed_at(now)
        .created_at(&first_seen)
        .updated_at(now)
        .severity(Severity::builder().label(severity.clone()).build())
        .finding_provider_fields(
            FindingProviderFields::builder()
                .severity(
                    aws_sdk_securityhub::types::FindingProviderSeverity::builder()
                        .label(severity)
                        .original(kind.name())
                        .build(),
                )
                .types(types)
                .build(),
        )
        .title(format!("S3 object ACL: {what}"))
        .description(excerpt(&format!(
            "s3://{}/{} ({}) in account {object_account}: {what} ({}).",
            object.bucket,
            object.key,
            object.version_id.unwrap_or("current version"),
            kind.name()
        )))
        .resources(resource)
        .compliance(Compliance::builder().status(compliance).build())
        .record_state(record_state)
        .product_fields("acl-audit/Kind", kind.name())
        .product_fields("acl-audit/AccountId", object_account)
        .product_fields(
            "acl-audit/NeutralisedByBlockPublicAccessOrDisabledAcls",
            neutralised.to_string(),
        )
        .product_fields(
            "acl-audit/Resolved",
            matches!(state, State::Resolved | State::Neutralised).to_string(),
        );
    if let State::Suppressed(reason) = state {
        built = built
            .workflow(Workflow::builder().status(WorkflowStatus::Suppressed).build())
            .note(
                Note::builder()
                    .text(excerpt(reason))
                    .updated_by("acl-audit suppression file")
                    .updated_at(now)
                    .build(),
            );
    }
    built.build()
}

/// Findings waiting for a call.
struct Batch<'a> {
    client: &'a aws_sdk_securityhub::Client,
    product_arn: String,
    findings: Vec<AwsSecurityFinding>,
    imported: Imported,
}

impl Batch<'_> {
    async fn push(&mut self, finding: Box<AwsSecurityFinding>) -> Result<(), ImportError> {
        self.findings.push(*finding);
        if self.findings.len() == MOST_PER_CALL {
            Box::pin(self.flush()).await?;
        }
        Ok(())
    }

    /// Sends what waits; the entries Security Hub refuses are sent again, up to [`ATTEMPTS`]
    /// calls in all, and then reported.
    async fn flush(&mut self) -> Result<(), ImportError> {
        let mut pending = std::mem::take(&mut self.findings);
        for attempt in 1..=ATTEMPTS {
            if pending.is_empty() {
                return Ok(());
            }
            let sent = Box::pin(
                self.client
                    .batch_import_findings()
                    .set_findings(Some(pending.clone()))
                    .send(),
            )
            .await
            .map_err(|err| ImportError::Call {
                product_arn: self.product_arn.clone(),
                message: DisplayErrorContext(&err).to_string(),
                imported: self.imported.clone(),
            })?;
            let refused: Vec<NotImported> = sent
                .failed_findings()
                .iter()
                .map(|failed| NotImported {
                    id: failed.id().unwrap_or_default().to_owned(),
                    code: failed.error_code().unwrap_or_default().to_owned(),
                    message: failed.error_message().unwrap_or_default().to_owned(),
                })
                .collect();
            let (accepted, again): (Vec<AwsSecurityFinding>, Vec<AwsSecurityFinding>) = pending
                .into_iter()
                .partition(|finding| !refused.iter().any(|r| Some(r.id.as_str()) == finding.id()));
            for finding in &accepted {
                if finding.record_state() == Some(&RecordState::Active) {
                    self.imported.active += 1;
                } else {
                    self.imported.archived += 1;
                }
            }
            if attempt == ATTEMPTS {
                self.imported.failed.extend(refused);
                return Ok(());
            }
            if !again.is_empty() {
                tracing::warn!(
                    refused = again.len(),
                    attempt,
                    "Security Hub refused findings: sending them again"
                );
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            pending = again;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_tell_kinds_and_versions_apart() {
        let id = |version, kind| finding_id(Some("111122223333"), "b", "k", version, kind);
        assert_eq!(id(None, FindingKind::PublicRead), id(None, FindingKind::PublicRead));
        assert_ne!(id(None, FindingKind::PublicRead), id(None, FindingKind::PublicReadAcp));
        assert_ne!(
            id(None, FindingKind::PublicRead),
            id(Some("v1"), FindingKind::PublicRead)
        );
        assert!(
            id(None, FindingKind::PublicRead).len() < 512,
            "Security Hub's limit on Id"
        );
    }

    #[test]
    fn the_product_is_the_account_s_default() {
        let product = Product {
            account_id: "111122223333".to_owned(),
            region: "eu-west-1".to_owned(),
            partition: "aws".to_owned(),
        };
        assert_eq!(
            product.arn(),
            "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default"
        );
    }
}
