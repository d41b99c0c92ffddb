//! Publishing: turning a received or written spool into a stored blob plus the catalog row that
//! references it, under the blob's lock. It must not decide admission or parse upload flows.

use std::path::Path;

use bytes::Bytes;
use futures_util::Stream;

use super::{read_hashing, FileService, NewFile};
use crate::catalog::files::{FileRecord, Quota};
use crate::catalog::Catalog;
use crate::error::{ApiError, ApiResult};
use crate::files::Spooled;
use crate::names::ProjectId;
use crate::service::blocking;

impl FileService {
    /// Publishes a spool as a blob and runs the catalog change that references it, under the
    /// blob's lock so a concurrent delete of the same content cannot remove it in between.
    pub(super) async fn commit<T: Send + 'static>(
        &self,
        spooled: Spooled,
        catalog_change: impl FnOnce(&Catalog, &str, u64) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let (sha, size) = (spooled.sha256.clone(), spooled.size);
        let _guard = self.blob_locks.lock(&sha).await;
        self.store.put(spooled).await?;
        let hash = sha.clone();
        let result = self
            .on_catalog(move |catalog| catalog_change(catalog, &hash, size))
            .await;
        if result.is_err() {
            self.release_if_unused(&sha).await;
        }
        result
    }

    /// Publishes a spool (hashed and fsynced) as a new file record of `project`, which
    /// `insert` writes to the catalog within the project's quota.
    pub(super) async fn publish_with(
        &self,
        project: &ProjectId,
        meta: NewFile,
        spooled: Spooled,
        insert: impl FnOnce(&Catalog, &FileRecord, Quota) -> ApiResult<()> + Send + 'static,
    ) -> ApiResult<FileRecord> {
        let quota = self.quota;
        let project = project.clone();
        self.commit(spooled, move |catalog, sha, size| {
            let rec = meta.into_record(project, sha, size);
            insert(catalog, &rec, quota)?;
            Ok(rec)
        })
        .await
    }

    /// `publish_with` for a plain new file.
    async fn publish(
        &self,
        project: &ProjectId,
        meta: NewFile,
        spooled: Spooled,
    ) -> ApiResult<FileRecord> {
        self.publish_with(project, meta, spooled, |catalog, rec, quota| {
            catalog.insert_file(rec, quota)
        })
        .await
    }

    /// Publishes a file this process wrote (an export) as a new record of `project`.
    #[tracing::instrument(skip_all, fields(project = %project, name = %meta.name))]
    pub async fn create_from_path(
        &self,
        project: &ProjectId,
        meta: NewFile,
        written: Spooled,
    ) -> ApiResult<FileRecord> {
        let spooled = blocking(move || {
            // Hashing (CPU) and fsync (disk) of the same file overlap on two threads.
            let (hashed, synced) = std::thread::scope(|scope| {
                let sync = scope.spawn(|| std::fs::File::open(written.path())?.sync_data());
                (hash_file(written.path()), sync.join())
            });
            synced.map_err(|_| ApiError::internal("fsync thread panicked"))??;
            let (sha, size) = hashed?;
            Ok(Spooled::from_parts(written.take_path(), sha, size))
        })
        .await?;
        self.publish(project, meta, spooled).await
    }

    /// Single-shot upload: the body becomes a file record at once.
    #[tracing::instrument(skip_all, fields(project = %project, name = %meta.name))]
    pub async fn create<S, E>(
        &self,
        project: &ProjectId,
        meta: NewFile,
        body: S,
        length: Option<u64>,
    ) -> ApiResult<FileRecord>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let spooled = self
            .receive_announced(project, body, length, None, 0)
            .await?;
        self.publish(project, meta, spooled).await
    }
}

/// SHA-256 (hex) and length of a file.
fn hash_file(path: &Path) -> ApiResult<(String, u64)> {
    read_hashing([std::fs::File::open(path)], |_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_file_gives_the_sha256_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let (sha, size) = hash_file(&path).unwrap();
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(size, 3);
    }
}
