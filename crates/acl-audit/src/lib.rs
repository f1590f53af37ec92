//! List an S3 bucket and fetch every object's ACL, scheduled one of three ways, and audit
//! what the ACLs grant. The Lambda functions, the benchmark and the tests all call this.
//!
//! - [`acl`]: the two primitives, `list_keys` and `fetch_acl`.
//! - [`strategy`]: `sequential`, `spawn-blocking` and `join-all` over those primitives.
//! - [`report`]: the JSON report and the ACL audit.
//! - [`target`]: the event and environment a function is given.
//! - [`lambda`]: the handler the three functions share.
//! - [`metrics`]: the CloudWatch Embedded Metric Format line each invocation logs.

pub mod acl;
pub mod client;
pub mod error;
pub mod lambda;
pub mod metrics;
pub mod report;
pub mod strategy;
pub mod target;

use std::time::Instant;

use aws_sdk_s3::Client;

pub use acl::{AclOutcome, ObjectAcl, ObjectFailure};
pub use error::{AuditError, RequestError};
pub use report::AuditReport;
pub use strategy::{Strategy, StrategyKind};
pub use target::{Config, Target};

/// Lists `target` and fetches every listed object's ACL with `strategy`, tallying each
/// outcome as it arrives.
pub async fn audit_bucket(client: &Client, target: &Target, strategy: Strategy) -> Result<AuditReport, AuditError> {
    let started = Instant::now();
    let listing = acl::list_keys(client, target).await?;
    let listed = started.elapsed();
    let objects_listed = listing.keys.len();
    let mut tally = report::Tally::default();
    strategy::fetch_acls(client, &target.bucket, listing.keys, strategy, |outcome| {
        tally.add(outcome)
    })
    .await;
    let fetched = started.elapsed() - listed;

    Ok(AuditReport {
        strategy: strategy.kind(),
        bucket: target.bucket.clone(),
        prefix: target.prefix.clone(),
        max_objects: target.max_objects,
        listing_complete: listing.complete,
        objects_listed,
        acls_fetched: tally.acls_fetched,
        failures: tally.failures,
        audit: tally.audit,
        concurrency_limit: strategy.concurrency_limit(),
        timings_ms: report::Timings::new(listed, fetched),
    })
}
