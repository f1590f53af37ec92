//! The handler the three Lambda functions share; each function only names its strategy.

use aws_sdk_s3::Client;
use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{Context, Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::error::{AuditError, RequestError};
use crate::report::AuditReport;
use crate::strategy::StrategyKind;
use crate::target::{Config, parse_event};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HandlerError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl HandlerError {
    /// The `errorType` the Lambda console and `Invoke` callers see.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::Request(RequestError::InvalidEvent(_)) => "InvalidEvent",
            HandlerError::Request(RequestError::MissingBucket) => "MissingBucketName",
            HandlerError::Request(RequestError::InvalidBucketName { .. }) => "InvalidBucketName",
            HandlerError::Request(RequestError::InvalidConfig { .. }) => "InvalidConfiguration",
            HandlerError::Audit(AuditError::NoSuchBucket { .. }) => "NoSuchBucket",
            HandlerError::Audit(AuditError::ListAccessDenied { .. }) => "AccessDenied",
            HandlerError::Audit(AuditError::ListFailed { .. }) => "ListObjectsFailed",
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(err: HandlerError) -> Self {
        Diagnostic {
            error_type: err.error_type().to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// One invocation: resolve the target from the event over `config`, audit it, log one
/// summary event and return the report.
pub async fn handle(
    kind: StrategyKind,
    client: &Client,
    config: &Config,
    event: LambdaEvent<Value>,
) -> Result<AuditReport, HandlerError> {
    let request = parse_event(event.payload)?;
    let target = config.target(request)?;
    let strategy = config.strategy(kind);
    let stop_at = stop_at(&event.context, config.deadline_margin);
    let report = crate::audit_bucket_until(client, &target, strategy, stop_at)
        .await
        .inspect_err(|err| tracing::error!(strategy = kind.name(), error = %err, "audit failed"))?;
    if let Some(truncated) = &report.truncated {
        tracing::warn!(
            strategy = kind.name(),
            ?truncated,
            objects_not_fetched = report.objects_not_fetched,
            "audit stopped early: invoke again with the report's \"resume\" as the event's \"resume\" to carry on"
        );
    }
    tracing::info!(
        request_id = %event.context.request_id,
        strategy = kind.name(),
        bucket = %report.bucket,
        prefix = report.prefix.as_deref().unwrap_or(""),
        objects_listed = report.objects_listed,
        acls_fetched = report.acls_fetched,
        failures = report.failures.count,
        objects_not_fetched = report.objects_not_fetched,
        truncated = report.truncated.is_some(),
        retries = report.retries,
        readable_by_all_users = report.audit.readable_by_all_users.count,
        readable_by_authenticated_users = report.audit.readable_by_authenticated_users.count,
        granted_to_other_accounts = report.audit.granted_to_other_accounts.count,
        concurrency_limit = report.concurrency_limit,
        list_ms = report.timings_ms.list,
        fetch_ms = report.timings_ms.fetch,
        total_ms = report.timings_ms.total,
        "audit complete"
    );
    Ok(report)
}

/// When to stop: `margin` before the invocation's deadline. A context without one (a
/// deadline of 0: outside Lambda, in tests and the benchmark) sets no stop, nor does a deadline
/// already past when the invocation starts, which Lambda never sends: `cargo lambda watch`
/// sends its timeout (600 000 ms) where Lambda sends a time.
pub fn stop_at(context: &Context, margin: Duration) -> Option<Instant> {
    if context.deadline == 0 {
        return None;
    }
    let Ok(remaining) = context.deadline().duration_since(SystemTime::now()) else {
        tracing::warn!(
            deadline_ms = context.deadline,
            "the invocation's deadline is already past: running without one"
        );
        return None;
    };
    Some(Instant::now() + remaining.saturating_sub(margin))
}

/// Every process that runs the handler (the functions, the benchmark's children, the
/// rehearsal) allocates with mimalloc: the S3 client allocates hundreds of times per call, and
/// glibc's allocator spent a fifth of the client's instructions on it. Measured with
/// callgrind on `acl-bench invoke` (join-all, warm): 15 % fewer instructions per call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The runtime the functions run on: one thread. An execution environment handles one event at a
/// time with at most a vCPU's worth of CPU below 1 769 MB, and the handler's future runs on the
/// thread that also polls the sockets, so no wake-up crosses threads. Measured with `acl-bench
/// invoke` against the benchmark's HTTPS local-s3: 150-170 µs of CPU per ACL against 220-250 µs
/// on the multi-thread runtime (join-all, warm).
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
/// and one metrics line per successful invocation.
pub fn run(kind: StrategyKind) -> Result<(), lambda_runtime::Error> {
    block_on_task(&runtime()?, serve(kind))
}

async fn serve(kind: StrategyKind) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let client = crate::client::client_from_env()
        .await
        .inspect_err(|err| tracing::error!(error = %err, "cannot configure the S3 client"))?;
    let handler = service_fn(|event: LambdaEvent<Value>| {
        // An owned handle on the same client and pool: with a borrowed one rustc cannot prove
        // the runtime loop's future Send (rust-lang/rust#64552), and a task must be Send.
        let client = client.clone();
        async move {
            let config = Config::from_env()?;
            let report = handle(kind, &client, &config, event).await?;
            crate::metrics::emit(&report, config.memory_mb);
            Ok::<_, HandlerError>(report)
        }
    });
    // Boxed: the runtime's future type nests deeper than a caller's default recursion limit.
    Box::pin(lambda_runtime::run(handler)).await
}
