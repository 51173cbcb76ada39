//! `magic-master-api`: loads settings, binds the listener and calls [`magic_master_api::run`].

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

async fn start() -> anyhow::Result<()> {
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
