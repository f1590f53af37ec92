//! Lambda's Invoke API on a loopback port, in front of moto_server, for an interpreter that
//! reaches every service through one endpoint: moto's Step Functions sends its tasks'
//! calls to `localhost:$MOTO_PORT`, so with `MOTO_PORT` set to this port, an `Invoke`
//! (`POST /2015-03-31/functions/<name>/invocations`,
//! <https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>) is served by a function's
//! own release binary under a [`RuntimeApi`], and every other request (the ItemReader's
//! GetObject, the ResultWriter's PutObject…) is passed to moto as it came, its answer passed
//! back. moto's own Lambda would need Docker to run a function.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::runtime_api::RuntimeApi;

const INVOKE_PREFIX: &str = "/2015-03-31/functions/";
const INVOKE_SUFFIX: &str = "/invocations";
/// The deadline each invocation is given (the template's function timeout).
const DEADLINE: Duration = Duration::from_secs(300);

/// The Invoke API's listener, bound before moto starts so that moto can be told its port.
pub struct LambdaService {
    listener: TcpListener,
}

impl LambdaService {
    pub fn bind() -> io::Result<Self> {
        Ok(LambdaService {
            listener: TcpListener::bind(("127.0.0.1", 0))?,
        })
    }

    pub fn port(&self) -> io::Result<u16> {
        Ok(self.listener.local_addr()?.port())
    }

    /// Serves until the process ends: invocations handed to `functions` in turn (each a running
    /// function's Runtime API; one waits its turn when its function is busy), everything else
    /// to `upstream`.
    pub fn serve(self, functions: Vec<Arc<RuntimeApi>>, upstream: SocketAddr) -> io::Result<()> {
        let functions = Arc::new(functions);
        let next = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("lambda-service".to_owned())
            .spawn(move || {
                for stream in self.listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let (functions, next) = (Arc::clone(&functions), Arc::clone(&next));
                    let _ = std::thread::Builder::new()
                        .name("lambda-service-conn".to_owned())
                        .spawn(move || {
                            if let Err(err) = serve(stream, &functions, &next, upstream) {
                                eprintln!("lambda service: {err}");
                            }
                        });
                }
            })?;
        Ok(())
    }
}

/// One request, then the connection closes (`Connection: close` both ways).
fn serve(stream: TcpStream, functions: &[Arc<RuntimeApi>], next: &AtomicUsize, upstream: SocketAddr) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let Some((head, body)) = read_request(&mut reader)? else {
        return Ok(());
    };
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    let mut words = request_line.split_whitespace();
    let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let reply = if method == "POST" && path.starts_with(INVOKE_PREFIX) && path.ends_with(INVOKE_SUFFIX) {
        invoke(functions, next, &body)
    } else {
        pass_on(&head, &body, upstream)?
    };
    writer.write_all(&reply)?;
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

/// The function's answer as Lambda's Invoke gives it: 200 with the payload, and
/// `X-Amz-Function-Error: Unhandled` when the function answered an error.
fn invoke(functions: &[Arc<RuntimeApi>], next: &AtomicUsize, body: &[u8]) -> Vec<u8> {
    let payload: serde_json::Value = match serde_json::from_slice(body) {
        Ok(payload) => payload,
        Err(err) => return response(400, &[], format!("{{\"message\":\"not JSON: {err}\"}}").as_bytes()),
    };
    let function = &functions[next.fetch_add(1, Ordering::Relaxed) % functions.len().max(1)];
    match function.invoke(&payload, DEADLINE, DEADLINE + Duration::from_secs(60)) {
        Ok(outcome) if outcome.error => response(200, &[("X-Amz-Function-Error", "Unhandled")], &outcome.body),
        Ok(outcome) => response(200, &[], &outcome.body),
        Err(err) => response(
            200,
            &[("X-Amz-Function-Error", "Unhandled")],
            format!("{{\"errorType\":\"Sandbox.Timedout\",\"errorMessage\":\"{err}\"}}").as_bytes(),
        ),
    }
}

fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nX-Amz-Executed-Version: $LATEST\r\nContent-Length: {}\r\nConnection: close\r\n",
        if status == 200 { "OK" } else { "Bad Request" },
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut reply = head.into_bytes();
    reply.extend_from_slice(body);
    reply
}

/// The request sent to `upstream` as it came but for `Connection: close`; its whole answer.
fn pass_on(head: &str, body: &[u8], upstream: SocketAddr) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream)?;
    let _ = stream.set_nodelay(true);
    let mut request = String::new();
    for line in head.split("\r\n").filter(|line| !line.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            request.push_str(line);
            request.push_str("\r\n");
        }
    }
    request.push_str("Connection: close\r\n\r\n");
    let mut sent = request.into_bytes();
    sent.extend_from_slice(body);
    stream.write_all(&sent)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer)
}

/// The request's head (request line and headers, without the blank line) and its body.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<(String, Vec<u8>)>> {
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(io::Error::other)?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(io::Error::other("chunked requests are not passed on"));
            }
        }
        head.push_str(line.trim_end_matches(['\r', '\n']));
        head.push_str("\r\n");
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some((head, body)))
}
