//! `GET /api/styles`, `GET /api/openapi.json` and the JSON 404 fallback.

use crate::error::ApiError;
use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;
use mastering::Style;
use serde_json::{Value, json};

/// The hand-written OpenAPI document of these routes.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// `GET /api/styles`.
pub async fn styles() -> Json<Value> {
    let styles: Vec<Value> = Style::ALL
        .iter()
        .map(|s| {
            json!({
                "id": s.name(),
                "name": s.name(),
                "target_lufs": s.target_lufs(),
                "true_peak_db": mastering::params::DEFAULT_TRUE_PEAK_DB,
                "description": s.description(),
            })
        })
        .collect();
    Json(json!({ "styles": styles }))
}

/// `GET /api/openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Fallback for unknown `/api/*` paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}
