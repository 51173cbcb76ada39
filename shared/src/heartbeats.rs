//! Liveness of worker processes (`worker_heartbeats`), for health checks.

use crate::db::{DbError, with_conn};
use chrono::{DateTime, Utc};
use deadpool_sqlite::Pool;
use deadpool_sqlite::rusqlite::params;

/// Seconds within which a worker's heartbeat counts as alive: three heartbeat periods of
/// `heartbeat_seconds` (a worker beats once a period).
pub fn alive_window(heartbeat_seconds: u64) -> u64 {
    heartbeat_seconds.saturating_mul(3)
}

/// Records that worker `name` (process `pid`, started at `started_at`) is alive now.
pub async fn beat(
    pool: &Pool,
    name: &str,
    pid: u32,
    started_at: DateTime<Utc>,
) -> Result<(), DbError> {
    let (name, started_at) = (name.to_owned(), crate::time::format(started_at));
    with_conn(pool, move |c| {
        c.execute(
            "INSERT INTO worker_heartbeats (name, pid, started_at, last_seen) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT(name) DO UPDATE SET \
             pid = excluded.pid, started_at = excluded.started_at, last_seen = excluded.last_seen",
            params![name, pid, started_at, crate::time::unix_now()],
        )
        .map(|_| ())
    })
    .await
}

/// Removes a worker's row (on clean shutdown).
pub async fn remove(pool: &Pool, name: &str) -> Result<(), DbError> {
    let name = name.to_owned();
    with_conn(pool, move |c| {
        c.execute("DELETE FROM worker_heartbeats WHERE name = ?1", [name])
            .map(|_| ())
    })
    .await
}

/// Workers seen within the last `within_seconds`.
pub async fn alive(pool: &Pool, within_seconds: u64) -> Result<u64, DbError> {
    with_conn(pool, move |c| {
        let cutoff = crate::time::unix_now() - i64::try_from(within_seconds).unwrap_or(0);
        c.query_row(
            "SELECT COUNT(*) FROM worker_heartbeats WHERE last_seen >= ?1",
            [cutoff],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n.max(0) as u64)
    })
    .await
}
