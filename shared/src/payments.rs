//! Payments: the plans on sale, the `payments` rows and the one exactly-once path that
//! credits what a payment bought (or takes it back after a refund).
//!
//! Every state change is a conditional `UPDATE` inside a `BEGIN IMMEDIATE` transaction; the
//! account is changed only when that update changed exactly one row, so duplicate or
//! concurrent notifications for one payment credit (and refund) at most once.
//!
//! Refunds may be partial and several: YooKassa reports the cumulative refunded amount, the
//! row keeps the cumulative amount already acted on (`refunded_kopecks`, which only grows),
//! and only the increase is taken back. What is taken back in total is the refunded share of
//! the grant rounded up ([`share_taken_back`]), so it never exceeds what was given.
//!
//! What a plan grants is copied into the payment row when it is created, so editing the
//! plans file later never changes what an old payment credits or takes back.

use crate::accounts::{self, Tier, User};
use crate::db::{DbError, with_conn};
use chrono::{DateTime, Duration, Utc};
use deadpool_sqlite::Pool;
use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A plan on sale, as served by `GET /api/payments/plans` and read from
/// `MAGIC_MASTER_PAYMENT_PLANS_FILE` (a JSON array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Stable id used by `POST /api/payments/create` (`[a-z0-9_-]`, 1–64 characters).
    pub id: String,
    /// Display name (English).
    pub name: String,
    /// Display name (Russian); the English one when empty.
    #[serde(default)]
    pub name_ru: String,
    /// One-line description (English).
    #[serde(default)]
    pub description: String,
    /// One-line description (Russian); the English one when empty.
    #[serde(default)]
    pub description_ru: String,
    /// Price with two decimals, e.g. `"490.00"` (normalised on load).
    pub price: String,
    /// ISO 4217 currency code, e.g. `RUB`; the same for every plan.
    pub currency: String,
    /// Tier granted (`pro` or `studio`), with `duration_days`; `null` for a token pack.
    #[serde(default)]
    pub tier: Option<String>,
    /// Days of the tier granted.
    #[serde(default)]
    pub duration_days: Option<u32>,
    /// Tokens granted (one master each); `null` for a tier plan.
    #[serde(default)]
    pub tokens: Option<u32>,
    /// Feature list (English).
    #[serde(default)]
    pub features: Vec<String>,
    /// Feature list (Russian); the English one when empty.
    #[serde(default)]
    pub features_ru: Vec<String>,
}

/// What a paid plan gives the payer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The tier for this many days, added after the current paid period.
    Tier {
        /// `Pro` or `Studio`.
        tier: Tier,
        /// Days added.
        days: u32,
    },
    /// Tokens added to the balance.
    Tokens(u32),
}

impl Plan {
    /// What the plan grants (plans are validated on load, so this is always set).
    pub fn grant(&self) -> Option<Grant> {
        match (self.tier.as_deref(), self.duration_days, self.tokens) {
            (Some(tier), Some(days), None) => Some(Grant::Tier {
                tier: Tier::parse(tier)?,
                days,
            }),
            (None, None, Some(tokens)) => Some(Grant::Tokens(tokens)),
            _ => None,
        }
    }
}

/// The validated list of plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans {
    plans: Vec<Plan>,
}

fn plan(
    id: &str,
    (name, name_ru): (&str, &str),
    (description, description_ru): (&str, &str),
    price: &str,
    grant: Grant,
    features: &[&str],
    features_ru: &[&str],
) -> Plan {
    let (tier, duration_days, tokens) = match grant {
        Grant::Tier { tier, days } => (Some(tier.as_str().to_owned()), Some(days), None),
        Grant::Tokens(n) => (None, None, Some(n)),
    };
    Plan {
        id: id.to_owned(),
        name: name.to_owned(),
        name_ru: name_ru.to_owned(),
        description: description.to_owned(),
        description_ru: description_ru.to_owned(),
        price: price.to_owned(),
        currency: "RUB".to_owned(),
        tier,
        duration_days,
        tokens,
        features: features.iter().map(|s| (*s).to_owned()).collect(),
        features_ru: features_ru.iter().map(|s| (*s).to_owned()).collect(),
    }
}

impl Plans {
    /// The built-in plans: `pro_month`, `studio_month`, `tokens_10`, `tokens_50`.
    pub fn builtin() -> Plans {
        let pro = Grant::Tier {
            tier: Tier::Pro,
            days: 30,
        };
        let studio = Grant::Tier {
            tier: Tier::Studio,
            days: 30,
        };
        Plans {
            plans: vec![
                plan(
                    "pro_month",
                    ("Pro", "Pro"),
                    (
                        "For regular releases: 50 masters a day for 30 days.",
                        "Для регулярных релизов: 50 мастеров в день на 30 дней.",
                    ),
                    "490.00",
                    pro,
                    &[
                        "50 masters a day",
                        "WAV 16/24-bit, FLAC and MP3",
                        "Every style and loudness target",
                    ],
                    &[
                        "50 мастеров в день",
                        "WAV 16/24 бит, FLAC и MP3",
                        "Все стили и цели громкости",
                    ],
                ),
                plan(
                    "studio_month",
                    ("Studio", "Studio"),
                    (
                        "For studios and labels: 500 masters a day for 30 days.",
                        "Для студий и лейблов: 500 мастеров в день на 30 дней.",
                    ),
                    "1490.00",
                    studio,
                    &[
                        "500 masters a day",
                        "WAV 16/24-bit, FLAC and MP3",
                        "Every style and loudness target",
                    ],
                    &[
                        "500 мастеров в день",
                        "WAV 16/24 бит, FLAC и MP3",
                        "Все стили и цели громкости",
                    ],
                ),
                plan(
                    "tokens_10",
                    ("10 tokens", "10 токенов"),
                    (
                        "10 extra masters, used after the daily allowance; they do not expire.",
                        "10 дополнительных мастеров сверх дневного лимита, без срока действия.",
                    ),
                    "190.00",
                    Grant::Tokens(10),
                    &["10 masters beyond the daily allowance", "No expiry"],
                    &["10 мастеров сверх дневного лимита", "Без срока действия"],
                ),
                plan(
                    "tokens_50",
                    ("50 tokens", "50 токенов"),
                    (
                        "50 extra masters, used after the daily allowance; they do not expire.",
                        "50 дополнительных мастеров сверх дневного лимита, без срока действия.",
                    ),
                    "790.00",
                    Grant::Tokens(50),
                    &["50 masters beyond the daily allowance", "No expiry"],
                    &["50 мастеров сверх дневного лимита", "Без срока действия"],
                ),
            ],
        }
    }

    /// Reads and validates a plans file (a JSON array of [`Plan`]).
    pub fn from_file(path: &Path) -> Result<Plans, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
        Plans::from_json(&text)
    }

    /// Parses and validates a JSON array of plans.
    pub fn from_json(text: &str) -> Result<Plans, String> {
        let plans: Vec<Plan> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON array of plans: {e}"))?;
        Plans::new(plans)
    }

    /// Validates plans: unique well-formed ids, positive prices, one currency, and each plan
    /// either a paid tier with a number of days or a number of tokens.
    pub fn new(mut plans: Vec<Plan>) -> Result<Plans, String> {
        if plans.is_empty() {
            return Err("there must be at least one plan".to_owned());
        }
        let currency = plans[0].currency.clone();
        let mut seen = std::collections::HashSet::new();
        for p in &mut plans {
            let id = p.id.clone();
            let valid_id = (1..=64).contains(&id.len())
                && id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid_id {
                return Err(format!(
                    "plan id {id:?}: use 1-64 characters of a-z, 0-9, _ and -"
                ));
            }
            if !seen.insert(id.clone()) {
                return Err(format!("plan id {id:?} appears twice"));
            }
            if p.name.trim().is_empty() {
                return Err(format!("plan {id:?}: name is empty"));
            }
            p.price = normalize_amount(&p.price).ok_or_else(|| {
                format!(
                    "plan {id:?}: price {:?} is not an amount like \"490.00\" above zero",
                    p.price
                )
            })?;
            if p.currency.len() != 3 || !p.currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "plan {id:?}: currency {:?} is not a code like \"RUB\"",
                    p.currency
                ));
            }
            if p.currency != currency {
                return Err(format!(
                    "plan {id:?}: every plan must use one currency ({currency}), not {}",
                    p.currency
                ));
            }
            match (p.tier.as_deref(), p.duration_days, p.tokens) {
                (Some(t), Some(days), None) => {
                    match Tier::parse(t) {
                        Some(Tier::Pro | Tier::Studio) => {}
                        _ => {
                            return Err(format!(
                                "plan {id:?}: tier {t:?} is not \"pro\" or \"studio\""
                            ));
                        }
                    }
                    if days == 0 || days > 3660 {
                        return Err(format!("plan {id:?}: duration_days must be 1 to 3660"));
                    }
                    p.tier = Tier::parse(t).map(|t| t.as_str().to_owned());
                }
                (None, None, Some(tokens)) => {
                    if tokens == 0 || tokens > 1_000_000 {
                        return Err(format!("plan {id:?}: tokens must be 1 to 1000000"));
                    }
                }
                _ => {
                    return Err(format!(
                        "plan {id:?}: set either tier and duration_days, or tokens (not both)"
                    ));
                }
            }
            if p.name_ru.trim().is_empty() {
                p.name_ru = p.name.clone();
            }
            if p.description_ru.trim().is_empty() {
                p.description_ru = p.description.clone();
            }
            if p.features_ru.is_empty() {
                p.features_ru = p.features.clone();
            }
        }
        Ok(Plans { plans })
    }

    /// Every plan, in order.
    pub fn all(&self) -> &[Plan] {
        &self.plans
    }

    /// The plan with this id.
    pub fn get(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// The currency of every plan.
    pub fn currency(&self) -> &str {
        &self.plans[0].currency
    }
}

/// `"490"`, `"490.5"`, `"490.50"` → `"490.50"`-style two-decimal text; `None` unless a
/// positive amount with at most two decimals.
pub fn normalize_amount(text: &str) -> Option<String> {
    let minor = amount_minor_units(text)?;
    (minor > 0).then(|| format_amount(minor))
}

/// Minor units (kopecks) as two-decimal text: 49000 → `"490.00"`, 5 → `"0.05"`.
pub fn format_amount(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// How much of `granted` (tokens or days) a refund of `refunded` out of `amount` (both in
/// minor units) takes back in total: `ceil(granted × refunded / amount)`, rounded up so a
/// partial refund never leaves the payer more than was paid for, and never more than
/// `granted` (a figure above `amount` counts as `amount`). Exact integer arithmetic.
pub fn share_taken_back(granted: u32, refunded: u64, amount: u64) -> u32 {
    if amount == 0 {
        return 0;
    }
    let refunded = u128::from(refunded.min(amount));
    let amount = u128::from(amount);
    let share = (u128::from(granted) * refunded).div_ceil(amount);
    // share <= granted because refunded <= amount.
    u32::try_from(share).unwrap_or(granted)
}

/// An amount in minor units (kopecks): `"490.00"` → 49000; `None` if malformed.
pub fn amount_minor_units(text: &str) -> Option<u64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (text.contains('.') && (!digits(frac) || frac.len() > 2)) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac: u64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<u64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(frac)
}

/// The life cycle of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Created, waiting for the payer.
    Pending,
    /// Paid, waiting for capture (we ask for automatic capture, so this is brief).
    WaitingForCapture,
    /// Paid and credited.
    Succeeded,
    /// Not paid (the payer gave up, or the bank refused). Nothing credited.
    Canceled,
    /// Paid, then refunded: what it gave was taken back.
    Refunded,
    /// Creating the payment at YooKassa failed. Nothing credited.
    Failed,
}

impl PaymentStatus {
    /// The name stored and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::WaitingForCapture => "waiting_for_capture",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Canceled => "canceled",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Failed => "failed",
        }
    }

    /// Parses a stored status (unknown text reads as `Failed`).
    pub fn parse(s: &str) -> PaymentStatus {
        match s {
            "pending" => PaymentStatus::Pending,
            "waiting_for_capture" => PaymentStatus::WaitingForCapture,
            "succeeded" => PaymentStatus::Succeeded,
            "canceled" => PaymentStatus::Canceled,
            "refunded" => PaymentStatus::Refunded,
            _ => PaymentStatus::Failed,
        }
    }

    /// True while YooKassa may still change it (pending or waiting for capture).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            PaymentStatus::Pending | PaymentStatus::WaitingForCapture
        )
    }
}

/// One row of `payments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Our id (random, unguessable), used in every route and as the idempotence key.
    pub id: String,
    /// The payer.
    pub user_id: i64,
    /// Plan id at creation.
    pub plan: String,
    /// Amount, two decimals.
    pub amount: String,
    /// Currency code.
    pub currency: String,
    /// Current status.
    pub status: PaymentStatus,
    /// Demo mode (no real money): credited at creation.
    pub demo: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// When it was credited; set at most once.
    pub credited_at: Option<String>,
    /// When it was refunded; set at most once.
    pub refunded_at: Option<String>,
    /// YooKassa's id (`None` in demo mode, or when creation failed).
    pub provider_payment_id: Option<String>,
    /// Where the payer confirms the payment.
    pub confirmation_url: Option<String>,
    /// What the plan granted at creation.
    pub grant: Option<Grant>,
    /// Why creation failed.
    pub error: Option<String>,
    /// Cumulative amount refunded so far and already taken back, in minor units (kopecks);
    /// 0 when nothing was refunded.
    pub refunded_kopecks: u64,
}

impl Payment {
    /// The amount in minor units (`None` only for a malformed stored amount).
    pub fn amount_kopecks(&self) -> Option<u64> {
        amount_minor_units(&self.amount)
    }

    /// The cumulative refunded amount as two-decimal text (`"0.00"` when none).
    pub fn refunded_amount(&self) -> String {
        format_amount(self.refunded_kopecks)
    }
}

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
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
        credited_at: row.get(9)?,
        refunded_at: row.get(10)?,
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

/// What a state change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// True when this call changed the payment (and the account, for credit and refund);
    /// false when it was already done, or not allowed from the current status.
    pub applied: bool,
    /// The payment after the call.
    pub payment: Payment,
    /// The payer's account after the call (when `applied` changed it).
    pub user: Option<User>,
    /// For an applied refund: the refunded figures and what was taken back.
    pub refund: Option<RefundStep>,
}

/// What one applied refund did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundStep {
    /// Cumulative refunded amount before this refund (minor units).
    pub before_kopecks: u64,
    /// Cumulative refunded amount after it (minor units).
    pub after_kopecks: u64,
    /// True when the whole amount is now refunded (the payment is `refunded`).
    pub full: bool,
    /// What this refund took back (the increase of the refunded share: tokens, or days of
    /// the tier); `None` when the payment had not been credited, so there was nothing to take.
    pub taken_back: Option<Grant>,
}

impl RefundStep {
    /// The amount this refund added, in minor units.
    pub fn increase_kopecks(&self) -> u64 {
        self.after_kopecks - self.before_kopecks
    }
}

/// The end of a paid period extended by `days`, counted from the current end when that is
/// still ahead, else from `now`.
pub fn extended_expiry(current: Option<&str>, days: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    let base = current
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.to_utc())
        .filter(|t| *t > now)
        .unwrap_or(now);
    base + Duration::days(i64::from(days))
}

/// The end of a paid period after taking back `days`: `None` when the period is over by
/// then (or there was none to shorten).
pub fn shortened_expiry(
    current: Option<&str>,
    days: u32,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let end =
        DateTime::parse_from_rfc3339(current?).ok()?.to_utc() - Duration::days(i64::from(days));
    (end > now).then_some(end)
}

fn apply_grant(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    grant: Grant,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    match grant {
        Grant::Tokens(n) => {
            tx.execute(
                "UPDATE users SET tokens = tokens + ?2 WHERE id = ?1",
                params![user_id, n],
            )?;
        }
        Grant::Tier { tier, days } => {
            let Some(user) = accounts::get_in(tx, user_id)? else {
                return Ok(());
            };
            // The same tier extends the paid period; another tier starts its own now (the
            // days left of a lower tier are not carried into a higher one).
            let current_end = (user.effective_tier() == tier)
                .then_some(user.tier_expires_at.as_deref())
                .flatten();
            let end = extended_expiry(current_end, days, now);
            tx.execute(
                "UPDATE users SET tier = ?2, tier_expires_at = ?3 WHERE id = ?1",
                params![user_id, tier.as_str(), crate::time::format(end)],
            )?;
        }
    }
    Ok(())
}

fn take_back(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    grant: Grant,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    match grant {
        Grant::Tokens(n) => {
            tx.execute(
                "UPDATE users SET tokens = MAX(0, tokens - ?2) WHERE id = ?1",
                params![user_id, n],
            )?;
        }
        Grant::Tier { days, .. } => {
            let Some(user) = accounts::get_in(tx, user_id)? else {
                return Ok(());
            };
            // A paid tier without an end was granted by an admin, not bought: left alone.
            let Some(current) = user.tier_expires_at.as_deref() else {
                return Ok(());
            };
            match shortened_expiry(Some(current), days, now) {
                Some(end) => tx.execute(
                    "UPDATE users SET tier_expires_at = ?2 WHERE id = ?1",
                    params![user_id, crate::time::format(end)],
                )?,
                None => tx.execute(
                    "UPDATE users SET tier = 'free', tier_expires_at = NULL WHERE id = ?1",
                    [user_id],
                )?,
            };
        }
    }
    Ok(())
}

/// Runs one conditional update (`?1` = id, `?2` = now) in an immediate transaction; when it
/// changed exactly one row, `then` changes the account in the same transaction.
fn transition(
    c: &mut rusqlite::Connection,
    id: &str,
    update: &str,
    then: impl FnOnce(&rusqlite::Transaction<'_>, &Payment, DateTime<Utc>) -> rusqlite::Result<()>,
) -> rusqlite::Result<Option<Change>> {
    let now = Utc::now();
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let changed = tx.execute(update, params![id, crate::time::format(now)])?;
    let Some(payment) = get_in(&tx, id)? else {
        return Ok(None);
    };
    let applied = changed == 1;
    let mut user = None;
    if applied {
        then(&tx, &payment, now)?;
        user = accounts::get_in(&tx, payment.user_id)?;
    }
    tx.commit()?;
    Ok(Some(Change {
        applied,
        payment,
        user,
        refund: None,
    }))
}

impl Grant {
    /// How much it gives: tokens, or days of the tier.
    fn units(self) -> u32 {
        match self {
            Grant::Tokens(n) | Grant::Tier { days: n, .. } => n,
        }
    }

    /// The same kind of grant, `units` of it.
    fn with_units(self, units: u32) -> Grant {
        match self {
            Grant::Tokens(_) => Grant::Tokens(units),
            Grant::Tier { tier, .. } => Grant::Tier { tier, days: units },
        }
    }

    /// What moving the cumulative refund from `before` to `after` (out of `amount`, minor
    /// units) takes back: the increase of the refunded share (see [`share_taken_back`]).
    fn refunded_between(self, before: u64, after: u64, amount: u64) -> Grant {
        let units = self.units();
        self.with_units(
            share_taken_back(units, after, amount)
                .saturating_sub(share_taken_back(units, before, amount)),
        )
    }
}

/// Credits a payment exactly once: marks it `succeeded` and grants the plan, unless it was
/// already credited, refunded or canceled. `None` when there is no such payment.
pub fn credit_in(c: &mut rusqlite::Connection, id: &str) -> rusqlite::Result<Option<Change>> {
    transition(
        c,
        id,
        "UPDATE payments SET status = 'succeeded', credited_at = ?2, updated_at = ?2, error = NULL \
         WHERE id = ?1 AND credited_at IS NULL AND refunded_at IS NULL AND status <> 'canceled'",
        |tx, p, now| {
            let Some(grant) = p.grant else {
                return Ok(());
            };
            apply_grant(tx, p.user_id, grant, now)?;
            // A partial refund recorded before the credit (the success was missed): the
            // payer keeps only the unrefunded share.
            let amount = p.amount_kopecks().unwrap_or(0);
            let share = grant.refunded_between(0, p.refunded_kopecks, amount);
            if share.units() > 0 {
                take_back(tx, p.user_id, share, now)?;
            }
            Ok(())
        },
    )
}

/// Acts on YooKassa's cumulative refunded amount `refunded_total` (minor units) for a
/// payment, exactly once per increase: in one `BEGIN IMMEDIATE` transaction, a conditional
/// update raises the stored figure (`... WHERE refunded_kopecks < new`), and only when it
/// changed the row is the increase of the refunded share taken back (tokens down to 0 at
/// most; a tier's paid period shortened by the days, ending it when nothing is left).
/// A replay, a concurrent duplicate or an older notification (a smaller or equal figure)
/// changes nothing. When the whole amount is refunded the payment becomes `refunded` and can
/// never be credited afterwards; a partly refunded one stays `succeeded`. A canceled payment
/// is never changed. `None` when there is no such payment.
pub fn refund_in(
    c: &mut rusqlite::Connection,
    id: &str,
    refunded_total: u64,
) -> rusqlite::Result<Option<Change>> {
    let now = Utc::now();
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(before) = get_in(&tx, id)? else {
        return Ok(None);
    };
    let amount = before.amount_kopecks().filter(|a| *a > 0);
    let changed = match amount {
        Some(amount) => {
            // Amounts have at most 14 digits, so the figure fits SQLite's integers.
            let after = refunded_total.min(amount);
            let stored = i64::try_from(after).unwrap_or(i64::MAX);
            tx.execute(
                "UPDATE payments SET refunded_kopecks = ?3, updated_at = ?2, \
                 status = CASE WHEN ?4 THEN 'refunded' ELSE status END, \
                 refunded_at = CASE WHEN ?4 THEN ?2 ELSE refunded_at END \
                 WHERE id = ?1 AND refunded_kopecks < ?3 AND refunded_at IS NULL \
                 AND status <> 'canceled'",
                params![id, crate::time::format(now), stored, after == amount],
            )?
        }
        None => 0,
    };
    let Some(payment) = get_in(&tx, id)? else {
        return Ok(None);
    };
    let (mut user, mut refund) = (None, None);
    if let (1, Some(amount)) = (changed, amount) {
        let taken_back = match (before.grant, &before.credited_at) {
            (Some(grant), Some(_)) => {
                let taken = grant.refunded_between(
                    before.refunded_kopecks,
                    payment.refunded_kopecks,
                    amount,
                );
                if taken.units() > 0 {
                    take_back(&tx, payment.user_id, taken, now)?;
                }
                Some(taken)
            }
            _ => None,
        };
        refund = Some(RefundStep {
            before_kopecks: before.refunded_kopecks,
            after_kopecks: payment.refunded_kopecks,
            full: payment.refunded_kopecks >= amount,
            taken_back,
        });
        user = accounts::get_in(&tx, payment.user_id)?;
    }
    tx.commit()?;
    Ok(Some(Change {
        applied: changed == 1,
        payment,
        user,
        refund,
    }))
}

/// Marks an uncredited, open (or failed) payment `canceled`; credits nothing.
pub fn cancel_in(c: &mut rusqlite::Connection, id: &str) -> rusqlite::Result<Option<Change>> {
    transition(
        c,
        id,
        "UPDATE payments SET status = 'canceled', updated_at = ?2 \
         WHERE id = ?1 AND credited_at IS NULL AND refunded_at IS NULL \
         AND status IN ('pending', 'waiting_for_capture', 'failed')",
        |_, _, _| Ok(()),
    )
}

/// Marks a pending payment `waiting_for_capture`.
pub fn mark_waiting_in(c: &mut rusqlite::Connection, id: &str) -> rusqlite::Result<Option<Change>> {
    transition(
        c,
        id,
        "UPDATE payments SET status = 'waiting_for_capture', updated_at = ?2 \
         WHERE id = ?1 AND status = 'pending' AND credited_at IS NULL",
        |_, _, _| Ok(()),
    )
}

/// [`credit_in`] through the pool.
pub async fn credit(pool: &Pool, id: &str) -> Result<Option<Change>, DbError> {
    let id = id.to_owned();
    with_conn(pool, move |c| credit_in(c, &id)).await
}

/// [`refund_in`] through the pool.
pub async fn refund(pool: &Pool, id: &str, refunded_total: u64) -> Result<Option<Change>, DbError> {
    let id = id.to_owned();
    with_conn(pool, move |c| refund_in(c, &id, refunded_total)).await
}

/// [`cancel_in`] through the pool.
pub async fn cancel(pool: &Pool, id: &str) -> Result<Option<Change>, DbError> {
    let id = id.to_owned();
    with_conn(pool, move |c| cancel_in(c, &id)).await
}

/// [`mark_waiting_in`] through the pool.
pub async fn mark_waiting(pool: &Pool, id: &str) -> Result<Option<Change>, DbError> {
    let id = id.to_owned();
    with_conn(pool, move |c| mark_waiting_in(c, &id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool_with_user() -> (tempfile::TempDir, Pool, User) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open_pool(&dir.path().join("t.db"), 8).unwrap();
        crate::db::migrate(&pool).await.unwrap();
        let user = accounts::create(&pool, "payer@example.com", "h", false)
            .await
            .unwrap()
            .unwrap();
        (dir, pool, user)
    }

    #[test]
    fn builtin_plans_are_valid_and_match_the_contract() {
        let plans = Plans::builtin();
        assert_eq!(Plans::new(plans.all().to_vec()).unwrap(), plans);
        let ids: Vec<&str> = plans.all().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["pro_month", "studio_month", "tokens_10", "tokens_50"]);
        assert_eq!(plans.currency(), "RUB");
        let pro = plans.get("pro_month").unwrap();
        assert_eq!(pro.price, "490.00");
        assert_eq!(
            pro.grant(),
            Some(Grant::Tier {
                tier: Tier::Pro,
                days: 30
            })
        );
        assert_eq!(plans.get("studio_month").unwrap().price, "1490.00");
        assert_eq!(
            plans.get("tokens_10").unwrap().grant(),
            Some(Grant::Tokens(10))
        );
        assert_eq!(plans.get("tokens_50").unwrap().price, "790.00");
        assert!(plans.get("nope").is_none());
        // The response shape: null where a field does not apply.
        let json = serde_json::to_value(plans.get("tokens_10").unwrap()).unwrap();
        assert!(json["tier"].is_null() && json["duration_days"].is_null());
        assert_eq!(json["tokens"], 10);
    }

    #[test]
    fn plan_files_are_validated_with_a_reason() {
        let ok = r#"[{"id":"x1","name":"X","price":"99.5","currency":"RUB","tokens":3}]"#;
        let plans = Plans::from_json(ok).unwrap();
        let p = plans.get("x1").unwrap();
        assert_eq!(p.price, "99.50");
        assert_eq!(p.name_ru, "X", "Russian name falls back to English");
        for (bad, expect) in [
            ("{}", "not a JSON array"),
            ("[]", "at least one plan"),
            (
                r#"[{"id":"A","name":"X","price":"1","currency":"RUB","tokens":1}]"#,
                "plan id",
            ),
            (
                r#"[{"id":"a","name":"X","price":"0","currency":"RUB","tokens":1}]"#,
                "price",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1.234","currency":"RUB","tokens":1}]"#,
                "price",
            ),
            (
                r#"[{"id":"a","name":"X","price":"-1","currency":"RUB","tokens":1}]"#,
                "price",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"rub","tokens":1}]"#,
                "currency",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB"}]"#,
                "either tier",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","tokens":1,"tier":"pro","duration_days":3}]"#,
                "either tier",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","tier":"free","duration_days":3}]"#,
                "tier",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","tier":"pro","duration_days":0}]"#,
                "duration_days",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","tokens":0}]"#,
                "tokens",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","token":1}]"#,
                "unknown field",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","tokens":1},{"id":"a","name":"Y","price":"1","currency":"RUB","tokens":1}]"#,
                "twice",
            ),
            (
                r#"[{"id":"a","name":"X","price":"1","currency":"RUB","tokens":1},{"id":"b","name":"Y","price":"1","currency":"USD","tokens":1}]"#,
                "one currency",
            ),
        ] {
            let err = Plans::from_json(bad).unwrap_err();
            assert!(err.contains(expect), "{bad}: {err}");
        }
    }

    #[test]
    fn amounts_are_read_exactly() {
        assert_eq!(amount_minor_units("490.00"), Some(49_000));
        assert_eq!(amount_minor_units("0.5"), Some(50));
        assert_eq!(amount_minor_units("12"), Some(1200));
        for bad in ["", ".5", "1.", "1.2.3", "1e3", "-1", " 1 2", "1.234"] {
            assert_eq!(amount_minor_units(bad), None, "{bad:?}");
        }
        assert_eq!(normalize_amount("0.00"), None);
        assert_eq!(normalize_amount("1490"), Some("1490.00".into()));
    }

    #[test]
    fn paid_periods_extend_from_the_later_of_now_and_the_current_end() {
        let now = DateTime::parse_from_rfc3339("2026-01-10T00:00:00Z")
            .unwrap()
            .to_utc();
        let days = |d: i64| now + Duration::days(d);
        assert_eq!(extended_expiry(None, 30, now), days(30));
        let past = crate::time::format(days(-5));
        assert_eq!(extended_expiry(Some(&past), 30, now), days(30));
        let future = crate::time::format(days(10));
        assert_eq!(extended_expiry(Some(&future), 30, now), days(40));
        assert_eq!(extended_expiry(Some("garbage"), 1, now), days(1));
        // Taking back.
        let end = crate::time::format(days(40));
        assert_eq!(shortened_expiry(Some(&end), 30, now), Some(days(10)));
        assert_eq!(shortened_expiry(Some(&future), 30, now), None);
        assert_eq!(shortened_expiry(None, 30, now), None);
    }

    #[tokio::test]
    async fn concurrent_credits_apply_once_and_a_refund_takes_back_once() {
        let (_dir, pool, user) = pool_with_user().await;
        let plans = Plans::builtin();
        let tokens_plan = plans.get("tokens_10").unwrap();
        accounts::grant_tokens(&pool, user.id, 2).await.unwrap();
        let p = create(&pool, &new_payment_id(), user.id, tokens_plan, false)
            .await
            .unwrap();
        assert_eq!(p.status, PaymentStatus::Pending);
        assert_eq!(p.grant, Some(Grant::Tokens(10)));

        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (pool, id) = (pool.clone(), p.id.clone());
            tasks.push(tokio::spawn(async move { credit(&pool, &id).await }));
        }
        let mut applied = 0;
        for t in tasks {
            let change = t.await.unwrap().unwrap().unwrap();
            assert_eq!(change.payment.status, PaymentStatus::Succeeded);
            applied += usize::from(change.applied);
        }
        assert_eq!(applied, 1);
        let u = accounts::by_id(&pool, user.id).await.unwrap().unwrap();
        assert_eq!(u.tokens, 12);

        // Spend 11 of them, then the refund takes back 10 but never goes below zero.
        accounts::grant_tokens(&pool, user.id, -11).await.unwrap();
        let first = refund(&pool, &p.id, 19_000).await.unwrap().unwrap();
        assert!(first.applied);
        assert_eq!(first.payment.status, PaymentStatus::Refunded);
        assert_eq!(first.user.unwrap().tokens, 0);
        accounts::grant_tokens(&pool, user.id, 5).await.unwrap();
        assert!(!refund(&pool, &p.id, 19_000).await.unwrap().unwrap().applied);
        assert!(!credit(&pool, &p.id).await.unwrap().unwrap().applied);
        let u = accounts::by_id(&pool, user.id).await.unwrap().unwrap();
        assert_eq!(u.tokens, 5, "a second refund or credit changed nothing");
        assert!(credit(&pool, "missing").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn tier_payments_extend_and_refunds_end_the_period() {
        let (_dir, pool, user) = pool_with_user().await;
        let plans = Plans::builtin();
        let pro = plans.get("pro_month").unwrap();
        let a = create(&pool, "a", user.id, pro, false).await.unwrap();
        let b = create(&pool, "b", user.id, pro, false).await.unwrap();
        let t0 = Utc::now();
        let u = credit(&pool, &a.id).await.unwrap().unwrap().user.unwrap();
        assert_eq!(u.tier, Tier::Pro);
        let end_a = DateTime::parse_from_rfc3339(u.tier_expires_at.as_deref().unwrap()).unwrap();
        let span = (end_a.to_utc() - t0).num_seconds();
        assert!(
            (30 * 86_400 - 5..=30 * 86_400 + 5).contains(&span),
            "{span}"
        );
        let u = credit(&pool, &b.id).await.unwrap().unwrap().user.unwrap();
        let end_b = DateTime::parse_from_rfc3339(u.tier_expires_at.as_deref().unwrap()).unwrap();
        assert_eq!(
            (end_b - end_a).num_days(),
            30,
            "second month added after the first"
        );

        // Refunding one month leaves the other; refunding both ends the paid tier.
        let u = refund(&pool, &b.id, 49_000)
            .await
            .unwrap()
            .unwrap()
            .user
            .unwrap();
        assert_eq!(
            u.tier_expires_at.as_deref(),
            Some(crate::time::format(end_a.to_utc()).as_str())
        );
        assert_eq!(u.effective_tier(), Tier::Pro);
        let u = refund(&pool, &a.id, 49_000)
            .await
            .unwrap()
            .unwrap()
            .user
            .unwrap();
        assert_eq!((u.tier, u.tier_expires_at.as_deref()), (Tier::Free, None));
    }

    #[test]
    fn refunded_shares_are_rounded_up_exact_and_never_over_the_grant() {
        // The examples: 40 % of a 50-token pack (790.00) is 20 tokens; 100.00 of a 490.00
        // month is 6.12 days → 7, 200.00 → 12.24 → 13.
        assert_eq!(share_taken_back(50, 31_600, 79_000), 20);
        assert_eq!(share_taken_back(50, 79_000, 79_000), 50);
        assert_eq!(share_taken_back(30, 10_000, 49_000), 7);
        assert_eq!(share_taken_back(30, 20_000, 49_000), 13);
        assert_eq!(
            share_taken_back(10, 1, 19_000),
            1,
            "one kopeck takes one token"
        );
        assert_eq!(share_taken_back(10, 0, 19_000), 0);
        assert_eq!(
            share_taken_back(10, 50_000, 19_000),
            10,
            "capped at the grant"
        );
        assert_eq!(share_taken_back(10, 5, 0), 0, "no amount, nothing to share");
        // No overflow at the extremes.
        assert_eq!(
            share_taken_back(1_000_000, 999_999_999_999, 1_000_000_000_000),
            1_000_000
        );
        assert_eq!(share_taken_back(u32::MAX, u64::MAX, u64::MAX), u32::MAX);
        // Exhaustively on small figures: the smallest whole number covering the share,
        // growing with the refund, never above the grant.
        for amount in [1_u64, 7, 100, 19_000, 49_000, 79_000, 149_000] {
            for granted in [1_u32, 3, 10, 30, 50, 365] {
                let mut last = 0;
                let step = (amount / 97).max(1);
                let mut refunded = 0;
                while refunded <= amount {
                    let s = share_taken_back(granted, refunded, amount);
                    let (s128, exact) = (
                        u128::from(s) * u128::from(amount),
                        u128::from(granted) * u128::from(refunded),
                    );
                    assert!(s128 >= exact, "{granted} {refunded}/{amount}: {s}");
                    assert!(
                        s == 0 || s128 - u128::from(amount) < exact,
                        "{granted} {refunded}/{amount}: {s} is not the smallest"
                    );
                    assert!(s <= granted && s >= last);
                    last = s;
                    refunded += step;
                }
                assert_eq!(share_taken_back(granted, amount, amount), granted);
            }
        }
        // Kopecks are read exactly where floats would not be (0.29 * 100 = 28.999…).
        assert_eq!(amount_minor_units("0.29"), Some(29));
        assert_eq!(amount_minor_units("1.15"), Some(115));
        assert_eq!(amount_minor_units("316.00"), Some(31_600));
        assert_eq!(amount_minor_units("100.1"), Some(10_010));
        assert_eq!(format_amount(31_600), "316.00");
        assert_eq!(format_amount(5), "0.05");
        assert_eq!(format_amount(0), "0.00");
    }

    #[tokio::test]
    async fn partial_refunds_take_back_each_increase_once_and_older_figures_nothing() {
        let (_dir, pool, user) = pool_with_user().await;
        let plans = Plans::builtin();
        let p = create(&pool, "t", user.id, plans.get("tokens_50").unwrap(), false)
            .await
            .unwrap();
        credit(&pool, "t").await.unwrap().unwrap();
        accounts::grant_tokens(&pool, user.id, 5).await.unwrap();

        // 40 % of 790.00: 20 tokens back, still succeeded.
        let c = refund(&pool, &p.id, 31_600).await.unwrap().unwrap();
        assert!(c.applied);
        assert_eq!(c.payment.status, PaymentStatus::Succeeded);
        assert_eq!(c.payment.refunded_kopecks, 31_600);
        assert_eq!(c.payment.refunded_amount(), "316.00");
        assert!(c.payment.refunded_at.is_none());
        assert_eq!(
            c.refund,
            Some(RefundStep {
                before_kopecks: 0,
                after_kopecks: 31_600,
                full: false,
                taken_back: Some(Grant::Tokens(20)),
            })
        );
        assert_eq!(c.user.unwrap().tokens, 35);
        // A replay, and an older (smaller) figure arriving late: nothing.
        for figure in [31_600, 10_000, 0] {
            let c = refund(&pool, &p.id, figure).await.unwrap().unwrap();
            assert!(!c.applied, "{figure}");
            assert_eq!(c.payment.refunded_kopecks, 31_600, "{figure}");
            assert!(c.refund.is_none());
        }
        assert_eq!(
            accounts::by_id(&pool, user.id)
                .await
                .unwrap()
                .unwrap()
                .tokens,
            35
        );

        // 60 %: ceil(30) - 20 = 10 more; 60 % + 1 kopeck: one more (rounded up).
        let c = refund(&pool, &p.id, 47_400).await.unwrap().unwrap();
        assert_eq!(c.refund.unwrap().taken_back, Some(Grant::Tokens(10)));
        let c = refund(&pool, &p.id, 47_401).await.unwrap().unwrap();
        assert_eq!(c.refund.unwrap().taken_back, Some(Grant::Tokens(1)));
        assert_eq!(c.refund.unwrap().increase_kopecks(), 1);
        assert_eq!(c.user.unwrap().tokens, 24);

        // Ten concurrent copies of the full refund: the remaining 19, once.
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(
                async move { refund(&pool, "t", 79_000).await },
            ));
        }
        let mut steps = Vec::new();
        for t in tasks {
            let c = t.await.unwrap().unwrap().unwrap();
            assert_eq!(c.payment.status, PaymentStatus::Refunded);
            steps.extend(c.refund);
        }
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert_eq!(steps[0].taken_back, Some(Grant::Tokens(19)));
        assert!(steps[0].full);
        let u = accounts::by_id(&pool, user.id).await.unwrap().unwrap();
        assert_eq!(u.tokens, 5, "the 50 taken back in total, the other 5 kept");
        let stored = get(&pool, "t").await.unwrap().unwrap();
        assert!(stored.refunded_at.is_some());
        assert_eq!(stored.refunded_kopecks, 79_000);
        // A figure above the amount, or a late credit: nothing more.
        assert!(!refund(&pool, "t", 90_000).await.unwrap().unwrap().applied);
        assert!(!credit(&pool, "t").await.unwrap().unwrap().applied);
        assert_eq!(
            accounts::by_id(&pool, user.id)
                .await
                .unwrap()
                .unwrap()
                .tokens,
            5
        );
    }

    #[tokio::test]
    async fn partial_refunds_shorten_a_tier_by_the_share_of_its_days() {
        let (_dir, pool, user) = pool_with_user().await;
        let plans = Plans::builtin();
        let pro = plans.get("pro_month").unwrap();
        create(&pool, "m", user.id, pro, false).await.unwrap();
        let u = credit(&pool, "m").await.unwrap().unwrap().user.unwrap();
        let end = |u: &User| {
            DateTime::parse_from_rfc3339(u.tier_expires_at.as_deref().unwrap())
                .unwrap()
                .to_utc()
        };
        let end0 = end(&u);
        // 100.00 of 490.00 → 7 days; 200.00 in total → 13 days in total.
        let c = refund(&pool, "m", 10_000).await.unwrap().unwrap();
        assert_eq!(c.payment.status, PaymentStatus::Succeeded);
        assert_eq!(
            c.refund.unwrap().taken_back,
            Some(Grant::Tier {
                tier: Tier::Pro,
                days: 7
            })
        );
        let u = c.user.unwrap();
        assert_eq!((u.tier, end0 - end(&u)), (Tier::Pro, Duration::days(7)));
        let u = refund(&pool, "m", 20_000)
            .await
            .unwrap()
            .unwrap()
            .user
            .unwrap();
        assert_eq!(end0 - end(&u), Duration::days(13));
        // The rest ends the period, as a full refund always did.
        let c = refund(&pool, "m", 49_000).await.unwrap().unwrap();
        assert_eq!(c.payment.status, PaymentStatus::Refunded);
        let u = c.user.unwrap();
        assert_eq!((u.tier, u.tier_expires_at.as_deref()), (Tier::Free, None));

        // A partial refund recorded before the credit (the success notification was
        // missed): the credit grants only the unrefunded share, and nothing is taken twice.
        create(&pool, "n", user.id, pro, false).await.unwrap();
        let c = refund(&pool, "n", 24_500).await.unwrap().unwrap();
        assert!(c.applied);
        assert_eq!(c.refund.unwrap().taken_back, None);
        assert_eq!(c.payment.status, PaymentStatus::Pending);
        let t0 = Utc::now();
        let u = credit(&pool, "n").await.unwrap().unwrap().user.unwrap();
        let span = (end(&u) - t0).num_seconds();
        assert!(
            (15 * 86_400 - 5..=15 * 86_400 + 5).contains(&span),
            "{span}"
        );
        let u = refund(&pool, "n", 49_000)
            .await
            .unwrap()
            .unwrap()
            .user
            .unwrap();
        assert_eq!((u.tier, u.tier_expires_at.as_deref()), (Tier::Free, None));
    }

    #[tokio::test]
    async fn payments_refunded_before_partial_refunds_count_as_refunded_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open_pool(&dir.path().join("t.db"), 2).unwrap();
        with_conn(&pool, |c| {
            crate::db::apply_migrations(c, &crate::db::MIGRATIONS[..4])?;
            c.execute_batch(
                "INSERT INTO users (email, password_hash, created_at) VALUES ('a@b.c', 'h', 'x');
                 INSERT INTO payments (id, user_id, plan, amount, currency, status,
                     idempotence_key, created_at, updated_at, credited_at, refunded_at)
                 VALUES ('old', 1, 'pro_month', '1490.00', 'RUB', 'refunded', 'old', 'x', 'x',
                     'x', 'x'),
                        ('paid', 1, 'pro_month', '490.00', 'RUB', 'succeeded', 'paid', 'x', 'x',
                     'x', NULL);",
            )?;
            crate::db::apply_migrations(c, crate::db::MIGRATIONS)
        })
        .await
        .unwrap();
        let old = get(&pool, "old").await.unwrap().unwrap();
        assert_eq!(old.refunded_kopecks, 149_000);
        assert_eq!(
            get(&pool, "paid").await.unwrap().unwrap().refunded_kopecks,
            0
        );
        assert!(
            !refund(&pool, "old", 149_000)
                .await
                .unwrap()
                .unwrap()
                .applied
        );
    }

    #[tokio::test]
    async fn an_upgrade_starts_its_own_period_now() {
        let (_dir, pool, user) = pool_with_user().await;
        let plans = Plans::builtin();
        let pro = create(&pool, "p", user.id, plans.get("pro_month").unwrap(), false)
            .await
            .unwrap();
        let studio = create(
            &pool,
            "s",
            user.id,
            plans.get("studio_month").unwrap(),
            false,
        )
        .await
        .unwrap();
        credit(&pool, &pro.id).await.unwrap().unwrap();
        let t0 = Utc::now();
        let u = credit(&pool, &studio.id)
            .await
            .unwrap()
            .unwrap()
            .user
            .unwrap();
        assert_eq!(u.tier, Tier::Studio);
        let end = DateTime::parse_from_rfc3339(u.tier_expires_at.as_deref().unwrap()).unwrap();
        let span = (end.to_utc() - t0).num_seconds();
        // 30 days of studio from now, not the 30 pro days left plus 30.
        assert!(
            (30 * 86_400 - 5..=30 * 86_400 + 5).contains(&span),
            "{span}"
        );
    }

    #[tokio::test]
    async fn canceled_payments_credit_nothing_ever() {
        let (_dir, pool, user) = pool_with_user().await;
        let plans = Plans::builtin();
        let p = create(&pool, "c", user.id, plans.get("tokens_50").unwrap(), false)
            .await
            .unwrap();
        assert!(mark_waiting(&pool, "c").await.unwrap().unwrap().applied);
        let change = cancel(&pool, "c").await.unwrap().unwrap();
        assert!(change.applied);
        assert_eq!(change.payment.status, PaymentStatus::Canceled);
        assert!(!credit(&pool, &p.id).await.unwrap().unwrap().applied);
        assert!(!refund(&pool, &p.id, 79_000).await.unwrap().unwrap().applied);
        let u = accounts::by_id(&pool, user.id).await.unwrap().unwrap();
        assert_eq!(u.tokens, 0);
        // A credited payment cannot be canceled.
        create(&pool, "d", user.id, plans.get("tokens_10").unwrap(), false)
            .await
            .unwrap();
        credit(&pool, "d").await.unwrap();
        assert!(!cancel(&pool, "d").await.unwrap().unwrap().applied);
        let listed = list_for_user(&pool, user.id, 10).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].id, "d", "newest first");
        // Unique provider ids.
        attach_provider(&pool, "c", "yk-1", Some("https://pay/1"))
            .await
            .unwrap();
        assert_eq!(
            by_provider_id(&pool, "yk-1").await.unwrap().unwrap().id,
            "c"
        );
        assert!(attach_provider(&pool, "d", "yk-1", None).await.is_err());
    }
}
