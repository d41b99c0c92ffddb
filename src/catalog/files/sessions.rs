//! Catalog rows for resumable chunked upload sessions and the chunks received so far;
//! completing a session turns it into a file record in the same transaction.

use chrono::{DateTime, Utc};
use duckdb::{params, OptionalExt};

use super::{check_quota, count_rows, insert_file_row, FileRecord, Quota};
use crate::catalog::{from_micros, micros, no_model_change, Catalog};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::ProjectId;

/// A resumable chunked upload session.
#[derive(Debug, Clone)]
pub struct UploadSession {
    pub id: String,
    pub project_id: ProjectId,
    pub name: String,
    pub content_type: Option<String>,
    pub total_size: u64,
    pub chunk_size: u64,
    pub expected_sha256: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl UploadSession {
    pub fn chunk_count(&self) -> u64 {
        if self.total_size == 0 {
            1
        } else {
            self.total_size.div_ceil(self.chunk_size)
        }
    }

    /// The exact size chunk `idx` must have: `chunk_size`, except the last.
    pub fn chunk_len(&self, idx: u64) -> u64 {
        let start = idx * self.chunk_size;
        self.chunk_size.min(self.total_size.saturating_sub(start))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    pub idx: u64,
    pub sha256: String,
    pub size_bytes: u64,
}

fn session_not_found(key: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UploadSessionNotFound,
        format!("Upload session '{key}' not found"),
    )
}

impl Catalog {
    /// Adds a session, reserving its announced total size in the project's quota: the chunks
    /// it may receive are bounded by that total.
    pub fn insert_session(&self, s: &UploadSession, quota: Quota) -> ApiResult<()> {
        self.insert_pending_row(
            &s.project_id,
            quota,
            "INSERT INTO upload_sessions VALUES (?, ?, ?, ?, ?, ?, ?, make_timestamp(?), make_timestamp(?))",
            params![
                s.id,
                s.project_id.as_str(),
                s.name,
                s.content_type,
                s.total_size as i64,
                s.chunk_size as i64,
                s.expected_sha256,
                micros(s.created_at),
                micros(s.expires_at)
            ],
        )
    }

    /// A session of `project` with the chunks received so far (in index order).
    pub fn session(
        &self,
        project: &ProjectId,
        id: &str,
    ) -> ApiResult<Option<(UploadSession, Vec<ChunkRecord>)>> {
        self.query(|c| {
            let Some(session) = c
                .query_row(
                    "SELECT id, project_id, name, content_type, total_size, chunk_size, expected_sha256, \
                     epoch_us(created_at), epoch_us(expires_at) FROM upload_sessions WHERE project_id = ? AND id = ?",
                    [project.as_str(), id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, i64>(5)?,
                            r.get::<_, Option<String>>(6)?,
                            r.get::<_, i64>(7)?,
                            r.get::<_, i64>(8)?,
                        ))
                    },
                )
                .optional()?
            else {
                return Ok(None);
            };
            let (id, name, content_type, total, chunk, expected, created, expires) = session;
            let session = UploadSession {
                id,
                project_id: project.clone(),
                name,
                content_type,
                total_size: total.max(0) as u64,
                chunk_size: chunk.max(1) as u64,
                expected_sha256: expected,
                created_at: from_micros(created)?,
                expires_at: from_micros(expires)?,
            };
            let mut stmt =
                c.prepare_cached("SELECT idx, sha256, size_bytes FROM upload_chunks WHERE session_id = ? ORDER BY idx")?;
            let chunks = stmt
                .query_map([session.id.as_str()], |r| {
                    Ok(ChunkRecord {
                        idx: r.get::<_, i64>(0)?.max(0) as u64,
                        sha256: r.get(1)?,
                        size_bytes: r.get::<_, i64>(2)?.max(0) as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((session, chunks)))
        })
    }

    /// Records a received chunk; if the index was stored already, returns the stored record
    /// instead (the caller compares checksums: same is a no-op, different is a conflict).
    pub fn add_chunk(
        &self,
        session_id: &str,
        chunk: &ChunkRecord,
    ) -> ApiResult<Option<ChunkRecord>> {
        self.write(|tx, _| {
            let existing = tx
                .query_row(
                    "SELECT sha256, size_bytes FROM upload_chunks WHERE session_id = ? AND idx = ?",
                    params![session_id, chunk.idx as i64],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()?;
            if let Some((sha256, size)) = existing {
                let stored = ChunkRecord {
                    idx: chunk.idx,
                    sha256,
                    size_bytes: size.max(0) as u64,
                };
                return Ok((Some(stored), no_model_change()));
            }
            let live = count_rows(
                tx,
                "SELECT count(*) FROM upload_sessions WHERE id = ?",
                [session_id],
            )?;
            if live == 0 {
                return Err(session_not_found(session_id));
            }
            tx.execute(
                "INSERT INTO upload_chunks VALUES (?, ?, ?, ?)",
                params![
                    session_id,
                    chunk.idx as i64,
                    chunk.sha256,
                    chunk.size_bytes as i64
                ],
            )?;
            Ok((None, no_model_change()))
        })
    }

    /// Removes a session and its chunk rows; returns whether it existed.
    pub fn delete_session(&self, id: &str) -> ApiResult<bool> {
        self.write(|tx, _| {
            tx.execute("DELETE FROM upload_chunks WHERE session_id = ?", [id])?;
            let n = tx.execute("DELETE FROM upload_sessions WHERE id = ?", [id])?;
            Ok((n > 0, no_model_change()))
        })
    }

    /// Completes a session: the file record is added and the session removed atomically.
    pub fn complete_session(&self, id: &str, rec: &FileRecord, quota: Quota) -> ApiResult<()> {
        self.write(|tx, _| {
            tx.execute("DELETE FROM upload_chunks WHERE session_id = ?", [id])?;
            let n = tx.execute("DELETE FROM upload_sessions WHERE id = ?", [id])?;
            if n == 0 {
                return Err(session_not_found(id));
            }
            insert_file_row(tx, rec)?;
            // The session's reservation became the file's bytes: counted once.
            check_quota(tx, &rec.project_id, quota, true)?;
            Ok(((), no_model_change()))
        })
    }

    pub fn expired_sessions(&self, now: DateTime<Utc>) -> ApiResult<Vec<String>> {
        self.query(|c| {
            let mut stmt =
                c.prepare("SELECT id FROM upload_sessions WHERE expires_at < make_timestamp(?)")?;
            let rows = stmt.query_map([micros(now)], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
        })
    }

    /// Every live session id (the cleaner removes chunk directories of any other).
    pub fn session_ids(&self) -> ApiResult<Vec<String>> {
        self.query(|c| {
            let mut stmt = c.prepare("SELECT id FROM upload_sessions")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
        })
    }
}
