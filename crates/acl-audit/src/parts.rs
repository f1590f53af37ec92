//! A bucket cut into parts that audit side by side and each fit one invocation's input: what
//! the state machine's Map hands its workers (docs/scale-out.md, "The state machine"). Each
//! part is a [`Resume`] token, the same a truncated run hands on, so a worker audits a part
//! as it would carry on any run:
//! - a listing's parts are [`KeyRange`]s cut from the target's first page at the keys
//!   [`ranges::cut_points`] guesses (the ranges tile the key space, so every key is in
//!   exactly one part);
//! - an S3 Inventory report's parts are its files, one each ([`InventoryCursor::last_file`]);
//! - a part whose run stopped at its deadline is cut again by [`split`]: each range it had
//!   left becomes a part of its own, and the keys it had listed but not fetched are shared out
//!   among keys-only parts of at most [`MAX_PART_BYTES`].

use aws_sdk_s3::Client;

use crate::model::{InventoryCursor, KeyRange, ObjectRef, Resume, S3Location, Target};
use crate::s3::error::ListError;
use crate::s3::inventory::{InventoryError, InventoryReader};
use crate::s3::listing::{KeyPages, ListingEnd};
use crate::s3::ranges;

/// The most one part's token may take as JSON: a child execution's input is at most 256 KiB,
/// and the part is wrapped in an event (`{"resume": …, "map_part": true}`) with room to spare.
pub const MAX_PART_BYTES: usize = 200 * 1024;

/// A token for the whole of `target` from its start: a part when the target is one page, or
/// lists versions (one chain of pages: ListObjectVersions' cursor is a key and a version).
fn whole(target: &Target) -> Resume {
    Resume {
        versions: target.include_versions,
        listing_complete: false,
        ..Resume::keys_only(target.bucket.clone(), Vec::<ObjectRef>::new())
    }
    .under(target.prefix.clone())
}

/// Parts of `target`'s key space, up to `most`: the target's first page is listed and the
/// keys after it cut at the points its keys suggest; the first part is that page's own range.
/// A target of one page, or of versions, is one part.
pub async fn plan_listing(client: &Client, target: &Target, most: usize) -> Result<Vec<Resume>, ListError> {
    if target.include_versions || most <= 1 {
        return Ok(vec![whole(target)]);
    }
    let probe = Target {
        max_objects: None,
        resume: None,
        ..target.clone()
    };
    let mut pages = KeyPages::new(client, &probe);
    let page: Vec<String> = pages
        .next_page()
        .await?
        .unwrap_or_default()
        .into_iter()
        .map(|object| object.key)
        .collect();
    // Asks for the page after: the paginator says the listing is complete only then.
    let complete = pages.end() == Some(ListingEnd::Complete) || page.len() < 1000;
    let Some(last) = page.last().filter(|_| !complete) else {
        return Ok(vec![whole(target)]);
    };
    let prefix = target.prefix.as_deref().unwrap_or("");
    let rest = KeyRange {
        after: Some(last.clone()),
        through: None,
    };
    let first = KeyRange {
        after: None,
        through: Some(last.clone()),
    };
    let ranges = std::iter::once(first).chain(ranges::cut(&rest, &page, prefix, most - 1));
    Ok(ranges.map(|range| range_part(target, range)).collect())
}

fn range_part(target: &Target, range: KeyRange) -> Resume {
    Resume {
        ranges: vec![range],
        ..whole(target)
    }
}

/// Parts of an S3 Inventory report of `bucket`: one per file its manifest names (none for a
/// report of no files). The manifest is read and checked as a run reading it would.
pub async fn plan_inventory(
    client: &Client,
    manifest: &S3Location,
    bucket: &str,
) -> Result<Vec<Resume>, InventoryError> {
    let reader = InventoryReader::open(client, manifest).await?;
    let files = reader.manifest.files.len();
    Ok((0..files)
        .map(|file| Resume {
            listing_complete: false,
            inventory: Some(InventoryCursor {
                manifest: manifest.to_string(),
                file,
                rows: 0,
                last_file: Some(file),
            }),
            ..Resume::keys_only(bucket.to_owned(), Vec::<ObjectRef>::new())
        })
        .collect())
}

/// A stopped part's token as parts for the next pass: each range left its own part (a range
/// of keys listed one page after another is cut this way at the Map's level), the rest of a
/// listing or an inventory file as one part, and the keys listed but not fetched in keys-only
/// parts of at most `max_bytes` of JSON each.
pub fn split(mut token: Resume, max_bytes: usize) -> Vec<Resume> {
    let keys = std::mem::take(&mut token.keys);
    let mut parts = Vec::new();
    let keys_part = |keys: Vec<ObjectRef>| {
        Resume {
            versions: token.versions,
            ..Resume::keys_only(token.bucket.clone(), keys)
        }
        .under(token.prefix.clone())
    };
    let mut chunk = Vec::new();
    let mut bytes = 0;
    let mut keys_parts = Vec::new();
    for key in keys {
        let size = json_size(&key);
        if !chunk.is_empty() && bytes + size > max_bytes {
            keys_parts.push(keys_part(std::mem::take(&mut chunk)));
            bytes = 0;
        }
        bytes += size;
        chunk.push(key);
    }
    if !chunk.is_empty() {
        keys_parts.push(keys_part(chunk));
    }
    if !token.listing_complete {
        let ranges = std::mem::take(&mut token.ranges);
        if ranges.len() > 1 {
            parts.extend(ranges.into_iter().map(|range| Resume {
                ranges: vec![range],
                ..token.clone()
            }));
        } else {
            token.ranges = ranges;
            parts.push(token);
        }
    }
    parts.extend(keys_parts);
    parts
}

/// What `key` takes in a token's `keys` (`{"key":…,"version_id":…},`).
fn json_size(key: &ObjectRef) -> usize {
    let quoted = |text: &str| serde_json::to_string(text).map_or(text.len() + 2, |json| json.len());
    "{\"key\":,\"version_id\":null},".len() + quoted(&key.key) + key.version_id.as_deref().map_or(0, quoted)
}

impl Resume {
    fn under(mut self, prefix: Option<String>) -> Self {
        self.prefix = prefix;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(keys: usize, key_len: usize, ranges: usize) -> Resume {
        Resume {
            listing_complete: ranges == 0,
            ranges: (0..ranges)
                .map(|n| KeyRange {
                    after: Some(format!("r{n}")),
                    through: Some(format!("r{}", n + 1)),
                })
                .collect(),
            ..Resume::keys_only(
                "b".to_owned(),
                (0..keys).map(|n| format!("{n:0>width$}", width = key_len)),
            )
        }
    }

    #[test]
    fn a_thousand_keys_of_1024_bytes_split_into_parts_that_fit_a_child_input() {
        let parts = split(token(1000, 1024, 0), MAX_PART_BYTES);
        assert!(parts.len() >= 5, "{}", parts.len());
        let mut keys = Vec::new();
        for part in &parts {
            let event = serde_json::json!({ "resume": part, "map_part": true });
            let size = serde_json::to_vec(&event).unwrap().len();
            assert!(size < 256 * 1024, "{size} bytes");
            assert!(part.listing_complete && part.ranges.is_empty());
            keys.extend(part.keys.iter().cloned());
        }
        assert_eq!(keys, token(1000, 1024, 0).keys, "every key once, in order");
    }

    #[test]
    fn each_range_left_is_a_part_of_its_own_and_the_keys_follow() {
        let parts = split(token(3, 10, 4), MAX_PART_BYTES);
        assert_eq!(parts.len(), 5);
        for (n, part) in parts[..4].iter().enumerate() {
            assert_eq!(part.ranges.len(), 1);
            assert_eq!(part.ranges[0].after.as_deref(), Some(format!("r{n}").as_str()));
            assert!(part.keys.is_empty() && !part.listing_complete);
        }
        assert_eq!(parts[4].keys.len(), 3);
        assert!(parts[4].listing_complete);
        assert!(
            split(token(0, 10, 0), MAX_PART_BYTES).is_empty(),
            "nothing left, no part"
        );
    }

    #[test]
    fn an_inventory_files_rest_stays_one_part() {
        let mut stopped = token(2, 10, 0);
        stopped.listing_complete = false;
        stopped.inventory = Some(InventoryCursor {
            manifest: "s3://inv/m.json".to_owned(),
            file: 3,
            rows: 500,
            last_file: Some(3),
        });
        let parts = split(stopped.clone(), MAX_PART_BYTES);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].inventory, stopped.inventory);
        assert!(parts[0].keys.is_empty());
        assert_eq!(parts[1].keys, stopped.keys);
    }
}
