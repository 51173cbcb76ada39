//! `POST /api/v2/analyze`: measure an uploaded file; nothing is kept.

use crate::AppState;
use crate::error::ApiError;
use crate::routes::master::{media_error, read_form, require_file};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;

/// The one field of the `/api/v2/analyze` form.
pub const ANALYZE_FIELDS: &[&str] = &["file"];

/// `POST /api/v2/analyze`.
pub async fn analyze(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let mut form = read_form(&state, &headers, body, ANALYZE_FIELDS).await?;
    let (upload, _name) = require_file(&mut form)?;
    let path = upload.path().to_path_buf();
    let analysis = tokio::task::spawn_blocking(move || mastering::analyze_file(&path))
        .await
        .map_err(ApiError::internal)?
        .map_err(media_error)?;
    drop(upload);
    Ok(Json(
        serde_json::to_value(analysis).map_err(ApiError::internal)?,
    ))
}
