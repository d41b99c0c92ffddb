//! Streams a request body into a temp file while computing its SHA-256, with bounded memory:
//! batches are hashed and written by short blocking calls, so a slow client holds no thread.

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
    /// Bytes the project may still store (PROJECT_QUOTA_BYTES); more ends in 507 at once.
    pub quota_room: Option<u64>,
    /// Free space the volume must keep (MIN_FREE_BYTES), checked before every write, so a
    /// body of unknown length stops with 507 when the disk runs short, not when it is full.
    pub min_free_bytes: Option<u64>,
}

/// Received bytes are written in batches of about this size: one short blocking call per
/// batch, never a thread held while the client is slow to send the next bytes.
const WRITE_BATCH: usize = 1024 * 1024;

/// Receives `body` into a new temp file in `tmp_dir`.
/// On any error (client gone, too large, disk full, quota) and when the caller's future is
/// dropped, the temp file is removed.
pub async fn spool<S, E>(tmp_dir: &Path, body: S, limits: SpoolLimits) -> ApiResult<Spooled>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let path = tmp_dir.join(format!("upload-{}.part", uuid::Uuid::new_v4().simple()));
    // Owns the path from here on: every way out below (an error, a dropped future) removes it.
    let mut spooled = Spooled::from_parts(path.clone(), String::new(), 0);
    let create = path.clone();
    let file = tokio::task::spawn_blocking(move || {
        std::fs::File::create(&create).at_path("creating spool file", &create)
    })
    .await??;
    let (sha256, size) = write_body(file, tmp_dir, body, limits, true).await?;
    spooled.sha256 = sha256.unwrap_or_default();
    spooled.size = size;
    Ok(spooled)
}

/// Writes `body` to `file` from its current position, within `limits` (free space measured on
/// `dir`'s volume), then syncs the file's data. Returns the body's SHA-256 (hex; when `hash`)
/// and size. The caller owns the file: on an error, what was written stays for it to discard.
pub async fn write_body<S, E>(
    file: std::fs::File,
    dir: &Path,
    mut body: S,
    limits: SpoolLimits,
    hash: bool,
) -> ApiResult<(Option<String>, u64)>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut writer = BatchWriter::new(Writer {
        file,
        hasher: hash.then(Sha256::new),
        dir: dir.to_path_buf(),
        min_free_bytes: limits.min_free_bytes,
    });
    let cap = match (limits.max_bytes, limits.exact_size) {
        (Some(m), Some(e)) => Some(m.min(e)),
        (m, e) => m.or(e),
    };
    let mut size = 0u64;
    let mut batch = Vec::new();
    let mut batch_len = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the upload failed: {e}")))?;
        size += chunk.len() as u64;
        check_size(size, cap, limits)?;
        batch_len += chunk.len();
        batch.push(chunk);
        if batch_len >= WRITE_BATCH {
            writer.submit(std::mem::take(&mut batch)).await?;
            batch_len = 0;
        }
    }
    if let Some(exact) = limits.exact_size {
        if size != exact {
            return Err(ApiError::bad_request(format!(
                "body has {size} bytes but {exact} were announced"
            )));
        }
    }
    writer.submit(batch).await?;
    Ok((writer.finish().await?, size))
}

/// The size checks made as each chunk arrives: MAX_FILE_BYTES or the announced size (413 or
/// 400), then the project's quota (507).
fn check_size(size: u64, cap: Option<u64>, limits: SpoolLimits) -> ApiResult<()> {
    if let Some(cap) = cap.filter(|cap| size > *cap) {
        return Err(match limits.exact_size {
            Some(exact) if exact < limits.max_bytes.unwrap_or(u64::MAX) => ApiError::bad_request(
                format!("body is larger than the announced {exact} bytes"),
            ),
            _ => ApiError::new(
                ErrorCode::FileTooLarge,
                format!(
                    "file is larger than the limit of {cap} bytes (MAX_FILE_BYTES, or the storage backend's object limit)"
                ),
            ),
        });
    }
    if let Some(room) = limits.quota_room.filter(|room| size > *room) {
        return Err(quota_passed(room));
    }
    Ok(())
}

/// 507 for an upload larger than the `room` its project has left.
pub fn quota_passed(room: u64) -> ApiError {
    ApiError::new(
        ErrorCode::QuotaExceeded,
        format!("the upload is larger than the {room} bytes its project may still store (PROJECT_QUOTA_BYTES)"),
    )
    .with_details(serde_json::json!({ "quota_room_bytes": room }))
}

/// The open spool file and the hash of what it holds; moved onto a blocking thread for each
/// batch and back.
struct Writer {
    file: std::fs::File,
    hasher: Option<Sha256>,
    dir: PathBuf,
    min_free_bytes: Option<u64>,
}

impl Writer {
    fn write(mut self, batch: Vec<Bytes>) -> ApiResult<Self> {
        let len: usize = batch.iter().map(Bytes::len).sum();
        if let Some(reserve) = self.min_free_bytes {
            let free = crate::files::disk::available_space(&self.dir)?;
            let needed = reserve.saturating_add(len as u64);
            if free < needed {
                return Err(ApiError::new(
                    ErrorCode::InsufficientStorage,
                    format!(
                        "not enough free space: {free} bytes free, {needed} needed (next part of the upload + MIN_FREE_BYTES)"
                    ),
                )
                .with_details(serde_json::json!({ "free_bytes": free, "needed_bytes": needed })));
            }
        }
        for chunk in &batch {
            if let Some(hasher) = &mut self.hasher {
                hasher.update(chunk);
            }
            self.file.write_all(chunk).map_err(disk_error)?;
        }
        Ok(self)
    }
}

/// One batch being written while the next one is received: the disk and the network overlap,
/// and at most two batches per upload are in memory.
struct BatchWriter {
    idle: Option<Writer>,
    busy: Option<tokio::task::JoinHandle<ApiResult<Writer>>>,
}

impl BatchWriter {
    fn new(writer: Writer) -> Self {
        Self {
            idle: Some(writer),
            busy: None,
        }
    }

    async fn take(&mut self) -> ApiResult<Writer> {
        if let Some(handle) = self.busy.take() {
            return handle.await?;
        }
        self.idle
            .take()
            .ok_or_else(|| ApiError::internal("spool writer used after a failure"))
    }

    async fn submit(&mut self, batch: Vec<Bytes>) -> ApiResult<()> {
        let writer = self.take().await?;
        if batch.is_empty() {
            self.idle = Some(writer);
        } else {
            self.busy = Some(tokio::task::spawn_blocking(move || writer.write(batch)));
        }
        Ok(())
    }

    /// Waits for the last batch, fsyncs, and returns the SHA-256 (hex) of everything written,
    /// when hashing.
    async fn finish(mut self) -> ApiResult<Option<String>> {
        let writer = self.take().await?;
        tokio::task::spawn_blocking(move || {
            writer.file.sync_data().map_err(disk_error)?;
            Ok(writer.hasher.map(|h| hex::encode(h.finalize())))
        })
        .await?
    }
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
            ..SpoolLimits::default()
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
            exact_size: Some(20),
            ..SpoolLimits::default()
        };
        let err = spool(dir.path(), body(&[b"short"]), limits)
            .await
            .err()
            .unwrap();
        assert_eq!(err.status(), 400);
    }
}
