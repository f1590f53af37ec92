//! The project's state machine definition (`statemachine/audit-bucket.asl.json`) run by an
//! interpreter no one here wrote: moto's Step Functions (its `execute_state_machine` setting),
//! whose tasks invoke Lambda through `localhost:$MOTO_PORT`. That port is
//! [`LambdaService`]'s: each Invoke goes to the real `join-all` binary under a Runtime API
//! (two of them, as two execution environments), every other call (the ItemReader's
//! GetObject, the ResultWriter's PutObject) to moto. The plan, the Distributed Map over the
//! parts file, the collect step, the Choice and the last step run as the definition says,
//! against moto's S3, and add up to the same findings as one invocation of the same binary.

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
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_acl-bench")).with_file_name("join-all");
    assert!(
        binary.exists(),
        "{} is missing: `make test` builds it",
        binary.display()
    );
    let api = Arc::new(RuntimeApi::start().unwrap());
    let child = Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "join-all")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env("AWS_ACCESS_KEY_ID", "moto-access-key")
        .env("AWS_SECRET_ACCESS_KEY", "moto-secret-key")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("FINDINGS_URI", format!("s3://{FINDINGS}/acl-audit/"))
        .env("WARM_CONNECTIONS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    api.wait_for_poll(Duration::from_secs(60))
        .expect("the init ends with a poll");
    Function { api, child }
}

/// `AUDITED` with `OBJECTS` objects: every fifth public-read, every seventh
/// authenticated-read, the rest private.
async fn arrange(s3: &Client) {
    for bucket in [AUDITED, RESULTS, FINDINGS] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
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
fn definition(parts: usize) -> String {
    let substitutions = [
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

#[tokio::test(flavor = "multi_thread")]
async fn moto_s_interpreter_runs_the_definition_to_the_findings_of_one_invocation() {
    let service = LambdaService::bind().unwrap();
    let port = service.port().unwrap().to_string();
    let Some(moto) = MotoServer::start_with_env(&[("MOTO_PORT", &port)]) else {
        return;
    };
    execute_state_machines(&moto);
    let s3 = client_for_endpoint(moto.endpoint_url(), "moto-access-key", "moto-secret-key");
    arrange(&s3).await;
    let functions = [join_all(&moto), join_all(&moto)];
    let upstream: SocketAddr = moto.endpoint_url().trim_start_matches("http://").parse().unwrap();
    service
        .serve(functions.iter().map(|f| Arc::clone(&f.api)).collect(), upstream)
        .unwrap();

    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint_url())
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("moto-access-key", "moto-secret-key", None, None, "test"),
        ))
        .build();
    let sfn = aws_sdk_sfn::Client::new(&config);
    let machine = sfn
        .create_state_machine()
        .name("audit-bucket")
        .definition(definition(4))
        .role_arn("arn:aws:iam::123456789012:role/audit-bucket")
        .send()
        .await
        .unwrap();
    let execution = sfn
        .start_execution()
        .state_machine_arn(machine.state_machine_arn())
        .name("exec-1")
        .input("{}")
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    let described = loop {
        let described = sfn
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
    let output: Value = serde_json::from_str(described.output().unwrap()).unwrap();
    let exposed = (0..OBJECTS).filter(|i| i % 5 == 0 || i % 7 == 0).count();
    assert_eq!(
        output,
        json!({"bucket": AUDITED, "objects_listed": OBJECTS, "acls_fetched": OBJECTS, "failures": 0,
               "objects_not_fetched": 0, "objects_with_findings": exposed, "exposed_objects": exposed}),
        "the AddUp state's ResultSelector over the last step's report"
    );
    let parts: Value = {
        let file = s3
            .get_object()
            .bucket(RESULTS)
            .key("parts/exec-1/pass-0.json")
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&file.body.collect().await.unwrap().into_bytes()).unwrap()
    };
    assert!(
        parts.as_array().unwrap().len() > 1,
        "the plan cut the bucket into parts: {parts}"
    );

    // The same binary, one invocation over the whole bucket.
    let one = functions[0]
        .api
        .invoke(
            &json!({"bucket": AUDITED}),
            Duration::from_secs(300),
            Duration::from_secs(120),
        )
        .unwrap();
    assert!(!one.error, "{}", String::from_utf8_lossy(&one.body));
    let one: Value = serde_json::from_slice(&one.body).unwrap();
    let (year, month, day) = acl_audit::findings::utc_date(std::time::SystemTime::now());
    let run_file = format!("s3://{FINDINGS}/acl-audit/{AUDITED}/{year:04}/{month:02}/{day:02}/exec-1/findings.jsonl");
    let by_state_machine = lines(&s3, &run_file).await;
    let by_one = lines(&s3, one["findings"]["uri"].as_str().unwrap()).await;
    assert_eq!(by_state_machine.len(), exposed);
    assert_eq!(by_state_machine, by_one, "the same lines, byte for byte");
}
