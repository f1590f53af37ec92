//! The in-memory object store behind the endpoint. Tests and the seeder use it directly
//! (no HTTP) to arrange a bucket; the S3 service reads and writes it per request.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use md5::{Digest, Md5};
use parking_lot::{Mutex, RwLock};

use crate::acl::Acl;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("the bucket {0:?} does not exist")]
    NoSuchBucket(String),
    #[error("the key {0:?} does not exist")]
    NoSuchKey(String),
    #[error("the bucket {0:?} already exists and is owned by you")]
    BucketAlreadyOwnedByYou(String),
    #[error("the bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    #[error("access to the ACL of {0:?} is denied")]
    AclAccessDenied(String),
    #[error("listing the bucket {0:?} is denied")]
    ListAccessDenied(String),
    #[error("the multipart upload {0:?} does not exist")]
    NoSuchUpload(String),
    #[error("part {0} of the upload was never uploaded, or its ETag differs")]
    InvalidPart(i32),
    #[error("the parts are not in ascending order")]
    InvalidPartOrder,
    #[error("part {0} is smaller than 5 MiB and not the last")]
    EntityTooSmall(i32),
    #[error("the bucket {0:?} has no ownership controls")]
    OwnershipControlsNotFound(String),
    #[error("the bucket {0:?} has no public access block configuration")]
    NoSuchPublicAccessBlockConfiguration(String),
    #[error("the bucket {0:?} does not allow ACLs")]
    AccessControlListNotSupported(String),
    #[error("the key {0:?} has no version {1:?}")]
    NoSuchVersion(String, String),
    #[error("version {1:?} of {0:?} is a delete marker")]
    DeleteMarker(String, String),
}

/// A bucket's versioning (GetBucketVersioning): a bucket once versioned can be suspended,
/// never unversioned again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

/// S3's id of a version written while versioning was off or suspended.
pub const NULL_VERSION: &str = "null";

/// S3's default region: where a bucket created without a location constraint lives.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Block Public Access as S3 stores it, for a bucket or for the account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// A bucket's Object Ownership setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectOwnership {
    /// ACLs disabled: every object is the bucket owner's and ACLs have no effect.
    BucketOwnerEnforced,
    BucketOwnerPreferred,
    ObjectWriter,
}

impl ObjectOwnership {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectOwnership::BucketOwnerEnforced => "BucketOwnerEnforced",
            ObjectOwnership::BucketOwnerPreferred => "BucketOwnerPreferred",
            ObjectOwnership::ObjectWriter => "ObjectWriter",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            ObjectOwnership::BucketOwnerEnforced,
            ObjectOwnership::BucketOwnerPreferred,
            ObjectOwnership::ObjectWriter,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }
}

/// A bucket's settings beside its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSettings {
    pub region: String,
    /// `None`: no ownership controls (S3's `OwnershipControlsNotFoundError`; ACLs apply).
    pub ownership: Option<ObjectOwnership>,
    pub public_access_block: Option<PublicAccessBlock>,
    /// The bucket's own ACL (GetBucketAcl).
    pub acl: Acl,
    pub versioning: Versioning,
    /// What GetBucketPolicyStatus says of the bucket's policy; `None`: it has none
    /// (`NoSuchBucketPolicy`).
    pub policy_public: Option<bool>,
}

impl Default for BucketSettings {
    fn default() -> Self {
        BucketSettings {
            region: DEFAULT_REGION.to_owned(),
            ownership: None,
            public_access_block: None,
            acl: Acl::private(),
            versioning: Versioning::Unversioned,
            policy_public: None,
        }
    }
}

/// S3's smallest part but for the last one.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// A multipart upload under way: its object's place and the parts uploaded so far.
#[derive(Debug)]
struct Upload {
    bucket: String,
    key: String,
    acl: Acl,
    /// Part number to (body, hex MD5).
    parts: BTreeMap<i32, (Bytes, String)>,
}

#[derive(Debug, Clone)]
pub struct StoredObject {
    pub body: Bytes,
    /// Hex MD5 of the body, as S3 reports for single-part uploads.
    pub etag: String,
    pub last_modified: SystemTime,
    pub acl: Acl,
    /// When false, GetObjectAcl answers AccessDenied: stands in for an object whose ACL
    /// the caller's role may not read (another account's object, a deny policy).
    pub acl_readable: bool,
    /// Set by the store when the object is written: `None` is S3's "null" version.
    pub version_id: Option<String>,
}

impl StoredObject {
    pub fn new(body: Bytes, acl: Acl) -> Self {
        let etag = format!("{:x}", Md5::digest(&body));
        StoredObject {
            body,
            etag,
            last_modified: SystemTime::now(),
            acl,
            acl_readable: true,
            version_id: None,
        }
    }
}

/// A key's version that is not its current object: an older object, or a delete marker.
#[derive(Debug, Clone)]
enum Noncurrent {
    Object(StoredObject),
    /// `version_id` `None`: the "null" version (a delete while versioning was suspended).
    DeleteMarker {
        version_id: Option<String>,
        last_modified: SystemTime,
    },
}

impl Noncurrent {
    fn version_id(&self) -> Option<&str> {
        match self {
            Noncurrent::Object(object) => object.version_id.as_deref(),
            Noncurrent::DeleteMarker { version_id, .. } => version_id.as_deref(),
        }
    }
}

/// Where a key's version is kept: its current object, or its noncurrent versions at an index.
#[derive(Debug, Clone, Copy)]
enum Place {
    Current,
    Noncurrent(usize),
}

/// One entry of ListObjectVersions: a version of an object, or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub key: String,
    /// `"null"` for a version written while versioning was off or suspended.
    pub version_id: String,
    pub is_latest: bool,
    pub last_modified: SystemTime,
    /// `None` for a delete marker.
    pub object: Option<ListedVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVersion {
    pub etag: String,
    pub size: i64,
}

/// A ListObjectVersions page: its entries in S3's order (keys ascending, each key's versions
/// newest first), and where the next page starts, if there is one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionPage {
    pub entries: Vec<VersionEntry>,
    /// (key marker, version-id marker) of the last entry, when more follow.
    pub next: Option<(String, String)>,
}

/// Where a ListObjectVersions page starts, and how much it holds.
#[derive(Debug, Clone, Copy)]
pub struct VersionsRequest<'a> {
    pub prefix: &'a str,
    pub key_marker: Option<&'a str>,
    pub version_id_marker: Option<&'a str>,
    pub max_keys: usize,
}

fn same_version(id: Option<&str>, wanted: &str) -> bool {
    id.unwrap_or(NULL_VERSION) == wanted
}

#[derive(Debug, Default)]
struct Bucket {
    /// Each key's current object: what ListObjectsV2 lists and GetObject reads.
    objects: BTreeMap<String, StoredObject>,
    /// Each key's other versions, newest first; a key whose latest version is a delete marker
    /// has no current object.
    noncurrent: BTreeMap<String, Vec<Noncurrent>>,
    settings: BucketSettings,
    /// When true, ListObjectsV2 answers AccessDenied: a role without s3:ListBucket.
    listing_denied: bool,
}

/// Buckets and their objects, shared by every connection.
#[derive(Debug, Default)]
pub struct Store {
    buckets: RwLock<BTreeMap<String, Bucket>>,
    uploads: Mutex<BTreeMap<String, Upload>>,
    next_upload: AtomicU64,
    next_version: AtomicU64,
    /// The account's Block Public Access (S3 Control's PutPublicAccessBlock).
    account_public_access_block: Mutex<Option<PublicAccessBlock>>,
}

impl Store {
    pub fn create_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        self.create_bucket_in(bucket, DEFAULT_REGION)
    }

    /// A bucket in `region`: requests signed for another region are redirected there.
    pub fn create_bucket_in(&self, bucket: &str, region: &str) -> Result<(), StoreError> {
        let mut buckets = self.buckets.write();
        if buckets.contains_key(bucket) {
            return Err(StoreError::BucketAlreadyOwnedByYou(bucket.to_owned()));
        }
        let settings = BucketSettings {
            region: region.to_owned(),
            ..BucketSettings::default()
        };
        buckets.insert(
            bucket.to_owned(),
            Bucket {
                settings,
                ..Bucket::default()
            },
        );
        Ok(())
    }

    pub fn bucket_settings(&self, bucket: &str) -> Result<BucketSettings, StoreError> {
        let buckets = self.buckets.read();
        let b = buckets
            .get(bucket)
            .ok_or_else(|| StoreError::NoSuchBucket(bucket.to_owned()))?;
        Ok(b.settings.clone())
    }

    pub fn bucket_region(&self, bucket: &str) -> Option<String> {
        self.buckets.read().get(bucket).map(|b| b.settings.region.clone())
    }

    /// Every bucket's name and region, in name order (ListBuckets).
    pub fn buckets(&self) -> Vec<(String, String)> {
        let buckets = self.buckets.read();
        buckets
            .iter()
            .map(|(name, bucket)| (name.clone(), bucket.settings.region.clone()))
            .collect()
    }

    /// Gives `bucket` a policy that is public (`Some(true)`) or not, or none.
    pub fn set_policy_public(&self, bucket: &str, public: Option<bool>) -> Result<(), StoreError> {
        self.with_bucket_mut(bucket, |b| {
            b.settings.policy_public = public;
            Ok(())
        })
    }

    pub fn set_ownership(&self, bucket: &str, ownership: Option<ObjectOwnership>) -> Result<(), StoreError> {
        self.with_bucket_mut(bucket, |b| {
            b.settings.ownership = ownership;
            Ok(())
        })
    }

    pub fn set_public_access_block(&self, bucket: &str, block: Option<PublicAccessBlock>) -> Result<(), StoreError> {
        self.with_bucket_mut(bucket, |b| {
            b.settings.public_access_block = block;
            Ok(())
        })
    }

    pub fn set_bucket_acl(&self, bucket: &str, acl: Acl) -> Result<(), StoreError> {
        self.with_bucket_mut(bucket, |b| {
            b.settings.acl = acl;
            Ok(())
        })
    }

    pub fn account_public_access_block(&self) -> Option<PublicAccessBlock> {
        *self.account_public_access_block.lock()
    }

    pub fn set_account_public_access_block(&self, block: Option<PublicAccessBlock>) {
        *self.account_public_access_block.lock() = block;
    }

    /// True when the bucket's Object Ownership is `BucketOwnerEnforced`.
    pub fn acls_disabled(&self, bucket: &str) -> bool {
        self.buckets
            .read()
            .get(bucket)
            .is_some_and(|b| b.settings.ownership == Some(ObjectOwnership::BucketOwnerEnforced))
    }

    pub fn bucket_exists(&self, bucket: &str) -> bool {
        self.buckets.read().contains_key(bucket)
    }

    pub fn delete_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        let mut buckets = self.buckets.write();
        match buckets.get(bucket) {
            None => Err(StoreError::NoSuchBucket(bucket.to_owned())),
            Some(b) if !b.objects.is_empty() || !b.noncurrent.is_empty() => {
                Err(StoreError::BucketNotEmpty(bucket.to_owned()))
            }
            Some(_) => {
                buckets.remove(bucket);
                Ok(())
            }
        }
    }

    /// Stores `object` as `key`'s current version; returns its version id when the bucket's
    /// versioning is enabled. The version it replaces is kept, as S3 keeps it, unless both are
    /// the "null" version.
    pub fn put_object(&self, bucket: &str, key: &str, mut object: StoredObject) -> Result<Option<String>, StoreError> {
        self.with_bucket_mut(bucket, |b| {
            let versioning = b.settings.versioning;
            object.version_id = (versioning == Versioning::Enabled).then(|| self.new_version_id());
            let version_id = object.version_id.clone();
            let replaced = b.objects.insert(key.to_owned(), object);
            if versioning != Versioning::Unversioned {
                b.keep_noncurrent(key, replaced.map(Noncurrent::Object), versioning);
            }
            Ok(version_id)
        })
    }

    /// Deleting a key that does not exist succeeds, as on S3. In a versioned bucket the
    /// current version is kept and a delete marker becomes the latest; its id is returned.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.with_bucket_mut(bucket, |b| {
            let versioning = b.settings.versioning;
            let current = b.objects.remove(key);
            if versioning == Versioning::Unversioned {
                return Ok(None);
            }
            b.keep_noncurrent(key, current.map(Noncurrent::Object), versioning);
            let version_id = (versioning == Versioning::Enabled).then(|| self.new_version_id());
            let marker = Noncurrent::DeleteMarker {
                version_id: version_id.clone(),
                last_modified: SystemTime::now(),
            };
            b.noncurrent.entry(key.to_owned()).or_default().insert(0, marker);
            Ok(Some(version_id.unwrap_or_else(|| NULL_VERSION.to_owned())))
        })
    }

    /// Deletes one version for good (DeleteObject with a version id); returns whether it was a
    /// delete marker. With the current version gone, the next newer object becomes current.
    pub fn delete_version(&self, bucket: &str, key: &str, version_id: &str) -> Result<bool, StoreError> {
        self.with_bucket_mut(bucket, |b| {
            if b.objects
                .get(key)
                .is_some_and(|current| same_version(current.version_id.as_deref(), version_id))
            {
                b.objects.remove(key);
                b.promote_newest(key);
                return Ok(false);
            }
            let Some(versions) = b.noncurrent.get_mut(key) else {
                // S3 answers success for a version that does not exist.
                return Ok(false);
            };
            let Some(at) = versions
                .iter()
                .position(|version| same_version(version.version_id(), version_id))
            else {
                return Ok(false);
            };
            let removed = versions.remove(at);
            let marker = matches!(removed, Noncurrent::DeleteMarker { .. });
            // The latest delete marker gone, the newest older object is current again.
            if at == 0 && marker {
                b.promote_newest(key);
            } else {
                b.noncurrent.retain(|_, versions| !versions.is_empty());
            }
            Ok(marker)
        })
    }

    pub fn set_versioning(&self, bucket: &str, versioning: Versioning) -> Result<(), StoreError> {
        self.with_bucket_mut(bucket, |b| {
            b.settings.versioning = versioning;
            Ok(())
        })
    }

    fn new_version_id(&self) -> String {
        // Opaque to clients, as S3's are; increasing, so that tests read them in order.
        format!("v{:016}", self.next_version.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// One ListObjectVersions page of the keys under `prefix`.
    pub fn list_versions(&self, bucket: &str, request: &VersionsRequest<'_>) -> Result<VersionPage, StoreError> {
        let buckets = self.buckets.read();
        let b = buckets
            .get(bucket)
            .ok_or_else(|| StoreError::NoSuchBucket(bucket.to_owned()))?;
        if b.listing_denied {
            return Err(StoreError::ListAccessDenied(bucket.to_owned()));
        }
        let from = match request.key_marker {
            // With a version-id marker the marker's own key is listed on from that version.
            Some(marker) if request.version_id_marker.is_some() => Bound::Included(marker),
            Some(marker) => Bound::Excluded(marker),
            None => Bound::Included(request.prefix),
        };
        let mut current = b.objects.range::<str, _>((from, Bound::Unbounded)).peekable();
        let mut older = b.noncurrent.range::<str, _>((from, Bound::Unbounded)).peekable();
        let mut page = VersionPage::default();
        let mut skipping = request.version_id_marker;
        loop {
            let key = match (current.peek(), older.peek()) {
                (None, None) => break,
                (Some((a, _)), Some((o, _))) => (*a).min(*o).clone(),
                (Some((a, _)), None) => (*a).clone(),
                (None, Some((o, _))) => (*o).clone(),
            };
            if !key.starts_with(request.prefix) {
                if key.as_str() > request.prefix {
                    break;
                }
                current.next_if(|(k, _)| **k == key);
                older.next_if(|(k, _)| **k == key);
                continue;
            }
            let mut entries = Vec::new();
            if let Some((_, object)) = current.next_if(|(k, _)| **k == key) {
                entries.push(listed(&key, object));
            }
            if let Some((_, versions)) = older.next_if(|(k, _)| **k == key) {
                entries.extend(versions.iter().map(|version| match version {
                    Noncurrent::Object(object) => listed(&key, object),
                    Noncurrent::DeleteMarker {
                        version_id,
                        last_modified,
                    } => VersionEntry {
                        key: key.clone(),
                        version_id: version_id.clone().unwrap_or_else(|| NULL_VERSION.to_owned()),
                        is_latest: false,
                        last_modified: *last_modified,
                        object: None,
                    },
                }));
            }
            if let Some(first) = entries.first_mut() {
                first.is_latest = true;
            }
            for entry in entries {
                if let Some(marker) = skipping {
                    if Some(key.as_str()) == request.key_marker {
                        if entry.version_id == marker {
                            skipping = None;
                        }
                        continue;
                    }
                    skipping = None;
                }
                if page.entries.len() == request.max_keys {
                    if let Some(last) = page.entries.last() {
                        page.next = Some((last.key.clone(), last.version_id.clone()));
                    }
                    return Ok(page);
                }
                page.entries.push(entry);
            }
        }
        Ok(page)
    }

    /// The object's body and ETag.
    pub fn object(&self, bucket: &str, key: &str) -> Result<(Bytes, String), StoreError> {
        self.with_object(bucket, key, |object| Ok((object.body.clone(), object.etag.clone())))
    }

    /// With ACLs disabled, the owner's full control whatever was stored, as S3 answers.
    pub fn object_acl(&self, bucket: &str, key: &str) -> Result<Acl, StoreError> {
        self.version_acl(bucket, key, None)
    }

    /// The ACL of the version `version_id` names (`"null"` included), or of the current one.
    pub fn version_acl(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<Acl, StoreError> {
        let disabled = self.acls_disabled(bucket);
        self.with_version(bucket, key, version_id, |object| {
            if !object.acl_readable {
                return Err(StoreError::AclAccessDenied(key.to_owned()));
            }
            Ok(if disabled { Acl::private() } else { object.acl.clone() })
        })
    }

    fn with_object<T>(
        &self,
        bucket: &str,
        key: &str,
        f: impl FnOnce(&StoredObject) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_version(bucket, key, None, f)
    }

    /// The version `version_id` names, or the current one: S3's NoSuchVersion for an id the
    /// key does not have, MethodNotAllowed (here `DeleteMarker`) for a delete marker's.
    pub fn with_version<T>(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        f: impl FnOnce(&StoredObject) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let buckets = self.buckets.read();
        let b = buckets
            .get(bucket)
            .ok_or_else(|| StoreError::NoSuchBucket(bucket.to_owned()))?;
        f(b.version(key, version_id)?)
    }

    pub fn set_object_acl(&self, bucket: &str, key: &str, acl: Acl) -> Result<(), StoreError> {
        self.with_object_mut(bucket, key, |object| object.acl = acl)
    }

    /// PutObjectAcl with a version id: that version's ACL, the current one's untouched.
    pub fn set_version_acl(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        acl: Acl,
    ) -> Result<(), StoreError> {
        self.with_bucket_mut(bucket, |b| {
            b.version_mut(key, version_id)?.acl = acl;
            Ok(())
        })
    }

    /// Makes GetObjectAcl on this object answer AccessDenied (or readable again).
    pub fn set_acl_readable(&self, bucket: &str, key: &str, readable: bool) -> Result<(), StoreError> {
        self.with_object_mut(bucket, key, |object| object.acl_readable = readable)
    }

    /// Makes ListObjectsV2 on this bucket answer AccessDenied (or allowed again).
    pub fn set_listing_denied(&self, bucket: &str, denied: bool) -> Result<(), StoreError> {
        self.with_bucket_mut(bucket, |b| {
            b.listing_denied = denied;
            Ok(())
        })
    }

    /// Calls `visit` with each (key, object) in key order from `from` on, while it returns true.
    pub fn scan(
        &self,
        bucket: &str,
        from: Bound<&str>,
        mut visit: impl FnMut(&str, &StoredObject) -> bool,
    ) -> Result<(), StoreError> {
        let buckets = self.buckets.read();
        let b = buckets
            .get(bucket)
            .ok_or_else(|| StoreError::NoSuchBucket(bucket.to_owned()))?;
        if b.listing_denied {
            return Err(StoreError::ListAccessDenied(bucket.to_owned()));
        }
        for (key, object) in b.objects.range::<str, _>((from, Bound::Unbounded)) {
            if !visit(key, object) {
                break;
            }
        }
        Ok(())
    }

    /// Starts a multipart upload of `key`; the object appears only when it completes.
    pub fn create_upload(&self, bucket: &str, key: &str, acl: Acl) -> Result<String, StoreError> {
        if !self.bucket_exists(bucket) {
            return Err(StoreError::NoSuchBucket(bucket.to_owned()));
        }
        let id = format!("upload-{}", self.next_upload.fetch_add(1, Ordering::Relaxed));
        let upload = Upload {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            acl,
            parts: BTreeMap::new(),
        };
        self.uploads.lock().insert(id.clone(), upload);
        Ok(id)
    }

    /// Stores (or replaces) part `number` of the upload; returns its ETag (hex MD5).
    pub fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        let etag = format!("{:x}", Md5::digest(&body));
        let mut uploads = self.uploads.lock();
        upload_of(&mut uploads, bucket, key, id)?
            .parts
            .insert(number, (body, etag.clone()));
        Ok(etag)
    }

    /// Joins the named parts, in the order given, into the object, as S3 does: the numbers
    /// ascending, each part uploaded with that ETag, every part but the last at least
    /// [`MIN_PART_SIZE`]. The object's ETag is S3's multipart one (MD5 of the parts' MD5s, `-N`).
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        parts: &[(i32, String)],
    ) -> Result<String, StoreError> {
        let mut uploads = self.uploads.lock();
        let upload = upload_of(&mut uploads, bucket, key, id)?;
        if parts.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
            return Err(StoreError::InvalidPartOrder);
        }
        let mut body = Vec::new();
        let mut digests = Vec::new();
        for (index, (number, etag)) in parts.iter().enumerate() {
            let (part, md5) = upload
                .parts
                .get(number)
                .filter(|(_, md5)| md5 == etag.trim_matches('"'))
                .ok_or(StoreError::InvalidPart(*number))?;
            if index + 1 < parts.len() && part.len() < MIN_PART_SIZE {
                return Err(StoreError::EntityTooSmall(*number));
            }
            body.extend_from_slice(part);
            digests.extend(hex_bytes(md5));
        }
        let mut object = StoredObject::new(Bytes::from(body), upload.acl.clone());
        object.etag = format!("{:x}-{}", Md5::digest(&digests), parts.len());
        let etag = object.etag.clone();
        self.put_object(bucket, key, object)?;
        uploads.remove(id);
        Ok(etag)
    }

    pub fn abort_upload(&self, bucket: &str, key: &str, id: &str) -> Result<(), StoreError> {
        let mut uploads = self.uploads.lock();
        upload_of(&mut uploads, bucket, key, id)?;
        uploads.remove(id);
        Ok(())
    }

    /// Uploads started and neither completed nor aborted: a client that fails must abort.
    pub fn uploads_in_progress(&self) -> usize {
        self.uploads.lock().len()
    }

    pub fn object_count(&self, bucket: &str) -> Result<usize, StoreError> {
        let buckets = self.buckets.read();
        let b = buckets
            .get(bucket)
            .ok_or_else(|| StoreError::NoSuchBucket(bucket.to_owned()))?;
        Ok(b.objects.len())
    }

    fn with_bucket_mut<T>(
        &self,
        bucket: &str,
        f: impl FnOnce(&mut Bucket) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut buckets = self.buckets.write();
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| StoreError::NoSuchBucket(bucket.to_owned()))?;
        f(b)
    }

    fn with_object_mut(&self, bucket: &str, key: &str, f: impl FnOnce(&mut StoredObject)) -> Result<(), StoreError> {
        self.with_bucket_mut(bucket, |b| {
            f(b.version_mut(key, None)?);
            Ok(())
        })
    }
}

impl Bucket {
    /// Where the object `version_id` names is kept (the current one without an id): S3's
    /// NoSuchKey, NoSuchVersion, or MethodNotAllowed (`DeleteMarker`) when it is no object.
    fn place(&self, key: &str, version_id: Option<&str>) -> Result<Place, StoreError> {
        let current = self.objects.get(key);
        let Some(wanted) = version_id else {
            return current
                .map(|_| Place::Current)
                .ok_or_else(|| StoreError::NoSuchKey(key.to_owned()));
        };
        if current.is_some_and(|o| same_version(o.version_id.as_deref(), wanted)) {
            return Ok(Place::Current);
        }
        let versions = self.noncurrent.get(key).map_or(&[][..], Vec::as_slice);
        match versions
            .iter()
            .position(|v| same_version(v.version_id(), wanted))
            .map(|at| (at, &versions[at]))
        {
            Some((at, Noncurrent::Object(_))) => Ok(Place::Noncurrent(at)),
            Some((_, Noncurrent::DeleteMarker { .. })) => {
                Err(StoreError::DeleteMarker(key.to_owned(), wanted.to_owned()))
            }
            None => Err(StoreError::NoSuchVersion(key.to_owned(), wanted.to_owned())),
        }
    }

    fn version(&self, key: &str, version_id: Option<&str>) -> Result<&StoredObject, StoreError> {
        let place = self.place(key, version_id)?;
        let object = match place {
            Place::Current => self.objects.get(key),
            Place::Noncurrent(at) => match self.noncurrent.get(key).and_then(|versions| versions.get(at)) {
                Some(Noncurrent::Object(object)) => Some(object),
                _ => None,
            },
        };
        object.ok_or_else(|| StoreError::NoSuchKey(key.to_owned()))
    }

    fn version_mut(&mut self, key: &str, version_id: Option<&str>) -> Result<&mut StoredObject, StoreError> {
        let place = self.place(key, version_id)?;
        let object = match place {
            Place::Current => self.objects.get_mut(key),
            Place::Noncurrent(at) => match self.noncurrent.get_mut(key).and_then(|versions| versions.get_mut(at)) {
                Some(Noncurrent::Object(object)) => Some(object),
                _ => None,
            },
        };
        object.ok_or_else(|| StoreError::NoSuchKey(key.to_owned()))
    }

    /// With no current object, the newest noncurrent version becomes current if it is an
    /// object (not a delete marker).
    fn promote_newest(&mut self, key: &str) {
        if !self.objects.contains_key(key)
            && let Some(versions) = self.noncurrent.get_mut(key)
            && matches!(versions.first(), Some(Noncurrent::Object(_)))
            && let Noncurrent::Object(next) = versions.remove(0)
        {
            self.objects.insert(key.to_owned(), next);
        }
        self.noncurrent.retain(|_, versions| !versions.is_empty());
    }

    /// Keeps the version a write or delete replaced as `key`'s newest noncurrent one. With
    /// versioning suspended the "null" version is overwritten rather than kept: the replaced
    /// one if it was null, and any older null version.
    fn keep_noncurrent(&mut self, key: &str, replaced: Option<Noncurrent>, versioning: Versioning) {
        let versions = self.noncurrent.entry(key.to_owned()).or_default();
        if versioning == Versioning::Suspended {
            versions.retain(|version| version.version_id().is_some());
        }
        if let Some(replaced) = replaced
            && !(versioning == Versioning::Suspended && replaced.version_id().is_none())
        {
            versions.insert(0, replaced);
        }
        if versions.is_empty() {
            self.noncurrent.remove(key);
        }
    }
}

fn listed(key: &str, object: &StoredObject) -> VersionEntry {
    VersionEntry {
        key: key.to_owned(),
        version_id: object.version_id.clone().unwrap_or_else(|| NULL_VERSION.to_owned()),
        is_latest: false,
        last_modified: object.last_modified,
        object: Some(ListedVersion {
            etag: object.etag.clone(),
            size: i64::try_from(object.body.len()).unwrap_or(i64::MAX),
        }),
    }
}

/// The upload `id`, if it is one of `bucket`'s for `key`: S3 answers NoSuchUpload otherwise.
fn upload_of<'a>(
    uploads: &'a mut BTreeMap<String, Upload>,
    bucket: &str,
    key: &str,
    id: &str,
) -> Result<&'a mut Upload, StoreError> {
    uploads
        .get_mut(id)
        .filter(|u| u.bucket == bucket && u.key == key)
        .ok_or_else(|| StoreError::NoSuchUpload(id.to_owned()))
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}
