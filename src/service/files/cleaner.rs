//! The periodic cleaner: expired prepared uploads and sessions, orphaned chunk directories and
//! temp files a crash left behind. It must not touch live uploads or published file records.

use super::FileService;
use crate::error::ApiResult;

impl FileService {
    /// Removes expired prepared uploads and sessions, chunk directories without a session,
    /// and temp files older than the upload TTL (left by a crash mid-upload).
    #[tracing::instrument(skip_all)]
    pub async fn cleanup(&self) -> ApiResult<()> {
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
        let (chunks_dir, tmp_dir, ttl) = (
            self.chunks_dir.clone(),
            self.tmp_dir.clone(),
            self.upload_ttl,
        );
        self.on_catalog(move |catalog| {
            let live = catalog.session_ids()?;
            for entry in std::fs::read_dir(&chunks_dir)?.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if !live.contains(&name) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
            for entry in std::fs::read_dir(&tmp_dir)?.flatten() {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > ttl);
                if old {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            Ok(())
        })
        .await
    }
}
