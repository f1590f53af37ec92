//! The network model: the delays it promises are really added. Lower bounds are exact (a
//! delay is never shorter than modelled); upper bounds are loose, for a busy CI machine.

mod common;

use std::time::{Duration, Instant};

use local_s3::{LocalS3, NetworkModel, Options};

const RTT: Duration = Duration::from_millis(20);
const SERVICE_TIME: Duration = Duration::from_millis(10);
const SLACK: Duration = Duration::from_millis(250);

/// An endpoint with `network` applied, holding `objects` seeded objects in bucket "net".
async fn endpoint_with(network: NetworkModel, objects: usize) -> (LocalS3, aws_sdk_s3::Client) {
    let s3 = LocalS3::start_with(Options {
        network,
        ..Options::default()
    })
    .await
    .unwrap();
    local_s3::seed_bucket(s3.store(), "net", objects).unwrap();
    let client = common::client_for(&s3);
    (s3, client)
}

async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let output = call.await;
    (output, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_connection_pays_its_handshakes_and_a_reused_one_only_the_request() {
    let network = NetworkModel {
        rtt: RTT,
        service_time: SERVICE_TIME,
        handshake_rtts: 2,
    };
    let (_s3, client) = endpoint_with(network, 1).await;
    let acl = || client.get_object_acl().bucket("net").key(local_s3::seed_key(0)).send();

    let (first, cold) = timed(acl()).await;
    first.unwrap();
    let cold_floor = network.connection_delay() + network.request_delay();
    assert!(
        cold >= cold_floor && cold < cold_floor + SLACK,
        "first request took {cold:?}, modelled {cold_floor:?}"
    );

    let (second, warm) = timed(acl()).await;
    second.unwrap();
    let warm_floor = network.request_delay();
    assert!(
        warm >= warm_floor && warm < warm_floor + SLACK,
        "second request took {warm:?}, modelled {warm_floor:?}"
    );
    assert!(warm < cold_floor, "the second request reused the connection: {warm:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_on_separate_connections_wait_concurrently_not_in_turn() {
    let network = NetworkModel {
        rtt: RTT,
        service_time: SERVICE_TIME,
        handshake_rtts: 1,
    };
    let (_s3, client) = endpoint_with(network, 10).await;
    let calls = (0..10).map(|i| client.get_object_acl().bucket("net").key(local_s3::seed_key(i)).send());
    let (outcomes, elapsed) = timed(futures::future::join_all(calls)).await;
    assert!(outcomes.iter().all(Result::is_ok));
    let one_call = network.connection_delay() + network.request_delay();
    assert!(
        elapsed >= one_call && elapsed < one_call + SLACK,
        "10 parallel calls took {elapsed:?}, one takes {one_call:?}"
    );
}
