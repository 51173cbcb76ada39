//! What the API and worker processes share: typed settings, the SQLite pool and its
//! migrations, the queue (one payload type, one queue name), the job-row repository,
//! worker heartbeats and the storage layout.

pub mod accounts;
pub mod alerts;
pub mod backup;
pub mod db;
pub mod heartbeats;
pub mod jobs;
pub mod measurements;
pub mod paths;
pub mod payments;
pub mod queue;
pub mod quota;
pub mod settings;
pub mod stats;
pub mod time;

pub use settings::{LogFormat, Settings, SettingsError};

/// The version of this build, shown by `/api/health` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
