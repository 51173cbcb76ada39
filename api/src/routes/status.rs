//! `GET /api/master/status/{id}` and the SSE stream `GET /api/master/progress/{id}`.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::limits::{ClientGate, GateSlot};
use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::Serialize;
use shared::jobs::{self, JobRow, JobStatus};
use shared::measurements::{InputMeasurements, LoudnessMeasurements};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// How often the SSE stream re-reads the job row.
const SSE_POLL: Duration = Duration::from_millis(250);
/// Progress streams one client (an IPv4 address or an IPv6 /64) may hold open at once; one
/// more gets 429 `too-many-streams`. A browser tab needs one.
pub const STREAMS_PER_CLIENT: usize = 8;
/// Progress streams open at once in this process; one more gets 503 `streams-busy`. Each
/// reads one job row every [`SSE_POLL`], so this bounds that work.
pub const STREAMS_MAX: usize = 512;
/// A progress stream is closed after this long even if its job is not final (a browser's
/// `EventSource` reconnects by itself; a client that forgot it does not hold a place for ever).
pub const STREAM_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The status document of docs/API.md, as the progress stream sends it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = JobStatusDocument)]
pub struct JobStatusBody<'a> {
    pub job_id: &'a str,
    pub status: JobStatus,
    pub progress: u8,
    pub message: &'a str,
    pub error: Option<&'a str>,
    /// `cancelled` for a job its owner cancelled (status `failed`); `null` otherwise.
    pub error_code: Option<ErrorCode>,
    pub style: &'static str,
    pub target_lufs: f64,
    pub true_peak_db: f64,
    pub out_format: &'static str,
    /// `before.lufs`, kept for older clients.
    pub before_lufs: Option<f64>,
    /// `after.lufs`, kept for older clients.
    pub after_lufs: Option<f64>,
    pub before: Option<&'a InputMeasurements>,
    pub after: Option<&'a LoudnessMeasurements>,
    #[serde(serialize_with = "shared::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "shared::time::serialize_option")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "shared::time::serialize_option")]
    pub finished_at: Option<DateTime<Utc>>,
    pub attempts: u32,
}

impl<'a> From<&'a JobRow> for JobStatusBody<'a> {
    fn from(job: &'a JobRow) -> JobStatusBody<'a> {
        let measured = job.measurements.as_ref();
        JobStatusBody {
            job_id: &job.id,
            status: job.status,
            progress: job.progress,
            message: &job.message,
            error: job.error.as_deref(),
            error_code: job.is_cancelled().then_some(ErrorCode::Cancelled),
            style: job.params.style.name(),
            target_lufs: job.params.target_lufs,
            true_peak_db: job.params.true_peak_db,
            out_format: job.params.format.name(),
            before_lufs: measured.map(|m| m.before.loudness.lufs),
            after_lufs: measured.map(|m| m.after.lufs),
            before: measured.map(|m| &m.before),
            after: measured.map(|m| &m.after),
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            attempts: job.attempts,
        }
    }
}

/// `GET /api/master/status/{id}`: the status document and when the result will be deleted.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse<'a> {
    #[serde(flatten)]
    pub status: JobStatusBody<'a>,
    /// `null` until the job is finished, and once it has expired.
    pub expires_at: Option<String>,
}

/// Loads a job of `caller` or answers 404 — also for ids that cannot be job ids and for
/// other people's jobs (their existence is not revealed).
pub async fn load_job(state: &AppState, caller: &Caller, id: &str) -> Result<JobRow, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("no job with id '{id}'"));
    if !jobs::is_valid_job_id(id) {
        return Err(not_found());
    }
    let job = jobs::get(&state.db, id).await?.ok_or_else(not_found)?;
    if !caller.owns(&job) {
        return Err(not_found());
    }
    Ok(job)
}

/// `GET /api/master/status/{id}`.
#[utoipa::path(
    get,
    path = "/api/master/status/{job_id}",
    tag = "mastering",
    summary = "Job status",
    description = "Only the job's owner (its user, or its guest token) sees it: anyone else gets 404.",
    params(("job_id" = String, Path, description = "The job's id (32 hex digits)")),
    responses(
        (status = 200, description = "Status", body = StatusResponse),
        (status = 404, description = "Not found (also another caller's job or payment)", body = ErrorBody),
    ),
    security(("bearer" = []), ("guestCookie" = []), ("guestHeader" = [])),
)]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = load_job(&state, &caller, &id).await?;
    let body = StatusResponse {
        status: JobStatusBody::from(&job),
        expires_at: job.expires_at(state.settings.jobs_done_ttl_seconds),
    };
    Ok(Json(body).into_response())
}

/// `GET /api/master/progress/{id}`: one `data:` event per change, closed after the job
/// reaches a final state or after [`STREAM_MAX_LIFETIME`]. Each open stream holds a place of
/// `streams` (per client and in all) until it ends or the client goes away.
#[utoipa::path(
    get,
    path = "/api/master/progress/{job_id}",
    tag = "mastering",
    summary = "Job progress as Server-Sent Events",
    description = "One `data: <JobStatus JSON>` event per change; the stream closes after done, failed or expired. Only the job's owner (its user, or its guest token) sees it: anyone else gets 404. Each open stream holds a place: at most 8 per client (an IPv4 address or an IPv6 /64; one more gets 429 too-many-streams with Retry-After) and 512 in all (503 streams-busy); a stream is closed after 30 minutes even if the job is not final (EventSource reconnects by itself).",
    params(("job_id" = String, Path, description = "The job's id (32 hex digits)")),
    responses(
        (status = 200, description = "Event stream: one `data:` event with the status document (without `expires_at`) per change", content_type = "text/event-stream", body = String),
        (status = 404, description = "Not found (also another caller's job or payment)", body = ErrorBody),
        (status = 429, description = "Rate limited or over a quota, with `Retry-After`", body = ErrorBody),
        (status = 503, description = "Unavailable, with `Retry-After` where retrying helps", body = ErrorBody),
    ),
    security(("bearer" = []), ("guestCookie" = []), ("guestHeader" = [])),
)]
pub async fn progress(
    State(state): State<AppState>,
    Extension(streams): Extension<Arc<ClientGate>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    load_job(&state, &caller, &id).await?;
    let slot = streams.acquire(caller.ip)?;
    struct Cursor {
        state: AppState,
        id: String,
        last: Option<String>,
        finished: bool,
        ends_at: tokio::time::Instant,
        _slot: GateSlot,
    }
    let cursor = Cursor {
        state,
        id,
        last: None,
        finished: false,
        ends_at: tokio::time::Instant::now() + STREAM_MAX_LIFETIME,
        _slot: slot,
    };
    let stream = futures::stream::unfold(cursor, |mut c| async move {
        if c.finished {
            return None;
        }
        loop {
            if tokio::time::Instant::now() >= c.ends_at {
                return None;
            }
            match jobs::get(&c.state.db, &c.id).await {
                Ok(Some(job)) => {
                    let text = match serde_json::to_string(&JobStatusBody::from(&job)) {
                        Ok(text) => text,
                        Err(e) => {
                            tracing::error!(error = %e, "progress stream: status not serialisable");
                            return None;
                        }
                    };
                    if c.last.as_deref() != Some(text.as_str()) {
                        c.finished = job.status.is_final();
                        c.last = Some(text.clone());
                        return Some((Ok(Event::default().data(text)), c));
                    }
                }
                Ok(None) => return None,
                Err(e) => tracing::warn!(error = %e, "progress stream read failed"),
            }
            tokio::time::sleep(SSE_POLL).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mastering::{MasterParams, OutputFormat, Style};
    use serde_json::json;
    use shared::measurements::JobMeasurements;

    fn at(text: &str) -> DateTime<Utc> {
        shared::time::parse(text).unwrap()
    }

    fn done_job() -> JobRow {
        JobRow {
            id: "0123456789abcdef0123456789abcdef".to_owned(),
            status: JobStatus::Done,
            progress: 100,
            message: "Done".to_owned(),
            error: None,
            params: MasterParams::new(
                Style::Standard,
                None,
                None,
                OutputFormat::Wav { bit_depth: 16 },
            )
            .unwrap(),
            original_name: "mix.wav".to_owned(),
            input_path: "/data/uploads/x/original.wav".into(),
            result_path: Some("/data/results/x/result.wav".into()),
            measurements: Some(JobMeasurements {
                before: InputMeasurements {
                    loudness: LoudnessMeasurements {
                        lufs: -20.5,
                        true_peak_db: -4.0,
                        sample_peak_db: -4.5,
                        lra: 7.5,
                    },
                    duration_sec: 6.0,
                    sample_rate: 44_100,
                    channels: 2,
                },
                after: LoudnessMeasurements {
                    lufs: -14.0,
                    true_peak_db: -1.0,
                    sample_peak_db: -1.5,
                    lra: 6.5,
                },
            }),
            created_at: at("2026-12-07T20:00:00Z"),
            started_at: Some(at("2026-12-07T20:00:01Z")),
            finished_at: Some(at("2026-12-07T20:00:03.5Z")),
            attempts: 1,
            completions: 1,
            worker: Some("w1".to_owned()),
            user_id: None,
            guest_key: None,
            cancel_requested_at: None,
        }
    }

    /// The document clients read (docs/API.md, `api/openapi.json`'s `JobStatus`), field by field.
    #[test]
    fn a_done_jobs_status_document_keeps_its_format() {
        let job = done_job();
        let body = serde_json::to_value(JobStatusBody::from(&job)).unwrap();
        assert_eq!(
            body,
            json!({
                "job_id": job.id, "status": "done", "progress": 100, "message": "Done",
                "error": null, "error_code": null, "style": "standard", "target_lufs": job.params.target_lufs,
                "true_peak_db": -1.0, "out_format": "wav",
                "before_lufs": -20.5, "after_lufs": -14.0,
                "before": {
                    "lufs": -20.5, "true_peak_db": -4.0, "sample_peak_db": -4.5, "lra": 7.5,
                    "duration_sec": 6.0, "sample_rate": 44_100, "channels": 2,
                },
                "after": { "lufs": -14.0, "true_peak_db": -1.0, "sample_peak_db": -1.5, "lra": 6.5 },
                "created_at": "2026-12-07T20:00:00.000Z", "started_at": "2026-12-07T20:00:01.000Z",
                "finished_at": "2026-12-07T20:00:03.500Z", "attempts": 1,
            })
        );
    }

    #[test]
    fn a_cancelled_job_reads_failed_with_the_code_cancelled() {
        let mut job = done_job();
        job.status = JobStatus::Failed;
        job.measurements = None;
        job.error = Some(shared::jobs::CANCELLED_ERROR.to_owned());
        job.cancel_requested_at = Some(at("2026-12-07T20:00:02Z"));
        let body = serde_json::to_value(JobStatusBody::from(&job)).unwrap();
        assert_eq!(
            (&body["status"], &body["error_code"], &body["error"]),
            (
                &json!("failed"),
                &json!("cancelled"),
                &json!(shared::jobs::CANCELLED_ERROR)
            )
        );
        // Asked while running, but the job finished first: it is done, not cancelled.
        job.status = JobStatus::Done;
        let body = serde_json::to_value(JobStatusBody::from(&job)).unwrap();
        assert!(body["error_code"].is_null(), "{body}");
    }

    #[test]
    fn a_job_not_done_has_null_measurements_and_the_route_adds_expires_at() {
        let mut job = done_job();
        job.status = JobStatus::Running;
        job.measurements = None;
        job.finished_at = None;
        let body = serde_json::to_value(StatusResponse {
            status: JobStatusBody::from(&job),
            expires_at: None,
        })
        .unwrap();
        assert_eq!(body["status"], "running");
        for key in ["before", "after", "before_lufs", "after_lufs", "expires_at"] {
            assert!(body[key].is_null(), "{key}: {body}");
        }
    }
}
