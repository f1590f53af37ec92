//! An account's sweep: every bucket it owns (ListBuckets, each with its region), each bucket's
//! settings read side by side, then the object audit of each bucket where ACLs still apply, one
//! after another, into one findings file. A bucket with ACLs disabled (S3's default since April
//! 2023) is reported with its settings and not crawled; a bucket that cannot be read is
//! reported with S3's error code and never stops the sweep (docs/sweeps.md).

use std::collections::BTreeMap;
use std::time::Instant;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditError, AuditOptions, FindingsOutput, SharedFindings, audit_bucket_with};
use crate::bucket::{AccountCheck, BucketContext, Check, PublicAccessBlock, read_account_block};
use crate::findings::{FindingKind, FindingsWritten};
use crate::model::{Resume, StrategyKind, Target, glob_matches};
use crate::report::{AuditReport, Truncation};
use crate::s3::error::{ListError, error_code};
use crate::s3::region::RegionalClients;
use crate::s3::upload::NotWritten;
use crate::strategy::Strategy;

/// Buckets whose settings are read at once: five requests each.
const SETTINGS_AT_ONCE: usize = 16;

/// ListBuckets' largest page.
const BUCKETS_PER_PAGE: i32 = 1000;

/// Which buckets a sweep audits and how: the same in every account of an organization's.
#[derive(Default, Clone)]
pub struct SweepScope {
    /// Bucket-name globs (`*`, `?`) a bucket must match one of; empty: every bucket.
    pub include: Vec<String>,
    /// Bucket-name globs no audited bucket may match.
    pub exclude: Vec<String>,
    /// Crawl buckets whose ACLs are disabled too.
    pub fetch_when_acls_disabled: bool,
    /// No bucket's crawl starts after it, and the one under way stops there (its token in
    /// the report).
    pub stop_at: Option<Instant>,
    /// Read every bucket's settings and crawl none: each bucket a crawl would audit is left
    /// `NotReached`, for a caller that crawls them its own way (the state machine's plan).
    pub settings_only: bool,
    /// Findings a team has accepted ([`crate::suppressions`]).
    pub suppressions: Option<std::sync::Arc<crate::suppressions::Suppressions>>,
    /// The last completed sweep's findings ([`crate::changes`]).
    pub baseline: Option<std::sync::Arc<crate::changes::Baseline>>,
    /// The findings file's format ([`crate::ocsf`]).
    pub format: crate::ocsf::FindingsFormat,
}

/// What an account's sweep does besides the audit.
#[derive(Default)]
pub struct SweepOptions {
    pub scope: SweepScope,
    /// The sweep's one findings file.
    pub findings: Option<FindingsOutput>,
    /// Told the name of each bucket as its crawl starts (a progress bar).
    pub on_bucket: Option<OnBucket>,
    /// The account swept, when the caller knows it without an account check (a function's
    /// ARN names it): in the report and every findings line.
    pub account_id: Option<String>,
    /// Where an earlier sweep of the account stopped: buckets before its bucket are not
    /// audited again, and that bucket goes on from its token.
    pub resume: Option<SweepPlace>,
}

/// Where a sweep stopped: the first bucket it did not finish, and that bucket's own token when
/// its crawl had begun.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepPlace {
    pub bucket: String,
    pub resume: Option<Resume>,
}

/// See [`SweepOptions::on_bucket`].
pub type OnBucket = Box<dyn Fn(&str) + Send + Sync>;

/// What became of one bucket of the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketState {
    /// Every object's ACL audited.
    Audited,
    /// ACLs disabled (`BucketOwnerEnforced`): no object ACL applies, none fetched.
    AclsDisabled,
    /// Crawled and stopped at the sweep's deadline: `resume` says where it goes on.
    Truncated,
    /// Not reached before the sweep's deadline.
    NotReached,
    /// The bucket could not be read or listed: `error` says why.
    Failed,
}

/// One bucket of the sweep: where it is, its settings, and what its crawl found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketAudit {
    pub bucket: String,
    pub region: Option<String>,
    pub state: BucketState,
    /// Object Ownership, Block Public Access (the bucket's and the account's), the bucket ACL
    /// and owner, versioning.
    pub settings: Option<BucketContext>,
    /// GetBucketPolicyStatus: whether the bucket policy makes the bucket public.
    pub policy_public: Check<bool>,
    /// Bucket-level findings: `public_policy`, and what the bucket's own ACL grants anyone.
    pub bucket_findings: Vec<String>,
    pub objects_listed: usize,
    pub acls_fetched: usize,
    pub failures: usize,
    /// Objects with any finding, exposed or not.
    pub objects_with_findings: usize,
    pub exposed_objects: usize,
    pub public_objects: usize,
    /// Objects whose findings a suppression entry accepts.
    #[serde(default)]
    pub suppressed_objects: usize,
    pub by_kind: BTreeMap<FindingKind, usize>,
    /// A truncated crawl's token: `{"resume": …}` in a bucket run carries it on.
    pub resume: Option<Resume>,
    pub error: Option<BucketError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketError {
    pub code: String,
    pub message: String,
}

/// The sweep added up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepTotals {
    pub buckets: usize,
    pub audited: usize,
    pub acls_disabled: usize,
    pub truncated: usize,
    pub not_reached: usize,
    pub failed: usize,
    pub public_policy_buckets: usize,
    pub objects_listed: usize,
    pub acls_fetched: usize,
    pub failures: usize,
    pub exposed_objects: usize,
    pub public_objects: usize,
    #[serde(default)]
    pub suppressed_objects: usize,
}

impl SweepTotals {
    /// Another sweep's totals added to these (an organization's accounts).
    pub fn add(&mut self, more: &SweepTotals) {
        self.buckets += more.buckets;
        self.audited += more.audited;
        self.acls_disabled += more.acls_disabled;
        self.truncated += more.truncated;
        self.not_reached += more.not_reached;
        self.failed += more.failed;
        self.public_policy_buckets += more.public_policy_buckets;
        self.objects_listed += more.objects_listed;
        self.acls_fetched += more.acls_fetched;
        self.failures += more.failures;
        self.exposed_objects += more.exposed_objects;
        self.public_objects += more.public_objects;
        self.suppressed_objects += more.suppressed_objects;
    }
}

/// A sweep's report: per bucket, and totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub account_id: Option<String>,
    pub strategy: StrategyKind,
    pub buckets: Vec<BucketAudit>,
    pub totals: SweepTotals,
    /// The sweep began where an earlier one stopped: buckets before this one were audited then.
    pub resumed_at: Option<String>,
    /// With buckets truncated or not reached: where the next sweep goes on.
    pub resume: Option<SweepPlace>,
    pub findings: Option<FindingsWritten>,
    /// The suppression file the sweep applied: its active entries and those past their end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressions: Option<crate::suppressions::SuppressionsUsed>,
    /// What changed since the last completed sweep ([`crate::changes`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<crate::changes::ChangeCounts>,
    /// The findings sent to AWS Security Hub ([`crate::security_hub`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_hub: Option<crate::security_hub::Imported>,
    pub elapsed_ms: f64,
}

impl SweepReport {
    /// Whether this sweep audited `bucket` whole, so that a finding of the last sweep it no
    /// longer found is resolved: audited to its end, ACLs disabled, or gone from a sweep that
    /// listed every bucket.
    pub fn covers(&self, bucket: &str) -> bool {
        match self.buckets.iter().find(|audit| audit.bucket == bucket) {
            Some(audit) => matches!(audit.state, BucketState::Audited | BucketState::AclsDisabled),
            None => self.resumed_at.is_none(),
        }
    }
}

/// Why a sweep has no report, or has one whose findings were not written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SweepError {
    /// ListBuckets was refused: the sweep has nothing to go on.
    #[error("cannot list the account's buckets ({code}): {message} (the caller needs s3:ListAllMyBuckets)")]
    ListBuckets { code: String, message: String },
    #[error("the sweep ran, but its findings were not written: {error}")]
    NotWritten {
        error: NotWritten,
        report: Box<SweepReport>,
    },
}

/// Sweeps every bucket `clients` can list: see the module's documentation. `account` reads
/// the account's Block Public Access once (and names the account in every findings line).
pub async fn sweep_account(
    clients: &RegionalClients,
    account: Option<AccountCheck<'_>>,
    strategy: Strategy,
    options: SweepOptions,
) -> Result<SweepReport, SweepError> {
    let started = Instant::now();
    let SweepOptions {
        scope,
        findings,
        on_bucket,
        account_id,
        resume,
    } = options;
    let listed = list_buckets(clients.base()).await?;
    let chosen: Vec<(String, Option<String>)> = listed
        .into_iter()
        .filter(|(name, _)| {
            (scope.include.is_empty() || scope.include.iter().any(|glob| glob_matches(glob, name)))
                && !scope.exclude.iter().any(|glob| glob_matches(glob, name))
                // Buckets an earlier sweep finished (ListBuckets names them in order).
                && resume.as_ref().is_none_or(|place| name.as_str() >= place.bucket.as_str())
        })
        .collect();
    let resumed_at = resume.as_ref().map(|place| place.bucket.clone());
    let mut token = resume.and_then(|place| place.resume.map(|token| (place.bucket, token)));
    let account_id = account
        .as_ref()
        .map(|account| account.account_id.to_owned())
        .or(account_id);
    let account_block = read_account_block(account).await;
    let read = stream::iter(chosen)
        .map(|(name, region)| read_bucket(clients, name, region, &account_block))
        .buffered(SETTINGS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;

    let used = scope
        .suppressions
        .as_deref()
        .map(crate::suppressions::Suppressions::used);
    let crawl = |shared: Option<SharedFindings>| async move {
        let mut buckets = Vec::with_capacity(read.len());
        for bucket in read {
            let carried = token.take_if(|(name, _)| *name == bucket.name).map(|(_, token)| token);
            let crawl = Crawl {
                strategy,
                scope: &scope,
                shared: shared.as_ref(),
                account_id: account_id.as_deref(),
                on_bucket: on_bucket.as_deref(),
            };
            buckets.push(crawl_bucket(bucket, carried, &crawl).await);
        }
        (buckets, account_id)
    };
    let ((buckets, account_id), written) = SharedFindings::beside(findings, crawl).await;
    let resume = buckets
        .iter()
        .find(|bucket| matches!(bucket.state, BucketState::Truncated | BucketState::NotReached))
        .map(|bucket| SweepPlace {
            bucket: bucket.bucket.clone(),
            resume: bucket.resume.clone(),
        });
    let mut report = SweepReport {
        account_id,
        strategy: strategy.kind(),
        totals: totals(&buckets),
        buckets,
        resumed_at,
        resume,
        findings: None,
        suppressions: used,
        changes: None,
        security_hub: None,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    match written {
        Ok(findings) => {
            report.findings = findings;
            Ok(report)
        }
        Err(error) => Err(SweepError::NotWritten {
            error,
            report: Box::new(report),
        }),
    }
}

/// Every bucket the caller owns, with its region when ListBuckets names it.
async fn list_buckets(client: &Client) -> Result<Vec<(String, Option<String>)>, SweepError> {
    let mut buckets = Vec::new();
    let mut token: Option<String> = None;
    loop {
        // A max-buckets makes S3 page the answer and name each bucket's region.
        let page = Box::pin(
            client
                .list_buckets()
                .max_buckets(BUCKETS_PER_PAGE)
                .set_continuation_token(token.take())
                .send(),
        )
        .await
        .map_err(|err| SweepError::ListBuckets {
            code: error_code(&err),
            message: DisplayErrorContext(&err).to_string(),
        })?;
        buckets.extend(
            page.buckets()
                .iter()
                .filter_map(|bucket| Some((bucket.name()?.to_owned(), bucket.bucket_region().map(str::to_owned)))),
        );
        match page.continuation_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(buckets),
        }
    }
}

/// A bucket with its settings read, ready to crawl.
struct ReadBucket {
    name: String,
    region: Option<String>,
    /// A client for the bucket's region and its settings, or why they could not be read.
    read: Result<(Client, BucketContext), ListError>,
    policy_public: Check<bool>,
}

async fn read_bucket(
    clients: &RegionalClients,
    name: String,
    region: Option<String>,
    account_block: &Check<PublicAccessBlock>,
) -> ReadBucket {
    let located = match &region {
        Some(region) => Ok((clients.client_in(region), Some(region.clone()))),
        None => clients
            .for_bucket(&name)
            .await
            .map(|located| (located.client, located.region)),
    };
    let (client, region) = match located {
        Ok(located) => located,
        Err(err) => {
            return ReadBucket {
                name,
                region,
                read: Err(err),
                policy_public: Check::NotChecked {
                    reason: "the bucket could not be located".to_owned(),
                },
            };
        }
    };
    let (context, policy) = tokio::join!(
        Box::pin(BucketContext::read(&client, &name, region.clone(), None)),
        Box::pin(client.get_bucket_policy_status().bucket(&name).send()),
    );
    let policy_public = match policy {
        Ok(output) => Check::Set(
            output
                .policy_status()
                .and_then(|status| status.is_public())
                .unwrap_or(false),
        ),
        Err(err) => Check::from_error(&err, "NoSuchBucketPolicy"),
    };
    let context = context.with_account_block(account_block.clone());
    ReadBucket {
        name,
        region,
        read: Ok((client, context)),
        policy_public,
    }
}

/// How every bucket of a sweep is crawled.
struct Crawl<'a> {
    strategy: Strategy,
    scope: &'a SweepScope,
    shared: Option<&'a SharedFindings>,
    account_id: Option<&'a str>,
    on_bucket: Option<&'a (dyn Fn(&str) + Send + Sync)>,
}

/// Audits one bucket's objects (from `token` when an earlier sweep stopped in it), unless its
/// ACLs are disabled or the deadline has passed.
async fn crawl_bucket(bucket: ReadBucket, token: Option<Resume>, crawl: &Crawl<'_>) -> BucketAudit {
    let &Crawl {
        strategy,
        scope,
        shared,
        account_id,
        on_bucket,
    } = crawl;
    let ReadBucket {
        name,
        region,
        read,
        policy_public,
    } = bucket;
    let mut audit = BucketAudit {
        bucket_findings: bucket_findings(read.as_ref().ok().map(|(_, context)| context), &policy_public),
        bucket: name,
        region,
        state: BucketState::Audited,
        settings: None,
        policy_public,
        objects_listed: 0,
        acls_fetched: 0,
        failures: 0,
        objects_with_findings: 0,
        exposed_objects: 0,
        public_objects: 0,
        suppressed_objects: 0,
        by_kind: BTreeMap::new(),
        resume: None,
        error: None,
    };
    let (client, context) = match read {
        Ok(read) => read,
        Err(err) => {
            audit.state = BucketState::Failed;
            audit.error = Some(list_error(&err));
            return audit;
        }
    };
    audit.settings = Some(context.clone());
    if context.acls_disabled && !scope.fetch_when_acls_disabled {
        audit.state = BucketState::AclsDisabled;
        return audit;
    }
    if scope.settings_only || scope.stop_at.is_some_and(|at| Instant::now() >= at) {
        audit.state = BucketState::NotReached;
        return audit;
    }
    if let Some(on_bucket) = on_bucket {
        on_bucket(&audit.bucket);
    }
    let options = AuditOptions {
        stop_at: scope.stop_at,
        findings: shared.cloned().map(FindingsOutput::Shared),
        bucket: Some(context),
        fetch_when_acls_disabled: scope.fetch_when_acls_disabled,
        account_id: account_id.map(str::to_owned),
        suppressions: scope.suppressions.clone(),
        baseline: scope.baseline.clone(),
        format: scope.format,
        ..AuditOptions::default()
    };
    let target = Target {
        resume: token,
        ..Target::bucket(&audit.bucket)
    };
    let report = match audit_bucket_with(&client, &target, strategy, options).await {
        Ok(report) => report,
        // A shared file's lines are written by the sweep's writer: its error is the sweep's.
        Err(AuditError::NotWritten { report, .. }) => *report,
        Err(AuditError::List(err)) => {
            audit.state = BucketState::Failed;
            audit.error = Some(list_error(&err));
            return audit;
        }
        Err(AuditError::Inventory(err)) => {
            audit.state = BucketState::Failed;
            audit.error = Some(BucketError {
                code: "InventoryNotRead".to_owned(),
                message: err.to_string(),
            });
            return audit;
        }
    };
    absorb(&mut audit, report);
    audit
}

/// A crawl's counts into the bucket's line of the sweep's report, and its state: audited,
/// truncated (its token in `resume`) or failed. For a caller that crawls a bucket its own way.
pub fn absorb(audit: &mut BucketAudit, report: AuditReport) {
    audit.state = BucketState::Audited;
    audit.objects_listed = report.objects_listed;
    audit.acls_fetched = report.acls_fetched;
    audit.failures = report.failures.count;
    audit.objects_with_findings = report.audit.findings.objects;
    audit.exposed_objects = report.audit.findings.exposed_objects;
    audit.public_objects = report.audit.findings.public_objects;
    audit.suppressed_objects = report.audit.findings.suppressed_objects;
    audit.by_kind = report.audit.findings.by_kind;
    match report.truncated {
        None => {}
        Some(Truncation::ListingFailed { error }) => {
            audit.state = BucketState::Failed;
            audit.error = Some(BucketError {
                code: "ListingFailed".to_owned(),
                message: error,
            });
            audit.resume = report.resume;
        }
        Some(_) => {
            audit.state = BucketState::Truncated;
            audit.resume = report.resume;
        }
    }
}

fn bucket_findings(context: Option<&BucketContext>, policy_public: &Check<bool>) -> Vec<String> {
    let mut findings = Vec::new();
    if policy_public.set() == Some(&true) {
        findings.push("public_policy".to_owned());
    }
    if let Some(context) = context.filter(|context| context.effective_acl_findings()) {
        findings.extend(
            context
                .acl_findings
                .iter()
                .filter_map(|kind| serde_json::to_value(kind).ok())
                .filter_map(|kind| kind.as_str().map(|kind| format!("bucket_acl_{kind}"))),
        );
    }
    findings
}

/// A listing's error as a bucket's line of the sweep's report gives it.
pub fn list_error(err: &ListError) -> BucketError {
    let code = match err {
        ListError::NoSuchBucket { .. } => "NoSuchBucket".to_owned(),
        ListError::AccessDenied { .. } => "AccessDenied".to_owned(),
        ListError::WrongRegion { .. } => "WrongRegion".to_owned(),
        ListError::Failed { code, .. } => code.clone(),
    };
    BucketError {
        code,
        message: err.to_string(),
    }
}

/// The sweep's totals over its buckets.
pub fn totals(buckets: &[BucketAudit]) -> SweepTotals {
    let mut totals = SweepTotals {
        buckets: buckets.len(),
        ..SweepTotals::default()
    };
    for bucket in buckets {
        match bucket.state {
            BucketState::Audited => totals.audited += 1,
            BucketState::AclsDisabled => totals.acls_disabled += 1,
            BucketState::Truncated => totals.truncated += 1,
            BucketState::NotReached => totals.not_reached += 1,
            BucketState::Failed => totals.failed += 1,
        }
        totals.public_policy_buckets += usize::from(bucket.policy_public.set() == Some(&true));
        totals.objects_listed += bucket.objects_listed;
        totals.acls_fetched += bucket.acls_fetched;
        totals.failures += bucket.failures;
        totals.exposed_objects += bucket.exposed_objects;
        totals.public_objects += bucket.public_objects;
        totals.suppressed_objects += bucket.suppressed_objects;
    }
    totals
}
