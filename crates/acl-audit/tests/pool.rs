//! The pool gauge against a real endpoint: the connections it counts open are the ones the
//! endpoint accepted, and it counts none once the pool's idle timeout has passed.

use test_support as common;

use std::num::NonZeroUsize;
use std::time::Duration;

use acl_audit::s3::pool::PoolGauge;
use acl_audit::strategy::InFlight;
use acl_audit::{Strategy, Target, audit_bucket};

#[tokio::test(flavor = "multi_thread")]
async fn the_gauge_counts_the_connections_a_run_left_open_until_they_expire() {
    let (s3, client) = common::seeded("gauged", 40).await;
    let gauge = PoolGauge::new(Duration::from_millis(300));
    let client = gauge.watch(&client);
    assert_eq!(gauge.open_now(), 0);
    let strategy = Strategy::JoinAll {
        in_flight: InFlight::Fixed(NonZeroUsize::new(8).unwrap()),
    };
    let report = audit_bucket(&client, &Target::bucket("gauged"), strategy)
        .await
        .unwrap();
    assert_eq!(report.acls_fetched, 40);
    let open = gauge.open_now() as u64;
    // 8 calls in flight at once, the listing maybe beside them; the pool may open one more
    // than it uses when another connection's return wins the race for a request.
    assert!((8..=9).contains(&open), "{open} open");
    assert!(
        open <= s3.connections_accepted(),
        "{open} > {}",
        s3.connections_accepted()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(gauge.open_now(), 0, "past the idle timeout the pool holds none");
}
