//! A panic in an invocation, forced, under `lambda_runtime`'s loop and the benchmark's Runtime
//! API: it is answered as `InternalError` with its message (`acl_audit_lambda::handler::unpanicked`,
//! which `invoke` wraps every job in), and the same process serves the next event.

use std::time::Duration;

use acl_audit_lambda::handler::unpanicked;
use acl_audit_lambda::{Config, Invocation};
use acl_bench::runtime_api::RuntimeApi;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[test]
fn a_forced_panic_is_an_internal_error_and_the_next_event_is_served() {
    let api = RuntimeApi::start().unwrap();
    for (name, value) in [
        ("AWS_LAMBDA_RUNTIME_API", api.address()),
        ("AWS_LAMBDA_FUNCTION_NAME", "panicking".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
    ] {
        // SAFETY: set before the function's thread starts; no other thread reads the
        // environment meanwhile (this binary holds this one test).
        unsafe { std::env::set_var(name, value) };
    }
    std::thread::spawn(|| {
        let runtime = acl_audit_lambda::runtime().unwrap();
        runtime.block_on(lambda_runtime::run(service_fn(
            |event: LambdaEvent<Value>| async move {
                let config = Config::from_vars(|_| None).unwrap();
                let invocation = unpanicked(&config, async move {
                    if event.payload["panic"] == true {
                        panic!("forced: {}", event.payload["message"]);
                    }
                    Invocation::Failed {
                        bucket: None,
                        error: acl_audit_lambda::RequestError::MissingBucket.into(),
                    }
                })
                .await;
                invocation.into_reply()
            },
        )))
    });
    api.wait_for_poll(Duration::from_secs(30)).unwrap();
    let patience = Duration::from_secs(30);
    let panicked = api
        .invoke(
            &json!({"panic": true, "message": "a bug"}),
            Duration::from_secs(10),
            patience,
        )
        .unwrap();
    let body: Value = serde_json::from_slice(&panicked.body).unwrap();
    assert!(panicked.error);
    assert_eq!(body["errorType"], "InternalError", "{body}");
    assert!(
        body["errorMessage"].as_str().unwrap().contains("forced: \"a bug\""),
        "{body}"
    );
    // The same process answers the next event.
    let next = api.invoke(&json!({}), Duration::from_secs(10), patience).unwrap();
    let body: Value = serde_json::from_slice(&next.body).unwrap();
    assert_eq!(body["errorType"], "MissingBucketName", "{body}");
}
