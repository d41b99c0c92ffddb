//! The reference's staged flow: prepare an upload key, upload its content, register it as a
//! file. It must not handle chunked sessions or sweep expired keys (the cleaner does).

use bytes::Bytes;
use futures_util::Stream;
use serde_json::Value;

use super::{require_live, FileService, NewFile, Pending};
use crate::catalog::files::{FileRecord, PreparedUpload};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::ProjectId;

impl FileService {
    #[tracing::instrument(skip_all, fields(project = %project, name = %filename))]
    pub async fn prepare(
        &self,
        project: &ProjectId,
        filename: String,
        content_type: Option<String>,
        expected_size: Option<u64>,
        tags: Option<Value>,
    ) -> ApiResult<PreparedUpload> {
        self.admit(expected_size)?;
        let now = crate::catalog::now();
        let up = PreparedUpload {
            upload_key: uuid::Uuid::new_v4().simple().to_string(),
            project_id: project.clone(),
            filename,
            content_type,
            expected_size,
            tags,
            sha256: None,
            size_bytes: None,
            created_at: now,
            expires_at: self.expires_at(now),
        };
        let (rec, quota) = (up.clone(), self.quota);
        self.on_catalog(move |catalog| catalog.insert_prepared(&rec, quota))
            .await?;
        Ok(up)
    }

    /// A prepared upload of `project`: 404 if unknown, 410 if expired.
    // Upload keys stay out of the logs, like every other key a client presents.
    #[tracing::instrument(skip_all, fields(project = %project))]
    pub async fn prepared(&self, project: &ProjectId, key: &str) -> ApiResult<PreparedUpload> {
        let found = self
            .on_project_key(project, key, |catalog, p, k| catalog.prepared(p, k))
            .await?;
        require_live(found, Pending::UploadKey, key, |up| up.expires_at)
    }

    /// Stores the content of a prepared upload (a re-upload replaces it).
    #[tracing::instrument(skip_all, fields(project = %project))]
    pub async fn upload_prepared<S, E>(
        &self,
        project: &ProjectId,
        key: &str,
        body: S,
    ) -> ApiResult<(String, u64)>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let up = self.prepared(project, key).await?;
        let credit = up.size_bytes.or(up.expected_size).unwrap_or(0);
        let spooled = self
            .receive_reserved(project, body, up.expected_size, credit)
            .await?;
        let (p, k, quota) = (project.clone(), key.to_string(), self.quota);
        let (sha, size, previous) = self
            .commit(spooled, move |catalog, sha, size| {
                let previous = catalog.set_prepared_content(&p, &k, sha, size, quota)?;
                Ok((sha.to_string(), size, previous))
            })
            .await?;
        if let Some(prev) = previous.filter(|p| *p != sha) {
            self.release_blobs(vec![prev]).await;
        }
        Ok((sha, size))
    }

    /// Turns an uploaded prepared file into a file record.
    #[tracing::instrument(skip_all, fields(project = %project))]
    pub async fn register(
        &self,
        project: &ProjectId,
        key: &str,
        name: Option<String>,
        tags: Option<Value>,
    ) -> ApiResult<FileRecord> {
        let up = self.prepared(project, key).await?;
        let (Some(sha), Some(size)) = (up.sha256.clone(), up.size_bytes) else {
            return Err(ApiError::new(
                ErrorCode::FileNotUploaded,
                format!(
                    "nothing was uploaded for key '{key}' yet: POST the file to its upload_url first"
                ),
            ));
        };
        let _guard = self.blob_locks.lock(&sha).await;
        let meta = NewFile {
            name: name.unwrap_or(up.filename),
            content_type: up.content_type,
            tags: tags.or(up.tags),
            client_id: None,
        };
        let rec = meta.into_record(project.clone(), &sha, size);
        let (r, k, quota) = (rec.clone(), key.to_string(), self.quota);
        self.on_catalog(move |catalog| catalog.register_prepared(&k, &r, quota))
            .await?;
        Ok(rec)
    }
}
