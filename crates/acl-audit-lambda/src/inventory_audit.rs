//! A run over an S3 Inventory report ([`Job::Inventory`](crate::job::Job::Inventory)): the
//! report's manifest names the bucket, whose settings are read first; then every ACL the
//! report holds, GetObjectAcl only for rows whose ACL is UNAVAILABLE; findings and report
//! written as a listing's run writes them.

use acl_audit::bucket::BucketContext;
use acl_audit::model::{S3Location, check_bucket_name, excerpt};
use acl_audit::s3::inventory::{newest_manifest, read_manifest};
use acl_audit::s3::region::RegionalClients;
use acl_audit::{AuditOptions, StrategyKind};
use lambda_runtime::Context;

use crate::clients::Clients;
use crate::compare_runs::latest_of_target;
use crate::config::Config;
use crate::error::HandlerError;
use crate::job::{InventoryJob, Origin, RequestError};
use crate::outcome::{Invocation, Scope};
use crate::record::{Leaving, leave, log_report, run_folder, target_run_options};
use crate::stored_resume;

pub async fn run(
    kind: StrategyKind,
    clients: &Clients,
    config: &Config,
    context: &Context,
    job: InventoryJob,
) -> Invocation {
    let InventoryJob {
        bucket: named,
        manifest,
        resume,
        origin,
    } = job;
    let client = &clients.s3;
    let by_region = RegionalClients::new(client.clone());
    let failed = |bucket: Option<&str>, error: HandlerError| {
        Invocation::failed(bucket.map(str::to_owned), error, "audit failed")
    };
    // The report and the bucket it is of: a configuration's folder names its newest report (a
    // schedule's), and the manifest names its source bucket.
    let (manifest, bucket) = match report_of(&by_region, &manifest, named.as_deref()).await {
        Ok(found) => found,
        Err(err) => return failed(named.as_deref(), err),
    };
    let (located, settings) = match BucketContext::locate_and_read(
        &by_region,
        &bucket,
        clients.account_check(&context.invoked_function_arn),
    )
    .await
    {
        Ok(located) => located,
        Err(err) => return failed(Some(&bucket), err.into()),
    };
    // A run its event hands no token (a schedule's) goes on where the last one stopped, while
    // that was in the report this run reads; a newer report supersedes the token.
    let token = match &config.findings {
        Some(base) if config.resume_from_store && origin == Origin::Whole => {
            Some(stored_resume::inventory_token_location(base, kind, &bucket))
        }
        _ => None,
    };
    let (mut stored, mut found) = (None, false);
    if let Some(location) = &token
        && let Some(token) = stored_resume::load_inventory(client, location, &bucket).await
    {
        found = true;
        let at = token.cursor.inventory().map(|cursor| cursor.manifest.clone());
        if at.as_deref() == Some(manifest.to_string().as_str()) {
            tracing::info!(token = %location, manifest = %manifest, "resuming where the last run stopped in this inventory report");
            stored = Some(token);
        } else {
            tracing::info!(token = %location, stored_in = at.as_deref(), manifest = %manifest, "a newer inventory report than the stored token's: reading it from the start");
        }
    }
    let resumed_from = stored.as_ref().and(token.as_ref()).map(S3Location::to_string);
    let resume = resume.or(stored);
    let folder = match &origin {
        Origin::Part { folder, .. } => Some(folder.clone()),
        _ => run_folder(config, &bucket, &context.request_id),
    };
    // A schedule's report of the whole bucket is compared with the bucket's last completed run.
    let latest = match (&config.findings, &origin) {
        (Some(base), Origin::Whole) => Some(latest_of_target(base, &acl_audit::Target::bucket(bucket.clone()))),
        _ => None,
    };
    let (options, comparison) = match target_run_options(clients, config, context, folder.as_ref(), latest).await {
        Ok(prepared) => prepared,
        Err(err) => return failed(Some(&bucket), err),
    };
    let options = AuditOptions {
        bucket: Some(settings),
        ..options
    };
    let strategy = config.strategy(kind).shared_by(origin.runs_sharing_the_keys());
    let audited = acl_audit::audit::audit_inventory(&located, &manifest, resume.as_ref(), strategy, options).await;
    let leaving = Leaving {
        comparison,
        folder: folder.as_ref(),
        token: token.as_ref(),
        found,
        resumed_from,
        sent_as: origin
            .sends_its_findings()
            .then_some(context.invoked_function_arn.as_str()),
    };
    let (report, findings_error) = match leave(clients, config, leaving, audited).await {
        Ok(left) => left,
        Err(err) => return failed(Some(&bucket), err),
    };
    log_report(kind, &context.request_id, &report);
    Invocation::audited(report, findings_error, Scope::of(&origin))
}

/// The report `named` leads to (itself, or its folder's newest) and the bucket its manifest
/// says it is of, which must be the one the event names, if it names one.
async fn report_of(
    by_region: &RegionalClients,
    named: &S3Location,
    bucket: Option<&str>,
) -> Result<(S3Location, String), HandlerError> {
    // S3 writes a report into a bucket in its source bucket's region, which may not be the
    // function's.
    let destination = by_region.for_bucket(&named.bucket).await?.client;
    let manifest = if named.prefix.ends_with(".json") {
        named.clone()
    } else {
        let newest = newest_manifest(&destination, named)
            .await
            .map_err(HandlerError::Inventory)?;
        tracing::info!(manifest = %newest, "reading the newest inventory report");
        newest
    };
    let source = read_manifest(&destination, &manifest)
        .await
        .map_err(HandlerError::Inventory)?
        .source_bucket;
    match bucket {
        Some(bucket) if bucket != source => Err(RequestError::InvalidEvent(format!(
            "the event's bucket {bucket:?} is not the inventory report's sourceBucket {:?}: drop the bucket, or name that bucket's report",
            excerpt(&source)
        ))
        .into()),
        _ => {
            check_bucket_name(&source).map_err(RequestError::from)?;
            Ok((manifest, source))
        }
    }
}
