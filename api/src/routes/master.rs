//! `POST /api/v2/master`: accept an upload, validate it, queue a job.

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::routes::accounts;
use crate::upload::{self, TempUpload, read_text_field, receive_file};
use apalis::prelude::TaskSink;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mastering::{MasterError, MasterParams, OutputFormat, Style};
use serde::Serialize;
use shared::jobs::{self, JobOwner, JobStatus, NewJob};
use shared::queue::{self, MasterTask};
use std::collections::HashMap;
use std::path::PathBuf;
use utoipa::ToSchema;

/// The fields of the `/api/v2/master` form; any other is refused (400 `unknown-field`).
pub const MASTER_FIELDS: &[&str] = &[
    "file",
    "style",
    "out_format",
    "bit_depth",
    "mp3_bitrate",
    "target_lufs",
    "true_peak_db",
];

/// The `/api/v2/master` form ([`MASTER_FIELDS`]), as the OpenAPI document describes it; the
/// route reads it field by field with [`read_form`].
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MasterForm {
    /// WAV, AIFF, FLAC, MP3, OGG/Vorbis, M4A/AAC/ALAC.
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    #[schema(schema_with = style_names)]
    style: Option<String>,
    /// `wav`, `flac` or `mp3`; FLAC, MP3 and 24-bit need a paid plan (403 `format-not-allowed`).
    #[schema(default = "wav")]
    out_format: Option<String>,
    /// 16 or 24 (WAV, FLAC); 16 for WAV and 24 for FLAC by default; 16-bit is TPDF-dithered.
    bit_depth: Option<u16>,
    /// 128, 192, 256 or 320 (MP3).
    #[schema(default = 320)]
    mp3_bitrate: Option<u32>,
    /// Integrated loudness target, LUFS; default: the style's.
    #[schema(minimum = -30, maximum = -5)]
    target_lufs: Option<f64>,
    /// True-peak ceiling, dBTP.
    #[schema(minimum = -9, maximum = 0, default = -1.0)]
    true_peak_db: Option<f64>,
}

/// The `style` field's schema: one of the names of [`Style::ALL`], `standard` by default.
fn style_names() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(Style::ALL.map(Style::name)))
        .default(Some(Style::Standard.name().into()))
        .description(Some("A style name (`GET /api/styles`)."))
        .build()
}

/// 202 of `POST /api/v2/master` (and 200 of an admin retry): the job is queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobQueued {
    pub job_id: String,
    /// Always `queued`.
    pub status: JobStatus,
    /// The guest token that owns the job (also set as the `mm_guest` cookie when new);
    /// absent for a logged-in user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_token: Option<String>,
}

impl JobQueued {
    /// A queued job, owned by `guest_token` when there is one.
    pub fn new(job_id: String, guest_token: Option<String>) -> JobQueued {
        JobQueued {
            job_id,
            status: JobStatus::Queued,
            guest_token,
        }
    }
}

/// The parsed multipart form: the file (on disk) and the text fields.
pub struct UploadForm {
    pub file: Option<(TempUpload, String)>,
    pub fields: HashMap<String, String>,
}

/// Reads a multipart form of the given `fields` (each at most once; so the number of parts
/// is bounded too) whose `file` field is streamed to the temp dir. The body's size and
/// timing limits are those of [`crate::limits::guard_body`] and [`upload::open_multipart`].
pub async fn read_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    fields: &[&str],
) -> Result<UploadForm, ApiError> {
    let limit = state.settings.max_upload_bytes();
    let mut multipart = upload::open_multipart(headers, body, fields, limit)?;
    let mut form = UploadForm {
        file: None,
        fields: HashMap::new(),
    };
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| upload::multipart_error(e, limit, fields))?
    {
        let name = field.name().unwrap_or("").to_owned();
        let seen = if name == "file" {
            form.file.is_some()
        } else {
            form.fields.contains_key(&name)
        };
        if seen {
            return Err(ApiError::new(
                ErrorCode::DuplicateField,
                format!("send the field '{name}' once"),
            ));
        }
        if name == "file" {
            let file_name = field.file_name().unwrap_or("").to_owned();
            let upload = receive_file(&mut field, &state.settings.temp_dir, limit, fields).await?;
            form.file = Some((upload, file_name));
        } else {
            let value = read_text_field(&mut field, limit, fields).await?;
            form.fields.insert(name, value);
        }
    }
    Ok(form)
}

/// Takes the uploaded file out of a form: 400 when missing or empty.
pub fn require_file(form: &mut UploadForm) -> Result<(TempUpload, String), ApiError> {
    let (upload, name) = form.file.take().ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingFile,
            "the 'file' field with the audio is missing",
        )
    })?;
    if upload.len == 0 {
        return Err(ApiError::new(
            ErrorCode::EmptyFile,
            "the uploaded file is empty",
        ));
    }
    Ok((upload, name))
}

fn number<T: std::str::FromStr>(
    fields: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    match fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<T>().map(Some).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                format!("{name} must be a number, got '{v}'"),
            )
        }),
    }
}

/// Validates the form's parameters into [`MasterParams`].
pub fn parse_params(fields: &HashMap<String, String>) -> Result<MasterParams, ApiError> {
    let invalid = |e: mastering::ParamError| ApiError::new(ErrorCode::InvalidParameter, e.0);
    let style = match fields
        .get("style")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        Some(s) => Style::parse(s).map_err(invalid)?,
        None => Style::Standard,
    };
    let format_name = fields
        .get("out_format")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .unwrap_or("wav");
    let format = OutputFormat::from_parts(
        format_name,
        number::<u16>(fields, "bit_depth")?,
        number::<u32>(fields, "mp3_bitrate")?,
    )
    .map_err(invalid)?;
    MasterParams::new(
        style,
        number::<f64>(fields, "target_lufs")?,
        number::<f64>(fields, "true_peak_db")?,
        format,
    )
    .map_err(invalid)
}

/// Maps a probe/analysis failure of an uploaded file to a client error.
pub fn media_error(e: MasterError) -> ApiError {
    match e {
        MasterError::Unsupported(_) => ApiError::new(
            ErrorCode::UnsupportedMedia,
            format!(
                "the file is not audio we can read ({e}); send WAV, AIFF, FLAC, MP3, OGG/Vorbis or M4A"
            ),
        ),
        MasterError::Corrupt(_) => ApiError::new(ErrorCode::CorruptAudio, e.to_string()),
        MasterError::TooShort(_) => ApiError::new(ErrorCode::TooShort, e.to_string()),
        MasterError::TooLong(_) => ApiError::new(ErrorCode::TooLong, e.to_string()),
        MasterError::Silent(_) => ApiError::new(ErrorCode::SilentAudio, e.to_string()),
        MasterError::InvalidParameter(_) => {
            ApiError::new(ErrorCode::InvalidParameter, e.to_string())
        }
        MasterError::Encode(_) | MasterError::Io(_) | MasterError::Cancelled => {
            ApiError::internal(e)
        }
    }
}

/// Proves the upload decodes, lasts at least the chain's minimum and declares no more than
/// `max_duration_sec` (off the async executor).
pub async fn probe(path: PathBuf, max_duration_sec: f64) -> Result<mastering::AudioInfo, ApiError> {
    tokio::task::spawn_blocking(move || mastering::probe_masterable(&path, max_duration_sec))
        .await
        .map_err(ApiError::internal)?
        .map_err(media_error)
}

/// `POST /api/v2/master`. The job belongs to the logged-in user, or to the guest token
/// (cookie `mm_guest` or header `X-Guest-Token`; issued here when missing). One master of
/// the caller's quota is reserved with the job row; a job that fails through the service's
/// fault gets it back, one whose input cannot be mastered does not.
#[utoipa::path(
    post,
    path = "/api/v2/master",
    tag = "mastering",
    summary = "Queue a mastering job",
    description = "The upload is streamed to disk (limit MAGIC_MASTER_MAX_UPLOAD_MB) and probed before the job is queued: audio under 0.5 s is 400 too-short, a declared length over MAGIC_MASTER_MAX_DURATION_SECONDS (default 7200) is 413 too-long (a stream without a declared length that runs longer fails while mastering, with the same reason). Jobs belong to the logged-in user (Bearer) or to the guest session: the first upload without a token sets the mm_guest cookie and returns guest_token; send it back as the cookie or X-Guest-Token. One master of the caller's daily quota (or a bought token) is reserved with the job and refunded if the job fails through the service's fault (disk, encoder, time limit); a job failed by its input (undecodable, too long, silent) counts. Guests and free users get 16-bit WAV only (403 format-not-allowed); a used-up quota is 429 quota-exhausted with reset_at and Retry-After. The form may carry only the fields listed here, each once (400 unknown-field, duplicate-field; a text field over 256 bytes: 400 invalid-field; a part header over 8 KiB or a malformed body: 400 invalid-multipart). Uploads in flight are capped per client, an IPv4 address or an IPv6 /64 (MAGIC_MASTER_UPLOADS_PER_IP, 429 too-many-uploads) and in all (MAGIC_MASTER_UPLOADS_MAX, 503 uploads-busy), both with Retry-After; a partial upload is deleted at once when it fails or its client leaves.",
    request_body(content = MasterForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Queued; `guest_token` when the caller is a guest", body = JobQueued),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 413, description = "Too large (`too-large`, `too-long`)", body = ErrorBody),
        (status = 415, description = "Not audio we can read (`unsupported-media`)", body = ErrorBody),
        (status = 503, description = "Unavailable, with `Retry-After` where retrying helps", body = ErrorBody),
        (status = 401, description = "Not authenticated (`not-authenticated`, `invalid-token`)", body = ErrorBody),
        (status = 403, description = "The format needs a paid plan (`format-not-allowed`), or the account is blocked (`user-blocked`)", body = ErrorBody),
        (status = 429, description = "Rate limited or over a quota, with `Retry-After`", body = ErrorBody),
        (status = 408, description = "The body was too slow (`body-timeout`, `body-too-slow`)", body = ErrorBody),
    ),
    security((), ("bearer" = []), ("guestCookie" = []), ("guestHeader" = [])),
)]
pub async fn create_job(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Refuse early, before receiving the upload, when nothing is left today.
    let allowance = accounts::allowance(&state, &caller);
    let now = chrono::Utc::now();
    let used = allowance.used_today(&state.db, now).await?;
    if let Some(exhausted) = allowance.exhausted(used, now) {
        return Err(accounts::quota_exhausted(&exhausted));
    }
    let mut form = read_form(&state, &headers, body, MASTER_FIELDS).await?;
    let params = parse_params(&form.fields)?;
    accounts::check_format(&caller, &params.format)?;
    let (upload, file_name) = require_file(&mut form)?;
    let max_duration = state.settings.max_duration_seconds as f64;
    probe(upload.path().to_path_buf(), max_duration).await?;

    let (guest_token, new_guest) = match (&caller.user, &caller.guest_token) {
        (Some(_), _) => (None, false),
        (None, Some(token)) => (Some(token.clone()), false),
        (None, None) => (Some(crate::auth::new_guest_token()), true),
    };
    let owner = JobOwner {
        user_id: caller.user.as_ref().map(|u| u.id),
        guest_key: guest_token.as_deref().map(crate::auth::guest_key),
        client_ip: Some(caller.ip.to_string()),
    };

    let id = jobs::new_job_id();
    let ext = shared::paths::safe_extension(&file_name).unwrap_or_else(|| "bin".to_owned());
    let input_path = shared::paths::upload_path(&state.settings.data_dir, &id, &ext);
    let upload_dir = shared::paths::upload_dir(&state.settings.data_dir, &id);
    let remove_upload = || {
        if let Err(e) = shared::paths::remove_dir_if_exists(&upload_dir) {
            tracing::warn!(error = %e, "could not remove upload dir");
        }
    };
    if let Err(e) = upload.persist(&input_path).await {
        remove_upload();
        return Err(ApiError::unavailable(
            anyhow::Error::from(e).context("storing upload"),
        ));
    }
    let new_job = NewJob {
        id: id.clone(),
        params,
        original_name: file_name,
        input_path,
    };
    let quota = Some((allowance.subject, allowance.daily_limit));
    match jobs::create_owned(&state.db, new_job, owner, quota).await {
        Ok(Ok(_source)) => {}
        Ok(Err(exhausted)) => {
            remove_upload();
            return Err(accounts::quota_exhausted(&exhausted));
        }
        Err(e) => {
            remove_upload();
            return Err(ApiError::unavailable(
                anyhow::Error::from(e).context("creating job row"),
            ));
        }
    }
    let mut storage = queue::storage(&state.queue, state.heartbeat());
    if let Err(e) = storage.push(MasterTask { job_id: id.clone() }).await {
        // Failing the row refunds the reservation; then the row goes.
        let _ =
            jobs::finish_failed(&state.db, &id, "could not be queued", jobs::Fault::Service).await;
        let _ = jobs::delete(&state.db, &id).await;
        remove_upload();
        return Err(ApiError::unavailable(
            anyhow::Error::from(e).context("queueing job"),
        ));
    }
    tracing::info!(job_id = %id, "job queued");
    let body = JobQueued::new(id, guest_token.clone());
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if new_guest && let Some(token) = &guest_token {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, crate::auth::guest_cookie(token));
    }
    Ok(response)
}
