//! The in-memory object store behind the endpoint. Tests and the seeder use it directly
//! (no HTTP) to arrange a bucket; the S3 service reads and writes it per request.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::SystemTime;

use bytes::Bytes;
use md5::{Digest, Md5};
use parking_lot::RwLock;

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
        }
    }
}

#[derive(Debug, Default)]
struct Bucket {
    objects: BTreeMap<String, StoredObject>,
    /// When true, ListObjectsV2 answers AccessDenied: a role without s3:ListBucket.
    listing_denied: bool,
}

/// Buckets and their objects, shared by every connection.
#[derive(Debug, Default)]
pub struct Store {
    buckets: RwLock<BTreeMap<String, Bucket>>,
}

impl Store {
    pub fn create_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        let mut buckets = self.buckets.write();
        if buckets.contains_key(bucket) {
            return Err(StoreError::BucketAlreadyOwnedByYou(bucket.to_owned()));
        }
        buckets.insert(bucket.to_owned(), Bucket::default());
        Ok(())
    }

    pub fn bucket_exists(&self, bucket: &str) -> bool {
        self.buckets.read().contains_key(bucket)
    }

    pub fn delete_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        let mut buckets = self.buckets.write();
        match buckets.get(bucket) {
            None => Err(StoreError::NoSuchBucket(bucket.to_owned())),
            Some(b) if !b.objects.is_empty() => Err(StoreError::BucketNotEmpty(bucket.to_owned())),
            Some(_) => {
                buckets.remove(bucket);
                Ok(())
            }
        }
    }

    pub fn put_object(&self, bucket: &str, key: &str, object: StoredObject) -> Result<(), StoreError> {
        self.with_bucket_mut(bucket, |b| {
            b.objects.insert(key.to_owned(), object);
            Ok(())
        })
    }

    /// Deleting a key that does not exist succeeds, as on S3.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.with_bucket_mut(bucket, |b| {
            b.objects.remove(key);
            Ok(())
        })
    }

    /// The object's body and ETag.
    pub fn object(&self, bucket: &str, key: &str) -> Result<(Bytes, String), StoreError> {
        self.with_object(bucket, key, |object| Ok((object.body.clone(), object.etag.clone())))
    }

    pub fn object_acl(&self, bucket: &str, key: &str) -> Result<Acl, StoreError> {
        self.with_object(bucket, key, |object| {
            if !object.acl_readable {
                return Err(StoreError::AclAccessDenied(key.to_owned()));
            }
            Ok(object.acl.clone())
        })
    }

    fn with_object<T>(
        &self,
        bucket: &str,
        key: &str,
        f: impl FnOnce(&StoredObject) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let buckets = self.buckets.read();
        let b = buckets
            .get(bucket)
            .ok_or_else(|| StoreError::NoSuchBucket(bucket.to_owned()))?;
        let object = b
            .objects
            .get(key)
            .ok_or_else(|| StoreError::NoSuchKey(key.to_owned()))?;
        f(object)
    }

    pub fn set_object_acl(&self, bucket: &str, key: &str, acl: Acl) -> Result<(), StoreError> {
        self.with_object_mut(bucket, key, |object| object.acl = acl)
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
            let object = b
                .objects
                .get_mut(key)
                .ok_or_else(|| StoreError::NoSuchKey(key.to_owned()))?;
            f(object);
            Ok(())
        })
    }
}
