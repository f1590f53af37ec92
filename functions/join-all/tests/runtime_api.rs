//! The `join-all` binary as Lambda runs it: this test serves the Lambda Runtime API
//! (`invocation/next`, `…/response`, `…/error`) on loopback, hands the function real payloads,
//! and reads what it answers and what it wrote under `FINDINGS_URI`: local-s3, then moto.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acl_audit::findings::{FindingKind, FindingLine};
use serde_json::{Value, json};

/// What the function sent back for one event.
#[derive(Debug)]
enum Answer {
    Response(Value),
    Error(Value),
}

/// A Runtime API with a queue of events; `next` waits when the queue is empty, as Lambda's does
/// between invocations.
struct RuntimeApi {
    address: String,
    answers: mpsc::Receiver<(String, Answer)>,
}

impl RuntimeApi {
    fn start(events: Vec<Value>) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let queue = Arc::new(Mutex::new(
            events
                .into_iter()
                .enumerate()
                .map(|(i, event)| (format!("request-{i}"), event))
                .collect::<VecDeque<_>>(),
        ));
        let (sender, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (queue, sender) = (Arc::clone(&queue), sender.clone());
                std::thread::spawn(move || serve(stream, &queue, &sender));
            }
        });
        RuntimeApi { address, answers }
    }

    fn answer(&self) -> (String, Answer) {
        self.answers
            .recv_timeout(Duration::from_secs(120))
            .expect("the function answers within two minutes")
    }
}

/// One keep-alive connection: requests until the client closes it.
fn serve(stream: TcpStream, queue: &Mutex<VecDeque<(String, Value)>>, answers: &mpsc::Sender<(String, Answer)>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body).unwrap();
        let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        if path.ends_with("/invocation/next") {
            let (id, event) = loop {
                if let Some(next) = queue.lock().unwrap().pop_front() {
                    break next;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let body = event.to_string();
            let deadline_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 300_000;
            // Headers and body in one write (a delayed ACK would cost 40 ms otherwise).
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:join-all\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            );
            writer.write_all(response.as_bytes()).unwrap();
            continue;
        }
        let id = path.split('/').nth(4).unwrap_or_default().to_owned();
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let answer = if path.ends_with("/response") {
            Answer::Response(value)
        } else {
            Answer::Error(value)
        };
        writer
            .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
            .unwrap();
        let _ = answers.send((id, answer));
    }
}

/// The function's process, killed when the test ends.
struct Function(Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this package's binary as Lambda starts it: the Runtime API's
/// address, the function's settings, and the endpoint's own keys (no one's real ones).
fn start_function(api: &RuntimeApi, endpoint: &str, keys: (&str, &str), findings_uri: &str) -> Function {
    let home =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("join-all-test-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_join-all"))
        .env_clear()
        .env("HOME", &home)
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "join-all")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/join-all")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", keys.0)
        .env("AWS_SECRET_ACCESS_KEY", keys.1)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("BUCKET_NAME", "audited")
        .env("FINDINGS_URI", findings_uri)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the join-all binary starts");
    Function(child)
}

/// The kinds each of the 2 500 objects must be reported with: one in ten public-read, one
/// authenticated-read, one granting READ to another account; the rest private.
fn expected() -> BTreeMap<String, Vec<FindingKind>> {
    (0..2500)
        .filter_map(|i| {
            let kind = match i % 10 {
                7 => FindingKind::PublicRead,
                8 => FindingKind::AuthenticatedRead,
                9 => FindingKind::OtherAccountGrant,
                _ => return None,
            };
            Some((local_s3::seed_key(i), vec![kind]))
        })
        .collect()
}

fn findings_in(text: &str) -> BTreeMap<String, Vec<FindingKind>> {
    text.lines()
        .map(|line| serde_json::from_str::<FindingLine>(line).expect("a finding line"))
        .map(|line| (line.key, line.findings))
        .collect()
}

/// The scheduled event and a missing findings bucket, through one endpoint; `read` fetches an
/// object of the findings bucket.
fn check_endpoint(endpoint: &str, keys: (&str, &str), read: impl Fn(&str) -> String) {
    let scheduled: Value = serde_json::from_str(include_str!("../../../fixtures/eventbridge-scheduled.json")).unwrap();
    let api = RuntimeApi::start(vec![scheduled]);
    let _function = start_function(&api, endpoint, keys, "s3://findings/acl-audit/");
    let (id, answer) = api.answer();
    let Answer::Response(report) = answer else {
        panic!("the scheduled run failed: {answer:?}");
    };
    assert_eq!(id, "request-0");
    assert_eq!(report["acls_fetched"], 2500);
    let uri = report["findings"]["uri"]
        .as_str()
        .expect("the report names its findings file");
    assert!(
        uri.starts_with("s3://findings/acl-audit/audited/") && uri.ends_with("/request-0/findings.jsonl"),
        "{uri}"
    );
    assert_eq!(report["findings"]["objects"], 750);
    let key = uri.trim_start_matches("s3://findings/");
    assert_eq!(findings_in(&read(key)), expected());
    let stored: Value = serde_json::from_str(&read(&key.replace("findings.jsonl", "report.json"))).unwrap();
    assert_eq!(stored, report);

    let api = RuntimeApi::start(vec![json!({})]);
    let _function = start_function(&api, endpoint, keys, "s3://no-findings-bucket/acl-audit/");
    let (_, answer) = api.answer();
    let Answer::Error(error) = answer else {
        panic!("a missing findings bucket did not fail the run: {answer:?}");
    };
    assert_eq!(error["errorType"], "FindingsNotWritten");
    assert!(
        error["errorMessage"].as_str().unwrap().contains("NoSuchBucket"),
        "{error}"
    );
}

#[test]
fn through_the_runtime_api_every_finding_lands_under_findings_uri_in_local_s3() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = runtime.block_on(local_s3::LocalS3::start()).unwrap();
    local_s3::seed_bucket(s3.store(), "audited", 2500).unwrap();
    s3.store().create_bucket("findings").unwrap();
    let keys = s3.credentials();
    check_endpoint(
        s3.endpoint_url(),
        (&keys.access_key_id, &keys.secret_access_key),
        |key| {
            let (body, _) = s3.store().object("findings", key).unwrap();
            String::from_utf8(body.to_vec()).unwrap()
        },
    );
}

#[test]
fn through_the_runtime_api_every_finding_lands_under_findings_uri_in_moto() {
    let Some(moto) = local_s3::moto::MotoServer::start() else {
        return;
    };
    let endpoint = moto.endpoint_url().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = acl_audit::s3::client::client_for_endpoint(&endpoint, "moto-key", "moto-secret");
    runtime.block_on(seed_moto(&client));
    check_endpoint(&endpoint, ("moto-key", "moto-secret"), |key| {
        runtime.block_on(async {
            let object = client.get_object().bucket("findings").key(key).send().await.unwrap();
            String::from_utf8(object.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
        })
    });
}

/// The same mix as local-s3's seed, written through the S3 API.
async fn seed_moto(client: &aws_sdk_s3::Client) {
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::ObjectCannedAcl;
    for bucket in ["audited", "findings"] {
        client.create_bucket().bucket(bucket).send().await.unwrap();
    }
    // moto's owner is its own account; any other id is another account.
    let partner = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1";
    // One at a time: moto serves one request at a time anyway.
    for i in 0..2500 {
        let put = client
            .put_object()
            .bucket("audited")
            .key(local_s3::seed_key(i))
            .body(ByteStream::from_static(b"x"));
        let put = match i % 10 {
            7 => put.acl(ObjectCannedAcl::PublicRead),
            8 => put.acl(ObjectCannedAcl::AuthenticatedRead),
            9 => put.grant_read(format!("id=\"{partner}\"")),
            _ => put,
        };
        put.send().await.unwrap();
    }
}
