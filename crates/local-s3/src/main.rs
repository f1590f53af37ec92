//! `local-s3`: serve the embedded S3 endpoint on a loopback port, optionally seeded.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use local_s3::{Credentials, FaultRule, Faults, Load, LocalS3, NetworkModel, Options, SeedAcl, seed_bucket_with};

/// An in-memory S3-compatible endpoint with object ACLs, for local runs and tests.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on. Keep it on loopback: the endpoint has fake credentials.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Create this bucket at start and fill it with `--objects` objects.
    #[arg(long)]
    seed_bucket: Option<String>,
    /// How many objects to seed, with a deterministic mix of private, public-read,
    /// authenticated-read and cross-account ACLs.
    #[arg(long, default_value_t = 100, requires = "seed_bucket")]
    objects: usize,
    /// The seeded objects' ACLs: `mix` (seven in ten private, one each public-read,
    /// authenticated-read and cross-account) or `public-read` (every object a finding).
    #[arg(long, value_enum, default_value_t = SeedMix::Mix, requires = "seed_bucket")]
    seed_acl: SeedMix,
    /// Create this empty bucket too (a findings bucket, say); repeatable.
    #[arg(long = "create-bucket", value_name = "NAME")]
    create_buckets: Vec<String>,
    /// Serve HTTPS, with a certificate signed by a CA generated at start.
    #[arg(long)]
    tls: bool,
    /// Where to write that CA's certificate (PEM), for clients' AWS_CA_BUNDLE. Default: a
    /// file named after the port in the system's temporary directory.
    #[arg(long, requires = "tls")]
    ca_bundle_out: Option<PathBuf>,
    /// Network round trip to add, in milliseconds: per request, and per handshake round trip.
    #[arg(long, default_value_t = 0.0)]
    rtt_ms: f64,
    /// S3's time to answer a request once it has arrived, in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    service_ms: f64,
    /// Round trips a new connection costs before its first request. Default: 1 (TCP), plus
    /// 1 with --tls (a TLS 1.3 handshake).
    #[arg(long)]
    handshake_rtts: Option<u32>,
    /// Inject a fault into a share of requests: OPERATION:FAULT=RATE, repeatable. OPERATION is
    /// list-objects-v2, get-object-acl or * (every request); FAULT is slow-down (503 SlowDown),
    /// internal-error (500 InternalError), reset (connection closed with no answer) or slow
    /// (answered after --slow-response-ms). Example: --fault get-object-acl:slow-down=0.05
    #[arg(long = "fault", value_name = "RULE")]
    faults: Vec<FaultRule>,
    /// Seed for the fault draws: the same seed fails the same requests in every run.
    #[arg(long, default_value_t = 0)]
    fault_seed: u64,
    /// How late a `slow` fault's answer comes, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    slow_response_ms: u64,
    /// Requests per second each partition (the bucket and the key's first path segment)
    /// serves, with a burst of 100 ms of them; beyond it, 503 SlowDown, as S3 answers beyond
    /// about 5 500 GETs a second per prefix. Default: no limit.
    #[arg(long, value_name = "R")]
    rate_per_prefix: Option<f64>,
    /// Slow answers as requests pile up: with n under way, each takes --service-ms ×
    /// (1 + (n / KNEE)²), so throughput peaks at KNEE in flight and falls beyond, as a server
    /// that struggles rather than refuses (moto) does. Default: off.
    #[arg(long, value_name = "KNEE")]
    slowing_knee: Option<u32>,
    /// Close a keep-alive connection idle this long, in milliseconds, as S3 does (about
    /// 20 s); 0: never. SIGUSR1 closes every idle connection at once.
    #[arg(long, default_value_t = 20_000)]
    idle_timeout_ms: u64,
    /// Access key id clients must sign with.
    #[arg(long, env = "LOCAL_S3_ACCESS_KEY_ID", default_value_t = Credentials::default().access_key_id)]
    access_key_id: String,
    /// How to print the environment a client needs, on stdout once serving: `shell`, export
    /// lines for a shell's `eval`; `json`, one line holding an object of the variables, for
    /// programs to read.
    #[arg(long, value_enum, default_value_t = PrintEnv::Shell)]
    print_env: PrintEnv,
    /// Secret key clients must sign with.
    #[arg(long, env = "LOCAL_S3_SECRET_ACCESS_KEY", default_value_t = Credentials::default().secret_access_key, hide_default_value = true)]
    secret_access_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SeedMix {
    Mix,
    PublicRead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PrintEnv {
    Shell,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs to stderr: stdout carries only the environment a client needs (`--print-env`).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::builder()
                .with_default_directive(tracing::Level::INFO.into())
                .from_env_lossy(),
        )
        .init();
    let args = Args::parse();
    let credentials = Credentials {
        access_key_id: args.access_key_id,
        secret_access_key: args.secret_access_key,
    };
    let addr = SocketAddr::new(args.host, args.port);
    if let Some(rate) = args.rate_per_prefix.filter(|rate| !(rate.is_finite() && *rate > 0.0)) {
        anyhow::bail!("--rate-per-prefix must be a positive number of requests per second, not {rate}");
    }
    match args.slowing_knee {
        Some(0) => anyhow::bail!("--slowing-knee must be at least 1"),
        Some(_) if args.service_ms <= 0.0 => anyhow::bail!("--slowing-knee stretches --service-ms, which is 0"),
        _ => {}
    }
    let handshake_rtts = args.handshake_rtts.unwrap_or(1 + u32::from(args.tls));
    let network = NetworkModel::from_millis(args.rtt_ms, args.service_ms, handshake_rtts)?;
    let fault_rules: Vec<String> = args.faults.iter().map(ToString::to_string).collect();
    let options = Options {
        addr,
        credentials,
        tls: args.tls,
        network,
        faults: Faults {
            seed: args.fault_seed,
            rules: args.faults,
            slow_response: std::time::Duration::from_millis(args.slow_response_ms),
        },
        load: Load {
            rate_per_prefix: args.rate_per_prefix,
            slowing_knee: args.slowing_knee,
        },
        idle_timeout: (args.idle_timeout_ms > 0).then(|| std::time::Duration::from_millis(args.idle_timeout_ms)),
    };
    let mut s3 = LocalS3::start_with(options)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let ca_bundle = match s3.ca_pem() {
        Some(pem) => {
            let path = args
                .ca_bundle_out
                .unwrap_or_else(|| std::env::temp_dir().join(format!("local-s3-{}-ca.pem", s3.addr().port())));
            std::fs::write(&path, pem)
                .with_context(|| format!("cannot write the CA certificate to {}", path.display()))?;
            Some(path)
        }
        None => None,
    };
    for bucket in &args.create_buckets {
        s3.store()
            .create_bucket(bucket)
            .with_context(|| format!("cannot create bucket {bucket:?}"))?;
    }
    if let Some(bucket) = &args.seed_bucket {
        let kind_of = match args.seed_acl {
            SeedMix::Mix => SeedAcl::for_index,
            SeedMix::PublicRead => |_| SeedAcl::PublicRead,
        };
        let summary = seed_bucket_with(s3.store(), bucket, args.objects, kind_of)
            .with_context(|| format!("cannot seed bucket {bucket:?}"))?;
        tracing::info!(bucket, ?summary, "seeded");
    }
    tracing::info!(?network, ?fault_rules, fault_seed = args.fault_seed, "serving");
    // What a client needs; the key pair is this endpoint's own, not an AWS one.
    let mut env = serde_json::Map::new();
    let mut set = |name: &str, value: String| env.insert(name.to_owned(), value.into());
    set("AWS_ENDPOINT_URL", s3.endpoint_url().to_owned());
    set("AWS_ACCESS_KEY_ID", s3.credentials().access_key_id.clone());
    set("AWS_SECRET_ACCESS_KEY", s3.credentials().secret_access_key.clone());
    set("AWS_REGION", "us-east-1".to_owned());
    if let Some(path) = ca_bundle {
        set("AWS_CA_BUNDLE", path.display().to_string());
    }
    match args.print_env {
        PrintEnv::Json => println!("{}", serde_json::Value::Object(env)),
        PrintEnv::Shell => {
            for (name, value) in &env {
                println!("export {name}={}", value.as_str().unwrap_or_default());
            }
        }
    }
    let mut close_idle = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .context("cannot wait for SIGUSR1")?;
    loop {
        tokio::select! {
            () = s3.wait() => break,
            result = tokio::signal::ctrl_c() => {
                result.context("cannot wait for Ctrl-C")?;
                break;
            }
            Some(()) = close_idle.recv() => s3.close_idle_connections(),
        }
    }
    Ok(())
}
