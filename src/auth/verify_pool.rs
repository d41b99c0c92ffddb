//! Where argon2 verifications run: a few dedicated low-priority threads behind a short queue.
//! A full queue refuses at once, so unverified callers can never take more CPU or memory than this.

use std::sync::mpsc::{self, SyncSender, TrySendError};

use crate::workers::{spawn_low_priority, Job};

/// A fixed set of verification threads and a bounded queue in front of them.
///
/// Each argon2 run takes tens of milliseconds of CPU and 19 MiB of memory, and anyone can ask
/// for one by sending a key shaped like a project's. On the shared blocking pool (512 threads)
/// a flood ran hundreds at once: gigabytes of memory and every core busy. Here at most
/// `threads` run, at most `queue` wait, and the rest are refused before any work is done.
pub struct VerifyPool {
    sender: SyncSender<Job>,
}

/// The queue is full: the caller answers 429 with `Retry-After`.
#[derive(Debug)]
pub struct Busy;

impl VerifyPool {
    pub fn new(threads: usize, queue: usize) -> std::io::Result<Self> {
        // Verification threads run below request threads, like bulk work: under a flood the
        // cores go to requests with verified keys first.
        let (sender, receiver) = mpsc::sync_channel::<Job>(queue);
        spawn_low_priority("duckbank-keys", threads, receiver)?;
        Ok(Self { sender })
    }

    /// Runs `f` on a verification thread. `Err(Busy)` at once when the queue is full;
    /// `Ok(None)` if the work was lost (a panic). A queued job whose caller went away (the
    /// client disconnected) is skipped, so abandoned guesses cost nothing.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Option<T>, Busy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if tx.is_closed() {
                return;
            }
            if let Ok(out) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                let _ = tx.send(out);
            }
        });
        match self.sender.try_send(job) {
            Ok(()) => Ok(rx.await.ok()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[tokio::test]
    async fn runs_work_and_refuses_beyond_threads_plus_queue() {
        let pool = VerifyPool::new(1, 1).unwrap();
        assert_eq!(pool.run(|| 7).await.unwrap(), Some(7));

        // One job holds the thread, one waits in the queue: the third is refused at once.
        let (release, gate) = channel::<()>();
        let (started_tx, started) = channel::<()>();
        let holder = pool.run(move || {
            let _ = started_tx.send(());
            let _ = gate.recv();
            1
        });
        tokio::pin!(holder);
        assert!(futures_util::poll!(&mut holder).is_pending());
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        let queued = pool.run(|| 2);
        tokio::pin!(queued);
        assert!(futures_util::poll!(&mut queued).is_pending());
        assert!(matches!(pool.run(|| 3).now_or_never(), Some(Err(Busy))));
        release.send(()).unwrap();
        assert_eq!(holder.await.unwrap(), Some(1));
        assert_eq!(queued.await.unwrap(), Some(2));
    }
}
