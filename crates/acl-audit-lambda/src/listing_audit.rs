//! A run over a listing ([`Job::Audit`](crate::job::Job::Audit)): a whole target (a schedule's,
//! taking up where the last run of its target stopped), a caller's token, a part, or the object
//! of an S3 event. The bucket's region and settings are read with the listing's first page.

use acl_audit::s3::region::RegionalClients;
use acl_audit::{AuditError, AuditOptions, StrategyKind};
use lambda_runtime::Context;

use crate::clients::Clients;
use crate::config::Config;
use crate::error::HandlerError;
use crate::job::{AuditJob, Origin};
use crate::outcome::{Invocation, Scope};
use crate::record::{RunReport, log_report, record_run, run_folder, run_options};
use crate::stored_resume;

pub async fn run(
    kind: StrategyKind,
    clients: &Clients,
    config: &Config,
    context: &Context,
    job: AuditJob,
) -> Invocation {
    let AuditJob {
        mut target,
        fetch_when_acls_disabled,
        origin,
    } = job;
    let client = &clients.s3;
    let token = match (&config.findings, &origin) {
        (Some(base), Origin::Whole) if config.resume_from_store => {
            Some(stored_resume::token_location(base, kind, &target))
        }
        _ => None,
    };
    let mut resumed_from = None;
    if let Some(location) = &token
        && let Some(stored) = stored_resume::load(client, location, &target).await
    {
        tracing::info!(token = %location, keys = stored.keys.len(), cursor = ?stored.cursor, "resuming where the last run of this target stopped");
        target.resume = Some(stored);
        resumed_from = Some(location.to_string());
    }
    let clients_by_region = RegionalClients::new(client.clone());
    let folder = match &origin {
        Origin::Part { folder } => Some(folder.clone()),
        _ => run_folder(config, &target.bucket, &context.request_id),
    };
    let options = AuditOptions {
        fetch_when_acls_disabled,
        ..run_options(client, config, context, folder.as_ref())
    };
    let account = clients.account_check(&context.invoked_function_arn);
    let audited =
        acl_audit::audit::audit_bucket_located(&clients_by_region, account, &target, config.strategy(kind), options)
            .await;
    let (report, findings_error) = match audited {
        Ok(report) => {
            let found = resumed_from.is_some();
            let report = RunReport::new(report, resumed_from);
            let written = record_run(client, token.as_ref(), found, folder.as_ref(), &report).await;
            (report, written)
        }
        Err(AuditError::NotWritten { error, report }) => (RunReport::new(*report, resumed_from), Some(error)),
        Err(AuditError::List(err)) => return Invocation::failed(Some(target.bucket), err, "audit failed"),
        Err(AuditError::Inventory(err)) => {
            return Invocation::failed(Some(target.bucket), HandlerError::Inventory(err), "audit failed");
        }
    };
    log_report(kind, &context.request_id, &report);
    Invocation::audited(report, findings_error, Scope::of(&origin))
}
