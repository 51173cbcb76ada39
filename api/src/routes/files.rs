//! Downloads: `GET /api/master/result/{id}` and `GET /api/master/preview/{id}?src=…`.
//! Files are streamed from disk, never read whole into memory.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::routes::status::load_job;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared::jobs::{JobRow, JobStatus};
use std::path::PathBuf;

/// Content type of an audio file by extension.
pub fn content_type_for(ext: &str) -> &'static str {
    match ext.to_ascii_lowercase().as_str() {
        "wav" | "wave" => "audio/wav",
        "flac" => "audio/flac",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "m4a" | "mp4" | "aac" => "audio/mp4",
        "aif" | "aiff" => "audio/aiff",
        "caf" => "audio/x-caf",
        "mkv" | "mka" => "audio/x-matroska",
        _ => "application/octet-stream",
    }
}

/// Characters RFC 8187 lets through unencoded in an extended parameter value (`attr-char`).
const NOT_ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// A `Content-Disposition` value (RFC 6266) for `name` of any script: `filename*` carries it
/// as UTF-8 (RFC 8187), `filename` an ASCII stand-in for clients that ignore `filename*`
/// (other characters become `_`; `audio` when no letter or digit is left).
pub fn content_disposition(kind: &str, name: &str) -> String {
    let (base, ext) = match name.rsplit_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' ' | '(' | ')');
    let mut ascii = String::new();
    for c in base.chars() {
        let c = if safe(c) { c } else { '_' };
        if !(c == '_' && ascii.ends_with('_')) {
            ascii.push(c);
        }
    }
    let mut ascii = ascii.trim_matches(['_', ' ']).to_owned();
    if !ascii.chars().any(|c| c.is_ascii_alphanumeric()) {
        ascii = "audio".to_owned();
    } else if !base.starts_with(safe) {
        ascii = format!("audio_{ascii}");
    }
    let ext: String = ext.chars().filter(char::is_ascii_alphanumeric).collect();
    if !ext.is_empty() {
        ascii = format!("{ascii}.{ext}");
    }
    let encoded = percent_encoding::utf8_percent_encode(name, NOT_ATTR_CHAR);
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn stream_file(
    path: PathBuf,
    content_type: &'static str,
    disposition: String,
) -> Result<Response, ApiError> {
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::new(
                ErrorCode::Expired,
                "the file is no longer available".to_owned(),
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(ApiError::internal)?,
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// The mastered file of a done job: 409 before, 410 after expiry.
fn mastered_file(job: &JobRow) -> Result<PathBuf, ApiError> {
    match job.status {
        JobStatus::Done => job
            .result_path
            .clone()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("done job without result path"))),
        JobStatus::Expired => Err(ApiError::new(
            ErrorCode::Expired,
            format!(
                "job '{}' has expired: its files were deleted after the retention period",
                job.id
            ),
        )),
        JobStatus::Failed if job.is_cancelled() => Err(ApiError::new(
            ErrorCode::Cancelled,
            format!(
                "job '{}' was cancelled by its owner and has no result",
                job.id
            ),
        )),
        JobStatus::Failed => Err(ApiError::new(
            ErrorCode::NotReady,
            format!(
                "job '{}' failed and has no result: {}",
                job.id,
                job.error.as_deref().unwrap_or("unknown error")
            ),
        )),
        JobStatus::Queued | JobStatus::Running => Err(ApiError::new(
            ErrorCode::NotReady,
            format!("job '{}' is not done yet ({})", job.id, job.status.as_str()),
        )),
    }
}

/// `GET /api/master/result/{id}`.
#[utoipa::path(
    get,
    path = "/api/master/result/{job_id}",
    tag = "mastering",
    summary = "Download the mastered file",
    description = "Content-Disposition (RFC 6266): attachment; filename=\"<ASCII stand-in>_mastered.<ext>\"; filename*=UTF-8''<original base, percent-encoded>_mastered.<ext>. Files are stored under fixed names; the client's name appears only here. Downloadable repeatedly until the job expires. Only the job's owner (its user, or its guest token) sees it: anyone else gets 404.",
    params(("job_id" = String, Path, description = "The job's id (32 hex digits)")),
    responses(
        (status = 200, description = "The file", content(([u8] = "audio/wav"), ([u8] = "audio/flac"), ([u8] = "audio/mpeg"))),
        (status = 404, description = "Not found (also another caller's job or payment)", body = ErrorBody),
        (status = 409, description = "Conflict", body = ErrorBody),
        (status = 410, description = "Expired: the files are deleted", body = ErrorBody),
    ),
    security(("bearer" = []), ("guestCookie" = []), ("guestHeader" = [])),
)]
pub async fn result(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = load_job(&state, &caller, &id).await?;
    let path = mastered_file(&job)?;
    let name = magic_master_worker::execute::result_file_name(&job);
    stream_file(
        path,
        job.params.format.content_type(),
        content_disposition("attachment", &name),
    )
    .await
}

/// Query of the preview route.
#[derive(Debug, Deserialize)]
pub struct PreviewQuery {
    /// `original` or `mastered` (default `mastered`).
    pub src: Option<String>,
}

/// `GET /api/master/preview/{id}?src=original|mastered`: the audio, inline, for an A/B
/// player.
#[utoipa::path(
    get,
    path = "/api/master/preview/{job_id}",
    tag = "mastering",
    summary = "Audio for an A/B player (inline)",
    description = "Only the job's owner (its user, or its guest token) sees it: anyone else gets 404.",
    params(("job_id" = String, Path, description = "The job's id (32 hex digits)"), ("src" = Option<String>, Query, description = "`original` or `mastered` (default)")),
    responses(
        (status = 200, description = "The audio", body = [u8], content_type = "application/octet-stream"),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 404, description = "Not found (also another caller's job or payment)", body = ErrorBody),
        (status = 409, description = "Conflict", body = ErrorBody),
        (status = 410, description = "Expired: the files are deleted", body = ErrorBody),
    ),
    security(("bearer" = []), ("guestCookie" = []), ("guestHeader" = [])),
)]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<PreviewQuery>,
) -> Result<Response, ApiError> {
    let job = load_job(&state, &caller, &id).await?;
    match query.src.as_deref().unwrap_or("mastered") {
        "mastered" => {
            let path = mastered_file(&job)?;
            let name = magic_master_worker::execute::result_file_name(&job);
            stream_file(
                path,
                job.params.format.content_type(),
                content_disposition("inline", &name),
            )
            .await
        }
        "original" => {
            if job.status == JobStatus::Expired {
                return Err(ApiError::new(
                    ErrorCode::Expired,
                    format!("job '{}' has expired", job.id),
                ));
            }
            let ext = job
                .input_path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("bin")
                .to_owned();
            let base = shared::paths::safe_base_name(&job.original_name);
            stream_file(
                job.input_path.clone(),
                content_type_for(&ext),
                content_disposition("inline", &format!("{base}.{ext}")),
            )
            .await
        }
        other => Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("src must be 'original' or 'mastered', got '{other}'"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn any_name_becomes_an_rfc_6266_disposition() {
        let name = format!("{}_mastered.wav", "音".repeat(90));
        let value = content_disposition("attachment", &name);
        let encoded = "%E9%9F%B3".repeat(90);
        assert_eq!(
            value,
            format!(
                "attachment; filename=\"audio_mastered.wav\"; \
                 filename*=UTF-8''{encoded}_mastered.wav"
            )
        );
        assert_eq!(
            content_disposition("inline", "My Song (v2)_mastered.flac"),
            "inline; filename=\"My Song (v2)_mastered.flac\"; \
             filename*=UTF-8''My%20Song%20%28v2%29_mastered.flac"
        );
        assert_eq!(
            content_disposition("inline", "a\"b;c.wav"),
            "inline; filename=\"a_b_c.wav\"; filename*=UTF-8''a%22b%3Bc.wav"
        );
        assert_eq!(
            content_disposition("inline", "音.mp3"),
            "inline; filename=\"audio.mp3\"; filename*=UTF-8''%E9%9F%B3.mp3"
        );
    }
}
