//! The audit: list a target page by page, fetch every listed key's ACL with a strategy, tally
//! each outcome as it arrives (and write its findings line), and account for every key in the
//! report.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use aws_sdk_s3::Client;
use futures::{Stream, StreamExt, stream};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::bucket::{AccountCheck, BucketContext};
use crate::changes::{Baseline, ChangeCounts, CompareError, LineSink, LineSource, compare};
use crate::findings::{FailureLine, FindingKind, FindingLine, FindingsWritten, Place, classify_in};
use crate::model::{AclOutcome, Cursor, InventoryCursor, ObjectAcl, ObjectRef, Resume, S3Location, Target};
use crate::ocsf::FindingsFormat;
use crate::report::{self, AuditReport, Tally, Truncation};
use crate::s3::error::ListError;
use crate::s3::inventory::{InventoryError, InventoryReader, InventoryRow};
use crate::s3::listing::{KeyPages, ListingEnd};
use crate::s3::region::RegionalClients;
use crate::s3::retries::RetryCount;
use crate::s3::upload::{Artifact, NotWritten, StreamingUpload};
use crate::strategy::{self, LimitCourse, Record, Strategy};
use crate::suppressions::Suppressions;

/// ListObjectsV2's largest page: a resume token's keys are fed in pages of this size too.
const PAGE_SIZE: usize = 1000;

/// Lists `target` and fetches every listed object's ACL with `strategy`, tallying each
/// outcome as it arrives: [`audit_bucket_with`] without a findings file or a deadline.
pub async fn audit_bucket(client: &Client, target: &Target, strategy: Strategy) -> Result<AuditReport, ListError> {
    match audit_bucket_with(client, target, strategy, AuditOptions::default()).await {
        Ok(report) => Ok(report),
        Err(AuditError::List(err)) => Err(err),
        // No findings output, so nothing to fail writing.
        Err(AuditError::NotWritten { report, .. }) => Ok(*report),
        // A listing's run reads no inventory; were it to, the error still reaches the caller.
        Err(err @ AuditError::Inventory(_)) => Err(ListError::Failed {
            bucket: target.bucket.clone(),
            code: "InventoryNotRead".to_owned(),
            detail: err.to_string(),
        }),
    }
}

/// What a run does besides the audit.
#[derive(Default)]
pub struct AuditOptions {
    /// No call starts after it and calls under way are abandoned; the report is then
    /// truncated, with a resume token for the keys not fetched and the listing not done. The
    /// listing is read a page at a time while ACLs are fetched, so memory stays bounded
    /// whatever the bucket's size.
    pub stop_at: Option<Instant>,
    /// Where every finding and per-object failure goes, a line each, as they arrive.
    pub findings: Option<FindingsOutput>,
    /// Counters a caller may read while the run goes on (a progress bar).
    pub progress: Option<Arc<Progress>>,
    /// The bucket's settings ([`BucketContext::read`]): findings are judged against its owner
    /// and Block Public Access, and with its ACLs disabled no ACL is fetched.
    pub bucket: Option<BucketContext>,
    /// Fetch every ACL even when the bucket's ACLs are disabled.
    pub fetch_when_acls_disabled: bool,
    /// The account the bucket is in, for its findings lines (a located run knows it from its
    /// account check).
    pub account_id: Option<String>,
    /// Findings a team has accepted: marked on their lines and counted apart.
    pub suppressions: Option<Arc<Suppressions>>,
    /// The last completed run's findings: each line gets its `first_seen`, each object audited
    /// or failed is marked for [`crate::changes::compare`].
    pub baseline: Option<Arc<Baseline>>,
    /// The findings file's format: this tool's lines, or OCSF events.
    pub format: FindingsFormat,
}

/// Keys listed, outcomes recorded and objects with findings so far.
#[derive(Debug, Default)]
pub struct Progress {
    pub listed: AtomicUsize,
    pub done: AtomicUsize,
    pub findings: AtomicUsize,
}

impl Progress {
    pub fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }
}

/// Why a run has no report, or has one whose findings were not written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuditError {
    /// The target cannot be listed.
    #[error(transparent)]
    List(#[from] ListError),
    /// The inventory named as the run's source cannot be read as one with ACLs.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// The audit ran to its end, but its findings are not where they should be: the run's
    /// report is kept, so that its counts can still be logged.
    #[error("the audit ran, but its findings were not written: {error}")]
    NotWritten {
        error: NotWritten,
        report: Box<AuditReport>,
    },
}

impl AuditError {
    fn report_mut(&mut self) -> Option<&mut AuditReport> {
        match self {
            AuditError::NotWritten { report, .. } => Some(report.as_mut()),
            AuditError::List(_) | AuditError::Inventory(_) => None,
        }
    }
}

/// Where a findings file is written: an S3 object, streamed part by part, or a local file; or
/// the file of a sweep of many buckets, which one writer beside them all writes
/// ([`SharedFindings`]).
pub enum FindingsOutput {
    S3(StreamingUpload),
    File { path: PathBuf, writer: BufWriter<File> },
    Shared(SharedFindings),
}

/// A findings file many runs write into at once (a sweep's): each run's lines go to one
/// writer, which [`SharedFindings::beside`] runs beside them all and which finishes the file
/// once every handle is dropped.
#[derive(Clone)]
pub struct SharedFindings(mpsc::Sender<Line>);

impl SharedFindings {
    /// Runs `work` (many runs, each given a clone of the handle) with the writer of `findings`
    /// beside it; the file is finished once `work` has dropped its handle. A `Shared` output is
    /// another caller's file, whose writer runs beside that caller: then `None` is written here.
    pub async fn beside<T, Work>(
        findings: Option<FindingsOutput>,
        work: impl FnOnce(Option<SharedFindings>) -> Work,
    ) -> (T, Result<Option<FindingsWritten>, NotWritten>)
    where
        Work: Future<Output = T>,
    {
        match findings {
            None => (work(None).await, Ok(None)),
            Some(FindingsOutput::Shared(shared)) => (work(Some(shared)).await, Ok(None)),
            Some(output) => {
                let uri = output.uri();
                let (sender, receiver) = mpsc::channel(LINES_IN_FLIGHT);
                let (done, written) =
                    tokio::join!(work(Some(SharedFindings(sender))), write_findings(output, receiver));
                let written = written.map(|(objects, failures)| Some(FindingsWritten { uri, objects, failures }));
                (done, written)
            }
        }
    }
}

impl FindingsOutput {
    pub fn s3(client: &Client, file: &S3Location) -> Self {
        FindingsOutput::S3(StreamingUpload::new(client, &file.bucket, &file.prefix, JSON_LINES))
    }

    pub fn file(path: impl Into<PathBuf>) -> Result<Self, NotWritten> {
        let path = path.into();
        let file = File::create(&path).map_err(|err| file_error(&path, &err))?;
        Ok(FindingsOutput::File {
            path,
            writer: BufWriter::new(file),
        })
    }

    pub fn uri(&self) -> String {
        match self {
            FindingsOutput::S3(upload) => upload.uri(),
            FindingsOutput::File { path, .. } => path.display().to_string(),
            FindingsOutput::Shared(_) => String::new(),
        }
    }

    async fn write(&mut self, line: &[u8]) -> Result<(), NotWritten> {
        match self {
            FindingsOutput::S3(upload) => upload.write(line).await.map_err(|err| err.of(Artifact::Findings)),
            FindingsOutput::File { path, writer } => writer.write_all(line).map_err(|err| file_error(path, &err)),
            // Lines for a shared file never reach here: they go to its own writer.
            FindingsOutput::Shared(_) => Ok(()),
        }
    }

    /// The file finished (a failed upload is aborted).
    pub async fn finish(self) -> Result<(), NotWritten> {
        match self {
            FindingsOutput::S3(upload) => upload.finish().await.map_err(|err| err.of(Artifact::Findings)),
            FindingsOutput::File { path, mut writer } => writer.flush().map_err(|err| file_error(&path, &err)),
            FindingsOutput::Shared(_) => Ok(()),
        }
    }

    async fn abort(&mut self) {
        if let FindingsOutput::S3(upload) = self {
            upload.abort().await;
        }
    }
}

impl LineSink for FindingsOutput {
    async fn write_line(&mut self, line: &[u8]) -> Result<(), NotWritten> {
        self.write(line).await
    }
}

fn file_error(path: &std::path::Path, err: &std::io::Error) -> NotWritten {
    NotWritten {
        what: Artifact::Findings,
        uri: path.display().to_string(),
        code: format!("{:?}", err.kind()),
        message: err.to_string(),
    }
}

/// What changed since `baseline`: this run's findings file (`findings`, as written) and the
/// baseline's read line by line, each new and resolved finding written to `changes` (see
/// [`crate::changes::compare`] for `covered`).
pub async fn write_changes(
    client: &Client,
    baseline: &Baseline,
    findings: &str,
    mut changes: FindingsOutput,
    covered: impl Fn(Option<&str>, &str) -> bool,
) -> Result<ChangeCounts, CompareError> {
    let mut current = LineSource::open(client, findings)?;
    let mut previous = baseline.uri().map(|uri| LineSource::open(client, uri)).transpose()?;
    let uri = changes.uri();
    match compare(baseline, &mut current, previous.as_mut(), covered, &mut changes).await {
        Ok(counts) => {
            changes.finish().await.map_err(CompareError::NotWritten)?;
            Ok(ChangeCounts { uri, ..counts })
        }
        Err(err) => {
            changes.abort().await;
            Err(err)
        }
    }
}

/// The findings file's media type.
pub const JSON_LINES: &str = "application/x-ndjson";

/// Lines waiting for the writer: beyond these, calls wait to record (about 0.5 MB of lines).
const LINES_IN_FLIGHT: usize = 1024;

/// The run, with its retries counted.
pub async fn audit_bucket_with(
    client: &Client,
    target: &Target,
    strategy: Strategy,
    options: AuditOptions,
) -> Result<AuditReport, AuditError> {
    counting_retries(audit(client, None, target, strategy, options)).await
}

/// The run of a bucket whose region and settings are not known yet: HeadBucket, the settings'
/// reads ([`BucketContext::locate_and_read`]) and the first listing page go out together, so
/// the settings cost no round trip of their own; only a bucket in another region is listed
/// again, with a client for its region. `options.bucket` is replaced by what is read.
pub async fn audit_bucket_located(
    clients: &RegionalClients,
    account: Option<AccountCheck<'_>>,
    target: &Target,
    strategy: Strategy,
    options: AuditOptions,
) -> Result<AuditReport, AuditError> {
    let locate = Locate { clients, account };
    counting_retries(audit(clients.base(), Some(locate), target, strategy, options)).await
}

/// Where to learn a bucket's region and settings from.
struct Locate<'a> {
    clients: &'a RegionalClients,
    account: Option<AccountCheck<'a>>,
}

/// The run, with its retries counted.
async fn counting_retries(
    run: impl Future<Output = Result<AuditReport, AuditError>>,
) -> Result<AuditReport, AuditError> {
    let retries = RetryCount::default();
    let mut result = retries.count(run).await;
    let report = match &mut result {
        Ok(report) => Some(report),
        Err(err) => err.report_mut(),
    };
    if let Some(report) = report {
        report.retries = retries.get();
    }
    result
}

/// Tallies each outcome and, when findings are written, hands its line to the writer.
struct Recorder<'a> {
    place: Place<'a>,
    context: &'a BucketContext,
    suppressions: Option<&'a Suppressions>,
    baseline: Option<&'a Baseline>,
    format: FindingsFormat,
    tally: Mutex<Tally>,
    lines: Option<mpsc::Sender<Line>>,
    progress: Option<&'a Progress>,
}

impl Record for Recorder<'_> {
    fn record(&self, outcome: AclOutcome) -> impl Future<Output = ()> + Send {
        // Each ACL classified once, for the line, the progress and the tally alike.
        let (kinds, line, suppressed) = match &outcome {
            AclOutcome::Fetched(acl) => {
                let (kinds, grants) = classify_in(acl, self.context.owner());
                let effective = kinds.iter().any(|kind| self.context.takes_effect(*kind));
                let suppressed = self.suppressions.and_then(|suppressions| {
                    suppressions.covering(self.place.account_id, self.place.bucket, &acl.key, &kinds)
                });
                let accepted = suppressed.is_some();
                // A clean object is marked audited; one with findings gets its first day seen.
                let first_seen = match self.baseline {
                    Some(baseline) if kinds.is_empty() => {
                        baseline.audited_clean(&self.place, &acl.key, acl.version_id.as_deref());
                        None
                    }
                    Some(baseline) => Some(
                        baseline
                            .first_seen(&self.place, &acl.key, acl.version_id.as_deref())
                            .to_owned(),
                    ),
                    None => None,
                };
                let neutralised = kinds
                    .iter()
                    .copied()
                    .filter(|kind| !self.context.takes_effect(*kind))
                    .collect();
                let line = self
                    .lines
                    .as_ref()
                    .and_then(|_| FindingLine::classified(&self.place, acl, kinds.clone(), grants, effective))
                    .map(|line| FindingLine {
                        suppressed,
                        neutralised,
                        first_seen,
                        ..line
                    })
                    .map(|line| Line {
                        json: self.format.finding(&line, now_ms()),
                        failure: false,
                    });
                (kinds, line, accepted)
            }
            AclOutcome::Failed(failure) => {
                if let Some(baseline) = self.baseline {
                    baseline.failed(&self.place, &failure.key, failure.version_id.as_deref());
                }
                let line = self.lines.as_ref().map(|_| Line {
                    json: self.format.failure(&FailureLine::of(&self.place, failure), now_ms()),
                    failure: true,
                });
                (Vec::new(), line, false)
            }
            AclOutcome::NotFetched(_) => (Vec::new(), None, false),
        };
        if let Some(progress) = self.progress {
            progress.done.fetch_add(1, Ordering::Relaxed);
            if !kinds.is_empty() {
                progress.findings.fetch_add(1, Ordering::Relaxed);
            }
        }
        let exposures_effective = self.context.takes_effect(FindingKind::PublicRead);
        self.tally
            .lock()
            .add_classified(outcome, &kinds, exposures_effective, suppressed);
        async move {
            if let (Some(lines), Some(line)) = (&self.lines, line) {
                // The writer drains every line, even after a failed write: a send fails only
                // if it is gone, and then the run is failing already.
                let _ = lines.send(line).await;
            }
        }
    }
}

/// One line of the findings file, serialised, and whether it names a failure.
struct Line {
    json: Vec<u8>,
    failure: bool,
}

/// Now, in milliseconds since the epoch: an OCSF event's time.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// Writes every line it is sent, then finishes the file; after a failed write it goes on
/// receiving (so that no call waits on it forever) and reports the first error.
async fn write_findings(
    mut output: FindingsOutput,
    mut lines: mpsc::Receiver<Line>,
) -> Result<(usize, usize), NotWritten> {
    let (mut objects, mut failures) = (0, 0);
    let mut failed = None;
    while let Some(line) = lines.recv().await {
        if failed.is_some() {
            continue;
        }
        if line.failure {
            failures += 1;
        } else {
            objects += 1;
        }
        if let Err(err) = output.write(&line.json).await {
            output.abort().await;
            failed = Some(err);
        }
    }
    match failed {
        Some(err) => Err(err),
        None => output.finish().await.map(|()| (objects, failures)),
    }
}

/// What the writer of the findings file settles to: its lines (objects, failures).
type WriteResult = Result<(usize, usize), NotWritten>;
/// Where the findings went, and how writing them ended.
type Written = Option<(String, WriteResult)>;

/// A channel to a writer of `findings`, when there are findings to write: the sender goes to
/// the recorder, the writer runs beside the fetches.
fn findings_channel(
    findings: Option<FindingsOutput>,
) -> (
    Option<mpsc::Sender<Line>>,
    Option<(String, impl Future<Output = WriteResult>)>,
) {
    match findings {
        // The sweep's writer runs beside every bucket's run: this one only sends it lines.
        Some(FindingsOutput::Shared(SharedFindings(sender))) => (Some(sender), None),
        Some(output) => {
            let uri = output.uri();
            let (sender, receiver) = mpsc::channel(LINES_IN_FLIGHT);
            (Some(sender), Some((uri, write_findings(output, receiver))))
        }
        None => (None, None),
    }
}

/// Runs `fetch` with the writer beside it (it ends once the recorder, and so the channel's
/// sender, is dropped).
async fn beside_writer<T>(
    fetch: impl Future<Output = T>,
    writer: Option<(String, impl Future<Output = WriteResult>)>,
) -> (T, Written) {
    match writer {
        Some((uri, writer)) => {
            let (fetched, written) = tokio::join!(fetch, writer);
            (fetched, Some((uri, written)))
        }
        None => (fetch.await, None),
    }
}

/// The report with where its findings went, or the error of a file not written.
fn with_findings(mut report: AuditReport, written: Written) -> Result<AuditReport, AuditError> {
    match written {
        None => Ok(report),
        Some((uri, Ok((objects, failures)))) => {
            report.findings = Some(FindingsWritten { uri, objects, failures });
            Ok(report)
        }
        Some((_, Err(error))) => Err(AuditError::NotWritten {
            error,
            report: Box::new(report),
        }),
    }
}

/// A page of a run's source: ACLs the source holds already (an inventory report's) and keys
/// whose ACLs are to be fetched.
#[derive(Default)]
struct SourcePage {
    known: Vec<ObjectAcl>,
    to_fetch: Vec<ObjectRef>,
}

impl SourcePage {
    fn to_fetch(keys: Vec<ObjectRef>) -> Self {
        SourcePage {
            known: Vec::new(),
            to_fetch: keys,
        }
    }
}

/// How a run fetches the keys its source hands it.
struct Fetching {
    strategy: Strategy,
    stop_at: Option<Instant>,
    /// The bucket's ACLs are disabled: count the keys, fetch none.
    skip_acls: bool,
    suppressions: Option<Arc<Suppressions>>,
    baseline: Option<Arc<Baseline>>,
    format: FindingsFormat,
}

/// What became of every key a run's source handed it.
struct Fetched {
    tally: Tally,
    /// Keys not fetched because the bucket's ACLs are disabled.
    skipped: usize,
    written: Written,
    /// How `join-all`'s adaptive limit went, when it had one.
    in_flight: Option<LimitCourse>,
}

/// The one pipeline every run goes through, whatever its source: each page's known ACLs
/// recorded, its keys fetched by the strategy (or counted, with ACLs disabled), every outcome
/// tallied as it arrives and its findings line handed to the writer, which runs beside the
/// fetches and finishes the file once the last outcome is in.
async fn fetch_and_record(
    client: &Client,
    place: Place<'_>,
    context: &BucketContext,
    fetching: Fetching,
    findings: Option<FindingsOutput>,
    progress: Option<&Progress>,
    pages: impl Stream<Item = SourcePage>,
) -> Fetched {
    let Fetching {
        strategy,
        stop_at,
        skip_acls,
        suppressions,
        baseline,
        format,
    } = fetching;
    let (lines, writer) = findings_channel(findings);
    let bucket = place.bucket;
    let recorder = Recorder {
        place,
        context,
        suppressions: suppressions.as_deref(),
        baseline: baseline.as_deref(),
        format,
        tally: Mutex::new(Tally::default()),
        lines,
        progress,
    };
    let fetch = async move {
        let recorded = &recorder;
        let keys = pages.then(|page| async move {
            for acl in page.known {
                recorded.record(AclOutcome::Fetched(acl)).await;
            }
            page.to_fetch
        });
        let (skipped, in_flight) = if skip_acls {
            let skipped = keys
                .map(|keys| keys.len())
                .fold(0, |sum, n| async move { sum + n })
                .await;
            (skipped, None)
        } else {
            let in_flight = strategy::fetch_acls_into(client, bucket, keys, strategy, stop_at, recorded).await;
            (0, in_flight)
        };
        // Dropping the recorder closes the writer's channel: it finishes the file.
        (recorder.tally.into_inner(), skipped, in_flight)
    };
    let ((mut tally, skipped, in_flight), written) = beside_writer(fetch, writer).await;
    tally.not_fetched.sort_unstable();
    Fetched {
        tally,
        skipped,
        written,
        in_flight,
    }
}

/// The report every run writes, from its tally and how it ended; the fields a source knows
/// alone (what it listed, its timings) are the caller's to set.
fn report_of(
    strategy: Strategy,
    bucket: String,
    tally: Tally,
    truncated: Option<Truncation>,
    resume: Option<Resume>,
    context: BucketContext,
) -> AuditReport {
    let mut report = AuditReport::empty(strategy.kind(), bucket);
    report.acls_fetched = tally.acls_fetched;
    report.failures = tally.failures;
    report.objects_not_fetched = resume.as_ref().map_or(0, |resume| resume.keys.len());
    report.truncated = truncated;
    report.resume = resume;
    report.audit = tally.audit;
    report.bucket_settings = Some(context);
    report.concurrency_limit = strategy.concurrency_limit();
    report
}

/// The first page before any call: a bucket that cannot be listed is an error, not a report.
/// A listing still unanswered at the stop leaves the whole bucket to the next run.
async fn first_page(pages: &mut KeyPages, stop_at: Option<Instant>) -> Result<Option<Vec<ObjectRef>>, ListError> {
    match stop_at {
        Some(at) if Instant::now() >= at => Ok(None),
        None => pages.next_page().await,
        Some(at) => tokio::time::timeout_at(at.into(), pages.next_page())
            .await
            .unwrap_or(Ok(None)),
    }
}

async fn audit(
    client: &Client,
    locate: Option<Locate<'_>>,
    target: &Target,
    strategy: Strategy,
    options: AuditOptions,
) -> Result<AuditReport, AuditError> {
    let AuditOptions {
        stop_at,
        findings,
        progress,
        bucket,
        fetch_when_acls_disabled,
        account_id,
        suppressions,
        baseline,
        format,
    } = options;
    let account_id = account_id.or_else(|| {
        locate
            .as_ref()
            .and_then(|locate| locate.account.as_ref())
            .map(|account| account.account_id.to_owned())
    });
    let started = Instant::now();
    let resume = target.resume.as_ref();
    let mut pages = KeyPages::resuming(client, target, resume);
    let (client, first_page, bucket) = match locate {
        None => (client.clone(), first_page(&mut pages, stop_at).await?, bucket),
        Some(Locate { clients, account }) => {
            let (located, first) = tokio::join!(
                BucketContext::locate_and_read(clients, &target.bucket, account),
                first_page(&mut pages, stop_at)
            );
            let (located, context) = located?;
            let region = |client: &Client| client.config().region().map(|r| r.as_ref().to_owned());
            if region(&located) == region(client) {
                (located, first?, Some(context))
            } else {
                // Listed in the wrong region (S3 redirected it): again, in the bucket's.
                pages = KeyPages::resuming(&located, target, resume);
                let first = first_page(&mut pages, stop_at).await?;
                (located, first, Some(context))
            }
        }
    };
    let client = &client;
    let listed = started.elapsed();
    let context = bucket.clone().unwrap_or_else(|| BucketContext::assumed(&target.bucket));
    // With ACLs disabled every GetObjectAcl answers the owner's full control: list only.
    let skip_acls = context.acls_disabled && !fetch_when_acls_disabled;
    let carried_keys = resume.map_or(&[][..], |resume| &resume.keys[..]);

    let mut listing_error = None;
    let later_pages = stream::unfold((&mut pages, &mut listing_error), |(pages, error)| async move {
        match pages.next_page().await {
            Ok(Some(keys)) => Some((keys, (pages, error))),
            Ok(None) => None,
            Err(err) => {
                *error = Some(err);
                None
            }
        }
    })
    .take_until(async move {
        match stop_at {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
    });
    // Keys already in hand go through the strategy even past the deadline, so that each is
    // recorded (as not fetched, then) and none is lost.
    let mut objects_listed = 0;
    let all_pages = stream::iter(carried_keys.chunks(PAGE_SIZE).map(<[ObjectRef]>::to_vec))
        .chain(stream::iter(first_page))
        .chain(later_pages)
        .inspect(|keys| {
            objects_listed += keys.len();
            if let Some(progress) = &progress {
                progress.listed.fetch_add(keys.len(), Ordering::Relaxed);
            }
        });
    let source_pages = all_pages.map(SourcePage::to_fetch);
    // Boxed, as an inventory run's: the pipeline holds the strategy's, the writer's and the
    // listing's futures, and once per run is no cost.
    let place = Place {
        account_id: account_id.as_deref(),
        bucket: &target.bucket,
        region: context.region.as_deref(),
    };
    let fetched = Box::pin(fetch_and_record(
        client,
        place,
        &context,
        Fetching {
            strategy,
            stop_at,
            skip_acls,
            suppressions: suppressions.clone(),
            baseline,
            format,
        },
        findings,
        progress.as_deref(),
        source_pages,
    ))
    .await;
    let Fetched {
        mut tally,
        skipped,
        written,
        in_flight,
    } = fetched;
    let truncated = match (listing_error, pages.end()) {
        (Some(err), _) => Some(Truncation::ListingFailed { error: err.to_string() }),
        (None, None) => Some(Truncation::Deadline),
        _ if !tally.not_fetched.is_empty() => Some(Truncation::Deadline),
        (None, Some(ListingEnd::Limit)) => Some(Truncation::MaxObjects),
        (None, Some(ListingEnd::Complete)) => None,
    };
    let resume = truncated
        .is_some()
        .then(|| pages.resume(target, std::mem::take(&mut tally.not_fetched)));
    let mut report = report_of(strategy, target.bucket.clone(), tally, truncated, resume, context);
    report.in_flight = in_flight;
    report.suppressions = suppressions.as_deref().map(Suppressions::used);
    report.prefix = target.prefix.clone();
    report.max_objects = target.max_objects;
    report.include_versions = pages.lists_versions();
    report.objects_listed = objects_listed;
    report.objects_with_acls_disabled = skipped;
    report.delete_markers = pages.delete_markers();
    report.bucket_settings = bucket;
    report.timings_ms = report::Timings::new(listed, started.elapsed() - listed);
    with_findings(report, written)
}

/// Audits the objects an S3 Inventory report lists from the ACLs it holds, with no
/// GetObjectAcl call but for rows whose ACL is `UNAVAILABLE`, which `strategy` fetches. The
/// report and findings are those of a listing's run; `acls_from_inventory` counts the ACLs
/// read from the report. A `resume` token of an earlier run of the same report has its keys
/// fetched first and the report read on from where that run stopped. At `options.stop_at` no
/// page of the report is read any more and no call starts: the report is then truncated, its
/// token naming the keys not fetched and the place in the report to read on from.
pub async fn audit_inventory(
    client: &Client,
    manifest: &S3Location,
    resume: Option<&Resume>,
    strategy: Strategy,
    options: AuditOptions,
) -> Result<AuditReport, AuditError> {
    counting_retries(audit_inventory_once(client, manifest, resume, strategy, options)).await
}

async fn audit_inventory_once(
    client: &Client,
    manifest: &S3Location,
    resume: Option<&Resume>,
    strategy: Strategy,
    options: AuditOptions,
) -> Result<AuditReport, AuditError> {
    let AuditOptions {
        stop_at,
        findings,
        progress,
        bucket,
        fetch_when_acls_disabled: _,
        account_id,
        suppressions,
        baseline,
        format,
    } = options;
    let started = Instant::now();
    let cursor = resume.and_then(|resume| resume.cursor.inventory());
    let last_file = cursor.and_then(|cursor| cursor.last_file);
    let read_all = resume.is_some() && cursor.is_none();
    let mut reader = match cursor {
        Some(cursor) => {
            Box::pin(InventoryReader::open_at(
                client,
                manifest,
                cursor.file,
                cursor.rows,
                cursor.last_file,
            ))
            .await?
        }
        None => Box::pin(InventoryReader::open(client, manifest)).await?,
    };
    let source = reader.manifest.source_bucket.clone();
    let context = bucket.unwrap_or_else(|| BucketContext::assumed(&source));
    let carried = resume.map_or(&[][..], |resume| &resume.keys[..]);
    if let Some(progress) = &progress {
        progress.listed.fetch_add(carried.len(), Ordering::Relaxed);
    }
    let (mut rows, mut from_inventory, mut delete_markers) = (carried.len(), 0, 0);
    let mut inventory_error = None;
    // A token whose report was read to its end has only its keys left.
    let mut reading_stopped = false;
    let counts = (
        &mut rows,
        &mut from_inventory,
        &mut delete_markers,
        &mut inventory_error,
        &mut reading_stopped,
    );
    let progress_ref = progress.as_deref();
    // Each page's ACLs are recorded as read; its UNAVAILABLE keys go on to the strategy. The
    // stop is checked between pages, never inside one, so that the reader's position is where
    // the next run reads on.
    let pages = stream::unfold((&mut reader, counts), move |(reader, counts)| async move {
        let (rows, from_inventory, delete_markers, error, stopped) = counts;
        if read_all {
            return None;
        }
        if stop_at.is_some_and(|at| Instant::now() >= at) {
            *stopped = true;
            return None;
        }
        let page = match reader.next_page().await {
            Ok(Some(page)) => page,
            Ok(None) => return None,
            Err(err) => {
                *error = Some(err);
                return None;
            }
        };
        if let Some(progress) = progress_ref {
            // Every object the page names, as a listing's page counts them: each is then done.
            let objects = page.iter().filter(|row| !matches!(row, InventoryRow::DeleteMarker));
            progress.listed.fetch_add(objects.count(), Ordering::Relaxed);
        }
        let mut source_page = SourcePage::default();
        for row in page {
            match row {
                InventoryRow::Acl(acl) => {
                    *rows += 1;
                    *from_inventory += 1;
                    source_page.known.push(acl);
                }
                InventoryRow::Unavailable(object) => {
                    *rows += 1;
                    source_page.to_fetch.push(object);
                }
                InventoryRow::DeleteMarker => *delete_markers += 1,
            }
        }
        Some((
            source_page,
            (reader, (rows, from_inventory, delete_markers, error, stopped)),
        ))
    });
    let carried_pages = stream::iter(
        carried
            .chunks(PAGE_SIZE)
            .map(|keys| SourcePage::to_fetch(keys.to_vec())),
    );
    let fetching = Fetching {
        strategy,
        stop_at,
        skip_acls: false,
        suppressions: suppressions.clone(),
        baseline,
        format,
    };
    // Boxed: a page of the report holds the reader's GetObject and gzip state, kilobytes that
    // need not sit in every caller's future.
    let place = Place {
        account_id: account_id.as_deref(),
        bucket: &source,
        region: context.region.as_deref(),
    };
    let fetched = Box::pin(fetch_and_record(
        client,
        place,
        &context,
        fetching,
        findings,
        progress_ref,
        carried_pages.chain(pages),
    ))
    .await;
    let Fetched {
        mut tally,
        written,
        in_flight,
        ..
    } = fetched;
    let truncated = match inventory_error {
        Some(err) => Some(Truncation::ListingFailed { error: err.to_string() }),
        None if reading_stopped || !tally.not_fetched.is_empty() => Some(Truncation::Deadline),
        None => None,
    };
    // After a row that cannot be read the place is not named (the rows of its page before it
    // went unread): the next run reads the report from the start again.
    let (file, rows_read) = reader.position();
    // The place is named even when the report was read to its end and only fetches are left:
    // the token then still says which report it belongs to.
    let resume = truncated.is_some().then(|| Resume {
        cursor: Cursor::Inventory {
            place: InventoryCursor {
                manifest: manifest.to_string(),
                file,
                rows: rows_read,
                last_file,
            },
            read_to_end: !reading_stopped,
        },
        ..Resume::keys_only(source.clone(), std::mem::take(&mut tally.not_fetched))
    });
    let mut report = report_of(strategy, source, tally, truncated, resume, context);
    report.in_flight = in_flight;
    report.suppressions = suppressions.as_deref().map(Suppressions::used);
    report.objects_listed = rows;
    report.acls_from_inventory = from_inventory;
    report.delete_markers = delete_markers;
    report.timings_ms = report::Timings::new(std::time::Duration::ZERO, started.elapsed());
    with_findings(report, written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's future is held whole by whoever awaits it (a handler, a test's 2 MiB thread): the
    /// SDK's request futures, kilobytes each, are boxed where they are made, so that no caller
    /// needs to box a run for its stack's sake.
    #[test]
    fn a_runs_future_stays_small_without_boxing() {
        let client = Client::from_conf(aws_sdk_s3::Config::builder().behavior_version_latest().build());
        let target = Target::bucket("b");
        let listing = audit_bucket_with(&client, &target, Strategy::Sequential, AuditOptions::default());
        let manifest = S3Location {
            bucket: "b".to_owned(),
            prefix: "manifest.json".to_owned(),
        };
        let inventory = audit_inventory(&client, &manifest, None, Strategy::Sequential, AuditOptions::default());
        const MOST: usize = 32 * 1024;
        assert!(
            std::mem::size_of_val(&listing) < MOST,
            "{}",
            std::mem::size_of_val(&listing)
        );
        assert!(
            std::mem::size_of_val(&inventory) < MOST,
            "{}",
            std::mem::size_of_val(&inventory)
        );
    }
}
