//! The admin API under `/api/admin/` (admin JWT; the admin flag is read from the database
//! on every request). Every action that reads private data or changes something is written
//! to the `admin_audit` table.

use crate::AppState;
use crate::auth::AdminUser;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::routes::accounts::UserView;
use crate::routes::master::JobQueued;
use apalis::prelude::TaskSink;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::accounts::{self, Tier, User};
use shared::jobs::{self, JobStatus};
use std::collections::BTreeMap;
use utoipa::ToSchema;

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

/// `GET /api/admin/stats`: the service's totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminStats {
    pub users_total: i64,
    pub jobs_total: i64,
    /// Jobs created since 00:00 UTC.
    pub jobs_today: i64,
    /// Payments credited (refunded ones included).
    pub payments_credited: i64,
    /// Jobs by status name; a status without jobs is absent.
    pub jobs_by_status: BTreeMap<&'static str, u64>,
}

/// `GET /api/admin/stats`.
#[utoipa::path(
    get,
    path = "/api/admin/stats",
    tag = "admin",
    summary = "Counts of users, jobs (total, today, by status) and credited payments (admin JWT; 401 without a token, 403 for non-admins; audited)",
    responses(
        (status = 200, description = "Stats", body = AdminStats),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin-only`), or the account is blocked (`user-blocked`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn stats(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
) -> Result<Json<AdminStats>, ApiError> {
    let totals = shared::admin::totals(&state.db, chrono::Utc::now()).await?;
    let jobs_by_status = jobs::counts(&state.db)
        .await?
        .into_iter()
        .map(|(s, n)| (s.as_str(), n))
        .collect();
    audit(&state, &admin, "stats.read", None, json!({})).await?;
    Ok(Json(AdminStats {
        users_total: totals.users,
        jobs_total: totals.jobs,
        jobs_today: totals.jobs_today,
        payments_credited: totals.payments_credited,
        jobs_by_status,
    }))
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

/// `GET /api/admin/users`: one page of users and how many match in all.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
    pub total: u64,
}

/// `GET /api/admin/users?q=&limit=&offset=`.
#[utoipa::path(
    get,
    path = "/api/admin/users",
    tag = "admin",
    summary = "List or search users (admin JWT; 401 without a token, 403 for non-admins; audited)",
    params(("q" = Option<String>, Query, description = "Part of the email"), ("limit" = Option<u32>, Query, description = "Page size (default 100, at most 500)"), ("offset" = Option<u32>, Query, description = "Rows to skip (default 0)")),
    responses(
        (status = 200, description = "Users", body = UserList),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin-only`), or the account is blocked (`user-blocked`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn users(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<UserList>, ApiError> {
    let query = q.q.unwrap_or_default();
    let (users, total) = accounts::search(
        &state.db,
        query.trim(),
        q.limit.unwrap_or(100).clamp(1, 500),
        q.offset.unwrap_or(0),
    )
    .await?;
    audit(&state, &admin, "users.list", None, json!({ "q": query })).await?;
    Ok(Json(UserList {
        users: users.iter().map(UserView::from).collect(),
        total,
    }))
}

/// Body of `PATCH /api/admin/users/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserPatch {
    /// `free`, `pro` or `studio`.
    #[schema(example = "pro")]
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
#[utoipa::path(
    patch,
    path = "/api/admin/users/{id}",
    tag = "admin",
    summary = "Change tier (optionally with tier_expires_at) and/or the blocked flag (admin JWT; 401 without a token, 403 for non-admins; audited)",
    params(("id" = i64, Path, description = "The user's id")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "Updated user", body = UserView),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin-only`), or the account is blocked (`user-blocked`)", body = ErrorBody),
        (status = 404, description = "No such user or job (`not-found`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn update_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    body: Result<Json<UserPatch>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<UserView>, ApiError> {
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
    Ok(Json(UserView::from(&user)))
}

/// Body of `POST /api/admin/users/{id}/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Grant {
    /// Tokens to add, 1–100000.
    #[schema(minimum = 1, maximum = 100000)]
    pub amount: i64,
}

/// `POST /api/admin/users/{id}/tokens`.
#[utoipa::path(
    post,
    path = "/api/admin/users/{id}/tokens",
    tag = "admin",
    summary = "Grant tokens (1-100000) (admin JWT; 401 without a token, 403 for non-admins; audited)",
    params(("id" = i64, Path, description = "The user's id")),
    request_body = Grant,
    responses(
        (status = 200, description = "Updated user", body = UserView),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin-only`), or the account is blocked (`user-blocked`)", body = ErrorBody),
        (status = 404, description = "No such user or job (`not-found`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn grant_tokens(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<i64>,
    body: Result<Json<Grant>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<UserView>, ApiError> {
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
    Ok(Json(UserView::from(&user)))
}

/// One job as the admin list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminJobView {
    pub job_id: String,
    pub status: JobStatus,
    /// The owner's email; `null` for a guest's job.
    pub user_email: Option<String>,
    pub style: &'static str,
    pub out_format: &'static str,
    pub attempts: u32,
    pub error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub original_filename: String,
}

/// `GET /api/admin/jobs`: one page of jobs and how many match in all.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminJobList {
    pub jobs: Vec<AdminJobView>,
    pub total: u64,
}

/// `GET /api/admin/jobs?status=&limit=&offset=`.
#[utoipa::path(
    get,
    path = "/api/admin/jobs",
    tag = "admin",
    summary = "List jobs, optionally by state (admin JWT; 401 without a token, 403 for non-admins; audited)",
    params(("status" = Option<String>, Query, description = "`queued`, `running`, `done`, `failed` or `expired`"), ("limit" = Option<u32>, Query, description = "Page size (default 100, at most 500)"), ("offset" = Option<u32>, Query, description = "Rows to skip (default 0)")),
    responses(
        (status = 200, description = "Jobs with their owner's email (null for guests)", body = AdminJobList),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin-only`), or the account is blocked (`user-blocked`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<AdminJobList>, ApiError> {
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
    let jobs = rows
        .iter()
        .map(|(j, email)| AdminJobView {
            job_id: j.id.clone(),
            status: j.status,
            user_email: email.clone(),
            style: j.params.style.name(),
            out_format: j.params.format.name(),
            attempts: j.attempts,
            error: j.error.clone(),
            created_at: shared::time::format(j.created_at),
            finished_at: j.finished_at.map(shared::time::format),
            original_filename: j.original_name.clone(),
        })
        .collect();
    Ok(Json(AdminJobList { jobs, total }))
}

/// `POST /api/admin/jobs/{job_id}/retry`: a failed job back to the queue (409 otherwise).
#[utoipa::path(
    post,
    path = "/api/admin/jobs/{job_id}/retry",
    tag = "admin",
    summary = "Re-queue a failed job (attempts reset; no new quota charge) (admin JWT; 401 without a token, 403 for non-admins; audited)",
    params(("job_id" = String, Path, description = "The job's id (32 hex digits)")),
    responses(
        (status = 200, description = "Queued again", body = JobQueued),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin-only`), or the account is blocked (`user-blocked`)", body = ErrorBody),
        (status = 404, description = "No such user or job (`not-found`)", body = ErrorBody),
        (status = 409, description = "Conflict", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn retry_job(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<JobQueued>, ApiError> {
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
    Ok(Json(JobQueued::new(id, None)))
}

/// `GET /api/admin/settings`: every setting by its variable name, secrets as `"***"` (null
/// when unset).
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    #[serde(rename = "MAGIC_MASTER_HOST")]
    pub host: String,
    #[serde(rename = "MAGIC_MASTER_PORT")]
    pub port: u16,
    #[serde(rename = "MAGIC_MASTER_DATA_DIR")]
    pub data_dir: String,
    #[serde(rename = "MAGIC_MASTER_DB_PATH")]
    pub db_path: String,
    #[serde(rename = "MAGIC_MASTER_TEMP_DIR")]
    pub temp_dir: String,
    #[serde(rename = "MAGIC_MASTER_MAX_UPLOAD_MB")]
    pub max_upload_mb: u64,
    #[serde(rename = "MAGIC_MASTER_HEADER_TIMEOUT_SECONDS")]
    pub header_timeout_seconds: u64,
    #[serde(rename = "MAGIC_MASTER_BODY_IDLE_TIMEOUT_SECONDS")]
    pub body_idle_timeout_seconds: u64,
    #[serde(rename = "MAGIC_MASTER_BODY_MIN_RATE_KIB")]
    pub body_min_rate_kib: u64,
    #[serde(rename = "MAGIC_MASTER_UPLOADS_PER_IP")]
    pub uploads_per_ip: usize,
    #[serde(rename = "MAGIC_MASTER_UPLOADS_MAX")]
    pub uploads_max: usize,
    #[serde(rename = "MAGIC_MASTER_JOBS_DONE_TTL_SECONDS")]
    pub jobs_done_ttl_seconds: u64,
    #[serde(rename = "MAGIC_MASTER_SWEEP_INTERVAL_SECONDS")]
    pub sweep_interval_seconds: u64,
    #[serde(rename = "MAGIC_MASTER_EMBEDDED_WORKERS")]
    pub embedded_workers: usize,
    #[serde(rename = "MAGIC_MASTER_WORKER_CONCURRENCY")]
    pub worker_concurrency: usize,
    #[serde(rename = "MAGIC_MASTER_WORKER_HEARTBEAT_SECONDS")]
    pub worker_heartbeat_seconds: u64,
    #[serde(rename = "MAGIC_MASTER_JOB_MAX_ATTEMPTS")]
    pub job_max_attempts: u32,
    #[serde(rename = "MAGIC_MASTER_GUEST_DAILY_LIMIT")]
    pub guest_daily_limit: u32,
    #[serde(rename = "MAGIC_MASTER_GLOBAL_RATE_LIMIT")]
    pub global_rate_limit: u32,
    #[serde(rename = "MAGIC_MASTER_AUTH_RATE_LIMIT")]
    pub auth_rate_limit: u32,
    #[serde(rename = "MAGIC_MASTER_CORS_ORIGINS")]
    pub cors_origins: String,
    #[serde(rename = "MAGIC_MASTER_TRUSTED_PROXIES")]
    pub trusted_proxies: String,
    #[serde(rename = "MAGIC_MASTER_JWT_SECRET")]
    pub jwt_secret: &'static str,
    #[serde(rename = "MAGIC_MASTER_JWT_TTL_SECONDS")]
    pub jwt_ttl_seconds: u64,
    #[serde(rename = "MAGIC_MASTER_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    #[serde(rename = "MAGIC_MASTER_ADMIN_PASSWORD")]
    pub admin_password: Option<&'static str>,
    #[serde(rename = "MAGIC_MASTER_TELEGRAM_BOT_TOKEN")]
    pub telegram_bot_token: Option<&'static str>,
    #[serde(rename = "MAGIC_MASTER_TELEGRAM_ADMIN_CHAT_ID")]
    pub telegram_admin_chat_id: Option<String>,
    #[serde(rename = "MAGIC_MASTER_TELEGRAM_API_URL")]
    pub telegram_api_url: Option<String>,
    #[serde(rename = "MAGIC_MASTER_YOOKASSA_SHOP_ID")]
    pub yookassa_shop_id: Option<String>,
    #[serde(rename = "MAGIC_MASTER_YOOKASSA_SECRET_KEY")]
    pub yookassa_secret_key: Option<&'static str>,
    #[serde(rename = "MAGIC_MASTER_YOOKASSA_RETURN_URL")]
    pub yookassa_return_url: Option<String>,
    #[serde(rename = "MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST")]
    pub yookassa_webhook_ip_whitelist: String,
    #[serde(rename = "MAGIC_MASTER_YOOKASSA_API_URL")]
    pub yookassa_api_url: Option<String>,
    #[serde(rename = "MAGIC_MASTER_PAYMENT_PLANS_FILE")]
    pub payment_plans_file: Option<String>,
    #[serde(rename = "MAGIC_MASTER_LOG_FORMAT")]
    pub log_format: String,
}

/// The body of `GET /api/admin/settings`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsResponse {
    pub settings: SettingsView,
}

/// `GET /api/admin/settings`: every setting, secrets as `"***"` (null when unset).
#[utoipa::path(
    get,
    path = "/api/admin/settings",
    tag = "admin",
    summary = "Effective settings, secrets as \"***\" (null when unset) (admin JWT; 401 without a token, 403 for non-admins; audited)",
    responses(
        (status = 200, description = "Settings", body = SettingsResponse),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin-only`), or the account is blocked (`user-blocked`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn settings(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
) -> Result<Json<SettingsResponse>, ApiError> {
    let s = &state.settings;
    let secret = |v: bool| v.then_some("***");
    let list = |v: &[String]| v.join(",");
    let body = SettingsView {
        host: s.host.to_string(),
        port: s.port,
        data_dir: s.data_dir.display().to_string(),
        db_path: s.db_path.display().to_string(),
        temp_dir: s.temp_dir.display().to_string(),
        max_upload_mb: s.max_upload_mb,
        header_timeout_seconds: s.header_timeout_seconds,
        body_idle_timeout_seconds: s.body_idle_timeout_seconds,
        body_min_rate_kib: s.body_min_rate_kib,
        uploads_per_ip: s.uploads_per_ip,
        uploads_max: s.uploads_max,
        jobs_done_ttl_seconds: s.jobs_done_ttl_seconds,
        sweep_interval_seconds: s.sweep_interval_seconds,
        embedded_workers: s.embedded_workers,
        worker_concurrency: s.worker_concurrency,
        worker_heartbeat_seconds: s.worker_heartbeat_seconds,
        job_max_attempts: s.job_max_attempts,
        guest_daily_limit: s.guest_daily_limit(),
        global_rate_limit: s.global_rate_limit(),
        auth_rate_limit: s.auth_rate_limit,
        cors_origins: list(&s.cors_origins),
        trusted_proxies: list(&s.trusted_proxies),
        jwt_secret: "***",
        jwt_ttl_seconds: s.jwt_ttl_seconds,
        admin_email: s.admin_email.clone(),
        admin_password: secret(s.admin_password.is_some()),
        telegram_bot_token: secret(s.telegram_bot_token.is_some()),
        telegram_admin_chat_id: s.telegram_admin_chat_id.clone(),
        telegram_api_url: s.telegram_api_url.clone(),
        yookassa_shop_id: s.yookassa_shop_id.clone(),
        yookassa_secret_key: secret(s.yookassa_secret_key.is_some()),
        yookassa_return_url: s.yookassa_return_url.clone(),
        yookassa_webhook_ip_whitelist: list(&s.yookassa_webhook_ip_whitelist),
        yookassa_api_url: s.yookassa_api_url.clone(),
        payment_plans_file: s
            .payment_plans_file
            .as_ref()
            .map(|p| p.display().to_string()),
        log_format: format!("{:?}", s.log_format).to_lowercase(),
    };
    audit(&state, &admin, "settings.read", None, json!({})).await?;
    Ok(Json(SettingsResponse { settings: body }))
}

/// `GET /api/admin/backup/db`: a consistent, integrity-checked snapshot of the whole
/// database, streamed as `magic_master_backup_<YYYYmmdd_HHMMSS>.sqlite3`.
#[utoipa::path(
    get,
    path = "/api/admin/backup/db",
    tag = "admin",
    summary = "Consistent SQLite snapshot (VACUUM INTO, integrity-checked) as magic_master_backup_<YYYYmmdd_HHMMSS>.sqlite3 (admin JWT; 401 without a token, 403 for non-admins; audited)",
    responses(
        (status = 200, description = "The snapshot (`Content-Disposition: attachment; filename=\"magic_master_backup_<YYYYmmdd_HHMMSS>.sqlite3\"`)", body = [u8], content_type = "application/vnd.sqlite3"),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "Not an admin (`admin-only`), or the account is blocked (`user-blocked`)", body = ErrorBody),
        (status = 503, description = "Unavailable, with `Retry-After` where retrying helps", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
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
