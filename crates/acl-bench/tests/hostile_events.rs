//! Hostile and careless events through a function's real entry (`acl_audit_lambda::run` under the
//! benchmark's Runtime API) against local-s3: each is answered with its own errorType, never a
//! panic, quotes at most a few hundred bytes of what it was sent, and the process then audits a
//! valid event whole.

use std::time::Duration;

use acl_audit::StrategyKind;
use acl_bench::runtime_api::RuntimeApi;
use local_s3::LocalS3;
use serde_json::json;

#[test]
fn each_hostile_event_gets_its_error_type_and_the_next_event_is_served() {
    let server = tokio::runtime::Runtime::new().unwrap();
    let s3 = server.block_on(LocalS3::start()).unwrap();
    local_s3::seed_bucket(s3.store(), "served", 20).unwrap();
    let api = RuntimeApi::start().unwrap();
    let mut env = api.function_env("sequential", 128, &s3);
    env.push(("WARM_CONNECTIONS", "0".to_owned()));
    for (name, value) in env {
        // SAFETY: set before the function's thread starts; no other thread reads the
        // environment meanwhile (this binary holds this one test).
        unsafe { std::env::set_var(name, value) };
    }
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(|| acl_audit_lambda::run(StrategyKind::Sequential))
        .unwrap();
    api.wait_for_poll(Duration::from_secs(30))
        .expect("the init ends with a poll");

    let long = "k".repeat(70_000);
    let huge_name = "b".repeat(6 << 20);
    let token = |field: &str, value: &str| {
        let mut token = json!({"bucket": "served", "prefix": null, "start_after": null,
            "listing_complete": false, "keys": []});
        match field {
            "keys" => token["keys"] = json!([value]),
            field => token[field] = json!(value),
        }
        json!({ "resume": token })
    };
    let s3_event = json!({
        "version": "0", "id": "1", "detail-type": "Object ACL Updated", "source": "aws.s3",
        "account": "123456789012", "time": "2026-12-06T00:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {"version": "0", "bucket": {"name": "served"},
        "object": {"key": long, "etag": "x"}, "request-id": "r", "requester": "123456789012"}
    });
    let cases = [
        (json!({"bucket": "served", "prefix": long}), "InvalidEvent", "prefix"),
        (token("start_after", &long), "InvalidEvent", "resume.start_after"),
        (token("keys", &long), "InvalidEvent", "resume.keys[0]"),
        (token("prefix", &long), "InvalidEvent", "prefix is 70000 bytes"),
        (s3_event, "InvalidEvent", "resume.keys[0]"),
        (json!({"bucket": huge_name}), "InvalidBucketName", "bytes"),
        (json!({"bucket": {"nested": huge_name}}), "InvalidEvent", "bucket"),
        (json!("just a string"), "InvalidEvent", "a string"),
    ];
    let patience = Duration::from_secs(30);
    for (event, error_type, named) in cases {
        let outcome = api.invoke(&event, Duration::from_secs(60), patience).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&outcome.body).unwrap();
        assert!(outcome.error, "{body}");
        assert_eq!(body["errorType"], error_type, "{body}");
        let message = body["errorMessage"].as_str().unwrap();
        assert!(message.contains(named), "{message}");
        assert!(message.len() < 1024, "the message quotes {} bytes", message.len());
        api.wait_for_poll(Duration::from_secs(10)).unwrap();
    }

    let served = api
        .invoke(&json!({"bucket": "served"}), Duration::from_secs(60), patience)
        .unwrap();
    assert!(!served.error, "{}", String::from_utf8_lossy(&served.body));
    let report: serde_json::Value = serde_json::from_slice(&served.body).unwrap();
    assert_eq!(report["acls_fetched"], 20);
}
