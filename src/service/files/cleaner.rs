//! The periodic cleaner: expired prepared uploads and sessions, orphaned chunk directories, temp
//! and work files a crash or a stuck request left behind, and stored blobs no catalog row
//! references. It must not touch live uploads or published file records.

use std::path::Path;
use std::time::Duration;

use super::FileService;
use crate::error::ApiResult;
use crate::files::blob::unchanged_for;

impl FileService {
    /// One cleaning round (ADR 0023): expired prepared uploads and sessions, chunk directories
    /// without a session, spool and work files unchanged for the upload TTL, and blobs unchanged
    /// for the upload TTL that nothing references.
    #[tracing::instrument(skip_all)]
    pub async fn cleanup(&self) -> ApiResult<()> {
        self.expire_multiparts().await?;
        let now = crate::catalog::now();
        let (keys, sessions) = self
            .on_catalog(move |catalog| {
                Ok((
                    catalog.expired_prepared(now)?,
                    catalog.expired_sessions(now)?,
                ))
            })
            .await?;
        if !keys.is_empty() {
            let released = self
                .on_catalog(move |catalog| catalog.delete_prepared(&keys))
                .await?;
            self.release_blobs(released).await;
        }
        for id in sessions {
            // A session being completed right now is left to its completer.
            let Some(_guard) = self.session_locks.try_lock(&id) else {
                continue;
            };
            let i = id.clone();
            self.on_catalog(move |catalog| catalog.delete_session(&i))
                .await?;
            self.remove_chunk_dir(&id).await;
        }
        let (chunks_dir, tmp_dir, work_dir, ttl) = (
            self.chunks_dir.clone(),
            self.tmp_dir.clone(),
            self.work_dir.clone(),
            self.upload_ttl,
        );
        self.on_catalog(move |catalog| {
            // Directories first, live sessions second: a session created in between has its
            // directory only after its row, so it is never mistaken for an orphan.
            let dirs: Vec<_> = std::fs::read_dir(&chunks_dir)?.flatten().collect();
            let live = catalog.session_ids()?;
            for entry in dirs {
                let name = entry.file_name().to_string_lossy().to_string();
                if !live.contains(&name) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
            // Spools of uploads that never ended, and work files of imports and exports whose
            // request is stuck or gone: files still being written or read change (or were
            // linked) recently. Removing a file a reader still holds open frees its space when
            // that reader closes it.
            remove_unchanged(&tmp_dir, ttl);
            remove_unchanged(&work_dir, ttl);
            Ok(())
        })
        .await?;
        self.sweep_unreferenced_blobs().await
    }

    /// Deletes stored blobs no file record or staged upload references: a crash between
    /// storing a blob and committing its row leaves one. Only blobs unchanged for the upload
    /// TTL are candidates, and each is re-checked under its lock, which an upload holds from
    /// storing its blob until its row is committed.
    async fn sweep_unreferenced_blobs(&self) -> ApiResult<()> {
        let Some(candidates) = self.store.stale_blobs(self.upload_ttl).await? else {
            return Ok(());
        };
        if candidates.is_empty() {
            return Ok(());
        }
        let referenced = self
            .on_catalog(|catalog| catalog.referenced_blobs())
            .await?;
        let orphans: Vec<String> = candidates
            .into_iter()
            .filter(|sha| !referenced.contains(sha))
            .collect();
        if !orphans.is_empty() {
            tracing::info!(
                blobs = orphans.len(),
                "removing stored blobs no catalog row references"
            );
            self.release_blobs(orphans).await;
        }
        Ok(())
    }
}

/// Removes the entries of `dir` unchanged for `age` (see `unchanged_for`).
fn remove_unchanged(dir: &Path, age: Duration) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !unchanged_for(&meta, age) {
            continue;
        }
        let removed = if meta.is_dir() {
            std::fs::remove_dir_all(entry.path())
        } else {
            std::fs::remove_file(entry.path())
        };
        if let Err(e) = removed {
            tracing::warn!(error = %e, "could not remove a stale work file");
        }
    }
}
