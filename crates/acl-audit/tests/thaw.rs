//! Lambda freezes a process between invocations, and S3 closes a connection idle for about
//! 20 s: a function thawed later must not send its requests on connections that closed while
//! it was frozen. Here the endpoint closes idle connections after 300 ms and the client's
//! current-thread runtime stands still meanwhile (its thread sleeps, as a frozen process's
//! does), so that it sees nothing of the close until it runs again.

use std::time::Duration;

use acl_audit::s3::client::{POOL_IDLE_TIMEOUT, client_with_http_client, https_client};
use acl_audit::strategy::InFlight;
use acl_audit::{Strategy, Target, audit_bucket};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::config::retry::RetryPartition;
use local_s3::{LocalS3, Options};

const ENDPOINT_IDLE: Duration = Duration::from_millis(300);

fn credentials(s3: &LocalS3) -> Credentials {
    let keys = s3.credentials();
    Credentials::new(&keys.access_key_id, &keys.secret_access_key, None, None, "test")
}

/// Two audits of `bucket` on one current-thread runtime (a function's), `between` them what
/// happens to its connections; both reports.
fn audit_around(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    between: impl FnOnce(&tokio::runtime::Runtime),
) -> (acl_audit::AuditReport, acl_audit::AuditReport) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let strategy = Strategy::JoinAll {
        in_flight: InFlight::Fixed(std::num::NonZeroUsize::new(8).unwrap()),
    };
    let audit = || {
        runtime
            .block_on(audit_bucket(client, &Target::bucket(bucket), strategy))
            .unwrap()
    };
    let first = audit();
    between(&runtime);
    (first, audit())
}

/// Retries of an audit run right after the client's runtime stood still for `frozen`.
fn retries_after_a_freeze(s3: &LocalS3, pool_idle_timeout: Duration, frozen: Duration) -> usize {
    let client = client_with_http_client(s3.endpoint_url(), credentials(s3), https_client(pool_idle_timeout));
    // A retry quota of its own: the other case's retries must not drain this one's.
    let client = aws_sdk_s3::Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_partition(RetryPartition::new(format!("thaw-{}", pool_idle_timeout.as_millis())))
            .build(),
    );
    // Frozen: nothing runs on the client's runtime while the endpoint closes its connections.
    let (first, thawed) = audit_around(&client, "thawed", |_| std::thread::sleep(frozen));
    assert_eq!(first.acls_fetched, 40);
    assert_eq!((thawed.acls_fetched, thawed.failures.count), (40, 0));
    thawed.retries
}

#[test]
fn a_pool_that_expires_idle_connections_before_the_endpoint_closes_them_makes_no_retry() {
    assert!(
        POOL_IDLE_TIMEOUT < local_s3::S3_IDLE_TIMEOUT,
        "the functions' pool gives up first"
    );
    // The endpoint on a runtime of its own, which goes on while the client's stands still.
    let server = tokio::runtime::Runtime::new().unwrap();
    let s3 = server
        .block_on(LocalS3::start_with(Options {
            idle_timeout: Some(ENDPOINT_IDLE),
            ..Options::default()
        }))
        .unwrap();
    local_s3::seed_bucket(s3.store(), "thawed", 40).unwrap();
    let frozen = ENDPOINT_IDLE * 3;

    // The functions' rule, scaled down: the pool drops a connection before the endpoint does.
    assert_eq!(retries_after_a_freeze(&s3, ENDPOINT_IDLE * 2 / 3, frozen), 0);
    // hyper's default (90 s) keeps the closed connections, and the first requests fail on them.
    let kept = retries_after_a_freeze(&s3, Duration::from_secs(90), frozen);
    assert!(kept > 0, "no retry on connections the endpoint had closed");
}

#[test]
fn connections_the_endpoint_closes_while_the_client_runs_are_dropped_from_its_pool() {
    let server = tokio::runtime::Runtime::new().unwrap();
    for tls in [false, true] {
        let s3 = server
            .block_on(LocalS3::start_with(Options {
                tls,
                ..Options::default()
            }))
            .unwrap();
        local_s3::seed_bucket(s3.store(), "closed", 40).unwrap();
        let client = match s3.ca_pem() {
            Some(ca) => {
                acl_audit::s3::client::client_trusting(s3.endpoint_url(), credentials(&s3), ca.as_bytes()).unwrap()
            }
            None => client_with_http_client(s3.endpoint_url(), credentials(&s3), https_client(POOL_IDLE_TIMEOUT)),
        };
        let (_, after) = audit_around(&client, "closed", |runtime| {
            s3.close_idle_connections();
            // Running, the client sees each close as it comes.
            runtime.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
        });
        assert_eq!((after.acls_fetched, after.retries), (40, 0), "tls: {tls}");
    }
}
