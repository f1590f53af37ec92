//! What to audit: the bucket, prefix and object limit, from the invocation event over the
//! function's environment; and the strategies' parameters, from the environment.

use std::num::NonZeroUsize;

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
/// Set by Lambda: the function's memory size in MB, which fixes its share of a CPU.
pub const LAMBDA_MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";

/// `join-all`'s in-flight cap when `MAX_IN_FLIGHT` is unset, from the function's memory size.
///
/// Each call in flight needs a connection of its own, and a new connection costs a TLS
/// handshake: about 0.6 ms of CPU against 0.15 ms for a request on an open one (`make bench`).
/// At 128 MB (7 % of a core) 100 handshakes take most of a second, so a run that finds its
/// connections closed, as a schedule an hour apart does, is fastest with few of them; with more
/// CPU, more calls in flight pay off. The sweep with an empty pool put the best cap at 16 for
/// 128 and 256 MB, 32 at 512 MB and 64-128 from 1 024 MB up: one call per 16 MB, at least 16,
/// at most 128 (far below Lambda's 1 024 file descriptors) follows it within 8 %. A container
/// invoked again within seconds, its connections still open, would do better with more: set
/// `MAX_IN_FLIGHT` then. The README's benchmark section has the figures.
pub fn default_max_in_flight(memory_mb: Option<usize>) -> NonZeroUsize {
    const MB_PER_CALL: usize = 16;
    const FEWEST: usize = 16;
    const MOST: usize = 128;
    /// Outside Lambda (no memory size): a middle value.
    const UNKNOWN_MEMORY: usize = 64;
    let cap = memory_mb.map_or(UNKNOWN_MEMORY, |mb| (mb / MB_PER_CALL).clamp(FEWEST, MOST));
    NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN)
}

/// A bucket to audit, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    pub prefix: Option<String>,
    /// Stop listing after this many keys.
    pub max_objects: Option<usize>,
}

impl Target {
    pub fn bucket(bucket: impl Into<String>) -> Self {
        Target {
            bucket: bucket.into(),
            prefix: None,
            max_objects: None,
        }
    }
}

/// The overrides an invocation may carry: the whole payload of a console or Scheduler
/// invocation, or the `detail` of an EventBridge event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub max_objects: Option<NonZeroUsize>,
}

/// Reads an invocation payload: an EventBridge event (recognised by its `detail-type`),
/// whose `detail` may hold a [`Request`], or a [`Request`] itself (`{}` included).
pub fn parse_event(payload: Value) -> Result<Request, RequestError> {
    match payload {
        Value::Null => Ok(Request::default()),
        Value::Object(fields) if fields.contains_key("detail-type") => {
            let event: EventBridgeEvent<Request> = from_value(Value::Object(fields))?;
            Ok(event.detail)
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

    /// The event's values win over the environment's.
    pub fn target(&self, request: Request) -> Result<Target, RequestError> {
        let bucket = request
            .bucket
            .or_else(|| self.bucket.clone())
            .ok_or(RequestError::MissingBucket)?;
        Ok(Target {
            bucket,
            prefix: request.prefix.or_else(|| self.prefix.clone()),
            max_objects: request.max_objects.map(NonZeroUsize::get).or(self.max_objects),
        })
    }
}

/// Python's default executor size, `min(32, os.cpu_count() + 4)`: what `run_in_executor(None, …)`
/// gives the seed's threaded function.
pub fn default_blocking_pool_size() -> NonZeroUsize {
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new((cpus + 4).min(32)).unwrap_or(NonZeroUsize::MIN)
}
