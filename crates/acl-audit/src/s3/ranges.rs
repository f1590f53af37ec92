//! Cutting a key space into ranges that tile it, at keys guessed from a page of its own (see
//! [`cut_points`]): nothing needs to be known of the keys beforehand, and however good the
//! guess, every key is in exactly one range; a poor guess only makes a range that turns out
//! empty. The state machine's plan cuts a bucket into parts so ([`crate::parts`]); the
//! approach is c7n-salactus's, which partitions a bucket's key space to scan billions of
//! objects.

use std::collections::BTreeSet;
use std::ops::Bound;

use crate::model::KeyRange;

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
