//! S3 Inventory as the source of ACLs: an inventory report whose configuration includes the
//! `ObjectAccessControlList` field holds every object's ACL (base64-encoded JSON, S3's
//! "Working with the Object ACL field" page), so the audit reads it instead of calling
//! GetObjectAcl once per object. Objects whose ACL status is `UNAVAILABLE` are handed on to be
//! fetched.
//!
//! What is read: the report's `manifest.json` (`fileFormat`, `fileSchema`, `files`), then each
//! file it names, a gzip-compressed CSV as S3 writes it (every field quoted, keys URL-encoded),
//! streamed: a chunk of the body at a time is decompressed and cut into rows, so memory stays
//! bounded whatever the file's size.

use std::collections::VecDeque;
use std::io::Write as _;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use flate2::write::MultiGzDecoder;
use serde::Deserialize;

use crate::model::{Grant, Grantee, ObjectAcl, ObjectRef, S3Location};
use crate::s3::listing::url_decoded;
use crate::s3::read::read_object;

/// Rows handed on at a time, as a listing page is.
pub const ROWS_PER_PAGE: usize = 1000;

/// The longest row read: a 1 024-byte key URL-encoded and an ACL of S3's 100 grants are tens of
/// kilobytes; a file that goes on past this without a line break is not an inventory.
pub const MOST_ROW_BYTES: usize = 1 << 20;

/// The most decompressed bytes held at once: a chunk of the body is decompressed a few
/// kilobytes at a time, so a gzip bomb is refused before it fills the function's memory.
const MOST_PENDING_BYTES: usize = 32 << 20;

/// The inventory cannot be read as one with ACLs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read s3://{bucket}/{key}: {detail}")]
    Read {
        bucket: String,
        key: String,
        detail: String,
    },
    #[error("s3://{bucket}/{key} is not an S3 Inventory manifest: {reason}")]
    Manifest {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error(
        "the inventory s3://{bucket}/{key} has no ObjectAccessControlList field: add \"Object ACL\" to the inventory configuration's metadata fields, or audit without it"
    )]
    NoAclField { bucket: String, key: String },
    #[error("the inventory is {0}: only CSV inventories are read")]
    Format(String),
    #[error("{file}, row {row}: {reason}")]
    Row { file: String, row: usize, reason: String },
    #[error(
        "no inventory report under s3://{bucket}/{prefix}: expected dated folders (2026-12-03T01-00Z/) holding a manifest.json; name the configuration's folder, <source bucket>/<configuration id>/"
    )]
    NoReport { bucket: String, prefix: String },
}

/// The newest complete report's `manifest.json` under `folder`, an inventory configuration's
/// folder in its destination (`s3://destination/<source bucket>/<configuration id>/`). S3
/// writes each report into a folder named for its date and time (`2026-12-03T01-00Z/`), which
/// sort as they happened, and writes its manifest last: the greatest such folder holding a
/// `manifest.json` is the newest complete report. So a schedule can name the folder, and each
/// run reads the report of its day. Needs `s3:ListBucket` on the destination.
pub async fn newest_manifest(client: &Client, folder: &S3Location) -> Result<S3Location, InventoryError> {
    let bucket = &folder.bucket;
    let prefix = match folder.prefix.as_str() {
        "" => String::new(),
        p if p.ends_with('/') => p.to_owned(),
        p => format!("{p}/"),
    };
    let read_error = |key: &str, detail: String| InventoryError::Read {
        bucket: bucket.clone(),
        key: key.to_owned(),
        detail,
    };
    let mut reports = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| read_error(&prefix, DisplayErrorContext(&err).to_string()))?;
        reports.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|common| common.prefix())
                .filter(|folder| folder.strip_prefix(prefix.as_str()).is_some_and(is_report_folder))
                .map(str::to_owned),
        );
    }
    reports.sort_unstable_by(|a, b| b.cmp(a));
    for report in reports {
        let key = format!("{report}manifest.json");
        let listed = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&key)
            .max_keys(1)
            .send()
            .await
            .map_err(|err| read_error(&key, DisplayErrorContext(&err).to_string()))?;
        if listed
            .contents()
            .iter()
            .any(|object| object.key() == Some(key.as_str()))
        {
            return Ok(S3Location {
                bucket: bucket.clone(),
                prefix: key,
            });
        }
    }
    Err(InventoryError::NoReport {
        bucket: bucket.clone(),
        prefix,
    })
}

/// A report's folder as S3 names it: `YYYY-MM-DDTHH-MMZ/`.
fn is_report_folder(name: &str) -> bool {
    let shape = b"0000-00-00T00-00Z/";
    name.len() == shape.len()
        && name
            .bytes()
            .zip(shape)
            .all(|(b, &want)| if want == b'0' { b.is_ascii_digit() } else { b == want })
}

/// The report's `manifest.json` at `manifest`, read whole.
pub async fn read_manifest(client: &Client, manifest: &S3Location) -> Result<InventoryManifest, InventoryError> {
    let (bucket, key) = (&manifest.bucket, &manifest.prefix);
    let bytes = read_object(client, bucket, key)
        .await
        .map_err(|detail| InventoryError::Read {
            bucket: bucket.clone(),
            key: key.clone(),
            detail,
        })?;
    serde_json::from_slice(&bytes).map_err(|err| InventoryError::Manifest {
        bucket: bucket.clone(),
        key: key.clone(),
        reason: err.to_string(),
    })
}

/// An inventory report's `manifest.json`; fields this reader does not use are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryManifest {
    pub source_bucket: String,
    pub file_format: String,
    pub file_schema: String,
    pub files: Vec<InventoryFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InventoryFile {
    pub key: String,
    #[serde(default)]
    pub size: Option<u64>,
}

/// What a row says of its object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryRow {
    /// The ACL, as GetObjectAcl would give it.
    Acl(ObjectAcl),
    /// The status is `UNAVAILABLE`: fetch it.
    Unavailable(ObjectRef),
    /// A delete marker (an inventory of versions): nothing to audit.
    DeleteMarker,
}

/// Where each field is in a row, from the manifest's `fileSchema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    key: usize,
    version_id: Option<usize>,
    is_delete_marker: Option<usize>,
    acl: usize,
    owner: Option<usize>,
    count: usize,
}

impl Columns {
    /// `None` when the schema has no `Key` or no `ObjectAccessControlList`.
    pub fn of(file_schema: &str) -> Option<Self> {
        let names: Vec<&str> = file_schema.split(',').map(str::trim).collect();
        let at = |name: &str| names.iter().position(|n| *n == name);
        Some(Columns {
            key: at("Key")?,
            version_id: at("VersionId"),
            is_delete_marker: at("IsDeleteMarker"),
            acl: at("ObjectAccessControlList")?,
            owner: at("ObjectOwner"),
            count: names.len(),
        })
    }

    /// One CSV line of the inventory.
    pub fn row(&self, line: &str) -> Result<InventoryRow, String> {
        let fields = split_csv(line)?;
        if fields.len() != self.count {
            return Err(format!("{} fields, the schema names {}", fields.len(), self.count));
        }
        let field = |at: Option<usize>| at.map(|i| fields[i].as_str()).filter(|value| !value.is_empty());
        if field(self.is_delete_marker) == Some("true") {
            return Ok(InventoryRow::DeleteMarker);
        }
        let key = url_decoded(&fields[self.key])?;
        let version_id = field(self.version_id).map(str::to_owned);
        decode_acl(&fields[self.acl], key, version_id, field(self.owner))
    }
}

/// The `ObjectAccessControlList` field of one object: base64 of `{version, status, grants}`.
pub fn decode_acl(
    field: &str,
    key: String,
    version_id: Option<String>,
    owner: Option<&str>,
) -> Result<InventoryRow, String> {
    #[derive(Deserialize)]
    struct AclField {
        status: String,
        #[serde(default)]
        grants: Vec<AclFieldGrant>,
    }
    #[derive(Deserialize)]
    struct AclFieldGrant {
        permission: String,
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        uri: Option<String>,
        #[serde(rename = "canonicalId", default)]
        canonical_id: Option<String>,
    }
    let object = ObjectRef { key, version_id };
    // S3 leaves the field empty, as it writes UNAVAILABLE, when it could not read the ACL.
    if field.is_empty() || field == "UNAVAILABLE" {
        return Ok(InventoryRow::Unavailable(object));
    }
    let json = aws_smithy_types::base64::decode(field)
        .map_err(|err| format!("ObjectAccessControlList is not base64: {err}"))?;
    let acl: AclField = serde_json::from_slice(&json)
        .map_err(|err| format!("ObjectAccessControlList is not the ACL field's JSON: {err}"))?;
    match acl.status.as_str() {
        "AVAILABLE" => {}
        "UNAVAILABLE" => return Ok(InventoryRow::Unavailable(object)),
        other => return Err(format!("ObjectAccessControlList status {other:?}")),
    }
    let grants = acl
        .grants
        .into_iter()
        .map(|grant| {
            let grantee = match (grant.kind.as_str(), grant.uri, grant.canonical_id) {
                ("Group", Some(uri), _) => Grantee::Group { uri },
                ("CanonicalUser", _, Some(id)) => Grantee::CanonicalUser { id },
                (kind, uri, id) => Grantee::Other {
                    description: format!("{kind} {}", uri.or(id).unwrap_or_default()),
                },
            };
            Grant {
                grantee,
                permission: grant.permission,
            }
        })
        .collect();
    Ok(InventoryRow::Acl(ObjectAcl {
        key: object.key,
        version_id: object.version_id,
        owner_id: owner.filter(|o| *o != "UNAVAILABLE").map(str::to_owned),
        grants,
    }))
}

/// One line of S3's CSV: fields in double quotes, a quote inside doubled; an unquoted field
/// is taken as it stands.
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed".to_owned()),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        match chars.next() {
            Some(',') => {}
            None => return Ok(fields),
            Some(c) => return Err(format!("{c:?} after a quoted field")),
        }
    }
}

/// Reads an inventory report a page of rows at a time.
pub struct InventoryReader {
    client: Client,
    /// The bucket the manifest and its files are in (the inventory's destination).
    bucket: String,
    pub manifest: InventoryManifest,
    columns: Columns,
    files: VecDeque<InventoryFile>,
    current: Option<OpenFile>,
    /// The index in the manifest's `files` of the next file to open.
    next_file: usize,
    /// Rows of the first file opened that an earlier run has read already.
    skip: usize,
}

struct OpenFile {
    key: String,
    body: ByteStream,
    decoder: MultiGzDecoder<Vec<u8>>,
    /// Decompressed bytes not yet cut into a whole line.
    partial: Vec<u8>,
    /// Rows read from the file so far, skipped ones included.
    rows: usize,
    /// Rows to pass over unparsed: read by an earlier run.
    skip: usize,
    /// The file's index in the manifest's `files`.
    index: usize,
    done: bool,
}

impl InventoryReader {
    /// Reads the manifest at `manifest` and checks that its files can be audited.
    pub async fn open(client: &Client, manifest: &S3Location) -> Result<Self, InventoryError> {
        Self::open_at(client, manifest, 0, 0, None).await
    }

    /// The same, to read from the row after the first `rows` of the manifest's `file`th file
    /// on: where an earlier run stopped ([`InventoryReader::position`]); up to and including
    /// the `last_file`th file when given, to the last otherwise.
    pub async fn open_at(
        client: &Client,
        manifest: &S3Location,
        file: usize,
        rows: usize,
        last_file: Option<usize>,
    ) -> Result<Self, InventoryError> {
        let (bucket, key) = (&manifest.bucket, &manifest.prefix);
        let parsed = read_manifest(client, manifest).await?;
        if parsed.file_format != "CSV" {
            return Err(InventoryError::Format(parsed.file_format));
        }
        let columns = Columns::of(&parsed.file_schema).ok_or_else(|| InventoryError::NoAclField {
            bucket: bucket.clone(),
            key: key.clone(),
        })?;
        Ok(InventoryReader {
            client: client.clone(),
            bucket: bucket.clone(),
            files: parsed
                .files
                .iter()
                .enumerate()
                .skip(file)
                .take_while(|(index, _)| last_file.is_none_or(|last| *index <= last))
                .map(|(_, file)| file.clone())
                .collect(),
            manifest: parsed,
            columns,
            current: None,
            next_file: file,
            skip: rows,
        })
    }

    /// Where the rows handed out so far end: the index of a file in the manifest's `files`,
    /// and the rows of it read. A page never spans two files, so this is exact between pages.
    pub fn position(&self) -> (usize, usize) {
        match &self.current {
            Some(file) => (file.index, file.rows),
            // Before the first file is opened, the place it was opened at.
            None => (self.next_file, self.skip),
        }
    }

    /// The next rows, up to [`ROWS_PER_PAGE`]; `None` once every file is read.
    pub async fn next_page(&mut self) -> Result<Option<Vec<InventoryRow>>, InventoryError> {
        let mut rows = Vec::new();
        while rows.len() < ROWS_PER_PAGE {
            if self.current.is_none() {
                // A page ends with its file, so that [`InventoryReader::position`] is a file's row.
                if !rows.is_empty() {
                    break;
                }
                let Some(file) = self.files.pop_front() else { break };
                self.current = Some(self.open_file(file).await?);
            }
            let Some(file) = self.current.as_mut() else { break };
            if !file.take_rows(&self.columns, &mut rows, ROWS_PER_PAGE)? {
                if file.done {
                    self.current = None;
                } else {
                    file.read_chunk(&self.bucket).await?;
                }
            }
        }
        Ok((!rows.is_empty()).then_some(rows))
    }

    async fn open_file(&mut self, file: InventoryFile) -> Result<OpenFile, InventoryError> {
        // Boxed: the SDK's call is the deepest frame under the audit's stream of pages; on a
        // debug build's 2 MiB test thread it overflowed there.
        let object = Box::pin(self.client.get_object().bucket(&self.bucket).key(&file.key).send())
            .await
            .map_err(|err| InventoryError::Read {
                bucket: self.bucket.clone(),
                key: file.key.clone(),
                detail: DisplayErrorContext(&err).to_string(),
            })?;
        let index = self.next_file;
        self.next_file += 1;
        Ok(OpenFile {
            key: file.key,
            body: object.body,
            decoder: MultiGzDecoder::new(Vec::new()),
            partial: Vec::new(),
            rows: 0,
            skip: std::mem::take(&mut self.skip),
            index,
            done: false,
        })
    }
}

impl OpenFile {
    /// Moves whole lines into `rows` up to `limit`; false when none was left to take.
    fn take_rows(
        &mut self,
        columns: &Columns,
        rows: &mut Vec<InventoryRow>,
        limit: usize,
    ) -> Result<bool, InventoryError> {
        let decoded = self.decoder.get_mut();
        if !decoded.is_empty() {
            self.partial.append(decoded);
        }
        let mut took = false;
        let mut start = 0;
        while rows.len() < limit {
            let Some(end) = self.partial[start..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let line = &self.partial[start..start + end];
            start += end + 1;
            took |= push_row(&self.key, &mut self.rows, self.skip, columns, line, rows)?;
        }
        if self.done && rows.len() < limit && start < self.partial.len() {
            // The last line of a file need not end with a newline.
            let line = &self.partial[start..];
            start = self.partial.len();
            took |= push_row(&self.key, &mut self.rows, self.skip, columns, line, rows)?;
        }
        self.partial.drain(..start);
        if self.partial.len() > MOST_ROW_BYTES && !self.partial.contains(&b'\n') {
            return Err(InventoryError::Row {
                file: self.key.clone(),
                row: self.rows + 1,
                reason: format!("no line break in its first {MOST_ROW_BYTES} bytes"),
            });
        }
        Ok(took)
    }

    /// Reads and decompresses the next chunk of the body; marks the file done at its end.
    async fn read_chunk(&mut self, bucket: &str) -> Result<(), InventoryError> {
        let read_error = |detail: String| InventoryError::Read {
            bucket: bucket.to_owned(),
            key: self.key.clone(),
            detail,
        };
        match self.body.try_next().await.map_err(|err| read_error(err.to_string()))? {
            Some(chunk) => {
                for piece in chunk.chunks(4096) {
                    self.decoder
                        .write_all(piece)
                        .map_err(|err| read_error(format!("not gzip: {err}")))?;
                    if self.decoder.get_ref().len() + self.partial.len() > MOST_PENDING_BYTES {
                        return Err(read_error(format!(
                            "more than {MOST_PENDING_BYTES} bytes decompressed without their rows taken: not an inventory file"
                        )));
                    }
                }
                Ok(())
            }
            None => {
                self.decoder
                    .try_finish()
                    .map_err(|err| read_error(format!("not gzip: {err}")))?;
                self.done = true;
                Ok(())
            }
        }
    }
}

/// Parses one line of `file` (its `count`th row) into `rows`, unless it is one of the first
/// `skip`; false for an empty line.
fn push_row(
    file: &str,
    count: &mut usize,
    skip: usize,
    columns: &Columns,
    line: &[u8],
    rows: &mut Vec<InventoryRow>,
) -> Result<bool, InventoryError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Ok(false);
    }
    *count += 1;
    if *count <= skip {
        return Ok(true);
    }
    let row_error = |reason: String| InventoryError::Row {
        file: file.to_owned(),
        row: *count,
        reason,
    };
    if line.len() > MOST_ROW_BYTES {
        return Err(row_error(format!("no line break in its first {MOST_ROW_BYTES} bytes")));
    }
    let text = std::str::from_utf8(line).map_err(|err| row_error(format!("not UTF-8: {err}")))?;
    rows.push(columns.row(text).map_err(row_error)?);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, ObjectAccessControlList, ObjectOwner";

    fn acl_field(json: &str) -> String {
        aws_smithy_types::base64::encode(json)
    }

    fn line(key: &str, delete_marker: bool, acl: &str) -> String {
        format!("\"audited\",\"{key}\",\"v1\",\"true\",\"{delete_marker}\",\"16\",\"{acl}\",\"owner-id\"")
    }

    #[test]
    fn report_folders_are_named_for_their_date_and_time() {
        assert!(is_report_folder("2026-12-03T01-00Z/"));
        for other in [
            "2026-12-03T01-00Z",
            "data/",
            "hive/",
            "2026-12-03T01-00Z/x/",
            "2026-1a-03T01-00Z/",
        ] {
            assert!(!is_report_folder(other), "{other}");
        }
    }

    #[test]
    fn grants_of_each_type_are_read_as_get_object_acl_gives_them() {
        let columns = Columns::of(SCHEMA).unwrap();
        let acl = acl_field(
            r#"{"version":"2022-11-10","status":"AVAILABLE","grants":[
                {"canonicalId":"owner-id","type":"CanonicalUser","permission":"FULL_CONTROL"},
                {"uri":"http://acs.amazonaws.com/groups/global/AllUsers","type":"Group","permission":"READ"},
                {"uri":"http://acs.amazonaws.com/groups/global/AuthenticatedUsers","type":"Group","permission":"READ_ACP"}]}"#,
        );
        let row = columns.row(&line("dir/a+b%2Bc%C3%A9.txt", false, &acl)).unwrap();
        let InventoryRow::Acl(acl) = row else { panic!("{row:?}") };
        assert_eq!(acl.key, "dir/a b+cé.txt", "form-URL-decoded");
        assert_eq!(acl.version_id.as_deref(), Some("v1"));
        assert_eq!(acl.owner_id.as_deref(), Some("owner-id"));
        assert_eq!(
            acl.grants,
            [
                Grant {
                    grantee: Grantee::CanonicalUser { id: "owner-id".into() },
                    permission: "FULL_CONTROL".into()
                },
                Grant {
                    grantee: Grantee::Group {
                        uri: "http://acs.amazonaws.com/groups/global/AllUsers".into()
                    },
                    permission: "READ".into()
                },
                Grant {
                    grantee: Grantee::Group {
                        uri: "http://acs.amazonaws.com/groups/global/AuthenticatedUsers".into()
                    },
                    permission: "READ_ACP".into()
                },
            ]
        );
    }

    #[test]
    fn unavailable_acls_are_handed_on_and_delete_markers_skipped() {
        let columns = Columns::of(SCHEMA).unwrap();
        let unavailable = acl_field(r#"{"version":"2022-11-10","status":"UNAVAILABLE"}"#);
        assert_eq!(
            columns.row(&line("k", false, &unavailable)).unwrap(),
            InventoryRow::Unavailable(ObjectRef {
                key: "k".into(),
                version_id: Some("v1".into())
            })
        );
        assert!(matches!(
            columns.row(&line("k", false, "")).unwrap(),
            InventoryRow::Unavailable(_)
        ));
        assert_eq!(columns.row(&line("k", true, "")).unwrap(), InventoryRow::DeleteMarker);
    }

    #[test]
    fn a_schema_without_the_acl_field_and_bad_rows_are_named() {
        assert_eq!(Columns::of("Bucket, Key, Size"), None);
        let columns = Columns::of(SCHEMA).unwrap();
        assert!(
            columns
                .row("\"audited\",\"k\"")
                .unwrap_err()
                .contains("2 fields, the schema names 8")
        );
        assert!(
            columns
                .row(&line("k", false, "!!!"))
                .unwrap_err()
                .contains("not base64")
        );
        assert!(
            columns
                .row("\"audited,\"k")
                .unwrap_err()
                .contains("after a quoted field")
        );
        let other = acl_field(r#"{"version":"2022-11-10","status":"PENDING","grants":[]}"#);
        assert!(columns.row(&line("k", false, &other)).unwrap_err().contains("PENDING"));
    }

    #[test]
    fn quoted_fields_keep_commas_and_doubled_quotes() {
        assert_eq!(split_csv(r#""a,b","c""d",e"#).unwrap(), ["a,b", "c\"d", "e"]);
        assert_eq!(split_csv("").unwrap(), [""]);
    }
}
