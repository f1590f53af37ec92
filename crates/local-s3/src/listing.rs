//! ListObjectsV2 paging: prefix, delimiter (common prefixes), max-keys, start-after and
//! continuation tokens, computed over the store's ordered keys.

use std::ops::Bound;

use crate::store::{Store, StoreError, StoredObject};

/// S3 never returns more than this many entries per page, whatever max-keys asks for.
pub const MAX_KEYS_LIMIT: usize = 1000;

#[derive(Debug, Clone, Default)]
pub struct ListRequest<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub max_keys: usize,
    /// Return only entries after this one: the decoded continuation token, else start-after.
    pub after: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: i64,
    pub etag: String,
    pub last_modified: std::time::SystemTime,
}

#[derive(Debug, Default)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    pub common_prefixes: Vec<String>,
    /// Where the next page starts, when this one is truncated.
    pub next_after: Option<String>,
}

pub fn list_page(store: &Store, bucket: &str, request: &ListRequest<'_>) -> Result<ListPage, StoreError> {
    let ListRequest {
        prefix,
        delimiter,
        max_keys,
        after,
    } = *request;
    let max_keys = max_keys.min(MAX_KEYS_LIMIT);
    // Keys under one prefix are contiguous: start at the prefix or just past the marker.
    let from = match after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };

    let mut page = ListPage::default();
    let mut last_entry: Option<String> = None;
    let mut truncated = false;
    store.scan(bucket, from, |key, object: &StoredObject| {
        if !key.starts_with(prefix) {
            return false;
        }
        let common_prefix = delimiter.and_then(|d| {
            key[prefix.len()..]
                .find(d)
                .map(|at| &key[..prefix.len() + at + d.len()])
        });
        let entry = common_prefix.unwrap_or(key);
        // A marker naming a common prefix skips every key under it.
        if after.is_some_and(|after| entry <= after) || last_entry.as_deref() == Some(entry) {
            return true;
        }
        if page.objects.len() + page.common_prefixes.len() == max_keys {
            truncated = true;
            return false;
        }
        match common_prefix {
            Some(cp) => page.common_prefixes.push(cp.to_owned()),
            None => page.objects.push(ListedObject {
                key: key.to_owned(),
                size: object.body.len() as i64,
                etag: object.etag.clone(),
                last_modified: object.last_modified,
            }),
        }
        last_entry = Some(entry.to_owned());
        true
    })?;
    page.next_after = if truncated { last_entry } else { None };
    Ok(page)
}

/// Continuation tokens are opaque to clients; hex keeps any key safe in XML and URLs.
pub fn encode_token(after: &str) -> String {
    after.bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn decode_token(token: &str) -> Option<String> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Acl;
    use crate::store::StoredObject;

    fn store_with(keys: &[&str]) -> Store {
        let store = Store::default();
        store.create_bucket("b").unwrap();
        for key in keys {
            store
                .put_object("b", key, StoredObject::new("x".into(), Acl::private()))
                .unwrap();
        }
        store
    }

    fn keys(page: &ListPage) -> Vec<&str> {
        page.objects.iter().map(|o| o.key.as_str()).collect()
    }

    #[test]
    fn pages_resume_after_the_marker() {
        let store = store_with(&["a", "b", "c", "d", "e"]);
        let first = list_page(
            &store,
            "b",
            &ListRequest {
                max_keys: 2,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(keys(&first), ["a", "b"]);
        assert_eq!(first.next_after.as_deref(), Some("b"));
        let request = ListRequest {
            max_keys: 2,
            after: first.next_after.as_deref(),
            ..Default::default()
        };
        let second = list_page(&store, "b", &request).unwrap();
        assert_eq!(keys(&second), ["c", "d"]);
        let request = ListRequest {
            max_keys: 2,
            after: second.next_after.as_deref(),
            ..Default::default()
        };
        let last = list_page(&store, "b", &request).unwrap();
        assert_eq!(keys(&last), ["e"]);
        assert_eq!(last.next_after, None);
    }

    #[test]
    fn delimiter_groups_keys_into_common_prefixes_across_pages() {
        let store = store_with(&["a/1", "a/2", "b/1", "c", "d/1"]);
        let request = ListRequest {
            delimiter: Some("/"),
            max_keys: 2,
            ..Default::default()
        };
        let first = list_page(&store, "b", &request).unwrap();
        assert_eq!(first.common_prefixes, ["a/", "b/"]);
        assert!(first.objects.is_empty());
        let request = ListRequest {
            after: first.next_after.as_deref(),
            ..request
        };
        let second = list_page(&store, "b", &request).unwrap();
        assert_eq!(keys(&second), ["c"]);
        assert_eq!(second.common_prefixes, ["d/"]);
        assert_eq!(second.next_after, None);
    }

    #[test]
    fn prefix_limits_the_listing() {
        let store = store_with(&["logs/1", "logs/2", "data/1", "logz"]);
        let request = ListRequest {
            prefix: "logs/",
            max_keys: 1000,
            ..Default::default()
        };
        assert_eq!(keys(&list_page(&store, "b", &request).unwrap()), ["logs/1", "logs/2"]);
    }

    #[test]
    fn max_keys_is_capped_at_one_thousand() {
        let names: Vec<String> = (0..1005).map(|i| format!("k{i:04}")).collect();
        let store = store_with(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let page = list_page(
            &store,
            "b",
            &ListRequest {
                max_keys: 5000,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(page.objects.len(), 1000);
        assert!(page.next_after.is_some());
    }

    #[test]
    fn tokens_round_trip_any_key() {
        for key in ["plain", "with space/and+plus", "ünïcödé", ""] {
            assert_eq!(decode_token(&encode_token(key)).as_deref(), Some(key));
        }
        assert_eq!(decode_token("zz"), None);
        assert_eq!(decode_token("abc"), None);
    }
}
