//! The web app: the files of `web/`, embedded in the binary at compile time and served with
//! the URL map, content types and caching of `web/README.md`; plus the security headers
//! every response carries.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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
    "assets/style.css",
    "assets/favicon.svg",
    "assets/js/account.js",
    "assets/js/admin.js",
    "assets/js/audio-viz.js",
    "assets/js/common.js",
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
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found\n",
        )
            .into_response(),
    }
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

    #[test]
    fn content_types_follow_the_readme() {
        assert_eq!(content_type("a/b.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("s.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("f.svg"), "image/svg+xml");
    }
}
