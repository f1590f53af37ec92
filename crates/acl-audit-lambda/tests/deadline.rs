//! Runs that cannot finish: the invocation's deadline comes, or `max_objects` stops the
//! listing. The report says so, accounts for every key, and carries a resume token that the
//! next invocation takes to finish the job.

use test_support as common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acl_audit::model::Cursor;
use acl_audit::report::Truncation;
use acl_audit::{AuditReport, Resume, StrategyKind, Target, audit_bucket};
use acl_audit_lambda::HandlerError;
use acl_audit_lambda::record::stop_at;
use acl_audit_lambda::{Clients, Config, RequestError};
use lambda_runtime::{Context, LambdaEvent};
use local_s3::Faults;
use serde_json::{Value, json};

const SLOW_RESPONSE: Duration = Duration::from_millis(300);

fn config(margin_ms: u64) -> Config {
    let margin = margin_ms.to_string();
    Config::from_vars(|name| match name {
        "DEADLINE_MARGIN_MS" => Some(margin.clone()),
        "MAX_IN_FLIGHT" => Some("8".to_owned()),
        "BLOCKING_POOL_SIZE" => Some("6".to_owned()),
        _ => None,
    })
    .unwrap()
}

/// An invocation whose deadline is `remaining` from now, as Lambda's context gives it.
fn event_due_in(payload: Value, remaining: Duration) -> LambdaEvent<Value> {
    let deadline = SystemTime::now() + remaining;
    let mut context = Context::default();
    context.deadline = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    LambdaEvent::new(payload, context)
}

fn every_response_slow() -> Faults {
    Faults {
        rules: vec!["get-object-acl:slow=1".parse().unwrap()],
        slow_response: SLOW_RESPONSE,
        ..Faults::default()
    }
}

fn resume_event(report: &AuditReport) -> Value {
    json!({ "resume": report.resume })
}

#[tokio::test(flavor = "multi_thread")]
async fn near_its_deadline_a_run_stops_and_the_next_run_fetches_what_it_left() {
    for kind in StrategyKind::ALL {
        let (s3, client) = common::faulty("due", 60, every_response_slow()).await;
        // Stops 1 s before a deadline 1.5 s away: after about 0.5 s, one or two rounds of calls.
        let remaining = Duration::from_millis(1500);
        let started = Instant::now();
        let first = acl_audit_lambda::invoke(
            kind,
            &Clients::new(&client),
            &config(1000),
            event_due_in(json!({"bucket": "due"}), remaining),
        )
        .await
        .into_result()
        .unwrap();
        let took = started.elapsed();
        assert!(took < remaining, "{kind:?}: returned after {took:?}, past its deadline");
        assert_eq!(first.truncated, Some(Truncation::Deadline), "{kind:?}");
        assert!(first.accounts_for_every_object(), "{kind:?}: {first:?}");
        assert_eq!(first.objects_listed, 60);
        assert!(
            first.objects_not_fetched > 0 && first.acls_fetched > 0,
            "{kind:?}: {first:?}"
        );
        let resume = first.resume.as_ref().unwrap();
        assert_eq!(resume.keys.len(), first.objects_not_fetched);
        assert!(resume.cursor.is_done(), "60 keys are one page, listed before the stop");

        s3.set_faults(Faults::default());
        let second = acl_audit_lambda::invoke(
            kind,
            &Clients::new(&client),
            &config(1000),
            LambdaEvent::new(resume_event(&first), Context::default()),
        )
        .await
        .into_result()
        .unwrap();
        assert_eq!(second.truncated, None, "{kind:?}");
        assert_eq!(second.resume, None);
        assert_eq!(second.objects_listed, resume.keys.len());
        assert_eq!(first.acls_fetched + second.acls_fetched, 60, "{kind:?}");
        assert_eq!(
            first.audit.readable_by_all_users.count + second.audit.readable_by_all_users.count,
            6,
            "the two halves audit the whole seed"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_with_no_time_left_fetches_nothing_and_hands_every_key_on() {
    let (_s3, client) = common::seeded("late", 5).await;
    let carried = Resume {
        bucket: "late".to_owned(),
        prefix: None,
        versions: false,
        keys: vec!["object-0000000".into(), "object-0000001".into()],
        cursor: Cursor::After {
            key: Some("object-0000002".to_owned()),
            version_id: None,
        },
    };
    let event = event_due_in(json!({ "resume": carried }), Duration::from_millis(500));
    let report = acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(&client), &config(1000), event)
        .await
        .into_result()
        .unwrap();
    assert_eq!(report.truncated, Some(Truncation::Deadline));
    assert_eq!(
        (report.objects_listed, report.acls_fetched, report.objects_not_fetched),
        (2, 0, 2)
    );
    assert_eq!(report.resume, Some(carried), "nothing done, so the same token back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_still_unanswered_at_the_deadline_leaves_the_whole_bucket_to_the_next_run() {
    let faults = Faults {
        rules: vec!["list-objects-v2:slow=1".parse().unwrap()],
        slow_response: Duration::from_secs(5),
        ..Faults::default()
    };
    let (_s3, client) = common::faulty("slow-listing", 10, faults).await;
    let remaining = Duration::from_millis(1500);
    let started = Instant::now();
    let event = event_due_in(json!({"bucket": "slow-listing"}), remaining);
    let report = acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(&client), &config(1000), event)
        .await
        .into_result()
        .unwrap();
    assert!(started.elapsed() < remaining, "returned after {:?}", started.elapsed());
    assert_eq!(report.truncated, Some(Truncation::Deadline));
    assert_eq!(report.objects_listed, 0);
    let resume = report.resume.unwrap();
    assert_eq!(resume.cursor, Cursor::START, "the whole listing is left");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_objects_pages_through_a_large_bucket_one_resume_token_at_a_time() {
    let (_s3, client) = common::seeded("paged", 2500).await;
    let mut target = Target {
        max_objects: Some(1000),
        ..Target::bucket("paged")
    };
    let mut resumed_after = BTreeSet::new();
    let mut runs = Vec::new();
    loop {
        let report = audit_bucket(&client, &target, common::all_strategies()[2])
            .await
            .unwrap();
        assert!(report.accounts_for_every_object());
        assert_eq!(report.failures.count, 0);
        runs.push((report.objects_listed, report.truncated.clone()));
        let Some(resume) = report.resume else { break };
        assert!(resume.keys.is_empty(), "every listed key was fetched");
        let Cursor::After { key: Some(after), .. } = &resume.cursor else {
            panic!("a listing's token names where it goes on: {resume:?}");
        };
        resumed_after.insert(after.clone());
        target.resume = Some(resume);
    }
    assert_eq!(
        runs,
        [
            (1000, Some(Truncation::MaxObjects)),
            (1000, Some(Truncation::MaxObjects)),
            (500, None)
        ]
    );
    assert_eq!(
        resumed_after,
        BTreeSet::from([local_s3::seed_key(999), local_s3::seed_key(1999)])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_token_for_another_bucket_than_the_event_names_is_refused() {
    let (_s3, client) = common::seeded("mine", 1).await;
    let token = json!({"bucket": "theirs", "prefix": null, "start_after": null, "listing_complete": false, "keys": []});
    let event = LambdaEvent::new(json!({"bucket": "mine", "resume": token}), Context::default());
    let err = acl_audit_lambda::invoke(StrategyKind::JoinAll, &Clients::new(&client), &config(1000), event)
        .await
        .into_result()
        .unwrap_err();
    let HandlerError::Request(RequestError::InvalidEvent(message)) = &err else {
        panic!("{err:?}");
    };
    assert!(
        message.contains("\"mine\" is not the resume token's \"theirs\""),
        "{message}"
    );
}

#[test]
fn no_deadline_or_one_already_past_sets_no_stop() {
    let margin = Duration::from_secs(2);
    let mut context = Context::default();
    assert_eq!(stop_at(&context, margin), None, "no deadline: outside Lambda");
    context.deadline = 600_000; // what `cargo lambda watch` sends: its timeout, not a time
    assert_eq!(stop_at(&context, margin), None);
    let in_ten_seconds = event_due_in(Value::Null, Duration::from_secs(10)).context;
    let stop = stop_at(&in_ten_seconds, margin).unwrap();
    let until_stop = stop.duration_since(Instant::now());
    assert!(
        until_stop <= Duration::from_secs(8) && until_stop > Duration::from_secs(7),
        "{until_stop:?}"
    );
}
