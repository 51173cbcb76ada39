//! HTTP routes.

pub mod accounts;
pub mod admin;
pub mod analyze;
pub mod cancel;
pub mod files;
pub mod health;
pub mod info;
pub mod master;
pub mod payments;
pub mod status;

use crate::AppState;
use axum::Router;
use axum::routing::{get, post};

/// Accounts, limits, the caller's job history and the admin API.
pub fn account_routes() -> Router<AppState> {
    Router::new()
        .route("/api/auth/register", post(accounts::register))
        .route("/api/auth/login", post(accounts::login))
        .route("/api/auth/me", get(accounts::me))
        .route("/api/limits", get(accounts::limits))
        .route("/api/jobs", get(accounts::my_jobs))
        .route("/api/admin/stats", get(admin::stats))
        .route("/api/admin/users", get(admin::users))
        .route(
            "/api/admin/users/{id}",
            axum::routing::patch(admin::update_user),
        )
        .route("/api/admin/users/{id}/tokens", post(admin::grant_tokens))
        .route("/api/admin/jobs", get(admin::list_jobs))
        .route("/api/admin/jobs/{job_id}/retry", post(admin::retry_job))
        .route("/api/admin/settings", get(admin::settings))
        .route("/api/admin/backup/db", get(admin::backup))
}

/// The payment routes.
pub fn payment_routes() -> Router<AppState> {
    Router::new()
        .route("/api/payments/plans", get(payments::plans))
        .route("/api/payments/create", post(payments::create))
        .route("/api/payments", get(payments::list))
        .route("/api/payments/webhook", post(payments::webhook))
        .route("/api/payments/{payment_id}", get(payments::get))
}
