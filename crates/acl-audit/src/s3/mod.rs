//! Talking to S3: the client every caller builds, what it skips per call, the retries it counts, listing a bucket (in
//! one chain of pages or in ranges side by side),
//! fetching one ACL, writing an object of any size, opening connections ahead of a run, gauging
//! how many are open, and S3's errors in a caller's terms.

pub mod call_cost;
pub mod client;
pub mod error;
pub mod fetch;
pub mod inventory;
pub mod listing;
pub mod pool;
pub mod ranges;
pub mod read;
pub mod region;
pub mod retries;
pub mod upload;
pub mod warm;
