//! `{"scope": "account"}` through the functions' entry point against local-s3: every bucket in
//! one report and one findings file under `<FINDINGS_URI>account-<id>/…`, no GetObjectAcl on a
//! bucket whose ACLs are disabled; `AUDIT_SCOPE=account` makes it a schedule's default, and an
//! event that also names one bucket's run is refused.

use test_support as common;

use std::collections::HashMap;

use acl_audit::StrategyKind;
use acl_audit_lambda::outcome::SweepOutcome;
use acl_audit_lambda::{Clients, Config, Invocation, Reply};
use lambda_runtime::{Context, LambdaEvent};
use local_s3::acl::{Acl, CannedAcl};
use local_s3::store::{ObjectOwnership, StoredObject};
use serde_json::{Value, json};

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:join-all";

fn config(vars: &[(&str, &str)]) -> Config {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_vars(|name| vars.get(name).cloned()).expect("valid test configuration")
}

fn event(payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.invoked_function_arn = FUNCTION_ARN.to_owned();
    context.request_id = "sweep-request".to_owned();
    LambdaEvent::new(payload, context)
}

async fn account() -> (local_s3::LocalS3, aws_sdk_s3::Client) {
    let (s3, client) = common::endpoint().await;
    let store = s3.store();
    for (bucket, disabled) in [("open", false), ("closed", true)] {
        store.create_bucket(bucket).unwrap();
        for n in 0..5 {
            let object = StoredObject::new("x".into(), Acl::canned(CannedAcl::PublicRead));
            store.put_object(bucket, &format!("k{n}"), object).unwrap();
        }
        if disabled {
            store
                .set_ownership(bucket, Some(ObjectOwnership::BucketOwnerEnforced))
                .unwrap();
        }
    }
    store.create_bucket("findings").unwrap();
    (s3, client)
}

async fn sweep(client: &aws_sdk_s3::Client, config: &Config, payload: Value) -> Invocation {
    acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(client), config, event(payload)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_scope_event_sweeps_every_bucket_into_one_report_and_findings_file() {
    let (s3, client) = account().await;
    let config = config(&[("FINDINGS_URI", "s3://findings/acl-audit/")]);
    let invocation = sweep(&client, &config, json!({"scope": "account"})).await;
    let Ok(Reply::Sweep(outcome)) = invocation.into_reply() else {
        panic!("not a sweep's report")
    };
    let SweepOutcome::Account(report) = *outcome else {
        panic!("not an account's sweep")
    };
    assert_eq!(report.account_id.as_deref(), Some("123456789012"));
    assert_eq!(
        (
            report.totals.buckets,
            report.totals.audited,
            report.totals.acls_disabled
        ),
        (3, 2, 1)
    );
    assert_eq!(
        s3.requests("GetObjectAcl"),
        5,
        "the ACLs-disabled bucket is not crawled"
    );
    let findings = report.findings.as_ref().unwrap();
    assert_eq!(findings.objects, 5);
    let key = findings.uri.strip_prefix("s3://findings/").unwrap();
    assert!(key.starts_with("acl-audit/account-123456789012/"), "{key}");
    assert!(key.ends_with("/sweep-request/findings.jsonl"), "{key}");
    let (body, _) = s3.store().object("findings", key).unwrap();
    for line in String::from_utf8(body.to_vec()).unwrap().lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            (
                line["account_id"].as_str(),
                line["bucket"].as_str(),
                line["region"].as_str()
            ),
            (Some("123456789012"), Some("open"), Some("us-east-1")),
            "{line}"
        );
    }
    let report_key = key.replace("findings.jsonl", "report.json");
    let (written, _) = s3.store().object("findings", &report_key).unwrap();
    let written: Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(written["totals"]["buckets"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_scope_account_makes_a_sweep_the_default_and_a_named_bucket_still_one_run() {
    let (_s3, client) = account().await;
    let config = config(&[("AUDIT_SCOPE", "account")]);
    assert!(matches!(
        sweep(&client, &config, json!({})).await,
        Invocation::Swept { .. }
    ));
    let one = sweep(&client, &config, json!({"bucket": "open"}))
        .await
        .into_result()
        .unwrap();
    assert_eq!(one.bucket, "open");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_sweep_naming_one_bucket_s_fields_is_refused() {
    let (_s3, client) = account().await;
    let config = config(&[]);
    for payload in [
        json!({"scope": "account", "bucket": "open"}),
        json!({"scope": "account", "prefix": "k"}),
        json!({"include": ["o*"]}),
        json!({"role_name": "Member"}),
        json!({"scope": "organization"}),
        json!({"scope": "organization", "role_name": "not a role/name"}),
        json!({"scope": "account", "role_name": "Member"}),
    ] {
        let err = sweep(&client, &config, payload.clone()).await.into_reply().unwrap_err();
        assert_eq!(err.error_type(), "InvalidEvent", "{payload}: {err}");
    }
    let err = Config::from_vars(|name| (name == "AUDIT_SCOPE").then(|| "galaxy".to_owned())).unwrap_err();
    assert!(err.to_string().contains("AUDIT_SCOPE"), "{err}");
}

/// A scheduled sweep stopped by its deadline stores its place (the bucket under way and its
/// token) under `FINDINGS_URI`; the next takes it up where it stopped, and the one that reaches
/// the end removes it. Between them every object's ACL is fetched exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_stopped_at_its_deadline_is_taken_up_by_the_next() {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    // Every GetObjectAcl answers 300 ms late: a 2.5 s invocation stops part-way.
    let (s3, client) = common::slow_acls_and_findings_bucket("b-1", 12).await;
    for bucket in ["b-2", "b-3"] {
        local_s3::seed_bucket(s3.store(), bucket, 12).unwrap();
    }
    let config = Config::from_vars(|name| match name {
        "DEADLINE_MARGIN_MS" => Some("1000".to_owned()),
        "MAX_IN_FLIGHT" => Some("4".to_owned()),
        "FINDINGS_URI" => Some("s3://findings/acl-audit/".to_owned()),
        "AUDIT_SCOPE" => Some("account".to_owned()),
        _ => None,
    })
    .unwrap();
    let place_key = "acl-audit/resume/join-all/account-123456789012/sweep.json";
    let (mut fetched, mut runs, mut resumed) = (0, 0, 0);
    loop {
        runs += 1;
        assert!(runs < 30, "the sweep does not progress");
        let mut context = Context::default();
        context.invoked_function_arn = FUNCTION_ARN.to_owned();
        context.request_id = format!("run-{runs}");
        context.deadline = (SystemTime::now() + Duration::from_millis(2500))
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let invocation = acl_audit_lambda::invoke(
            StrategyKind::JoinAll,
            &Clients::new(&client),
            &config,
            LambdaEvent::new(json!({"exclude": ["findings"]}), context),
        )
        .await;
        let Ok(Reply::Sweep(outcome)) = invocation.into_reply() else {
            panic!("not a sweep's report")
        };
        let SweepOutcome::Account(report) = *outcome else {
            panic!("not an account's sweep")
        };
        fetched += report.totals.acls_fetched;
        resumed += usize::from(report.resumed_at.is_some());
        let stored = s3.store().object("findings", place_key).is_ok();
        match report.resume {
            Some(place) => assert!(stored, "stopped at {place:?} with no place stored"),
            None => {
                assert!(!stored, "a finished sweep leaves no place behind");
                break;
            }
        }
    }
    assert!(runs > 1 && resumed > 0, "{runs} runs, {resumed} resumed");
    // 36 objects (the findings bucket, which the runs write into, excluded), each fetched once
    // over the runs: a call abandoned at a stop is asked again, and counted once.
    assert_eq!(fetched, 36);
}

/// An organization's scheduled sweep stopped by its deadline stores its place under
/// `FINDINGS_URI` (`resume/<strategy>/organization-<id>/sweep.json`); the next takes it up and,
/// reaching the end, removes it. Against moto's Organizations, STS and per-account S3.
#[tokio::test(flavor = "multi_thread")]
async fn an_organization_sweep_stopped_at_its_deadline_is_taken_up_by_the_next() {
    use std::time::{SystemTime, UNIX_EPOCH};
    let Some(moto) = local_s3::moto::MotoServer::start() else {
        return;
    };
    let arranged = test_support::organization::arrange_organization(&moto).await;
    let sdk = test_support::organization::sdk_config(&moto);
    let s3 = acl_audit::s3::client::client_for_endpoint(moto.endpoint_url(), "moto-access-key", "moto-secret-key");
    s3.create_bucket().bucket("findings").send().await.unwrap();
    let clients = Clients::new(&s3).with_organization(
        &aws_sdk_organizations::Client::new(&sdk),
        &aws_sdk_sts::Client::new(&sdk),
    );
    let config = config(&[
        ("FINDINGS_URI", "s3://findings/acl-audit/"),
        ("AUDIT_SCOPE", "organization"),
        ("MEMBER_ROLE_NAME", test_support::organization::ROLE),
        // Longer than the deadline given below: the stop is due at once.
        ("DEADLINE_MARGIN_MS", "60000"),
    ]);
    let place_key = format!(
        "acl-audit/resume/join-all/organization-{}/sweep.json",
        arranged.management
    );
    let run = |due: bool| {
        let mut context = Context::default();
        context.invoked_function_arn = FUNCTION_ARN.to_owned();
        if due {
            // Within the margin: the sweep stops before its first account.
            let deadline = SystemTime::now() + std::time::Duration::from_secs(5);
            context.deadline = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        }
        let event = LambdaEvent::new(json!({"exclude": ["findings"]}), context);
        let (clients, config) = (clients.clone(), config.clone());
        async move {
            let invocation = acl_audit_lambda::invoke(StrategyKind::JoinAll, &clients, &config, event).await;
            let Ok(Reply::Sweep(outcome)) = invocation.into_reply() else {
                panic!("not a sweep's report")
            };
            let SweepOutcome::Organization(report) = *outcome else {
                panic!("not an organization's sweep")
            };
            report
        }
    };
    let stored = async || s3.get_object().bucket("findings").key(&place_key).send().await.is_ok();

    let stopped = run(true).await;
    let place = stopped
        .resume
        .clone()
        .expect("a sweep that reached no account leaves a place");
    assert!(stored().await, "its place is stored");
    let finished = run(false).await;
    assert_eq!(finished.resumed_at.as_deref(), Some(place.account_id.as_str()));
    assert_eq!(finished.accounts.len(), 4, "it started at the first account");
    assert_eq!(finished.totals.exposed_objects, arranged.exposed.len());
    assert_eq!(finished.resume, None);
    assert!(!stored().await, "a finished sweep leaves no place behind");
}
