//! Listing a bucket's keys, a ListObjectsV2 page at a time.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::list_objects_v2::{ListObjectsV2Error, ListObjectsV2Output};
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::http::Response as HttpResponse;

use crate::model::{Resume, Target};
use crate::s3::error::ListError;

/// The keys under a target's prefix, a ListObjectsV2 page at a time, up to its `max_objects`,
/// from the start or after the key a resumed run names. Only one page is held at a time, so
/// a bucket of any size is listed in bounded memory.
pub struct KeyPages {
    bucket: String,
    pages: PaginationStream<Result<ListObjectsV2Output, SdkError<ListObjectsV2Error, HttpResponse>>>,
    /// Keys this listing may still yield under `max_objects`.
    budget: usize,
    last_key: Option<String>,
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

    /// The keys a truncated run left to list: those after its last, or none if it had
    /// listed them all.
    pub fn resuming(client: &Client, target: &Target, resume: Option<&Resume>) -> Self {
        let start_after = resume.and_then(|resume| resume.start_after.clone());
        let pages = client
            .list_objects_v2()
            .bucket(&target.bucket)
            .set_prefix(target.prefix.clone())
            .set_start_after(start_after.clone())
            // A small limit need not transfer a full 1 000-key page.
            .set_max_keys(target.max_objects.and_then(|n| i32::try_from(n.min(1000)).ok()))
            .into_paginator()
            .send();
        KeyPages {
            bucket: target.bucket.clone(),
            pages,
            budget: target.max_objects.unwrap_or(usize::MAX),
            last_key: start_after,
            end: resume
                .filter(|resume| resume.listing_complete)
                .map(|_| ListingEnd::Complete),
        }
    }

    /// The next page's keys; `None` once the listing has ended (see [`KeyPages::end`]).
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>, ListError> {
        if self.end.is_some() {
            return Ok(None);
        }
        let Some(page) = self.pages.next().await else {
            self.end = Some(ListingEnd::Complete);
            return Ok(None);
        };
        let page = page.map_err(|err| ListError::from_sdk(&self.bucket, err))?;
        let mut keys: Vec<String> = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(str::to_owned)
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
            self.last_key = Some(last.clone());
        }
        Ok(Some(keys))
    }

    /// The last key listed so far: a later listing starts after it.
    pub fn last_key(&self) -> Option<&str> {
        self.last_key.as_deref()
    }

    pub fn end(&self) -> Option<ListingEnd> {
        self.end
    }
}

/// Every key of a target, in one vector: for callers that need them all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub keys: Vec<String>,
    /// False when `max_objects` stopped the listing before its end.
    pub complete: bool,
}

pub async fn list_keys(client: &Client, target: &Target) -> Result<Listing, ListError> {
    let mut pages = KeyPages::new(client, target);
    let mut keys = Vec::new();
    while let Some(page) = pages.next_page().await? {
        keys.extend(page);
    }
    Ok(Listing {
        keys,
        complete: pages.end() == Some(ListingEnd::Complete),
    })
}
