//! S3 Inventory as the source: `{"inventory": "s3://…/manifest.json"}` audits the objects an
//! inventory report lists from its `ObjectAccessControlList` field, with no GetObjectAcl call
//! but for rows whose ACL is UNAVAILABLE. The report is generated here to S3's documented
//! format (manifest.json with fileFormat, fileSchema and files with their MD5 checksums;
//! gzip-compressed CSV, every field quoted, keys URL-encoded; the ACL field base64 JSON) from
//! the bucket's own ACLs, read through aws-sdk-s3 from local-s3.

use test_support as common;

use std::collections::HashMap;
use std::io::Write as _;

use acl_audit::StrategyKind;
use acl_audit_lambda::{Clients, Config, HandlerError};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::Type;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use md5::{Digest, Md5};
use serde_json::{Value, json};

const SCHEMA: &str = "Bucket, Key, Size, LastModifiedDate, ObjectAccessControlList, ObjectOwner";
const MANIFEST: &str = "audited/config-1/2026-12-03T01-00Z/manifest.json";

fn config(vars: &[(&str, &str)]) -> Config {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_vars(|name| vars.get(name).cloned()).expect("valid test configuration")
}

fn event(payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = "inventory-run".to_owned();
    LambdaEvent::new(payload, context)
}

/// One join-all invocation with `payload`, as the function is invoked.
async fn audit(client: &Client, config: &Config, payload: Value) -> Result<acl_audit::AuditReport, HandlerError> {
    acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(client), config, event(payload))
        .await
        .into_result()
}

async fn put(client: &Client, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket("inventories")
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
}

/// The ACL field S3 writes for `key`: its grants as GetObjectAcl gives them, or UNAVAILABLE.
async fn acl_field(client: &Client, key: &str, available: bool) -> (String, String) {
    if !available {
        let field = json!({"version": "2022-11-10", "status": "UNAVAILABLE"});
        return (
            aws_smithy_types::base64::encode(field.to_string()),
            "UNAVAILABLE".to_owned(),
        );
    }
    let acl = client.get_object_acl().bucket("audited").key(key).send().await.unwrap();
    let grants: Vec<Value> = acl
        .grants()
        .iter()
        .map(|grant| {
            let grantee = grant.grantee().unwrap();
            let permission = grant.permission().unwrap().as_str();
            match grantee.r#type() {
                Type::Group => json!({"uri": grantee.uri(), "type": "Group", "permission": permission}),
                _ => json!({"canonicalId": grantee.id(), "type": "CanonicalUser", "permission": permission}),
            }
        })
        .collect();
    let field = json!({"version": "2022-11-10", "status": "AVAILABLE", "grants": grants});
    let owner = acl.owner().and_then(|o| o.id()).unwrap_or_default().to_owned();
    (aws_smithy_types::base64::encode(field.to_string()), owner)
}

/// An inventory report of the bucket "audited" in "inventories", `rows_per_file` rows a file,
/// every `unavailable_every`th row's ACL UNAVAILABLE; how many rows are.
async fn write_inventory(client: &Client, rows_per_file: usize, unavailable_every: usize) -> usize {
    let mut keys = Vec::new();
    let mut pages = client.list_objects_v2().bucket("audited").into_paginator().send();
    while let Some(page) = pages.next().await {
        keys.extend(page.unwrap().contents().iter().map(|o| o.key().unwrap().to_owned()));
    }
    let mut files = Vec::new();
    for (n, chunk) in keys.chunks(rows_per_file).enumerate() {
        let mut csv = String::new();
        for (i, key) in chunk.iter().enumerate() {
            let row = n * rows_per_file + i;
            let (acl, owner) = acl_field(client, key, !(row + 1).is_multiple_of(unavailable_every)).await;
            let encoded = local_s3::inventory::form_url_encoded(key);
            csv.push_str(&format!(
                "\"audited\",\"{encoded}\",\"16\",\"2026-12-02T10:00:00.000Z\",\"{acl}\",\"{owner}\"\n"
            ));
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(csv.as_bytes()).unwrap();
        let body = gz.finish().unwrap();
        let key = format!("audited/config-1/data/{n:04}.csv.gz");
        files.push(json!({"key": key, "size": body.len(), "MD5checksum": format!("{:x}", Md5::digest(&body))}));
        put(client, &key, body).await;
    }
    let manifest = json!({
        "sourceBucket": "audited",
        "destinationBucket": "arn:aws:s3:::inventories",
        "version": "2016-11-30",
        "creationTimestamp": "1764723600000",
        "fileFormat": "CSV",
        "fileSchema": SCHEMA,
        "files": files
    });
    put(client, MANIFEST, serde_json::to_vec(&manifest).unwrap()).await;
    keys.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inventory_sourced_audit_reads_every_acl_from_the_report() {
    let (s3, client) = common::seeded("audited", 2500).await;
    s3.store().create_bucket("inventories").unwrap();
    s3.store().create_bucket("findings").unwrap();
    let rows = write_inventory(&client, 1000, 50).await;
    assert_eq!(rows, 2500);
    let listed = acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(&client),
        &config(&[]),
        event(json!({"bucket": "audited"})),
    )
    .await
    .into_result()
    .unwrap();

    let before = s3.requests("GetObjectAcl");
    let config = config(&[("FINDINGS_URI", "s3://findings/acl-audit/")]);
    let payload = json!({"bucket": "audited", "inventory": format!("s3://inventories/{MANIFEST}")});
    let report = audit(&client, &config, payload).await.unwrap();
    assert_eq!(
        s3.requests("GetObjectAcl") - before,
        50,
        "GetObjectAcl only for the 50 UNAVAILABLE rows"
    );
    assert_eq!(
        (report.objects_listed, report.acls_fetched, report.acls_from_inventory),
        (2500, 2500, 2450)
    );
    assert!(report.accounts_for_every_object());
    assert_eq!(report.truncated, None);
    assert_eq!(report.audit, listed.audit, "the same findings as fetching every ACL");
    let written = report.findings.as_ref().unwrap();
    assert_eq!(written.objects, listed.audit.findings.objects);
}

/// An inventory event need not name its bucket: the manifest's `sourceBucket` does, and a
/// bucket named beside it must be that one.
#[tokio::test(flavor = "multi_thread")]
async fn an_inventory_event_without_a_bucket_audits_the_manifests_source_bucket() {
    let (s3, client) = common::seeded("audited", 120).await;
    s3.store().create_bucket("inventories").unwrap();
    s3.store().create_bucket("other").unwrap();
    write_inventory(&client, 100, 0).await;
    let inventory = format!("s3://inventories/{MANIFEST}");
    let run = |payload: Value| {
        let client = client.clone();
        async move { audit(&client, &config(&[]), payload).await }
    };
    let report = run(json!({"inventory": inventory})).await.unwrap();
    assert_eq!((report.bucket.as_str(), report.objects_listed), ("audited", 120));
    assert!(report.accounts_for_every_object());

    let err = run(json!({"inventory": inventory, "bucket": "other"}))
        .await
        .unwrap_err();
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "InvalidEvent");
    assert!(
        diagnostic
            .error_message
            .contains("\"other\" is not the inventory report's sourceBucket \"audited\""),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inventory_without_the_acl_field_or_a_missing_manifest_is_a_named_error() {
    let (s3, client) = common::seeded("audited", 1).await;
    s3.store().create_bucket("inventories").unwrap();
    let manifest =
        json!({"sourceBucket": "audited", "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size", "files": []});
    put(&client, MANIFEST, serde_json::to_vec(&manifest).unwrap()).await;
    let config = config(&[("BUCKET_NAME", "audited")]);
    let run = |manifest: String| {
        let (client, config) = (client.clone(), config.clone());
        async move {
            let payload = json!({"inventory": manifest});
            Diagnostic::from(audit(&client, &config, payload).await.unwrap_err())
        }
    };
    let no_field = run(format!("s3://inventories/{MANIFEST}")).await;
    assert_eq!(no_field.error_type, "InventoryNotRead");
    assert!(
        no_field.error_message.contains("no ObjectAccessControlList field"),
        "{}",
        no_field.error_message
    );
    let missing = run("s3://inventories/nothing/manifest.json".to_owned()).await;
    assert_eq!(missing.error_type, "InventoryNotRead");
    assert!(missing.error_message.contains("NoSuchKey"), "{}", missing.error_message);
    let not_s3 = run("inventories/manifest.json".to_owned()).await;
    assert_eq!(not_s3.error_type, "InvalidEvent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_local_s3_writes_is_audited_with_zero_get_object_acl_calls() {
    let (s3, client) = common::seeded("audited", 20_000).await;
    s3.store().create_bucket("inventories").unwrap();
    let spec = local_s3::inventory::InventorySpec {
        source: "audited",
        destination: "inventories",
        prefix: "audited/config-1/2026-12-03T01-00Z/",
        rows_per_file: 7_000,
        unavailable_every: 0,
    };
    let manifest = local_s3::inventory::write_inventory(s3.store(), &spec).unwrap();
    let payload = json!({"bucket": "audited", "inventory": format!("s3://inventories/{manifest}")});
    let report = audit(&client, &config(&[]), payload).await.unwrap();
    assert_eq!(s3.requests("GetObjectAcl"), 0, "not one GetObjectAcl request");
    assert_eq!((report.objects_listed, report.acls_from_inventory), (20_000, 20_000));
    assert_eq!(
        report.audit.readable_by_all_users.count, 2_000,
        "one object in ten is public"
    );
    assert_eq!(report.audit.granted_to_other_accounts.count, 2_000);
}

/// A run stopped by its deadline part-way through the report hands on the place it stopped
/// at; runs passed each token in turn read every row exactly once between them.
#[tokio::test(flavor = "multi_thread")]
async fn runs_stopped_by_their_deadline_read_on_where_the_last_one_stopped() {
    use std::time::Duration;
    let (s3, client) = slow_endpoint(10_000).await;
    let spec = local_s3::inventory::InventorySpec {
        source: "audited",
        destination: "inventories",
        prefix: "audited/config-1/2026-12-03T01-00Z/",
        rows_per_file: 500,
        unavailable_every: 0,
    };
    let manifest = format!(
        "s3://inventories/{}",
        local_s3::inventory::write_inventory(s3.store(), &spec).unwrap()
    );
    let config = config(&[("DEADLINE_MARGIN_MS", "100")]);
    let mut payload = json!({"bucket": "audited", "inventory": manifest});
    let (mut rows, mut public, mut runs, mut stopped_in_report) = (0, 0, 0, 0);
    loop {
        runs += 1;
        assert!(runs < 50, "the runs do not progress");
        let report = run_until(&client, &config, &payload, "inventory-run", Duration::from_millis(1200)).await;
        assert!(report.accounts_for_every_object(), "{report:?}");
        rows += report.acls_from_inventory;
        public += report.audit.readable_by_all_users.count;
        let Some(resume) = report.report.resume else { break };
        if let Some(cursor) = resume.cursor.inventory() {
            stopped_in_report += 1;
            assert_eq!(cursor.manifest, manifest);
        }
        payload = json!({ "resume": resume });
    }
    assert!(stopped_in_report > 0, "no run stopped inside the report ({runs} runs)");
    assert_eq!(rows, 10_000, "every row read once");
    assert_eq!(public, 1_000, "one object in ten is public");
    assert_eq!(s3.requests("GetObjectAcl"), 0);
}

/// A schedule names the configuration's folder: each run reads the newest complete report in
/// it, passing over a newer one whose manifest S3 has not written yet.
#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_folder_is_read_from_its_newest_complete_report() {
    let (s3, client) = common::seeded("audited", 30).await;
    s3.store().create_bucket("inventories").unwrap();
    let older = local_s3::inventory::InventorySpec {
        source: "audited",
        destination: "inventories",
        prefix: "audited/config-1/2026-12-01T01-00Z/",
        rows_per_file: 10,
        unavailable_every: 0,
    };
    local_s3::inventory::write_inventory(s3.store(), &older).unwrap();
    // The newer report: written with every object public, so that reading it shows.
    for n in 0..30 {
        client
            .put_object_acl()
            .bucket("audited")
            .key(local_s3::seed_key(n))
            .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
            .send()
            .await
            .unwrap();
    }
    let newer = local_s3::inventory::InventorySpec {
        prefix: "audited/config-1/2026-12-02T01-00Z/",
        ..older
    };
    local_s3::inventory::write_inventory(s3.store(), &newer).unwrap();
    // A report still being written: its files, not yet its manifest.
    put(&client, "audited/config-1/2026-12-03T01-00Z/data/0.csv.gz", vec![0]).await;
    put(
        &client,
        "audited/config-1/hive/dt=2026-12-03-01-00/symlink.txt",
        vec![0],
    )
    .await;

    let payload = json!({"bucket": "audited", "inventory": "s3://inventories/audited/config-1/"});
    let report = audit(&client, &config(&[]), payload).await.unwrap();
    assert_eq!(report.acls_from_inventory, 30);
    assert_eq!(
        report.audit.readable_by_all_users.count, 30,
        "the 2026-12-02 report, not the 1st's"
    );

    let payload = json!({"bucket": "audited", "inventory": "s3://inventories/audited/config-9/"});
    let err = Diagnostic::from(audit(&client, &config(&[]), payload).await.unwrap_err());
    assert_eq!(err.error_type, "InventoryNotRead");
    assert!(
        err.error_message.contains("no inventory report under"),
        "{}",
        err.error_message
    );
}

/// "audited" with `objects` objects and an "inventories" bucket, on an endpoint whose every
/// answer comes 150 ms late, so that a run reads a few of a report's files only.
async fn slow_endpoint(objects: usize) -> (local_s3::LocalS3, Client) {
    let faults = local_s3::Faults {
        rules: vec!["*:slow=1".parse().unwrap()],
        slow_response: std::time::Duration::from_millis(150),
        ..local_s3::Faults::default()
    };
    let (s3, client) = common::faulty("audited", objects, faults).await;
    s3.store().create_bucket("inventories").unwrap();
    (s3, client)
}

/// A run of `payload` with `remaining` until its deadline.
async fn run_until(
    client: &Client,
    config: &Config,
    payload: &Value,
    request_id: &str,
    remaining: std::time::Duration,
) -> acl_audit_lambda::RunReport {
    use std::time::{SystemTime, UNIX_EPOCH};
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    context.deadline = (SystemTime::now() + remaining)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        &Clients::new(client),
        config,
        LambdaEvent::new(payload.clone(), context),
    )
    .await
    .into_run_report()
    .unwrap()
}

/// A schedule's runs over a configuration's folder, stopped by their deadline, store their
/// place in the report under `FINDINGS_URI`: each next run takes it up and says so, and the
/// last removes it, so the report is read exactly once between them with no one handing on a
/// token. A place stored in an older report is superseded by a newer one.
#[tokio::test(flavor = "multi_thread")]
async fn scheduled_inventory_runs_take_up_the_stored_place_and_a_newer_report_supersedes_it() {
    use std::time::Duration;
    let (s3, client) = slow_endpoint(3_000).await;
    s3.store().create_bucket("findings").unwrap();
    let older = local_s3::inventory::InventorySpec {
        source: "audited",
        destination: "inventories",
        prefix: "audited/config-1/2026-12-02T01-00Z/",
        rows_per_file: 250,
        unavailable_every: 0,
    };
    local_s3::inventory::write_inventory(s3.store(), &older).unwrap();
    let config = config(&[
        ("DEADLINE_MARGIN_MS", "100"),
        ("FINDINGS_URI", "s3://findings/acl-audit/"),
    ]);
    let schedule = json!({"bucket": "audited", "inventory": "s3://inventories/audited/config-1/"});
    let token_key = "acl-audit/resume/join-all/audited/inventory.json";
    let stored = |client: Client| async move {
        client
            .get_object()
            .bucket("findings")
            .key(token_key)
            .send()
            .await
            .is_ok()
    };

    let first = run_until(&client, &config, &schedule, "older", Duration::from_millis(1500)).await;
    assert!(
        first.resume.is_some(),
        "the run stopped inside the older report: {first:?}"
    );
    assert!(first.acls_from_inventory < 3_000);
    assert!(stored(client.clone()).await, "its place is stored");

    let newer = local_s3::inventory::InventorySpec {
        prefix: "audited/config-1/2026-12-03T01-00Z/",
        ..older
    };
    local_s3::inventory::write_inventory(s3.store(), &newer).unwrap();
    let (mut rows, mut public, mut runs) = (0, 0, 0);
    loop {
        runs += 1;
        assert!(runs < 40, "the runs do not progress");
        let report = run_until(
            &client,
            &config,
            &schedule,
            &format!("run-{runs}"),
            Duration::from_millis(1500),
        )
        .await;
        assert!(report.accounts_for_every_object(), "{report:?}");
        assert_eq!(
            report.resumed_from.is_some(),
            runs > 1,
            "run {runs}: the first reads the newer report from its start, the others go on in it"
        );
        if let Some(from) = &report.resumed_from {
            assert_eq!(from, &format!("s3://findings/{token_key}"));
        }
        rows += report.acls_from_inventory;
        public += report.audit.readable_by_all_users.count;
        if report.resume.is_none() {
            break;
        }
        let cursor = report.resume.as_ref().and_then(|resume| resume.cursor.inventory());
        assert!(
            cursor.is_some_and(|cursor| cursor.manifest.contains("2026-12-03T01-00Z")),
            "{cursor:?}"
        );
        assert!(stored(client.clone()).await, "run {runs} stored its place");
    }
    assert!(runs > 1, "one run read the whole report: the deadline is too far");
    assert_eq!(rows, 3_000, "every row of the newer report read once");
    assert_eq!(public, 300, "one object in ten is public");
    assert!(!stored(client.clone()).await, "the last run removed the token");
    assert_eq!(s3.requests("GetObjectAcl"), 0);
}
