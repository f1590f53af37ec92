//! Serving the store over HTTP on a loopback port.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::{self, Builder as ConnectionBuilder};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{HttpError, HttpResponse};
use s3s::{S3Error, S3ErrorCode, S3Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::control::AccountControl;
pub use crate::credentials::Credentials;
use crate::faults::{Fault, FaultCounts, FaultInjector, Faults};
use crate::load::{Load, LoadModel};
use crate::network::{NetworkModel, wait};
use crate::service::LocalS3Service;
use crate::store::Store;

/// How to start an endpoint.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen; port 0 picks a free one.
    pub addr: SocketAddr,
    pub credentials: Credentials,
    /// Serve HTTPS with a certificate from a CA generated at start (see [`LocalS3::ca_pem`]).
    pub tls: bool,
    /// Latency to add, so that loopback behaves like a network.
    pub network: NetworkModel,
    /// Errors to answer a share of requests with; none by default.
    pub faults: Faults,
    /// A keep-alive connection idle this long is closed, as S3 closes them (widely reported
    /// at about 20 s); `None`: never.
    pub idle_timeout: Option<Duration>,
    /// A request-rate limit per partition, and answers that slow under concurrency; none by
    /// default.
    pub load: Load,
}

/// S3's idle timeout as clients observe it.
pub const S3_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

impl Default for Options {
    fn default() -> Self {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            credentials: Credentials::default(),
            tls: false,
            network: NetworkModel::default(),
            faults: Faults::default(),
            idle_timeout: Some(S3_IDLE_TIMEOUT),
            load: Load::default(),
        }
    }
}

/// A running endpoint. Dropping it stops the server and closes its connections.
pub struct LocalS3 {
    addr: SocketAddr,
    endpoint_url: String,
    credentials: Credentials,
    ca_pem: Option<String>,
    store: Arc<Store>,
    faults: Arc<FaultInjector>,
    load: Arc<LoadModel>,
    requests: Arc<RequestCounts>,
    accepted: Arc<AtomicU64>,
    server: JoinHandle<()>,
    /// Bumped to close every idle connection now.
    close_idle: watch::Sender<u64>,
}

/// Requests authenticated so far, by S3 operation name (`GetObjectAcl`, `ListObjectsV2` …).
#[derive(Debug, Default)]
struct RequestCounts(parking_lot::Mutex<std::collections::BTreeMap<String, u64>>);

/// The one key pair this endpoint knows; any other access key id is answered as S3 answers it.
struct KnownKey(Credentials);

#[async_trait::async_trait]
impl S3Auth for KnownKey {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.0.access_key_id {
            return Ok(SecretKey::from(self.0.secret_access_key.clone()));
        }
        let mut error = S3Error::with_message(
            S3ErrorCode::InvalidAccessKeyId,
            "The AWS Access Key Id you provided does not exist in our records.",
        );
        error.set_status_code(hyper::StatusCode::FORBIDDEN);
        Err(error)
    }
}

/// Runs before every operation: counts it, and redirects a request for a bucket signed for
/// another region than the bucket's, as S3 does (301 PermanentRedirect with
/// `x-amz-bucket-region`).
struct BucketAccess {
    store: Arc<Store>,
    requests: Arc<RequestCounts>,
}

#[async_trait::async_trait]
impl S3Access for BucketAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3s::s3_error!(AccessDenied, "Signature is required"));
        }
        *self.requests.0.lock().entry(cx.s3_op().name().to_owned()).or_default() += 1;
        let bucket = match cx.s3_path() {
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => bucket,
            S3Path::Root => return Ok(()),
        };
        let (Some(signed), Some(region)) = (signed_region(cx.headers(), cx.uri()), self.store.bucket_region(bucket))
        else {
            return Ok(());
        };
        if signed == region || cx.s3_op().name() == "CreateBucket" {
            return Ok(());
        }
        let mut error = S3Error::with_message(
            S3ErrorCode::PermanentRedirect,
            "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.",
        );
        error.set_status_code(hyper::StatusCode::MOVED_PERMANENTLY);
        let mut headers = hyper::HeaderMap::new();
        if let Ok(value) = hyper::header::HeaderValue::from_str(&region) {
            headers.insert("x-amz-bucket-region", value);
        }
        error.set_headers(headers);
        Err(error)
    }
}

/// The region in a SigV4 credential scope (`Credential=KEY/DATE/REGION/s3/aws4_request`), from
/// the Authorization header or a presigned URL's `X-Amz-Credential`.
fn signed_region(headers: &hyper::HeaderMap, uri: &hyper::Uri) -> Option<String> {
    let scope = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .map(str::to_owned)
        .or_else(|| {
            uri.query()?
                .split('&')
                .find_map(|pair| pair.strip_prefix("X-Amz-Credential="))
                .map(|c| c.replace("%2F", "/"))
        })?;
    scope.split('/').nth(2).map(str::to_owned)
}

impl LocalS3 {
    /// Starts a plain-HTTP endpoint on an ephemeral loopback port with the default credentials.
    pub async fn start() -> io::Result<Self> {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> io::Result<Self> {
        let Options {
            addr,
            credentials,
            tls,
            network,
            faults,
            idle_timeout,
            load,
        } = options;
        let (close_idle, closing) = watch::channel(0);
        let faults = Arc::new(FaultInjector::new(faults));
        let load = Arc::new(LoadModel::new(load));
        let tls = tls.then(crate::tls::generate).transpose()?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let store = Arc::new(Store::default());
        let requests = Arc::new(RequestCounts::default());
        let accepted = Arc::new(AtomicU64::new(0));
        let service = {
            let mut builder = S3ServiceBuilder::new(LocalS3Service::new(Arc::clone(&store)));
            builder.set_auth(KnownKey(credentials.clone()));
            builder.set_access(BucketAccess {
                store: Arc::clone(&store),
                requests: Arc::clone(&requests),
            });
            builder.set_route(AccountControl {
                store: Arc::clone(&store),
            });
            builder.build()
        };
        let acceptor = tls
            .as_ref()
            .map(|tls| TlsAcceptor::from(Arc::clone(&tls.server_config)));
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let server = tokio::spawn(serve(
            listener,
            service,
            acceptor,
            Connections {
                network,
                faults: Arc::clone(&faults),
                load: Arc::clone(&load),
                idle_timeout,
                closing,
                accepted: Arc::clone(&accepted),
            },
        ));
        Ok(LocalS3 {
            addr,
            endpoint_url: format!("{scheme}://{addr}"),
            credentials,
            ca_pem: tls.map(|tls| tls.ca_pem),
            store,
            faults,
            load,
            requests,
            accepted,
            server,
            close_idle,
        })
    }

    /// Closes every keep-alive connection with no request under way, as S3 does to idle
    /// ones: what a client whose pool sat unused finds.
    pub fn close_idle_connections(&self) {
        self.close_idle.send_modify(|generation| *generation += 1);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or `https://`): an IP host, so SDKs use path-style addressing.
    pub fn endpoint_url(&self) -> &str {
        &self.endpoint_url
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The PEM of the CA that signed the server's certificate, when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Injects `faults` from now on instead of those it started with.
    pub fn set_faults(&self, faults: Faults) {
        self.faults.replace(faults);
    }

    /// The faults injected so far, by kind.
    pub fn faults_injected(&self) -> FaultCounts {
        self.faults.injected()
    }

    /// Answers load with `load` from now on, its partitions' tokens full again.
    pub fn set_load(&self, load: Load) {
        self.load.replace(load);
    }

    /// Requests answered `503 SlowDown` for their partition's request rate so far.
    pub fn refused_for_rate(&self) -> u64 {
        self.load.refused()
    }

    /// Requests of the S3 operation `operation` (its API name, `GetObjectAcl`) answered so far.
    pub fn requests(&self, operation: &str) -> u64 {
        self.requests.0.lock().get(operation).copied().unwrap_or(0)
    }

    /// Connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Serves until the task is cancelled (Ctrl-C in the binary).
    pub async fn wait(&mut self) {
        // The task ends only by cancellation or a panic, which tokio reports on its own.
        let _ = (&mut self.server).await;
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What every connection is served with besides the service.
#[derive(Clone)]
struct Connections {
    network: NetworkModel,
    faults: Arc<FaultInjector>,
    load: Arc<LoadModel>,
    idle_timeout: Option<Duration>,
    closing: watch::Receiver<u64>,
    accepted: Arc<AtomicU64>,
}

async fn serve(listener: TcpListener, service: S3Service, tls: Option<TlsAcceptor>, connections_with: Connections) {
    let http = ConnectionBuilder::new(TokioExecutor::new());
    // Owning the connection tasks here means aborting this task closes them too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    connections_with.accepted.fetch_add(1, Ordering::Relaxed);
                    let _ = socket.set_nodelay(true);
                    connections.spawn(serve_connection(
                        http.clone(),
                        service.clone(),
                        tls.clone(),
                        connections_with.clone(),
                        socket,
                    ));
                }
                Err(err) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One client connection; the handshake delay and the TLS handshake run here, off the
/// accept loop.
async fn serve_connection(
    http: ConnectionBuilder<TokioExecutor>,
    service: S3Service,
    tls: Option<TlsAcceptor>,
    with: Connections,
    socket: TcpStream,
) {
    let Connections {
        network,
        faults,
        load,
        idle_timeout,
        mut closing,
        accepted: _,
    } = with;
    // Closing idle connections concerns those open then, not this one, opened after.
    closing.mark_unchanged();
    wait(network.connection_delay()).await;
    let activity = Arc::new(Activity::new());
    let counted = Arc::clone(&activity);
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let busy = counted.begin();
        let service = service.clone();
        let (admitted, under_way) = load.arrive(request.uri().path());
        // A refused request is answered at once, after its round trip.
        let fault = if admitted {
            faults.draw(request.method(), request.uri())
        } else {
            Some(Fault::SlowDown)
        };
        let load = Arc::clone(&load);
        // The plan is read again only for a late answer: the common path takes one lock.
        let slow_response = match fault {
            Some(Fault::Slow) => faults.slow_response(),
            _ => std::time::Duration::ZERO,
        };
        async move {
            // Under way until its answer is ready (bodies here are small and sent at once).
            let _busy = (busy, under_way);
            wait(network.rtt).await;
            let _serving = if admitted {
                Some(load.serve(network.service_time).await)
            } else {
                None
            };
            match fault {
                None => Service::call(&service, request).await,
                Some(Fault::Slow) => {
                    wait(slow_response).await;
                    Service::call(&service, request).await
                }
                Some(Fault::SlowDown) => Ok(s3_error(
                    hyper::StatusCode::SERVICE_UNAVAILABLE,
                    "SlowDown",
                    "Please reduce your request rate.",
                )),
                Some(Fault::InternalError) => Ok(s3_error(
                    hyper::StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                )),
                // hyper closes a connection whose service fails, with no answer.
                Some(Fault::Reset) => Err(HttpError::new("injected fault: connection reset".into())),
            }
        }
    });
    let idle = Idle {
        activity,
        timeout: idle_timeout,
        closing,
    };
    let served = match tls {
        None => idle.close(http.serve_connection(TokioIo::new(socket), service)).await,
        Some(acceptor) => match acceptor.accept(socket).await {
            Ok(stream) => idle.close(http.serve_connection(TokioIo::new(stream), service)).await,
            Err(err) => {
                tracing::debug!(error = %err, "TLS handshake failed");
                return;
            }
        },
    };
    if let Err(err) = served {
        tracing::debug!(error = %err, "connection closed with an error");
    }
}

/// A connection's requests under way, and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    last: parking_lot::Mutex<Instant>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            last: parking_lot::Mutex::new(Instant::now()),
        }
    }

    /// Counts a request from now until the guard drops.
    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(self))
    }

    /// How long the connection has had no request under way; `None` while one is.
    fn idle_for(&self) -> Option<Duration> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| self.last.lock().elapsed())
    }
}

struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last.lock() = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// When to close a connection: idle past the timeout, or idle when told to close idle ones.
struct Idle {
    activity: Arc<Activity>,
    timeout: Option<Duration>,
    closing: watch::Receiver<u64>,
}

impl Idle {
    /// Serves `connection` to its end, shutting it down gracefully (an idle HTTP/1 connection
    /// closes at once) when it has been idle too long or the endpoint closes idle ones.
    async fn close<I, S, B>(mut self, connection: auto::Connection<'_, I, S, TokioExecutor>) -> Result<(), BoxError>
    where
        S: hyper::service::HttpService<Incoming, ResBody = B>
            + Service<hyper::Request<Incoming>, Response = hyper::Response<B>>,
        <S as Service<hyper::Request<Incoming>>>::Future: 'static,
        <S as Service<hyper::Request<Incoming>>>::Error: Into<BoxError>,
        <S as hyper::service::HttpService<Incoming>>::Error: Into<BoxError>,
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        B: hyper::body::Body + 'static,
        B::Error: Into<BoxError>,
        TokioExecutor: auto::HttpServerConnExec<<S as hyper::service::HttpService<Incoming>>::Future, B>
            + auto::HttpServerConnExec<<S as Service<hyper::Request<Incoming>>>::Future, B>,
    {
        tokio::pin!(connection);
        // A check a quarter of the timeout apart closes within 25 % of it.
        let check_every = self.timeout.map_or(Duration::from_secs(3600), |timeout| timeout / 4);
        let (mut shutting_down, mut endpoint_gone) = (false, false);
        loop {
            tokio::select! {
                served = connection.as_mut() => return served,
                changed = self.closing.changed(), if !shutting_down && !endpoint_gone => {
                    match changed {
                        Ok(()) if self.activity.idle_for().is_some() => {
                            connection.as_mut().graceful_shutdown();
                            shutting_down = true;
                        }
                        Ok(()) => {}
                        // The endpoint is gone: no one will ask again.
                        Err(_) => endpoint_gone = true,
                    }
                }
                () = tokio::time::sleep(check_every), if !shutting_down && self.timeout.is_some() => {
                    if let (Some(idle), Some(timeout)) = (self.activity.idle_for(), self.timeout)
                        && idle >= timeout
                    {
                        connection.as_mut().graceful_shutdown();
                        shutting_down = true;
                    }
                }
            }
        }
    }
}

/// An error answer as S3 words it, so that clients classify it as they would S3's.
fn s3_error(status: hyper::StatusCode, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut response = HttpResponse::new(s3s::Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    response
}
