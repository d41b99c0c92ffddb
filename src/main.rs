//! The `duckbank` binary: parses the command line, sets up logging and serves.
//! Everything else lives in the library so tests and benchmarks share it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use duckbank::config::LogFormat;
use duckbank::telemetry::otlp::{self, SpanExport};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

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
    let export = init_logging(
        config.log_format,
        config.otel_exporter_otlp_endpoint.as_deref(),
    );
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
    let served = duckbank::serve_on(listener, config, shutdown_signal()).await;
    if let Some(export) = export {
        let _ = tokio::task::spawn_blocking(move || export.shutdown()).await;
    }
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duckbank: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Log lines to stdout and, with an OTLP endpoint, spans to it (the returned export flushes
/// them at shutdown).
fn init_logging(format: LogFormat, otlp_endpoint: Option<&str>) -> Option<SpanExport> {
    // RUST_LOG picks log lines only: exported spans are the info-level ones whatever it says.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
    };
    let (spans, export) = match otlp_endpoint.map(otlp::layer) {
        Some(Ok((layer, export))) => (Some(layer.with_filter(LevelFilter::INFO)), Some(export)),
        Some(Err(e)) => {
            eprintln!("duckbank: spans are not exported: {e}");
            (None, None)
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(spans)
        .init();
    export
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
