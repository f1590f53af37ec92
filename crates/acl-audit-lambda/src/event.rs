//! The invocation payloads a function accepts, as they are on the wire: a console or Scheduler
//! payload (a [`Request`]), an EventBridge event whose `detail` is one, S3's object events
//! ([`S3ObjectEvent`]), and the state machine's steps ([`PlanRequest`], [`CollectRequest`],
//! [`AddUpRequest`]) and parts ([`PartEvent`]). Each wire format is defined here once, for
//! [`crate::job::resolve`] and every tool that writes or reads it.

use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};

use acl_audit::Resume;

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
    /// The token is one part of a state machine run (`crate::parts`), whose last step
    /// reports the run: this invocation's metrics count per strategy only, and it stores no
    /// token of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub map_part: bool,
    /// A part's own folder (`s3://…/pass-<n>/part-<i>/`, named by the plan or collect step):
    /// its findings file and report go there, for the collect and last steps to read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// A sweep's part: the account its bucket is in, and the role to assume there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<PartAccount>,
    /// A part: how many parts of its bucket the state machine may run at once (the plan and
    /// collect steps write it), whose `join-all` limits start and grow by their share of one
    /// invocation's, so that together they ask what one would (docs/reliability.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts_at_once: Option<NonZeroUsize>,
    /// What the run audits: one bucket (the default), or every bucket of the account;
    /// overrides `AUDIT_SCOPE`.
    #[serde(default)]
    pub scope: Option<AuditScope>,
    /// An account sweep's bucket-name globs (`*`, `?`): only buckets matching one of them.
    #[serde(default)]
    pub include: Option<Vec<String>>,
    /// An account sweep's bucket-name globs: no bucket matching one of them.
    #[serde(default)]
    pub exclude: Option<Vec<String>>,
    /// An organization sweep's member role (`deploy/member-role.yaml`); overrides
    /// `MEMBER_ROLE_NAME`.
    #[serde(default)]
    pub role_name: Option<String>,
}

/// What a run audits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditScope {
    /// One bucket: the event's, or `BUCKET_NAME`.
    #[default]
    Bucket,
    /// Every bucket the account owns, each crawled where its ACLs apply.
    Account,
    /// Every bucket of every account of the AWS Organization, a member role assumed in each.
    Organization,
}

/// A file as Step Functions names one: a pass's parts file, which the Map's ItemReader reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ItemsFile {
    pub bucket: String,
    pub key: String,
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
    /// One bucket (the default; `AUDIT_SCOPE` does not apply), or a sweep of every bucket of
    /// the account or organization, each bucket where ACLs apply cut into parts. A sweep's
    /// plan refuses a prefix or an inventory, and a bucket other than `BUCKET_NAME` (the
    /// stack's, which the definition always passes).
    #[serde(default)]
    pub scope: Option<AuditScope>,
    /// A sweep's bucket-name globs, as an invocation's sweep takes them.
    #[serde(default)]
    pub include: Option<Vec<String>>,
    #[serde(default)]
    pub exclude: Option<Vec<String>>,
    /// An organization sweep's member role; `MEMBER_ROLE_NAME` when absent or blank. Not used
    /// by other scopes.
    #[serde(default)]
    pub role_name: Option<String>,
    /// A sweep's most parts per bucket in a pass, so that at most this many run against one
    /// bucket at once while many buckets run side by side (S3 serves each prefix partition's
    /// requests at a rate of its own); `parts` when absent. One bucket's run leaves that to the
    /// Map's MaxConcurrency.
    #[serde(default)]
    pub parts_per_bucket: Option<usize>,
    /// The Map's MaxConcurrency: how many parts run at once, of which those of one bucket
    /// share its limit (`Request::parts_at_once`). Absent: every part of a pass at once.
    #[serde(default)]
    pub max_concurrency: Option<NonZeroUsize>,
}

/// Parts a listing is cut into by default: a few per Map worker at the template's default
/// concurrency, so that an uneven cut still keeps them busy.
pub const DEFAULT_PARTS: usize = 64;

fn default_parts() -> usize {
    DEFAULT_PARTS
}

/// Where a run of parts is: the state the state machine carries from step to step
/// (`$.run.pass`), which the plan step starts and each collect step moves on a pass. Every
/// pass's parts file and parts' folders are in `folder`, so the state stays this small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pass {
    pub bucket: String,
    /// `s3://bucket/folder/` of the parts files.
    pub folder: String,
    /// 0 for the plan's parts, then one more per pass run; once `count` is 0, the number of
    /// passes the run took.
    pub pass: usize,
    /// Parts in this pass's file: 0 when the run is done.
    pub count: usize,
    /// This pass's parts file (`pass-<n>.json`), a JSON array of the workers' events.
    pub items: ItemsFile,
    /// A sweep's run (its plan's report, `sweep.json`, in `folder`) or one bucket's.
    #[serde(default)]
    pub scope: AuditScope,
    /// At most this many parts of one bucket in a pass's file; the rest wait in the held-back
    /// file (`held-<n>.json`) for a later pass.
    #[serde(default)]
    pub per_bucket: Option<usize>,
    /// The Map's MaxConcurrency, as the plan step was given it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<NonZeroUsize>,
    /// Where the pointer to the target's last completed run lives (`s3://…/latest/…json`),
    /// when runs are compared: the last step compares the run with it (a sweep's names its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<String>,
}

/// A collect step (`{"collect": …}`): the pass just run, whose parts' reports are read back
/// from their folders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectRequest {
    pub pass: Pass,
}

/// The last step (`{"add_up": …}`): the run's last pass, whose folder holds every pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddUpRequest {
    pub pass: Pass,
}

/// One part, as the parts file hands it to a worker: a token, the mark of a part, the folder
/// its findings and report go to, and for a sweep's part the account its bucket is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartEvent {
    pub resume: Resume,
    pub map_part: bool,
    pub folder: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<PartAccount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts_at_once: Option<NonZeroUsize>,
}

/// The account a sweep's part is in: its id (for the findings lines) and the member role the
/// worker assumes there (none: the function's own account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartAccount {
    pub account_id: String,
    #[serde(default)]
    pub role_arn: Option<String>,
}

impl PartEvent {
    pub fn new(
        resume: Resume,
        folder: String,
        account: Option<PartAccount>,
        parts_at_once: Option<NonZeroUsize>,
    ) -> Self {
        PartEvent {
            resume,
            map_part: true,
            folder,
            account,
            parts_at_once,
        }
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
