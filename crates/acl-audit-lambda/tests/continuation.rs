//! A chained continuation (`CHAIN_CONTINUATION=true`): a run stopped by its deadline invokes
//! the function again at once through Lambda's `Invoke` API (asynchronous, `Event`), here a
//! loopback stand-in that records each request and answers as Lambda does (202, a request id).
//! The links, each handed the recorded payload, audit every object once and stop by
//! themselves; the chain stops at `CHAIN_LIMIT`.

#[path = "../../acl-audit/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use acl_audit::{AuditReport, StrategyKind};
use acl_audit_lambda::{Config, Request, invoke_chaining};
use aws_sdk_s3::Client;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:acl-audit-join-all";
const TOKEN_KEY: &str = "acl-audit/resume/due/all.json";

/// One `Invoke` request as the stand-in received it.
#[derive(Debug, Clone)]
struct Invoked {
    path: String,
    invocation_type: Option<String>,
    body: Value,
}

/// Lambda's Invoke API on a loopback port: answers 202 with a request id (`link-N`), or
/// `status` with an AccessDeniedException when one is given.
struct InvokeApi {
    url: String,
    invoked: Arc<Mutex<Vec<Invoked>>>,
}

impl InvokeApi {
    fn start(status: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let invoked = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&invoked);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                let (mut length, mut invocation_type) = (0, None);
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(':').unwrap();
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap(),
                        "x-amz-invocation-type" => invocation_type = Some(value.trim().to_owned()),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let mut recorded = recorded.lock().unwrap();
                recorded.push(Invoked {
                    path,
                    invocation_type,
                    body: serde_json::from_slice(&body).unwrap(),
                });
                let answer = if status == 202 {
                    format!(
                        "HTTP/1.1 202 Accepted\r\nx-amzn-RequestId: link-{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        recorded.len()
                    )
                } else {
                    let error = r#"{"Type":"User","message":"not authorized to perform: lambda:InvokeFunction"}"#;
                    format!(
                        "HTTP/1.1 {status} Forbidden\r\nx-amzn-RequestId: denied\r\nx-amzn-ErrorType: AccessDeniedException\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{error}",
                        error.len()
                    )
                };
                stream.write_all(answer.as_bytes()).unwrap();
            }
        });
        InvokeApi { url, invoked }
    }

    fn client(&self) -> aws_sdk_lambda::Client {
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                "AKIDLOCAL",
                "local-secret",
                None,
                None,
                "test",
            ))
            .endpoint_url(&self.url)
            .build();
        aws_sdk_lambda::Client::from_conf(config)
    }

    fn invoked(&self) -> Vec<Invoked> {
        self.invoked.lock().unwrap().clone()
    }
}

fn config(vars: &[(&str, &str)]) -> Config {
    let defaults = [
        ("DEADLINE_MARGIN_MS", "1000"),
        ("MAX_IN_FLIGHT", "8"),
        ("FINDINGS_URI", "s3://findings/acl-audit/"),
        ("CHAIN_CONTINUATION", "true"),
    ];
    Config::from_vars(|name| {
        vars.iter()
            .chain(&defaults)
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

/// An invocation of the function whose deadline is 1.5 s away: with the 1 s margin and every
/// GetObjectAcl 300 ms late, one or two rounds of calls.
fn event(payload: Value, request_id: &str) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    context.invoked_function_arn = FUNCTION_ARN.to_owned();
    context.deadline = (SystemTime::now() + Duration::from_millis(1500))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    LambdaEvent::new(payload, context)
}

async fn endpoint() -> (local_s3::LocalS3, Client) {
    common::slow_acls_and_findings_bucket("due", 60).await
}

async fn run(client: &Client, api: &InvokeApi, config: &Config, payload: Value, id: &str) -> AuditReport {
    let lambda = api.client();
    invoke_chaining(
        StrategyKind::JoinAll,
        client,
        None,
        Some(&lambda),
        config,
        event(payload, id),
    )
    .await
    .into_result()
    .unwrap()
}

async fn stored(client: &Client) -> bool {
    client
        .get_object()
        .bucket("findings")
        .key(TOKEN_KEY)
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_run_invokes_its_continuation_and_the_links_finish_the_bucket() {
    let (_s3, client) = endpoint().await;
    let api = InvokeApi::start(202);
    let config = config(&[]);
    let first = run(&client, &api, &config, json!({"bucket": "due"}), "first").await;
    assert!(first.truncated.is_some(), "{first:?}");
    assert_eq!(first.continued_by.as_deref(), Some("link-1"));
    let invoked = api.invoked();
    assert_eq!(invoked.len(), 1);
    assert!(invoked[0].path.contains("acl-audit-join-all"), "{}", invoked[0].path);
    assert_eq!(invoked[0].invocation_type.as_deref(), Some("Event"), "asynchronous");
    let next: Request = serde_json::from_value(invoked[0].body.clone()).unwrap();
    assert_eq!((next.bucket.as_deref(), next.chained), (Some("due"), Some(1)));
    assert_eq!(
        next.resume, None,
        "the token is in the store, where the link takes it up"
    );
    assert!(stored(&client).await);

    let mut reports = vec![first];
    for n in 0..10 {
        let payload = api.invoked().last().unwrap().body.clone();
        let report = run(&client, &api, &config, payload, &format!("link-{n}")).await;
        assert!(report.resumed_from.is_some(), "each link takes up the stored token");
        let done = report.truncated.is_none();
        assert_eq!(report.continued_by.is_some(), !done, "{report:?}");
        reports.push(report);
        if done {
            break;
        }
    }
    assert!(
        reports.last().unwrap().truncated.is_none(),
        "the chain finished the bucket"
    );
    assert_eq!(
        api.invoked().len(),
        reports.len() - 1,
        "one continuation per stopped link"
    );
    let depths: Vec<Option<usize>> = api
        .invoked()
        .iter()
        .map(|i| i.body["chained"].as_u64().map(|d| d as usize))
        .collect();
    let expected: Vec<Option<usize>> = (1..=depths.len()).map(Some).collect();
    assert_eq!(depths, expected, "each link one further down");
    let audited: usize = reports.iter().map(|r| r.acls_fetched + r.failures.count).sum();
    assert_eq!(audited, 60, "every object once across the links");
    assert!(!stored(&client).await, "the last link removes the token");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chain_stops_at_its_limit_and_leaves_the_token_to_the_schedule() {
    let (_s3, client) = endpoint().await;
    let api = InvokeApi::start(202);
    let config = config(&[("CHAIN_LIMIT", "1")]);
    let first = run(&client, &api, &config, json!({"bucket": "due"}), "first").await;
    assert_eq!(first.continued_by.as_deref(), Some("link-1"));
    let payload = api.invoked()[0].body.clone();
    let link = run(&client, &api, &config, payload, "link-1").await;
    assert!(link.truncated.is_some(), "{link:?}");
    assert_eq!(link.continued_by, None, "at its limit the chain stops");
    assert_eq!(api.invoked().len(), 1);
    assert!(stored(&client).await, "the next scheduled run takes the token up");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_store_the_continuation_carries_the_token() {
    let (_s3, client) = endpoint().await;
    let api = InvokeApi::start(202);
    let config = config(&[("RESUME_FROM_STORE", "false")]);
    let first = run(&client, &api, &config, json!({"bucket": "due"}), "first").await;
    let next: Request = serde_json::from_value(api.invoked()[0].body.clone()).unwrap();
    assert_eq!(next.chained, Some(1));
    assert_eq!(
        next.resume.as_ref(),
        first.resume.as_ref(),
        "the token travels in the event"
    );
    assert!(!stored(&client).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn parts_never_chain_and_a_refused_invoke_leaves_the_stored_token() {
    let (_s3, client) = endpoint().await;
    let api = InvokeApi::start(202);
    let config = config(&[]);
    let token = json!({"bucket": "due", "prefix": null, "start_after": null, "listing_complete": false, "keys": []});
    let part = run(
        &client,
        &api,
        &config,
        json!({"resume": token, "map_part": true}),
        "part",
    )
    .await;
    assert!(part.truncated.is_some() && part.continued_by.is_none());
    assert!(
        api.invoked().is_empty(),
        "a state machine's part is carried on by its collect step"
    );

    let denied = InvokeApi::start(403);
    let first = run(&client, &denied, &config, json!({"bucket": "due"}), "denied").await;
    assert!(first.truncated.is_some());
    assert_eq!(first.continued_by, None, "the invoke was refused");
    assert_eq!(denied.invoked().len(), 1, "not retried: AccessDenied is not transient");
    assert!(stored(&client).await, "the token waits for the next schedule");
}
