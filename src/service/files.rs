//! Files: single-shot and staged uploads, resumable chunked sessions, deletion with blob
//! release, and the periodic cleaner. Blob writes and catalog rows change under a per-hash lock.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::blocking;
use crate::catalog::files::{ChunkRecord, FileRecord, PreparedUpload, Quota, UploadSession};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::files::keyed::KeyedMutex;
use crate::files::spool::{disk_error, spool};
use crate::files::{is_sha256_hex, BlobStore, SpoolLimits, Spooled};
use crate::names::ProjectId;

/// Smallest and largest chunk a resumable session may use, and its most chunks.
pub const MIN_CHUNK_BYTES: u64 = 1;
pub const MAX_CHUNK_BYTES: u64 = 256 * 1024 * 1024;
pub const MAX_CHUNKS: u64 = 100_000;

/// What a client tells us about a new file.
pub struct NewFile {
    pub name: String,
    pub content_type: Option<String>,
    pub tags: Option<Value>,
    /// The client's own id (seed JSON blob API).
    pub client_id: Option<String>,
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
            min_free_bytes: config.min_free_bytes,
            max_file_bytes: config.max_file_bytes,
            quota: Quota {
                max_bytes: config.project_quota_bytes,
                max_files: config.project_quota_files,
            },
            upload_ttl: Duration::from_secs(config.upload_ttl_secs),
        })
    }

    /// The effective size limit: MAX_FILE_BYTES and the backend's own, whichever is smaller.
    fn max_bytes(&self) -> Option<u64> {
        let configured = (self.max_file_bytes > 0).then_some(self.max_file_bytes);
        match (configured, self.store.max_object_bytes()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Refuses work up front: too large for MAX_FILE_BYTES (413) or for the free space (507).
    pub fn admit(&self, incoming: Option<u64>) -> ApiResult<()> {
        if let (Some(max), Some(n)) = (self.max_bytes(), incoming) {
            if n > max {
                return Err(ApiError::PayloadTooLarge(format!(
                    "file of {n} bytes exceeds the limit of {max} bytes (MAX_FILE_BYTES, or the storage backend's object limit)"
                )));
            }
        }
        let free = crate::files::disk::available_space(&self.files_dir)?;
        let needed = self.min_free_bytes.saturating_add(incoming.unwrap_or(0));
        if free < needed {
            return Err(ApiError::InsufficientStorage(format!(
                "not enough free space: {free} bytes free, {needed} needed (upload + MIN_FREE_BYTES)"
            )));
        }
        Ok(())
    }

    /// Streams `body` to a spool, checking MAX_FILE_BYTES and an announced exact size.
    pub async fn receive<S, E>(&self, body: S, exact_size: Option<u64>) -> ApiResult<Spooled>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.receive_announced(body, exact_size, exact_size).await
    }

    /// `receive`, admitting `announced` bytes (a Content-Length, say) up front.
    async fn receive_announced<S, E>(
        &self,
        body: S,
        announced: Option<u64>,
        exact_size: Option<u64>,
    ) -> ApiResult<Spooled>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.admit(announced)?;
        let limits = SpoolLimits {
            max_bytes: self.max_bytes(),
            exact_size,
        };
        spool(&self.tmp_dir, body, limits).await
    }

    /// Runs catalog work on the blocking pool.
    async fn on_catalog<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Catalog) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let catalog = self.catalog.clone();
        blocking(move || f(&catalog)).await
    }

    /// Publishes a spool as a blob and runs the catalog change that references it, under the
    /// blob's lock so a concurrent delete of the same content cannot remove it in between.
    async fn commit<T: Send + 'static>(
        &self,
        spooled: Spooled,
        catalog_change: impl FnOnce(&Catalog, &str, u64) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let (sha, size) = (spooled.sha256.clone(), spooled.size);
        let _guard = self.blob_locks.lock(&sha).await;
        self.store.put(spooled).await?;
        let hash = sha.clone();
        let result = self
            .on_catalog(move |catalog| catalog_change(catalog, &hash, size))
            .await;
        if result.is_err() {
            self.release_if_unused(&sha).await;
        }
        result
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

    /// Publishes a spool (hashed and fsynced) as a new file record of `project`.
    async fn publish(
        &self,
        project: &ProjectId,
        meta: NewFile,
        spooled: Spooled,
    ) -> ApiResult<FileRecord> {
        let quota = self.quota;
        let project = project.clone();
        self.commit(spooled, move |catalog, sha, size| {
            let rec = FileRecord {
                id: uuid::Uuid::new_v4().to_string(),
                project_id: project,
                name: meta.name,
                sha256: sha.to_string(),
                size_bytes: size,
                content_type: meta.content_type,
                tags: meta.tags,
                client_id: meta.client_id,
                created_at: crate::catalog::now(),
            };
            catalog.insert_file(&rec, quota)?;
            Ok(rec)
        })
        .await
    }

    /// Publishes a file this process wrote (an export) as a new record of `project`.
    pub async fn create_from_path(
        &self,
        project: &ProjectId,
        meta: NewFile,
        written: Spooled,
    ) -> ApiResult<FileRecord> {
        let spooled = blocking(move || {
            // Hashing (CPU) and fsync (disk) of the same file overlap on two threads.
            let (hashed, synced) = std::thread::scope(|scope| {
                let sync = scope.spawn(|| std::fs::File::open(written.path())?.sync_data());
                (hash_file(written.path()), sync.join())
            });
            synced.map_err(|_| ApiError::internal("fsync thread panicked"))??;
            let (sha, size) = hashed?;
            Ok(Spooled::from_parts(written.take_path(), sha, size))
        })
        .await?;
        self.publish(project, meta, spooled).await
    }

    /// Single-shot upload: the body becomes a file record at once.
    pub async fn create<S, E>(
        &self,
        project: &ProjectId,
        meta: NewFile,
        body: S,
        length: Option<u64>,
    ) -> ApiResult<FileRecord>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let spooled = self.receive_announced(body, length, None).await?;
        self.publish(project, meta, spooled).await
    }

    pub async fn get(&self, project: &ProjectId, id: &str) -> ApiResult<FileRecord> {
        let (p, i) = (project.clone(), id.to_string());
        self.on_catalog(move |catalog| catalog.file(&p, &i))
            .await?
            .ok_or_else(|| file_not_found(id))
    }

    /// The oldest record of `project` with this content.
    pub async fn get_by_sha(&self, project: &ProjectId, sha: &str) -> ApiResult<FileRecord> {
        self.all_by_sha(project, sha)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| file_not_found(sha))
    }

    pub async fn all_by_sha(&self, project: &ProjectId, sha: &str) -> ApiResult<Vec<FileRecord>> {
        if !is_sha256_hex(sha) {
            return Ok(Vec::new());
        }
        let (p, s) = (project.clone(), sha.to_string());
        self.on_catalog(move |catalog| catalog.files_by_sha(&p, &s))
            .await
    }

    pub async fn get_by_client_id(
        &self,
        project: &ProjectId,
        client_id: &str,
    ) -> ApiResult<FileRecord> {
        let (p, c) = (project.clone(), client_id.to_string());
        self.on_catalog(move |catalog| catalog.file_by_client_id(&p, &c))
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("blob {client_id:?} not found")))
    }

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

    pub async fn staged(&self, project: &ProjectId) -> ApiResult<Vec<PreparedUpload>> {
        let p = project.clone();
        self.on_catalog(move |catalog| catalog.staged(&p)).await
    }

    /// Deletes file records and the blobs no record references any more.
    pub async fn delete(&self, project: &ProjectId, records: Vec<FileRecord>) -> ApiResult<()> {
        for rec in records {
            let _guard = self.blob_locks.lock(&rec.sha256).await;
            let (p, id) = (project.clone(), rec.id.clone());
            let deleted = self
                .on_catalog(move |catalog| catalog.delete_files(&p, &[id]))
                .await?;
            for (rec, still_used) in deleted {
                if !still_used {
                    self.store.delete(&rec.sha256).await?;
                }
            }
        }
        Ok(())
    }

    /// Releases the blobs of a deleted project (its rows are already gone).
    pub async fn release_blobs(&self, hashes: Vec<String>) {
        for sha in hashes {
            let _guard = self.blob_locks.lock(&sha).await;
            self.release_if_unused(&sha).await;
        }
    }

    pub async fn project_blobs(&self, project: &ProjectId) -> ApiResult<Vec<String>> {
        let p = project.clone();
        self.on_catalog(move |catalog| catalog.project_blobs(&p))
            .await
    }

    // ---- prepare → upload → register (the reference's staged flow) ----

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
            expires_at: now + chrono::Duration::from_std(self.upload_ttl).unwrap_or_default(),
        };
        let rec = up.clone();
        self.on_catalog(move |catalog| catalog.insert_prepared(&rec))
            .await?;
        Ok(up)
    }

    /// A prepared upload of `project`: 404 if unknown, 410 if expired.
    pub async fn prepared(&self, project: &ProjectId, key: &str) -> ApiResult<PreparedUpload> {
        let (p, k) = (project.clone(), key.to_string());
        let up = self
            .on_catalog(move |catalog| catalog.prepared(&p, &k))
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("upload key {key:?} not found")))?;
        if up.expires_at < crate::catalog::now() {
            return Err(ApiError::Gone(format!(
                "upload key {key:?} expired at {}",
                up.expires_at.to_rfc3339()
            )));
        }
        Ok(up)
    }

    /// Stores the content of a prepared upload (a re-upload replaces it).
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
        let spooled = self.receive(body, up.expected_size).await?;
        let k = key.to_string();
        let (sha, size, previous) = self
            .commit(spooled, move |catalog, sha, size| {
                let previous = catalog.set_prepared_content(&k, sha, size)?;
                Ok((sha.to_string(), size, previous))
            })
            .await?;
        if let Some(prev) = previous.filter(|p| *p != sha) {
            let _guard = self.blob_locks.lock(&prev).await;
            self.release_if_unused(&prev).await;
        }
        Ok((sha, size))
    }

    /// Turns an uploaded prepared file into a file record.
    pub async fn register(
        &self,
        project: &ProjectId,
        key: &str,
        name: Option<String>,
        tags: Option<Value>,
    ) -> ApiResult<FileRecord> {
        let up = self.prepared(project, key).await?;
        let (Some(sha), Some(size)) = (up.sha256.clone(), up.size_bytes) else {
            return Err(ApiError::bad_request(format!(
                "nothing was uploaded for key {key:?} yet: POST the file to its upload_url first"
            )));
        };
        let _guard = self.blob_locks.lock(&sha).await;
        let rec = FileRecord {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: project.clone(),
            name: name.unwrap_or(up.filename),
            sha256: sha,
            size_bytes: size,
            content_type: up.content_type,
            tags: tags.or(up.tags),
            client_id: None,
            created_at: crate::catalog::now(),
        };
        let (r, k, quota) = (rec.clone(), key.to_string(), self.quota);
        self.on_catalog(move |catalog| catalog.register_prepared(&k, &r, quota))
            .await?;
        Ok(rec)
    }

    // ---- resumable sessions ----

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
            expires_at: now + chrono::Duration::from_std(self.upload_ttl).unwrap_or_default(),
        };
        if session.chunk_count() > MAX_CHUNKS {
            return Err(ApiError::bad_request(format!(
                "{} chunks needed; at most {MAX_CHUNKS} are allowed: use larger chunks",
                session.chunk_count()
            )));
        }
        self.admit(Some(total_size))?;
        let s = session.clone();
        self.on_catalog(move |catalog| catalog.insert_session(&s))
            .await?;
        Ok(session)
    }

    /// A live session with its chunks: 404 if unknown, 410 if expired.
    pub async fn session(
        &self,
        project: &ProjectId,
        id: &str,
    ) -> ApiResult<(UploadSession, Vec<ChunkRecord>)> {
        let (p, i) = (project.clone(), id.to_string());
        let (session, chunks) = self
            .on_catalog(move |catalog| catalog.session(&p, &i))
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("upload session {id:?} not found")))?;
        if session.expires_at < crate::catalog::now() {
            return Err(ApiError::Gone(format!(
                "upload session {id:?} expired at {}",
                session.expires_at.to_rfc3339()
            )));
        }
        Ok((session, chunks))
    }

    fn chunk_path(&self, session: &str, idx: u64, sha: &str) -> PathBuf {
        self.chunks_dir
            .join(session)
            .join(format!("{idx}.{sha}.chunk"))
    }

    /// Stores chunk `idx`. Returns `true` when it was new, `false` for an identical retry.
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
        let spooled = spool(
            &self.tmp_dir,
            body,
            SpoolLimits {
                max_bytes: None,
                exact_size: Some(expected_len),
            },
        )
        .await
        .map_err(|e| match e {
            ApiError::BadRequest { message, .. } => ApiError::bad_request_with(
                format!("chunk {idx}: {message}"),
                serde_json::json!({ "expected_size": expected_len }),
            ),
            other => other,
        })?;
        if let Some(claimed) = claimed_sha.map(|c| c.to_ascii_lowercase()) {
            if claimed != spooled.sha256 {
                return Err(ApiError::unprocessable_with(
                    format!("chunk {idx} checksum mismatch"),
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
        let catalog = self.catalog.clone();
        blocking(move || {
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
                    Err(ApiError::conflict_with(
                        format!("chunk {idx} was already stored with different content"),
                        serde_json::json!({ "stored_sha256": stored.sha256, "received_sha256": record.sha256 }),
                    ))
                }
            }
        })
        .await
    }

    /// Assembles all chunks, verifies the whole-file checksum and creates the file record.
    /// Exactly one of several concurrent completes wins; the others get 409.
    pub async fn complete_session(&self, project: &ProjectId, id: &str) -> ApiResult<FileRecord> {
        let Some(_guard) = self.session_locks.try_lock(id) else {
            return Err(ApiError::conflict(format!(
                "upload session {id:?} is already being completed"
            )));
        };
        let (session, chunks) = self.session(project, id).await?;
        let missing: Vec<u64> = missing_chunks(&session, &chunks);
        if !missing.is_empty() {
            return Err(ApiError::conflict_with(
                format!("{} chunk(s) are missing", missing.len()),
                serde_json::json!({ "missing_chunks": missing }),
            ));
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
            return Err(ApiError::conflict(format!(
                "assembled {} bytes but the session announced {}",
                spooled.size, session.total_size
            )));
        }
        if let Some(expected) = &session.expected_sha256 {
            if *expected != spooled.sha256 {
                return Err(ApiError::unprocessable_with(
                    "whole-file checksum mismatch",
                    serde_json::json!({ "expected": expected, "actual": spooled.sha256 }),
                ));
            }
        }
        let quota = self.quota;
        let (sid, s) = (id.to_string(), session.clone());
        let rec = self
            .commit(spooled, move |catalog, sha, size| {
                let rec = FileRecord {
                    id: uuid::Uuid::new_v4().to_string(),
                    project_id: s.project_id,
                    name: s.name,
                    sha256: sha.to_string(),
                    size_bytes: size,
                    content_type: s.content_type,
                    tags: None,
                    client_id: None,
                    created_at: crate::catalog::now(),
                };
                catalog.complete_session(&sid, &rec, quota)?;
                Ok(rec)
            })
            .await?;
        self.remove_chunk_dir(id).await;
        Ok(rec)
    }

    pub async fn abort_session(&self, project: &ProjectId, id: &str) -> ApiResult<()> {
        let _guard = self.session_locks.lock(id).await;
        let (p, i) = (project.clone(), id.to_string());
        let existed = self
            .on_catalog(move |catalog| {
                if catalog.session(&p, &i)?.is_none() {
                    return Ok(false);
                }
                catalog.delete_session(&i)
            })
            .await?;
        if !existed {
            return Err(ApiError::NotFound(format!(
                "upload session {id:?} not found"
            )));
        }
        self.remove_chunk_dir(id).await;
        Ok(())
    }

    async fn remove_chunk_dir(&self, id: &str) {
        let dir = self.chunks_dir.join(id);
        let _ = tokio::fs::remove_dir_all(dir).await;
    }

    /// Removes expired prepared uploads and sessions, chunk directories without a session,
    /// and temp files older than the upload TTL (left by a crash mid-upload).
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
            let Some(_guard) = self.session_locks.try_lock(&id) else {
                continue;
            };
            let i = id.clone();
            self.on_catalog(move |catalog| catalog.delete_session(&i))
                .await?;
            self.remove_chunk_dir(&id).await;
        }
        let live = self
            .on_catalog(move |catalog| catalog.session_ids())
            .await?;
        let (chunks_dir, tmp_dir, ttl) = (
            self.chunks_dir.clone(),
            self.tmp_dir.clone(),
            self.upload_ttl,
        );
        blocking(move || {
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

/// SHA-256 (hex) and length of a file, read in 1 MiB blocks.
fn hash_file(path: &Path) -> ApiResult<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

pub fn missing_chunks(session: &UploadSession, chunks: &[ChunkRecord]) -> Vec<u64> {
    let have: std::collections::HashSet<u64> = chunks.iter().map(|c| c.idx).collect();
    (0..session.chunk_count())
        .filter(|i| !have.contains(i))
        .collect()
}

/// Concatenates chunk files into one fsynced temp file, hashing as it goes.
fn assemble(parts: &[PathBuf], out: PathBuf) -> ApiResult<Spooled> {
    let file = std::fs::File::create(&out)?;
    // Owned from here on: any error below removes the partial file.
    let spooled_guard = Spooled::from_parts(out.clone(), String::new(), 0);
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for part in parts {
        let mut input = std::fs::File::open(part)?;
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            writer.write_all(&buf[..n]).map_err(disk_error)?;
            size += n as u64;
        }
    }
    let file = writer
        .into_inner()
        .map_err(|e| disk_error(e.into_error()))?;
    file.sync_all().map_err(disk_error)?;
    let path = spooled_guard.take_path();
    Ok(Spooled::from_parts(
        path,
        hex::encode(hasher.finalize()),
        size,
    ))
}

fn file_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("file {id:?} not found"))
}
