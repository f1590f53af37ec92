//! Fetching one object's ACL: the primitive every strategy schedules.

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::get_object_acl::GetObjectAclOutput;
use aws_sdk_s3::types::{self as s3_types, Type};
use aws_smithy_runtime_api::http::Request as HttpRequest;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::model::{FetchResult, Grant, Grantee, ObjectAcl, ObjectFailure, ObjectRef};
use crate::s3::error::{error_code, error_message};

/// One GetObjectAcl call, for the object's current version or the one it names; a failure
/// is a value, never an early return for the whole run.
pub async fn fetch_acl(client: &Client, bucket: &str, object: impl Into<ObjectRef>) -> FetchResult {
    let ObjectRef { key, version_id } = object.into();
    let request = client
        .get_object_acl()
        .bucket(bucket)
        .set_version_id(version_id.clone());
    // The SDK's request future is about 5 KB; boxed, it exists only while the call is under
    // way, and a join-all over 100 000 keys holds 100 000 small futures rather than 500 MB.
    let sent = if is_blank(&key) {
        let path = format!("/{}", utf8_percent_encode(&key, KEY_ENCODE));
        Box::pin(
            request
                .key(BLANK_KEY_STAND_IN)
                .customize()
                .mutate_request(move |request| put_back_blank_key(request, &path))
                .send(),
        )
        .await
    } else {
        Box::pin(request.key(&key).send()).await
    };
    match sent {
        Ok(output) => Ok(object_acl(key, version_id, &output)),
        Err(err) => Err(ObjectFailure {
            code: error_code(&err),
            message: error_message(&err),
            key,
            version_id,
        }),
    }
}

/// A key of whitespace alone (`" "`, `"\t"`): S3 allows it, but aws-sdk-s3 refuses to build a
/// request for it, taking it for a missing key (awslabs/aws-sdk-rust#1216). Such a key is sent
/// as [`BLANK_KEY_STAND_IN`] and put back into the request's path before it is signed, so the
/// signature and S3 see the real key.
fn is_blank(key: &str) -> bool {
    !key.is_empty() && key.trim().is_empty()
}

const BLANK_KEY_STAND_IN: &str = "acl-audit-blank-key";

/// What the SDK percent-encodes in a key's path: all but unreserved characters (and `/`, which
/// a blank key does not hold).
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `request` with the stand-in's path segment (the last one named so) replaced by `path`.
fn put_back_blank_key(request: &mut HttpRequest, path: &str) {
    let uri = request.uri();
    let query_at = uri.find('?').unwrap_or(uri.len());
    let stand_in = format!("/{BLANK_KEY_STAND_IN}");
    if let Some(at) = uri[..query_at]
        .rfind(&stand_in)
        .filter(|at| at + stand_in.len() == query_at)
    {
        let uri = format!("{}{path}{}", &uri[..at], &uri[query_at..]);
        // A path of percent-encoded ASCII is a valid URI wherever the stand-in was.
        let _ = request.set_uri(uri);
    }
}

fn object_acl(key: String, version_id: Option<String>, output: &GetObjectAclOutput) -> ObjectAcl {
    ObjectAcl {
        key,
        version_id,
        owner_id: output.owner().and_then(|owner| owner.id()).map(str::to_owned),
        grants: output.grants().iter().map(grant).collect(),
    }
}

pub(crate) fn grant(grant: &s3_types::Grant) -> Grant {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_acl_fetch_is_small_so_a_huge_join_all_fits_in_memory() {
        let client = crate::s3::client::client_for_endpoint("http://127.0.0.1:9", "key", "secret");
        let pending = fetch_acl(&client, "bucket", "key".to_owned());
        // 100 000 of them in 25 MB at most.
        assert!(
            std::mem::size_of_val(&pending) <= 256,
            "{} bytes",
            std::mem::size_of_val(&pending)
        );
    }
}
