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
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::security::{client_ip, ip_in};
use crate::yookassa::{Mode, YooKassaError};
use axum::Json;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::payments::checkout::{Checkout, CheckoutError};
use shared::payments::reconcile::{Reconciler, STATUS_REFRESH};
use shared::payments::{self, Payment, Plan};
use std::net::SocketAddr;
use utoipa::ToSchema;

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
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Payment)]
pub struct PaymentView {
    pub payment_id: String,
    /// `pending`, `waiting_for_capture`, `succeeded`, `canceled` or `failed`.
    pub status: &'static str,
    /// The plan's id.
    pub plan: String,
    /// Price with two decimals, e.g. `"490.00"`.
    pub amount: String,
    pub currency: String,
    pub created_at: String,
    pub updated_at: String,
    /// Whether the plan was granted.
    pub credited: bool,
    pub refunded: bool,
    /// Refunded so far, two decimals.
    pub refunded_amount: String,
    /// Created in demo mode (no money moved).
    pub demo: bool,
    /// Where to pay, while the payment is open; `null` otherwise.
    pub confirmation_url: Option<String>,
}

impl From<&Payment> for PaymentView {
    fn from(p: &Payment) -> PaymentView {
        PaymentView {
            payment_id: p.id.clone(),
            status: p.status.as_str(),
            plan: p.plan.clone(),
            amount: p.amount.clone(),
            currency: p.currency.clone(),
            created_at: shared::time::format(p.created_at),
            updated_at: shared::time::format(p.updated_at),
            credited: p.credited_at.is_some(),
            refunded: p.refunded_at.is_some(),
            refunded_amount: p.refunded_amount(),
            demo: p.demo,
            confirmation_url: p
                .status
                .is_open()
                .then(|| p.confirmation_url.clone())
                .flatten(),
        }
    }
}

/// `GET /api/payments/plans`: the plans on sale.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlansResponse<'a> {
    /// Demo mode: payments are credited at once, without money.
    pub demo: bool,
    /// The currency of every plan.
    pub currency: &'a str,
    pub plans: &'a [Plan],
}

/// `GET /api/payments/plans` (public).
#[utoipa::path(
    get,
    path = "/api/payments/plans",
    tag = "payments",
    summary = "Plans on sale and whether payments run in demo mode (public). Plans come from MAGIC_MASTER_PAYMENT_PLANS_FILE or the built-in list.",
    responses(
        (status = 200, description = "Plans", body = PlansResponse),
        (status = 429, description = "Rate limited or over a quota, with `Retry-After`", body = ErrorBody),
    ),
)]
pub async fn plans(State(state): State<AppState>) -> Response {
    let p = &state.payments;
    Json(PlansResponse {
        demo: p.is_demo(),
        currency: p.plans.currency(),
        plans: p.plans.all(),
    })
    .into_response()
}

/// Body of `POST /api/payments/create`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateBody {
    /// Plan id.
    #[schema(example = "pro_month")]
    pub plan: String,
}

/// 201 of `POST /api/payments/create`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentCreated {
    pub payment_id: String,
    /// `pending` (`succeeded` in demo mode).
    pub status: &'static str,
    /// Where to send the payer (in demo mode: the return page).
    pub confirmation_url: Option<String>,
    pub plan: String,
    pub amount: String,
    pub currency: String,
    pub demo: bool,
}

/// The caller's payments (`GET /api/payments`), newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentList {
    pub payments: Vec<PaymentView>,
}

/// The answer to a notification: handled (`ok`) or ignored, with the reason.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    /// Always true: YooKassa must not retry.
    pub ok: bool,
    /// Why nothing was done (unknown payment, unhandled event, demo mode, mismatching
    /// payment); absent when handled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<&'static str>,
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
#[utoipa::path(
    post,
    path = "/api/payments/create",
    tag = "payments",
    summary = "Create a payment for a plan. Live: creates it at YooKassa (Basic auth, Idempotence-Key = payment_id, return URL, metadata) and answers the confirmation URL to send the payer to; nothing is credited until YooKassa confirms. Demo (YooKassa not configured): credited at once, confirmation_url is the return URL.",
    request_body = CreateBody,
    responses(
        (status = 201, description = "Payment created (pending; succeeded in demo mode)", body = PaymentCreated),
        (status = 400, description = "invalid-body, unknown-plan, or plan-below-current-tier (a tier plan lower than the paid tier in force)", body = ErrorBody),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "The account is blocked (`user-blocked`)", body = ErrorBody),
        (status = 429, description = "Rate limited or over a quota, with `Retry-After`", body = ErrorBody),
        (status = 502, description = "payment-provider-error: YooKassa refused the request (the payment is kept as failed)", body = ErrorBody),
        (status = 503, description = "unavailable: YooKassa unreachable or failing (the payment is kept as failed)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<PaymentCreated>), ApiError> {
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
        Json(PaymentCreated {
            payment_id: payment.id,
            status: payment.status.as_str(),
            confirmation_url: payment.confirmation_url,
            plan: payment.plan,
            amount: payment.amount,
            currency: payment.currency,
            demo: payment.demo,
        }),
    ))
}

/// `GET /api/payments` → the caller's payments, newest first.
#[utoipa::path(
    get,
    path = "/api/payments",
    tag = "payments",
    summary = "The caller's payments, newest first (at most 100)",
    responses(
        (status = 200, description = "Payments", body = PaymentList),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "The account is blocked (`user-blocked`)", body = ErrorBody),
        (status = 429, description = "Rate limited or over a quota, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
) -> Result<Json<PaymentList>, ApiError> {
    let rows = payments::list_for_user(&state.db, user.id, LIST_LIMIT).await?;
    let payments = rows.iter().map(PaymentView::from).collect();
    Ok(Json(PaymentList { payments }))
}

/// `GET /api/payments/{payment_id}` (the payer only; anyone else gets 404). While the
/// payment is open, its status is refreshed from YooKassa (a missed notification then still
/// credits, through the same exactly-once path).
#[utoipa::path(
    get,
    path = "/api/payments/{payment_id}",
    tag = "payments",
    summary = "One payment of the caller (anyone else gets 404). While it is pending in live mode its status is refreshed from YooKassa, crediting through the same exactly-once path as the webhook.",
    params(("payment_id" = String, Path, description = "The payment's id")),
    responses(
        (status = 200, description = "Payment", body = PaymentView),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "The account is blocked (`user-blocked`)", body = ErrorBody),
        (status = 404, description = "Not found (also another caller's job or payment)", body = ErrorBody),
        (status = 429, description = "Rate limited or over a quota, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
    Path(payment_id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
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
    Ok(Json(PaymentView::from(&payment)))
}

/// A YooKassa notification (the fields we read; the object itself is never trusted).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Notification {
    /// `notification`.
    #[serde(rename = "type")]
    #[schema(example = "notification")]
    kind: String,
    /// E.g. `payment.succeeded`; others are answered 200 and ignored.
    #[schema(example = "payment.succeeded")]
    event: String,
    object: NotificationObject,
}

/// The payment (or refund) the notification is about.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NotificationObject {
    /// YooKassa's id of the payment (or refund).
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

fn ignored(reason: &'static str) -> Json<WebhookAck> {
    Json(WebhookAck {
        ok: true,
        ignored: Some(reason),
    })
}

/// `POST /api/payments/webhook`.
#[utoipa::path(
    post,
    path = "/api/payments/webhook",
    tag = "payments",
    summary = "YooKassa notification. The client address (X-Forwarded-For believed only from MAGIC_MASTER_TRUSTED_PROXIES) must be in MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST (403 otherwise); the body is only a hint: the payment is fetched from YooKassa and only what YooKassa reports is acted on. Credits happen exactly once per payment, even under concurrent duplicates. Refunds may be partial and several: YooKassa's cumulative refunded_amount is acted on, and only its increase is taken back (ceil of the grant's tokens or days times the refunded share), once; a refunded_amount in another currency changes nothing. Not rate-limited.",
    request_body = Notification,
    responses(
        (status = 200, description = "Handled (`{\"ok\": true}`) or ignored (`{\"ok\": true, \"ignored\": reason}`: unknown payment, unhandled event, demo mode, mismatching amount)", body = WebhookAck),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 403, description = "Not from an address of the whitelist (`webhook-forbidden`)", body = ErrorBody),
        (status = 503, description = "YooKassa could not be asked: nothing done; YooKassa retries the notification", body = ErrorBody),
    ),
)]
pub async fn webhook(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<WebhookAck>, ApiError> {
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
        Some(_) => Ok(Json(WebhookAck {
            ok: true,
            ignored: None,
        })),
        None => Ok(ignored("payment does not match")),
    }
}
