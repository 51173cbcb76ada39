//! What the admin API reads and records beyond the other modules' rows: the service totals
//! of `GET /api/admin/stats` and the audit trail (`admin_audit`), one row for every admin
//! action that reads private data or changes something.

use crate::accounts::User;
use crate::db::{DbError, with_conn};
use chrono::{DateTime, Utc};
use deadpool_sqlite::Pool;
use deadpool_sqlite::rusqlite::params;

/// Service totals at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Registered accounts.
    pub users: i64,
    /// Job rows (every status).
    pub jobs: i64,
    /// Jobs created since 00:00 UTC of `now`'s day.
    pub jobs_today: i64,
    /// Payments that were credited (refunded ones included).
    pub payments_credited: i64,
}

/// Reads the [`Totals`] as of `now`.
pub async fn totals(pool: &Pool, now: DateTime<Utc>) -> Result<Totals, DbError> {
    let today = format!("{}T00:00:00.000Z", crate::quota::day(now));
    with_conn(pool, move |c| {
        let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0));
        Ok(Totals {
            users: count("SELECT COUNT(*) FROM users")?,
            jobs: count("SELECT COUNT(*) FROM master_jobs")?,
            jobs_today: c.query_row(
                "SELECT COUNT(*) FROM master_jobs WHERE created_at >= ?1",
                [&today],
                |r| r.get(0),
            )?,
            payments_credited: count(
                "SELECT COUNT(*) FROM payments WHERE credited_at IS NOT NULL",
            )?,
        })
    })
    .await
}

/// Writes one audit row: `admin` did `action` (e.g. `users.update`) on `target` `at` that
/// time, with `details` as JSON.
pub async fn audit(
    pool: &Pool,
    at: DateTime<Utc>,
    admin: &User,
    action: &'static str,
    target: Option<String>,
    details: serde_json::Value,
) -> Result<(), DbError> {
    let (admin_id, email) = (admin.id, admin.email.clone());
    with_conn(pool, move |c| {
        c.execute(
            "INSERT INTO admin_audit (admin_id, admin_email, action, target, details, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                admin_id,
                email,
                action,
                target,
                details.to_string(),
                crate::time::format(at)
            ],
        )
        .map(|_| ())
    })
    .await
}
