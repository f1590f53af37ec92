//! An account's or an organization's sweep ([`Job::Sweep`](crate::job::Job::Sweep)): every bucket
//! the function's role can list (`acl_audit::sweep`), or every bucket of every account of its
//! organization with a member role assumed in each (`acl_audit::organization`), into one findings
//! file and one report under `<FINDINGS_URI>account-<id>/…` or `organization-<id>/…`, dated and
//! named for the request.

use acl_audit::StrategyKind;
use acl_audit::findings::FINDINGS_FILE;
use acl_audit::model::S3Location;
use acl_audit::organization::{
    OrganizationClients, OrganizationError, OrganizationOptions, OrganizationPlace, sweep_organization,
};
use acl_audit::s3::region::RegionalClients;
use acl_audit::s3::upload::NotWritten;
use acl_audit::sweep::{SweepError, SweepOptions, SweepPlace, SweepScope, sweep_account};
use acl_audit::{FindingsOutput, Strategy};
use lambda_runtime::Context;

use crate::clients::{Clients, account_of};
use crate::compare_runs::{self, latest_of_sweep};
use crate::config::Config;
use crate::error::HandlerError;
use crate::job::SweepJob;
use crate::outcome::{Invocation, SweepOutcome};
use crate::record::{run_folder, stop_at, write_report};
use crate::stored_resume::{clear, load_sweep_place, store, sweep_place_location};

pub async fn run(
    kind: StrategyKind,
    clients: &Clients,
    config: &Config,
    context: &Context,
    job: SweepJob,
) -> Invocation {
    let client = &clients.s3;
    let account_id = account_of(&context.invoked_function_arn);
    let scope = if job.organization.is_some() {
        "organization"
    } else {
        "account"
    };
    let folder = run_folder(
        config,
        &format!("{scope}-{}", account_id.unwrap_or("unknown")),
        &context.request_id,
    );
    let findings = folder
        .as_ref()
        .map(|folder| FindingsOutput::s3(client, &folder.join(FINDINGS_FILE)));
    // A scheduled sweep takes up where the last one from this account stopped, and leaves
    // its own place for the next (docs/sweeps.md).
    let place_at = match (&config.findings, account_id, config.resume_from_store) {
        (Some(base), Some(account), true) => Some(sweep_place_location(base, kind, &format!("{scope}-{account}"))),
        _ => None,
    };
    let resume = match (&place_at, job.organization.is_some()) {
        (None, _) => None,
        (Some(at), false) => load_sweep_place(client, at).await.map(Place::Account),
        (Some(at), true) => load_sweep_place(client, at).await.map(Place::Organization),
    };
    if let (Some(place), Some(at)) = (&resume, &place_at) {
        tracing::info!(place = %at, from = ?place, "resuming the sweep where the last one stopped");
    }
    let suppressions = match crate::suppression_file::load(client, config).await {
        Ok(suppressions) => suppressions,
        Err(err) => return Invocation::failed(None, HandlerError::from(err), "sweep refused"),
    };
    let comparison = match (&config.findings, account_id) {
        (Some(base), Some(account)) => {
            compare_runs::begin(client, config, latest_of_sweep(base, &format!("{scope}-{account}"))).await
        }
        _ => None,
    };
    let resumed = resume.is_some();
    let how = How {
        stop_at: stop_at(context, config.deadline_margin),
        findings,
        resume,
        settings_only: false,
        suppressions,
        baseline: comparison.as_ref().map(|comparison| comparison.baseline.clone()),
    };
    let outcome = match sweep(kind, clients, config, context, job, how).await {
        Ok((report, None)) => {
            let kept = match &place_at {
                Some(at) => keep_place(client, at, &report).await,
                None => None,
            };
            Ok((report, kept))
        }
        other => other,
    };
    let (mut report, mut findings_error) = match outcome {
        Ok(outcome) => outcome,
        Err(err) => return Invocation::failed(None, err, "sweep refused"),
    };
    if let (None, Some(comparison), Some(folder)) = (&findings_error, comparison, &folder) {
        findings_error = compare_sweep(client, comparison, folder, &mut report, resumed).await;
    }
    if findings_error.is_none() {
        findings_error = send_sweep(clients, config, &context.invoked_function_arn, &mut report).await;
    }
    let findings_error = match (findings_error, &folder) {
        (None, Some(folder)) => write_report(client, folder, &report).await.err(),
        (error, _) => error,
    };
    swept(kind, scope, report, findings_error)
}

/// The sweep compared with the last completed one: its changes into `report` (an error when
/// they could not be written). Complete when it took up no place, left none and reached every
/// account.
pub async fn compare_sweep(
    client: &aws_sdk_s3::Client,
    comparison: compare_runs::Comparison,
    folder: &S3Location,
    report: &mut SweepOutcome,
    resumed: bool,
) -> Option<NotWritten> {
    // Boxed, as `compare_runs::after_run`.
    Box::pin(async move {
        let findings_file = report.findings_uri()?;
        let complete = !resumed && report.is_whole();
        let counted = {
            let outcome = &*report;
            compare_runs::finish(
                client,
                comparison,
                folder,
                &findings_file,
                complete,
                |account, bucket| outcome.covers(account, bucket),
            )
            .await
        };
        match counted {
            Ok(counts) => {
                report.set_changes(counts);
                None
            }
            Err(err) => Some(err),
        }
    })
    .await
}

/// The sweep's findings (and resolved changes) to Security Hub when `SECURITY_HUB` is on.
pub async fn send_sweep(
    clients: &Clients,
    config: &Config,
    function_arn: &str,
    report: &mut SweepOutcome,
) -> Option<NotWritten> {
    let findings = report.findings_written();
    // Boxed, as `compare_runs::after_run`.
    let sent = Box::pin(crate::to_security_hub::send(
        clients,
        config,
        function_arn,
        findings.as_ref(),
        report.changes(),
    ))
    .await;
    match sent {
        Ok(imported) => {
            report.set_security_hub(imported);
            None
        }
        Err(err) => Some(err),
    }
}

/// A sweep's invocation, its summary logged.
pub fn swept(kind: StrategyKind, scope: &str, report: SweepOutcome, findings_error: Option<NotWritten>) -> Invocation {
    let totals = report.totals();
    tracing::info!(
        strategy = kind.name(),
        scope,
        accounts = report.accounts().len(),
        buckets = totals.buckets,
        audited = totals.audited,
        acls_disabled = totals.acls_disabled,
        failed = totals.failed,
        not_reached = totals.not_reached,
        acls_fetched = totals.acls_fetched,
        exposed_objects = totals.exposed_objects,
        public_policy_buckets = totals.public_policy_buckets,
        "swept"
    );
    if let Some(err) = &findings_error {
        tracing::error!(error = %err, "sweep's findings or report not written");
    }
    Invocation::Swept {
        report: Box::new(report),
        findings_error,
    }
}

/// Stores where `report`'s sweep stopped for the next run, or removes the place it took up
/// once it reached the end.
async fn keep_place(client: &aws_sdk_s3::Client, at: &S3Location, report: &SweepOutcome) -> Option<NotWritten> {
    match report {
        SweepOutcome::Account(report) => keep(client, at, report.resume.as_ref(), report.resumed_at.is_some()).await,
        SweepOutcome::Organization(report) => {
            keep(client, at, report.resume.as_ref(), report.resumed_at.is_some()).await
        }
    }
}

/// The place a sweep `stopped` at stored; once it reached the end, the one it `resumed` from
/// removed.
async fn keep(
    client: &aws_sdk_s3::Client,
    at: &S3Location,
    stopped: Option<&impl serde::Serialize>,
    resumed: bool,
) -> Option<NotWritten> {
    match stopped {
        Some(place) => store(client, at, place).await.err(),
        None if resumed => clear(client, at).await.err(),
        None => None,
    }
}

/// Where an earlier sweep stopped.
#[derive(Debug)]
pub enum Place {
    Account(SweepPlace),
    Organization(OrganizationPlace),
}

/// How a sweep runs besides its job.
pub struct How {
    pub stop_at: Option<std::time::Instant>,
    pub findings: Option<FindingsOutput>,
    /// The place to take up.
    pub resume: Option<Place>,
    /// Settings only, no bucket crawled: the state machine's plan.
    pub settings_only: bool,
    pub suppressions: Option<std::sync::Arc<acl_audit::suppressions::Suppressions>>,
    /// The last completed sweep's findings, when this one is compared with it.
    pub baseline: Option<std::sync::Arc<acl_audit::changes::Baseline>>,
}

/// The account's or the organization's sweep of `job`; a findings file that could not be
/// written beside the report.
pub async fn sweep(
    kind: StrategyKind,
    clients: &Clients,
    config: &Config,
    context: &Context,
    job: SweepJob,
    how: How,
) -> Result<(SweepOutcome, Option<NotWritten>), HandlerError> {
    let SweepJob {
        organization,
        include,
        exclude,
        fetch_when_acls_disabled,
    } = job;
    let How {
        stop_at,
        findings,
        resume,
        settings_only,
        suppressions,
        baseline,
    } = how;
    let scope = SweepScope {
        include,
        exclude,
        fetch_when_acls_disabled,
        stop_at,
        settings_only,
        suppressions,
        baseline,
        format: config.findings_format,
    };
    let client = &clients.s3;
    let strategy: Strategy = config.strategy(kind);
    let on_bucket = || -> acl_audit::sweep::OnBucket {
        Box::new(|bucket: &str| tracing::info!(bucket, "auditing the bucket's objects"))
    };
    match organization {
        None => {
            let options = SweepOptions {
                scope,
                findings,
                on_bucket: Some(on_bucket()),
                account_id: account_of(&context.invoked_function_arn).map(str::to_owned),
                resume: match resume {
                    Some(Place::Account(place)) => Some(place),
                    _ => None,
                },
            };
            let regional = RegionalClients::new(client.clone());
            let account = clients.account_check(&context.invoked_function_arn);
            match sweep_account(&regional, account, strategy, options).await {
                Ok(report) => Ok((SweepOutcome::Account(report), None)),
                Err(SweepError::NotWritten { error, report }) => Ok((SweepOutcome::Account(*report), Some(error))),
                Err(err @ SweepError::ListBuckets { .. }) => Err(HandlerError::BucketsNotListed(err.to_string())),
            }
        }
        Some(role) => {
            let Some((organizations, sts)) = &clients.organization else {
                return Err(HandlerError::AccountsNotListed(
                    "no Organizations client configured".to_owned(),
                ));
            };
            let options = OrganizationOptions {
                role_name: role.name,
                external_id: role.external_id,
                scope,
                findings,
                on_bucket: Some(on_bucket()),
                resume: match resume {
                    Some(Place::Organization(place)) => Some(place),
                    _ => None,
                },
            };
            let org_clients = OrganizationClients {
                s3: client,
                control: clients.control.as_ref(),
                organizations,
                sts,
            };
            match sweep_organization(org_clients, strategy, options).await {
                Ok(report) => Ok((SweepOutcome::Organization(report), None)),
                Err(OrganizationError::NotWritten { error, report }) => {
                    Ok((SweepOutcome::Organization(*report), Some(error)))
                }
                Err(err @ OrganizationError::ListAccounts { .. }) => {
                    Err(HandlerError::AccountsNotListed(err.to_string()))
                }
            }
        }
    }
}
