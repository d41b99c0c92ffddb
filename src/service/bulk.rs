//! Bulk table work (imports, exports, profiles, schema rebuilds) on a fixed pool of OS threads
//! running at a lower CPU priority, so interactive reads and health checks stay fast meanwhile.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use crate::error::{ApiError, ApiResult};

type Task = Box<dyn FnOnce() + Send>;

pub struct BulkPool {
    sender: mpsc::Sender<Task>,
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
        Ok(Self { sender })
    }

    /// Runs `f` on a bulk thread while holding `guard` (moved into the task, so a client that
    /// disconnects cannot release the lock while the work runs).
    pub async fn run<G: Send + 'static, T: Send + 'static>(
        &self,
        guard: G,
        f: impl FnOnce() -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move || {
            let _held = guard;
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
