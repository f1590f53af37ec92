//! The parent side of the benchmark: an HTTPS `local-s3` process with the network model,
//! and for each memory size and variant, child processes in a CPU cgroup of that size.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use acl_audit::StrategyKind;
use acl_audit_lambda::Config;
use acl_audit_lambda::config::{BLOCKING_POOL_SIZE, LAMBDA_MEMORY_SIZE, MAX_IN_FLIGHT, WARM_CONNECTIONS};
use anyhow::{Context as _, bail};
use local_s3::NetworkModel;
use serde::{Deserialize, Serialize};

use crate::cores::{self, CorePlan};
use crate::cpu_limit::{CpuCgroup, CpuController, cpu_share};
use crate::invoke::{ChildReport, Start};
use crate::lambda_child::{FunctionRun, InitCpu};
use crate::stats::{Sample, Summary, floor_ms, percentile};

pub const BUCKET: &str = "bench";
/// The sweep's cgroups are `acl-bench-<pid>-<MB>mb`: the pid tells whose they are.
const CGROUP_PREFIX: &str = "acl-bench-";

/// What runs in a benchmark child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Variant {
    /// One of our strategies, configured as a function would be; `max_in_flight` is
    /// `join-all`'s `MAX_IN_FLIGHT` (`None` leaves the function's default).
    Rust {
        strategy: StrategyKind,
        max_in_flight: Option<usize>,
    },
    /// One of the seed's Python functions (`peers/python/seed_functions.py`).
    Python { function: PythonPeer },
    /// The write-up's Node.js baseline and its serial twin (`peers/node/bench_child.mjs`).
    Node { function: NodePeer },
}

/// The Node.js peers on the AWS SDK for JavaScript v3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodePeer {
    /// `Promise.all` over every GetObjectAcl, the write-up's opening example.
    PromiseAll,
    Serial,
}

impl NodePeer {
    pub const ALL: [NodePeer; 2] = [NodePeer::Serial, NodePeer::PromiseAll];

    pub fn name(self) -> &'static str {
        match self {
            NodePeer::PromiseAll => "node-promise-all",
            NodePeer::Serial => "node-serial",
        }
    }
}

/// The seed's three functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PythonPeer {
    Serial,
    Executor,
    Aioboto3,
}

impl PythonPeer {
    pub const ALL: [PythonPeer; 3] = [PythonPeer::Serial, PythonPeer::Executor, PythonPeer::Aioboto3];

    pub fn name(self) -> &'static str {
        match self {
            PythonPeer::Serial => "python-serial",
            PythonPeer::Executor => "python-executor",
            PythonPeer::Aioboto3 => "python-aioboto3",
        }
    }
}

impl Variant {
    pub fn label(&self) -> String {
        match self {
            Variant::Rust {
                strategy: StrategyKind::JoinAll,
                max_in_flight: Some(0),
            } => "join-all/unbounded".to_owned(),
            Variant::Rust {
                strategy: StrategyKind::JoinAll,
                max_in_flight: Some(cap),
            } => format!("join-all/{cap}"),
            Variant::Rust { strategy, .. } => strategy.name().to_owned(),
            Variant::Python { function } => function.name().to_owned(),
            Variant::Node { function } => function.name().to_owned(),
        }
    }

    /// Calls in flight at most: for our strategies, what the child's configuration resolves
    /// from the same variables it is given.
    fn concurrency(&self, objects: usize, memory_mb: u32) -> anyhow::Result<usize> {
        let pool = acl_audit::strategy::default_blocking_pool_size().get();
        Ok(match self {
            Variant::Rust {
                strategy,
                max_in_flight,
            } => {
                let config = Config::from_vars(|name| match name {
                    MAX_IN_FLIGHT => max_in_flight.map(|cap| cap.to_string()),
                    BLOCKING_POOL_SIZE => Some(pool.to_string()),
                    LAMBDA_MEMORY_SIZE => Some(memory_mb.to_string()),
                    _ => None,
                })?;
                config.strategy(*strategy).concurrency_limit().unwrap_or(objects)
            }
            Variant::Python {
                function: PythonPeer::Serial,
            } => 1,
            // Python's default executor has min(32, CPUs + 4) threads, like our blocking pool.
            Variant::Python {
                function: PythonPeer::Executor,
            } => pool,
            Variant::Python {
                function: PythonPeer::Aioboto3,
            } => objects,
            Variant::Node {
                function: NodePeer::Serial,
            } => 1,
            // Every call is sent at once; the SDK's agent opens at most 50 sockets per host.
            Variant::Node {
                function: NodePeer::PromiseAll,
            } => objects.min(NODE_MAX_SOCKETS),
        })
    }

    /// A peer's command, with an empty environment but for the variant's own settings (our
    /// strategies run as the functions' own binaries: [`FunctionRun`]).
    fn command(&self, peers: &Peers) -> anyhow::Result<Command> {
        match self {
            Variant::Rust { .. } => bail!("{} runs as its function's binary", self.label()),
            Variant::Python { function } => {
                let python =
                    (peers.python.as_ref()).with_context(|| format!("{} needs the Python peers", function.name()))?;
                let mut command = Command::new(&python.interpreter);
                command
                    .env_clear()
                    .arg(python.dir.join("bench_child.py"))
                    .args(["--function", function.name()]);
                Ok(command)
            }
            Variant::Node { function } => {
                let node =
                    (peers.node.as_ref()).with_context(|| format!("{} needs the Node.js peers", function.name()))?;
                let mut command = Command::new(&node.interpreter);
                command
                    .env_clear()
                    // The SDK warns on every start that its releases from 2027 need Node 22.
                    .env("AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED", "true")
                    .arg(node.dir.join("bench_child.mjs"))
                    .args(["--function", function.name()]);
                Ok(command)
            }
        }
    }
}

/// The AWS SDK for JavaScript v3's default `maxSockets` (its NodeHttpHandler).
const NODE_MAX_SOCKETS: usize = 50;

/// The peers a sweep can run, each where it was found.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    pub python: Option<PythonPeers>,
    pub node: Option<NodePeers>,
}

/// Where the Node.js peers live and which `node` runs them.
#[derive(Debug, Clone)]
pub struct NodePeers {
    pub interpreter: PathBuf,
    pub dir: PathBuf,
}

impl NodePeers {
    /// The peers when `interpreter` runs and `dir` has the SDK installed, else why not.
    pub fn find(interpreter: &Path, dir: &Path) -> Result<Self, String> {
        if !dir.join("bench_child.mjs").exists() {
            return Err(format!("{} holds no bench_child.mjs", dir.display()));
        }
        if !dir.join("node_modules/@aws-sdk/client-s3/package.json").exists() {
            return Err(format!("{} has no @aws-sdk/client-s3 installed", dir.display()));
        }
        match Command::new(interpreter)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(status) if status.success() => Ok(NodePeers {
                interpreter: interpreter.to_owned(),
                dir: dir.to_owned(),
            }),
            Ok(status) => Err(format!("{} --version failed ({status})", interpreter.display())),
            Err(err) => Err(format!("cannot run {} ({err})", interpreter.display())),
        }
    }
}

/// Where the Python peers live and which interpreter has boto3 and aioboto3.
#[derive(Debug, Clone)]
pub struct PythonPeers {
    pub interpreter: PathBuf,
    pub dir: PathBuf,
}

impl PythonPeers {
    /// The peers when `interpreter` can import boto3 and aioboto3, else why not.
    pub fn find(interpreter: &Path, dir: &Path) -> Result<Self, String> {
        if !dir.join("bench_child.py").exists() {
            return Err(format!("{} holds no bench_child.py", dir.display()));
        }
        let imports = Command::new(interpreter)
            .args(["-c", "import boto3, aioboto3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match imports {
            Ok(status) if status.success() => Ok(PythonPeers {
                interpreter: interpreter.to_owned(),
                dir: dir.to_owned(),
            }),
            Ok(_) => Err(format!("{} cannot import boto3 and aioboto3", interpreter.display())),
            Err(err) => Err(format!("cannot run {} ({err})", interpreter.display())),
        }
    }
}

/// Where the children send their requests.
#[derive(Debug, Clone)]
pub enum EndpointChoice {
    /// A local-s3 process started for the sweep: HTTPS, its bucket seeded, this network model.
    Embedded { network: NetworkModel },
    /// Any S3 endpoint (moto, MinIO, S3 itself), reached with the user's own AWS configuration;
    /// its network is whatever it is, so no floor is computed.
    External { url: String, bucket: String },
}

#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub memory_sizes: Vec<u32>,
    pub variants: Vec<Variant>,
    /// Objects in the bucket: seeded on the embedded endpoint, counted on an external one.
    pub objects: usize,
    pub runs: usize,
    pub start: Start,
    pub endpoint: EndpointChoice,
    /// Where the peers (Python, Node.js) run, when there are any.
    pub peers: Peers,
    /// Every seeded object public-read, and the children writing each finding to the
    /// endpoint's `findings` bucket (FINDINGS_URI): the memory a findings file costs.
    pub findings: bool,
    /// The CPU the functions' init runs with.
    pub init_cpu: InitCpu,
    /// How long a `thawed` function stays frozen between invocations.
    pub idle: Duration,
    /// The functions' `WARM_CONNECTIONS`; `None` leaves their default.
    pub warm_connections: Option<usize>,
}

/// One (memory size, variant) cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub memory_mb: u32,
    pub variant: String,
    pub concurrency: usize,
    pub summary: Summary,
    pub init_ms: f64,
    /// Cold starts: the p50 of the first invocation alone, from the event's hand-out to its
    /// answer (Lambda's Duration; the sample's wall time is init plus this).
    #[serde(default)]
    pub first_invocation_p50_ms: Option<f64>,
    pub peak_rss_kb: u64,
    /// p50 over the fastest variant's p50 at this memory size.
    pub vs_fastest: f64,
    /// p50 over the least time the network model allows; `None` on an external endpoint.
    pub vs_floor: Option<f64>,
    pub floor_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepResult {
    pub objects: usize,
    pub runs: usize,
    pub start: Start,
    /// `local-s3` (embedded), or the external endpoint's URL.
    #[serde(default = "embedded_endpoint_name")]
    pub endpoint: String,
    /// The network model's settings; `None` on an external endpoint.
    pub rtt_ms: Option<f64>,
    pub service_ms: Option<f64>,
    pub handshake_rtts: Option<u32>,
    /// How the memory sizes' CPU shares were enforced, or why they were not.
    pub cpu_limit: String,
    /// Which CPUs the endpoint and the children ran on; `None`: wherever the scheduler put them
    /// (one CPU, an external endpoint, or a sweep from before the endpoint had a core of its own).
    #[serde(default)]
    pub cpu_pinning: Option<String>,
    /// Whether every object was a finding written to FINDINGS_URI (`--findings`).
    #[serde(default)]
    pub findings: bool,
    /// The CPU the functions' init ran with; `None`: a sweep from before the functions ran
    /// through the Runtime API.
    #[serde(default)]
    pub init_cpu: Option<InitCpu>,
    /// Seconds a `thawed` function stayed frozen between invocations.
    #[serde(default)]
    pub idle_s: Option<f64>,
    /// The functions' `WARM_CONNECTIONS`, when the sweep set it.
    #[serde(default)]
    pub warm_connections: Option<usize>,
    pub cells: Vec<Cell>,
}

fn embedded_endpoint_name() -> String {
    "local-s3".to_owned()
}

/// A child process killed when dropped, so that no server outlives the benchmark.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the children talk to: the environment they need and, for the embedded endpoint, the
/// local-s3 process and the CA file it wrote. Dropping it stops the process and removes the
/// file, however the sweep ends.
struct Endpoint {
    process: Option<Reaped>,
    ca_file: Option<PathBuf>,
    env: Vec<(String, String)>,
    bucket: String,
    /// Whether the children may read the user's AWS configuration (credentials, profile).
    uses_own_aws_config: bool,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(ca_file) = &self.ca_file {
            let _ = std::fs::remove_file(ca_file);
        }
    }
}

impl Endpoint {
    /// The port the children's S3 requests go to.
    fn port(&self) -> u16 {
        let url = self
            .env
            .iter()
            .find(|(name, _)| name == "AWS_ENDPOINT_URL")
            .map_or("", |(_, url)| url.as_str());
        let authority = url.split("://").nth(1).unwrap_or("").split('/').next().unwrap_or("");
        authority
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or(if url.starts_with("http://") { 80 } else { 443 })
    }

    /// Has the embedded endpoint close every idle connection (SIGUSR1), as S3 closes a pool
    /// left unused; an external endpoint cannot be told to.
    fn close_idle_connections(&self) -> anyhow::Result<()> {
        let process = self
            .process
            .as_ref()
            .context("--start empty-pool closes the endpoint's connections: the embedded local-s3 only")?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(process.0.id()).context("a pid out of range")?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).context("cannot signal local-s3")?;
        Ok(())
    }

    fn external(url: &str, bucket: &str) -> Self {
        // The user's own AWS settings (keys, profile, region, CA bundle) reach the children.
        let mut env: Vec<(String, String)> = std::env::vars()
            .filter(|(name, _)| name.starts_with("AWS_") || name == "HOME")
            .collect();
        env.push(("AWS_ENDPOINT_URL".to_owned(), url.to_owned()));
        Endpoint {
            process: None,
            ca_file: None,
            env,
            bucket: bucket.to_owned(),
            uses_own_aws_config: true,
        }
    }
}

/// Nothing from the user's own AWS set-up reaches children of the embedded endpoint.
const NO_AWS_CONFIG: [(&str, &str); 3] = [
    ("AWS_CONFIG_FILE", "/nonexistent/aws/config"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// The embedded endpoint's bucket for `--findings`.
const FINDINGS_BUCKET: &str = "findings";

fn start_endpoint(
    binary_dir: &Path,
    objects: usize,
    network: NetworkModel,
    cores: Option<&CorePlan>,
    findings: bool,
) -> anyhow::Result<Endpoint> {
    let binary = binary_dir.join("local-s3");
    let ca_file = std::env::temp_dir().join(format!("acl-bench-{}-ca.pem", std::process::id()));
    let mut command = Command::new(&binary);
    if let Some(cores) = cores {
        cores::pin(&mut command, cores.endpoint()).context("cannot pin local-s3 to its CPU")?;
    }
    let mut process = Reaped(
        command
            .args(["--port", "0", "--tls", "--seed-bucket", BUCKET])
            .args(["--objects", &objects.to_string()])
            .args(["--ca-bundle-out", &ca_file.display().to_string()])
            .args(["--rtt-ms", &(network.rtt.as_secs_f64() * 1e3).to_string()])
            .args(["--service-ms", &(network.service_time.as_secs_f64() * 1e3).to_string()])
            .args(["--handshake-rtts", &network.handshake_rtts.to_string()])
            .args(["--print-env", "json"])
            .args(if findings {
                &["--seed-acl", "public-read", "--create-bucket", FINDINGS_BUCKET][..]
            } else {
                &[]
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {} (run `make bench`, which builds it)", binary.display()))?,
    );
    let stdout = process.0.stdout.take().context("local-s3's stdout")?;
    // From here on, dropping `endpoint` on an error also removes the CA file.
    let mut endpoint = Endpoint {
        process: Some(process),
        ca_file: Some(ca_file),
        env: Vec::new(),
        bucket: BUCKET.to_owned(),
        uses_own_aws_config: false,
    };
    // One line once it serves: {"AWS_ENDPOINT_URL": …, "AWS_CA_BUNDLE": …, …}; none if it exited.
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading local-s3's output")?;
    if line.is_empty() {
        bail!("local-s3 exited before serving (is port binding allowed here?)");
    }
    let env: BTreeMap<String, String> =
        serde_json::from_str(&line).with_context(|| format!("unexpected output from local-s3: {line:?}"))?;
    endpoint.env.extend(env);
    if findings {
        endpoint
            .env
            .push(("FINDINGS_URI".to_owned(), format!("s3://{FINDINGS_BUCKET}/bench/")));
    }
    Ok(endpoint)
}

/// Runs the sweep; `progress` is told about each finished cell.
pub fn run(options: &SweepOptions, mut progress: impl FnMut(&Cell)) -> anyhow::Result<SweepResult> {
    let binary_dir = std::env::current_exe()
        .context("cannot find this executable")?
        .parent()
        .context("this executable has no directory")?
        .to_owned();
    let (endpoint, network, cores) = match &options.endpoint {
        EndpointChoice::Embedded { network } => {
            // Only an endpoint on this machine competes with the children for its CPUs.
            let cores = CorePlan::for_this_process();
            let endpoint = start_endpoint(&binary_dir, options.objects, *network, cores.as_ref(), options.findings)?;
            (endpoint, Some(*network), cores)
        }
        EndpointChoice::External { url, bucket } => (Endpoint::external(url, bucket), None, None),
    };
    let controller = CpuController::detect();
    for group in controller.remove_abandoned(CGROUP_PREFIX) {
        eprintln!("removed {}, left by an interrupted sweep", group.display());
    }
    let mut cells = Vec::new();
    for &memory_mb in &options.memory_sizes {
        let name = format!("{CGROUP_PREFIX}{}-{memory_mb}mb", std::process::id());
        // Unthrottled when no controller exists; the result says so in `cpu_limit`.
        let cgroup = controller.limit(&name, cpu_share(memory_mb)).ok();
        let children_cpus = cores
            .as_ref()
            .and_then(|cores| cores.children_for(cpu_share(memory_mb)));
        let mut size_cells = Vec::new();
        for variant in &options.variants {
            let reports = run_variant(
                &binary_dir,
                &endpoint,
                cgroup.as_ref(),
                children_cpus,
                memory_mb,
                variant,
                options,
            )?;
            let samples: Vec<Sample> = reports.iter().flat_map(|r| r.samples.iter().copied()).collect();
            // A child that audited part of the bucket would be timed on less work.
            if let Some(short) = samples.iter().find(|s| s.acls_fetched + s.failures != options.objects) {
                bail!(
                    "{} at {memory_mb} MB accounted for {} ACLs and {} failures of {} objects",
                    variant.label(),
                    short.acls_fetched,
                    short.failures,
                    options.objects
                );
            }
            let summary = Summary::of(&samples).context("a variant produced no samples")?;
            // What the functions reported (the adaptive cap), else what their settings say.
            let mut reported: Vec<usize> = samples
                .iter()
                .filter_map(|s| s.concurrency_limit.map(|limit| limit.min(options.objects)))
                .collect();
            reported.sort_unstable();
            let concurrency = match reported.get(reported.len() / 2) {
                Some(&median) => median,
                None => variant.concurrency(options.objects, memory_mb)?,
            };
            let floor = network.map(|network| {
                floor_ms(
                    options.objects,
                    concurrency,
                    network.request_delay().as_secs_f64() * 1e3,
                    network.connection_delay().as_secs_f64() * 1e3,
                    options.start.opens_connections(),
                )
            });
            let cell = Cell {
                memory_mb,
                variant: variant.label(),
                concurrency,
                vs_floor: floor.map(|floor| summary.p50_ms / floor),
                floor_ms: floor,
                init_ms: reports.iter().map(|r| r.init_ms).sum::<f64>() / reports.len() as f64,
                first_invocation_p50_ms: (options.start == Start::Cold).then(|| {
                    let mut firsts: Vec<f64> = reports
                        .iter()
                        .flat_map(|r| r.samples.iter().map(|s| s.wall_ms - r.init_ms))
                        .collect();
                    firsts.sort_by(f64::total_cmp);
                    percentile(&firsts, 50.0)
                }),
                peak_rss_kb: reports.iter().map(|r| r.peak_rss_kb).max().unwrap_or(0),
                vs_fastest: 1.0,
                summary,
            };
            progress(&cell);
            size_cells.push(cell);
        }
        let fastest = size_cells
            .iter()
            .map(|c| c.summary.p50_ms)
            .fold(f64::INFINITY, f64::min);
        for cell in &mut size_cells {
            cell.vs_fastest = cell.summary.p50_ms / fastest;
        }
        cells.extend(size_cells);
    }
    Ok(SweepResult {
        objects: options.objects,
        runs: options.runs,
        start: options.start,
        endpoint: match &options.endpoint {
            EndpointChoice::Embedded { .. } => embedded_endpoint_name(),
            EndpointChoice::External { url, .. } => url.clone(),
        },
        rtt_ms: network.map(|n| n.rtt.as_secs_f64() * 1e3),
        service_ms: network.map(|n| n.service_time.as_secs_f64() * 1e3),
        handshake_rtts: network.map(|n| n.handshake_rtts),
        cpu_limit: controller.to_string(),
        cpu_pinning: cores.map(|cores| cores.to_string()),
        findings: options.findings,
        init_cpu: Some(options.init_cpu),
        idle_s: (options.start == Start::Thawed).then_some(options.idle.as_secs_f64()),
        warm_connections: options.warm_connections,
        cells,
    })
}

fn run_variant(
    binary_dir: &Path,
    endpoint: &Endpoint,
    cgroup: Option<&CpuCgroup>,
    cpus: Option<&[usize]>,
    memory_mb: u32,
    variant: &Variant,
    options: &SweepOptions,
) -> anyhow::Result<Vec<ChildReport>> {
    let blocking_pool_size = acl_audit::strategy::default_blocking_pool_size();
    if let Variant::Rust {
        strategy,
        max_in_flight,
    } = variant
    {
        let mut env = endpoint.env.clone();
        env.push(("BUCKET_NAME".to_owned(), endpoint.bucket.clone()));
        // A Lambda VM shows its vCPUs whatever its memory size; std would read the cgroup
        // quota instead and see one.
        env.push((BLOCKING_POOL_SIZE.to_owned(), blocking_pool_size.to_string()));
        if let Some(cap) = max_in_flight {
            env.push((MAX_IN_FLIGHT.to_owned(), cap.to_string()));
        }
        if let Some(count) = options.warm_connections {
            env.push((WARM_CONNECTIONS.to_owned(), count.to_string()));
        }
        if !endpoint.uses_own_aws_config {
            for (name, value) in NO_AWS_CONFIG {
                env.push((name.to_owned(), value.to_owned()));
            }
        }
        let function = FunctionRun {
            binary: binary_dir.join(strategy.name()),
            env,
            memory_mb,
            cgroup,
            cpus,
            init_cpu: options.init_cpu,
            endpoint_port: endpoint.port(),
            close_idle_connections: &|| endpoint.close_idle_connections(),
        };
        return function.run(options.start, options.runs, options.idle);
    }
    let child = |mode: &[&str]| -> anyhow::Result<ChildReport> {
        let mut command = variant.command(&options.peers)?;
        command
            .args(mode)
            .envs(endpoint.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BUCKET_NAME", &endpoint.bucket)
            .env(LAMBDA_MEMORY_SIZE, memory_mb.to_string())
            // A Lambda VM shows its vCPUs whatever its memory size, and so os.cpu_count() for
            // Python; std would read the cgroup quota instead and see one.
            .env(BLOCKING_POOL_SIZE, blocking_pool_size.to_string())
            .stderr(Stdio::inherit());
        if !endpoint.uses_own_aws_config {
            command.envs(NO_AWS_CONFIG);
        }
        if let (Variant::Node { .. }, Some((_, bundle))) =
            (variant, endpoint.env.iter().find(|(name, _)| name == "AWS_CA_BUNDLE"))
        {
            // The SDK for JavaScript does not read AWS_CA_BUNDLE; Node adds this file to its CAs.
            command.env("NODE_EXTRA_CA_CERTS", bundle);
        }
        if let Some(cgroup) = cgroup {
            command.arg("--join-cgroup").arg(cgroup.procs_file());
        }
        if let Some(cpus) = cpus {
            cores::pin(&mut command, cpus).context("cannot pin a benchmark child to its CPUs")?;
        }
        let output = command.output().context("cannot start a benchmark child")?;
        if !output.status.success() {
            bail!(
                "the {} child at {memory_mb} MB failed: {}",
                variant.label(),
                output.status
            );
        }
        serde_json::from_slice(&output.stdout).context("the child's report is not JSON")
    };
    match options.start {
        Start::Cold => (0..options.runs).map(|_| child(&["--start", "cold"])).collect(),
        start => Ok(vec![child(&[
            "--start",
            start.name(),
            "--runs",
            &options.runs.to_string(),
        ])?]),
    }
}

pub fn print_table(result: &SweepResult) {
    let network = match (result.rtt_ms, result.service_ms, result.handshake_rtts) {
        (Some(rtt), Some(service), Some(handshake)) => format!(
            "{}, RTT {rtt} ms + service {service} ms per request, {handshake} round trips per new connection",
            result.endpoint
        ),
        _ => format!("{} (its own network)", result.endpoint),
    };
    println!(
        "{} objects{}, {} runs per cell ({}), {network}; CPU limit: {}; CPUs: {}",
        result.objects,
        if result.findings {
            " (every one public-read, each finding streamed to FINDINGS_URI)"
        } else {
            ""
        },
        result.runs,
        match result.start {
            Start::Warm => "warm: one process, after a warm-up",
            Start::EmptyPool =>
                "empty pool: one process, the endpoint's idle connections closed before each, after a warm-up",
            Start::Cold => "cold: a new process each",
            Start::Thawed => "thawed: one process, frozen between invocations, after a warm-up",
        },
        result.cpu_limit,
        result.cpu_pinning.as_deref().unwrap_or("not pinned")
    );
    println!(
        "{:>6} {:<20} {:>5} {:>9} {:>9} {:>9} {:>8} {:>9} {:>8} {:>6} {:>8} {:>8} {:>8} {:>7} {:>8} {:>7} {:>8}",
        "MB",
        "variant",
        "limit",
        "p50 ms",
        "p95 ms",
        "min ms",
        "ACLs/s",
        "CPU ms",
        "µs/ACL",
        "conns",
        "RSS MB",
        "vs best",
        "vs floor",
        "failed",
        "init ms",
        "retries",
        "1st ms"
    );
    for cell in &result.cells {
        let s = &cell.summary;
        println!(
            "{:>6} {:<20} {:>5} {:>9.1} {:>9.1} {:>9.1} {:>8.0} {:>9.1} {:>8.0} {:>6} {:>8.1} {:>7.2}x {:>8} {:>7} {:>8.1} {:>7} {:>8}",
            cell.memory_mb,
            cell.variant,
            cell.concurrency,
            s.p50_ms,
            s.p95_ms,
            s.min_ms,
            s.acls_per_second,
            s.cpu_ms_per_invocation,
            s.cpu_us_per_acl.unwrap_or(f64::NAN),
            s.connections_per_invocation
                .map_or_else(|| "?".to_owned(), |n| format!("{n:.0}")),
            cell.peak_rss_kb as f64 / 1024.0,
            cell.vs_fastest,
            cell.vs_floor
                .map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.2}x")),
            s.failures,
            cell.init_ms,
            s.retries.map_or_else(|| "?".to_owned(), |n| n.to_string()),
            cell.first_invocation_p50_ms
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1}"))
        );
    }
}

pub fn write_json(result: &SweepResult, path: &PathBuf) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(result)?;
    std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../peers/python")
    }

    #[test]
    fn peers_are_skipped_with_a_reason_when_the_interpreter_is_missing() {
        let reason = PythonPeers::find(Path::new("/nonexistent/python"), &peers_dir()).unwrap_err();
        assert!(reason.starts_with("cannot run /nonexistent/python"), "{reason}");
    }

    #[test]
    fn peers_are_skipped_with_a_reason_when_the_scripts_are_missing() {
        let reason = PythonPeers::find(Path::new("python3"), Path::new("/nonexistent")).unwrap_err();
        assert_eq!(reason, "/nonexistent holds no bench_child.py");
    }

    #[test]
    fn node_peers_are_skipped_with_a_reason_when_the_sdk_is_not_installed() {
        let empty = std::env::temp_dir().join(format!("acl-bench-node-peers-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::write(empty.join("bench_child.mjs"), "").unwrap();
        let reason = NodePeers::find(Path::new("node"), &empty).unwrap_err();
        assert!(reason.ends_with("has no @aws-sdk/client-s3 installed"), "{reason}");
        let reason = NodePeers::find(Path::new("node"), Path::new("/nonexistent")).unwrap_err();
        assert_eq!(reason, "/nonexistent holds no bench_child.mjs");
        std::fs::remove_dir_all(&empty).unwrap();
    }

    #[test]
    fn labels_name_the_cap_and_the_peer() {
        let capped = Variant::Rust {
            strategy: StrategyKind::JoinAll,
            max_in_flight: Some(16),
        };
        let unbounded = Variant::Rust {
            strategy: StrategyKind::JoinAll,
            max_in_flight: Some(0),
        };
        assert_eq!(capped.label(), "join-all/16");
        assert_eq!(unbounded.label(), "join-all/unbounded");
        assert_eq!(unbounded.concurrency(100, 128).unwrap(), 100);
        assert_eq!(capped.concurrency(100, 128).unwrap(), 16);
        let default_join_all = Variant::Rust {
            strategy: StrategyKind::JoinAll,
            max_in_flight: None,
        };
        assert_eq!(
            default_join_all.concurrency(100, 128).unwrap(),
            acl_audit_lambda::config::default_max_in_flight(Some(128)).get()
        );
        assert_eq!(
            Variant::Python {
                function: PythonPeer::Aioboto3
            }
            .label(),
            "python-aioboto3"
        );
        let promise_all = Variant::Node {
            function: NodePeer::PromiseAll,
        };
        assert_eq!(promise_all.label(), "node-promise-all");
        assert_eq!(promise_all.concurrency(100, 128).unwrap(), 50);
    }
}
