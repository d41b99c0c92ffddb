//! Bulk table work (imports, exports, profiles, schema rebuilds) on a fixed pool of OS threads
//! running at a lower CPU priority, so interactive reads and health checks stay fast meanwhile.
//! Waiting work is admitted fairly across projects, and dropped if its client goes away.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::fair::FairSlots;
use crate::error::{ApiError, ApiResult};
use crate::names::ProjectId;

type Task = Box<dyn FnOnce() + Send>;

pub struct BulkPool {
    sender: mpsc::Sender<Task>,
    /// One slot per thread: work is handed to the threads only once it has a slot, so the
    /// channel never queues and the order of work is decided by the fair admission alone.
    slots: Arc<FairSlots>,
}

/// How much lower bulk threads run than request threads (`nice` 10: under contention they
/// get roughly a tenth of the CPU a normal thread gets; idle cores are still theirs).
const NICENESS: i32 = 10;

impl BulkPool {
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Task>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("duckbank-bulk-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let task = match receiver.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match task {
                            Ok(task) => task(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self {
            sender,
            slots: FairSlots::new(threads.max(1)),
        })
    }

    /// Runs `f`, work of `project`, on a bulk thread while holding `guard` (moved into the
    /// task, so a client that disconnects cannot release the lock while the work runs). While
    /// it waits for a thread, dropping this future (the client went away) drops the work.
    pub async fn run<G: Send + 'static, T: Send + 'static>(
        &self,
        project: &ProjectId,
        guard: G,
        f: impl FnOnce() -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let slot = self.slots.acquire(project.as_str()).await;
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

/// Raises this thread's nice value. Linux applies it per thread, hence the thread id rather
/// than the process id. Best effort: failure only leaves the normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICENESS).is_err() {
        tracing::debug!("could not lower the priority of a bulk thread");
    }
}
