//! Sending a finished snapshot file to a client that reads at its own pace: no lock is held,
//! a reader that stops for too long or loses access to the table has its stream ended.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::io::AsyncReadExt;

use crate::error::ApiResult;
use crate::files::spool::Spooled;

/// Bytes read from the snapshot per chunk sent.
const CHUNK: usize = 256 * 1024;
/// Chunks read ahead of the client at most (the rest waits on disk, not in memory).
const READ_AHEAD: usize = 4;
/// How often a sender blocked on a client that does not read checks the client's access.
const RECHECK: Duration = Duration::from_millis(200);

/// How a snapshot stream ended, seen by the body side.
#[derive(Default)]
struct Ending {
    /// Every byte was handed to the body.
    complete: AtomicBool,
    /// Access was lost or the client stalled: what is still queued must not be sent.
    aborted: AtomicBool,
}

/// Streams `snapshot` to the client and removes it. The file is unlinked at once (the open
/// handle keeps its bytes until the stream ends, so nothing is left on disk after a crash).
/// `allowed` is asked before every chunk and every `RECHECK` while the client does not read:
/// once it says no (the share was revoked, the link or table deleted) nothing more is sent.
/// A client that takes no chunk for `stall` loses the stream too, which frees the snapshot.
/// An ended stream yields an error, so HTTP cuts the body short instead of completing it.
pub async fn snapshot_stream(
    snapshot: Spooled,
    stall: Duration,
    allowed: impl Fn() -> bool + Send + Sync + 'static,
) -> ApiResult<impl Stream<Item = Result<Bytes, std::io::Error>>> {
    let mut file = tokio::fs::File::open(snapshot.path()).await?;
    drop(snapshot);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(READ_AHEAD);
    let ending = Arc::new(Ending::default());
    let producer = ending.clone();
    tokio::spawn(async move {
        let outcome = async {
            loop {
                let mut buf = BytesMut::with_capacity(CHUNK);
                while buf.len() < CHUNK {
                    if file.read_buf(&mut buf).await? == 0 {
                        break;
                    }
                }
                if buf.is_empty() {
                    return Ok(Sent::All);
                }
                let sent = send(&tx, buf.freeze(), stall, &allowed).await;
                if sent != Sent::Chunk {
                    return Ok(sent);
                }
            }
        };
        let outcome: std::io::Result<Sent> = outcome.await;
        match outcome {
            Ok(Sent::All) => producer.complete.store(true, Ordering::Release),
            Ok(Sent::ClientGone) => {}
            Ok(reason) => {
                tracing::info!(?reason, "streamed export ended before its end");
                producer.aborted.store(true, Ordering::Release);
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading an export snapshot failed");
                producer.aborted.store(true, Ordering::Release);
            }
        }
        // Dropping `tx` (and the file) here wakes the body side.
    });
    // The state is `None` once an error was yielded: the body ends there.
    Ok(futures_util::stream::unfold(
        Some((rx, ending)),
        |state| async move {
            let (mut rx, ending) = state?;
            let aborted = |e: &Ending| e.aborted.load(Ordering::Acquire);
            if aborted(&ending) {
                return Some((Err(cut_short()), None));
            }
            match rx.recv().await {
                // Checked again: the producer may have aborted while this chunk was queued.
                Some(_) if aborted(&ending) => Some((Err(cut_short()), None)),
                Some(chunk) => Some((Ok(chunk), Some((rx, ending)))),
                None if ending.complete.load(Ordering::Acquire) => None,
                None => Some((Err(cut_short()), None)),
            }
        },
    ))
}

#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Chunk,
    All,
    ClientGone,
    AccessLost,
    Stalled,
}

/// Waits for room for `chunk`, asking `allowed` every `RECHECK`, for `stall` at most.
async fn send(
    tx: &tokio::sync::mpsc::Sender<Bytes>,
    chunk: Bytes,
    stall: Duration,
    allowed: &impl Fn() -> bool,
) -> Sent {
    let deadline = Instant::now() + stall;
    loop {
        if !allowed() {
            return Sent::AccessLost;
        }
        match tokio::time::timeout(RECHECK, tx.reserve()).await {
            // Access may have gone while the client did not read.
            Ok(Ok(_)) if !allowed() => return Sent::AccessLost,
            Ok(Ok(permit)) => {
                permit.send(chunk);
                return Sent::Chunk;
            }
            Ok(Err(_)) => return Sent::ClientGone,
            Err(_) if Instant::now() >= deadline => return Sent::Stalled,
            Err(_) => {}
        }
    }
}

fn cut_short() -> std::io::Error {
    std::io::Error::other("the export stream was ended before its end")
}
