//! A benchmark child that is a function's own release binary (`target/release/join-all` …),
//! run as Lambda runs it: its `lambda_runtime` loop asks [`RuntimeApi`] for events, and this
//! side times its init and each invocation from outside, as Lambda's REPORT line does (Init
//! Duration, Duration, Max Memory Used), reading its CPU time, sockets and memory from /proc.
//!
//! Lambda initialises an on-demand function with burst CPU whatever its memory size (see
//! docs/benchmark.md, "Init CPU and warming"): with [`InitCpu::Burst`] the child starts outside its
//! memory size's CPU cgroup and is moved into it when it first asks for an event.

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::cores;
use crate::cpu_limit::CpuCgroup;
use crate::invoke::{ChildReport, Start};
use crate::runtime_api::RuntimeApi;
use crate::stats::Sample;

/// The CPU a child's init runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum InitCpu {
    /// Unthrottled until the first event is asked for, as Lambda's on-demand init.
    Burst,
    /// Inside the memory size's CPU share from the first instruction (provisioned
    /// concurrency's init, and this benchmark's before it modelled the burst).
    Limited,
}

/// How to run one function binary.
pub struct FunctionRun<'a> {
    pub binary: PathBuf,
    /// The function's environment, as the template gives it, without the Runtime API's.
    pub env: Vec<(String, String)>,
    pub memory_mb: u32,
    pub cgroup: Option<&'a CpuCgroup>,
    pub cpus: Option<&'a [usize]>,
    pub init_cpu: InitCpu,
    /// The S3 endpoint's port: sockets to it are the function's S3 connections.
    pub endpoint_port: u16,
    /// What to do to the endpoint's idle connections before an `empty-pool` invocation.
    pub close_idle_connections: &'a dyn Fn() -> anyhow::Result<()>,
}

/// The invocation's timeout as the function sees it (the template's default).
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the parent waits for an init or an answer before giving up on the child.
const PATIENCE: Duration = Duration::from_secs(120);

/// A running function process and its Runtime API.
struct Function {
    child: Child,
    api: RuntimeApi,
    spawned: Instant,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FunctionRun<'_> {
    fn spawn(&self) -> anyhow::Result<Function> {
        let api = RuntimeApi::start().context("cannot serve the Runtime API")?;
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "acl-bench")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", self.memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/acl-bench")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "acl-bench")
            // The functions log to stdout, as on Lambda; their metrics line is not read here.
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let (InitCpu::Limited, Some(cgroup)) = (self.init_cpu, self.cgroup) {
            join_before_exec(&mut command, cgroup.procs_file())?;
        }
        if let Some(cpus) = self.cpus {
            cores::pin(&mut command, cpus).context("cannot pin a function to its CPUs")?;
        }
        let spawned = Instant::now();
        let child = command.spawn().with_context(|| {
            format!(
                "cannot start {} (`make bench` builds the functions: cargo build --release -p {})",
                self.binary.display(),
                self.binary
                    .file_name()
                    .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
            )
        })?;
        Ok(Function { child, api, spawned })
    }

    /// Waits for the function's first poll (its init's end) and moves it into its CPU share.
    fn init(&self, function: &Function) -> anyhow::Result<f64> {
        let polled = function
            .api
            .wait_for_poll(PATIENCE)
            .with_context(|| format!("{} did not finish its init", self.binary.display()))?;
        if let (InitCpu::Burst, Some(cgroup)) = (self.init_cpu, self.cgroup) {
            std::fs::write(cgroup.procs_file(), function.child.id().to_string())
                .with_context(|| format!("cannot move the function into {}", cgroup.path().display()))?;
        }
        Ok(ms(polled - function.spawned))
    }

    fn invoke(&self, function: &Function) -> anyhow::Result<Sample> {
        let pid = function.child.id();
        let sockets_before = s3_sockets(pid, self.endpoint_port);
        let cpu_before = cpu_time_ms(pid);
        let outcome = function
            .api
            .invoke(&serde_json::json!({}), FUNCTION_TIMEOUT, PATIENCE)
            .with_context(|| format!("{} did not answer", self.binary.display()))?;
        let cpu_ms = cpu_time_ms(pid)
            .zip(cpu_before)
            .map_or(0.0, |(after, before)| after - before);
        let connections_opened = s3_sockets(pid, self.endpoint_port)
            .zip(sockets_before)
            .map(|(after, before)| after.difference(&before).count());
        if outcome.error {
            bail!(
                "{} failed: {}",
                self.binary.display(),
                String::from_utf8_lossy(&outcome.body)
            );
        }
        let report: ReportCounts =
            serde_json::from_slice(&outcome.body).context("the function's report is not JSON")?;
        Ok(Sample {
            wall_ms: ms(outcome.duration()),
            cpu_ms,
            acls_fetched: report.acls_fetched,
            failures: report.failures.count,
            connections_opened,
            retries: Some(report.retries),
            concurrency_limit: report.concurrency_limit,
        })
    }

    /// `runs` invocations in the start mode, each a sample; cold: a process per invocation,
    /// its init counted in the sample's wall time.
    pub fn run(&self, start: Start, runs: usize, idle: Duration) -> anyhow::Result<Vec<ChildReport>> {
        if start == Start::Cold {
            return (0..runs)
                .map(|_| {
                    let function = self.spawn()?;
                    let init_ms = self.init(&function)?;
                    let mut sample = self.invoke(&function)?;
                    sample.wall_ms += init_ms;
                    Ok(ChildReport {
                        init_ms,
                        samples: vec![sample],
                        peak_rss_kb: peak_rss_kb(function.child.id()),
                    })
                })
                .collect();
        }
        let function = self.spawn()?;
        let init_ms = self.init(&function)?;
        // The warm-up, unmeasured: the process has run once, as any but a cold start has.
        self.invoke(&function)?;
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            match start {
                Start::Warm | Start::Cold => {}
                Start::EmptyPool => {
                    (self.close_idle_connections)()?;
                    // The function, running, sees its connections close.
                    std::thread::sleep(Duration::from_millis(200));
                }
                Start::Thawed => freeze_for(function.child.id(), idle)?,
            }
            samples.push(self.invoke(&function)?);
        }
        Ok(vec![ChildReport {
            init_ms,
            samples,
            peak_rss_kb: peak_rss_kb(function.child.id()),
        }])
    }
}

/// The report fields the benchmark reads.
#[derive(Deserialize)]
struct ReportCounts {
    acls_fetched: usize,
    failures: FailureCount,
    retries: usize,
    concurrency_limit: Option<usize>,
}

#[derive(Deserialize)]
struct FailureCount {
    count: usize,
}

/// Lambda freezes an execution environment between invocations: SIGSTOP, `idle`, SIGCONT.
fn freeze_for(pid: u32, idle: Duration) -> anyhow::Result<()> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).context("a pid out of range")?);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).context("cannot freeze the function")?;
    std::thread::sleep(idle);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).context("cannot thaw the function")?;
    Ok(())
}

/// Writes the child's own pid into `procs_file` between fork and exec, so that it starts
/// inside the cgroup. Only `open` and `write` run there (async-signal-safe).
fn join_before_exec(command: &mut Command, procs_file: PathBuf) -> anyhow::Result<()> {
    let path =
        std::ffi::CString::new(procs_file.as_os_str().as_encoded_bytes()).context("a cgroup path with a NUL byte")?;
    // SAFETY: the closure calls only async-signal-safe functions (open, write, close) on
    // memory allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // "0": the writing process itself.
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if written != 1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// CPU time of every thread of `pid`, from each one's schedstat (nanoseconds on the CPU):
/// finer than /proc's clock ticks, which count 10 ms at a time.
fn cpu_time_ms(pid: u32) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let ns: u64 = tasks
        .filter_map(|task| {
            let text = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    Some(ns as f64 / 1e6)
}

/// Max Memory Used: the process's peak resident set (VmHWM), in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The inodes of `pid`'s sockets connected to `port` on loopback: its S3 connections, and
/// not its Runtime API's.
fn s3_sockets(pid: u32, port: u16) -> Option<HashSet<u64>> {
    let open: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    let to_port = |table: &Path| -> Vec<u64> {
        let Ok(text) = std::fs::read_to_string(table) else {
            return Vec::new();
        };
        text.lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let remote_port = u16::from_str_radix(fields.get(2)?.rsplit(':').next()?, 16).ok()?;
                (remote_port == port).then(|| fields.get(9)?.parse().ok())?
            })
            .collect()
    };
    let mut s3 = to_port(Path::new(&format!("/proc/{pid}/net/tcp")));
    s3.extend(to_port(Path::new(&format!("/proc/{pid}/net/tcp6"))));
    Some(s3.into_iter().filter(|inode| open.contains(inode)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_to_a_port_are_told_from_others() {
        let s3 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = s3.local_addr().unwrap().port();
        let pid = std::process::id();
        let before = s3_sockets(pid, port).unwrap();
        let _to_s3 = std::net::TcpStream::connect(s3.local_addr().unwrap()).unwrap();
        let _to_other = std::net::TcpStream::connect(other.local_addr().unwrap()).unwrap();
        let after = s3_sockets(pid, port).unwrap();
        assert_eq!(after.difference(&before).count(), 1);
    }

    #[test]
    fn a_process_s_cpu_time_and_peak_memory_are_read_from_proc() {
        let pid = std::process::id();
        let before = cpu_time_ms(pid).unwrap();
        // /proc counts CPU time in clock ticks (10 ms): burn until one passes, within 10 s.
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut x = 0u64;
        while cpu_time_ms(pid).unwrap() <= before {
            assert!(std::time::Instant::now() < give_up, "no CPU time counted: {x}");
            for i in 0..5_000_000u64 {
                x = std::hint::black_box(x.wrapping_add(i));
            }
        }
        assert!(peak_rss_kb(pid) > 0);
    }
}
