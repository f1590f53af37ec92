//! The one S3 Control operation an audit reads: the account's Block Public Access
//! (`/v20180820/configuration/publicAccessBlock`, the account in `x-amz-account-id`). S3 serves
//! it at `<account>.s3-control.<region>.amazonaws.com`; here, as Ceph and moto serve it, at the
//! endpoint itself, told apart from a bucket named `v20180820` by the header. The access key
//! is checked; the signature is not (the S3 operations' is, by s3s).

use std::sync::Arc;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use s3s::HttpResponse;

use crate::credentials::Credentials;
use crate::store::{PublicAccessBlock, Store};

const PATH: &str = "/v20180820/configuration/publicAccessBlock";
const ACCOUNT_HEADER: &str = "x-amz-account-id";
const NAMESPACE: &str = "http://awss3control.amazonaws.com/doc/2018-08-20/";

pub(crate) struct AccountControl {
    pub(crate) store: Arc<Store>,
    pub(crate) credentials: Credentials,
}

impl AccountControl {
    pub(crate) fn handles(request: &Request<Incoming>) -> bool {
        request.uri().path() == PATH && request.headers().contains_key(ACCOUNT_HEADER)
    }

    pub(crate) async fn answer(&self, request: Request<Incoming>) -> HttpResponse {
        let access_key = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|scope| scope.split('/').next())
            .map(str::to_owned);
        if access_key.as_deref() != Some(self.credentials.access_key_id.as_str()) {
            return error(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            );
        }
        match *request.method() {
            Method::GET => match self.store.account_public_access_block() {
                Some(block) => xml(StatusCode::OK, configuration(block)),
                None => error(
                    StatusCode::NOT_FOUND,
                    "NoSuchPublicAccessBlockConfiguration",
                    "The public access block configuration was not found",
                ),
            },
            Method::PUT => {
                let Ok(body) = request.into_body().collect().await.map(|body| body.to_bytes()) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "IncompleteBody",
                        "reading the request body failed",
                    );
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
        }
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
fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    xml(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>"
        ),
    )
}

fn xml(status: StatusCode, body: String) -> HttpResponse {
    let mut response = HttpResponse::new(s3s::Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    response
}
