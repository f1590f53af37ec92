//! The state machine's last step ([`Job::AddUp`](crate::job::Job::AddUp)): adds up every pass's
//! parts from the reports they left in the run's parts folder ([`crate::map_run`]), and under
//! `FINDINGS_URI` writes the run's findings file (every part's lines, and a failure line per
//! key of a part that left no report) and its report, in the run's own folder named by the
//! execution's. A sweep's run adds each bucket's parts into its line of the plan's report
//! (`sweep.json`) and answers the sweep's report, as an invocation's sweep does.

use acl_audit::StrategyKind;
use acl_audit::audit::JSON_LINES;
use acl_audit::findings::FINDINGS_FILE;
use acl_audit::s3::upload::{Artifact, NotWritten, StreamingUpload};
use aws_sdk_s3::Client;

use crate::clients::Clients;
use crate::config::Config;
use crate::error::HandlerError;
use acl_audit::model::S3Location;
use acl_audit::sweep::{BucketState, absorb};

use crate::account_sweep::{compare_sweep, send_sweep, swept};
use crate::compare_runs::{self, latest_of_sweep};
use crate::event::{AddUpRequest, AuditScope, Pass};
use crate::map_run::{CopyTo, SummarizeError, Summary, summarize_passes};
use crate::outcome::{Invocation, Scope};
use crate::record::{RunReport, log_report, run_folder, write_report};
use crate::steps::{SWEEP_PLAN, parts_folder, read_sweep_plan};
use acl_audit::changes::Baseline;

pub async fn run(
    kind: StrategyKind,
    clients: &Clients,
    config: &Config,
    context: &lambda_runtime::Context,
    job: AddUpRequest,
) -> Invocation {
    let AddUpRequest { pass } = job;
    let parts = match parts_folder(&pass.folder) {
        Ok(parts) => parts,
        Err(err) => return Invocation::failed(Some(pass.bucket), HandlerError::from(err), "run not added up"),
    };
    // The parts folder is `…/parts/<execution name>/`: the run's id.
    let run_id = parts
        .prefix
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|id| !id.is_empty())
        .unwrap_or("run")
        .to_owned();
    if pass.scope != AuditScope::Bucket {
        // Boxed for the invocation's future's size, as the plan's sweep (`steps`).
        return Box::pin(add_up_sweep(kind, clients, config, context, pass, parts, run_id)).await;
    }
    let client = &clients.s3;
    let bucket = pass.bucket;
    let folder = run_folder(config, &bucket, &run_id);
    let comparison = match pass.latest.as_deref().map(str::parse::<S3Location>) {
        Some(Ok(latest)) => compare_runs::begin(client, config, latest).await,
        _ => None,
    };
    let baseline = comparison.as_ref().map(|comparison| comparison.baseline.as_ref());
    let (summary, upload) = match sum(client, &parts, pass.pass, folder.as_ref(), config, baseline).await {
        Ok(summed) => summed,
        Err(err) => return Invocation::failed(Some(bucket), HandlerError::MapRun(err), "run not added up"),
    };
    let mut report = summary.report;
    if report.bucket.is_empty() {
        report.bucket = bucket;
    }
    let mut written = finish_findings(upload).await;
    if written.is_none() {
        written = compare_runs::after_run(
            clients,
            config,
            Some(&context.invoked_function_arn),
            comparison,
            folder.as_ref(),
            &mut report,
            false,
        )
        .await;
    }
    let report = RunReport::new(report, None);
    if let (None, Some(folder)) = (&written, &folder) {
        written = write_report(client, folder, &report).await.err();
    }
    log_report(kind, &run_id, &report);
    Invocation::audited(report, written, Scope::MapRun)
}

/// A sweep's run: each planned bucket's parts added into its line of the plan's report, the
/// findings file and report written under `FINDINGS_URI` as an invocation's sweep writes them
/// (`<scope>-<account>/…/<execution name>/`).
async fn add_up_sweep(
    kind: StrategyKind,
    clients: &Clients,
    config: &Config,
    context: &lambda_runtime::Context,
    pass: Pass,
    parts: S3Location,
    run_id: String,
) -> Invocation {
    let client = &clients.s3;
    let mut outcome = match read_sweep_plan(client, &parts).await {
        Ok(outcome) => outcome,
        Err(detail) => {
            let err = SummarizeError::Read {
                bucket: parts.bucket.clone(),
                key: format!("{}{SWEEP_PLAN}", parts.prefix),
                detail,
            };
            return Invocation::failed(None, HandlerError::MapRun(err), "sweep not added up");
        }
    };
    let scope = if pass.scope == AuditScope::Organization {
        "organization"
    } else {
        "account"
    };
    let caller = outcome.caller_account().unwrap_or("unknown").to_owned();
    let folder = run_folder(config, &format!("{scope}-{caller}"), &run_id);
    let comparison = match &config.findings {
        Some(base) => compare_runs::begin(client, config, latest_of_sweep(base, &format!("{scope}-{caller}"))).await,
        None => None,
    };
    let baseline = comparison.as_ref().map(|comparison| comparison.baseline.as_ref());
    let (mut summary, upload) = match sum(client, &parts, pass.pass, folder.as_ref(), config, baseline).await {
        Ok(summed) => summed,
        Err(err) => return Invocation::failed(None, HandlerError::MapRun(err), "sweep not added up"),
    };
    for (account_id, _, report) in outcome.accounts_mut() {
        let planned = report
            .buckets
            .iter_mut()
            .filter(|bucket| bucket.state == BucketState::NotReached);
        for bucket in planned {
            if let Some(summed) = summary.by_bucket.remove(&(account_id.clone(), bucket.bucket.clone())) {
                absorb(bucket, summed);
            }
        }
    }
    outcome.retotal();
    outcome.set_findings(summary.report.findings.take());
    let mut written = finish_findings(upload).await;
    if let (None, Some(comparison), Some(folder)) = (&written, comparison, &folder) {
        written = compare_sweep(client, comparison, folder, &mut outcome, false).await;
    }
    if written.is_none() {
        written = send_sweep(clients, config, &context.invoked_function_arn, &mut outcome).await;
    }
    if let (None, Some(folder)) = (&written, &folder) {
        written = write_report(client, folder, &outcome).await.err();
    }
    swept(kind, scope, outcome, written)
}

/// Every pass's parts in `parts` added up, their lines copied into the run's findings file in
/// `folder` as they are read (the upload, to finish).
async fn sum(
    client: &Client,
    parts: &S3Location,
    passes: usize,
    folder: Option<&S3Location>,
    config: &Config,
    baseline: Option<&Baseline>,
) -> Result<(Summary, Option<StreamingUpload>), SummarizeError> {
    let file = folder.map(|folder| folder.join(FINDINGS_FILE));
    let mut upload = file
        .as_ref()
        .map(|file| StreamingUpload::new(client, &file.bucket, &file.prefix, JSON_LINES));
    match summarize_passes(
        client,
        parts,
        passes,
        upload.as_mut().map(|upload| CopyTo {
            upload,
            format: config.findings_format,
            baseline,
        }),
    )
    .await
    {
        Ok(summary) => {
            tracing::info!(
                parts_folder = %parts,
                parts_reported = summary.parts.reported,
                parts_failed = summary.parts.failed,
                passes = summary.passes,
                "run of parts added up"
            );
            Ok((summary, upload))
        }
        Err(err) => {
            if let Some(upload) = &mut upload {
                upload.abort().await;
            }
            Err(err)
        }
    }
}

/// The run's findings file finished (nothing to finish without `FINDINGS_URI`).
async fn finish_findings(upload: Option<StreamingUpload>) -> Option<NotWritten> {
    match upload {
        Some(upload) => upload.finish().await.err().map(|err| err.of(Artifact::Findings)),
        None => None,
    }
}
