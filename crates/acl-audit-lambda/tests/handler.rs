//! The functions' shared entry point, driven with the payloads kept under `fixtures/`.

use test_support as common;

use std::collections::HashMap;
use std::num::NonZeroUsize;

use acl_audit::StrategyKind;
use acl_audit_lambda::{Clients, Config, RequestError};
use acl_audit_lambda::{ConfigError, HandlerError, block_on_task, runtime};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};

fn config(vars: &[(&str, &str)]) -> Config {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_vars(|name| vars.get(name).cloned()).expect("valid test configuration")
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

#[test]
fn on_the_functions_runtime_the_handler_runs_as_a_task_whose_panics_reach_the_caller() {
    let endpoint_runtime = tokio::runtime::Runtime::new().unwrap();
    let (_s3, client) = endpoint_runtime.block_on(common::seeded("on-a-task", 40));
    let config = config(&[("BUCKET_NAME", "on-a-task")]);
    let runtime = runtime().unwrap();
    let invocation = async move {
        let payload = common::fixture("eventbridge-scheduled.json");
        acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(&client), &config, event(payload))
            .await
            .into_result()
    };
    let report = block_on_task(&runtime, invocation).unwrap();
    assert_eq!((report.objects_listed, report.acls_fetched), (40, 40));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        block_on_task(&runtime, async { panic!("in the handler") })
    }));
    assert_eq!(panicked.unwrap_err().downcast_ref::<&str>(), Some(&"in the handler"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_event_audits_the_configured_bucket() {
    let (_s3, client) = common::seeded("scheduled", 100).await;
    let config = config(&[("BUCKET_NAME", "scheduled")]);
    for kind in StrategyKind::ALL {
        let report = acl_audit_lambda::invoke(
            kind,
            &Clients::new(&client),
            &config,
            event(common::fixture("eventbridge-scheduled.json")),
        )
        .await
        .into_result()
        .unwrap();
        assert_eq!(report.strategy, kind);
        assert_eq!(report.bucket, "scheduled");
        assert_eq!((report.objects_listed, report.acls_fetched), (100, 100));
        assert_eq!(report.audit.readable_by_all_users.count, 10);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_console_payload_overrides_the_configured_bucket() {
    let (_s3, client) = common::seeded("acl-audit-demo", 30).await;
    let config = config(&[("BUCKET_NAME", "some-other-bucket")]);
    for kind in StrategyKind::ALL {
        let report = acl_audit_lambda::invoke(
            kind,
            &Clients::new(&client),
            &config,
            event(common::fixture("console.json")),
        )
        .await
        .into_result()
        .unwrap();
        assert_eq!(report.bucket, "acl-audit-demo");
        assert_eq!(report.max_objects, Some(1000));
        assert_eq!(report.acls_fetched, 30);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_eventbridge_detail_overrides_bucket_and_prefix() {
    let (s3, client) = common::seeded("acl-audit-demo", 5).await;
    let object = || local_s3::store::StoredObject::new("r".into(), local_s3::acl::Acl::private());
    s3.store()
        .put_object("acl-audit-demo", "reports/q1.csv", object())
        .unwrap();
    s3.store()
        .put_object("acl-audit-demo", "reports/q2.csv", object())
        .unwrap();
    let report = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[]),
        event(common::fixture("eventbridge-custom.json")),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(report.prefix.as_deref(), Some("reports/"));
    assert_eq!(report.objects_listed, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_serializes_with_its_documented_field_names() {
    let (_s3, client) = common::seeded("schema", 10).await;
    let report = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[]),
        event(json!({"bucket": "schema"})),
    )
    .await
    .into_run_report()
    .unwrap();
    let json = serde_json::to_value(&report).unwrap();
    let mut fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "acls_fetched",
            "acls_from_inventory",
            "audit",
            "bucket",
            "bucket_settings",
            "concurrency_limit",
            "delete_markers",
            "failures",
            "findings",
            "in_flight",
            "include_versions",
            "max_objects",
            "objects_listed",
            "objects_not_fetched",
            "objects_with_acls_disabled",
            "prefix",
            "resume",
            "resumed_from",
            "retries",
            "strategy",
            "timings_ms",
            "truncated"
        ]
    );
    assert_eq!(json["strategy"], "join-all");
    assert_eq!(json["concurrency_limit"], 64);
    assert_eq!(json["audit"]["readable_by_all_users"]["count"], 1);
    assert_eq!(json["findings"], Value::Null, "no FINDINGS_URI, no file");
    assert_eq!(json["audit"]["findings"]["by_kind"]["public_read"], 1);
    assert_eq!(json["audit"]["findings"]["by_kind"]["public_write_acp"], 0);
}

async fn handler_error(payload: Value, vars: &[(&str, &str)]) -> (HandlerError, Diagnostic) {
    let (_s3, client) = common::endpoint().await;
    let err = acl_audit_lambda::invoke(
        StrategyKind::Sequential,
        &Clients::new(&client),
        &config(vars),
        event(payload),
    )
    .await
    .into_result()
    .unwrap_err();
    let diagnostic = Diagnostic::from(err.clone());
    (err, diagnostic)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_bucket_anywhere_names_bucket_name() {
    let (err, diagnostic) = handler_error(common::fixture("console-empty.json"), &[]).await;
    assert_eq!(err, HandlerError::Request(RequestError::MissingBucket));
    assert_eq!(diagnostic.error_type, "MissingBucketName");
    assert!(
        diagnostic.error_message.contains("BUCKET_NAME"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_name_no_bucket_can_have_is_refused_with_what_to_send_instead() {
    for (bucket, advice) in [
        ("s3://audit-me/reports", "without \"s3://\": \"audit-me\""),
        (
            "audit-me/reports/",
            "pass {\"bucket\": \"audit-me\", \"prefix\": \"reports/\"}",
        ),
        ("arn:aws:s3:::audit-me", "not its ARN"),
        ("my bucket", "only lowercase letters"),
        ("ab", "3 to 63 characters"),
    ] {
        let (_, diagnostic) = handler_error(json!({ "bucket": bucket }), &[]).await;
        assert_eq!(diagnostic.error_type, "InvalidBucketName", "{bucket}");
        assert!(
            diagnostic.error_message.contains(advice),
            "{bucket}: {}",
            diagnostic.error_message
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_that_does_not_exist_is_reported_as_no_such_bucket() {
    let (_, diagnostic) = handler_error(json!({"bucket": "not-there"}), &[]).await;
    assert_eq!(diagnostic.error_type, "NoSuchBucket");
    assert!(
        diagnostic.error_message.contains("\"not-there\" does not exist"),
        "{}",
        diagnostic.error_message
    );
    // The function's owner is told which setting names the bucket.
    assert!(
        diagnostic.error_message.contains("BUCKET_NAME"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_listing_is_reported_as_access_denied() {
    let (s3, client) = common::seeded("locked", 1).await;
    s3.store().set_listing_denied("locked", true).unwrap();
    let err = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[("BUCKET_NAME", "locked")]),
        event(json!({})),
    )
    .await
    .into_result()
    .unwrap_err();
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "AccessDenied");
    assert!(
        diagnostic.error_message.contains("s3:ListBucket"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_field_is_rejected_by_name() {
    let (_, diagnostic) = handler_error(json!({"buckt": "typo"}), &[]).await;
    assert_eq!(diagnostic.error_type, "InvalidEvent");
    assert!(
        diagnostic.error_message.contains("unknown field `buckt`"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_type_is_rejected_with_the_field_path() {
    let (_, diagnostic) = handler_error(json!({"bucket": "b", "max_objects": "ten"}), &[]).await;
    assert_eq!(diagnostic.error_type, "InvalidEvent");
    assert!(
        diagnostic
            .error_message
            .contains("max_objects: invalid type: string \"ten\""),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_eventbridge_detail_is_rejected_with_the_field_path() {
    let mut payload = common::fixture("eventbridge-scheduled.json");
    payload["detail"] = json!({"prefix": 7});
    let (_, diagnostic) = handler_error(payload, &[("BUCKET_NAME", "b")]).await;
    assert_eq!(diagnostic.error_type, "InvalidEvent");
    assert!(
        diagnostic
            .error_message
            .contains("detail.prefix: invalid type: integer `7`"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payload_that_is_not_an_object_is_rejected() {
    let (_, diagnostic) = handler_error(json!("my-bucket"), &[]).await;
    assert_eq!(diagnostic.error_type, "InvalidEvent");
    assert!(
        diagnostic.error_message.contains("got a string"),
        "{}",
        diagnostic.error_message
    );
}

#[test]
fn a_malformed_setting_names_the_variable() {
    let err = Config::from_vars(|name| (name == "MAX_IN_FLIGHT").then(|| "lots".to_owned())).unwrap_err();
    assert!(matches!(
        err,
        ConfigError {
            name: "MAX_IN_FLIGHT",
            ..
        }
    ));
    assert!(err.to_string().contains("MAX_IN_FLIGHT=\"lots\""), "{err}");
}

/// Counts that size threads, permits or connections are bounded: a semaphore past its most
/// permits panics, and a billion warm connections would exhaust the process.
#[test]
fn a_setting_past_its_bound_names_the_variable_and_the_bound() {
    for (name, value, most) in [
        ("BLOCKING_POOL_SIZE", "600", "512"),
        ("MAX_IN_FLIGHT", "1000000000000", "100000"),
        ("WARM_CONNECTIONS", "5000", "1024"),
    ] {
        let err = Config::from_vars(|var| (var == name).then(|| value.to_owned())).unwrap_err();
        assert_eq!(err.name, name);
        assert!(err.to_string().contains(&format!("at most {most}")), "{err}");
    }
    assert_eq!(config(&[("BLOCKING_POOL_SIZE", "512")]).blocking_pool_size.get(), 512);
    assert!(Config::from_vars(|var| (var == "BLOCKING_POOL_SIZE").then(|| "0".to_owned())).is_err());
}

fn max_in_flight(vars: &[(&str, &str)]) -> Option<usize> {
    config(vars).max_in_flight.map(NonZeroUsize::get)
}

#[test]
fn max_in_flight_zero_lifts_the_cap_and_blank_keeps_the_default() {
    assert_eq!(max_in_flight(&[("MAX_IN_FLIGHT", "0")]), None);
    assert_eq!(max_in_flight(&[("MAX_IN_FLIGHT", " ")]), max_in_flight(&[]));
}

#[test]
fn the_default_cap_follows_the_function_s_memory_size() {
    let at = |mb: &str| max_in_flight(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", mb)]);
    assert_eq!(at("128"), Some(16));
    assert_eq!(at("256"), Some(32));
    assert_eq!(at("512"), Some(64));
    assert_eq!(at("1024"), Some(128));
    assert_eq!(at("1769"), Some(128));
    assert_eq!(at("10240"), Some(128));
    // Outside Lambda the memory size is unknown.
    assert_eq!(max_in_flight(&[]), Some(64));
}

#[test]
fn the_default_cap_grows_to_the_open_connections_and_a_set_one_stays() {
    let at_128 = config(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")]);
    let cap = |config: &Config, open| {
        config
            .clone()
            .with_open_connections(open)
            .max_in_flight
            .map(NonZeroUsize::get)
    };
    assert_eq!(
        cap(&at_128, 0),
        Some(16),
        "an empty pool: the handshakes 128 MB affords"
    );
    assert_eq!(cap(&at_128, 10), Some(16));
    assert_eq!(cap(&at_128, 64), Some(64), "every open connection, no new one");
    assert_eq!(cap(&at_128, 500), Some(128), "never past MOST_IN_FLIGHT");
    let set = config(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"), ("MAX_IN_FLIGHT", "10")]);
    assert_eq!(cap(&set, 100), Some(10));
    let unbounded = config(&[("MAX_IN_FLIGHT", "0")]);
    assert_eq!(cap(&unbounded, 100), None);
}

#[test]
fn max_in_flight_overrides_the_memory_derived_cap() {
    let vars = [("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"), ("MAX_IN_FLIGHT", "100")];
    assert_eq!(max_in_flight(&vars), Some(100));
}

#[test]
fn a_malformed_memory_size_names_the_variable() {
    let err =
        Config::from_vars(|name| (name == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE").then(|| "big".to_owned())).unwrap_err();
    assert!(
        err.to_string().contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=\"big\""),
        "{err}"
    );
}
