use test_support as common;

use acl_audit::Target;
use acl_audit::s3::listing::list_keys;
use local_s3::seed_key;

#[tokio::test(flavor = "multi_thread")]
async fn listing_2500_keys_follows_every_page() {
    let (_s3, client) = common::seeded("big", 2500).await;
    let listing = list_keys(&client, &Target::bucket("big")).await.unwrap();
    let expected: Vec<String> = (0..2500).map(seed_key).collect();
    assert_eq!(listing.keys, expected);
    assert!(listing.complete);
}

#[tokio::test(flavor = "multi_thread")]
async fn prefix_limits_the_listing_to_matching_keys() {
    let (s3, client) = common::seeded("mixed", 10).await;
    for key in ["reports/2026/a.csv", "reports/2026/b.csv", "reportsX"] {
        s3.store()
            .put_object(
                "mixed",
                key,
                local_s3::store::StoredObject::new("x".into(), local_s3::acl::Acl::private()),
            )
            .unwrap();
    }
    let target = Target {
        prefix: Some("reports/".to_owned()),
        ..Target::bucket("mixed")
    };
    let listing = list_keys(&client, &target).await.unwrap();
    assert_eq!(listing.keys, ["reports/2026/a.csv", "reports/2026/b.csv"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_objects_stops_the_listing_and_says_so() {
    let (_s3, client) = common::seeded("big", 1500).await;
    let target = Target {
        max_objects: Some(1200),
        ..Target::bucket("big")
    };
    let listing = list_keys(&client, &target).await.unwrap();
    assert_eq!(listing.keys.len(), 1200);
    assert!(!listing.complete);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_objects_equal_to_the_bucket_size_is_a_complete_listing() {
    let (_s3, client) = common::seeded("exact", 1000).await;
    let target = Target {
        max_objects: Some(1000),
        ..Target::bucket("exact")
    };
    let listing = list_keys(&client, &target).await.unwrap();
    assert_eq!(listing.keys.len(), 1000);
    assert!(listing.complete);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_bucket_lists_no_keys() {
    let (_s3, client) = common::seeded("empty", 0).await;
    let listing = list_keys(&client, &Target::bucket("empty")).await.unwrap();
    assert!(listing.keys.is_empty());
    assert!(listing.complete);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_max_objects_stops_after_one_short_page() {
    let (_s3, client) = common::seeded("small", 10).await;
    let target = Target {
        max_objects: Some(4),
        ..Target::bucket("small")
    };
    let listing = list_keys(&client, &target).await.unwrap();
    assert_eq!(listing.keys, (0..4).map(seed_key).collect::<Vec<_>>());
    assert!(!listing.complete);
}
