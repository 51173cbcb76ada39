//! Reading and writing `payments` rows (the transitions that credit or take back are in
//! [`super::ledger`]).

use crate::accounts::Tier;
use crate::db::{DbError, with_conn};
use crate::payments::plans::{Grant, Plan};
use crate::payments::record::{Payment, PaymentStatus};
use deadpool_sqlite::Pool;
use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, params};

const COLUMNS: &str = "id, user_id, plan, amount, currency, status, demo, created_at, updated_at, \
    credited_at, refunded_at, provider_payment_id, confirmation_url, grant_tier, grant_days, \
    grant_tokens, error, refunded_kopecks";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Payment> {
    let status: String = row.get(5)?;
    let grant_tier: Option<String> = row.get(13)?;
    let grant_days: Option<u32> = row.get(14)?;
    let grant_tokens: Option<u32> = row.get(15)?;
    let grant = match (
        grant_tier.as_deref().and_then(Tier::parse),
        grant_days,
        grant_tokens,
    ) {
        (Some(tier), Some(days), _) => Some(Grant::Tier { tier, days }),
        (None, _, Some(n)) => Some(Grant::Tokens(n)),
        _ => None,
    };
    Ok(Payment {
        id: row.get(0)?,
        user_id: row.get(1)?,
        plan: row.get(2)?,
        amount: row.get(3)?,
        currency: row.get(4)?,
        status: PaymentStatus::parse(&status),
        demo: row.get(6)?,
        created_at: crate::time::column(row, 7)?,
        updated_at: crate::time::column(row, 8)?,
        credited_at: crate::time::optional_column(row, 9)?,
        refunded_at: crate::time::optional_column(row, 10)?,
        provider_payment_id: row.get(11)?,
        confirmation_url: row.get(12)?,
        grant,
        error: row.get(16)?,
        // Never negative (a CHECK constraint).
        refunded_kopecks: u64::try_from(row.get::<_, i64>(17)?).unwrap_or(0),
    })
}

/// Reads a payment on an open connection.
pub fn get_in(c: &rusqlite::Connection, id: &str) -> rusqlite::Result<Option<Payment>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM payments WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// A new random payment id: 128 random bits as 32 hex characters (uuid v4, simple form).
pub fn new_payment_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Inserts a `pending` payment of `user_id` for `plan` (the idempotence key is `id`).
pub async fn create(
    pool: &Pool,
    id: &str,
    user_id: i64,
    plan: &Plan,
    demo: bool,
) -> Result<Payment, DbError> {
    let (id, plan) = (id.to_owned(), plan.clone());
    with_conn(pool, move |c| {
        let now = crate::time::now_rfc3339();
        let (tier, days, tokens) = match plan.grant() {
            Some(Grant::Tier { tier, days }) => (Some(tier.as_str()), Some(days), None),
            Some(Grant::Tokens(n)) => (None, None, Some(n)),
            None => (None, None, None),
        };
        c.execute(
            "INSERT INTO payments (id, user_id, plan, amount, currency, status, idempotence_key, \
             demo, created_at, updated_at, grant_tier, grant_days, grant_tokens) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?1, ?6, ?7, ?7, ?8, ?9, ?10)",
            params![
                id,
                user_id,
                plan.id,
                plan.price,
                plan.currency,
                demo,
                now,
                tier,
                days,
                tokens
            ],
        )?;
        get_in(c, &id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
    })
    .await
}

/// Records YooKassa's id and confirmation URL after a successful creation.
pub async fn attach_provider(
    pool: &Pool,
    id: &str,
    provider_payment_id: &str,
    confirmation_url: Option<&str>,
) -> Result<Option<Payment>, DbError> {
    let (id, pid, url) = (
        id.to_owned(),
        provider_payment_id.to_owned(),
        confirmation_url.map(str::to_owned),
    );
    with_conn(pool, move |c| {
        c.execute(
            "UPDATE payments SET provider_payment_id = ?2, confirmation_url = ?3, updated_at = ?4 \
             WHERE id = ?1",
            params![id, pid, url, crate::time::now_rfc3339()],
        )?;
        get_in(c, &id)
    })
    .await
}

/// Sets the confirmation URL (demo mode: the return URL).
pub async fn set_confirmation_url(pool: &Pool, id: &str, url: &str) -> Result<(), DbError> {
    let (id, url) = (id.to_owned(), url.to_owned());
    with_conn(pool, move |c| {
        c.execute(
            "UPDATE payments SET confirmation_url = ?2 WHERE id = ?1",
            params![id, url],
        )
        .map(|_| ())
    })
    .await
}

/// Marks a still-pending, uncredited payment `failed` with the reason.
pub async fn mark_failed(pool: &Pool, id: &str, error: &str) -> Result<(), DbError> {
    let (id, error) = (id.to_owned(), error.to_owned());
    with_conn(pool, move |c| {
        c.execute(
            "UPDATE payments SET status = 'failed', error = ?2, updated_at = ?3 \
             WHERE id = ?1 AND status = 'pending' AND credited_at IS NULL",
            params![id, error, crate::time::now_rfc3339()],
        )
        .map(|_| ())
    })
    .await
}

/// Reads a payment by our id.
pub async fn get(pool: &Pool, id: &str) -> Result<Option<Payment>, DbError> {
    let id = id.to_owned();
    with_conn(pool, move |c| get_in(c, &id)).await
}

/// Reads a payment by YooKassa's id.
pub async fn by_provider_id(pool: &Pool, provider_id: &str) -> Result<Option<Payment>, DbError> {
    let pid = provider_id.to_owned();
    with_conn(pool, move |c| {
        c.query_row(
            &format!("SELECT {COLUMNS} FROM payments WHERE provider_payment_id = ?1"),
            [pid],
            from_row,
        )
        .optional()
    })
    .await
}

/// The user's payments, newest first (at most `limit`).
pub async fn list_for_user(pool: &Pool, user_id: i64, limit: u32) -> Result<Vec<Payment>, DbError> {
    with_conn(pool, move |c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM payments WHERE user_id = ?1 \
             ORDER BY created_at DESC, rowid DESC LIMIT ?2"
        ))?;
        stmt.query_map(params![user_id, limit], from_row)?.collect()
    })
    .await
}
