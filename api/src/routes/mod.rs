//! HTTP routes.
//!
//! [`api`] is the one list of the API's routes: each is registered with
//! `utoipa_axum::routes!`, which takes the handler's `#[utoipa::path]` documentation along, so
//! the OpenAPI document ([`crate::openapi`]) describes exactly the routes served. A new
//! route goes there (CONTRIBUTING.md, "Adding a route"); one added with a plain `.route(...)`
//! fails `openapi::tests`.

pub mod accounts;
pub mod admin;
pub mod analyze;
pub mod cancel;
pub mod files;
pub mod health;
pub mod info;
pub mod master;
pub mod payments;
pub mod status;

use crate::{AppState, limits, openapi};
use axum::Extension;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// Every API route (all but the web app's pages) with its documentation. The upload routes
/// stream their bodies to disk (bounded by `limits::guard_body` and `upload::open_multipart`),
/// holding one of the upload slots while they run; the progress stream holds one of the
/// stream slots.
pub fn api(state: &AppState) -> OpenApiRouter<AppState> {
    let gate = limits::ClientGate::new(
        &limits::UPLOADS,
        state.settings.uploads_per_ip,
        state.settings.uploads_max,
    );
    let streams = limits::ClientGate::new(
        &limits::PROGRESS_STREAMS,
        status::STREAMS_PER_CLIENT,
        status::STREAMS_MAX,
    );
    let uploads = OpenApiRouter::new()
        .routes(routes!(master::create_job))
        .routes(routes!(analyze::analyze))
        .route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), gate),
            limits::upload_gate,
        ));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(uploads)
        .routes(routes!(status::status))
        .routes(routes!(status::progress).layer(Extension(streams)))
        .routes(routes!(cancel::cancel))
        .routes(routes!(files::result))
        .routes(routes!(files::preview))
        .routes(routes!(info::styles))
        .merge(account_routes())
        .merge(payment_routes())
        .routes(routes!(health::health))
        .routes(routes!(health::api_metrics))
        .routes(routes!(health::prometheus))
        .routes(routes!(info::openapi))
}

/// Accounts, limits, the caller's job history and the admin API.
fn account_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(accounts::register))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::limits))
        .routes(routes!(accounts::my_jobs))
        .routes(routes!(admin::stats))
        .routes(routes!(admin::users))
        .routes(routes!(admin::update_user))
        .routes(routes!(admin::grant_tokens))
        .routes(routes!(admin::list_jobs))
        .routes(routes!(admin::retry_job))
        .routes(routes!(admin::settings))
        .routes(routes!(admin::backup))
}

/// The payment routes.
fn payment_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(payments::plans))
        .routes(routes!(payments::create))
        .routes(routes!(payments::list))
        .routes(routes!(payments::webhook))
        .routes(routes!(payments::get))
}
