//! Running one mastering job: claim the row, master the file off the async executor,
//! write progress and the outcome back. Used by the queue handler, by tests and by the
//! API's embedded workers.

use deadpool_sqlite::Pool;
use mastering::{MasterError, MasterReport, Progress};
use shared::jobs::{self, Fault, JobRow};
use shared::measurements::JobMeasurements;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Minimum time between two progress writes of one job (stage changes are always written).
pub const PROGRESS_WRITE_INTERVAL: Duration = Duration::from_millis(300);

/// How often a running job's row is read for its owner's cancel request
/// ([`jobs::cancel_requested`]); the chain then stops at its next progress check.
pub const CANCEL_POLL_INTERVAL: Duration = Duration::from_millis(250);

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
    /// Longest input mastered, seconds (`MAGIC_MASTER_MAX_DURATION_SECONDS`): a longer one
    /// fails at once while decoding, whatever its header says.
    pub max_duration_sec: f64,
    /// Wall-clock time one run of a job may take (`MAGIC_MASTER_JOB_TIMEOUT_SECONDS`):
    /// a run over it is stopped at the next block and the job fails for good.
    pub job_timeout: Duration,
    /// Where a final failure is reported (Telegram; disabled by default).
    pub alerts: shared::alerts::Alerts,
}

impl JobContext {
    /// The context worker `name` runs jobs with: the limits of `settings`, the app database
    /// `db`, failures reported to `alerts`.
    pub fn from_settings(
        settings: &shared::Settings,
        db: Pool,
        alerts: &shared::alerts::Alerts,
        name: &str,
    ) -> JobContext {
        JobContext {
            db,
            data_dir: settings.data_dir.clone(),
            max_attempts: settings.job_max_attempts,
            max_duration_sec: settings.max_duration_seconds as f64,
            job_timeout: Duration::from_secs(settings.job_timeout_seconds),
            worker_name: name.to_owned(),
            alerts: alerts.clone(),
        }
    }
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("data_dir", &self.data_dir)
            .field("max_attempts", &self.max_attempts)
            .field("max_duration_sec", &self.max_duration_sec)
            .field("job_timeout", &self.job_timeout)
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
            if jobs::finish_failed(&ctx.db, job_id, &msg, Fault::Service).await? {
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
        let result = if jobs::cancel_requested(&ctx.db, job_id).await? {
            // Cancelled while it waited for a retry, or before its worker was restarted.
            Err(RunError::Cancelled)
        } else if job.input_path.is_file() {
            run_chain(ctx, &job).await
        } else {
            Err(RunError::Service(format!(
                "the uploaded file is missing from the server ({})",
                job.input_path.display()
            )))
        };
        match result {
            Ok((result_path, report)) => {
                let measured = JobMeasurements::from(&report);
                if jobs::finish_done(&ctx.db, job_id, result_path, &measured).await? {
                    tracing::info!(job_id, "job done");
                    return Ok(Outcome::Done);
                }
                tracing::warn!(job_id, "job was finished elsewhere meanwhile");
                return Ok(Outcome::Skipped);
            }
            Err(RunError::Cancelled) => return finish_cancelled(ctx, job_id).await,
            Err(e) if e.is_permanent() || job.attempts >= ctx.max_attempts => {
                let msg = e.to_string();
                let fault = e.fault();
                if jobs::finish_failed(&ctx.db, job_id, &msg, fault).await? {
                    tracing::error!(job_id, attempts = job.attempts, error = %msg, ?fault, "job failed");
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

/// Fails a job its owner cancelled while it ran (the master counts: see
/// [`Fault::Cancelled`]) and deletes its upload and any result.
async fn finish_cancelled(ctx: &JobContext, job_id: &str) -> Result<Outcome, InfrastructureError> {
    if jobs::finish_failed(&ctx.db, job_id, jobs::CANCELLED_ERROR, Fault::Cancelled).await? {
        tracing::info!(job_id, "job cancelled by its owner");
    }
    let (data_dir, id) = (ctx.data_dir.clone(), job_id.to_owned());
    let removed =
        tokio::task::spawn_blocking(move || shared::paths::remove_job_files(&data_dir, &id)).await;
    if let Ok(Err(e)) | Err(e) = removed.map_err(std::io::Error::other) {
        tracing::warn!(job_id, error = %e, "could not delete a cancelled job's files");
    }
    Ok(Outcome::Failed(jobs::CANCELLED_ERROR.to_owned()))
}

/// Why one run of a job failed.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// The chain failed (see [`MasterError::is_permanent`], [`MasterError::is_input_fault`]).
    #[error("{0}")]
    Master(#[from] MasterError),
    /// The run took longer than [`JobContext::job_timeout`].
    #[error(
        "mastering took longer than the time limit of {} s per job and was stopped",
        .0.as_secs()
    )]
    TimedOut(Duration),
    /// The service could not run the job (its upload vanished, the chain's thread died).
    #[error("{0}")]
    Service(String),
    /// Its owner cancelled it ([`jobs::cancel`]).
    #[error("{}", jobs::CANCELLED_ERROR)]
    Cancelled,
}

impl RunError {
    fn is_permanent(&self) -> bool {
        match self {
            RunError::Master(e) => e.is_permanent(),
            RunError::TimedOut(_) | RunError::Service(_) | RunError::Cancelled => true,
        }
    }

    /// The input's failures count against the quota; the service's are refunded.
    fn fault(&self) -> Fault {
        match self {
            RunError::Master(e) if e.is_input_fault() => Fault::Input,
            RunError::Cancelled => Fault::Cancelled,
            _ => Fault::Service,
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

/// The download name of a job's result: `<original base>_mastered.<ext>`. Used only in
/// `Content-Disposition`: the file itself is stored as `result.<ext>`.
pub fn result_file_name(job: &JobRow) -> String {
    format!(
        "{}_mastered.{}",
        shared::paths::safe_base_name(&job.original_name),
        job.params.format.extension()
    )
}

/// How long a run stopped at its time limit may take to reach its next block before the
/// worker stops waiting for it.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Masters the job's upload into its results directory under the fixed name
/// `result.<ext>` (the client's file name never reaches the file system): writes a
/// temporary file, then renames it, so the result appears complete or not at all. The
/// run is stopped at [`JobContext::job_timeout`], or when its owner cancels it.
async fn run_chain(ctx: &JobContext, job: &JobRow) -> Result<(PathBuf, MasterReport), RunError> {
    let dir = shared::paths::result_dir(&ctx.data_dir, &job.id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(MasterError::Io)?;
    remove_partials(&dir).await;
    let ext = job.params.format.extension();
    let final_path = shared::paths::result_path(&ctx.data_dir, &job.id, ext);
    let temp_path = dir.join(format!(".partial-{}.{ext}", uuid::Uuid::new_v4().simple()));

    let (tx, rx) = mpsc::unbounded_channel::<Progress>();
    let writer = tokio::spawn(write_progress(ctx.db.clone(), job.id.clone(), rx));
    let input = job.input_path.clone();
    let params = job.params;
    // This run's own stop flag: set by the time limit or by the owner's cancel request.
    let stop = Arc::new(AtomicBool::new(false));
    let chain_stop = stop.clone();
    let max_duration = ctx.max_duration_sec;
    let temp = temp_path.clone();
    let mut chain = tokio::task::spawn_blocking(move || {
        let mut on_progress = |p: Progress| {
            let _ = tx.send(p);
        };
        mastering::master_file_within(
            &input,
            &temp,
            &params,
            max_duration,
            &mut on_progress,
            &chain_stop,
        )
    });
    let deadline = tokio::time::Instant::now() + ctx.job_timeout;
    let mut timed_out = false;
    let mut cancelled = false;
    let result = loop {
        tokio::select! {
            r = &mut chain => break Some(r),
            _ = tokio::time::sleep_until(deadline), if !timed_out => {
                timed_out = true;
                stop.store(true, Ordering::Relaxed);
                tracing::warn!(job_id = %job.id, limit = ?ctx.job_timeout, "job over its time limit, stopping it");
                match tokio::time::timeout(STOP_GRACE, &mut chain).await {
                    Ok(r) => break Some(r),
                    // Stuck inside one block: leave the thread, fail the job, keep serving.
                    Err(_) => break None,
                }
            }
            _ = tokio::time::sleep(CANCEL_POLL_INTERVAL), if !cancelled => {
                match jobs::cancel_requested(&ctx.db, &job.id).await {
                    Ok(true) => {
                        cancelled = true;
                        stop.store(true, Ordering::Relaxed);
                        tracing::info!(job_id = %job.id, "cancel requested by the owner, stopping");
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(job_id = %job.id, error = %e, "reading the cancel flag failed"),
                }
            }
        }
    };
    if result.is_some() {
        // The sender was moved into the closure and is dropped with it: the writer drains and ends.
        let _ = writer.await;
    } else {
        writer.abort();
    }
    let outcome = match result {
        _ if timed_out => Err(RunError::TimedOut(ctx.job_timeout)),
        Some(Ok(Err(MasterError::Cancelled))) if cancelled => Err(RunError::Cancelled),
        Some(Ok(Ok(report))) => match tokio::fs::rename(&temp_path, &final_path).await {
            Ok(()) => Ok((final_path, report)),
            Err(e) => Err(MasterError::Io(e).into()),
        },
        Some(Ok(Err(e))) => Err(e.into()),
        Some(Err(join)) => Err(RunError::Service(format!(
            "internal error while mastering: {join}"
        ))),
        None => Err(RunError::TimedOut(ctx.job_timeout)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use mastering::{OutputFormat, Style};
    use shared::jobs::{JobOwner, JobStatus, NewJob};
    use shared::quota::Subject;

    struct Fixture {
        dir: tempfile::TempDir,
        ctx: JobContext,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = shared::db::open_pool(&dir.path().join("t.db"), 4).unwrap();
        shared::db::migrate(&db).await.unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(data_dir.join("uploads")).unwrap();
        let ctx = JobContext {
            db,
            data_dir,
            max_attempts: 5,
            worker_name: "w".into(),
            max_duration_sec: 7200.0,
            job_timeout: Duration::from_secs(60),
            alerts: shared::alerts::Alerts::disabled(),
        };
        Fixture { dir, ctx }
    }

    /// Writes a 16-bit stereo WAV of `seconds`: a tone at about -20 LUFS, or silence.
    fn write_wav(path: &Path, seconds: f64, silent: bool) {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..(seconds * 44_100.0) as usize {
            let t = i as f64 / 44_100.0;
            let v = if silent {
                0.0
            } else {
                0.1 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
            };
            w.write_sample((v * 32767.0) as i16).unwrap();
            w.write_sample((v * 32767.0) as i16).unwrap();
        }
        w.finalize().unwrap();
    }

    const GUEST: &str = "192.0.2.1";

    /// Queues a job for a new upload of `seconds`, reserving one master of [`GUEST`]'s quota.
    async fn queue(f: &Fixture, seconds: f64, silent: bool) -> String {
        let id = jobs::new_job_id();
        let input_path = shared::paths::upload_path(&f.ctx.data_dir, &id, "wav");
        std::fs::create_dir_all(input_path.parent().unwrap()).unwrap();
        write_wav(&input_path, seconds, silent);
        let job = NewJob {
            id: id.clone(),
            params: mastering::MasterParams::new(
                Style::Standard,
                None,
                None,
                OutputFormat::Wav { bit_depth: 16 },
            )
            .unwrap(),
            original_name: format!("{}.wav", "音".repeat(90)),
            input_path,
        };
        let owner = JobOwner {
            client_ip: Some(GUEST.into()),
            ..JobOwner::default()
        };
        let quota = Some((Subject::Guest(GUEST.into()), 100));
        let created = jobs::create_owned(&f.ctx.db, job, owner, quota).await;
        assert!(created.unwrap().is_ok());
        id
    }

    /// Masters of [`GUEST`]'s quota counted today (refunded ones are not).
    async fn used(f: &Fixture) -> u32 {
        shared::db::with_conn(&f.ctx.db, |c| {
            let day = shared::quota::day(chrono::Utc::now());
            shared::quota::used_on(c, &Subject::Guest(GUEST.into()), &day)
        })
        .await
        .unwrap()
    }

    async fn row(f: &Fixture, id: &str) -> JobRow {
        jobs::get(&f.ctx.db, id).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn results_are_stored_under_a_fixed_name() {
        let f = fixture().await;
        let id = queue(&f, 3.0, false).await;
        assert_eq!(execute_one(&f.ctx, &id).await.unwrap(), Outcome::Done);
        let job = row(&f, &id).await;
        let expected = shared::paths::result_dir(&f.ctx.data_dir, &id).join("result.wav");
        assert_eq!(job.result_path.as_deref(), Some(expected.as_path()));
        assert!(expected.is_file());
        assert_eq!(used(&f).await, 1);
    }

    #[tokio::test]
    async fn a_permanent_file_system_error_fails_the_job_after_one_attempt() {
        let f = fixture().await;
        let id = queue(&f, 3.0, false).await;
        // `results` is a file: creating the job's result directory fails with ENOTDIR,
        // and would on every run.
        std::fs::write(f.ctx.data_dir.join("results"), b"not a directory").unwrap();
        let started = Instant::now();
        let outcome = execute_one(&f.ctx, &id).await.unwrap();
        assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
        let job = row(&f, &id).await;
        assert_eq!((job.status, job.attempts), (JobStatus::Failed, 1));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "no retry backoff"
        );
        // The service's failure: the master is given back.
        assert_eq!(used(&f).await, 0);
    }

    #[tokio::test]
    async fn a_failure_of_the_input_counts_against_the_quota() {
        let f = fixture().await;
        let id = queue(&f, 4.0, true).await;
        let outcome = execute_one(&f.ctx, &id).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Failed(ref m) if m.contains("silent")),
            "{outcome:?}"
        );
        assert_eq!(row(&f, &id).await.attempts, 1);
        assert_eq!(used(&f).await, 1, "a silent upload is not free");

        let f = fixture().await;
        let id = queue(&f, 6.0, false).await;
        let ctx = JobContext {
            max_duration_sec: 5.0,
            ..f.ctx.clone()
        };
        let outcome = execute_one(&ctx, &id).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Failed(ref m) if m.contains("too long")),
            "{outcome:?}"
        );
        assert_eq!(row(&f, &id).await.attempts, 1);
        assert_eq!(used(&f).await, 1, "a too long upload is not free");
    }

    #[tokio::test]
    async fn a_running_job_cancelled_by_its_owner_stops_soon_and_leaves_no_files() {
        let f = fixture().await;
        // Five minutes of audio: mastering it takes seconds, far longer than the bound.
        let long = queue(&f, 300.0, false).await;
        let run = tokio::spawn({
            let ctx = f.ctx.clone();
            let id = long.clone();
            async move { execute_one(&ctx, &id).await }
        });
        while row(&f, &long).await.status != JobStatus::Running {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let asked = Instant::now();
        assert_eq!(
            jobs::cancel(&f.ctx.db, &long).await.unwrap(),
            Some(jobs::CancelOutcome::Requested)
        );
        let outcome = run.await.unwrap().unwrap();
        let took = asked.elapsed();
        assert_eq!(outcome, Outcome::Failed(jobs::CANCELLED_ERROR.to_owned()));
        assert!(
            took < CANCEL_POLL_INTERVAL + Duration::from_secs(1),
            "stopped {took:?} after the request"
        );
        let job = row(&f, &long).await;
        assert!(job.is_cancelled(), "{job:?}");
        assert_eq!((job.attempts, job.completions), (1, 0));
        for dir in [
            shared::paths::upload_dir(&f.ctx.data_dir, &long),
            shared::paths::result_dir(&f.ctx.data_dir, &long),
        ] {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
        assert_eq!(
            used(&f).await,
            1,
            "the worker's time was spent: the master counts"
        );
        drop(f.dir);
    }

    #[tokio::test]
    async fn a_job_over_its_time_limit_fails_for_good_and_the_worker_goes_on() {
        let f = fixture().await;
        let slow = queue(&f, 60.0, false).await;
        let ctx = JobContext {
            job_timeout: Duration::from_millis(20),
            ..f.ctx.clone()
        };
        let started = Instant::now();
        let outcome = execute_one(&ctx, &slow).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Failed(ref m) if m.contains("time limit")),
            "{outcome:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "stopped at the limit"
        );
        let job = row(&f, &slow).await;
        assert_eq!((job.status, job.attempts), (JobStatus::Failed, 1));
        let dir = shared::paths::result_dir(&f.ctx.data_dir, &slow);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "no partial result left: {left:?}");
        // The service's failure: refunded. The same worker masters the next job.
        assert_eq!(used(&f).await, 0);
        let next = queue(&f, 3.0, false).await;
        assert_eq!(execute_one(&f.ctx, &next).await.unwrap(), Outcome::Done);
        drop(f.dir);
    }
}
