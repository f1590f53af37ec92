//! `acl-audit scan` as a shell user runs it: against local-s3 and moto, with the environment a
//! user sets (`AWS_ENDPOINT_URL`, keys, region), its report on stdout and its exit codes.

use std::process::{Command, Output};

use local_s3::LocalS3;
use serde_json::Value;

/// Runs the command with only the AWS settings given: no profile or credentials of the
/// machine's user can leak in.
fn scan(endpoint: &str, key: &str, secret: &str, args: &[&str]) -> Output {
    command(endpoint, key, secret, "scan", args)
}

/// `name` under Cargo's directory for integration tests' files (target/tmp), for this process.
fn scratch(name: &str) -> std::path::PathBuf {
    test_support::scratch!("acl-audit-cli-{name}")
}

/// Any subcommand, as [`scan`] runs `scan`.
fn command(endpoint: &str, key: &str, secret: &str, subcommand: &str, args: &[&str]) -> Output {
    let home = scratch("home");
    std::fs::create_dir_all(&home).unwrap();
    Command::new(env!("CARGO_BIN_EXE_acl-audit"))
        .arg(subcommand)
        .args(args)
        .env_clear()
        .env("HOME", &home)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("the binary runs")
}

fn scan_local(s3: &LocalS3, args: &[&str]) -> Output {
    let keys = s3.credentials();
    scan(s3.endpoint_url(), &keys.access_key_id, &keys.secret_access_key, args)
}

fn report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not a report ({err}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The command blocks while the endpoint serves on the test's runtime.
async fn run(f: impl FnOnce() -> Output + Send + 'static) -> Output {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_with_findings_exits_3_and_writes_every_finding() {
    let s3 = LocalS3::start().await.unwrap();
    local_s3::seed_bucket(s3.store(), "mixed", 200).unwrap();
    let file = scratch("findings.jsonl");
    let file_arg = file.display().to_string();
    let s3 = std::sync::Arc::new(s3);
    let shared = std::sync::Arc::clone(&s3);
    let output = run(move || scan_local(&shared, &["s3://mixed", "--findings", &file_arg])).await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report(&output);
    assert_eq!(report["acls_fetched"], 200);
    assert_eq!(report["audit"]["findings"]["objects"], 60);
    let lines = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(lines.lines().count(), 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn findings_under_an_s3_prefix_land_in_the_run_folder_with_the_report() {
    let s3 = std::sync::Arc::new(LocalS3::start().await.unwrap());
    local_s3::seed_bucket(s3.store(), "mixed", 50).unwrap();
    s3.store().create_bucket("findings").unwrap();
    let shared = std::sync::Arc::clone(&s3);
    let output = run(move || {
        scan_local(
            &shared,
            &[
                "s3://mixed",
                "--findings",
                "s3://findings/audits/",
                "--strategy",
                "sequential",
            ],
        )
    })
    .await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let uri = report(&output)["findings"]["uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with("s3://findings/audits/mixed/") && uri.ends_with("/findings.jsonl"),
        "{uri}"
    );
    let key = uri.trim_start_matches("s3://findings/");
    assert!(s3.store().object("findings", key).is_ok());
    assert!(
        s3.store()
            .object("findings", &key.replace("findings.jsonl", "report.json"))
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_prefix_exits_0() {
    let s3 = std::sync::Arc::new(LocalS3::start().await.unwrap());
    local_s3::seed_bucket(s3.store(), "mixed", 100).unwrap();
    // Seeded objects 0-6 of every ten are private: a prefix naming object 1 alone is clean.
    let shared = std::sync::Arc::clone(&s3);
    let output = run(move || scan_local(&shared, &["s3://mixed/object-0000001", "--quiet"])).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report(&output)["objects_listed"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_bucket_exits_1_naming_it_and_what_to_check() {
    let s3 = std::sync::Arc::new(LocalS3::start().await.unwrap());
    let shared = std::sync::Arc::clone(&s3);
    let output = run(move || scan_local(&shared, &["s3://not-there"])).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"not-there\" does not exist") && stderr.contains("--region"),
        "{stderr}"
    );
    assert!(!stderr.contains("BUCKET_NAME"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_acls_without_findings_exit_4() {
    let s3 = std::sync::Arc::new(LocalS3::start().await.unwrap());
    local_s3::seed_bucket(s3.store(), "mixed", 3).unwrap();
    s3.store()
        .set_acl_readable("mixed", &local_s3::seed_key(1), false)
        .unwrap();
    let shared = std::sync::Arc::clone(&s3);
    let output = run(move || scan_local(&shared, &["s3://mixed"])).await;
    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report(&output)["failures"]["count"], 1);
}

#[test]
fn a_location_that_is_not_s3_is_a_usage_error() {
    let output = scan("http://127.0.0.1:9", "k", "s", &["my-bucket"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not an s3://"));
}

#[test]
fn against_moto_the_findings_are_the_same() {
    let Some(moto) = local_s3::moto::MotoServer::start() else {
        return;
    };
    let endpoint = moto.endpoint_url().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = acl_audit_test_client(&endpoint);
        client.create_bucket().bucket("mixed").send().await.unwrap();
        for (key, acl) in [
            ("private", aws_sdk_s3::types::ObjectCannedAcl::Private),
            ("public", aws_sdk_s3::types::ObjectCannedAcl::PublicRead),
        ] {
            let body = aws_sdk_s3::primitives::ByteStream::from_static(b"x");
            client
                .put_object()
                .bucket("mixed")
                .key(key)
                .acl(acl)
                .body(body)
                .send()
                .await
                .unwrap();
        }
    });
    let output = scan(&endpoint, "moto-key", "moto-secret", &["s3://mixed", "--quiet"]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report(&output)["audit"]["findings"]["by_kind"]["public_read"], 1);

    // --security-hub: the finding goes to moto's Security Hub, in the caller's account.
    let file = scratch("hub.jsonl");
    let file_arg = file.display().to_string();
    let output = scan(
        &endpoint,
        "moto-key",
        "moto-secret",
        &["s3://mixed", "--quiet", "--findings", &file_arg, "--security-hub"],
    );
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sent = &report(&output)["security_hub"];
    assert_eq!(
        (&sent["active"], &sent["archived"]),
        (&Value::from(1), &Value::from(0)),
        "{sent}"
    );
    assert_eq!(
        sent["product_arn"],
        "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
    );

    // fix --apply on moto: the next run finds nothing.
    let fixed = command(&endpoint, "moto-key", "moto-secret", "fix", &[&file_arg, "--apply"]);
    assert_eq!(
        fixed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fixed.stderr)
    );
    let after = scratch("hub-after");
    std::fs::create_dir_all(&after).unwrap();
    let after_arg = after.join("findings.jsonl").display().to_string();
    let output = scan(
        &endpoint,
        "moto-key",
        "moto-secret",
        &[
            "s3://mixed",
            "--quiet",
            "--findings",
            &after_arg,
            "--compare-with",
            &file_arg,
        ],
    );
    drop(moto);
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir_all(&after);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(
        report(&output)["changes"]["resolved"],
        1,
        "the fixed object is resolved"
    );
}

fn acl_audit_test_client(endpoint: &str) -> aws_sdk_s3::Client {
    acl_audit::s3::client::client_for_endpoint(endpoint, "moto-key", "moto-secret")
}

/// `--all-buckets`: every bucket in the report, crawled where its ACLs apply, one findings file
/// whose lines name their bucket; `--include`/`--exclude` choose buckets; a location beside it
/// is a usage error.
#[tokio::test(flavor = "multi_thread")]
async fn all_buckets_sweeps_the_account_into_one_report_and_findings_file() {
    let s3 = LocalS3::start().await.unwrap();
    local_s3::seed_bucket(s3.store(), "seeded", 100).unwrap();
    local_s3::seed_bucket(s3.store(), "enforced", 50).unwrap();
    s3.store()
        .set_ownership("enforced", Some(local_s3::store::ObjectOwnership::BucketOwnerEnforced))
        .unwrap();
    s3.store().create_bucket("skipped").unwrap();
    let file = scratch("sweep.jsonl");
    let file_arg = file.display().to_string();
    let s3 = std::sync::Arc::new(s3);
    let shared = std::sync::Arc::clone(&s3);
    let output = run(move || {
        scan_local(
            &shared,
            &["--all-buckets", "--exclude", "skip*", "--findings", &file_arg],
        )
    })
    .await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report(&output);
    assert_eq!(report["totals"]["buckets"], 2, "{report}");
    assert_eq!(report["totals"]["acls_disabled"], 1);
    assert_eq!(report["totals"]["acls_fetched"], 100);
    assert_eq!(s3.requests("GetObjectAcl"), 100);
    let lines = std::fs::read_to_string(&file).unwrap();
    assert!(!lines.is_empty());
    assert!(lines.lines().all(|line| line.contains("\"bucket\":\"seeded\"")));

    let shared = std::sync::Arc::clone(&s3);
    let both = run(move || scan_local(&shared, &["s3://seeded", "--all-buckets"])).await;
    assert_eq!(both.status.code(), Some(2));
}

/// `--organization --role-name`: the management account and its members on moto with its IAM
/// checks on (one member's role refused, a bucket denied in each account), the findings naming
/// exactly the exposed objects with account and bucket, every account in the report.
#[tokio::test(flavor = "multi_thread")]
async fn organization_sweeps_every_account_on_moto() {
    let Some(moto) = local_s3::moto::MotoServer::start() else {
        return;
    };
    let mut arranged = test_support::organization::arrange_organization(&moto).await;
    let guarded = test_support::organization::guard(&moto, &mut arranged).await;
    let file = scratch("org.jsonl");
    let file_arg = file.display().to_string();
    let endpoint = moto.endpoint_url().to_owned();
    let (key, secret) = (guarded.access_key_id.clone(), guarded.secret_access_key.clone());
    let output = run(move || {
        scan(
            &endpoint,
            &key,
            &secret,
            &[
                "--organization",
                "--role-name",
                test_support::organization::ROLE,
                "--findings",
                &file_arg,
            ],
        )
    })
    .await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report(&output);
    assert_eq!(
        (report["accounts_swept"].as_u64(), report["accounts_failed"].as_u64()),
        (Some(3), Some(1)),
        "{report}"
    );
    let locked = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|account| account["account_id"] == guarded.locked.as_str())
        .unwrap();
    assert_eq!(locked["state"], "role_not_assumed", "{locked}");
    assert_eq!(
        report["totals"]["failed"], 3,
        "each reached account's -secret bucket: {report}"
    );
    let named: std::collections::BTreeSet<(String, String, String)> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line["effective"] == true)
        .map(|line| {
            (
                line["account_id"].as_str().unwrap().to_owned(),
                line["bucket"].as_str().unwrap().to_owned(),
                line["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(named, arranged.exposed);
}

/// `--suppressions FILE`: with every finding of a bucket accepted, the findings are still
/// written, marked, and the exit code is 0; a malformed file is an error before the audit.
#[tokio::test(flavor = "multi_thread")]
async fn suppressed_findings_are_written_marked_and_do_not_make_the_exit_code_3() {
    let s3 = std::sync::Arc::new(LocalS3::start().await.unwrap());
    local_s3::seed_bucket(s3.store(), "site", 20).unwrap();
    let dir = scratch("suppressions");
    std::fs::create_dir_all(&dir).unwrap();
    let accepted = dir.join("accepted.json");
    std::fs::write(&accepted, r#"[{"bucket": "site", "reason": "the public website"}]"#).unwrap();
    let malformed = dir.join("malformed.json");
    std::fs::write(&malformed, r#"[{"bucket": "site", "reason": "r", "until": "soon"}]"#).unwrap();
    let findings = dir.join("findings.jsonl");
    let (accepted, malformed, findings_arg) = (
        accepted.display().to_string(),
        malformed.display().to_string(),
        findings.display().to_string(),
    );
    let shared = std::sync::Arc::clone(&s3);
    let output = run(move || {
        scan_local(
            &shared,
            &["s3://site", "--suppressions", &accepted, "--findings", &findings_arg],
        )
    })
    .await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report(&output);
    assert_eq!(report["audit"]["findings"]["suppressed_objects"], 6, "{report}");
    assert_eq!(report["audit"]["findings"]["exposed_objects"], 0, "{report}");
    let lines = std::fs::read_to_string(&findings).unwrap();
    assert_eq!(lines.lines().count(), 6);
    assert!(
        lines
            .lines()
            .all(|line| line.contains(r#""suppressed":{"reason":"the public website"}"#)),
        "{lines}"
    );

    let shared = std::sync::Arc::clone(&s3);
    let output = run(move || scan_local(&shared, &["s3://site", "--suppressions", &malformed])).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("entry 0: until \"soon\" is not a date"), "{stderr}");
    assert_eq!(s3.requests("GetObjectAcl"), 20, "the second run fetched nothing");
}

/// `--compare-with`: a second run names exactly what changed since the first, beside its
/// findings, and every findings line has its `first_seen`.
#[tokio::test(flavor = "multi_thread")]
async fn compare_with_names_what_changed_since_the_earlier_findings() {
    let s3 = std::sync::Arc::new(LocalS3::start().await.unwrap());
    // Objects 7 and 17 public-read, 8 and 18 authenticated-read, 9 and 19 another account's.
    local_s3::seed_bucket(s3.store(), "site", 20).unwrap();
    let dir = scratch("compare");
    for run in ["first", "second"] {
        std::fs::create_dir_all(dir.join(run)).unwrap();
    }
    let (first, second) = (dir.join("first/findings.jsonl"), dir.join("second/findings.jsonl"));
    let (first_arg, second_arg) = (first.display().to_string(), second.display().to_string());
    let shared = std::sync::Arc::clone(&s3);
    let output = run(move || scan_local(&shared, &["s3://site", "--findings", &first_arg, "--quiet"])).await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let store = s3.store();
    store
        .set_object_acl(
            "site",
            "object-0000001",
            local_s3::acl::Acl::canned(local_s3::acl::CannedAcl::PublicRead),
        )
        .unwrap();
    store
        .set_object_acl("site", "object-0000007", local_s3::acl::Acl::private())
        .unwrap();
    store.delete_object("site", "object-0000018").unwrap();

    let earlier = first.display().to_string();
    let shared = std::sync::Arc::clone(&s3);
    let output = run(move || {
        scan_local(
            &shared,
            &[
                "s3://site",
                "--findings",
                &second_arg,
                "--compare-with",
                &earlier,
                "--quiet",
            ],
        )
    })
    .await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report(&output);
    let changes = &report["changes"];
    assert_eq!(
        (&changes["new"], &changes["resolved"], &changes["persisting"]),
        (&Value::from(1), &Value::from(2), &Value::from(4)),
        "{report}"
    );
    let lines: std::collections::BTreeSet<(String, String, String)> =
        std::fs::read_to_string(dir.join("second/changes.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .map(|line| {
                let text = |field: &str| line[field].as_str().unwrap().to_owned();
                (text("key"), text("kind"), text("change"))
            })
            .collect();
    let expected: std::collections::BTreeSet<(String, String, String)> = [
        ("object-0000001", "public_read", "new"),
        ("object-0000007", "public_read", "resolved"),
        ("object-0000018", "authenticated_read", "resolved"),
    ]
    .iter()
    .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(lines, expected);
    let findings = std::fs::read_to_string(&second).unwrap();
    assert!(
        findings
            .lines()
            .all(|line| serde_json::from_str::<Value>(line).unwrap()["first_seen"].is_string()),
        "{findings}"
    );

    let missing = dir.join("missing.jsonl").display().to_string();
    let shared = std::sync::Arc::clone(&s3);
    let output = run(move || {
        scan_local(
            &shared,
            &["s3://site", "--findings", "/dev/null", "--compare-with", &missing],
        )
    })
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.jsonl"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `fix-plan` writes a manifest and a job per bucket naming exactly the exposed objects; `fix`
/// says what it would change, then with `--apply` makes them private, and the next run finds
/// those exposures resolved and none left (another account's grants stay findings).
#[tokio::test(flavor = "multi_thread")]
async fn fix_apply_leaves_no_exposed_object_and_the_next_run_says_resolved() {
    let s3 = std::sync::Arc::new(LocalS3::start().await.unwrap());
    // Objects 7 and 17 public-read, 8 and 18 authenticated-read, 9 and 19 another account's.
    local_s3::seed_bucket(s3.store(), "site", 20).unwrap();
    let dir = scratch("fix");
    for run in ["before", "after", "plan"] {
        std::fs::create_dir_all(dir.join(run)).unwrap();
    }
    let before = dir.join("before/findings.jsonl").display().to_string();
    let after = dir.join("after/findings.jsonl").display().to_string();
    let plan = dir.join("plan").display().to_string();
    let keys = s3.credentials();
    let (endpoint, key, secret) = (
        s3.endpoint_url().to_owned(),
        keys.access_key_id.clone(),
        keys.secret_access_key.clone(),
    );
    let cli = move |subcommand: &'static str, args: Vec<String>| {
        let (endpoint, key, secret) = (endpoint.clone(), key.clone(), secret.clone());
        async move {
            run(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                command(&endpoint, &key, &secret, subcommand, &args)
            })
            .await
        }
    };
    let args = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect::<Vec<_>>();
    let output = cli("scan", args(&["s3://site", "--quiet", "--findings", &before])).await;
    assert_eq!(output.status.code(), Some(3));

    let output = cli("fix-plan", args(&[&before, "--out", &plan])).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report(&output)["exposed_objects"], 4);
    let manifest = std::fs::read_to_string(dir.join("plan/site/manifest.csv")).unwrap();
    assert_eq!(
        manifest,
        "site,object-0000007\nsite,object-0000008\nsite,object-0000017\nsite,object-0000018\n"
    );
    let job: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("plan/site/job.json")).unwrap()).unwrap();
    assert_eq!(
        job["Operation"]["S3PutObjectAcl"]["AccessControlPolicy"]["CannedAccessControlList"],
        "private"
    );

    let dry = cli("fix", args(&[&before])).await;
    assert_eq!(dry.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&dry.stdout)
            .matches("would make private")
            .count(),
        4
    );
    let applied = cli("fix", args(&[&before, "--apply"])).await;
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&applied.stdout)
            .matches("made private: s3://site/")
            .count(),
        4
    );

    let output = cli(
        "scan",
        args(&["s3://site", "--quiet", "--findings", &after, "--compare-with", &before]),
    )
    .await;
    let report = report(&output);
    assert_eq!(report["audit"]["findings"]["exposed_objects"], 0, "{report}");
    assert_eq!(report["changes"]["resolved"], 4, "{report}");
    assert_eq!(report["changes"]["new"], 0, "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--format ocsf`: every line an OCSF Detection Finding that py-ocsf-models validates
/// (`make test` sets OCSF_VALIDATOR to its venv's python; `tests/validate_ocsf.py`), a failure
/// included, and the file reads back for `--compare-with` and `fix` as the own format does.
#[tokio::test(flavor = "multi_thread")]
async fn ocsf_findings_validate_against_the_schema_and_read_back() {
    let s3 = std::sync::Arc::new(LocalS3::start().await.unwrap());
    // Objects 7 and 17 public-read, 8 and 18 authenticated-read, 9 and 19 another account's.
    local_s3::seed_bucket(s3.store(), "site", 20).unwrap();
    s3.store().set_acl_readable("site", "object-0000003", false).unwrap();
    let dir = scratch("ocsf");
    for run in ["first", "second"] {
        std::fs::create_dir_all(dir.join(run)).unwrap();
    }
    let first = dir.join("first/findings.jsonl").display().to_string();
    let second = dir.join("second/findings.jsonl").display().to_string();
    let (shared, file) = (std::sync::Arc::clone(&s3), first.clone());
    let output = run(move || {
        scan_local(
            &shared,
            &[
                "s3://site",
                "--quiet",
                "--format",
                "ocsf",
                "--findings",
                &file,
                "--account-id",
                "111122223333",
            ],
        )
    })
    .await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = std::fs::read_to_string(&first).unwrap();
    assert_eq!(lines.lines().count(), 7, "6 findings and a failure: {lines}");
    assert!(lines.lines().all(|line| line.contains(r#""class_uid":2004"#)));
    match std::env::var_os("OCSF_VALIDATOR") {
        Some(python) => {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/validate_ocsf.py");
            let checked = Command::new(python).arg(script).arg(&first).output().unwrap();
            assert!(
                checked.status.success(),
                "{}{}",
                String::from_utf8_lossy(&checked.stdout),
                String::from_utf8_lossy(&checked.stderr)
            );
        }
        None => {
            eprintln!("OCSF_VALIDATOR is unset: the OCSF lines are not checked against the schema (make test sets it)")
        }
    }

    let (shared, file, earlier) = (std::sync::Arc::clone(&s3), second.clone(), first.clone());
    let output = run(move || {
        scan_local(
            &shared,
            &[
                "s3://site",
                "--quiet",
                "--format",
                "ocsf",
                "--findings",
                &file,
                "--compare-with",
                &earlier,
                "--account-id",
                "111122223333",
            ],
        )
    })
    .await;
    let report = report(&output);
    assert_eq!(
        (
            &report["changes"]["new"],
            &report["changes"]["resolved"],
            &report["changes"]["persisting"]
        ),
        (&Value::from(0), &Value::from(0), &Value::from(6)),
        "{report}"
    );
    let keys = s3.credentials();
    let (endpoint, key, secret) = (
        s3.endpoint_url().to_owned(),
        keys.access_key_id.clone(),
        keys.secret_access_key.clone(),
    );
    let dry = run(move || command(&endpoint, &key, &secret, "fix", &[&second])).await;
    assert_eq!(
        String::from_utf8_lossy(&dry.stdout)
            .matches("would make private")
            .count(),
        4
    );
    let _ = std::fs::remove_dir_all(&dir);
}
