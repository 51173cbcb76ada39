//! `magic-master-api`: parses the command line ([`cli::Cli`]), then serves HTTP (the default,
//! or `serve`) or writes a database snapshot (`backup OUT`).

mod cli;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Usage errors, `--help` and `--version` print and exit here (usage errors with code 2).
    let cli = Cli::parse();
    match start(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn start(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Backup { out } => backup(&out).await,
    }
}

/// `magic-master-api [serve]`: binds the listener and calls [`magic_master_api::run`].
async fn serve() -> anyhow::Result<()> {
    let settings = shared::Settings::load()?;
    magic_master_worker::init_tracing(settings.log_format);
    let address = std::net::SocketAddr::new(settings.host, settings.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    magic_master_api::run(
        settings,
        listener,
        magic_master_worker::serve::shutdown_signal(),
    )
    .await
}

/// `magic-master-api backup OUT`: a consistent snapshot of the database
/// (`MAGIC_MASTER_DB_PATH`) written to OUT while the service may keep running.
async fn backup(out: &std::path::Path) -> anyhow::Result<()> {
    let settings = shared::Settings::load()?;
    let snap = shared::backup::snapshot_file(&settings.db_path, out)
        .await
        .with_context(|| format!("backing up {}", settings.db_path.display()))?;
    println!("{}", snap.path.display());
    eprintln!("snapshot of {} bytes written and verified", snap.bytes);
    Ok(())
}
