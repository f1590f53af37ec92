//! S3 Inventory reports of a bucket, written into another as S3 writes them (S3's "Amazon S3
//! Inventory list" and "Working with the Object ACL field" pages): a `manifest.json` naming
//! the `fileFormat` (CSV), the `fileSchema` and each file with its size and MD5 checksum, and
//! gzip-compressed CSV files, every field quoted, keys form-URL-encoded, the ACL field the
//! base64 of `{version, status, grants}`. For tests and the rehearsal of an inventory-sourced
//! audit; local-s3 does not run inventory configurations by itself.

use std::io::Write as _;
use std::ops::Bound;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};

use crate::acl::{Acl, Grantee, OWNER};
use crate::store::{Store, StoreError, StoredObject};

/// The fields written, in order.
pub const FILE_SCHEMA: &str = "Bucket, Key, Size, LastModifiedDate, ObjectAccessControlList, ObjectOwner";

/// What to write.
#[derive(Debug, Clone)]
pub struct InventorySpec<'a> {
    pub source: &'a str,
    pub destination: &'a str,
    /// The report's folder in the destination, e.g. `source/config-1/2026-12-03T01-00Z/`.
    pub prefix: &'a str,
    pub rows_per_file: usize,
    /// Every `n`th row's ACL is written UNAVAILABLE (as S3 does for an ACL it could not read);
    /// 0 for none.
    pub unavailable_every: usize,
}

/// Writes the report; the manifest's key.
pub fn write_inventory(store: &Store, spec: &InventorySpec<'_>) -> Result<String, StoreError> {
    let mut rows = Vec::new();
    store.scan(spec.source, Bound::Unbounded, |key, object| {
        rows.push((key.to_owned(), object.body.len(), object.acl.clone()));
        true
    })?;
    let mut files = Vec::new();
    for (n, chunk) in rows.chunks(spec.rows_per_file.max(1)).enumerate() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        for (i, (key, size, acl)) in chunk.iter().enumerate() {
            let row = n * spec.rows_per_file + i + 1;
            let available = spec.unavailable_every == 0 || !row.is_multiple_of(spec.unavailable_every);
            let (field, owner) = if available {
                (base64(acl_json(acl).as_bytes()), OWNER.id)
            } else {
                (
                    base64(br#"{"version":"2022-11-10","status":"UNAVAILABLE","grants":[]}"#),
                    "UNAVAILABLE",
                )
            };
            let line = format!(
                "\"{}\",\"{}\",\"{size}\",\"2026-12-03T01:00:00.000Z\",\"{field}\",\"{owner}\"\n",
                spec.source,
                form_url_encoded(key)
            );
            // Writing to a Vec cannot fail.
            let _ = gz.write_all(line.as_bytes());
        }
        let body = gz.finish().unwrap_or_default();
        let key = format!("{}data/{n:05}.csv.gz", spec.prefix);
        let md5 = hex(&Md5::digest(&body));
        files.push(format!(
            "{{\"key\":\"{key}\",\"size\":{},\"MD5checksum\":\"{md5}\"}}",
            body.len()
        ));
        store.put_object(
            spec.destination,
            &key,
            StoredObject::new(Bytes::from(body), Acl::private()),
        )?;
    }
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let manifest = format!(
        "{{\"sourceBucket\":\"{}\",\"destinationBucket\":\"arn:aws:s3:::{}\",\"version\":\"2016-11-30\",\"creationTimestamp\":\"{created}\",\"fileFormat\":\"CSV\",\"fileSchema\":\"{FILE_SCHEMA}\",\"files\":[{}]}}",
        spec.source,
        spec.destination,
        files.join(",")
    );
    let key = format!("{}manifest.json", spec.prefix);
    store.put_object(
        spec.destination,
        &key,
        StoredObject::new(Bytes::from(manifest), Acl::private()),
    )?;
    Ok(key)
}

/// The ACL field's JSON for `acl`.
fn acl_json(acl: &Acl) -> String {
    let grants: Vec<String> = acl
        .grants
        .iter()
        .map(|grant| {
            let permission = grant.permission.as_str();
            match &grant.grantee {
                Grantee::CanonicalUser { id, .. } => {
                    format!("{{\"canonicalId\":\"{id}\",\"type\":\"CanonicalUser\",\"permission\":\"{permission}\"}}")
                }
                Grantee::Group { uri } => {
                    format!("{{\"uri\":\"{uri}\",\"type\":\"Group\",\"permission\":\"{permission}\"}}")
                }
                // The inventory names canonical users and groups only.
                Grantee::Email { address } => {
                    format!(
                        "{{\"canonicalId\":\"{address}\",\"type\":\"CanonicalUser\",\"permission\":\"{permission}\"}}"
                    )
                }
            }
        })
        .collect();
    format!(
        "{{\"version\":\"2022-11-10\",\"status\":\"AVAILABLE\",\"grants\":[{}]}}",
        grants.join(",")
    )
}

/// A key as S3 writes it in a CSV inventory: form-URL-encoded (`+` a space, `%XX` a byte).
pub fn form_url_encoded(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding (RFC 4648).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_rfc_4648_with_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn keys_are_form_url_encoded() {
        assert_eq!(form_url_encoded("dir/a b+c"), "dir%2Fa+b%2Bc");
    }
}
