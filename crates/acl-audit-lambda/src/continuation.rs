//! A run stopped by its deadline carries on at once, with `CHAIN_CONTINUATION=true`: the
//! function invokes itself asynchronously (Lambda's `Invoke`, `InvocationType=Event`) with the
//! same request, one link further down the chain (`"chained": n`), instead of waiting for the
//! next scheduled run to take up its stored token (docs/reliability.md, "A chained
//! continuation"). Where the token is stored (`FINDINGS_URI`, `RESUME_FROM_STORE`), the next
//! link takes it up from the store as a scheduled run does, so the store stays the one place
//! that says where the target's audit is; without a store the token travels in the event.
//!
//! Guarded against loops: only a run of a whole target (a schedule's, or a link's) chains,
//! never a state machine's part, a batch or an object event; a link that took on no object
//! does not chain; and the chain stops at `CHAIN_LIMIT` links, leaving its token to the next
//! schedule.

use acl_audit::AuditReport;
use acl_audit::report::Truncation;
use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::operation::RequestId as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use crate::event::Request;

/// What a run needs to chain its continuation.
pub struct Chain<'a> {
    pub lambda: &'a aws_sdk_lambda::Client,
    /// The function (and qualifier) this invocation is: the context's `invoked_function_arn`.
    pub function_arn: &'a str,
    /// The request this run was handed, to hand on one link further.
    pub request: Request,
    /// The most links a chain takes (`CHAIN_LIMIT`).
    pub limit: usize,
}

impl Chain<'_> {
    /// The request the next link is handed, when this run's report calls for one: stopped by
    /// its deadline with a token, having taken on at least one object, short of the limit.
    /// `stored`: the token is in the store, where the next link takes it up.
    pub fn next_request(&self, report: &AuditReport, stored: bool) -> Option<Request> {
        if !matches!(report.truncated, Some(Truncation::Deadline)) {
            return None;
        }
        let token = report.resume.as_ref()?;
        if report.objects_listed + report.delete_markers == 0 {
            tracing::warn!(
                "the run stopped before taking on an object: not chaining its continuation (raise the timeout or lower DEADLINE_MARGIN_MS)"
            );
            return None;
        }
        let depth = self.request.chained.unwrap_or(0);
        if depth >= self.limit {
            tracing::warn!(
                links = depth,
                limit = self.limit,
                "CHAIN_LIMIT reached: the token waits for the next scheduled run"
            );
            return None;
        }
        let (resume, inventory) = if stored {
            (None, self.request.inventory.clone())
        } else {
            // The token names its inventory report itself.
            (Some(token.clone()), None)
        };
        Some(Request {
            chained: Some(depth + 1),
            resume,
            inventory,
            ..self.request.clone()
        })
    }

    /// Invokes the next link when the report calls for one; its request id, or `None` when
    /// none was due or the invocation failed (logged: a stored token then waits for the next
    /// schedule, and an unstored one is in the report this run returns).
    pub async fn continue_after(&self, report: &AuditReport, stored: bool) -> Option<String> {
        let next = self.next_request(report, stored)?;
        // Plain data with string keys: serialising cannot fail.
        let payload = serde_json::to_vec(&next).unwrap_or_default();
        let sent = self
            .lambda
            .invoke()
            .function_name(self.function_arn)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await;
        match sent {
            Ok(output) => {
                let id = output.request_id().unwrap_or("unknown").to_owned();
                tracing::info!(link = next.chained, continued_by = %id, "continuation invoked");
                Some(id)
            }
            Err(err) => {
                tracing::error!(
                    error = %DisplayErrorContext(&err),
                    stored,
                    "the continuation could not be invoked (the role needs lambda:InvokeFunction on the function itself)"
                );
                None
            }
        }
    }
}
