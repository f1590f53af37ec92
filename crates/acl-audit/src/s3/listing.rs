//! Listing a bucket's keys, a ListObjectsV2 page at a time, or every version of them, a
//! ListObjectVersions page at a time.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::list_objects_v2::{ListObjectsV2Error, ListObjectsV2Output};
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::http::Response as HttpResponse;

use crate::model::{Cursor, ObjectRef, Resume, Target};
use crate::s3::error::ListError;

/// ListObjectsV2's and ListObjectVersions' largest page.
const MAX_PAGE: usize = 1000;

/// The keys under a target's prefix, a ListObjectsV2 page at a time, up to its `max_objects`,
/// from the start or after the key a resumed run names; with `include_versions`, every
/// version of them instead (delete markers counted, not yielded). Only one page is held at a
/// time, so a bucket of any size is listed in bounded memory.
pub struct KeyPages {
    bucket: String,
    source: Source,
    /// Keys (or versions) this listing may still yield under `max_objects`.
    budget: usize,
    last_key: Option<String>,
    /// For a listing of versions: the version of `last_key` it goes on after.
    last_version_id: Option<String>,
    delete_markers: usize,
    end: Option<ListingEnd>,
}

enum Source {
    Current(PaginationStream<Result<ListObjectsV2Output, SdkError<ListObjectsV2Error, HttpResponse>>>),
    /// ListObjectVersions has no paginator in the SDK (its cursor is two markers): the pages
    /// are asked for here, from `last_key` and `last_version_id` on.
    Versions {
        client: Client,
        prefix: Option<String>,
    },
}

/// Why a listing yields no more pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingEnd {
    /// The bucket (or prefix) has no more keys.
    Complete,
    /// `max_objects` keys have been listed; the bucket holds more.
    Limit,
}

impl KeyPages {
    pub fn new(client: &Client, target: &Target) -> Self {
        Self::resuming(client, target, None)
    }

    /// The keys a truncated run left to list: those after its last, or none if it had
    /// listed them all.
    pub fn resuming(client: &Client, target: &Target, resume: Option<&Resume>) -> Self {
        let (start_after, version_id_marker) = match resume.map(|resume| &resume.cursor) {
            Some(Cursor::After { key, version_id }) => (key.clone(), version_id.clone()),
            _ => (None, None),
        };
        let versions = target.include_versions || resume.is_some_and(|resume| resume.versions);
        let source = if versions {
            Source::Versions {
                client: client.clone(),
                prefix: target.prefix.clone(),
            }
        } else {
            Source::Current(
                client
                    .list_objects_v2()
                    .bucket(&target.bucket)
                    .set_prefix(target.prefix.clone())
                    .set_start_after(start_after.clone())
                    // A small limit need not transfer a full 1 000-key page.
                    .set_max_keys(target.max_objects.and_then(|n| i32::try_from(n.min(MAX_PAGE)).ok()))
                    .into_paginator()
                    .send(),
            )
        };
        KeyPages {
            bucket: target.bucket.clone(),
            source,
            budget: target.max_objects.unwrap_or(usize::MAX),
            last_key: start_after,
            last_version_id: version_id_marker,
            delete_markers: 0,
            end: resume
                .filter(|resume| resume.cursor.is_done())
                .map(|_| ListingEnd::Complete),
        }
    }

    /// The next page's keys (or versions); `None` once the listing has ended (see
    /// [`KeyPages::end`]).
    pub async fn next_page(&mut self) -> Result<Option<Vec<ObjectRef>>, ListError> {
        if self.end.is_some() {
            return Ok(None);
        }
        let page = match &mut self.source {
            Source::Current(pages) => pages.next().await,
            Source::Versions { client, prefix } => {
                let (client, prefix) = (client.clone(), prefix.clone());
                return self.next_versions(&client, prefix).await.map(Some);
            }
        };
        let Some(page) = page else {
            self.end = Some(ListingEnd::Complete);
            return Ok(None);
        };
        let page = page.map_err(|err| ListError::from_sdk(&self.bucket, "s3:ListBucket", err))?;
        let mut keys: Vec<ObjectRef> = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(ObjectRef::from)
            .collect();
        let more = page.is_truncated().unwrap_or(false);
        if keys.len() >= self.budget {
            keys.truncate(self.budget);
            self.end = Some(if more || keys.len() < page.contents().len() {
                ListingEnd::Limit
            } else {
                ListingEnd::Complete
            });
        } else if !more {
            self.end = Some(ListingEnd::Complete);
        }
        self.budget -= keys.len();
        if let Some(last) = keys.last() {
            self.last_key = Some(last.key.clone());
        }
        Ok(Some(keys))
    }

    /// One ListObjectVersions page, asked for no more entries than the budget allows (delete
    /// markers count against a page's size but not the budget), so that the page never has to
    /// be cut and S3's own next markers say where the listing goes on.
    async fn next_versions(&mut self, client: &Client, prefix: Option<String>) -> Result<Vec<ObjectRef>, ListError> {
        // Boxed: an SDK request future is kilobytes, kept out of every caller's own future.
        let page = Box::pin(
            client
                .list_object_versions()
                .bucket(&self.bucket)
                .set_prefix(prefix)
                .set_key_marker(self.last_key.clone())
                .set_version_id_marker(self.last_key.as_ref().and(self.last_version_id.clone()))
                .max_keys(i32::try_from(self.budget.min(MAX_PAGE)).unwrap_or(1000))
                .send(),
        )
        .await
        .map_err(|err| ListError::from_sdk(&self.bucket, "s3:ListBucketVersions", err))?;
        let versions: Vec<ObjectRef> = page
            .versions()
            .iter()
            .filter_map(|version| {
                // S3 names a version written before versioning was enabled "null".
                Some(ObjectRef::version(
                    version.key()?,
                    version.version_id().unwrap_or("null"),
                ))
            })
            .collect();
        self.delete_markers += page.delete_markers().len();
        self.budget = self.budget.saturating_sub(versions.len());
        let more = page.is_truncated().unwrap_or(false);
        match (more, page.next_key_marker()) {
            (true, Some(key)) => {
                self.last_key = Some(key.to_owned());
                self.last_version_id = page.next_version_id_marker().map(str::to_owned);
                if self.budget == 0 {
                    self.end = Some(ListingEnd::Limit);
                }
            }
            (true, None) => {
                return Err(ListError::Failed {
                    bucket: self.bucket.clone(),
                    code: "MissingNextKeyMarker".to_owned(),
                    detail: "ListObjectVersions said the listing goes on but gave no NextKeyMarker".to_owned(),
                });
            }
            (false, _) => self.end = Some(ListingEnd::Complete),
        }
        Ok(versions)
    }

    /// The last key listed so far: a later listing starts after it (for versions: after
    /// [`KeyPages::last_version_id`] of it).
    pub fn last_key(&self) -> Option<&str> {
        self.last_key.as_deref()
    }

    /// A listing of versions: the version of [`KeyPages::last_key`] it goes on after.
    pub fn last_version_id(&self) -> Option<&str> {
        self.last_version_id.as_deref()
    }

    /// True when this listing yields versions (ListObjectVersions).
    pub fn lists_versions(&self) -> bool {
        matches!(self.source, Source::Versions { .. })
    }

    /// Delete markers listed so far: counted, never fetched (they have no ACL).
    pub fn delete_markers(&self) -> usize {
        self.delete_markers
    }

    pub fn end(&self) -> Option<ListingEnd> {
        self.end
    }
}

/// Every key of a target (its current objects, whatever `include_versions` says), in one
/// vector: for callers that need them all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub keys: Vec<String>,
    /// False when `max_objects` stopped the listing before its end.
    pub complete: bool,
}

pub async fn list_keys(client: &Client, target: &Target) -> Result<Listing, ListError> {
    let target = Target {
        include_versions: false,
        ..target.clone()
    };
    let mut pages = KeyPages::new(client, &target);
    let mut keys = Vec::new();
    while let Some(page) = pages.next_page().await? {
        keys.extend(page.into_iter().map(|object| object.key));
    }
    Ok(Listing {
        keys,
        complete: pages.end() == Some(ListingEnd::Complete),
    })
}
