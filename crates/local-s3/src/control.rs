//! The one S3 Control operation an audit reads: the account's Block Public Access
//! (`/v20180820/configuration/publicAccessBlock`, the account in `x-amz-account-id`). S3 serves
//! it at `<account>.s3-control.<region>.amazonaws.com`; here, as Ceph and moto serve it, at the
//! endpoint itself, told apart from a bucket named `v20180820` by the header. It is an s3s
//! route, so a request reaches it only once s3s has verified its SigV4 signature, as every S3
//! operation's.

use std::sync::Arc;

use http_body_util::BodyExt as _;
use hyper::http::Extensions;
use hyper::{HeaderMap, Method, StatusCode, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};

use crate::store::{PublicAccessBlock, Store};

const PATH: &str = "/v20180820/configuration/publicAccessBlock";
const ACCOUNT_HEADER: &str = "x-amz-account-id";
const NAMESPACE: &str = "http://awss3control.amazonaws.com/doc/2018-08-20/";

pub(crate) struct AccountControl {
    pub(crate) store: Arc<Store>,
}

#[async_trait::async_trait]
impl S3Route for AccountControl {
    fn is_match(&self, _method: &Method, uri: &Uri, headers: &HeaderMap, _extensions: &mut Extensions) -> bool {
        uri.path() == PATH && headers.contains_key(ACCOUNT_HEADER)
    }

    // `check_access` is s3s's default: a request whose signature s3s verified (it has
    // credentials) passes; an unsigned one is refused.

    async fn call(&self, request: S3Request<Body>) -> S3Result<S3Response<Body>> {
        Ok(match request.method {
            Method::GET => match self.store.account_public_access_block() {
                Some(block) => xml(StatusCode::OK, configuration(block)),
                None => error(
                    StatusCode::NOT_FOUND,
                    "NoSuchPublicAccessBlockConfiguration",
                    "The public access block configuration was not found",
                ),
            },
            Method::PUT => {
                let Ok(body) = request.input.collect().await.map(|body| body.to_bytes()) else {
                    return Ok(error(
                        StatusCode::BAD_REQUEST,
                        "IncompleteBody",
                        "reading the request body failed",
                    ));
                };
                let text = String::from_utf8_lossy(&body);
                let setting = |name: &str| text.contains(&format!("<{name}>true</{name}>"));
                self.store.set_account_public_access_block(Some(PublicAccessBlock {
                    block_public_acls: setting("BlockPublicAcls"),
                    ignore_public_acls: setting("IgnorePublicAcls"),
                    block_public_policy: setting("BlockPublicPolicy"),
                    restrict_public_buckets: setting("RestrictPublicBuckets"),
                }));
                xml(StatusCode::OK, String::new())
            }
            Method::DELETE => {
                self.store.set_account_public_access_block(None);
                xml(StatusCode::NO_CONTENT, String::new())
            }
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "The specified method is not allowed",
            ),
        })
    }
}

fn configuration(block: PublicAccessBlock) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PublicAccessBlockConfiguration xmlns=\"{NAMESPACE}\">\
         <BlockPublicAcls>{}</BlockPublicAcls><IgnorePublicAcls>{}</IgnorePublicAcls>\
         <BlockPublicPolicy>{}</BlockPublicPolicy><RestrictPublicBuckets>{}</RestrictPublicBuckets>\
         </PublicAccessBlockConfiguration>",
        block.block_public_acls, block.ignore_public_acls, block.block_public_policy, block.restrict_public_buckets
    )
}

/// S3 Control's errors are wrapped, unlike S3's: `<ErrorResponse><Error>…</Error></ErrorResponse>`.
fn error(status: StatusCode, code: &str, message: &str) -> S3Response<Body> {
    xml(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>"
        ),
    )
}

fn xml(status: StatusCode, body: String) -> S3Response<Body> {
    let mut response = S3Response::new(Body::from(body));
    response.status = Some(status);
    response.headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    response
}
