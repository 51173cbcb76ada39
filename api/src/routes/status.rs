//! `GET /api/master/status/{id}` and the SSE stream `GET /api/master/progress/{id}`.

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::limits::{ClientGate, GateSlot};
use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::{Value, json};
use shared::jobs::{self, JobRow};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

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

/// The status document of docs/API.md.
pub fn status_json(job: &JobRow) -> Value {
    let lufs = |v: &Option<Value>| v.as_ref().and_then(|v| v.get("lufs")).cloned();
    json!({
        "job_id": job.id,
        "status": job.status.as_str(),
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "style": job.params.style.name(),
        "target_lufs": job.params.target_lufs,
        "true_peak_db": job.params.true_peak_db,
        "out_format": job.params.format.name(),
        "before_lufs": lufs(&job.before),
        "after_lufs": lufs(&job.after),
        "before": job.before,
        "after": job.after,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "attempts": job.attempts,
    })
}

/// Loads a job of `caller` or answers 404 — also for ids that cannot be job ids and for
/// other people's jobs (their existence is not revealed).
pub async fn load_job(state: &AppState, caller: &Caller, id: &str) -> Result<JobRow, ApiError> {
    let not_found = || ApiError::NotFound(format!("no job with id '{id}'"));
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
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = load_job(&state, &caller, &id).await?;
    let mut body = status_json(&job);
    body["expires_at"] = serde_json::json!(crate::routes::accounts::expires_at(
        &job,
        state.settings.jobs_done_ttl_seconds
    ));
    Ok(Json(body))
}

/// `GET /api/master/progress/{id}`: one `data:` event per change, closed after the job
/// reaches a final state or after [`STREAM_MAX_LIFETIME`]. Each open stream holds a place of
/// `streams` (per client and in all) until it ends or the client goes away.
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
                    let text = status_json(&job).to_string();
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
