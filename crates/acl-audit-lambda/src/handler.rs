//! One invocation: resolve the target from the event over the configuration, audit it, write
//! its findings and report where configured, and log one summary event.

use std::time::{Duration, Instant, SystemTime};

use acl_audit::audit::{FindingsNotWritten, InventoryAuditError, JSON_LINES};
use acl_audit::bucket::AccountCheck;
use acl_audit::findings::{self, FINDINGS_FILE, REPORT_FILE};
use acl_audit::model::S3Location;
use acl_audit::s3::region::RegionalClients;
use acl_audit::s3::upload::{StreamingUpload, put_object};
use acl_audit::{AuditError, AuditOptions, AuditReport, FindingsOutput, Resume, StrategyKind};
use aws_sdk_s3::Client;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

use crate::config::Config;
use crate::continuation::Chain;
use crate::error::{HandlerError, RequestError};
use crate::event::{MapRunOutput, Pass, StepRequest, parse_event};
use crate::map_run::summarize_passes;
use crate::stored_resume;

/// One invocation: resolve the target from the event over `config`, audit it (writing its
/// findings and report under `FINDINGS_URI` when set), log one summary event and return the
/// report.
pub async fn handle(
    kind: StrategyKind,
    client: &Client,
    config: &Config,
    event: LambdaEvent<Value>,
) -> Result<AuditReport, HandlerError> {
    invoke(kind, client, config, event).await.into_result()
}

/// The same, reading the account's Block Public Access with `control` too, for the account
/// the function's ARN names.
pub async fn handle_with(
    kind: StrategyKind,
    client: &Client,
    control: &aws_sdk_s3control::Client,
    config: &Config,
    event: LambdaEvent<Value>,
) -> Result<AuditReport, HandlerError> {
    Box::pin(invoke_with(kind, client, Some(control), config, event))
        .await
        .into_result()
}

/// What an invocation did, for its metrics as well as its caller: an audit whose findings
/// were not written still has its report.
#[derive(Debug)]
pub enum Invocation {
    Audited {
        report: Box<AuditReport>,
        findings_error: Option<FindingsNotWritten>,
        scope: Scope,
    },
    Failed {
        /// The bucket, when the event or the environment named one.
        bucket: Option<String>,
        error: HandlerError,
    },
    /// A plan or collect step of a state machine run of parts: no audit, a [`Pass`].
    Stepped { pass: Box<Pass> },
}

/// What an invocation answers its caller: an audit's report, or a step's pass.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Reply {
    Report(Box<AuditReport>),
    Pass(Box<Pass>),
}

/// What part of an audit an invocation's report covers, which decides the metrics it counts
/// in: the bucket's counts (the alarms') once per audit, a Distributed Map run's in its last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A whole run (or an S3 event's object): counted per strategy and per bucket.
    Run,
    /// One batch of a Distributed Map run: counted per strategy only.
    MapBatch,
    /// A Distributed Map run's batches added up: counted per bucket only.
    MapRun,
}

impl Invocation {
    pub fn audited(report: AuditReport, findings_error: Option<FindingsNotWritten>, scope: Scope) -> Self {
        Invocation::Audited {
            report: Box::new(report),
            findings_error,
            scope,
        }
    }

    /// The invocation's scope; a failed one counts as a run.
    pub fn scope(&self) -> Scope {
        match self {
            Invocation::Audited { scope, .. } => *scope,
            Invocation::Failed { .. } | Invocation::Stepped { .. } => Scope::Run,
        }
    }

    /// What the caller is answered: the report, the pass, or the error.
    pub fn into_reply(self) -> Result<Reply, HandlerError> {
        match self {
            Invocation::Stepped { pass } => Ok(Reply::Pass(pass)),
            audit => audit.into_result().map(|report| Reply::Report(Box::new(report))),
        }
    }

    /// An audit's report, or its error; a step (which has no report) is refused as not an audit.
    pub fn into_result(self) -> Result<AuditReport, HandlerError> {
        match self {
            Invocation::Stepped { .. } => {
                Err(RequestError::InvalidEvent("a plan or collect step answers a pass, not a report".to_owned()).into())
            }
            Invocation::Audited {
                report,
                findings_error: None,
                ..
            } => Ok(*report),
            Invocation::Audited {
                findings_error: Some(err),
                ..
            } => Err(HandlerError::FindingsNotWritten(err)),
            Invocation::Failed { error, .. } => Err(error),
        }
    }

    pub fn bucket(&self) -> Option<&str> {
        match self {
            Invocation::Audited { report, .. } => Some(&report.bucket),
            Invocation::Failed { bucket, .. } => bucket.as_deref(),
            Invocation::Stepped { pass } => Some(&pass.bucket),
        }
    }

    pub fn report(&self) -> Option<&AuditReport> {
        match self {
            Invocation::Audited { report, .. } => Some(report),
            Invocation::Failed { .. } | Invocation::Stepped { .. } => None,
        }
    }

    pub fn failed(&self) -> bool {
        !matches!(
            self,
            Invocation::Audited {
                findings_error: None,
                ..
            }
        )
    }
}

pub async fn invoke(kind: StrategyKind, client: &Client, config: &Config, event: LambdaEvent<Value>) -> Invocation {
    // Boxed: an invocation's future is large in a debug build, and a caller awaiting several
    // in turn (a test on a 2 MiB thread) need not hold it on its stack.
    Box::pin(invoke_with(kind, client, None, config, event)).await
}

/// The account id in a function's ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`).
pub fn account_of(function_arn: &str) -> Option<&str> {
    let account = function_arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// An invocation; with `control`, the account's Block Public Access is read too.
pub async fn invoke_with(
    kind: StrategyKind,
    client: &Client,
    control: Option<&aws_sdk_s3control::Client>,
    config: &Config,
    event: LambdaEvent<Value>,
) -> Invocation {
    Box::pin(invoke_chaining(kind, client, control, None, config, event)).await
}

/// The same; with `lambda` and `CHAIN_CONTINUATION=true`, a run stopped by its deadline
/// invokes the function again at once to carry on ([`crate::continuation`]).
pub async fn invoke_chaining(
    kind: StrategyKind,
    client: &Client,
    control: Option<&aws_sdk_s3control::Client>,
    lambda: Option<&aws_sdk_lambda::Client>,
    config: &Config,
    event: LambdaEvent<Value>,
) -> Invocation {
    if let Some(step) = StepRequest::parse(&event.payload) {
        let stepped = match step {
            Ok(StepRequest::Plan(request)) => crate::steps::plan(client, config, request).await,
            Ok(StepRequest::Collect(request)) => crate::steps::collect(client, *request).await,
            Err(err) => return refused(kind, config, err),
        };
        return match stepped {
            Ok(pass) => {
                tracing::info!(bucket = %pass.bucket, pass = pass.pass, parts = pass.count, file = %pass.items.key, "parts written");
                Invocation::Stepped { pass: Box::new(pass) }
            }
            Err(error) => {
                tracing::error!(strategy = kind.name(), error = %error, "state machine step failed");
                Invocation::Failed {
                    bucket: config.bucket.clone(),
                    error,
                }
            }
        };
    }
    if let Some(run) = MapRunOutput::parse(&event.payload) {
        return match run {
            Ok(run) => Box::pin(add_up_map_run(kind, client, config, run)).await,
            Err(err) => refused(kind, config, err),
        };
    }
    // The account whose Block Public Access applies: the one the function's ARN names.
    let account = control
        .zip(account_of(&event.context.invoked_function_arn))
        .map(|(client, account_id)| AccountCheck { client, account_id });
    let request = parse_event(event.payload);
    // A whole target's run (a schedule's, a link's, a caller's token) may chain; a part, a
    // batch or an object event never does.
    let chain = match (&request, lambda) {
        (Ok(request), Some(lambda)) if config.chain_continuation && request.keys.is_none() && !request.map_part => {
            Some(Chain {
                lambda,
                function_arn: &event.context.invoked_function_arn,
                request: request.clone(),
                limit: config.chain_limit,
            })
        }
        _ => None,
    };
    let parsed = request.and_then(|mut request| {
        // A token of an inventory's run reads on in the same report.
        let token_manifest = request
            .resume
            .as_ref()
            .and_then(|resume| resume.inventory.as_ref())
            .map(|cursor| cursor.manifest.clone());
        if let (Some(named), Some(token)) = (&request.inventory, &token_manifest)
            && named != token
        {
            return Err(RequestError::InvalidEvent(format!(
                "the event's inventory {named:?} is not the resume token's {token:?}: drop one of them"
            )));
        }
        if let Some(manifest) = request.inventory.take().or(token_manifest) {
            let manifest = manifest.parse::<S3Location>().map_err(|err| {
                RequestError::InvalidEvent(format!(
                    "inventory: {err}: give the report's s3://…/manifest.json, or its configuration's folder s3://…/<source bucket>/<configuration id>/"
                ))
            })?;
            let resume = request.resume.take();
            let bucket = match &resume {
                Some(resume) => resume.bucket.clone(),
                None => request
                    .bucket
                    .or_else(|| config.bucket.clone())
                    .ok_or(RequestError::MissingBucket)?,
            };
            return Ok(Source::Inventory {
                bucket,
                manifest,
                resume,
                scope: if request.map_part { Scope::MapBatch } else { Scope::Run },
            });
        }
        let audit_when_acls_disabled = request
            .audit_when_acls_disabled
            .unwrap_or(config.audit_when_acls_disabled);
        let scope = if request.map_batch || request.map_part {
            Scope::MapBatch
        } else {
            Scope::Run
        };
        Ok(Source::Listing {
            target: config.target(request)?,
            audit_when_acls_disabled,
            scope,
        })
    });
    let (mut target, audit_when_acls_disabled, scope) = match parsed {
        Ok(Source::Listing {
            target,
            audit_when_acls_disabled,
            scope,
        }) => (target, audit_when_acls_disabled, scope),
        Ok(Source::Inventory {
            bucket,
            manifest,
            resume,
            scope,
        }) => {
            let source = InventorySource {
                bucket: &bucket,
                manifest: &manifest,
                resume: resume.as_ref(),
                scope,
                chain,
            };
            return Box::pin(audit_from_inventory(
                kind,
                client,
                account,
                config,
                source,
                &event.context,
            ))
            .await;
        }
        Err(err) => return refused(kind, config, err),
    };
    // A whole-target run (a schedule's) takes up where the last run of its target stopped;
    // a caller that hands a token, a batch or an object event drives the run itself.
    let token = match (&config.findings, scope) {
        (Some(base), Scope::Run) if config.resume_from_store && target.resume.is_none() => {
            Some(stored_resume::token_location(base, &target))
        }
        _ => None,
    };
    let mut resumed_from = None;
    if let Some(location) = &token
        && let Some(stored) = stored_resume::load(client, location, &target).await
    {
        tracing::info!(token = %location, keys = stored.keys.len(), start_after = stored.start_after.as_deref(), "resuming where the last run of this target stopped");
        target.resume = Some(stored);
        resumed_from = Some(location.to_string());
    }
    // The bucket's region (a client for it if it is not the function's) and its settings,
    // which decide what its objects' ACLs mean, read with the listing's first page.
    let clients = RegionalClients::new(client.clone());
    let folder = run_folder(config, &target.bucket, &event.context.request_id);
    let options = AuditOptions {
        stop_at: stop_at(&event.context, config.deadline_margin),
        findings: folder
            .as_ref()
            .map(|folder| FindingsOutput::s3(client, &in_folder(folder, FINDINGS_FILE))),
        progress: None,
        bucket: None,
        fetch_when_acls_disabled: audit_when_acls_disabled,
        listers: config.listers.get(),
    };
    let (report, findings_error) = match acl_audit::audit::audit_bucket_located(
        &clients,
        account,
        &target,
        config.strategy(kind),
        options,
    )
    .await
    {
        Ok(mut report) => {
            report.resumed_from = resumed_from;
            let found = report.resumed_from.is_some();
            let written = record_run(
                client,
                token.as_ref(),
                found,
                folder.as_ref(),
                &mut report,
                chain.as_ref(),
            )
            .await;
            (report, written)
        }
        Err(AuditError::FindingsNotWritten { error, report }) => (*report, Some(error)),
        Err(AuditError::List(err)) => return audit_failed(kind, target.bucket, err.into()),
    };
    log_report(kind, &event.context.request_id, &report);
    if let Some(err) = &findings_error {
        tracing::error!(strategy = kind.name(), error = %err, "findings not written");
    }
    Invocation::audited(report, findings_error, scope)
}

/// What a finished run leaves behind: its token passed on at `token` (see [`pass_on`]), its
/// continuation invoked when it chains (after the token is stored, where the next link takes it
/// up), then its report in its `folder`; the first write that fails is the run's findings error.
async fn record_run(
    client: &Client,
    token: Option<&S3Location>,
    found: bool,
    folder: Option<&S3Location>,
    report: &mut AuditReport,
    chain: Option<&Chain<'_>>,
) -> Option<FindingsNotWritten> {
    let mut stored = false;
    if let Some(location) = token {
        if let Err(err) = pass_on(client, location, report, found).await {
            return Some(err);
        }
        stored = report.truncated.is_some() && report.resume.is_some();
    }
    if let Some(chain) = chain {
        report.continued_by = chain.continue_after(report, stored).await;
    }
    match folder {
        Some(folder) => write_report(client, folder, report).await.err(),
        None => None,
    }
}

/// Stores a stopped run's token for the next run of its target, or, once the target is done,
/// removes the one it found (`found`).
async fn pass_on(
    client: &Client,
    location: &S3Location,
    report: &AuditReport,
    found: bool,
) -> Result<(), FindingsNotWritten> {
    match (&report.truncated, &report.resume) {
        (Some(_), Some(next)) => {
            tracing::info!(token = %location, "resume token stored for the next run of this target");
            stored_resume::store(client, location, next).await
        }
        (None, _) if found => stored_resume::clear(client, location).await,
        _ => Ok(()),
    }
}

/// Where a run's objects come from.
enum Source {
    /// A listing of the target (or the keys a batch or an event names).
    Listing {
        target: acl_audit::Target,
        /// Fetch ACLs even where the bucket's ACLs are disabled.
        audit_when_acls_disabled: bool,
        scope: Scope,
    },
    /// An S3 Inventory report's ACLs.
    Inventory {
        bucket: String,
        manifest: S3Location,
        resume: Option<Resume>,
        scope: Scope,
    },
}

/// What an inventory's run reads: the report, for `bucket`, and where an earlier run stopped.
struct InventorySource<'a> {
    bucket: &'a str,
    manifest: &'a S3Location,
    resume: Option<&'a Resume>,
    /// A part of a state machine run's, or a run of its own.
    scope: Scope,
    /// How the run chains its continuation, when it does.
    chain: Option<Chain<'a>>,
}

/// A run whose source is an S3 Inventory report: the bucket's settings read first, then every
/// ACL the report holds, GetObjectAcl only for rows whose ACL is UNAVAILABLE; findings and
/// report written as a listing's run writes them.
async fn audit_from_inventory(
    kind: StrategyKind,
    client: &Client,
    account: Option<AccountCheck<'_>>,
    config: &Config,
    source: InventorySource<'_>,
    lambda: &Context,
) -> Invocation {
    let InventorySource {
        bucket,
        manifest,
        resume,
        scope,
        chain,
    } = source;
    let request_id = &lambda.request_id;
    let failed = |error: HandlerError| audit_failed(kind, bucket.to_owned(), error);
    let clients = RegionalClients::new(client.clone());
    let (located, context) = match acl_audit::bucket::BucketContext::locate_and_read(&clients, bucket, account).await {
        Ok(located) => located,
        Err(err) => return failed(err.into()),
    };
    // A configuration's folder rather than a manifest: its newest report (a schedule's).
    let newest;
    let manifest = if manifest.prefix.ends_with(".json") {
        manifest
    } else {
        match acl_audit::s3::inventory::newest_manifest(&located, manifest).await {
            Ok(found) => {
                tracing::info!(manifest = %found, "reading the newest inventory report");
                newest = found;
                &newest
            }
            Err(err) => return failed(HandlerError::Inventory(err)),
        }
    };
    // A run its event hands no token (a schedule's) goes on where the last one stopped, while
    // that was in the report this run reads; a newer report supersedes the token.
    let token = match &config.findings {
        Some(base) if config.resume_from_store && resume.is_none() => {
            Some(stored_resume::inventory_token_location(base, bucket))
        }
        _ => None,
    };
    let (mut stored, mut found) = (None, false);
    if let Some(location) = &token
        && let Some(token) = stored_resume::load_inventory(client, location, bucket).await
    {
        found = true;
        let at = token.inventory.as_ref().map(|cursor| cursor.manifest.clone());
        if at.as_deref() == Some(manifest.to_string().as_str()) {
            tracing::info!(token = %location, manifest = %manifest, "resuming where the last run stopped in this inventory report");
            stored = Some(token);
        } else {
            tracing::info!(token = %location, stored_in = at.as_deref(), manifest = %manifest, "a newer inventory report than the stored token's: reading it from the start");
        }
    }
    let resumed_from = stored.as_ref().and(token.as_ref()).map(S3Location::to_string);
    let resume = resume.or(stored.as_ref());
    let folder = run_folder(config, bucket, request_id);
    let options = AuditOptions {
        stop_at: stop_at(lambda, config.deadline_margin),
        findings: folder
            .as_ref()
            .map(|folder| FindingsOutput::s3(client, &in_folder(folder, FINDINGS_FILE))),
        progress: None,
        bucket: Some(context),
        fetch_when_acls_disabled: true,
        listers: 1,
    };
    let (report, findings_error) =
        match acl_audit::audit::audit_inventory(&located, manifest, resume, config.strategy(kind), options).await {
            Ok(mut report) => {
                report.resumed_from = resumed_from;
                let written = record_run(
                    client,
                    token.as_ref(),
                    found,
                    folder.as_ref(),
                    &mut report,
                    chain.as_ref(),
                )
                .await;
                (report, written)
            }
            Err(InventoryAuditError::FindingsNotWritten { error, report }) => (*report, Some(error)),
            Err(InventoryAuditError::Inventory(err)) => return failed(HandlerError::Inventory(err)),
        };
    if report.bucket != bucket {
        tracing::warn!(bucket, inventory_of = %report.bucket, "the inventory is of another bucket than the one named");
    }
    log_report(kind, request_id, &report);
    Invocation::audited(report, findings_error, scope)
}

fn audit_failed(kind: StrategyKind, bucket: String, error: HandlerError) -> Invocation {
    tracing::error!(strategy = kind.name(), error = %error, "audit failed");
    Invocation::Failed {
        bucket: Some(bucket),
        error,
    }
}

fn refused(kind: StrategyKind, config: &Config, err: RequestError) -> Invocation {
    tracing::error!(strategy = kind.name(), error = %err, "invocation refused");
    Invocation::Failed {
        bucket: config.bucket.clone(),
        error: err.into(),
    }
}

/// The state machine's last step: adds up the batches the Map's ResultWriter recorded and, under
/// `FINDINGS_URI`, writes the run's findings file (every batch's lines, and a failure line per
/// key of a failed batch) and its report, in the run's own folder named by the map run's id.
async fn add_up_map_run(kind: StrategyKind, client: &Client, config: &Config, run: MapRunOutput) -> Invocation {
    let Some(bucket) = run.bucket.clone().or_else(|| config.bucket.clone()) else {
        return refused(kind, config, RequestError::MissingBucket);
    };
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
    let summed = summarize_passes(client, passes, handed_on, upload.as_mut()).await;
    let summary = match summed {
        Ok(summary) => summary,
        Err(err) => {
            if let Some(upload) = &mut upload {
                upload.abort().await;
            }
            tracing::error!(strategy = kind.name(), error = %err, manifest = %details.key, "map run not added up");
            return Invocation::Failed {
                bucket: Some(bucket),
                error: HandlerError::MapRun(err),
            };
        }
    };
    let mut report = summary.report;
    if report.bucket.is_empty() {
        report.bucket = bucket;
    }
    let written = match (upload, &folder) {
        (Some(upload), Some(folder)) => match upload.finish().await {
            Ok(()) => write_report(client, folder, &report).await.err(),
            Err(err) => Some(err.into()),
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
    if let Some(err) = &written {
        tracing::error!(strategy = kind.name(), error = %err, "findings not written");
    }
    Invocation::audited(report, written, Scope::MapRun)
}

/// The run's folder under `FINDINGS_URI`, dated today, when findings are written.
fn run_folder(config: &Config, bucket: &str, run_id: &str) -> Option<S3Location> {
    let date = acl_audit::findings::utc_date(SystemTime::now());
    config
        .findings
        .as_ref()
        .map(|base| findings::run_folder(base, bucket, date, run_id))
}

fn in_folder(folder: &S3Location, file: &str) -> S3Location {
    S3Location {
        bucket: folder.bucket.clone(),
        prefix: format!("{}{file}", folder.prefix),
    }
}

/// The report beside the findings file.
async fn write_report(client: &Client, folder: &S3Location, report: &AuditReport) -> Result<(), FindingsNotWritten> {
    // Plain data with string keys: serialising cannot fail.
    let body = serde_json::to_vec_pretty(report).unwrap_or_default();
    Ok(put_object(client, &in_folder(folder, REPORT_FILE), "application/json", body).await?)
}

fn log_report(kind: StrategyKind, request_id: &str, report: &AuditReport) {
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
