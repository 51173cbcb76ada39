//! Operational figures read from the database (so they are right however many worker
//! processes run) and from the file system: queue depth by state, age of the oldest waiting
//! job, recent failures, finished jobs for the metrics, free disk space.

use crate::db::{DbError, with_conn};
use crate::jobs::JobStatus;
use chrono::{DateTime, Utc};
use deadpool_sqlite::Pool;
use std::path::Path;

/// Queue figures at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueStats {
    /// Jobs in each state of [`JobStatus::ALL`], same order (0 when none): read with
    /// [`QueueStats::count`] or [`QueueStats::by_status`].
    by_state: [u64; JobStatus::ALL.len()],
    /// Age in seconds of the oldest `queued` job; 0 when none waits.
    pub oldest_pending_sec: f64,
    /// Jobs that ended `failed` in the last 60 minutes.
    pub failed_last_hour: u64,
}

impl QueueStats {
    /// Jobs in `status`.
    pub fn count(&self, status: JobStatus) -> u64 {
        self.by_state[Self::index(status)]
    }

    /// Every state with its number of jobs, in the order of [`JobStatus::ALL`].
    pub fn by_status(&self) -> impl Iterator<Item = (JobStatus, u64)> + '_ {
        JobStatus::ALL
            .into_iter()
            .zip(self.by_state.iter().copied())
    }

    fn index(status: JobStatus) -> usize {
        JobStatus::ALL
            .iter()
            .position(|s| *s == status)
            .unwrap_or_default()
    }

    /// All jobs in the table.
    pub fn total(&self) -> u64 {
        self.by_state.iter().sum()
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Reads the queue figures.
pub async fn queue_stats(pool: &Pool) -> Result<QueueStats, DbError> {
    let hour_ago = crate::time::format(Utc::now() - chrono::Duration::hours(1));
    with_conn(pool, move |c| {
        let mut stats = QueueStats::default();
        let mut stmt = c.prepare("SELECT status, COUNT(*) FROM master_jobs GROUP BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (name, n) = row?;
            if let Some(status) = JobStatus::from_name(&name) {
                stats.by_state[QueueStats::index(status)] = n.max(0) as u64;
            }
        }
        let oldest: Option<String> = c.query_row(
            "SELECT MIN(created_at) FROM master_jobs WHERE status = 'queued'",
            [],
            |r| r.get(0),
        )?;
        stats.oldest_pending_sec = oldest
            .as_deref()
            .and_then(parse_time)
            .map(|t| ((Utc::now() - t).num_milliseconds().max(0) as f64) / 1000.0)
            .unwrap_or(0.0);
        stats.failed_last_hour = c
            .query_row(
                "SELECT COUNT(*) FROM master_jobs WHERE status = 'failed' AND finished_at >= ?1",
                [hour_ago],
                |r| r.get::<_, i64>(0),
            )?
            .max(0) as u64;
        Ok(stats)
    })
    .await
}

/// A job that reached a final state, for the job metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedJob {
    /// Job id.
    pub id: String,
    /// [`JobStatus::Done`] or [`JobStatus::Failed`] (an expired job: the one it had).
    pub outcome: JobStatus,
    /// Style name.
    pub style: String,
    /// Output format name.
    pub format: String,
    /// `started_at` to `finished_at` in seconds (`None` if it never started).
    pub duration_sec: Option<f64>,
}

/// Jobs that finished at or after `since` (RFC 3339), oldest first (at most 1000).
/// Expired jobs are included with the outcome they had.
pub async fn finished_since(pool: &Pool, since: String) -> Result<Vec<FinishedJob>, DbError> {
    with_conn(pool, move |c| {
        let mut stmt = c.prepare(
            "SELECT id, status, error, style, out_format, started_at, finished_at \
             FROM master_jobs WHERE finished_at >= ?1 \
             AND status IN ('done', 'failed', 'expired') ORDER BY finished_at, id LIMIT 1000",
        )?;
        let rows = stmt.query_map([since], |r| {
            let status: String = r.get(1)?;
            let error: Option<String> = r.get(2)?;
            let started: Option<String> = r.get(5)?;
            let finished: Option<String> = r.get(6)?;
            let outcome = match (JobStatus::parse(&status)?, error.is_some()) {
                (JobStatus::Done, _) | (JobStatus::Expired, false) => JobStatus::Done,
                _ => JobStatus::Failed,
            };
            let duration_sec = match (
                started.as_deref().and_then(parse_time),
                finished.as_deref().and_then(parse_time),
            ) {
                (Some(s), Some(f)) => Some(((f - s).num_milliseconds().max(0) as f64) / 1000.0),
                _ => None,
            };
            Ok(FinishedJob {
                id: r.get(0)?,
                outcome,
                style: r.get(3)?,
                format: r.get(4)?,
                duration_sec,
            })
        })?;
        rows.collect()
    })
    .await
}

/// Free bytes available to unprivileged users on the file system holding `path`
/// (the nearest existing ancestor if `path` does not exist yet).
pub fn disk_free_bytes(path: &Path) -> std::io::Result<u64> {
    let mut p = path;
    loop {
        if p.exists() {
            break;
        }
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => break,
        }
    }
    let st = rustix::fs::statvfs(p).map_err(std::io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_free_is_plausible_and_follows_missing_paths_up() {
        let dir = tempfile::tempdir().unwrap();
        let free = disk_free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        let deeper = disk_free_bytes(&dir.path().join("not/yet/there")).unwrap();
        // Same file system: equal up to what other processes wrote meanwhile (100 MB).
        assert!(free.abs_diff(deeper) < 100 << 20, "{free} vs {deeper}");
    }

    #[tokio::test]
    async fn queue_stats_count_states_age_and_recent_failures() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open_pool(&dir.path().join("t.db"), 2).unwrap();
        crate::db::migrate(&pool).await.unwrap();
        let two_min_ago = crate::time::format(Utc::now() - chrono::Duration::seconds(120));
        let now = crate::time::now_rfc3339();
        let two_hours_ago = crate::time::format(Utc::now() - chrono::Duration::hours(2));
        let rows = [
            ("a", "queued", None, two_min_ago.clone(), None),
            ("b", "queued", None, now.clone(), None),
            ("c", "running", None, now.clone(), None),
            (
                "d",
                "failed",
                Some("x"),
                two_hours_ago.clone(),
                Some(now.clone()),
            ),
            (
                "e",
                "failed",
                Some("y"),
                two_hours_ago.clone(),
                Some(two_hours_ago.clone()),
            ),
            ("f", "done", None, two_min_ago.clone(), Some(now.clone())),
        ];
        for (id, status, error, created, finished) in rows {
            let (error, finished) = (error.map(str::to_owned), finished.clone());
            let created = created.clone();
            with_conn(&pool, move |c| {
                c.execute(
                    "INSERT INTO master_jobs (id, status, error, style, target_lufs, true_peak_db, \
                     out_format, params_json, original_name, input_path, created_at, started_at, \
                     finished_at) VALUES (?1, ?2, ?3, 'edm', -14, -1, 'mp3', '{}', 'n', 'p', ?4, ?4, ?5)",
                    deadpool_sqlite::rusqlite::params![id, status, error, created, finished],
                )
            })
            .await
            .unwrap();
        }
        let s = queue_stats(&pool).await.unwrap();
        assert_eq!(s.by_state, [2, 1, 1, 2, 0]);
        assert_eq!(
            (s.count(JobStatus::Queued), s.count(JobStatus::Failed)),
            (2, 2)
        );
        assert_eq!(
            s.by_status().collect::<Vec<_>>(),
            vec![
                (JobStatus::Queued, 2),
                (JobStatus::Running, 1),
                (JobStatus::Done, 1),
                (JobStatus::Failed, 2),
                (JobStatus::Expired, 0),
            ]
        );
        assert_eq!(s.total(), 6);
        assert!(
            (s.oldest_pending_sec - 120.0).abs() < 5.0,
            "{}",
            s.oldest_pending_sec
        );
        assert_eq!(s.failed_last_hour, 1);
        let since = crate::time::format(Utc::now() - chrono::Duration::minutes(1));
        let fin = finished_since(&pool, since).await.unwrap();
        let ids: Vec<&str> = fin.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["d", "f"]);
        assert_eq!(fin[0].outcome, JobStatus::Failed);
        assert_eq!(fin[1].outcome, JobStatus::Done);
        assert_eq!(
            (fin[1].style.as_str(), fin[1].format.as_str()),
            ("edm", "mp3")
        );
        let d = fin[1].duration_sec.unwrap();
        assert!((d - 120.0).abs() < 5.0, "{d}");
    }
}
