//! The retention sweeper: deletes the files of jobs finished longer than the TTL ago and
//! marks those jobs `expired`; also removes stale temp uploads.

use crate::AppState;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Temp uploads older than this are leftovers of a crash and are deleted.
const STALE_TEMP_AGE: Duration = Duration::from_secs(6 * 3600);

/// One sweep; returns how many jobs were expired.
pub async fn sweep_once(state: &AppState) -> Result<usize, shared::db::DbError> {
    let due = shared::jobs::due_for_expiry(&state.db, state.settings.jobs_done_ttl_seconds).await?;
    let mut expired = 0;
    for job in due {
        if let Err(e) = shared::paths::remove_job_files(&state.settings.data_dir, &job.id) {
            tracing::warn!(job_id = %job.id, error = %e, "sweep: delete failed");
        }
        if shared::jobs::mark_expired(&state.db, &job.id).await? {
            expired += 1;
        }
    }
    remove_stale_temp_files(&state.settings.temp_dir);
    if expired > 0 {
        tracing::info!(expired, "retention sweep");
    }
    Ok(expired)
}

fn remove_stale_temp_files(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if old && entry.file_name().to_string_lossy().starts_with("upload-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Sweeps every `SWEEP_INTERVAL_SECONDS` until shut down.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let every = Duration::from_secs(state.settings.sweep_interval_seconds);
    loop {
        if let Err(e) = sweep_once(&state).await {
            tracing::warn!(error = %e, "retention sweep failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
