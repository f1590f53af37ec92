//! How many connections a client's pool holds open right now, so that a run can put as many
//! calls in flight as reuse an open connection, plus only as many new ones as it can afford
//! to handshake (docs/benchmark.md, "The goals of issue 16, from these tables").
//!
//! The SDK's HTTP client does not expose its pool, so the gauge watches the client's attempts
//! instead: every request attempt holds a connection while it is under way, so the most
//! attempts in flight at once since the pool was last empty is how many connections it has
//! opened and kept; once no attempt has run for longer than the pool's idle timeout, it has
//! closed them all. An estimate, and an upper one: a connection idle within a busy spell
//! closes on its own timer. Process-wide state on purpose: a Lambda execution environment has
//! one client, and its pool outlives the invocations that use it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// Watches one client's attempts; clones share the count.
#[derive(Debug, Clone)]
pub struct PoolGauge {
    state: Arc<Mutex<State>>,
    idle_timeout: Duration,
}

#[derive(Debug, Default)]
struct State {
    in_flight: usize,
    /// The most attempts in flight at once since the pool was last empty.
    held: usize,
    /// When the last attempt ended, if none is under way.
    idle_since: Option<Instant>,
}

impl PoolGauge {
    /// A gauge for a pool that closes a connection idle for `idle_timeout`.
    pub fn new(idle_timeout: Duration) -> Self {
        PoolGauge {
            state: Arc::default(),
            idle_timeout,
        }
    }

    /// `client` with its attempts counted here: the same configuration and HTTP client (the
    /// same pool), one more interceptor.
    pub fn watch(&self, client: &Client) -> Client {
        Client::from_conf(client.config().to_builder().interceptor(Watch(self.clone())).build())
    }

    /// Connections the pool holds open now, by the estimate above.
    pub fn open_now(&self) -> usize {
        self.open(&self.lock())
    }

    fn open(&self, state: &State) -> usize {
        match state.idle_since {
            _ if state.in_flight > 0 => state.held,
            Some(since) if since.elapsed() < self.idle_timeout => state.held,
            _ => 0,
        }
    }

    fn attempt_started(&self) {
        let mut state = self.lock();
        state.held = self.open(&state).max(state.in_flight + 1);
        state.in_flight += 1;
        state.idle_since = None;
    }

    fn attempt_ended(&self) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.idle_since = Some(Instant::now());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the counts inconsistent: each update is one step.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One attempt under way; it ends when the SDK drops it, however the attempt ends
/// (answered, failed, timed out, or abandoned with its operation).
#[derive(Debug)]
struct Attempt(PoolGauge);

impl Drop for Attempt {
    fn drop(&mut self) {
        self.0.attempt_ended();
    }
}

/// The attempt kept in the operation's config bag, which clones what it holds: held only to
/// be dropped.
#[derive(Debug, Clone)]
struct AttemptUnderWay(#[allow(dead_code)] Arc<Attempt>);

impl Storable for AttemptUnderWay {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug)]
struct Watch(PoolGauge);

impl Intercept for Watch {
    fn name(&self) -> &'static str {
        "PoolGauge"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempt_started();
        // Replacing a retried attempt's entry ends that attempt.
        cfg.interceptor_state()
            .store_put(AttemptUnderWay(Arc::new(Attempt(self.0.clone()))));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().unset::<AttemptUnderWay>();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_attempts_at_once_stay_open_until_the_idle_timeout() {
        let gauge = PoolGauge::new(Duration::from_millis(200));
        assert_eq!(gauge.open_now(), 0);
        let attempts: Vec<Attempt> = (0..5)
            .map(|_| {
                gauge.attempt_started();
                Attempt(gauge.clone())
            })
            .collect();
        assert_eq!(gauge.open_now(), 5);
        drop(attempts);
        assert_eq!(gauge.open_now(), 5, "pooled, not closed");
        // A later, smaller spell within the timeout reuses them and keeps them.
        gauge.attempt_started();
        drop(Attempt(gauge.clone()));
        assert_eq!(gauge.open_now(), 5);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(gauge.open_now(), 0, "closed by the pool's idle timeout");
        gauge.attempt_started();
        assert_eq!(
            gauge.open_now(),
            1,
            "a spell after the timeout starts from an empty pool"
        );
        drop(Attempt(gauge.clone()));
    }
}
