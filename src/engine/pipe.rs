//! Receiving DuckDB's `COPY … TO` output through a named pipe (FIFO): the bytes DuckDB's own
//! writers produce reach us as they are written, with no file holding them on disk.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::Mode;

use crate::error::{ApiError, ApiResult};

/// How long the reader waits for data while `copy` still runs, before it checks again
/// whether `copy` has returned.
const WAIT: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 5_000_000,
};
/// Once `copy` has returned, the pipe is only drained: no waiting.
const NO_WAIT: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// A FIFO at a path in the work directory, removed on drop.
pub struct Fifo<'p> {
    path: &'p Path,
}

impl<'p> Fifo<'p> {
    pub fn create(path: &'p Path) -> ApiResult<Self> {
        // Owner read/write only (the umask may narrow it further, as with any mkfifo).
        rustix::fs::mkfifoat(rustix::fs::CWD, path, Mode::RUSR | Mode::WUSR)
            .map_err(std::io::Error::from)?;
        Ok(Self { path })
    }

    /// Runs `copy` (which makes DuckDB write into the pipe) while `sink` receives what it
    /// writes. `sink` returns false to stop early (the client left): the pipe is closed and
    /// DuckDB's next write fails, ending `copy`.
    pub fn pump<T>(
        &self,
        copy: impl FnOnce() -> ApiResult<T>,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<bool> + Send,
    ) -> ApiResult<(T, bool)> {
        // Opened read-write: that never blocks, and DuckDB's own open for writing then finds
        // a reader at once. The flip side is that we never see end-of-file (we hold a write
        // end ourselves), so the end is "copy returned and the pipe is empty".
        let mut pipe = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path)?;
        enlarge(&pipe);
        let done = AtomicBool::new(false);
        let done_flag = &done;
        std::thread::scope(|scope| {
            // The reader owns the pipe: when it stops early, the pipe closes with it.
            let reader = scope.spawn(move || -> std::io::Result<bool> {
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    // Everything DuckDB wrote before `copy` returned is in the pipe already,
                    // so once it has returned an empty pipe means the end.
                    let finished = done_flag.load(Ordering::Acquire);
                    if !readable(&pipe, if finished { &NO_WAIT } else { &WAIT }) {
                        if finished {
                            return Ok(true);
                        }
                        continue;
                    }
                    let n = pipe.read(&mut buf)?;
                    if !sink(&buf[..n])? {
                        return Ok(false);
                    }
                }
            });
            let copied = copy();
            done.store(true, Ordering::Release);
            let complete = reader
                .join()
                .map_err(|_| ApiError::internal("pipe reader panicked"))??;
            Ok((copied?, complete))
        })
    }
}

impl Drop for Fifo<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path);
    }
}

/// Whether the pipe has data within `timeout`. An interrupted or failed poll counts as "no
/// data yet": the caller simply asks again.
fn readable(pipe: &std::fs::File, timeout: &Timespec) -> bool {
    let mut fds = [PollFd::new(pipe, PollFlags::IN)];
    matches!(rustix::event::poll(&mut fds, Some(timeout)), Ok(n) if n > 0)
        && fds[0].revents().contains(PollFlags::IN)
}

/// A 1 MiB pipe buffer (the unprivileged maximum) instead of 64 KiB: fewer wake-ups.
/// Failure (e.g. a lower `/proc/sys/fs/pipe-max-size`) only leaves the default size.
fn enlarge(pipe: &std::fs::File) {
    let _ = rustix::pipe::fcntl_setpipe_size(pipe, 1 << 20);
}
