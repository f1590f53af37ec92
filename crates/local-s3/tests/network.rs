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

/// A keep-alive connection that has had one answer: a raw request, its whole answer read.
async fn kept_alive(s3: &LocalS3) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(s3.addr()).await.unwrap();
    // Unsigned: answered 403, and the connection kept for the next request.
    stream
        .write_all(b"GET /net HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0; 4096];
    let read = stream.read(&mut answer).await.unwrap();
    assert!(
        answer[..read].starts_with(b"HTTP/1.1 403"),
        "{:?}",
        String::from_utf8_lossy(&answer[..read])
    );
    stream
}

/// How long until the endpoint closes `stream` (reads return end of file).
async fn closed_after(mut stream: tokio::net::TcpStream, patience: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut byte = [0; 1];
    match tokio::time::timeout(patience, stream.read(&mut byte)).await {
        Ok(Ok(0)) => Some(started.elapsed()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_connection_is_closed_after_the_idle_timeout_as_s3_closes_them() {
    let idle = Duration::from_millis(400);
    let s3 = LocalS3::start_with(Options {
        idle_timeout: Some(idle),
        ..Options::default()
    })
    .await
    .unwrap();
    let stream = kept_alive(&s3).await;
    let closed = closed_after(stream, Duration::from_secs(5)).await.expect("closed");
    assert!(closed >= idle - Duration::from_millis(50), "closed after {closed:?}");
    assert!(closed < idle * 2 + SLACK, "closed after {closed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_close_on_demand_and_busy_ones_do_not() {
    let s3 = LocalS3::start_with(Options {
        network: NetworkModel {
            service_time: Duration::from_millis(500),
            ..NetworkModel::default()
        },
        ..Options::default()
    })
    .await
    .unwrap();
    local_s3::seed_bucket(s3.store(), "net", 1).unwrap();
    let idle = kept_alive(&s3).await;
    // A request under way (500 ms of service time) when the endpoint closes idle connections.
    let client = common::client_for(&s3);
    let busy = tokio::spawn(async move {
        client
            .get_object_acl()
            .bucket("net")
            .key(local_s3::seed_key(0))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    s3.close_idle_connections();
    assert!(
        closed_after(idle, Duration::from_secs(2)).await.is_some(),
        "the idle one closes at once"
    );
    busy.await.unwrap().expect("the busy one answers");
    // A connection opened afterwards is served, and kept.
    let fresh = kept_alive(&s3).await;
    assert!(
        closed_after(fresh, Duration::from_millis(500)).await.is_none(),
        "a new connection is kept"
    );
}
