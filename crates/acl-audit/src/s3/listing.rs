//! Listing a target's keys, a ListObjectsV2 page at a time, or every version of them, a
//! ListObjectVersions page at a time. A listing walks its key ranges in order, one request at
//! a time: the whole key space, or the ranges a state machine's part or a truncated run left
//! ([`Cursor::Ranges`]).

use std::collections::VecDeque;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::EncodingType;

use crate::model::{Cursor, KeyRange, ObjectRef, Resume, Target};
use crate::s3::error::ListError;

/// ListObjectsV2's and ListObjectVersions' largest page.
const MAX_PAGE: usize = 1000;

/// The keys under a target's prefix, a page at a time, up to its `max_objects`, from the
/// start or from where a token says; with `include_versions`, every version of them instead
/// (delete markers counted, not yielded). Only one page is held at a time, so a bucket of any
/// size is listed in bounded memory.
pub struct KeyPages {
    client: Client,
    bucket: String,
    prefix: Option<String>,
    versions: bool,
    /// The ranges still to list, in key order; the first goes on after its `after`. A listing
    /// of versions has one, to the end, its `after` ListObjectVersions' key marker.
    ranges: VecDeque<KeyRange>,
    /// For a listing of versions: the version of the key marker it goes on after.
    version_id: Option<String>,
    /// Keys (or versions) this listing may still yield under `max_objects`.
    budget: usize,
    delete_markers: usize,
    end: Option<ListingEnd>,
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

    /// The keys a truncated run (or a part) left to list: none if it had listed them all.
    pub fn resuming(client: &Client, target: &Target, resume: Option<&Resume>) -> Self {
        let (ranges, version_id) = match resume.map(|resume| &resume.cursor) {
            Some(Cursor::After { key, version_id }) => (
                vec![KeyRange {
                    after: key.clone(),
                    through: None,
                }],
                version_id.clone(),
            ),
            Some(Cursor::Ranges(ranges)) => (ranges.clone(), None),
            Some(cursor) if cursor.is_done() => (Vec::new(), None),
            _ => (vec![KeyRange::ALL], None),
        };
        KeyPages {
            client: client.clone(),
            bucket: target.bucket.clone(),
            prefix: target.prefix.clone(),
            versions: target.include_versions || resume.is_some_and(|resume| resume.versions),
            end: ranges.is_empty().then_some(ListingEnd::Complete),
            ranges: ranges.into(),
            version_id,
            budget: target.max_objects.unwrap_or(usize::MAX),
            delete_markers: 0,
        }
    }

    /// The next page's keys (or versions); `None` once the listing has ended (see
    /// [`KeyPages::end`]). Cancel-safe: a page not yet returned is asked for again.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ObjectRef>>, ListError> {
        while self.end.is_none() {
            let keys = if self.versions {
                self.next_versions().await?
            } else {
                self.next_keys().await?
            };
            if !keys.is_empty() {
                return Ok(Some(keys));
            }
        }
        Ok(None)
    }

    /// The most a page should list: a small budget need not transfer a full page.
    fn page_size(&self) -> i32 {
        i32::try_from(self.budget.min(MAX_PAGE)).unwrap_or(1000)
    }

    /// One ListObjectsV2 page of the first range, its keys within the range and the budget.
    async fn next_keys(&mut self) -> Result<Vec<ObjectRef>, ListError> {
        let page_size = self.page_size();
        let Some(range) = self.ranges.front_mut() else {
            self.end = Some(ListingEnd::Complete);
            return Ok(Vec::new());
        };
        let RangePage {
            mut keys,
            past_the_end,
            more,
        } = list_range(&self.client, &self.bucket, self.prefix.as_deref(), range, page_size).await?;
        if more && keys.is_empty() && !past_the_end {
            return Err(ListError::Failed {
                bucket: self.bucket.clone(),
                code: "EmptyTruncatedPage".to_owned(),
                detail: "ListObjectsV2 said the listing goes on but listed no key".to_owned(),
            });
        }
        let cut_short = keys.len() > self.budget;
        keys.truncate(self.budget);
        self.budget -= keys.len();
        if let Some(last) = keys.last() {
            range.after = Some(last.clone());
        }
        if !cut_short && (past_the_end || !more) {
            self.ranges.pop_front();
        }
        self.end = if self.ranges.is_empty() {
            Some(ListingEnd::Complete)
        } else if self.budget == 0 {
            Some(ListingEnd::Limit)
        } else {
            None
        };
        Ok(keys.into_iter().map(ObjectRef::from).collect())
    }

    /// One ListObjectVersions page, asked for no more entries than the budget allows (delete
    /// markers count against a page's size but not the budget), so that the page never has to
    /// be cut and S3's own next markers say where the listing goes on.
    async fn next_versions(&mut self) -> Result<Vec<ObjectRef>, ListError> {
        let after = self.ranges.front().and_then(|range| range.after.clone());
        // Boxed: an SDK request future is kilobytes, kept out of every caller's own future.
        let page = Box::pin(
            self.client
                .list_object_versions()
                .bucket(&self.bucket)
                .set_prefix(self.prefix.clone())
                .set_version_id_marker(after.as_ref().and(self.version_id.clone()))
                .set_key_marker(after)
                .max_keys(self.page_size())
                .encoding_type(EncodingType::Url)
                .send(),
        )
        .await
        .map_err(|err| ListError::from_sdk(&self.bucket, "s3:ListBucketVersions", err))?;
        let encoded = page.encoding_type() == Some(&EncodingType::Url);
        let decode = |key: &str| decoded_key(&self.bucket, key, encoded);
        let mut versions = Vec::with_capacity(page.versions().len());
        for version in page.versions() {
            if let Some(key) = version.key() {
                // S3 names a version written before versioning was enabled "null".
                versions.push(ObjectRef::version(decode(key)?, version.version_id().unwrap_or("null")));
            }
        }
        self.delete_markers += page.delete_markers().len();
        self.budget = self.budget.saturating_sub(versions.len());
        match (page.is_truncated().unwrap_or(false), page.next_key_marker()) {
            (true, Some(key)) => {
                self.ranges = [KeyRange {
                    after: Some(decode(key)?),
                    through: None,
                }]
                .into();
                self.version_id = page.next_version_id_marker().map(str::to_owned);
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
            (false, _) => {
                self.ranges.clear();
                self.end = Some(ListingEnd::Complete);
            }
        }
        Ok(versions)
    }

    /// True when this listing yields versions (ListObjectVersions).
    pub fn lists_versions(&self) -> bool {
        self.versions
    }

    /// Delete markers listed so far: counted, never fetched (they have no ACL).
    pub fn delete_markers(&self) -> usize {
        self.delete_markers
    }

    pub fn end(&self) -> Option<ListingEnd> {
        self.end
    }

    /// The token a later run goes on from: `keys` first, then what this listing left.
    pub fn resume(&self, target: &Target, keys: Vec<ObjectRef>) -> Resume {
        let cursor = match self.ranges.iter().cloned().collect::<Vec<_>>().as_slice() {
            [] => Cursor::Listed,
            // One range to the end is what a listing from one key on says: say it so.
            [KeyRange { after, through: None }] => Cursor::After {
                key: after.clone(),
                version_id: self.version_id.clone(),
            },
            ranges => Cursor::Ranges(ranges.to_vec()),
        };
        Resume {
            bucket: target.bucket.clone(),
            prefix: target.prefix.clone(),
            versions: self.versions,
            keys,
            cursor,
        }
    }
}

/// A ListObjectsV2 page read for one range: its keys within the range, whether it went past
/// the range's end (a page is in key order: keys past the end are the next range's), and
/// whether S3 said more keys follow the page.
pub(crate) struct RangePage {
    pub keys: Vec<String>,
    pub past_the_end: bool,
    pub more: bool,
}

/// One ListObjectsV2 page of `range` under `prefix`, up to `max_keys` keys. Keys come
/// URL-encoded (`encoding-type=url`): a key may hold characters XML 1.0 cannot carry (U+0001,
/// U+FFFE, ...), and S3 answers such a listing unencoded with XML no parser reads, so one
/// object could stop a bucket's audit. They are decoded only when the answer says it encoded
/// them, so an endpoint that ignores the parameter is read as it answers.
pub(crate) async fn list_range(
    client: &Client,
    bucket: &str,
    prefix: Option<&str>,
    range: &KeyRange,
    max_keys: i32,
) -> Result<RangePage, ListError> {
    // Boxed: an SDK request future is kilobytes, kept out of every caller's own future.
    let page = Box::pin(
        client
            .list_objects_v2()
            .bucket(bucket)
            .set_prefix(prefix.map(str::to_owned))
            .set_start_after(range.after.clone())
            .max_keys(max_keys)
            .encoding_type(EncodingType::Url)
            .send(),
    )
    .await
    .map_err(|err| ListError::from_sdk(bucket, "s3:ListBucket", err))?;
    let encoded = page.encoding_type() == Some(&EncodingType::Url);
    let mut keys = Vec::with_capacity(page.contents().len());
    for object in page.contents() {
        if let Some(key) = object.key() {
            keys.push(decoded_key(bucket, key, encoded)?);
        }
    }
    let within = match &range.through {
        Some(through) => keys.partition_point(|key| key <= through),
        None => keys.len(),
    };
    let past_the_end = within < keys.len();
    keys.truncate(within);
    Ok(RangePage {
        keys,
        past_the_end,
        more: page.is_truncated().unwrap_or(false),
    })
}

/// A listed key as S3 named it, from its `encoding-type=url` form when `encoded`.
fn decoded_key(bucket: &str, key: &str, encoded: bool) -> Result<String, ListError> {
    if !encoded {
        return Ok(key.to_owned());
    }
    url_decoded(key).map_err(|reason| ListError::Failed {
        bucket: bucket.to_owned(),
        code: "UndecodableKey".to_owned(),
        detail: reason,
    })
}

/// A key URL-encoded as S3 encodes listings and inventories: as form data, `+` for a space and
/// `%XX` for other bytes (a `+` of the key itself is `%2B`).
pub(crate) fn url_decoded(key: &str) -> Result<String, String> {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|err| {
            format!(
                "the key {:?} is not URL-encoded UTF-8: {err}",
                crate::model::excerpt(key)
            )
        })
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
