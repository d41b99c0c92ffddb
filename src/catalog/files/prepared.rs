//! Catalog rows for the reference's prepare → upload → register flow: a prepared upload
//! becomes "staged" once its content is stored, and a file record once registered.

use chrono::{DateTime, Utc};
use duckdb::{params, Connection, OptionalExt};
use serde_json::Value;

use super::{blob_referenced, check_quota, insert_file_row, FileRecord, Quota};
use crate::catalog::{from_micros, micros, no_model_change, Catalog};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::ProjectId;

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

fn staged_file_not_found(key: &str) -> ApiError {
    ApiError::new(
        ErrorCode::StagedFileNotFound,
        format!("Upload key '{key}' not found"),
    )
}

impl Catalog {
    /// Adds a prepared upload, reserving its announced size (if any) in the project's quota.
    pub fn insert_prepared(&self, up: &PreparedUpload, quota: Quota) -> ApiResult<()> {
        self.insert_pending_row(
            &up.project_id,
            quota,
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
        )
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

    /// Records the uploaded content of a prepared upload of `project` within its quota (the
    /// content's size replaces the reservation); returns the previous content hash.
    pub fn set_prepared_content(
        &self,
        project: &ProjectId,
        key: &str,
        sha256: &str,
        size: u64,
        quota: Quota,
    ) -> ApiResult<Option<String>> {
        self.write(|tx, _| {
            let Some(previous) = prepared_sha256(tx, key)? else {
                return Err(staged_file_not_found(key));
            };
            tx.execute(
                "UPDATE file_uploads SET sha256 = ?, size_bytes = ? WHERE upload_key = ?",
                params![sha256, size as i64, key],
            )?;
            check_quota(tx, project, quota, false)?;
            Ok((previous, no_model_change()))
        })
    }

    /// Turns a staged upload into a file record in one transaction.
    pub fn register_prepared(&self, key: &str, rec: &FileRecord, quota: Quota) -> ApiResult<()> {
        self.write(|tx, _| {
            let removed = tx.execute("DELETE FROM file_uploads WHERE upload_key = ?", [key])?;
            if removed == 0 {
                return Err(staged_file_not_found(key));
            }
            insert_file_row(tx, rec)?;
            // The staged row's bytes became the file's: counted once.
            check_quota(tx, &rec.project_id, quota, true)?;
            Ok(((), no_model_change()))
        })
    }

    /// Removes prepared uploads; returns the content hashes they held that nothing else uses.
    pub fn delete_prepared(&self, keys: &[String]) -> ApiResult<Vec<String>> {
        self.write(|tx, _| {
            let mut released = Vec::new();
            for key in keys {
                let sha = prepared_sha256(tx, key)?;
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
}

/// The content hash a prepared upload holds: `None` for an unknown key, `Some(None)` while
/// nothing was uploaded.
fn prepared_sha256(c: &Connection, key: &str) -> ApiResult<Option<Option<String>>> {
    Ok(c.query_row(
        "SELECT sha256 FROM file_uploads WHERE upload_key = ?",
        [key],
        |r| r.get(0),
    )
    .optional()?)
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
