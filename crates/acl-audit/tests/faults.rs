//! Against an endpoint that fails requests the way S3 does under stress (503 SlowDown,
//! 500 InternalError, closed connections): retries recover every ACL, the report counts
//! them, and whatever happens every listed object is either fetched or a counted failure.

use test_support as common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use acl_audit::report::Truncation;
use acl_audit::s3::client::client_from_sdk_config;
use acl_audit::s3::retries::RetryCount;
use acl_audit::strategy::InFlight;
use acl_audit::strategy::fetch_acls;
use acl_audit::{AclOutcome, Strategy, Target, audit_bucket};
use aws_sdk_s3::config::retry::{RetryConfig, RetryPartition};
use futures::stream;
use local_s3::{FaultCounts, Faults};

/// One request in ten fails: a third each throttled, server errors and lost connections.
fn ten_percent_failing(seed: u64) -> Faults {
    Faults {
        seed,
        rules: ["*:slow-down=0.034", "*:internal-error=0.033", "*:reset=0.033"]
            .iter()
            .map(|rule| rule.parse().unwrap())
            .collect(),
        ..Faults::default()
    }
}

fn failed_since(before: FaultCounts, after: FaultCounts) -> usize {
    (after.failed_requests() - before.failed_requests()) as usize
}

#[tokio::test(flavor = "multi_thread")]
async fn with_one_request_in_ten_failing_every_strategy_still_fetches_every_acl() {
    let (s3, client) = common::faulty("flaky", 100, ten_percent_failing(1)).await;
    for strategy in common::all_strategies() {
        let before = s3.faults_injected();
        let report = audit_bucket(&client, &Target::bucket("flaky"), strategy).await.unwrap();
        let injected = failed_since(before, s3.faults_injected());
        assert_eq!(report.objects_listed, 100, "{strategy:?}");
        assert_eq!(report.acls_fetched, 100, "{strategy:?}: {:?}", report.failures);
        assert_eq!(report.failures.count, 0);
        assert_eq!(report.truncated, None);
        assert!(injected > 0, "{strategy:?}: the endpoint injected no fault");
        // Every failed request was retried once, and nothing else was.
        assert_eq!(report.retries, injected, "{strategy:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_are_counted_for_the_run_that_made_them_only() {
    let (s3, client) = common::faulty("counted", 50, ten_percent_failing(2)).await;
    let (strategy_a, strategy_b) = (Strategy::Sequential, common::all_strategies()[2]);
    let target = Target::bucket("counted");
    let before = s3.faults_injected();
    let (a, b) = tokio::join!(
        audit_bucket(&client, &target, strategy_a),
        audit_bucket(&client, &target, strategy_b),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.retries + b.retries, failed_since(before, s3.faults_injected()));
    assert_eq!(a.acls_fetched + b.acls_fetched, 100);
}

/// `client` with other retry settings, and a retry quota (and rate limiter) of its own, so
/// that tests running side by side never drain each other's.
fn retrying(client: &aws_sdk_s3::Client, retry: RetryConfig, name: &str) -> aws_sdk_s3::Client {
    static QUOTAS: AtomicUsize = AtomicUsize::new(0);
    let quota = format!("{name}-{}", QUOTAS.fetch_add(1, Ordering::Relaxed));
    aws_sdk_s3::Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_config(retry)
            .retry_partition(RetryPartition::new(quota))
            .build(),
    )
}

/// A client like the functions' but backing off 5 ms at most, so that a test can exhaust its
/// attempts quickly: the accounting, not the backoff, is under test.
fn impatient_client(client: &aws_sdk_s3::Client) -> aws_sdk_s3::Client {
    let retry = RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(5));
    retrying(client, retry, "impatient")
}

#[tokio::test(flavor = "multi_thread")]
async fn when_retries_run_out_every_listed_object_is_fetched_or_a_counted_failure() {
    let faults = Faults {
        seed: 3,
        rules: [
            "get-object-acl:slow-down=0.25",
            "get-object-acl:internal-error=0.2",
            "get-object-acl:reset=0.15",
        ]
        .iter()
        .map(|rule| rule.parse().unwrap())
        .collect(),
        ..Faults::default()
    };
    let (_s3, client) = common::faulty("lossy", 300, faults).await;
    let client = impatient_client(&client);
    for strategy in common::all_strategies() {
        let report = audit_bucket(&client, &Target::bucket("lossy"), strategy).await.unwrap();
        assert!(report.accounts_for_every_object(), "{strategy:?}: {report:?}");
        assert_eq!(report.objects_listed, 300);
        assert!(
            report.failures.count > 0,
            "{strategy:?}: 60 % failing, 3 attempts: some keys fail"
        );
        assert!(report.acls_fetched > 0);
        let codes: BTreeSet<&str> = report.failures.by_code.keys().map(String::as_str).collect();
        assert!(
            codes.is_subset(&BTreeSet::from(["SlowDown", "InternalError", "DispatchFailure"])),
            "{codes:?}"
        );

        // Key by key: each listed key has exactly one outcome.
        let keys = acl_audit::s3::listing::list_keys(&client, &Target::bucket("lossy"))
            .await
            .unwrap()
            .keys;
        let mut outcome_keys = Vec::new();
        fetch_acls(
            &client,
            "lossy",
            stream::iter([keys.clone()]),
            strategy,
            None,
            |outcome| {
                assert!(!matches!(outcome, AclOutcome::NotFetched(_)));
                outcome_keys.push(outcome.key().to_owned());
            },
        )
        .await;
        outcome_keys.sort_unstable();
        assert_eq!(outcome_keys, keys, "{strategy:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pushback_counts_calls_whose_first_attempt_failed_not_their_retries() {
    let faults = Faults {
        seed: 5,
        rules: ["get-object-acl:slow-down=0.5".parse().unwrap()].into(),
        ..Faults::default()
    };
    let (s3, client) = common::faulty("echoes", 100, faults).await;
    let client = impatient_client(&client);
    let keys: Vec<String> = (0..100).map(local_s3::seed_key).collect();
    let retries = RetryCount::default();
    let mut failed = 0;
    let record = |outcome: AclOutcome| failed += usize::from(matches!(outcome, AclOutcome::Failed(_)));
    retries
        .count(fetch_acls(
            &client,
            "echoes",
            stream::iter([keys]),
            Strategy::Sequential,
            None,
            record,
        ))
        .await;
    let injected = s3.faults_injected().failed_requests() as usize;
    // Half the first attempts fail, and half the retries after them again.
    assert!((25..=75).contains(&retries.pushbacks()), "{}", retries.pushbacks());
    assert!(retries.pushbacks() < injected, "{} of {injected}", retries.pushbacks());
    // Every failed attempt was retried but the last of a call that failed.
    assert_eq!(retries.get(), injected - failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_that_keeps_failing_is_an_error_naming_s3_s_code() {
    let faults = Faults {
        seed: 4,
        rules: vec!["list-objects-v2:internal-error=1".parse().unwrap()],
        ..Faults::default()
    };
    let (_s3, client) = common::faulty("unlistable", 10, faults).await;
    let err = audit_bucket(
        &impatient_client(&client),
        &Target::bucket("unlistable"),
        Strategy::Sequential,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "listing the bucket \"unlistable\" failed (InternalError): InternalError: We encountered an internal error. Please try again."
    );
}

#[test]
fn without_aws_retry_variables_the_functions_own_retry_policy_applies() {
    // What aws-config would load from a profile's retry settings, which the functions override.
    let sdk_config = aws_config::SdkConfig::builder()
        .retry_config(RetryConfig::adaptive().with_max_attempts(7))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let ours = client_from_sdk_config(&sdk_config);
    let retry = ours.config().retry_config().unwrap();
    // With AWS_RETRY_MODE and AWS_MAX_ATTEMPTS unset, seven standard attempts, the first
    // throttled retry after at most a quarter second (the run's limit backs off for the run).
    assert_eq!(retry.max_attempts(), 7);
    assert_eq!(retry.mode(), aws_sdk_s3::config::retry::RetryMode::Standard);
    assert_eq!(retry.initial_backoff(), Duration::from_millis(250));
    // A run whose limit stays put waits as the SDK does; nothing else changes.
    let without_run_limit = acl_audit::s3::client::without_run_limit(&ours);
    let retry = without_run_limit.config().retry_config().unwrap();
    assert_eq!(retry.initial_backoff(), Duration::from_secs(1));
    assert_eq!(retry.max_attempts(), 5);
    assert_eq!(
        without_run_limit.config().timeout_config(),
        ours.config().timeout_config()
    );
    // A caller's own retry configuration stands, as the user's does.
    let impatient = impatient_client(&ours);
    let kept = acl_audit::s3::client::without_run_limit(&impatient);
    assert_eq!(kept.config().retry_config(), impatient.config().retry_config());
}

#[test]
fn every_attempt_is_bounded_by_the_attempt_timeout_instead_of_stalled_stream_protection() {
    let ours = client_from_sdk_config(&aws_config::SdkConfig::builder().build());
    let timeouts = ours.config().timeout_config().unwrap();
    assert_eq!(timeouts.operation_attempt_timeout(), Some(Duration::from_secs(10)));
    assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(30)));
    assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(3)));
    assert!(!ours.config().stalled_stream_protection().unwrap().is_enabled());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_later_listing_page_that_keeps_failing_truncates_the_report_after_auditing_the_first() {
    // With seed 19 the first page's request succeeds and the second's fails three times (the
    // draws follow each request's query, `encoding-type=url` and `start-after` included).
    let faults = Faults {
        seed: 19,
        rules: vec!["list-objects-v2:internal-error=0.5".parse().unwrap()],
        ..Faults::default()
    };
    let (_s3, client) = common::faulty("halfway", 1500, faults).await;
    let report = audit_bucket(
        &impatient_client(&client),
        &Target::bucket("halfway"),
        Strategy::JoinAll {
            in_flight: InFlight::All,
        },
    )
    .await
    .unwrap();
    let Some(Truncation::ListingFailed { error }) = &report.truncated else {
        panic!("expected a failed listing: {:?}", report.truncated);
    };
    assert!(error.contains("InternalError"), "{error}");
    assert_eq!((report.objects_listed, report.acls_fetched), (1000, 1000));
    assert!(report.accounts_for_every_object());
    let resume = report.resume.unwrap();
    assert_eq!(
        resume.cursor,
        acl_audit::model::Cursor::After {
            key: Some(local_s3::seed_key(999)),
            version_id: None
        }
    );
    assert!(resume.keys.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn adaptive_retries_fetch_every_acl_under_throttling_too() {
    // AWS_RETRY_MODE=adaptive: after the first SlowDown the client paces its requests.
    let faults = Faults {
        seed: 5,
        rules: vec!["get-object-acl:slow-down=0.1".parse().unwrap()],
        ..Faults::default()
    };
    let (s3, client) = common::faulty("throttled", 100, faults).await;
    let adaptive = retrying(&client, RetryConfig::adaptive().with_max_attempts(5), "adaptive");
    let strategy = common::all_strategies()[2];
    for (mode, client) in [("standard", &client), ("adaptive", &adaptive)] {
        let before = s3.faults_injected();
        let started = std::time::Instant::now();
        let report = audit_bucket(client, &Target::bucket("throttled"), strategy)
            .await
            .unwrap();
        // Not asserted (timings are the benchmark's business); docs/reliability.md quotes a run.
        eprintln!(
            "{mode}: {:?} for 100 ACLs, {} retries",
            started.elapsed(),
            report.retries
        );
        assert_eq!(report.acls_fetched, 100, "{mode}: {:?}", report.failures);
        assert_eq!(report.retries, failed_since(before, s3.faults_injected()), "{mode}");
    }
}
