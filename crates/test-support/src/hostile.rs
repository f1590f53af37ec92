//! Keys S3 accepts that break careless clients: every control character, characters XML 1.0
//! cannot carry, NFC/NFD twins, 1 024-byte keys of 1-, 2- and 4-byte characters, keys of
//! whitespace alone, and keys that look URL-encoded. Half of them are written public-read, so a
//! test can check that the findings name exactly those, byte for byte.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectCannedAcl;

/// Every hostile key, each once.
pub fn keys() -> Vec<String> {
    let mut keys: Vec<String> = (0x01u8..=0x1F)
        .chain([0x7F])
        .map(|byte| format!("ctl-{byte:02x}-{}-end", char::from(byte)))
        .collect();
    keys.extend(
        [
            "\u{1}",
            "nonchar-\u{FFFE}",
            "nonchar-\u{FFFF}",
            // NFC and NFD of the same word: two keys to S3.
            "caf\u{e9}",
            "cafe\u{301}",
            " ",
            "   ",
            "\t \n",
            "+",
            "a+b c",
            "%2B",
            "100%",
            "dir/ leading space",
            "trailing space ",
        ]
        .map(str::to_owned),
    );
    keys.push("a".repeat(1024));
    keys.push("é".repeat(512));
    keys.push("😀".repeat(256));
    keys
}

/// The keys of `keys` [`arrange`] writes public-read: every other one.
pub fn public_keys(keys: &[String]) -> Vec<String> {
    keys.iter().step_by(2).cloned().collect()
}

/// The hostile keys moto_server can hold: werkzeug's routing does not match a path whose key
/// holds a line break (its rules' `.` stops at one), so those two are local-s3's alone.
pub fn keys_moto_routes() -> Vec<String> {
    keys().into_iter().filter(|key| !key.contains(['\n', '\r'])).collect()
}

/// Creates `bucket` and writes every hostile key into it through S3's API, every other one
/// public-read. A key of whitespace alone goes through the stand-in the audit itself uses
/// (aws-sdk-s3 refuses to build its request: awslabs/aws-sdk-rust#1216).
pub async fn arrange(client: &Client, bucket: &str, keys: &[String]) {
    client.create_bucket().bucket(bucket).send().await.unwrap();
    for (n, key) in keys.iter().enumerate() {
        let acl = if n % 2 == 0 {
            ObjectCannedAcl::PublicRead
        } else {
            ObjectCannedAcl::Private
        };
        let put = client
            .put_object()
            .bucket(bucket)
            .acl(acl)
            .body(ByteStream::from_static(b"x"));
        let sent = if key.trim().is_empty() {
            let path = format!("/{}", percent(key));
            put.key("stand-in")
                .customize()
                .mutate_request(move |request| {
                    let uri = request.uri().replacen("/stand-in", &path, 1);
                    request.set_uri(uri).unwrap();
                })
                .send()
                .await
        } else {
            put.key(key).send().await
        };
        sent.unwrap_or_else(|err| panic!("{key:?} not written: {}", aws_sdk_s3::error::DisplayErrorContext(&err)));
    }
}

fn percent(key: &str) -> String {
    key.bytes().map(|byte| format!("%{byte:02X}")).collect()
}
