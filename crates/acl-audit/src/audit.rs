//! The audit: list a target page by page, fetch every listed key's ACL with a strategy, tally
//! each outcome as it arrives, and account for every key in the report.

use std::time::Instant;

use aws_sdk_s3::Client;
use futures::{StreamExt, stream};

use crate::model::{Resume, Target};
use crate::report::{self, AuditReport, Tally, Truncation};
use crate::s3::error::ListError;
use crate::s3::listing::{KeyPages, ListingEnd};
use crate::s3::retries::RetryCount;
use crate::strategy::{self, Strategy};

/// ListObjectsV2's largest page: a resume token's keys are fed in pages of this size too.
const PAGE_SIZE: usize = 1000;

/// Lists `target` and fetches every listed object's ACL with `strategy`, tallying each
/// outcome as it arrives.
pub async fn audit_bucket(client: &Client, target: &Target, strategy: Strategy) -> Result<AuditReport, ListError> {
    audit_bucket_until(client, target, strategy, None).await
}

/// The same, stopping at `stop_at`: no call starts after it and calls under way are
/// abandoned; the report is then truncated, with a resume token for the keys not fetched and
/// the listing not done. The listing is read a page at a time while ACLs are fetched, so
/// memory stays bounded whatever the bucket's size.
pub async fn audit_bucket_until(
    client: &Client,
    target: &Target,
    strategy: Strategy,
    stop_at: Option<Instant>,
) -> Result<AuditReport, ListError> {
    let retries = RetryCount::default();
    let report = retries.count(audit(client, target, strategy, stop_at)).await?;
    Ok(AuditReport {
        retries: retries.get(),
        ..report
    })
}

async fn audit(
    client: &Client,
    target: &Target,
    strategy: Strategy,
    stop_at: Option<Instant>,
) -> Result<AuditReport, ListError> {
    let started = Instant::now();
    let stopped = || stop_at.is_some_and(|at| Instant::now() >= at);
    let mut pages = KeyPages::resuming(client, target, target.resume.as_ref());
    let carried_keys = target.resume.as_ref().map_or(&[][..], |resume| &resume.keys[..]);
    // The first page before any call: a bucket that cannot be listed is an error, not a report.
    // A listing still unanswered at the stop leaves the whole bucket to the next run.
    let first_page = match stop_at {
        _ if stopped() => None,
        None => pages.next_page().await?,
        Some(at) => tokio::time::timeout_at(at.into(), pages.next_page())
            .await
            .unwrap_or(Ok(None))?,
    };
    let listed = started.elapsed();

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
    let all_pages = stream::iter(carried_keys.chunks(PAGE_SIZE).map(<[String]>::to_vec))
        .chain(stream::iter(first_page))
        .chain(later_pages)
        .inspect(|keys| objects_listed += keys.len());
    let mut tally = Tally::default();
    strategy::fetch_acls(client, &target.bucket, all_pages, strategy, stop_at, |outcome| {
        tally.add(outcome)
    })
    .await;
    let fetched = started.elapsed() - listed;

    let truncated = match (listing_error, pages.end()) {
        (Some(err), _) => Some(Truncation::ListingFailed { error: err.to_string() }),
        (None, None) => Some(Truncation::Deadline),
        _ if !tally.not_fetched.is_empty() => Some(Truncation::Deadline),
        (None, Some(ListingEnd::Limit)) => Some(Truncation::MaxObjects),
        (None, Some(ListingEnd::Complete)) => None,
    };
    tally.not_fetched.sort_unstable();
    let resume = truncated.is_some().then(|| Resume {
        bucket: target.bucket.clone(),
        prefix: target.prefix.clone(),
        start_after: pages.last_key().map(str::to_owned),
        listing_complete: pages.end() == Some(ListingEnd::Complete),
        keys: std::mem::take(&mut tally.not_fetched),
    });
    Ok(AuditReport {
        strategy: strategy.kind(),
        bucket: target.bucket.clone(),
        prefix: target.prefix.clone(),
        max_objects: target.max_objects,
        objects_listed,
        acls_fetched: tally.acls_fetched,
        failures: tally.failures,
        objects_not_fetched: resume.as_ref().map_or(0, |resume| resume.keys.len()),
        truncated,
        resume,
        retries: 0,
        audit: tally.audit,
        concurrency_limit: strategy.concurrency_limit(),
        timings_ms: report::Timings::new(listed, fetched),
    })
}
