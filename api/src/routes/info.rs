//! `GET /api/styles`, `GET /api/openapi.json` and the 404 fallback (JSON under `/api/`, the
//! HTML page elsewhere).

use crate::error::{ApiError, ErrorCode};
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mastering::Style;
use serde::Serialize;
use utoipa::ToSchema;

/// One mastering style.
#[derive(Debug, Serialize, ToSchema)]
pub struct StyleView {
    /// The name to send as the upload's `style`.
    #[schema(example = "edm")]
    pub id: &'static str,
    pub name: &'static str,
    /// Integrated loudness target, LUFS.
    pub target_lufs: f64,
    /// True-peak ceiling, dBTP.
    pub true_peak_db: f64,
    pub description: &'static str,
}

/// `GET /api/styles`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StylesResponse {
    pub styles: Vec<StyleView>,
}

/// `GET /api/styles`.
#[utoipa::path(
    get,
    path = "/api/styles",
    tag = "mastering",
    summary = "Mastering styles",
    responses(
        (status = 200, description = "Styles", body = StylesResponse),
    ),
)]
pub async fn styles() -> Json<StylesResponse> {
    let styles = Style::ALL
        .iter()
        .map(|s| StyleView {
            id: s.name(),
            name: s.name(),
            target_lufs: s.target_lufs(),
            true_peak_db: mastering::DEFAULT_TRUE_PEAK_DB,
            description: s.description(),
        })
        .collect();
    Json(StylesResponse { styles })
}

/// `GET /api/openapi.json`: the document generated from the routes (built once, with the
/// router: [`crate::openapi`]).
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "service",
    summary = "This document",
    responses(
        (status = 200, description = "OpenAPI 3 document", body = Object),
    ),
)]
pub async fn openapi(
    Extension(document): Extension<crate::openapi::Document>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.json(),
    )
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
