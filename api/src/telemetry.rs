//! Metrics and request tracing: the Prometheus recorder (installed once per process), the
//! HTTP middleware counting requests by matched route template, the request id (generated
//! or taken from `x-request-id`, kept in the request's tracing span and echoed in the
//! response), and the database-backed gauges and job metrics refreshed at scrape time.
//! Metric names and labels: `ops/METRICS.md`.

use crate::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Buckets of `magic_master_job_duration_seconds` (ops/METRICS.md).
pub const JOB_DURATION_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0,
];
/// Buckets of `magic_master_http_request_duration_seconds`.
pub const HTTP_DURATION_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle; installs the recorder on first use. If another
/// recorder was installed first, metrics go there and this handle renders nothing.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("magic_master_job_duration_seconds".into()),
                JOB_DURATION_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("magic_master_http_request_duration_seconds".into()),
                    HTTP_DURATION_BUCKETS,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        describe();
        metrics::gauge!("magic_master_build_info", "version" => shared::VERSION).set(1.0);
        metrics::counter!("magic_master_upload_bytes_total").increment(0);
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "magic_master_http_requests_total",
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        "magic_master_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to the response head."
    );
    describe_counter!(
        "magic_master_upload_bytes_total",
        metrics::Unit::Bytes,
        "Bytes of uploaded audio accepted and written to disk."
    );
    describe_gauge!(
        "magic_master_queue_jobs",
        "Jobs in each state, from the database."
    );
    describe_gauge!(
        "magic_master_queue_oldest_pending_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest queued job; 0 when none."
    );
    describe_counter!(
        "magic_master_jobs_finished_total",
        "Jobs that reached a final state, by outcome, style and format."
    );
    describe_histogram!(
        "magic_master_job_duration_seconds",
        metrics::Unit::Seconds,
        "Processing time of finished jobs (started to finished)."
    );
    describe_gauge!(
        "magic_master_workers_alive",
        "Worker processes with a recent heartbeat."
    );
    describe_gauge!(
        "magic_master_disk_free_bytes",
        metrics::Unit::Bytes,
        "Free bytes on the temp dir's file system."
    );
    describe_gauge!("magic_master_build_info", "Build information; always 1.");
    describe_gauge!(
        "magic_master_jobs_failed_last_hour",
        "Jobs failed in the last 60 minutes, from the database."
    );
}

/// Counts `bytes` of accepted upload.
pub fn record_upload_bytes(bytes: u64) {
    metrics::counter!("magic_master_upload_bytes_total").increment(bytes);
}

/// Per-route middleware: request count and time to the response head.
async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    metrics::counter!("magic_master_http_requests_total",
        "method" => method.clone(), "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("magic_master_http_request_duration_seconds",
        "method" => method, "route" => route)
    .record(elapsed);
    response
}

/// Adds the metrics middleware (to every route and the fallback), the request id and the
/// request tracing span. Call after all routes are added.
pub fn layers(router: Router<AppState>) -> Router<AppState> {
    prometheus();
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
    });
    router.layer(middleware::from_fn(track)).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(trace)
            .layer(PropagateRequestIdLayer::x_request_id()),
    )
}

/// Jobs already counted by this process: id → when it was counted.
struct Counted {
    ids: HashMap<String, Instant>,
}

/// How far back each refresh looks for finished jobs (covers rows committed a little after
/// their `finished_at` timestamp).
const LOOKBACK: Duration = Duration::from_secs(120);

static COUNTED: OnceLock<tokio::sync::Mutex<Counted>> = OnceLock::new();

/// Refreshes the database-backed gauges and records jobs finished since the last refresh
/// (each job once per process; jobs finished before this process started are not counted).
pub async fn refresh(state: &AppState) {
    prometheus();
    match shared::stats::queue_stats(&state.db).await {
        Ok(q) => {
            for (i, s) in shared::stats::STATES.iter().enumerate() {
                metrics::gauge!("magic_master_queue_jobs", "state" => *s).set(q.by_state[i] as f64);
            }
            metrics::gauge!("magic_master_queue_oldest_pending_seconds").set(q.oldest_pending_sec);
            metrics::gauge!("magic_master_jobs_failed_last_hour").set(q.failed_last_hour as f64);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: queue figures unavailable"),
    }
    let alive = shared::heartbeats::alive(&state.db, crate::routes::health::alive_window(state))
        .await
        .unwrap_or(0);
    metrics::gauge!("magic_master_workers_alive").set(alive as f64);
    if let Ok(free) = shared::stats::disk_free_bytes(&state.settings.temp_dir) {
        metrics::gauge!("magic_master_disk_free_bytes",
            "path" => state.settings.temp_dir.display().to_string())
        .set(free as f64);
    }
    record_finished_jobs(state).await;
}

async fn record_finished_jobs(state: &AppState) {
    let counted = COUNTED.get_or_init(|| {
        tokio::sync::Mutex::new(Counted {
            ids: HashMap::new(),
        })
    });
    let mut counted = counted.lock().await;
    let lookback = chrono::Utc::now()
        - chrono::Duration::from_std(LOOKBACK).unwrap_or(chrono::Duration::zero());
    let since = shared::time::format(lookback).max(state.started_at.clone());
    let finished = match shared::stats::finished_since(&state.db, since).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: finished jobs unavailable");
            return;
        }
    };
    let now = Instant::now();
    for job in finished {
        if counted.ids.contains_key(&job.id) {
            continue;
        }
        metrics::counter!("magic_master_jobs_finished_total",
            "outcome" => job.outcome, "style" => job.style.clone(), "format" => job.format.clone())
        .increment(1);
        if let Some(d) = job.duration_sec {
            metrics::histogram!("magic_master_job_duration_seconds",
                "style" => job.style, "format" => job.format)
            .record(d);
        }
        counted.ids.insert(job.id, now);
    }
    counted
        .ids
        .retain(|_, at| now.duration_since(*at) < LOOKBACK * 3);
}
