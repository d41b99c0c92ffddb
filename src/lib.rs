//! duckbank: a storage backend serving projects, buckets and tables on per-table DuckDB files.
//! The library builds the router and runs the server; `main.rs` only parses the CLI.

pub mod api;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod engine;
pub mod error;
pub mod files;
pub mod names;
pub mod server;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod types;
pub mod wire;
pub mod workers;
pub mod workspace;

use std::future::Future;

use tokio::net::TcpListener;

pub use config::Config;
pub use state::AppState;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(String);

/// Removes expired upload sessions, crash leftovers, old finished jobs, and audit entries and
/// snapshots past retention now and then every interval.
fn spawn_cleaner(state: AppState) {
    let every = std::time::Duration::from_secs(state.config.cleanup_interval_secs.max(1));
    let retention = std::time::Duration::from_secs(state.config.job_retention_secs);
    let (files, jobs) = (state.files.clone(), state.jobs.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = files.cleanup().await {
                tracing::warn!(error = %e, "upload cleanup failed");
            }
            if let Err(e) = jobs.purge(retention).await {
                tracing::warn!(error = %e, "job cleanup failed");
            }
            // The first tick is immediate, so the gauge is set at start-up too.
            match state.idempotency.purge().await {
                Ok(left) => telemetry::set_idempotency_entries(left),
                Err(e) => tracing::warn!(error = %e, "idempotency cleanup failed"),
            }
            match state.audit.purge(state.config.audit_retention_days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "old audit entries removed"),
                Err(e) => tracing::warn!(error = %e, "audit cleanup failed"),
            }
            state.rate_limits.forget_idle();
            match service::workspaces::purge_expired(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired workspaces removed"),
                Err(e) => tracing::warn!(error = %e, "workspace cleanup failed"),
            }
            let state = state.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = service::snapshots::manage::purge_expired(&state) {
                    tracing::warn!(error = %e, "snapshot retention cleanup failed");
                }
                if let Err(e) = service::snapshots::manage::sweep_remote(&state) {
                    tracing::warn!(error = %e, "snapshot cache and orphan sweep failed");
                }
                service::tables::restamp_unfolded(&state)
            })
            .await;
        }
    });
}

/// Listens for PostgreSQL wire clients on HOST:PGWIRE_PORT, unless the port is 0 (ADR 0033).
async fn start_wire(state: &AppState) -> Result<Option<tokio::task::JoinHandle<()>>, StartupError> {
    let port = state.config.pgwire_port;
    if port == 0 {
        return Ok(None);
    }
    let tls = match (state.config.wire_tls_cert(), state.config.wire_tls_key()) {
        (Some(cert), Some(key)) => Some(wire::tls::acceptor(cert, key).map_err(StartupError)?),
        (None, None) => None,
        _ => {
            return Err(StartupError(
                "PGWIRE_TLS_CERT and PGWIRE_TLS_KEY must be set together".into(),
            ))
        }
    };
    let addr = format!("{}:{port}", state.config.host);
    let listener = TcpListener::bind(&addr).await.map_err(|e| {
        StartupError(format!(
            "cannot listen for the wire protocol on {addr} (PGWIRE_PORT; 0 turns it off): {e}"
        ))
    })?;
    tracing::info!(%addr, tls = tls.is_some(), "wire protocol listening");
    Ok(Some(tokio::spawn(wire::serve(
        listener,
        state.clone(),
        tls,
    ))))
}

/// Opens the data dir and serves on an already bound listener until `shutdown` completes.
pub async fn serve_on(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let data_dir = config.data_dir.clone();
    let state = tokio::task::spawn_blocking(move || AppState::open(config))
        .await
        .map_err(|e| StartupError(e.to_string()))?
        .map_err(|e| {
            StartupError(format!(
                "cannot open the data dir {}: {e:?}",
                data_dir.display()
            ))
        })?;
    state.audit.spawn_writer();
    if state.config.metrics_enabled {
        // Blocking: reads the DuckDB version once for `duckdb_api_service_info`.
        let _ = tokio::task::spawn_blocking(telemetry::install).await;
    }
    spawn_cleaner(state.clone());
    let every = std::time::Duration::from_secs(state.config.health_check_interval_secs.max(1));
    state.health.clone().spawn_refresher(every);
    state
        .keys
        .usage
        .clone()
        .spawn_flusher(state.catalog.clone());
    let (usage, catalog) = (state.keys.usage.clone(), state.catalog.clone());
    let idempotency = state.idempotency.clone();
    let audit = state.audit.clone();
    let limits = server::Limits::from_config(&state.config);
    let wire = start_wire(&state).await?;
    let app = api::router(state);
    let addr = listener
        .local_addr()
        .map_err(|e| StartupError(e.to_string()))?;
    tracing::info!(%addr, "duckbank listening");
    server::serve(listener, app, limits, shutdown).await;
    if let Some(wire) = wire {
        wire.abort();
    }
    // Answers of the last keyed requests may still be on their way to the catalog.
    idempotency.drain(std::time::Duration::from_secs(10)).await;
    // Uses not yet written would otherwise be lost with the process.
    let _ = tokio::task::spawn_blocking(move || usage.flush(&catalog)).await;
    // Every request has been answered: its audit entry is in the channel; write them all.
    audit.flush().await;
    Ok(())
}
