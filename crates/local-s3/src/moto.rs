//! `moto_server`, the independent S3 implementation the tests also run against, started as a
//! child process on a loopback port of its own.
//!
//! `make test` installs moto into `.venv-moto` and sets `MOTO_SERVER` to its `moto_server`;
//! without it [`MotoServer::start`] returns `None`, so that a bare `cargo test` needs no Python.
//!
//! The port is picked by binding port 0 and letting it go, so another server can take it
//! before moto binds it. Tests of one binary run side by side, so the pick and the wait for
//! moto to listen are serialised within the process, and a moto that exits before it listens
//! (its port taken meanwhile) is started again on another port.

use std::ffi::OsString;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long moto may take to import and listen (it is slow to start on a loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Ports tried before giving up.
const ATTEMPTS: usize = 5;

static STARTING: Mutex<()> = Mutex::new(());

/// A running `moto_server`, killed when dropped.
pub struct MotoServer {
    child: Child,
    endpoint_url: String,
}

impl MotoServer {
    /// Starts `$MOTO_SERVER`; when the variable is unset, says on stderr that the caller's
    /// moto case is skipped and returns `None`.
    ///
    /// # Panics
    /// When the program cannot be run or does not listen within a minute: a test set-up
    /// failure, reported where it happens.
    pub fn start() -> Option<MotoServer> {
        Self::start_with_env(&[])
    }

    /// The same, with `env` set for moto (`MOTO_PORT`: where its Step Functions interpreter
    /// sends its tasks' calls).
    pub fn start_with_env(env: &[(&str, &str)]) -> Option<MotoServer> {
        let Some(program) = std::env::var_os("MOTO_SERVER") else {
            eprintln!("MOTO_SERVER is unset: skipping this moto_server case (make test runs it)");
            return None;
        };
        // A test that panicked while holding the lock leaves nothing half-done behind it.
        let _starting = STARTING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for _ in 0..ATTEMPTS {
            if let Some(server) = Self::start_on_free_port(&program, env) {
                return Some(server);
            }
        }
        panic!("moto_server ({program:?}) exited before listening, {ATTEMPTS} ports in a row");
    }

    /// `None` when moto exits before it listens (the port was taken meanwhile).
    fn start_on_free_port(program: &OsString, env: &[(&str, &str)]) -> Option<MotoServer> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap_or_else(|err| panic!("no free loopback port: {err}"));
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start MOTO_SERVER={program:?}: {err}"));
        let mut server = MotoServer {
            child,
            endpoint_url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            if server.exited() {
                return None;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Something listens; it is ours only if ours is still running.
                return (!server.exited()).then_some(server);
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "moto_server did not listen on {port} within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint_url(&self) -> &str {
        &self.endpoint_url
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
