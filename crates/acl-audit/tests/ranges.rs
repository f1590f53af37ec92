//! Listing cut key ranges (`acl_audit::s3::ranges`, as the state machine's parts and their
//! tokens hold them) against local-s3: every key exactly once, none lost where ranges meet
//! (keys equal to a cut point, keys with characters the pages did not show, keys past every
//! guess), across budgets and resumed runs.

use test_support as common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use acl_audit::model::{Cursor, KeyRange, ObjectRef, Resume};
use acl_audit::s3::listing::{KeyPages, ListingEnd};
use acl_audit::s3::ranges;
use acl_audit::strategy::InFlight;
use acl_audit::{AuditOptions, Strategy, Target, audit_bucket_with};
use futures::FutureExt as _;
use local_s3::acl::Acl;
use local_s3::store::StoredObject;

/// Numbered keys, and keys placed where the cuts fall: each cut point itself (a range's
/// last key), characters no page shows ("~", "é", the last code point), a lone "z", a key
/// below every number, and a deep block of 1 500 under one stem.
fn awkward_keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..6000).map(|n| format!("k-{n:04}")).collect();
    for stem in ["k-", "k-0", "k-00", "k-000"] {
        for ch in "0123456789-k".chars() {
            keys.push(format!("{stem}{ch}"));
        }
    }
    keys.extend(
        [
            "k-1~",
            "k-5é",
            "k-9\u{10FFFF}",
            "k-\u{10FFFF}",
            "z",
            "\u{10FFFF}",
            "!",
            "k-",
            "k",
        ]
        .map(str::to_owned),
    );
    keys.extend((0..1500).map(|n| format!("k-3333/{n:05}")));
    keys.sort();
    keys.dedup();
    keys
}

async fn bucket_of(name: &str, keys: &[String]) -> (local_s3::LocalS3, aws_sdk_s3::Client) {
    let (s3, client) = common::endpoint().await;
    s3.store().create_bucket(name).unwrap();
    for key in keys {
        s3.store()
            .put_object(name, key, StoredObject::new("x".into(), Acl::private()))
            .unwrap();
    }
    (s3, client)
}

async fn list_all(pages: &mut KeyPages) -> Vec<String> {
    let mut listed = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        listed.extend(page.into_iter().map(|object| object.key));
    }
    listed
}

fn assert_exactly_once(listed: Vec<String>, expected: &[String]) {
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "a key was listed twice");
    let missing: Vec<&String> = expected.iter().filter(|key| !unique.contains(key)).take(5).collect();
    assert!(missing.is_empty(), "keys never listed, e.g. {missing:?}");
    assert_eq!(
        listed.len(),
        expected.len(),
        "keys listed that the bucket does not hold"
    );
}

/// The key space of `keys` under `prefix` cut as the plan cuts it: the first page's range,
/// then the rest cut at the points that page suggests.
fn cut_ranges(keys: &[String], prefix: &str) -> Vec<KeyRange> {
    let page: Vec<String> = keys
        .iter()
        // A page of numbered keys, as most pages are: its cut points are numbers.
        .filter(|key| key.starts_with(prefix) && key.len() >= 6)
        .take(1000)
        .cloned()
        .collect();
    let last = page.last().cloned();
    let rest = KeyRange {
        after: last.clone(),
        through: None,
    };
    let mut ranges = vec![KeyRange {
        after: None,
        through: last,
    }];
    ranges.extend(ranges::cut(&rest, &page, prefix, 32));
    ranges
}

/// A token of `ranges` still to list in `bucket`, as a part's.
fn token(bucket: &str, prefix: Option<&str>, ranges: Vec<KeyRange>) -> Resume {
    Resume {
        bucket: bucket.to_owned(),
        prefix: prefix.map(str::to_owned),
        versions: false,
        keys: Vec::new(),
        cursor: Cursor::Ranges(ranges),
    }
}

fn target(bucket: &str, prefix: Option<&str>, max_objects: Option<usize>) -> Target {
    Target {
        prefix: prefix.map(str::to_owned),
        max_objects,
        ..Target::bucket(bucket)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cut_ranges_list_every_key_exactly_once() {
    let keys = awkward_keys();
    let (s3, client) = bucket_of("awkward", &keys).await;
    let ranges = cut_ranges(&keys, "");
    assert!(ranges.len() > 8, "{ranges:?}");
    let before = s3.requests("ListObjectsV2");
    let resume = token("awkward", None, ranges.clone());
    let mut pages = KeyPages::resuming(&client, &target("awkward", None, None), Some(&resume));
    assert_exactly_once(list_all(&mut pages).await, &keys);
    assert_eq!(pages.end(), Some(ListingEnd::Complete));
    assert_eq!(
        pages.resume(&Target::bucket("awkward"), Vec::new()).cursor,
        Cursor::Listed
    );
    let requests = (s3.requests("ListObjectsV2") - before) as usize;
    assert!(
        requests <= keys.len().div_ceil(1000) + ranges.len(),
        "a request a page, and at most one more per range: {requests}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_bounds_every_range() {
    let keys = awkward_keys();
    let (_s3, client) = bucket_of("prefixed", &keys).await;
    let under: Vec<String> = keys.iter().filter(|key| key.starts_with("k-3")).cloned().collect();
    let resume = token("prefixed", Some("k-3"), cut_ranges(&keys, "k-3"));
    let mut pages = KeyPages::resuming(&client, &target("prefixed", Some("k-3"), None), Some(&resume));
    assert_exactly_once(list_all(&mut pages).await, &under);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_stops_the_listing_and_its_token_lists_the_rest() {
    let keys = awkward_keys();
    let (_s3, client) = bucket_of("budget", &keys).await;
    let mut listed = Vec::new();
    let mut resume = token("budget", None, cut_ranges(&keys, ""));
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs < 100, "the listing does not progress");
        let target = target("budget", None, Some(1700));
        let mut pages = KeyPages::resuming(&client, &target, Some(&resume));
        let this_run = list_all(&mut pages).await;
        assert!(this_run.len() <= 1700);
        listed.extend(this_run);
        let ended = pages.end();
        resume = pages.resume(&target, Vec::new());
        if resume.cursor == Cursor::Listed {
            break;
        }
        assert_eq!(ended, Some(ListingEnd::Limit), "{resume:?}");
        // Through JSON, as a token travels.
        resume = serde_json::from_str(&serde_json::to_string(&resume).unwrap()).unwrap();
    }
    assert!(runs >= keys.len() / 1700, "{runs} runs");
    assert_exactly_once(listed, &keys);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_dropped_mid_page_leaves_its_ranges_to_the_next_run() {
    let keys = awkward_keys();
    let (_s3, client) = bucket_of("dropped", &keys).await;
    let resume = token("dropped", None, cut_ranges(&keys, ""));
    let target = Target::bucket("dropped");
    let mut pages = KeyPages::resuming(&client, &target, Some(&resume));
    let mut listed = Vec::new();
    for _ in 0..3 {
        listed.extend(pages.next_page().await.unwrap().unwrap().into_iter().map(|o| o.key));
    }
    // A page asked for and dropped unanswered (a run stopped by its deadline) is asked again
    // by the next run; one that was answered is taken.
    if let Some(page) = pages.next_page().now_or_never() {
        listed.extend(page.unwrap().into_iter().flatten().map(|o| o.key));
    }
    let left = pages.resume(&target, Vec::new());
    assert!(matches!(&left.cursor, Cursor::Ranges(_)), "{left:?}");
    let json = serde_json::to_string(&left).unwrap();
    let left: Resume = serde_json::from_str(&json).unwrap();
    let mut rest = KeyPages::resuming(&client, &target, Some(&left));
    listed.extend(list_all(&mut rest).await);
    assert_exactly_once(listed, &keys);
}

/// The audit of a part's ranges, stopped by deadlines and resumed from each report's token:
/// every object's ACL fetched exactly once over the runs.
#[tokio::test(flavor = "multi_thread")]
async fn audits_resumed_from_range_tokens_fetch_every_acl_once() {
    let keys = awkward_keys();
    let (_s3, client) = bucket_of("resumed", &keys).await;
    let mut target = Target::bucket("resumed");
    target.resume = Some(token("resumed", None, cut_ranges(&keys, "")));
    let (mut fetched, mut runs) = (0, 0);
    loop {
        runs += 1;
        assert!(runs < 1000, "the audit does not progress");
        // 150 ms, 5 ms more each run: on a loaded machine (a build on both cores) a run of
        // 150 ms can end before its first page, and 200 such runs were seen to make none; the
        // early runs still stop every few pages.
        let window = Duration::from_millis(150 + 5 * runs as u64);
        let options = AuditOptions {
            stop_at: Some(Instant::now() + window),
            ..AuditOptions::default()
        };
        // A few calls in flight: unbounded, each run would open a connection per listed key
        // and see few of them answered before its stop.
        let strategy = Strategy::JoinAll {
            in_flight: InFlight::Fixed(std::num::NonZeroUsize::new(16).unwrap()),
        };
        let report = audit_bucket_with(&client, &target, strategy, options).await.unwrap();
        assert!(report.accounts_for_every_object(), "{report:?}");
        fetched += report.acls_fetched;
        match report.resume {
            Some(resume) => target.resume = Some(resume),
            None => break,
        }
    }
    assert!(runs > 1, "the deadline stopped no run");
    // A key is fetched, or handed on and fetched by a later run: never both, never neither.
    assert_eq!(fetched, keys.len());
}

#[test]
fn a_token_without_ranges_reads_and_writes_as_before() {
    let old = r#"{"bucket":"b","prefix":null,"start_after":"k","listing_complete":false,"keys":["k0"]}"#;
    let resume: acl_audit::Resume = serde_json::from_str(old).unwrap();
    assert_eq!(
        resume.cursor,
        acl_audit::model::Cursor::After {
            key: Some("k".to_owned()),
            version_id: None
        }
    );
    assert_eq!(serde_json::to_string(&resume).unwrap(), old);
    let with_ranges = acl_audit::Resume {
        cursor: acl_audit::model::Cursor::Ranges(vec![KeyRange {
            after: Some("k-1".to_owned()),
            through: None,
        }]),
        ..resume
    };
    let json = serde_json::to_value(&with_ranges).unwrap();
    assert_eq!(json["ranges"], serde_json::json!([{"after": "k-1", "through": null}]));
    assert_eq!(
        serde_json::from_value::<acl_audit::Resume>(json).unwrap().keys,
        [ObjectRef::from("k0")]
    );
}
