//! A scheduled run stopped by its deadline, with no one to read the report it returns, stores
//! its resume token under `FINDINGS_URI`; the next run of the same target takes it up and says
//! so, and the run that reaches the end removes it.

use test_support as common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use acl_audit::{Resume, StrategyKind};
use acl_audit_lambda::{Clients, Config, RunReport};
use aws_sdk_s3::Client;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

const TOKEN_KEY: &str = "acl-audit/resume/join-all/due/all.json";

fn config(resume_from_store: &str) -> Config {
    let resume_from_store = resume_from_store.to_owned();
    Config::from_vars(|name| match name {
        "DEADLINE_MARGIN_MS" => Some("1000".to_owned()),
        "MAX_IN_FLIGHT" => Some("8".to_owned()),
        "FINDINGS_URI" => Some("s3://findings/acl-audit/".to_owned()),
        "RESUME_FROM_STORE" => Some(resume_from_store.clone()),
        _ => None,
    })
    .unwrap()
}

/// A scheduled invocation (the template's payload) whose deadline is `remaining` from now.
fn scheduled(request_id: &str, remaining: Duration) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    context.deadline = (SystemTime::now() + remaining)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    LambdaEvent::new(json!({"bucket": "due"}), context)
}

async fn endpoint() -> (local_s3::LocalS3, Client) {
    common::slow_acls_and_findings_bucket("due", 60).await
}

async fn stored_token(client: &Client) -> Option<Resume> {
    stored_token_at(client, TOKEN_KEY).await
}

async fn stored_token_at(client: &Client, key: &str) -> Option<Resume> {
    let object = client.get_object().bucket("findings").key(key).send().await.ok()?;
    Some(serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap())
}

async fn run(client: &Client, config: &Config, request_id: &str, remaining: Duration) -> RunReport {
    run_as(StrategyKind::JoinAll, client, config, request_id, remaining).await
}

async fn run_as(
    kind: StrategyKind,
    client: &Client,
    config: &Config,
    request_id: &str,
    remaining: Duration,
) -> RunReport {
    acl_audit_lambda::invoke(kind, &Clients::new(client), config, scheduled(request_id, remaining))
        .await
        .into_run_report()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_scheduled_run_takes_up_the_stored_token_and_the_last_removes_it() {
    let (_s3, client) = endpoint().await;
    let config = config("true");
    // Stops 1 s before a deadline 1.5 s away: one or two rounds of 300 ms calls.
    let first = run(&client, &config, "first", Duration::from_millis(1500)).await;
    assert!(first.truncated.is_some(), "{first:?}");
    assert_eq!(first.resumed_from, None);
    let token = stored_token(&client).await.expect("the stopped run's token is stored");
    assert_eq!(Some(&token), first.resume.as_ref());

    let mut reports = vec![first];
    for n in 0..10 {
        let report = run(&client, &config, &format!("next-{n}"), Duration::from_secs(60)).await;
        assert_eq!(
            report.resumed_from.as_deref(),
            Some(format!("s3://findings/{TOKEN_KEY}").as_str()),
            "the report says where it took up"
        );
        let done = report.truncated.is_none();
        reports.push(report);
        if done {
            break;
        }
    }
    assert!(reports.last().unwrap().truncated.is_none(), "the target is finished");
    let fetched: usize = reports.iter().map(|r| r.acls_fetched + r.failures.count).sum();
    assert_eq!(fetched, 60, "every object once across the runs");
    assert_eq!(stored_token(&client).await, None, "the finished target leaves no token");

    let again = run(&client, &config, "again", Duration::from_secs(60)).await;
    assert_eq!(
        (again.resumed_from.as_deref(), again.objects_listed),
        (None, 60),
        "a new run starts over"
    );
}

/// The three functions share `FINDINGS_URI` and may be scheduled over one bucket: each takes up
/// only its own function's token.
#[tokio::test(flavor = "multi_thread")]
async fn two_functions_scheduled_over_one_bucket_keep_their_own_tokens() {
    let (_s3, client) = endpoint().await;
    let config = config("true");
    let sequential = run_as(
        StrategyKind::Sequential,
        &client,
        &config,
        "sequential",
        Duration::from_millis(1500),
    )
    .await;
    assert!(sequential.truncated.is_some(), "{sequential:?}");
    let sequential_key = "acl-audit/resume/sequential/due/all.json";
    let token = stored_token_at(&client, sequential_key).await;
    assert_eq!(token.as_ref(), sequential.resume.as_ref(), "stored under its strategy");

    let join_all = run(&client, &config, "join-all", Duration::from_secs(60)).await;
    assert_eq!(
        (
            join_all.resumed_from.as_deref(),
            join_all.objects_listed,
            join_all.truncated.as_ref()
        ),
        (None, 60, None),
        "join-all does not take up sequential's token"
    );
    assert_eq!(
        stored_token_at(&client, sequential_key).await,
        token,
        "nor does it remove it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_resume_from_store_a_stopped_run_stores_nothing() {
    let (_s3, client) = endpoint().await;
    let first = run(&client, &config("false"), "first", Duration::from_millis(1500)).await;
    assert!(first.truncated.is_some() && first.resume.is_some());
    assert_eq!(stored_token(&client).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_handed_in_the_event_is_the_callers_and_is_not_stored() {
    let (_s3, client) = endpoint().await;
    let config = config("true");
    let mut context = Context::default();
    context.request_id = "handed".to_owned();
    let resume = json!({"bucket": "due", "prefix": null, "start_after": local_s3::seed_key(49), "listing_complete": false, "keys": []});
    let report = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config,
        LambdaEvent::new(json!({"resume": resume}), context),
    )
    .await
    .into_run_report()
    .unwrap();
    assert_eq!((report.objects_listed, report.resumed_from.as_deref()), (10, None));
    assert_eq!(stored_token(&client).await, None);
}
