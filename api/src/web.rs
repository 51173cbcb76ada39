//! The web app: the files of `web/`, embedded in the binary at compile time and served with
//! the URL map, content types and caching of `web/README.md`; the HTML 404 and 500 pages of
//! browser routes; plus the security headers every response carries.

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use tower_http::set_header::SetResponseHeaderLayer;

/// One embedded file of `web/`.
#[derive(Debug, Clone, Copy)]
pub struct WebFile {
    /// Path relative to `web/`, e.g. `assets/js/common.js`.
    pub path: &'static str,
    /// The file's bytes.
    pub bytes: &'static [u8],
}

macro_rules! web_files {
    ($($path:literal),* $(,)?) => {
        /// Every embedded file (a test checks that it lists everything in `web/`).
        pub const FILES: &[WebFile] = &[
            $(WebFile { path: $path, bytes: include_bytes!(concat!("../../web/", $path)) },)*
        ];
    };
}

web_files!(
    "index.html",
    "login.html",
    "account.html",
    "pricing.html",
    "payment-return.html",
    "admin.html",
    "status.html",
    "404.html",
    "500.html",
    "assets/style.css",
    "assets/favicon.svg",
    "assets/js/account.js",
    "assets/js/admin.js",
    "assets/js/audio-viz.js",
    "assets/js/common.js",
    "assets/js/error-page.js",
    "assets/js/i18n.js",
    "assets/js/login.js",
    "assets/js/master.js",
    "assets/js/payment-return.js",
    "assets/js/pricing.js",
    "assets/js/status.js",
);

/// Page URLs and the files they serve.
pub const PAGES: &[(&str, &str)] = &[
    ("/", "index.html"),
    ("/login", "login.html"),
    ("/account", "account.html"),
    ("/pricing", "pricing.html"),
    ("/payment/return", "payment-return.html"),
    ("/admin", "admin.html"),
    ("/status", "status.html"),
];

/// The Content-Security-Policy of `web/README.md`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; \
    media-src 'self' blob:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'";

/// Content type by file extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// The embedded file at `path` (relative to `web/`).
pub fn find(path: &str) -> Option<&'static WebFile> {
    FILES.iter().find(|f| f.path == path)
}

fn serve(path: &str) -> Response {
    match find(path) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, content_type(file.path)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            file.bytes,
        )
            .into_response(),
        None => not_found_page(),
    }
}

/// True for the web app's URLs: anything but the JSON API (`/api`, `/api/…`) and the
/// Prometheus endpoint (`/metrics`).
pub fn is_browser_path(path: &str) -> bool {
    !(path == "/api" || path.starts_with("/api/") || path == "/metrics")
}

fn error_page(status: StatusCode, file: &str) -> Response {
    let bytes = find(file).map(|f| f.bytes).unwrap_or_default();
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response()
}

/// The HTML 404 page (`web/404.html`) with status 404.
pub fn not_found_page() -> Response {
    error_page(StatusCode::NOT_FOUND, "404.html")
}

/// The HTML 500 page (`web/500.html`) with status 500.
pub fn server_error_page() -> Response {
    error_page(StatusCode::INTERNAL_SERVER_ERROR, "500.html")
}

/// A 500 on a browser route becomes the HTML 500 page (the API's JSON error stays as it is
/// under `/api/`).
async fn html_server_errors(req: Request, next: Next) -> Response {
    let browser = is_browser_path(req.uri().path());
    let response = next.run(req).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if browser && response.status() == StatusCode::INTERNAL_SERVER_ERROR && !is_html {
        server_error_page()
    } else {
        response
    }
}

/// A panic in a handler answers an opaque 500 (logged; the JSON error, which browser routes
/// turn into the HTML page in [`html_server_errors`]) instead of a dropped connection.
async fn catch_panics(req: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            crate::error::ApiError::internal(anyhow::anyhow!("handler panicked: {what}"))
                .into_response()
        }
    }
}

/// Turns panics into 500s and 500s on browser routes into the HTML page. Call after all
/// routes are added (and inside the metrics layer, so these 500s are counted).
pub fn with_error_pages<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(middleware::from_fn(catch_panics))
        .layer(middleware::from_fn(html_server_errors))
}

async fn asset(Path(path): Path<String>) -> Response {
    serve(&format!("assets/{path}"))
}

/// The page and asset routes (GET and HEAD).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new().route("/assets/{*path}", get(asset));
    for (url, file) in PAGES {
        let file: &'static str = file;
        router = router.route(url, get(move || async move { serve(file) }));
    }
    router
}

/// Adds the security headers to every response (unless a route set its own).
pub fn with_security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let headers: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    headers.into_iter().fold(router, |r, (name, value)| {
        r.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `web/` (except the README) is embedded, so a new page or script
    /// cannot be forgotten.
    #[test]
    fn every_web_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
        let mut stack = vec![root.clone()];
        let mut on_disk = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    if rel != "README.md" {
                        on_disk.push(rel);
                    }
                }
            }
        }
        for rel in &on_disk {
            assert!(
                find(rel).is_some(),
                "web/{rel} is not in api/src/web.rs FILES"
            );
        }
        assert_eq!(on_disk.len(), FILES.len(), "{on_disk:?}");
        for (_, file) in PAGES {
            assert!(find(file).is_some(), "{file}");
        }
    }

    /// A failing browser route answers the HTML 500 page; a failing API route keeps the
    /// JSON error; a panic is a 500, not a dropped connection.
    #[tokio::test]
    async fn internal_errors_get_the_html_page_on_browser_routes() {
        use tower::ServiceExt;
        async fn fails() -> crate::error::ApiError {
            crate::error::ApiError::internal(anyhow::anyhow!("test failure"))
        }
        async fn panics() -> &'static str {
            panic!("test panic")
        }
        let app: Router = with_error_pages(
            Router::new()
                .route("/broken", get(fails))
                .route("/api/broken", get(fails))
                .route("/panics", get(panics))
                .route("/api/panics", get(panics))
                .route("/fine", get(|| async { "fine" })),
        );
        let page = find("500.html").unwrap().bytes;
        for (url, status, html) in [
            ("/broken", 500, true),
            ("/panics", 500, true),
            ("/api/broken", 500, false),
            ("/api/panics", 500, false),
            ("/fine", 200, false),
        ] {
            let req = Request::builder()
                .uri(url)
                .body(axum::body::Body::empty())
                .unwrap();
            let r = app.clone().oneshot(req).await.unwrap();
            assert_eq!(r.status().as_u16(), status, "{url}");
            let ct = r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .to_owned();
            let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            if html {
                assert_eq!(ct, "text/html; charset=utf-8", "{url}");
                assert_eq!(body.as_ref(), page, "{url}");
            } else if status == 500 {
                assert_eq!(ct, "application/json", "{url}");
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["code"], "internal", "{url}");
                assert_eq!(v["detail"], "internal server error", "{url}");
            } else {
                assert_eq!(body.as_ref(), b"fine");
            }
        }
    }

    #[test]
    fn browser_paths_are_all_but_the_api_and_metrics() {
        for p in [
            "/",
            "/no-such",
            "/assets/x.js",
            "/apix",
            "/metrics/x",
            "/api-docs",
        ] {
            assert!(is_browser_path(p), "{p}");
        }
        for p in ["/api", "/api/", "/api/health", "/api/v2/nope", "/metrics"] {
            assert!(!is_browser_path(p), "{p}");
        }
        assert_eq!(not_found_page().status(), StatusCode::NOT_FOUND);
        assert!(find("404.html").is_some() && find("500.html").is_some());
    }

    #[test]
    fn content_types_follow_the_readme() {
        assert_eq!(content_type("a/b.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("s.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("f.svg"), "image/svg+xml");
    }
}
