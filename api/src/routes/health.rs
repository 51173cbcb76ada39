//! `GET /api/health`, `GET /api/metrics` (flat JSON) and `GET /metrics` (Prometheus text).
//! The health report itself is computed (and cached) by [`crate::health_report`].

use crate::AppState;
use crate::health_report::{self, BACKLOG_OLDEST_SECONDS, BACKLOG_PENDING, HealthReport};
use crate::telemetry;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use shared::jobs::JobStatus;

/// The `/api/health` document of docs/API.md.
pub fn health_json(state: &AppState, r: &HealthReport) -> Value {
    let q = &r.queue;
    let pending = q.count(JobStatus::Queued);
    let backlog = q.oldest_pending_sec > BACKLOG_OLDEST_SECONDS || pending > BACKLOG_PENDING;
    let disk_status = match r.disk_free_bytes {
        None => "unknown",
        Some(_) if r.disk_low() => "low",
        Some(_) => "ok",
    };
    json!({
        "status": r.status(),
        "version": shared::VERSION,
        "uptime_since": shared::time::format(state.started_at),
        "components": {
            "database": {
                "status": if r.database_error.is_some() { "error" } else { "ok" },
                "detail": r.database_error.as_deref().map(|e| health_report::without_paths(state, e)).unwrap_or_default(),
            },
            "disk": {
                "status": disk_status,
                "free_mb": r.disk_free_bytes.map(|b| b >> 20),
                "low_mb": state.settings.disk_low_mb,
            },
            "ffmpeg": {"status": if r.ffmpeg { "ok" } else { "missing" }},
            "queue": {
                "status": if backlog { "backlog" } else { "ok" },
                "pending": pending,
                "running": q.count(JobStatus::Running),
                "failed_last_hour": q.failed_last_hour,
                "oldest_pending_sec": q.oldest_pending_sec.round() as u64,
            },
            "workers": {
                "status": if r.workers_alive > 0 { "ok" } else { "none" },
                "alive": r.workers_alive,
            },
        },
        "jobs": {"running": q.count(JobStatus::Running), "queued": pending, "total_cached": q.total()},
    })
}

/// `GET /api/health`: always 200 (the body says `ok` or `degraded`), so that a degraded
/// service can still be inspected. The report is at most [`HEALTH_CACHE_TTL`] old.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let r = health_report::current(&state).await;
    (StatusCode::OK, Json(health_json(&state, &r)))
}

/// Seconds since this process started.
pub fn uptime_seconds(state: &AppState) -> i64 {
    (chrono::Utc::now() - state.started_at).num_seconds().max(0)
}

/// `GET /api/metrics`: the flat JSON of docs/API.md.
pub async fn api_metrics(State(state): State<AppState>) -> Json<Value> {
    let q = shared::stats::queue_stats(&state.db)
        .await
        .unwrap_or_default();
    let alive = state.workers_alive().await;
    Json(json!({
        "uptime_seconds": uptime_seconds(&state),
        "jobs_running": q.count(JobStatus::Running),
        "jobs_total": q.total(),
        "jobs_queued": q.count(JobStatus::Queued),
        "jobs_failed": q.count(JobStatus::Failed),
        "workers_alive": alive,
        "version": shared::VERSION,
    }))
}

/// `GET /metrics`: Prometheus text; database figures are refreshed first.
pub async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    telemetry::refresh(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        telemetry::prometheus().render(),
    )
}
