//! `GET /api/health`, `GET /api/metrics` (flat JSON) and `GET /metrics` (Prometheus text).
//! The health report itself is computed (and cached) by [`crate::health_report`].

use crate::AppState;
use crate::health_report::{self, BACKLOG_OLDEST_SECONDS, BACKLOG_PENDING, HealthReport};
use crate::telemetry;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use shared::jobs::JobStatus;
use utoipa::ToSchema;

/// The `/api/health` document of docs/API.md.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, or `degraded` when a component has a problem.
    #[schema(example = "ok")]
    pub status: &'static str,
    pub version: &'static str,
    /// When this process started (RFC 3339).
    pub uptime_since: String,
    pub components: HealthComponents,
    pub jobs: JobCounts,
}

/// Each component's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthComponents {
    pub database: DatabaseHealth,
    pub disk: DiskHealth,
    pub ffmpeg: FfmpegHealth,
    pub queue: QueueHealth,
    pub workers: WorkersHealth,
}

/// The database: `ok` or `error`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseHealth {
    pub status: &'static str,
    /// The error (without file paths); empty when `ok`.
    pub detail: String,
}

/// Free space of the temp dir's file system: `ok`, `low` or `unknown`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiskHealth {
    pub status: &'static str,
    pub free_mb: Option<u64>,
    /// The threshold (`MAGIC_MASTER_DISK_LOW_MB`).
    pub low_mb: u64,
}

/// `ok`, or `missing` when no `ffmpeg` is on `PATH`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FfmpegHealth {
    pub status: &'static str,
}

/// The queue: `ok`, or `backlog` when jobs wait too long or too many.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueHealth {
    pub status: &'static str,
    pub pending: u64,
    pub running: u64,
    pub failed_last_hour: u64,
    pub oldest_pending_sec: u64,
}

/// Workers with a recent heartbeat: `ok`, or `none`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkersHealth {
    pub status: &'static str,
    pub alive: u64,
}

/// Jobs by state.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobCounts {
    pub running: u64,
    pub queued: u64,
    /// Job rows of every state.
    pub total_cached: u64,
}

impl HealthResponse {
    /// The document of report `r`.
    pub fn new(state: &AppState, r: &HealthReport) -> HealthResponse {
        let q = &r.queue;
        let pending = q.count(JobStatus::Queued);
        let backlog = q.oldest_pending_sec > BACKLOG_OLDEST_SECONDS || pending > BACKLOG_PENDING;
        let disk_status = match r.disk_free_bytes {
            None => "unknown",
            Some(_) if r.disk_low() => "low",
            Some(_) => "ok",
        };
        HealthResponse {
            status: r.status(),
            version: shared::VERSION,
            uptime_since: shared::time::format(state.started_at),
            components: HealthComponents {
                database: DatabaseHealth {
                    status: if r.database_error.is_some() {
                        "error"
                    } else {
                        "ok"
                    },
                    detail: r
                        .database_error
                        .as_deref()
                        .map(|e| health_report::without_paths(state, e))
                        .unwrap_or_default(),
                },
                disk: DiskHealth {
                    status: disk_status,
                    free_mb: r.disk_free_bytes.map(|b| b >> 20),
                    low_mb: state.settings.disk_low_mb,
                },
                ffmpeg: FfmpegHealth {
                    status: if r.ffmpeg { "ok" } else { "missing" },
                },
                queue: QueueHealth {
                    status: if backlog { "backlog" } else { "ok" },
                    pending,
                    running: q.count(JobStatus::Running),
                    failed_last_hour: q.failed_last_hour,
                    oldest_pending_sec: q.oldest_pending_sec.round() as u64,
                },
                workers: WorkersHealth {
                    status: if r.workers_alive > 0 { "ok" } else { "none" },
                    alive: r.workers_alive,
                },
            },
            jobs: JobCounts {
                running: q.count(JobStatus::Running),
                queued: pending,
                total_cached: q.total(),
            },
        }
    }
}

/// `GET /api/health`: always 200 (the body says `ok` or `degraded`), so that a degraded
/// service can still be inspected. The report is at most [`HEALTH_CACHE_TTL`] old.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "service",
    summary = "Service health",
    description = "Always 200; `status` says ok or degraded. Exempt from the rate limit: the report is computed at most once a second and shared by every caller in that second. Names no server path (components.disk has status, free_mb, low_mb).",
    responses(
        (status = 200, description = "Health", body = HealthResponse),
    ),
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    let r = health_report::current(&state).await;
    (StatusCode::OK, Json(HealthResponse::new(&state, &r)))
}

/// Seconds since this process started.
pub fn uptime_seconds(state: &AppState) -> i64 {
    (chrono::Utc::now() - state.started_at).num_seconds().max(0)
}

/// `GET /api/metrics`: the flat JSON of docs/API.md.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiMetrics {
    pub uptime_seconds: i64,
    pub jobs_running: u64,
    /// Job rows of every state.
    pub jobs_total: u64,
    pub jobs_queued: u64,
    pub jobs_failed: u64,
    pub workers_alive: u64,
    pub version: &'static str,
}

/// `GET /api/metrics`: the flat JSON of docs/API.md.
#[utoipa::path(
    get,
    path = "/api/metrics",
    tag = "service",
    summary = "Service figures as flat JSON",
    responses(
        (status = 200, description = "Figures", body = ApiMetrics),
    ),
)]
pub async fn api_metrics(State(state): State<AppState>) -> Json<ApiMetrics> {
    let q = shared::stats::queue_stats(&state.db)
        .await
        .unwrap_or_default();
    let alive = state.workers_alive().await;
    Json(ApiMetrics {
        uptime_seconds: uptime_seconds(&state),
        jobs_running: q.count(JobStatus::Running),
        jobs_total: q.total(),
        jobs_queued: q.count(JobStatus::Queued),
        jobs_failed: q.count(JobStatus::Failed),
        workers_alive: alive,
        version: shared::VERSION,
    })
}

/// `GET /metrics`: Prometheus text; database figures are refreshed first.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    summary = "Prometheus metrics (text exposition format; names in ops/METRICS.md)",
    description = "Every label comes from a fixed set (method: a standard one or other; route: the matched template or unmatched); no server path. Database figures are refreshed at most once a second.",
    responses(
        (status = 200, description = "Metrics", body = String, content_type = "text/plain"),
    ),
)]
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
