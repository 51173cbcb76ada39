//! The Magic Master worker: serves the mastering queue and masters single files from the
//! command line. A thin adapter over the `mastering` crate.
//!
//! - [`execute::execute_one`] runs one job (used by the queue handler, tests and the API's
//!   embedded workers).
//! - [`serve::run_worker`] serves the queue until shut down.
//! - [`bootstrap::WorkerSet`] starts the workers of a process from its settings (the worker
//!   binary's one, the API's embedded ones).
//! - [`open_stores`] opens the database (queue tables, app tables, migrations).

pub mod bootstrap;
pub mod cli;
pub mod execute;
pub mod serve;

use anyhow::Context;
use shared::{LogFormat, Settings};

/// The two handles on the SQLite file: the app pool (rusqlite) and the queue pool (sqlx).
#[derive(Clone)]
pub struct Stores {
    /// App tables.
    pub db: deadpool_sqlite::Pool,
    /// apalis queue tables.
    pub queue: apalis_sqlite::SqlitePool,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stores")
    }
}

/// Creates the data directories, sets up the queue tables, opens both pools and applies
/// the app migrations.
pub async fn open_stores(settings: &Settings) -> anyhow::Result<Stores> {
    settings
        .create_dirs()
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    shared::queue::setup(&settings.db_path)
        .await
        .with_context(|| format!("setting up the queue in {}", settings.db_path.display()))?;
    let db = shared::db::open_pool(&settings.db_path, 8).context("opening the database")?;
    shared::db::migrate(&db)
        .await
        .context("applying database migrations")?;
    let queue = shared::queue::open_pool(&settings.db_path)
        .await
        .context("opening the queue")?;
    Ok(Stores { db, queue })
}

/// Installs the tracing subscriber (`RUST_LOG` filter, default `info`) writing to stderr.
/// Text logs are coloured only when stderr is a terminal: a log file or the journal gets
/// no ANSI escape codes.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
