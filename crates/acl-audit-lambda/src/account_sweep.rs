//! An account's sweep ([`Job::Sweep`](crate::job::Job::Sweep)): every bucket the function's role
//! can list, each audited where its ACLs apply (`acl_audit::sweep`), into one findings file and
//! one report under `<FINDINGS_URI>account-<account id>/<yyyy>/<mm>/<dd>/<request id>/`.

use acl_audit::StrategyKind;
use acl_audit::findings::FINDINGS_FILE;
use acl_audit::s3::region::RegionalClients;
use acl_audit::sweep::{SweepError, SweepOptions, sweep_account};
use acl_audit::{FindingsOutput, Strategy};
use lambda_runtime::Context;

use crate::clients::{Clients, account_of};
use crate::config::Config;
use crate::error::HandlerError;
use crate::job::SweepJob;
use crate::outcome::Invocation;
use crate::record::{in_folder, run_folder, stop_at, write_report};

pub async fn run(
    kind: StrategyKind,
    clients: &Clients,
    config: &Config,
    context: &Context,
    job: SweepJob,
) -> Invocation {
    let SweepJob {
        include,
        exclude,
        fetch_when_acls_disabled,
    } = job;
    let client = &clients.s3;
    let account_id = account_of(&context.invoked_function_arn);
    let folder_name = format!("account-{}", account_id.unwrap_or("unknown"));
    let folder = run_folder(config, &folder_name, &context.request_id);
    let options = SweepOptions {
        include,
        exclude,
        fetch_when_acls_disabled,
        stop_at: stop_at(context, config.deadline_margin),
        findings: folder
            .as_ref()
            .map(|folder| FindingsOutput::s3(client, &in_folder(folder, FINDINGS_FILE))),
        on_bucket: Some(Box::new(|bucket: &str| {
            tracing::info!(bucket, "auditing the bucket's objects")
        })),
        account_id: account_id.map(str::to_owned),
    };
    let strategy: Strategy = config.strategy(kind);
    let clients_by_region = RegionalClients::new(client.clone());
    let account = clients.account_check(&context.invoked_function_arn);
    let (report, findings_error) = match sweep_account(&clients_by_region, account, strategy, options).await {
        Ok(report) => (report, None),
        Err(SweepError::NotWritten { error, report }) => (*report, Some(error)),
        Err(err @ SweepError::ListBuckets { .. }) => {
            return Invocation::failed(None, HandlerError::BucketsNotListed(err.to_string()), "sweep refused");
        }
    };
    let findings_error = match (findings_error, &folder) {
        (None, Some(folder)) => write_report(client, folder, &report).await.err(),
        (error, _) => error,
    };
    let totals = &report.totals;
    tracing::info!(
        strategy = kind.name(),
        account = account_id.unwrap_or(""),
        buckets = totals.buckets,
        audited = totals.audited,
        acls_disabled = totals.acls_disabled,
        failed = totals.failed,
        not_reached = totals.not_reached,
        acls_fetched = totals.acls_fetched,
        exposed_objects = totals.exposed_objects,
        public_policy_buckets = totals.public_policy_buckets,
        "account swept"
    );
    if let Some(err) = &findings_error {
        tracing::error!(error = %err, "sweep's findings or report not written");
    }
    Invocation::Swept {
        report: Box::new(report),
        findings_error,
    }
}
