//! The admin API under `/api/admin/` (admin JWT; the admin flag is read from the database
//! on every request). Every action that reads private data or changes something is written
//! to the `admin_audit` table.

use crate::AppState;
use crate::auth::AdminUser;
use crate::error::{ApiError, ErrorCode};
use crate::routes::accounts::user_json;
use apalis::prelude::TaskSink;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::accounts::{self, Tier, User};
use shared::jobs::{self, JobStatus};

/// Writes one audit row (and logs the action).
pub async fn audit(
    state: &AppState,
    admin: &User,
    action: &'static str,
    target: Option<String>,
    details: Value,
) -> Result<(), ApiError> {
    shared::admin::audit(
        &state.db,
        chrono::Utc::now(),
        admin,
        action,
        target,
        details,
    )
    .await?;
    tracing::info!(admin = %admin.email, action, "admin action");
    Ok(())
}

/// `GET /api/admin/stats`.
pub async fn stats(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
) -> Result<Json<Value>, ApiError> {
    let totals = shared::admin::totals(&state.db, chrono::Utc::now()).await?;
    let by_status: serde_json::Map<String, Value> = jobs::counts(&state.db)
        .await?
        .into_iter()
        .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
        .collect();
    audit(&state, &admin, "stats.read", None, json!({})).await?;
    Ok(Json(json!({
        "users_total": totals.users,
        "jobs_total": totals.jobs,
        "jobs_today": totals.jobs_today,
        "payments_credited": totals.payments_credited,
        "jobs_by_status": by_status,
    })))
}

/// Paging of admin lists.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Part of an email (users).
    pub q: Option<String>,
    /// `queued|running|done|failed|expired` (jobs).
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// `GET /api/admin/users?q=&limit=&offset=`.
pub async fn users(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let query = q.q.unwrap_or_default();
    let (users, total) = accounts::search(
        &state.db,
        query.trim(),
        q.limit.unwrap_or(100).clamp(1, 500),
        q.offset.unwrap_or(0),
    )
    .await?;
    audit(&state, &admin, "users.list", None, json!({ "q": query })).await?;
    Ok(Json(json!({
        "users": users.iter().map(user_json).collect::<Vec<_>>(),
        "total": total,
    })))
}

/// Body of `PATCH /api/admin/users/{id}`.
#[derive(Debug, Deserialize)]
pub struct UserPatch {
    pub tier: Option<String>,
    /// When the tier ends (RFC 3339); absent or null: never.
    pub tier_expires_at: Option<String>,
    pub is_blocked: Option<bool>,
}

fn bad_body(e: axum::extract::rejection::JsonRejection) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidBody,
        format!("invalid JSON body: {}", e.body_text()),
    )
}

/// `PATCH /api/admin/users/{id}`: tier and/or blocked flag.
pub async fn update_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    body: Result<Json<UserPatch>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(patch) = body.map_err(bad_body)?;
    if patch.tier.is_none() && patch.is_blocked.is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "send \"tier\" and/or \"is_blocked\"",
        ));
    }
    let tier = match &patch.tier {
        None => None,
        Some(t) => {
            let tier = Tier::parse(t).ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidTier, "tier must be free, pro or studio")
            })?;
            let expires = match &patch.tier_expires_at {
                None => None,
                Some(s) => Some(shared::time::parse(s).map_err(|_| {
                    ApiError::new(
                        ErrorCode::InvalidParameter,
                        "tier_expires_at must be an RFC 3339 time",
                    )
                })?),
            };
            Some((tier, expires))
        }
    };
    if id == admin.id && patch.is_blocked == Some(true) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "you cannot block your own account",
        ));
    }
    let user = accounts::update(&state.db, id, tier, patch.is_blocked)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no user with id {id}")))?;
    audit(
        &state,
        &admin,
        "users.update",
        Some(id.to_string()),
        json!({ "tier": patch.tier, "tier_expires_at": patch.tier_expires_at, "is_blocked": patch.is_blocked }),
    )
    .await?;
    Ok(Json(user_json(&user)))
}

/// Body of `POST /api/admin/users/{id}/tokens`.
#[derive(Debug, Deserialize)]
pub struct Grant {
    pub amount: i64,
}

/// `POST /api/admin/users/{id}/tokens`.
pub async fn grant_tokens(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    body: Result<Json<Grant>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(grant) = body.map_err(bad_body)?;
    if !(1..=100_000).contains(&grant.amount) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "amount must be between 1 and 100000",
        ));
    }
    let user = accounts::grant_tokens(&state.db, id, grant.amount)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no user with id {id}")))?;
    audit(
        &state,
        &admin,
        "users.grant_tokens",
        Some(id.to_string()),
        json!({ "amount": grant.amount }),
    )
    .await?;
    Ok(Json(user_json(&user)))
}

/// `GET /api/admin/jobs?status=&limit=&offset=`.
pub async fn list_jobs(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(name) => Some(JobStatus::from_name(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                format!("unknown status '{name}'"),
            )
        })?),
    };
    let (rows, total) = jobs::list_with_owner(
        &state.db,
        status,
        q.limit.unwrap_or(100).clamp(1, 500),
        q.offset.unwrap_or(0),
    )
    .await?;
    audit(
        &state,
        &admin,
        "jobs.list",
        None,
        json!({ "status": q.status }),
    )
    .await?;
    let jobs: Vec<Value> = rows
        .iter()
        .map(|(j, email)| {
            json!({
                "job_id": j.id,
                "status": j.status.as_str(),
                "user_email": email,
                "style": j.params.style.name(),
                "out_format": j.params.format.name(),
                "attempts": j.attempts,
                "error": j.error,
                "created_at": shared::time::format(j.created_at),
                "finished_at": j.finished_at.map(shared::time::format),
                "original_filename": j.original_name,
            })
        })
        .collect();
    Ok(Json(json!({ "jobs": jobs, "total": total })))
}

/// `POST /api/admin/jobs/{job_id}/retry`: a failed job back to the queue (409 otherwise).
pub async fn retry_job(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !jobs::is_valid_job_id(&id) || jobs::get(&state.db, &id).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no job with id '{id}'"),
        ));
    }
    if !jobs::requeue_failed(&state.db, &id).await? {
        return Err(ApiError::Refused {
            code: ErrorCode::NotFailed,
            detail: "only a failed job can be retried".to_owned(),
        });
    }
    let mut storage = shared::queue::storage(&state.queue, state.heartbeat());
    if let Err(e) = storage
        .push(shared::queue::MasterTask { job_id: id.clone() })
        .await
    {
        let failed = "retry could not be queued";
        let _ = jobs::finish_failed(&state.db, &id, failed, jobs::Fault::Service).await;
        return Err(ApiError::unavailable(
            anyhow::Error::from(e).context("queueing retry"),
        ));
    }
    audit(&state, &admin, "jobs.retry", Some(id.clone()), json!({})).await?;
    Ok(Json(json!({ "job_id": id, "status": "queued" })))
}

/// `GET /api/admin/settings`: every setting, secrets as `"***"` (null when unset).
pub async fn settings(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
) -> Result<Json<Value>, ApiError> {
    let s = &state.settings;
    let secret = |v: bool| if v { json!("***") } else { Value::Null };
    let list = |v: &[String]| json!(v.join(","));
    let body = json!({
        "MAGIC_MASTER_HOST": s.host.to_string(),
        "MAGIC_MASTER_PORT": s.port,
        "MAGIC_MASTER_DATA_DIR": s.data_dir.display().to_string(),
        "MAGIC_MASTER_DB_PATH": s.db_path.display().to_string(),
        "MAGIC_MASTER_TEMP_DIR": s.temp_dir.display().to_string(),
        "MAGIC_MASTER_MAX_UPLOAD_MB": s.max_upload_mb,
        "MAGIC_MASTER_HEADER_TIMEOUT_SECONDS": s.header_timeout_seconds,
        "MAGIC_MASTER_BODY_IDLE_TIMEOUT_SECONDS": s.body_idle_timeout_seconds,
        "MAGIC_MASTER_BODY_MIN_RATE_KIB": s.body_min_rate_kib,
        "MAGIC_MASTER_UPLOADS_PER_IP": s.uploads_per_ip,
        "MAGIC_MASTER_UPLOADS_MAX": s.uploads_max,
        "MAGIC_MASTER_JOBS_DONE_TTL_SECONDS": s.jobs_done_ttl_seconds,
        "MAGIC_MASTER_SWEEP_INTERVAL_SECONDS": s.sweep_interval_seconds,
        "MAGIC_MASTER_EMBEDDED_WORKERS": s.embedded_workers,
        "MAGIC_MASTER_WORKER_CONCURRENCY": s.worker_concurrency,
        "MAGIC_MASTER_WORKER_HEARTBEAT_SECONDS": s.worker_heartbeat_seconds,
        "MAGIC_MASTER_JOB_MAX_ATTEMPTS": s.job_max_attempts,
        "MAGIC_MASTER_GUEST_DAILY_LIMIT": s.guest_daily_limit(),
        "MAGIC_MASTER_GLOBAL_RATE_LIMIT": s.global_rate_limit(),
        "MAGIC_MASTER_AUTH_RATE_LIMIT": s.auth_rate_limit,
        "MAGIC_MASTER_CORS_ORIGINS": list(&s.cors_origins),
        "MAGIC_MASTER_TRUSTED_PROXIES": list(&s.trusted_proxies),
        "MAGIC_MASTER_JWT_SECRET": json!("***"),
        "MAGIC_MASTER_JWT_TTL_SECONDS": s.jwt_ttl_seconds,
        "MAGIC_MASTER_ADMIN_EMAIL": s.admin_email,
        "MAGIC_MASTER_ADMIN_PASSWORD": secret(s.admin_password.is_some()),
        "MAGIC_MASTER_TELEGRAM_BOT_TOKEN": secret(s.telegram_bot_token.is_some()),
        "MAGIC_MASTER_TELEGRAM_ADMIN_CHAT_ID": s.telegram_admin_chat_id,
        "MAGIC_MASTER_TELEGRAM_API_URL": s.telegram_api_url,
        "MAGIC_MASTER_YOOKASSA_SHOP_ID": s.yookassa_shop_id,
        "MAGIC_MASTER_YOOKASSA_SECRET_KEY": secret(s.yookassa_secret_key.is_some()),
        "MAGIC_MASTER_YOOKASSA_RETURN_URL": s.yookassa_return_url,
        "MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST": list(&s.yookassa_webhook_ip_whitelist),
        "MAGIC_MASTER_YOOKASSA_API_URL": s.yookassa_api_url,
        "MAGIC_MASTER_PAYMENT_PLANS_FILE": s.payment_plans_file.as_ref().map(|p| p.display().to_string()),
        "MAGIC_MASTER_LOG_FORMAT": format!("{:?}", s.log_format).to_lowercase(),
    });
    audit(&state, &admin, "settings.read", None, json!({})).await?;
    Ok(Json(json!({ "settings": body })))
}

/// `GET /api/admin/backup/db`: a consistent, integrity-checked snapshot of the whole
/// database, streamed as `magic_master_backup_<YYYYmmdd_HHMMSS>.sqlite3`.
pub async fn backup(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
) -> Result<Response, ApiError> {
    let name = shared::backup::file_name_now();
    tokio::fs::create_dir_all(&state.settings.temp_dir)
        .await
        .map_err(ApiError::internal)?;
    let temp = state
        .settings
        .temp_dir
        .join(format!("backup-{}.sqlite3", uuid::Uuid::new_v4().simple()));
    let snap = shared::backup::snapshot(&state.db, &temp)
        .await
        .map_err(|e| ApiError::unavailable(anyhow::Error::from(e).context("backup")))?;
    let file = tokio::fs::File::open(&snap.path).await;
    // The open handle keeps the data readable; the name goes now so nothing is left behind.
    let _ = tokio::fs::remove_file(&snap.path).await;
    let file = file.map_err(ApiError::internal)?;
    audit(
        &state,
        &admin,
        "backup.download",
        Some(name.clone()),
        json!({ "bytes": snap.bytes }),
    )
    .await?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.sqlite3"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(snap.bytes));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .map_err(ApiError::internal)?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
