//! What to audit: the bucket, prefix and object limit, from the invocation event over the
//! function's environment; and the strategies' parameters, from the environment.

use std::num::NonZeroUsize;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::RequestError;
use crate::strategy::{Strategy, StrategyKind};

pub const BUCKET_NAME: &str = "BUCKET_NAME";
pub const OBJECT_PREFIX: &str = "OBJECT_PREFIX";
pub const MAX_OBJECTS: &str = "MAX_OBJECTS";
pub const BLOCKING_POOL_SIZE: &str = "BLOCKING_POOL_SIZE";
pub const MAX_IN_FLIGHT: &str = "MAX_IN_FLIGHT";
pub const DEADLINE_MARGIN_MS: &str = "DEADLINE_MARGIN_MS";
/// Set by Lambda: the function's memory size in MB, which fixes its share of a CPU.
pub const LAMBDA_MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";

/// `join-all`'s in-flight cap when `MAX_IN_FLIGHT` is unset, from the function's memory size.
///
/// Each call in flight needs a connection of its own, and a new connection costs a TLS
/// handshake: about 0.3 ms of CPU against 0.08 ms for a request on an open one (`make bench`).
/// At 128 MB (7 % of a core) 100 handshakes take a third of a second, so a run that finds its
/// connections closed, as a schedule an hour apart does, is fastest with few of them; with more
/// CPU, more calls in flight pay off, and with the pool still open more are never slower. The
/// sweep with an empty pool put the best cap at 16 for 128 MB, 32 at 256 MB, 64 at 512 MB and
/// 100-128 from 1 024 MB up: one call per 8 MB, at least 16, at most 128 (far below Lambda's
/// 1 024 file descriptors) follows it. The README's benchmark section has the figures.
pub fn default_max_in_flight(memory_mb: Option<usize>) -> NonZeroUsize {
    const MB_PER_CALL: usize = 8;
    const FEWEST: usize = 16;
    const MOST: usize = 128;
    /// Outside Lambda (no memory size): a middle value.
    const UNKNOWN_MEMORY: usize = 64;
    let cap = memory_mb.map_or(UNKNOWN_MEMORY, |mb| (mb / MB_PER_CALL).clamp(FEWEST, MOST));
    NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN)
}

/// How long before the invocation's deadline a run stops starting calls, abandons those
/// under way and returns its partial report: time to build, log and send the report, with
/// room to spare at 128 MB's 7 % of a core.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// A bucket to audit, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    pub prefix: Option<String>,
    /// Stop listing after this many keys.
    pub max_objects: Option<usize>,
    /// Where an earlier, truncated run stopped, or the keys a Distributed Map batch names.
    pub resume: Option<Resume>,
}

impl Target {
    pub fn bucket(bucket: impl Into<String>) -> Self {
        Target {
            bucket: bucket.into(),
            prefix: None,
            max_objects: None,
            resume: None,
        }
    }
}

/// Where a truncated run stopped, as its report gives it and the next run's event takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    pub bucket: String,
    pub prefix: Option<String>,
    /// The listing goes on after this key; `null` with `listing_complete` false: from the start.
    pub start_after: Option<String>,
    /// The listing had reached the end: only `keys` are left.
    pub listing_complete: bool,
    /// Keys listed whose ACL was not fetched; fetched first by the next run.
    pub keys: Vec<String>,
}

impl Resume {
    /// Keys handed over with nothing to list: a Distributed Map batch's, or those of batches
    /// that never ran.
    pub fn keys_only(bucket: String, keys: Vec<String>) -> Self {
        Resume {
            bucket,
            prefix: None,
            start_after: None,
            listing_complete: true,
            keys,
        }
    }
}

/// S3's naming rules, loosely: what no bucket can be called. Names from before 2018 may hold
/// capitals and underscores and run to 255 characters, so those pass; S3 has the last word.
pub fn check_bucket_name(name: &str) -> Result<(), RequestError> {
    let invalid = |reason: &str| {
        Err(RequestError::InvalidBucketName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if let Some(rest) = name.strip_prefix("s3://") {
        return invalid(&format!(
            "give the bucket's name without \"s3://\": {:?}",
            rest.split('/').next().unwrap_or_default()
        ));
    }
    if name.starts_with("arn:") {
        return invalid("give the bucket's name, not its ARN");
    }
    if let Some((bucket, prefix)) = name.split_once('/') {
        return invalid(&format!(
            "a bucket name has no '/': for bucket {bucket:?} and prefix {prefix:?} pass {{\"bucket\": {bucket:?}, \"prefix\": {prefix:?}}}"
        ));
    }
    if !(3..=255).contains(&name.len()) {
        return invalid("a bucket name is 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return invalid("a bucket name holds only lowercase letters, digits, '.' and '-'");
    }
    Ok(())
}

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapBatch {
    #[serde(rename = "Items")]
    items: Vec<MapItem>,
    #[serde(rename = "BatchInput", default)]
    batch_input: BatchInput,
}

/// One listed object; its `Etag`, `LastModified`, `Size` and `StorageClass` are not needed.
#[derive(Debug, Deserialize)]
struct MapItem {
    #[serde(rename = "Key")]
    key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchInput {
    bucket: Option<String>,
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

/// The function's settings, from its environment variables. Empty means unset, as SAM
/// passes an empty string for an optional parameter left blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub max_objects: Option<usize>,
    pub blocking_pool_size: NonZeroUsize,
    /// `join-all`'s cap: `MAX_IN_FLIGHT` (0 lifts it), else [`default_max_in_flight`].
    pub max_in_flight: Option<NonZeroUsize>,
    /// The function's memory size, MB, when Lambda says it.
    pub memory_mb: Option<usize>,
    /// How long before the invocation's deadline to stop: `DEADLINE_MARGIN_MS`.
    pub deadline_margin: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, RequestError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, RequestError> {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let number = |name: &'static str| -> Result<Option<usize>, RequestError> {
            var(name)
                .map(|value| {
                    value
                        .trim()
                        .parse::<usize>()
                        .map_err(|err| RequestError::InvalidConfig {
                            name,
                            value: value.clone(),
                            reason: format!("expected a whole number ({err})"),
                        })
                })
                .transpose()
        };
        let positive = |name: &'static str| -> Result<Option<NonZeroUsize>, RequestError> {
            number(name)?
                .map(|n| {
                    NonZeroUsize::new(n).ok_or_else(|| RequestError::InvalidConfig {
                        name,
                        value: n.to_string(),
                        reason: "must be at least 1".to_owned(),
                    })
                })
                .transpose()
        };
        let memory_mb = positive(LAMBDA_MEMORY_SIZE)?.map(NonZeroUsize::get);
        Ok(Config {
            bucket: var(BUCKET_NAME),
            prefix: var(OBJECT_PREFIX),
            max_objects: positive(MAX_OBJECTS)?.map(NonZeroUsize::get),
            blocking_pool_size: positive(BLOCKING_POOL_SIZE)?.unwrap_or_else(default_blocking_pool_size),
            max_in_flight: match number(MAX_IN_FLIGHT)? {
                Some(n) => NonZeroUsize::new(n),
                None => Some(default_max_in_flight(memory_mb)),
            },
            memory_mb,
            deadline_margin: number(DEADLINE_MARGIN_MS)?
                .map_or(DEFAULT_DEADLINE_MARGIN, |ms| Duration::from_millis(ms as u64)),
        })
    }

    pub fn strategy(&self, kind: StrategyKind) -> Strategy {
        match kind {
            StrategyKind::Sequential => Strategy::Sequential,
            StrategyKind::SpawnBlocking => Strategy::SpawnBlocking {
                pool_size: self.blocking_pool_size,
            },
            StrategyKind::JoinAll => Strategy::JoinAll {
                max_in_flight: self.max_in_flight,
            },
        }
    }

    /// The event's values win over the environment's, and a resume token's bucket and prefix
    /// over both; an event naming others than its token is refused, not guessed at.
    pub fn target(&self, request: Request) -> Result<Target, RequestError> {
        let (bucket, prefix) = match &request.resume {
            Some(resume) => {
                let conflict = |field: &str, event: &dyn std::fmt::Debug, token: &dyn std::fmt::Debug| {
                    RequestError::InvalidEvent(format!(
                        "the event's {field} {event:?} is not the resume token's {token:?}: drop one of them"
                    ))
                };
                if let Some(bucket) = request.bucket.as_ref().filter(|b| **b != resume.bucket) {
                    return Err(conflict("bucket", bucket, &resume.bucket));
                }
                if request.prefix.is_some() && request.prefix != resume.prefix {
                    return Err(conflict("prefix", &request.prefix, &resume.prefix));
                }
                (resume.bucket.clone(), resume.prefix.clone())
            }
            None => (
                request
                    .bucket
                    .or_else(|| self.bucket.clone())
                    .ok_or(RequestError::MissingBucket)?,
                request.prefix.or_else(|| self.prefix.clone()),
            ),
        };
        check_bucket_name(&bucket)?;
        if let Some(keys) = request.keys {
            return Ok(Target {
                resume: Some(Resume::keys_only(bucket.clone(), keys)),
                bucket,
                prefix: None,
                max_objects: None,
            });
        }
        Ok(Target {
            bucket,
            prefix,
            max_objects: request.max_objects.map(NonZeroUsize::get).or(self.max_objects),
            resume: request.resume,
        })
    }
}

/// Python's default executor size, `min(32, os.cpu_count() + 4)`: what `run_in_executor(None, …)`
/// gives the seed's threaded function.
pub fn default_blocking_pool_size() -> NonZeroUsize {
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new((cpus + 4).min(32)).unwrap_or(NonZeroUsize::MIN)
}
