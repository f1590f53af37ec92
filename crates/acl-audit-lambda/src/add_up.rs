//! The state machine's last step ([`Job::AddUp`](crate::job::Job::AddUp)): adds up every pass's
//! parts from the reports they left in the run's parts folder ([`crate::map_run`]), and under
//! `FINDINGS_URI` writes the run's findings file (every part's lines, and a failure line per
//! key of a part that left no report) and its report, in the run's own folder named by the
//! execution's.

use acl_audit::StrategyKind;
use acl_audit::audit::JSON_LINES;
use acl_audit::findings::FINDINGS_FILE;
use acl_audit::s3::upload::{Artifact, StreamingUpload};

use crate::clients::Clients;
use crate::config::Config;
use crate::error::HandlerError;
use crate::event::AddUpRequest;
use crate::map_run::summarize_passes;
use crate::outcome::{Invocation, Scope};
use crate::record::{RunReport, in_folder, log_report, run_folder, write_report};
use crate::steps::parts_folder;

pub async fn run(kind: StrategyKind, clients: &Clients, config: &Config, job: AddUpRequest) -> Invocation {
    let AddUpRequest { pass } = job;
    let client = &clients.s3;
    let bucket = pass.bucket;
    let parts = match parts_folder(&pass.folder) {
        Ok(parts) => parts,
        Err(err) => return Invocation::failed(Some(bucket), HandlerError::from(err), "run not added up"),
    };
    // The parts folder is `…/parts/<execution name>/`: the run's id.
    let run_id = parts
        .prefix
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let run_id = if run_id.is_empty() { "run" } else { run_id }.to_owned();
    let folder = run_folder(config, &bucket, &run_id);
    let file = folder.as_ref().map(|folder| in_folder(folder, FINDINGS_FILE));
    let mut upload = file
        .as_ref()
        .map(|file| StreamingUpload::new(client, &file.bucket, &file.prefix, JSON_LINES));
    let summary = match summarize_passes(client, &parts, pass.pass, upload.as_mut()).await {
        Ok(summary) => summary,
        Err(err) => {
            if let Some(upload) = &mut upload {
                upload.abort().await;
            }
            return Invocation::failed(Some(bucket), HandlerError::MapRun(err), "run not added up");
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
        parts_folder = %parts,
        parts_reported = summary.parts.reported,
        parts_failed = summary.parts.failed,
        passes = summary.passes,
        "run of parts added up"
    );
    log_report(kind, &run_id, &report);
    Invocation::audited(report, written, Scope::MapRun)
}
