//! `POST /api/master/cancel/{id}`: the owner cancels their job.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::routes::status::{JobStatusBody, StatusResponse, load_job};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shared::jobs::{self, CancelOutcome};

/// `POST /api/master/cancel/{id}` (the owner only; anyone else gets 404, as for the status).
/// A queued job is cancelled at once: 200 with its status document (`failed`, `error_code`
/// `cancelled`), its upload deleted, its master refunded. A running job is stopped by its
/// worker at the chain's next progress check: 202 with the document still `running`; the
/// status and the progress stream report the end. Cancelling a cancelled job again answers
/// 200; a job that ended otherwise answers 409 `already-finished`.
#[utoipa::path(
    post,
    path = "/api/master/cancel/{job_id}",
    tag = "mastering",
    summary = "Cancel a job (its owner)",
    description = "Only the job's owner (its user, or its guest token) may cancel it: anyone else gets 404. A queued job is cancelled at once (200: status `failed`, `error_code` `cancelled`; its upload is deleted and its master refunded). A running job is stopped by its worker at the chain's next progress check (202: still `running`; the status and the progress stream report the end, and the master counts). A job that has already finished gets 409 `already-finished`; a cancelled one 200 again.",
    params(("job_id" = String, Path, description = "The job's id (32 hex digits)")),
    responses(
        (status = 200, description = "Cancelled", body = StatusResponse),
        (status = 202, description = "Cancel requested: the worker stops the job", body = StatusResponse),
        (status = 404, description = "Not found (also another caller's job or payment)", body = ErrorBody),
        (status = 409, description = "Conflict", body = ErrorBody),
    ),
    security(("bearer" = []), ("guestCookie" = []), ("guestHeader" = [])),
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = load_job(&state, &caller, &id).await?;
    let outcome = jobs::cancel(&state.db, &job.id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no job with id '{id}'")))?;
    match outcome {
        CancelOutcome::Cancelled => {
            let (data_dir, job_id) = (state.settings.data_dir.clone(), job.id.clone());
            let removed = tokio::task::spawn_blocking(move || {
                shared::paths::remove_job_files(&data_dir, &job_id)
            })
            .await;
            if let Ok(Err(e)) | Err(e) = removed.map_err(std::io::Error::other) {
                tracing::warn!(job_id = %job.id, error = %e, "could not delete a cancelled job's files");
            }
            tracing::info!(job_id = %job.id, "queued job cancelled by its owner");
        }
        CancelOutcome::Requested => {}
        CancelOutcome::Finished(_) if job.is_cancelled() => {}
        CancelOutcome::Finished(status) => {
            return Err(ApiError::new(
                ErrorCode::AlreadyFinished,
                format!(
                    "job '{id}' has already finished ({}): there is nothing to cancel",
                    status.as_str()
                ),
            ));
        }
    }
    let job = load_job(&state, &caller, &id).await?;
    let code = if outcome == CancelOutcome::Requested {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let body = StatusResponse {
        status: JobStatusBody::from(&job),
        expires_at: job.expires_at(state.settings.jobs_done_ttl_seconds),
    };
    Ok((code, Json(body)).into_response())
}
