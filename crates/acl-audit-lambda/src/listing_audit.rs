//! A run over a listing ([`Job::Audit`](crate::job::Job::Audit)): a whole target (a schedule's,
//! taking up where the last run of its target stopped), a caller's token, a part, or the object
//! of an S3 event. The bucket's region and settings are read with the listing's first page.

use acl_audit::bucket::AccountCheck;
use acl_audit::organization::assume_role;
use acl_audit::s3::client::{control_with_credentials, with_credentials};
use acl_audit::s3::region::RegionalClients;
use acl_audit::{AuditOptions, StrategyKind};
use lambda_runtime::Context;

use crate::clients::{Clients, account_of};
use crate::compare_runs::latest_of_target;
use crate::config::Config;
use crate::error::HandlerError;
use crate::job::{AuditJob, Origin};
use crate::outcome::{Invocation, Scope};
use crate::record::{Leaving, leave, log_report, run_folder, target_run_options};
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
    let folder = match &origin {
        Origin::Part { folder, .. } => Some(folder.clone()),
        _ => run_folder(config, &target.bucket, &context.request_id),
    };
    // A sweep's part in a member account audits it with the member role's credentials; its
    // findings and report still go to the run's folder, with the function's own.
    let member = match &origin {
        Origin::Part { account, .. } => account.as_ref(),
        _ => None,
    };
    let (audited_with, control) = match member.and_then(|account| account.role_arn.as_deref()) {
        None => (client.clone(), clients.control.clone()),
        Some(role_arn) => match member_clients(clients, config, role_arn).await {
            Ok(member) => member,
            Err(err) => return Invocation::failed(Some(target.bucket), err, "the part's account not reached"),
        },
    };
    let account_id = member
        .map(|account| account.account_id.as_str())
        .or_else(|| account_of(&context.invoked_function_arn));
    // A schedule's whole target is compared with its last completed run.
    let latest = match (&config.findings, &origin) {
        (Some(base), Origin::Whole) => Some(latest_of_target(base, &target)),
        _ => None,
    };
    let (options, comparison) = match target_run_options(clients, config, context, folder.as_ref(), latest).await {
        Ok(prepared) => prepared,
        Err(err) => return Invocation::failed(Some(target.bucket), err, "audit refused"),
    };
    let options = AuditOptions {
        fetch_when_acls_disabled,
        account_id: member.map(|account| account.account_id.clone()),
        ..options
    };
    let account = control
        .as_ref()
        .zip(account_id)
        .map(|(client, account_id)| AccountCheck { client, account_id });
    let clients_by_region = RegionalClients::new(audited_with);
    let strategy = config.strategy(kind).shared_by(origin.runs_sharing_the_keys());
    let audited = acl_audit::audit::audit_bucket_located(&clients_by_region, account, &target, strategy, options).await;
    let leaving = Leaving {
        comparison,
        folder: folder.as_ref(),
        found: resumed_from.is_some(),
        token: token.as_ref(),
        resumed_from,
        sent_as: origin
            .sends_its_findings()
            .then_some(context.invoked_function_arn.as_str()),
    };
    let (report, findings_error) = match leave(clients, config, leaving, audited).await {
        Ok(left) => left,
        Err(err) => return Invocation::failed(Some(target.bucket), err, "audit failed"),
    };
    log_report(kind, &context.request_id, &report);
    Invocation::audited(report, findings_error, Scope::of(&origin))
}

/// S3 and S3 Control in a member account, through `role_arn`.
async fn member_clients(
    clients: &Clients,
    config: &Config,
    role_arn: &str,
) -> Result<(aws_sdk_s3::Client, Option<aws_sdk_s3control::Client>), HandlerError> {
    let Some((_, sts)) = &clients.organization else {
        return Err(HandlerError::RoleNotAssumed("no STS client configured".to_owned()));
    };
    let credentials = assume_role(sts, role_arn, config.member_role_external_id.as_deref())
        .await
        .map_err(HandlerError::RoleNotAssumed)?;
    let control = clients
        .control
        .as_ref()
        .map(|control| control_with_credentials(control, credentials.clone()));
    Ok((with_credentials(&clients.s3, credentials), control))
}
