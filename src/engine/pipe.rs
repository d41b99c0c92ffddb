//! Receiving DuckDB's `COPY … TO` output through a named pipe (FIFO): the bytes DuckDB's own
//! writers produce reach us as they are written, with no file holding them on disk.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{ApiError, ApiResult};

/// A FIFO at a path in the work directory, removed on drop.
pub struct Fifo<'p> {
    path: &'p Path,
}

impl<'p> Fifo<'p> {
    pub fn create(path: &'p Path) -> ApiResult<Self> {
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| ApiError::internal("work path with a NUL byte"))?;
        // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
        if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
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
                    if !readable(&pipe, if finished { 0 } else { 5 }) {
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

/// Whether the pipe has data within `timeout_ms`.
fn readable(pipe: &std::fs::File, timeout_ms: i32) -> bool {
    let mut fd = libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut fd, 1, timeout_ms) };
    n > 0 && fd.revents & libc::POLLIN != 0
}

/// A 1 MiB pipe buffer (the unprivileged maximum) instead of 64 KiB: fewer wake-ups.
fn enlarge(pipe: &std::fs::File) {
    // SAFETY: F_SETPIPE_SZ on a pipe fd we own; failure only leaves the default size.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}
