//! The audit log's write path and reads: entries go through a bounded channel to one writer task
//! that appends them in batches off the request path, and a flush makes them durable at shutdown.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::catalog::audit::{AuditEntry, AuditQuery};
use crate::catalog::Catalog;
use crate::error::ApiResult;

/// Entries waiting for the writer at most; a request that finds the channel full waits for room
/// (the trail is never thinned to keep requests fast).
const CHANNEL_CAPACITY: usize = 4096;
/// Entries written in one catalog transaction at most.
const BATCH: usize = 512;
/// Entries kept for a retry after failed writes (the catalog unwritable); beyond it the oldest
/// are dropped with an error log, so a broken catalog cannot exhaust memory.
const MAX_UNWRITTEN: usize = 100_000;
/// How soon a failed write is tried again when no new entry arrives.
const RETRY_EVERY: Duration = Duration::from_secs(5);

enum Message {
    Entry(Box<AuditEntry>),
    /// Answered once every entry sent before it has been written (or has failed to be).
    Flush(oneshot::Sender<()>),
}

pub struct AuditLog {
    catalog: Arc<Catalog>,
    tx: mpsc::Sender<Message>,
    /// Taken by `spawn_writer`.
    rx: Mutex<Option<mpsc::Receiver<Message>>>,
}

impl AuditLog {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        Self {
            catalog,
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    /// Hands `entry` to the writer; waits only while the channel is full.
    pub async fn record(&self, entry: AuditEntry) {
        if self.tx.send(Message::Entry(Box::new(entry))).await.is_err() {
            tracing::error!("audit writer is not running; an audit entry was not stored");
        }
    }

    /// Waits until every entry recorded before this call has been written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Starts the writer task (once; later calls do nothing).
    pub fn spawn_writer(&self) {
        let Some(rx) = self.rx.lock().take() else {
            return;
        };
        tokio::spawn(write_loop(self.catalog.clone(), rx));
    }

    /// The entries `q` selects, newest first.
    pub async fn entries(&self, q: AuditQuery) -> ApiResult<Vec<AuditEntry>> {
        let catalog = self.catalog.clone();
        crate::service::blocking(move || catalog.audit_entries(&q)).await
    }

    /// Deletes entries older than `days` days; `0` keeps them forever.
    pub async fn purge(&self, days: u32) -> ApiResult<usize> {
        if days == 0 {
            return Ok(0);
        }
        let before = crate::catalog::now() - chrono::Duration::days(i64::from(days));
        let catalog = self.catalog.clone();
        crate::service::blocking(move || catalog.purge_audit_entries(before)).await
    }
}

async fn write_loop(catalog: Arc<Catalog>, mut rx: mpsc::Receiver<Message>) {
    let mut unwritten: VecDeque<AuditEntry> = VecDeque::new();
    let mut messages = Vec::with_capacity(BATCH);
    loop {
        messages.clear();
        let received = if unwritten.is_empty() {
            rx.recv_many(&mut messages, BATCH).await
        } else {
            match tokio::time::timeout(RETRY_EVERY, rx.recv_many(&mut messages, BATCH)).await {
                Ok(n) => n,
                Err(_) => usize::MAX, // time to retry what failed
            }
        };
        if received == 0 {
            // Every sender is gone: write what is left and stop.
            write(&catalog, &mut unwritten).await;
            return;
        }
        let mut waiting = Vec::new();
        for message in messages.drain(..) {
            match message {
                Message::Entry(entry) => unwritten.push_back(*entry),
                Message::Flush(done) => waiting.push(done),
            }
        }
        write(&catalog, &mut unwritten).await;
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// Writes `unwritten` in batches; what fails stays for the next round (at most MAX_UNWRITTEN).
async fn write(catalog: &Arc<Catalog>, unwritten: &mut VecDeque<AuditEntry>) {
    while !unwritten.is_empty() {
        let batch: Vec<AuditEntry> = unwritten
            .drain(..unwritten.len().min(BATCH))
            .collect::<Vec<_>>();
        let (catalog, batch) = (catalog.clone(), Arc::new(batch));
        let written = {
            let batch = batch.clone();
            tokio::task::spawn_blocking(move || catalog.insert_audit_entries(&batch)).await
        };
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, entries = batch.len(), "could not store audit entries");
                keep_for_retry(unwritten, &batch);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, entries = batch.len(), "audit write task failed");
                keep_for_retry(unwritten, &batch);
                return;
            }
        }
    }
}

fn keep_for_retry(unwritten: &mut VecDeque<AuditEntry>, batch: &[AuditEntry]) {
    for entry in batch.iter().rev() {
        unwritten.push_front(entry.clone());
    }
    let excess = unwritten.len().saturating_sub(MAX_UNWRITTEN);
    if excess > 0 {
        tracing::error!(
            dropped = excess,
            "audit entries dropped: the catalog has refused writes for too long"
        );
        unwritten.drain(..excess);
    }
}
