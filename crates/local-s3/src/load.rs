//! How the endpoint answers load, as S3 does: a request rate per partitioned prefix beyond which
//! it answers `503 SlowDown` ([S3's request-rate guidance]), and, for a server that struggles
//! rather than refuses (moto behind waitress), answers that slow as more requests are under way.
//!
//! S3 partitions a bucket by key prefix and splits a partition as its load stays high; here a
//! partition is the bucket and the key's first path segment (`bucket/logs/…` and `bucket/img/…`
//! are two, every key of a flat bucket is one), and partitions never split: a fixed limit a
//! client can be measured against.
//!
//! [S3's request-rate guidance]: https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What load does to the endpoint. The default does nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    /// Requests per second each partition serves; beyond it, `503 SlowDown`. `None`: no limit.
    pub rate_per_prefix: Option<f64>,
    /// A server that struggles rather than refuses: `knee` workers serve requests in arrival
    /// order, each taking the network model's service time × (1 + n / knee) with `n` requests
    /// in the server, queued ones included (their contention). Throughput peaks with `knee`
    /// requests in flight and falls beyond; latency grows with the queue. `None`: every
    /// request is served at once in the service time.
    pub slowing_knee: Option<u32>,
}

/// A token bucket holds this many seconds of its rate: a burst as large as a client's first
/// volley passes, a sustained rate above the limit does not.
const BURST: Duration = Duration::from_millis(100);

/// A partition's tokens.
#[derive(Debug)]
struct Tokens {
    available: f64,
    at: Instant,
}

/// The endpoint's side of [`Load`]: the partitions' tokens, the workers, the requests under way.
#[derive(Debug, Default)]
pub(crate) struct LoadModel {
    load: Mutex<Load>,
    partitions: Mutex<HashMap<String, Tokens>>,
    workers: Mutex<Option<Arc<Semaphore>>>,
    under_way: Arc<AtomicUsize>,
    refused: AtomicU64,
}

/// One request under way; it ends when dropped.
pub(crate) struct UnderWay(Arc<AtomicUsize>);

impl Drop for UnderWay {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request being served by one of the workers, until dropped.
pub(crate) struct Serving(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl LoadModel {
    pub(crate) fn new(load: Load) -> Self {
        let model = LoadModel::default();
        model.replace(load);
        model
    }

    pub(crate) fn replace(&self, load: Load) {
        *self.load.lock() = load;
        self.partitions.lock().clear();
        *self.workers.lock() = load
            .slowing_knee
            .map(|knee| Arc::new(Semaphore::new(knee.max(1) as usize)));
    }

    /// Requests refused with SlowDown so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// A request for `path` (path-style, `/bucket/key`) arrives: whether its partition has a
    /// token for it, and the request counted as under way until the guard drops.
    pub(crate) fn arrive(&self, path: &str) -> (bool, UnderWay) {
        self.under_way.fetch_add(1, Ordering::Relaxed);
        let guard = UnderWay(Arc::clone(&self.under_way));
        let admitted = match self.load.lock().rate_per_prefix {
            Some(rate) => self.take_token(partition(path), rate, Instant::now()),
            None => true,
        };
        if !admitted {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        (admitted, guard)
    }

    /// Waits for a worker, then for the time it takes to serve the request (`service_time`
    /// stretched by the requests in the server); the worker stays taken until the guard drops.
    pub(crate) async fn serve(&self, service_time: Duration) -> Serving {
        let workers = self.workers.lock().clone();
        let Some(workers) = workers else {
            crate::network::wait(service_time).await;
            return Serving(None);
        };
        // The semaphore is never closed: a replaced one is dropped only once unused.
        let worker = workers.clone().acquire_owned().await.ok();
        let in_server = self.under_way.load(Ordering::Relaxed);
        let knee = self.load.lock().slowing_knee.unwrap_or(1).max(1);
        crate::network::wait(stretched(service_time, in_server, knee)).await;
        Serving(worker)
    }

    fn take_token(&self, partition: &str, rate: f64, now: Instant) -> bool {
        let burst = (rate * BURST.as_secs_f64()).max(1.0);
        let mut partitions = self.partitions.lock();
        let tokens = partitions.entry(partition.to_owned()).or_insert(Tokens {
            available: burst,
            at: now,
        });
        let refill = now.saturating_duration_since(tokens.at).as_secs_f64() * rate;
        tokens.available = (tokens.available + refill).min(burst);
        tokens.at = now;
        if tokens.available >= 1.0 {
            tokens.available -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The service time with `in_server` requests contending for `knee` workers.
fn stretched(service_time: Duration, in_server: usize, knee: u32) -> Duration {
    service_time.mul_f64(1.0 + in_server as f64 / f64::from(knee))
}

/// The partition of a path-style request: the bucket and the key's first segment.
fn partition(path: &str) -> &str {
    let path = path.trim_start_matches('/');
    let bucket_end = path.find('/').unwrap_or(path.len());
    match path[bucket_end..].get(1..).and_then(|key| key.find('/')) {
        Some(segment_end) => &path[..bucket_end + 1 + segment_end],
        None => &path[..bucket_end],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_the_bucket_and_the_first_segment() {
        assert_eq!(partition("/bucket/logs/2026/a"), "bucket/logs");
        assert_eq!(partition("/bucket/flat-key"), "bucket");
        assert_eq!(partition("/bucket"), "bucket");
        assert_eq!(partition("/bucket/"), "bucket");
    }

    #[test]
    fn a_partition_serves_its_burst_then_its_rate() {
        let model = LoadModel::new(Load {
            rate_per_prefix: Some(100.0),
            slowing_knee: None,
        });
        let start = Instant::now();
        let served = (0..50).filter(|_| model.take_token("b", 100.0, start)).count();
        assert_eq!(served, 10, "100 ms of 100 a second");
        assert!(model.take_token("other", 100.0, start), "another partition has its own");
        assert!(!model.take_token("b", 100.0, start + Duration::from_millis(5)));
        assert!(
            model.take_token("b", 100.0, start + Duration::from_millis(10)),
            "one token in 10 ms"
        );
        let later = start + Duration::from_secs(10);
        let served = (0..50).filter(|_| model.take_token("b", 100.0, later)).count();
        assert_eq!(served, 10, "an idle partition refills to its burst, no more");
    }

    #[test]
    fn service_stretches_with_the_requests_in_the_server() {
        let base = Duration::from_millis(10);
        assert_eq!(stretched(base, 4, 4), Duration::from_millis(20), "at the knee, twice");
        assert_eq!(stretched(base, 16, 4), Duration::from_millis(50));
    }

    #[tokio::test]
    async fn beyond_the_knee_requests_queue_for_a_worker() {
        let model = Arc::new(LoadModel::new(Load {
            rate_per_prefix: None,
            slowing_knee: Some(2),
        }));
        let start = std::time::Instant::now();
        let arrived: Vec<_> = (0..4).map(|_| model.arrive("/b/k")).collect();
        let served: Vec<_> = futures::future::join_all(arrived.into_iter().map(|(admitted, under_way)| {
            let model = Arc::clone(&model);
            async move {
                assert!(admitted);
                drop(model.serve(Duration::from_millis(10)).await);
                drop(under_way);
                start.elapsed()
            }
        }))
        .await;
        // Four in the server: the first two take 10 × (1 + 4/2) = 30 ms while the others
        // queue; those then start with two in the server and take 20 ms more. Lower bounds
        // only: a busy machine's timers fire late, never early.
        assert!(
            served[..2].iter().all(|&at| at >= Duration::from_millis(30)),
            "{served:?}"
        );
        assert!(
            served[2..].iter().all(|&at| at >= Duration::from_millis(50)),
            "{served:?}"
        );
        assert_eq!(model.under_way.load(Ordering::Relaxed), 0);
    }
}
