//! An organization's sweep against moto_server, which serves Organizations, STS AssumeRole
//! across accounts and S3 per account: the management account and three member accounts, each
//! with buckets mixing ACLs disabled, public-read and authenticated-read objects,
//! IgnorePublicAcls, a public bucket policy, a bucket in another region and, with moto's IAM
//! checks on, a bucket the sweep may not read; one member's role cannot be assumed
//! (`test_support::organization`; moto drops grants to other accounts' canonical ids, so
//! cross-account grants are local-s3's test, `tests/sweep.rs`). One sweep names exactly the
//! exposed objects with their account, bucket and region, every bucket and account in the
//! report with its state, and no GetObjectAcl on an ACLs-disabled bucket (its objects' public
//! grants would be named otherwise).

use std::collections::BTreeSet;

use acl_audit::findings::FindingLine;
use acl_audit::organization::{AccountState, OrganizationClients, OrganizationOptions, sweep_organization};
use acl_audit::s3::client::client_for_endpoint;
use acl_audit::strategy::InFlight;
use acl_audit::sweep::{BucketState, SweepScope};
use acl_audit::{FindingsOutput, Strategy};
use local_s3::moto::MotoServer;
use test_support::organization;

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_sweep_names_every_exposed_object_with_its_account() {
    let Some(moto) = MotoServer::start() else { return };
    let mut arranged = organization::arrange_organization(&moto).await;
    let guarded = organization::guard(&moto, &mut arranged).await;
    let expected = arranged.exposed;
    let config = organization::sdk_config_as(&moto, &guarded.access_key_id, &guarded.secret_access_key);
    let organizations = aws_sdk_organizations::Client::new(&config);
    let sts = aws_sdk_sts::Client::new(&config);
    let s3 = client_for_endpoint(moto.endpoint_url(), &guarded.access_key_id, &guarded.secret_access_key);
    let path = test_support::scratch!("organization.jsonl");
    let options = OrganizationOptions {
        role_name: organization::ROLE.to_owned(),
        findings: Some(FindingsOutput::file(&path).unwrap()),
        ..OrganizationOptions::default()
    };
    let clients = OrganizationClients {
        s3: &s3,
        control: None,
        organizations: &organizations,
        sts: &sts,
    };
    let report = sweep_organization(
        clients,
        Strategy::JoinAll {
            in_flight: InFlight::All,
        },
        options,
    )
    .await
    .unwrap();
    assert_eq!(report.accounts.len(), 4, "{report:#?}");
    assert_eq!((report.accounts_swept, report.accounts_failed), (3, 1));
    for account in &report.accounts {
        if account.account_id == guarded.locked {
            assert_eq!(account.state, AccountState::RoleNotAssumed);
            let error = account.error.as_deref().unwrap();
            // moto answers this refusal in S3's error shape, which the STS client reads as an
            // unknown code; S3's code is in the body it quotes.
            assert!(
                error.contains("cannot assume") && error.contains("AccessDenied"),
                "{error}"
            );
            continue;
        }
        assert_eq!(account.state, AccountState::Swept);
        let swept = account.report.as_ref().unwrap();
        let state = |suffix: &str| {
            let bucket = swept.buckets.iter().find(|b| b.bucket.ends_with(suffix)).unwrap();
            (bucket.state, bucket.acls_fetched)
        };
        assert_eq!(swept.buckets.len(), 6, "{}: {:?}", account.account_id, swept.buckets);
        assert_eq!(state("-disabled"), (BucketState::AclsDisabled, 0), "no GetObjectAcl");
        assert_eq!(state("-open"), (BucketState::Audited, 3));
        assert_eq!(state("-ignored"), (BucketState::Audited, 1));
        let secret = swept.buckets.iter().find(|b| b.bucket.ends_with("-secret")).unwrap();
        assert_eq!(secret.state, BucketState::Failed, "{secret:?}");
        assert_eq!(secret.error.as_ref().unwrap().code, "AccessDenied", "{secret:?}");
        let policy = swept.buckets.iter().find(|b| b.bucket.ends_with("-policy")).unwrap();
        assert_eq!(policy.bucket_findings, ["public_policy"], "{policy:?}");
        assert_eq!(swept.totals.public_policy_buckets, 1);
    }
    let lines = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<FindingLine> = lines.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let named: BTreeSet<(String, String, String)> = lines
        .iter()
        .filter(|line| line.effective)
        .map(|line| {
            (
                line.account_id.clone().unwrap_or_default(),
                line.bucket.clone(),
                line.key.clone(),
            )
        })
        .collect();
    assert_eq!(named, expected);
    let neutralised: Vec<&FindingLine> = lines.iter().filter(|line| !line.effective).collect();
    assert_eq!(
        neutralised.len(),
        3,
        "the -ignored buckets' public objects, named but not exposed"
    );
    assert!(neutralised.iter().all(|line| line.bucket.ends_with("-ignored")));
    for line in &lines {
        let region = if line.bucket.ends_with("-far") {
            "eu-west-1"
        } else {
            "us-east-1"
        };
        assert_eq!(line.region.as_deref(), Some(region), "{line:?}");
    }
}

/// A sweep stopped before its accounts leaves its place (the first account not reached, in
/// account-id order); the next sweep from that place sweeps that account and those after it
/// and no other, says where it took up, and leaves no place once it reaches the end.
#[tokio::test(flavor = "multi_thread")]
async fn an_organization_sweep_stopped_early_is_taken_up_where_it_stopped() {
    use acl_audit::organization::OrganizationPlace;

    let Some(moto) = MotoServer::start() else { return };
    let arranged = organization::arrange_organization(&moto).await;
    let config = organization::sdk_config(&moto);
    let organizations = aws_sdk_organizations::Client::new(&config);
    let sts = aws_sdk_sts::Client::new(&config);
    let s3 = client_for_endpoint(moto.endpoint_url(), "moto-access-key", "moto-secret-key");
    let clients = || OrganizationClients {
        s3: &s3,
        control: None,
        organizations: &organizations,
        sts: &sts,
    };
    let strategy = Strategy::JoinAll {
        in_flight: InFlight::All,
    };
    let mut ids: Vec<String> = arranged.members.clone();
    ids.push(arranged.management.clone());
    ids.sort();

    let stopped = OrganizationOptions {
        role_name: organization::ROLE.to_owned(),
        scope: SweepScope {
            stop_at: Some(std::time::Instant::now()),
            ..SweepScope::default()
        },
        ..OrganizationOptions::default()
    };
    let report = sweep_organization(clients(), strategy, stopped).await.unwrap();
    assert!(
        report.accounts.iter().all(|a| a.state == AccountState::NotReached),
        "{report:#?}"
    );
    let order: Vec<&str> = report.accounts.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(order, ids, "accounts in id order");
    assert_eq!(
        report.resume,
        Some(OrganizationPlace {
            account_id: ids[0].clone(),
            place: None
        })
    );

    let from_second = OrganizationOptions {
        role_name: organization::ROLE.to_owned(),
        resume: Some(OrganizationPlace {
            account_id: ids[1].clone(),
            place: None,
        }),
        ..OrganizationOptions::default()
    };
    let report = sweep_organization(clients(), strategy, from_second).await.unwrap();
    let swept: Vec<&str> = report.accounts.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(
        swept,
        ids[1..],
        "the accounts before the place were swept by the run that stopped"
    );
    assert!(
        report.accounts.iter().all(|a| a.state == AccountState::Swept),
        "{report:#?}"
    );
    assert_eq!(report.resumed_at.as_deref(), Some(ids[1].as_str()));
    assert_eq!(report.resume, None, "the end reached: nothing to take up");
}
