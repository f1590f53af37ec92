//! The state machine's last step ([`Job::AddUp`](crate::job::Job::AddUp)): adds up the parts
//! the Map's ResultWriter recorded, pass by pass, and under `FINDINGS_URI` writes the run's
//! findings file (every part's lines, and a failure line per key of a failed part) and its
//! report, in the run's own folder named by the map run's id.

use acl_audit::StrategyKind;
use acl_audit::audit::JSON_LINES;
use acl_audit::findings::FINDINGS_FILE;
use acl_audit::s3::upload::{Artifact, StreamingUpload};

use crate::clients::Clients;
use crate::config::Config;
use crate::error::HandlerError;
use crate::job::AddUpJob;
use crate::map_run::summarize_passes;
use crate::outcome::{Invocation, Scope};
use crate::record::{RunReport, in_folder, log_report, run_folder, write_report};

pub async fn run(kind: StrategyKind, clients: &Clients, config: &Config, job: AddUpJob) -> Invocation {
    let AddUpJob { run, bucket } = job;
    let client = &clients.s3;
    let folder = run_folder(config, &bucket, run.run_id());
    let file = folder.as_ref().map(|folder| in_folder(folder, FINDINGS_FILE));
    let mut upload = file
        .as_ref()
        .map(|file| StreamingUpload::new(client, &file.bucket, &file.prefix, JSON_LINES));
    let details = &run.result_writer_details;
    // A run of parts hands every stopped part's token on to a next pass (`crate::steps`).
    let (passes, handed_on) = if run.passes.is_empty() {
        (std::slice::from_ref(details), false)
    } else {
        (run.passes.as_slice(), true)
    };
    let summary = match summarize_passes(client, passes, handed_on, upload.as_mut()).await {
        Ok(summary) => summary,
        Err(err) => {
            if let Some(upload) = &mut upload {
                upload.abort().await;
            }
            return Invocation::failed(Some(bucket), HandlerError::MapRun(err), "map run not added up");
        }
    };
    let mut report = RunReport::new(summary.report, None);
    if report.report.bucket.is_empty() {
        report.report.bucket = bucket;
    }
    let written = match (upload, &folder) {
        (Some(upload), Some(folder)) => match upload.finish().await {
            Ok(()) => write_report(client, folder, &report).await.err(),
            Err(err) => Some(err.of(Artifact::Findings)),
        },
        _ => None,
    };
    tracing::info!(
        map_run = run.map_run_arn.as_deref().unwrap_or(""),
        manifest = %details.key,
        batches_succeeded = summary.batches.succeeded,
        batches_failed = summary.batches.failed,
        batches_pending = summary.batches.pending,
        passes = passes.len(),
        "map run added up"
    );
    log_report(kind, run.run_id(), &report);
    Invocation::audited(report, written, Scope::MapRun)
}
