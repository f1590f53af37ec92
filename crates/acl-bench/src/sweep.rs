//! The parent side of the benchmark: an HTTPS `local-s3` process with the network model,
//! and for each memory size and variant, child processes in a CPU cgroup of that size.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use acl_audit::target::{BLOCKING_POOL_SIZE, MAX_IN_FLIGHT};
use acl_audit::{Config, StrategyKind};
use anyhow::{Context as _, bail};
use local_s3::NetworkModel;
use serde::{Deserialize, Serialize};

use crate::cpu_limit::{CpuCgroup, CpuController, cpu_share};
use crate::invoke::{ChildReport, Start};
use crate::stats::{Sample, Summary, floor_ms};

pub const BUCKET: &str = "bench";

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
        }
    }

    /// Calls in flight at most: for our strategies, what the child's configuration resolves
    /// from the same variables it is given.
    fn concurrency(&self, objects: usize) -> anyhow::Result<usize> {
        let pool = acl_audit::target::default_blocking_pool_size().get();
        Ok(match self {
            Variant::Rust {
                strategy,
                max_in_flight,
            } => {
                let config = Config::from_vars(|name| match name {
                    MAX_IN_FLIGHT => max_in_flight.map(|cap| cap.to_string()),
                    BLOCKING_POOL_SIZE => Some(pool.to_string()),
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
        })
    }

    /// The child's command, with an empty environment but for the variant's own settings.
    fn command(&self, binary_dir: &Path, python: Option<&PythonPeers>) -> anyhow::Result<Command> {
        match self {
            Variant::Rust {
                strategy,
                max_in_flight,
            } => {
                let mut command = Command::new(binary_dir.join("acl-bench"));
                command.env_clear().args(["invoke", "--strategy", strategy.name()]);
                if let Some(cap) = max_in_flight {
                    command.env(MAX_IN_FLIGHT, cap.to_string());
                }
                Ok(command)
            }
            Variant::Python { function } => {
                let python = python.with_context(|| format!("{} needs the Python peers", function.name()))?;
                let mut command = Command::new(&python.interpreter);
                command
                    .env_clear()
                    .arg(python.dir.join("bench_child.py"))
                    .args(["--function", function.name()]);
                Ok(command)
            }
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

#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub memory_sizes: Vec<u32>,
    pub variants: Vec<Variant>,
    pub objects: usize,
    pub runs: usize,
    pub start: Start,
    pub network: NetworkModel,
    /// Where the Python variants run, when there are any.
    pub python: Option<PythonPeers>,
}

/// One (memory size, variant) cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub memory_mb: u32,
    pub variant: String,
    pub concurrency: usize,
    pub summary: Summary,
    pub init_ms: f64,
    pub peak_rss_kb: u64,
    /// p50 over the fastest variant's p50 at this memory size.
    pub vs_fastest: f64,
    /// p50 over the least time the network model allows.
    pub vs_floor: f64,
    pub floor_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepResult {
    pub objects: usize,
    pub runs: usize,
    pub start: Start,
    pub rtt_ms: f64,
    pub service_ms: f64,
    pub handshake_rtts: u32,
    /// How the memory sizes' CPU shares were enforced, or why they were not.
    pub cpu_limit: String,
    pub cells: Vec<Cell>,
}

/// A child process killed when dropped, so that no server outlives the benchmark.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The local-s3 process, the CA file it wrote and the environment its clients need. Dropping
/// it stops the process and removes the file, however the sweep ends.
struct Endpoint {
    _process: Reaped,
    ca_file: PathBuf,
    env: Vec<(String, String)>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

fn start_endpoint(binary_dir: &Path, options: &SweepOptions) -> anyhow::Result<Endpoint> {
    let binary = binary_dir.join("local-s3");
    let ca_file = std::env::temp_dir().join(format!("acl-bench-{}-ca.pem", std::process::id()));
    let network = options.network;
    let mut process = Reaped(
        Command::new(&binary)
            .args(["--port", "0", "--tls", "--seed-bucket", BUCKET])
            .args(["--objects", &options.objects.to_string()])
            .args(["--ca-bundle-out", &ca_file.display().to_string()])
            .args(["--rtt-ms", &(network.rtt.as_secs_f64() * 1e3).to_string()])
            .args(["--service-ms", &(network.service_time.as_secs_f64() * 1e3).to_string()])
            .args(["--handshake-rtts", &network.handshake_rtts.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {} (run `make bench`, which builds it)", binary.display()))?,
    );
    let stdout = process.0.stdout.take().context("local-s3's stdout")?;
    // From here on, dropping `endpoint` on an error also removes the CA file.
    let mut endpoint = Endpoint {
        _process: process,
        ca_file,
        env: Vec::new(),
    };
    for line in BufReader::new(stdout).lines().take(5) {
        let line = line.context("reading local-s3's output")?;
        let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) else {
            bail!("unexpected output from local-s3: {line:?}");
        };
        endpoint.env.push((name.to_owned(), value.to_owned()));
    }
    if !endpoint.env.iter().any(|(name, _)| name == "AWS_CA_BUNDLE") {
        bail!("local-s3 exited before serving (is port binding allowed here?)");
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
    let endpoint = start_endpoint(&binary_dir, options)?;
    let controller = CpuController::detect();
    let mut cells = Vec::new();
    for &memory_mb in &options.memory_sizes {
        let name = format!("acl-bench-{}-{memory_mb}mb", std::process::id());
        // Unthrottled when no controller exists; the result says so in `cpu_limit`.
        let cgroup = controller.limit(&name, cpu_share(memory_mb)).ok();
        let mut size_cells = Vec::new();
        for variant in &options.variants {
            let reports = run_variant(&binary_dir, &endpoint, cgroup.as_ref(), memory_mb, variant, options)?;
            let samples: Vec<Sample> = reports.iter().flat_map(|r| r.samples.iter().copied()).collect();
            let summary = Summary::of(&samples).context("a variant produced no samples")?;
            let concurrency = variant.concurrency(options.objects)?;
            let network = options.network;
            let floor = floor_ms(
                options.objects,
                concurrency,
                network.request_delay().as_secs_f64() * 1e3,
                network.connection_delay().as_secs_f64() * 1e3,
                options.start.opens_connections(),
            );
            let cell = Cell {
                memory_mb,
                variant: variant.label(),
                concurrency,
                vs_floor: summary.p50_ms / floor,
                floor_ms: floor,
                init_ms: reports.iter().map(|r| r.init_ms).sum::<f64>() / reports.len() as f64,
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
        rtt_ms: options.network.rtt.as_secs_f64() * 1e3,
        service_ms: options.network.service_time.as_secs_f64() * 1e3,
        handshake_rtts: options.network.handshake_rtts,
        cpu_limit: controller.to_string(),
        cells,
    })
}

fn run_variant(
    binary_dir: &Path,
    endpoint: &Endpoint,
    cgroup: Option<&CpuCgroup>,
    memory_mb: u32,
    variant: &Variant,
    options: &SweepOptions,
) -> anyhow::Result<Vec<ChildReport>> {
    let host_cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let blocking_pool_size = acl_audit::target::default_blocking_pool_size();
    let child = |mode: &[&str]| -> anyhow::Result<ChildReport> {
        let mut command = variant.command(binary_dir, options.python.as_ref())?;
        command
            .args(mode)
            .envs(endpoint.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BUCKET_NAME", BUCKET)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
            // Nothing from the user's own AWS set-up reaches the children.
            .env("AWS_CONFIG_FILE", "/nonexistent/aws/config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // A Lambda VM shows its vCPUs whatever its memory size, and so os.cpu_count() for
            // Python; std and tokio would read the cgroup quota instead and see one.
            .env("TOKIO_WORKER_THREADS", host_cpus.to_string())
            .env(BLOCKING_POOL_SIZE, blocking_pool_size.to_string())
            .stderr(Stdio::inherit());
        if let Some(cgroup) = cgroup {
            command.arg("--join-cgroup").arg(cgroup.procs_file());
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
    println!(
        "{} objects, {} runs per cell ({}), RTT {} ms + service {} ms per request, {} round trips per new connection; CPU limit: {}",
        result.objects,
        result.runs,
        match result.start {
            Start::Warm => "warm: one process, after a warm-up",
            Start::EmptyPool => "empty pool: one process, a new client each, after a warm-up",
            Start::Cold => "cold: a new process each",
        },
        result.rtt_ms,
        result.service_ms,
        result.handshake_rtts,
        result.cpu_limit
    );
    println!(
        "{:>6} {:<20} {:>5} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "MB",
        "variant",
        "limit",
        "p50 ms",
        "p95 ms",
        "min ms",
        "CPU ms",
        "µs/ACL",
        "RSS MB",
        "vs best",
        "vs floor",
        "failed"
    );
    for cell in &result.cells {
        let s = &cell.summary;
        println!(
            "{:>6} {:<20} {:>5} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8.0} {:>8.1} {:>7.2}x {:>7.2}x {:>7}",
            cell.memory_mb,
            cell.variant,
            cell.concurrency,
            s.p50_ms,
            s.p95_ms,
            s.min_ms,
            s.cpu_ms_per_invocation,
            s.cpu_us_per_acl.unwrap_or(f64::NAN),
            cell.peak_rss_kb as f64 / 1024.0,
            cell.vs_fastest,
            cell.vs_floor,
            s.failures
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
        assert_eq!(unbounded.concurrency(100).unwrap(), 100);
        assert_eq!(capped.concurrency(100).unwrap(), 16);
        let default_join_all = Variant::Rust {
            strategy: StrategyKind::JoinAll,
            max_in_flight: None,
        };
        assert_eq!(
            default_join_all.concurrency(100).unwrap(),
            acl_audit::target::DEFAULT_MAX_IN_FLIGHT
        );
        assert_eq!(
            Variant::Python {
                function: PythonPeer::Aioboto3
            }
            .label(),
            "python-aioboto3"
        );
    }
}
