//! Listing a target's keys in several listings at once. S3 lists a key space as one chain of
//! pages, each naming where the next starts, so one listing of 10⁸ keys is 10⁵ round trips in
//! a row. Here the key space is cut into [`KeyRange`]s, each listed on its own (ListObjectsV2
//! from `StartAfter`), side by side; nothing needs to be known of the keys beforehand: a
//! range whose page shows more to come is cut again whenever a lister is idle, at keys guessed
//! from the page's own (see [`cut_points`]). However good the guess, the ranges tile the key
//! space, so every key is listed exactly once; a poor guess only costs a request that lists
//! an empty range. The approach is c7n-salactus's, which partitions a bucket's key space to
//! scan billions of objects. [`TargetPages`] is what a run lists with: these ranges, or one
//! chain of pages ([`KeyPages`]).

use std::collections::{BTreeSet, VecDeque};
use std::ops::Bound;

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;

use crate::model::{Cursor, KeyRange, ObjectRef, Resume, Target};
use crate::s3::error::ListError;
use crate::s3::listing::{KeyPages, ListingEnd};

/// Listings under way at once by default, for a run with no ACL to fetch (the bucket's ACLs
/// disabled), where the listing is all there is. A bucket of one page is listed by one request
/// whatever this says; a larger one is cut into ranges as its pages come in, which costs a
/// request per range found empty. A run that fetches ACLs lists one range at a time once it
/// knows it does: the fetches are the long part, and more listers bought nothing there but
/// requests and memory (docs/scale-out.md, "Parallel listing", has the rehearsal's figures).
pub const DEFAULT_LISTERS: usize = 8;

/// ListObjectsV2's largest page.
const MAX_PAGE: i32 = 1000;

/// The most ranges one cut makes, per lister: enough to keep every lister busy while the
/// first pages of the new ranges show which of them hold keys.
const CUTS_PER_LISTER: usize = 4;

/// One page's answer for the range listed in a slot.
type PageFuture = BoxFuture<'static, (usize, Result<ListObjectsV2Output, ListError>)>;

/// The keys of a target's current objects under its prefix, a page at a time from whichever
/// range answers first, with up to `listers` ListObjectsV2 requests under way; up to a
/// budget of keys. What is left when it stops (a deadline, the budget, a failed page) is
/// [`RangePages::remaining`], from which a later run goes on.
pub struct RangePages {
    client: Client,
    bucket: String,
    prefix: Option<String>,
    listers: usize,
    /// The listers that may be busy at once: `listers`, or fewer once
    /// [`RangePages::limit_listers`] says so.
    limit: usize,
    budget: usize,
    /// Ranges no lister has taken yet.
    queue: VecDeque<KeyRange>,
    /// The range each lister (by slot) is listing, its `after` where its next page starts.
    active: Vec<Option<KeyRange>>,
    in_flight: FuturesUnordered<PageFuture>,
    end: Option<ListingEnd>,
    requests: usize,
}

impl RangePages {
    /// Lists `ranges` of `bucket` under `prefix` (all of it: `[KeyRange::ALL]`), up to
    /// `max_objects` keys, with up to `listers` (at least one) listings at once.
    pub fn new(
        client: &Client,
        bucket: &str,
        prefix: Option<String>,
        ranges: Vec<KeyRange>,
        max_objects: Option<usize>,
        listers: usize,
    ) -> Self {
        let listers = listers.max(1);
        RangePages {
            client: client.clone(),
            bucket: bucket.to_owned(),
            prefix,
            listers,
            limit: listers,
            budget: max_objects.unwrap_or(usize::MAX),
            end: ranges.is_empty().then_some(ListingEnd::Complete),
            queue: ranges.into(),
            active: vec![None; listers],
            in_flight: FuturesUnordered::new(),
            requests: 0,
        }
    }

    /// The next page's keys, from any range; `None` once the listing has ended (see
    /// [`RangePages::end`]). Cancel-safe: a page asked for and not yet returned stays asked for,
    /// and its range stays in [`RangePages::remaining`] until it is.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ObjectRef>>, ListError> {
        loop {
            if self.end.is_some() {
                return Ok(None);
            }
            self.start_listers();
            let Some((slot, page)) = self.in_flight.next().await else {
                self.end = Some(ListingEnd::Complete);
                return Ok(None);
            };
            let keys = self.take_page(slot, page?)?;
            if !keys.is_empty() {
                return Ok(Some(keys));
            }
        }
    }

    /// Why the listing yields no more pages; `None` while it goes on (or after a failed page).
    pub fn end(&self) -> Option<ListingEnd> {
        self.end
    }

    /// The ranges not listed to their end, each from where its listing stopped: where a later
    /// run goes on. Empty once the listing is complete.
    pub fn remaining(&self) -> Vec<KeyRange> {
        let mut ranges: Vec<KeyRange> = self.active.iter().flatten().chain(&self.queue).cloned().collect();
        ranges.sort_by(|a, b| a.after.cmp(&b.after));
        ranges
    }

    /// ListObjectsV2 requests sent so far.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// From now on at most `listers` (at least one) listings at once, and no more cuts than
    /// they need: the ranges already cut are listed in turn, none is dropped.
    pub fn limit_listers(&mut self, listers: usize) {
        self.limit = listers.clamp(1, self.listers);
    }

    fn busy(&self) -> usize {
        self.active.iter().filter(|slot| slot.is_some()).count()
    }

    /// Gives idle listers queued ranges, up to the limit.
    fn start_listers(&mut self) {
        while self.busy() < self.limit {
            let Some(slot) = self.active.iter().position(Option::is_none) else {
                return;
            };
            let Some(range) = self.queue.pop_front() else { return };
            self.list(slot, range);
        }
    }

    /// Asks for the page of `range` after its `after`, in `slot`.
    fn list(&mut self, slot: usize, range: KeyRange) {
        let request = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .set_prefix(self.prefix.clone())
            .set_start_after(range.after.clone())
            .max_keys(MAX_PAGE);
        let bucket = self.bucket.clone();
        self.active[slot] = Some(range);
        self.requests += 1;
        self.in_flight.push(Box::pin(async move {
            let page = request
                .send()
                .await
                .map_err(|err| ListError::from_sdk(&bucket, "s3:ListBucket", err));
            (slot, page)
        }));
    }

    /// The keys of `page` within its slot's range, up to the budget; the rest of the range
    /// goes on in the same slot, cut first for idle listers when there is nothing queued.
    fn take_page(&mut self, slot: usize, page: ListObjectsV2Output) -> Result<Vec<ObjectRef>, ListError> {
        let Some(range) = self.active[slot].take() else {
            return Ok(Vec::new());
        };
        let RangePage {
            mut keys,
            more,
            past_the_end,
        } = RangePage::of(&page, &range);
        if more && keys.is_empty() && !past_the_end {
            self.active[slot] = Some(range);
            return Err(ListError::Failed {
                bucket: self.bucket.clone(),
                code: "EmptyTruncatedPage".to_owned(),
                detail: "ListObjectsV2 said the listing goes on but listed no key".to_owned(),
            });
        }
        let mut range_done = past_the_end || !more;
        if keys.len() >= self.budget {
            range_done &= keys.len() == self.budget;
            keys.truncate(self.budget);
            self.budget = 0;
        } else {
            self.budget -= keys.len();
        }
        let rest = KeyRange {
            after: keys.last().cloned().or(range.after),
            through: range.through,
        };
        if self.budget == 0 {
            if !range_done {
                self.queue.push_front(rest);
            }
            self.end = Some(if self.queue.is_empty() && self.active.iter().all(Option::is_none) {
                ListingEnd::Complete
            } else {
                ListingEnd::Limit
            });
            return Ok(keys.into_iter().map(ObjectRef::from).collect());
        }
        if !range_done {
            // This slot goes on with the rest, so it is not idle.
            let idle = self.limit.saturating_sub(self.busy() + 1);
            let parts = if self.queue.is_empty() && idle > 0 {
                cut(
                    &rest,
                    &keys,
                    self.prefix.as_deref().unwrap_or(""),
                    self.listers * CUTS_PER_LISTER,
                )
            } else {
                vec![rest]
            };
            let mut parts = parts.into_iter();
            if let Some(first) = parts.next() {
                self.queue.extend(parts);
                self.list(slot, first);
            }
        }
        // Said as soon as it is known, not at the next call: a run stopped now must not hand
        // on an empty set of ranges as a listing still to do.
        if self.queue.is_empty() && self.active.iter().all(Option::is_none) {
            self.end = Some(ListingEnd::Complete);
        }
        Ok(keys.into_iter().map(ObjectRef::from).collect())
    }
}

/// A ListObjectsV2 page read for one range: its keys within the range, whether it went past
/// the range's end (a page is in key order: keys past the end are the next range's), and
/// whether S3 said more keys follow the page.
pub(crate) struct RangePage {
    pub keys: Vec<String>,
    pub past_the_end: bool,
    pub more: bool,
}

impl RangePage {
    pub fn of(page: &ListObjectsV2Output, range: &KeyRange) -> Self {
        let mut keys: Vec<String> = page
            .contents()
            .iter()
            .filter_map(|object| object.key())
            .map(str::to_owned)
            .collect();
        let within = match &range.through {
            Some(through) => keys.partition_point(|key| key <= through),
            None => keys.len(),
        };
        let past_the_end = within < keys.len();
        keys.truncate(within);
        RangePage {
            keys,
            past_the_end,
            more: page.is_truncated().unwrap_or(false),
        }
    }
}

/// A target's listing: one chain of pages ([`KeyPages`]), or ranges of its key space listed
/// side by side ([`RangePages`]).
pub enum TargetPages {
    One(KeyPages),
    Ranges(RangePages),
}

impl TargetPages {
    /// Ranges with `listers` above one, or for a token a run listing ranges left; one chain
    /// otherwise, and always for versions (ListObjectVersions' cursor is a key and a version,
    /// and versions' listings are seldom the long part).
    pub fn new(client: &Client, target: &Target, resume: Option<&Resume>, listers: usize) -> Self {
        let versions = target.include_versions || resume.is_some_and(|resume| resume.versions);
        let (left, after) = match resume.map(|resume| &resume.cursor) {
            Some(Cursor::Ranges(ranges)) => (ranges.clone(), None),
            Some(Cursor::After { key, .. }) => (Vec::new(), key.clone()),
            _ => (Vec::new(), None),
        };
        let listed = resume.is_some_and(|resume| resume.cursor.is_done());
        if versions || listed || (left.is_empty() && listers <= 1) {
            return TargetPages::One(KeyPages::resuming(client, target, resume));
        }
        let ranges = if left.is_empty() {
            vec![KeyRange { after, through: None }]
        } else {
            left
        };
        TargetPages::Ranges(RangePages::new(
            client,
            &target.bucket,
            target.prefix.clone(),
            ranges,
            target.max_objects,
            listers,
        ))
    }

    /// At most `listers` listings at once from now on (see [`RangePages::limit_listers`]).
    pub fn limit_listers(&mut self, listers: usize) {
        if let TargetPages::Ranges(pages) = self {
            pages.limit_listers(listers);
        }
    }

    pub async fn next_page(&mut self) -> Result<Option<Vec<ObjectRef>>, ListError> {
        match self {
            TargetPages::One(pages) => pages.next_page().await,
            TargetPages::Ranges(pages) => pages.next_page().await,
        }
    }

    pub fn end(&self) -> Option<ListingEnd> {
        match self {
            TargetPages::One(pages) => pages.end(),
            TargetPages::Ranges(pages) => pages.end(),
        }
    }

    pub fn lists_versions(&self) -> bool {
        matches!(self, TargetPages::One(pages) if pages.lists_versions())
    }

    pub fn delete_markers(&self) -> usize {
        match self {
            TargetPages::One(pages) => pages.delete_markers(),
            TargetPages::Ranges(_) => 0,
        }
    }

    /// The token a later run goes on from: `keys` first, then what this listing left.
    pub fn resume(&self, target: &Target, keys: Vec<ObjectRef>) -> Resume {
        let listing_complete = match self {
            TargetPages::One(pages) => pages.end() == Some(ListingEnd::Complete),
            TargetPages::Ranges(pages) => pages.end() == Some(ListingEnd::Complete) || pages.remaining().is_empty(),
        };
        let cursor = match self {
            _ if listing_complete => Cursor::Listed,
            TargetPages::One(pages) => Cursor::After {
                key: pages.last_key().map(str::to_owned),
                version_id: pages.last_version_id().map(str::to_owned),
            },
            TargetPages::Ranges(pages) => match pages.remaining().as_slice() {
                // One range to the end is what a single listing's token says: say it so.
                [KeyRange { after, through: None }] => Cursor::After {
                    key: after.clone(),
                    version_id: None,
                },
                ranges => Cursor::Ranges(ranges.to_vec()),
            },
        };
        Resume {
            bucket: target.bucket.clone(),
            prefix: target.prefix.clone(),
            versions: self.lists_versions(),
            keys,
            cursor,
        }
    }
}

/// `range` (whose keys come after the page `page`) cut at [`cut_points`] into ranges that
/// tile it, in key order; `range` itself when no point falls inside it.
pub fn cut(range: &KeyRange, page: &[String], prefix: &str, most: usize) -> Vec<KeyRange> {
    let Some(after) = range.after.as_deref() else {
        return vec![range.clone()];
    };
    let points = cut_points(after, range.through.as_deref(), page, prefix, most.saturating_sub(1));
    let mut ranges = Vec::with_capacity(points.len() + 1);
    let mut from = range.after.clone();
    for point in points {
        ranges.push(KeyRange {
            after: from,
            through: Some(point.clone()),
        });
        from = Some(point);
    }
    ranges.push(KeyRange {
        after: from,
        through: range.through.clone(),
    });
    ranges
}

/// Up to `most` keys after `after` (and before `through`), in order, at which to cut the key
/// space still to list, guessed from a page of keys that ends at `after`: for each position,
/// from where the page's first and last keys part back to the end of the prefix, `after`'s
/// first characters up to it followed by each character the page's keys use that sorts after
/// `after`'s own there. For the page `k-0000` … `k-0999` of the keys `k-0000` … `k-9999`
/// that gives `k-1`, `k-2`, … `k-9` (ranges of a thousand keys each) among others that
/// turn out empty. Deeper positions give
/// nearer points, so the points come out in order, and a range past the last point is cut
/// again when it is listed.
pub fn cut_points(after: &str, through: Option<&str>, page: &[String], prefix: &str, most: usize) -> Vec<String> {
    let after_chars: Vec<char> = after.chars().collect();
    let prefix_len = prefix.chars().count();
    if after_chars.len() <= prefix_len {
        return Vec::new();
    }
    let first = page.first().map_or(after, String::as_str);
    let parted_at = first.chars().zip(&after_chars).take_while(|(a, b)| a == *b).count();
    let alphabet: BTreeSet<char> = page.iter().flat_map(|key| key.chars().skip(prefix_len)).collect();
    let mut points = Vec::new();
    let deepest = parted_at.min(after_chars.len() - 1);
    for position in (prefix_len..=deepest).rev() {
        let stem: String = after_chars[..position].iter().collect();
        let here = after_chars[position];
        for ch in alphabet.range((Bound::Excluded(here), Bound::Unbounded)) {
            if points.len() >= most {
                return points;
            }
            let point = format!("{stem}{ch}");
            // Every later point sorts after this one.
            if through.is_some_and(|through| point.as_str() >= through) {
                return points;
            }
            points.push(point);
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|n| format!("k-{n:04}")).collect()
    }

    #[test]
    fn points_cut_a_numbered_key_space_into_even_ranges() {
        let page = keys(0..1000);
        let points = cut_points("k-0999", None, &page, "", 100);
        let tens: Vec<&str> = points
            .iter()
            .map(String::as_str)
            .skip_while(|p| *p != "k-1")
            .take(9)
            .collect();
        assert_eq!(tens, ["k-1", "k-2", "k-3", "k-4", "k-5", "k-6", "k-7", "k-8", "k-9"]);
        assert!(points.windows(2).all(|pair| pair[0] < pair[1]), "in order: {points:?}");
        assert!(points.iter().all(|point| point.as_str() > "k-0999"));
    }

    #[test]
    fn points_stay_inside_the_range_and_the_prefix_and_under_the_limit() {
        let page = keys(1000..1100);
        let points = cut_points("k-1099", Some("k-15"), &page, "k-", 100);
        assert!(!points.is_empty());
        assert!(
            points
                .iter()
                .all(|p| p.as_str() > "k-1099" && p.as_str() < "k-15" && p.starts_with("k-"))
        );
        assert_eq!(cut_points("k-1099", None, &page, "k-", 3).len(), 3);
        assert!(cut_points("k-1099", None, &page, "", 0).is_empty());
        assert!(cut_points("", None, &[], "", 10).is_empty());
        assert!(cut_points("k-", None, &page, "k-", 10).is_empty());
    }

    #[test]
    fn ranges_cut_from_a_range_tile_it() {
        let range = KeyRange {
            after: Some("k-0999".to_owned()),
            through: Some("k-7".to_owned()),
        };
        let parts = cut(&range, &keys(0..1000), "", 8);
        assert!(parts.len() > 1 && parts.len() <= 8, "{parts:?}");
        assert_eq!(parts.first().unwrap().after, range.after);
        assert_eq!(parts.last().unwrap().through, range.through);
        for pair in parts.windows(2) {
            assert_eq!(pair[0].through, pair[1].after, "no gap, no overlap");
        }
        for key in keys(1000..7000)
            .iter()
            .chain(&["k-7".to_owned(), "k-6\u{10FFFF}".to_owned()])
        {
            assert_eq!(parts.iter().filter(|part| part.contains(key)).count(), 1, "{key}");
        }
        assert!(
            parts
                .iter()
                .all(|part| !part.contains("k-0999") && !part.contains("k-70"))
        );
    }

    #[test]
    fn multibyte_keys_cut_at_character_boundaries() {
        let page: Vec<String> = ["é/ä1", "é/ä2", "é/ä3"].map(str::to_owned).to_vec();
        let points = cut_points("é/ä3", None, &page, "é/", 10);
        assert_eq!(points, ["é/ää"]);
    }
}
