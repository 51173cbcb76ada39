//! The API's one error type: JSON `{"detail", "code"}` with a fitting status. Internal
//! errors answer an opaque 500 and are logged once, here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Every error a route can answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a field is invalid.
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// 401: no token, or an invalid or expired one.
    #[error("{detail}")]
    Unauthorized { code: &'static str, detail: String },
    /// 403: authenticated but not allowed (blocked, not an admin, tier too low).
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// 409 with a specific code (e.g. `email-taken`).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// 429: a rate limit or quota; answered with `Retry-After` and, for quotas, `reset_at`.
    #[error("{detail}")]
    TooManyRequests {
        code: &'static str,
        detail: String,
        /// Seconds until trying again makes sense.
        retry_after: u64,
        /// When the quota resets (RFC 3339).
        reset_at: Option<String>,
    },
    /// 404: no such job (or route).
    #[error("{0}")]
    NotFound(String),
    /// 409: the job is not ready for this.
    #[error("{0}")]
    NotReady(String),
    /// 410: the job's files were deleted after the retention period.
    #[error("{0}")]
    Expired(String),
    /// 408: the request body stalled or arrived too slowly.
    #[error("{detail}")]
    RequestTimeout { code: &'static str, detail: String },
    /// 413: the upload exceeds the size limit.
    #[error("{0}")]
    TooLarge(String),
    /// 413 `too-long`: the audio lasts longer than `MAX_DURATION_SECONDS`.
    #[error("{0}")]
    TooLong(String),
    /// 415: the file is not audio we can read.
    #[error("{0}")]
    UnsupportedMedia(String),
    /// 502: an upstream service (the payment provider) refused or answered nonsense.
    #[error("{detail}")]
    BadGateway { code: &'static str, detail: String },
    /// 503: a dependency (database, queue, the payment provider) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 503 with a stable code and `Retry-After`: the service is at a capacity limit (e.g.
    /// uploads in flight); the detail is shown.
    #[error("{detail}")]
    Busy {
        code: &'static str,
        detail: String,
        /// Seconds until trying again makes sense.
        retry_after: u64,
    },
    /// 500: a bug or an unexpected failure; the detail is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with a stable code.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    /// Wraps any unexpected error as an internal one.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }

    /// The HTTP status and the stable kebab-case code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, code),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::TooManyRequests { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::NotReady(_) => (StatusCode::CONFLICT, "not-ready"),
            ApiError::Expired(_) => (StatusCode::GONE, "expired"),
            ApiError::RequestTimeout { code, .. } => (StatusCode::REQUEST_TIMEOUT, code),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
            ApiError::TooLong(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-long"),
            ApiError::UnsupportedMedia(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media")
            }
            ApiError::BadGateway { code, .. } => (StatusCode::BAD_GATEWAY, code),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Busy { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl ApiError {
    /// A 401 with a stable code.
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::Unauthorized {
            code,
            detail: detail.into(),
        }
    }

    /// A 403 with a stable code.
    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::Forbidden {
            code,
            detail: detail.into(),
        }
    }
}

impl From<shared::db::DbError> for ApiError {
    fn from(e: shared::db::DbError) -> Self {
        ApiError::Internal(format!("database: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let detail = match &self {
            ApiError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                "internal server error".to_owned()
            }
            ApiError::Unavailable(msg) => {
                tracing::warn!(error = %msg, "service unavailable");
                "the service is temporarily unavailable, try again shortly".to_owned()
            }
            other => other.to_string(),
        };
        if let ApiError::TooManyRequests {
            retry_after,
            reset_at,
            ..
        } = &self
        {
            let mut body = json!({ "detail": detail, "code": code, "retry_after": retry_after });
            if let Some(reset_at) = reset_at {
                body["reset_at"] = json!(reset_at);
            }
            let mut response = (status, Json(body)).into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after),
            );
            return response;
        }
        let mut response =
            (status, Json(json!({ "detail": detail, "code": code }))).into_response();
        if let ApiError::Busy { retry_after, .. } = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after),
            );
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body is not read: the connection cannot be reused.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}
