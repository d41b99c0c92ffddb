//! Catalog rows for file records and the checks every new record passes (project quota);
//! blob reference counts are derived from these rows and staged uploads, never stored.

mod prepared;
mod sessions;

pub use prepared::PreparedUpload;
pub use sessions::{ChunkRecord, UploadSession};

use chrono::{DateTime, Utc};
use duckdb::{params, Connection, Row};
use serde_json::Value;

use super::{from_micros, micros, no_model_change, Catalog};
use crate::error::{ApiError, ApiResult, ErrorCode};
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

/// Per-project limits checked when a file record is added (0 = unlimited).
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub max_bytes: u64,
    pub max_files: u64,
}

pub(super) const FILE_COLUMNS: &str =
    "id, project_id, name, sha256, size_bytes, content_type, tags::VARCHAR, client_id, epoch_us(created_at)";

pub(super) fn file_from_row(r: &Row<'_>) -> duckdb::Result<(FileRecord, i64)> {
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

pub(super) fn with_time((mut rec, us): (FileRecord, i64)) -> ApiResult<FileRecord> {
    rec.created_at = from_micros(us)?;
    Ok(rec)
}

pub(super) fn query_files(
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
            model.existing_project(&rec.project_id)?;
            if let Some(client_id) = &rec.client_id {
                let taken = count_rows(
                    tx,
                    "SELECT count(*) FROM files WHERE project_id = ? AND client_id = ?",
                    params![rec.project_id.as_str(), client_id],
                )?;
                if taken > 0 {
                    return Err(ApiError::new(
                        ErrorCode::BlobExists,
                        format!(
                            "Blob '{client_id}' already exists in project '{}'",
                            rec.project_id
                        ),
                    ));
                }
            }
            insert_file_row(tx, rec)?;
            check_quota(tx, &rec.project_id, quota, true)?;
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
            let total = count_rows(
                c,
                "SELECT count(*) FROM files WHERE project_id = ?",
                [project.as_str()],
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
                // An object written through the S3 face keeps its ETag beside the record.
                tx.execute("DELETE FROM s3_etags WHERE file_id = ?", [id])?;
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

    /// Every content hash a file record or staged upload references (the cleaner removes
    /// stored blobs outside this set).
    pub fn referenced_blobs(&self) -> ApiResult<std::collections::HashSet<String>> {
        self.query(|c| {
            let mut stmt = c.prepare(
                "SELECT sha256 FROM files UNION SELECT sha256 FROM file_uploads WHERE sha256 IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>().map_err(Into::into)
        })
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
}

pub(super) fn insert_file_row(tx: &Connection, rec: &FileRecord) -> ApiResult<()> {
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

impl Catalog {
    /// Inserts a pending upload's row owned by `project` (404 unless it exists) within the
    /// project's byte quota, which counts the row's announced size (507 above it); the read
    /// model keeps no such rows.
    fn insert_pending_row(
        &self,
        project: &ProjectId,
        quota: Quota,
        sql: &str,
        params: impl duckdb::Params,
    ) -> ApiResult<()> {
        self.write(|tx, model| {
            model.existing_project(project)?;
            tx.execute(sql, params)?;
            check_quota(tx, project, quota, false)?;
            Ok(((), no_model_change()))
        })
    }
}

impl Catalog {
    /// Bytes `project` may still add under `quota` (`None` = no byte limit), counted as the
    /// quota check counts (files, prepared uploads, sessions), so an upload of unknown size can
    /// stop as soon as it passes it. `credit` is what the upload being received already
    /// reserved (a prepared upload's announced size). The file count is left to the insert:
    /// content staged for a prepared upload is no file yet.
    pub fn quota_room(
        &self,
        project: &ProjectId,
        quota: Quota,
        credit: u64,
    ) -> ApiResult<Option<u64>> {
        if quota.max_bytes == 0 {
            return Ok(None);
        }
        self.query(|conn| {
            let (_, bytes) = usage(conn, project)?;
            Ok(Some(
                quota.max_bytes.saturating_add(credit).saturating_sub(bytes),
            ))
        })
    }
}

/// Checks `project`'s usage *after* a change made in `tx` (so the change's own row counts once),
/// refusing it with 507 when over a quota. Bytes are what the project holds or has reserved:
/// its files, every prepared upload (the content stored, else the announced size) and every
/// resumable session (its announced total), so uploads in flight cannot exceed the quota
/// (ADR 0023). The file count applies only when the change added a file record.
pub(super) fn check_quota(
    tx: &Connection,
    project: &ProjectId,
    quota: Quota,
    adds_file: bool,
) -> ApiResult<()> {
    if quota.max_bytes == 0 && quota.max_files == 0 {
        return Ok(());
    }
    let (count, bytes) = usage(tx, project)?;
    if adds_file && quota.max_files > 0 && count > quota.max_files {
        return Err(ApiError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "Project '{project}' has {} files; its quota is {} (PROJECT_QUOTA_FILES)",
                count - 1,
                quota.max_files
            ),
        ));
    }
    if quota.max_bytes > 0 && bytes > quota.max_bytes {
        return Err(ApiError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "Project '{project}' would use {bytes} bytes with its files and pending uploads; its quota is {} (PROJECT_QUOTA_BYTES)",
                quota.max_bytes
            ),
        )
        .with_details(serde_json::json!({ "used_bytes": bytes, "quota_bytes": quota.max_bytes })));
    }
    Ok(())
}

/// A project's file count and the bytes it holds or has reserved (see `check_quota`).
fn usage(c: &Connection, project: &ProjectId) -> ApiResult<(u64, u64)> {
    let p = project.as_str();
    let (count, bytes): (i64, i64) = c.query_row(
        "SELECT (SELECT count(*) FROM files WHERE project_id = ?), \
         ((SELECT coalesce(sum(size_bytes), 0) FROM files WHERE project_id = ?) \
          + (SELECT coalesce(sum(coalesce(size_bytes, expected_size, 0)), 0) FROM file_uploads WHERE project_id = ?) \
          + (SELECT coalesce(sum(total_size), 0) FROM upload_sessions WHERE project_id = ?))::BIGINT",
        [p, p, p, p],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((count.max(0) as u64, bytes.max(0) as u64))
}

/// The single number a `SELECT count(*) …` answers.
fn count_rows(c: &Connection, sql: &str, params: impl duckdb::Params) -> ApiResult<i64> {
    Ok(c.query_row(sql, params, |r| r.get(0))?)
}

pub(super) fn blob_referenced(c: &Connection, sha256: &str) -> ApiResult<bool> {
    Ok(count_rows(c, "SELECT (SELECT count(*) FROM files WHERE sha256 = ?) + (SELECT count(*) FROM file_uploads WHERE sha256 = ?)", [sha256, sha256])? > 0)
}
