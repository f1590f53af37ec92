//! The S3 client, built once per process: a warm Lambda container reuses it, and with it
//! its pool of open connections.

use std::path::PathBuf;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider, SharedHttpClient, StalledStreamProtectionConfig};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::s3::call_cost::{FixedUserAgent, OncePerBucket};
use crate::s3::retries::CountRetries;

/// The file of CA certificates to trust instead of the system's, as the AWS CLI and the other
/// SDKs read it; aws-sdk-s3 does not read it itself.
pub const AWS_CA_BUNDLE: &str = "AWS_CA_BUNDLE";

/// Standard retry mode, unless `AWS_RETRY_MODE` or `AWS_MAX_ATTEMPTS` say otherwise. Standard
/// retries throttling (503 SlowDown), 5xx answers, timeouts and lost connections, backing off
/// exponentially with full jitter, and stops retrying when the client's retry quota runs out: a
/// retry costs 5 of its 500 tokens (10 after a timeout or lost connection), a first-try success
/// earns one back, so the quota holds at any scale with up to one failure in six. Not adaptive
/// by default: adaptive mode slows every later request of the client after the first SlowDown,
/// which costs a scheduled audit more than the occasional throttled retry does;
/// `AWS_RETRY_MODE=adaptive` is for a bucket whose prefix really is at S3's request-rate limit
/// (docs/reliability.md has the figures).
///
/// The client's own: seven attempts, the first throttled retry after at most a quarter of the
/// SDK's 1 s (a random wait of up to 0.25 s, 0.5, 1, 2, 4, 8: at most 15.75 s in all, about
/// what the SDK's five attempts wait). It is for runs whose in-flight limit answers SlowDown for
/// the whole run (`join-all`'s adaptive default, `strategy::limit`): a call's own wait then only
/// has to spread its retry, and with 1 s the last calls refused held a run of 20 000 calls at
/// S3's per-prefix rate for a second (docs/benchmark.md, "When S3 pushes back"). More attempts
/// than the SDK's three: with one request in ten failing, three lose one key in a thousand.
const MAX_ATTEMPTS: u32 = 7;
const THROTTLING_BACKOFF: Duration = Duration::from_millis(250);
/// Runs whose limit stays where it is however S3 answers ([`without_run_limit`]) wait as the
/// SDK does, from 1 s, five attempts (up to 1 s, 2, 4, 8): their calls' waits are all that
/// slows them down.
const MAX_ATTEMPTS_WITHOUT_RUN_LIMIT: u32 = 5;
const THROTTLING_BACKOFF_WITHOUT_RUN_LIMIT: Duration = Duration::from_secs(1);
const RETRY_ENV: [&str; 2] = ["AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"];

/// `AWS_RETRY_MODE` or `AWS_MAX_ATTEMPTS` is set: the SDK's configuration loader reads them,
/// and the user's choice stands.
fn user_chose_retries() -> bool {
    RETRY_ENV
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}
/// An S3 endpoint in the same region connects in milliseconds; a dead one should not eat
/// the function's whole timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// GetObjectAcl and a 1 000-key ListObjectsV2 page are small; one attempt past this is stuck.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may sit idle in the pool: below the idle timeout S3 is widely
/// reported to close connections after (about 20 s; hyper's default keeps them 90 s). Lambda
/// freezes the process between invocations, so it cannot see S3 close a connection meanwhile;
/// one older than this is never sent a request, and a run thawed after 30 s opens new
/// connections rather than failing (and retrying) on dead ones.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read the CA bundle {} named by {AWS_CA_BUNDLE}: {source}", path.display())]
    ReadCaBundle { path: PathBuf, source: std::io::Error },
    #[error("the CA bundle {} named by {AWS_CA_BUNDLE} is not usable: {source}", path.display())]
    InvalidCaBundle { path: PathBuf, source: TrustError },
}

/// A client from the standard AWS configuration chain (environment, profile, the Lambda
/// role), honouring `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3` and `AWS_CA_BUNDLE`.
pub async fn client_from_env() -> Result<Client, ClientError> {
    client_from_env_at(None).await
}

/// The same, with `endpoint_url` (when given) in place of the environment's endpoint.
pub async fn client_from_env_at(endpoint_url: Option<&str>) -> Result<Client, ClientError> {
    client_from_env_with(&ClientChoices {
        endpoint_url: endpoint_url.map(str::to_owned),
        ..ClientChoices::default()
    })
    .await
}

/// What a command-line user may choose over the environment's configuration.
#[derive(Debug, Clone, Default)]
pub struct ClientChoices {
    pub endpoint_url: Option<String>,
    /// A profile of the shared config and credentials files.
    pub profile: Option<String>,
    pub region: Option<String>,
}

/// A client from the standard configuration chain, with `choices` taking precedence.
pub async fn client_from_env_with(choices: &ClientChoices) -> Result<Client, ClientError> {
    let mut loader = loader_for(choices)?;
    if let Some(url) = &choices.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    Ok(client_from_sdk_config(&loader.load().await))
}

/// The configuration both clients start from: the profile, the region and the CA bundle
/// chosen, the rest from the environment.
fn loader_for(choices: &ClientChoices) -> Result<aws_config::ConfigLoader, ClientError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &choices.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &choices.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let http_client = match std::env::var_os(AWS_CA_BUNDLE).filter(|path| !path.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            let pem = std::fs::read(&path).map_err(|source| ClientError::ReadCaBundle {
                path: path.clone(),
                source,
            })?;
            https_client_trusting(&pem).map_err(|source| ClientError::InvalidCaBundle { path, source })?
        }
        None => https_client(POOL_IDLE_TIMEOUT),
    };
    Ok(loader.http_client(http_client))
}

/// Why a PEM bundle cannot be the trust store of an HTTPS client.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("it is not a PEM certificate list ({0})")]
    NotPem(rustls::pki_types::pem::Error),
    #[error("it holds no PEM certificate")]
    NoCertificate,
    #[error("a certificate in it cannot be a trust anchor ({0})")]
    NotTrustAnchor(rustls::Error),
    #[error("the TLS context cannot be built ({0})")]
    Context(#[source] aws_smithy_runtime_api::box_error::BoxError),
}

/// An HTTPS client that trusts the certificates in `pem` and nothing else, as the AWS CLI
/// does with `AWS_CA_BUNDLE`. The bundle is checked here: the SDK would panic on it later.
pub fn https_client_trusting(pem: &[u8]) -> Result<SharedHttpClient, TrustError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TrustError::NotPem)?;
    if certificates.is_empty() {
        return Err(TrustError::NoCertificate);
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(TrustError::NotTrustAnchor)?;
    }
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .map_err(|err| TrustError::Context(err.into()))?;
    Ok(aws_smithy_http_client::Builder::new()
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}

/// The SDK's own HTTPS client (rustls, the system's trust roots), its pool keeping an idle
/// connection `pool_idle_timeout` at most ([`POOL_IDLE_TIMEOUT`] for the functions).
pub fn https_client(pool_idle_timeout: Duration) -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .pool_idle_timeout(pool_idle_timeout)
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .build_https()
}

pub fn client_from_sdk_config(sdk_config: &SdkConfig) -> Client {
    // S3-compatible endpoints (local-s3, moto, MinIO) seldom resolve bucket subdomains.
    let endpoint_overridden = sdk_config.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|url| !url.is_empty());
    let retry_config = match sdk_config.retry_config() {
        Some(chosen) if user_chose_retries() => chosen.clone(),
        _ => own_retry_config(),
    };
    let config = aws_sdk_s3::config::Builder::from(sdk_config)
        .retry_config(retry_config)
        .endpoint_resolver(OncePerBucket::default())
        .interceptor(FixedUserAgent)
        .interceptor(CountRetries)
        .timeout_config(timeouts())
        // Stalled-stream protection watches the throughput of large uploads and downloads with
        // a timer per response body. Every body here is a few kilobytes, read within the
        // attempt that ATTEMPT_TIMEOUT bounds; and registering that timer woke the runtime's I/O
        // driver with a system call per call (strace on `acl-bench invoke`: 100 eventfd writes
        // per 100 ACLs).
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .force_path_style(endpoint_overridden)
        .build();
    Client::from_conf(config)
}

fn own_retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(THROTTLING_BACKOFF)
}

/// `client` for a run whose in-flight limit does not come down when S3 pushes back (a fixed
/// `join-all` limit, `spawn-blocking`'s threads, `sequential`): the same connections, endpoint
/// cache and retry quota, its throttled retries waiting as the SDK's do. Only the retries this
/// crate chose change: the user's (`AWS_RETRY_MODE`, `AWS_MAX_ATTEMPTS`) and a caller's own
/// client configuration stand. With the quarter second, 128 calls in flight against 2 000
/// requests a second retried 0.30 times a call and ran out of attempts for 4 keys in 20 000;
/// with 1 s, none.
pub fn without_run_limit(client: &Client) -> Client {
    if client.config().retry_config() != Some(&own_retry_config()) {
        return client.clone();
    }
    let retry = RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS_WITHOUT_RUN_LIMIT)
        .with_initial_backoff(THROTTLING_BACKOFF_WITHOUT_RUN_LIMIT);
    Client::from_conf(client.config().to_builder().retry_config(retry).build())
}

/// A client for an S3-compatible endpoint with its own static key pair (`local-s3`, moto):
/// no profile or environment lookup, so tests and local runs cannot pick up real credentials.
/// Both clients' timeouts: a connection, an attempt, the whole operation with its retries.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

pub fn client_for_endpoint(endpoint_url: &str, access_key_id: &str, secret_access_key: &str) -> Client {
    let credentials = Credentials::new(access_key_id, secret_access_key, None, None, "static-endpoint-keys");
    client_with_credentials(endpoint_url, credentials)
}

/// The same with any static credentials, a session token included.
pub fn client_with_credentials(endpoint_url: &str, credentials: Credentials) -> Client {
    client_from_sdk_config(&static_config(endpoint_url, credentials, None))
}

/// The same with an HTTP client of the caller's (another pool idle timeout, say).
pub fn client_with_http_client(endpoint_url: &str, credentials: Credentials, http_client: SharedHttpClient) -> Client {
    client_from_sdk_config(&static_config(endpoint_url, credentials, Some(http_client)))
}

/// The same over HTTPS, trusting only the CA in `ca_pem` (an endpoint's own, as local-s3's).
pub fn client_trusting(endpoint_url: &str, credentials: Credentials, ca_pem: &[u8]) -> Result<Client, TrustError> {
    let http_client = https_client_trusting(ca_pem)?;
    Ok(client_from_sdk_config(&static_config(
        endpoint_url,
        credentials,
        Some(http_client),
    )))
}

fn static_config(endpoint_url: &str, credentials: Credentials, http_client: Option<SharedHttpClient>) -> SdkConfig {
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint_url)
        .credentials_provider(SharedCredentialsProvider::new(credentials));
    builder.set_http_client(Some(http_client.unwrap_or_else(|| https_client(POOL_IDLE_TIMEOUT))));
    builder.build()
}

/// An S3 Control client (for the account's Block Public Access) from the same configuration
/// as [`client_from_env_with`]'s S3 client: credentials, region, HTTP client.
pub async fn control_client_from_env_with(choices: &ClientChoices) -> Result<aws_sdk_s3control::Client, ClientError> {
    let sdk_config = loader_for(choices)?.load().await;
    let endpoint_url = choices
        .endpoint_url
        .clone()
        .or_else(|| endpoint_from_env(&["AWS_ENDPOINT_URL_S3_CONTROL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]));
    Ok(control_client_from_sdk_config(&sdk_config, endpoint_url.as_deref()))
}

/// Organizations and STS clients (an organization's sweep) from the same configuration as
/// [`client_from_env_with`]'s S3 client.
pub async fn organization_clients_from_env_with(
    choices: &ClientChoices,
) -> Result<(aws_sdk_organizations::Client, aws_sdk_sts::Client), ClientError> {
    let mut loader = loader_for(choices)?;
    if let Some(url) = &choices.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk_config = loader.load().await;
    Ok((
        aws_sdk_organizations::Client::new(&sdk_config),
        aws_sdk_sts::Client::new(&sdk_config),
    ))
}

/// Security Hub with the same choices, for `BatchImportFindings` (`crate::security_hub`).
pub async fn security_hub_client_from_env_with(
    choices: &ClientChoices,
) -> Result<aws_sdk_securityhub::Client, ClientError> {
    let mut loader = loader_for(choices)?;
    if let Some(url) = &choices.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    Ok(aws_sdk_securityhub::Client::new(&loader.load().await))
}

/// `base` with other credentials (a member account's, from AssumeRole): the same endpoint,
/// region, retries, timeouts and HTTP client.
pub fn with_credentials(base: &Client, credentials: Credentials) -> Client {
    let config = base
        .config()
        .to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            credentials,
        ))
        .build();
    Client::from_conf(config)
}

/// The S3 Control client `base` with other credentials, as [`with_credentials`].
pub fn control_with_credentials(
    base: &aws_sdk_s3control::Client,
    credentials: Credentials,
) -> aws_sdk_s3control::Client {
    let config = base
        .config()
        .to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            credentials,
        ))
        .build();
    aws_sdk_s3control::Client::from_conf(config)
}

fn endpoint_from_env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.trim().is_empty()))
}

/// The S3 Control client for an endpoint and key pair, as [`client_for_endpoint`].
pub fn control_client_for_endpoint(
    endpoint_url: &str,
    access_key_id: &str,
    secret_access_key: &str,
) -> aws_sdk_s3control::Client {
    let credentials = Credentials::new(access_key_id, secret_access_key, None, None, "static-endpoint-keys");
    let mut sdk_config = static_config(endpoint_url, credentials, None).into_builder();
    sdk_config.set_endpoint_url(None);
    control_client_from_sdk_config(&sdk_config.build(), Some(endpoint_url))
}

/// With `endpoint_url` (an S3-compatible endpoint: local-s3, moto, Ceph) requests go to that
/// endpoint as given, path-style with the account in `x-amz-account-id` as those endpoints take
/// them, rather than to `<account id>.<host>`, which resolves only on AWS.
fn control_client_from_sdk_config(sdk_config: &SdkConfig, endpoint_url: Option<&str>) -> aws_sdk_s3control::Client {
    let mut config = aws_sdk_s3control::config::Builder::from(sdk_config)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS_WITHOUT_RUN_LIMIT))
        .timeout_config(timeouts());
    if let Some(url) = endpoint_url {
        config = config.endpoint_resolver(FixedEndpoint(url.trim_end_matches('/').to_owned()));
    }
    aws_sdk_s3control::Client::from_conf(config.build())
}

/// Every request to one URL, whatever the endpoint rules would say.
#[derive(Debug)]
struct FixedEndpoint(String);

impl aws_sdk_s3control::config::endpoint::ResolveEndpoint for FixedEndpoint {
    fn resolve_endpoint<'a>(
        &'a self,
        _params: &'a aws_sdk_s3control::config::endpoint::Params,
    ) -> aws_sdk_s3control::config::endpoint::EndpointFuture<'a> {
        let endpoint = aws_sdk_s3control::config::endpoint::Endpoint::builder()
            .url(self.0.clone())
            .build();
        aws_sdk_s3control::config::endpoint::EndpointFuture::ready(Ok(endpoint))
    }
}
