//! The `master_jobs` table: one row per mastering job, as clients see it.
//!
//! State changes are conditional updates, so a job leaves `queued`/`running` at most once:
//! [`finish_done`] and [`finish_failed`] return `false` when the job had already finished,
//! and `completions` counts successful completions (tests prove it stays at 1).

use crate::db::{DbError, with_conn};
use crate::measurements::JobMeasurements;
use crate::time::{column as time_column, optional_column as optional_time};
use chrono::{DateTime, Utc};
use deadpool_sqlite::Pool;
use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, params};
use mastering::MasterParams;
use serde::Serialize;
use std::path::PathBuf;

/// A job's state as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker is mastering it.
    Running,
    /// The result is ready.
    Done,
    /// Mastering failed; `error` says why.
    Failed,
    /// Finished long ago: its files were deleted by the retention sweeper.
    Expired,
}

impl JobStatus {
    /// Every state, in the order metrics export them.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Failed,
        JobStatus::Expired,
    ];

    /// The name stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Expired => "expired",
        }
    }

    /// The state named `name` ([`JobStatus::as_str`]), if any.
    pub fn from_name(name: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub(crate) fn parse(s: &str) -> rusqlite::Result<JobStatus> {
        JobStatus::from_name(s).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(
                0,
                format!("status {s}"),
                rusqlite::types::Type::Text,
            )
        })
    }

    /// True for `done`, `failed` and `expired`.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Failed | JobStatus::Expired
        )
    }
}

/// What the API stores when it accepts an upload.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Unguessable id ([`new_job_id`]).
    pub id: String,
    /// Validated parameters.
    pub params: MasterParams,
    /// The client's file name, sanitised (used for the download name).
    pub original_name: String,
    /// Where the upload was stored.
    pub input_path: PathBuf,
}

/// One row of `master_jobs`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: String,
    pub status: JobStatus,
    /// 0–100.
    pub progress: u8,
    /// Stage text.
    pub message: String,
    pub error: Option<String>,
    pub params: MasterParams,
    pub original_name: String,
    pub input_path: PathBuf,
    pub result_path: Option<PathBuf>,
    /// What the worker measured on the upload and the master, once done.
    pub measurements: Option<JobMeasurements>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// How many times a worker started this job.
    pub attempts: u32,
    /// How many times it was completed successfully (1 at most, by construction).
    pub completions: u32,
    /// Name of the worker that last claimed it.
    pub worker: Option<String>,
    /// The account that made it (`None` for guests).
    pub user_id: Option<i64>,
    /// SHA-256 (hex) of the guest token that made it (`None` for users).
    pub guest_key: Option<String>,
    /// When its owner asked to cancel it ([`cancel`]), if they did.
    pub cancel_requested_at: Option<DateTime<Utc>>,
}

impl JobRow {
    /// True when the job ended because its owner cancelled it: `failed`, with
    /// [`CANCELLED_ERROR`] as its error.
    pub fn is_cancelled(&self) -> bool {
        self.status == JobStatus::Failed && self.cancel_requested_at.is_some()
    }
}

impl JobRow {
    /// When this job's files are deleted (RFC 3339): its `finished_at` plus the
    /// [`retention`]; `None` while it runs and once it has expired.
    pub fn expires_at(&self, ttl_seconds: u64) -> Option<String> {
        if self.status == JobStatus::Expired {
            return None;
        }
        let end = self
            .finished_at?
            .checked_add_signed(retention(ttl_seconds)?)?;
        Some(crate::time::format(end))
    }
}

/// The retention rule, in one place: a finished job keeps its files for `ttl_seconds`
/// (`MAGIC_MASTER_JOBS_DONE_TTL_SECONDS`) after its `finished_at`; `None` for a TTL beyond
/// the calendar. [`JobRow::expires_at`] shows it, [`due_for_expiry`] applies it.
pub fn retention(ttl_seconds: u64) -> Option<chrono::Duration> {
    chrono::Duration::try_seconds(i64::try_from(ttl_seconds).ok()?)
}

/// Who makes a job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOwner {
    /// The account, when logged in.
    pub user_id: Option<i64>,
    /// SHA-256 (hex) of the guest token, when a guest.
    pub guest_key: Option<String>,
    /// The client's IP address, for the record and guest quotas.
    pub client_ip: Option<String>,
}

/// A new unguessable job id: a random (v4) UUID, 122 random bits.
pub fn new_job_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// True when `id` has the shape of a job id (guards file paths built from it).
pub fn is_valid_job_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

const COLUMNS: &str = "id, status, progress, message, error, params_json, original_name, \
    input_path, result_path, before_json, after_json, created_at, started_at, finished_at, \
    attempts, completions, worker, user_id, guest_key, cancel_requested_at";

fn json_column<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    idx: usize,
) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(idx)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
        })
    })
    .transpose()
}

fn to_json_text(value: &impl Serialize) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<JobRow> {
    let status: String = row.get(1)?;
    let params_json: String = row.get(5)?;
    let params: MasterParams = serde_json::from_str(&params_json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(JobRow {
        id: row.get(0)?,
        status: JobStatus::parse(&status)?,
        progress: row.get::<_, i64>(2)?.clamp(0, 100) as u8,
        message: row.get(3)?,
        error: row.get(4)?,
        params,
        original_name: row.get(6)?,
        input_path: PathBuf::from(row.get::<_, String>(7)?),
        result_path: row.get::<_, Option<String>>(8)?.map(PathBuf::from),
        // Both are written together by `finish_done`.
        measurements: match (json_column(row, 9)?, json_column(row, 10)?) {
            (Some(before), Some(after)) => Some(JobMeasurements { before, after }),
            _ => None,
        },
        created_at: time_column(row, 11)?,
        started_at: optional_time(row, 12)?,
        finished_at: optional_time(row, 13)?,
        attempts: row.get(14)?,
        completions: row.get(15)?,
        worker: row.get(16)?,
        user_id: row.get(17)?,
        guest_key: row.get(18)?,
        cancel_requested_at: optional_time(row, 19)?,
    })
}

fn insert(c: &rusqlite::Connection, job: &NewJob, owner: &JobOwner) -> rusqlite::Result<()> {
    let params_json = serde_json::to_string(&job.params)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    c.execute(
        "INSERT INTO master_jobs (id, status, progress, message, style, target_lufs, \
         true_peak_db, out_format, params_json, original_name, input_path, created_at, \
         user_id, guest_key, client_ip) \
         VALUES (?1, 'queued', 0, 'Waiting for a worker', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
         ?10, ?11, ?12)",
        params![
            job.id,
            job.params.style.name(),
            job.params.target_lufs,
            job.params.true_peak_db,
            job.params.format.name(),
            params_json,
            job.original_name,
            job.input_path.to_string_lossy(),
            crate::time::now_rfc3339(),
            owner.user_id,
            owner.guest_key,
            owner.client_ip,
        ],
    )
    .map(|_| ())
}

/// Inserts a queued job without an owner or quota.
pub async fn create(pool: &Pool, job: NewJob) -> Result<(), DbError> {
    with_conn(pool, move |c| insert(c, &job, &JobOwner::default())).await
}

/// Inserts a queued job of `owner` and, when `quota` is given (subject and daily limit),
/// reserves one master for it in the same immediate transaction: either both happen or
/// neither. `Ok(Err(_))` when the quota is used up (nothing was written).
pub async fn create_owned(
    pool: &Pool,
    job: NewJob,
    owner: JobOwner,
    quota: Option<(crate::quota::Subject, u32)>,
) -> Result<Result<Option<crate::quota::Source>, crate::quota::Exhausted>, DbError> {
    with_conn(pool, move |c| {
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let source = match &quota {
            Some((subject, limit)) => match crate::quota::reserve(&tx, &job.id, subject, *limit)? {
                Ok(source) => Some(source),
                Err(exhausted) => return Ok(Err(exhausted)),
            },
            None => None,
        };
        insert(&tx, &job, &owner)?;
        tx.commit()?;
        Ok(Ok(source))
    })
    .await
}

/// A user's jobs, newest first.
pub async fn list_for_user(pool: &Pool, user_id: i64, limit: u32) -> Result<Vec<JobRow>, DbError> {
    with_conn(pool, move |c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM master_jobs WHERE user_id = ?1 \
             ORDER BY created_at DESC, id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![user_id, limit], from_row)?;
        rows.collect()
    })
    .await
}

/// Jobs in `status` (all when `None`), newest first, each with its owner's email, and the
/// total count.
pub async fn list_with_owner(
    pool: &Pool,
    status: Option<JobStatus>,
    limit: u32,
    offset: u32,
) -> Result<(Vec<(JobRow, Option<String>)>, u64), DbError> {
    let status = status.map(|s| s.as_str().to_owned());
    with_conn(pool, move |c| {
        let total: i64 = c.query_row(
            "SELECT COUNT(*) FROM master_jobs WHERE ?1 IS NULL OR status = ?1",
            [&status],
            |r| r.get(0),
        )?;
        let cols = COLUMNS
            .split(", ")
            .map(|col| format!("j.{}", col.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = c.prepare(&format!(
            "SELECT {cols}, u.email FROM master_jobs j LEFT JOIN users u ON u.id = j.user_id \
             WHERE ?1 IS NULL OR j.status = ?1 ORDER BY j.created_at DESC, j.id \
             LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt
            .query_map(params![status, limit, offset], |r| {
                Ok((from_row(r)?, r.get::<_, Option<String>>(20)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, total.max(0) as u64))
    })
    .await
}

/// Puts a `failed` job back in the queue state (attempts reset, error cleared). Returns
/// `false` when the job is not `failed`, or was cancelled by its owner (its files are gone).
/// Its quota stays as it was: a refunded master stays
/// refunded (an admin retry is free for the user).
pub async fn requeue_failed(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let id = id.to_owned();
    with_conn(pool, move |c| {
        let changed = c.execute(
            "UPDATE master_jobs SET status = 'queued', progress = 0, error = NULL, \
             message = 'Waiting for a worker (retry)', finished_at = NULL, attempts = 0 \
             WHERE id = ?1 AND status = 'failed' AND cancel_requested_at IS NULL",
            [id],
        )?;
        Ok(changed == 1)
    })
    .await
}

/// Reads one job.
pub async fn get(pool: &Pool, id: &str) -> Result<Option<JobRow>, DbError> {
    let id = id.to_owned();
    with_conn(pool, move |c| {
        c.query_row(
            &format!("SELECT {COLUMNS} FROM master_jobs WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()
    })
    .await
}

/// The most recent jobs, newest first.
pub async fn list(pool: &Pool, limit: u32) -> Result<Vec<JobRow>, DbError> {
    with_conn(pool, move |c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM master_jobs ORDER BY created_at DESC, id LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], from_row)?;
        rows.collect()
    })
    .await
}

/// Deletes a job row (used when queueing it failed right after creation).
pub async fn delete(pool: &Pool, id: &str) -> Result<(), DbError> {
    let id = id.to_owned();
    with_conn(pool, move |c| {
        c.execute("DELETE FROM master_jobs WHERE id = ?1", [id])
            .map(|_| ())
    })
    .await
}

/// A worker starts (or restarts) a job: `queued`/`running` → `running`, attempts + 1.
/// `None` when the job is unknown or already finished (nothing to do).
pub async fn claim(pool: &Pool, id: &str, worker: &str) -> Result<Option<JobRow>, DbError> {
    let (id, worker) = (id.to_owned(), worker.to_owned());
    with_conn(pool, move |c| {
        let now = crate::time::now_rfc3339();
        let changed = c.execute(
            "UPDATE master_jobs SET status = 'running', attempts = attempts + 1, \
             started_at = COALESCE(started_at, ?2), worker = ?3, progress = 0, \
             message = 'Starting' WHERE id = ?1 AND status IN ('queued', 'running')",
            params![id, now, worker],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        c.query_row(
            &format!("SELECT {COLUMNS} FROM master_jobs WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()
    })
    .await
}

/// Records progress (0–100) and the stage text of a running job.
pub async fn set_progress(
    pool: &Pool,
    id: &str,
    progress: u8,
    message: &str,
) -> Result<(), DbError> {
    let (id, message) = (id.to_owned(), message.to_owned());
    with_conn(pool, move |c| {
        c.execute(
            "UPDATE master_jobs SET progress = ?2, message = ?3 \
             WHERE id = ?1 AND status = 'running'",
            params![id, progress.min(100), message],
        )
        .map(|_| ())
    })
    .await
}

/// Sets only the stage text of a queued or running job (e.g. "retrying").
pub async fn set_message(pool: &Pool, id: &str, message: &str) -> Result<(), DbError> {
    let (id, message) = (id.to_owned(), message.to_owned());
    with_conn(pool, move |c| {
        c.execute(
            "UPDATE master_jobs SET message = ?2 WHERE id = ?1 AND status IN ('queued', 'running')",
            params![id, message],
        )
        .map(|_| ())
    })
    .await
}

/// Completes a running job. Returns `false` (and changes nothing) if it was not running,
/// e.g. because another worker completed it first.
pub async fn finish_done(
    pool: &Pool,
    id: &str,
    result_path: PathBuf,
    measurements: &JobMeasurements,
) -> Result<bool, DbError> {
    let id = id.to_owned();
    let measurements = *measurements;
    with_conn(pool, move |c| {
        let before = to_json_text(&measurements.before)?;
        let after = to_json_text(&measurements.after)?;
        let changed = c.execute(
            "UPDATE master_jobs SET status = 'done', progress = 100, message = 'Done', \
             error = NULL, result_path = ?2, before_json = ?3, after_json = ?4, \
             finished_at = ?5, completions = completions + 1 \
             WHERE id = ?1 AND status = 'running'",
            params![
                id,
                result_path.to_string_lossy(),
                before,
                after,
                crate::time::now_rfc3339(),
            ],
        )?;
        Ok(changed == 1)
    })
    .await
}

/// Whose fault a failed job is: it decides whether the master it reserved is refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service failed (disk, encoder, a bug, a time limit, could not queue): refunded.
    Service,
    /// The input cannot be mastered (undecodable after the probe, too long, silent…): the
    /// master counts, as it would for a file that mastered, so a failing upload is not free.
    Input,
    /// The owner cancelled it after a worker had started it: the master counts (the
    /// worker's time was spent). A job cancelled while still queued is refunded ([`cancel`]).
    Cancelled,
}

/// The `error` of a job its owner cancelled.
pub const CANCELLED_ERROR: &str = "cancelled by its owner";

/// What asking to cancel a job did ([`cancel`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was queued: it is `failed` (cancelled) now and never runs; its master is refunded.
    Cancelled,
    /// It is running: its worker stops it at the chain's next progress check and fails it
    /// (cancelled). Asking again changes nothing.
    Requested,
    /// It had already ended in this state: nothing changed.
    Finished(JobStatus),
}

/// Cancels job `id` for its owner (the caller checks ownership). A queued job is failed at
/// once with [`CANCELLED_ERROR`] and its master refunded, in one transaction, so no worker
/// can claim it afterwards ([`claim`] takes only queued or running jobs); a running job gets
/// `cancel_requested_at`, which its worker polls ([`cancel_requested`]). `None` when there
/// is no such job.
pub async fn cancel(pool: &Pool, id: &str) -> Result<Option<CancelOutcome>, DbError> {
    let id = id.to_owned();
    with_conn(pool, move |c| {
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = crate::time::now_rfc3339();
        let outcome = if tx.execute(
            "UPDATE master_jobs SET status = 'failed', message = 'Cancelled', error = ?2, \
             finished_at = ?3, cancel_requested_at = ?3 WHERE id = ?1 AND status = 'queued'",
            params![id, CANCELLED_ERROR, now],
        )? == 1
        {
            crate::quota::refund(&tx, &id)?;
            Some(CancelOutcome::Cancelled)
        } else if tx.execute(
            "UPDATE master_jobs SET cancel_requested_at = COALESCE(cancel_requested_at, ?2) \
             WHERE id = ?1 AND status = 'running'",
            params![id, now],
        )? == 1
        {
            Some(CancelOutcome::Requested)
        } else {
            tx.query_row("SELECT status FROM master_jobs WHERE id = ?1", [&id], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .map(|status| JobStatus::parse(&status).map(CancelOutcome::Finished))
            .transpose()?
        };
        tx.commit()?;
        Ok(outcome)
    })
    .await
}

/// True when the owner of job `id` asked to cancel it (polled by its worker while it runs).
pub async fn cancel_requested(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let id = id.to_owned();
    with_conn(pool, move |c| {
        c.query_row(
            "SELECT cancel_requested_at IS NOT NULL FROM master_jobs WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()
        .map(|requested| requested.unwrap_or(false))
    })
    .await
}

/// Fails a queued or running job with a readable error and, in the same transaction, when
/// the service is at fault, refunds the quota it reserved (at most once: see
/// [`crate::quota::refund`]). Returns `false` if it had already finished.
pub async fn finish_failed(
    pool: &Pool,
    id: &str,
    error: &str,
    fault: Fault,
) -> Result<bool, DbError> {
    let (id, error) = (id.to_owned(), error.to_owned());
    with_conn(pool, move |c| {
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let message = if fault == Fault::Cancelled {
            "Cancelled"
        } else {
            "Failed"
        };
        let changed = tx.execute(
            "UPDATE master_jobs SET status = 'failed', message = ?4, error = ?2, \
             finished_at = ?3 WHERE id = ?1 AND status IN ('queued', 'running')",
            params![id, error, crate::time::now_rfc3339(), message],
        )?;
        if changed == 1 && fault == Fault::Service && crate::quota::refund(&tx, &id)? {
            tracing::info!(job_id = %id, "quota refunded for the failed job");
        }
        tx.commit()?;
        Ok(changed == 1)
    })
    .await
}

/// Finished (`done`/`failed`) jobs whose [`retention`] has passed: `finished_at` older than
/// `ttl_seconds`.
pub async fn due_for_expiry(pool: &Pool, ttl_seconds: u64) -> Result<Vec<JobRow>, DbError> {
    let now = chrono::Utc::now();
    let Some(cutoff) = retention(ttl_seconds).and_then(|r| now.checked_sub_signed(r)) else {
        return Ok(Vec::new());
    };
    let cutoff = crate::time::format(cutoff);
    with_conn(pool, move |c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM master_jobs \
             WHERE status IN ('done', 'failed') AND finished_at < ?1 LIMIT 500"
        ))?;
        let rows = stmt.query_map([cutoff], from_row)?;
        rows.collect()
    })
    .await
}

/// Marks a finished job expired (its files are gone). Returns `false` if it was not
/// `done`/`failed`.
pub async fn mark_expired(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let id = id.to_owned();
    with_conn(pool, move |c| {
        let changed = c.execute(
            "UPDATE master_jobs SET status = 'expired', expired_at = ?2, \
             message = 'Expired: the files were deleted after the retention period' \
             WHERE id = ?1 AND status IN ('done', 'failed')",
            params![id, crate::time::now_rfc3339()],
        )?;
        Ok(changed == 1)
    })
    .await
}

/// Number of jobs in each status.
pub async fn counts(pool: &Pool) -> Result<Vec<(JobStatus, u64)>, DbError> {
    with_conn(pool, |c| {
        let mut stmt = c.prepare("SELECT status, COUNT(*) FROM master_jobs GROUP BY status")?;
        let rows = stmt.query_map([], |r| {
            let s: String = r.get(0)?;
            Ok((JobStatus::parse(&s)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?;
        rows.collect()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use mastering::{OutputFormat, Style};

    async fn pool() -> (tempfile::TempDir, Pool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open_pool(&dir.path().join("t.db"), 4).unwrap();
        crate::db::migrate(&pool).await.unwrap();
        (dir, pool)
    }

    #[test]
    fn every_status_is_named_as_it_is_stored_and_served() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::from_name(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert_eq!(JobStatus::from_name("Done"), None);
    }

    fn sample_measurements() -> JobMeasurements {
        use crate::measurements::{InputMeasurements, LoudnessMeasurements};
        JobMeasurements {
            before: InputMeasurements {
                loudness: LoudnessMeasurements {
                    lufs: -21.5,
                    true_peak_db: -3.25,
                    sample_peak_db: -3.5,
                    lra: 7.0,
                },
                duration_sec: 6.0,
                sample_rate: 48_000,
                channels: 1,
            },
            after: LoudnessMeasurements {
                lufs: -14.0,
                true_peak_db: -1.0,
                sample_peak_db: -1.25,
                lra: 6.5,
            },
        }
    }

    fn new_job() -> NewJob {
        NewJob {
            id: new_job_id(),
            params: MasterParams::new(
                Style::Standard,
                None,
                None,
                OutputFormat::Wav { bit_depth: 16 },
            )
            .unwrap(),
            original_name: "song.wav".into(),
            input_path: PathBuf::from("/x/original.wav"),
        }
    }

    #[test]
    fn job_ids_are_random_and_well_formed() {
        let a = new_job_id();
        let b = new_job_id();
        assert_ne!(a, b);
        assert!(is_valid_job_id(&a), "{a}");
        assert!(!is_valid_job_id("../../etc/passwd"));
    }

    #[tokio::test]
    async fn a_job_completes_at_most_once() {
        let (_dir, pool) = pool().await;
        let job = new_job();
        let id = job.id.clone();
        create(&pool, job).await.unwrap();
        let row = get(&pool, &id).await.unwrap().unwrap();
        assert_eq!(row.status, JobStatus::Queued);

        let claimed = claim(&pool, &id, "w1").await.unwrap().unwrap();
        assert_eq!((claimed.status, claimed.attempts), (JobStatus::Running, 1));
        set_progress(&pool, &id, 40, "Limiting").await.unwrap();
        assert!(row.measurements.is_none());
        let measured = sample_measurements();
        assert!(
            finish_done(&pool, &id, "/r".into(), &measured)
                .await
                .unwrap()
        );
        let done = get(&pool, &id).await.unwrap().unwrap();
        assert_eq!(done.measurements, Some(measured), "stored and read back");
        // A second completion, a late failure and a late claim all change nothing.
        let mut other = measured;
        other.after.lufs = -9.0;
        assert!(!finish_done(&pool, &id, "/r".into(), &other).await.unwrap());
        assert!(
            !finish_failed(&pool, &id, "late", Fault::Service)
                .await
                .unwrap()
        );
        assert!(claim(&pool, &id, "w2").await.unwrap().is_none());
        let row = get(&pool, &id).await.unwrap().unwrap();
        assert_eq!(row.status, JobStatus::Done);
        assert_eq!(row.completions, 1);
        assert_eq!(row.progress, 100);
        assert!(row.error.is_none());
        assert_eq!(
            row.measurements,
            Some(measured),
            "the late completion wrote nothing"
        );
    }

    /// Queues a job of a guest at `ip` that reserves one master of their quota.
    async fn queue_guest_job(pool: &Pool, ip: &str) -> String {
        let job = new_job();
        let id = job.id.clone();
        let owner = JobOwner {
            client_ip: Some(ip.into()),
            ..JobOwner::default()
        };
        let quota = Some((crate::quota::Subject::Guest(ip.into()), 10));
        assert!(create_owned(pool, job, owner, quota).await.unwrap().is_ok());
        id
    }

    async fn masters_used_today(pool: &Pool, ip: &str) -> u32 {
        let ip = ip.to_owned();
        with_conn(pool, move |c| {
            let day = crate::quota::day(chrono::Utc::now());
            crate::quota::used_on(c, &crate::quota::Subject::Guest(ip), &day)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn job_times_are_stored_as_millisecond_utc_text_and_read_as_times() {
        let (_dir, pool) = pool().await;
        let job = new_job();
        let id = job.id.clone();
        let before = chrono::Utc::now();
        create(&pool, job).await.unwrap();
        claim(&pool, &id, "w").await.unwrap();
        let row = get(&pool, &id).await.unwrap().unwrap();
        let id2 = id.clone();
        let stored: (String, String) = with_conn(&pool, move |c| {
            c.query_row(
                "SELECT created_at, started_at FROM master_jobs WHERE id = ?1",
                [id2],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
        .unwrap();
        for text in [&stored.0, &stored.1] {
            assert_eq!(text.len(), "2026-12-07T20:00:00.000Z".len(), "{text}");
            assert!(text.ends_with('Z') && text.as_bytes()[19] == b'.', "{text}");
        }
        assert_eq!(crate::time::format(row.created_at), stored.0);
        assert_eq!(row.started_at.map(crate::time::format), Some(stored.1));
        let lag = row.created_at - before;
        assert!(
            lag >= -chrono::Duration::milliseconds(1) && lag < chrono::Duration::seconds(5),
            "{lag}"
        );
        assert_eq!((row.finished_at, row.cancel_requested_at), (None, None));
    }

    #[tokio::test]
    async fn a_queued_job_cancelled_is_failed_at_once_refunded_and_never_claimed() {
        let (_dir, pool) = pool().await;
        let id = queue_guest_job(&pool, "192.0.2.7").await;
        assert_eq!(masters_used_today(&pool, "192.0.2.7").await, 1);
        assert_eq!(
            cancel(&pool, &id).await.unwrap(),
            Some(CancelOutcome::Cancelled)
        );
        let row = get(&pool, &id).await.unwrap().unwrap();
        assert!(row.is_cancelled(), "{row:?}");
        assert_eq!(row.error.as_deref(), Some(CANCELLED_ERROR));
        assert!(row.finished_at.is_some());
        assert_eq!(masters_used_today(&pool, "192.0.2.7").await, 0, "refunded");
        assert!(
            claim(&pool, &id, "w").await.unwrap().is_none(),
            "never runs"
        );
        // Asking again, or an admin retry, changes nothing.
        assert_eq!(
            cancel(&pool, &id).await.unwrap(),
            Some(CancelOutcome::Finished(JobStatus::Failed))
        );
        assert!(!requeue_failed(&pool, &id).await.unwrap());
        assert_eq!(cancel(&pool, &new_job_id()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_running_job_cancelled_is_flagged_for_its_worker_and_counts() {
        let (_dir, pool) = pool().await;
        let id = queue_guest_job(&pool, "192.0.2.8").await;
        claim(&pool, &id, "w").await.unwrap().unwrap();
        assert!(!cancel_requested(&pool, &id).await.unwrap());
        assert_eq!(
            cancel(&pool, &id).await.unwrap(),
            Some(CancelOutcome::Requested)
        );
        let first = get(&pool, &id).await.unwrap().unwrap();
        assert_eq!(first.status, JobStatus::Running, "the worker stops it");
        assert!(cancel_requested(&pool, &id).await.unwrap());
        assert_eq!(
            cancel(&pool, &id).await.unwrap(),
            Some(CancelOutcome::Requested)
        );
        let again = get(&pool, &id).await.unwrap().unwrap();
        assert_eq!(again.cancel_requested_at, first.cancel_requested_at);
        // The worker fails it: the master counts, the row reads as cancelled.
        assert!(
            finish_failed(&pool, &id, CANCELLED_ERROR, Fault::Cancelled)
                .await
                .unwrap()
        );
        let row = get(&pool, &id).await.unwrap().unwrap();
        assert!(row.is_cancelled());
        assert_eq!(row.message, "Cancelled");
        assert_eq!(masters_used_today(&pool, "192.0.2.8").await, 1);
    }

    #[tokio::test]
    async fn a_finished_job_cannot_be_cancelled() {
        let (_dir, pool) = pool().await;
        let id = queue_guest_job(&pool, "192.0.2.9").await;
        claim(&pool, &id, "w").await.unwrap();
        finish_done(&pool, &id, "/r".into(), &sample_measurements())
            .await
            .unwrap();
        assert_eq!(
            cancel(&pool, &id).await.unwrap(),
            Some(CancelOutcome::Finished(JobStatus::Done))
        );
        let row = get(&pool, &id).await.unwrap().unwrap();
        assert_eq!(
            (row.status, row.cancel_requested_at),
            (JobStatus::Done, None)
        );
        assert!(!row.is_cancelled());
    }

    #[tokio::test]
    async fn a_failed_job_refunds_its_token_once_and_quota_is_atomic() {
        let (_dir, pool) = pool().await;
        let user = crate::accounts::create(&pool, "r@x.io", "h", false)
            .await
            .unwrap()
            .unwrap();
        crate::accounts::grant_tokens(&pool, user.id, 1)
            .await
            .unwrap();
        let owner = JobOwner {
            user_id: Some(user.id),
            ..JobOwner::default()
        };
        let subject = crate::quota::Subject::User(user.id);
        // Daily limit 0: the job must use the bought token.
        let job = new_job();
        let id = job.id.clone();
        let source = create_owned(&pool, job, owner.clone(), Some((subject.clone(), 0)))
            .await
            .unwrap();
        assert_eq!(source, Ok(Some(crate::quota::Source::Token)));
        let tokens = |pool: Pool| async move {
            crate::accounts::by_id(&pool, user.id)
                .await
                .unwrap()
                .unwrap()
                .tokens
        };
        assert_eq!(tokens(pool.clone()).await, 0);
        // No token left: refused, and no job row written.
        let refused = new_job();
        let refused_id = refused.id.clone();
        let r = create_owned(&pool, refused, owner, Some((subject, 0)))
            .await
            .unwrap();
        assert!(r.is_err());
        assert!(get(&pool, &refused_id).await.unwrap().is_none());

        claim(&pool, &id, "w").await.unwrap();
        assert!(
            finish_failed(&pool, &id, "boom", Fault::Service)
                .await
                .unwrap()
        );
        assert_eq!(tokens(pool.clone()).await, 1, "refunded");
        assert!(
            !finish_failed(&pool, &id, "again", Fault::Service)
                .await
                .unwrap()
        );
        assert_eq!(tokens(pool.clone()).await, 1, "refunded once");
        // An admin retry that fails again does not refund a second time.
        assert!(requeue_failed(&pool, &id).await.unwrap());
        claim(&pool, &id, "w").await.unwrap();
        assert!(
            finish_failed(&pool, &id, "boom 2", Fault::Service)
                .await
                .unwrap()
        );
        assert_eq!(tokens(pool.clone()).await, 1);
        let row = get(&pool, &id).await.unwrap().unwrap();
        assert_eq!(row.user_id, Some(user.id));
        assert_eq!(list_for_user(&pool, user.id, 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_job_failed_by_its_input_keeps_its_master_counted() {
        let (_dir, pool) = pool().await;
        let subject = crate::quota::Subject::Guest("192.0.2.7".into());
        let owner = JobOwner {
            client_ip: Some("192.0.2.7".into()),
            ..JobOwner::default()
        };
        let used = |pool: Pool, subject: crate::quota::Subject| async move {
            with_conn(&pool, move |c| {
                crate::quota::used_on(c, &subject, &crate::quota::day(chrono::Utc::now()))
            })
            .await
            .unwrap()
        };
        let mut ids = Vec::new();
        for _ in 0..2 {
            let job = new_job();
            ids.push(job.id.clone());
            let r = create_owned(&pool, job, owner.clone(), Some((subject.clone(), 5)));
            assert!(r.await.unwrap().is_ok());
        }
        assert_eq!(used(pool.clone(), subject.clone()).await, 2);
        for (id, fault) in ids.iter().zip([Fault::Input, Fault::Service]) {
            claim(&pool, id, "w").await.unwrap();
            assert!(finish_failed(&pool, id, "x", fault).await.unwrap());
        }
        // The input's failure still counts; the service's was given back.
        assert_eq!(used(pool.clone(), subject).await, 1);
    }

    #[tokio::test]
    async fn finished_jobs_expire_after_the_ttl() {
        let (_dir, pool) = pool().await;
        let job = new_job();
        let id = job.id.clone();
        create(&pool, job).await.unwrap();
        claim(&pool, &id, "w").await.unwrap();
        finish_failed(&pool, &id, "boom", Fault::Service)
            .await
            .unwrap();
        assert!(due_for_expiry(&pool, 3600).await.unwrap().is_empty());
        // What the API shows is what the sweeper applies: `finished_at` plus the TTL.
        let row = get(&pool, &id).await.unwrap().unwrap();
        let finished = row.finished_at.unwrap();
        let shown = row.expires_at(3600).unwrap();
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(&shown)
                .unwrap()
                .to_utc()
                - finished,
            chrono::Duration::seconds(3600)
        );
        // A TTL meant as "for ever" (past the calendar's end): kept, shown as never, no panic.
        for ttl in [10_000_000_000_000, u64::MAX] {
            assert!(
                due_for_expiry(&pool, ttl).await.unwrap().is_empty(),
                "{ttl}"
            );
            assert_eq!(row.expires_at(ttl), None, "{ttl}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let due = due_for_expiry(&pool, 1).await.unwrap();
        assert_eq!(due.len(), 1);
        assert!(mark_expired(&pool, &id).await.unwrap());
        assert!(!mark_expired(&pool, &id).await.unwrap());
        assert_eq!(
            get(&pool, &id).await.unwrap().unwrap().status,
            JobStatus::Expired
        );
    }
}
