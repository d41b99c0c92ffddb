//! Named OS worker threads at a lower CPU priority (`nice` 10) serving one job channel.
//! The bulk pool and the key verification pool run on them, so requests get the CPU first.

use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

/// A unit of work for the threads.
pub type Job = Box<dyn FnOnce() + Send>;

/// How much lower workers run than request threads (`nice` 10: under contention they get
/// roughly a tenth of the CPU a normal thread gets; idle cores are still theirs).
const NICENESS: i32 = 10;

/// Starts `threads` (at least one) threads named `<name>-<i>` that run the jobs of
/// `receiver` one after another until every sender is dropped.
pub fn spawn_low_priority(
    name: &str,
    threads: usize,
    receiver: Receiver<Job>,
) -> std::io::Result<()> {
    let receiver = Arc::new(Mutex::new(receiver));
    for i in 0..threads.max(1) {
        let receiver = receiver.clone();
        std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || {
                lower_priority();
                loop {
                    let job = match receiver.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })?;
    }
    Ok(())
}

/// Raises this thread's nice value. Linux applies it per thread, hence the thread id rather
/// than the process id. Best effort: failure only leaves the normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICENESS).is_err() {
        tracing::debug!("could not lower the priority of a worker thread");
    }
}
