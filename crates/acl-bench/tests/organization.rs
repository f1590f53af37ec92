//! `{"scope": "organization", "role_name": …}` through the real `join-all` binary under the
//! benchmark's Runtime API, against moto_server's Organizations, STS and per-account S3
//! (`test_support::organization`, with moto's IAM checks on): one invocation sweeps the
//! management account and the two members whose role it may assume, reports the third as
//! `role_not_assumed` and each account's denied bucket as failed, and its findings file names
//! exactly the exposed objects with account, bucket and region.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use acl_audit::findings::FindingLine;
use acl_audit::s3::client::client_for_endpoint;
use acl_bench::runtime_api::RuntimeApi;
use local_s3::moto::MotoServer;
use test_support::organization;

#[tokio::test(flavor = "multi_thread")]
async fn one_join_all_invocation_sweeps_the_organization() {
    let Some(moto) = MotoServer::start() else { return };
    let mut arranged = organization::arrange_organization(&moto).await;
    client_for_endpoint(moto.endpoint_url(), "moto-access-key", "moto-secret-key")
        .create_bucket()
        .bucket("org-findings")
        .send()
        .await
        .unwrap();
    let guarded = organization::guard(&moto, &mut arranged).await;
    let (key, secret) = (guarded.access_key_id.as_str(), guarded.secret_access_key.as_str());
    let s3 = client_for_endpoint(moto.endpoint_url(), key, secret);
    let api = RuntimeApi::start().unwrap();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_acl-bench")).with_file_name("join-all");
    assert!(
        binary.exists(),
        "{} is missing: `make test` builds it",
        binary.display()
    );
    let mut child = Command::new(binary)
        .env_clear()
        .envs(api.function_env_at("join-all", 512, moto.endpoint_url(), key, secret))
        .env("FINDINGS_URI", "s3://org-findings/acl-audit/")
        .env("MEMBER_ROLE_NAME", organization::ROLE)
        .env("WARM_CONNECTIONS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    api.wait_for_poll(Duration::from_secs(60))
        .expect("the init ends with a poll");
    let outcome = api
        .invoke(
            &serde_json::json!({"scope": "organization"}),
            Duration::from_secs(120),
            Duration::from_secs(120),
        )
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let body = String::from_utf8_lossy(&outcome.body);
    assert!(!outcome.error, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["accounts"].as_array().unwrap().len(), 4, "{body}");
    assert_eq!(
        (report["accounts_swept"].as_u64(), report["accounts_failed"].as_u64()),
        (Some(3), Some(1)),
        "{body}"
    );
    assert_eq!(report["totals"]["acls_disabled"], 3, "no GetObjectAcl there: {body}");
    assert_eq!(
        report["totals"]["failed"], 3,
        "each reached account's denied bucket: {body}"
    );
    assert_eq!(report["totals"]["public_policy_buckets"], 3, "{body}");
    let uri = report["findings"]["uri"].as_str().unwrap();
    let key = uri.strip_prefix("s3://org-findings/").unwrap();
    let file = s3.get_object().bucket("org-findings").key(key).send().await.unwrap();
    let lines = String::from_utf8(file.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
    let named: BTreeSet<(String, String, String)> = lines
        .lines()
        .map(|line| serde_json::from_str::<FindingLine>(line).unwrap())
        .filter(|line| line.effective)
        .map(|line| (line.account_id.unwrap_or_default(), line.bucket, line.key))
        .collect();
    assert_eq!(named, arranged.exposed);
}
