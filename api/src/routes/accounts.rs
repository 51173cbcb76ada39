//! Accounts: `POST /api/auth/register`, `POST /api/auth/login`, `GET /api/auth/me`,
//! `GET /api/limits` (users and guests) and `GET /api/jobs` (the caller's history).

use crate::AppState;
use crate::auth::{AuthUser, Caller, hash_password, normalize_email, verify_password};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::security::rate_limited;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use mastering::OutputFormat;
use serde::{Deserialize, Serialize};
use shared::accounts::{self, FormatRules, MIN_PASSWORD_LEN, User};
use shared::allowance::Allowance;
use shared::jobs::JobStatus;
use shared::quota;
use utoipa::{IntoParams, ToSchema};

/// Body of register and login.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    #[schema(example = "me@example.com")]
    pub email: String,
    /// At least 8 characters (register).
    #[schema(min_length = 8)]
    pub password: String,
}

/// The answer of register and login: a bearer token and who it is for.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// JWT (HS256); send it as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
    pub email: String,
    /// The effective tier: `free`, `pro` or `studio`.
    pub tier: &'static str,
    pub is_admin: bool,
}

fn token_response(state: &AppState, user: &User) -> Result<Json<TokenResponse>, ApiError> {
    Ok(Json(TokenResponse {
        access_token: state.security.issue_token(user.id)?,
        token_type: "bearer",
        expires_in: state.security.token_ttl.as_secs(),
        email: user.email.clone(),
        tier: user.effective_tier().as_str(),
        is_admin: user.is_admin,
    }))
}

fn parse_credentials(
    body: Result<Json<Credentials>, axum::extract::rejection::JsonRejection>,
) -> Result<Credentials, ApiError> {
    body.map(|Json(c)| c).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidBody,
            format!(
                "send a JSON body {{\"email\", \"password\"}} ({})",
                e.body_text()
            ),
        )
    })
}

/// `POST /api/auth/register` → 201 with a token.
#[utoipa::path(
    post,
    path = "/api/auth/register",
    tag = "accounts",
    summary = "Create an account (argon2id password hash); rate-limited per client, an IPv4 address or IPv6 /64 (MAGIC_MASTER_AUTH_RATE_LIMIT a minute, then 429 + Retry-After)",
    request_body = Credentials,
    responses(
        (status = 201, description = "Registered and logged in", body = TokenResponse),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 409, description = "Conflict", body = ErrorBody),
        (status = 429, description = "Rate limited or over a quota, with `Retry-After`", body = ErrorBody),
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Credentials>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    state
        .security
        .auth_limiter
        .check(caller.ip)
        .map_err(rate_limited)?;
    let creds = parse_credentials(body)?;
    let email =
        normalize_email(&creds.email).map_err(|e| ApiError::new(ErrorCode::InvalidEmail, e))?;
    if creds.password.chars().count() < MIN_PASSWORD_LEN || creds.password.len() > 1024 {
        return Err(ApiError::new(
            ErrorCode::WeakPassword,
            format!("choose a password of at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    let hash = hash_password(creds.password).await?;
    let user = accounts::create(&state.db, &email, &hash, false)
        .await?
        .ok_or_else(|| ApiError::Refused {
            code: ErrorCode::EmailTaken,
            detail: "an account with this email already exists: log in instead".to_owned(),
        })?;
    tracing::info!(user_id = user.id, "account registered");
    Ok((StatusCode::CREATED, token_response(&state, &user)?))
}

/// `POST /api/auth/login`.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "accounts",
    summary = "Log in; errors: invalid-credentials (401), user-blocked (403); rate-limited per client (IPv4 address or IPv6 /64)",
    request_body = Credentials,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "The account is blocked (`user-blocked`)", body = ErrorBody),
        (status = 429, description = "Rate limited or over a quota, with `Retry-After`", body = ErrorBody),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Credentials>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<TokenResponse>, ApiError> {
    state
        .security
        .auth_limiter
        .check(caller.ip)
        .map_err(rate_limited)?;
    let creds = parse_credentials(body)?;
    let invalid = || ApiError::new(ErrorCode::InvalidCredentials, "wrong email or password");
    let email = normalize_email(&creds.email).map_err(|_| invalid())?;
    let Some(user) = accounts::by_email(&state.db, &email).await? else {
        // Spend the same argon2 work as a real check, so timing does not reveal accounts.
        let _ = hash_password(creds.password).await;
        return Err(invalid());
    };
    if !verify_password(creds.password, user.password_hash.clone()).await? {
        return Err(invalid());
    }
    if user.is_blocked {
        return Err(ApiError::new(
            ErrorCode::UserBlocked,
            "this account is blocked: contact support",
        ));
    }
    token_response(&state, &user)
}

/// The public view of a user (admin lists, `me`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    /// The effective tier (`free` once a paid tier has ended).
    pub tier: &'static str,
    /// When the paid tier ends (RFC 3339); `null`: never.
    pub tier_expires_at: Option<String>,
    /// Prepaid masters beyond the daily limit.
    pub tokens: i64,
    pub is_admin: bool,
    pub is_blocked: bool,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> UserView {
        UserView {
            id: user.id,
            email: user.email.clone(),
            tier: user.effective_tier().as_str(),
            tier_expires_at: user.tier_expires_at.map(shared::time::format),
            tokens: user.tokens,
            is_admin: user.is_admin,
            is_blocked: user.is_blocked,
            created_at: shared::time::format(user.created_at),
        }
    }
}

/// `GET /api/auth/me`.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "accounts",
    summary = "The logged-in account",
    responses(
        (status = 200, description = "Account", body = UserView),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "The account is blocked (`user-blocked`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn me(AuthUser(user, _): AuthUser) -> Json<UserView> {
    Json(UserView::from(&user))
}

/// The caller's allowance: a user's effective tier, or the guest limit by client key
/// (IPv4 address or IPv6 /64).
pub fn allowance(state: &AppState, caller: &Caller) -> Allowance {
    match &caller.user {
        Some(user) => Allowance::of_user(user),
        None => Allowance::of_guest(
            caller.client_key().to_string(),
            state.settings.guest_daily_limit(),
        ),
    }
}

/// The output formats the caller may ask for (a guest's are a free user's).
pub fn format_rules(caller: &Caller) -> FormatRules {
    FormatRules::of(caller.user.as_ref().map(|u| u.effective_tier()))
}

/// Whether the caller may ask for `format`: 403 `format-not-allowed` otherwise.
pub fn check_format(caller: &Caller, format: &OutputFormat) -> Result<(), ApiError> {
    if format_rules(caller).allows(format) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::FormatNotAllowed,
            "this output format needs a paid plan (Pro or Studio); free masters are 16-bit WAV",
        ))
    }
}

/// The 429 answer for a used-up quota.
pub fn quota_exhausted(e: &quota::Exhausted) -> ApiError {
    let retry_after = (e.reset_at.timestamp() - shared::time::unix_now()).max(1) as u64;
    let reset_at = shared::time::format(e.reset_at);
    ApiError::RetryLater {
        code: ErrorCode::QuotaExhausted,
        detail: format!(
            "you have used all {} masters for today; the limit resets at {}",
            e.daily_limit, reset_at
        ),
        retry_after,
        reset_at: Some(reset_at),
    }
}

/// The caller's quota today and the formats they may ask for.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Limits)]
pub struct LimitsResponse {
    /// `guest`, `free`, `pro` or `studio`.
    pub tier: &'static str,
    pub used_today: u32,
    pub daily_limit: u32,
    pub remaining: u32,
    /// When `used_today` goes back to 0 (00:00 UTC, RFC 3339).
    pub reset_at: String,
    /// Prepaid masters, spent once the daily limit is used up.
    pub tokens: i64,
    /// Output formats this caller may ask for.
    pub formats: &'static [&'static str],
    /// Bits per sample of WAV and FLAC this caller may ask for.
    pub bit_depths: &'static [u16],
}

/// `GET /api/limits`.
#[utoipa::path(
    get,
    path = "/api/limits",
    tag = "accounts",
    summary = "Today's quota of the caller (users by account, guests by IPv4 address or IPv6 /64)",
    responses(
        (status = 200, description = "Limits", body = LimitsResponse),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "The account is blocked (`user-blocked`)", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub async fn limits(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<LimitsResponse>, ApiError> {
    let a = allowance(&state, &caller);
    let used = a.used_today(&state.db, chrono::Utc::now()).await?;
    let rules = format_rules(&caller);
    Ok(Json(LimitsResponse {
        tier: a.tier,
        used_today: used,
        daily_limit: a.daily_limit,
        remaining: a.daily_limit.saturating_sub(used),
        reset_at: shared::time::format(quota::reset_at(chrono::Utc::now())),
        tokens: a.tokens,
        formats: rules.formats,
        bit_depths: rules.bit_depths,
    }))
}

/// Query of `GET /api/jobs`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct JobsQuery {
    /// How many jobs (newest first); default 100, at most 500.
    #[param(maximum = 500)]
    pub limit: Option<u32>,
}

/// One job of the caller's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobSummary {
    pub job_id: String,
    pub status: JobStatus,
    pub style: &'static str,
    pub out_format: &'static str,
    pub created_at: String,
    /// When the result will be deleted; `null` until finished and once expired.
    pub expires_at: Option<String>,
    pub original_filename: String,
}

/// `GET /api/jobs`: the caller's jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobHistory {
    pub jobs: Vec<JobSummary>,
}

/// `GET /api/jobs`: the caller's jobs, newest first.
#[utoipa::path(
    get,
    path = "/api/jobs",
    tag = "accounts",
    summary = "The caller's jobs, newest first",
    params(JobsQuery),
    responses(
        (status = 200, description = "History", body = JobHistory),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "The account is blocked (`user-blocked`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn my_jobs(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
    Query(q): Query<JobsQuery>,
) -> Result<Json<JobHistory>, ApiError> {
    let rows =
        shared::jobs::list_for_user(&state.db, user.id, q.limit.unwrap_or(100).min(500)).await?;
    let ttl = state.settings.jobs_done_ttl_seconds;
    let jobs = rows
        .iter()
        .map(|j| JobSummary {
            job_id: j.id.clone(),
            status: j.status,
            style: j.params.style.name(),
            out_format: j.params.format.name(),
            created_at: shared::time::format(j.created_at),
            expires_at: j.expires_at(ttl),
            original_filename: j.original_name.clone(),
        })
        .collect();
    Ok(Json(JobHistory { jobs }))
}
