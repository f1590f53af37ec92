//! The Lambda Runtime API, served to one benchmark child: the function's own release binary
//! asks it for events (`GET /2018-06-01/runtime/invocation/next`) and posts each result
//! (`…/{id}/response` or `…/{id}/error`), as it does on Lambda
//! (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>). The parent decides when
//! an event is handed out, so that it can time init and each invocation as Lambda's REPORT
//! line does, and freeze the child between invocations.
//!
//! Every answer is written with TCP_NODELAY, headers and body in one write: a reply split in
//! two waits for the client's delayed ACK, about 40 ms per event on Linux.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INVOCATION: &str = "/2018-06-01/runtime/invocation/";
const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";
/// The ARN each event names: the functions read the account's Block Public Access for it.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:acl-bench";

/// What became of one event.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub handed_at: Instant,
    pub answered_at: Instant,
    /// The response's body (the function's report) or the error's.
    pub body: Vec<u8>,
    /// True when the function posted to `…/error`.
    pub error: bool,
}

impl Outcome {
    /// Lambda's "Duration": from the event's hand-out to its answer.
    pub fn duration(&self) -> Duration {
        self.answered_at - self.handed_at
    }
}

struct Event {
    id: String,
    payload: Vec<u8>,
    deadline: Duration,
}

#[derive(Default)]
struct State {
    /// When the runtime first asked for an event: the end of its init.
    first_poll: Option<Instant>,
    /// Polls waiting for an event now.
    polls: usize,
    events: VecDeque<Event>,
    /// Events handed out, not answered yet: when.
    handed: HashMap<String, Instant>,
    outcomes: HashMap<String, Outcome>,
    init_error: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    closed: AtomicBool,
}

/// A Runtime API on a loopback port of its own, for one child at a time.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    next_id: AtomicU64,
}

/// The API stopped waiting: the child died, failed its init, or took too long.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeApiError {
    #[error("the function reported an init error: {0}")]
    InitError(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl RuntimeApi {
    pub fn start() -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            closed: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("runtime-api".to_owned())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accepting.closed.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = Arc::clone(&accepting);
                    // A connection per thread: the runtime holds one or two.
                    let _ = std::thread::Builder::new()
                        .name("runtime-api-conn".to_owned())
                        .spawn(move || serve(stream, &shared));
                }
            })?;
        Ok(RuntimeApi {
            addr,
            shared,
            next_id: AtomicU64::new(0),
        })
    }

    /// `AWS_LAMBDA_RUNTIME_API`'s value: `host:port`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The environment Lambda gives a function `name` of `memory_mb` served by this API, its S3
    /// calls sent to `s3` with its keys and no other source of credentials or configuration.
    pub fn function_env(&self, name: &str, memory_mb: usize, s3: &local_s3::LocalS3) -> Vec<(&'static str, String)> {
        let keys = s3.credentials();
        self.function_env_at(
            name,
            memory_mb,
            s3.endpoint_url(),
            &keys.access_key_id,
            &keys.secret_access_key,
        )
    }

    /// The same for any endpoint (moto's) and key pair.
    pub fn function_env_at(
        &self,
        name: &str,
        memory_mb: usize,
        endpoint_url: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
            ("AWS_ENDPOINT_URL", endpoint_url.to_owned()),
            ("AWS_ACCESS_KEY_ID", access_key_id.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", secret_access_key.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_CONFIG_FILE", "/nonexistent/aws/config".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    /// Waits until the runtime asks for an event, and returns when it first did: its init
    /// ended then.
    pub fn wait_for_poll(&self, timeout: Duration) -> Result<Instant, RuntimeApiError> {
        let until = Instant::now() + timeout;
        let mut state = self.shared.state.lock();
        loop {
            if let Some(error) = &state.init_error {
                return Err(RuntimeApiError::InitError(error.clone()));
            }
            if state.polls > 0
                && let Some(at) = state.first_poll
            {
                return Ok(at);
            }
            if self.shared.changed.wait_until(&mut state, until).timed_out() {
                return Err(RuntimeApiError::Timeout(timeout));
            }
        }
    }

    /// Hands `payload` to the runtime, with `deadline` to run it in, and waits for its answer.
    pub fn invoke(
        &self,
        payload: &serde_json::Value,
        deadline: Duration,
        timeout: Duration,
    ) -> Result<Outcome, RuntimeApiError> {
        let id = format!("bench-{:08}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let until = Instant::now() + timeout;
        let mut state = self.shared.state.lock();
        state.events.push_back(Event {
            id: id.clone(),
            payload: serde_json::to_vec(payload).unwrap_or_default(),
            deadline,
        });
        self.shared.changed.notify_all();
        loop {
            if let Some(outcome) = state.outcomes.remove(&id) {
                return Ok(outcome);
            }
            if self.shared.changed.wait_until(&mut state, until).timed_out() {
                return Err(RuntimeApiError::Timeout(timeout));
            }
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.changed.notify_all();
        // Wakes the accept loop, which then sees `closed`.
        let _ = TcpStream::connect(self.addr);
    }
}

/// One connection: requests one after another (keep-alive) until the runtime closes it.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    while let Ok(Some(request)) = read_request(&mut reader) {
        let reply = answer(&request, shared);
        let Some(reply) = reply else { break };
        if writer.write_all(&reply).is_err() {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(io::Error::other(format!("not an HTTP request line: {line:?}")));
    };
    let (method, path) = (method.to_owned(), path.to_owned());
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().map_err(io::Error::other)?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let body = if chunked {
        read_chunked(reader)?
    } else {
        read_exact(reader, length)?
    };
    Ok(Some(Request { method, path, body }))
}

fn read_exact(reader: &mut impl Read, length: usize) -> io::Result<Vec<u8>> {
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).map_err(io::Error::other)?;
        let mut chunk = read_exact(reader, size + 2)?;
        chunk.truncate(size);
        body.extend(chunk);
        if size == 0 {
            return Ok(body);
        }
    }
}

/// The reply to one request, whole; `None` when the API is closing.
fn answer(request: &Request, shared: &Shared) -> Option<Vec<u8>> {
    let accepted = || reply(202, &[], br#"{"status":"OK"}"#);
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", NEXT) => {
            let mut state = shared.state.lock();
            state.first_poll.get_or_insert_with(Instant::now);
            state.polls += 1;
            shared.changed.notify_all();
            let event = loop {
                if shared.closed.load(Ordering::Acquire) {
                    return None;
                }
                if let Some(event) = state.events.pop_front() {
                    break event;
                }
                shared.changed.wait(&mut state);
            };
            state.polls -= 1;
            state.handed.insert(event.id.clone(), Instant::now());
            drop(state);
            let deadline_ms = (SystemTime::now() + event.deadline)
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let headers = [
                ("Lambda-Runtime-Aws-Request-Id", event.id.clone()),
                ("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string()),
                ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN.to_owned()),
                ("Lambda-Runtime-Trace-Id", format!("Root=1-00000000-{}", event.id)),
            ];
            Some(reply(200, &headers, &event.payload))
        }
        ("POST", INIT_ERROR) => {
            let mut state = shared.state.lock();
            state.init_error = Some(String::from_utf8_lossy(&request.body).into_owned());
            shared.changed.notify_all();
            Some(accepted())
        }
        ("POST", path) if path.starts_with(INVOCATION) => {
            let rest = &path[INVOCATION.len()..];
            let (id, error) = match rest.rsplit_once('/') {
                Some((id, "response")) => (id, false),
                Some((id, "error")) => (id, true),
                _ => return Some(reply(404, &[], b"{}")),
            };
            let mut state = shared.state.lock();
            let Some(handed_at) = state.handed.remove(id) else {
                return Some(reply(400, &[], br#"{"errorType":"InvalidRequestID"}"#));
            };
            state.outcomes.insert(
                id.to_owned(),
                Outcome {
                    handed_at,
                    answered_at: Instant::now(),
                    body: request.body.clone(),
                    error,
                },
            );
            shared.changed.notify_all();
            Some(accepted())
        }
        _ => Some(reply(404, &[], b"{}")),
    }
}

fn reply(status: u16, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut whole = head.into_bytes();
    whole.extend_from_slice(body);
    whole
}
