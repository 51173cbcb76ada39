//! `GET /api/styles`, `GET /api/health`, `GET /api/openapi.json`.

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use mastering::Style;
use serde_json::{Value, json};

/// The hand-written OpenAPI document of these routes.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// `GET /api/styles`.
pub async fn styles() -> Json<Value> {
    let styles: Vec<Value> = Style::ALL
        .iter()
        .map(|s| {
            json!({
                "id": s.name(),
                "name": s.name(),
                "target_lufs": s.target_lufs(),
                "true_peak_db": mastering::params::DEFAULT_TRUE_PEAK_DB,
                "description": s.description(),
            })
        })
        .collect();
    Json(json!({ "styles": styles }))
}

/// `GET /api/health`: database reachability, worker liveness, job counts, version.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let db = shared::db::with_conn(&state.db, |c| {
        c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
    })
    .await;
    let (db_status, db_detail) = match &db {
        Ok(_) => ("ok", String::new()),
        Err(e) => ("error", e.to_string()),
    };
    let alive_window = state.settings.worker_heartbeat_seconds * 3;
    let alive = shared::heartbeats::alive(&state.db, alive_window)
        .await
        .unwrap_or(0);
    let counts = shared::jobs::counts(&state.db).await.unwrap_or_default();
    let count = |s: shared::jobs::JobStatus| {
        counts
            .iter()
            .find(|(k, _)| *k == s)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let queued = count(shared::jobs::JobStatus::Queued);
    let running = count(shared::jobs::JobStatus::Running);
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let degraded = db.is_err() || (alive == 0 && queued > 0);
    let body = json!({
        "status": if degraded { "degraded" } else { "ok" },
        "version": shared::VERSION,
        "uptime_since": state.started_at,
        "components": {
            "database": {"status": db_status, "detail": db_detail},
            "workers": {"status": if alive > 0 { "ok" } else { "none" }, "alive": alive},
        },
        "jobs": {"running": running, "queued": queued, "total_cached": total},
    });
    (StatusCode::OK, Json(body))
}

/// `GET /api/openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Fallback for unknown `/api/*` paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}
