//! A scheduled run that stops before the end of its target leaves its resume token under
//! `FINDINGS_URI`, and the next run of the same target takes it up. An asynchronous
//! invocation (EventBridge Scheduler's) discards the report it returns unless a destination
//! reads it, so without this the tail of a bucket too large for one invocation is never
//! audited: every run would start again from the same fixed input. A run that reads an S3
//! Inventory report does the same with its place in the report.

use std::fmt::Write as _;

use acl_audit::model::S3Location;
use acl_audit::s3::error::{error_code, error_message};
use acl_audit::s3::read::MOST_READ_BYTES;
use acl_audit::s3::upload::{Artifact, NotWritten, UploadError, put_object};
use acl_audit::{Resume, StrategyKind, Target};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use sha2::{Digest as _, Sha256};

/// Where the token of the runs of a function of `kind` over `target` lives:
/// `<base>resume/<strategy>/<bucket>/<what>.json`, `<what>` naming the prefix by its SHA-256
/// (a fixed length, so that a prefix of any length, up to S3's 1 024 bytes, gives a key within
/// S3's limit and one path segment) and whether versions are listed, since each is a target of
/// its own. The token itself names its prefix, and one that does not fit is not taken up. The strategy is in it because the three functions share `FINDINGS_URI`,
/// and two of them scheduled over one bucket must not take up each other's token.
pub fn token_location(base: &S3Location, kind: StrategyKind, target: &Target) -> S3Location {
    in_base(base, kind, &target.bucket, &target_name(target))
}

/// A target's name within its bucket: `all`, or `prefix-<SHA-256 of the prefix>`, with
/// `-versions` when versions are listed.
pub fn target_name(target: &Target) -> String {
    let mut what = match target.prefix.as_deref().filter(|p| !p.is_empty()) {
        None => "all".to_owned(),
        Some(key_prefix) => Sha256::digest(key_prefix.as_bytes())
            .iter()
            .fold("prefix-".to_owned(), |mut out, byte| {
                let _ = write!(out, "{byte:02x}");
                out
            }),
    };
    if target.include_versions {
        what.push_str("-versions");
    }
    what
}

/// Where the token of the runs of a function of `kind` that read `bucket`'s inventory reports
/// lives: `<base>resume/<strategy>/<bucket>/inventory.json`. One for every report of the
/// bucket, since a run goes on in the report the token names only while that is still the one
/// it would read.
pub fn inventory_token_location(base: &S3Location, kind: StrategyKind, bucket: &str) -> S3Location {
    in_base(base, kind, bucket, "inventory")
}

fn in_base(base: &S3Location, kind: StrategyKind, bucket: &str, what: &str) -> S3Location {
    base.join(&format!("resume/{}/{bucket}/{what}.json", kind.name()))
}

/// The token stored for `target`, if there is one that fits it. A token that cannot be read
/// or does not fit is logged and ignored: the run then starts from the beginning, which loses
/// nothing, and its own outcome replaces the token.
pub async fn load(client: &Client, location: &S3Location, target: &Target) -> Option<Resume> {
    let token: Resume = read(client, location).await?;
    if token.bucket == target.bucket
        && token.prefix == target.prefix
        && token.versions == target.include_versions
        && token.cursor.inventory().is_none()
    {
        return Some(token);
    }
    tracing::warn!(token = %location, "stored resume token is for another target: starting from the beginning");
    None
}

/// The token stored for the inventory runs of `bucket`: a place in one of its reports.
pub async fn load_inventory(client: &Client, location: &S3Location, bucket: &str) -> Option<Resume> {
    let token: Resume = read(client, location).await?;
    if token.bucket == bucket && token.cursor.inventory().is_some() {
        return Some(token);
    }
    tracing::warn!(token = %location, "stored resume token is not a place in this bucket's inventory: starting from the beginning");
    None
}

/// Where the scheduled sweeps of `scope` (`account-<id>` or `organization-<id>`, the caller's
/// account) by a function of `kind` store their place: `<base>resume/<strategy>/<scope>/sweep.json`.
pub fn sweep_place_location(base: &S3Location, kind: StrategyKind, scope: &str) -> S3Location {
    in_base(base, kind, scope, "sweep")
}

/// The place an earlier sweep stored (an account's `SweepPlace`, an organization's
/// `OrganizationPlace`); `None`, logged, for one that cannot be read.
pub async fn load_sweep_place<T: serde::de::DeserializeOwned>(client: &Client, location: &S3Location) -> Option<T> {
    read(client, location).await
}

/// The token at `location`; `None`, logged, for one that cannot be read or is not a token.
async fn read<T: serde::de::DeserializeOwned>(client: &Client, location: &S3Location) -> Option<T> {
    let object = match client
        .get_object()
        .bucket(&location.bucket)
        .key(&location.prefix)
        .send()
        .await
    {
        Ok(object) => object,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return None,
        Err(err) => {
            tracing::warn!(token = %location, error = %DisplayErrorContext(&err), "stored resume token not read: starting from the beginning");
            return None;
        }
    };
    let size = object.content_length().unwrap_or(0);
    if u64::try_from(size).unwrap_or(0) > MOST_READ_BYTES {
        tracing::warn!(token = %location, size, most = MOST_READ_BYTES, "stored resume token too large to read: starting from the beginning");
        return None;
    }
    let bytes = match object.body.collect().await {
        Ok(bytes) => bytes.into_bytes(),
        Err(err) => {
            tracing::warn!(token = %location, error = %err, "stored resume token not read: starting from the beginning");
            return None;
        }
    };
    match serde_json::from_slice::<T>(&bytes) {
        Ok(token) => Some(token),
        Err(err) => {
            tracing::warn!(token = %location, error = %err, "stored resume token is not a token: starting from the beginning");
            None
        }
    }
}

/// Stores `token` for the next run.
pub async fn store(client: &Client, location: &S3Location, token: &impl serde::Serialize) -> Result<(), NotWritten> {
    // Plain data with string keys: serialising cannot fail.
    let body = serde_json::to_vec(token).unwrap_or_default();
    put_object(client, location, "application/json", body)
        .await
        .map_err(|err| err.of(Artifact::Token))
}

/// Removes the token once a run has reached the end of its target: the next run starts over.
pub async fn clear(client: &Client, location: &S3Location) -> Result<(), NotWritten> {
    client
        .delete_object()
        .bucket(&location.bucket)
        .key(&location.prefix)
        .send()
        .await
        .map(|_| ())
        .map_err(|err| {
            UploadError {
                uri: location.to_string(),
                code: error_code(&err),
                message: error_message(&err),
            }
            .of(Artifact::Token)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(prefix: Option<&str>, include_versions: bool) -> Target {
        Target {
            bucket: "audited".to_owned(),
            prefix: prefix.map(str::to_owned),
            max_objects: None,
            resume: None,
            include_versions,
        }
    }

    #[test]
    fn each_target_has_a_token_of_its_own_under_the_findings_location() {
        let base: S3Location = "s3://findings/acl-audit/".parse().unwrap();
        let at = |prefix, versions| token_location(&base, StrategyKind::JoinAll, &target(prefix, versions)).to_string();
        assert_eq!(
            at(None, false),
            "s3://findings/acl-audit/resume/join-all/audited/all.json"
        );
        assert_eq!(at(Some(""), false), at(None, false));
        // Any prefix S3 allows gives a key within S3's 1 024 bytes.
        let longest = "é".repeat(512);
        assert_eq!(at(Some(&longest), false).len(), at(Some("a/b"), false).len());
        assert_eq!(
            at(Some("a/b"), false),
            "s3://findings/acl-audit/resume/join-all/audited/prefix-c14cddc033f64b9dea80ea675cf280a015e672516090a5626781153dc68fea11.json"
        );
        assert_eq!(
            at(None, true),
            "s3://findings/acl-audit/resume/join-all/audited/all-versions.json"
        );
        let bare: S3Location = "s3://findings".parse().unwrap();
        assert_eq!(
            token_location(&bare, StrategyKind::JoinAll, &target(None, false)).prefix,
            "resume/join-all/audited/all.json"
        );
        assert_eq!(
            inventory_token_location(&base, StrategyKind::JoinAll, "audited").to_string(),
            "s3://findings/acl-audit/resume/join-all/audited/inventory.json"
        );
    }
}
