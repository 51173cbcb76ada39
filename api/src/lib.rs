//! The Magic Master HTTP API (axum). `main` loads settings and calls [`run`]; [`router`]
//! builds the routes for a given [`AppState`] so tests can serve it on any listener.

pub mod auth;
pub mod cors;
pub mod error;
pub mod guest_token;
pub mod health_report;
pub mod limits;
pub mod monitor;
pub mod openapi;
pub mod routes;
pub mod security;
pub mod sweeper;
pub mod telemetry;
pub mod upload;
pub mod web;
pub mod yookassa;

use axum::{Extension, Router};
use magic_master_worker::bootstrap::WorkerSet;
use shared::Settings;
use shared::alerts::Alerts;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What every route can reach.
#[derive(Clone)]
pub struct AppState {
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// App tables.
    pub db: deadpool_sqlite::Pool,
    /// Queue tables.
    pub queue: apalis_sqlite::SqlitePool,
    /// When this process started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// JWT keys, trusted proxies, rate limiters, CORS origins.
    pub security: Arc<security::Security>,
    /// Plans, live or demo mode, the webhook whitelist.
    pub payments: Arc<yookassa::Payments>,
    /// Telegram alerts (payments).
    pub alerts: Alerts,
    /// The health report shared by `/api/health` and the monitor (computed once a second
    /// at most).
    pub health: Arc<health_report::HealthCache>,
}

impl AppState {
    /// The queue heartbeat period.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.settings.worker_heartbeat_seconds)
    }

    /// Workers whose heartbeat is recent (within [`shared::heartbeats::alive_window`] of this
    /// service's heartbeat period); 0 when the database cannot say.
    pub async fn workers_alive(&self) -> u64 {
        let window = shared::heartbeats::alive_window(self.settings.worker_heartbeat_seconds);
        shared::heartbeats::alive(&self.db, window)
            .await
            .unwrap_or(0)
    }
}

/// All routes: the API ([`routes::api`], with its generated OpenAPI document, served at
/// `/api/openapi.json`) and the web app's pages.
pub fn router(state: AppState) -> Router {
    let (api, document) = routes::api(&state).split_for_parts();
    let app = api
        .layer(Extension(openapi::Document::new(&document)))
        .merge(web::routes())
        .fallback(routes::info::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::guard_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::global_rate_limit,
        ));
    let app = web::with_error_pages(app);
    let app = telemetry::layers(app).layer(cors::layer(&state.security.cors_origins));
    web::with_security_headers(app).with_state(state)
}

/// Opens the stores, starts the embedded workers and the sweeper, and serves HTTP on
/// `listener` until `shutdown` resolves; then stops accepting, lets running jobs finish and
/// returns.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let security = Arc::new(security::Security::new(&settings)?);
    let payments = Arc::new(yookassa::Payments::from_settings(
        &settings,
        listener.local_addr()?,
    )?);
    if security.cors_origins.is_empty() {
        tracing::warn!(
            "MAGIC_MASTER_CORS_ORIGINS is empty: any web origin may call this API; \
             set it to the site's own origin(s) in production"
        );
    }
    if payments.is_demo() {
        tracing::warn!(
            "YooKassa is not configured (MAGIC_MASTER_YOOKASSA_SHOP_ID, _SECRET_KEY): payments \
             run in DEMO mode and are credited at once without any money"
        );
    }
    let stores = magic_master_worker::open_stores(&settings).await?;
    let settings = Arc::new(settings);
    let alerts = Alerts::start(&settings);
    let state = AppState {
        settings: settings.clone(),
        db: stores.db.clone(),
        queue: stores.queue.clone(),
        started_at: chrono::Utc::now(),
        security,
        payments,
        alerts: alerts.clone(),
        health: Arc::default(),
    };
    auth::bootstrap_admin(&settings, &stores.db).await?;
    let token = CancellationToken::new();
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut tasks = WorkerSet::embedded(&settings, port).spawn(&settings, &stores, &alerts, &token);
    tasks.push(tokio::spawn(sweeper::run(state.clone(), token.clone())));
    tasks.push(tokio::spawn(monitor::run(
        state.clone(),
        alerts.clone(),
        token.clone(),
    )));

    tracing::info!(
        address = %listener.local_addr()?,
        embedded_workers = settings.embedded_workers,
        data_dir = %settings.data_dir.display(),
        "Magic Master API {} listening",
        shared::VERSION
    );
    let http_token = token.clone();
    let header_timeout = Duration::from_secs(settings.header_timeout_seconds);
    serve(listener, router(state), header_timeout, async move {
        shutdown.await;
        tracing::info!("shutdown requested");
        http_token.cancel();
    })
    .await;
    token.cancel();
    for task in tasks {
        let _ = task.await;
    }
    stores.queue.close().await;
    Ok(())
}

/// Largest request head (request line and headers) in bytes; larger ones get 431.
pub const MAX_REQUEST_HEAD: usize = 32 * 1024;

/// Serves HTTP/1.1 on `listener` until `shutdown` resolves, then lets the open connections
/// finish their requests and returns. A client must send each request head within
/// `header_timeout` (`HEADER_TIMEOUT_SECONDS`), also between requests on a kept-alive
/// connection, or the connection is closed. Handlers see the peer as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if !matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionRefused
                    ) {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::error!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut close_rx = close_rx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    tower::ServiceExt::oneshot(app.clone(), req)
                },
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_header_size(MAX_REQUEST_HEAD);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = close_rx.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    drop(close_rx);
    let _ = close_tx.send(());
    close_tx.closed().await;
}
