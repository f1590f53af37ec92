//! The one entry point of an invocation: its event resolved into a [`Job`] over the
//! function's settings ([`crate::job::resolve`]), then the job run by its own module.

use acl_audit::StrategyKind;
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::clients::Clients;
use crate::config::Config;
use crate::job::{Job, resolve};
use crate::outcome::Invocation;
use crate::{add_up, inventory_audit, listing_audit, steps};

/// One invocation of a function of `kind`: what it did, for its metrics and its reply
/// ([`Invocation::into_reply`]).
pub async fn invoke(kind: StrategyKind, clients: &Clients, config: &Config, event: LambdaEvent<Value>) -> Invocation {
    let LambdaEvent { payload, context } = event;
    let job = match resolve(payload, config) {
        Ok(job) => job,
        Err(err) => return Invocation::failed(config.bucket.clone(), err, "invocation refused"),
    };
    match job {
        Job::Audit(job) => listing_audit::run(kind, clients, config, &context, job).await,
        Job::Inventory(job) => inventory_audit::run(kind, clients, config, &context, job).await,
        Job::AddUp(job) => add_up::run(kind, clients, config, job).await,
        Job::Plan(request) => stepped(steps::plan(&clients.s3, config, request).await, config),
        Job::Collect(request) => stepped(steps::collect(&clients.s3, *request).await, config),
    }
}

fn stepped(step: Result<crate::event::Pass, crate::error::HandlerError>, config: &Config) -> Invocation {
    match step {
        Ok(pass) => {
            tracing::info!(bucket = %pass.bucket, pass = pass.pass, parts = pass.count, file = %pass.items.key, "parts written");
            Invocation::Stepped { pass: Box::new(pass) }
        }
        Err(error) => Invocation::failed(config.bucket.clone(), error, "state machine step failed"),
    }
}
