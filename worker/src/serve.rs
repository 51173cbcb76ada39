//! Serving the queue: apalis workers over the SQLite queue, a liveness heartbeat, graceful
//! shutdown.

use crate::execute::{JobContext, Outcome, execute_one};
use apalis::prelude::*;
use apalis_sqlite::SqlitePool;
use shared::queue::{self, MasterTask};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How a queue worker is set up.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Stable name: a restarted worker with the same name reclaims its orphaned job.
    pub name: String,
    /// Jobs run at once by this worker.
    pub concurrency: usize,
    /// Queue heartbeat; a worker silent for two periods is presumed dead.
    pub heartbeat: Duration,
}

/// The apalis handler: runs the job and maps its outcome onto the queue's vocabulary.
/// Permanent failures are `AbortError` (never retried); an infrastructure error is an
/// ordinary error, retried by the queue after a pause (the attempt guard bounds it).
async fn handle(task: MasterTask, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("job", job_id = %task.job_id);
    match execute_one(&ctx, &task.job_id).instrument(span).await {
        Ok(Outcome::Done | Outcome::Skipped) => Ok(()),
        Ok(Outcome::Failed(msg)) => Err(AbortError::new(msg).into()),
        Err(e) => {
            tracing::error!(job_id = %task.job_id, error = %e, "job could not be recorded");
            tokio::time::sleep(Duration::from_secs(2)).await;
            Err(e.into())
        }
    }
}

/// Runs one queue worker until `shutdown` is cancelled; running jobs are finished first.
/// If the queue refuses the worker (its name was alive a moment ago: a quick restart after a
/// crash), it waits a heartbeat and tries again, then reclaims its orphaned job.
pub async fn run_worker(
    ctx: JobContext,
    queue_pool: SqlitePool,
    options: WorkerOptions,
    shutdown: CancellationToken,
) {
    let mut ctx = ctx;
    ctx.worker_name = options.name.clone();
    let heartbeats = tokio::spawn(heartbeat_loop(
        ctx.clone(),
        options.heartbeat,
        shutdown.clone(),
    ));
    while !shutdown.is_cancelled() {
        let storage =
            queue::storage(&queue_pool, options.heartbeat).poll_with_interval(queue::POLL_INTERVAL);
        let worker = WorkerBuilder::new(options.name.clone())
            .backend(storage)
            .concurrency(options.concurrency.max(1))
            .data(ctx.clone())
            .build(handle);
        let token = shutdown.clone();
        let signal = async move {
            token.cancelled().await;
            Ok::<(), std::io::Error>(())
        };
        tracing::info!(worker = %options.name, "worker serving queue {}", queue::QUEUE_NAME);
        match worker.run_until(signal).await {
            Ok(()) => {}
            Err(e) => {
                let wait = options.heartbeat + Duration::from_secs(1);
                tracing::warn!(worker = %options.name, error = %e, ?wait, "worker stopped, restarting");
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    let _ = heartbeats.await;
    if let Err(e) = shared::heartbeats::remove(&ctx.db, &options.name).await {
        tracing::warn!(error = %e, "could not remove heartbeat row");
    }
    tracing::info!(worker = %options.name, "worker stopped");
}

async fn heartbeat_loop(ctx: JobContext, every: Duration, shutdown: CancellationToken) {
    let started = chrono::Utc::now();
    let pid = std::process::id();
    loop {
        if let Err(e) = shared::heartbeats::beat(&ctx.db, &ctx.worker_name, pid, started).await {
            tracing::warn!(error = %e, "heartbeat write failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// A default worker name: `<hostname>-<pid>`.
pub fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}
