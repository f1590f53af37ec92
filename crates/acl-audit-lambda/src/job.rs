//! One way in: every payload a function accepts, with the function's settings, resolves into the
//! one [`Job`] its invocation does. Every payload shape, conflict check and fallback to the
//! environment is here, pure (no endpoint, no clock), so that each is tested without one.

use std::num::NonZeroUsize;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::de::DeserializeOwned;
use serde_json::Value;

use acl_audit::model::{Cursor, InvalidBucketName, ObjectRef, S3Location, check_bucket_name, excerpt};
use acl_audit::{Resume, Target};

use crate::config::{BUCKET_NAME, Config};
use crate::event::{
    AddUpRequest, AuditScope, CollectRequest, PartAccount, PlanRequest, Request, S3_OBJECT_EVENTS, S3ObjectEvent,
};

/// What an invocation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Lists the target (or takes the keys it names) and audits each object's ACL.
    Audit(AuditJob),
    /// Audits the ACLs an S3 Inventory report holds.
    Inventory(InventoryJob),
    /// The state machine's first step: cut the target into parts.
    Plan(PlanRequest),
    /// The state machine's step after each pass: hand stopped parts on to the next.
    Collect(Box<CollectRequest>),
    /// The state machine's last step: add every pass's parts up into one report.
    AddUp(Box<AddUpRequest>),
    /// Every bucket of the account: each one's settings, and its objects where ACLs apply.
    Sweep(SweepJob),
}

/// An account's or an organization's sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepJob {
    /// `None`: the function's own account; with a member role, every account of the
    /// organization.
    pub organization: Option<MemberRole>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Crawl buckets whose ACLs are disabled too.
    pub fetch_when_acls_disabled: bool,
}

/// Who drives a run, which decides whether it takes up and stores a token under
/// `FINDINGS_URI`, where its findings and report go, and which metrics count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A whole target with no token of the caller's (a schedule's run): it takes up the stored
    /// token of its target and stores its own when it stops.
    Whole,
    /// A caller's token or an S3 event's object: the caller carries the run on.
    Caller,
    /// One part of a state machine run, whose last step reports the run: its findings and
    /// report go to its own folder, where the collect and last steps read them. A sweep's part
    /// names its bucket's account.
    Part {
        folder: S3Location,
        account: Option<PartAccount>,
        /// How many parts of its bucket may run at once, this one included.
        parts_at_once: NonZeroUsize,
    },
}

impl Origin {
    /// How many runs make their calls to this run's keys at once: a part's parts at once,
    /// else one.
    pub fn runs_sharing_the_keys(&self) -> NonZeroUsize {
        match self {
            Origin::Part { parts_at_once, .. } => *parts_at_once,
            _ => NonZeroUsize::MIN,
        }
    }

    /// Whether the run sends its findings to Security Hub itself: all but a state machine's
    /// part, whose run's last step sends them.
    pub fn sends_its_findings(&self) -> bool {
        !matches!(self, Origin::Part { .. })
    }
}

/// An audit of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditJob {
    pub target: Target,
    /// Fetch ACLs even where the bucket's ACLs are disabled.
    pub fetch_when_acls_disabled: bool,
    pub origin: Origin,
}

/// An audit of an S3 Inventory report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryJob {
    /// The bucket the event or its token names; `None`: the one the report's manifest names
    /// (`sourceBucket`), which must match a named one.
    pub bucket: Option<String>,
    /// A report's `manifest.json`, or an inventory configuration's folder (its newest report).
    pub manifest: S3Location,
    pub resume: Option<Resume>,
    pub origin: Origin,
}

/// Why an invocation cannot start: its event is wrong or names nothing to audit.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error(
        "no bucket to audit: set the {BUCKET_NAME} environment variable or pass {{\"bucket\": \"NAME\"}} in the event"
    )]
    MissingBucket,
    #[error(transparent)]
    InvalidBucketName(#[from] InvalidBucketName),
}

/// The job `payload` asks for, the function's settings filling in what it leaves out:
/// - `{"plan": …}`, `{"collect": …}`, `{"add_up": …}`: the state machine's steps;
/// - S3's `Object Created` / `Object ACL Updated` events: the one object (version) named;
/// - another EventBridge event (`detail-type`): its `detail` as a [`Request`];
/// - a [`Request`] (`{}` and `null` included): with `inventory`, an inventory's audit; else a
///   listing's, of the target the request, its token and the environment name.
pub fn resolve(payload: Value, config: &Config) -> Result<Job, RequestError> {
    let job = resolve_shape(payload, config)?;
    check_lengths(&job)?;
    Ok(job)
}

fn resolve_shape(payload: Value, config: &Config) -> Result<Job, RequestError> {
    let fields = match payload {
        Value::Null => return audit(Request::default(), config),
        Value::Object(fields) => fields,
        other => {
            return Err(RequestError::InvalidEvent(format!(
                "expected a JSON object such as {{\"bucket\": \"my-bucket\"}} or an EventBridge event, got {}",
                json_kind(&other)
            )));
        }
    };
    if fields.len() == 1 {
        if let Some(plan) = fields.get("plan") {
            return from_value(plan.clone()).map(Job::Plan);
        }
        if let Some(collect) = fields.get("collect") {
            return from_value(collect.clone()).map(|request| Job::Collect(Box::new(request)));
        }
        if let Some(add_up) = fields.get("add_up") {
            let request: AddUpRequest = from_value(add_up.clone())?;
            if request.pass.scope == AuditScope::Bucket {
                check_bucket_name(&request.pass.bucket)?;
            }
            return Ok(Job::AddUp(Box::new(request)));
        }
    }
    let source = fields.get("source").and_then(Value::as_str);
    let detail_type = fields.get("detail-type").and_then(Value::as_str);
    match (source, detail_type) {
        (Some("aws.s3"), Some(kind)) if S3_OBJECT_EVENTS.contains(&kind) => {
            let event: EventBridgeEvent<S3ObjectEvent> = from_value(Value::Object(fields))?;
            let S3ObjectEvent { bucket, object } = event.detail;
            check_bucket_name(&bucket.name)?;
            // The version the event is about: on a versioned bucket a newer one may have been
            // written since, and the ACL that changed is this one's.
            let object = ObjectRef {
                key: object.key,
                version_id: object.version_id,
            };
            Ok(Job::Audit(AuditJob {
                target: Target {
                    resume: Some(Resume::keys_only(bucket.name.clone(), vec![object])),
                    bucket: bucket.name,
                    prefix: None,
                    max_objects: None,
                    include_versions: false,
                },
                fetch_when_acls_disabled: config.audit_when_acls_disabled,
                origin: Origin::Caller,
            }))
        }
        (Some("aws.s3"), kind) => Err(RequestError::InvalidEvent(format!(
            "S3 event {:?} is not one this function audits: route only {S3_OBJECT_EVENTS:?} to it",
            excerpt(kind.unwrap_or("(no detail-type)"))
        ))),
        (_, Some(_)) => {
            let event: EventBridgeEvent<Request> = from_value(Value::Object(fields))?;
            audit(event.detail, config)
        }
        (_, None) => audit(from_value(Value::Object(fields))?, config),
    }
}

/// A request's audit: of an inventory report when it or its token names one, else of a listing;
/// or the account's sweep, when the request or `AUDIT_SCOPE` asks for one.
fn audit(mut request: Request, config: &Config) -> Result<Job, RequestError> {
    // A request naming what to audit is a bucket's run whatever AUDIT_SCOPE says, so that a
    // schedule's `{"bucket": …}` keeps its meaning.
    let names_a_bucket = request.bucket.is_some() || request.resume.is_some() || request.inventory.is_some();
    let scope = match request.scope {
        Some(scope) => scope,
        None if names_a_bucket => AuditScope::Bucket,
        None => config.scope,
    };
    if scope != AuditScope::Bucket {
        return sweep(scope, request, config);
    }
    if request.include.is_some() || request.exclude.is_some() || request.role_name.is_some() {
        return Err(RequestError::InvalidEvent(
            "include, exclude and role_name are a sweep's: add \"scope\": \"account\" or \"organization\"".to_owned(),
        ));
    }
    if request.account.is_some() && !request.map_part {
        return Err(RequestError::InvalidEvent(
            "account is a sweep's part's: it needs \"map_part\": true".to_owned(),
        ));
    }
    if request.parts_at_once.is_some() && !request.map_part {
        return Err(RequestError::InvalidEvent(
            "parts_at_once is a part's: it needs \"map_part\": true".to_owned(),
        ));
    }
    let origin = match (&request.resume, request.map_part, request.folder.take()) {
        (_, true, Some(folder)) => Origin::Part {
            folder: folder
                .parse()
                .map_err(|err| RequestError::InvalidEvent(format!("folder: {err}")))?,
            account: request.account.take(),
            parts_at_once: request.parts_at_once.unwrap_or(NonZeroUsize::MIN),
        },
        (_, true, None) => {
            return Err(RequestError::InvalidEvent(
                "a part (map_part) needs the folder its report goes to: the plan and collect steps name it".to_owned(),
            ));
        }
        (_, false, Some(_)) => {
            return Err(RequestError::InvalidEvent(
                "folder is a part's: it needs \"map_part\": true".to_owned(),
            ));
        }
        (Some(_), false, None) => Origin::Caller,
        (None, false, None) => Origin::Whole,
    };
    // A token of an inventory's run reads on in the same report.
    let token_manifest = request
        .resume
        .as_ref()
        .and_then(|resume| resume.cursor.inventory())
        .map(|cursor| cursor.manifest.clone());
    if let (Some(named), Some(token)) = (&request.inventory, &token_manifest)
        && named != token
    {
        return Err(conflict("inventory", named, token));
    }
    let Some(manifest) = request.inventory.take().or(token_manifest) else {
        let fetch_when_acls_disabled = request
            .audit_when_acls_disabled
            .unwrap_or(config.audit_when_acls_disabled);
        return Ok(Job::Audit(AuditJob {
            target: target(config, request)?,
            fetch_when_acls_disabled,
            origin,
        }));
    };
    let manifest = manifest.parse::<S3Location>().map_err(|err| {
        RequestError::InvalidEvent(format!(
            "inventory: {err}: give the report's s3://…/manifest.json, or its configuration's folder s3://…/<source bucket>/<configuration id>/"
        ))
    })?;
    let resume = request.resume.take();
    let bucket = match &resume {
        Some(resume) => {
            if let Some(named) = request.bucket.as_ref().filter(|named| **named != resume.bucket) {
                return Err(conflict("bucket", named, &resume.bucket));
            }
            Some(resume.bucket.clone())
        }
        None => request.bucket,
    };
    if let Some(bucket) = &bucket {
        check_bucket_name(bucket)?;
    }
    Ok(Job::Inventory(InventoryJob {
        bucket,
        manifest,
        resume,
        origin,
    }))
}

/// An account sweep's job; a request that also names one bucket's run is refused, not guessed at.
fn sweep(scope: AuditScope, request: Request, config: &Config) -> Result<Job, RequestError> {
    let bucket_fields = [
        ("bucket", request.bucket.is_some()),
        ("prefix", request.prefix.is_some()),
        ("max_objects", request.max_objects.is_some()),
        ("resume", request.resume.is_some()),
        ("include_versions", request.include_versions.is_some()),
        ("inventory", request.inventory.is_some()),
        ("map_part", request.map_part),
        ("folder", request.folder.is_some()),
        ("account", request.account.is_some()),
        ("parts_at_once", request.parts_at_once.is_some()),
    ];
    if let Some((field, _)) = bucket_fields.iter().find(|(_, given)| *given) {
        return Err(RequestError::InvalidEvent(format!(
            "a sweep audits every bucket of the account: drop {field}, or drop the scope to audit one bucket"
        )));
    }
    let organization = match scope {
        AuditScope::Organization => {
            let name = request
                .role_name
                .clone()
                .or_else(|| config.member_role_name.clone())
                .filter(|name| !name.is_empty())
                .ok_or_else(|| {
                    RequestError::InvalidEvent(
                        "scope \"organization\" needs the member role's name: pass \"role_name\" or set MEMBER_ROLE_NAME".to_owned(),
                    )
                })?;
            check_role_name(&name)?;
            Some(MemberRole {
                name,
                external_id: config.member_role_external_id.clone(),
            })
        }
        _ if request.role_name.is_some() => {
            return Err(RequestError::InvalidEvent(
                "role_name is an organization sweep's: add \"scope\": \"organization\"".to_owned(),
            ));
        }
        _ => None,
    };
    Ok(Job::Sweep(SweepJob {
        organization,
        include: request.include.unwrap_or_default(),
        exclude: request.exclude.unwrap_or_default(),
        fetch_when_acls_disabled: request
            .audit_when_acls_disabled
            .unwrap_or(config.audit_when_acls_disabled),
    }))
}

/// The role an organization sweep assumes in each member account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRole {
    pub name: String,
    pub external_id: Option<String>,
}

/// IAM's role names: 1 to 64 of letters, digits and `+=,.@_-`.
pub(crate) fn check_role_name(name: &str) -> Result<(), RequestError> {
    let valid =
        (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(RequestError::InvalidEvent(format!(
            "role_name {:?} is not an IAM role name (1 to 64 letters, digits and +=,.@_-)",
            excerpt(name)
        )))
    }
}

/// The target a request names: the event's values win over the environment's, and a resume
/// token's bucket and prefix over both; an event naming others than its token is refused, not
/// guessed at.
pub fn target(config: &Config, request: Request) -> Result<Target, RequestError> {
    let (bucket, prefix) = match &request.resume {
        Some(resume) => {
            if let Some(bucket) = request.bucket.as_ref().filter(|b| **b != resume.bucket) {
                return Err(conflict("bucket", bucket, &resume.bucket));
            }
            if request.prefix.is_some() && request.prefix != resume.prefix {
                return Err(conflict("prefix", &request.prefix, &resume.prefix));
            }
            if let Some(wanted) = request.include_versions.filter(|wanted| *wanted != resume.versions) {
                return Err(conflict("include_versions", &wanted, &resume.versions));
            }
            (resume.bucket.clone(), resume.prefix.clone())
        }
        None => (
            request
                .bucket
                .or_else(|| config.bucket.clone())
                .ok_or(RequestError::MissingBucket)?,
            request.prefix.or_else(|| config.prefix.clone()),
        ),
    };
    check_bucket_name(&bucket)?;
    // A resume token goes on listing what its run listed.
    let include_versions = match &request.resume {
        Some(resume) => resume.versions,
        None => request.include_versions.unwrap_or(config.include_versions),
    };
    Ok(Target {
        bucket,
        prefix,
        max_objects: request.max_objects.map(NonZeroUsize::get).or(config.max_objects),
        resume: request.resume,
        include_versions,
    })
}

fn conflict(field: &str, event: &dyn std::fmt::Debug, token: &dyn std::fmt::Debug) -> RequestError {
    RequestError::InvalidEvent(format!(
        "the event's {field} {} is not the resume token's {}: drop one of them",
        excerpt(&format!("{event:?}")),
        excerpt(&format!("{token:?}"))
    ))
}

/// S3's longest key, in bytes of UTF-8; a prefix or `start_after` past it names no key.
pub const MAX_KEY_BYTES: usize = 1024;

/// Every key, prefix and place a job names is at most [`MAX_KEY_BYTES`]: a longer one names
/// nothing S3 holds, and aws-sdk-s3 panics building a request whose URI passes 64 KiB.
fn check_lengths(job: &Job) -> Result<(), RequestError> {
    let (target_prefix, resume) = match job {
        Job::Audit(job) => (job.target.prefix.as_deref(), job.target.resume.as_ref()),
        Job::Inventory(job) => (None, job.resume.as_ref()),
        Job::Plan(plan) => (plan.prefix.as_deref(), None),
        Job::Collect(_) | Job::AddUp(_) | Job::Sweep(_) => (None, None),
    };
    let origin = match job {
        Job::Audit(job) => Some(&job.origin),
        Job::Inventory(job) => Some(&job.origin),
        _ => None,
    };
    let mut named: Vec<(String, &str)> = Vec::new();
    named.extend(target_prefix.map(|prefix| ("prefix".to_owned(), prefix)));
    if let Some(Origin::Part { folder, .. }) = origin {
        named.push(("folder".to_owned(), &folder.prefix));
    }
    if let Some(resume) = resume {
        named.extend(
            resume
                .prefix
                .as_deref()
                .map(|prefix| ("resume.prefix".to_owned(), prefix)),
        );
        for (n, object) in resume.keys.iter().enumerate() {
            named.push((format!("resume.keys[{n}]"), &object.key));
        }
        match &resume.cursor {
            Cursor::After { key: Some(key), .. } => named.push(("resume.start_after".to_owned(), key)),
            Cursor::Ranges(ranges) => {
                for (n, range) in ranges.iter().enumerate() {
                    let ends = [("after", &range.after), ("through", &range.through)];
                    for (end, key) in ends {
                        named.extend(key.as_deref().map(|key| (format!("resume.ranges[{n}].{end}"), key)));
                    }
                }
            }
            _ => {}
        }
    }
    match named.into_iter().find(|(_, text)| text.len() > MAX_KEY_BYTES) {
        Some((field, text)) => Err(RequestError::InvalidEvent(format!(
            "{field} is {} bytes; S3's keys and prefixes are at most {MAX_KEY_BYTES} bytes of UTF-8",
            text.len()
        ))),
        None => Ok(()),
    }
}

/// `value` as a `T`, or an `InvalidEvent` whose message names the offending field.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, RequestError> {
    // The path names the offending field: `detail.max_objects: invalid type: string "ten"…`.
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        // serde quotes the value it refused: a 6 MB string is named by its start.
        let inner = excerpt(&inner.to_string());
        RequestError::InvalidEvent(if path == "." {
            inner
        } else {
            format!("{}: {inner}", excerpt(&path))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        Config::from_vars(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())).unwrap()
    }

    fn resolved(payload: Value) -> Result<Job, RequestError> {
        resolve(payload, &config(&[("BUCKET_NAME", "configured")]))
    }

    #[test]
    fn an_empty_payload_audits_the_configured_bucket_as_a_whole_run() {
        for payload in [json!({}), Value::Null] {
            let Ok(Job::Audit(job)) = resolved(payload) else {
                panic!()
            };
            assert_eq!((job.target.bucket.as_str(), job.origin), ("configured", Origin::Whole));
        }
        assert_eq!(resolve(json!({}), &config(&[])), Err(RequestError::MissingBucket));
    }

    #[test]
    fn each_payload_shape_is_its_own_job() {
        let plan = json!({"plan": {"folder": "s3://results/parts/"}});
        assert!(matches!(resolved(plan), Ok(Job::Plan(_))));
        let pass = json!({"bucket": "b-1", "folder": "s3://results/parts/x/", "pass": 1, "count": 0,
                          "items": {"Bucket": "results", "Key": "parts/x/pass-0.json"}});
        let Ok(Job::AddUp(job)) = resolved(json!({"add_up": {"pass": pass}})) else {
            panic!()
        };
        assert_eq!(job.pass.bucket, "b-1");
        let part = json!({"resume": {"bucket": "b-1", "prefix": null, "start_after": null, "listing_complete": true, "keys": ["k"]}, "map_part": true, "folder": "s3://results/parts/x/pass-0/part-3/"});
        let Ok(Job::Audit(job)) = resolved(part) else { panic!() };
        let Origin::Part {
            folder,
            account: None,
            parts_at_once,
        } = job.origin
        else {
            panic!()
        };
        assert_eq!(folder.prefix, "parts/x/pass-0/part-3/");
        assert_eq!(
            parts_at_once.get(),
            1,
            "a part on its own unless the step says otherwise"
        );
        let shared = json!({"resume": {"bucket": "b-1", "prefix": null, "start_after": null, "listing_complete": true, "keys": ["k"]}, "map_part": true, "folder": "s3://results/parts/x/pass-0/part-3/", "parts_at_once": 4});
        let Ok(Job::Audit(job)) = resolved(shared) else {
            panic!()
        };
        assert_eq!(job.origin.runs_sharing_the_keys().get(), 4);
        for (part, says) in [
            (
                json!({"resume": {"bucket": "b-1", "prefix": null, "start_after": null, "listing_complete": true, "keys": ["k"]}, "map_part": true}),
                "needs the folder",
            ),
            (json!({"bucket": "b-1", "folder": "s3://results/p/"}), "map_part"),
            (
                json!({"bucket": "b-1", "parts_at_once": 4}),
                "parts_at_once is a part's",
            ),
            (json!({"scope": "account", "parts_at_once": 4}), "drop parts_at_once"),
        ] {
            let Err(RequestError::InvalidEvent(message)) = resolved(part) else {
                panic!()
            };
            assert!(message.contains(says), "{message}");
        }
        let object = json!({"source": "aws.s3", "detail-type": "Object ACL Updated", "detail": {"bucket": {"name": "b-1"}, "object": {"key": "k"}}});
        let Ok(Job::Audit(job)) = resolved(object) else {
            panic!()
        };
        assert_eq!((job.target.bucket.as_str(), job.origin), ("b-1", Origin::Caller));
        let scheduled = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {"prefix": "p/"}});
        let Ok(Job::Audit(job)) = resolved(scheduled) else {
            panic!()
        };
        assert_eq!(job.target.prefix.as_deref(), Some("p/"));
    }

    #[test]
    fn an_inventory_without_a_bucket_leaves_it_to_the_manifest() {
        let payload = json!({"inventory": "s3://inventories/source/config/2026-12-01T01-00Z/manifest.json"});
        let Ok(Job::Inventory(job)) = resolved(payload) else {
            panic!()
        };
        assert_eq!(job.bucket, None, "BUCKET_NAME does not name an inventory's bucket");
        assert_eq!(job.manifest.bucket, "inventories");
        let named = json!({"inventory": "s3://inventories/f/", "bucket": "source"});
        let Ok(Job::Inventory(job)) = resolved(named) else {
            panic!()
        };
        assert_eq!(job.bucket.as_deref(), Some("source"));
    }

    #[test]
    fn a_bad_bucket_name_is_refused_on_every_path() {
        let bad = "bucket/with-a-prefix";
        for payload in [
            json!({"bucket": bad}),
            json!({"inventory": "s3://inventories/f/", "bucket": bad}),
            json!({"add_up": {"pass": {"bucket": bad, "folder": "s3://r/p/", "pass": 1, "count": 0,
                                       "items": {"Bucket": "r", "Key": "p/pass-0.json"}}}}),
            json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": bad}, "object": {"key": "k"}}}),
        ] {
            assert!(
                matches!(resolved(payload.clone()), Err(RequestError::InvalidBucketName(_))),
                "{payload}"
            );
        }
    }
}
