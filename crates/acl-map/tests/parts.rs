//! The state machine's run of parts, step by step through the handler against local-s3
//! (`acl_map::state_machine`): the plan cuts the bucket (or its inventory report) into parts,
//! workers audit them in passes until none is left, and the last step adds them up; every
//! object is audited exactly once and counted once, and the payloads are the definition's.

use std::time::Duration;

use acl_audit::{AuditReport, Resume};
use acl_audit_lambda::Config;
use acl_map::state_machine::{self, CHILD_INPUT_LIMIT, DEFINITION, RunOptions, StateMachineRun};
use local_s3::{Faults, LocalS3, Options};
use serde_json::{Value, json};

const RESULTS: &str = "results";

fn config(vars: &[(&str, &str)]) -> Config {
    Config::from_vars(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())).unwrap()
}

async fn endpoint(bucket: &str, objects: usize, faults: Faults) -> LocalS3 {
    let s3 = LocalS3::start_with(Options {
        tls: true,
        faults,
        ..Options::default()
    })
    .await
    .unwrap();
    local_s3::seed_bucket(s3.store(), bucket, objects).unwrap();
    s3.store().create_bucket(RESULTS).unwrap();
    s3.store().create_bucket("findings").unwrap();
    s3
}

fn options(bucket: &str, parts: usize, workers: usize) -> RunOptions {
    RunOptions {
        bucket: bucket.to_owned(),
        prefix: String::new(),
        inventory: String::new(),
        parts,
        workers,
        part_timeout: None,
        execution: "exec-1".to_owned(),
        results_bucket: RESULTS.to_owned(),
    }
}

fn assert_every_part_fits_a_child_input(run: &StateMachineRun) {
    for event in &run.part_events {
        let size = serde_json::to_vec(event).unwrap().len();
        assert!(size < CHILD_INPUT_LIMIT, "a part of {size} bytes");
    }
}

/// The whole run's report: every object once, nothing left.
fn assert_complete(report: &AuditReport, objects: usize) {
    assert_eq!(report.objects_listed, objects, "{report:#?}");
    assert!(report.accounts_for_every_object(), "{report:#?}");
    assert_eq!((report.objects_not_fetched, report.failures.count), (0, 0));
    assert!(report.truncated.is_none() && report.resume.is_none(), "{report:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_cut_into_parts_is_audited_once_and_added_up() {
    let s3 = endpoint("audited", 2_500, Faults::default()).await;
    let config = config(&[("FINDINGS_URI", "s3://findings/acl-audit/")]);
    let run = state_machine::run(&s3, &config, &options("audited", 8, 3))
        .await
        .unwrap();
    assert_eq!(run.parts_per_pass.len(), 1, "no part stopped: one pass");
    assert!(
        (2..=8).contains(&run.parts_per_pass[0]),
        "the first page and ranges cut after it: {:?}",
        run.parts_per_pass
    );
    assert_every_part_fits_a_child_input(&run);
    assert_complete(&run.report, 2_500);
    assert_eq!(run.report.acls_fetched, 2_500);
    assert_eq!(s3.requests("GetObjectAcl"), 2_500, "every ACL fetched exactly once");
    let written = run.report.findings.as_ref().expect("the run's findings file");
    assert_eq!(written.objects, run.report.audit.findings.objects);
    assert!(written.objects > 0, "the seeded bucket has public objects");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plan_tiles_the_key_space_into_parts_of_comparable_size() {
    let s3 = endpoint("even", 20_000, Faults::default()).await;
    let client = state_machine::client_for(&s3).unwrap();
    let options = options("even", 16, 1);
    let invocation = acl_audit_lambda::invoke(
        acl_audit::StrategyKind::JoinAll,
        &acl_audit_lambda::Clients::new(&client),
        &config(&[]),
        lambda_runtime::LambdaEvent::new(state_machine::plan_payload(&options), Default::default()),
    )
    .await;
    let Ok(acl_audit_lambda::Reply::Pass(pass)) = invocation.into_reply() else {
        panic!("the plan answers a pass")
    };
    let object = client
        .get_object()
        .bucket(&pass.items.bucket)
        .key(&pass.items.key)
        .send()
        .await
        .unwrap();
    let parts: Vec<Value> = serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(parts.len(), pass.count);
    let ranges: Vec<acl_audit::model::KeyRange> = parts
        .iter()
        .map(|part| serde_json::from_value(part["resume"]["ranges"][0].clone()).unwrap())
        .collect();
    let mut sizes = vec![0; ranges.len()];
    for key in (0..20_000).map(local_s3::seed_key) {
        let holding: Vec<usize> = (0..ranges.len()).filter(|&n| ranges[n].contains(&key)).collect();
        assert_eq!(holding.len(), 1, "{key} is in exactly one part: {holding:?}");
        sizes[holding[0]] += 1;
    }
    assert!((4..=24).contains(&ranges.len()), "about 16 parts: {sizes:?}");
    assert!(sizes.iter().all(|&n| n > 0), "no part is empty: {sizes:?}");
    assert!(
        sizes.iter().all(|&n| n <= 5_000),
        "no part holds a quarter of the bucket: {sizes:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn parts_stopped_at_their_deadline_go_on_in_later_passes_and_count_once() {
    // Every GetObjectAcl answers 150 ms late; each part's invocation has 1 s before its margin.
    let faults = Faults {
        rules: vec!["get-object-acl:slow=1".parse().unwrap()],
        slow_response: Duration::from_millis(150),
        ..Faults::default()
    };
    let s3 = endpoint("slow", 1_500, faults).await;
    let config = config(&[
        ("DEADLINE_MARGIN_MS", "500"),
        ("MAX_IN_FLIGHT", "32"),
        ("FINDINGS_URI", "s3://findings/acl-audit/"),
    ]);
    let options = RunOptions {
        part_timeout: Some(Duration::from_millis(1_500)),
        ..options("slow", 4, 4)
    };
    let run = state_machine::run(&s3, &config, &options).await.unwrap();
    assert!(
        run.parts_per_pass.len() > 1,
        "parts stopped and went on: {:?}",
        run.parts_per_pass
    );
    assert_eq!(run.failed_parts, 0);
    assert_every_part_fits_a_child_input(&run);
    assert_complete(&run.report, 1_500);
    assert_eq!(run.report.acls_fetched, 1_500);
    // A call under way at a part's stop is abandoned and its key handed on (docs/reliability.md):
    // it may be asked again, never counted twice. At most MAX_IN_FLIGHT such calls per stopped part.
    let stopped_parts: usize = run.parts_per_pass[1..].iter().sum();
    let requests = s3.requests("GetObjectAcl") as usize;
    assert!(
        (1_500..=1_500 + 32 * stopped_parts).contains(&requests),
        "{requests} GetObjectAcl requests for {stopped_parts} stopped parts"
    );
    let written = run.report.findings.as_ref().expect("the run's findings file");
    assert_eq!(
        written.objects, run.report.audit.findings.objects,
        "every part's lines, once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_whose_acls_are_disabled_is_listed_in_parts_with_no_acl_fetched() {
    let s3 = endpoint("owned", 3_000, Faults::default()).await;
    s3.store()
        .set_ownership("owned", Some(local_s3::store::ObjectOwnership::BucketOwnerEnforced))
        .unwrap();
    let run = state_machine::run(&s3, &config(&[]), &options("owned", 16, 4))
        .await
        .unwrap();
    assert_complete(&run.report, 3_000);
    assert_eq!(run.report.objects_with_acls_disabled, 3_000);
    assert_eq!(s3.requests("GetObjectAcl"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inventory_report_is_audited_one_file_a_part() {
    let s3 = endpoint("audited", 2_000, Faults::default()).await;
    s3.store().create_bucket("inventories").unwrap();
    let spec = local_s3::inventory::InventorySpec {
        source: "audited",
        destination: "inventories",
        prefix: "audited/config-1/2026-12-03T01-00Z/",
        rows_per_file: 400,
        unavailable_every: 50,
    };
    local_s3::inventory::write_inventory(s3.store(), &spec).unwrap();
    let options = RunOptions {
        // The configuration's folder, as the schedule names it: its newest report.
        inventory: "s3://inventories/audited/config-1/".to_owned(),
        ..options("audited", 64, 3)
    };
    let run = state_machine::run(&s3, &config(&[]), &options).await.unwrap();
    assert_eq!(run.parts_per_pass, [5], "one part per file of 400 rows");
    assert_complete(&run.report, 2_000);
    assert_eq!(run.report.acls_from_inventory, 2_000 - 40);
    assert_eq!(s3.requests("GetObjectAcl"), 40, "only the UNAVAILABLE rows are fetched");
    assert!(
        s3.requests("ListObjectsV2") <= 2,
        "only the inventory folder is listed, to find the newest report; never the bucket"
    );
}

/// Pass `pass` of the run in `parts/<run>/`, as the plan or collect step and the parts leave
/// it: the parts file, and each part's report where it finished (`None`: its invocation
/// failed). The pass the state machine carries.
async fn write_pass(
    s3: &LocalS3,
    bucket: &str,
    run: &str,
    pass: usize,
    parts: &[(Resume, Option<AuditReport>)],
) -> Value {
    let client = state_machine::client_for(s3).unwrap();
    let put = |key: String, body: Vec<u8>| {
        let client = client.clone();
        async move {
            client
                .put_object()
                .bucket(RESULTS)
                .key(key)
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
    };
    let mut events = Vec::new();
    for (index, (token, report)) in parts.iter().enumerate() {
        let folder = format!("parts/{run}/pass-{pass}/part-{index}/");
        events.push(json!({"resume": token, "map_part": true, "folder": format!("s3://{RESULTS}/{folder}")}));
        if let Some(report) = report {
            put(format!("{folder}report.json"), serde_json::to_vec(report).unwrap()).await;
        }
    }
    let key = format!("parts/{run}/pass-{pass}.json");
    put(key.clone(), serde_json::to_vec(&events).unwrap()).await;
    json!({
        "bucket": bucket, "folder": format!("s3://{RESULTS}/parts/{run}/"), "pass": pass,
        "count": parts.len(), "items": {"Bucket": RESULTS, "Key": key}
    })
}

fn stopped_with_nothing_listed(bucket: &str) -> (Resume, Option<AuditReport>) {
    let token: Resume = serde_json::from_value(json!({
        "bucket": bucket, "prefix": null, "start_after": null, "listing_complete": false, "keys": [],
        "ranges": [{"after": "object-0000999", "through": null}]
    }))
    .unwrap();
    let mut report = AuditReport::empty(acl_audit::StrategyKind::JoinAll, bucket);
    report.truncated = Some(acl_audit::report::Truncation::Deadline);
    report.resume = Some(token.clone());
    (token, Some(report))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pass_whose_parts_all_stopped_before_an_object_fails_as_no_progress() {
    let s3 = endpoint("stuck", 10, Faults::default()).await;
    let client = state_machine::client_for(&s3).unwrap();
    let pass = write_pass(&s3, "stuck", "stuck", 3, &[stopped_with_nothing_listed("stuck")]).await;
    let invocation = acl_audit_lambda::invoke(
        acl_audit::StrategyKind::JoinAll,
        &acl_audit_lambda::Clients::new(&client),
        &config(&[]),
        lambda_runtime::LambdaEvent::new(json!({"collect": {"pass": pass}}), Default::default()),
    )
    .await;
    let err = invocation.into_reply().unwrap_err();
    assert_eq!(err.error_type(), "NoProgress", "{err}");
    assert!(err.to_string().contains("pass 3"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_part_s_keys_are_failures_and_its_unlisted_range_truncates_the_run() {
    let s3 = endpoint("failing", 10, Faults::default()).await;
    let client = state_machine::client_for(&s3).unwrap();
    let token: Resume = serde_json::from_value(json!({
        "bucket": "failing", "prefix": null, "start_after": null, "listing_complete": false,
        "keys": [{"key": "a", "version_id": null}, {"key": "b", "version_id": null}],
        "ranges": [{"after": "b", "through": "m"}]
    }))
    .unwrap();
    let mut pass = write_pass(&s3, "failing", "failing", 0, &[(token, None)]).await;
    pass["pass"] = json!(1);
    pass["count"] = json!(0);
    let report = acl_audit_lambda::invoke(
        acl_audit::StrategyKind::JoinAll,
        &acl_audit_lambda::Clients::new(&client),
        &config(&[]),
        lambda_runtime::LambdaEvent::new(json!({"add_up": {"pass": pass}}), Default::default()),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!((report.objects_listed, report.failures.count), (2, 2));
    assert_eq!(report.failures.by_code["PartNotReported"], 2);
    assert!(
        matches!(&report.truncated, Some(acl_audit::report::Truncation::ListingFailed { error }) if error.contains("PartNotReported")),
        "{:?}",
        report.truncated
    );
    let left = report.resume.expect("the range not listed is handed back");
    assert!(
        matches!(&left.cursor, acl_audit::model::Cursor::Ranges(ranges) if ranges.len() == 1),
        "{left:?}"
    );
}

/// The definition's value at a state's payload, its `.$` fields resolved from `paths`.
fn resolve(template: &Value, paths: &[(&str, Value)]) -> Value {
    match template {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, value)| match name.strip_suffix(".$") {
                    Some(field) => {
                        let path = value.as_str().unwrap();
                        let found = paths.iter().find(|(p, _)| *p == path).map(|(_, v)| v.clone());
                        (field.to_owned(), found.unwrap_or_else(|| panic!("no value for {path}")))
                    }
                    None => (name.clone(), resolve(value, paths)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn the_driver_sends_the_payloads_the_definition_builds() {
    let text = DEFINITION
        .replace("${BucketName}", "b")
        .replace("${ObjectPrefix}", "")
        .replace("${InventorySource}", "")
        .replace("${ResultsBucketName}", RESULTS)
        .replace("${AuditScope}", "bucket")
        .replace("${MemberRoleName}", "")
        .replace(
            "${WorkerFunctionArn}",
            "arn:aws:lambda:us-east-1:123456789012:function:join-all",
        );
    let definition: Value = serde_json::from_str(&text).unwrap();
    let states = &definition["States"];
    let options = options("b", 64, 1);
    let folder = format!("States.Format('s3://{RESULTS}/parts/{{}}/', $$.Execution.Name)");
    let plan = resolve(
        &states["Plan"]["Parameters"]["Payload"],
        &[
            ("$.settings.parts", json!(64)),
            ("$.settings.parts_per_bucket", json!(64)),
            ("$.settings.max_concurrency", json!(1)),
            (folder.as_str(), json!(format!("s3://{RESULTS}/parts/exec-1/"))),
        ],
    );
    assert_eq!(plan, state_machine::plan_payload(&options));

    let pass: acl_audit_lambda::Pass = serde_json::from_value(json!({
        "bucket": "b", "folder": "s3://results/parts/exec-1/", "pass": 0, "count": 2,
        "items": {"Bucket": RESULTS, "Key": "parts/exec-1/pass-0.json"}
    }))
    .unwrap();
    let paths = [("$.run.pass", serde_json::to_value(&pass).unwrap())];
    let collect = resolve(&states["Collect"]["Parameters"]["Payload"], &paths);
    assert_eq!(collect, state_machine::collect_payload(&pass));
    let add_up = resolve(&states["AddUp"]["Parameters"]["Payload"], &paths);
    assert_eq!(add_up, state_machine::add_up_payload(&pass));
    // The Map hands each element of the parts file whole to the worker.
    let worker = &states["AuditParts"]["ItemProcessor"]["States"]["AuditPart"]["Parameters"];
    assert_eq!(worker["Payload.$"], "$");
}
