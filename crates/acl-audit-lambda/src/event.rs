//! The invocation payloads a function accepts: a console or Scheduler payload (a [`Request`]),
//! an EventBridge event whose `detail` is one, the state machine's steps ([`StepRequest`]: plan
//! and collect) and parts (a [`Request`] with a token and `map_part`), a batch of keys from a
//! Distributed Map over ListObjectsV2 ([`MapBatch`]), and a Distributed Map's own output once
//! every child is done ([`MapRunOutput`], to add them up). Each wire format is defined here once, for the handler and every tool
//! that writes or reads it.

use std::num::NonZeroUsize;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use acl_audit::Resume;
use acl_audit::model::ObjectRef;

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
    /// Audit every ACL even when the bucket's ACLs are disabled (`BucketOwnerEnforced`), where
    /// each would be the owner's full control; overrides `AUDIT_WHEN_ACLS_DISABLED`.
    #[serde(default)]
    pub audit_when_acls_disabled: Option<bool>,
    /// List every version and audit each one's ACL; overrides `INCLUDE_VERSIONS`.
    #[serde(default)]
    pub include_versions: Option<bool>,
    /// An S3 Inventory report's `manifest.json` (`s3://…/manifest.json`) whose
    /// `ObjectAccessControlList` field is read instead of calling GetObjectAcl per object; or
    /// an inventory configuration's folder (`s3://…/<source bucket>/<configuration id>/`),
    /// whose newest complete report is read.
    #[serde(default)]
    pub inventory: Option<String>,
    /// Exactly these keys (or versions), without listing: a Distributed Map batch's items, or
    /// the object of an S3 event.
    #[serde(skip)]
    pub keys: Option<Vec<ObjectRef>>,
    /// The keys are one batch of a Distributed Map run, whose last step reports the run.
    #[serde(skip)]
    pub map_batch: bool,
    /// The token is one part of a state machine run (`crate::parts`), whose last step
    /// reports the run: this invocation's metrics count per strategy only, and it stores no
    /// token of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub map_part: bool,
    /// This run is the `n`th link of a chained continuation (`CHAIN_CONTINUATION`): the
    /// function invoked itself with this request when the run before stopped at its deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chained: Option<usize>,
}

/// What a Distributed Map state with a `ResultWriter` outputs (Step Functions' "ResultWriter"
/// page), which the state machine's last step hands the function to add the run up, with the
/// audited bucket beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct MapRunOutput {
    #[serde(default)]
    pub map_run_arn: Option<String>,
    pub result_writer_details: ResultWriterDetails,
    /// The audited bucket, which names the run's findings folder; the function's `BUCKET_NAME`
    /// when absent.
    #[serde(rename = "bucket", default)]
    pub bucket: Option<String>,
    /// Every pass's map run, in order, when the run took several (a state machine of parts,
    /// `Pass::passes`): all are added up, and the first names the run's folder.
    #[serde(rename = "passes", default, skip_serializing_if = "Vec::is_empty")]
    pub passes: Vec<ResultWriterDetails>,
}

/// Where the ResultWriter put the run's `manifest.json`; also where a pass's parts file is,
/// as the Map's ItemReader takes it (`Bucket`, `Key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ResultWriterDetails {
    pub bucket: String,
    pub key: String,
}

impl MapRunOutput {
    /// Recognises the Map's output by its `ResultWriterDetails`; `None` for any other payload.
    pub fn parse(payload: &Value) -> Option<Result<Self, RequestError>> {
        payload.get("ResultWriterDetails").map(|_| from_value(payload.clone()))
    }

    /// The map run's id: the folder its ResultWriter wrote into (`<prefix>/<id>/manifest.json`);
    /// the first pass's, for a run of several.
    pub fn run_id(&self) -> &str {
        let key = &self.passes.first().unwrap_or(&self.result_writer_details).key;
        let folder = key.rsplit_once('/').map_or("", |(folder, _)| folder);
        folder
            .rsplit('/')
            .next()
            .filter(|id| !id.is_empty())
            .unwrap_or("map-run")
    }
}

/// The state machine's first step (`{"plan": …}`): cut the bucket, or the S3 Inventory report
/// named, into parts for the Map's workers, and write them as the first pass's parts file in
/// `folder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// The function's `BUCKET_NAME` when absent or blank.
    #[serde(default)]
    pub bucket: Option<String>,
    /// The function's `OBJECT_PREFIX` when absent; blank for the whole bucket.
    #[serde(default)]
    pub prefix: Option<String>,
    /// An inventory report's manifest, or its configuration's folder (the newest report);
    /// blank or absent to list the bucket.
    #[serde(default)]
    pub inventory: Option<String>,
    /// Overrides `INCLUDE_VERSIONS` (versions are listed as one part, in passes).
    #[serde(default)]
    pub include_versions: Option<bool>,
    /// At most this many parts of a listing (an inventory's are its files).
    #[serde(default = "default_parts")]
    pub parts: usize,
    /// `s3://bucket/folder/` for the run's parts files, one per pass.
    pub folder: String,
}

/// Parts a listing is cut into by default: a few per Map worker at the template's default
/// concurrency, so that an uneven cut still keeps them busy.
pub const DEFAULT_PARTS: usize = 64;

fn default_parts() -> usize {
    DEFAULT_PARTS
}

/// Where a run of parts is: the state the state machine carries from step to step
/// (`$.parts`), which the plan step starts and each collect step moves on a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pass {
    pub bucket: String,
    /// `s3://bucket/folder/` of the parts files.
    pub folder: String,
    /// 0 for the plan's parts, then one more per pass that had parts to hand on.
    pub pass: usize,
    /// Parts in this pass's file: 0 when the run is done.
    pub count: usize,
    /// This pass's parts file, a JSON array of the workers' events.
    pub items: ResultWriterDetails,
    /// The map runs of the passes done so far, for the last step to add up.
    #[serde(default)]
    pub passes: Vec<ResultWriterDetails>,
}

/// A collect step (`{"collect": …}`): the pass just run and its Map's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectRequest {
    pub pass: Pass,
    pub map: MapRunOutput,
}

/// One part, as the parts file hands it to a worker: a token and the mark of a part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartEvent {
    pub resume: Resume,
    pub map_part: bool,
}

impl PartEvent {
    pub fn new(resume: Resume) -> Self {
        PartEvent { resume, map_part: true }
    }
}

/// The steps of a state machine run of parts that are not audits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepRequest {
    Plan(PlanRequest),
    Collect(Box<CollectRequest>),
}

impl StepRequest {
    /// Recognises `{"plan": …}` and `{"collect": …}`; `None` for any other payload.
    pub fn parse(payload: &Value) -> Option<Result<Self, RequestError>> {
        let fields = payload.as_object().filter(|fields| fields.len() == 1)?;
        if let Some(plan) = fields.get("plan") {
            return Some(from_value(plan.clone()).map(StepRequest::Plan));
        }
        let collect = fields.get("collect")?;
        Some(from_value(collect.clone()).map(|request| StepRequest::Collect(Box::new(request))))
    }
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
    /// A batch of `keys` in `bucket`, as an ItemBatcher with that `BatchInput` builds it.
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

/// The `detail` of the S3 events a function audits one object for (S3's EventBridge event
/// message structure): the bucket and object; the other fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3ObjectEvent {
    pub bucket: S3EventBucket,
    pub object: S3EventObject,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3EventBucket {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3EventObject {
    /// As the object is named: EventBridge's S3 events do not URL-encode keys.
    pub key: String,
    #[serde(rename = "version-id")]
    pub version_id: Option<String>,
}

/// The `detail-type`s of S3's EventBridge events that change who may read an object.
pub const S3_OBJECT_EVENTS: [&str; 2] = ["Object Created", "Object ACL Updated"];

/// Reads an invocation payload: S3's `Object Created` or `Object ACL Updated` event (one
/// object to audit); another EventBridge event (recognised by its `detail-type`), whose
/// `detail` may hold a [`Request`]; a Distributed Map batch (recognised by its `Items`); or a
/// [`Request`] itself (`{}` included).
pub fn parse_event(payload: Value) -> Result<Request, RequestError> {
    match payload {
        Value::Null => Ok(Request::default()),
        Value::Object(fields)
            if fields.get("source").and_then(Value::as_str) == Some("aws.s3")
                && fields
                    .get("detail-type")
                    .and_then(Value::as_str)
                    .is_some_and(|kind| S3_OBJECT_EVENTS.contains(&kind)) =>
        {
            let event: EventBridgeEvent<S3ObjectEvent> = from_value(Value::Object(fields))?;
            let S3ObjectEvent { bucket, object } = event.detail;
            // The version the event is about: on a versioned bucket a newer one may have been
            // written since, and the ACL that changed is this one's.
            let object = ObjectRef {
                key: object.key,
                version_id: object.version_id,
            };
            Ok(Request {
                bucket: Some(bucket.name),
                keys: Some(vec![object]),
                ..Request::default()
            })
        }
        Value::Object(fields) if fields.get("source").and_then(Value::as_str) == Some("aws.s3") => {
            Err(RequestError::InvalidEvent(format!(
                "S3 event {:?} is not one this function audits: route only {S3_OBJECT_EVENTS:?} to it",
                fields
                    .get("detail-type")
                    .and_then(Value::as_str)
                    .unwrap_or("(no detail-type)")
            )))
        }
        Value::Object(fields) if fields.contains_key("detail-type") => {
            let event: EventBridgeEvent<Request> = from_value(Value::Object(fields))?;
            Ok(event.detail)
        }
        Value::Object(fields) if fields.contains_key("Items") => {
            let batch: MapBatch = from_value(Value::Object(fields))?;
            Ok(Request {
                bucket: batch.batch_input.bucket,
                keys: Some(batch.items.into_iter().map(|item| item.key.into()).collect()),
                map_batch: true,
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
