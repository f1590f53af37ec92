//! Three ways to schedule the same `fetch_acl` calls. They differ only in scheduling: the
//! primitive, its result type and what is done with each result are the same for all three.

use std::num::NonZeroUsize;
use std::sync::Arc;

use aws_sdk_s3::Client;
use futures::future::join_all;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::acl::{AclOutcome, ObjectFailure, fetch_acl};

/// Which scheduler a Lambda function uses; its parameters come from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    Sequential,
    SpawnBlocking,
    JoinAll,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 3] = [
        StrategyKind::Sequential,
        StrategyKind::SpawnBlocking,
        StrategyKind::JoinAll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Sequential => "sequential",
            StrategyKind::SpawnBlocking => "spawn-blocking",
            StrategyKind::JoinAll => "join-all",
        }
    }
}

/// A scheduler with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// One call after another on the invoking task.
    Sequential,
    /// Each call blocks a thread of tokio's blocking pool (`Handle::block_on`) from start to
    /// end, at most `pool_size` at a time: Python's `run_in_executor` with a thread pool.
    SpawnBlocking { pool_size: NonZeroUsize },
    /// Every call a future on the invoking task, awaited together with `join_all`; at most
    /// `max_in_flight` requests at once (`None`: all of them).
    JoinAll { max_in_flight: Option<NonZeroUsize> },
}

impl Strategy {
    pub fn kind(self) -> StrategyKind {
        match self {
            Strategy::Sequential => StrategyKind::Sequential,
            Strategy::SpawnBlocking { .. } => StrategyKind::SpawnBlocking,
            Strategy::JoinAll { .. } => StrategyKind::JoinAll,
        }
    }

    /// How many calls may be under way at once; `None` means no limit.
    pub fn concurrency_limit(self) -> Option<usize> {
        match self {
            Strategy::Sequential => Some(1),
            Strategy::SpawnBlocking { pool_size } => Some(pool_size.get()),
            Strategy::JoinAll { max_in_flight } => max_in_flight.map(NonZeroUsize::get),
        }
    }
}

/// Fetches the ACL of every key with the given scheduler and hands each outcome to `record`
/// as soon as it arrives, in completion order: nothing is kept per object, so a bucket of
/// 100 000 objects costs no more memory per result than one of 100.
pub async fn fetch_acls(
    client: &Client,
    bucket: &str,
    keys: Vec<String>,
    strategy: Strategy,
    record: impl FnMut(AclOutcome) + Send,
) {
    // Calls finishing on several threads at once take turns; the lock is held for a tally.
    let record = &Mutex::new(record);
    match strategy {
        Strategy::Sequential => sequential(client, bucket, keys, record).await,
        Strategy::SpawnBlocking { pool_size } => spawn_blocking(client, bucket, keys, pool_size, record).await,
        Strategy::JoinAll { max_in_flight } => join_all_capped(client, bucket, keys, max_in_flight, record).await,
    }
}

type Recorder<'a, F> = &'a Mutex<F>;

async fn sequential<F: FnMut(AclOutcome)>(client: &Client, bucket: &str, keys: Vec<String>, record: Recorder<'_, F>) {
    for key in keys {
        let outcome = fetch_acl(client, bucket, key).await;
        (record.lock())(outcome);
    }
}

async fn spawn_blocking<F: FnMut(AclOutcome)>(
    client: &Client,
    bucket: &str,
    keys: Vec<String>,
    pool_size: NonZeroUsize,
    record: Recorder<'_, F>,
) {
    let workers = Arc::new(Semaphore::new(pool_size.get()));
    let runtime = Handle::current();
    let bucket: Arc<str> = bucket.into();
    let calls = keys.into_iter().map(|key| {
        let (workers, runtime, client, bucket) = (
            Arc::clone(&workers),
            runtime.clone(),
            client.clone(),
            Arc::clone(&bucket),
        );
        async move {
            // Held by the blocking thread until its call ends; the semaphore is never closed.
            let worker = workers.acquire_owned().await;
            let key_if_lost = key.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let _worker = worker;
                runtime.block_on(fetch_acl(&client, &bucket, key))
            })
            .await
            .unwrap_or_else(|err| {
                Err(ObjectFailure {
                    key: key_if_lost,
                    code: "TaskPanicked".to_owned(),
                    message: err.to_string(),
                })
            });
            (record.lock())(outcome);
        }
    });
    join_all(calls).await;
}

async fn join_all_capped<F: FnMut(AclOutcome)>(
    client: &Client,
    bucket: &str,
    keys: Vec<String>,
    max_in_flight: Option<NonZeroUsize>,
    record: Recorder<'_, F>,
) {
    let in_flight = Semaphore::new(max_in_flight.map_or(Semaphore::MAX_PERMITS, NonZeroUsize::get));
    let calls = keys.into_iter().map(|key| {
        let in_flight = &in_flight;
        async move {
            let outcome = {
                // The semaphore lives as long as this function and is never closed.
                let _slot = in_flight.acquire().await;
                fetch_acl(client, bucket, key).await
            };
            (record.lock())(outcome);
        }
    });
    join_all(calls).await;
}
