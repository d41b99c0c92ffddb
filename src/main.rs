//! The `duckbank` binary: parses the command line, sets up logging and serves.
//! Everything else lives in the library so tests and benchmarks share it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use duckbank::config::LogFormat;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "duckbank",
    version,
    about = "Projects, buckets and tables on per-table DuckDB files"
)]
struct Cli {
    /// Settings file (TOML); defaults to ./duckbank.toml when present.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match duckbank::Config::load(cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("duckbank: invalid configuration: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {}
    }
    let addr = match config.bind_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("duckbank: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("duckbank: cannot bind {addr}: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match duckbank::serve_on(listener, config, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duckbank: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
