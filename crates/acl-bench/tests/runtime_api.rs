//! The benchmark's Runtime API serving the functions' real entry (`acl_audit_lambda::run`, what
//! each function's `main` calls) against local-s3: init ends at the first poll with the
//! connections opened, each event's answer comes back with a cap that counts them, and an error
//! is posted as one.

use std::time::Duration;

use acl_audit::StrategyKind;
use acl_bench::runtime_api::RuntimeApi;
use local_s3::LocalS3;

#[test]
fn a_function_s_entry_runs_through_the_runtime_api_with_its_connections_opened_at_init() {
    // The endpoint on a runtime of its own, for the whole test.
    let server = tokio::runtime::Runtime::new().unwrap();
    let s3 = server.block_on(LocalS3::start()).unwrap();
    local_s3::seed_bucket(s3.store(), "through-the-api", 50).unwrap();
    let api = RuntimeApi::start().unwrap();
    let mut env = api.function_env("join-all", 128, &s3);
    env.push(("BUCKET_NAME", "through-the-api".to_owned()));
    for (name, value) in env {
        // SAFETY: set before the function's thread starts; no other thread reads the
        // environment meanwhile (this binary holds this one test).
        unsafe { std::env::set_var(name, value) };
    }
    // A main thread's stack, as the function's `main` has: a debug build's futures are large.
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(|| acl_audit_lambda::run(StrategyKind::JoinAll))
        .unwrap();

    api.wait_for_poll(Duration::from_secs(30))
        .expect("the init ends with a poll");
    // join-all's init opens 64 connections at least (16 calls in flight at 128 MB).
    assert_eq!(s3.requests("HeadBucket"), 64);
    let opened_at_init = s3.connections_accepted();

    let patience = Duration::from_secs(30);
    let outcome = api
        .invoke(&serde_json::json!({}), Duration::from_secs(60), patience)
        .unwrap();
    assert!(!outcome.error, "{}", String::from_utf8_lossy(&outcome.body));
    let report: serde_json::Value = serde_json::from_slice(&outcome.body).unwrap();
    assert_eq!(report["acls_fetched"], 50);
    assert_eq!(report["retries"], 0);
    assert!(outcome.duration() > Duration::ZERO);
    // The cap follows the pool: the connections init opened, not 128 MB's 16.
    let limit = report["concurrency_limit"].as_u64().unwrap();
    assert!(
        limit > 16 && limit <= opened_at_init,
        "{limit}: {opened_at_init} opened at init"
    );

    let refused = api
        .invoke(
            &serde_json::json!({"bucket": "not/a-bucket"}),
            Duration::from_secs(60),
            patience,
        )
        .unwrap();
    assert!(refused.error, "posted to …/error");
    assert!(String::from_utf8_lossy(&refused.body).contains("InvalidBucketName"));

    // The process goes on polling for the next event, as on Lambda.
    api.wait_for_poll(Duration::from_secs(10)).unwrap();
}
