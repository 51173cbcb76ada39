//! Daily allowances and bought tokens. A job that uses quota gets one `quota_usage` row,
//! written in the same transaction as the job row; the row is refunded at most once (a
//! conditional update), in the same transaction that fails the job for good.
//!
//! Days are UTC days; the allowance resets at 00:00 UTC.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use deadpool_sqlite::rusqlite::{self, OptionalExtension, params};

/// Whose allowance a job uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A registered user (daily allowance of the tier, then bought tokens).
    User(i64),
    /// A guest, counted by its client key: the IPv4 address or the IPv6 /64
    /// (`203.0.113.7`, `2001:db8:1:2::/64`; the API's `security::client_key`).
    Guest(String),
}

/// Where a reserved master came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// One of the day's included masters.
    Daily,
    /// A bought token (taken from `users.tokens`).
    Token,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Daily => "daily",
            Source::Token => "token",
        }
    }
}

/// The quota is used up until `reset_at`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the daily limit of {daily_limit} masters is used up; it resets at {}",
    crate::time::format(*.reset_at)
)]
pub struct Exhausted {
    /// The allowance that was used up.
    pub daily_limit: u32,
    /// When it resets.
    pub reset_at: DateTime<Utc>,
}

/// The current UTC day as `YYYY-MM-DD`.
pub fn day(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%d").to_string()
}

/// The next 00:00 UTC after `now`.
pub fn reset_at(now: DateTime<Utc>) -> DateTime<Utc> {
    (now.date_naive() + Duration::days(1))
        .and_time(NaiveTime::MIN)
        .and_utc()
}

/// Masters of `subject` counted against the daily allowance of `day` (refunded ones not).
pub fn used_on(c: &rusqlite::Connection, subject: &Subject, day: &str) -> rusqlite::Result<u32> {
    let n: i64 = match subject {
        Subject::User(id) => c.query_row(
            "SELECT COUNT(*) FROM quota_usage WHERE user_id = ?1 AND day = ?2 \
             AND source = 'daily' AND refunded_at IS NULL",
            params![id, day],
            |r| r.get(0),
        )?,
        Subject::Guest(ip) => c.query_row(
            "SELECT COUNT(*) FROM quota_usage WHERE guest_ip = ?1 AND user_id IS NULL \
             AND day = ?2 AND source = 'daily' AND refunded_at IS NULL",
            params![ip, day],
            |r| r.get(0),
        )?,
    };
    Ok(n.clamp(0, i64::from(u32::MAX)) as u32)
}

/// Reserves one master for `job_id`: a daily slot when one is left, else (users only) a
/// bought token. Run inside an immediate transaction so concurrent reservations count
/// each other.
pub fn reserve(
    tx: &rusqlite::Transaction<'_>,
    job_id: &str,
    subject: &Subject,
    daily_limit: u32,
) -> rusqlite::Result<Result<Source, Exhausted>> {
    let now = Utc::now();
    let today = day(now);
    let source = if used_on(tx, subject, &today)? < daily_limit {
        Source::Daily
    } else {
        let took_token = match subject {
            Subject::User(id) => {
                tx.execute(
                    "UPDATE users SET tokens = tokens - 1 WHERE id = ?1 AND tokens > 0",
                    [id],
                )? == 1
            }
            Subject::Guest(_) => false,
        };
        if !took_token {
            return Ok(Err(Exhausted {
                daily_limit,
                reset_at: reset_at(now),
            }));
        }
        Source::Token
    };
    let (user_id, guest_ip) = match subject {
        Subject::User(id) => (Some(*id), None),
        Subject::Guest(ip) => (None, Some(ip.clone())),
    };
    tx.execute(
        "INSERT INTO quota_usage (job_id, user_id, guest_ip, day, source, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            job_id,
            user_id,
            guest_ip,
            today,
            source.as_str(),
            crate::time::format(now)
        ],
    )?;
    Ok(Ok(source))
}

/// Gives back what `job_id` reserved: the daily slot stops counting, a token returns to
/// its user. Idempotent: returns `false` when there was nothing (left) to refund.
pub fn refund(c: &rusqlite::Connection, job_id: &str) -> rusqlite::Result<bool> {
    let changed = c.execute(
        "UPDATE quota_usage SET refunded_at = ?2 WHERE job_id = ?1 AND refunded_at IS NULL",
        params![job_id, crate::time::now_rfc3339()],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    let row: Option<(String, Option<i64>)> = c
        .query_row(
            "SELECT source, user_id FROM quota_usage WHERE job_id = ?1",
            [job_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((source, Some(user_id))) = row
        && source == "token"
    {
        c.execute(
            "UPDATE users SET tokens = tokens + 1 WHERE id = ?1",
            [user_id],
        )?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn resets_at_the_next_utc_midnight() {
        let t = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap();
        assert_eq!(day(t), "2026-11-30");
        assert_eq!(crate::time::format(reset_at(t)), "2026-12-01T00:00:00.000Z");
    }

    #[tokio::test]
    async fn daily_slots_then_tokens_then_exhausted_and_refunds_once() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open_pool(&dir.path().join("t.db"), 2).unwrap();
        crate::db::migrate(&pool).await.unwrap();
        let user = crate::accounts::create(&pool, "q@x.io", "h", false)
            .await
            .unwrap()
            .unwrap();
        crate::accounts::grant_tokens(&pool, user.id, 1)
            .await
            .unwrap();
        let uid = user.id;
        let results = crate::db::with_conn(&pool, move |c| {
            let mut out = Vec::new();
            for i in 0..4 {
                let tx = c.transaction()?;
                out.push(reserve(&tx, &format!("job{i}"), &Subject::User(uid), 2)?);
                tx.commit()?;
            }
            Ok(out)
        })
        .await
        .unwrap();
        assert_eq!(results[0], Ok(Source::Daily));
        assert_eq!(results[1], Ok(Source::Daily));
        assert_eq!(results[2], Ok(Source::Token));
        assert!(results[3].is_err());
        let tokens = crate::accounts::by_id(&pool, uid)
            .await
            .unwrap()
            .unwrap()
            .tokens;
        assert_eq!(tokens, 0);
        // Refunding the token job twice gives the token back once.
        let (first, second) =
            crate::db::with_conn(&pool, |c| Ok((refund(c, "job2")?, refund(c, "job2")?)))
                .await
                .unwrap();
        assert!(first && !second);
        let tokens = crate::accounts::by_id(&pool, uid)
            .await
            .unwrap()
            .unwrap()
            .tokens;
        assert_eq!(tokens, 1);
        // Refunding a daily slot frees it.
        let used = crate::db::with_conn(&pool, move |c| {
            refund(c, "job0")?;
            used_on(c, &Subject::User(uid), &day(Utc::now()))
        })
        .await
        .unwrap();
        assert_eq!(used, 1);
    }
}
