//! The S3 Inventory reader against what no S3 writes: arbitrary rows, ACL fields and file bodies
//! give rows or a clear error, never a panic, and a file with no line break is refused at
//! [`MOST_ROW_BYTES`] rather than held whole.

use test_support as common;

use std::io::Write as _;

use acl_audit::model::S3Location;
use acl_audit::s3::inventory::{Columns, InventoryError, InventoryReader, MOST_ROW_BYTES, decode_acl};
use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;

const SCHEMA: &str = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, ObjectOwner, ObjectAccessControlList";

proptest! {
    #[test]
    fn any_line_is_a_row_or_a_reason(line in any::<String>()) {
        let columns = Columns::of(SCHEMA).unwrap();
        if let Err(reason) = columns.row(&line) {
            prop_assert!(!reason.is_empty());
        }
    }

    #[test]
    fn any_quoted_fields_are_a_row_or_a_reason(fields in proptest::collection::vec(any::<String>(), 7)) {
        let columns = Columns::of(SCHEMA).unwrap();
        let line = fields.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect::<Vec<_>>().join(",");
        let _ = columns.row(&line);
    }

    #[test]
    fn any_acl_field_is_an_acl_or_a_reason(field in any::<String>(), json in any::<String>()) {
        let _ = decode_acl(&field, "k".to_owned(), None, None);
        let encoded = aws_smithy_types::base64::encode(json.as_bytes());
        let _ = decode_acl(&encoded, "k".to_owned(), None, Some("owner"));
    }

    #[test]
    fn any_schema_is_columns_or_none(schema in any::<String>()) {
        let _ = Columns::of(&schema);
    }
}

async fn read_all(client: &aws_sdk_s3::Client, body: Vec<u8>) -> Result<usize, InventoryError> {
    let manifest = serde_json::json!({
        "sourceBucket": "audited", "destinationBucket": "arn:aws:s3:::inv", "version": "2016-11-30",
        "fileFormat": "CSV", "fileSchema": SCHEMA,
        "files": [{"key": "data/one.csv.gz", "size": body.len(), "MD5checksum": "x"}]
    });
    for (key, bytes) in [
        ("data/one.csv.gz", body),
        ("manifest.json", manifest.to_string().into_bytes()),
    ] {
        client
            .put_object()
            .bucket("inv")
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .unwrap();
    }
    let location = S3Location {
        bucket: "inv".to_owned(),
        prefix: "manifest.json".to_owned(),
    };
    let mut reader = InventoryReader::open(client, &location).await?;
    let mut rows = 0;
    while let Some(page) = reader.next_page().await? {
        rows += page.len();
    }
    Ok(rows)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn files_no_s3_writes_are_refused_with_a_reason() {
    let (_s3, client) = common::endpoint().await;
    client.create_bucket().bucket("inv").send().await.unwrap();
    // Not gzip.
    let err = read_all(&client, b"plain text".to_vec()).await.unwrap_err();
    assert!(err.to_string().contains("not gzip"), "{err}");
    // A row with no line break past the longest row: refused, not held whole.
    let endless = vec![b'x'; MOST_ROW_BYTES + 4096];
    let err = read_all(&client, gzip(&endless)).await.unwrap_err();
    assert!(err.to_string().contains("no line break"), "{err}");
    // A gzip bomb, 100 MB in about 100 KB: refused once its pending bytes pass a bound (a bomb
    // of blank lines is read a chunk at a time, in bounded memory, and holds no row).
    let bomb = gzip(&vec![b'x'; 100 << 20]);
    assert!(bomb.len() < 1 << 20);
    let err = read_all(&client, bomb).await.unwrap_err().to_string();
    assert!(err.contains("no line break") || err.contains("decompressed"), "{err}");
    assert_eq!(read_all(&client, gzip(&vec![b'\n'; 100 << 20])).await.unwrap(), 0);
}
