//! Streams a request body into a temp file while computing its SHA-256, with bounded memory:
//! a bounded channel feeds one blocking writer thread that hashes, writes and fsyncs.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult, ErrorCode, IoContext};

/// A fully received, fsynced temp file. Dropping it removes the file unless it was taken.
pub struct Spooled {
    path: Option<PathBuf>,
    pub sha256: String,
    pub size: u64,
}

impl Spooled {
    /// Wraps a complete, fsynced file this process wrote (an assembled upload).
    pub fn from_parts(path: PathBuf, sha256: String, size: u64) -> Self {
        Self {
            path: Some(path),
            sha256,
            size,
        }
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Hands the file over to a new owner (after a rename, say); it is no longer removed.
    pub fn take_path(mut self) -> PathBuf {
        self.path.take().unwrap_or_default()
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Limits checked while the body streams in.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpoolLimits {
    /// Refuse bodies larger than this (413); `None` = unlimited.
    pub max_bytes: Option<u64>,
    /// When the client announced the size (chunk sizes, prepared uploads), it must match.
    pub exact_size: Option<u64>,
}

enum Msg {
    Data(Bytes),
    Finish,
}

/// Receives `body` into a new temp file in `tmp_dir`.
/// On any error (client gone, too large, disk full) the temp file is removed.
pub async fn spool<S, E>(tmp_dir: &Path, mut body: S, limits: SpoolLimits) -> ApiResult<Spooled>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let path = tmp_dir.join(format!("upload-{}.part", uuid::Uuid::new_v4().simple()));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(16);
    let writer_path = path.clone();
    let writer = tokio::task::spawn_blocking(move || -> ApiResult<Option<(String, u64)>> {
        let file =
            std::fs::File::create(&writer_path).at_path("creating spool file", &writer_path)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                Msg::Data(chunk) => {
                    hasher.update(&chunk);
                    out.write_all(&chunk).map_err(disk_error)?;
                    size += chunk.len() as u64;
                }
                Msg::Finish => {
                    let file = out.into_inner().map_err(|e| disk_error(e.into_error()))?;
                    file.sync_all().map_err(disk_error)?;
                    return Ok(Some((hex::encode(hasher.finalize()), size)));
                }
            }
        }
        // The sender went away without Finish: the upload was abandoned.
        Ok(None)
    });

    let received = forward(&mut body, &tx, limits).await;
    let outcome = match received {
        Ok(()) => {
            let _ = tx.send(Msg::Finish).await;
            drop(tx);
            writer.await?
        }
        Err(e) => {
            drop(tx);
            let _ = writer.await;
            Err(e)
        }
    };
    match outcome {
        Ok(Some((sha256, size))) => Ok(Spooled {
            path: Some(path),
            sha256,
            size,
        }),
        Ok(None) => {
            let _ = std::fs::remove_file(&path);
            Err(ApiError::bad_request(
                "upload ended before the body was complete",
            ))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

async fn forward<S, E>(
    body: &mut S,
    tx: &tokio::sync::mpsc::Sender<Msg>,
    limits: SpoolLimits,
) -> ApiResult<()>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let cap = match (limits.max_bytes, limits.exact_size) {
        (Some(m), Some(e)) => Some(m.min(e)),
        (m, e) => m.or(e),
    };
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the upload failed: {e}")))?;
        size += chunk.len() as u64;
        if let Some(cap) = cap {
            if size > cap {
                return Err(match limits.exact_size {
                    Some(exact) if exact < limits.max_bytes.unwrap_or(u64::MAX) => {
                        ApiError::bad_request(format!(
                            "body is larger than the announced {exact} bytes"
                        ))
                    }
                    _ => ApiError::new(
                        ErrorCode::FileTooLarge,
                        format!(
                            "file is larger than the limit of {cap} bytes (MAX_FILE_BYTES, or the storage backend's object limit)"
                        ),
                    ),
                });
            }
        }
        if tx.send(Msg::Data(chunk)).await.is_err() {
            // The writer stopped early: its own error is reported by the caller.
            return Ok(());
        }
    }
    if let Some(exact) = limits.exact_size {
        if size != exact {
            return Err(ApiError::bad_request(format!(
                "body has {size} bytes but {exact} were announced"
            )));
        }
    }
    Ok(())
}

/// A full disk is the client's 507, any other write failure is ours.
pub fn disk_error(e: std::io::Error) -> ApiError {
    if e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull {
        ApiError::new(ErrorCode::InsufficientStorage, "the storage volume is full")
    } else {
        ApiError::internal_from("writing an upload", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn spools_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(
            dir.path(),
            body(&[b"hello ", b"world"]),
            SpoolLimits::default(),
        )
        .await
        .unwrap();
        assert_eq!(s.size, 11);
        assert_eq!(
            s.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(std::fs::read(s.path()).unwrap(), b"hello world");
        let p = s.path().to_path_buf();
        drop(s);
        assert!(!p.exists(), "dropping removes the temp file");
    }

    #[tokio::test]
    async fn refuses_bodies_over_the_limit_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let limits = SpoolLimits {
            max_bytes: Some(5),
            exact_size: None,
        };
        let err = spool(dir.path(), body(&[b"hello ", b"world"]), limits)
            .await
            .err()
            .unwrap();
        assert_eq!(err.status(), 413);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_failing_body_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let failing = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"part")),
            Err(std::io::Error::other("client went away")),
        ]);
        assert!(spool(dir.path(), failing, SpoolLimits::default())
            .await
            .is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn announced_sizes_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let limits = SpoolLimits {
            max_bytes: None,
            exact_size: Some(20),
        };
        let err = spool(dir.path(), body(&[b"short"]), limits)
            .await
            .err()
            .unwrap();
        assert_eq!(err.status(), 400);
    }
}
