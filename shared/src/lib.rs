//! What the API and worker processes share: typed settings, the SQLite pool and its
//! migrations, the queue (one payload type, one queue name), the job-row repository,
//! worker heartbeats and the storage layout; and the domain rules the routes call: payments
//! (plans, ledger, reconciliation), the quota policy and the admin totals and audit.

pub mod accounts;
pub mod admin;
pub mod alerts;
pub mod allowance;
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
