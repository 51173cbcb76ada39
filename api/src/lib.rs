//! The Magic Master HTTP API (axum). `main` loads settings and calls [`run`]; [`router`]
//! builds the routes for a given [`AppState`] so tests can serve it on any listener.

pub mod auth;
pub mod cors;
pub mod error;
pub mod monitor;
pub mod routes;
pub mod security;
pub mod sweeper;
pub mod telemetry;
pub mod upload;
pub mod web;
pub mod yookassa;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use magic_master_worker::execute::JobContext;
use magic_master_worker::serve::{WorkerOptions, run_worker};
use shared::Settings;
use shared::alerts::Alerts;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
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
    /// When this process started (RFC 3339).
    pub started_at: String,
    /// JWT keys, trusted proxies, rate limiters, CORS origins.
    pub security: Arc<security::Security>,
    /// Plans, live or demo mode, the webhook whitelist.
    pub payments: Arc<yookassa::Payments>,
    /// Telegram alerts (payments).
    pub alerts: Alerts,
}

impl AppState {
    /// The queue heartbeat period.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.settings.worker_heartbeat_seconds)
    }
}

/// All routes.
pub fn router(state: AppState) -> Router {
    use routes::{analyze, files, info, master, status};
    let uploads = Router::new()
        .route("/api/v2/master", post(master::create_job))
        .route("/api/v2/analyze", post(analyze::analyze))
        // The upload routes enforce MAX_UPLOAD_MB themselves while streaming to disk.
        .layer(DefaultBodyLimit::disable());
    let app = Router::new()
        .merge(uploads)
        .merge(routes::account_routes())
        .merge(routes::payment_routes())
        .merge(web::routes())
        .route("/api/master/status/{job_id}", get(status::status))
        .route("/api/master/progress/{job_id}", get(status::progress))
        .route("/api/master/result/{job_id}", get(files::result))
        .route("/api/master/preview/{job_id}", get(files::preview))
        .route("/api/styles", get(info::styles))
        .route("/api/health", get(routes::health::health))
        .route("/api/metrics", get(routes::health::api_metrics))
        .route("/metrics", get(routes::health::prometheus))
        .route("/api/openapi.json", get(info::openapi))
        .fallback(info::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::global_rate_limit,
        ));
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
        started_at: shared::time::now_rfc3339(),
        security,
        payments,
        alerts: alerts.clone(),
    };
    auth::bootstrap_admin(&settings, &stores.db).await?;
    let token = CancellationToken::new();
    let mut tasks = Vec::new();
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    for i in 0..settings.embedded_workers {
        let name = settings
            .worker_name
            .as_ref()
            .map(|n| format!("{n}-{i}"))
            .unwrap_or_else(|| format!("embedded-{port}-{i}"));
        let ctx = JobContext {
            db: stores.db.clone(),
            data_dir: settings.data_dir.clone(),
            max_attempts: settings.job_max_attempts,
            max_duration_sec: settings.max_duration_seconds as f64,
            job_timeout: Duration::from_secs(settings.job_timeout_seconds),
            worker_name: name.clone(),
            cancel: Arc::new(AtomicBool::new(false)),
            alerts: alerts.clone(),
        };
        let options = WorkerOptions {
            name,
            concurrency: settings.worker_concurrency,
            heartbeat: state.heartbeat(),
        };
        tasks.push(tokio::spawn(run_worker(
            ctx,
            stores.queue.clone(),
            options,
            token.clone(),
        )));
    }
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
    let serve = axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutdown requested");
        http_token.cancel();
    });
    serve.await?;
    token.cancel();
    for task in tasks {
        let _ = task.await;
    }
    stores.queue.close().await;
    Ok(())
}
