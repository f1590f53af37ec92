//! The child side of the benchmark: one process stands for one Lambda execution environment.
//! It builds the client as a function's `main` does and runs the functions' handler.

use std::collections::HashSet;
use std::time::Instant;

use acl_audit::StrategyKind;
use acl_audit::s3::client::client_from_env;
use acl_audit_lambda::Clients;
use acl_audit_lambda::Config;
use anyhow::Context as _;
use lambda_runtime::{Context, LambdaEvent};
use serde::{Deserialize, Serialize};

use crate::stats::Sample;

/// What a child prints, as one JSON line, for its parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildReport {
    /// Process start to a built client: a cold start's init phase.
    pub init_ms: f64,
    pub samples: Vec<Sample>,
    pub peak_rss_kb: u64,
}

/// What state an invocation finds its execution environment in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// One process, one client: after a warm-up, every invocation finds its connections open.
    Warm,
    /// One process, a new client for each invocation: a warm container whose connections have
    /// closed since its last run, as a scheduled run an hour later finds it.
    EmptyPool,
    /// A new process for each invocation: init, an empty pool, one invocation.
    Cold,
    /// One process, frozen between invocations (SIGSTOP, `--idle-s`, SIGCONT) as Lambda
    /// freezes an execution environment, while the endpoint closes connections idle longer
    /// than S3 keeps them: functions' binaries only.
    Thawed,
}

impl Start {
    pub fn name(self) -> &'static str {
        match self {
            Start::Warm => "warm",
            Start::EmptyPool => "empty-pool",
            Start::Cold => "cold",
            Start::Thawed => "thawed",
        }
    }

    /// Whether each invocation opens its connections (and pays their handshakes) itself.
    pub fn opens_connections(self) -> bool {
        self != Start::Warm
    }
}

/// Runs `runs` invocations (one for `Start::Cold`), after one unmeasured warm-up unless cold.
pub async fn run(
    kind: StrategyKind,
    start: Start,
    runs: usize,
    process_started: Instant,
) -> anyhow::Result<ChildReport> {
    let mut client = client_from_env().await.context("cannot build the S3 client")?;
    let config = Config::from_env()?;
    let init_ms = ms(process_started.elapsed());
    let (warmup, runs) = match start {
        Start::Cold => (0, 1),
        Start::Warm | Start::EmptyPool => (1, runs),
        Start::Thawed => anyhow::bail!("only a function's own binary can be frozen and thawed"),
    };
    let mut samples = Vec::with_capacity(runs);
    for index in 0..warmup + runs {
        if start == Start::EmptyPool && index > 0 {
            // Outside the measurement: only the new client's empty pool is the point.
            client = client_from_env().await.context("cannot build the S3 client")?;
        }
        let sockets_before = open_sockets();
        let cpu_before = cpu_time_ms();
        let started = Instant::now();
        let event = LambdaEvent::new(serde_json::json!({}), Context::default());
        let report = acl_audit_lambda::invoke(kind, &Clients::new(&client), &config, event)
            .await
            .into_result()?;
        let (wall_ms, cpu_ms) = match start {
            Start::Cold => (ms(process_started.elapsed()), cpu_time_ms()),
            Start::Warm | Start::EmptyPool | Start::Thawed => (ms(started.elapsed()), cpu_time_ms() - cpu_before),
        };
        let connections_opened = open_sockets()
            .zip(sockets_before)
            .map(|(after, before)| after.difference(&before).count());
        if index >= warmup {
            samples.push(Sample {
                wall_ms,
                cpu_ms,
                acls_fetched: report.acls_fetched,
                failures: report.failures.count,
                connections_opened,
                retries: Some(report.retries),
                concurrency_limit: report.concurrency_limit,
            });
        }
    }
    Ok(ChildReport {
        init_ms,
        samples,
        peak_rss_kb: rusage().map_or(0, |usage| u64::try_from(usage.ru_maxrss).unwrap_or(0)),
    })
}

/// The inodes of this process's open sockets. The client keeps its connections pooled until
/// well after an invocation, so the sockets open after it and not before are the connections
/// it opened. `None` where /proc is missing.
pub fn open_sockets() -> Option<HashSet<u64>> {
    let fds = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter_map(|target| {
                let target = target.to_str()?;
                target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
            })
            .collect(),
    )
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn rusage() -> Option<libc::rusage> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given, which points to
    // memory sized and aligned for one.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    // SAFETY: a zero status means the kernel filled it; it was zeroed before in any case.
    (status == 0).then(|| unsafe { usage.assume_init() })
}

/// User plus system CPU this process has used, in milliseconds.
pub fn cpu_time_ms() -> f64 {
    let time = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    rusage().map_or(0.0, |usage| time(usage.ru_utime) + time(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_time_ms();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        assert!(cpu_time_ms() > before, "{x}");
    }

    #[test]
    fn a_new_connection_is_a_new_open_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let before = open_sockets().unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let after = open_sockets().unwrap();
        assert_eq!(after.difference(&before).count(), 2);
        drop((client, server));
        assert_eq!(open_sockets().unwrap().difference(&before).count(), 0);
    }
}
