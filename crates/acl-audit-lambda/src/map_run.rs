//! A run of parts as its parts leave it in S3, all in the run's parts folder: each pass's
//! parts file (`pass-<n>.json`, the Map's items), and in each part's own folder
//! (`pass-<n>/part-<i>/`) the report and findings file the part wrote when it finished. The
//! collect step reads one pass back, the last step every pass, and `acl-map summarize` a run
//! in S3. A part without a report failed (its invocation's error is in the map run's execution
//! history): each key it names is a failure, and a listing it was to do truncates the run.
//!
//! The parts record themselves rather than being read from the Map's ResultWriter: the reports
//! are then where the run put them, whichever interpreter ran it (moto's ResultWriter writes
//! no result files; docs/scale-out.md, "The state machine").

use std::collections::BTreeMap;

use acl_audit::changes::{Baseline, ChangesError, LineSource};
use acl_audit::findings::{AnyLine, FailureLine, FindingsWritten, Place};
use acl_audit::model::S3Location;
use acl_audit::ocsf::{FindingsFormat, parse_line};
use acl_audit::report::Truncation;
use acl_audit::s3::read::{read_object, read_object_if_any};
use acl_audit::s3::upload::StreamingUpload;
use acl_audit::s3::upload::{Artifact, NotWritten};
use acl_audit::{AuditReport, ObjectFailure, StrategyKind};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use serde::Serialize;

use crate::event::PartEvent;

/// A part's report, in its folder.
pub const PART_REPORT: &str = "report.json";
/// The code of each key of a part that left no report.
pub const PART_NOT_REPORTED: &str = "PartNotReported";

/// The parts file of pass `pass` in the run's `folder`.
pub fn pass_file(folder: &S3Location, pass: usize) -> S3Location {
    folder.join(&format!("pass-{pass}.json"))
}

/// The folder of part `index` of pass `pass`: its findings file and report.
pub fn part_folder(folder: &S3Location, pass: usize, index: usize) -> S3Location {
    folder.join(&format!("pass-{pass}/part-{index}/"))
}

/// A part, and its report once it finished.
#[derive(Debug, Clone)]
pub struct PartRecord {
    pub event: PartEvent,
    pub report: Option<AuditReport>,
}

/// The run's parts added up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The run's parts folder.
    pub folder: String,
    pub passes: usize,
    pub parts: PartCounts,
    /// The sum of the parts' reports; the keys of parts that left no report are failures.
    pub report: AuditReport,
    /// The same per bucket, by account (a sweep's parts name theirs) and bucket.
    #[serde(skip)]
    pub by_bucket: BTreeMap<(Option<String>, String), AuditReport>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartCounts {
    pub reported: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummarizeError {
    #[error("no parts file (pass-0.json) under {0}: give a run's parts folder, s3://…/parts/<execution name>/")]
    NoParts(S3Location),
    #[error("cannot read s3://{bucket}/{key}: {detail}")]
    Read {
        bucket: String,
        key: String,
        detail: String,
    },
    #[error("s3://{bucket}/{key} is not what a run of parts writes: {reason}")]
    Malformed {
        bucket: String,
        key: String,
        reason: String,
    },
    /// The run's findings file, which gathers its parts' files, could not be written.
    #[error(transparent)]
    FindingsNotWritten(#[from] NotWritten),
}

impl SummarizeError {
    /// The `errorType` the state machine's execution history shows.
    pub fn error_type(&self) -> &'static str {
        match self {
            SummarizeError::NoParts(_) => "NoParts",
            SummarizeError::Read { .. } => "PartsNotRead",
            SummarizeError::Malformed { .. } => "MalformedParts",
            SummarizeError::FindingsNotWritten(_) => "FindingsNotWritten",
        }
    }
}

/// Pass `pass`'s parts, each with the report it left, if any.
pub async fn read_pass(client: &Client, folder: &S3Location, pass: usize) -> Result<Vec<PartRecord>, SummarizeError> {
    let file = pass_file(folder, pass);
    let events: Vec<PartEvent> = read_json(client, &file).await?;
    let mut parts = Vec::with_capacity(events.len());
    for event in events {
        let part: S3Location = event
            .folder
            .parse()
            .map_err(|err| malformed(&file, format!("a part's folder: {err}")))?;
        let report_file = part.join(PART_REPORT);
        let report = match read_object_if_any(client, &report_file.bucket, &report_file.prefix).await {
            Ok(Some(bytes)) => Some(
                serde_json::from_slice::<AuditReport>(&bytes)
                    .map_err(|err| malformed(&report_file, format!("not a part's report: {err}")))?,
            ),
            Ok(None) => None,
            Err(detail) => return Err(read_error(&report_file, detail)),
        };
        parts.push(PartRecord { event, report });
    }
    Ok(parts)
}

/// Adds up the run's first `passes` passes in `folder`. Each stopped part of a pass before the
/// last was handed on to the next pass ([`AuditReport::hand_on`], as the collect step hands it
/// on): its keys count in the part that carried on, so every object counts once. With
/// `findings`, the run's findings file is written there as the parts are read, in bounded
/// memory: every line of each part's own findings file, and a failure line for each key of a
/// part that left no report; the report's `findings` says where and how many (the caller
/// finishes the upload).
pub async fn summarize_passes(
    client: &Client,
    folder: &S3Location,
    passes: usize,
    mut findings: Option<CopyTo<'_>>,
) -> Result<Summary, SummarizeError> {
    let mut report = AuditReport::empty(StrategyKind::JoinAll, "");
    let mut by_bucket: BTreeMap<(Option<String>, String), AuditReport> = BTreeMap::new();
    let mut parts = PartCounts::default();
    let mut lines = FindingsWritten {
        uri: findings.as_ref().map(|to| to.upload.uri()).unwrap_or_default(),
        objects: 0,
        failures: 0,
    };
    for pass in 0..passes {
        let handed_on = pass + 1 < passes;
        for record in read_pass(client, folder, pass).await? {
            let key = (
                record.event.account.as_ref().map(|account| account.account_id.clone()),
                record.event.resume.bucket.clone(),
            );
            let part = match record.report {
                Some(mut part) => {
                    parts.reported += 1;
                    if handed_on {
                        part.hand_on();
                    }
                    if let (Some(to), Some(written)) = (findings.as_mut(), &part.findings) {
                        copy_lines(client, &written.uri, to).await?;
                        lines.objects += written.objects;
                        lines.failures += written.failures;
                    }
                    part
                }
                None => {
                    parts.failed += 1;
                    if let Some(to) = findings.as_mut() {
                        lines.failures += write_failures(to.upload, to.format, &record.event).await?;
                    }
                    not_reported(record.event)
                }
            };
            by_bucket
                .entry(key)
                .or_insert_with(|| AuditReport::empty(StrategyKind::JoinAll, ""))
                .absorb(part.clone());
            report.absorb(part);
        }
    }
    for summed in by_bucket.values_mut().chain(std::iter::once(&mut report)) {
        if let Some(resume) = &mut summed.resume {
            resume.bucket = summed.bucket.clone();
        }
    }
    report.findings = findings.is_some().then_some(lines);
    Ok(Summary {
        folder: folder.to_string(),
        passes,
        parts,
        report,
        by_bucket,
    })
}

/// Adds up the run of parts in `folder`, as many passes as it holds parts files for.
pub async fn summarize(client: &Client, folder: &S3Location) -> Result<Summary, SummarizeError> {
    let mut passes = 0;
    loop {
        let file = pass_file(folder, passes);
        match read_object_if_any(client, &file.bucket, &file.prefix).await {
            Ok(Some(_)) => passes += 1,
            Ok(None) => break,
            Err(detail) => return Err(read_error(&file, detail)),
        }
    }
    if passes == 0 {
        return Err(SummarizeError::NoParts(folder.clone()));
    }
    summarize_passes(client, folder, passes, None).await
}

/// The report of a part that left none: its keys are failures, and a listing it was to do,
/// left undone, truncates the run with its token in `resume`.
fn not_reported(event: PartEvent) -> AuditReport {
    let mut report = AuditReport::empty(StrategyKind::JoinAll, event.resume.bucket.clone());
    report.objects_listed = event.resume.keys.len();
    for failure in failures(&event) {
        report.failures.add(failure);
    }
    let PartEvent { resume, folder, .. } = event;
    if !resume.cursor.is_done() {
        report.truncated = Some(Truncation::ListingFailed {
            error: format!("{PART_NOT_REPORTED}: the part left no {PART_REPORT} in {folder} before listing its keys"),
        });
        report.resume = Some(acl_audit::Resume {
            keys: Vec::new(),
            ..resume
        });
    }
    report
}

/// Where the run's findings file is written as the parts' lines are read: its upload, its
/// format, and the last completed run's findings, which give each line its `first_seen`.
pub struct CopyTo<'a> {
    pub upload: &'a mut StreamingUpload,
    pub format: FindingsFormat,
    pub baseline: Option<&'a Baseline>,
}

/// Appends a part's findings file (`s3://…/findings.jsonl`, whole lines) to the run's: as it
/// is, or, when the run is compared, line by line with each finding's `first_seen` and each
/// failure marked in the baseline.
async fn copy_lines(client: &Client, uri: &str, to: &mut CopyTo<'_>) -> Result<(), SummarizeError> {
    if let Some(baseline) = to.baseline {
        return copy_compared(client, uri, to.upload, to.format, baseline).await;
    }
    let upload = &mut *to.upload;
    let location: S3Location = uri.parse().map_err(|err| SummarizeError::Malformed {
        bucket: String::new(),
        key: uri.to_owned(),
        reason: format!("a part's findings.uri is not an S3 location: {err}"),
    })?;
    let mut object = client
        .get_object()
        .bucket(&location.bucket)
        .key(&location.prefix)
        .send()
        .await
        .map_err(|err| read_error(&location, DisplayErrorContext(&err).to_string()))?;
    while let Some(chunk) = object
        .body
        .try_next()
        .await
        .map_err(|err| read_error(&location, err.to_string()))?
    {
        upload.write(&chunk).await.map_err(|err| err.of(Artifact::Findings))?;
    }
    Ok(())
}

async fn copy_compared(
    client: &Client,
    uri: &str,
    upload: &mut StreamingUpload,
    format: FindingsFormat,
    baseline: &Baseline,
) -> Result<(), SummarizeError> {
    let not_read = |err: ChangesError| SummarizeError::Read {
        bucket: String::new(),
        key: err.uri,
        detail: err.detail,
    };
    let mut lines = LineSource::open(client, uri).map_err(not_read)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
    while let Some(line) = lines.next_line().await.map_err(not_read)? {
        let parsed = parse_line::<AnyLine>(&line).map_err(|err| SummarizeError::Malformed {
            bucket: String::new(),
            key: uri.to_owned(),
            reason: format!("a part's line is not a findings line: {err}"),
        })?;
        let bytes = match parsed {
            AnyLine::Finding(mut finding) => {
                let place = Place {
                    account_id: finding.account_id.as_deref(),
                    bucket: &finding.bucket,
                    region: None,
                };
                let first_seen = baseline
                    .first_seen(&place, &finding.key, finding.version_id.as_deref())
                    .to_owned();
                finding.first_seen = Some(first_seen);
                format.finding(&finding, now_ms)
            }
            AnyLine::Failure(failure) => {
                let place = Place {
                    account_id: failure.account_id.as_deref(),
                    bucket: &failure.bucket,
                    region: None,
                };
                baseline.failed(&place, &failure.key, failure.version_id.as_deref());
                format.failure(&failure, now_ms)
            }
        };
        upload.write(&bytes).await.map_err(|err| err.of(Artifact::Findings))?;
    }
    Ok(())
}

/// Each key a part that left no report names, failed.
fn failures(event: &PartEvent) -> impl Iterator<Item = ObjectFailure> + '_ {
    event.resume.keys.iter().map(|object| ObjectFailure {
        key: object.key.clone(),
        version_id: object.version_id.clone(),
        code: PART_NOT_REPORTED.to_owned(),
        message: format!(
            "the part left no {PART_REPORT} in {}: its invocation failed (see the map run's failed executions)",
            event.folder
        ),
    })
}

/// A failure line for every key of a part that left no report; how many.
async fn write_failures(
    upload: &mut StreamingUpload,
    format: FindingsFormat,
    event: &PartEvent,
) -> Result<usize, SummarizeError> {
    let place = Place::bucket(&event.resume.bucket);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
    let mut written = 0;
    for failure in failures(event) {
        let line = format.failure(&FailureLine::of(&place, &failure), now_ms);
        upload.write(&line).await.map_err(|err| err.of(Artifact::Findings))?;
        written += 1;
    }
    Ok(written)
}

fn read_error(location: &S3Location, detail: String) -> SummarizeError {
    SummarizeError::Read {
        bucket: location.bucket.clone(),
        key: location.prefix.clone(),
        detail,
    }
}

fn malformed(location: &S3Location, reason: String) -> SummarizeError {
    SummarizeError::Malformed {
        bucket: location.bucket.clone(),
        key: location.prefix.clone(),
        reason,
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    client: &Client,
    location: &S3Location,
) -> Result<T, SummarizeError> {
    let bytes = read_object(client, &location.bucket, &location.prefix)
        .await
        .map_err(|detail| read_error(location, detail))?;
    serde_json::from_slice(&bytes).map_err(|err| malformed(location, err.to_string()))
}
