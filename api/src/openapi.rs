//! The OpenAPI 3.1 document of the HTTP API, generated from the route handlers'
//! `#[utoipa::path]` attributes and the body types they name. [`crate::routes::api`]
//! registers every API route together with its documentation (`utoipa_axum::routes!`), so the
//! served routes and the documented ones come from one list; the test below checks that no
//! route is served undocumented and no documented one is missing. Served at
//! `GET /api/openapi.json`, built once with the router.

use crate::error::{ErrorBody, ErrorCode};
use axum::body::Bytes;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's fixed parts: title, description, tags, the security schemes and the error
/// body; the paths and their body schemas are added by the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Magic Master API",
        description = "Automatic audio mastering: upload a mix, get a master at the loudness target under the true-peak ceiling. Errors on /api/* are JSON {\"detail\", \"code\"} (an unknown /api/ path too: 404 not-found); other unknown paths get the web app's HTML 404 page. Every route except /api/health, /metrics and /api/payments/webhook counts against a per-client rate limit (a client is an IPv4 address or an IPv6 /64; MAGIC_MASTER_GLOBAL_RATE_LIMIT requests a minute, default 600): over it, 429 {\"detail\", \"code\": \"rate-limited\"} with Retry-After. CORS: origins listed in MAGIC_MASTER_CORS_ORIGINS, matched in the ASCII (punycode) form browsers send (any when empty); Authorization and X-Guest-Token are allowed request headers. Request bodies: uploads up to MAGIC_MASTER_MAX_UPLOAD_MB (counted as they arrive, whatever the transfer encoding), every other body up to 64 KiB; over it, 413 \"too-large\". A body that sends nothing for MAGIC_MASTER_BODY_IDLE_TIMEOUT_SECONDS (30) gets 408 \"body-timeout\", one slower on average than MAGIC_MASTER_BODY_MIN_RATE_KIB (32 KiB/s, after its first idle period) 408 \"body-too-slow\". A request head must arrive within MAGIC_MASTER_HEADER_TIMEOUT_SECONDS (10), or the connection is closed. The server speaks HTTP/1.1."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody, ErrorCode)),
    tags(
        (name = "mastering", description = "Upload, status, progress, results, styles, analysis"),
        (name = "accounts", description = "Register, log in, the caller's limits and history"),
        (name = "payments", description = "Plans, payments and the YooKassa notification"),
        (name = "admin", description = "The admin API (an admin's bearer token; every action is audited)"),
        (name = "service", description = "Health, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// `bearer` (JWT), `guestCookie` and `guestHeader` (the guest token), as the routes'
/// `security(...)` name them.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Access token from /api/auth/login or /api/auth/register (HS256, expires after MAGIC_MASTER_JWT_TTL_SECONDS). is_admin and the blocked flag are read from the database on every request."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "guestCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::GUEST_COOKIE,
                "Guest session: set (HttpOnly, SameSite=Lax, 30 days) by the first upload without a token. A guest's jobs are visible only with the same guest token; anyone else gets 404.",
            ))),
        );
        components.add_security_scheme(
            "guestHeader",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::auth::GUEST_HEADER,
                "The guest token (32-128 characters of [A-Za-z0-9_-]) for clients without cookies; returned as guest_token by POST /api/v2/master.",
            ))),
        );
    }
}

/// The generated document as served: JSON text, serialised once when the router is built.
#[derive(Debug, Clone)]
pub struct Document(Bytes);

impl Document {
    /// Serialises `openapi` (the router's, from [`utoipa_axum::router::OpenApiRouter::split_for_parts`]).
    pub fn new(openapi: &utoipa::openapi::OpenApi) -> Document {
        let json = openapi
            .to_pretty_json()
            .expect("an OpenAPI document of plain data always serialises");
        Document(Bytes::from(json))
    }

    /// The JSON text (shared, not copied).
    pub fn json(&self) -> Bytes {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use crate::AppState;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Method, Request, StatusCode};
    use std::collections::{BTreeSet, HashMap};
    use std::net::SocketAddr;
    use std::sync::Arc;
    use tower::ServiceExt;

    /// The state `crate::run` builds, on a fresh data dir, without workers.
    async fn state(data_dir: &std::path::Path) -> AppState {
        let vars = HashMap::from([
            (
                "MAGIC_MASTER_DATA_DIR".to_owned(),
                data_dir.display().to_string(),
            ),
            ("MAGIC_MASTER_EMBEDDED_WORKERS".to_owned(), "0".to_owned()),
        ]);
        let settings = shared::Settings::from_vars(&vars).expect("test settings");
        let address: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let stores = magic_master_worker::open_stores(&settings).await.unwrap();
        AppState {
            security: Arc::new(crate::security::Security::new(&settings).unwrap()),
            payments: Arc::new(
                crate::yookassa::Payments::from_settings(&settings, address).unwrap(),
            ),
            alerts: shared::alerts::Alerts::start(&settings),
            settings: Arc::new(settings),
            db: stores.db.clone(),
            queue: stores.queue.clone(),
            started_at: chrono::Utc::now(),
            health: Arc::default(),
        }
    }

    /// The paths the router matches, read from its `Debug` text (axum has no route list):
    /// the `path_router` part names each route's path once, as `RouteId(n): "/path"`.
    fn registered_paths(router: &Router) -> BTreeSet<String> {
        let text = format!("{router:?}");
        let (routes, _fallbacks) = text
            .split_once("fallback_router")
            .expect("axum's Router Debug names its path_router, then its fallback_router");
        routes
            .split("RouteId(")
            .filter_map(|part| part.split_once("): \""))
            .filter_map(|(_, rest)| rest.split_once('"'))
            .map(|(path, _)| path.to_owned())
            .filter(|path| path.starts_with('/'))
            .collect()
    }

    /// The web app's pages: served, not part of the API.
    fn is_web_page(path: &str) -> bool {
        path == "/assets/{*path}" || crate::web::PAGES.iter().any(|(url, _)| *url == path)
    }

    async fn send(router: &Router, method: Method, path: &str) -> (StatusCode, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The document as `GET /api/openapi.json` serves it.
    async fn served_document(router: &Router) -> serde_json::Value {
        let (status, text) = send(router, Method::GET, "/api/openapi.json").await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_str(&text).unwrap()
    }

    /// `{name}` segments filled in: a path the route matches.
    fn concrete(path: &str) -> String {
        path.split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "1"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Every (method, path) the router serves, but the web pages, is in the served document,
    /// and every documented one is served: each registered path is asked with each method,
    /// and a method is served unless the router answers 405 or its "no such route" fallback.
    #[tokio::test]
    async fn the_document_lists_exactly_the_routes_served() {
        let dir = tempfile::tempdir().unwrap();
        let router = crate::router(state(dir.path()).await);
        let document = served_document(&router).await;
        let documented: BTreeSet<(String, String)> = document["paths"]
            .as_object()
            .expect("the document has paths")
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().unwrap().keys();
                methods.map(move |m| (m.to_uppercase(), path.clone()))
            })
            .collect();

        let paths = registered_paths(&router);
        assert!(
            paths.contains("/api/health") && paths.contains("/"),
            "the router's paths could not be read from its Debug text: {paths:?}"
        );
        let mut served = BTreeSet::new();
        for path in paths.iter().filter(|p| !is_web_page(p)) {
            for method in [
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ] {
                let (status, body) = send(&router, method.clone(), &concrete(path)).await;
                let fallback = status == StatusCode::NOT_FOUND && body.contains("no such route");
                if status != StatusCode::METHOD_NOT_ALLOWED && !fallback {
                    served.insert((method.to_string(), path.clone()));
                }
            }
        }
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let not_served: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty() && not_served.is_empty(),
            "served but not in /api/openapi.json: {undocumented:?}; \
             documented but not served: {not_served:?}"
        );
    }

    /// What the hand-written document had that clients rely on: the error body with every
    /// code, the security schemes and who needs which, the upload forms.
    #[tokio::test]
    async fn the_document_has_the_error_codes_security_and_upload_forms() {
        let dir = tempfile::tempdir().unwrap();
        let document = served_document(&crate::router(state(dir.path()).await)).await;
        let schemas = &document["components"]["schemas"];
        let codes: Vec<&str> = crate::error::ErrorCode::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        assert_eq!(schemas["ErrorCode"]["enum"], serde_json::json!(codes));
        assert_eq!(
            schemas["Error"]["required"],
            serde_json::json!(["detail", "code"])
        );
        let schemes = &document["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
        assert_eq!(schemes["guestCookie"]["name"], crate::auth::GUEST_COOKIE);
        assert_eq!(schemes["guestHeader"]["name"], crate::auth::GUEST_HEADER);
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let needs_admin = path.starts_with("/api/admin/");
                let security = &operation["security"];
                if needs_admin {
                    assert_eq!(
                        security,
                        &serde_json::json!([{ "bearer": [] }]),
                        "{method} {path}"
                    );
                }
                for (status, response) in operation["responses"].as_object().unwrap() {
                    let json = &response["content"]["application/json"]["schema"]["$ref"];
                    if status.starts_with('4') {
                        assert_eq!(
                            json, "#/components/schemas/Error",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        for upload in ["/api/v2/master", "/api/v2/analyze"] {
            let form = &document["paths"][upload]["post"]["requestBody"]["content"]["multipart/form-data"]
                ["schema"]["$ref"];
            assert!(form.is_string(), "{upload}: {form}");
        }
        let styles: Vec<&str> = mastering::Style::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            schemas["MasterForm"]["properties"]["style"]["enum"],
            serde_json::json!(styles)
        );
    }
}
