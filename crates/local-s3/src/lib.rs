//! An embedded S3-compatible endpoint: an in-memory store with object ACLs behind the S3
//! protocol as implemented by `s3s` (routing, XML, SigV4 verification).
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let s3 = local_s3::LocalS3::start().await?;
//! local_s3::seed_bucket(s3.store(), "audit-me", 100).expect("fresh store");
//! println!("{} with access key {}", s3.endpoint_url(), s3.credentials().access_key_id);
//! # Ok(()) }
//! ```

pub mod acl;
mod control;
mod credentials;
pub mod faults;
pub mod inventory;
pub mod listing;
mod load;
pub mod moto;
mod network;
mod seed;
mod server;
mod service;
pub mod store;
mod tls;

pub use faults::{Fault, FaultCounts, FaultRule, Faults, InvalidFaultRule, Operation};
pub use load::Load;
pub use network::{InvalidDelay, NetworkModel};
pub use seed::{SeedAcl, SeedSummary, seed_bucket, seed_bucket_with, seed_key};
pub use server::{Credentials, LocalS3, Options, S3_IDLE_TIMEOUT};
pub use store::{Store, StoreError};
