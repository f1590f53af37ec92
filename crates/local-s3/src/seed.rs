//! Fills a bucket with a deterministic mix of object ACLs, the same for a given count on
//! every run, so tests and benchmarks know what the audit must find.

use crate::acl::{Acl, CannedAcl, Grantee, PARTNER, Permission};
use crate::store::{Store, StoreError, StoredObject};

/// The ACL kinds the seeder writes, one object in ten each for the non-private ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedAcl {
    Private,
    PublicRead,
    AuthenticatedRead,
    /// The owner's full control plus READ for another account's canonical user.
    CrossAccountRead,
}

impl SeedAcl {
    pub fn for_index(index: usize) -> Self {
        match index % 10 {
            7 => SeedAcl::PublicRead,
            8 => SeedAcl::AuthenticatedRead,
            9 => SeedAcl::CrossAccountRead,
            _ => SeedAcl::Private,
        }
    }

    pub fn acl(self) -> Acl {
        match self {
            SeedAcl::Private => Acl::canned(CannedAcl::Private),
            SeedAcl::PublicRead => Acl::canned(CannedAcl::PublicRead),
            SeedAcl::AuthenticatedRead => Acl::canned(CannedAcl::AuthenticatedRead),
            SeedAcl::CrossAccountRead => Acl::private().with_grant(Grantee::user(PARTNER), Permission::Read),
        }
    }
}

/// The key of the `index`th seeded object; zero-padded so listing order is index order.
pub fn seed_key(index: usize) -> String {
    format!("object-{index:07}")
}

/// How many objects of each ACL kind a seeded bucket holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedSummary {
    pub objects: usize,
    pub private: usize,
    pub public_read: usize,
    pub authenticated_read: usize,
    pub cross_account_read: usize,
}

/// Creates `bucket` if needed and writes `objects` objects into it, with the mix of
/// [`SeedAcl::for_index`].
pub fn seed_bucket(store: &Store, bucket: &str, objects: usize) -> Result<SeedSummary, StoreError> {
    seed_bucket_with(store, bucket, objects, SeedAcl::for_index)
}

/// The same with the ACL kind of each index chosen by `kind_of` (every object public, say, to
/// measure an audit whose every object is a finding).
pub fn seed_bucket_with(
    store: &Store,
    bucket: &str,
    objects: usize,
    kind_of: impl Fn(usize) -> SeedAcl,
) -> Result<SeedSummary, StoreError> {
    if !store.bucket_exists(bucket) {
        store.create_bucket(bucket)?;
    }
    let mut summary = SeedSummary {
        objects,
        ..SeedSummary::default()
    };
    for index in 0..objects {
        let kind = kind_of(index);
        *match kind {
            SeedAcl::Private => &mut summary.private,
            SeedAcl::PublicRead => &mut summary.public_read,
            SeedAcl::AuthenticatedRead => &mut summary.authenticated_read,
            SeedAcl::CrossAccountRead => &mut summary.cross_account_read,
        } += 1;
        let body = format!("seeded object {index}\n").into();
        store.put_object(bucket, &seed_key(index), StoredObject::new(body, kind.acl()))?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hundred_objects_hold_ten_of_each_shared_kind() {
        let store = Store::default();
        let summary = seed_bucket(&store, "b", 100).unwrap();
        assert_eq!(
            summary,
            SeedSummary {
                objects: 100,
                private: 70,
                public_read: 10,
                authenticated_read: 10,
                cross_account_read: 10
            }
        );
        assert_eq!(store.object_count("b").unwrap(), 100);
    }
}
