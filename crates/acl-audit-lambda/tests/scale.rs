//! A bucket far larger than one listing page: every object accounted for, keys listed a page
//! at a time while their ACLs are fetched.

use test_support as common;

use acl_audit::StrategyKind;
use acl_audit_lambda::Clients;
use acl_audit_lambda::Config;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;

const OBJECTS: usize = 20_000;

#[tokio::test(flavor = "multi_thread")]
async fn twenty_thousand_objects_are_each_fetched_once_and_audited() {
    let (s3, client) = common::endpoint().await;
    let seeded = local_s3::seed_bucket(s3.store(), "large", OBJECTS).unwrap();
    // The functions' defaults, as on Lambda at 1 024 MB.
    let config =
        Config::from_vars(|name| (name == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE").then(|| "1024".to_owned())).unwrap();
    let event = LambdaEvent::new(json!({"bucket": "large"}), Context::default());
    let report = acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(&client), &config, event)
        .await
        .into_result()
        .unwrap();
    assert_eq!(report.objects_listed, OBJECTS);
    assert_eq!(report.acls_fetched, OBJECTS);
    assert_eq!(report.failures.count, 0);
    assert_eq!(report.truncated, None);
    assert!(report.accounts_for_every_object());
    assert_eq!(report.audit.readable_by_all_users.count, seeded.public_read);
    assert_eq!(report.audit.granted_to_other_accounts.count, seeded.cross_account_read);
    assert_eq!(report.audit.grants_by_permission["FULL_CONTROL"], OBJECTS);
}
