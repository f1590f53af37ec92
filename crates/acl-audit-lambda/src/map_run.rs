//! A Distributed Map run's results as its ResultWriter leaves them in S3: `manifest.json`
//! naming the result files, each file a JSON array of child executions whose `Output` is a
//! batch's report (SUCCEEDED) or whose `Error` and `Cause` say why it has none (FAILED).
//! Adding them up is the state machine's last step (the handler, given the Map's output) and
//! `acl-map summarize`'s whole job.

use acl_audit::findings::{FailureLine, FindingsWritten, Place};
use acl_audit::model::S3Location;
use acl_audit::report::Truncation;
use acl_audit::s3::read::read_object;
use acl_audit::s3::upload::StreamingUpload;
use acl_audit::s3::upload::{Artifact, NotWritten};
use acl_audit::{AuditReport, ObjectFailure, ObjectRef, StrategyKind};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use serde::{Deserialize, Serialize};

use crate::event::{PartEvent, ResultWriterDetails};

pub const MANIFEST: &str = "manifest.json";

/// A ResultWriter's `manifest.json`: the files it wrote, by the status of their executions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Manifest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_run_arn: Option<String>,
    pub result_files: ResultFiles,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub struct ResultFiles {
    #[serde(default)]
    pub succeeded: Vec<ResultFile>,
    #[serde(default)]
    pub failed: Vec<ResultFile>,
    #[serde(default)]
    pub pending: Vec<ResultFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResultFile {
    pub key: String,
}

/// One child execution, as a result file lists it; fields this tool does not read are left out.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChildExecution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    pub name: Option<String>,
    pub status: String,
    /// The part, as a JSON string: a [`PartEvent`].
    pub input: Option<String>,
    /// The batch's report, as a JSON string, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// The run's batches added up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub manifest: String,
    pub batches: BatchCounts,
    /// The sum of the batch reports; the keys of failed batches are failures (with the child
    /// execution's error as their code), those of unfinished ones are in `resume.keys`.
    pub report: AuditReport,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchCounts {
    pub succeeded: usize,
    pub failed: usize,
    pub pending: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummarizeError {
    #[error(
        "no {MANIFEST} under {0}: give the folder a run's ResultWriter wrote (results/<map run id>/), or the run is still going"
    )]
    NoManifest(S3Location),
    #[error("{count} runs' manifests under {location}: give one run's folder, e.g. s3://{bucket}/{first}", bucket = location.bucket, first = first.trim_end_matches(MANIFEST))]
    SeveralManifests {
        location: S3Location,
        count: usize,
        first: String,
    },
    #[error("cannot read s3://{bucket}/{key}: {detail}")]
    Read {
        bucket: String,
        key: String,
        detail: String,
    },
    #[error("s3://{bucket}/{key} is not what a ResultWriter writes: {reason}")]
    Malformed {
        bucket: String,
        key: String,
        reason: String,
    },
    /// The run's findings file, which gathers its batches' files, could not be written.
    #[error(transparent)]
    FindingsNotWritten(#[from] NotWritten),
}

impl SummarizeError {
    /// The `errorType` the state machine's execution history shows.
    pub fn error_type(&self) -> &'static str {
        match self {
            SummarizeError::NoManifest(_) | SummarizeError::SeveralManifests { .. } => "NoMapRunManifest",
            SummarizeError::Read { .. } => "MapRunResultsNotRead",
            SummarizeError::Malformed { .. } => "MalformedMapRunResults",
            SummarizeError::FindingsNotWritten(_) => "FindingsNotWritten",
        }
    }
}

/// Finds the run's manifest under `location`, reads every result file it names and adds the
/// batches up.
pub async fn summarize(client: &Client, location: &S3Location) -> Result<Summary, SummarizeError> {
    let manifest_key = find_manifest(client, location).await?;
    summarize_manifest(client, &location.bucket, &manifest_key, None).await
}

/// Reads the manifest at `bucket`/`manifest_key` and every result file it names, and adds the
/// batches up. With `findings`, the run's findings file is written there as the batches are
/// read, in bounded memory: every line of each batch's own findings file, and a failure line
/// for each key of a failed batch; the report's `findings` says where and how many (the caller
/// finishes the upload).
pub async fn summarize_manifest(
    client: &Client,
    bucket: &str,
    manifest_key: &str,
    findings: Option<&mut StreamingUpload>,
) -> Result<Summary, SummarizeError> {
    let pass = ResultWriterDetails {
        bucket: bucket.to_owned(),
        key: manifest_key.to_owned(),
    };
    summarize_passes(client, std::slice::from_ref(&pass), false, findings).await
}

/// The same over every pass of a run of parts, in order. With `handed_on`, each stopped
/// part's token is taken as handed on to the next pass ([`AuditReport::hand_on`]), as the
/// collect step hands it on: its keys count in the part that carried on, so every object
/// counts once.
pub async fn summarize_passes(
    client: &Client,
    passes: &[ResultWriterDetails],
    handed_on: bool,
    mut findings: Option<&mut StreamingUpload>,
) -> Result<Summary, SummarizeError> {
    let mut report = AuditReport::empty(StrategyKind::JoinAll, "");
    let mut batches = BatchCounts::default();
    let mut lines = FindingsWritten {
        uri: findings.as_ref().map(|upload| upload.uri()).unwrap_or_default(),
        objects: 0,
        failures: 0,
    };
    for pass in passes {
        let bucket = pass.bucket.as_str();
        let manifest: Manifest = read_json(client, bucket, &pass.key).await?;
        let files = &manifest.result_files;
        for file in files.succeeded.iter().chain(&files.failed).chain(&files.pending) {
            let executions: Vec<ChildExecution> = read_json(client, bucket, &file.key).await?;
            for execution in executions {
                let malformed = |reason: String| SummarizeError::Malformed {
                    bucket: bucket.to_owned(),
                    key: file.key.clone(),
                    reason,
                };
                let batch = match (execution.status.as_str(), &execution.output) {
                    ("SUCCEEDED", Some(output)) => {
                        batches.succeeded += 1;
                        let mut batch = serde_json::from_str::<AuditReport>(output)
                            .map_err(|err| malformed(format!("a batch's Output is not a report: {err}")))?;
                        if handed_on {
                            batch.hand_on();
                        }
                        if let (Some(upload), Some(written)) = (findings.as_deref_mut(), &batch.findings) {
                            copy_lines(client, &written.uri, upload).await?;
                            lines.objects += written.objects;
                            lines.failures += written.failures;
                        }
                        batch
                    }
                    (status, _) => {
                        let input = execution.input.as_deref().ok_or_else(|| {
                            malformed(format!(
                                "execution {:?} ({status}) carries no Input, so its keys cannot be counted",
                                execution.name
                            ))
                        })?;
                        let input = ChildInput::parse(input).map_err(malformed)?;
                        if status == "FAILED" {
                            batches.failed += 1;
                        } else {
                            batches.pending += 1;
                        }
                        if let (Some(upload), "FAILED") = (findings.as_deref_mut(), status) {
                            lines.failures += write_failures(upload, &execution, &input).await?;
                        }
                        input.unfinished(status, &execution)
                    }
                };
                report.absorb(batch);
            }
        }
    }
    if let Some(resume) = &mut report.resume {
        resume.bucket = report.bucket.clone();
    }
    report.findings = findings.is_some().then_some(lines);
    Ok(Summary {
        manifest: passes.last().map(|pass| pass.key.clone()).unwrap_or_default(),
        batches,
        report,
    })
}

/// The reports of a map run's children that succeeded, as its ResultWriter recorded them.
pub async fn succeeded_reports(client: &Client, run: &ResultWriterDetails) -> Result<Vec<AuditReport>, SummarizeError> {
    let manifest: Manifest = read_json(client, &run.bucket, &run.key).await?;
    let mut reports = Vec::new();
    for file in &manifest.result_files.succeeded {
        let executions: Vec<ChildExecution> = read_json(client, &run.bucket, &file.key).await?;
        for output in executions.into_iter().filter_map(|execution| execution.output) {
            let report = serde_json::from_str::<AuditReport>(&output).map_err(|err| SummarizeError::Malformed {
                bucket: run.bucket.clone(),
                key: file.key.clone(),
                reason: format!("a part's Output is not a report: {err}"),
            })?;
            reports.push(report);
        }
    }
    Ok(reports)
}

/// What a child that has no report was handed: a part of a run.
struct ChildInput(PartEvent);

impl ChildInput {
    fn parse(input: &str) -> Result<Self, String> {
        serde_json::from_str::<PartEvent>(input)
            .map(ChildInput)
            .map_err(|err| format!("a child's Input is not a part: {err}"))
    }

    fn bucket(&self) -> &str {
        &self.0.resume.bucket
    }

    /// The keys it names (a part's listing, if any, is not known).
    fn keys(&self) -> Vec<ObjectRef> {
        self.0.resume.keys.clone()
    }

    /// Its report: a failed one's keys are failures, a pending one's are not fetched; a
    /// part's listing left undone truncates the run, its token in `resume`.
    fn unfinished(self, status: &str, execution: &ChildExecution) -> AuditReport {
        let mut report = AuditReport::empty(StrategyKind::JoinAll, self.bucket());
        let keys = self.keys();
        report.objects_listed = keys.len();
        let listing_left = (!self.0.resume.cursor.is_done()).then_some(self.0.resume);
        if status == "FAILED" {
            for object in keys {
                report.failures.add(batch_failure(execution, object));
            }
        } else {
            report.objects_not_fetched = keys.len();
            report.resume = Some(acl_audit::Resume::keys_only(report.bucket.clone(), keys));
        }
        if let Some(mut token) = listing_left {
            token.keys = report.resume.take().map(|resume| resume.keys).unwrap_or_default();
            report.truncated = Some(Truncation::ListingFailed {
                error: format!(
                    "a part of the run {status} before listing its keys: {}",
                    execution.error.as_deref().unwrap_or("ExecutionFailed")
                ),
            });
            report.resume = Some(token);
        }
        report
    }
}

/// Appends a batch's findings file (`s3://…/findings.jsonl`, whole lines) to `upload`.
async fn copy_lines(client: &Client, uri: &str, upload: &mut StreamingUpload) -> Result<(), SummarizeError> {
    let location: S3Location = uri.parse().map_err(|err| SummarizeError::Malformed {
        bucket: String::new(),
        key: uri.to_owned(),
        reason: format!("a batch's findings.uri is not an S3 location: {err}"),
    })?;
    let read_error = |detail: String| SummarizeError::Read {
        bucket: location.bucket.clone(),
        key: location.prefix.clone(),
        detail,
    };
    let mut object = client
        .get_object()
        .bucket(&location.bucket)
        .key(&location.prefix)
        .send()
        .await
        .map_err(|err| read_error(DisplayErrorContext(&err).to_string()))?;
    while let Some(chunk) = object
        .body
        .try_next()
        .await
        .map_err(|err| read_error(err.to_string()))?
    {
        upload.write(&chunk).await.map_err(|err| err.of(Artifact::Findings))?;
    }
    Ok(())
}

/// A failure line for every key of a failed batch or part, the child execution's error as its
/// code; how many.
async fn write_failures(
    upload: &mut StreamingUpload,
    execution: &ChildExecution,
    input: &ChildInput,
) -> Result<usize, SummarizeError> {
    let keys = input.keys();
    for object in &keys {
        let failure = batch_failure(execution, object.clone());
        // Plain data with string keys: serialising cannot fail.
        let mut line =
            serde_json::to_vec(&FailureLine::of(&Place::bucket(input.bucket()), &failure)).unwrap_or_default();
        line.push(b'\n');
        upload.write(&line).await.map_err(|err| err.of(Artifact::Findings))?;
    }
    Ok(keys.len())
}

/// A key of a failed batch, failed with the child execution's error.
fn batch_failure(execution: &ChildExecution, object: ObjectRef) -> ObjectFailure {
    ObjectFailure {
        key: object.key,
        version_id: object.version_id,
        code: execution.error.clone().unwrap_or_else(|| "ExecutionFailed".to_owned()),
        message: execution.cause.clone().unwrap_or_default(),
    }
}

async fn find_manifest(client: &Client, location: &S3Location) -> Result<String, SummarizeError> {
    let mut pages = client
        .list_objects_v2()
        .bucket(&location.bucket)
        .prefix(&location.prefix)
        .into_paginator()
        .send();
    let mut manifests = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| SummarizeError::Read {
            bucket: location.bucket.clone(),
            key: location.prefix.clone(),
            detail: DisplayErrorContext(&err).to_string(),
        })?;
        manifests.extend(
            page.contents()
                .iter()
                .filter_map(|object| object.key())
                .filter(|key| key.ends_with(MANIFEST))
                .map(str::to_owned),
        );
    }
    match manifests.len() {
        0 => Err(SummarizeError::NoManifest(location.clone())),
        1 => Ok(manifests.remove(0)),
        count => Err(SummarizeError::SeveralManifests {
            location: location.clone(),
            count,
            first: manifests.remove(0),
        }),
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<T, SummarizeError> {
    let bytes = read_object(client, bucket, key)
        .await
        .map_err(|detail| SummarizeError::Read {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            detail,
        })?;
    serde_json::from_slice(&bytes).map_err(|err| SummarizeError::Malformed {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_with_and_without_a_prefix() {
        let location: S3Location = "s3://audit-results/results/abc/".parse().unwrap();
        assert_eq!(location.bucket, "audit-results");
        assert_eq!(location.prefix, "results/abc/");
        assert_eq!("s3://b".parse::<S3Location>().unwrap().prefix, "");
        assert!(
            "results/abc"
                .parse::<S3Location>()
                .unwrap_err()
                .to_string()
                .contains("not an s3://")
        );
        assert!(
            "s3:///x"
                .parse::<S3Location>()
                .unwrap_err()
                .to_string()
                .contains("no bucket")
        );
    }
}
