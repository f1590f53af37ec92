//! The project's state machine definition (`statemachine/audit-bucket.asl.json`) run by an
//! interpreter no one here wrote: moto's Step Functions (its `execute_state_machine` setting),
//! whose tasks invoke Lambda through `localhost:$MOTO_PORT`. That port is
//! [`LambdaService`]'s: each Invoke goes to the real `join-all` binary under a Runtime API
//! (two of them, as two execution environments), every other call (the ItemReader's
//! GetObject, the ResultWriter's PutObject) to moto. The plan, the Distributed Map over the
//! parts file, the collect step, the Choice and the last step run as the definition says,
//! against moto's S3, and add up to the same findings as one invocation of the same binary:
//! over one bucket, and over an organization of four accounts (`AuditScope=organization`,
//! moto's Organizations and STS, `test_support::organization`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acl_audit::s3::client::client_for_endpoint;
use acl_bench::lambda_service::LambdaService;
use acl_bench::runtime_api::RuntimeApi;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectCannedAcl;
use futures::StreamExt as _;
use local_s3::moto::MotoServer;
use serde_json::{Value, json};

const DEFINITION: &str = include_str!("../../../statemachine/audit-bucket.asl.json");
const AUDITED: &str = "audited";
const RESULTS: &str = "results";
const FINDINGS: &str = "findings";
/// Past one listing page (1 000 keys), so that the plan cuts the bucket into several parts.
const OBJECTS: usize = 2_500;

/// A `join-all` process under its own Runtime API, killed when dropped.
struct Function {
    api: Arc<RuntimeApi>,
    child: Child,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn join_all(moto: &MotoServer) -> Function {
    // The function's binary of this test's own build: the definition, not the speed of each
    // call, is under test, and moto answers slower than either build asks.
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_acl-bench")).with_file_name("join-all");
    assert!(
        binary.exists(),
        "{} is missing: `make test` builds it (cargo build --workspace --bins)",
        binary.display()
    );
    let api = Arc::new(RuntimeApi::start().unwrap());
    let child = Command::new(binary)
        .env_clear()
        .envs(api.function_env_at(
            "join-all",
            512,
            moto.endpoint_url(),
            "moto-access-key",
            "moto-secret-key",
        ))
        .env("FINDINGS_URI", format!("s3://{FINDINGS}/acl-audit/"))
        .env("MEMBER_ROLE_NAME", test_support::organization::ROLE)
        // As the template sets it: the stack's BucketName, which the definition passes too.
        .env("BUCKET_NAME", AUDITED)
        .env("WARM_CONNECTIONS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    api.wait_for_poll(Duration::from_secs(60))
        .expect("the init ends with a poll");
    Function { api, child }
}

/// The results and findings buckets, and `AUDITED` with `OBJECTS` objects: every fifth
/// public-read, every seventh authenticated-read, the rest private.
async fn arrange(s3: &Client) {
    s3.create_bucket().bucket(AUDITED).send().await.unwrap();
    futures::stream::iter(0..OBJECTS)
        .map(|i| {
            let acl = match i {
                _ if i % 5 == 0 => ObjectCannedAcl::PublicRead,
                _ if i % 7 == 0 => ObjectCannedAcl::AuthenticatedRead,
                _ => ObjectCannedAcl::Private,
            };
            s3.put_object()
                .bucket(AUDITED)
                .key(format!("object-{i:04}"))
                .acl(acl)
                .body(ByteStream::from_static(b"x"))
                .send()
        })
        .buffer_unordered(16)
        .for_each(|put| async move {
            put.unwrap();
        })
        .await;
}

/// Turns on moto's interpreter (`POST /moto-api/config`).
fn execute_state_machines(moto: &MotoServer) {
    let address: SocketAddr = moto.endpoint_url().trim_start_matches("http://").parse().unwrap();
    let body = br#"{"stepfunctions": {"execute_state_machine": true}}"#;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let request = format!(
        "POST /moto-api/config HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    use std::io::{Read, Write};
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 20"), "{answer}");
}

/// The definition with the template's `DefinitionSubstitutions` filled in.
fn definition(scope: &str, parts: usize) -> String {
    let substitutions = [
        ("AuditScope", scope.to_owned()),
        ("MemberRoleName", test_support::organization::ROLE.to_owned()),
        ("PartsPerBucket", "2".to_owned()),
        ("BucketName", AUDITED.to_owned()),
        ("ObjectPrefix", String::new()),
        ("InventorySource", String::new()),
        (
            "WorkerFunctionArn",
            "arn:aws:lambda:us-east-1:123456789012:function:join-all".to_owned(),
        ),
        ("ResultsBucketName", RESULTS.to_owned()),
        ("ResultsPrefix", "results".to_owned()),
        ("Parts", parts.to_string()),
        ("MaxConcurrency", "4".to_owned()),
        ("ToleratedFailurePercentage", "0".to_owned()),
    ];
    let mut text = DEFINITION.to_owned();
    for (name, value) in substitutions {
        text = text.replace(&format!("${{{name}}}"), &value);
    }
    assert!(!text.contains("${"), "a placeholder is left: {text}");
    text
}

/// The findings file's lines, as JSON values.
async fn lines(s3: &Client, uri: &str) -> BTreeSet<String> {
    let key = uri.strip_prefix(&format!("s3://{FINDINGS}/")).unwrap();
    let file = s3.get_object().bucket(FINDINGS).key(key).send().await.unwrap();
    let bytes = file.body.collect().await.unwrap().into_bytes();
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// moto with its interpreter on, behind the Lambda service, two `join-all` processes serving
/// it, and the results and findings buckets.
struct Stage {
    /// Held for its life: dropping it stops moto.
    _moto: MotoServer,
    functions: [Function; 2],
    s3: Client,
    sfn: aws_sdk_sfn::Client,
}

async fn stage(arrange_buckets: impl AsyncFnOnce(&MotoServer)) -> Option<Stage> {
    let service = LambdaService::bind().unwrap();
    let port = service.port().unwrap().to_string();
    let moto = MotoServer::start_with_env(&[("MOTO_PORT", &port)])?;
    execute_state_machines(&moto);
    arrange_buckets(&moto).await;
    let s3 = client_for_endpoint(moto.endpoint_url(), "moto-access-key", "moto-secret-key");
    for bucket in [RESULTS, FINDINGS] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let functions = [join_all(&moto), join_all(&moto)];
    let upstream: SocketAddr = moto.endpoint_url().trim_start_matches("http://").parse().unwrap();
    service
        .serve(functions.iter().map(|f| Arc::clone(&f.api)).collect(), upstream)
        .unwrap();
    let config = test_support::organization::sdk_config(&moto);
    let sfn = aws_sdk_sfn::Client::new(&config);
    Some(Stage {
        _moto: moto,
        functions,
        s3,
        sfn,
    })
}

impl Stage {
    /// Runs `definition` as execution `name` to its end: its output.
    async fn execute(&self, definition: String, name: &str) -> Value {
        let machine = self
            .sfn
            .create_state_machine()
            .name(format!("audit-{name}"))
            .definition(definition)
            .role_arn("arn:aws:iam::123456789012:role/audit-bucket")
            .send()
            .await
            .unwrap();
        let execution = self
            .sfn
            .start_execution()
            .state_machine_arn(machine.state_machine_arn())
            .name(name)
            .input("{}")
            .send()
            .await
            .unwrap();
        let started = Instant::now();
        let described = loop {
            let described = self
                .sfn
                .describe_execution()
                .execution_arn(execution.execution_arn())
                .send()
                .await
                .unwrap();
            if described.status().as_str() != "RUNNING" {
                break described;
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "the execution is still running"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(
            described.status().as_str(),
            "SUCCEEDED",
            "{:?}: {:?}",
            described.error(),
            described.cause()
        );
        serde_json::from_str(described.output().unwrap()).unwrap()
    }

    /// One invocation of the first function with `payload`: its report.
    fn invoke(&self, payload: &Value) -> Value {
        let one = self.functions[0]
            .api
            .invoke(payload, Duration::from_secs(300), Duration::from_secs(120))
            .unwrap();
        assert!(!one.error, "{}", String::from_utf8_lossy(&one.body));
        serde_json::from_slice(&one.body).unwrap()
    }

    async fn read(&self, bucket: &str, key: &str) -> Vec<u8> {
        let file = self.s3.get_object().bucket(bucket).key(key).send().await.unwrap();
        file.body.collect().await.unwrap().into_bytes().to_vec()
    }
}

/// `<FINDINGS_URI><name>/<today>/<run>/`.
fn run_folder(name: &str, run: &str) -> String {
    let (year, month, day) = acl_audit::findings::utc_date(std::time::SystemTime::now());
    format!("acl-audit/{name}/{year:04}/{month:02}/{day:02}/{run}/")
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_s_interpreter_runs_the_definition_to_the_findings_of_one_invocation() {
    let arranged = async |moto: &MotoServer| {
        arrange(&client_for_endpoint(
            moto.endpoint_url(),
            "moto-access-key",
            "moto-secret-key",
        ))
        .await;
    };
    let Some(stage) = stage(arranged).await else { return };
    let output = stage.execute(definition("bucket", 4), "exec-1").await;
    let exposed = (0..OBJECTS).filter(|i| i % 5 == 0 || i % 7 == 0).count();
    assert_eq!(
        output,
        json!({"bucket": AUDITED, "objects_listed": OBJECTS, "acls_fetched": OBJECTS, "failures": 0,
               "objects_not_fetched": 0, "objects_with_findings": exposed, "exposed_objects": exposed}),
        "the AddUp state's ResultSelector over the last step's report"
    );
    let parts: Value = serde_json::from_slice(&stage.read(RESULTS, "parts/exec-1/pass-0.json").await).unwrap();
    assert!(
        parts.as_array().unwrap().len() > 1,
        "the plan cut the bucket into parts: {parts}"
    );

    // The same binary, one invocation over the whole bucket.
    let one = stage.invoke(&json!({"bucket": AUDITED}));
    let run_file = format!("s3://{FINDINGS}/{}findings.jsonl", run_folder(AUDITED, "exec-1"));
    let by_state_machine = lines(&stage.s3, &run_file).await;
    let by_one = lines(&stage.s3, one["findings"]["uri"].as_str().unwrap()).await;
    assert_eq!(by_state_machine.len(), exposed);
    assert_eq!(by_state_machine, by_one, "the same lines, byte for byte");

    // Compared runs: object 0 made private, object 1 made public; the next execution's last
    // step compares with the invocation's run (the last completed) and names exactly those.
    for (key, acl) in [
        ("object-0000", ObjectCannedAcl::Private),
        ("object-0001", ObjectCannedAcl::PublicRead),
    ] {
        stage
            .s3
            .put_object_acl()
            .bucket(AUDITED)
            .key(key)
            .acl(acl)
            .send()
            .await
            .unwrap();
    }
    stage.execute(definition("bucket", 4), "exec-2").await;
    let report: Value = serde_json::from_slice(
        &stage
            .read(FINDINGS, &format!("{}report.json", run_folder(AUDITED, "exec-2")))
            .await,
    )
    .unwrap();
    let changes = &report["changes"];
    assert_eq!(
        changes["baseline"].as_str(),
        one["findings"]["uri"].as_str(),
        "the last completed run: {report}"
    );
    assert_eq!(
        (&changes["new"], &changes["resolved"], &changes["complete"]),
        (&json!(1), &json!(1), &json!(true)),
        "{report}"
    );
    let changed = lines(&stage.s3, changes["uri"].as_str().unwrap()).await;
    let named: BTreeSet<(String, String)> = changed
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .map(|line| {
            (
                line["key"].as_str().unwrap().to_owned(),
                line["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        named,
        BTreeSet::from([
            ("object-0000".to_owned(), "resolved".to_owned()),
            ("object-0001".to_owned(), "new".to_owned()),
        ])
    );
}

/// Each bucket's line of a sweep's report: what must match between runs. The results and
/// findings buckets are left out: each run writes into them, so the second lists more.
fn bucket_lines(report: &Value) -> BTreeSet<String> {
    report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|account| {
            let id = account["account_id"].as_str().unwrap().to_owned();
            account["report"]["buckets"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|bucket| ![RESULTS, FINDINGS].contains(&bucket["bucket"].as_str().unwrap()))
                .map(move |bucket| {
                    let mut bucket = bucket.clone();
                    bucket.as_object_mut().unwrap().remove("settings");
                    format!("{id} {bucket}")
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_s_interpreter_sweeps_the_organization_to_the_findings_of_one_invocation() {
    let arranged = std::sync::OnceLock::new();
    let arrange_organization = async |moto: &MotoServer| {
        let _ = arranged.set(test_support::organization::arrange_organization(moto).await);
    };
    let Some(stage) = stage(arrange_organization).await else {
        return;
    };
    let arranged = arranged.get().unwrap();
    let output = stage.execute(definition("organization", 64), "exec-org").await;
    let caller = &arranged.management;
    let folder = run_folder(&format!("organization-{caller}"), "exec-org");
    assert_eq!(
        output["findings"]["uri"],
        format!("s3://{FINDINGS}/{folder}findings.jsonl"),
        "{output}"
    );
    assert_eq!(output["totals"]["acls_disabled"], 4, "{output}");
    assert_eq!(output["totals"]["public_policy_buckets"], 4, "{output}");
    assert_eq!(
        output["totals"]["not_reached"], 0,
        "every planned bucket added up: {output}"
    );
    assert_eq!(output["totals"]["exposed_objects"], arranged.exposed.len(), "{output}");

    let by_state_machine = lines(&stage.s3, output["findings"]["uri"].as_str().unwrap()).await;
    let named: BTreeSet<(String, String, String)> = by_state_machine
        .iter()
        .map(|line| serde_json::from_str::<acl_audit::findings::FindingLine>(line).unwrap())
        .filter(|line| line.effective)
        .map(|line| (line.account_id.unwrap_or_default(), line.bucket, line.key))
        .collect();
    assert_eq!(
        &named, &arranged.exposed,
        "exactly the exposed objects, by account and bucket"
    );

    // The same binary, one invocation over the whole organization.
    let one = stage.invoke(&json!({"scope": "organization"}));
    let by_one = lines(&stage.s3, one["findings"]["uri"].as_str().unwrap()).await;
    assert_eq!(by_state_machine, by_one, "the same lines, byte for byte");
    let report: Value = serde_json::from_slice(&stage.read(FINDINGS, &format!("{folder}report.json")).await).unwrap();
    assert_eq!(
        bucket_lines(&report),
        bucket_lines(&one),
        "every bucket with the same state and counts"
    );
    for total in [
        "buckets",
        "audited",
        "acls_disabled",
        "failed",
        "not_reached",
        "exposed_objects",
    ] {
        assert_eq!(report["totals"][total], one["totals"][total], "{total}");
    }
}
