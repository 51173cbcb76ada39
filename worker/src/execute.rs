//! Running one mastering job: claim the row, master the file off the async executor,
//! write progress and the outcome back. Used by the queue handler, by tests and by the
//! API's embedded workers.

use deadpool_sqlite::Pool;
use mastering::{MasterError, MasterReport, Progress};
use serde_json::json;
use shared::jobs::{self, JobRow};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Minimum time between two progress writes of one job (stage changes are always written).
pub const PROGRESS_WRITE_INTERVAL: Duration = Duration::from_millis(300);

/// What a worker needs to run jobs.
#[derive(Clone)]
pub struct JobContext {
    /// App database.
    pub db: Pool,
    /// Data directory (uploads, results).
    pub data_dir: PathBuf,
    /// Runs of one job before it is failed for good.
    pub max_attempts: u32,
    /// Name recorded on the job row.
    pub worker_name: String,
    /// Set to stop running DSP at the next block.
    pub cancel: Arc<AtomicBool>,
    /// Where a final failure is reported (Telegram; disabled by default).
    pub alerts: shared::alerts::Alerts,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("data_dir", &self.data_dir)
            .field("max_attempts", &self.max_attempts)
            .field("worker_name", &self.worker_name)
            .finish_non_exhaustive()
    }
}

/// How a job ended in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Mastered; the row is `done`.
    Done,
    /// Failed for good; the row is `failed` with this message.
    Failed(String),
    /// Nothing to do: the job is unknown or was already finished (e.g. by another worker).
    Skipped,
}

/// A problem that kept the job from being recorded at all (database unavailable…).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InfrastructureError(pub String);

impl From<shared::db::DbError> for InfrastructureError {
    fn from(e: shared::db::DbError) -> Self {
        InfrastructureError(e.to_string())
    }
}

/// Delay before retry number `attempt` (1-based) after a transient error.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(5)).min(Duration::from_secs(30))
}

/// Runs job `job_id` to its end: claims it (attempt guard first), masters it, records the
/// result. Permanent errors fail the job at once; transient ones (I/O) are retried here
/// with backoff until `max_attempts` runs have been made.
pub async fn execute_one(ctx: &JobContext, job_id: &str) -> Result<Outcome, InfrastructureError> {
    loop {
        let Some(job) = jobs::claim(&ctx.db, job_id, &ctx.worker_name).await? else {
            tracing::info!(job_id, "job unknown or already finished, skipping");
            return Ok(Outcome::Skipped);
        };
        if job.attempts > ctx.max_attempts {
            let msg = format!(
                "gave up after {} attempts: processing this file stopped the worker each time",
                ctx.max_attempts
            );
            if jobs::finish_failed(&ctx.db, job_id, &msg).await? {
                tracing::error!(
                    job_id,
                    attempts = job.attempts,
                    error = %msg,
                    "job failed: attempt guard"
                );
                alert_failure(ctx, &job, &msg);
            }
            return Ok(Outcome::Failed(msg));
        }
        tracing::info!(
            job_id,
            attempt = job.attempts,
            style = job.params.style.name(),
            "mastering"
        );
        let result = if job.input_path.is_file() {
            run_chain(ctx, &job).await
        } else {
            Err(MasterError::Unsupported(format!(
                "the uploaded file is missing from the server ({})",
                job.input_path.display()
            )))
        };
        match result {
            Ok((result_path, report)) => {
                let (before, after) = measurements(&report);
                if jobs::finish_done(&ctx.db, job_id, result_path, before, after).await? {
                    tracing::info!(job_id, "job done");
                    return Ok(Outcome::Done);
                }
                tracing::warn!(job_id, "job was finished elsewhere meanwhile");
                return Ok(Outcome::Skipped);
            }
            Err(e) if e.is_permanent() || job.attempts >= ctx.max_attempts => {
                let msg = e.to_string();
                if jobs::finish_failed(&ctx.db, job_id, &msg).await? {
                    tracing::error!(job_id, attempts = job.attempts, error = %msg, "job failed");
                    alert_failure(ctx, &job, &msg);
                }
                return Ok(Outcome::Failed(msg));
            }
            Err(e) => {
                let wait = backoff(job.attempts);
                tracing::warn!(job_id, error = %e, ?wait, "transient error, retrying");
                let note = format!("Temporary problem ({e}); retrying in {} s", wait.as_secs());
                jobs::set_message(&ctx.db, job_id, &note).await?;
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Reports a job's final failure (sent in the background: never delays the job).
fn alert_failure(ctx: &JobContext, job: &JobRow, error: &str) {
    ctx.alerts.send(
        shared::alerts::AlertKind::JobFailed,
        format!(
            "❌ Magic Master job failed\njob: {}\nfile: {}\nstyle: {}\nattempts: {}\nerror: {}",
            job.id,
            job.original_name,
            job.params.style.name(),
            job.attempts,
            error
        ),
    );
}

/// Input and output measurements as stored on the job row.
pub fn measurements(report: &MasterReport) -> (serde_json::Value, serde_json::Value) {
    let before = json!({
        "lufs": report.before.lufs,
        "true_peak_db": report.before.true_peak_db,
        "sample_peak_db": report.before.sample_peak_db,
        "lra": report.before.lra,
        "duration_sec": report.duration_sec,
        "sample_rate": report.sample_rate,
        "channels": report.channels,
    });
    let after = json!({
        "lufs": report.after.lufs,
        "true_peak_db": report.after.true_peak_db,
        "sample_peak_db": report.after.sample_peak_db,
        "lra": report.after.lra,
    });
    (before, after)
}

/// The download name of a job's result: `<original base>_mastered.<ext>`.
pub fn result_file_name(job: &JobRow) -> String {
    format!(
        "{}_mastered.{}",
        shared::paths::safe_base_name(&job.original_name),
        job.params.format.extension()
    )
}

/// Masters the job's upload into its results directory: writes a temporary file, then
/// renames it, so the result appears complete or not at all.
async fn run_chain(ctx: &JobContext, job: &JobRow) -> Result<(PathBuf, MasterReport), MasterError> {
    let dir = shared::paths::result_dir(&ctx.data_dir, &job.id);
    tokio::fs::create_dir_all(&dir).await?;
    remove_partials(&dir).await;
    let ext = job.params.format.extension();
    let final_path = dir.join(result_file_name(job));
    let temp_path = dir.join(format!(".partial-{}.{ext}", uuid::Uuid::new_v4().simple()));

    let (tx, rx) = mpsc::unbounded_channel::<Progress>();
    let writer = tokio::spawn(write_progress(ctx.db.clone(), job.id.clone(), rx));
    let input = job.input_path.clone();
    let params = job.params;
    let cancel = ctx.cancel.clone();
    let temp = temp_path.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut on_progress = |p: Progress| {
            let _ = tx.send(p);
        };
        mastering::master_file(&input, &temp, &params, &mut on_progress, &cancel)
    })
    .await;
    // The sender was moved into the closure and is dropped with it: the writer drains and ends.
    let _ = writer.await;
    let outcome = match result {
        Ok(Ok(report)) => match tokio::fs::rename(&temp_path, &final_path).await {
            Ok(()) => Ok((final_path, report)),
            Err(e) => Err(MasterError::Io(e)),
        },
        Ok(Err(e)) => Err(e),
        Err(join) => Err(MasterError::Corrupt(format!(
            "internal error while mastering: {join}"
        ))),
    };
    if outcome.is_err() {
        remove_quietly(&temp_path).await;
    }
    outcome
}

/// Removes `.partial-*` files left in a result directory by an interrupted earlier run.
async fn remove_partials(dir: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_name().to_string_lossy().starts_with(".partial-") {
            remove_quietly(&entry.path()).await;
        }
    }
}

async fn remove_quietly(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove temp file");
    }
}

/// Writes progress to the job row: every stage change, otherwise at most every
/// [`PROGRESS_WRITE_INTERVAL`].
async fn write_progress(db: Pool, job_id: String, mut rx: mpsc::UnboundedReceiver<Progress>) {
    let mut last_stage = None;
    let mut last_write = Instant::now() - PROGRESS_WRITE_INTERVAL;
    let mut last_percent = u8::MAX;
    let mut pending: Option<Progress> = None;
    loop {
        let next = if pending.is_some() {
            match tokio::time::timeout(PROGRESS_WRITE_INTERVAL, rx.recv()).await {
                Ok(p) => p,
                Err(_) => pending.take(),
            }
        } else {
            rx.recv().await
        };
        let Some(p) = next else { break };
        let percent = (p.fraction.clamp(0.0, 1.0) * 99.0).round() as u8;
        let stage_changed = last_stage != Some(p.stage);
        if !stage_changed
            && (percent == last_percent || last_write.elapsed() < PROGRESS_WRITE_INTERVAL)
        {
            if percent != last_percent {
                pending = Some(p);
            }
            continue;
        }
        pending = None;
        if let Err(e) = jobs::set_progress(&db, &job_id, percent, p.stage.message()).await {
            tracing::warn!(job_id, error = %e, "progress write failed");
        }
        last_stage = Some(p.stage);
        last_percent = percent;
        last_write = Instant::now();
    }
}
