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

/// What one variant achieved.
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
    /// The adaptive limit's course.
    pub course: Option<LimitCourse>,
}

const BUCKET: &str = "pushback";

/// Runs `objects` GetObjectAcl calls per variant: each fixed limit of `fixed`, then the
/// adaptive default with `ceiling`, each against a fresh endpoint (full token buckets).
pub async fn run(
    scenario: Scenario,
    objects: usize,
    fixed: &[NonZeroUsize],
    ceiling: NonZeroUsize,
) -> anyhow::Result<Vec<Outcome>> {
    let mut variants: Vec<InFlight> = fixed.iter().copied().map(InFlight::Fixed).collect();
    variants.push(InFlight::Adaptive(ceiling));
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
        let client = client_for_endpoint(
            s3.endpoint_url(),
            &credentials.access_key_id,
            &credentials.secret_access_key,
        );
        let retries = RetryCount::default();
        let mut tally = Tally::default();
        let started = Instant::now();
        let mut ends = Vec::with_capacity(objects);
        let course = retries
            .count(fetch_acls(
                &client,
                BUCKET,
                futures::stream::iter([keys.clone()]),
                Strategy::JoinAll { in_flight },
                None,
                |outcome| {
                    tally.add(outcome);
                    ends.push(started.elapsed());
                },
            ))
            .await;
        let tail = started.elapsed() - ends.get(objects * 99 / 100).copied().unwrap_or_default();
        outcomes.push(Outcome {
            in_flight,
            elapsed: started.elapsed(),
            fetched: tally.acls_fetched,
            failed: tally.failures.count,
            retries: retries.get(),
            refused: s3.refused_for_rate(),
            tail,
            course,
        });
    }
    Ok(outcomes)
}

/// The table `pushback` prints for one scenario.
pub fn print(scenario: &Scenario, objects: usize, outcomes: &[Outcome]) {
    println!("{objects} GetObjectAcl calls, {}:", scenario.describe());
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
            InFlight::Adaptive(ceiling) => format!("adaptive (up to {ceiling})"),
            InFlight::All => "all".to_owned(),
        };
        let seconds = outcome.elapsed.as_secs_f64();
        let course = outcome.course.map_or_else(String::new, |course| {
            format!(
                "{}, {} ({} for pushback, {} for latency)",
                course.lowest, course.last, course.cuts_for_pushback, course.cuts_for_latency
            )
        });
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
