//! The accept loop: at most MAX_CONNECTIONS connections open (more wait in the listen backlog),
//! each served by `connection` with its timeouts, and a graceful shutdown that drains them.

pub mod body;
mod connection;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use connection::Timeouts;

use crate::config::Config;

/// How the loop serves: the connection cap and the timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub timeouts: Timeouts,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        Self {
            // Semaphore permits are handed out in u32 batches at shutdown.
            max_connections: config.max_connections.clamp(1, u32::MAX as usize >> 4),
            timeouts: Timeouts {
                header_read: secs(config.header_read_timeout_secs),
                idle: secs(config.idle_connection_timeout_secs),
                body_idle: secs(config.body_idle_timeout_secs),
            },
        }
    }
}

/// Accepts and serves connections until `shutdown` completes, then lets every open connection
/// finish its current request and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // A slot first, then accept: beyond the cap, connections wait in the kernel's backlog
        // and cost the process nothing (no descriptor, no task).
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors or memory, or a connection reset before we took it: none
                // of them may stop the server. Back off briefly so a persistent error does not
                // spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small responses go out at once instead of waiting for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let (app, stop) = (app.clone(), stop_rx.clone());
        tokio::spawn(async move {
            connection::serve(stream, peer, app, limits.timeouts, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot: having them all back means every connection is closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}
