use test_support as common;

use acl_audit::model::{ALL_USERS_URI, AUTHENTICATED_USERS_URI, Grant, Grantee};
use acl_audit::report::Tally;
use acl_audit::s3::fetch::fetch_acl;
use acl_audit::s3::listing::list_keys;
use acl_audit::strategy::fetch_acls;
use acl_audit::{AclOutcome, AuditReport, ListError, Strategy, Target, audit_bucket};
use futures::stream;
use local_s3::acl::{OWNER, PARTNER};
use local_s3::{SeedAcl, seed_key};

fn grant(grantee: Grantee, permission: &str) -> Grant {
    Grant {
        grantee,
        permission: permission.to_owned(),
    }
}

fn owner_full_control() -> Grant {
    grant(
        Grantee::CanonicalUser {
            id: OWNER.id.to_owned(),
        },
        "FULL_CONTROL",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn acls_are_decoded_grant_by_grant() {
    let (_s3, client) = common::seeded("acls", 10).await;
    let expected = [
        (SeedAcl::Private, vec![owner_full_control()]),
        (
            SeedAcl::PublicRead,
            vec![
                owner_full_control(),
                grant(
                    Grantee::Group {
                        uri: ALL_USERS_URI.into(),
                    },
                    "READ",
                ),
            ],
        ),
        (
            SeedAcl::AuthenticatedRead,
            vec![
                owner_full_control(),
                grant(
                    Grantee::Group {
                        uri: AUTHENTICATED_USERS_URI.into(),
                    },
                    "READ",
                ),
            ],
        ),
        (
            SeedAcl::CrossAccountRead,
            vec![
                owner_full_control(),
                grant(Grantee::CanonicalUser { id: PARTNER.id.into() }, "READ"),
            ],
        ),
    ];
    for (kind, grants) in expected {
        let index = (0..10).find(|&i| SeedAcl::for_index(i) == kind).unwrap();
        let acl = fetch_acl(&client, "acls", seed_key(index)).await.unwrap();
        assert_eq!(acl.owner_id.as_deref(), Some(OWNER.id), "{kind:?}");
        assert_eq!(acl.grants, grants, "{kind:?}");
    }
}

/// Every outcome `strategy` hands over, sorted into listing order.
async fn outcomes(client: &aws_sdk_s3::Client, bucket: &str, keys: Vec<String>, strategy: Strategy) -> Vec<AclOutcome> {
    let mut outcomes = Vec::new();
    fetch_acls(client, bucket, stream::iter([keys]), strategy, None, |outcome| {
        outcomes.push(outcome)
    })
    .await;
    outcomes.sort_by(|a, b| a.key().cmp(b.key()));
    outcomes
}

#[tokio::test(flavor = "multi_thread")]
async fn every_strategy_hands_over_one_outcome_per_key_and_the_same_acls() {
    let (_s3, client) = common::seeded("same", 250).await;
    let keys = list_keys(&client, &Target::bucket("same")).await.unwrap().keys;
    let baseline = outcomes(&client, "same", keys.clone(), Strategy::Sequential).await;
    assert_eq!(baseline.iter().map(AclOutcome::key).collect::<Vec<_>>(), keys);
    assert!(baseline.iter().all(|o| matches!(o, AclOutcome::Fetched(_))));
    for strategy in common::all_strategies() {
        assert_eq!(
            outcomes(&client, "same", keys.clone(), strategy).await,
            baseline,
            "{strategy:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_strategy_writes_the_same_report_but_for_its_name_limit_and_timings() {
    // And, for an adaptive limit, how the limit moved (`in_flight`).
    let (_s3, client) = common::seeded("reports", 250).await;
    let target = Target::bucket("reports");
    let baseline = audit_bucket(&client, &target, Strategy::Sequential).await.unwrap();
    for strategy in common::all_strategies() {
        let report = audit_bucket(&client, &target, strategy).await.unwrap();
        assert_eq!(report.strategy, strategy.kind());
        assert_eq!(report.concurrency_limit, strategy.concurrency_limit());
        let comparable = AuditReport {
            strategy: baseline.strategy,
            concurrency_limit: baseline.concurrency_limit,
            in_flight: baseline.in_flight,
            timings_ms: baseline.timings_ms,
            ..report
        };
        assert_eq!(comparable, baseline, "{strategy:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_counts_public_and_cross_account_objects() {
    let (s3, client) = common::endpoint().await;
    let seeded = local_s3::seed_bucket(s3.store(), "audit", 100).unwrap();
    for strategy in common::all_strategies() {
        let report = audit_bucket(&client, &Target::bucket("audit"), strategy).await.unwrap();
        assert_eq!(report.objects_listed, 100);
        assert_eq!(report.acls_fetched, 100);
        assert_eq!(report.truncated, None);
        assert!(report.accounts_for_every_object());
        assert_eq!(report.failures.count, 0);
        let audit = &report.audit;
        assert_eq!(audit.readable_by_all_users.count, seeded.public_read);
        assert_eq!(audit.readable_by_authenticated_users.count, seeded.authenticated_read);
        assert_eq!(audit.granted_to_other_accounts.count, seeded.cross_account_read);
        assert_eq!(audit.readable_by_all_users.keys[0], seed_key(7));
        assert_eq!(audit.granted_to_other_accounts.keys[0], seed_key(9));
        assert_eq!(audit.grants_by_permission["FULL_CONTROL"], 100);
        assert_eq!(audit.grants_by_permission["READ"], 30);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_acl_is_a_counted_failure_and_the_rest_are_fetched() {
    let (s3, client) = common::seeded("denied", 50).await;
    for index in [3, 17] {
        s3.store().set_acl_readable("denied", &seed_key(index), false).unwrap();
    }
    for strategy in common::all_strategies() {
        let report = audit_bucket(&client, &Target::bucket("denied"), strategy)
            .await
            .unwrap();
        assert_eq!(report.objects_listed, 50, "{strategy:?}");
        assert_eq!(report.acls_fetched, 48, "{strategy:?}");
        assert_eq!(report.failures.count, 2);
        assert_eq!(report.failures.by_code["AccessDenied"], 2);
        let keys: Vec<&str> = report.failures.sample.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, [seed_key(3), seed_key(17)]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_deleted_after_listing_is_a_no_such_key_failure() {
    let (s3, client) = common::seeded("vanishing", 40).await;
    for strategy in common::all_strategies() {
        local_s3::seed_bucket(s3.store(), "vanishing", 40).unwrap();
        let keys = list_keys(&client, &Target::bucket("vanishing")).await.unwrap().keys;
        s3.store().delete_object("vanishing", &seed_key(5)).unwrap();
        let tally = Tally::of(outcomes(&client, "vanishing", keys, strategy).await);
        assert_eq!(tally.acls_fetched, 39, "{strategy:?}");
        assert_eq!(tally.failures.count, 1);
        let failure = &tally.failures.sample[0];
        assert_eq!(
            (failure.key.as_str(), failure.code.as_str()),
            (seed_key(5).as_str(), "NoSuchKey")
        );
        assert_eq!(failure.message, "NoSuchKey: The specified key does not exist.");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_bucket_is_an_error_that_names_it() {
    let (_s3, client) = common::endpoint().await;
    for strategy in common::all_strategies() {
        let err = audit_bucket(&client, &Target::bucket("no-such-bucket"), strategy)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ListError::NoSuchBucket {
                bucket: "no-such-bucket".to_owned()
            }
        );
        assert!(err.to_string().contains("\"no-such-bucket\" does not exist"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_refused_by_s3_is_an_access_denied_error_naming_the_permission() {
    let (s3, client) = common::seeded("locked", 3).await;
    s3.store().set_listing_denied("locked", true).unwrap();
    let err = audit_bucket(&client, &Target::bucket("locked"), Strategy::Sequential)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ListError::AccessDenied {
            bucket: "locked".to_owned(),
            action: "s3:ListBucket",
        }
    );
    assert!(
        err.to_string().contains("s3:ListBucket on arn:aws:s3:::locked"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_credentials_fail_the_listing_with_s3_s_code_and_message() {
    let (s3, _) = common::seeded("signed", 1).await;
    let client =
        acl_audit::s3::client::client_for_endpoint(s3.endpoint_url(), &s3.credentials().access_key_id, "wrong");
    let err = audit_bucket(&client, &Target::bucket("signed"), Strategy::Sequential)
        .await
        .unwrap_err();
    let ListError::Failed { code, detail, .. } = &err else {
        panic!("expected ListFailed, got {err:?}");
    };
    assert_eq!(code, "SignatureDoesNotMatch");
    assert!(detail.starts_with("SignatureDoesNotMatch: "), "{detail}");
    assert!(
        !detail.contains("wrong"),
        "the secret must not leak into the message: {detail}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_endpoint_reports_the_cause_not_just_dispatch_failure() {
    // A port bound but never listening refuses every connection, and nothing else in this
    // process can take it while we hold it (a dropped server's port could be reused by a
    // test running beside this one).
    let closed = tokio::net::TcpSocket::new_v4().expect("a socket");
    closed
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("a loopback port is free");
    let port = closed.local_addr().expect("a bound address").port();
    let client = acl_audit::s3::client::client_for_endpoint(&format!("http://127.0.0.1:{port}"), "AKIDLOCAL", "local");
    let err = audit_bucket(&client, &Target::bucket("any"), Strategy::Sequential)
        .await
        .unwrap_err();
    let ListError::Failed { code, detail, .. } = &err else {
        panic!("expected ListFailed, got {err:?}");
    };
    assert_eq!(code, "DispatchFailure");
    assert!(detail.to_lowercase().contains("connect"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_of_versions_denied_names_s3_list_bucket_versions() {
    let (s3, client) = common::seeded("locked-versions", 3).await;
    s3.store().set_listing_denied("locked-versions", true).unwrap();
    let target = Target {
        include_versions: true,
        ..Target::bucket("locked-versions")
    };
    let err = audit_bucket(&client, &target, Strategy::Sequential).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("s3:ListBucketVersions on arn:aws:s3:::locked-versions"),
        "{err}"
    );
}
