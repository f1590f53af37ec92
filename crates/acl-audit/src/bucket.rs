//! What a bucket's own settings say before any object is read: whether its ACLs mean anything
//! (Object Ownership), whether Block Public Access neutralises public ACLs
//! (`IgnorePublicAcls`), who owns it, what its own ACL grants, and its versioning. Read once
//! per run, a few requests at once; a setting the caller may not read is `unknown` with S3's
//! code, never an error for the run (docs/report.md, "Bucket settings").

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::ObjectOwnership;
use serde::{Deserialize, Serialize};

use crate::findings::{FindingKind, classify};
use crate::model::{Grant, ObjectAcl};
use crate::s3::error::ListError;
use crate::s3::error::{error_code, error_message};
use crate::s3::fetch::grant;
use crate::s3::region::RegionalClients;

/// One setting as S3 answered: set, not configured (S3's "not found" for that setting), or
/// not readable (the code and message S3 gave).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check<T> {
    Set(T),
    NotConfigured,
    Unknown {
        code: String,
        message: String,
    },
    /// The caller gave no way to read it (the account's setting without an account id).
    NotChecked {
        reason: String,
    },
}

impl<T> Check<T> {
    pub fn set(&self) -> Option<&T> {
        match self {
            Check::Set(value) => Some(value),
            _ => None,
        }
    }

    /// A failed read: "not configured" for S3's code that says so, unknown otherwise.
    pub(crate) fn from_error<E>(err: &SdkError<E, aws_smithy_runtime_api::http::Response>, not_configured: &str) -> Self
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

/// Where to read the account's Block Public Access: S3 Control and the account's id (a
/// function's from its ARN, a shell user's from `--account-id`).
#[derive(Debug, Clone, Copy)]
pub struct AccountCheck<'a> {
    pub client: &'a aws_sdk_s3control::Client,
    pub account_id: &'a str,
}

/// The account's Block Public Access (S3 Control), which applies to every bucket of it: a sweep
/// reads it once for all.
pub async fn read_account_block(account: Option<AccountCheck<'_>>) -> Check<PublicAccessBlock> {
    let Some(AccountCheck { client, account_id }) = account else {
        return Check::NotChecked {
            reason: "no account id to read the account's Block Public Access with".to_owned(),
        };
    };
    match client.get_public_access_block().account_id(account_id).send().await {
        Ok(output) => output
            .public_access_block_configuration()
            .map_or(Check::NotConfigured, |c| {
                Check::Set(PublicAccessBlock::of([
                    c.block_public_acls(),
                    c.ignore_public_acls(),
                    c.block_public_policy(),
                    c.restrict_public_buckets(),
                ]))
            }),
        Err(err) => Check::from_error(&err, "NoSuchPublicAccessBlockConfiguration"),
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

impl PublicAccessBlock {
    /// From S3's or S3 Control's four optional settings, in the API's order (BlockPublicAcls,
    /// IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets); an absent one is off.
    fn of(settings: [Option<bool>; 4]) -> Self {
        let [
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
        ] = settings.map(|setting| setting.unwrap_or(false));
        PublicAccessBlock {
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
        }
    }
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
    /// The account's Block Public Access (S3 Control), which applies to every bucket of it.
    pub account_public_access_block: Check<PublicAccessBlock>,
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
    /// Block Public Access ignores public ACLs (`IgnorePublicAcls`), on the bucket or the account.
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
            account_public_access_block: Check::NotConfigured,
            owner_id: Check::NotConfigured,
            acl: Check::NotConfigured,
            acl_findings: Vec::new(),
            versioning: Check::NotConfigured,
            acls_disabled: false,
            public_acls_ignored: false,
        }
    }

    /// Locates the bucket and reads its settings in one round trip: HeadBucket and the
    /// settings' reads go out together; only a bucket in another region costs a second, its
    /// settings read again there. Returns the client for the bucket's region.
    pub async fn locate_and_read(
        clients: &RegionalClients,
        bucket: &str,
        account: Option<AccountCheck<'_>>,
    ) -> Result<(Client, Self), ListError> {
        let (located, here) = tokio::join!(
            clients.for_bucket(bucket),
            Self::read(clients.base(), bucket, None, account)
        );
        let located = located?;
        let configured = clients.base().config().region().map(|r| r.as_ref().to_owned());
        let context = if located.region.is_some() && located.region != configured {
            let there = Self::read(&located.client, bucket, located.region.clone(), None).await;
            // The account's setting is the same in every region: keep the first read's.
            BucketContext {
                account_public_access_block: here.account_public_access_block,
                ..there
            }
            .settled()
        } else {
            BucketContext {
                region: located.region.clone().or(configured),
                ..here
            }
        };
        Ok((located.client, context))
    }

    /// Reads the settings, all at once. `region` is what the caller learnt locating the bucket.
    pub async fn read(
        client: &Client,
        bucket: &str,
        region: Option<String>,
        account: Option<AccountCheck<'_>>,
    ) -> Self {
        // Each SDK request future is about 5 KB (more in a debug build): boxed here, at the
        // leaves, the run's future stays small enough for any caller to hold on its stack.
        let (ownership, block, acl, versioning, account_block) = tokio::join!(
            Box::pin(client.get_bucket_ownership_controls().bucket(bucket).send()),
            Box::pin(client.get_public_access_block().bucket(bucket).send()),
            Box::pin(client.get_bucket_acl().bucket(bucket).send()),
            Box::pin(client.get_bucket_versioning().bucket(bucket).send()),
            Box::pin(read_account_block(account)),
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
                .map_or(Check::NotConfigured, |c| {
                    Check::Set(PublicAccessBlock::of([
                        c.block_public_acls(),
                        c.ignore_public_acls(),
                        c.block_public_policy(),
                        c.restrict_public_buckets(),
                    ]))
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
        BucketContext {
            name: bucket.to_owned(),
            region,
            object_ownership,
            public_access_block,
            account_public_access_block: account_block,
            owner_id,
            acl,
            versioning,
            ..Self::assumed(bucket)
        }
        .settled()
    }

    /// The same settings with the account's Block Public Access read once for a whole sweep.
    #[must_use]
    pub fn with_account_block(self, account_public_access_block: Check<PublicAccessBlock>) -> Self {
        BucketContext {
            account_public_access_block,
            ..self
        }
        .settled()
    }

    /// The settings read, with what follows from them: ACLs disabled, public ACLs ignored,
    /// the bucket ACL's exposures.
    fn settled(self) -> Self {
        let acls_disabled =
            self.object_ownership.set().map(String::as_str) == Some(ObjectOwnership::BucketOwnerEnforced.as_str());
        let public_acls_ignored = [&self.public_access_block, &self.account_public_access_block]
            .into_iter()
            .any(|block| block.set().is_some_and(|block| block.ignore_public_acls));
        let acl_findings = match (&self.acl, acls_disabled) {
            (Check::Set(grants), false) => {
                let as_object = ObjectAcl {
                    key: String::new(),
                    version_id: None,
                    owner_id: self.owner_id.set().cloned(),
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
            acl_findings,
            acls_disabled,
            public_acls_ignored,
            ..self
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
        BucketContext {
            object_ownership: ownership.map_or(Check::NotConfigured, |o| Check::Set(o.to_owned())),
            public_access_block: Check::Set(PublicAccessBlock {
                ignore_public_acls: ignore,
                ..PublicAccessBlock::default()
            }),
            owner_id: Check::Set("owner".to_owned()),
            acl: Check::Set(Vec::new()),
            ..BucketContext::assumed("b")
        }
        .settled()
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
