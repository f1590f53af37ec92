//! The invocation payloads a function accepts: a console or Scheduler payload (a [`Request`]),
//! an EventBridge event whose `detail` is one, and a Step Functions Distributed Map batch
//! ([`MapBatch`]). Each wire format is defined here once, for the handler and every tool
//! that writes or reads it.

use std::num::NonZeroUsize;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use acl_audit::Resume;

use crate::error::RequestError;

/// The overrides an invocation may carry: the whole payload of a console or Scheduler
/// invocation, or the `detail` of an EventBridge event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub max_objects: Option<NonZeroUsize>,
    /// A truncated run's `resume`, to carry on where it stopped.
    pub resume: Option<Resume>,
    /// Exactly these keys, without listing: a Distributed Map batch's items.
    #[serde(skip)]
    pub keys: Option<Vec<String>>,
}

/// What a Step Functions Distributed Map sends each child when an `ItemReader` lists the
/// bucket (ListObjectsV2) and an `ItemBatcher` groups the objects: the batch's objects, and
/// the `BatchInput` the state machine adds (`statemachine/audit-bucket.asl.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapBatch {
    #[serde(rename = "Items")]
    pub items: Vec<MapItem>,
    #[serde(rename = "BatchInput", default)]
    pub batch_input: BatchInput,
}

/// One listed object. ListObjectsV2's other fields (`Etag`, `LastModified`, `Size`,
/// `StorageClass`) are not needed and are ignored when present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapItem {
    #[serde(rename = "Key")]
    pub key: String,
}

/// What the state machine adds to every batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    pub bucket: Option<String>,
}

impl MapBatch {
    /// A batch of `keys` in `bucket`, as the state machine's ItemBatcher builds it.
    pub fn of_keys(bucket: Option<String>, keys: impl IntoIterator<Item = String>) -> Self {
        MapBatch {
            items: keys.into_iter().map(|key| MapItem { key }).collect(),
            batch_input: BatchInput { bucket },
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|item| item.key.as_str())
    }
}

/// Reads an invocation payload: an EventBridge event (recognised by its `detail-type`),
/// whose `detail` may hold a [`Request`]; a Distributed Map batch (recognised by its
/// `Items`); or a [`Request`] itself (`{}` included).
pub fn parse_event(payload: Value) -> Result<Request, RequestError> {
    match payload {
        Value::Null => Ok(Request::default()),
        Value::Object(fields) if fields.contains_key("detail-type") => {
            let event: EventBridgeEvent<Request> = from_value(Value::Object(fields))?;
            Ok(event.detail)
        }
        Value::Object(fields) if fields.contains_key("Items") => {
            let batch: MapBatch = from_value(Value::Object(fields))?;
            Ok(Request {
                bucket: batch.batch_input.bucket,
                keys: Some(batch.items.into_iter().map(|item| item.key).collect()),
                ..Request::default()
            })
        }
        Value::Object(fields) => from_value(Value::Object(fields)),
        other => Err(RequestError::InvalidEvent(format!(
            "expected a JSON object such as {{\"bucket\": \"my-bucket\"}} or an EventBridge event, got {}",
            json_kind(&other)
        ))),
    }
}

fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, RequestError> {
    // The path names the offending field: `detail.max_objects: invalid type: string "ten"…`.
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        RequestError::InvalidEvent(if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        })
    })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
