//! The audit's vocabulary: what to audit ([`Target`], [`Resume`]), which object or version
//! ([`ObjectRef`]), what one object's ACL is ([`ObjectAcl`], [`Grant`]), what became of one key
//! ([`AclOutcome`]), and the strategies' names. Nothing here talks to S3.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A bucket to audit, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    pub prefix: Option<String>,
    /// Stop listing after this many keys.
    pub max_objects: Option<usize>,
    /// Where an earlier, truncated run stopped, or the keys a Distributed Map batch names.
    pub resume: Option<Resume>,
    /// List every version (ListObjectVersions) and audit each one's ACL, not only the
    /// current objects'.
    pub include_versions: bool,
}

impl Target {
    pub fn bucket(bucket: impl Into<String>) -> Self {
        Target {
            bucket: bucket.into(),
            prefix: None,
            max_objects: None,
            resume: None,
            include_versions: false,
        }
    }
}

/// One object to audit: a key, and the version when it is not the current one that is meant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub key: String,
    /// S3's version id (`"null"` for a version written before versioning was enabled); `None`:
    /// the current version, whatever it is.
    pub version_id: Option<String>,
}

impl ObjectRef {
    pub fn version(key: impl Into<String>, version_id: impl Into<String>) -> Self {
        ObjectRef {
            key: key.into(),
            version_id: Some(version_id.into()),
        }
    }
}

impl From<String> for ObjectRef {
    fn from(key: String) -> Self {
        ObjectRef { key, version_id: None }
    }
}

impl From<&str> for ObjectRef {
    fn from(key: &str) -> Self {
        key.to_owned().into()
    }
}

/// On the wire (a resume token's `keys`) a current object is its key, as before versions
/// existed, and a version is `{"key": …, "version_id": …}`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ObjectRefWire {
    Key(String),
    Version { key: String, version_id: Option<String> },
}

impl Serialize for ObjectRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.version_id {
            None => serializer.serialize_str(&self.key),
            Some(version_id) => ObjectRefWire::Version {
                key: self.key.clone(),
                version_id: Some(version_id.clone()),
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ObjectRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match ObjectRefWire::deserialize(deserializer)? {
            ObjectRefWire::Key(key) => ObjectRef { key, version_id: None },
            ObjectRefWire::Version { key, version_id } => ObjectRef { key, version_id },
        })
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version_id {
            None => write!(f, "{}", self.key),
            Some(version_id) => write!(f, "{} (version {version_id})", self.key),
        }
    }
}

/// Where a truncated run stopped, as its report gives it and the next run's event takes it.
/// On the wire it keeps the flat shape tokens have always had (`ResumeWire`), so a token
/// stored or handed on by an earlier build still reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ResumeWire", into = "ResumeWire")]
pub struct Resume {
    pub bucket: String,
    pub prefix: Option<String>,
    /// The run listed every version (`include_versions`): its next run does too.
    pub versions: bool,
    /// Keys (or versions) listed whose ACL was not fetched; fetched first by the next run.
    pub keys: Vec<ObjectRef>,
    /// Where the listing, or the reading of an inventory report, goes on.
    pub cursor: Cursor,
}

/// Where a run's source goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// One listing, after `key` (from the start when `None`); a listing of versions after
    /// that key's `version_id` too (ListObjectVersions' markers).
    After {
        key: Option<String>,
        version_id: Option<String>,
    },
    /// Ranges of the key space listed side by side: each not listed to its end, from where
    /// its listing stopped.
    Ranges(Vec<KeyRange>),
    /// A place in an S3 Inventory report; `read_to_end`: the report is read and only the
    /// token's keys are left, the place still naming which report they are of.
    Inventory { place: InventoryCursor, read_to_end: bool },
    /// The listing reached its end: only the token's keys are left.
    Listed,
}

impl Cursor {
    /// From the start of a listing.
    pub const START: Cursor = Cursor::After {
        key: None,
        version_id: None,
    };

    /// Nothing left to list or read: only keys.
    pub fn is_done(&self) -> bool {
        matches!(self, Cursor::Listed | Cursor::Inventory { read_to_end: true, .. })
    }

    /// The inventory report's place, for a token of an inventory's run.
    pub fn inventory(&self) -> Option<&InventoryCursor> {
        match self {
            Cursor::Inventory { place, .. } => Some(place),
            _ => None,
        }
    }
}

/// A resume token as it is written: flat, with the fields each kind of cursor uses.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeWire {
    bucket: String,
    prefix: Option<String>,
    /// The listing goes on after this key; `null` with `listing_complete` false: from the start.
    /// For a listing of versions, ListObjectVersions' key marker.
    start_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version_id_marker: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    versions: bool,
    /// The listing (or the report) had reached the end: only `keys` are left.
    listing_complete: bool,
    keys: Vec<ObjectRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ranges: Vec<KeyRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inventory: Option<InventoryCursor>,
}

impl From<ResumeWire> for Resume {
    fn from(wire: ResumeWire) -> Self {
        let cursor = match (wire.inventory, wire.listing_complete) {
            (Some(place), read_to_end) => Cursor::Inventory { place, read_to_end },
            (None, true) => Cursor::Listed,
            (None, false) if !wire.ranges.is_empty() => Cursor::Ranges(wire.ranges),
            (None, false) => Cursor::After {
                key: wire.start_after,
                version_id: wire.version_id_marker,
            },
        };
        Resume {
            bucket: wire.bucket,
            prefix: wire.prefix,
            versions: wire.versions,
            keys: wire.keys,
            cursor,
        }
    }
}

impl From<Resume> for ResumeWire {
    fn from(resume: Resume) -> Self {
        let mut wire = ResumeWire {
            bucket: resume.bucket,
            prefix: resume.prefix,
            start_after: None,
            version_id_marker: None,
            versions: resume.versions,
            listing_complete: resume.cursor.is_done(),
            keys: resume.keys,
            ranges: Vec::new(),
            inventory: None,
        };
        match resume.cursor {
            Cursor::After { key, version_id } => {
                wire.start_after = key;
                wire.version_id_marker = version_id;
            }
            Cursor::Ranges(ranges) => wire.ranges = ranges,
            Cursor::Inventory { place, .. } => wire.inventory = Some(place),
            Cursor::Listed => {}
        }
        wire
    }
}

/// A place in an S3 Inventory report: after the first `rows` rows of the `file`th file
/// (from 0) its manifest names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryCursor {
    /// The report's `manifest.json`, `s3://bucket/key`.
    pub manifest: String,
    pub file: usize,
    pub rows: usize,
    /// The last file (an index in the manifest's `files`) to read: a state machine run hands
    /// each part one file. Absent: every file to the report's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_file: Option<usize>,
}

/// A part of a target's key space: the keys after `after` (from the first, when absent) up
/// to and including `through` (to the last, when absent), in S3's order (UTF-8 bytes). Ranges
/// cut at the same keys tile the key space: every key is in exactly one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRange {
    pub after: Option<String>,
    pub through: Option<String>,
}

impl KeyRange {
    /// Every key.
    pub const ALL: KeyRange = KeyRange {
        after: None,
        through: None,
    };

    pub fn contains(&self, key: &str) -> bool {
        self.after.as_deref().is_none_or(|after| key > after)
            && self.through.as_deref().is_none_or(|through| key <= through)
    }
}

impl Resume {
    /// Keys handed over with nothing to list: an S3 event's object, or those of parts that
    /// never ran.
    pub fn keys_only(bucket: String, keys: impl IntoIterator<Item = impl Into<ObjectRef>>) -> Self {
        Resume {
            bucket,
            prefix: None,
            versions: false,
            keys: keys.into_iter().map(Into::into).collect(),
            cursor: Cursor::Listed,
        }
    }
}

/// The most of an input an error or a log line quotes: a 6 MB bucket name or key is named by
/// its start and its length, never echoed whole.
pub const MOST_QUOTED: usize = 200;

/// `text` as an error quotes it: whole up to [`MOST_QUOTED`] bytes, else its first ones (at a
/// character boundary) and its length.
pub fn excerpt(text: &str) -> String {
    if text.len() <= MOST_QUOTED {
        return text.to_owned();
    }
    let end = (0..=MOST_QUOTED)
        .rev()
        .find(|&at| text.is_char_boundary(at))
        .unwrap_or(0);
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// A name no S3 bucket can have, with what is wrong with it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid bucket name {:?}: {reason}", excerpt(name))]
pub struct InvalidBucketName {
    pub name: String,
    pub reason: String,
}

/// S3's naming rules, loosely: what no bucket can be called. Names from before 2018 may hold
/// capitals and underscores and run to 255 characters, so those pass; S3 has the last word.
pub fn check_bucket_name(name: &str) -> Result<(), InvalidBucketName> {
    let invalid = |reason: &str| {
        Err(InvalidBucketName {
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

/// One object's ACL as GetObjectAcl returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAcl {
    pub key: String,
    /// The version audited; `None`: the current one, its id not asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub owner_id: Option<String>,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    /// `FULL_CONTROL`, `READ`, `WRITE`, `READ_ACP` or `WRITE_ACP`.
    pub permission: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Grantee {
    CanonicalUser {
        id: String,
    },
    Group {
        uri: String,
    },
    Email {
        address: String,
    },
    /// A grantee type this client does not know, kept so that nothing is dropped silently.
    Other {
        description: String,
    },
}

pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

impl Grant {
    /// READ or FULL_CONTROL: the permissions that let the grantee read the object.
    pub fn allows_read(&self) -> bool {
        self.permission == "READ" || self.permission == "FULL_CONTROL"
    }
}

/// An object whose ACL could not be fetched; the run records it and goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectFailure {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// S3's error code (`AccessDenied`, `NoSuchKey`, `SlowDown` …) or, for a request that got
    /// no answer, the kind of failure (`Timeout`, `DispatchFailure`, `TaskPanicked`).
    pub code: String,
    pub message: String,
}

/// What one GetObjectAcl call gave.
pub type FetchResult = Result<ObjectAcl, ObjectFailure>;

/// What became of one listed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclOutcome {
    Fetched(ObjectAcl),
    Failed(ObjectFailure),
    /// The run stopped (its deadline came) before this key's ACL arrived: the key goes into
    /// the resume token.
    NotFetched(ObjectRef),
}

impl AclOutcome {
    pub fn key(&self) -> &str {
        match self {
            AclOutcome::Fetched(acl) => &acl.key,
            AclOutcome::Failed(failure) => &failure.key,
            AclOutcome::NotFetched(object) => &object.key,
        }
    }

    pub fn version_id(&self) -> Option<&str> {
        match self {
            AclOutcome::Fetched(acl) => acl.version_id.as_deref(),
            AclOutcome::Failed(failure) => failure.version_id.as_deref(),
            AclOutcome::NotFetched(object) => object.version_id.as_deref(),
        }
    }
}

impl From<FetchResult> for AclOutcome {
    fn from(result: FetchResult) -> Self {
        match result {
            Ok(acl) => AclOutcome::Fetched(acl),
            Err(failure) => AclOutcome::Failed(failure),
        }
    }
}

/// Which scheduler a run uses; its parameters are in [`crate::Strategy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    Sequential,
    SpawnBlocking,
    JoinAll,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 3] = [
        StrategyKind::Sequential,
        StrategyKind::SpawnBlocking,
        StrategyKind::JoinAll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Sequential => "sequential",
            StrategyKind::SpawnBlocking => "spawn-blocking",
            StrategyKind::JoinAll => "join-all",
        }
    }
}

/// `s3://bucket/prefix`: where a tool reads or writes objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Empty for the whole bucket; otherwise used as given (a folder ends with `/`).
    pub prefix: String,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidS3Location {
    #[error("{:?} is not an s3://bucket/prefix location", excerpt(.0))]
    NotS3(String),
    #[error("{:?} names no bucket", excerpt(.0))]
    NoBucket(String),
}

impl S3Location {
    /// `path` inside this location taken as a folder: after its prefix, with a `/` between
    /// them unless the prefix is empty or ends with one already.
    pub fn join(&self, path: &str) -> S3Location {
        let mut prefix = self.prefix.clone();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        prefix.push_str(path);
        S3Location {
            bucket: self.bucket.clone(),
            prefix,
        }
    }
}

impl FromStr for S3Location {
    type Err = InvalidS3Location;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| InvalidS3Location::NotS3(text.to_owned()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(InvalidS3Location::NoBucket(text.to_owned()));
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Whether `name` matches `glob`: `*` any run of characters, `?` any one, the rest itself.
pub fn glob_matches(glob: &str, name: &str) -> bool {
    let (glob, name): (Vec<char>, Vec<char>) = (glob.chars().collect(), name.chars().collect());
    // The classic two-pointer match with one backtrack point (the last `*`).
    let (mut g, mut n, mut star, mut resume_at) = (0, 0, None, 0);
    while n < name.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some(g);
                resume_at = n;
                g += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                g += 1;
                n += 1;
            }
            _ => match star {
                Some(at) => {
                    g = at + 1;
                    resume_at += 1;
                    n = resume_at;
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs_match_as_shells_do() {
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("logs-*", "logs-2026"));
        assert!(!glob_matches("logs-*", "app-logs"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "ac"));
        assert!(glob_matches("*-prod-*", "web-prod-eu"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
    }

    #[test]
    fn a_path_joins_a_location_as_a_folder() {
        let join = |location: &str, path: &str| {
            location
                .parse::<super::S3Location>()
                .map(|at| at.join(path).to_string())
        };
        assert_eq!(join("s3://b", "f.json"), Ok("s3://b/f.json".to_owned()));
        assert_eq!(join("s3://b/runs", "f.json"), Ok("s3://b/runs/f.json".to_owned()));
        assert_eq!(join("s3://b/runs/", "f.json"), Ok("s3://b/runs/f.json".to_owned()));
    }

    use super::*;

    #[test]
    fn a_resume_token_reads_as_before_versions_and_names_versions_beside_keys() {
        // A token written before versions existed: keys are strings, no version fields.
        let old = r#"{"bucket":"b","prefix":null,"start_after":"k9","listing_complete":false,"keys":["k1","k2"]}"#;
        let resume: Resume = serde_json::from_str(old).unwrap();
        assert_eq!(resume.keys, [ObjectRef::from("k1"), ObjectRef::from("k2")]);
        assert!(!resume.versions);
        assert_eq!(serde_json::to_string(&resume).unwrap(), old, "and writes the same");

        let versions = Resume {
            cursor: Cursor::After {
                key: Some("k9".to_owned()),
                version_id: Some("v7".to_owned()),
            },
            versions: true,
            keys: vec![ObjectRef::version("k1", "v3"), ObjectRef::from("k2")],
            ..resume
        };
        let json = serde_json::to_value(&versions).unwrap();
        assert_eq!(
            json["keys"],
            serde_json::json!([{"key": "k1", "version_id": "v3"}, "k2"])
        );
        assert_eq!(
            (&json["version_id_marker"], &json["versions"]),
            (&"v7".into(), &true.into())
        );
        assert_eq!(serde_json::from_value::<Resume>(json).unwrap(), versions);
    }

    #[test]
    fn a_key_that_is_neither_a_string_nor_a_version_is_refused() {
        let bad = r#"{"bucket":"b","prefix":null,"start_after":null,"listing_complete":true,"keys":[7]}"#;
        assert!(serde_json::from_str::<Resume>(bad).is_err());
    }
}
