//! The server's health as last checked in the background: data dir layout, catalog reachable,
//! data dir writable and free space. `/health` and `/readyz` read it and do no disk or DuckDB work.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;

use crate::catalog::Catalog;
use crate::state::DATA_SUBDIRS;

/// One round of checks.
#[derive(Debug, Clone)]
pub struct HealthSnapshot {
    /// The reference's named checks (`data_dir`, `duckdb_dir`, …, `metadata_db`) in order.
    pub checks: Vec<(String, bool)>,
    /// Whether a probe file could be written into the data dir (the OS error otherwise).
    pub writable: Result<(), String>,
    /// Free bytes in the data dir's filesystem (the OS error otherwise).
    pub free_bytes: Result<u64, String>,
    pub checked_at: DateTime<Utc>,
    /// Stored bytes and open upload sessions for `/metrics` (`None` when the catalog failed).
    pub sizes: Option<StorageSizes>,
}

/// What `/metrics` reports about storage, measured here so a scrape touches no disk.
#[derive(Debug, Clone, Copy)]
pub struct StorageSizes {
    /// `metadata.duckdb` and its WAL.
    pub metadata: u64,
    /// File contents, each stored content once.
    pub files: u64,
    pub upload_sessions: u64,
}

impl HealthSnapshot {
    /// The names of the reference checks that failed.
    pub fn failed(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// Holds the latest snapshot; `refresh` replaces it.
pub struct HealthMonitor {
    data_dir: PathBuf,
    catalog: Arc<Catalog>,
    latest: RwLock<Arc<HealthSnapshot>>,
}

impl HealthMonitor {
    /// Blocking: runs the first round of checks so the first probe already has an answer.
    pub fn new(data_dir: PathBuf, catalog: Arc<Catalog>) -> Self {
        let first = check(&data_dir, &catalog);
        Self {
            data_dir,
            catalog,
            latest: RwLock::new(Arc::new(first)),
        }
    }

    pub fn latest(&self) -> Arc<HealthSnapshot> {
        self.latest.read().clone()
    }

    /// Blocking: runs the checks again and publishes the result.
    pub fn refresh(&self) {
        let next = Arc::new(check(&self.data_dir, &self.catalog));
        *self.latest.write() = next;
    }

    /// Refreshes every `every` on the blocking pool, for the life of the runtime.
    pub fn spawn_refresher(self: Arc<Self>, every: Duration) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate; `new` already checked
            loop {
                tick.tick().await;
                let monitor = self.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || monitor.refresh()).await {
                    tracing::warn!(error = %e, "health check failed to run");
                }
            }
        });
    }
}

fn check(data_dir: &Path, catalog: &Catalog) -> HealthSnapshot {
    let mut checks = vec![("data_dir".to_string(), data_dir.is_dir())];
    for sub in DATA_SUBDIRS {
        checks.push((format!("{sub}_dir"), data_dir.join(sub).is_dir()));
    }
    checks.push(("metadata_db".to_string(), catalog.ping()));
    HealthSnapshot {
        checks,
        writable: probe_write(data_dir),
        free_bytes: crate::files::disk::available_space(data_dir).map_err(|e| e.to_string()),
        checked_at: Utc::now(),
        sizes: sizes(data_dir, catalog),
    }
}

fn sizes(data_dir: &Path, catalog: &Catalog) -> Option<StorageSizes> {
    let len = |name: &str| std::fs::metadata(data_dir.join(name)).map_or(0, |m| m.len());
    let (files, upload_sessions) = catalog
        .storage_figures()
        .inspect_err(|e| tracing::warn!(error = %e, "storage figures for metrics failed"))
        .ok()?;
    Some(StorageSizes {
        metadata: len("metadata.duckdb") + len("metadata.duckdb.wal"),
        files,
        upload_sessions,
    })
}

/// Writes and removes a small file: the only way to know the disk accepts writes (a full or
/// read-only filesystem, a lost mount, wrong permissions all show here).
fn probe_write(data_dir: &Path) -> Result<(), String> {
    let probe = data_dir.join(format!(".health-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&probe, b"ok").map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
