//! Whatever JSON an invocation carries, resolving it is an answer, never a panic: a job, or
//! an error that says what is wrong.

use acl_audit::model::{InvalidBucketName, check_bucket_name};
use acl_audit_lambda::{Config, Job, RequestError, resolve};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, nested a few levels, with the field names a payload may use mixed in.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let key = prop_oneof![
            Just("bucket".to_owned()),
            Just("prefix".to_owned()),
            Just("max_objects".to_owned()),
            Just("resume".to_owned()),
            Just("keys".to_owned()),
            Just("Items".to_owned()),
            Just("Key".to_owned()),
            Just("BatchInput".to_owned()),
            Just("detail-type".to_owned()),
            Just("detail".to_owned()),
            "[a-z_-]{1,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6).prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// The function's settings with a bucket, so that `{}` is a job.
fn configured() -> Config {
    Config::from_vars(|name| (name == "BUCKET_NAME").then(|| "configured".to_owned())).unwrap()
}

fn an_answer(payload: Value) -> Result<(), TestCaseError> {
    match resolve(payload, &configured()) {
        Ok(_) => Ok(()),
        Err(RequestError::InvalidEvent(message)) => {
            prop_assert!(!message.trim().is_empty());
            Ok(())
        }
        Err(RequestError::InvalidBucketName(err)) => {
            prop_assert!(!err.reason.is_empty());
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!("not an event error: {other:?}"))),
    }
}

proptest! {
    #[test]
    fn any_payload_is_read_or_rejected_with_a_message(payload in any_json()) {
        an_answer(payload)?;
    }

    #[test]
    fn any_detail_of_an_eventbridge_event_is_read_or_rejected(detail in any_json()) {
        an_answer(json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": detail}))?;
    }

    #[test]
    fn well_typed_fields_are_taken_as_given(
        bucket in "[a-z][a-z0-9]{2,62}",
        // At most 1 024 bytes of UTF-8 (S3's longest key): 256 characters of up to 4 bytes.
        prefix in ".{0,256}",
        max_objects in 1usize..=usize::MAX,
    ) {
        let job = resolve(json!({"bucket": bucket, "prefix": prefix, "max_objects": max_objects}), &configured())
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        let Job::Audit(job) = job else { return Err(TestCaseError::fail("not an audit")) };
        prop_assert_eq!(job.target.bucket.as_str(), bucket.as_str());
        prop_assert_eq!(job.target.prefix.as_deref(), Some(prefix.as_str()));
        prop_assert_eq!(job.target.max_objects, Some(max_objects));
    }

    #[test]
    fn a_prefix_over_1024_bytes_is_refused_by_name(prefix in ".{1025,1200}") {
        match resolve(json!({"bucket": "b-1", "prefix": prefix}), &configured()) {
            Err(RequestError::InvalidEvent(message)) => prop_assert!(message.starts_with("prefix is"), "{}", message),
            other => prop_assert!(false, "expected InvalidEvent, got {:?}", other),
        }
    }

    #[test]
    fn an_unknown_field_is_named_in_the_error(name in "[a-z]{1,12}") {
        let fields_of_a_request = ["bucket", "prefix", "max_objects", "resume", "inventory", "plan", "collect"];
        prop_assume!(!fields_of_a_request.contains(&name.as_str()));
        let mut fields = Map::new();
        fields.insert(name.clone(), json!(1));
        match resolve(Value::Object(fields), &configured()) {
            Err(RequestError::InvalidEvent(message)) => prop_assert!(message.contains(&name), "{}", message),
            other => prop_assert!(false, "expected InvalidEvent, got {:?}", other),
        }
    }
}

proptest! {
    #[test]
    fn any_bucket_name_is_taken_or_refused_with_a_reason(bucket in any::<String>()) {
        let config = Config::from_vars(|_| None).map_err(|err| TestCaseError::fail(err.to_string()))?;
        match resolve(json!({"bucket": bucket}), &config) {
            Ok(Job::Audit(job)) => prop_assert_eq!(job.target.bucket, bucket),
            Ok(other) => prop_assert!(false, "not an audit: {:?}", other),
            Err(RequestError::InvalidBucketName(InvalidBucketName { name, reason })) => {
                prop_assert_eq!(name, bucket);
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "not a bucket name error: {:?}", other),
        }
    }

    #[test]
    fn names_by_s3_s_current_rules_are_taken(bucket in "[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]") {
        prop_assert!(check_bucket_name(&bucket).is_ok());
    }
}
