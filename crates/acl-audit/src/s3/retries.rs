//! Counting the retries the SDK makes on a run's behalf, so that a report says how hard it
//! had to try: a run that needed 300 retries for 100 ACLs met a struggling endpoint even if
//! it lost nothing. Also the calls S3 pushed back on (a 5xx answer such as 503 SlowDown, or
//! none, to a call's first attempt), counted as the attempt ends, before the SDK's backoff:
//! what `join-all`'s adaptive limit reacts to. A retry pushed back again is not counted: it
//! echoes the load from before its backoff, which the limit has answered already.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_s3::config::interceptors::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::retries::RequestAttempts;

tokio::task_local! {
    /// The counter of the run the current task works for. The client is shared by every run
    /// of a container (and by concurrent tests), so the count cannot live in the client.
    static RUN_RETRIES: RetryCount;
}

/// Retries made within a run, from every task it runs calls on.
#[derive(Debug, Clone, Default)]
pub struct RetryCount(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    retries: AtomicUsize,
    pushbacks: AtomicUsize,
}

impl RetryCount {
    pub fn get(&self) -> usize {
        self.0.retries.load(Ordering::Relaxed)
    }

    /// Calls whose first attempt was answered with a 5xx or with nothing (a timeout, a lost
    /// connection).
    pub fn pushbacks(&self) -> usize {
        self.0.pushbacks.load(Ordering::Relaxed)
    }

    /// Runs `work` with its retries counted here.
    pub async fn count<F: Future>(&self, work: F) -> F::Output {
        RUN_RETRIES.scope(self.clone(), work).await
    }

    /// The counter of the run the current task works for, to carry onto another thread.
    pub fn current() -> Option<RetryCount> {
        RUN_RETRIES.try_with(RetryCount::clone).ok()
    }
}

/// Registered on every client this crate builds; counts each attempt after the first.
#[derive(Debug)]
pub(crate) struct CountRetries;

impl Intercept for CountRetries {
    fn name(&self) -> &'static str {
        "CountRetries"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let retry = cfg
            .load::<RequestAttempts>()
            .is_some_and(|attempts| attempts.attempts() > 1);
        if retry {
            // Outside a counted run (a bare SDK call) there is nothing to count into.
            let _ = RUN_RETRIES.try_with(|count| count.0.retries.fetch_add(1, Ordering::Relaxed));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The attempt number is looked up only for the rare answer that needs it.
        let pushed_back = context
            .response()
            .is_none_or(|response| response.status().is_server_error())
            && cfg
                .load::<RequestAttempts>()
                .is_none_or(|attempts| attempts.attempts() <= 1);
        if pushed_back {
            let _ = RUN_RETRIES.try_with(|count| count.0.pushbacks.fetch_add(1, Ordering::Relaxed));
        }
        Ok(())
    }
}
