//! Catalog rows for files: file records, prepared (staged) uploads and resumable upload
//! sessions with their chunks. Blob reference counts are derived from these rows, not stored.

use chrono::{DateTime, Utc};
use duckdb::{params, Connection, OptionalExt, Row};
use serde_json::Value;

use super::{from_micros, micros, Apply, Catalog};
use crate::error::{ApiError, ApiResult};
use crate::names::ProjectId;

#[derive(Debug, Clone)]
pub struct FileRecord {
    pub id: String,
    pub project_id: ProjectId,
    pub name: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub content_type: Option<String>,
    pub tags: Option<Value>,
    pub client_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A prepare → upload → register session of the reference API.
#[derive(Debug, Clone)]
pub struct PreparedUpload {
    pub upload_key: String,
    pub project_id: ProjectId,
    pub filename: String,
    pub content_type: Option<String>,
    pub expected_size: Option<u64>,
    pub tags: Option<Value>,
    /// Set once the content was uploaded (the file is then "staged").
    pub sha256: Option<String>,
    pub size_bytes: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

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

/// Per-project limits checked when a file record is added (0 = unlimited).
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub max_bytes: u64,
    pub max_files: u64,
}

const FILE_COLUMNS: &str =
    "id, project_id, name, sha256, size_bytes, content_type, tags::VARCHAR, client_id, epoch_us(created_at)";

fn file_from_row(r: &Row<'_>) -> duckdb::Result<(FileRecord, i64)> {
    let project: String = r.get(1)?;
    let tags: Option<String> = r.get(6)?;
    Ok((
        FileRecord {
            id: r.get(0)?,
            project_id: ProjectId::parse(&project)
                .map_err(|e| duckdb::Error::InvalidParameterName(e.to_string()))?,
            name: r.get(2)?,
            sha256: r.get(3)?,
            size_bytes: r.get::<_, i64>(4)?.max(0) as u64,
            content_type: r.get(5)?,
            tags: tags.and_then(|t| serde_json::from_str(&t).ok()),
            client_id: r.get(7)?,
            created_at: crate::catalog::now(),
        },
        r.get(8)?,
    ))
}

fn with_time((mut rec, us): (FileRecord, i64)) -> ApiResult<FileRecord> {
    rec.created_at = from_micros(us)?;
    Ok(rec)
}

fn query_files(
    conn: &Connection,
    filter: &str,
    args: &[&dyn duckdb::ToSql],
) -> ApiResult<Vec<FileRecord>> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE {filter}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args, file_from_row)?;
    rows.map(|r| with_time(r?)).collect()
}

impl Catalog {
    /// Adds a file record, refusing it when the project's quota would be exceeded (507).
    pub fn insert_file(&self, rec: &FileRecord, quota: Quota) -> ApiResult<()> {
        self.write(|tx, model| {
            if model.project(&rec.project_id).is_none() {
                return Err(super::not_found_project(&rec.project_id));
            }
            check_quota(tx, &rec.project_id, rec.size_bytes, quota)?;
            if let Some(client_id) = &rec.client_id {
                let taken: i64 = tx.query_row(
                    "SELECT count(*) FROM files WHERE project_id = ? AND client_id = ?",
                    params![rec.project_id.as_str(), client_id],
                    |r| r.get(0),
                )?;
                if taken > 0 {
                    return Err(ApiError::conflict(format!(
                        "blob {client_id:?} already exists"
                    )));
                }
            }
            insert_file_row(tx, rec)?;
            Ok(((), no_model_change()))
        })
    }

    pub fn file(&self, project: &ProjectId, id: &str) -> ApiResult<Option<FileRecord>> {
        self.query(|c| {
            Ok(query_files(c, "project_id = ? AND id = ?", &[&project.as_str(), &id])?.pop())
        })
    }

    /// The records of `project` holding this content, oldest first (seed 000 addresses
    /// files by SHA-256).
    pub fn files_by_sha(&self, project: &ProjectId, sha256: &str) -> ApiResult<Vec<FileRecord>> {
        self.query(|c| {
            query_files(
                c,
                "project_id = ? AND sha256 = ? ORDER BY created_at, id",
                &[&project.as_str(), &sha256],
            )
        })
    }

    pub fn file_by_client_id(
        &self,
        project: &ProjectId,
        client_id: &str,
    ) -> ApiResult<Option<FileRecord>> {
        self.query(|c| {
            Ok(query_files(
                c,
                "project_id = ? AND client_id = ?",
                &[&project.as_str(), &client_id],
            )?
            .pop())
        })
    }

    /// One page of a project's files, newest first, and the total count.
    pub fn list_files(
        &self,
        project: &ProjectId,
        offset: u64,
        limit: u64,
    ) -> ApiResult<(Vec<FileRecord>, u64)> {
        self.query(|c| {
            let page = query_files(
                c,
                "project_id = ? ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                &[&project.as_str(), &(limit as i64), &(offset as i64)],
            )?;
            let total: i64 = c.query_row(
                "SELECT count(*) FROM files WHERE project_id = ?",
                [project.as_str()],
                |r| r.get(0),
            )?;
            Ok((page, total.max(0) as u64))
        })
    }

    /// Deletes file records; returns them and whether their blob is still referenced.
    pub fn delete_files(
        &self,
        project: &ProjectId,
        ids: &[String],
    ) -> ApiResult<Vec<(FileRecord, bool)>> {
        self.write(|tx, _| {
            let mut out = Vec::new();
            for id in ids {
                let Some(rec) =
                    query_files(tx, "project_id = ? AND id = ?", &[&project.as_str(), id])?.pop()
                else {
                    continue;
                };
                tx.execute("DELETE FROM files WHERE id = ?", [id])?;
                let still = blob_referenced(tx, &rec.sha256)?;
                out.push((rec, still));
            }
            Ok((out, no_model_change()))
        })
    }

    /// Whether any file record or staged upload still points at this content.
    pub fn blob_in_use(&self, sha256: &str) -> ApiResult<bool> {
        self.query(|c| blob_referenced(c, sha256))
    }

    /// All content hashes a project references (to release blobs when it is deleted).
    pub fn project_blobs(&self, project: &ProjectId) -> ApiResult<Vec<String>> {
        self.query(|c| {
            let mut stmt = c.prepare(
                "SELECT sha256 FROM files WHERE project_id = ? UNION SELECT sha256 FROM file_uploads WHERE project_id = ? AND sha256 IS NOT NULL",
            )?;
            let rows = stmt.query_map([project.as_str(), project.as_str()], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
        })
    }

    pub fn insert_prepared(&self, up: &PreparedUpload) -> ApiResult<()> {
        self.write(|tx, model| {
            if model.project(&up.project_id).is_none() {
                return Err(super::not_found_project(&up.project_id));
            }
            tx.execute(
                "INSERT INTO file_uploads VALUES (?, ?, ?, ?, ?, ?::JSON, NULL, NULL, make_timestamp(?), make_timestamp(?))",
                params![
                    up.upload_key,
                    up.project_id.as_str(),
                    up.filename,
                    up.content_type,
                    up.expected_size.map(|s| s as i64),
                    up.tags.as_ref().map(Value::to_string),
                    micros(up.created_at),
                    micros(up.expires_at)
                ],
            )?;
            Ok(((), no_model_change()))
        })
    }

    pub fn prepared(&self, project: &ProjectId, key: &str) -> ApiResult<Option<PreparedUpload>> {
        self.query(|c| {
            Ok(query_prepared(
                c,
                "project_id = ? AND upload_key = ?",
                &[&project.as_str(), &key],
            )?
            .pop())
        })
    }

    /// Uploads with content that were not registered yet (listed as staged files).
    pub fn staged(&self, project: &ProjectId) -> ApiResult<Vec<PreparedUpload>> {
        self.query(|c| {
            query_prepared(
                c,
                "project_id = ? AND sha256 IS NOT NULL ORDER BY created_at DESC",
                &[&project.as_str()],
            )
        })
    }

    /// Records the uploaded content of a prepared upload; returns the previous content hash.
    pub fn set_prepared_content(
        &self,
        key: &str,
        sha256: &str,
        size: u64,
    ) -> ApiResult<Option<String>> {
        self.write(|tx, _| {
            let previous: Option<Option<String>> = tx
                .query_row(
                    "SELECT sha256 FROM file_uploads WHERE upload_key = ?",
                    [key],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(previous) = previous else {
                return Err(ApiError::NotFound(format!("upload key {key:?} not found")));
            };
            tx.execute(
                "UPDATE file_uploads SET sha256 = ?, size_bytes = ? WHERE upload_key = ?",
                params![sha256, size as i64, key],
            )?;
            Ok((previous, no_model_change()))
        })
    }

    /// Turns a staged upload into a file record in one transaction.
    pub fn register_prepared(&self, key: &str, rec: &FileRecord, quota: Quota) -> ApiResult<()> {
        self.write(|tx, _| {
            check_quota(tx, &rec.project_id, rec.size_bytes, quota)?;
            let removed = tx.execute("DELETE FROM file_uploads WHERE upload_key = ?", [key])?;
            if removed == 0 {
                return Err(ApiError::NotFound(format!("upload key {key:?} not found")));
            }
            insert_file_row(tx, rec)?;
            Ok(((), no_model_change()))
        })
    }

    /// Removes prepared uploads; returns the content hashes they held that nothing else uses.
    pub fn delete_prepared(&self, keys: &[String]) -> ApiResult<Vec<String>> {
        self.write(|tx, _| {
            let mut released = Vec::new();
            for key in keys {
                let sha: Option<Option<String>> = tx
                    .query_row(
                        "SELECT sha256 FROM file_uploads WHERE upload_key = ?",
                        [key],
                        |r| r.get(0),
                    )
                    .optional()?;
                tx.execute("DELETE FROM file_uploads WHERE upload_key = ?", [key])?;
                if let Some(Some(sha)) = sha {
                    if !blob_referenced(tx, &sha)? {
                        released.push(sha);
                    }
                }
            }
            Ok((released, no_model_change()))
        })
    }

    pub fn expired_prepared(&self, now: DateTime<Utc>) -> ApiResult<Vec<String>> {
        self.query(|c| {
            let mut stmt = c.prepare(
                "SELECT upload_key FROM file_uploads WHERE expires_at < make_timestamp(?)",
            )?;
            let rows = stmt.query_map([micros(now)], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
        })
    }

    pub fn insert_session(&self, s: &UploadSession) -> ApiResult<()> {
        self.write(|tx, model| {
            if model.project(&s.project_id).is_none() {
                return Err(super::not_found_project(&s.project_id));
            }
            tx.execute(
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
            )?;
            Ok(((), no_model_change()))
        })
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
            let live: i64 = tx.query_row(
                "SELECT count(*) FROM upload_sessions WHERE id = ?",
                [session_id],
                |r| r.get(0),
            )?;
            if live == 0 {
                return Err(ApiError::NotFound(format!(
                    "upload session {session_id:?} not found"
                )));
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
            check_quota(tx, &rec.project_id, rec.size_bytes, quota)?;
            tx.execute("DELETE FROM upload_chunks WHERE session_id = ?", [id])?;
            let n = tx.execute("DELETE FROM upload_sessions WHERE id = ?", [id])?;
            if n == 0 {
                return Err(ApiError::NotFound(format!(
                    "upload session {id:?} not found"
                )));
            }
            insert_file_row(tx, rec)?;
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

fn no_model_change() -> Apply {
    Box::new(|_| {})
}

fn insert_file_row(tx: &Connection, rec: &FileRecord) -> ApiResult<()> {
    tx.execute(
        "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?::JSON, ?, make_timestamp(?))",
        params![
            rec.id,
            rec.project_id.as_str(),
            rec.name,
            rec.sha256,
            rec.size_bytes as i64,
            rec.content_type,
            rec.tags.as_ref().map(Value::to_string),
            rec.client_id,
            micros(rec.created_at)
        ],
    )?;
    Ok(())
}

fn check_quota(tx: &Connection, project: &ProjectId, adding: u64, quota: Quota) -> ApiResult<()> {
    if quota.max_bytes == 0 && quota.max_files == 0 {
        return Ok(());
    }
    let (count, bytes): (i64, i64) = tx.query_row(
        "SELECT count(*), coalesce(sum(size_bytes), 0)::BIGINT FROM files WHERE project_id = ?",
        [project.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (count, bytes) = (count.max(0) as u64, bytes.max(0) as u64);
    if quota.max_files > 0 && count + 1 > quota.max_files {
        return Err(ApiError::InsufficientStorage(format!(
            "project {project:?} has {count} files; its quota is {} (PROJECT_QUOTA_FILES)",
            quota.max_files
        )));
    }
    if quota.max_bytes > 0 && bytes + adding > quota.max_bytes {
        return Err(ApiError::InsufficientStorage(format!(
            "project {project:?} would use {} bytes; its quota is {} (PROJECT_QUOTA_BYTES)",
            bytes + adding,
            quota.max_bytes
        )));
    }
    Ok(())
}

fn blob_referenced(c: &Connection, sha256: &str) -> ApiResult<bool> {
    let n: i64 = c.query_row(
        "SELECT (SELECT count(*) FROM files WHERE sha256 = ?) + (SELECT count(*) FROM file_uploads WHERE sha256 = ?)",
        [sha256, sha256],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

fn query_prepared(
    c: &Connection,
    filter: &str,
    args: &[&dyn duckdb::ToSql],
) -> ApiResult<Vec<PreparedUpload>> {
    let sql = format!(
        "SELECT upload_key, project_id, filename, content_type, expected_size, tags::VARCHAR, sha256, size_bytes, \
         epoch_us(created_at), epoch_us(expires_at) FROM file_uploads WHERE {filter}"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(args, |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<i64>>(7)?,
            r.get::<_, i64>(8)?,
            r.get::<_, i64>(9)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (key, project, filename, content_type, expected, tags, sha, size, created, expires) =
            row?;
        out.push(PreparedUpload {
            upload_key: key,
            project_id: ProjectId::parse(&project)?,
            filename,
            content_type,
            expected_size: expected.map(|s| s.max(0) as u64),
            tags: tags.and_then(|t| serde_json::from_str(&t).ok()),
            sha256: sha,
            size_bytes: size.map(|s| s.max(0) as u64),
            created_at: from_micros(created)?,
            expires_at: from_micros(expires)?,
        });
    }
    Ok(out)
}

impl Catalog {
    /// Stores blob bytes for the database backend; storing existing content is a no-op.
    pub fn put_blob_data(&self, sha256: &str, data: &[u8]) -> ApiResult<()> {
        self.write(|tx, _| {
            tx.execute(
                "INSERT INTO blob_data VALUES (?, ?) ON CONFLICT DO NOTHING",
                params![sha256, data],
            )?;
            Ok(((), no_model_change()))
        })
    }

    pub fn blob_data(&self, sha256: &str) -> ApiResult<Option<Vec<u8>>> {
        self.query(|c| {
            c.query_row(
                "SELECT data FROM blob_data WHERE sha256 = ?",
                [sha256],
                |r| r.get(0),
            )
            .optional()
            .map_err(Into::into)
        })
    }

    pub fn delete_blob_data(&self, sha256: &str) -> ApiResult<()> {
        self.write(|tx, _| {
            tx.execute("DELETE FROM blob_data WHERE sha256 = ?", [sha256])?;
            Ok(((), no_model_change()))
        })
    }
}
