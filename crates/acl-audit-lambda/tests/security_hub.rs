//! `SECURITY_HUB=true` through the functions' entry point against moto_server (S3 and Security
//! Hub): after one run Security Hub holds exactly the active findings; after an object is made
//! private and another's finding is suppressed, the next run leaves exactly the rest active, the
//! resolved one archived (compliance PASSED) and the suppressed one archived with its reason.

use std::collections::{BTreeMap, HashMap};

use acl_audit::StrategyKind;
use acl_audit::s3::client::client_for_endpoint;
use acl_audit_lambda::{Clients, Config};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectCannedAcl;
use lambda_runtime::{Context, LambdaEvent};
use local_s3::moto::MotoServer;
use serde_json::json;

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:join-all";

fn config(suppressions: bool) -> Config {
    let mut vars: HashMap<&str, &str> = [
        ("BUCKET_NAME", "site"),
        ("FINDINGS_URI", "s3://findings/acl-audit/"),
        ("SECURITY_HUB", "true"),
    ]
    .into();
    if suppressions {
        vars.insert("SUPPRESSIONS_URI", "s3://findings/suppressions.json");
    }
    Config::from_vars(|name| vars.get(name).map(|v| (*v).to_owned())).unwrap()
}

async fn run(clients: &Clients, config: &Config, request_id: &str) -> acl_audit::AuditReport {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    context.invoked_function_arn = FUNCTION_ARN.to_owned();
    acl_audit_lambda::invoke(
        StrategyKind::JoinAll,
        clients,
        config,
        LambdaEvent::new(json!({}), context),
    )
    .await
    .into_result()
    .unwrap_or_else(|err| panic!("{err}"))
}

/// What [`held_here`] reads, on a thread of its own: the SDK's GetFindings deserializer (every
/// ASFF resource type) needs more stack than a test thread's 2 MiB in a debug build.
async fn held(hub: &aws_sdk_securityhub::Client) -> BTreeMap<(String, String), (String, String)> {
    let hub = hub.clone();
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(held_here(&hub))
        })
        .unwrap()
        .join()
        .unwrap()
}

/// Every finding Security Hub holds: (the object's key, the kind) → (record state, compliance).
async fn held_here(hub: &aws_sdk_securityhub::Client) -> BTreeMap<(String, String), (String, String)> {
    let mut held = BTreeMap::new();
    let mut pages = hub.get_findings().max_results(100).into_paginator().send();
    while let Some(page) = pages.next().await {
        for finding in page.unwrap().findings() {
            let resource = &finding.resources()[0];
            let key = resource.id().unwrap().rsplit('/').next().unwrap().to_owned();
            let kind = finding.product_fields().unwrap()["acl-audit/Kind"].clone();
            let state = finding.record_state().unwrap().as_str().to_owned();
            let compliance = finding.compliance().unwrap().status().unwrap().as_str().to_owned();
            held.insert((key, kind), (state, compliance));
        }
    }
    held
}

fn expected(items: &[(&str, &str, &str, &str)]) -> BTreeMap<(String, String), (String, String)> {
    items
        .iter()
        .map(|(key, kind, state, compliance)| {
            (
                ((*key).to_owned(), (*kind).to_owned()),
                ((*state).to_owned(), (*compliance).to_owned()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn security_hub_holds_the_active_findings_and_archives_the_resolved() {
    let Some(moto) = MotoServer::start() else { return };
    let s3 = client_for_endpoint(moto.endpoint_url(), "moto-access-key", "moto-secret-key");
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint_url())
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("moto-access-key", "moto-secret-key", None, None, "test"),
        ))
        .build();
    let hub = aws_sdk_securityhub::Client::new(&sdk);
    for bucket in ["site", "findings"] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    for (key, acl) in [
        ("index.html", ObjectCannedAcl::PublicRead),
        ("export.csv", ObjectCannedAcl::AuthenticatedRead),
        ("draft.txt", ObjectCannedAcl::PublicRead),
        ("private.txt", ObjectCannedAcl::Private),
    ] {
        s3.put_object()
            .bucket("site")
            .key(key)
            .acl(acl)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let clients = Clients::new(&s3).with_security_hub(&hub);

    let first = run(&clients, &config(false), "run-1").await;
    let imported = first.security_hub.clone().expect("the report says what was sent");
    assert_eq!((imported.active, imported.archived), (3, 0), "{imported:?}");
    assert_eq!(
        imported.product_arn,
        "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
    );
    assert_eq!(
        held(&hub).await,
        expected(&[
            ("draft.txt", "public_read", "ACTIVE", "FAILED"),
            ("export.csv", "authenticated_read", "ACTIVE", "FAILED"),
            ("index.html", "public_read", "ACTIVE", "FAILED"),
        ])
    );

    s3.put_object_acl()
        .bucket("site")
        .key("draft.txt")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("findings")
        .key("suppressions.json")
        .body(ByteStream::from_static(
            br#"[{"bucket": "site", "key": "index.html", "reason": "the public website"}]"#,
        ))
        .send()
        .await
        .unwrap();
    let second = run(&clients, &config(true), "run-2").await;
    let imported = second.security_hub.clone().unwrap();
    assert_eq!((imported.active, imported.archived), (1, 2), "{imported:?}");
    assert_eq!(
        held(&hub).await,
        expected(&[
            ("draft.txt", "public_read", "ARCHIVED", "PASSED"),
            ("export.csv", "authenticated_read", "ACTIVE", "FAILED"),
            ("index.html", "public_read", "ARCHIVED", "FAILED"),
        ]),
        "resolved: archived and passed; suppressed: archived, still failing its check"
    );
}
