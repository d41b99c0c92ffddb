//! When each key was last used: recorded in memory on every authenticated request and written
//! to the catalog in one batch now and then, so a request never waits for a catalog write.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::catalog::{Catalog, KeyRecord};
use crate::names::ProjectId;

/// How often pending uses are written to the catalog.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct KeyUsage {
    /// key id → (project, last use) not yet written.
    pending: Mutex<HashMap<String, (ProjectId, DateTime<Utc>)>>,
}

impl KeyUsage {
    /// Notes that `key` authenticated a request now.
    pub fn touch(&self, key: &KeyRecord) {
        let now = crate::catalog::now();
        let mut pending = self.pending.lock();
        match pending.get_mut(&key.id) {
            Some((_, at)) => *at = now,
            None => {
                pending.insert(key.id.clone(), (key.grant.project.clone(), now));
            }
        }
    }

    /// The key's last use, whether written yet or not.
    pub fn last_used(&self, key: &KeyRecord) -> Option<DateTime<Utc>> {
        let pending = self.pending.lock().get(&key.id).map(|(_, at)| *at);
        pending.max(key.last_used_at)
    }

    /// Writes every pending use in one catalog transaction (blocking). Uses that could not be
    /// written stay pending for the next round.
    pub fn flush(&self, catalog: &Catalog) {
        let batch: Vec<_> = {
            let mut pending = self.pending.lock();
            pending
                .drain()
                .map(|(id, (project, at))| (project, id, at))
                .collect()
        };
        if batch.is_empty() {
            return;
        }
        if let Err(e) = catalog.record_key_use(&batch) {
            tracing::warn!(error = %e, keys = batch.len(), "could not record key use");
            let mut pending = self.pending.lock();
            for (project, id, at) in batch {
                pending.entry(id).or_insert((project, at));
            }
        }
    }

    /// Flushes every `FLUSH_EVERY` on a blocking thread, for as long as the runtime runs.
    pub fn spawn_flusher(self: Arc<Self>, catalog: Arc<Catalog>) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let (usage, catalog) = (self.clone(), catalog.clone());
                let _ = tokio::task::spawn_blocking(move || usage.flush(&catalog)).await;
            }
        });
    }
}
