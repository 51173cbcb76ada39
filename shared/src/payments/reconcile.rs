//! Acting on what the payment provider reports: the one path that turns YooKassa's view of
//! a payment into our exactly-once transitions ([`super::ledger`]), with the log lines and
//! the Telegram announcements that go with them.
//!
//! A notification is never believed: the caller fetches the payment from YooKassa and hands
//! the fetched [`RemotePayment`] here. Refunds may be partial and several: only YooKassa's
//! cumulative `refunded_amount` is acted on, and only its increase is taken back.

use crate::alerts::{AlertKind, Alerts};
use crate::db::DbError;
use crate::payments::ledger::{self, Change};
use crate::payments::money::{amount_minor_units, format_amount};
use crate::payments::plans::Grant;
use crate::payments::provider::{RemotePayment, RemoteStatus};
use crate::payments::record::Payment;
use crate::payments::store;
use deadpool_sqlite::Pool;

/// The `cause` of a [`Reconciler::reconcile`] from the payer's status read (not a
/// notification).
pub const STATUS_REFRESH: &str = "status refresh";

/// What reconciliation needs: the database and where payment news is announced.
#[derive(Debug, Clone, Copy)]
pub struct Reconciler<'a> {
    /// The database pool.
    pub db: &'a Pool,
    /// Telegram alerts (payment news is never throttled).
    pub alerts: &'a Alerts,
}

impl Reconciler<'_> {
    /// Our row for a YooKassa payment: by its id, else (creation answered but was not
    /// recorded) by the `payment_id` in its metadata, when the payer matches too.
    pub async fn find_payment(&self, remote: &RemotePayment) -> Result<Option<Payment>, DbError> {
        if let Some(p) = store::by_provider_id(self.db, &remote.id).await? {
            return Ok(Some(p));
        }
        let Some(our_id) = remote.meta("payment_id") else {
            return Ok(None);
        };
        let Some(p) = store::get(self.db, &our_id).await? else {
            return Ok(None);
        };
        if p.provider_payment_id.is_some() || remote.meta("user_id") != Some(p.user_id.to_string())
        {
            return Ok(None);
        }
        let url = remote
            .confirmation
            .as_ref()
            .and_then(|c| c.confirmation_url.clone());
        store::attach_provider(self.db, &p.id, &remote.id, url.as_deref()).await
    }

    /// Acts on what YooKassa reports for `payment`; `None` (nothing done) when the amount or
    /// our id in the metadata does not match the row. `cause` names what prompted it (the
    /// notification's event, or [`STATUS_REFRESH`]) in the log.
    pub async fn reconcile(
        &self,
        payment: &Payment,
        remote: &RemotePayment,
        cause: &str,
    ) -> Result<Option<Payment>, DbError> {
        let same_amount = amount_minor_units(&remote.amount.value)
            == amount_minor_units(&payment.amount)
            && remote.amount.currency == payment.currency;
        let same_id = remote.meta("payment_id").is_none_or(|id| id == payment.id);
        if !same_amount || !same_id {
            tracing::error!(payment_id = %payment.id, provider_payment_id = %remote.id,
                remote_amount = %remote.amount.value, amount = %payment.amount,
                "YooKassa's payment does not match ours (amount or metadata): nothing done");
            return Ok(None);
        }
        if remote.status == RemoteStatus::Succeeded && remote.paid {
            return self.reconcile_paid(payment, remote, cause).await;
        }
        let (change, what) = match remote.status {
            RemoteStatus::Canceled => (ledger::cancel(self.db, &payment.id).await?, "canceled"),
            RemoteStatus::WaitingForCapture => (
                ledger::mark_waiting(self.db, &payment.id).await?,
                "waiting for capture",
            ),
            open @ (RemoteStatus::Pending | RemoteStatus::Succeeded | RemoteStatus::Unknown) => {
                tracing::info!(payment_id = %payment.id, status = ?open, paid = remote.paid, cause,
                    "YooKassa reports the payment still open: nothing to do");
                return Ok(Some(payment.clone()));
            }
        };
        Ok(self.report(remote, cause, what, change))
    }

    /// A paid payment: credited (once) unless refunded in full, then YooKassa's cumulative
    /// refunded figure acted on.
    async fn reconcile_paid(
        &self,
        payment: &Payment,
        remote: &RemotePayment,
        cause: &str,
    ) -> Result<Option<Payment>, DbError> {
        let refunded = match refunded_kopecks(remote, payment) {
            Ok(refunded) => refunded,
            Err(why) => {
                tracing::error!(payment_id = %payment.id, provider_payment_id = %remote.id, cause,
                    refunded_amount = ?remote.refunded_amount, amount = %payment.amount,
                    currency = %payment.currency,
                    "YooKassa's refunded_amount cannot be used ({why}): nothing done");
                // Once per notification: the payer's page polling a pending payment would
                // repeat it every few seconds.
                if cause != STATUS_REFRESH {
                    self.alerts.send(
                        AlertKind::Payment,
                        format!(
                            "Magic Master: payment refund NOT applied: {why}; payment {} \
                             ({} {}, plan {}, user {}); check it in YooKassa's dashboard",
                            payment.id,
                            payment.amount,
                            payment.currency,
                            payment.plan,
                            payment.user_id
                        ),
                    );
                }
                return Ok(None);
            }
        };
        let full = payment.amount_kopecks().is_some_and(|a| refunded >= a);
        // Paid but not (yet) fully refunded: credited first (once), so the payer keeps the
        // unrefunded share; a full refund of a never-credited payment credits nothing.
        let mut current = payment.clone();
        if !full {
            let change = ledger::credit(self.db, &payment.id).await?;
            match self.report(remote, cause, "credited", change) {
                Some(p) => current = p,
                None => return Ok(None),
            }
        }
        if refunded == 0 {
            return Ok(Some(current));
        }
        let change = ledger::refund(self.db, &payment.id, refunded).await?;
        Ok(self.report(remote, cause, "refunded", change))
    }

    /// Logs (and, when applied, announces) a change; the payment after it.
    fn report(
        &self,
        remote: &RemotePayment,
        cause: &str,
        what: &str,
        change: Option<Change>,
    ) -> Option<Payment> {
        let change = change?;
        let p = &change.payment;
        if change.applied {
            tracing::info!(payment_id = %p.id, provider_payment_id = %remote.id, cause,
                test = remote.test, refunded_amount = %p.refunded_amount(), "payment {what}");
            if what != "waiting for capture" {
                self.announce(what, &change);
            }
        } else {
            tracing::info!(payment_id = %p.id, status = p.status.as_str(), cause,
                refunded_amount = %p.refunded_amount(),
                "payment already {what} (status {}): nothing changed", p.status.as_str());
        }
        Some(change.payment)
    }

    /// Queues the Telegram message for an applied change (never waits).
    pub fn announce(&self, what: &str, change: &Change) {
        self.alerts
            .send(AlertKind::Payment, announcement(what, change));
    }
}

/// YooKassa's cumulative refunded amount in minor units (0 when absent); an error naming
/// the fault when its currency is not the payment's or its value is not an amount.
pub fn refunded_kopecks(remote: &RemotePayment, payment: &Payment) -> Result<u64, String> {
    let Some(refunded) = &remote.refunded_amount else {
        return Ok(0);
    };
    let value = amount_minor_units(&refunded.value).ok_or_else(|| {
        format!(
            "YooKassa reports refunded_amount {:?}, not an amount",
            refunded.value.chars().take(32).collect::<String>()
        )
    })?;
    if value > 0 && refunded.currency != payment.currency {
        return Err(format!(
            "YooKassa reports {} {} refunded for a payment in {}",
            refunded.value,
            refunded.currency.chars().take(8).collect::<String>(),
            payment.currency
        ));
    }
    Ok(value)
}

/// The Telegram text for an applied change (`what`: credited, canceled, refunded).
pub fn announcement(what: &str, change: &Change) -> String {
    let p = &change.payment;
    let who = change
        .user
        .as_ref()
        .map(|u| format!("{} (user {})", u.email, u.id))
        .unwrap_or_else(|| format!("user {}", p.user_id));
    let demo = if p.demo {
        " [demo: no money moved]"
    } else {
        ""
    };
    match &change.refund {
        Some(step) => {
            let taken = match step.taken_back {
                Some(Grant::Tokens(n)) => format!("; {n} tokens taken back"),
                Some(Grant::Tier { tier, days }) => {
                    format!("; {days} days of {} taken back", tier.as_str())
                }
                None => "; nothing had been credited".to_owned(),
            };
            let how_much = if step.full {
                format!(
                    "refunded in full: {} {} (this refund {} {})",
                    p.amount,
                    p.currency,
                    format_amount(step.increase_kopecks()),
                    p.currency
                )
            } else {
                format!(
                    "partly refunded: {} {} ({} of {} {} refunded in total)",
                    format_amount(step.increase_kopecks()),
                    p.currency,
                    p.refunded_amount(),
                    p.amount,
                    p.currency
                )
            };
            format!(
                "Magic Master: payment {how_much}, plan {}, {who}, payment {}{taken}{demo}",
                p.plan, p.id
            )
        }
        None => format!(
            "Magic Master: payment {what}: {} {}, plan {}, {who}, payment {}{demo}",
            p.amount, p.currency, p.plan, p.id
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::provider::Amount;
    use crate::payments::record::PaymentStatus;
    use std::collections::HashMap;
    fn remote(refunded: Option<(&str, &str)>) -> RemotePayment {
        RemotePayment {
            id: "2f00".to_owned(),
            status: RemoteStatus::Succeeded,
            paid: true,
            amount: Amount {
                value: "490.00".to_owned(),
                currency: "RUB".to_owned(),
            },
            confirmation: None,
            metadata: HashMap::new(),
            refunded_amount: refunded.map(|(value, currency)| Amount {
                value: value.to_owned(),
                currency: currency.to_owned(),
            }),
            test: true,
        }
    }

    fn ours() -> Payment {
        Payment {
            id: "p".to_owned(),
            user_id: 1,
            plan: "pro_month".to_owned(),
            amount: "490.00".to_owned(),
            currency: "RUB".to_owned(),
            status: PaymentStatus::Succeeded,
            demo: false,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            credited_at: None,
            refunded_at: None,
            provider_payment_id: None,
            confirmation_url: None,
            grant: None,
            error: None,
            refunded_kopecks: 0,
        }
    }

    #[test]
    fn the_refunded_figure_is_read_exactly_in_the_payments_currency() {
        let p = ours();
        assert_eq!(refunded_kopecks(&remote(None), &p), Ok(0));
        assert_eq!(refunded_kopecks(&remote(Some(("0.00", "RUB"))), &p), Ok(0));
        assert_eq!(
            refunded_kopecks(&remote(Some(("100.00", "RUB"))), &p),
            Ok(10_000)
        );
        assert_eq!(refunded_kopecks(&remote(Some(("0.29", "RUB"))), &p), Ok(29));
        let err = refunded_kopecks(&remote(Some(("100.00", "USD"))), &p).unwrap_err();
        assert!(err.contains("USD") && err.contains("RUB"), "{err}");
        for bad in ["1e2", "-1.00", "", "1.234", "NaN"] {
            let err = refunded_kopecks(&remote(Some((bad, "RUB"))), &p).unwrap_err();
            assert!(err.contains("not an amount"), "{bad}: {err}");
        }
    }
}
