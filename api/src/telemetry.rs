//! Metrics and request tracing: the Prometheus recorder (installed once per process), the
//! HTTP middleware counting requests by matched route template, the request id (generated
//! or taken from `x-request-id`, kept in the request's tracing span and echoed in the
//! response), and the database-backed gauges and job metrics refreshed at scrape time.
//! Metric names and labels: `ops/METRICS.md`.

use crate::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use mastering::{OutputFormat, Style};
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
        metrics::counter!("magic_master_health_checks_total").increment(0);
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
        "Free bytes on the temp dir's file system (no path label: /metrics is public)."
    );
    describe_gauge!("magic_master_build_info", "Build information; always 1.");
    describe_counter!(
        "magic_master_health_checks_total",
        "Health computations (database probe, queue, workers, disk); cached reports not counted."
    );
    describe_gauge!(
        "magic_master_jobs_failed_last_hour",
        "Jobs failed in the last 60 minutes, from the database."
    );
}

/// Counts `bytes` of accepted upload.
pub fn record_upload_bytes(bytes: u64) {
    metrics::counter!("magic_master_upload_bytes_total").increment(bytes);
}

/// The `method` label: one of the standard methods, or `other`. Any token is a valid HTTP
/// method, so the raw string would let every client mint new time series forever.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The `style` label of the job metrics: a style name of `GET /api/styles`, or `other`.
pub fn style_label(style: &str) -> &'static str {
    Style::ALL
        .iter()
        .map(|s| s.name())
        .find(|name| *name == style)
        .unwrap_or("other")
}

/// The `format` label of the job metrics: `wav`, `flac`, `mp3`, or `other`.
pub fn format_label(format: &str) -> &'static str {
    OutputFormat::from_parts(format, None, None)
        .map(OutputFormat::name)
        .unwrap_or("other")
}

/// Per-route middleware: request count and time to the response head. Every label comes
/// from a fixed set: the method from [`method_label`], the route from the route table (the
/// matched template, or `unmatched`), the status from the code the API answered.
async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let start = Instant::now();
    let response = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    metrics::counter!("magic_master_http_requests_total",
        "method" => method, "route" => route.clone(), "status" => status)
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

/// A refresh within this long of the last one is skipped: `/metrics` is exempt from the rate
/// limits, so scrapes must not turn into database work at the caller's pace.
pub const REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(1);

static LAST_REFRESH: tokio::sync::Mutex<Option<Instant>> = tokio::sync::Mutex::const_new(None);

/// Refreshes the database-backed gauges and records jobs finished since the last refresh
/// (each job once per process; jobs finished before this process started are not counted).
/// At most one refresh runs at a time and at most one per [`REFRESH_MIN_INTERVAL`]:
/// concurrent callers wait for the running one and then use its figures.
pub async fn refresh(state: &AppState) {
    prometheus();
    let mut last = LAST_REFRESH.lock().await;
    if last.is_some_and(|at| at.elapsed() < REFRESH_MIN_INTERVAL) {
        return;
    }
    // Bounded: a stuck database must not hold every scrape.
    if tokio::time::timeout(Duration::from_secs(5), refresh_now(state))
        .await
        .is_err()
    {
        tracing::warn!("metrics: refresh took over 5 s; figures may be stale");
    }
    *last = Some(Instant::now());
}

async fn refresh_now(state: &AppState) {
    match shared::stats::queue_stats(&state.db).await {
        Ok(q) => {
            for (status, n) in q.by_status() {
                metrics::gauge!("magic_master_queue_jobs", "state" => status.as_str())
                    .set(n as f64);
            }
            metrics::gauge!("magic_master_queue_oldest_pending_seconds").set(q.oldest_pending_sec);
            metrics::gauge!("magic_master_jobs_failed_last_hour").set(q.failed_last_hour as f64);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: queue figures unavailable"),
    }
    let alive = state.workers_alive().await;
    metrics::gauge!("magic_master_workers_alive").set(alive as f64);
    if let Ok(free) = shared::stats::disk_free_bytes(&state.settings.temp_dir) {
        metrics::gauge!("magic_master_disk_free_bytes").set(free as f64);
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
    let since = shared::time::format(lookback.max(state.started_at));
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
        let (style, format) = (style_label(&job.style), format_label(&job.format));
        metrics::counter!("magic_master_jobs_finished_total",
            "outcome" => job.outcome.as_str(), "style" => style, "format" => format)
        .increment(1);
        if let Some(d) = job.duration_sec {
            metrics::histogram!("magic_master_job_duration_seconds",
                "style" => style, "format" => format)
            .record(d);
        }
        counted.ids.insert(job.id, now);
    }
    counted
        .ids
        .retain(|_, at| now.duration_since(*at) < LOOKBACK * 3);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_sets() {
        for m in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
        ] {
            assert_eq!(method_label(&Method::from_bytes(m.as_bytes()).unwrap()), m);
        }
        for odd in ["get", "PROPFIND", &"X".repeat(1024)] {
            assert_eq!(
                method_label(&Method::from_bytes(odd.as_bytes()).unwrap()),
                "other"
            );
        }
        for style in Style::ALL {
            assert_eq!(style_label(style.name()), style.name());
        }
        assert_eq!(style_label("Standard; DROP"), "other");
        for format in ["wav", "flac", "mp3"] {
            assert_eq!(format_label(format), format);
        }
        assert_eq!(format_label("ogg"), "other");
        assert_eq!(format_label(&"w".repeat(500)), "other");
    }
}
