//! Catalog rows of the S3 face (ADR 0032): per-key credentials (sealed secrets), the MD5 ETags
//! of objects written through S3, open multipart uploads, and objects as file records by name.

use chrono::{DateTime, Utc};
use duckdb::params;

use super::files::{
    blob_referenced, check_quota, insert_file_row, query_files, FileRecord, Quota, FILE_COLUMNS,
};
use super::{from_micros, micros, no_model_change, Catalog};
use crate::error::ApiResult;
use crate::names::ProjectId;

/// One S3 credential: which API key it signs for, and its secret sealed (see `service::s3`).
#[derive(Debug, Clone)]
pub struct S3Credential {
    pub access_key_id: String,
    pub project_id: ProjectId,
    pub api_key_id: String,
    pub sealed_secret: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// An object as a listing shows it: the newest file record with that name, and its ETag.
#[derive(Debug, Clone)]
pub struct ObjectRecord {
    pub file: FileRecord,
    /// The quoted MD5 (or multipart) ETag, when the object was written through S3.
    pub etag: Option<String>,
}

/// An open multipart upload.
#[derive(Debug, Clone)]
pub struct MultipartUpload {
    pub upload_id: String,
    pub project_id: ProjectId,
    pub key: String,
    pub content_type: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The newest record per name, with its ETag: an object is the latest record of its name.
fn objects_sql(filter: &str) -> String {
    format!(
        "SELECT {FILE_COLUMNS}, etag FROM (SELECT f.*, e.etag, row_number() OVER (PARTITION BY f.name ORDER BY f.created_at DESC, f.id DESC) AS rn \
         FROM files f LEFT JOIN s3_etags e ON e.file_id = f.id WHERE {filter}) WHERE rn = 1 ORDER BY name"
    )
}

impl Catalog {
    pub fn insert_s3_credential(&self, cred: &S3Credential) -> ApiResult<()> {
        self.write(|tx, model| {
            model.existing_project(&cred.project_id)?;
            tx.execute(
                "INSERT INTO s3_credentials VALUES (?, ?, ?, ?, make_timestamp(?))",
                params![
                    cred.access_key_id,
                    cred.project_id.as_str(),
                    cred.api_key_id,
                    cred.sealed_secret,
                    micros(cred.created_at)
                ],
            )?;
            Ok(((), no_model_change()))
        })
    }

    pub fn s3_credential(&self, access_key_id: &str) -> ApiResult<Option<S3Credential>> {
        self.query(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT access_key_id, project_id, api_key_id, sealed_secret, epoch_us(created_at) FROM s3_credentials WHERE access_key_id = ?",
            )?;
            let mut rows = stmt.query([access_key_id])?;
            let Some(r) = rows.next()? else {
                return Ok(None);
            };
            let project: String = r.get(1)?;
            Ok(Some(S3Credential {
                access_key_id: r.get(0)?,
                project_id: ProjectId::parse(&project)?,
                api_key_id: r.get(2)?,
                sealed_secret: r.get(3)?,
                created_at: from_micros(r.get(4)?)?,
            }))
        })
    }

    /// The object `key` of `project`: the newest record with that name.
    pub fn object(&self, project: &ProjectId, key: &str) -> ApiResult<Option<ObjectRecord>> {
        let sql = objects_sql("f.project_id = ? AND f.name = ?");
        Ok(self
            .objects(&sql, params![project.as_str(), key])?
            .into_iter()
            .next())
    }

    /// The objects of `project` with the next `limit` names that start with `prefix`, after
    /// `after`, in key order; and whether more names follow. Two steps, so a page costs a
    /// top-`limit` scan rather than ranking every record after the cursor: the names first,
    /// then the newest record of each (every record in the names' range is read, so a name
    /// whose records straddle the limit still shows its newest).
    pub fn list_objects(
        &self,
        project: &ProjectId,
        prefix: &str,
        after: Option<&str>,
        limit: u64,
    ) -> ApiResult<(Vec<ObjectRecord>, bool)> {
        let names: Vec<String> = self.query(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name FROM files WHERE project_id = ? AND starts_with(name, ?) AND name > ? \
                 ORDER BY name LIMIT ?",
            )?;
            let rows = stmt.query_map(
                params![project.as_str(), prefix, after.unwrap_or(""), limit as i64],
                |r| r.get::<_, String>(0),
            )?;
            Ok(rows.collect::<duckdb::Result<Vec<_>>>()?)
        })?;
        let (Some(first), Some(last)) = (names.first(), names.last()) else {
            return Ok((Vec::new(), false));
        };
        let more = names.len() as u64 == limit;
        let sql = objects_sql(
            "f.project_id = ? AND starts_with(f.name, ?) AND f.name >= ? AND f.name <= ?",
        );
        let objects = self.objects(&sql, params![project.as_str(), prefix, first, last])?;
        Ok((objects, more))
    }

    fn objects(&self, sql: &str, params: &[&dyn duckdb::ToSql]) -> ApiResult<Vec<ObjectRecord>> {
        self.query(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map(params, |r| {
                let rec = super::files::file_from_row(r)?;
                let etag: Option<String> = r.get(9)?;
                Ok((rec, etag))
            })?;
            rows.map(|row| {
                let (rec, etag) = row?;
                Ok(ObjectRecord {
                    file: super::files::with_time(rec)?,
                    etag,
                })
            })
            .collect()
        })
    }

    /// Every record named `key` in `project` (an S3 delete removes them all).
    pub fn files_named(&self, project: &ProjectId, key: &str) -> ApiResult<Vec<FileRecord>> {
        self.query(|c| query_files(c, "project_id = ? AND name = ?", &[&project.as_str(), &key]))
    }

    /// Adds an object's file record with its ETag and removes the older records of the same
    /// name (a PUT replaces), in one transaction; returns the content hashes no record
    /// references any more. `multipart` is the upload this completes, whose row goes too.
    pub fn put_object(
        &self,
        rec: &FileRecord,
        quota: Quota,
        etag: &str,
        multipart: Option<&str>,
    ) -> ApiResult<Vec<String>> {
        self.write(|tx, model| {
            model.existing_project(&rec.project_id)?;
            insert_file_row(tx, rec)?;
            tx.execute(
                "INSERT OR REPLACE INTO s3_etags VALUES (?, ?)",
                params![rec.id, etag],
            )?;
            let older = query_files(
                tx,
                "project_id = ? AND name = ? AND id <> ?",
                &[&rec.project_id.as_str(), &rec.name, &rec.id],
            )?;
            for old in &older {
                tx.execute("DELETE FROM files WHERE id = ?", [&old.id])?;
                tx.execute("DELETE FROM s3_etags WHERE file_id = ?", [&old.id])?;
            }
            if let Some(upload_id) = multipart {
                tx.execute("DELETE FROM s3_multipart WHERE upload_id = ?", [upload_id])?;
            }
            check_quota(tx, &rec.project_id, quota, true)?;
            let mut released = Vec::new();
            for old in older {
                if !blob_referenced(tx, &old.sha256)? && !released.contains(&old.sha256) {
                    released.push(old.sha256);
                }
            }
            Ok((released, no_model_change()))
        })
    }

    pub fn insert_multipart(&self, upload: &MultipartUpload) -> ApiResult<()> {
        self.write(|tx, model| {
            model.existing_project(&upload.project_id)?;
            tx.execute(
                "INSERT INTO s3_multipart VALUES (?, ?, ?, ?, make_timestamp(?))",
                params![
                    upload.upload_id,
                    upload.project_id.as_str(),
                    upload.key,
                    upload.content_type,
                    micros(upload.created_at)
                ],
            )?;
            Ok(((), no_model_change()))
        })
    }

    pub fn multipart(
        &self,
        project: &ProjectId,
        upload_id: &str,
    ) -> ApiResult<Option<MultipartUpload>> {
        self.query(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT upload_id, project_id, object_key, content_type, epoch_us(created_at) FROM s3_multipart WHERE project_id = ? AND upload_id = ?",
            )?;
            let mut rows = stmt.query([project.as_str(), upload_id])?;
            let Some(r) = rows.next()? else {
                return Ok(None);
            };
            let project: String = r.get(1)?;
            Ok(Some(MultipartUpload {
                upload_id: r.get(0)?,
                project_id: ProjectId::parse(&project)?,
                key: r.get(2)?,
                content_type: r.get(3)?,
                created_at: from_micros(r.get(4)?)?,
            }))
        })
    }

    /// Removes a multipart upload's row; whether there was one.
    pub fn delete_multipart(&self, project: &ProjectId, upload_id: &str) -> ApiResult<bool> {
        self.write(|tx, _| {
            let n = tx.execute(
                "DELETE FROM s3_multipart WHERE project_id = ? AND upload_id = ?",
                [project.as_str(), upload_id],
            )?;
            Ok((n > 0, no_model_change()))
        })
    }

    /// The ids of `project`'s open multipart uploads (every project's with `None`).
    pub fn multipart_ids(&self, project: Option<&ProjectId>) -> ApiResult<Vec<String>> {
        self.query(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT upload_id FROM s3_multipart WHERE ?::VARCHAR IS NULL OR project_id = ?",
            )?;
            let p = project.map(ProjectId::as_str);
            let rows = stmt.query_map(duckdb::params![p, p], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<duckdb::Result<Vec<_>>>()?)
        })
    }

    /// Multipart uploads begun before `before` (the cleaner aborts them).
    pub fn stale_multiparts(&self, before: DateTime<Utc>) -> ApiResult<Vec<MultipartUpload>> {
        self.query(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT upload_id, project_id, object_key, content_type, epoch_us(created_at) FROM s3_multipart WHERE created_at < make_timestamp(?)",
            )?;
            let rows = stmt.query_map([micros(before)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?;
            rows.map(|row| {
                let (upload_id, project, key, content_type, us) = row?;
                Ok(MultipartUpload {
                    upload_id,
                    project_id: ProjectId::parse(&project)?,
                    key,
                    content_type,
                    created_at: from_micros(us)?,
                })
            })
            .collect()
        })
    }
}
