//! The health report behind `/api/health`, `/status` and the monitor's alerts.
//!
//! It is computed at most once per [`HEALTH_CACHE_TTL`] and shared by every caller in that
//! window (`/api/health` is exempt from the rate limits, so its database work must not
//! follow the caller's pace): the database is probed with a fresh connection
//! ([`shared::db::probe_file`]), queue and worker figures come from the database (right
//! however many worker processes run), free disk from the file system of the temp dir.
//! Public answers name no file-system path ([`without_paths`]).

use crate::AppState;
use shared::jobs::JobStatus;
use shared::stats::QueueStats;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A queue is reported as `backlog` when its oldest waiting job is older than this.
pub const BACKLOG_OLDEST_SECONDS: f64 = 900.0;
/// …or when more than this many jobs wait.
pub const BACKLOG_PENDING: u64 = 20;

/// Everything `/api/health` reports, computed once.
#[derive(Debug, Clone)]
pub struct HealthReport {
    /// `None` when the database answered; the error text otherwise.
    pub database_error: Option<String>,
    /// Free bytes in the temp dir's file system (`None`: unknown).
    pub disk_free_bytes: Option<u64>,
    /// The threshold in bytes under which the disk is `low`.
    pub disk_low_bytes: u64,
    /// The temp dir (for logs and alerts only: never in a public answer).
    pub disk_path: PathBuf,
    /// Whether an `ffmpeg` executable is on `PATH`.
    pub ffmpeg: bool,
    /// Queue figures (zeros when the database failed).
    pub queue: QueueStats,
    /// Workers with a recent heartbeat.
    pub workers_alive: u64,
}

impl HealthReport {
    /// True when free disk is known and under the threshold.
    pub fn disk_low(&self) -> bool {
        self.disk_free_bytes
            .is_some_and(|free| free < self.disk_low_bytes)
    }

    /// True when jobs wait and no worker is alive.
    pub fn no_workers_while_jobs_wait(&self) -> bool {
        self.workers_alive == 0 && self.queue.count(JobStatus::Queued) > 0
    }

    /// The components that make the service degraded (empty: `ok`).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.database_error {
            out.push(format!("database: {e}"));
        }
        if self.disk_low() {
            out.push(format!(
                "disk: {} MB free in {} (threshold {} MB)",
                self.disk_free_bytes.unwrap_or(0) >> 20,
                self.disk_path.display(),
                self.disk_low_bytes >> 20
            ));
        }
        if self.no_workers_while_jobs_wait() {
            out.push(format!(
                "workers: none alive while {} job(s) wait",
                self.queue.count(JobStatus::Queued)
            ));
        }
        out
    }

    /// `ok` or `degraded`.
    pub fn status(&self) -> &'static str {
        if self.problems().is_empty() {
            "ok"
        } else {
            "degraded"
        }
    }
}

/// True when an executable `ffmpeg` is on `PATH`.
pub fn ffmpeg_present() -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::metadata(dir.join("ffmpeg"))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// How long one health report is served before it is computed again.
pub const HEALTH_CACHE_TTL: Duration = Duration::from_secs(1);
/// The longest one computation may take; past it the database is reported in error.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// The last health report and when it was computed. One computation at a time: callers
/// arriving while it runs wait for it (at most [`HEALTH_TIMEOUT`]) and share its result.
#[derive(Debug)]
pub struct HealthCache {
    ttl: Duration,
    last: tokio::sync::Mutex<Option<(Instant, Arc<HealthReport>)>>,
}

impl HealthCache {
    /// An empty cache whose reports live `ttl`.
    pub fn new(ttl: Duration) -> HealthCache {
        HealthCache {
            ttl,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached report if it is younger than the TTL, else the one `compute` gives (then
    /// cached; `compute` is not polled when the cached report serves).
    pub async fn get_or_compute(
        &self,
        compute: impl Future<Output = HealthReport>,
    ) -> Arc<HealthReport> {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < self.ttl
        {
            return report.clone();
        }
        let report = Arc::new(compute.await);
        *last = Some((Instant::now(), report.clone()));
        report
    }
}

impl Default for HealthCache {
    fn default() -> Self {
        HealthCache::new(HEALTH_CACHE_TTL)
    }
}

/// The health report, from the cache shared by `/api/health`, `/status` and the monitor.
pub async fn current(state: &AppState) -> Arc<HealthReport> {
    state
        .health
        .get_or_compute(async {
            match tokio::time::timeout(HEALTH_TIMEOUT, report(state)).await {
                Ok(r) => r,
                Err(_) => timed_out(state),
            }
        })
        .await
}

/// The report when a computation took longer than [`HEALTH_TIMEOUT`].
fn timed_out(state: &AppState) -> HealthReport {
    HealthReport {
        database_error: Some(format!(
            "the health check took over {} s",
            HEALTH_TIMEOUT.as_secs()
        )),
        disk_free_bytes: None,
        disk_low_bytes: state.settings.disk_low_mb.saturating_mul(1024 * 1024),
        disk_path: state.settings.temp_dir.clone(),
        ffmpeg: ffmpeg_present(),
        queue: QueueStats::default(),
        workers_alive: 0,
    }
}

/// Gathers the health figures now (use [`current`] to share them).
pub async fn report(state: &AppState) -> HealthReport {
    metrics::counter!("magic_master_health_checks_total").increment(1);
    let db_path = state.settings.db_path.clone();
    let probe = tokio::task::spawn_blocking(move || shared::db::probe_file(&db_path))
        .await
        .unwrap_or_else(|e| Err(format!("database probe failed: {e}")));
    let queue = shared::stats::queue_stats(&state.db).await;
    let database_error = match (&probe, &queue) {
        (Err(e), _) => Some(e.clone()),
        (Ok(()), Err(e)) => Some(e.to_string()),
        _ => None,
    };
    let workers_alive = if database_error.is_none() {
        state.workers_alive().await
    } else {
        0
    };
    let temp_dir = state.settings.temp_dir.clone();
    let disk_path = temp_dir.clone();
    let disk_free_bytes =
        tokio::task::spawn_blocking(move || shared::stats::disk_free_bytes(&temp_dir).ok())
            .await
            .ok()
            .flatten();
    HealthReport {
        database_error,
        disk_free_bytes,
        disk_low_bytes: state.settings.disk_low_mb.saturating_mul(1024 * 1024),
        disk_path,
        ffmpeg: ffmpeg_present(),
        queue: queue.unwrap_or_default(),
        workers_alive,
    }
}

/// `text` with the server's own directories (database file, data dir, temp dir) replaced by
/// what they are: an error text may quote them, and public answers name no path.
pub fn without_paths(state: &AppState, text: &str) -> String {
    let s = &state.settings;
    redact_paths(
        text,
        &[
            (&s.db_path, "<database file>"),
            (&s.temp_dir, "<temp dir>"),
            (&s.data_dir, "<data dir>"),
        ],
    )
}

/// `text` with each path of `paths` replaced by its name, longest path first (a directory is
/// often a prefix of the others).
pub fn redact_paths(text: &str, paths: &[(&Path, &str)]) -> String {
    let mut paths: Vec<(String, &str)> = paths
        .iter()
        .map(|(p, name)| (p.display().to_string(), *name))
        .filter(|(p, _)| !p.is_empty())
        .collect();
    paths.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    paths
        .iter()
        .fold(text.to_owned(), |t, (p, name)| t.replace(p.as_str(), name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn sample() -> HealthReport {
        HealthReport {
            database_error: None,
            disk_free_bytes: Some(1 << 30),
            disk_low_bytes: 200 << 20,
            disk_path: PathBuf::from("/srv/mm/tmp"),
            ffmpeg: false,
            queue: QueueStats::default(),
            workers_alive: 1,
        }
    }

    /// 64 concurrent callers share one computation; after the TTL the next caller computes
    /// again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_share_one_computation_per_window() {
        let cache = Arc::new(HealthCache::new(Duration::from_millis(300)));
        let computed = Arc::new(AtomicUsize::new(0));
        let call = |cache: Arc<HealthCache>, computed: Arc<AtomicUsize>| async move {
            cache
                .get_or_compute(async {
                    computed.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    sample()
                })
                .await
        };
        let callers: Vec<_> = (0..64)
            .map(|_| tokio::spawn(call(cache.clone(), computed.clone())))
            .collect();
        for c in callers {
            assert_eq!(c.await.unwrap().workers_alive, 1);
        }
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        call(cache.clone(), computed.clone()).await;
        assert_eq!(computed.load(Ordering::SeqCst), 1, "still fresh");
        tokio::time::sleep(Duration::from_millis(350)).await;
        call(cache.clone(), computed.clone()).await;
        assert_eq!(
            computed.load(Ordering::SeqCst),
            2,
            "computed again after the TTL"
        );
    }

    #[test]
    fn error_texts_lose_the_server_paths() {
        let data = Path::new("/srv/mm");
        let db = Path::new("/srv/mm/magic_master.db");
        let tmp = Path::new("/srv/mm/tmp");
        let text = "unable to open /srv/mm/magic_master.db (in /srv/mm, spool /srv/mm/tmp/x)";
        assert_eq!(
            redact_paths(
                text,
                &[
                    (data, "<data dir>"),
                    (tmp, "<temp dir>"),
                    (db, "<database file>")
                ]
            ),
            "unable to open <database file> (in <data dir>, spool <temp dir>/x)"
        );
    }

    #[test]
    fn problems_name_the_temp_dir_for_the_logs() {
        let mut r = sample();
        r.disk_free_bytes = Some(1 << 20);
        assert_eq!(r.status(), "degraded");
        assert!(
            r.problems()[0].contains("/srv/mm/tmp"),
            "{:?}",
            r.problems()
        );
    }
}
