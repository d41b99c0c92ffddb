//! Bulk table work (imports, exports, profiles, schema rebuilds) on a fixed pool of OS threads
//! running at a lower CPU priority, so interactive reads and health checks stay fast meanwhile.
//! Waiting work is admitted fairly across projects, and dropped if its client goes away.

use std::sync::mpsc;
use std::sync::Arc;

use super::fair::{FairSlots, Slot};
use crate::error::{ApiError, ApiResult};
use crate::names::ProjectId;
use crate::workers::{spawn_low_priority, Job as Task};

/// A bulk thread reserved for one piece of work (see `BulkPool::reserve`).
pub struct Reserved(Slot);

pub struct BulkPool {
    sender: mpsc::Sender<Task>,
    /// One slot per thread: work is handed to the threads only once it has a slot, so the
    /// channel never queues and the order of work is decided by the fair admission alone.
    slots: Arc<FairSlots>,
}

impl BulkPool {
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Task>();
        spawn_low_priority("duckbank-bulk", threads, receiver)?;
        Ok(Self {
            sender,
            slots: FairSlots::new(threads.max(1)),
        })
    }

    /// Waits, fairly among projects, for a bulk thread for `project`'s work. Take it *before*
    /// the table's lock: a lock held while waiting for a thread would hold up every reader of
    /// the table for the whole wait (a queued import would freeze the table's previews). All
    /// callers take the two in this order, so none waits for a lock while another holds
    /// that lock and waits for a thread. Dropping the future (the client went away) leaves
    /// the queue.
    pub async fn reserve(&self, project: &ProjectId) -> Reserved {
        let waiting = crate::telemetry::QueueWait::start("bulk");
        let slot = self.slots.acquire(project.as_str()).await;
        waiting.admitted();
        Reserved(slot)
    }

    /// Runs `f` on the thread `reserved` holds, with `guard` (moved into the task, so a client
    /// that disconnects cannot release the lock while the work runs).
    pub async fn run<G: Send + 'static, T: Send + 'static>(
        &self,
        reserved: Reserved,
        guard: G,
        f: impl FnOnce() -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let slot = reserved.0;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move || {
            let _slot = slot;
            let _held = guard;
            // The request went away between getting its slot and starting: nobody waits for
            // the outcome, so the work is not started.
            if tx.is_closed() {
                tracing::debug!("bulk work dropped: its request has gone");
                return;
            }
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err(ApiError::internal("bulk task panicked")));
            let _ = tx.send(out);
        });
        self.sender
            .send(task)
            .map_err(|_| ApiError::internal("bulk pool stopped"))?;
        rx.await
            .map_err(|_| ApiError::internal("bulk task dropped"))?
    }
}
