//! List an S3 bucket and fetch every object's ACL, scheduled one of three ways, and audit
//! what the ACLs grant. The Lambda adapter (`acl-audit-lambda`), the benchmark and the tools
//! all call this; nothing here knows of Lambda.
//!
//! The modules are layers, each using only those above it in this list (`tests/layers.rs`
//! checks it):
//! 1. [`model`]: targets, resume tokens, ACLs, outcomes, the strategies' names.
//! 2. [`s3`]: the client, listing, fetching one ACL, S3's errors.
//! 3. [`strategy`]: `sequential`, `spawn-blocking` and `join-all` over those primitives.
//! 4. [`report`], [`findings`], [`bucket`], [`audit`], [`parts`], [`suppressions`],
//!    [`changes`], [`security_hub`] and [`ocsf`]: the run's report, the findings file's lines,
//!    the bucket's settings that decide what ACLs mean, the run itself, a bucket cut into parts
//!    for a state machine's workers, the findings a team has accepted, what changed since the
//!    last run, the findings sent to AWS Security Hub, and the findings file as OCSF events.
//! 5. [`sweep`]: every bucket of an account, each audited where its ACLs still apply.
//! 6. [`organization`]: every account of an AWS Organization, each swept with a role assumed.
//!
//! Every AWS SDK request future is boxed where it is sent (`Box::pin(… .send())`): each is
//! kilobytes, more in a debug build, and boxed at the leaves a run's future stays small enough
//! for any caller to hold on its stack (`audit`'s `a_runs_future_stays_small_without_boxing`).

pub mod audit;
pub mod bucket;
pub mod changes;
pub mod findings;
pub mod model;
pub mod ocsf;
pub mod organization;
pub mod parts;
pub mod report;
pub mod s3;
pub mod security_hub;
pub mod strategy;
pub mod suppressions;
pub mod sweep;

pub use audit::{AuditError, AuditOptions, FindingsOutput, audit_bucket, audit_bucket_with};
pub use model::{AclOutcome, Grant, Grantee, ObjectAcl, ObjectFailure, ObjectRef, Resume, StrategyKind, Target};
pub use report::AuditReport;
pub use s3::error::ListError;
pub use strategy::{InFlight, Strategy};
