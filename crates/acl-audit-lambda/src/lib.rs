//! The Lambda adapter of the audit: what an invocation carries ([`event`]), what the function's
//! environment sets ([`config`]), the handler the three functions share ([`handler`]) with its
//! `errorType`s ([`error`]) and its metrics line ([`metrics`]), a Distributed Map run's results
//! added up ([`map_run`]), the state machine's plan and collect steps ([`steps`]), and the process that serves Lambda's Runtime API ([`runtime`]). The audit itself is the `acl-audit` crate's.

pub mod config;
pub mod continuation;
pub mod error;
pub mod event;
pub mod handler;
pub mod map_run;
pub mod metrics;
pub mod runtime;
pub mod steps;
pub mod stored_resume;

pub use acl_audit::StrategyKind;
pub use config::Config;
pub use error::{HandlerError, RequestError};
pub use event::{MapBatch, MapRunOutput, Pass, Request, parse_event};
pub use handler::{Invocation, Reply, account_of, handle, handle_with, invoke, invoke_chaining, invoke_with, stop_at};
pub use runtime::{block_on_task, run, runtime};
