//! `acl-bench pushback`: `join-all` against an endpoint that pushes back, with fixed in-flight
//! limits and with the adaptive default, side by side in one process (docs/benchmark.md, "When
//! S3 pushes back"). Two kinds of pushback, as local-s3 models them: a request rate per prefix
//! beyond which it answers `503 SlowDown`, and answers that slow as requests pile up.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use acl_audit::report::Tally;
use acl_audit::s3::client::client_for_endpoint;
use acl_audit::s3::retries::RetryCount;
use acl_audit::strategy::{InFlight, LimitCourse, Strategy, fetch_acls};
use anyhow::Context as _;
use aws_sdk_s3::config::retry::RetryPartition;
use local_s3::{Load, LocalS3, NetworkModel, Options, seed_bucket, seed_key};

/// One way of pushing back.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub load: Load,
    pub network: NetworkModel,
}

impl Scenario {
    fn describe(&self) -> String {
        match (self.load.rate_per_prefix, self.load.slowing_knee) {
            (Some(rate), _) => format!(
                "{rate:.0} requests/s per prefix, round trip {} ms",
                self.network.rtt.as_millis()
            ),
            (None, Some(knee)) => format!(
                "answers slowing beyond {knee} in flight, service {} ms",
                self.network.service_time.as_millis()
            ),
            (None, None) => "no pushback".to_owned(),
        }
    }
}

/// What one variant achieved, its parts together.
#[derive(Debug)]
pub struct Outcome {
    pub in_flight: InFlight,
    pub elapsed: Duration,
    pub fetched: usize,
    pub failed: usize,
    pub retries: usize,
    pub refused: u64,
    /// From the 99th percent of calls ended to the last: the calls waiting out a backoff.
    pub tail: Duration,
    /// The adaptive limit's course in each part.
    pub courses: Vec<LimitCourse>,
}

/// What one part of a variant did.
struct Part {
    tally: Tally,
    retries: usize,
    ends: Vec<Duration>,
    course: Option<LimitCourse>,
}

const BUCKET: &str = "pushback";

/// Runs `objects` GetObjectAcl calls per variant: each fixed limit of `fixed`, then the
/// adaptive default with `ceiling`, each against a fresh endpoint (full token buckets). With
/// `parts` above one the keys are split into that many consecutive ranges, each audited at
/// once by a client and a limit of its own, as the state machine's parts of one bucket are by
/// invocations of their own: the limit is each part's, the rate the endpoint's for them all.
pub async fn run(
    scenario: Scenario,
    objects: usize,
    fixed: &[NonZeroUsize],
    ceiling: NonZeroUsize,
    parts: NonZeroUsize,
) -> anyhow::Result<Vec<Outcome>> {
    let mut variants: Vec<InFlight> = fixed.iter().copied().map(InFlight::Fixed).collect();
    variants.push(InFlight::adaptive(ceiling));
    if parts.get() > 1 {
        // As the state machine hands its parts of one bucket the number running at once.
        variants.push(InFlight::Adaptive {
            ceiling,
            shared_by: parts,
        });
    }
    let keys: Vec<String> = (0..objects).map(seed_key).collect();
    let mut outcomes = Vec::new();
    for in_flight in variants {
        let s3 = LocalS3::start_with(Options {
            network: scenario.network,
            load: scenario.load,
            ..Options::default()
        })
        .await
        .context("cannot start the embedded endpoint")?;
        seed_bucket(s3.store(), BUCKET, objects).context("cannot seed the bucket")?;
        let credentials = s3.credentials();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (part, range) in keys.chunks(objects.div_ceil(parts.get()).max(1)).enumerate() {
            let client = client_for_endpoint(
                s3.endpoint_url(),
                &credentials.access_key_id,
                &credentials.secret_access_key,
            );
            // A retry quota of its own, as a part's invocation has in its own process (the
            // SDK keeps one per retry partition in a process).
            let client = aws_sdk_s3::Client::from_conf(
                client
                    .config()
                    .to_builder()
                    .retry_partition(RetryPartition::new(format!("pushback-part-{part}")))
                    .build(),
            );
            let range = range.to_vec();
            tasks.push(tokio::spawn(async move {
                let retries = RetryCount::default();
                let mut tally = Tally::default();
                let mut ends = Vec::with_capacity(range.len());
                let course = retries
                    .count(fetch_acls(
                        &client,
                        BUCKET,
                        futures::stream::iter([range]),
                        Strategy::JoinAll { in_flight },
                        None,
                        |outcome| {
                            tally.add(outcome);
                            ends.push(started.elapsed());
                        },
                    ))
                    .await;
                Part {
                    tally,
                    retries: retries.get(),
                    ends,
                    course,
                }
            }));
        }
        let mut outcome = Outcome {
            in_flight,
            elapsed: Duration::ZERO,
            fetched: 0,
            failed: 0,
            retries: 0,
            refused: 0,
            tail: Duration::ZERO,
            courses: Vec::new(),
        };
        let mut ends = Vec::with_capacity(objects);
        for task in tasks {
            let part = task.await.context("a part of the run panicked")?;
            outcome.fetched += part.tally.acls_fetched;
            outcome.failed += part.tally.failures.count;
            outcome.retries += part.retries;
            outcome.courses.extend(part.course);
            ends.extend(part.ends);
        }
        outcome.elapsed = started.elapsed();
        ends.sort_unstable();
        outcome.tail = outcome.elapsed - ends.get(objects * 99 / 100).copied().unwrap_or_default();
        outcome.refused = s3.refused_for_rate();
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The table `pushback` prints for one scenario.
pub fn print(scenario: &Scenario, objects: usize, parts: NonZeroUsize, outcomes: &[Outcome]) {
    let split = if parts.get() > 1 {
        format!(" in {parts} parts at once, each with the limit shown")
    } else {
        String::new()
    };
    println!("{objects} GetObjectAcl calls{split}, {}:", scenario.describe());
    println!(
        "| in flight | time (s) | calls/s | last 1 % (s) | failed | retries | retries per call | refused | time / best fixed | limit: lowest, last (cuts) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let best_fixed = outcomes
        .iter()
        .filter(|outcome| matches!(outcome.in_flight, InFlight::Fixed(_)))
        .map(|outcome| outcome.elapsed)
        .min()
        .unwrap_or(Duration::MAX);
    for outcome in outcomes {
        let name = match outcome.in_flight {
            InFlight::Fixed(most) => format!("fixed {most}"),
            InFlight::Adaptive { ceiling, shared_by } if shared_by.get() > 1 => {
                format!(
                    "adaptive (up to {ceiling}, from {})",
                    ceiling.get().div_ceil(shared_by.get())
                )
            }
            InFlight::Adaptive { ceiling, .. } => format!("adaptive (up to {ceiling})"),
            InFlight::All => "all".to_owned(),
        };
        let seconds = outcome.elapsed.as_secs_f64();
        // Each part's course, side by side.
        let course = outcome
            .courses
            .iter()
            .map(|course| {
                format!(
                    "{}, {} ({} for pushback, {} for latency)",
                    course.lowest, course.last, course.cuts_for_pushback, course.cuts_for_latency
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        println!(
            "| {name} | {seconds:.2} | {:.0} | {:.2} | {} | {} | {:.3} | {} | {:.2} | {course} |",
            outcome.fetched as f64 / seconds,
            outcome.tail.as_secs_f64(),
            outcome.failed,
            outcome.retries,
            outcome.retries as f64 / objects.max(1) as f64,
            outcome.refused,
            seconds / best_fixed.as_secs_f64(),
        );
    }
}
