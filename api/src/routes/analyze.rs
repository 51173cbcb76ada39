//! `POST /api/v2/analyze`: measure an uploaded file; nothing is kept. Open to anyone, so
//! it has a rate limit of its own (`MAGIC_MASTER_ANALYZE_RATE_LIMIT`) and the duration cap
//! of mastering (`MAGIC_MASTER_MAX_DURATION_SECONDS`).

use crate::AppState;
use crate::error::ApiError;
use crate::routes::master::{media_error, read_form, require_file};
use crate::security::{client_ip, rate_limited};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde_json::Value;
use std::net::SocketAddr;

/// The one field of the `/api/v2/analyze` form.
pub const ANALYZE_FIELDS: &[&str] = &["file"];

/// `POST /api/v2/analyze`.
pub async fn analyze(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    // Counted before the upload is received: a refused client costs no disk and no CPU.
    if let Some(limiter) = &state.security.analyze_limiter {
        let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
        let ip = client_ip(peer, &headers, &state.security.trusted_proxies);
        limiter.check(ip).map_err(rate_limited)?;
    }
    let mut form = read_form(&state, &headers, body, ANALYZE_FIELDS).await?;
    let (upload, _name) = require_file(&mut form)?;
    let path = upload.path().to_path_buf();
    let max_duration = state.settings.max_duration_seconds as f64;
    let analysis =
        tokio::task::spawn_blocking(move || mastering::analyze_file_within(&path, max_duration))
            .await
            .map_err(ApiError::internal)?
            .map_err(media_error)?;
    drop(upload);
    Ok(Json(
        serde_json::to_value(analysis).map_err(ApiError::internal)?,
    ))
}
