//! Files: the `FileService` (construction, lookups, deletion with blob release, work files) and
//! the helpers its upload flows share; the flows themselves live in the submodules, not here.

mod admission;
mod cleaner;
mod objects;
mod parts;
mod prepared;
mod publish;
mod sessions;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::blocking;
use crate::catalog::files::{FileRecord, PreparedUpload, Quota};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::files::keyed::{KeyedMutex, KeyedRwLock};
use crate::files::spool::spool;
use crate::files::{is_sha256_hex, BlobStore, SpoolLimits, Spooled};
use crate::names::ProjectId;

pub use objects::{Digests, ObjectPut, MAX_PARTS};
pub use parts::Part;
pub use sessions::{missing_chunks, MAX_CHUNKS, MAX_CHUNK_BYTES, MIN_CHUNK_BYTES};

/// What a client tells us about a new file.
pub struct NewFile {
    pub name: String,
    pub content_type: Option<String>,
    pub tags: Option<Value>,
    /// The client's own id (seed JSON blob API).
    pub client_id: Option<String>,
}

impl NewFile {
    /// The record this file becomes once its content is stored as blob `sha`.
    fn into_record(self, project: ProjectId, sha: &str, size: u64) -> FileRecord {
        FileRecord {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: project,
            name: self.name,
            sha256: sha.to_string(),
            size_bytes: size,
            content_type: self.content_type,
            tags: self.tags,
            client_id: self.client_id,
            created_at: crate::catalog::now(),
        }
    }
}

pub struct FileService {
    pub store: Arc<dyn BlobStore>,
    catalog: Arc<Catalog>,
    files_dir: PathBuf,
    tmp_dir: PathBuf,
    /// Files DuckDB reads or writes during imports and exports; emptied at start-up.
    work_dir: PathBuf,
    chunks_dir: PathBuf,
    blob_locks: KeyedMutex,
    session_locks: KeyedMutex,
    /// Per multipart upload: shared by parts being received, exclusive for Complete/Abort.
    multipart_locks: KeyedRwLock,
    min_free_bytes: u64,
    max_file_bytes: u64,
    quota: Quota,
    upload_ttl: Duration,
}

impl FileService {
    pub fn new(
        config: &Config,
        catalog: Arc<Catalog>,
        store: Arc<dyn BlobStore>,
    ) -> std::io::Result<Self> {
        let files_dir = config.data_dir.join("files");
        let tmp_dir = files_dir.join("tmp");
        let chunks_dir = files_dir.join("uploads");
        std::fs::create_dir_all(&tmp_dir)?;
        std::fs::create_dir_all(&chunks_dir)?;
        let work_dir = files_dir.join("work");
        // Anything here belongs to an import or export a previous process did not finish.
        let _ = std::fs::remove_dir_all(&work_dir);
        std::fs::create_dir_all(&work_dir)?;
        Ok(Self {
            work_dir,
            store,
            catalog,
            files_dir,
            tmp_dir,
            chunks_dir,
            blob_locks: KeyedMutex::default(),
            session_locks: KeyedMutex::default(),
            multipart_locks: KeyedRwLock::default(),
            min_free_bytes: config.min_free_bytes,
            max_file_bytes: config.max_file_bytes,
            quota: Quota {
                max_bytes: config.project_quota_bytes,
                max_files: config.project_quota_files,
            },
            upload_ttl: Duration::from_secs(config.upload_ttl_secs),
        })
    }

    /// Runs catalog work on the blocking pool.
    async fn on_catalog<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Catalog) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let catalog = self.catalog.clone();
        blocking(move || f(&catalog)).await
    }

    /// `on_catalog` for work about one thing of `project` named by `key` (a file id, a hash,
    /// an upload key or session id): owns copies of both so the caller need not.
    async fn on_project_key<T: Send + 'static>(
        &self,
        project: &ProjectId,
        key: &str,
        f: impl FnOnce(&Catalog, &ProjectId, &str) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let (project, key) = (project.clone(), key.to_string());
        self.on_catalog(move |catalog| f(catalog, &project, &key))
            .await
    }

    /// When an upload begun `now` expires (prepared uploads and sessions share the TTL).
    fn expires_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.upload_ttl).unwrap_or_default()
    }

    /// Deletes a blob nothing references any more (caller holds its lock or it is unreachable).
    async fn release_if_unused(&self, sha: &str) {
        let hash = sha.to_string();
        match self
            .on_catalog(move |catalog| catalog.blob_in_use(&hash))
            .await
        {
            Ok(false) => {
                if let Err(e) = self.store.delete(sha).await {
                    tracing::warn!(sha, error = %e, "could not delete an unused blob");
                }
            }
            Ok(true) => {}
            Err(e) => tracing::warn!(sha, error = %e, "could not check blob references"),
        }
    }

    /// Where DuckDB reads import files and writes exports (the only files outside the table
    /// files it may touch).
    pub fn work_dir(&self) -> &std::path::Path {
        &self.work_dir
    }

    /// A fresh path in the work directory (removed when the returned guard drops).
    pub fn work_file(&self, suffix: &str) -> Spooled {
        let path = self
            .work_dir
            .join(format!("{}{suffix}", uuid::Uuid::new_v4().simple()));
        Spooled::from_parts(path, String::new(), 0)
    }

    /// A file's content as a local file DuckDB can read, valid while the guard lives.
    /// Local blobs are hard-linked (instant, and safe from a concurrent delete of the
    /// record); other backends are copied down first.
    #[tracing::instrument(skip_all, fields(project = %rec.project_id, file = %rec.id))]
    pub async fn local_copy(&self, rec: &FileRecord) -> ApiResult<Spooled> {
        if let Some(blob) = self.store.local_path(&rec.sha256) {
            // A link takes no space; only the MIN_FREE_BYTES reserve is checked here. What
            // the import itself writes is DuckDB's to check (it rolls back on a full disk).
            self.admit(None)?;
            let link = self.work_file("");
            let target = link.path().to_path_buf();
            blocking(move || match std::fs::hard_link(&blob, &target) {
                Ok(()) => Ok(()),
                // Another filesystem: a copy does the same job.
                Err(_) => std::fs::copy(&blob, &target)
                    .map(|_| ())
                    .map_err(Into::into),
            })
            .await?;
            return Ok(link);
        }
        self.admit(Some(rec.size_bytes))?;
        let body = self.store.read(&rec.sha256, 0, rec.size_bytes).await?;
        spool(&self.work_dir, body, SpoolLimits::default()).await
    }

    #[tracing::instrument(skip_all, fields(project = %project, file = %id))]
    pub async fn get(&self, project: &ProjectId, id: &str) -> ApiResult<FileRecord> {
        self.on_project_key(project, id, |catalog, p, i| catalog.file(p, i))
            .await?
            .ok_or_else(|| file_not_found(project, id))
    }

    /// The oldest record of `project` with this content.
    #[tracing::instrument(skip_all, fields(project = %project, sha256 = %sha))]
    pub async fn get_by_sha(&self, project: &ProjectId, sha: &str) -> ApiResult<FileRecord> {
        self.all_by_sha(project, sha)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| file_not_found(project, sha))
    }

    #[tracing::instrument(skip_all, fields(project = %project, sha256 = %sha))]
    pub async fn all_by_sha(&self, project: &ProjectId, sha: &str) -> ApiResult<Vec<FileRecord>> {
        if !is_sha256_hex(sha) {
            return Ok(Vec::new());
        }
        self.on_project_key(project, sha, |catalog, p, s| catalog.files_by_sha(p, s))
            .await
    }

    #[tracing::instrument(skip_all, fields(project = %project, client_id = %client_id))]
    pub async fn get_by_client_id(
        &self,
        project: &ProjectId,
        client_id: &str,
    ) -> ApiResult<FileRecord> {
        self.on_project_key(project, client_id, |catalog, p, c| {
            catalog.file_by_client_id(p, c)
        })
        .await?
        .ok_or_else(|| file_not_found(project, client_id))
    }

    #[tracing::instrument(skip_all, fields(project = %project, offset = offset, limit = limit))]
    pub async fn list(
        &self,
        project: &ProjectId,
        offset: u64,
        limit: u64,
    ) -> ApiResult<(Vec<FileRecord>, u64)> {
        let p = project.clone();
        self.on_catalog(move |catalog| catalog.list_files(&p, offset, limit))
            .await
    }

    #[tracing::instrument(skip_all, fields(project = %project))]
    pub async fn staged(&self, project: &ProjectId) -> ApiResult<Vec<PreparedUpload>> {
        let p = project.clone();
        self.on_catalog(move |catalog| catalog.staged(&p)).await
    }

    /// Deletes file records and the blobs no record references any more.
    #[tracing::instrument(skip_all, fields(project = %project, files = records.len()))]
    pub async fn delete(&self, project: &ProjectId, records: Vec<FileRecord>) -> ApiResult<()> {
        for rec in records {
            let _guard = self.blob_locks.lock(&rec.sha256).await;
            let deleted = self
                .on_project_key(project, &rec.id, |catalog, p, id| {
                    catalog.delete_files(p, &[id.to_string()])
                })
                .await?;
            for (rec, still_used) in deleted {
                if !still_used {
                    self.store.delete(&rec.sha256).await?;
                }
            }
        }
        Ok(())
    }

    /// Releases blobs whose rows are already gone (a deleted project, replaced or expired
    /// uploads), each under its lock so a concurrent upload of the same content keeps it.
    #[tracing::instrument(skip_all, fields(blobs = hashes.len()))]
    pub async fn release_blobs(&self, hashes: Vec<String>) {
        for sha in hashes {
            let _guard = self.blob_locks.lock(&sha).await;
            self.release_if_unused(&sha).await;
        }
    }

    #[tracing::instrument(skip_all, fields(project = %project))]
    pub async fn project_blobs(&self, project: &ProjectId) -> ApiResult<Vec<String>> {
        let p = project.clone();
        self.on_catalog(move |catalog| catalog.project_blobs(&p))
            .await
    }
}

/// SHA-256 (hex) and length of everything `inputs` yield in order, each block also handed to
/// `sink`. Read in 1 MiB blocks; hashing a file and assembling chunks share this loop.
fn read_hashing<R: Read>(
    inputs: impl IntoIterator<Item = std::io::Result<R>>,
    mut sink: impl FnMut(&[u8]) -> ApiResult<()>,
) -> ApiResult<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    for input in inputs {
        let mut input = input?;
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            sink(&buf[..n])?;
            size += n as u64;
        }
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Something a client uploads into over several requests, which expires.
#[derive(Clone, Copy)]
enum Pending {
    /// A prepared upload of the staged flow, named by its upload key.
    UploadKey,
    /// A resumable upload session, named by its id.
    Session,
}

impl Pending {
    /// 404 with the code clients of the reference branch on.
    fn not_found(self, key: &str) -> ApiError {
        match self {
            Self::UploadKey => ApiError::new(
                ErrorCode::StagedFileNotFound,
                format!("Staged file with upload key '{key}' not found"),
            ),
            Self::Session => ApiError::new(
                ErrorCode::UploadSessionNotFound,
                format!("Upload session '{key}' not found"),
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::UploadKey => "Upload key",
            Self::Session => "Upload session",
        }
    }
}

/// A prepared upload or session looked up by `key`: 404 if unknown, 410 if expired.
fn require_live<T>(
    found: Option<T>,
    what: Pending,
    key: &str,
    expires_at: impl FnOnce(&T) -> DateTime<Utc>,
) -> ApiResult<T> {
    let item = found.ok_or_else(|| what.not_found(key))?;
    let expires_at = expires_at(&item);
    if expires_at < crate::catalog::now() {
        return Err(ApiError::new(
            ErrorCode::UploadSessionExpired,
            format!(
                "{} '{key}' expired at {}",
                what.name(),
                expires_at.to_rfc3339()
            ),
        )
        .with_details(serde_json::json!({ "expires_at": expires_at.to_rfc3339() })));
    }
    Ok(item)
}

/// 404 `file_not_found` for a file of `project` named by its id, hash or client id.
fn file_not_found(project: &ProjectId, id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::FileNotFound,
        format!("File '{id}' not found in project '{project}'"),
    )
    .with_details(serde_json::json!({ "file_id": id, "project_id": project }))
}
