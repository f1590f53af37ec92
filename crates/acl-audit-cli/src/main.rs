//! `acl-audit scan s3://bucket/prefix`: the same audit the functions run, from a shell, with
//! the user's AWS configuration (profile, region, `AWS_ENDPOINT_URL`). The report goes to
//! stdout as JSON; the exit code says what a script needs to know.

use std::io::IsTerminal as _;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use acl_audit::audit::{AuditError, AuditOptions, FindingsOutput, Progress, audit_bucket_located, write_changes};
use acl_audit::bucket::AccountCheck;
use acl_audit::changes::{Baseline, CHANGES_FILE, ChangeCounts, LineSource};
use acl_audit::findings::{self, FINDINGS_FILE, REPORT_FILE};
use acl_audit::model::{S3Location, check_bucket_name};
use acl_audit::ocsf::FindingsFormat;
use acl_audit::organization::{OrganizationClients, OrganizationError, OrganizationOptions, sweep_organization};
use acl_audit::s3::client::{
    ClientChoices, client_from_env_with, control_client_from_env_with, organization_clients_from_env_with,
    security_hub_client_from_env_with,
};
use acl_audit::s3::region::RegionalClients;
use acl_audit::s3::upload::{Artifact, put_object};
use acl_audit::security_hub::{Imported, Product, import};
use acl_audit::strategy::InFlight;
use acl_audit::strategy::default_blocking_pool_size;
use acl_audit::sweep::{BucketAudit, OnBucket, SweepError, SweepOptions, SweepScope, SweepTotals, sweep_account};
use acl_audit::{AuditReport, ListError, Strategy, StrategyKind, Target};
use clap::{Parser, Subcommand};

mod fix;
use indicatif::{ProgressBar, ProgressStyle};

/// Exit codes, for scripts: the report on stdout has the detail.
const CLEAN: u8 = 0;
const ERROR: u8 = 1;
// 2: clap's, for a command line it cannot read.
const FINDINGS: u8 = 3;
const INCOMPLETE: u8 = 4;

/// Audit every object ACL of an S3 bucket, or of every bucket of an account.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Exit codes: 0 clean, 1 error, 2 bad usage, 3 findings, 4 some objects not audited (no findings)."
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the bucket (or prefix), fetch every object's ACL and report what they grant.
    Scan(Box<Scan>),
    /// Turn a run's findings into S3 Batch Operations manifests and jobs (one per bucket) that
    /// make each exposed object private, for review; the jobs are yours to create.
    FixPlan(FixPlan),
    /// Make each exposed object a run found private with PutObjectAcl: a dry run unless --apply.
    Fix(Fix),
}

#[derive(Debug, clap::Args)]
struct FixPlan {
    /// The run's findings file: a local FILE or s3://bucket/key.
    findings: String,
    /// Where the manifests and jobs go: <DIR>/<bucket>/manifest.csv and job.json.
    #[arg(long, value_name = "DIR", default_value = "fix-plan")]
    out: PathBuf,
    #[command(flatten)]
    aws: AwsArgs,
}

#[derive(Debug, clap::Args)]
struct Fix {
    /// The run's findings file: a local FILE or s3://bucket/key.
    findings: String,
    /// Change the ACLs; without it, say what would change.
    #[arg(long)]
    apply: bool,
    /// Refuse more objects than this (use fix-plan and S3 Batch Operations for more).
    #[arg(long, default_value_t = 1000)]
    max_objects: usize,
    #[command(flatten)]
    aws: AwsArgs,
}

/// The AWS configuration of a command that is not a scan.
#[derive(Debug, clap::Args)]
struct AwsArgs {
    /// A profile of your AWS config and credentials files (else AWS_PROFILE, else default).
    #[arg(long)]
    profile: Option<String>,
    /// The region to send requests to (else AWS_REGION, else the profile's).
    #[arg(long)]
    region: Option<String>,
    /// Another S3 endpoint (else AWS_ENDPOINT_URL): local-s3, moto, MinIO.
    #[arg(long)]
    endpoint_url: Option<String>,
}

impl AwsArgs {
    async fn client(&self) -> Result<aws_sdk_s3::Client, String> {
        let choices = ClientChoices {
            endpoint_url: self.endpoint_url.clone(),
            profile: self.profile.clone(),
            region: self.region.clone(),
        };
        client_from_env_with(&choices).await.map_err(|err| err.to_string())
    }
}

/// `fix-plan`: the plan as JSON on stdout.
async fn fix_plan(plan: FixPlan) -> Result<u8, String> {
    let client = plan.aws.client().await?;
    let exposed = fix::exposed(&client, &plan.findings).await?;
    let written = fix::write_plan(&exposed, &plan.out)?;
    print_json(&written);
    Ok(CLEAN)
}

/// `fix`: a line per object; exit 1 when any could not be changed.
async fn fix_objects(fix: Fix) -> Result<u8, String> {
    let client = fix.aws.client().await?;
    let exposed = fix::exposed(&client, &fix.findings).await?;
    if exposed.len() > fix.max_objects {
        return Err(format!(
            "{} exposed objects, over --max-objects {}: use acl-audit fix-plan and S3 Batch Operations, or raise --max-objects",
            exposed.len(),
            fix.max_objects
        ));
    }
    let failed = fix::apply(&client, &exposed, fix.apply).await;
    if !fix.apply {
        eprintln!(
            "dry run: {} objects would be made private; --apply changes them",
            exposed.len()
        );
    }
    if failed.is_empty() {
        Ok(CLEAN)
    } else {
        Err(format!(
            "{} of {} objects not changed (above)",
            failed.len(),
            exposed.len()
        ))
    }
}

#[derive(Debug, clap::Args)]
struct Scan {
    /// What to audit: s3://bucket or s3://bucket/prefix (or --all-buckets).
    #[arg(required_unless_present_any = ["all_buckets", "organization"], conflicts_with_all = ["all_buckets", "organization"])]
    location: Option<S3Location>,
    /// Every bucket your identity can list (ListBuckets), each crawled where its ACLs apply,
    /// into one report (per bucket and totals) and one findings file.
    #[arg(long, conflicts_with = "organization")]
    all_buckets: bool,
    /// Every bucket of every ACTIVE account of your AWS Organization (run it in the management
    /// account or a delegated administrator): --role-name assumed in each member account.
    #[arg(long, requires = "role_name")]
    organization: bool,
    /// With --organization: the member role to assume (deploy/member-role.yaml).
    #[arg(long, value_name = "NAME", requires = "organization")]
    role_name: Option<String>,
    /// With --organization: the external id the member role's trust policy asks for.
    #[arg(long, value_name = "ID", requires = "organization")]
    external_id: Option<String>,
    /// With --all-buckets or --organization: only buckets whose name matches this glob (* and
    /// ?); repeatable.
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// With --all-buckets or --organization: no bucket whose name matches this glob; repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// How to schedule the GetObjectAcl calls.
    #[arg(long, default_value = "join-all", value_parser = parse_strategy)]
    strategy: StrategyKind,
    /// join-all's calls in flight at most, fixed (0: no limit). Default: up to 64, fewer while
    /// S3 answers SlowDown or slows down.
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// Stop listing after this many keys (the report then has a resume token).
    #[arg(long)]
    max_objects: Option<NonZeroUsize>,
    /// Write every finding and per-object failure as JSON Lines: a local FILE, an s3://bucket/key,
    /// or an s3://bucket/prefix/ (ending in /) under which the run writes
    /// <bucket>/<yyyy>/<mm>/<dd>/<run id>/findings.jsonl and report.json, as the functions do.
    #[arg(long, value_name = "FILE|S3_URI")]
    findings: Option<String>,
    /// The findings file's format: jsonl (this tool's lines) or ocsf (OCSF 1.5.0 Detection
    /// Finding events, each holding its line under unmapped.acl_audit).
    #[arg(long, value_name = "FORMAT", default_value = "jsonl", value_parser = parse_format)]
    format: FindingsFormat,
    /// A suppression file (a local FILE or an s3://bucket/key): the findings it accepts are
    /// written marked `suppressed` with their reason, counted apart, and do not make the exit
    /// code 3. A malformed file is an error before the audit.
    #[arg(long, value_name = "FILE|S3_URI")]
    suppressions: Option<String>,
    /// With --findings: the findings file of an earlier run of the same target (a local FILE or
    /// an s3://bucket/key). Each findings line then gets its first_seen, and changes.jsonl,
    /// beside the findings, names each finding new or resolved since (docs/report.md).
    #[arg(long, value_name = "FILE|S3_URI", requires = "findings")]
    compare_with: Option<String>,
    /// With --findings: send the findings to AWS Security Hub (BatchImportFindings, ASFF) in
    /// your identity's account and the region: active ones ACTIVE, suppressed, neutralised and
    /// resolved ones ARCHIVED. A finding Security Hub refuses after retries is an error (exit 1).
    #[arg(long, requires = "findings")]
    security_hub: bool,
    /// A profile of your AWS config and credentials files (else AWS_PROFILE, else default).
    #[arg(long)]
    profile: Option<String>,
    /// The region to send requests to (else AWS_REGION, else the profile's).
    #[arg(long)]
    region: Option<String>,
    /// Another S3 endpoint (else AWS_ENDPOINT_URL): local-s3, moto, MinIO.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    quiet: bool,
    /// Fetch every ACL even where the bucket's ACLs are disabled (BucketOwnerEnforced): each
    /// is then the owner's full control, one request per object to confirm it.
    #[arg(long)]
    audit_when_acls_disabled: bool,
    /// List every version (ListObjectVersions) and audit each one's ACL.
    #[arg(long)]
    include_versions: bool,
    /// Your account's id: the account's Block Public Access is then read too (S3 Control's
    /// GetPublicAccessBlock, s3:GetAccountPublicAccessBlock); without it, reported not checked.
    #[arg(long, value_name = "ID")]
    account_id: Option<String>,
}

fn parse_format(name: &str) -> Result<FindingsFormat, String> {
    FindingsFormat::parse(name).ok_or_else(|| format!("expected jsonl or ocsf, got {name:?}"))
}

fn parse_strategy(name: &str) -> Result<StrategyKind, String> {
    StrategyKind::ALL
        .into_iter()
        .find(|kind| kind.name() == name)
        .ok_or_else(|| format!("expected sequential, spawn-blocking or join-all, got {name:?}"))
}

fn main() -> ExitCode {
    let command = Args::parse().command;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("acl-audit: cannot start the runtime: {err}");
            return ExitCode::from(ERROR);
        }
    };
    let outcome = match command {
        Command::Scan(scan) => runtime.block_on(run(*scan)),
        Command::FixPlan(plan) => runtime.block_on(fix_plan(plan)),
        Command::Fix(fix) => runtime.block_on(fix_objects(fix)),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("acl-audit: {message}");
            ExitCode::from(ERROR)
        }
    }
}

/// Where the findings go, as the command line named it.
enum FindingsChoice {
    File(PathBuf),
    Object(S3Location),
    /// A run's folder, the report beside the findings.
    Folder(S3Location),
}

fn findings_choice(text: &str, bucket: &str) -> Result<FindingsChoice, String> {
    if !text.starts_with("s3://") {
        return Ok(FindingsChoice::File(PathBuf::from(text)));
    }
    let location: S3Location = text.parse().map_err(|err| format!("--findings: {err}"))?;
    if !(location.prefix.is_empty() || location.prefix.ends_with('/')) {
        return Ok(FindingsChoice::Object(location));
    }
    let now = SystemTime::now();
    let run_id = format!(
        "cli-{}-{}",
        now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs()),
        std::process::id()
    );
    Ok(FindingsChoice::Folder(findings::run_folder(
        &location,
        bucket,
        findings::utc_date(now),
        &run_id,
    )))
}

async fn run(scan: Scan) -> Result<u8, String> {
    let Some(location) = scan.location.clone() else {
        return if scan.organization {
            sweep_org(scan).await
        } else {
            sweep(scan).await
        };
    };
    if !scan.include.is_empty() || !scan.exclude.is_empty() {
        return Err("--include and --exclude choose a sweep's buckets: add --all-buckets or --organization".to_owned());
    }
    let bucket = location.bucket.clone();
    check_bucket_name(&bucket).map_err(|err| err.to_string())?;
    let choices = ClientChoices {
        endpoint_url: scan.endpoint_url.clone(),
        profile: scan.profile.clone(),
        region: scan.region.clone(),
    };
    let client = client_from_env_with(&choices).await.map_err(|err| err.to_string())?;
    let target = Target {
        prefix: Some(location.prefix.clone()).filter(|prefix| !prefix.is_empty()),
        max_objects: scan.max_objects.map(NonZeroUsize::get),
        include_versions: scan.include_versions,
        ..Target::bucket(bucket.clone())
    };
    let strategy = strategy_of(&scan);
    let choice = scan
        .findings
        .as_deref()
        .map(|text| findings_choice(text, &bucket))
        .transpose()?;
    let output = match &choice {
        None => None,
        Some(FindingsChoice::File(path)) => Some(FindingsOutput::file(path).map_err(|err| err.to_string())?),
        Some(FindingsChoice::Object(file)) => Some(FindingsOutput::s3(&client, file)),
        Some(FindingsChoice::Folder(folder)) => Some(FindingsOutput::s3(&client, &folder.join(FINDINGS_FILE))),
    };
    let suppressions = load_suppressions(&scan, &client).await?;
    let baseline = load_baseline(&scan, &client).await?;
    let progress = Arc::new(Progress::default());
    let bar = (!scan.quiet && std::io::stderr().is_terminal()).then(|| show_progress(Arc::clone(&progress)));
    let control = control_for(&scan, &choices).await?;
    let account = control
        .as_ref()
        .zip(scan.account_id.as_deref())
        .map(|(client, account_id)| AccountCheck { client, account_id });
    let options = AuditOptions {
        findings: output,
        progress: Some(progress),
        fetch_when_acls_disabled: scan.audit_when_acls_disabled,
        suppressions,
        baseline: baseline.clone(),
        format: scan.format,
        ..AuditOptions::default()
    };
    let clients = RegionalClients::new(client.clone());
    let result = audit_bucket_located(&clients, account, &target, strategy, options).await;
    if let Some((bar, ticker)) = bar {
        ticker.abort();
        bar.finish_and_clear();
    }
    let mut report = match result {
        Ok(report) => report,
        Err(AuditError::List(err)) => return Err(list_advice(&err)),
        Err(AuditError::Inventory(err)) => return Err(err.to_string()),
        Err(AuditError::NotWritten { error, report }) => {
            print_report(&report);
            return Err(format!("the audit ran, but {error}"));
        }
    };
    if let (Some(baseline), Some(choice), Some(written)) = (&baseline, &choice, &report.findings) {
        let complete = report.truncated.is_none();
        match compare(&client, baseline, choice, &written.uri, |_, _| complete).await {
            Ok(counts) => report.changes = Some(counts),
            Err(err) => {
                print_report(&report);
                return Err(format!("the audit ran, but {err}"));
            }
        }
    }
    match send_to_security_hub(
        &scan,
        &choices,
        &client,
        report.findings.as_ref(),
        report.changes.as_ref(),
    )
    .await
    {
        Ok(imported) => report.security_hub = imported,
        Err(err) => {
            print_report(&report);
            return Err(format!("the audit ran, but {err}"));
        }
    }
    if let Some(FindingsChoice::Folder(folder)) = &choice {
        // Plain data with string keys: serialising cannot fail.
        let body = serde_json::to_vec_pretty(&report).unwrap_or_default();
        put_object(&client, &folder.join(REPORT_FILE), "application/json", body)
            .await
            .map_err(|err| {
                print_report(&report);
                format!("the audit ran, but {}", err.of(Artifact::Report))
            })?;
    }
    print_report(&report);
    let findings = &report.audit.findings;
    Ok(if findings.objects > findings.suppressed_objects {
        FINDINGS
    } else if report.failures.count > 0 || report.objects_not_fetched > 0 || report.truncated.is_some() {
        INCOMPLETE
    } else {
        CLEAN
    })
}

/// join-all's calls in flight at most when `--max-in-flight` is not given.
const DEFAULT_IN_FLIGHT: NonZeroUsize = NonZeroUsize::new(64).unwrap();

fn strategy_of(scan: &Scan) -> Strategy {
    match scan.strategy {
        StrategyKind::Sequential => Strategy::Sequential,
        StrategyKind::SpawnBlocking => Strategy::SpawnBlocking {
            pool_size: default_blocking_pool_size(),
        },
        StrategyKind::JoinAll => Strategy::JoinAll {
            in_flight: match scan.max_in_flight.map(NonZeroUsize::new) {
                None => InFlight::adaptive(DEFAULT_IN_FLIGHT),
                Some(None) => InFlight::All,
                Some(Some(most)) => InFlight::Fixed(most),
            },
        },
    }
}

/// S3 Control, when --account-id asks for the account's Block Public Access.
async fn control_for(scan: &Scan, choices: &ClientChoices) -> Result<Option<aws_sdk_s3control::Client>, String> {
    match &scan.account_id {
        Some(_) => control_client_from_env_with(choices)
            .await
            .map(Some)
            .map_err(|err| err.to_string()),
        None => Ok(None),
    }
}

/// What a sweep from the shell reads with and writes to: its clients' choices, the S3 client,
/// where its findings go (and its report, for a folder), and a spinner naming the bucket crawled.
struct SweepIo {
    choices: ClientChoices,
    client: aws_sdk_s3::Client,
    choice: Option<FindingsChoice>,
    output: Option<FindingsOutput>,
    bar: Option<ProgressBar>,
}

impl SweepIo {
    async fn new(scan: &Scan, folder_name: &str) -> Result<Self, String> {
        let choices = ClientChoices {
            endpoint_url: scan.endpoint_url.clone(),
            profile: scan.profile.clone(),
            region: scan.region.clone(),
        };
        let client = client_from_env_with(&choices).await.map_err(|err| err.to_string())?;
        let choice = scan
            .findings
            .as_deref()
            .map(|text| findings_choice(text, folder_name))
            .transpose()?;
        let output = match &choice {
            None => None,
            Some(FindingsChoice::File(path)) => Some(FindingsOutput::file(path).map_err(|err| err.to_string())?),
            Some(FindingsChoice::Object(file)) => Some(FindingsOutput::s3(&client, file)),
            Some(FindingsChoice::Folder(folder)) => Some(FindingsOutput::s3(&client, &folder.join(FINDINGS_FILE))),
        };
        let bar = (!scan.quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Ok(SweepIo {
            choices,
            client,
            choice,
            output,
            bar,
        })
    }

    /// Told each bucket as its crawl starts: the spinner says which.
    fn on_bucket(&self) -> OnBucket {
        let shown = self.bar.clone();
        Box::new(move |place: &str| {
            if let Some(bar) = &shown {
                bar.set_message(format!("auditing {place}"));
            }
        })
    }

    /// What a sweep does once its findings are written: compared with `baseline`, then sent
    /// to Security Hub with `--security-hub`.
    async fn after(
        &self,
        scan: &Scan,
        baseline: Option<&Baseline>,
        findings: &Option<acl_audit::findings::FindingsWritten>,
        covered: impl Fn(Option<&str>, &str) -> bool,
    ) -> Result<(Option<ChangeCounts>, Option<Imported>), String> {
        let changes = match (baseline, &self.choice, findings) {
            (Some(baseline), Some(choice), Some(written)) => {
                Some(compare(&self.client, baseline, choice, &written.uri, covered).await?)
            }
            _ => None,
        };
        let imported =
            send_to_security_hub(scan, &self.choices, &self.client, findings.as_ref(), changes.as_ref()).await?;
        Ok((changes, imported))
    }

    /// The report beside the findings when they went to a folder, then on stdout.
    async fn finish(self, report: &impl serde::Serialize) -> Result<(), String> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(FindingsChoice::Folder(folder)) = &self.choice {
            // Plain data with string keys: serialising cannot fail.
            let body = serde_json::to_vec_pretty(report).unwrap_or_default();
            put_object(&self.client, &folder.join(REPORT_FILE), "application/json", body)
                .await
                .map_err(|err| {
                    print_json(report);
                    format!("the sweep ran, but {}", err.of(Artifact::Report))
                })?;
        }
        print_json(report);
        Ok(())
    }
}

/// A sweep's exit code: findings (an object's or a bucket's), else anything not audited.
fn sweep_exit(buckets: &[&BucketAudit], not_audited: usize) -> u8 {
    if buckets
        .iter()
        .any(|bucket| bucket.objects_with_findings > bucket.suppressed_objects || !bucket.bucket_findings.is_empty())
    {
        FINDINGS
    } else if not_audited > 0 {
        INCOMPLETE
    } else {
        CLEAN
    }
}

fn not_audited(totals: &SweepTotals) -> usize {
    totals.failed + totals.truncated + totals.not_reached + totals.failures
}

/// Which buckets a sweep audits and how, from the flags both sweeps take.
async fn sweep_scope(scan: &Scan, client: &aws_sdk_s3::Client) -> Result<SweepScope, String> {
    Ok(SweepScope {
        include: scan.include.clone(),
        exclude: scan.exclude.clone(),
        fetch_when_acls_disabled: scan.audit_when_acls_disabled,
        suppressions: load_suppressions(scan, client).await?,
        baseline: load_baseline(scan, client).await?,
        format: scan.format,
        ..SweepScope::default()
    })
}

/// `--all-buckets`: every bucket the caller can list, into one report and findings file.
async fn sweep(scan: Scan) -> Result<u8, String> {
    let mut io = SweepIo::new(
        &scan,
        &format!("account-{}", scan.account_id.as_deref().unwrap_or("unknown")),
    )
    .await?;
    let options = SweepOptions {
        scope: sweep_scope(&scan, &io.client).await?,
        findings: io.output.take(),
        on_bucket: Some(io.on_bucket()),
        account_id: scan.account_id.clone(),
        resume: None,
    };
    let baseline = options.scope.baseline.clone();
    let control = control_for(&scan, &io.choices).await?;
    let account = control
        .as_ref()
        .zip(scan.account_id.as_deref())
        .map(|(client, account_id)| AccountCheck { client, account_id });
    let clients = RegionalClients::new(io.client.clone());
    let mut report = match sweep_account(&clients, account, strategy_of(&scan), options).await {
        Ok(report) => report,
        Err(err @ SweepError::ListBuckets { .. }) => return Err(err.to_string()),
        Err(SweepError::NotWritten { error, report }) => {
            print_json(&report);
            return Err(format!("the sweep ran, but {error}"));
        }
    };
    let whole = report.resume.is_none();
    let after = io
        .after(&scan, baseline.as_deref(), &report.findings, |_, bucket| {
            whole && report.covers(bucket)
        })
        .await;
    match after {
        Ok((changes, imported)) => (report.changes, report.security_hub) = (changes, imported),
        Err(err) => {
            print_json(&report);
            return Err(format!("the sweep ran, but {err}"));
        }
    }
    io.finish(&report).await?;
    let buckets: Vec<&BucketAudit> = report.buckets.iter().collect();
    Ok(sweep_exit(&buckets, not_audited(&report.totals)))
}

/// `--organization`: every bucket of every account of the organization.
async fn sweep_org(scan: Scan) -> Result<u8, String> {
    let mut io = SweepIo::new(
        &scan,
        &format!("organization-{}", scan.account_id.as_deref().unwrap_or("unknown")),
    )
    .await?;
    let (organizations, sts) = organization_clients_from_env_with(&io.choices)
        .await
        .map_err(|err| err.to_string())?;
    let control = control_client_from_env_with(&io.choices)
        .await
        .map_err(|err| err.to_string())?;
    let options = OrganizationOptions {
        role_name: scan.role_name.clone().unwrap_or_default(),
        external_id: scan.external_id.clone(),
        scope: sweep_scope(&scan, &io.client).await?,
        findings: io.output.take(),
        on_bucket: Some(io.on_bucket()),
        resume: None,
    };
    let baseline = options.scope.baseline.clone();
    let clients = OrganizationClients {
        s3: &io.client,
        control: Some(&control),
        organizations: &organizations,
        sts: &sts,
    };
    let mut report = match sweep_organization(clients, strategy_of(&scan), options).await {
        Ok(report) => report,
        Err(err @ OrganizationError::ListAccounts { .. }) => return Err(err.to_string()),
        Err(OrganizationError::NotWritten { error, report }) => {
            print_json(&report);
            return Err(format!("the sweep ran, but {error}"));
        }
    };
    let whole = report.resume.is_none() && report.accounts_failed == 0;
    let after = io
        .after(&scan, baseline.as_deref(), &report.findings, |account, bucket| {
            whole && report.covers(account, bucket)
        })
        .await;
    match after {
        Ok((changes, imported)) => (report.changes, report.security_hub) = (changes, imported),
        Err(err) => {
            print_json(&report);
            return Err(format!("the sweep ran, but {err}"));
        }
    }
    io.finish(&report).await?;
    let buckets: Vec<&BucketAudit> = report
        .accounts
        .iter()
        .filter_map(|account| account.report.as_ref())
        .flat_map(|swept| &swept.buckets)
        .collect();
    Ok(sweep_exit(
        &buckets,
        report.accounts_failed + not_audited(&report.totals),
    ))
}

fn print_json(report: &impl serde::Serialize) {
    // Plain data with string keys: serialising cannot fail.
    println!("{}", serde_json::to_string_pretty(report).unwrap_or_default());
}

/// The listing's error with what a shell user can change.
fn list_advice(err: &ListError) -> String {
    match err {
        ListError::NoSuchBucket { .. } => format!("{err}: check the name, and --region or --endpoint-url"),
        ListError::AccessDenied { .. } => format!("{err} (the caller is your AWS profile's identity)"),
        ListError::WrongRegion {
            region: Some(region), ..
        } => format!("{err}: pass --region {region}"),
        ListError::WrongRegion { .. } | ListError::Failed { .. } => err.to_string(),
    }
}

fn print_report(report: &AuditReport) {
    print_json(report);
}

/// A spinner on stderr with the run's counters, redrawn ten times a second.
fn show_progress(progress: Arc<Progress>) -> (ProgressBar, tokio::task::JoinHandle<()>) {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let shown = bar.clone();
    let ticker = tokio::spawn(async move {
        loop {
            shown.set_message(format!(
                "{} keys listed, {} ACLs done, {} objects with findings",
                Progress::get(&progress.listed),
                Progress::get(&progress.done),
                Progress::get(&progress.findings)
            ));
            shown.tick();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (bar, ticker)
}

/// `--security-hub`: the run's findings file (and its resolved changes) into Security Hub, in
/// the caller's account (GetCallerIdentity) and the client's region.
async fn send_to_security_hub(
    scan: &Scan,
    choices: &ClientChoices,
    s3: &aws_sdk_s3::Client,
    findings: Option<&acl_audit::findings::FindingsWritten>,
    changes: Option<&ChangeCounts>,
) -> Result<Option<Imported>, String> {
    let (true, Some(findings)) = (scan.security_hub, findings) else {
        return Ok(None);
    };
    let (_, sts) = organization_clients_from_env_with(choices)
        .await
        .map_err(|err| err.to_string())?;
    let identity = sts.get_caller_identity().send().await.map_err(|err| {
        format!(
            "--security-hub: GetCallerIdentity failed: {}",
            aws_sdk_s3::error::DisplayErrorContext(&err)
        )
    })?;
    let region = s3.config().region().map(ToString::to_string).unwrap_or_default();
    let product = Product {
        account_id: identity.account().unwrap_or_default().to_owned(),
        region,
        partition: identity
            .arn()
            .and_then(|arn| arn.split(':').nth(1))
            .unwrap_or("aws")
            .to_owned(),
    };
    let hub = security_hub_client_from_env_with(choices)
        .await
        .map_err(|err| err.to_string())?;
    let mut lines = LineSource::open(s3, &findings.uri).map_err(|err| err.to_string())?;
    let mut changed = changes
        .map(|changes| LineSource::open(s3, &changes.uri))
        .transpose()
        .map_err(|err| err.to_string())?;
    let imported = Box::pin(import(&hub, &product, &mut lines, changed.as_mut(), SystemTime::now()))
        .await
        .map_err(|err| err.to_string())?;
    if let Some(first) = imported.failed.first() {
        return Err(format!(
            "Security Hub ({}) refused {} findings after retries; the first, {} ({}): {}",
            imported.product_arn,
            imported.failed.len(),
            first.id,
            first.code,
            first.message
        ));
    }
    Ok(Some(imported))
}

/// `--compare-with`: the earlier run's findings, read before the audit.
async fn load_baseline(scan: &Scan, client: &aws_sdk_s3::Client) -> Result<Option<Arc<Baseline>>, String> {
    let Some(source) = scan.compare_with.as_deref() else {
        return Ok(None);
    };
    let mut lines = LineSource::open(client, source).map_err(|err| err.to_string())?;
    Baseline::read(&mut lines, &findings::utc_today())
        .await
        .map(|baseline| Some(Arc::new(baseline)))
        .map_err(|err| err.to_string())
}

/// The changes since `baseline` into changes.jsonl beside the findings file `findings`.
async fn compare(
    client: &aws_sdk_s3::Client,
    baseline: &Baseline,
    choice: &FindingsChoice,
    findings: &str,
    covered: impl Fn(Option<&str>, &str) -> bool,
) -> Result<ChangeCounts, String> {
    let output = match choice {
        FindingsChoice::File(path) => {
            let path = path.with_file_name(CHANGES_FILE);
            FindingsOutput::file(path).map_err(|err| err.to_string())?
        }
        FindingsChoice::Object(file) => {
            // Beside the findings file: in its folder, or at the top of its bucket.
            let folder = S3Location {
                bucket: file.bucket.clone(),
                prefix: file.prefix.rsplit_once('/').map_or("", |(folder, _)| folder).to_owned(),
            };
            FindingsOutput::s3(client, &folder.join(CHANGES_FILE))
        }
        FindingsChoice::Folder(folder) => FindingsOutput::s3(client, &folder.join(CHANGES_FILE)),
    };
    write_changes(client, baseline, findings, output, covered)
        .await
        .map_err(|err| err.to_string())
}

/// `--suppressions`: a local file or an `s3://bucket/key`, as read today.
async fn load_suppressions(
    scan: &Scan,
    client: &aws_sdk_s3::Client,
) -> Result<Option<Arc<acl_audit::suppressions::Suppressions>>, String> {
    let Some(source) = scan.suppressions.as_deref() else {
        return Ok(None);
    };
    let bytes = if source.starts_with("s3://") {
        let file: S3Location = source.parse().map_err(|err| format!("--suppressions: {err}"))?;
        acl_audit::s3::read::read_object(client, &file.bucket, &file.prefix)
            .await
            .map_err(|err| format!("cannot read the suppression file {source}: {err}"))?
            .to_vec()
    } else {
        std::fs::read(source).map_err(|err| format!("cannot read the suppression file {source}: {err}"))?
    };
    acl_audit::suppressions::Suppressions::parse(&bytes, source, &findings::utc_today())
        .map(|suppressions| Some(Arc::new(suppressions)))
        .map_err(|err| err.to_string())
}
