//! The app's SQLite pool (rusqlite through deadpool-sqlite) and its migrations runner.
//!
//! Every connection runs in WAL mode with `synchronous=NORMAL`, a busy timeout and foreign
//! keys on. Migrations are the files `migrations/NNNN_name.sql`, embedded at build time and
//! applied in order once each; the applied ones are recorded in `schema_migrations`.

use deadpool_sqlite::rusqlite::{self, OptionalExtension};
use deadpool_sqlite::{Hook, HookError, Pool, Runtime};
use std::path::Path;
use std::time::Duration;

/// How long a connection waits for a lock held by another connection or process.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No connection could be taken from the pool.
    #[error("database pool: {0}")]
    Pool(String),
    /// The blocking database call panicked or was aborted.
    #[error("database call failed: {0}")]
    Interact(String),
}

/// Pragmas applied to every new connection.
const CONNECTION_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;";

/// Applies the per-connection settings to a connection.
pub fn configure_connection(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(CONNECTION_PRAGMAS)
}

/// Opens a pool on `path` (the file is created if missing). Connections are configured on
/// creation; call [`migrate`] once after opening.
pub fn open_pool(path: &Path, max_size: usize) -> Result<Pool, DbError> {
    let config = deadpool_sqlite::Config::new(path);
    let pool = config
        .builder(Runtime::Tokio1)
        .map_err(|e| DbError::Pool(e.to_string()))?
        .max_size(max_size)
        .post_create(Hook::async_fn(|conn, _| {
            Box::pin(async move {
                conn.interact(|c| configure_connection(c))
                    .await
                    .map_err(|e| HookError::message(e.to_string()))?
                    .map_err(HookError::Backend)
            })
        }))
        .build()
        .map_err(|e| DbError::Pool(e.to_string()))?;
    Ok(pool)
}

/// Runs `f` on a pooled connection in the blocking thread pool.
pub async fn with_conn<T, F>(pool: &Pool, f: F) -> Result<T, DbError>
where
    F: FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let conn = pool.get().await.map_err(|e| DbError::Pool(e.to_string()))?;
    conn.interact(f)
        .await
        .map_err(|e| DbError::Interact(e.to_string()))?
        .map_err(DbError::from)
}

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Sequence number (the `NNNN` of the file name).
    pub version: i64,
    /// File name, for the record.
    pub name: &'static str,
    /// SQL text.
    pub sql: &'static str,
}

/// The app's migrations, in order. Append only: never edit a shipped file.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_master_jobs.sql",
        sql: include_str!("../../migrations/0001_master_jobs.sql"),
    },
    Migration {
        version: 2,
        name: "0002_worker_heartbeats.sql",
        sql: include_str!("../../migrations/0002_worker_heartbeats.sql"),
    },
    Migration {
        version: 3,
        name: "0003_accounts_quotas_payments.sql",
        sql: include_str!("../../migrations/0003_accounts_quotas_payments.sql"),
    },
    Migration {
        version: 4,
        name: "0004_payment_details.sql",
        sql: include_str!("../../migrations/0004_payment_details.sql"),
    },
    Migration {
        version: 5,
        name: "0005_partial_refunds.sql",
        sql: include_str!("../../migrations/0005_partial_refunds.sql"),
    },
    Migration {
        version: 6,
        name: "0006_job_cancel.sql",
        sql: include_str!("../../migrations/0006_job_cancel.sql"),
    },
];

/// Applies the pending migrations of `migrations` in one immediate transaction each;
/// returns how many were applied. Safe to run from several processes at once.
pub fn apply_migrations(
    conn: &mut rusqlite::Connection,
    migrations: &[Migration],
) -> rusqlite::Result<usize> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )",
    )?;
    let mut applied = 0;
    for m in migrations {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let done: Option<i64> = tx
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                [m.version],
                |row| row.get(0),
            )
            .optional()?;
        if done.is_none() {
            tx.execute_batch(m.sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![m.version, m.name, crate::time::now_rfc3339()],
            )?;
            applied += 1;
        }
        tx.commit()?;
    }
    Ok(applied)
}

/// Applies the app's pending migrations through `pool`.
pub async fn migrate(pool: &Pool) -> Result<usize, DbError> {
    with_conn(pool, |conn| apply_migrations(conn, MIGRATIONS)).await
}

/// Opens a fresh connection on the database file and reads from the app tables: catches a
/// file that vanished, became unreadable or is not a database any more, which pooled
/// connections (holding the old file open) would not notice.
pub fn probe_file(path: &Path) -> Result<(), String> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    conn.query_row("SELECT COUNT(*) FROM master_jobs LIMIT 1", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
        }
    }

    #[tokio::test]
    async fn pool_connections_use_wal_and_migrations_apply_once() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open_pool(&dir.path().join("t.db"), 4).unwrap();
        assert_eq!(migrate(&pool).await.unwrap(), MIGRATIONS.len());
        assert_eq!(migrate(&pool).await.unwrap(), 0);
        let (mode, sync, fk, busy): (String, i64, i64, i64) = with_conn(&pool, |c| {
            Ok((
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?,
                c.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?,
            ))
        })
        .await
        .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 1, "NORMAL");
        assert_eq!(fk, 1);
        assert!(busy >= 5000, "{busy}");
    }
}
