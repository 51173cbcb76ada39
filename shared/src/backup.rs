//! Consistent online snapshots of the SQLite database (app tables and queue together).
//!
//! [`snapshot`] runs `VACUUM INTO` on a pooled connection: SQLite copies one committed state
//! of the whole database (WAL included) into a new, compact file while other connections and
//! processes keep writing. The copy is written under a temporary name beside `dest`, checked
//! with `PRAGMA integrity_check`, fsynced and only then renamed to `dest`, so `dest` is either
//! a complete, verified snapshot or absent. Used by `magic-master-api backup OUT` and by
//! `GET /api/admin/backup/db`.

use crate::db::{DbError, with_conn};
use deadpool_sqlite::Pool;
use deadpool_sqlite::rusqlite::{self, OpenFlags};
use std::path::{Path, PathBuf};

/// Why a snapshot could not be made. Nothing is left at `dest` in any case.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The destination is unusable (no file name, directory missing…).
    #[error("backup destination {path}: {problem}")]
    Destination {
        /// The destination asked for.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The database could not be copied.
    #[error("snapshot failed: {0}")]
    Db(#[from] DbError),
    /// The copy did not pass `PRAGMA integrity_check`.
    #[error("snapshot failed its integrity check: {0}")]
    Integrity(String),
    /// Writing or renaming the file failed.
    #[error("snapshot file: {0}")]
    Io(#[from] std::io::Error),
}

/// A finished snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The download name of a snapshot taken now: `magic_master_backup_<YYYYmmdd_HHMMSS>.sqlite3`
/// (UTC), the same name as `deploy/backup_db.sh` uses.
pub fn file_name_now() -> String {
    format!(
        "magic_master_backup_{}.sqlite3",
        chrono::Utc::now().format("%Y%m%d_%H%M%S")
    )
}

/// Makes a consistent snapshot of the database behind `pool` at `dest` (which must not be an
/// existing directory; an existing file is replaced only once the new copy is verified).
pub async fn snapshot(pool: &Pool, dest: &Path) -> Result<Snapshot, BackupError> {
    let temp = temp_path_for(dest)?;
    let result = copy_and_check(pool, &temp, dest).await;
    if result.is_err() {
        remove_quietly(&temp);
    }
    result
}

/// Makes a snapshot of the database file at `db_path` (opened with a small pool of its own).
pub async fn snapshot_file(db_path: &Path, dest: &Path) -> Result<Snapshot, BackupError> {
    if !db_path.is_file() {
        return Err(BackupError::Destination {
            path: db_path.to_path_buf(),
            problem: "no database file there".to_owned(),
        });
    }
    let pool = crate::db::open_pool(db_path, 1)?;
    let result = snapshot(&pool, dest).await;
    pool.close();
    result
}

/// Runs `PRAGMA integrity_check` on a database file, read-only; `Ok(())` when it says `ok`.
pub fn integrity_check(path: &Path) -> Result<(), BackupError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(DbError::from)?;
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .map_err(DbError::from)?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(DbError::from)?
        .collect::<Result<_, _>>()
        .map_err(DbError::from)?;
    if lines == ["ok"] {
        Ok(())
    } else {
        Err(BackupError::Integrity(lines.join("; ")))
    }
}

fn temp_path_for(dest: &Path) -> Result<PathBuf, BackupError> {
    let bad = |problem: &str| BackupError::Destination {
        path: dest.to_path_buf(),
        problem: problem.to_owned(),
    };
    let name = dest
        .file_name()
        .ok_or_else(|| bad("not a file name"))?
        .to_string_lossy()
        .into_owned();
    if dest.is_dir() {
        return Err(bad("is a directory"));
    }
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(bad("its directory does not exist"));
    }
    Ok(dir.join(format!(".{name}.partial-{}", uuid::Uuid::new_v4().simple())))
}

async fn copy_and_check(pool: &Pool, temp: &Path, dest: &Path) -> Result<Snapshot, BackupError> {
    let target = temp.to_string_lossy().into_owned();
    with_conn(pool, move |c| {
        c.execute("VACUUM INTO ?1", [target]).map(|_| ())
    })
    .await?;
    let (temp, dest) = (temp.to_path_buf(), dest.to_path_buf());
    tokio::task::spawn_blocking(move || -> Result<Snapshot, BackupError> {
        integrity_check(&temp)?;
        let file = std::fs::File::open(&temp)?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        drop(file);
        std::fs::rename(&temp, &dest)?;
        if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(Snapshot { path: dest, bytes })
    })
    .await
    .map_err(|e| BackupError::Io(std::io::Error::other(e.to_string())))?
}

fn remove_quietly(path: &Path) {
    for p in [
        path.to_path_buf(),
        PathBuf::from(format!("{}-journal", path.display())),
    ] {
        if let Err(e) = std::fs::remove_file(&p)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %p.display(), error = %e, "could not remove partial snapshot");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn snapshot_is_complete_verified_and_leaves_no_partial() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open_pool(&dir.path().join("live.db"), 2).unwrap();
        crate::db::migrate(&pool).await.unwrap();
        with_conn(&pool, |c| {
            c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);")
        })
        .await
        .unwrap();
        let out = dir.path().join("snap.sqlite3");
        let snap = snapshot(&pool, &out).await.unwrap();
        assert_eq!(snap.path, out);
        assert!(snap.bytes > 0);
        integrity_check(&out).unwrap();
        let conn = rusqlite::Connection::open(&out).unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");

        // A missing directory is a clear error and creates nothing.
        let err = snapshot(&pool, &dir.path().join("nope/x.sqlite3"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        // Garbage is refused by the integrity check.
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
        assert!(integrity_check(&junk).is_err());
    }

    #[test]
    fn file_name_has_the_documented_shape() {
        let n = file_name_now();
        assert!(
            n.starts_with("magic_master_backup_") && n.ends_with(".sqlite3"),
            "{n}"
        );
        assert_eq!(n.len(), "magic_master_backup_20260101_031500.sqlite3".len());
    }
}
