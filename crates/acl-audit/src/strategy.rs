//! Three ways to schedule the same `fetch_acl` calls. They differ only in scheduling: the
//! primitive, its result type and what is done with each result are the same for all three.

use std::num::NonZeroUsize;
use std::sync::Arc;

use aws_sdk_s3::Client;
use std::time::Instant;

use futures::future::{FutureExt, join_all};
use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::model::{AclOutcome, ObjectFailure, ObjectRef, StrategyKind};
use crate::s3::client::without_run_limit;
use crate::s3::fetch::fetch_acl;
use crate::s3::retries::RetryCount;

mod limit;
use limit::AdaptiveLimit;
pub use limit::LimitCourse;

/// A scheduler with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// One call after another on the invoking task.
    Sequential,
    /// Each call blocks a thread of tokio's blocking pool (`Handle::block_on`) from start to
    /// end, at most `pool_size` at a time: Python's `run_in_executor` with a thread pool.
    SpawnBlocking { pool_size: NonZeroUsize },
    /// Every call a future on the invoking task, awaited together with `join_all`, as many in
    /// flight at once as `in_flight` allows.
    JoinAll { in_flight: InFlight },
}

/// How many calls `join-all` puts in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    /// All of them.
    All,
    /// At most this many, however the server answers.
    Fixed(NonZeroUsize),
    /// At most `ceiling`, fewer while the server pushes back (`strategy/limit.rs`). `shared_by`: how
    /// many runs, this one included, make their calls to the same keys at once (the state
    /// machine's parts of one bucket, each an invocation of its own): each starts at its share
    /// of the ceiling and grows by its share of a call per round, so that together they ask
    /// what one run would (docs/reliability.md).
    Adaptive {
        ceiling: NonZeroUsize,
        shared_by: NonZeroUsize,
    },
}

impl InFlight {
    /// At most `ceiling`, fewer while the server pushes back, for a run on its own.
    pub fn adaptive(ceiling: NonZeroUsize) -> Self {
        InFlight::Adaptive {
            ceiling,
            shared_by: NonZeroUsize::MIN,
        }
    }
}

/// Python's default executor size, `min(32, os.cpu_count() + 4)`: what `run_in_executor(None, …)`
/// gives the seed's threaded function, and `spawn-blocking`'s pool size unless told otherwise.
pub fn default_blocking_pool_size() -> NonZeroUsize {
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new((cpus + 4).min(32)).unwrap_or(NonZeroUsize::MIN)
}

impl Strategy {
    pub fn kind(self) -> StrategyKind {
        match self {
            Strategy::Sequential => StrategyKind::Sequential,
            Strategy::SpawnBlocking { .. } => StrategyKind::SpawnBlocking,
            Strategy::JoinAll { .. } => StrategyKind::JoinAll,
        }
    }

    /// The strategy for one of `runs` runs making their calls to the same keys at once: an
    /// adaptive limit's share ([`InFlight::Adaptive`]); the others as they are.
    #[must_use]
    pub fn shared_by(self, runs: NonZeroUsize) -> Self {
        match self {
            Strategy::JoinAll {
                in_flight: InFlight::Adaptive { ceiling, .. },
            } => Strategy::JoinAll {
                in_flight: InFlight::Adaptive {
                    ceiling,
                    shared_by: runs,
                },
            },
            other => other,
        }
    }

    /// How many calls may be under way at once; `None` means no limit.
    pub fn concurrency_limit(self) -> Option<usize> {
        match self {
            Strategy::Sequential => Some(1),
            Strategy::SpawnBlocking { pool_size } => Some(pool_size.get()),
            Strategy::JoinAll {
                in_flight: InFlight::All,
            } => None,
            Strategy::JoinAll {
                in_flight: InFlight::Fixed(most) | InFlight::Adaptive { ceiling: most, .. },
            } => Some(most.get()),
        }
    }
}

/// How many listing pages a concurrent strategy works on at once: the next page's calls
/// start while the last calls of the previous one finish, and no more than two pages of keys
/// are held however large the bucket.
const PAGES_AT_ONCE: usize = 2;

/// What a strategy hands each outcome to. `record` may wait (a findings writer whose buffer is
/// full): the call's slot is held meanwhile, so no new call starts and memory stays bounded.
pub trait Record: Sync {
    fn record(&self, outcome: AclOutcome) -> impl Future<Output = ()> + Send;
}

/// A closure that tallies without waiting; calls finishing on several threads at once take
/// turns, the lock being held for a tally.
struct Tallying<F>(Mutex<F>);

impl<F: FnMut(AclOutcome) + Send> Record for Tallying<F> {
    fn record(&self, outcome: AclOutcome) -> impl Future<Output = ()> + Send {
        (self.0.lock())(outcome);
        std::future::ready(())
    }
}

/// Fetches the ACL of every key (or version) of every page with the given scheduler and hands each outcome
/// to `record` as soon as it arrives, in completion order: nothing is kept per object.
///
/// From `stop_at` on no call starts, calls under way are abandoned, and every key not yet
/// fetched is recorded as [`AclOutcome::NotFetched`]; `pages` should end there too.
pub async fn fetch_acls<K: Into<ObjectRef>>(
    client: &Client,
    bucket: &str,
    pages: impl Stream<Item = Vec<K>>,
    strategy: Strategy,
    stop_at: Option<Instant>,
    record: impl FnMut(AclOutcome) + Send,
) -> Option<LimitCourse> {
    fetch_acls_into(client, bucket, pages, strategy, stop_at, &Tallying(Mutex::new(record))).await
}

/// The same, handing each outcome to a [`Record`].
pub async fn fetch_acls_into<K: Into<ObjectRef>>(
    client: &Client,
    bucket: &str,
    pages: impl Stream<Item = Vec<K>>,
    strategy: Strategy,
    stop_at: Option<Instant>,
    record: &impl Record,
) -> Option<LimitCourse> {
    let pages = pages.map(|keys| keys.into_iter().map(Into::into).collect::<Vec<ObjectRef>>());
    // Only a run that slows down as a whole may retry a throttled call soon.
    let waiting_longer;
    let client = match strategy {
        Strategy::JoinAll {
            in_flight: InFlight::Adaptive { .. },
        } => client,
        _ => {
            waiting_longer = without_run_limit(client);
            &waiting_longer
        }
    };
    let call = Call {
        client,
        bucket,
        stop_at,
        record,
    };
    match strategy {
        Strategy::Sequential => sequential(&call, pages).await,
        Strategy::SpawnBlocking { pool_size } => spawn_blocking(&call, pages, pool_size).await,
        Strategy::JoinAll { in_flight } => return join_all_capped(&call, pages, in_flight).await,
    }
    None
}

/// The one thing every strategy schedules: fetch a key's ACL, unless the run has stopped,
/// and record what became of it.
struct Call<'a, R> {
    client: &'a Client,
    bucket: &'a str,
    stop_at: Option<Instant>,
    record: &'a R,
}

impl<R: Record> Call<'_, R> {
    async fn run(&self, object: ObjectRef) {
        let outcome = self.fetch(object).await;
        self.record.record(outcome).await;
    }

    async fn fetch(&self, object: ObjectRef) -> AclOutcome {
        fetch_before(self.client, self.bucket, object, self.stop_at).await
    }
}

async fn fetch_before(client: &Client, bucket: &str, object: ObjectRef, stop_at: Option<Instant>) -> AclOutcome {
    let Some(stop_at) = stop_at else {
        return fetch_acl(client, bucket, object).await.into();
    };
    if Instant::now() >= stop_at {
        return AclOutcome::NotFetched(object);
    }
    match tokio::time::timeout_at(stop_at.into(), fetch_acl(client, bucket, object.clone())).await {
        Ok(result) => result.into(),
        Err(_) => AclOutcome::NotFetched(object),
    }
}

async fn sequential<R: Record>(call: &Call<'_, R>, pages: impl Stream<Item = Vec<ObjectRef>>) {
    pages
        .for_each(|keys| async move {
            for key in keys {
                call.run(key).await;
            }
        })
        .await;
}

async fn spawn_blocking<R: Record>(
    call: &Call<'_, R>,
    pages: impl Stream<Item = Vec<ObjectRef>>,
    pool_size: NonZeroUsize,
) {
    let workers = Arc::new(Semaphore::new(pool_size.get()));
    let runtime = Handle::current();
    let bucket: Arc<str> = call.bucket.into();
    // The blocking threads are outside this task, so the run's retry counter goes with them.
    let retries = RetryCount::current().unwrap_or_default();
    let blocking_call = |object: ObjectRef| {
        let (workers, runtime, client, bucket, retries) = (
            Arc::clone(&workers),
            runtime.clone(),
            call.client.clone(),
            Arc::clone(&bucket),
            retries.clone(),
        );
        let stop_at = call.stop_at;
        async move {
            // Held by the blocking thread until its call ends; the semaphore is never closed.
            let worker = workers.acquire_owned().await;
            let if_lost = object.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let _worker = worker;
                runtime.block_on(retries.count(fetch_before(&client, &bucket, object, stop_at)))
            })
            .await
            .unwrap_or_else(|err| {
                AclOutcome::Failed(ObjectFailure {
                    key: if_lost.key,
                    version_id: if_lost.version_id,
                    code: "TaskPanicked".to_owned(),
                    message: err.to_string(),
                })
            });
            call.record.record(outcome).await;
        }
    };
    pages
        .for_each_concurrent(PAGES_AT_ONCE, |keys| {
            join_all(keys.into_iter().map(blocking_call)).map(drop)
        })
        .await;
}

async fn join_all_capped<R: Record>(
    call: &Call<'_, R>,
    pages: impl Stream<Item = Vec<ObjectRef>>,
    in_flight: InFlight,
) -> Option<LimitCourse> {
    let limit = &match in_flight {
        InFlight::All => Limit::Fixed(Semaphore::new(Semaphore::MAX_PERMITS)),
        InFlight::Fixed(most) => Limit::Fixed(Semaphore::new(most.get())),
        InFlight::Adaptive { ceiling, shared_by } => {
            Limit::Adaptive(AdaptiveLimit::new(ceiling.get(), shared_by.get()))
        }
    };
    // The run's counter, looked up once rather than for every call.
    let retries = &RetryCount::current().unwrap_or_default();
    let limited_call = |object: ObjectRef| async move {
        match limit {
            Limit::Fixed(in_flight) => {
                // The semaphore lives as long as this function and is never closed.
                let _slot = in_flight.acquire().await;
                call.run(object).await;
            }
            Limit::Adaptive(limit) => {
                let slot = limit.acquire().await;
                call.run(object).await;
                limit.release(slot, retries.pushbacks());
            }
        }
    };
    pages
        .for_each_concurrent(PAGES_AT_ONCE, |keys| {
            join_all(keys.into_iter().map(limited_call)).map(drop)
        })
        .await;
    let Limit::Adaptive(limit) = limit else {
        return None;
    };
    let course = limit.course();
    if course.lowest < course.ceiling {
        tracing::info!(?course, "S3 pushed back: the in-flight limit came down");
    }
    Some(course)
}

/// `join-all`'s bound on the calls in flight.
enum Limit {
    Fixed(Semaphore),
    Adaptive(AdaptiveLimit),
}
