//! The `magic-master-api` command line (clap derive): `serve` (the default) and `backup OUT`.
//! Everything else is configured by `MAGIC_MASTER_*` environment variables.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Shown after the subcommands by `--help`: where the settings are.
const SETTINGS_HELP: &str = "\
Settings: every setting is an environment variable MAGIC_MASTER_<NAME> (e.g. MAGIC_MASTER_PORT,
MAGIC_MASTER_DATA_DIR, MAGIC_MASTER_DB_PATH), also read from a .env file in the working
directory; RUST_LOG sets the log verbosity. The full list with defaults is the configuration
table of README.md (\"Running API and workers separately\") and .env.example.";

/// Magic Master HTTP API: web app, uploads, job status and results, health and metrics.
#[derive(Debug, Parser)]
#[command(name = "magic-master-api", version, about, after_help = SETTINGS_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default), with MAGIC_MASTER_EMBEDDED_WORKERS in-process workers.
    Serve,
    /// Write a consistent snapshot of the database (MAGIC_MASTER_DB_PATH) to OUT while the
    /// service may keep running, verify it, and print its path.
    Backup {
        /// Snapshot file to write.
        out: PathBuf,
    },
}
