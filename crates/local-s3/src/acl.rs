//! Object ACLs as S3 models them: an owner plus a list of (grantee, permission) grants,
//! built from a canned ACL (`x-amz-acl`), from `x-amz-grant-*` headers, or from an
//! `AccessControlPolicy` document.

use s3s::dto;

/// The canonical user that owns every bucket and object in this endpoint.
pub const OWNER: CanonicalUser = CanonicalUser {
    id: "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a",
    display_name: "local-owner",
};

/// A second account, used to seed cross-account grants.
pub const PARTNER: CanonicalUser = CanonicalUser {
    id: "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
    display_name: "local-partner",
};

pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanonicalUser {
    pub id: &'static str,
    pub display_name: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    CanonicalUser { id: String, display_name: Option<String> },
    Group { uri: String },
    Email { address: String },
}

impl Grantee {
    pub fn user(user: CanonicalUser) -> Self {
        Grantee::CanonicalUser {
            id: user.id.to_owned(),
            display_name: Some(user.display_name.to_owned()),
        }
    }

    pub fn group(uri: &str) -> Self {
        Grantee::Group { uri: uri.to_owned() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    FullControl,
    Read,
    Write,
    ReadAcp,
    WriteAcp,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::FullControl => dto::Permission::FULL_CONTROL,
            Permission::Read => dto::Permission::READ,
            Permission::Write => dto::Permission::WRITE,
            Permission::ReadAcp => dto::Permission::READ_ACP,
            Permission::WriteAcp => dto::Permission::WRITE_ACP,
        }
    }

    fn parse(s: &str) -> Result<Self, AclError> {
        Ok(match s {
            dto::Permission::FULL_CONTROL => Permission::FullControl,
            dto::Permission::READ => Permission::Read,
            dto::Permission::WRITE => Permission::Write,
            dto::Permission::READ_ACP => Permission::ReadAcp,
            dto::Permission::WRITE_ACP => Permission::WriteAcp,
            other => return Err(AclError::Malformed(format!("unknown permission {other:?}"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// The canned ACLs S3 accepts for objects (`x-amz-acl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedAcl {
    Private,
    PublicRead,
    PublicReadWrite,
    AuthenticatedRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
}

impl CannedAcl {
    fn parse(s: &str) -> Result<Self, AclError> {
        Ok(match s {
            dto::ObjectCannedACL::PRIVATE => CannedAcl::Private,
            dto::ObjectCannedACL::PUBLIC_READ => CannedAcl::PublicRead,
            dto::ObjectCannedACL::PUBLIC_READ_WRITE => CannedAcl::PublicReadWrite,
            dto::ObjectCannedACL::AUTHENTICATED_READ => CannedAcl::AuthenticatedRead,
            dto::ObjectCannedACL::BUCKET_OWNER_READ => CannedAcl::BucketOwnerRead,
            dto::ObjectCannedACL::BUCKET_OWNER_FULL_CONTROL => CannedAcl::BucketOwnerFullControl,
            other => return Err(AclError::Unsupported(format!("canned ACL {other:?}"))),
        })
    }
}

/// An object's access control list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub grants: Vec<Grant>,
}

impl Acl {
    /// The grants S3 writes for a canned ACL. The object owner is also the bucket owner here
    /// (one account), so the `bucket-owner-*` ACLs collapse to the owner's full control, as on S3.
    pub fn canned(canned: CannedAcl) -> Self {
        let owner_full_control = Grant {
            grantee: Grantee::user(OWNER),
            permission: Permission::FullControl,
        };
        let mut grants = vec![owner_full_control];
        let to_group = |uri, permission| Grant {
            grantee: Grantee::group(uri),
            permission,
        };
        match canned {
            CannedAcl::Private | CannedAcl::BucketOwnerRead | CannedAcl::BucketOwnerFullControl => {}
            CannedAcl::PublicRead => grants.push(to_group(ALL_USERS_URI, Permission::Read)),
            CannedAcl::PublicReadWrite => {
                grants.push(to_group(ALL_USERS_URI, Permission::Read));
                grants.push(to_group(ALL_USERS_URI, Permission::Write));
            }
            CannedAcl::AuthenticatedRead => grants.push(to_group(AUTHENTICATED_USERS_URI, Permission::Read)),
        }
        Acl { grants }
    }

    pub fn private() -> Self {
        Acl::canned(CannedAcl::Private)
    }

    /// The owner's full control plus `permission` for another canonical user.
    pub fn with_grant(mut self, grantee: Grantee, permission: Permission) -> Self {
        self.grants.push(Grant { grantee, permission });
        self
    }

    pub fn to_dto_grants(&self) -> dto::Grants {
        self.grants.iter().map(grant_to_dto).collect()
    }
}

pub fn owner_dto() -> dto::Owner {
    dto::Owner {
        display_name: Some(OWNER.display_name.to_owned()),
        id: Some(OWNER.id.to_owned()),
    }
}

fn grant_to_dto(grant: &Grant) -> dto::Grant {
    let grantee = match &grant.grantee {
        Grantee::CanonicalUser { id, display_name } => dto::Grantee {
            display_name: display_name.clone(),
            email_address: None,
            id: Some(id.clone()),
            type_: dto::Type::from_static(dto::Type::CANONICAL_USER),
            uri: None,
        },
        Grantee::Group { uri } => dto::Grantee {
            display_name: None,
            email_address: None,
            id: None,
            type_: dto::Type::from_static(dto::Type::GROUP),
            uri: Some(uri.clone()),
        },
        Grantee::Email { address } => dto::Grantee {
            display_name: None,
            email_address: Some(address.clone()),
            id: None,
            type_: dto::Type::from_static(dto::Type::AMAZON_CUSTOMER_BY_EMAIL),
            uri: None,
        },
    };
    dto::Grant {
        grantee: Some(grantee),
        permission: Some(dto::Permission::from(grant.permission.as_str().to_owned())),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AclError {
    #[error("{0}")]
    Malformed(String),
    #[error("specifying both a canned ACL and grant headers is not allowed")]
    CannedAndGrants,
    #[error("{0} is not supported by local-s3")]
    Unsupported(String),
}

/// The ACL-bearing parts of a PutObject or PutObjectAcl request.
#[derive(Debug, Default)]
pub struct AclRequest<'a> {
    pub canned: Option<&'a str>,
    pub grant_full_control: Option<&'a str>,
    pub grant_read: Option<&'a str>,
    pub grant_read_acp: Option<&'a str>,
    pub grant_write: Option<&'a str>,
    pub grant_write_acp: Option<&'a str>,
    pub policy: Option<&'a dto::AccessControlPolicy>,
}

impl AclRequest<'_> {
    /// The ACL the request asks for, or `None` when it names none (S3 then applies `private`
    /// on PutObject and rejects PutObjectAcl).
    pub fn resolve(&self) -> Result<Option<Acl>, AclError> {
        let headers = [
            (self.grant_full_control, Permission::FullControl),
            (self.grant_read, Permission::Read),
            (self.grant_read_acp, Permission::ReadAcp),
            (self.grant_write, Permission::Write),
            (self.grant_write_acp, Permission::WriteAcp),
        ];
        let has_grant_headers = headers.iter().any(|(value, _)| value.is_some());
        match (self.canned, has_grant_headers, self.policy) {
            (Some(_), true, _) => Err(AclError::CannedAndGrants),
            (Some(canned), false, _) => Ok(Some(Acl::canned(CannedAcl::parse(canned)?))),
            (None, true, _) => {
                let mut grants = Vec::new();
                for (value, permission) in headers {
                    if let Some(value) = value {
                        for grantee in parse_grant_header(value)? {
                            grants.push(Grant { grantee, permission });
                        }
                    }
                }
                Ok(Some(Acl { grants }))
            }
            (None, false, Some(policy)) => acl_from_policy(policy).map(Some),
            (None, false, None) => Ok(None),
        }
    }
}

fn acl_from_policy(policy: &dto::AccessControlPolicy) -> Result<Acl, AclError> {
    let grants = policy
        .grants
        .iter()
        .flatten()
        .map(grant_from_dto)
        .collect::<Result<_, _>>()?;
    Ok(Acl { grants })
}

fn grant_from_dto(grant: &dto::Grant) -> Result<Grant, AclError> {
    let malformed = |what: &str| AclError::Malformed(format!("grant without {what}"));
    let dto_grantee = grant.grantee.as_ref().ok_or_else(|| malformed("a grantee"))?;
    let permission = Permission::parse(
        grant
            .permission
            .as_ref()
            .ok_or_else(|| malformed("a permission"))?
            .as_str(),
    )?;
    let grantee = match dto_grantee.type_.as_str() {
        dto::Type::CANONICAL_USER => Grantee::CanonicalUser {
            id: dto_grantee
                .id
                .clone()
                .ok_or_else(|| malformed("an ID for its CanonicalUser"))?,
            display_name: dto_grantee.display_name.clone(),
        },
        dto::Type::GROUP => Grantee::Group {
            uri: dto_grantee
                .uri
                .clone()
                .ok_or_else(|| malformed("a URI for its Group"))?,
        },
        dto::Type::AMAZON_CUSTOMER_BY_EMAIL => Grantee::Email {
            address: dto_grantee
                .email_address
                .clone()
                .ok_or_else(|| malformed("an EmailAddress"))?,
        },
        other => return Err(AclError::Malformed(format!("unknown grantee type {other:?}"))),
    };
    Ok(Grant { grantee, permission })
}

/// Parses an `x-amz-grant-*` header: a comma-separated list of `id="…"`, `uri="…"` or
/// `emailAddress="…"` entries.
pub fn parse_grant_header(value: &str) -> Result<Vec<Grantee>, AclError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (kind, quoted) = entry
                .split_once('=')
                .ok_or_else(|| AclError::Malformed(format!("grant {entry:?} is not of the form type=\"value\"")))?;
            let value = quoted.trim().trim_matches('"').to_owned();
            match kind.trim() {
                "id" => Ok(Grantee::CanonicalUser {
                    id: value,
                    display_name: None,
                }),
                "uri" => Ok(Grantee::Group { uri: value }),
                "emailAddress" => Ok(Grantee::Email { address: value }),
                other => Err(AclError::Malformed(format!(
                    "unknown grantee type {other:?} in grant header"
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_header_lists_several_grantees() {
        let grantees =
            parse_grant_header(r#"id="abc", uri="http://acs.amazonaws.com/groups/global/AllUsers""#).unwrap();
        assert_eq!(
            grantees,
            vec![
                Grantee::CanonicalUser {
                    id: "abc".into(),
                    display_name: None
                },
                Grantee::group(ALL_USERS_URI),
            ]
        );
    }

    #[test]
    fn grant_header_without_type_is_rejected() {
        assert!(matches!(parse_grant_header("abc"), Err(AclError::Malformed(_))));
    }

    #[test]
    fn canned_acl_and_grant_headers_together_are_rejected() {
        let request = AclRequest {
            canned: Some("private"),
            grant_read: Some(r#"id="abc""#),
            ..AclRequest::default()
        };
        assert_eq!(request.resolve(), Err(AclError::CannedAndGrants));
    }

    #[test]
    fn public_read_adds_all_users_read_to_owner_full_control() {
        let acl = Acl::canned(CannedAcl::PublicRead);
        assert_eq!(acl.grants.len(), 2);
        assert_eq!(acl.grants[1].grantee, Grantee::group(ALL_USERS_URI));
        assert_eq!(acl.grants[1].permission, Permission::Read);
    }
}
