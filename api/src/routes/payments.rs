//! Payments: `GET /api/payments/plans`, `POST /api/payments/create`, `GET /api/payments`,
//! `GET /api/payments/{payment_id}` and the YooKassa notification
//! `POST /api/payments/webhook`.
//!
//! A notification is never believed: after the IP whitelist, the payment is fetched from
//! YooKassa and only what YooKassa reports is acted on, through the exactly-once
//! transitions of `shared::payments`. Refunds may be partial and several: only YooKassa's
//! cumulative `refunded_amount` is acted on, and only its increase is taken back.

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorCode};
use crate::security::{client_ip, ip_in};
use crate::yookassa::{
    Amount, Confirmation, CreatePayment, Mode, RemotePayment, RemoteStatus, YooKassa, YooKassaError,
};
use axum::Json;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::alerts::AlertKind;
use shared::payments::{self, Change, Grant, Payment};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Largest notification body accepted.
pub const WEBHOOK_BODY_LIMIT: usize = 64 * 1024;

/// Payments listed by `GET /api/payments`.
pub const LIST_LIMIT: u32 = 100;

/// The `cause` of a [`reconcile`] from the payer's status read (not a notification).
pub const STATUS_REFRESH: &str = "status refresh";

/// The public view of a payment.
pub fn payment_json(p: &Payment) -> Value {
    json!({
        "payment_id": p.id,
        "status": p.status.as_str(),
        "plan": p.plan,
        "amount": p.amount,
        "currency": p.currency,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "credited": p.credited_at.is_some(),
        "refunded": p.refunded_at.is_some(),
        "refunded_amount": p.refunded_amount(),
        "demo": p.demo,
        "confirmation_url": if p.status.is_open() { json!(p.confirmation_url) } else { Value::Null },
    })
}

/// `GET /api/payments/plans` (public).
pub async fn plans(State(state): State<AppState>) -> Json<Value> {
    let p = &state.payments;
    Json(json!({
        "demo": p.is_demo(),
        "currency": p.plans.currency(),
        "plans": p.plans.all(),
    }))
}

/// Body of `POST /api/payments/create`.
#[derive(Debug, Deserialize)]
pub struct CreateBody {
    /// Plan id.
    pub plan: String,
}

fn yookassa_error(e: YooKassaError) -> ApiError {
    match e {
        YooKassaError::Unreachable(_) | YooKassaError::ServerError { .. } => {
            ApiError::unavailable(e)
        }
        _ => ApiError::Refused {
            code: ErrorCode::PaymentProviderError,
            detail: "the payment provider refused to create the payment; try again later"
                .to_owned(),
        },
    }
}

/// `POST /api/payments/create` → 201.
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidBody,
            format!(
                "send a JSON body {{\"plan\": \"<plan id>\"}} ({})",
                e.body_text()
            ),
        )
    })?;
    let Some(plan) = state.payments.plans.get(body.plan.trim()) else {
        return Err(ApiError::new(
            ErrorCode::UnknownPlan,
            format!(
                "there is no plan {:?}; see GET /api/payments/plans",
                body.plan.chars().take(64).collect::<String>()
            ),
        ));
    };
    if let Some(payments::Grant::Tier { tier, .. }) = plan.grant() {
        let current = user.effective_tier();
        if tier < current {
            return Err(ApiError::new(
                ErrorCode::PlanBelowCurrentTier,
                format!(
                    "your {} plan is still running{}; a {} plan would replace it with less — \
                     buy it after {} ends, or buy tokens",
                    current.as_str(),
                    user.tier_expires_at
                        .as_deref()
                        .map(|end| format!(" until {end}"))
                        .unwrap_or_default(),
                    tier.as_str(),
                    current.as_str()
                ),
            ));
        }
    }
    let id = payments::new_payment_id();
    let return_url = state.payments.return_url_for(&id);
    let demo = state.payments.is_demo();
    payments::create(&state.db, &id, user.id, plan, demo).await?;
    let payment = match &state.payments.mode {
        Mode::Demo => {
            payments::set_confirmation_url(&state.db, &id, &return_url).await?;
            let change = payments::credit(&state.db, &id)
                .await?
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("demo payment row vanished")))?;
            announce(&state, "credited", &change);
            change.payment
        }
        Mode::Live(client) => {
            create_at_yookassa(&state, client, &id, user.id, plan, &return_url).await?
        }
    };
    tracing::info!(payment_id = %id, user_id = user.id, plan = %plan.id, demo, "payment created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "payment_id": payment.id,
            "status": payment.status.as_str(),
            "confirmation_url": if demo { json!(return_url) } else { json!(payment.confirmation_url) },
            "plan": payment.plan,
            "amount": payment.amount,
            "currency": payment.currency,
            "demo": demo,
        })),
    ))
}

async fn create_at_yookassa(
    state: &AppState,
    client: &YooKassa,
    id: &str,
    user_id: i64,
    plan: &shared::payments::Plan,
    return_url: &str,
) -> Result<Payment, ApiError> {
    let request = CreatePayment {
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
    };
    let remote = match client.create_payment(&request, id).await {
        Ok(remote) => remote,
        Err(e) => {
            tracing::error!(payment_id = %id, error = %e, "YooKassa: creating the payment failed");
            payments::mark_failed(&state.db, id, &e.to_string()).await?;
            return Err(yookassa_error(e));
        }
    };
    let url = remote
        .confirmation
        .as_ref()
        .and_then(|c| c.confirmation_url.clone());
    let payment = payments::attach_provider(&state.db, id, &remote.id, url.as_deref())
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("payment row vanished")))?;
    if url.is_none() {
        let e = YooKassaError::Invalid("the created payment has no confirmation_url".to_owned());
        tracing::error!(payment_id = %id, provider_payment_id = %remote.id, error = %e, "YooKassa");
        payments::mark_failed(&state.db, id, &e.to_string()).await?;
        return Err(yookassa_error(e));
    }
    Ok(payment)
}

/// `GET /api/payments` → the caller's payments, newest first.
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
) -> Result<Json<Value>, ApiError> {
    let rows = payments::list_for_user(&state.db, user.id, LIST_LIMIT).await?;
    let items: Vec<Value> = rows.iter().map(payment_json).collect();
    Ok(Json(json!({ "payments": items })))
}

/// `GET /api/payments/{payment_id}` (the payer only; anyone else gets 404). While the
/// payment is open, its status is refreshed from YooKassa (a missed notification then still
/// credits, through the same exactly-once path).
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
    Path(payment_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("no payment {payment_id:?}"));
    let mut payment = payments::get(&state.db, &payment_id)
        .await?
        .filter(|p| p.user_id == user.id)
        .ok_or_else(not_found)?;
    if let (Mode::Live(client), true, Some(pid)) = (
        &state.payments.mode,
        payment.status.is_open(),
        payment.provider_payment_id.clone(),
    ) {
        match client.get_payment(&pid).await {
            Ok(remote) => {
                if let Some(updated) = reconcile(&state, &payment, &remote, STATUS_REFRESH).await? {
                    payment = updated;
                }
            }
            Err(e) => {
                tracing::warn!(payment_id = %payment.id, error = %e, "YooKassa: status refresh failed")
            }
        }
    }
    Ok(Json(payment_json(&payment)))
}

/// A YooKassa notification (the fields we read; the object itself is never trusted).
#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "type")]
    kind: String,
    event: String,
    object: NotificationObject,
}

#[derive(Debug, Deserialize)]
struct NotificationObject {
    id: String,
    /// Set on refund objects: the refunded payment.
    #[serde(default)]
    payment_id: Option<String>,
}

/// Events acted on (after confirming with YooKassa).
pub const WEBHOOK_EVENTS: &[&str] = &[
    "payment.succeeded",
    "payment.canceled",
    "payment.waiting_for_capture",
    "refund.succeeded",
];

fn ignored(reason: &str) -> Json<Value> {
    Json(json!({ "ok": true, "ignored": reason }))
}

/// `POST /api/payments/webhook`.
pub async fn webhook(State(state): State<AppState>, req: Request) -> Result<Json<Value>, ApiError> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = client_ip(peer, req.headers(), &state.security.trusted_proxies);
    if !ip_in(&state.payments.webhook_whitelist, ip) {
        tracing::warn!(%ip, "payment webhook from an address outside the whitelist: refused");
        return Err(ApiError::new(
            ErrorCode::WebhookForbidden,
            "notifications are accepted only from the payment provider's addresses",
        ));
    }
    let bytes = axum::body::to_bytes(req.into_body(), WEBHOOK_BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidBody,
                "the notification body is too large or broken",
            )
        })?;
    let note: Notification = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidBody,
            format!("not a YooKassa notification: {e}"),
        )
    })?;
    if note.kind != "notification" {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("expected \"type\": \"notification\", got {:?}", note.kind),
        ));
    }
    if !WEBHOOK_EVENTS.contains(&note.event.as_str()) {
        tracing::info!(event = %note.event, "payment webhook: event not handled, ignored");
        return Ok(ignored("event not handled"));
    }
    let Mode::Live(client) = &state.payments.mode else {
        tracing::warn!(event = %note.event, "payment webhook in demo mode: ignored");
        return Ok(ignored("demo mode"));
    };
    let provider_id = if note.event.starts_with("refund.") {
        note.object.payment_id.clone().unwrap_or_default()
    } else {
        note.object.id.clone()
    };
    let remote = match client.get_payment(&provider_id).await {
        Ok(remote) => remote,
        Err(YooKassaError::NotFound) => {
            tracing::warn!(event = %note.event, provider_payment_id = %provider_id, %ip,
                "payment webhook for a payment YooKassa does not know: ignored");
            return Ok(ignored("unknown payment"));
        }
        Err(e) => {
            tracing::error!(event = %note.event, provider_payment_id = %provider_id, error = %e,
                "payment webhook: cannot confirm with YooKassa; answering 503 so it retries");
            return Err(ApiError::unavailable(e));
        }
    };
    let Some(payment) = find_payment(&state, &remote).await? else {
        tracing::warn!(event = %note.event, provider_payment_id = %remote.id,
            "payment webhook for a payment not in our database: ignored");
        return Ok(ignored("unknown payment"));
    };
    match reconcile(&state, &payment, &remote, &note.event).await? {
        Some(_) => Ok(Json(json!({ "ok": true }))),
        None => Ok(ignored("payment does not match")),
    }
}

/// Our row for a YooKassa payment: by its id, else (creation answered but was not recorded)
/// by the `payment_id` in its metadata, when the payer matches too.
async fn find_payment(
    state: &AppState,
    remote: &RemotePayment,
) -> Result<Option<Payment>, ApiError> {
    if let Some(p) = payments::by_provider_id(&state.db, &remote.id).await? {
        return Ok(Some(p));
    }
    let Some(our_id) = remote.meta("payment_id") else {
        return Ok(None);
    };
    let Some(p) = payments::get(&state.db, &our_id).await? else {
        return Ok(None);
    };
    if p.provider_payment_id.is_some() || remote.meta("user_id") != Some(p.user_id.to_string()) {
        return Ok(None);
    }
    let url = remote
        .confirmation
        .as_ref()
        .and_then(|c| c.confirmation_url.clone());
    Ok(payments::attach_provider(&state.db, &p.id, &remote.id, url.as_deref()).await?)
}

/// Acts on what YooKassa reports for `payment`; `None` (nothing done) when the amount or
/// our id in the metadata does not match the row.
pub async fn reconcile(
    state: &AppState,
    payment: &Payment,
    remote: &RemotePayment,
    cause: &str,
) -> Result<Option<Payment>, ApiError> {
    let same_amount = payments::amount_minor_units(&remote.amount.value)
        == payments::amount_minor_units(&payment.amount)
        && remote.amount.currency == payment.currency;
    let same_id = remote.meta("payment_id").is_none_or(|id| id == payment.id);
    if !same_amount || !same_id {
        tracing::error!(payment_id = %payment.id, provider_payment_id = %remote.id,
            remote_amount = %remote.amount.value, amount = %payment.amount,
            "YooKassa's payment does not match ours (amount or metadata): nothing done");
        return Ok(None);
    }
    if remote.status == RemoteStatus::Succeeded && remote.paid {
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
                    state.alerts.send(
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
            let change = payments::credit(&state.db, &payment.id).await?;
            match report(state, remote, cause, "credited", change) {
                Some(p) => current = p,
                None => return Ok(None),
            }
        }
        if refunded == 0 {
            return Ok(Some(current));
        }
        let change = payments::refund(&state.db, &payment.id, refunded).await?;
        return Ok(report(state, remote, cause, "refunded", change));
    }
    let (change, what) = match remote.status {
        RemoteStatus::Canceled => (payments::cancel(&state.db, &payment.id).await?, "canceled"),
        RemoteStatus::WaitingForCapture => (
            payments::mark_waiting(&state.db, &payment.id).await?,
            "waiting for capture",
        ),
        open @ (RemoteStatus::Pending | RemoteStatus::Succeeded | RemoteStatus::Unknown) => {
            tracing::info!(payment_id = %payment.id, status = ?open, paid = remote.paid, cause,
                "YooKassa reports the payment still open: nothing to do");
            return Ok(Some(payment.clone()));
        }
    };
    Ok(report(state, remote, cause, what, change))
}

/// YooKassa's cumulative refunded amount in minor units (0 when absent); an error naming
/// the fault when its currency is not the payment's or its value is not an amount.
pub fn refunded_kopecks(remote: &RemotePayment, payment: &Payment) -> Result<u64, String> {
    let Some(refunded) = &remote.refunded_amount else {
        return Ok(0);
    };
    let value = payments::amount_minor_units(&refunded.value).ok_or_else(|| {
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

/// Logs (and, when applied, announces) a change; the payment after it.
fn report(
    state: &AppState,
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
            announce(state, what, &change);
        }
    } else {
        tracing::info!(payment_id = %p.id, status = p.status.as_str(), cause,
            refunded_amount = %p.refunded_amount(),
            "payment already {what} (status {}): nothing changed", p.status.as_str());
    }
    Some(change.payment)
}

/// The Telegram message for an applied change (queued; never waits).
fn announce(state: &AppState, what: &str, change: &Change) {
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
    let text = match &change.refund {
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
                    payments::format_amount(step.increase_kopecks()),
                    p.currency
                )
            } else {
                format!(
                    "partly refunded: {} {} ({} of {} {} refunded in total)",
                    payments::format_amount(step.increase_kopecks()),
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
    };
    state.alerts.send(AlertKind::Payment, text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yookassa::Amount;

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
            status: payments::PaymentStatus::Succeeded,
            demo: false,
            created_at: String::new(),
            updated_at: String::new(),
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
