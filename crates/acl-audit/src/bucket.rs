//! What a bucket's own settings say before any object is read: whether its ACLs mean anything
//! (Object Ownership), whether Block Public Access neutralises public ACLs
//! (`IgnorePublicAcls`), who owns it, what its own ACL grants, and its versioning. Read once
//! per run, a few requests at once; a setting the caller may not read is `unknown` with S3's
//! code, never an error for the run (docs/report.md, "bucket").

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::ObjectOwnership;
use serde::{Deserialize, Serialize};

use crate::findings::{FindingKind, classify};
use crate::model::{Grant, ObjectAcl};
use crate::s3::error::{error_code, error_message};
use crate::s3::fetch::grant;

/// One setting as S3 answered: set, not configured (S3's "not found" for that setting), or
/// not readable (the code and message S3 gave).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check<T> {
    Set(T),
    NotConfigured,
    Unknown { code: String, message: String },
}

impl<T> Check<T> {
    pub fn set(&self) -> Option<&T> {
        match self {
            Check::Set(value) => Some(value),
            _ => None,
        }
    }

    /// A failed read: "not configured" for S3's code that says so, unknown otherwise.
    fn from_error<E>(err: &SdkError<E, aws_smithy_runtime_api::http::Response>, not_configured: &str) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if err.code() == Some(not_configured) {
            return Check::NotConfigured;
        }
        Self::unknown(err)
    }

    fn unknown<E>(err: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        Check::Unknown {
            code: error_code(err),
            message: error_message(err),
        }
    }
}

/// Block Public Access, of a bucket or of an account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// The bucket's settings that decide what its objects' ACLs mean: the report's `bucket`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketContext {
    pub name: String,
    /// The bucket's region, as HeadBucket gave it (`null` when S3 did not say).
    pub region: Option<String>,
    /// `BucketOwnerEnforced` (ACLs disabled), `BucketOwnerPreferred` or `ObjectWriter`.
    pub object_ownership: Check<String>,
    pub public_access_block: Check<PublicAccessBlock>,
    /// The bucket owner's canonical user id, from GetBucketAcl.
    pub owner_id: Check<String>,
    /// The bucket's own ACL.
    pub acl: Check<Vec<Grant>>,
    /// What the bucket's own ACL grants to anyone or to any AWS account.
    pub acl_findings: Vec<FindingKind>,
    /// `Enabled`, `Suspended`, or `NotConfigured` for a bucket never versioned.
    pub versioning: Check<String>,
    /// ACLs have no effect (Object Ownership `BucketOwnerEnforced`).
    pub acls_disabled: bool,
    /// Block Public Access ignores public ACLs (`IgnorePublicAcls`) on this bucket.
    pub public_acls_ignored: bool,
}

impl BucketContext {
    /// What a run assumes with no context read: ACLs enabled, nothing ignored.
    pub fn assumed(bucket: &str) -> Self {
        BucketContext {
            name: bucket.to_owned(),
            region: None,
            object_ownership: Check::NotConfigured,
            public_access_block: Check::NotConfigured,
            owner_id: Check::NotConfigured,
            acl: Check::NotConfigured,
            acl_findings: Vec::new(),
            versioning: Check::NotConfigured,
            acls_disabled: false,
            public_acls_ignored: false,
        }
    }

    /// Reads the settings, all at once. `region` is what the caller learnt locating the bucket.
    pub async fn read(client: &Client, bucket: &str, region: Option<String>) -> Self {
        let (ownership, block, acl, versioning) = tokio::join!(
            client.get_bucket_ownership_controls().bucket(bucket).send(),
            client.get_public_access_block().bucket(bucket).send(),
            client.get_bucket_acl().bucket(bucket).send(),
            client.get_bucket_versioning().bucket(bucket).send(),
        );
        let object_ownership = match ownership {
            Ok(output) => output
                .ownership_controls()
                .and_then(|controls| controls.rules().first())
                .map_or(Check::NotConfigured, |rule| {
                    Check::Set(rule.object_ownership().as_str().to_owned())
                }),
            Err(err) => Check::from_error(&err, "OwnershipControlsNotFoundError"),
        };
        let public_access_block = match block {
            Ok(output) => output
                .public_access_block_configuration()
                .map_or(Check::NotConfigured, |config| {
                    Check::Set(PublicAccessBlock {
                        block_public_acls: config.block_public_acls().unwrap_or(false),
                        ignore_public_acls: config.ignore_public_acls().unwrap_or(false),
                        block_public_policy: config.block_public_policy().unwrap_or(false),
                        restrict_public_buckets: config.restrict_public_buckets().unwrap_or(false),
                    })
                }),
            Err(err) => Check::from_error(&err, "NoSuchPublicAccessBlockConfiguration"),
        };
        let (owner_id, acl) = match acl {
            Ok(output) => (
                output
                    .owner()
                    .and_then(|owner| owner.id())
                    .map_or(Check::NotConfigured, |id| Check::Set(id.to_owned())),
                Check::Set(output.grants().iter().map(grant).collect::<Vec<_>>()),
            ),
            Err(err) => (Check::unknown(&err), Check::unknown(&err)),
        };
        let versioning = match versioning {
            Ok(output) => output
                .status()
                .map_or(Check::NotConfigured, |status| Check::Set(status.as_str().to_owned())),
            Err(err) => Check::unknown(&err),
        };
        Self::from_settings(
            bucket,
            region,
            object_ownership,
            public_access_block,
            owner_id,
            acl,
            versioning,
        )
    }

    fn from_settings(
        bucket: &str,
        region: Option<String>,
        object_ownership: Check<String>,
        public_access_block: Check<PublicAccessBlock>,
        owner_id: Check<String>,
        acl: Check<Vec<Grant>>,
        versioning: Check<String>,
    ) -> Self {
        let acls_disabled =
            object_ownership.set().map(String::as_str) == Some(ObjectOwnership::BucketOwnerEnforced.as_str());
        let public_acls_ignored = public_access_block.set().is_some_and(|block| block.ignore_public_acls);
        let acl_findings = match (&acl, acls_disabled) {
            (Check::Set(grants), false) => {
                let as_object = ObjectAcl {
                    key: String::new(),
                    owner_id: owner_id.set().cloned(),
                    grants: grants.clone(),
                };
                classify(&as_object)
                    .0
                    .into_iter()
                    .filter(|kind| kind.is_exposure())
                    .collect()
            }
            _ => Vec::new(),
        };
        BucketContext {
            name: bucket.to_owned(),
            region,
            object_ownership,
            public_access_block,
            owner_id,
            acl,
            acl_findings,
            versioning,
            acls_disabled,
            public_acls_ignored,
        }
    }

    /// The bucket owner, when known: grants and object owners are judged against it.
    pub fn owner(&self) -> Option<&str> {
        self.owner_id.set().map(String::as_str)
    }

    /// Whether a finding of `kind` on an object of this bucket has effect: none when ACLs
    /// are disabled; a public or authenticated-users grant none when public ACLs are ignored.
    pub fn takes_effect(&self, kind: FindingKind) -> bool {
        if self.acls_disabled {
            return false;
        }
        !(kind.is_exposure() && self.public_acls_ignored)
    }

    /// The bucket ACL's exposures that take effect.
    pub fn effective_acl_findings(&self) -> bool {
        self.acl_findings.iter().any(|kind| self.takes_effect(*kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(ownership: Option<&str>, ignore: bool) -> BucketContext {
        BucketContext::from_settings(
            "b",
            None,
            ownership.map_or(Check::NotConfigured, |o| Check::Set(o.to_owned())),
            Check::Set(PublicAccessBlock {
                ignore_public_acls: ignore,
                ..PublicAccessBlock::default()
            }),
            Check::Set("owner".to_owned()),
            Check::Set(Vec::new()),
            Check::NotConfigured,
        )
    }

    #[test]
    fn ignore_public_acls_neutralises_exposures_but_not_other_account_grants() {
        let ignored = context(None, true);
        assert!(!ignored.takes_effect(FindingKind::PublicRead));
        assert!(!ignored.takes_effect(FindingKind::AuthenticatedRead));
        assert!(ignored.takes_effect(FindingKind::OtherAccountGrant));
        assert!(context(None, false).takes_effect(FindingKind::PublicRead));
    }

    #[test]
    fn with_acls_disabled_nothing_takes_effect() {
        let disabled = context(Some("BucketOwnerEnforced"), false);
        assert!(disabled.acls_disabled);
        assert!(FindingKind::ALL.iter().all(|kind| !disabled.takes_effect(*kind)));
        assert!(!context(Some("BucketOwnerPreferred"), false).acls_disabled);
    }

    #[test]
    fn an_unreadable_setting_is_unknown_and_serialises_with_its_code() {
        let unknown: Check<String> = Check::Unknown {
            code: "AccessDenied".to_owned(),
            message: "AccessDenied: Access Denied".to_owned(),
        };
        assert_eq!(
            serde_json::to_value(&unknown).unwrap(),
            serde_json::json!({"unknown": {"code": "AccessDenied", "message": "AccessDenied: Access Denied"}})
        );
        assert_eq!(
            serde_json::to_value(Check::<String>::NotConfigured).unwrap(),
            "not_configured"
        );
        assert_eq!(
            serde_json::to_value(Check::Set("Enabled")).unwrap(),
            serde_json::json!({"set": "Enabled"})
        );
    }
}
