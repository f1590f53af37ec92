//! The one entry point of an invocation: its event resolved into a [`Job`] over the
//! function's settings ([`crate::job::resolve`]), then the job run by its own module.

use std::panic::AssertUnwindSafe;

use acl_audit::StrategyKind;
use acl_audit::model::excerpt;
use futures::FutureExt as _;
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::clients::Clients;
use crate::config::Config;
use crate::error::HandlerError;
use crate::job::{Job, resolve};
use crate::outcome::Invocation;
use crate::{account_sweep, add_up, inventory_audit, listing_audit, steps};

/// One invocation of a function of `kind`: what it did, for its metrics and its reply
/// ([`Invocation::into_reply`]).
pub async fn invoke(kind: StrategyKind, clients: &Clients, config: &Config, event: LambdaEvent<Value>) -> Invocation {
    unpanicked(config, run_job(kind, clients, config, event)).await
}

/// `invocation`, or an `InternalError` if it panics: the answer then has a stable errorType and
/// the panic's message (lambda_runtime would name the panic's payload type), the metrics count
/// it, and the process goes on to the next event.
pub async fn unpanicked(config: &Config, invocation: impl Future<Output = Invocation>) -> Invocation {
    match AssertUnwindSafe(invocation).catch_unwind().await {
        Ok(invocation) => invocation,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|message| (*message).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Invocation::failed(
                config.bucket.clone(),
                HandlerError::Internal(excerpt(&message)),
                "invocation panicked",
            )
        }
    }
}

async fn run_job(kind: StrategyKind, clients: &Clients, config: &Config, event: LambdaEvent<Value>) -> Invocation {
    let LambdaEvent { payload, context } = event;
    let job = match resolve(payload, config) {
        Ok(job) => job,
        Err(err) => return Invocation::failed(config.bucket.clone(), err, "invocation refused"),
    };
    match job {
        Job::Audit(job) => listing_audit::run(kind, clients, config, &context, job).await,
        Job::Inventory(job) => inventory_audit::run(kind, clients, config, &context, job).await,
        Job::AddUp(job) => add_up::run(kind, clients, config, &context, *job).await,
        // Boxed: a sweep holds an organization's, an account's and a bucket's runs, tens of KB in
        // a debug build, which every other job's caller would otherwise carry on its stack.
        Job::Sweep(job) => Box::pin(account_sweep::run(kind, clients, config, &context, job)).await,
        Job::Plan(request) => stepped(
            Box::pin(steps::plan(kind, clients, config, &context, request)).await,
            config,
        ),
        Job::Collect(request) => stepped(steps::collect(&clients.s3, *request).await, config),
    }
}

fn stepped(step: Result<crate::event::Pass, HandlerError>, config: &Config) -> Invocation {
    match step {
        Ok(pass) => {
            tracing::info!(bucket = %pass.bucket, pass = pass.pass, parts = pass.count, file = %pass.items.key, "parts written");
            Invocation::Stepped { pass: Box::new(pass) }
        }
        Err(error) => Invocation::failed(config.bucket.clone(), error, "state machine step failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The invocation's future is held whole by the runtime's task and by tests' 2 MiB threads:
    /// the jobs' futures must not add up to a stack's worth (a debug build's are largest).
    #[test]
    fn an_invocation_s_future_stays_small() {
        let client = aws_sdk_s3::Client::from_conf(aws_sdk_s3::Config::builder().behavior_version_latest().build());
        let clients = Clients::new(&client);
        let config = Config::from_vars(|_| None).unwrap();
        let event = LambdaEvent::new(serde_json::json!({}), lambda_runtime::Context::default());
        let invocation = invoke(StrategyKind::JoinAll, &clients, &config, event);
        assert!(
            std::mem::size_of_val(&invocation) < 64 * 1024,
            "{} bytes",
            std::mem::size_of_val(&invocation)
        );
    }

    #[tokio::test]
    async fn a_panic_is_answered_as_an_internal_error() {
        let config = Config::from_vars(|_| None).unwrap();
        let panicking = async { panic!("forced for the test") };
        let invocation = unpanicked(&config, panicking).await;
        let err = invocation.into_reply().unwrap_err();
        assert_eq!(err.error_type(), "InternalError");
        assert!(err.to_string().contains("forced for the test"), "{err}");
    }
}
