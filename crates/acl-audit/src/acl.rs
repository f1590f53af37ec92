//! The two S3 primitives every strategy shares: list the bucket's keys, fetch one ACL.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object_acl::GetObjectAclOutput;
use aws_sdk_s3::operation::list_objects_v2::{ListObjectsV2Error, ListObjectsV2Output};
use aws_sdk_s3::types::{self as s3_types, Type};
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use serde::{Deserialize, Serialize};

use crate::error::AuditError;
use crate::target::{Resume, Target};

/// One object's ACL as GetObjectAcl returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAcl {
    pub key: String,
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
    NotFetched(String),
}

impl AclOutcome {
    pub fn key(&self) -> &str {
        match self {
            AclOutcome::Fetched(acl) => &acl.key,
            AclOutcome::Failed(failure) => &failure.key,
            AclOutcome::NotFetched(key) => key,
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
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>, AuditError> {
        if self.end.is_some() {
            return Ok(None);
        }
        let Some(page) = self.pages.next().await else {
            self.end = Some(ListingEnd::Complete);
            return Ok(None);
        };
        let page = page.map_err(|err| AuditError::from_list_error(&self.bucket, err))?;
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

pub async fn list_keys(client: &Client, target: &Target) -> Result<Listing, AuditError> {
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

/// One GetObjectAcl call; a failure is a value, never an early return for the whole run.
pub async fn fetch_acl(client: &Client, bucket: &str, key: String) -> FetchResult {
    // The SDK's request future is about 5 KB; boxed, it exists only while the call is under
    // way, and a join-all over 100 000 keys holds 100 000 small futures rather than 500 MB.
    let request = Box::pin(client.get_object_acl().bucket(bucket).key(&key).send());
    match request.await {
        Ok(output) => Ok(object_acl(key, &output)),
        Err(err) => Err(ObjectFailure {
            code: error_code(&err),
            message: error_message(&err),
            key,
        }),
    }
}

fn object_acl(key: String, output: &GetObjectAclOutput) -> ObjectAcl {
    ObjectAcl {
        key,
        owner_id: output.owner().and_then(|owner| owner.id()).map(str::to_owned),
        grants: output.grants().iter().map(grant).collect(),
    }
}

fn grant(grant: &s3_types::Grant) -> Grant {
    let grantee = match grant.grantee() {
        Some(g) => match (g.r#type(), g.id(), g.uri(), g.email_address()) {
            (Type::CanonicalUser, Some(id), _, _) => Grantee::CanonicalUser { id: id.to_owned() },
            (Type::Group, _, Some(uri), _) => Grantee::Group { uri: uri.to_owned() },
            (Type::AmazonCustomerByEmail, _, _, Some(address)) => Grantee::Email {
                address: address.to_owned(),
            },
            _ => Grantee::Other {
                description: format!("{g:?}"),
            },
        },
        None => Grantee::Other {
            description: "grant without a grantee".to_owned(),
        },
    };
    Grant {
        grantee,
        permission: grant.permission().map_or("UNKNOWN", |p| p.as_str()).to_owned(),
    }
}

/// S3's own words when it answered (`NoSuchKey: The specified key does not exist.`), else
/// the whole error chain: "dispatch failure" alone tells a user nothing.
pub(crate) fn error_message<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => format!("{code}: (S3 sent no message)"),
        (None, _) => DisplayErrorContext(err).to_string(),
    }
}

/// S3's error code when S3 answered, else what kind of failure kept it from answering.
pub(crate) fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> String {
    if let Some(code) = err.code() {
        return code.to_owned();
    }
    match err {
        SdkError::TimeoutError(_) => "Timeout",
        SdkError::DispatchFailure(_) => "DispatchFailure",
        SdkError::ResponseError(_) => "ResponseError",
        SdkError::ConstructionFailure(_) => "ConstructionFailure",
        _ => "Unknown",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_acl_fetch_is_small_so_a_huge_join_all_fits_in_memory() {
        let client = crate::client::client_for_endpoint("http://127.0.0.1:9", "key", "secret");
        let pending = fetch_acl(&client, "bucket", "key".to_owned());
        // 100 000 of them in 25 MB at most.
        assert!(
            std::mem::size_of_val(&pending) <= 256,
            "{} bytes",
            std::mem::size_of_val(&pending)
        );
    }
}
