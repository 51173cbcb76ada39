//! `GET /api/styles`, `GET /api/openapi.json` and the 404 fallback (JSON under `/api/`, the
//! HTML page elsewhere).

use crate::error::{ApiError, ErrorCode};
use axum::Json;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
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
                "true_peak_db": mastering::DEFAULT_TRUE_PEAK_DB,
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

/// Fallback for unknown paths: the JSON error under `/api/` (and `/metrics`), the HTML 404
/// page for browser routes.
pub async fn not_found(uri: Uri) -> Response {
    if crate::web::is_browser_path(uri.path()) {
        crate::web::not_found_page()
    } else {
        ApiError::new(ErrorCode::NotFound, "no such route".to_owned()).into_response()
    }
}
