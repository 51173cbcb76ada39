//! The API's one error type: JSON `{"detail", "code"}` with the status of its [`ErrorCode`].
//! Internal errors and failed dependencies keep their cause chain (anyhow) for the log — written
//! once, here, when the answer is made — and answer the client a generic detail.

mod code;

pub use code::ErrorCode;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every error a route can answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A refusal the client can act on: the code gives the status, the detail is shown.
    #[error("{detail}")]
    Refused { code: ErrorCode, detail: String },
    /// A limit that passes with time (429, or 503 at a capacity cap): answered with
    /// `Retry-After` and, for quotas, `reset_at`.
    #[error("{detail}")]
    RetryLater {
        code: ErrorCode,
        detail: String,
        /// Seconds until trying again makes sense.
        retry_after: u64,
        /// When the quota resets (RFC 3339).
        reset_at: Option<String>,
    },
    /// 503 `unavailable`: a dependency (database, queue, disk, the payment provider) failed.
    /// The cause is logged at WARN; the client is told to try again shortly.
    #[error("service unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// 500 `internal`: a bug or an unexpected failure. The cause chain is logged at ERROR; the
    /// client gets a generic detail.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// The detail an internal error answers.
pub const INTERNAL_DETAIL: &str = "internal server error";
/// The detail an unavailable dependency answers.
pub const UNAVAILABLE_DETAIL: &str = "the service is temporarily unavailable, try again shortly";

impl ApiError {
    /// A refusal with `code` (and its status) and a detail shown to the client.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        debug_assert!(
            !matches!(code, ErrorCode::Internal | ErrorCode::Unavailable),
            "{code}: use ApiError::internal / ApiError::unavailable, which keep the cause"
        );
        ApiError::Refused {
            code,
            detail: detail.into(),
        }
    }

    /// A limit that passes in `retry_after` seconds.
    pub fn retry_later(code: ErrorCode, detail: impl Into<String>, retry_after: u64) -> ApiError {
        ApiError::RetryLater {
            code,
            detail: detail.into(),
            retry_after,
            reset_at: None,
        }
    }

    /// An unexpected failure: logged with its cause chain, opaque to the client.
    pub fn internal(cause: impl Into<anyhow::Error>) -> ApiError {
        ApiError::Internal(cause.into())
    }

    /// A failed dependency: logged with its cause chain, answered 503 `unavailable`.
    pub fn unavailable(cause: impl Into<anyhow::Error>) -> ApiError {
        ApiError::Unavailable(cause.into())
    }

    /// The stable code this error answers.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Refused { code, .. } | ApiError::RetryLater { code, .. } => *code,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status (that of the code) and the code.
    pub fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        let code = self.code();
        (code.status(), code)
    }
}

impl From<shared::db::DbError> for ApiError {
    fn from(e: shared::db::DbError) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("database"))
    }
}

/// The body of every `/api/*` error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    /// What went wrong, for people (English).
    detail: &'a str,
    /// What went wrong, for programs: a stable kebab-case code.
    code: ErrorCode,
    /// With 429 and some 503: seconds to wait (also the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    /// With 429 `quota-exhausted`: when the daily quota resets (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    reset_at: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut body = ErrorBody {
            detail: INTERNAL_DETAIL,
            code,
            retry_after: None,
            reset_at: None,
        };
        match &self {
            ApiError::Internal(cause) => {
                tracing::error!(code = %code, error = %format_args!("{cause:#}"), "internal error");
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(code = %code, error = %format_args!("{cause:#}"), "service unavailable");
                body.detail = UNAVAILABLE_DETAIL;
            }
            ApiError::Refused { detail, .. } => body.detail = detail,
            ApiError::RetryLater {
                detail,
                retry_after,
                reset_at,
                ..
            } => {
                body.detail = detail;
                body.retry_after = Some(*retry_after);
                body.reset_at = reset_at.as_deref();
            }
        }
        let mut response = (status, Json(&body)).into_response();
        if let Some(retry_after) = body.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body is not read: the connection cannot be reused.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::{Arc, Mutex};

    async fn answer(e: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = e.into_response();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    /// Collects what the `fmt` subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Answers `e` with a subscriber that captures the log; returns the answer and the log.
    async fn answer_logged(e: ApiError) -> ((StatusCode, serde_json::Value), String) {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let response = tracing::subscriber::with_default(subscriber, || e.into_response());
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        (
            (parts.status, serde_json::from_slice(&bytes).unwrap()),
            text,
        )
    }

    fn failed_read() -> anyhow::Error {
        let root = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "/secret/path denied");
        anyhow::Error::new(root).context("reading the job's result")
    }

    #[tokio::test]
    async fn an_internal_error_logs_its_cause_chain_and_answers_an_opaque_500() {
        let ((status, body), log) = answer_logged(ApiError::internal(failed_read())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            serde_json::json!({ "detail": INTERNAL_DETAIL, "code": "internal" })
        );
        assert!(log.contains("ERROR"), "{log}");
        assert!(
            log.contains("reading the job's result: /secret/path denied"),
            "the whole chain is logged: {log}"
        );
    }

    #[tokio::test]
    async fn an_unavailable_dependency_logs_its_cause_and_answers_a_generic_503() {
        let ((status, body), log) = answer_logged(ApiError::unavailable(failed_read())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            serde_json::json!({ "detail": UNAVAILABLE_DETAIL, "code": "unavailable" })
        );
        assert!(log.contains("WARN"), "{log}");
        assert!(
            log.contains("reading the job's result: /secret/path denied"),
            "{log}"
        );
    }

    #[tokio::test]
    async fn a_refusal_answers_its_code_status_and_detail() {
        let (status, headers, body) =
            answer(ApiError::new(ErrorCode::EmailTaken, "an account exists")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body,
            serde_json::json!({ "detail": "an account exists", "code": "email-taken" })
        );
        assert!(headers.get(header::RETRY_AFTER).is_none());
    }

    #[tokio::test]
    async fn a_limit_answers_retry_after_in_the_header_and_the_body() {
        let quota = ApiError::RetryLater {
            code: ErrorCode::QuotaExhausted,
            detail: "used up".to_owned(),
            retry_after: 42,
            reset_at: Some("2026-12-08T00:00:00Z".to_owned()),
        };
        let (status, headers, body) = answer(quota).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "42");
        assert_eq!(
            body,
            serde_json::json!({
                "detail": "used up", "code": "quota-exhausted",
                "retry_after": 42, "reset_at": "2026-12-08T00:00:00Z",
            })
        );
        let busy = ApiError::retry_later(ErrorCode::UploadsBusy, "full", 5);
        let (status, headers, _) = answer(busy).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "5");
    }

    #[tokio::test]
    async fn a_body_timeout_closes_the_connection() {
        let (status, headers, body) =
            answer(ApiError::new(ErrorCode::BodyTimeout, "stalled")).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(headers[header::CONNECTION], "close");
        assert_eq!(body["code"], "body-timeout");
    }
}
