//! Starting a payment (`POST /api/payments/create`): the rules between a payer choosing a
//! plan and the page where they pay.
//!
//! - A tier plan below the payer's running paid tier is refused (it would replace the tier
//!   with less); nothing is recorded then.
//! - The payment row is written, `pending`, before anything else happens, with what the plan
//!   grants copied in; its id is the idempotence key sent to the provider, so a retried
//!   creation can never create a second payment there.
//! - In demo mode (no provider configured) the payment is credited at once, through the same
//!   exactly-once path as a real one ([`super::ledger::credit`]), and announced.
//! - In live mode the payment is created at the provider; its id and confirmation URL are
//!   recorded. When the provider fails, or answers without a confirmation URL, the row is
//!   marked `failed` with the reason, so the record says what happened.

use crate::accounts::{Tier, User};
use crate::alerts::Alerts;
use crate::db::DbError;
use crate::payments::ledger;
use crate::payments::plans::{Grant, Plan};
use crate::payments::provider::{
    Amount, Confirmation, CreatePayment, PaymentProvider, YooKassaError,
};
use crate::payments::reconcile::Reconciler;
use crate::payments::record::Payment;
use crate::payments::store;
use chrono::{DateTime, Utc};
use deadpool_sqlite::Pool;
use std::collections::HashMap;

/// Where the money of a payment is collected.
#[derive(Debug)]
pub enum Mode<P> {
    /// Nowhere: no provider is configured, payments are credited at once (no money moves).
    Demo,
    /// At the provider, through this client.
    Live(P),
}

impl<P> Mode<P> {
    /// True in demo mode.
    pub fn is_demo(&self) -> bool {
        matches!(self, Mode::Demo)
    }
}

/// Why a payment was not started.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The plan's tier is below the payer's running paid tier.
    #[error(
        "your {} plan is still running{}; a {} plan would replace it with less — buy it after {} \
         ends, or buy tokens",
        .current.as_str(),
        .until.map(|end| format!(" until {}", crate::time::format(end))).unwrap_or_default(),
        .offered.as_str(),
        .current.as_str()
    )]
    PlanBelowCurrentTier {
        /// The payer's tier now.
        current: Tier,
        /// When it ends (`None`: it does not).
        until: Option<DateTime<Utc>>,
        /// The plan's tier.
        offered: Tier,
    },
    /// The provider failed to create the payment; the row is marked `failed` with this.
    #[error(transparent)]
    Provider(YooKassaError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The payment row was gone right after it was written.
    #[error("payment {0} vanished while it was being created")]
    Vanished(String),
}

/// Puts `payment_id` into a return-URL template: replaces `{payment_id}`, or appends
/// `payment_id=<id>` as a query parameter (before any `#fragment`).
pub fn return_url_for(template: &str, payment_id: &str) -> String {
    if template.contains("{payment_id}") {
        return template.replace("{payment_id}", payment_id);
    }
    let (base, fragment) = match template.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (template, None),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut url = format!("{base}{sep}payment_id={payment_id}");
    if let Some(f) = fragment {
        url.push('#');
        url.push_str(f);
    }
    url
}

/// Refuses a tier plan below the payer's running paid tier.
pub fn refuse_plan_below_tier(payer: &User, plan: &Plan) -> Result<(), CheckoutError> {
    let Some(Grant::Tier { tier: offered, .. }) = plan.grant() else {
        return Ok(());
    };
    let current = payer.effective_tier();
    if offered < current {
        return Err(CheckoutError::PlanBelowCurrentTier {
            current,
            until: payer.tier_expires_at,
            offered,
        });
    }
    Ok(())
}

/// What starting a payment needs: the database and where payment news is announced.
#[derive(Debug, Clone, Copy)]
pub struct Checkout<'a> {
    /// The database pool.
    pub db: &'a Pool,
    /// Telegram alerts (the demo credit is announced like a real one).
    pub alerts: &'a Alerts,
}

impl Checkout<'_> {
    /// Starts a payment of `payer` for `plan`, collected as `mode` says; the payer comes back
    /// to `return_url_template` ([`return_url_for`]). Returns the payment as recorded: in
    /// demo mode credited, in live mode pending with the provider's confirmation URL.
    pub async fn start<P: PaymentProvider>(
        &self,
        mode: &Mode<P>,
        payer: &User,
        plan: &Plan,
        return_url_template: &str,
    ) -> Result<Payment, CheckoutError> {
        refuse_plan_below_tier(payer, plan)?;
        let id = store::new_payment_id();
        let return_url = return_url_for(return_url_template, &id);
        let demo = mode.is_demo();
        store::create(self.db, &id, payer.id, plan, demo).await?;
        let payment = match mode {
            Mode::Demo => self.credit_demo(&id, &return_url).await?,
            Mode::Live(provider) => {
                self.create_at_provider(provider, &id, payer.id, plan, &return_url)
                    .await?
            }
        };
        tracing::info!(payment_id = %id, user_id = payer.id, plan = %plan.id, demo, "payment created");
        Ok(payment)
    }

    /// Demo mode: the payer "pays" by coming back; credited and announced now.
    async fn credit_demo(&self, id: &str, return_url: &str) -> Result<Payment, CheckoutError> {
        store::set_confirmation_url(self.db, id, return_url).await?;
        let change = ledger::credit(self.db, id)
            .await?
            .ok_or_else(|| CheckoutError::Vanished(id.to_owned()))?;
        Reconciler {
            db: self.db,
            alerts: self.alerts,
        }
        .announce("credited", &change);
        Ok(change.payment)
    }

    /// Live mode: creates the payment at the provider (our id as the idempotence key) and
    /// records its id and confirmation URL; a failure marks the row `failed`.
    async fn create_at_provider<P: PaymentProvider>(
        &self,
        provider: &P,
        id: &str,
        user_id: i64,
        plan: &Plan,
        return_url: &str,
    ) -> Result<Payment, CheckoutError> {
        let request = creation_request(id, user_id, plan, return_url);
        let remote = match provider.create_payment(&request, id).await {
            Ok(remote) => remote,
            Err(e) => {
                tracing::error!(payment_id = %id, error = %e, "YooKassa: creating the payment failed");
                return Err(self.failed(id, e).await);
            }
        };
        let url = remote
            .confirmation
            .as_ref()
            .and_then(|c| c.confirmation_url.clone());
        let payment = store::attach_provider(self.db, id, &remote.id, url.as_deref())
            .await?
            .ok_or_else(|| CheckoutError::Vanished(id.to_owned()))?;
        if url.is_none() {
            let e =
                YooKassaError::Invalid("the created payment has no confirmation_url".to_owned());
            tracing::error!(payment_id = %id, provider_payment_id = %remote.id, error = %e, "YooKassa");
            return Err(self.failed(id, e).await);
        }
        Ok(payment)
    }

    /// Marks the payment `failed` with the provider's error; the error to return.
    async fn failed(&self, id: &str, e: YooKassaError) -> CheckoutError {
        match store::mark_failed(self.db, id, &e.to_string()).await {
            Ok(()) => CheckoutError::Provider(e),
            Err(db) => CheckoutError::Db(db),
        }
    }
}

/// The provider's creation request: the plan's price, automatic capture, a redirect back to
/// `return_url`, and our ids in the metadata (so a payment can be matched even when its
/// creation was answered but not recorded).
fn creation_request(id: &str, user_id: i64, plan: &Plan, return_url: &str) -> CreatePayment {
    CreatePayment {
        amount: Amount {
            value: plan.price.clone(),
            currency: plan.currency.clone(),
        },
        capture: true,
        confirmation: Confirmation {
            kind: "redirect".to_owned(),
            confirmation_url: None,
            return_url: Some(return_url.to_owned()),
        },
        description: format!("Magic Master: {}", plan.name)
            .chars()
            .take(128)
            .collect(),
        metadata: HashMap::from([
            ("payment_id".to_owned(), id.to_owned()),
            ("user_id".to_owned(), user_id.to_string()),
            ("plan".to_owned(), plan.id.clone()),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts;
    use crate::payments::plans::Plans;
    use crate::payments::provider::{RemotePayment, RemoteStatus};
    use crate::payments::record::PaymentStatus;
    use std::sync::Mutex;

    const RETURN_URL: &str = "https://shop.example/return";

    /// A provider that answers every creation with `answer` and keeps the requests.
    struct FakeYooKassa {
        answer: fn(&CreatePayment) -> Result<RemotePayment, YooKassaError>,
        requests: Mutex<Vec<(CreatePayment, String)>>,
    }

    impl FakeYooKassa {
        fn answering(answer: fn(&CreatePayment) -> Result<RemotePayment, YooKassaError>) -> Self {
            FakeYooKassa {
                answer,
                requests: Mutex::default(),
            }
        }

        fn requests(&self) -> Vec<(CreatePayment, String)> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl PaymentProvider for FakeYooKassa {
        async fn create_payment(
            &self,
            request: &CreatePayment,
            idempotence_key: &str,
        ) -> Result<RemotePayment, YooKassaError> {
            self.requests
                .lock()
                .unwrap()
                .push((request.clone(), idempotence_key.to_owned()));
            (self.answer)(request)
        }
    }

    /// The provider's id of our payment `id` in [`created`].
    fn provider_id(id: &str) -> String {
        format!("yk-{id}")
    }

    /// A pending payment at the provider, as created from `request`.
    fn created(request: &CreatePayment) -> Result<RemotePayment, YooKassaError> {
        let id = provider_id(&request.metadata["payment_id"]);
        Ok(RemotePayment {
            confirmation: Some(Confirmation {
                kind: "redirect".to_owned(),
                confirmation_url: Some(format!("https://yookassa.example/confirm/{id}")),
                return_url: None,
            }),
            id,
            status: RemoteStatus::Pending,
            paid: false,
            amount: request.amount.clone(),
            metadata: HashMap::new(),
            refunded_amount: None,
            test: true,
        })
    }

    async fn pool_with_payer() -> (tempfile::TempDir, Pool, User) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open_pool(&dir.path().join("t.db"), 4).unwrap();
        crate::db::migrate(&pool).await.unwrap();
        let payer = accounts::create(&pool, "payer@example.com", "h", false)
            .await
            .unwrap()
            .unwrap();
        (dir, pool, payer)
    }

    async fn start(
        pool: &Pool,
        mode: &Mode<FakeYooKassa>,
        payer: &User,
        plan: &str,
    ) -> Result<Payment, CheckoutError> {
        let plans = Plans::builtin();
        let alerts = Alerts::disabled();
        Checkout {
            db: pool,
            alerts: &alerts,
        }
        .start(mode, payer, plans.get(plan).unwrap(), RETURN_URL)
        .await
    }

    #[test]
    fn return_urls_carry_the_payment_id() {
        assert_eq!(
            return_url_for("https://x.ru/pay/{payment_id}/done", "abc"),
            "https://x.ru/pay/abc/done"
        );
        assert_eq!(
            return_url_for("https://x.ru/r", "abc"),
            "https://x.ru/r?payment_id=abc"
        );
        assert_eq!(
            return_url_for("https://x.ru/r?lang=ru#top", "abc"),
            "https://x.ru/r?lang=ru&payment_id=abc#top"
        );
    }

    #[tokio::test]
    async fn a_plan_below_the_running_paid_tier_is_refused_and_nothing_is_recorded() {
        let (_dir, pool, payer) = pool_with_payer().await;
        let end = Utc::now() + chrono::Duration::days(10);
        let until = crate::time::format(end);
        let studio = accounts::update(&pool, payer.id, Some((Tier::Studio, Some(end))), None)
            .await
            .unwrap()
            .unwrap();
        let live = Mode::Live(FakeYooKassa::answering(created));
        let err = start(&pool, &live, &studio, "pro_month").await.unwrap_err();
        assert!(
            matches!(
                err,
                CheckoutError::PlanBelowCurrentTier {
                    current: Tier::Studio,
                    offered: Tier::Pro,
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with("your studio plan is still running until ")
                && text.contains(&until)
                && text.contains("a pro plan would replace it with less"),
            "{text}"
        );
        let Mode::Live(provider) = &live else {
            unreachable!()
        };
        assert!(provider.requests().is_empty(), "the provider was not asked");
        let recorded = store::list_for_user(&pool, payer.id, 10).await.unwrap();
        assert!(recorded.is_empty(), "{recorded:?}");

        // The same tier, a higher one and tokens are sold; so is any tier once it ended.
        for plan in ["studio_month", "tokens_10"] {
            assert!(start(&pool, &live, &studio, plan).await.is_ok(), "{plan}");
        }
        let ended = accounts::update(
            &pool,
            payer.id,
            Some((
                Tier::Studio,
                crate::time::parse("2000-01-01T00:00:00Z").ok(),
            )),
            None,
        )
        .await
        .unwrap()
        .unwrap();
        assert!(start(&pool, &live, &ended, "pro_month").await.is_ok());
    }

    #[tokio::test]
    async fn demo_mode_credits_at_once_and_only_once() {
        let (_dir, pool, payer) = pool_with_payer().await;
        let payment = start(&pool, &Mode::Demo, &payer, "tokens_10")
            .await
            .unwrap();
        assert_eq!(payment.status, PaymentStatus::Succeeded);
        assert!(payment.demo && payment.credited_at.is_some());
        assert_eq!(payment.provider_payment_id, None);
        assert_eq!(
            payment.confirmation_url.as_deref(),
            Some(return_url_for(RETURN_URL, &payment.id).as_str()),
            "the payer goes straight back"
        );
        let tokens = |u: Option<User>| u.unwrap().tokens;
        assert_eq!(tokens(accounts::by_id(&pool, payer.id).await.unwrap()), 10);
        let again = ledger::credit(&pool, &payment.id).await.unwrap().unwrap();
        assert!(!again.applied, "credited once");
        assert_eq!(tokens(accounts::by_id(&pool, payer.id).await.unwrap()), 10);
    }

    #[tokio::test]
    async fn live_payments_are_recorded_before_the_provider_is_asked_with_our_id_as_key() {
        let (_dir, pool, payer) = pool_with_payer().await;
        let live = Mode::Live(FakeYooKassa::answering(created));
        let payment = start(&pool, &live, &payer, "pro_month").await.unwrap();
        assert_eq!(payment.status, PaymentStatus::Pending);
        assert!(!payment.demo && payment.credited_at.is_none());
        let remote_id = provider_id(&payment.id);
        assert_eq!(payment.provider_payment_id, Some(remote_id.clone()));
        assert_eq!(
            payment.confirmation_url,
            Some(format!("https://yookassa.example/confirm/{remote_id}"))
        );
        assert_eq!(
            store::get(&pool, &payment.id).await.unwrap(),
            Some(payment.clone())
        );

        let Mode::Live(provider) = &live else {
            unreachable!()
        };
        let [(request, key)] = provider.requests().try_into().unwrap();
        assert_eq!(key, payment.id, "our id is the idempotence key");
        let plan = Plans::builtin().get("pro_month").unwrap().clone();
        assert_eq!(
            (
                request.amount.value.as_str(),
                request.amount.currency.as_str()
            ),
            (plan.price.as_str(), plan.currency.as_str())
        );
        assert!(request.capture);
        assert_eq!(
            request.confirmation.return_url,
            Some(return_url_for(RETURN_URL, &payment.id))
        );
        assert_eq!(request.metadata["payment_id"], payment.id);
        assert_eq!(request.metadata["user_id"], payer.id.to_string());
        assert_eq!(request.metadata["plan"], plan.id);
        let after = accounts::by_id(&pool, payer.id).await.unwrap().unwrap();
        assert_eq!(
            after, payer,
            "nothing credited before the provider says paid"
        );
    }

    #[tokio::test]
    async fn a_provider_failure_leaves_a_failed_record_that_says_why() {
        let (_dir, pool, payer) = pool_with_payer().await;
        let down = Mode::Live(FakeYooKassa::answering(|_| {
            Err(YooKassaError::ServerError {
                status: 503,
                detail: "try later".to_owned(),
            })
        }));
        let refused = Mode::Live(FakeYooKassa::answering(|_| {
            Err(YooKassaError::Rejected {
                status: 401,
                detail: "invalid_credentials: bad shop id".to_owned(),
            })
        }));
        let no_url = Mode::Live(FakeYooKassa::answering(|request| {
            let mut remote = created(request)?;
            remote.confirmation = None;
            Ok(remote)
        }));
        for (mode, transient, reason) in [
            (&down, true, "YooKassa answered 503: try later"),
            (&refused, false, "bad shop id"),
            (&no_url, false, "no confirmation_url"),
        ] {
            let err = start(&pool, mode, &payer, "tokens_10").await.unwrap_err();
            let CheckoutError::Provider(e) = &err else {
                panic!("{reason}: {err:?}");
            };
            assert_eq!(e.is_transient(), transient, "{reason}");
            let newest = store::list_for_user(&pool, payer.id, 1).await.unwrap();
            let [recorded] = newest.as_slice() else {
                panic!("{reason}: {newest:?}");
            };
            assert_eq!(recorded.status, PaymentStatus::Failed, "{reason}");
            let error = recorded.error.as_deref().unwrap_or_default();
            assert!(error.contains(reason), "{reason}: {error}");
            assert!(recorded.credited_at.is_none(), "{reason}");
        }
        let recorded = store::list_for_user(&pool, payer.id, 10).await.unwrap();
        assert_eq!(recorded.len(), 3, "one record per attempt");
        assert_eq!(
            recorded[0].provider_payment_id,
            Some(provider_id(&recorded[0].id)),
            "the provider's id is kept even when its answer was unusable"
        );
    }
}
