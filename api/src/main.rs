//! `magic-master-api`: loads settings, binds the listener and calls [`magic_master_api::run`].
//!
//! `magic-master-api backup OUT` instead writes a consistent snapshot of the database
//! (`MAGIC_MASTER_DB_PATH`) to OUT while the service may keep running, and prints its path.

use anyhow::Context;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match start().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

const USAGE: &str =
    "usage: magic-master-api            serve HTTP (configured by MAGIC_MASTER_* variables)
       magic-master-api backup OUT  write a consistent snapshot of the database to OUT";

async fn start() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {}
        ["backup", out] => return backup(std::path::Path::new(out)).await,
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            return Ok(());
        }
        ["-V" | "--version"] => {
            println!("magic-master-api {}", shared::VERSION);
            return Ok(());
        }
        _ => anyhow::bail!("unexpected arguments {args:?}\n{USAGE}"),
    }
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

/// `magic-master-api backup OUT`.
async fn backup(out: &std::path::Path) -> anyhow::Result<()> {
    let settings = shared::Settings::load()?;
    let snap = shared::backup::snapshot_file(&settings.db_path, out)
        .await
        .with_context(|| format!("backing up {}", settings.db_path.display()))?;
    println!("{}", snap.path.display());
    eprintln!("snapshot of {} bytes written and verified", snap.bytes);
    Ok(())
}
