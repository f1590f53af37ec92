//! Each whole run of a target compared with the last completed one (`acl_audit::changes`):
//! the last one's findings file is named by a pointer, `<FINDINGS_URI>latest/<target>.json`,
//! which a run that audited its whole target moves to its own once its changes are written.
//! A run that stopped early, or took up a token, compares what it audited and leaves the
//! pointer where it was (docs/report.md, "Changes between runs").

use std::sync::Arc;

use acl_audit::audit::write_changes;
use acl_audit::changes::{Baseline, CHANGES_FILE, ChangeCounts, CompareError, LineSource};
use acl_audit::findings;
use acl_audit::model::S3Location;
use acl_audit::s3::read::read_object_if_any;
use acl_audit::s3::upload::{Artifact, NotWritten, put_object};
use acl_audit::{FindingsOutput, Target};
use aws_sdk_s3::Client;

use crate::config::Config;
use crate::stored_resume::target_name;

/// A run compared with the last completed run of its target.
pub struct Comparison {
    pub baseline: Arc<Baseline>,
    latest: S3Location,
}

/// The pointer's body.
#[derive(serde::Serialize, serde::Deserialize)]
struct Latest {
    findings: String,
}

/// Where the pointer of a bucket's target lives: `<base>latest/<bucket>/<what>.json`.
pub fn latest_of_target(base: &S3Location, target: &Target) -> S3Location {
    latest(base, &target.bucket, &target_name(target))
}

/// Where the pointer of a sweep lives: `<base>latest/<scope>/sweep.json` (`account-<id>`,
/// `organization-<id>`).
pub fn latest_of_sweep(base: &S3Location, scope: &str) -> S3Location {
    latest(base, scope, "sweep")
}

fn latest(base: &S3Location, scope: &str, what: &str) -> S3Location {
    base.join(&format!("latest/{scope}/{what}.json"))
}

/// The comparison of a run whose pointer is at `latest`: the last completed run's findings
/// read as its baseline (none on the first run). A pointer or findings file that cannot be read
/// is logged and the run goes on uncompared (`None`); once complete it moves the pointer to its
/// own findings, so the next run compares again.
pub async fn begin(client: &Client, config: &Config, latest: S3Location) -> Option<Comparison> {
    // Boxed, as `after_run`: reading the baseline holds a GetObject's body and buffer across
    // awaits, too large to sit in each job's future on a debug build's stack.
    Box::pin(async move {
        config.findings.as_ref()?;
        let today = findings::utc_today();
        let pointer = match read_object_if_any(client, &latest.bucket, &latest.prefix).await {
            Ok(pointer) => pointer,
            Err(detail) => {
                tracing::error!(pointer = %latest, %detail, "the last run's pointer not read: this run is not compared");
                return None;
            }
        };
        let baseline = match pointer {
            None => Baseline::none(&today),
            Some(bytes) => {
                let read = match serde_json::from_slice::<Latest>(&bytes) {
                    Ok(pointer) => match LineSource::open(client, &pointer.findings) {
                        Ok(mut source) => Baseline::read(&mut source, &today).await.map_err(|err| err.to_string()),
                        Err(err) => Err(err.to_string()),
                    },
                    Err(err) => Err(format!("{latest} is not a pointer: {err}")),
                };
                match read {
                    Ok(baseline) => baseline,
                    Err(detail) => {
                        tracing::error!(pointer = %latest, %detail, "the last run's findings not read: this run is not compared");
                        return None;
                    }
                }
            }
        };
        tracing::info!(pointer = %latest, baseline = baseline.uri(), objects = baseline.len(), "comparing with the last completed run");
        Some(Comparison {
            baseline: Arc::new(baseline),
            latest,
        })
    })
    .await
}

/// What a bucket's run does once its findings are written: compared with the last completed
/// run ([`compare_run`]), then sent to Security Hub if `SECURITY_HUB` is on, in the account and
/// region of `sent_as` (the function's ARN; `None` for a state machine's part, whose run's last
/// step sends the whole run); the first error.
pub async fn after_run(
    clients: &crate::clients::Clients,
    config: &Config,
    sent_as: Option<&str>,
    comparison: Option<Comparison>,
    folder: Option<&S3Location>,
    report: &mut acl_audit::AuditReport,
    resumed: bool,
) -> Option<NotWritten> {
    // Boxed: the comparison's and Security Hub's readers are too large to sit in each job's
    // future (a debug build's test thread overflowed its stack).
    Box::pin(async move {
        if let Some(err) = compare_run(&clients.s3, comparison, folder, report, resumed).await {
            return Some(err);
        }
        let function_arn = sent_as?;
        let sent = crate::to_security_hub::send(
            clients,
            config,
            function_arn,
            report.findings.as_ref(),
            report.changes.as_ref(),
        )
        .await;
        match sent {
            Ok(imported) => {
                report.security_hub = imported;
                None
            }
            Err(err) => Some(err),
        }
    })
    .await
}

/// A bucket's run compared: its changes into `report`, complete when it neither took up a
/// token (`resumed`) nor stopped early; the error of a changes file not written.
pub async fn compare_run(
    client: &Client,
    comparison: Option<Comparison>,
    folder: Option<&S3Location>,
    report: &mut acl_audit::AuditReport,
    resumed: bool,
) -> Option<NotWritten> {
    let (Some(comparison), Some(folder), Some(findings)) = (comparison, folder, report.findings.as_ref()) else {
        return None;
    };
    let complete = !resumed && report.truncated.is_none();
    let findings = findings.uri.clone();
    match finish(client, comparison, folder, &findings, complete, |_, _| true).await {
        Ok(counts) => {
            report.changes = Some(counts);
            None
        }
        Err(err) => Some(err),
    }
}

/// After the run: its changes written into `folder` beside `findings_file`, and, when the run
/// was `complete`, the pointer moved to it.
pub async fn finish(
    client: &Client,
    comparison: Comparison,
    folder: &S3Location,
    findings_file: &str,
    complete: bool,
    covered: impl Fn(Option<&str>, &str) -> bool,
) -> Result<ChangeCounts, NotWritten> {
    let file = folder.join(CHANGES_FILE);
    let output = FindingsOutput::s3(client, &file);
    let mut counts = write_changes(
        client,
        &comparison.baseline,
        findings_file,
        output,
        |account, bucket| complete && covered(account, bucket),
    )
    .await
    .map_err(|err| match err {
        CompareError::NotWritten(err) => NotWritten {
            what: Artifact::Changes,
            ..err
        },
        CompareError::Read(err) => NotWritten {
            what: Artifact::Changes,
            uri: file.to_string(),
            code: "FindingsNotRead".to_owned(),
            message: err.to_string(),
        },
    })?;
    counts.complete &= complete;
    tracing::info!(
        changes = %counts.uri,
        new = counts.new,
        resolved = counts.resolved,
        persisting = counts.persisting,
        complete = counts.complete,
        "compared with the last completed run"
    );
    if complete {
        let body = serde_json::to_vec(&Latest {
            findings: findings_file.to_owned(),
        })
        .unwrap_or_default();
        put_object(client, &comparison.latest, "application/json", body)
            .await
            .map_err(|err| err.of(Artifact::Changes))?;
    }
    Ok(counts)
}
