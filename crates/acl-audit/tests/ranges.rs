//! Parallel listing (`acl_audit::s3::ranges`) against local-s3: every key exactly once, none
//! lost where ranges meet (keys equal to a cut point, keys with characters the pages did not
//! show, keys past every guess), across budgets and resumed runs.

use test_support as common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use acl_audit::model::{KeyRange, ObjectRef};
use acl_audit::s3::listing::ListingEnd;
use acl_audit::s3::ranges::RangePages;
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

async fn list_all(pages: &mut RangePages) -> Vec<String> {
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

#[tokio::test(flavor = "multi_thread")]
async fn eight_listers_list_every_key_exactly_once() {
    let keys = awkward_keys();
    let (s3, client) = bucket_of("awkward", &keys).await;
    for listers in [1, 2, 8, 32] {
        let before = s3.requests("ListObjectsV2");
        let mut pages = RangePages::new(&client, "awkward", None, vec![KeyRange::ALL], None, listers);
        assert_exactly_once(list_all(&mut pages).await, &keys);
        assert_eq!(pages.end(), Some(ListingEnd::Complete));
        assert!(pages.remaining().is_empty());
        let requests = s3.requests("ListObjectsV2") - before;
        assert_eq!(requests as usize, pages.requests());
        if listers == 1 {
            assert_eq!(
                requests as usize,
                keys.len().div_ceil(1000),
                "one listing: one request a page"
            );
        } else {
            assert!(
                requests as usize > keys.len().div_ceil(1000),
                "{listers} listers cut ranges"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_bounds_every_range() {
    let keys = awkward_keys();
    let (_s3, client) = bucket_of("prefixed", &keys).await;
    let under: Vec<String> = keys.iter().filter(|key| key.starts_with("k-3")).cloned().collect();
    let mut pages = RangePages::new(
        &client,
        "prefixed",
        Some("k-3".to_owned()),
        vec![KeyRange::ALL],
        None,
        8,
    );
    assert_exactly_once(list_all(&mut pages).await, &under);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_stops_the_listing_and_what_remains_lists_the_rest() {
    let keys = awkward_keys();
    let (_s3, client) = bucket_of("budget", &keys).await;
    let mut listed = Vec::new();
    let mut ranges = vec![KeyRange::ALL];
    let mut runs = 0;
    while !ranges.is_empty() {
        runs += 1;
        assert!(runs < 100, "the listing does not progress");
        let mut pages = RangePages::new(&client, "budget", None, ranges, Some(1700), 8);
        let this_run = list_all(&mut pages).await;
        assert!(this_run.len() <= 1700);
        listed.extend(this_run);
        ranges = pages.remaining();
        let ended = pages.end();
        assert!(
            ranges.is_empty() || ended == Some(ListingEnd::Limit),
            "{ended:?} with ranges left"
        );
    }
    assert!(runs >= keys.len() / 1700, "{runs} runs");
    assert_exactly_once(listed, &keys);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_dropped_mid_page_leaves_its_ranges_to_the_next_run() {
    let keys = awkward_keys();
    let (_s3, client) = bucket_of("dropped", &keys).await;
    let mut pages = RangePages::new(&client, "dropped", None, vec![KeyRange::ALL], None, 8);
    let mut listed = Vec::new();
    for _ in 0..3 {
        listed.extend(pages.next_page().await.unwrap().unwrap().into_iter().map(|o| o.key));
    }
    // A page asked for and dropped unanswered (a run stopped by its deadline) is asked again
    // by the next run; one that was answered is taken.
    if let Some(page) = pages.next_page().now_or_never() {
        listed.extend(page.unwrap().into_iter().flatten().map(|o| o.key));
    }
    let ranges = pages.remaining();
    assert!(!ranges.is_empty());
    let json = serde_json::to_string(&ranges).unwrap();
    let ranges: Vec<KeyRange> = serde_json::from_str(&json).unwrap();
    let mut rest = RangePages::new(&client, "dropped", None, ranges, None, 4);
    listed.extend(list_all(&mut rest).await);
    assert_exactly_once(listed, &keys);
}

/// The audit with parallel listing, stopped by deadlines and resumed from each report's token:
/// every object's ACL fetched exactly once over the runs.
#[tokio::test(flavor = "multi_thread")]
async fn audits_resumed_from_range_tokens_fetch_every_acl_once() {
    let keys = awkward_keys();
    let (_s3, client) = bucket_of("resumed", &keys).await;
    let mut target = Target::bucket("resumed");
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
            listers: 8,
            ..AuditOptions::default()
        };
        // A few calls in flight: unbounded, each run would open a connection per listed key
        // and see few of them answered before its stop.
        let strategy = Strategy::JoinAll {
            max_in_flight: std::num::NonZeroUsize::new(16),
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

/// Listers pay only where the listing is the run: with ACLs to fetch, an audit lists one range
/// at a time once its first page is in (the ranges that page's cut made, in turn); with the
/// bucket's ACLs disabled it lists side by side. Both list every key exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn only_a_run_with_nothing_to_fetch_lists_side_by_side() {
    let keys = awkward_keys();
    let (s3, client) = bucket_of("either", &keys).await;
    let target = Target::bucket("either");
    let strategy = Strategy::JoinAll {
        max_in_flight: std::num::NonZeroUsize::new(64),
    };
    let pages = keys.len().div_ceil(1000);

    let before = s3.requests("ListObjectsV2");
    let options = AuditOptions {
        listers: 8,
        ..AuditOptions::default()
    };
    let fetched = audit_bucket_with(&client, &target, strategy, options).await.unwrap();
    let fetching_requests = (s3.requests("ListObjectsV2") - before) as usize;
    assert_eq!(fetched.acls_fetched, keys.len(), "{fetched:?}");
    assert!(fetched.accounts_for_every_object());

    let mut disabled = acl_audit::bucket::BucketContext::assumed("either");
    disabled.acls_disabled = true;
    let before = s3.requests("ListObjectsV2");
    let options = AuditOptions {
        listers: 8,
        bucket: Some(disabled),
        ..AuditOptions::default()
    };
    let listed = audit_bucket_with(&client, &target, strategy, options).await.unwrap();
    let listing_requests = (s3.requests("ListObjectsV2") - before) as usize;
    assert_eq!(
        (listed.objects_listed, listed.acls_fetched),
        (keys.len(), 0),
        "{listed:?}"
    );

    // The first page's cut makes at most 8 × 4 ranges; after it, a fetching run cuts no more.
    assert!(
        fetching_requests <= pages + 32,
        "{fetching_requests} ListObjectsV2 requests for {pages} pages while fetching"
    );
    assert!(
        listing_requests > fetching_requests,
        "listing only: {listing_requests} requests, cut side by side; fetching: {fetching_requests}"
    );
}
