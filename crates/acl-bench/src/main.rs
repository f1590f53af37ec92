//! `acl-bench`: run the three strategies against an embedded `local-s3`, or measure how many
//! requests the endpoint itself serves.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Instant;

use acl_audit::report::Tally;
use acl_audit::s3::client::client_for_endpoint;
use acl_audit::strategy::InFlight;
use acl_audit::strategy::fetch_acls;
use acl_audit::{AuditReport, Strategy, StrategyKind, Target};
use acl_audit_lambda::Clients;
use acl_audit_lambda::Config;
use acl_bench::invoke::Start;
use acl_bench::lambda_child::InitCpu;
use acl_bench::sweep::{EndpointChoice, NodePeer, NodePeers, Peers, PythonPeer, PythonPeers, SweepOptions, Variant};
use anyhow::Context as _;
use aws_sdk_s3::Client;
use clap::{Parser, Subcommand};
use lambda_runtime::{Context, LambdaEvent};
use local_s3::{LocalS3, NetworkModel, seed_bucket, seed_key};

/// ListObjectsV2's page: all the seed's Python functions (and the Node.js peers) read.
const PEERS_MAX_OBJECTS: usize = 1000;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the largest variant (`bench`'s options) costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Seed a bucket on an embedded endpoint and run each strategy once through the
    /// functions' handler, printing a comparison table.
    Compare {
        /// Objects to seed, as in the seed experiment.
        #[arg(long, default_value_t = 100)]
        objects: usize,
        #[arg(long, default_value = "acl-audit-demo")]
        bucket: String,
        /// Print each strategy's full JSON report after the table.
        #[arg(long)]
        json: bool,
    },
    /// Measure the embedded endpoint's own GetObjectAcl throughput, to check it is not
    /// what a benchmark of the client measures.
    Endpoint {
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        /// Requests in flight at once.
        #[arg(long, default_value = "64")]
        concurrency: NonZeroUsize,
    },
    /// join-all against local-s3 pushing back, fixed in-flight limits and the adaptive default
    /// side by side: a request rate per prefix (503 SlowDown beyond it) for each --rate, then
    /// answers that slow as requests pile up (docs/benchmark.md, "When S3 pushes back").
    Pushback {
        #[arg(long, default_value_t = 4000)]
        objects: usize,
        /// Requests per second per prefix; repeatable.
        #[arg(long = "rate", default_values_t = [2000.0, 5500.0])]
        rates: Vec<f64>,
        /// The network round trip with a rate limit, milliseconds.
        #[arg(long, default_value_t = 10.0)]
        rtt_ms: f64,
        /// The slowing server's knee (its workers) and service time; 0 leaves the slowing
        /// server out.
        #[arg(long, default_value_t = 32)]
        knee: u32,
        #[arg(long, default_value_t = 10.0)]
        service_ms: f64,
        /// Fixed limits to compare, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [8, 16, 32, 64, 128].map(|n| NonZeroUsize::new(n).unwrap()))]
        fixed: Vec<NonZeroUsize>,
        /// The adaptive limit's ceiling: the functions' default at 1 024 MB and above.
        #[arg(long, default_value = "128")]
        ceiling: NonZeroUsize,
        /// Split the keys into this many ranges audited at once, each by a client and a limit
        /// of its own, as the state machine's parts of one bucket are.
        #[arg(long, default_value = "1")]
        parts: NonZeroUsize,
    },
    /// The seed's experiment: every strategy at every Lambda memory size, against an HTTPS
    /// local-s3 with a network model, each variant in its own CPU-limited process.
    Bench {
        /// Lambda memory sizes, MB; each gets memory/1769 of a CPU.
        #[arg(long, value_delimiter = ',', default_value = "128,256,512,1024,1769,3008")]
        sizes: Vec<u32>,
        /// Objects in the bucket.
        #[arg(long, default_value_t = 100)]
        objects: usize,
        /// The Rust strategies to run, each with its default settings (`join-all` alone for a
        /// large bucket: `sequential` takes 100 000 round trips).
        #[arg(long, value_delimiter = ',', value_parser = parse_strategy, default_value = "sequential,spawn-blocking,join-all")]
        strategies: Vec<StrategyKind>,
        /// Measured invocations per cell (after one warm-up, unless --start cold).
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// warm: one process, its pool open; empty-pool: the endpoint closes every idle
        /// connection before each invocation; cold: a new process (init included) per
        /// invocation; thawed: one process frozen --idle-s between invocations, while the
        /// endpoint closes connections idle for 20 s as S3 does.
        #[arg(long, value_enum, default_value_t = Start::Warm)]
        start: Start,
        /// Seconds a thawed function stays frozen between invocations.
        #[arg(long, default_value_t = 30.0)]
        idle_s: f64,
        /// The CPU a function's init runs with: burst (unthrottled until its first event, as
        /// Lambda's on-demand init) or limited (its memory size's share from the start).
        #[arg(long, value_enum, default_value_t = InitCpu::Burst)]
        init_cpu: InitCpu,
        /// The functions' WARM_CONNECTIONS (connections opened during init); unset: their
        /// default.
        #[arg(long)]
        warm_connections: Option<usize>,
        /// Extra join-all variants with these MAX_IN_FLIGHT caps (0 = unbounded); `--caps`
        /// alone for none.
        #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "16,32,64,128,0")]
        caps: Vec<usize>,
        /// Network round trip per request and per handshake round trip, ms. Same-region
        /// Lambda to S3 is in the low milliseconds.
        #[arg(long, default_value_t = 2.0)]
        rtt_ms: f64,
        /// S3's time to answer a small request such as GetObjectAcl, ms.
        #[arg(long, default_value_t = 15.0)]
        service_ms: f64,
        /// Round trips before a new connection's first request: TCP + TLS 1.3.
        #[arg(long, default_value_t = 2)]
        handshake_rtts: u32,
        /// Run against this S3 endpoint (moto, MinIO, `https://s3.<region>.amazonaws.com`)
        /// with your own AWS configuration, instead of an embedded local-s3. The network
        /// model does not apply there.
        #[arg(long, requires = "bucket", conflicts_with_all = ["rtt_ms", "service_ms", "handshake_rtts"])]
        endpoint: Option<String>,
        /// The bucket to audit on --endpoint.
        #[arg(long, requires = "endpoint")]
        bucket: Option<String>,
        /// Before the sweep, create --bucket if it is missing and write --objects private
        /// objects into it (`object-0000000` …); without it the bucket is audited as it is.
        #[arg(long, requires = "endpoint")]
        seed: bool,
        /// Seed every object public-read and have the children write each finding to the
        /// embedded endpoint (FINDINGS_URI): what a findings file costs in time and memory.
        #[arg(long, conflicts_with = "endpoint")]
        findings: bool,
        /// Where to write the JSON results (the chart goes beside it, as .svg).
        #[arg(long, default_value = "results/bench.json")]
        out: PathBuf,
        /// The Python with boto3 and aioboto3 (`make bench-peers` installs them); the seed's
        /// Python functions join the sweep when it has them.
        #[arg(long, default_value = ".venv/bin/python")]
        python: PathBuf,
        #[arg(long, default_value = "peers/python")]
        peers_dir: PathBuf,
        /// The `node` for the Node.js peers (`make bench-peers` installs their SDK with npm
        /// into --node-peers-dir); they join the sweep when both are there.
        #[arg(long, default_value = "node")]
        node: PathBuf,
        #[arg(long, default_value = "peers/node")]
        node_peers_dir: PathBuf,
    },
    /// Redraw a sweep's SVG chart from its JSON results.
    Chart {
        /// The JSON `bench` wrote.
        #[arg(long, default_value = "results/bench.json")]
        from: PathBuf,
        /// Where to write the chart.
        #[arg(long, default_value = "results/bench.svg")]
        out: PathBuf,
    },
    /// One benchmark child (started by `bench`): a stand-in for a Lambda execution
    /// environment, configured by the environment like a function.
    #[command(hide = true)]
    Invoke {
        #[arg(long, value_parser = parse_strategy)]
        strategy: StrategyKind,
        #[arg(long, default_value_t = 10)]
        runs: usize,
        #[arg(long, value_enum, default_value_t = Start::Warm)]
        start: Start,
        /// Move this process into the cgroup whose cgroup.procs this is, before any work.
        #[arg(long)]
        join_cgroup: Option<PathBuf>,
    },
}

fn parse_strategy(name: &str) -> Result<StrategyKind, String> {
    StrategyKind::ALL
        .into_iter()
        .find(|kind| kind.name() == name)
        .ok_or_else(|| format!("expected sequential, spawn-blocking or join-all, got {name:?}"))
}

/// Its `invoke` children stand in for the functions, so they allocate as the functions do:
/// mimalloc (docs/benchmark.md, "The strategies' cost per call").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let process_started = Instant::now();
    let command = Args::parse().command;
    // A benchmark child joins its cgroup before the runtime starts any thread.
    if let Command::Invoke {
        join_cgroup: Some(procs_file),
        ..
    } = &command
    {
        acl_bench::cpu_limit::join(procs_file)
            .with_context(|| format!("cannot join the cgroup {}", procs_file.display()))?;
    }
    // A benchmark child runs on the functions' own runtime.
    let runtime = match &command {
        Command::Invoke { .. } => acl_audit_lambda::runtime(),
        _ => tokio::runtime::Runtime::new(),
    }
    .context("cannot start the tokio runtime")?;
    match command {
        Command::Compare { objects, bucket, json } => runtime.block_on(compare(objects, &bucket, json)),
        Command::Endpoint { requests, concurrency } => runtime.block_on(endpoint_throughput(requests, concurrency)),
        Command::Pushback {
            objects,
            rates,
            rtt_ms,
            knee,
            service_ms,
            fixed,
            ceiling,
            parts,
        } => runtime.block_on(async {
            let mut scenarios = Vec::new();
            for rate in rates {
                scenarios.push(acl_bench::pushback::Scenario {
                    load: local_s3::Load {
                        rate_per_prefix: Some(rate),
                        slowing_knee: None,
                    },
                    network: NetworkModel::from_millis(rtt_ms, 0.0, 1)?,
                });
            }
            if knee > 0 {
                scenarios.push(acl_bench::pushback::Scenario {
                    load: local_s3::Load {
                        rate_per_prefix: None,
                        slowing_knee: Some(knee),
                    },
                    network: NetworkModel::from_millis(0.0, service_ms, 1)?,
                });
            }
            for scenario in scenarios {
                let outcomes = acl_bench::pushback::run(scenario, objects, &fixed, ceiling, parts).await?;
                acl_bench::pushback::print(&scenario, objects, parts, &outcomes);
                println!();
            }
            anyhow::Ok(())
        }),
        Command::Bench {
            sizes,
            objects,
            strategies,
            runs,
            start,
            idle_s,
            init_cpu,
            warm_connections,
            caps,
            rtt_ms,
            service_ms,
            handshake_rtts,
            endpoint,
            bucket,
            seed,
            findings,
            out,
            python,
            peers_dir,
            node,
            node_peers_dir,
        } => {
            let (endpoint, objects) = match (endpoint, bucket) {
                (Some(url), Some(bucket)) => {
                    let objects =
                        runtime.block_on(acl_bench::external::prepare(&url, &bucket, seed.then_some(objects)))?;
                    (EndpointChoice::External { url, bucket }, objects)
                }
                _ => {
                    let network = NetworkModel::from_millis(rtt_ms, service_ms, handshake_rtts)?;
                    (EndpointChoice::Embedded { network }, objects)
                }
            };
            let mut variants: Vec<Variant> = strategies
                .into_iter()
                .map(|strategy| Variant::Rust {
                    strategy,
                    max_in_flight: None,
                })
                .collect();
            variants.extend(caps.into_iter().map(|cap| Variant::Rust {
                strategy: StrategyKind::JoinAll,
                max_in_flight: Some(cap),
            }));
            // The seed's functions read one ListObjectsV2 page, as the write-up has them: beyond
            // 1 000 objects they would be timed auditing a part of the bucket.
            let peers_apply = if start == Start::Thawed {
                Err("a thawed start freezes the functions' own binaries only".to_owned())
            } else if objects > PEERS_MAX_OBJECTS {
                Err(format!(
                    "the seed's functions read one listing page ({PEERS_MAX_OBJECTS} keys), not {objects} objects"
                ))
            } else {
                Ok(())
            };
            let mut peers = Peers::default();
            match peers_apply.clone().and_then(|()| {
                PythonPeers::find(&python, &peers_dir)
                    .map_err(|reason| format!("{reason} (`make bench-peers` installs them)"))
            }) {
                Ok(found) => {
                    variants.extend(PythonPeer::ALL.map(|function| Variant::Python { function }));
                    peers.python = Some(found);
                }
                Err(reason) => println!("Python peers skipped: {reason}"),
            }
            match peers_apply.and_then(|()| {
                NodePeers::find(&node, &node_peers_dir)
                    .map_err(|reason| format!("{reason} (`make bench-peers` installs them)"))
            }) {
                Ok(found) => {
                    variants.extend(NodePeer::ALL.map(|function| Variant::Node { function }));
                    peers.node = Some(found);
                }
                Err(reason) => println!("Node.js peers skipped: {reason}"),
            }
            let options = SweepOptions {
                memory_sizes: sizes,
                variants,
                objects,
                runs,
                start,
                endpoint,
                peers,
                findings,
                init_cpu,
                idle: std::time::Duration::try_from_secs_f64(idle_s).context("--idle-s is a number of seconds")?,
                warm_connections,
            };
            let progress = progress_bar(options.memory_sizes.len() * options.variants.len());
            let result = acl_bench::sweep::run(&options, |cell| {
                let line = format!(
                    "{} MB {}: p50 {:.1} ms",
                    cell.memory_mb, cell.variant, cell.summary.p50_ms
                );
                progress.inc(1);
                if progress.is_hidden() {
                    // Not a terminal (CI, a log file): one line per cell instead of a bar.
                    eprintln!("[{}/{}] {line}", progress.position(), progress.length().unwrap_or(0));
                } else {
                    progress.set_message(line);
                }
            })?;
            progress.finish_and_clear();
            acl_bench::sweep::print_table(&result);
            acl_bench::sweep::write_json(&result, &out)?;
            let chart = out.with_extension("svg");
            acl_bench::chart::write_svg(&result, &chart)?;
            println!("results: {} and {}", out.display(), chart.display());
            Ok(())
        }
        Command::Chart { from, out } => {
            let json = std::fs::read_to_string(&from).with_context(|| format!("cannot read {}", from.display()))?;
            let result =
                serde_json::from_str(&json).with_context(|| format!("{} is not a bench result", from.display()))?;
            acl_bench::chart::write_svg(&result, &out)?;
            println!("chart: {}", out.display());
            Ok(())
        }
        Command::Invoke {
            strategy, runs, start, ..
        } => {
            let child = acl_bench::invoke::run(strategy, start, runs, process_started);
            let report = acl_audit_lambda::block_on_task(&runtime, child)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}

fn progress_bar(cells: usize) -> indicatif::ProgressBar {
    let progress = indicatif::ProgressBar::new(cells as u64);
    let style = indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} cells, last: {msg}")
        .map(|style| style.progress_chars("=> "));
    if let Ok(style) = style {
        progress.set_style(style);
    }
    progress.enable_steady_tick(std::time::Duration::from_millis(500));
    progress
}

async fn seeded_endpoint(bucket: &str, objects: usize) -> anyhow::Result<(LocalS3, Client)> {
    let s3 = LocalS3::start().await.context("cannot start the embedded endpoint")?;
    seed_bucket(s3.store(), bucket, objects).with_context(|| format!("cannot seed {bucket:?}"))?;
    let keys = s3.credentials();
    let client = client_for_endpoint(s3.endpoint_url(), &keys.access_key_id, &keys.secret_access_key);
    // Open a connection first, as a warm Lambda container has one: the strategies then
    // compete on scheduling, not on who pays for the first handshake.
    acl_audit::s3::listing::list_keys(&client, &Target::bucket(bucket))
        .await
        .context("the embedded endpoint does not answer")?;
    Ok((s3, client))
}

async fn compare(objects: usize, bucket: &str, json: bool) -> anyhow::Result<()> {
    let (_s3, client) = seeded_endpoint(bucket, objects).await?;
    // MAX_IN_FLIGHT and BLOCKING_POOL_SIZE apply here as in the functions.
    let config = Config::from_env()?;
    let mut reports = Vec::new();
    for kind in StrategyKind::ALL {
        let event = LambdaEvent::new(serde_json::json!({ "bucket": bucket }), Context::default());
        reports.push(
            acl_audit_lambda::invoke(kind, &Clients::new(&client), &config, event)
                .await
                .into_result()?,
        );
    }
    print_table(&reports);
    if json {
        for report in &reports {
            println!("{}", serde_json::to_string_pretty(report)?);
        }
    }
    Ok(())
}

fn print_table(reports: &[AuditReport]) {
    let fastest = reports.iter().map(|r| r.timings_ms.total).fold(f64::INFINITY, f64::min);
    println!(
        "{:<15} {:>6} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "strategy",
        "limit",
        "listed",
        "fetched",
        "failed",
        "all-users",
        "auth-users",
        "other-acct",
        "list ms",
        "fetch ms",
        "total ms",
        "vs best"
    );
    for r in reports {
        let limit = r.concurrency_limit.map_or_else(|| "none".to_owned(), |n| n.to_string());
        println!(
            "{:<15} {:>6} {:>7} {:>7} {:>6} {:>9} {:>10} {:>10} {:>9.1} {:>9.1} {:>9.1} {:>7.2}x",
            r.strategy.name(),
            limit,
            r.objects_listed,
            r.acls_fetched,
            r.failures.count,
            r.audit.readable_by_all_users.count,
            r.audit.readable_by_authenticated_users.count,
            r.audit.granted_to_other_accounts.count,
            r.timings_ms.list,
            r.timings_ms.fetch,
            r.timings_ms.total,
            r.timings_ms.total / fastest,
        );
    }
    println!(
        "(embedded endpoint on loopback: no network latency or TLS, so these compare CPU cost and scheduling only)"
    );
}

async fn endpoint_throughput(requests: usize, concurrency: NonZeroUsize) -> anyhow::Result<()> {
    const BUCKET: &str = "throughput";
    const OBJECTS: usize = 100;
    let (_s3, client) = seeded_endpoint(BUCKET, OBJECTS).await?;
    let keys: Vec<String> = (0..requests).map(|i| seed_key(i % OBJECTS)).collect();
    let started = Instant::now();
    let mut tally = Tally::default();
    let strategy = Strategy::JoinAll {
        in_flight: InFlight::Fixed(concurrency),
    };
    fetch_acls(
        &client,
        BUCKET,
        futures::stream::iter([keys]),
        strategy,
        None,
        |outcome| tally.add(outcome),
    )
    .await;
    let elapsed = started.elapsed();
    println!(
        "local-s3: {requests} GetObjectAcl requests, {concurrency} in flight, in {:.2} s: {:.0} requests/s ({} failed; client and server share this machine's {} cores)",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        tally.failures.count,
        std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
    );
    anyhow::ensure!(
        tally.failures.count == 0,
        "the endpoint failed requests: {:?}",
        tally.failures.by_code
    );
    Ok(())
}
