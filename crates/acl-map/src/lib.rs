//! Past one invocation: the stack's state machine cuts a bucket (or its S3 Inventory report)
//! into parts, a Step Functions Distributed Map hands them to the `join-all` function in
//! passes, and its last step adds every part's report up.
//!
//! - [`state_machine`]: the state machine's run on this machine, step by step through the
//!   handler, with K workers standing in for the Map's children.
//! - [`results`]: reading a run's parts and the reports they left in its parts folder, and
//!   adding them up (the state machine's last step does the same, in the adapter's `map_run`).
//! - [`rehearsal`]: timed runs against an HTTPS local-s3 with the benchmark's network model.

pub mod rehearsal;
pub mod state_machine;
pub use acl_audit_lambda::map_run as results;
