//! The S3 operations this endpoint serves, on top of `s3s` (routing, XML, SigV4). Every
//! other operation keeps the trait's default answer, NotImplemented.

use std::sync::Arc;

use bytes::BytesMut;
use futures::TryStreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::acl::{Acl, AclError, AclRequest, owner_dto};
use crate::listing::{ListRequest, MAX_KEYS_LIMIT, decode_token, encode_token, list_page};
use crate::store::{
    DEFAULT_REGION, ObjectOwnership as Ownership, PublicAccessBlock, Store, StoreError, StoredObject, Versioning,
    VersionsRequest,
};

pub struct LocalS3Service {
    store: Arc<Store>,
}

impl LocalS3Service {
    pub fn new(store: Arc<Store>) -> Self {
        LocalS3Service { store }
    }
}

impl From<StoreError> for S3Error {
    /// S3's own codes and messages, word for word (moto's too), so that clients see here
    /// exactly what they would see from S3.
    fn from(err: StoreError) -> Self {
        let (code, message) = match err {
            StoreError::NoSuchBucket(_) => (S3ErrorCode::NoSuchBucket, "The specified bucket does not exist"),
            StoreError::NoSuchKey(_) => (S3ErrorCode::NoSuchKey, "The specified key does not exist."),
            StoreError::BucketAlreadyOwnedByYou(_) => (
                S3ErrorCode::BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it.",
            ),
            StoreError::BucketNotEmpty(_) => (
                S3ErrorCode::BucketNotEmpty,
                "The bucket you tried to delete is not empty",
            ),
            StoreError::AclAccessDenied(_) | StoreError::ListAccessDenied(_) => {
                (S3ErrorCode::AccessDenied, "Access Denied")
            }
            StoreError::NoSuchUpload(_) => (
                S3ErrorCode::NoSuchUpload,
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            ),
            StoreError::InvalidPart(_) => (
                S3ErrorCode::InvalidPart,
                "One or more of the specified parts could not be found.  The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
            ),
            StoreError::InvalidPartOrder => (
                S3ErrorCode::InvalidPartOrder,
                "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
            ),
            StoreError::EntityTooSmall(_) => (
                S3ErrorCode::EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size.",
            ),
            StoreError::OwnershipControlsNotFound(_) => (
                S3ErrorCode::Custom("OwnershipControlsNotFoundError".into()),
                "The bucket ownership controls were not found",
            ),
            StoreError::NoSuchPublicAccessBlockConfiguration(_) => (
                S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into()),
                "The public access block configuration was not found",
            ),
            StoreError::AccessControlListNotSupported(_) => (
                S3ErrorCode::AccessControlListNotSupported,
                "The bucket does not allow ACLs",
            ),
            StoreError::NoSuchVersion(..) => (S3ErrorCode::NoSuchVersion, "The specified version does not exist."),
            StoreError::DeleteMarker(..) => (
                S3ErrorCode::MethodNotAllowed,
                "The specified method is not allowed against this resource.",
            ),
        };
        let status = match code {
            S3ErrorCode::Custom(_) => Some(hyper::StatusCode::NOT_FOUND),
            S3ErrorCode::AccessControlListNotSupported => Some(hyper::StatusCode::BAD_REQUEST),
            S3ErrorCode::MethodNotAllowed => Some(hyper::StatusCode::METHOD_NOT_ALLOWED),
            _ => None,
        };
        let mut error = S3Error::with_message(code, message);
        if let Some(status) = status {
            error.set_status_code(status);
        }
        error
    }
}

impl From<AclError> for S3Error {
    fn from(err: AclError) -> Self {
        let code = match err {
            AclError::Malformed(_) => S3ErrorCode::MalformedACLError,
            AclError::CannedAndGrants => S3ErrorCode::InvalidRequest,
            AclError::Unsupported(_) => S3ErrorCode::NotImplemented,
        };
        S3Error::with_message(code, err.to_string())
    }
}

/// What S3 escapes in `encoding-type=url` listings: everything but unreserved characters
/// and `/`, so that clients such as boto3 (which always asks for it) decode keys exactly.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// How a listing names keys: as they are, or URL-encoded when the request asks for
/// `encoding-type=url`. Unencoded, a key with a character XML 1.0 cannot carry (U+0001, U+FFFE)
/// goes into the answer as it is, as S3 sends it, and the client's XML parser fails.
fn url_encoder(encoding: Option<&EncodingType>) -> impl Fn(&str) -> String + Copy + use<> {
    let url_encoded = encoding.is_some_and(|e| e.as_str() == EncodingType::URL);
    move |s: &str| {
        if url_encoded {
            utf8_percent_encode(s, URL_ENCODE).to_string()
        } else {
            s.to_owned()
        }
    }
}

/// A new object's ACL from its request's `x-amz-acl` or `x-amz-grant-*` headers (full control,
/// read, read-acp, write-acp: an object has no WRITE); private when it names none.
fn new_object_acl(canned: Option<&ObjectCannedACL>, grants: [&Option<String>; 4]) -> S3Result<Acl> {
    let [full_control, read, read_acp, write_acp] = grants;
    let acl = AclRequest {
        canned: canned.map(ObjectCannedACL::as_str),
        grant_full_control: full_control.as_deref(),
        grant_read: read.as_deref(),
        grant_read_acp: read_acp.as_deref(),
        grant_write: None,
        grant_write_acp: write_acp.as_deref(),
        policy: None,
    }
    .resolve()?;
    Ok(acl.unwrap_or_else(Acl::private))
}

/// With ACLs disabled S3 refuses any ACL but `bucket-owner-full-control` (and grant headers).
fn check_acl_allowed(store: &Store, bucket: &str, canned: Option<&str>, grants: &[&Option<String>]) -> S3Result<()> {
    let names_acl = canned.is_some_and(|c| c != "bucket-owner-full-control") || grants.iter().any(|g| g.is_some());
    if names_acl && store.acls_disabled(bucket) {
        return Err(StoreError::AccessControlListNotSupported(bucket.to_owned()).into());
    }
    Ok(())
}

fn public_access_block_dto(block: PublicAccessBlock) -> PublicAccessBlockConfiguration {
    PublicAccessBlockConfiguration {
        block_public_acls: Some(block.block_public_acls),
        block_public_policy: Some(block.block_public_policy),
        ignore_public_acls: Some(block.ignore_public_acls),
        restrict_public_buckets: Some(block.restrict_public_buckets),
    }
}

async fn read_body(body: Option<StreamingBlob>) -> S3Result<bytes::Bytes> {
    match body {
        Some(stream) => Ok(stream
            .try_fold(BytesMut::new(), |mut acc, chunk| async move {
                acc.extend_from_slice(&chunk);
                Ok(acc)
            })
            .await
            .map_err(|err| s3_error!(IncompleteBody, "reading the request body failed: {err}"))?
            .freeze()),
        None => Ok(bytes::Bytes::new()),
    }
}

#[async_trait::async_trait]
impl S3 for LocalS3Service {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        let bucket = req.input.bucket;
        let region = req
            .input
            .create_bucket_configuration
            .and_then(|config| config.location_constraint)
            .map_or_else(|| DEFAULT_REGION.to_owned(), |c| c.as_str().to_owned());
        self.store.create_bucket_in(&bucket, &region)?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{bucket}")),
        }))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        let region = self
            .store
            .bucket_region(&req.input.bucket)
            .ok_or_else(|| StoreError::NoSuchBucket(req.input.bucket.clone()))?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(region),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let settings = self.store.bucket_settings(&req.input.bucket)?;
        // S3 answers an empty constraint for us-east-1.
        let constraint = (settings.region != DEFAULT_REGION).then(|| BucketLocationConstraint::from(settings.region));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: constraint,
        }))
    }

    async fn get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        let bucket = req.input.bucket;
        let ownership = self
            .store
            .bucket_settings(&bucket)?
            .ownership
            .ok_or(StoreError::OwnershipControlsNotFound(bucket))?;
        Ok(S3Response::new(GetBucketOwnershipControlsOutput {
            ownership_controls: Some(OwnershipControls {
                rules: vec![OwnershipControlsRule {
                    object_ownership: ObjectOwnership::from(ownership.as_str().to_owned()),
                }],
            }),
        }))
    }

    async fn put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
        let input = req.input;
        let ownership = match input.ownership_controls.rules.as_slice() {
            [rule] => Ownership::parse(rule.object_ownership.as_str()),
            _ => None,
        }
        .ok_or_else(|| {
            s3_error!(
                MalformedXML,
                "OwnershipControls takes one rule: BucketOwnerEnforced, BucketOwnerPreferred or ObjectWriter"
            )
        })?;
        self.store.set_ownership(&input.bucket, Some(ownership))?;
        Ok(S3Response::new(PutBucketOwnershipControlsOutput::default()))
    }

    async fn delete_bucket_ownership_controls(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
        self.store.set_ownership(&req.input.bucket, None)?;
        Ok(S3Response::new(DeleteBucketOwnershipControlsOutput::default()))
    }

    async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        let bucket = req.input.bucket;
        let block = self
            .store
            .bucket_settings(&bucket)?
            .public_access_block
            .ok_or(StoreError::NoSuchPublicAccessBlockConfiguration(bucket))?;
        Ok(S3Response::new(GetPublicAccessBlockOutput {
            public_access_block_configuration: Some(public_access_block_dto(block)),
        }))
    }

    async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        let input = req.input;
        let config = input.public_access_block_configuration;
        let block = PublicAccessBlock {
            block_public_acls: config.block_public_acls.unwrap_or(false),
            ignore_public_acls: config.ignore_public_acls.unwrap_or(false),
            block_public_policy: config.block_public_policy.unwrap_or(false),
            restrict_public_buckets: config.restrict_public_buckets.unwrap_or(false),
        };
        self.store.set_public_access_block(&input.bucket, Some(block))?;
        Ok(S3Response::new(PutPublicAccessBlockOutput::default()))
    }

    async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
        self.store.set_public_access_block(&req.input.bucket, None)?;
        Ok(S3Response::new(DeletePublicAccessBlockOutput::default()))
    }

    async fn get_bucket_acl(&self, req: S3Request<GetBucketAclInput>) -> S3Result<S3Response<GetBucketAclOutput>> {
        let settings = self.store.bucket_settings(&req.input.bucket)?;
        let acl = if settings.ownership == Some(Ownership::BucketOwnerEnforced) {
            Acl::private()
        } else {
            settings.acl
        };
        Ok(S3Response::new(GetBucketAclOutput {
            grants: Some(acl.to_dto_grants()),
            owner: Some(owner_dto()),
        }))
    }

    async fn put_bucket_acl(&self, req: S3Request<PutBucketAclInput>) -> S3Result<S3Response<PutBucketAclOutput>> {
        let input = req.input;
        check_acl_allowed(
            &self.store,
            &input.bucket,
            input.acl.as_ref().map(BucketCannedACL::as_str),
            &[
                &input.grant_full_control,
                &input.grant_read,
                &input.grant_read_acp,
                &input.grant_write,
                &input.grant_write_acp,
            ],
        )?;
        let acl = AclRequest {
            canned: input.acl.as_ref().map(BucketCannedACL::as_str),
            grant_full_control: input.grant_full_control.as_deref(),
            grant_read: input.grant_read.as_deref(),
            grant_read_acp: input.grant_read_acp.as_deref(),
            grant_write: input.grant_write.as_deref(),
            grant_write_acp: input.grant_write_acp.as_deref(),
            policy: input.access_control_policy.as_ref(),
        }
        .resolve()?
        .ok_or_else(|| {
            s3_error!(
                MalformedACLError,
                "PutBucketAcl needs x-amz-acl, an x-amz-grant-* header or an AccessControlPolicy body"
            )
        })?;
        self.store.set_bucket_acl(&input.bucket, acl)?;
        Ok(S3Response::new(PutBucketAclOutput::default()))
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.store.delete_bucket(&req.input.bucket)?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        check_acl_allowed(
            &self.store,
            &input.bucket,
            input.acl.as_ref().map(ObjectCannedACL::as_str),
            &[
                &input.grant_full_control,
                &input.grant_read,
                &input.grant_read_acp,
                &input.grant_write_acp,
            ],
        )?;
        let acl = new_object_acl(
            input.acl.as_ref(),
            [
                &input.grant_full_control,
                &input.grant_read,
                &input.grant_read_acp,
                &input.grant_write_acp,
            ],
        )?;
        // Fail before reading the body, as S3 does for a missing bucket.
        if !self.store.bucket_exists(&input.bucket) {
            return Err(StoreError::NoSuchBucket(input.bucket).into());
        }
        let body = read_body(input.body).await?;
        let object = StoredObject::new(body, acl);
        let e_tag = ETag::Strong(object.etag.clone());
        let version_id = self.store.put_object(&input.bucket, &input.key, object)?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(e_tag),
            version_id,
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        check_acl_allowed(
            &self.store,
            &input.bucket,
            input.acl.as_ref().map(ObjectCannedACL::as_str),
            &[
                &input.grant_full_control,
                &input.grant_read,
                &input.grant_read_acp,
                &input.grant_write_acp,
            ],
        )?;
        let acl = new_object_acl(
            input.acl.as_ref(),
            [
                &input.grant_full_control,
                &input.grant_read,
                &input.grant_read_acp,
                &input.grant_write_acp,
            ],
        )?;
        let upload_id = self.store.create_upload(&input.bucket, &input.key, acl)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            ..Default::default()
        }))
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        let body = read_body(input.body).await?;
        let etag = self
            .store
            .upload_part(&input.bucket, &input.key, &input.upload_id, input.part_number, body)?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(etag)),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let parts: Vec<(i32, String)> = input
            .multipart_upload
            .and_then(|upload| upload.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|part| {
                let etag = part.e_tag.map(|tag| tag.value().to_owned()).unwrap_or_default();
                (part.part_number.unwrap_or_default(), etag)
            })
            .collect();
        if parts.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let etag = self
            .store
            .complete_upload(&input.bucket, &input.key, &input.upload_id, &parts)?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(ETag::Strong(etag)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        self.store.abort_upload(&input.bucket, &input.key, &input.upload_id)?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let (body, etag, version_id) =
            self.store
                .with_version(&input.bucket, &input.key, input.version_id.as_deref(), |object| {
                    Ok((object.body.clone(), object.etag.clone(), object.version_id.clone()))
                })?;
        Ok(S3Response::new(GetObjectOutput {
            content_length: i64::try_from(body.len()).ok(),
            e_tag: Some(ETag::Strong(etag)),
            body: Some(StreamingBlob::from(s3s::Body::from(body))),
            version_id,
            ..Default::default()
        }))
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let output = match input.version_id {
            Some(version_id) => DeleteObjectOutput {
                delete_marker: Some(self.store.delete_version(&input.bucket, &input.key, &version_id)?),
                version_id: Some(version_id),
                ..Default::default()
            },
            None => {
                let marker = self.store.delete_object(&input.bucket, &input.key)?;
                DeleteObjectOutput {
                    delete_marker: marker.is_some().then_some(true),
                    version_id: marker,
                    ..Default::default()
                }
            }
        };
        Ok(S3Response::new(output))
    }

    /// ListBuckets as S3 pages it since 2024: `max-buckets` at a time (10 000 at most), the
    /// continuation token the last name listed, each bucket with its region.
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let input = req.input;
        let most = input
            .max_buckets
            .map_or(10_000, |n| usize::try_from(n).unwrap_or(0))
            .clamp(1, 10_000);
        let after = input.continuation_token.as_deref().unwrap_or("");
        let prefix = input.prefix.as_deref().unwrap_or("");
        let matching: Vec<(String, String)> = self
            .store
            .buckets()
            .into_iter()
            .filter(|(name, region)| {
                name.as_str() > after
                    && name.starts_with(prefix)
                    && input.bucket_region.as_deref().is_none_or(|wanted| wanted == region)
            })
            .collect();
        let more = matching.len() > most;
        let page: Vec<Bucket> = matching
            .into_iter()
            .take(most)
            .map(|(name, region)| Bucket {
                name: Some(name),
                bucket_region: Some(region),
                creation_date: Some(std::time::SystemTime::UNIX_EPOCH.into()),
            })
            .collect();
        let continuation_token = more.then(|| page.last().and_then(|b| b.name.clone())).flatten();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(page),
            continuation_token,
            owner: Some(owner_dto()),
            prefix: input.prefix,
        }))
    }

    async fn get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        let bucket = &req.input.bucket;
        match self.store.bucket_settings(bucket)?.policy_public {
            None => Err(s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist")),
            Some(public) => Ok(S3Response::new(GetBucketPolicyStatusOutput {
                policy_status: Some(PolicyStatus {
                    is_public: Some(public),
                }),
            })),
        }
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let status = match self.store.bucket_settings(&req.input.bucket)?.versioning {
            Versioning::Unversioned => None,
            Versioning::Enabled => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::ENABLED)),
            Versioning::Suspended => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::SUSPENDED)),
        };
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            mfa_delete: None,
        }))
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let input = req.input;
        let versioning = match input
            .versioning_configuration
            .status
            .as_ref()
            .map(BucketVersioningStatus::as_str)
        {
            Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
            Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "VersioningConfiguration's Status is Enabled or Suspended"
                ));
            }
        };
        self.store.set_versioning(&input.bucket, versioning)?;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let input = req.input;
        if input.delimiter.as_deref().is_some_and(|d| !d.is_empty()) {
            return Err(s3_error!(NotImplemented, "local-s3 lists versions without a delimiter"));
        }
        if input.version_id_marker.is_some() && input.key_marker.is_none() {
            return Err(s3_error!(
                InvalidArgument,
                "A version-id marker cannot be specified without a key marker."
            ));
        }
        let max_keys = match input.max_keys {
            None => MAX_KEYS_LIMIT,
            Some(n) => usize::try_from(n)
                .map_err(|_| s3_error!(InvalidArgument, "max-keys must not be negative"))?
                .min(MAX_KEYS_LIMIT),
        };
        let prefix = input.prefix.as_deref().unwrap_or("");
        let page = self.store.list_versions(
            &input.bucket,
            &VersionsRequest {
                prefix,
                key_marker: input.key_marker.as_deref(),
                version_id_marker: input.version_id_marker.as_deref(),
                max_keys,
            },
        )?;
        let encode = url_encoder(input.encoding_type.as_ref());
        let (mut versions, mut delete_markers) = (Vec::new(), Vec::new());
        for entry in page.entries {
            match entry.object {
                Some(object) => versions.push(ObjectVersion {
                    key: Some(encode(&entry.key)),
                    version_id: Some(entry.version_id),
                    is_latest: Some(entry.is_latest),
                    last_modified: Some(entry.last_modified.into()),
                    e_tag: Some(ETag::Strong(object.etag)),
                    size: Some(object.size),
                    storage_class: Some(ObjectVersionStorageClass::from_static(
                        ObjectVersionStorageClass::STANDARD,
                    )),
                    owner: Some(owner_dto()),
                    ..Default::default()
                }),
                None => delete_markers.push(DeleteMarkerEntry {
                    key: Some(encode(&entry.key)),
                    version_id: Some(entry.version_id),
                    is_latest: Some(entry.is_latest),
                    last_modified: Some(entry.last_modified.into()),
                    owner: Some(owner_dto()),
                }),
            }
        }
        let (next_key_marker, next_version_id_marker) = page.next.clone().unzip();
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(encode(prefix)),
            key_marker: input.key_marker.as_deref().map(&encode),
            version_id_marker: input.version_id_marker,
            max_keys: Some(i32::try_from(max_keys).unwrap_or(i32::MAX)),
            is_truncated: Some(page.next.is_some()),
            next_key_marker: next_key_marker.as_deref().map(encode),
            next_version_id_marker,
            encoding_type: input.encoding_type,
            versions: Some(versions),
            delete_markers: Some(delete_markers),
            ..Default::default()
        }))
    }

    async fn get_object_acl(&self, req: S3Request<GetObjectAclInput>) -> S3Result<S3Response<GetObjectAclOutput>> {
        let acl = self
            .store
            .version_acl(&req.input.bucket, &req.input.key, req.input.version_id.as_deref())?;
        Ok(S3Response::new(GetObjectAclOutput {
            grants: Some(acl.to_dto_grants()),
            owner: Some(owner_dto()),
            request_charged: None,
        }))
    }

    async fn put_object_acl(&self, req: S3Request<PutObjectAclInput>) -> S3Result<S3Response<PutObjectAclOutput>> {
        let input = req.input;
        if self.store.acls_disabled(&input.bucket) {
            // Even bucket-owner-full-control: S3 refuses PutObjectAcl once ACLs are disabled.
            return Err(StoreError::AccessControlListNotSupported(input.bucket).into());
        }
        let acl = AclRequest {
            canned: input.acl.as_ref().map(ObjectCannedACL::as_str),
            grant_full_control: input.grant_full_control.as_deref(),
            grant_read: input.grant_read.as_deref(),
            grant_read_acp: input.grant_read_acp.as_deref(),
            grant_write: input.grant_write.as_deref(),
            grant_write_acp: input.grant_write_acp.as_deref(),
            policy: input.access_control_policy.as_ref(),
        }
        .resolve()?
        .ok_or_else(|| {
            s3_error!(
                MalformedACLError,
                "PutObjectAcl needs x-amz-acl, an x-amz-grant-* header or an AccessControlPolicy body"
            )
        })?;
        self.store
            .set_version_acl(&input.bucket, &input.key, input.version_id.as_deref(), acl)?;
        Ok(S3Response::new(PutObjectAclOutput::default()))
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let max_keys = match input.max_keys {
            None => MAX_KEYS_LIMIT,
            Some(n) => usize::try_from(n).map_err(|_| s3_error!(InvalidArgument, "max-keys must not be negative"))?,
        };
        let token = input
            .continuation_token
            .as_deref()
            .map(|token| {
                decode_token(token)
                    .ok_or_else(|| s3_error!(InvalidArgument, "the continuation token provided is incorrect"))
            })
            .transpose()?;
        let prefix = input.prefix.as_deref().unwrap_or("");
        let request = ListRequest {
            prefix,
            delimiter: input.delimiter.as_deref().filter(|d| !d.is_empty()),
            max_keys,
            after: token.as_deref().or(input.start_after.as_deref()),
        };
        let page = list_page(&self.store, &input.bucket, &request)?;

        let encode = url_encoder(input.encoding_type.as_ref());
        let fetch_owner = input.fetch_owner.unwrap_or(false);
        let key_count = page.objects.len() + page.common_prefixes.len();
        let contents = page
            .objects
            .into_iter()
            .map(|object| Object {
                key: Some(encode(&object.key)),
                size: Some(object.size),
                e_tag: Some(ETag::Strong(object.etag)),
                last_modified: Some(object.last_modified.into()),
                storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
                owner: fetch_owner.then(owner_dto),
                ..Default::default()
            })
            .collect();
        let common_prefixes = page
            .common_prefixes
            .iter()
            .map(|prefix| CommonPrefix {
                prefix: Some(encode(prefix)),
            })
            .collect();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(encode(prefix)),
            delimiter: input.delimiter.as_deref().map(&encode),
            max_keys: Some(i32::try_from(max_keys.min(MAX_KEYS_LIMIT)).unwrap_or(i32::MAX)),
            key_count: Some(i32::try_from(key_count).unwrap_or(i32::MAX)),
            continuation_token: input.continuation_token,
            is_truncated: Some(page.next_after.is_some()),
            next_continuation_token: page.next_after.as_deref().map(encode_token),
            contents: Some(contents),
            common_prefixes: Some(common_prefixes),
            encoding_type: input.encoding_type,
            start_after: input.start_after.as_deref().map(encode),
            request_charged: None,
        }))
    }
}
