//! One invocation: resolve the target from the event over the configuration, audit it, and
//! log one summary event.

use std::time::{Duration, Instant, SystemTime};

use acl_audit::{AuditReport, StrategyKind};
use aws_sdk_s3::Client;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

use crate::config::Config;
use crate::error::HandlerError;
use crate::event::parse_event;

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
    let report = acl_audit::audit_bucket_until(client, &target, strategy, stop_at)
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
