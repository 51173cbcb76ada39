//! The exactly-once transitions of a payment: credit, refund (partial and several),
//! cancel, waiting for capture. Each is a conditional `UPDATE` inside a `BEGIN IMMEDIATE`
//! transaction; the account changes only when that update changed exactly one row.

use crate::accounts::{self, Tier, User};
use crate::db::{DbError, with_conn};
use crate::payments::money::share_taken_back;
use crate::payments::plans::Grant;
use crate::payments::record::Payment;
use crate::payments::store::get_in;
use chrono::{DateTime, Duration, Utc};
use deadpool_sqlite::Pool;
use deadpool_sqlite::rusqlite::{self, TransactionBehavior, params};

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
pub fn extended_expiry(
    current: Option<DateTime<Utc>>,
    days: u32,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let base = current.filter(|t| *t > now).unwrap_or(now);
    base + Duration::days(i64::from(days))
}

/// The end of a paid period after taking back `days`: `None` when the period is over by
/// then (or there was none to shorten).
pub fn shortened_expiry(
    current: Option<DateTime<Utc>>,
    days: u32,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let end = current? - Duration::days(i64::from(days));
    (end > now).then_some(end)
}

/// Adds `delta` tokens to the account (never below 0).
fn add_tokens(tx: &rusqlite::Transaction<'_>, user_id: i64, delta: i64) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE users SET tokens = MAX(0, tokens + ?2) WHERE id = ?1",
        params![user_id, delta],
    )
    .map(|_| ())
}

/// Sets the account's tier and when it ends (`None`: never).
fn set_tier(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    tier: Tier,
    end: Option<DateTime<Utc>>,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE users SET tier = ?2, tier_expires_at = ?3 WHERE id = ?1",
        params![user_id, tier.as_str(), end.map(crate::time::format)],
    )
    .map(|_| ())
}

fn apply_grant(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    grant: Grant,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let (tier, days) = match grant {
        Grant::Tokens(n) => return add_tokens(tx, user_id, i64::from(n)),
        Grant::Tier { tier, days } => (tier, days),
    };
    let Some(user) = accounts::get_in(tx, user_id)? else {
        return Ok(());
    };
    // The same tier extends the paid period; another tier starts its own now (the days left
    // of a lower tier are not carried into a higher one).
    let current_end = (user.effective_tier() == tier)
        .then_some(user.tier_expires_at)
        .flatten();
    set_tier(
        tx,
        user_id,
        tier,
        Some(extended_expiry(current_end, days, now)),
    )
}

fn take_back(
    tx: &rusqlite::Transaction<'_>,
    user_id: i64,
    grant: Grant,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let days = match grant {
        Grant::Tokens(n) => return add_tokens(tx, user_id, -i64::from(n)),
        Grant::Tier { days, .. } => days,
    };
    let Some(user) = accounts::get_in(tx, user_id)? else {
        return Ok(());
    };
    // A paid tier without an end was granted by an admin, not bought: left alone.
    if user.tier_expires_at.is_none() {
        return Ok(());
    }
    match shortened_expiry(user.tier_expires_at, days, now) {
        Some(end) => set_tier(tx, user_id, user.tier, Some(end)),
        None => set_tier(tx, user_id, Tier::Free, None),
    }
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
    use crate::payments::plans::Plans;
    use crate::payments::record::PaymentStatus;
    use crate::payments::store::{
        attach_provider, by_provider_id, create, get, list_for_user, new_payment_id,
    };

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
    fn paid_periods_extend_from_the_later_of_now_and_the_current_end() {
        let now = DateTime::parse_from_rfc3339("2026-01-10T00:00:00Z")
            .unwrap()
            .to_utc();
        let days = |d: i64| now + Duration::days(d);
        assert_eq!(extended_expiry(None, 30, now), days(30));
        assert_eq!(extended_expiry(Some(days(-5)), 30, now), days(30));
        assert_eq!(extended_expiry(Some(days(10)), 30, now), days(40));
        // Taking back.
        assert_eq!(shortened_expiry(Some(days(40)), 30, now), Some(days(10)));
        assert_eq!(shortened_expiry(Some(days(10)), 30, now), None);
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
        let end_a = u.tier_expires_at.unwrap();
        let span = (end_a - t0).num_seconds();
        assert!(
            (30 * 86_400 - 5..=30 * 86_400 + 5).contains(&span),
            "{span}"
        );
        let u = credit(&pool, &b.id).await.unwrap().unwrap().user.unwrap();
        let end_b = u.tier_expires_at.unwrap();
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
        assert_eq!(u.tier_expires_at, Some(end_a));
        assert_eq!(u.effective_tier(), Tier::Pro);
        let u = refund(&pool, &a.id, 49_000)
            .await
            .unwrap()
            .unwrap()
            .user
            .unwrap();
        assert_eq!((u.tier, u.tier_expires_at), (Tier::Free, None));
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
        let end = |u: &User| u.tier_expires_at.unwrap();
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
        assert_eq!((u.tier, u.tier_expires_at), (Tier::Free, None));

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
        assert_eq!((u.tier, u.tier_expires_at), (Tier::Free, None));
    }

    #[tokio::test]
    async fn payments_refunded_before_partial_refunds_count_as_refunded_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open_pool(&dir.path().join("t.db"), 2).unwrap();
        with_conn(&pool, |c| {
            crate::db::apply_migrations(c, &crate::db::MIGRATIONS[..4])?;
            // Times as every version wrote them (read as times since issue 12).
            let at = "'2026-01-01T00:00:00.000Z'";
            c.execute_batch(&format!(
                "INSERT INTO users (email, password_hash, created_at) VALUES ('a@b.c', 'h', {at});
                 INSERT INTO payments (id, user_id, plan, amount, currency, status,
                     idempotence_key, created_at, updated_at, credited_at, refunded_at)
                 VALUES ('old', 1, 'pro_month', '1490.00', 'RUB', 'refunded', 'old', {at}, {at},
                     {at}, {at}),
                        ('paid', 1, 'pro_month', '490.00', 'RUB', 'succeeded', 'paid', {at}, {at},
                     {at}, NULL);"
            ))?;
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
        let span = (u.tier_expires_at.unwrap() - t0).num_seconds();
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
