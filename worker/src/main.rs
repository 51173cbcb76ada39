//! `magic-master-worker`: see [`magic_master_worker::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = magic_master_worker::cli::Cli::parse();
    match magic_master_worker::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
