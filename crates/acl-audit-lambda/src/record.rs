//! What a run leaves behind under `FINDINGS_URI`: its folder (findings file and report), its
//! token passed on for the next run of its target, and the summary it logs.

use std::time::{Duration, Instant, SystemTime};

use acl_audit::findings::{self, FINDINGS_FILE, REPORT_FILE};
use acl_audit::model::S3Location;
use acl_audit::s3::upload::{Artifact, NotWritten, put_object};
use acl_audit::{AuditError, AuditOptions, AuditReport, FindingsOutput, StrategyKind};
use aws_sdk_s3::Client;
use lambda_runtime::Context;

use crate::clients::Clients;
use crate::compare_runs::{self, Comparison};
use crate::config::Config;
use crate::error::HandlerError;
use crate::stored_resume;

/// A run's report as the function answers it and writes it beside its findings: the core's
/// report, and where the run took up.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunReport {
    #[serde(flatten)]
    pub report: AuditReport,
    /// The stored token this run took up where the last run of its target (or of its bucket's
    /// inventory report) stopped (`s3://…/resume/…json`); `None` when it started from the
    /// beginning or was handed one.
    pub resumed_from: Option<String>,
}

impl RunReport {
    pub fn new(report: AuditReport, resumed_from: Option<String>) -> Self {
        RunReport { report, resumed_from }
    }
}

impl std::ops::Deref for RunReport {
    type Target = AuditReport;

    fn deref(&self) -> &AuditReport {
        &self.report
    }
}

/// The run's folder under `FINDINGS_URI`, dated today, when findings are written.
pub fn run_folder(config: &Config, bucket: &str, run_id: &str) -> Option<S3Location> {
    let date = findings::utc_date(SystemTime::now());
    config
        .findings
        .as_ref()
        .map(|base| findings::run_folder(base, bucket, date, run_id))
}

/// A run's options under the function's settings: its stop before the invocation's deadline,
/// and its findings file in `folder` when `FINDINGS_URI` names one.
pub fn run_options(client: &Client, config: &Config, context: &Context, folder: Option<&S3Location>) -> AuditOptions {
    AuditOptions {
        stop_at: stop_at(context, config.deadline_margin),
        findings: folder.map(|folder| FindingsOutput::s3(client, &folder.join(FINDINGS_FILE))),
        format: config.findings_format,
        ..AuditOptions::default()
    }
}

/// A target's run options ([`run_options`]) with the suppressions in force and, when `latest`
/// names the pointer of a schedule's whole target, the last completed run to compare with.
pub async fn target_run_options(
    clients: &Clients,
    config: &Config,
    context: &Context,
    folder: Option<&S3Location>,
    latest: Option<S3Location>,
) -> Result<(AuditOptions, Option<Comparison>), HandlerError> {
    let client = &clients.s3;
    let suppressions = crate::suppression_file::load(client, config).await?;
    let comparison = match latest {
        Some(latest) => compare_runs::begin(client, config, latest).await,
        None => None,
    };
    let options = AuditOptions {
        suppressions,
        baseline: comparison.as_ref().map(|comparison| comparison.baseline.clone()),
        ..run_options(client, config, context, folder)
    };
    Ok((options, comparison))
}

/// What a target's run leaves, and where.
pub struct Leaving<'a> {
    pub comparison: Option<Comparison>,
    pub folder: Option<&'a S3Location>,
    /// A schedule's stored token ([`record_run`]), and whether the run found one there.
    pub token: Option<&'a S3Location>,
    pub found: bool,
    /// The stored token the run took up.
    pub resumed_from: Option<String>,
    /// The function's ARN, to send the findings to Security Hub as; `None` for a state
    /// machine's part, whose run's last step sends them.
    pub sent_as: Option<&'a str>,
}

/// A target's run ended: compared and sent ([`compare_runs::after_run`]), then recorded
/// ([`record_run`]); its report and the first write that failed. A run whose findings were
/// not written keeps its report; one that could not list or read its source has none.
pub async fn leave(
    clients: &Clients,
    config: &Config,
    leaving: Leaving<'_>,
    audited: Result<AuditReport, AuditError>,
) -> Result<(RunReport, Option<NotWritten>), HandlerError> {
    let Leaving {
        comparison,
        folder,
        token,
        found,
        resumed_from,
        sent_as,
    } = leaving;
    match audited {
        Ok(mut report) => {
            let resumed = resumed_from.is_some();
            let after =
                compare_runs::after_run(clients, config, sent_as, comparison, folder, &mut report, resumed).await;
            let report = RunReport::new(report, resumed_from);
            let written = record_run(&clients.s3, token, found, folder, &report).await;
            Ok((report, after.or(written)))
        }
        Err(AuditError::NotWritten { error, report }) => Ok((RunReport::new(*report, resumed_from), Some(error))),
        Err(AuditError::List(err)) => Err(err.into()),
        Err(AuditError::Inventory(err)) => Err(HandlerError::Inventory(err)),
    }
}

/// What a finished run leaves behind: its token passed on at `token` (stored if it stopped, removed once done), then
/// its report in its `folder`; the first write that fails is the run's findings error.
pub async fn record_run(
    client: &Client,
    token: Option<&S3Location>,
    found: bool,
    folder: Option<&S3Location>,
    report: &RunReport,
) -> Option<NotWritten> {
    if let Some(location) = token
        && let Err(err) = pass_on(client, location, report, found).await
    {
        return Some(err);
    }
    match folder {
        Some(folder) => write_report(client, folder, report).await.err(),
        None => None,
    }
}

/// Stores a stopped run's token for the next run of its target, or, once the target is done,
/// removes the one it found (`found`).
async fn pass_on(client: &Client, location: &S3Location, report: &AuditReport, found: bool) -> Result<(), NotWritten> {
    match (&report.truncated, &report.resume) {
        (Some(_), Some(next)) => {
            tracing::info!(token = %location, "resume token stored for the next run of this target");
            stored_resume::store(client, location, next).await
        }
        (None, _) if found => stored_resume::clear(client, location).await,
        _ => Ok(()),
    }
}

/// The report beside the findings file.
pub async fn write_report(
    client: &Client,
    folder: &S3Location,
    report: &impl serde::Serialize,
) -> Result<(), NotWritten> {
    // Plain data with string keys: serialising cannot fail.
    let body = serde_json::to_vec_pretty(report).unwrap_or_default();
    put_object(client, &folder.join(REPORT_FILE), "application/json", body)
        .await
        .map_err(|err| err.of(Artifact::Report))
}

/// The run's one summary line, and a warning when it stopped early.
pub fn log_report(kind: StrategyKind, request_id: &str, report: &AuditReport) {
    if let Some(truncated) = &report.truncated {
        tracing::warn!(
            strategy = kind.name(),
            ?truncated,
            objects_not_fetched = report.objects_not_fetched,
            "audit stopped early: invoke again with the report's \"resume\" as the event's \"resume\" to carry on"
        );
    }
    let findings = &report.audit.findings;
    tracing::info!(
        request_id,
        strategy = kind.name(),
        bucket = %report.bucket,
        prefix = report.prefix.as_deref().unwrap_or(""),
        objects_listed = report.objects_listed,
        acls_fetched = report.acls_fetched,
        failures = report.failures.count,
        objects_not_fetched = report.objects_not_fetched,
        truncated = report.truncated.is_some(),
        retries = report.retries,
        objects_with_findings = findings.objects,
        exposed_objects = findings.exposed_objects,
        public_objects = findings.public_objects,
        granted_to_other_accounts = report.audit.granted_to_other_accounts.count,
        findings_uri = report.findings.as_ref().map(|written| written.uri.as_str()),
        concurrency_limit = report.concurrency_limit,
        list_ms = report.timings_ms.list,
        fetch_ms = report.timings_ms.fetch,
        total_ms = report.timings_ms.total,
        "audit complete"
    );
}

/// When to stop: `margin` before the invocation's deadline. A context without one (a
/// deadline of 0: outside Lambda, in tests and the benchmark) sets no stop, nor does a deadline
/// already past when the invocation starts, which Lambda never sends: `cargo lambda watch`
/// sends its timeout (600 000 ms) where Lambda sends a time.
pub fn stop_at(context: &Context, margin: Duration) -> Option<Instant> {
    if context.deadline == 0 {
        return None;
    }
    let Ok(remaining) = context.deadline().duration_since(SystemTime::now()) else {
        tracing::warn!(
            deadline_ms = context.deadline,
            "the invocation's deadline is already past: running without one"
        );
        return None;
    };
    Some(Instant::now() + remaining.saturating_sub(margin))
}
