//! Past one invocation: a Step Functions Distributed Map lists the bucket, hands batches of
//! keys to the `join-all` function and writes each batch's report to S3.
//!
//! - [`batcher`]: the batches the state machine's definition builds from a listing.
//! - [`results`]: reading what the map run's ResultWriter wrote, and adding the batches up
//!   (the state machine's last step does the same, in the adapter's `map_run`).
//! - [`rehearsal`]: the same sharding on this machine, against local-s3, with K workers.

pub mod batcher;
pub mod rehearsal;
pub use acl_audit_lambda::map_run as results;
