//! The state machine's batches fit a child execution's input whatever the keys' length, and
//! the worker accepts them: every key reaches exactly one batch.

use acl_audit::StrategyKind;
use acl_map::batcher::{CHILD_INPUT_LIMIT, ItemBatcher, definition_for};
use lambda_runtime::{Context, LambdaEvent};
use local_s3::LocalS3;
use local_s3::acl::Acl;
use local_s3::store::StoredObject;

/// S3's longest key: 1 024 bytes of UTF-8.
fn long_key(index: usize) -> String {
    let prefix = format!("{index:06}/");
    format!("{prefix}{}", "k".repeat(1024 - prefix.len()))
}

#[test]
fn a_thousand_keys_of_1024_bytes_make_batches_under_the_child_input_limit() {
    let batcher = ItemBatcher::from_definition(&definition_for("long-keys"), 1000).unwrap();
    let keys: Vec<String> = (0..1000).map(long_key).collect();
    let batches = batcher.batches(keys.clone()).unwrap();
    assert!(
        batches.len() >= 5,
        "1 MB of keys cannot fit in {} batches",
        batches.len()
    );
    let mut seen = Vec::new();
    for batch in &batches {
        let bytes = serde_json::to_vec(batch).unwrap().len();
        assert!(bytes <= batcher.max_bytes && bytes < CHILD_INPUT_LIMIT, "{bytes} bytes");
        assert_eq!(batch["BatchInput"], serde_json::json!({"bucket": "long-keys"}));
        for item in batch["Items"].as_array().unwrap() {
            assert_eq!(item.as_object().unwrap().len(), 1, "only the key: {item}");
            seen.push(item["Key"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen, keys, "every key once, in order");
}

#[test]
fn short_keys_fill_batches_to_the_batch_size() {
    let batcher = ItemBatcher::from_definition(&definition_for("short"), 1000).unwrap();
    let batches = batcher.batches((0..2500).map(local_s3::seed_key)).unwrap();
    let sizes: Vec<usize> = batches.iter().map(|b| b["Items"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, [1000, 1000, 500]);
}

#[test]
fn a_batch_of_long_keys_is_audited_by_the_worker() {
    let runtime = acl_audit_lambda::runtime().unwrap();
    let s3 = runtime.block_on(LocalS3::start()).unwrap();
    s3.store().create_bucket("long-keys").unwrap();
    let keys: Vec<String> = (0..300).map(long_key).collect();
    for key in &keys {
        s3.store()
            .put_object(
                "long-keys",
                key,
                StoredObject::new(b"x".to_vec().into(), Acl::private()),
            )
            .unwrap();
    }
    let batcher = ItemBatcher::from_definition(&definition_for("long-keys"), 1000).unwrap();
    let batches = batcher.batches(keys).unwrap();
    assert_eq!(batches.len(), 2, "300 KiB of keys: two batches");
    let credentials = s3.credentials();
    let client = acl_audit::s3::client::client_for_endpoint(
        s3.endpoint_url(),
        &credentials.access_key_id,
        &credentials.secret_access_key,
    );
    let config = acl_audit_lambda::Config::from_vars(|_| None).unwrap();
    let mut fetched = 0;
    for batch in batches {
        let event = LambdaEvent::new(batch, Context::default());
        let (client, config) = (client.clone(), config.clone());
        let invocation = async move { acl_audit_lambda::handle(StrategyKind::JoinAll, &client, &config, event).await };
        let report = acl_audit_lambda::block_on_task(&runtime, invocation).unwrap();
        assert_eq!(report.failures.count, 0);
        fetched += report.acls_fetched;
    }
    assert_eq!(fetched, 300);
}
