//! Resumable chunked uploads: create a session, store checksummed chunks, report status,
//! assemble and complete, abort. It must not sweep expired sessions (the cleaner does).

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;

use super::{read_hashing, require_live, FileService, NewFile, Pending};
use crate::catalog::files::{ChunkRecord, FileRecord, UploadSession};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::files::spool::{disk_error, spool};
use crate::files::{is_sha256_hex, SpoolLimits, Spooled};
use crate::names::ProjectId;
use crate::service::blocking;

/// Smallest and largest chunk a resumable session may use, and its most chunks.
pub const MIN_CHUNK_BYTES: u64 = 1;
pub const MAX_CHUNK_BYTES: u64 = 256 * 1024 * 1024;
pub const MAX_CHUNKS: u64 = 100_000;

impl FileService {
    #[tracing::instrument(skip_all, fields(project = %project, name = %name, total_size = total_size, chunk_size = chunk_size))]
    pub async fn create_session(
        &self,
        project: &ProjectId,
        name: String,
        content_type: Option<String>,
        total_size: u64,
        chunk_size: u64,
        expected_sha256: Option<String>,
    ) -> ApiResult<UploadSession> {
        if !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&chunk_size) {
            return Err(ApiError::bad_request(format!(
                "chunk_size must be between {MIN_CHUNK_BYTES} and {MAX_CHUNK_BYTES} bytes"
            )));
        }
        if let Some(sha) = &expected_sha256 {
            if !is_sha256_hex(sha) {
                return Err(ApiError::bad_request(
                    "sha256 must be 64 lowercase hex characters",
                ));
            }
        }
        let now = crate::catalog::now();
        let session = UploadSession {
            id: uuid::Uuid::new_v4().simple().to_string(),
            project_id: project.clone(),
            name,
            content_type,
            total_size,
            chunk_size,
            expected_sha256,
            created_at: now,
            expires_at: self.expires_at(now),
        };
        if session.chunk_count() > MAX_CHUNKS {
            return Err(ApiError::bad_request(format!(
                "{} chunks needed; at most {MAX_CHUNKS} are allowed: use larger chunks",
                session.chunk_count()
            )));
        }
        self.admit(Some(total_size))?;
        let (s, quota) = (session.clone(), self.quota);
        self.on_catalog(move |catalog| catalog.insert_session(&s, quota))
            .await?;
        Ok(session)
    }

    /// A live session with its chunks: 404 if unknown, 410 if expired.
    #[tracing::instrument(skip_all, fields(project = %project, session = %id))]
    pub async fn session(
        &self,
        project: &ProjectId,
        id: &str,
    ) -> ApiResult<(UploadSession, Vec<ChunkRecord>)> {
        let found = self
            .on_project_key(project, id, |catalog, p, i| catalog.session(p, i))
            .await?;
        require_live(found, Pending::Session, id, |(session, _)| {
            session.expires_at
        })
    }

    fn chunk_path(&self, session: &str, idx: u64, sha: &str) -> PathBuf {
        self.chunks_dir
            .join(session)
            .join(format!("{idx}.{sha}.chunk"))
    }

    /// Stores chunk `idx`. Returns `true` when it was new, `false` for an identical retry.
    #[tracing::instrument(skip_all, fields(project = %project, session = %id, chunk = idx))]
    pub async fn put_chunk<S, E>(
        &self,
        project: &ProjectId,
        id: &str,
        idx: u64,
        claimed_sha: Option<String>,
        body: S,
    ) -> ApiResult<bool>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (session, _) = self.session(project, id).await?;
        if idx >= session.chunk_count() {
            return Err(ApiError::bad_request_with(
                format!(
                    "chunk index {idx} is out of range: this upload has {} chunks",
                    session.chunk_count()
                ),
                serde_json::json!({ "chunk_count": session.chunk_count() }),
            ));
        }
        let expected_len = session.chunk_len(idx);
        // The session reserved its bytes in the quota, not on the disk: other uploads may have
        // used the space since. 507 before a byte is written.
        self.admit(Some(expected_len))?;
        let spooled = spool(
            &self.tmp_dir,
            body,
            SpoolLimits {
                exact_size: Some(expected_len),
                min_free_bytes: Some(self.min_free_bytes),
                ..SpoolLimits::default()
            },
        )
        .await
        .map_err(|e| {
            if e.code() == ErrorCode::InvalidRequest {
                e.prefixed(&format!("chunk {idx}: "))
                    .replace_details(serde_json::json!({ "expected_size": expected_len }))
            } else {
                e
            }
        })?;
        if let Some(claimed) = claimed_sha.map(|c| c.to_ascii_lowercase()) {
            if claimed != spooled.sha256 {
                return Err(ApiError::new(
                    ErrorCode::ChecksumMismatch,
                    format!("chunk {idx} checksum mismatch"),
                )
                .with_details(
                    serde_json::json!({ "expected": claimed, "actual": spooled.sha256 }),
                ));
            }
        }
        let record = ChunkRecord {
            idx,
            sha256: spooled.sha256.clone(),
            size_bytes: spooled.size,
        };
        let target = self.chunk_path(id, idx, &record.sha256);
        let session_id = id.to_string();
        self.on_catalog(move |catalog| {
            let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
            std::fs::create_dir_all(&dir)?;
            // Identical content gives the identical name, so a racing identical retry is harmless.
            std::fs::rename(spooled.take_path(), &target)?;
            crate::engine::fsync_dir(&dir)?;
            match catalog.add_chunk(&session_id, &record)? {
                None => Ok(true),
                Some(stored) if stored.sha256 == record.sha256 => Ok(false),
                Some(stored) => {
                    let _ = std::fs::remove_file(&target);
                    Err(ApiError::new(
                        ErrorCode::UploadSessionMismatch,
                        format!("chunk {idx} was already stored with different content"),
                    )
                    .with_details(serde_json::json!({ "stored_sha256": stored.sha256, "received_sha256": record.sha256 })))
                }
            }
        })
        .await
    }

    /// Assembles all chunks, verifies the whole-file checksum and creates the file record.
    /// Exactly one of several concurrent completes wins; the others get 409.
    #[tracing::instrument(skip_all, fields(project = %project, session = %id))]
    pub async fn complete_session(&self, project: &ProjectId, id: &str) -> ApiResult<FileRecord> {
        let Some(_guard) = self.session_locks.try_lock(id) else {
            return Err(ApiError::new(
                ErrorCode::UploadSessionBusy,
                format!("Upload session '{id}' is already being completed"),
            ));
        };
        let (session, chunks) = self.session(project, id).await?;
        let missing: Vec<u64> = missing_chunks(&session, &chunks);
        if !missing.is_empty() {
            return Err(ApiError::new(
                ErrorCode::UploadSessionMismatch,
                format!("{} chunk(s) are missing", missing.len()),
            )
            .with_details(serde_json::json!({ "missing_chunks": missing })));
        }
        self.admit(Some(session.total_size))?;
        let parts: Vec<PathBuf> = chunks
            .iter()
            .map(|c| self.chunk_path(id, c.idx, &c.sha256))
            .collect();
        let out = self
            .tmp_dir
            .join(format!("assemble-{}.part", uuid::Uuid::new_v4().simple()));
        let spooled = blocking(move || assemble(&parts, out)).await?;
        if spooled.size != session.total_size {
            return Err(ApiError::new(
                ErrorCode::UploadSessionMismatch,
                format!(
                    "assembled {} bytes but the session announced {}",
                    spooled.size, session.total_size
                ),
            )
            .with_details(
                serde_json::json!({ "assembled_bytes": spooled.size, "total_size": session.total_size }),
            ));
        }
        if let Some(expected) = &session.expected_sha256 {
            if *expected != spooled.sha256 {
                return Err(ApiError::new(
                    ErrorCode::ChecksumMismatch,
                    "whole-file checksum mismatch",
                )
                .with_details(
                    serde_json::json!({ "expected": expected, "actual": spooled.sha256 }),
                ));
            }
        }
        let meta = NewFile {
            name: session.name,
            content_type: session.content_type,
            tags: None,
            client_id: None,
        };
        let sid = id.to_string();
        let rec = self
            .publish_with(
                &session.project_id,
                meta,
                spooled,
                move |catalog, rec, quota| catalog.complete_session(&sid, rec, quota),
            )
            .await?;
        self.remove_chunk_dir(id).await;
        Ok(rec)
    }

    #[tracing::instrument(skip_all, fields(project = %project, session = %id))]
    pub async fn abort_session(&self, project: &ProjectId, id: &str) -> ApiResult<()> {
        let _guard = self.session_locks.lock(id).await;
        let existed = self
            .on_project_key(project, id, |catalog, p, i| {
                if catalog.session(p, i)?.is_none() {
                    return Ok(false);
                }
                catalog.delete_session(i)
            })
            .await?;
        if !existed {
            return Err(Pending::Session.not_found(id));
        }
        self.remove_chunk_dir(id).await;
        Ok(())
    }

    pub(super) async fn remove_chunk_dir(&self, id: &str) {
        let dir = self.chunks_dir.join(id);
        let _ = tokio::fs::remove_dir_all(dir).await;
    }
}

pub fn missing_chunks(session: &UploadSession, chunks: &[ChunkRecord]) -> Vec<u64> {
    let have: std::collections::HashSet<u64> = chunks.iter().map(|c| c.idx).collect();
    (0..session.chunk_count())
        .filter(|i| !have.contains(i))
        .collect()
}

/// Concatenates chunk files into one fsynced temp file, hashing as it goes.
pub(super) fn assemble(parts: &[PathBuf], out: PathBuf) -> ApiResult<Spooled> {
    let file = std::fs::File::create(&out)?;
    // Owned from here on: any error below removes the partial file.
    let spooled_guard = Spooled::from_parts(out, String::new(), 0);
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    let (sha, size) = read_hashing(parts.iter().map(std::fs::File::open), |block| {
        writer.write_all(block).map_err(disk_error)
    })?;
    let file = writer
        .into_inner()
        .map_err(|e| disk_error(e.into_error()))?;
    file.sync_all().map_err(disk_error)?;
    Ok(Spooled::from_parts(spooled_guard.take_path(), sha, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(total_size: u64, chunk_size: u64) -> UploadSession {
        let now = crate::catalog::now();
        UploadSession {
            id: "s".into(),
            project_id: ProjectId::parse("1").unwrap(),
            name: "f".into(),
            content_type: None,
            total_size,
            chunk_size,
            expected_sha256: None,
            created_at: now,
            expires_at: now,
        }
    }

    fn chunk(idx: u64) -> ChunkRecord {
        ChunkRecord {
            idx,
            sha256: String::new(),
            size_bytes: 0,
        }
    }

    #[test]
    fn missing_chunks_lists_the_indexes_not_received() {
        let s = session(10, 3);
        assert_eq!(missing_chunks(&s, &[]), vec![0, 1, 2, 3]);
        assert_eq!(missing_chunks(&s, &[chunk(0), chunk(2)]), vec![1, 3]);
        // An empty file still has one (empty) chunk.
        assert_eq!(missing_chunks(&session(0, 3), &[]), vec![0]);
    }

    #[test]
    fn assemble_concatenates_and_hashes_the_parts_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let parts: Vec<PathBuf> = ["a", "b", "c"]
            .iter()
            .map(|content| {
                let path = dir.path().join(content);
                std::fs::write(&path, content).unwrap();
                path
            })
            .collect();
        let assembled = assemble(&parts, dir.path().join("out")).unwrap();
        assert_eq!(std::fs::read(assembled.path()).unwrap(), b"abc");
        assert_eq!(assembled.size, 3);
        assert_eq!(
            assembled.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn assemble_removes_its_output_when_a_part_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        assert!(assemble(&[dir.path().join("absent")], out.clone()).is_err());
        assert!(!out.exists());
    }
}
