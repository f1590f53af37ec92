//! Opening connections before they are needed: a function's init runs with burst CPU on
//! Lambda (docs/benchmark.md, "Init CPU and warming"), where a TLS handshake costs a fraction of
//! what it costs inside a small memory size's CPU share, so connections opened then make the
//! first invocation of a cold start as fast as a warm one.

use std::time::Duration;

use aws_sdk_s3::Client;
use futures::future::join_all;

use crate::s3::error::error_code;

/// What [`open_connections`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warmed {
    /// Requests answered (a HeadBucket error is an answer too: its connection is open).
    pub answered: usize,
    /// Requests that got no answer in time, by the SDK's or S3's code.
    pub failed: Vec<String>,
}

/// Sends `count` HeadBucket requests for `bucket` at once, so that the client's pool opens
/// `count` connections to its endpoint and keeps them, and waits `within` at most. Nothing
/// here fails: a request that goes unanswered only leaves its connection unopened.
pub async fn open_connections(client: &Client, bucket: &str, count: usize, within: Duration) -> Warmed {
    let requests = (0..count).map(|_| async {
        match client.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(()),
            // An answer all the same (404, 403, 301): the connection is open and pooled.
            Err(err) if err.raw_response().is_some() => Ok(()),
            Err(err) => Err(error_code(&err)),
        }
    });
    match tokio::time::timeout(within, join_all(requests)).await {
        Ok(results) => Warmed {
            answered: results.iter().filter(|result| result.is_ok()).count(),
            failed: results.into_iter().filter_map(Result::err).collect(),
        },
        Err(_) => Warmed {
            answered: 0,
            failed: vec!["Timeout".to_owned()],
        },
    }
}
