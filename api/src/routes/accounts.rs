//! Accounts: `POST /api/auth/register`, `POST /api/auth/login`, `GET /api/auth/me`,
//! `GET /api/limits` (users and guests) and `GET /api/jobs` (the caller's history).

use crate::AppState;
use crate::auth::{AuthUser, Caller, hash_password, normalize_email, verify_password};
use crate::error::{ApiError, ErrorCode};
use crate::security::rate_limited;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use mastering::OutputFormat;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::accounts::{self, FormatRules, MIN_PASSWORD_LEN, User};
use shared::allowance::Allowance;
use shared::quota;

/// Body of register and login.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

fn token_response(state: &AppState, user: &User) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({
        "access_token": state.security.issue_token(user.id)?,
        "token_type": "bearer",
        "expires_in": state.security.token_ttl.as_secs(),
        "email": user.email,
        "tier": user.effective_tier().as_str(),
        "is_admin": user.is_admin,
    })))
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
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Credentials>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
pub async fn login(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Credentials>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
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
pub fn user_json(user: &User) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "tier": user.effective_tier().as_str(),
        "tier_expires_at": user.tier_expires_at.map(shared::time::format),
        "tokens": user.tokens,
        "is_admin": user.is_admin,
        "is_blocked": user.is_blocked,
        "created_at": shared::time::format(user.created_at),
    })
}

/// `GET /api/auth/me`.
pub async fn me(AuthUser(user, _): AuthUser) -> Json<Value> {
    Json(user_json(&user))
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

/// `GET /api/limits`.
pub async fn limits(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let a = allowance(&state, &caller);
    let used = a.used_today(&state.db, chrono::Utc::now()).await?;
    let rules = format_rules(&caller);
    Ok(Json(json!({
        "tier": a.tier,
        "used_today": used,
        "daily_limit": a.daily_limit,
        "remaining": a.daily_limit.saturating_sub(used),
        "reset_at": shared::time::format(quota::reset_at(chrono::Utc::now())),
        "tokens": a.tokens,
        "formats": rules.formats,
        "bit_depths": rules.bit_depths,
    })))
}

/// Query of `GET /api/jobs`.
#[derive(Debug, Deserialize)]
pub struct JobsQuery {
    pub limit: Option<u32>,
}

/// `GET /api/jobs`: the caller's jobs, newest first.
pub async fn my_jobs(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
    Query(q): Query<JobsQuery>,
) -> Result<Json<Value>, ApiError> {
    let rows =
        shared::jobs::list_for_user(&state.db, user.id, q.limit.unwrap_or(100).min(500)).await?;
    let ttl = state.settings.jobs_done_ttl_seconds;
    let jobs: Vec<Value> = rows
        .iter()
        .map(|j| {
            json!({
                "job_id": j.id,
                "status": j.status.as_str(),
                "style": j.params.style.name(),
                "out_format": j.params.format.name(),
                "created_at": shared::time::format(j.created_at),
                "expires_at": j.expires_at(ttl),
                "original_filename": j.original_name,
            })
        })
        .collect();
    Ok(Json(json!({ "jobs": jobs })))
}
