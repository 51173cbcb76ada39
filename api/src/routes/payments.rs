//! Payments: `GET /api/payments/plans`, `POST /api/payments/create`, `GET /api/payments`,
//! `GET /api/payments/{payment_id}` and the YooKassa notification
//! `POST /api/payments/webhook`.
//!
//! A notification is never believed: after the IP whitelist, the payment is fetched from
//! YooKassa and only what YooKassa reports is acted on, by
//! `shared::payments::reconcile` (the exactly-once transitions, partial refunds, the
//! announcements). Starting a payment (demo or live, the plan-below-tier rule, what is
//! recorded around YooKassa's answer) is `shared::payments::checkout`. The routes parse,
//! call and respond.

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorCode};
use crate::security::{client_ip, ip_in};
use crate::yookassa::{Mode, YooKassaError};
use axum::Json;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::payments::checkout::{Checkout, CheckoutError};
use shared::payments::reconcile::{Reconciler, STATUS_REFRESH};
use shared::payments::{self, Payment};
use std::net::SocketAddr;

/// Largest notification body accepted.
pub const WEBHOOK_BODY_LIMIT: usize = 64 * 1024;

/// Payments listed by `GET /api/payments`.
pub const LIST_LIMIT: u32 = 100;

/// Reconciliation with this process's database and alerts.
fn reconciler(state: &AppState) -> Reconciler<'_> {
    Reconciler {
        db: &state.db,
        alerts: &state.alerts,
    }
}

/// The public view of a payment.
pub fn payment_json(p: &Payment) -> Value {
    json!({
        "payment_id": p.id,
        "status": p.status.as_str(),
        "plan": p.plan,
        "amount": p.amount,
        "currency": p.currency,
        "created_at": shared::time::format(p.created_at),
        "updated_at": shared::time::format(p.updated_at),
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

/// A payment not started, as the API answers it.
fn checkout_error(e: CheckoutError) -> ApiError {
    match e {
        CheckoutError::PlanBelowCurrentTier { .. } => {
            ApiError::new(ErrorCode::PlanBelowCurrentTier, e.to_string())
        }
        CheckoutError::Provider(e) if e.is_transient() => ApiError::unavailable(e),
        CheckoutError::Provider(_) => ApiError::Refused {
            code: ErrorCode::PaymentProviderError,
            detail: "the payment provider refused to create the payment; try again later"
                .to_owned(),
        },
        CheckoutError::Db(e) => e.into(),
        CheckoutError::Vanished(_) => ApiError::internal(e),
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
    let checkout = Checkout {
        db: &state.db,
        alerts: &state.alerts,
    };
    let payment = checkout
        .start(
            &state.payments.mode,
            &user,
            plan,
            &state.payments.return_url,
        )
        .await
        .map_err(checkout_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "payment_id": payment.id,
            "status": payment.status.as_str(),
            "confirmation_url": payment.confirmation_url,
            "plan": payment.plan,
            "amount": payment.amount,
            "currency": payment.currency,
            "demo": payment.demo,
        })),
    ))
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
                if let Some(updated) = reconciler(&state)
                    .reconcile(&payment, &remote, STATUS_REFRESH)
                    .await?
                {
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
    let reconciler = reconciler(&state);
    let Some(payment) = reconciler.find_payment(&remote).await? else {
        tracing::warn!(event = %note.event, provider_payment_id = %remote.id,
            "payment webhook for a payment not in our database: ignored");
        return Ok(ignored("unknown payment"));
    };
    match reconciler.reconcile(&payment, &remote, &note.event).await? {
        Some(_) => Ok(Json(json!({ "ok": true }))),
        None => Ok(ignored("payment does not match")),
    }
}
