//! `GET /api/master/status/{id}` and the SSE stream `GET /api/master/progress/{id}`.

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::{Value, json};
use shared::jobs::{self, JobRow};
use std::convert::Infallible;
use std::time::Duration;

/// How often the SSE stream re-reads the job row.
const SSE_POLL: Duration = Duration::from_millis(250);

/// The status document of API.md.
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
/// reaches a final state.
pub async fn progress(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    load_job(&state, &caller, &id).await?;
    struct Cursor {
        state: AppState,
        id: String,
        last: Option<String>,
        finished: bool,
    }
    let cursor = Cursor {
        state,
        id,
        last: None,
        finished: false,
    };
    let stream = futures::stream::unfold(cursor, |mut c| async move {
        if c.finished {
            return None;
        }
        loop {
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
