//! `join-all`'s adaptive in-flight limit against local-s3 pushing back as S3 does: a request
//! rate per prefix answered `503 SlowDown` beyond, and answers that slow as requests pile up.
//! Behaviour, not timing: no object is lost, the limit comes down under pushback and goes back
//! up once it stops. (`acl-bench pushback` measures the rates: docs/benchmark.md.)

use std::num::NonZeroUsize;
use std::time::Duration;

use acl_audit::report::Tally;
use acl_audit::s3::client::client_for_endpoint;
use acl_audit::strategy::{InFlight, fetch_acls};
use acl_audit::{Strategy, Target, audit_bucket};
use aws_sdk_s3::config::retry::RetryPartition;
use local_s3::{Load, LocalS3, NetworkModel, Options, seed_bucket};

const CEILING: usize = 64;

fn adaptive(ceiling: usize) -> Strategy {
    Strategy::JoinAll {
        in_flight: InFlight::adaptive(NonZeroUsize::new(ceiling).unwrap()),
    }
}

async fn endpoint(bucket: &str, objects: usize, load: Load, network: NetworkModel) -> (LocalS3, aws_sdk_s3::Client) {
    let s3 = LocalS3::start_with(Options {
        load,
        network,
        ..Options::default()
    })
    .await
    .unwrap();
    seed_bucket(s3.store(), bucket, objects).unwrap();
    let keys = s3.credentials();
    let client = client_for_endpoint(s3.endpoint_url(), &keys.access_key_id, &keys.secret_access_key);
    (s3, client)
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_down_brings_the_limit_down_and_its_end_lets_it_back_up_with_nothing_lost() {
    // Pushback alone moves the limit here, so the run must not be bound by this process's CPU
    // (about 3 ms a call, client and endpoint, in a debug build), or the latency check cuts
    // too, rightly, and may cut last (one CI run ended at its lowest, 29 of 64, after two
    // latency cuts with a 5 ms round trip). With 16 in flight over a 60 ms round trip the
    // CPU a round needs stays under the round trip on one core, while 16 calls a round ask
    // for about 260 a second, well over the 100 allowed even on a busy machine.
    const OBJECTS: usize = 1000;
    const CEILING: usize = 16;
    let throttled = Load {
        rate_per_prefix: Some(100.0),
        slowing_knee: None,
    };
    let network = NetworkModel::from_millis(60.0, 0.0, 1).unwrap();
    let (s3, client) = endpoint("throttled", OBJECTS, throttled, network).await;
    let s3 = std::sync::Arc::new(s3);
    // The throttling ends a while after the first SlowDown (if none comes, the assertions
    // below say so once the run is over).
    let lifts = {
        let s3 = std::sync::Arc::clone(&s3);
        tokio::spawn(async move {
            while s3.refused_for_rate() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            s3.set_load(Load::default());
        })
    };
    let report = audit_bucket(&client, &Target::bucket("throttled"), adaptive(CEILING))
        .await
        .unwrap();
    lifts.abort();
    assert_eq!(report.acls_fetched, OBJECTS, "{:?}", report.failures);
    assert_eq!(report.failures.count, 0);
    assert!(report.accounts_for_every_object());
    assert!(s3.refused_for_rate() > 0, "the endpoint throttled");
    assert!(report.retries > 0);
    let course = report.in_flight.expect("an adaptive run reports its limit's course");
    assert_eq!(course.ceiling, CEILING);
    assert!(course.cuts_for_pushback >= 1, "{course:?}");
    assert!(course.lowest < CEILING, "came down: {course:?}");
    assert!(course.last > course.lowest, "went back up: {course:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_slowing_under_load_bring_the_limit_down_with_nothing_lost() {
    // Four workers, 10 ms a request and more as requests pile up: at 16 in flight an answer
    // takes about 200 ms, at 2 (the probe's round) about 15 ms. Large beside the CPU a debug
    // build spends per call, so the test holds on a busy machine.
    const OBJECTS: usize = 500;
    const CEILING: usize = 16;
    let slowing = Load {
        rate_per_prefix: None,
        slowing_knee: Some(4),
    };
    let network = NetworkModel::from_millis(0.0, 10.0, 1).unwrap();
    let (s3, client) = endpoint("slowing", OBJECTS, slowing, network).await;
    let report = audit_bucket(&client, &Target::bucket("slowing"), adaptive(CEILING))
        .await
        .unwrap();
    assert_eq!(report.acls_fetched, OBJECTS);
    assert_eq!(report.failures.count, 0);
    assert_eq!(s3.refused_for_rate(), 0);
    let course = report.in_flight.expect("an adaptive run reports its limit's course");
    assert!(course.floor_us.is_some(), "measured the floor: {course:?}");
    assert!(course.cuts_for_latency >= 1, "{course:?}");
    assert!(course.lowest <= CEILING / 2, "{course:?}");
    assert_eq!(course.cuts_for_pushback, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_limit_reports_no_course_and_an_adaptive_one_unpushed_stays_at_its_ceiling() {
    // Fewer objects than a probe waits for: only pushback could move the limit.
    let (_s3, client) = endpoint("calm", 200, Load::default(), NetworkModel::default()).await;
    let fixed = Strategy::JoinAll {
        in_flight: InFlight::Fixed(NonZeroUsize::new(16).unwrap()),
    };
    let report = audit_bucket(&client, &Target::bucket("calm"), fixed).await.unwrap();
    assert_eq!(report.in_flight, None);
    let report = audit_bucket(&client, &Target::bucket("calm"), adaptive(CEILING))
        .await
        .unwrap();
    let course = report.in_flight.unwrap();
    assert_eq!((course.lowest, course.cuts_for_pushback), (CEILING, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_sharing_a_throttled_prefix_start_at_their_share_of_the_limit_and_lose_nothing() {
    // The state machine's parts of one bucket: four invocations, each with its own client
    // (its own connections and retry quota), their keys under one prefix of one bucket. The
    // rate allows five calls in flight in all (and the four runs at their least, four): their
    // shares of 64 start at 16 each.
    const OBJECTS: usize = 2000;
    const RUNS: usize = 4;
    let throttled = Load {
        rate_per_prefix: Some(500.0),
        slowing_knee: None,
    };
    let network = NetworkModel::from_millis(10.0, 0.0, 1).unwrap();
    let (s3, client) = endpoint("shared", OBJECTS, throttled, network).await;
    let keys: Vec<String> = (0..OBJECTS).map(local_s3::seed_key).collect();
    let shared = Strategy::JoinAll {
        in_flight: InFlight::Adaptive {
            ceiling: NonZeroUsize::new(CEILING).unwrap(),
            shared_by: NonZeroUsize::new(RUNS).unwrap(),
        },
    };
    let runs = keys.chunks(OBJECTS / RUNS).enumerate().map(|(run, range)| {
        let client = aws_sdk_s3::Client::from_conf(
            client
                .config()
                .to_builder()
                .retry_partition(RetryPartition::new(format!("run-{run}")))
                .build(),
        );
        let range = range.to_vec();
        tokio::spawn(async move {
            let mut tally = Tally::default();
            let course = fetch_acls(
                &client,
                "shared",
                futures::stream::iter([range]),
                shared,
                None,
                |outcome| tally.add(outcome),
            )
            .await;
            (tally, course.expect("an adaptive run has a course"))
        })
    });
    let mut fetched = 0;
    for run in futures::future::join_all(runs).await {
        let (tally, course) = run.unwrap();
        fetched += tally.acls_fetched;
        assert_eq!(tally.failures.count, 0, "{:?}", tally.failures);
        assert_eq!(course.ceiling, CEILING);
        assert!(course.lowest <= CEILING / RUNS, "started at its share: {course:?}");
    }
    assert_eq!(fetched, OBJECTS, "every key fetched once");
    assert!(s3.refused_for_rate() > 0, "the endpoint throttled");
}
