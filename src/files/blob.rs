//! Content-addressed blob storage behind one trait: blobs are named by their SHA-256 and
//! written once. `LocalBlobStore` keeps them at `files/blobs/ab/cd/<sha256>`.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use std::io::{Read, Seek};

use super::is_sha256_hex;
use super::spool::Spooled;
use crate::engine::fsync_dir;
use crate::error::{ApiError, ApiResult, IoContext};

pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Where blob bytes live. Implementations must make `put` atomic: a blob is either
/// absent or complete, never partly visible.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync {
    /// The backend's name for health output and logs.
    fn name(&self) -> &'static str;
    /// The largest object this backend accepts, if it has a limit of its own.
    fn max_object_bytes(&self) -> Option<u64> {
        None
    }
    /// Stores a verified spool under its SHA-256; a no-op when that content is already stored.
    async fn put(&self, spooled: Spooled) -> ApiResult<()>;
    /// Streams `len` bytes starting at `offset`.
    async fn read(&self, sha256: &str, offset: u64, len: u64) -> ApiResult<ByteStream>;
    /// Removes a blob; removing a missing blob is not an error.
    async fn delete(&self, sha256: &str) -> ApiResult<()>;
    async fn exists(&self, sha256: &str) -> ApiResult<bool>;
    /// The blob as a file on this machine, when the backend keeps it as one.
    fn local_path(&self, _sha256: &str) -> Option<PathBuf> {
        None
    }
    /// Stored blobs not changed for `age`, as candidates for the cleaner's sweep of blobs no
    /// catalog row references; `None` when this backend is not swept (ADR 0023).
    async fn stale_blobs(&self, _age: Duration) -> ApiResult<Option<Vec<String>>> {
        Ok(None)
    }
}

pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// `root` is `DATA_DIR/files/blobs`.
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn path(&self, sha256: &str) -> ApiResult<PathBuf> {
        if !is_sha256_hex(sha256) {
            return Err(ApiError::internal(format!(
                "not a sha256 blob id: {sha256:?}"
            )));
        }
        Ok(self
            .root
            .join(&sha256[..2])
            .join(&sha256[2..4])
            .join(sha256))
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalBlobStore {
    fn local_path(&self, sha256: &str) -> Option<PathBuf> {
        self.path(sha256).ok()
    }

    fn name(&self) -> &'static str {
        "local"
    }

    async fn put(&self, spooled: Spooled) -> ApiResult<()> {
        let target = self.path(&spooled.sha256)?;
        tokio::task::spawn_blocking(move || -> ApiResult<()> {
            let dir = target.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).at_path("creating blob directory", dir)?;
            if target.exists() {
                // Same content already stored: dedup. Unlinking a large spool takes the
                // filesystem a while (freeing its blocks); nobody needs to wait for that.
                std::thread::spawn(move || drop(spooled));
                return Ok(());
            }
            // The spool is fsynced and on the same filesystem: rename publishes it atomically.
            let from = spooled.take_path();
            std::fs::rename(&from, &target).at_path("publishing blob", &target)?;
            fsync_dir(dir).at_path("syncing blob directory", dir)?;
            Ok(())
        })
        .await?
    }

    async fn read(&self, sha256: &str, offset: u64, len: u64) -> ApiResult<ByteStream> {
        let path = self.path(sha256)?;
        let sha = sha256.to_string();
        // Open (and seek) before answering, so a missing blob is an error, not a cut stream.
        let file = tokio::task::spawn_blocking(move || -> ApiResult<std::fs::File> {
            let mut file = std::fs::File::open(&path)
                .at_path(&format!("opening blob {sha} in the local store:"), &path)?;
            file.seek(SeekFrom::Start(offset))?;
            Ok(file)
        })
        .await??;
        Ok(stream_file(file, len))
    }

    async fn delete(&self, sha256: &str) -> ApiResult<()> {
        let path = self.path(sha256)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn exists(&self, sha256: &str) -> ApiResult<bool> {
        Ok(tokio::fs::try_exists(self.path(sha256)?).await?)
    }

    /// Walks `ab/cd/<sha256>`; anything else under the root is not ours to judge and is skipped.
    async fn stale_blobs(&self, age: Duration) -> ApiResult<Option<Vec<String>>> {
        let root = self.root.clone();
        let found = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for first in entries(&root) {
                for second in entries(&first.path()) {
                    for blob in entries(&second.path()) {
                        let name = blob.file_name().to_string_lossy().to_string();
                        let placed = is_sha256_hex(&name)
                            && first.file_name().to_string_lossy() == name[..2]
                            && second.file_name().to_string_lossy() == name[2..4];
                        if placed && blob.metadata().is_ok_and(|m| unchanged_for(&m, age)) {
                            out.push(name);
                        }
                    }
                }
            }
            out
        })
        .await?;
        Ok(Some(found))
    }
}

/// The entries of a directory; none when it cannot be read (missing, or not a directory).
fn entries(dir: &Path) -> impl Iterator<Item = std::fs::DirEntry> {
    std::fs::read_dir(dir).into_iter().flatten().flatten()
}

/// Whether a file's inode has not changed for `age`. The change time (not the modification
/// time) moves on every write, rename and new hard link, so a blob just stored or linked
/// for an import, or a spool still being written, counts as fresh.
pub fn unchanged_for(meta: &std::fs::Metadata, age: Duration) -> bool {
    use std::os::unix::fs::MetadataExt;
    let changed = std::time::UNIX_EPOCH
        + Duration::from_secs(meta.ctime().max(0) as u64)
        + Duration::from_nanos(meta.ctime_nsec().max(0) as u64);
    changed.elapsed().is_ok_and(|elapsed| elapsed > age)
}

/// Bytes per read when streaming a blob: what a download that stopped reading holds in memory.
const READ_CHUNK: usize = 256 * 1024;

/// Streams `len` bytes of an open file, one short blocking read per chunk and only when the
/// client has taken the previous one: a download whose client is slow or stopped reading
/// holds no thread (ADR 0020), and memory stays at one chunk per download.
fn stream_file(file: std::fs::File, len: u64) -> ByteStream {
    Box::pin(futures_util::stream::try_unfold(
        (Arc::new(file), len),
        next_chunk,
    ))
}

/// One step of `stream_file`: the next chunk and what remains after it.
async fn next_chunk(
    (file, remaining): (Arc<std::fs::File>, u64),
) -> std::io::Result<Option<(Bytes, (Arc<std::fs::File>, u64))>> {
    if remaining == 0 {
        return Ok(None);
    }
    let n = READ_CHUNK.min(usize::try_from(remaining).unwrap_or(READ_CHUNK));
    let reader = file.clone();
    let chunk = tokio::task::spawn_blocking(move || read_chunk(&reader, n))
        .await
        .map_err(std::io::Error::other)??;
    Ok(Some((chunk, (file, remaining - n as u64))))
}

/// The next `n` bytes at the file's position; a file shorter than its record is an error.
fn read_chunk(mut file: &std::fs::File, n: usize) -> std::io::Result<Bytes> {
    // read_to_end into spare capacity: no zeroing of the buffer first.
    let mut buf = Vec::with_capacity(n);
    let got = (&mut file).take(n as u64).read_to_end(&mut buf)?;
    if got < n {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("blob ended {} bytes early", n - got),
        ));
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stale_blobs_lists_only_placed_blobs_unchanged_for_the_age() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path().to_path_buf());
        let sha = "ab".repeat(32);
        let placed = dir.path().join("ab/ab").join(&sha);
        let misplaced = dir.path().join("cd/ab").join(&sha);
        for path in [&placed, &misplaced] {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        std::fs::write(dir.path().join("ab/ab/notes.txt"), b"x").unwrap();
        let fresh = store.stale_blobs(Duration::from_secs(3600)).await.unwrap();
        assert_eq!(fresh, Some(vec![]));
        std::thread::sleep(Duration::from_millis(20));
        let stale = store.stale_blobs(Duration::from_millis(1)).await.unwrap();
        assert_eq!(stale, Some(vec![sha]));
    }
}
