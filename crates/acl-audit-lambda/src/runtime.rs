//! The process a function is: a one-thread tokio runtime, one S3 client for the container's
//! life, and lambda_runtime's loop calling the handler.

use std::time::{Duration, Instant};

use acl_audit::StrategyKind;
use acl_audit::s3::client::{
    ClientChoices, POOL_IDLE_TIMEOUT, client_from_env, control_client_from_env_with,
    organization_clients_from_env_with, security_hub_client_from_env_with,
};
use acl_audit::s3::pool::PoolGauge;
use acl_audit::s3::warm::open_connections;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::clients::Clients;
use crate::config::Config;
use crate::handler::invoke;
use crate::metrics::Function;
use crate::outcome::Invocation;

/// The runtime the functions run on: one thread. An execution environment handles one event at a
/// time with at most a vCPU's worth of CPU below 1 769 MB, and the handler's future runs on the
/// thread that also polls the sockets, so no wake-up crosses threads: `acl-bench invoke`
/// measured less CPU per ACL on it than on the multi-thread runtime (docs/benchmark.md).
/// `spawn-blocking`'s threads come from this runtime's blocking pool all the same.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// Runs `future` to its end on `runtime` as a task of its own rather than as `block_on`'s
/// future: tokio wakes `block_on`'s future through the I/O driver, a system call per wake-up
/// and two or three wake-ups per S3 call, where a task woken on the runtime's own thread is
/// only queued.
pub fn block_on_task<F>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime
        .block_on(runtime.spawn(future))
        // Nothing aborts the task and the runtime outlives it: its only error is a panic.
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
}

/// A function's whole `main`: logging, one client for the container's life, the runtime loop,
/// and one metrics line per invocation.
pub fn run(kind: StrategyKind) -> Result<(), lambda_runtime::Error> {
    block_on_task(&runtime()?, serve(kind))
}

/// The longest init spends opening connections: Lambda's init phase lasts 10 s at most.
const WARM_WITHIN: Duration = Duration::from_secs(2);

/// Opens the connections the first invocation will use, during init (see
/// [`Config::warm_connections`]); logged, never fatal: a failure only leaves them unopened.
async fn warm(kind: StrategyKind, client: &aws_sdk_s3::Client) {
    let Ok(config) = Config::from_env() else {
        // The invocation reports the configuration's error.
        return;
    };
    let (Some(bucket), count) = (config.bucket.as_deref(), config.warm_connections(kind)) else {
        return;
    };
    if count == 0 {
        return;
    }
    let started = Instant::now();
    let warmed = open_connections(client, bucket, count, WARM_WITHIN).await;
    tracing::info!(
        connections = count,
        answered = warmed.answered,
        failed = ?warmed.failed,
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "connections opened during init"
    );
}

async fn serve(kind: StrategyKind) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let client = client_from_env()
        .await
        .inspect_err(|err| tracing::error!(error = %err, "cannot configure the S3 client"))?;
    let control = control_client_from_env_with(&ClientChoices::default())
        .await
        .inspect_err(|err| tracing::error!(error = %err, "cannot configure the S3 Control client"))?;
    // The pool outlives invocations; each run's cap follows what it holds open.
    let gauge = PoolGauge::new(POOL_IDLE_TIMEOUT);
    let client = gauge.watch(&client);
    warm(kind, &client).await;
    let (organizations, sts) = organization_clients_from_env_with(&ClientChoices::default())
        .await
        .inspect_err(|err| tracing::error!(error = %err, "cannot configure the Organizations and STS clients"))?;
    let security_hub = security_hub_client_from_env_with(&ClientChoices::default())
        .await
        .inspect_err(|err| tracing::error!(error = %err, "cannot configure the Security Hub client"))?;
    let clients = Clients::new(&client)
        .with_control(&control)
        .with_organization(&organizations, &sts)
        .with_security_hub(&security_hub);
    let handler = service_fn(|event: LambdaEvent<Value>| {
        // An owned handle on the same clients and pool: with a borrowed one rustc cannot prove
        // the runtime loop's future Send (rust-lang/rust#64552), and a task must be Send.
        let clients = clients.clone();
        let open = gauge.open_now();
        async move {
            let config = Config::from_env().map(|c| c.with_open_connections(open));
            let invocation = match &config {
                Ok(config) => invoke(kind, &clients, config, event).await,
                Err(err) => Invocation::failed(None, err.clone(), "invocation refused"),
            };
            let function = config.as_ref().map_or_else(
                |_| Function::default(),
                |config| Function {
                    memory_mb: config.memory_mb,
                    configured_bucket: config.bucket.as_deref(),
                },
            );
            // Failed runs too: an alarm on FailedRuns, and a dashboard line that does not stop.
            crate::metrics::emit(kind, &invocation, &function);
            invocation.into_reply()
        }
    });
    // Boxed: the runtime's future type nests deeper than a caller's default recursion limit.
    Box::pin(lambda_runtime::run(handler)).await
}
