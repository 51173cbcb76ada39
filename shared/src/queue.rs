//! The apalis-sqlite queue: its one payload type, its one name, and its connection setup.
//!
//! The queue tables (`Jobs`, `Workers`) live in the same SQLite file as the app tables.
//! `SqliteStorage::setup` runs once per process on a throwaway pool (it sets
//! `synchronous=OFF` on its connection); the long-lived pool uses our own connect options.

use apalis_sqlite::{Config, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The queue every mastering job goes through.
pub const QUEUE_NAME: &str = "magic-master.master";

/// How often an idle worker looks for new jobs.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The queue payload: everything else lives in the job row, the single source of truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterTask {
    /// Id of the row in `master_jobs`.
    pub job_id: String,
}

/// Connect options for the queue's pool: WAL, `synchronous=NORMAL`, busy timeout, FKs.
pub fn connect_options(db_path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(db_path)
        .create_if_missing(true)
        .busy_timeout(crate::db::BUSY_TIMEOUT)
        .foreign_keys(true)
        .pragma("journal_mode", "WAL")
        .pragma("synchronous", "NORMAL")
}

/// Creates or upgrades the queue tables. Retries a few times because several processes may
/// start at once on a fresh file.
pub async fn setup(db_path: &Path) -> Result<(), apalis_sqlite::Error> {
    let mut last_err = None;
    for attempt in 0..5u64 {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect_options(db_path))
            .await?;
        let result = SqliteStorage::setup(&pool).await;
        pool.close().await;
        match result {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, attempt, "queue setup failed, retrying");
                last_err = Some(e);
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
        }
    }
    Err(last_err.unwrap_or_else(|| unreachable!("loop ran at least once")))
}

/// Opens the long-lived queue pool (call [`setup`] first).
pub async fn open_pool(db_path: &Path) -> Result<SqlitePool, apalis_sqlite::Error> {
    Ok(SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(connect_options(db_path))
        .await?)
}

/// Queue configuration: explicit queue name, one job per fetch, the given heartbeat.
pub fn config(heartbeat: Duration) -> Config {
    Config::default()
        .queue(QUEUE_NAME)
        .batch_size(1)
        .heartbeat_interval(heartbeat)
        .missed_heartbeats(2)
}

/// A storage handle for pushing or consuming [`MasterTask`]s.
pub fn storage(pool: &SqlitePool, heartbeat: Duration) -> SqliteStorage<MasterTask> {
    SqliteStorage::new(pool).with_config(config(heartbeat))
}
