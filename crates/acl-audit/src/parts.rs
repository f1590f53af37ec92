//! A bucket cut into parts that audit side by side and each fit one invocation's input: what
//! the state machine's Map hands its workers (docs/scale-out.md, "The state machine"). Each
//! part is a [`Resume`] token, the same a truncated run hands on, so a worker audits a part
//! as it would carry on any run:
//! - a listing's parts are [`KeyRange`]s cut from the target's first page at the keys
//!   [`ranges::cut_points`] guesses, then cut again after the first page of each that holds
//!   more than a page, the empty ones folded into their neighbours (the ranges tile the key
//!   space, so every key is in exactly one part);
//! - an S3 Inventory report's parts are its files, one each ([`InventoryCursor::last_file`]);
//! - a part whose run stopped at its deadline is cut again by [`split`]: each range it had
//!   left becomes a part of its own, and the keys it had listed but not fetched are shared out
//!   among keys-only parts of at most [`MAX_PART_BYTES`].

use aws_sdk_s3::Client;
use futures::StreamExt;
use futures::stream;

use crate::model::{Cursor, InventoryCursor, KeyRange, ObjectRef, Resume, S3Location, Target};
use crate::s3::error::ListError;
use crate::s3::inventory::{InventoryError, InventoryReader};
use crate::s3::listing::{RangePage, list_range};
use crate::s3::ranges;

/// The most one part's token may take as JSON: a child execution's input is at most 256 KiB,
/// and the part is wrapped in an event (`{"resume": …, "map_part": true}`) with room to spare.
pub const MAX_PART_BYTES: usize = 200 * 1024;

/// A token for the whole of `target` from its start: a part when the target is one page, or
/// lists versions (one chain of pages: ListObjectVersions' cursor is a key and a version).
fn whole(target: &Target) -> Resume {
    Resume {
        versions: target.include_versions,
        cursor: Cursor::START,
        ..Resume::keys_only(target.bucket.clone(), Vec::<ObjectRef>::new())
    }
    .under(target.prefix.clone())
}

/// Rounds in which the plan lists the first page of each range it has not yet sized, to cut the
/// large ones again and fold the empty ones into their neighbours.
const PROBE_ROUNDS: usize = 4;

/// First pages asked for at once while probing.
const PROBES_AT_ONCE: usize = 16;

/// What a range's first page says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Size {
    /// Not listed yet.
    Unknown,
    /// No key.
    Empty,
    /// This many pages at most: one, for a range whose first page showed its end; more for
    /// small ranges merged.
    Pages(usize),
    /// More than a page: that page's keys, to cut what follows it.
    Large(Vec<String>),
}

/// Parts of `target`'s key space, about `most` of them: the target's first page is listed and
/// the keys after it cut at the points its keys suggest; then, for a few rounds, each range's
/// own first page is listed (one request each, several at once), a range holding more than a
/// page is cut again after it, and a range holding no key is folded into its neighbour, so that
/// the parts are neither empty nor, where a page can tell, much larger than the rest. A target
/// of one page, or of versions, is one part.
pub async fn plan_listing(client: &Client, target: &Target, most: usize) -> Result<Vec<Resume>, ListError> {
    if target.include_versions || most <= 1 {
        return Ok(vec![whole(target)]);
    }
    let prefix = target.prefix.as_deref().unwrap_or("");
    let all = KeyRange::ALL;
    let mut ranges = match probe(client, target, &all).await? {
        Size::Large(page) => vec![(all, Size::Large(page))],
        _ => return Ok(vec![whole(target)]),
    };
    // Cut finer than asked (a cut's points come nearest first, so a few points leave the bulk
    // in the last range), then merge the small ranges back down to `most`.
    let finest = most.saturating_mul(OVERCUT);
    for _ in 0..PROBE_ROUNDS {
        let large = ranges.iter().filter(|(_, size)| matches!(size, Size::Large(_))).count();
        if large == 0 || ranges.len() >= finest {
            break;
        }
        let per_range = ((finest - ranges.len()) / large + 1).max(2);
        ranges = ranges
            .into_iter()
            .flat_map(|(range, size)| match size {
                Size::Large(page) => cut_after_page(&range, &page, prefix, per_range),
                size => vec![(range, size)],
            })
            .collect();
        // Owned ranges and indices: a closure over borrowed ones makes a future that a
        // Send-bound caller (the functions' runtime task) cannot prove general enough.
        let to_size: Vec<(usize, KeyRange)> = ranges
            .iter()
            .enumerate()
            .filter(|(_, (_, size))| *size == Size::Unknown)
            .map(|(index, (range, _))| (index, range.clone()))
            .collect();
        let probed: Vec<(usize, Result<Size, ListError>)> = stream::iter(to_size)
            .map(|(index, range)| async move { (index, probe(client, target, &range).await) })
            .buffer_unordered(PROBES_AT_ONCE)
            .collect()
            .await;
        for (index, size) in probed {
            ranges[index].1 = size?;
        }
        ranges = fold_empty(ranges);
    }
    Ok(merge_small(ranges, most)
        .into_iter()
        .map(|(range, _)| range_part(target, range))
        .collect())
}

/// How many times `most` ranges the plan cuts at most before merging.
const OVERCUT: usize = 4;

/// Merges neighbouring ranges of known size, the pair of fewest pages first, until at most
/// `most` are left or no two neighbours have a known size.
fn merge_small(mut ranges: Vec<(KeyRange, Size)>, most: usize) -> Vec<(KeyRange, Size)> {
    while ranges.len() > most.max(1) {
        let pages = |size: &Size| match size {
            Size::Pages(pages) => Some(*pages),
            Size::Empty => Some(0),
            Size::Unknown | Size::Large(_) => None,
        };
        let fewest = (1..ranges.len())
            .filter_map(|at| Some((pages(&ranges[at - 1].1)? + pages(&ranges[at].1)?, at)))
            .min();
        let Some((sum, at)) = fewest else { break };
        let (next, _) = ranges.remove(at);
        let (previous, size) = &mut ranges[at - 1];
        previous.through = next.through;
        *size = Size::Pages(sum);
    }
    ranges
}

/// `range`, whose first page is `page` (a full one), as that page's own range (a page: small)
/// and the rest after it cut into up to `most` ranges not yet sized.
fn cut_after_page(range: &KeyRange, page: &[String], prefix: &str, most: usize) -> Vec<(KeyRange, Size)> {
    let Some(last) = page.last() else {
        return vec![(range.clone(), Size::Unknown)];
    };
    let head = KeyRange {
        after: range.after.clone(),
        through: Some(last.clone()),
    };
    let rest = KeyRange {
        after: Some(last.clone()),
        through: range.through.clone(),
    };
    std::iter::once((head, Size::Pages(1)))
        .chain(
            ranges::cut(&rest, page, prefix, most)
                .into_iter()
                .map(|range| (range, Size::Unknown)),
        )
        .collect()
}

/// Folds each range found empty into the one before it (the first into the one after), so that
/// the ranges still tile the key space.
fn fold_empty(ranges: Vec<(KeyRange, Size)>) -> Vec<(KeyRange, Size)> {
    let mut kept: Vec<(KeyRange, Size)> = Vec::with_capacity(ranges.len());
    let mut leading: Option<KeyRange> = None;
    for (range, size) in ranges {
        match (size, kept.last_mut()) {
            (Size::Empty, Some((previous, _))) => previous.through = range.through,
            (Size::Empty, None) => {
                let start = leading.map_or(range.after.clone(), |leading| leading.after);
                leading = Some(KeyRange { after: start, ..range });
            }
            (size, _) => {
                let range = match leading.take() {
                    Some(leading) => KeyRange {
                        after: leading.after,
                        ..range
                    },
                    None => range,
                };
                kept.push((range, size));
            }
        }
    }
    match (leading, kept.is_empty()) {
        // Every range empty: the whole of them, as one.
        (Some(leading), true) => vec![(leading, Size::Empty)],
        _ => kept,
    }
}

/// The first page of `range`: whether it holds no key, one page at most, or more.
async fn probe(client: &Client, target: &Target, range: &KeyRange) -> Result<Size, ListError> {
    let RangePage {
        keys,
        past_the_end,
        more,
    } = list_range(client, &target.bucket, target.prefix.as_deref(), range, 1000).await?;
    Ok(match (keys.is_empty(), more && !past_the_end) {
        (true, false) => Size::Empty,
        // A page said to go on but listing no key: sized as small, which loses nothing.
        (true, true) | (false, false) => Size::Pages(1),
        (false, true) => Size::Large(keys),
    })
}

fn range_part(target: &Target, range: KeyRange) -> Resume {
    Resume {
        cursor: Cursor::Ranges(vec![range]),
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
            cursor: Cursor::Inventory {
                place: InventoryCursor {
                    manifest: manifest.to_string(),
                    file,
                    rows: 0,
                    last_file: Some(file),
                },
                read_to_end: false,
            },
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
    match std::mem::replace(&mut token.cursor, Cursor::Listed) {
        Cursor::Ranges(ranges) if ranges.len() > 1 => {
            parts.extend(ranges.into_iter().map(|range| Resume {
                cursor: Cursor::Ranges(vec![range]),
                ..token.clone()
            }));
        }
        cursor if !cursor.is_done() => parts.push(Resume { cursor, ..token }),
        _ => {}
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
        let cursor = match ranges {
            0 => Cursor::Listed,
            _ => Cursor::Ranges(
                (0..ranges)
                    .map(|n| KeyRange {
                        after: Some(format!("r{n}")),
                        through: Some(format!("r{}", n + 1)),
                    })
                    .collect(),
            ),
        };
        Resume {
            cursor,
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
            assert_eq!(part.cursor, Cursor::Listed);
            keys.extend(part.keys.iter().cloned());
        }
        assert_eq!(keys, token(1000, 1024, 0).keys, "every key once, in order");
    }

    #[test]
    fn each_range_left_is_a_part_of_its_own_and_the_keys_follow() {
        let parts = split(token(3, 10, 4), MAX_PART_BYTES);
        assert_eq!(parts.len(), 5);
        for (n, part) in parts[..4].iter().enumerate() {
            let Cursor::Ranges(ranges) = &part.cursor else {
                panic!("{part:?}")
            };
            assert_eq!(ranges.len(), 1);
            assert_eq!(ranges[0].after.as_deref(), Some(format!("r{n}").as_str()));
            assert!(part.keys.is_empty());
        }
        assert_eq!(parts[4].keys.len(), 3);
        assert!(parts[4].cursor.is_done());
        assert!(
            split(token(0, 10, 0), MAX_PART_BYTES).is_empty(),
            "nothing left, no part"
        );
    }

    fn range(after: Option<&str>, through: Option<&str>) -> KeyRange {
        KeyRange {
            after: after.map(str::to_owned),
            through: through.map(str::to_owned),
        }
    }

    #[test]
    fn empty_ranges_fold_into_their_neighbours_and_the_rest_still_tile() {
        let sized = vec![
            (range(None, Some("b")), Size::Empty),
            (range(Some("b"), Some("d")), Size::Pages(1)),
            (range(Some("d"), Some("f")), Size::Empty),
            (range(Some("f"), Some("h")), Size::Empty),
            (range(Some("h"), None), Size::Large(vec!["i".to_owned()])),
        ];
        let folded: Vec<KeyRange> = fold_empty(sized).into_iter().map(|(range, _)| range).collect();
        assert_eq!(folded, [range(None, Some("h")), range(Some("h"), None)]);
        let all_empty = vec![
            (range(None, Some("b")), Size::Empty),
            (range(Some("b"), None), Size::Empty),
        ];
        assert_eq!(fold_empty(all_empty)[0].0, KeyRange::ALL);
    }

    #[test]
    fn small_neighbours_merge_down_to_the_count_asked_and_large_ones_stay() {
        let sized = vec![
            (range(None, Some("b")), Size::Pages(1)),
            (range(Some("b"), Some("d")), Size::Pages(1)),
            (range(Some("d"), Some("f")), Size::Large(vec!["e".to_owned()])),
            (range(Some("f"), Some("h")), Size::Pages(1)),
            (range(Some("h"), None), Size::Pages(1)),
        ];
        let merged: Vec<KeyRange> = merge_small(sized.clone(), 3)
            .into_iter()
            .map(|(range, _)| range)
            .collect();
        assert_eq!(
            merged,
            [
                range(None, Some("d")),
                range(Some("d"), Some("f")),
                range(Some("f"), None)
            ]
        );
        assert_eq!(merge_small(sized, 1).len(), 3, "a large range is never merged");
    }

    #[test]
    fn an_inventory_files_rest_stays_one_part() {
        let mut stopped = token(2, 10, 0);
        stopped.cursor = Cursor::Inventory {
            place: InventoryCursor {
                manifest: "s3://inv/m.json".to_owned(),
                file: 3,
                rows: 500,
                last_file: Some(3),
            },
            read_to_end: false,
        };
        let parts = split(stopped.clone(), MAX_PART_BYTES);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].cursor, stopped.cursor);
        assert!(parts[0].keys.is_empty());
        assert_eq!(parts[1].keys, stopped.keys);
    }
}
