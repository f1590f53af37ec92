//! The Lambda adapter of the audit (docs/architecture.md follows a run through it):
//! - [`job::resolve`] turns any payload a function accepts ([`event`]), with the function's
//!   environment ([`config`]), into the one [`job::Job`] the invocation does;
//! - [`handler::invoke`] runs that job in its own module: [`listing_audit`],
//!   [`inventory_audit`], the state machine's [`steps`] and its last step [`add_up`] (over
//!   [`map_run`]'s results), each leaving behind what [`record`] and [`stored_resume`] write;
//! - [`outcome`] is what it did, [`error`] its `errorType`s, [`metrics`] its EMF line, and
//!   [`mod@runtime`] the process that serves Lambda's Runtime API with the [`clients`] it builds once.
//!
//! The audit itself is the `acl-audit` crate's.

pub mod account_sweep;
pub mod add_up;
pub mod clients;
pub mod compare_runs;
pub mod config;
pub mod error;
pub mod event;
pub mod handler;
pub mod inventory_audit;
pub mod job;
pub mod listing_audit;
pub mod map_run;
pub mod metrics;
pub mod outcome;
pub mod record;
pub mod runtime;
pub mod steps;
pub mod stored_resume;
pub mod suppression_file;
pub mod to_security_hub;

pub use acl_audit::StrategyKind;
pub use clients::Clients;
pub use config::{Config, ConfigError};
pub use error::HandlerError;
pub use event::{AddUpRequest, Pass, Request};
pub use handler::invoke;
pub use job::{Job, RequestError, resolve};
pub use outcome::{Invocation, Reply, Scope};
pub use record::RunReport;
pub use runtime::{block_on_task, run, runtime};
