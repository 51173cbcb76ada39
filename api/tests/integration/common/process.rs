//! The process-level harness: the release API and worker binaries started as real processes
//! on an [`Env`]'s data directory, for the tests where the process itself matters (restarts,
//! SIGKILL and SIGTERM, several workers, resident memory, start-up refusal, the process's
//! log). Every process started here is watched by the test's [`watchdog`](super::watchdog).

use super::{Env, Logs, client, wait_for};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of a release binary of this workspace.
pub fn api_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_magic-master-api"))
}

/// The worker binary, expected next to the API binary (cargo builds it for the worker
/// crate's own integration tests, so `cargo test --workspace` provides it).
pub fn worker_binary() -> PathBuf {
    let path = api_binary().with_file_name("magic-master-worker");
    assert!(
        path.is_file(),
        "worker binary not found at {}: run `cargo test --workspace --release` \
         (or `cargo build --release -p magic-master-worker` first)",
        path.display()
    );
    path
}

/// A child process killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
    /// Everything it has written to stderr so far.
    pub logs: Logs,
}

impl Proc {
    /// SIGKILL, then reap (waiting at most 30 s: a process stuck in the kernel must not
    /// hang the test; the watchdog reports such a state).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = writeln!(
            std::io::stderr(),
            "{} (pid {}) still not reaped 30 s after SIGKILL",
            self.name,
            self.child.id()
        );
    }

    /// SIGTERM (graceful), then wait up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        // The shell's built-in `kill`: no procps needed.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -TERM {}", self.child.id()))
            .status();
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Resident memory in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Env {
    /// A command for `bin` with exactly this environment's variables, in its directory.
    pub fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.vars)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// A command serving the API binary on [`Env::port`]: the port reserved for an
    /// in-process service is given up, as the process binds it itself.
    pub fn api_command(&self) -> Command {
        self.release_port();
        self.command(&api_binary())
    }

    /// Starts the API binary on [`Env::port`] and waits until `/api/health` answers.
    pub async fn start_api(&self) -> Proc {
        let mut child = self.api_command().spawn().expect("spawn api");
        let logs = self.forward_stderr(&mut child, "api");
        let proc = Proc {
            child,
            name: "api".into(),
            logs,
        };
        let address = format!("127.0.0.1:{}", self.port);
        let client = client();
        let health = format!("{}/api/health", self.base_url());
        wait_for(
            Duration::from_secs(30),
            Duration::from_millis(50),
            // Healthy, and the one answering is ours: another test's API could answer on
            // this port if it was taken between choosing it and binding it.
            async || match client.get(&health).send().await {
                Ok(r)
                    if r.status().is_success() && proc.logs.contains(&["listening", &address]) =>
                {
                    Ok(())
                }
                _ => Err(format!("API did not become healthy on {address}")),
            },
        )
        .await;
        proc
    }

    /// Starts a worker process with a stable name.
    pub fn start_worker(&self, name: &str) -> Proc {
        let mut cmd = self.command(&worker_binary());
        cmd.args(["run", "--name", name]);
        let mut child = cmd.spawn().expect("spawn worker");
        let logs = self.forward_stderr(&mut child, name);
        Proc {
            child,
            name: name.into(),
            logs,
        }
    }

    /// Copies the child's stderr to the test's stderr, prefixed (visible with --nocapture),
    /// and keeps its lines (for the test and the watchdog's report).
    fn forward_stderr(&self, child: &mut Child, label: &str) -> Logs {
        let logs = Logs::default();
        self.watchdog().watch(label, child.id(), logs.clone());
        if let Some(err) = child.stderr.take() {
            let (label, lines) = (label.to_owned(), logs.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    lines.push(&line);
                    eprintln!("[{label}] {line}");
                }
            });
        }
        logs
    }
}
