//! CORS from `MAGIC_MASTER_CORS_ORIGINS`: listed origins get `Access-Control-Allow-Origin`
//! (others get no CORS headers, so browsers refuse them); an empty list allows any origin
//! (`*`, with a warning logged at start-up). Preflight requests are answered here, with
//! `Authorization`, `Content-Type` and `X-Guest-Token` allowed.

use axum::http::{HeaderName, HeaderValue, Method, header};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// How long browsers may cache a preflight answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Checks the configured origins: each must be `scheme://host[:port]` exactly as browsers
/// send it (no path, no trailing slash).
pub fn parse_origins(origins: &[String]) -> Result<Vec<HeaderValue>, String> {
    origins
        .iter()
        .map(|o| {
            let well_formed = match o.split_once("://") {
                Some((scheme, rest)) => {
                    matches!(scheme, "http" | "https")
                        && !rest.is_empty()
                        && !rest.contains(['/', '?', '#', ' '])
                }
                None => false,
            };
            if !well_formed {
                return Err(format!(
                    "{o:?} is not an origin like https://master.example.com (scheme and host, \
                     no path or trailing slash)"
                ));
            }
            HeaderValue::from_str(o).map_err(|_| format!("{o:?} is not a valid origin"))
        })
        .collect()
}

/// The CORS layer for these origins (empty: any origin).
pub fn layer(origins: &[HeaderValue]) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static(crate::auth::GUEST_HEADER),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::CONTENT_DISPOSITION,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(PREFLIGHT_MAX_AGE);
    if origins.is_empty() {
        base.allow_origin(Any)
    } else {
        base.allow_origin(AllowOrigin::list(origins.iter().cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_exact() {
        let ok = parse_origins(&[
            "https://a.example.com".into(),
            "http://localhost:8000".into(),
        ])
        .unwrap();
        assert_eq!(ok.len(), 2);
        for bad in [
            "https://a.example.com/",
            "a.example.com",
            "ftp://x",
            "https://",
            "https://a/b",
        ] {
            assert!(parse_origins(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
