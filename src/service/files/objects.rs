//! Files as S3 objects (ADR 0032): a PUT that replaces the records of its key, copies that
//! share the blob, and multipart uploads whose parts wait under `files/s3-parts/{upload}`.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use md5::{Digest as _, Md5};
use parking_lot::Mutex;

use super::{FileService, NewFile};
use crate::catalog::files::FileRecord;
use crate::catalog::s3::MultipartUpload;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::files::spool::disk_error;
use crate::files::Spooled;
use crate::names::ProjectId;
use crate::service::blocking;

/// Most parts one multipart upload may have, as in S3.
pub const MAX_PARTS: u32 = 10_000;

/// What a client sends with an object's content.
pub struct ObjectPut {
    pub key: String,
    pub content_type: Option<String>,
    /// The body's SHA-256 the client signed (`x-amz-content-sha256`), checked once received.
    pub expected_sha256: Option<String>,
    /// The body's MD5 (`Content-MD5`), checked once received.
    pub expected_md5: Option<[u8; 16]>,
}

/// A stored part of a multipart upload.
#[derive(Debug, Clone)]
pub struct Part {
    pub number: u32,
    pub md5: [u8; 16],
    pub size: u64,
    pub path: PathBuf,
}

impl Part {
    pub fn etag(&self) -> String {
        format!("\"{}\"", hex::encode(self.md5))
    }
}

/// 400 (`checksum_mismatch`, mapped to S3's `BadDigest` / `XAmzContentSHA256Mismatch`):
/// `digest` says which check failed.
fn digest_mismatch(digest: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ChecksumMismatch,
        format!("the body does not match its {digest}"),
    )
    .with_details(serde_json::json!({ "digest": digest }))
}

impl FileService {
    fn parts_dir(&self, upload_id: &str) -> PathBuf {
        self.files_dir.join("s3-parts").join(upload_id)
    }

    /// Receives `body` into a spool, computing its MD5 on the way, and checks the digests the
    /// client announced (the SHA-256 is the spool's own content hash: free).
    async fn receive_checked<S, E>(
        &self,
        project: &ProjectId,
        body: S,
        length: Option<u64>,
        expected_sha256: Option<&str>,
        expected_md5: Option<[u8; 16]>,
    ) -> ApiResult<(Spooled, [u8; 16])>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let hasher = Arc::new(Mutex::new(Md5::new()));
        let feed = hasher.clone();
        let body = body.map(move |chunk| {
            if let Ok(bytes) = &chunk {
                feed.lock().update(bytes);
            }
            chunk
        });
        let spooled = self
            .receive_announced(project, body, length, length, 0)
            .await?;
        let md5: [u8; 16] = std::mem::take(&mut *hasher.lock()).finalize().into();
        if expected_md5.is_some_and(|want| want != md5) {
            return Err(digest_mismatch("Content-MD5"));
        }
        if expected_sha256.is_some_and(|want| !want.eq_ignore_ascii_case(&spooled.sha256)) {
            return Err(digest_mismatch("x-amz-content-sha256"));
        }
        Ok((spooled, md5))
    }

    /// Publishes `spooled` as object `key`, replacing the key's older records; the quoted ETag
    /// is stored with the record.
    async fn publish_object(
        &self,
        project: &ProjectId,
        key: String,
        content_type: Option<String>,
        spooled: Spooled,
        etag: String,
        multipart: Option<String>,
    ) -> ApiResult<FileRecord> {
        let meta = NewFile {
            name: key,
            content_type,
            tags: None,
            client_id: None,
        };
        let (project, quota) = (project.clone(), self.quota);
        let (rec, released) = self
            .commit(spooled, move |catalog, sha, size| {
                let rec = meta.into_record(project, sha, size);
                let released = catalog.put_object(&rec, quota, &etag, multipart.as_deref())?;
                Ok((rec, released))
            })
            .await?;
        self.release_blobs(released).await;
        Ok(rec)
    }

    /// PutObject: the body becomes the newest record named `put.key`; returns it and its ETag.
    #[tracing::instrument(skip_all, fields(project = %project, key = %put.key))]
    pub async fn put_object<S, E>(
        &self,
        project: &ProjectId,
        put: ObjectPut,
        body: S,
        length: Option<u64>,
    ) -> ApiResult<(FileRecord, String)>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (spooled, md5) = self
            .receive_checked(
                project,
                body,
                length,
                put.expected_sha256.as_deref(),
                put.expected_md5,
            )
            .await?;
        let etag = format!("\"{}\"", hex::encode(md5));
        let rec = self
            .publish_object(
                project,
                put.key,
                put.content_type,
                spooled,
                etag.clone(),
                None,
            )
            .await?;
        Ok((rec, etag))
    }

    /// CopyObject: a new record named `key` on the source's blob (no byte is copied).
    #[tracing::instrument(skip_all, fields(project = %project, key = %key))]
    pub async fn copy_object(
        &self,
        project: &ProjectId,
        source: &FileRecord,
        key: String,
        content_type: Option<String>,
        etag: String,
    ) -> ApiResult<FileRecord> {
        let _guard = self.blob_locks.lock(&source.sha256).await;
        let hash = source.sha256.clone();
        if !self
            .on_catalog(move |catalog| catalog.blob_in_use(&hash))
            .await?
        {
            return Err(ApiError::new(
                ErrorCode::FileNotFound,
                "the source object was deleted meanwhile",
            ));
        }
        let rec = NewFile {
            name: key,
            content_type: content_type.or_else(|| source.content_type.clone()),
            tags: None,
            client_id: None,
        }
        .into_record(project.clone(), &source.sha256, source.size_bytes);
        let (r, quota) = (rec.clone(), self.quota);
        let released = self
            .on_catalog(move |catalog| catalog.put_object(&r, quota, &etag, None))
            .await?;
        drop(_guard);
        self.release_blobs(released).await;
        Ok(rec)
    }

    /// CreateMultipartUpload.
    pub async fn create_multipart(
        &self,
        project: &ProjectId,
        key: String,
        content_type: Option<String>,
    ) -> ApiResult<MultipartUpload> {
        self.admit(None)?;
        let upload = MultipartUpload {
            upload_id: uuid::Uuid::new_v4().simple().to_string(),
            project_id: project.clone(),
            key,
            content_type,
            created_at: crate::catalog::now(),
        };
        let dir = self.parts_dir(&upload.upload_id);
        blocking(move || std::fs::create_dir_all(&dir).map_err(disk_error)).await?;
        let u = upload.clone();
        self.on_catalog(move |catalog| catalog.insert_multipart(&u))
            .await?;
        Ok(upload)
    }

    /// The open multipart upload `upload_id` of `project` (404 `upload_session_not_found`).
    pub async fn multipart(
        &self,
        project: &ProjectId,
        upload_id: &str,
    ) -> ApiResult<MultipartUpload> {
        self.on_project_key(project, upload_id, |c, p, u| c.multipart(p, u))
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UploadSessionNotFound,
                    format!("multipart upload '{upload_id}' not found"),
                )
            })
    }

    /// UploadPart: stores part `number` (replacing an earlier one), checked against the
    /// client's (SHA-256, MD5) when given; returns its ETag.
    #[tracing::instrument(skip_all, fields(project = %project, upload = %upload_id, part = number))]
    pub async fn put_part<S, E>(
        &self,
        project: &ProjectId,
        upload_id: &str,
        number: u32,
        body: S,
        length: Option<u64>,
        (expected_sha256, expected_md5): (Option<&str>, Option<[u8; 16]>),
    ) -> ApiResult<String>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if !(1..=MAX_PARTS).contains(&number) {
            return Err(ApiError::bad_request(format!(
                "part number must be between 1 and {MAX_PARTS}"
            )));
        }
        self.multipart(project, upload_id).await?;
        let (spooled, md5) = self
            .receive_checked(project, body, length, expected_sha256, expected_md5)
            .await?;
        let dir = self.parts_dir(upload_id);
        let etag = format!("\"{}\"", hex::encode(md5));
        blocking(move || {
            // One file per part number: a retry of the part replaces the earlier one.
            for old in part_files(&dir)?.into_iter().filter(|p| p.number == number) {
                let _ = std::fs::remove_file(old.path);
            }
            let target = dir.join(format!("{number:05}.{}.part", hex::encode(md5)));
            std::fs::rename(spooled.path(), &target).map_err(disk_error)?;
            spooled.take_path();
            Ok(())
        })
        .await?;
        Ok(etag)
    }

    /// ListParts: the stored parts in number order.
    pub async fn parts(&self, project: &ProjectId, upload_id: &str) -> ApiResult<Vec<Part>> {
        self.multipart(project, upload_id).await?;
        let dir = self.parts_dir(upload_id);
        blocking(move || part_files(&dir)).await
    }

    /// CompleteMultipartUpload with the client's list of (part number, ETag): the parts are
    /// concatenated, hashed and published as the object. Returns the record and its ETag.
    #[tracing::instrument(skip_all, fields(project = %project, upload = %upload_id))]
    pub async fn complete_multipart(
        &self,
        project: &ProjectId,
        upload_id: &str,
        chosen: Vec<(u32, String)>,
    ) -> ApiResult<(FileRecord, String)> {
        let Some(_guard) = self.session_locks.try_lock(upload_id) else {
            return Err(ApiError::new(
                ErrorCode::UploadSessionBusy,
                format!("multipart upload '{upload_id}' is already being completed"),
            ));
        };
        let upload = self.multipart(project, upload_id).await?;
        let stored = self.parts(project, upload_id).await?;
        if chosen.is_empty() {
            return Err(invalid_part("the upload names no parts"));
        }
        let mut paths = Vec::with_capacity(chosen.len());
        let mut md5s = Vec::with_capacity(chosen.len() * 16);
        let mut last = 0;
        let mut total = 0u64;
        for (number, etag) in &chosen {
            if *number <= last {
                return Err(ApiError::new(
                    ErrorCode::UploadSessionMismatch,
                    "parts must be listed in ascending order",
                )
                .with_details(serde_json::json!({ "s3": "InvalidPartOrder" })));
            }
            last = *number;
            let part = stored
                .iter()
                .find(|p| p.number == *number)
                .ok_or_else(|| invalid_part(&format!("part {number} was not uploaded")))?;
            if etag.trim_matches('"') != hex::encode(part.md5) {
                return Err(invalid_part(&format!(
                    "part {number}'s ETag does not match"
                )));
            }
            paths.push(part.path.clone());
            md5s.extend_from_slice(&part.md5);
            total += part.size;
        }
        self.admit(Some(total))?;
        let out = self
            .tmp_dir
            .join(format!("assemble-{}.part", uuid::Uuid::new_v4().simple()));
        let spooled = blocking(move || super::sessions::assemble(&paths, out)).await?;
        let etag = format!("\"{}-{}\"", hex::encode(Md5::digest(&md5s)), chosen.len());
        let rec = self
            .publish_object(
                project,
                upload.key,
                upload.content_type,
                spooled,
                etag.clone(),
                Some(upload_id.to_string()),
            )
            .await?;
        self.remove_parts(upload_id).await;
        Ok((rec, etag))
    }

    /// AbortMultipartUpload: forgets the upload and its parts.
    pub async fn abort_multipart(&self, project: &ProjectId, upload_id: &str) -> ApiResult<()> {
        let _guard = self.session_locks.lock(upload_id).await;
        let found = self
            .on_project_key(project, upload_id, |c, p, u| c.delete_multipart(p, u))
            .await?;
        if !found {
            return Err(ApiError::new(
                ErrorCode::UploadSessionNotFound,
                format!("multipart upload '{upload_id}' not found"),
            ));
        }
        self.remove_parts(upload_id).await;
        Ok(())
    }

    async fn remove_parts(&self, upload_id: &str) {
        let dir = self.parts_dir(upload_id);
        let _ = blocking(move || {
            let _ = std::fs::remove_dir_all(dir);
            Ok(())
        })
        .await;
    }

    /// Aborts multipart uploads older than the upload TTL (called by the cleaner).
    pub async fn expire_multiparts(&self) -> ApiResult<()> {
        let before =
            crate::catalog::now() - chrono::Duration::from_std(self.upload_ttl).unwrap_or_default();
        let stale = self
            .on_catalog(move |catalog| catalog.stale_multiparts(before))
            .await?;
        for upload in stale {
            let _ = self
                .abort_multipart(&upload.project_id, &upload.upload_id)
                .await;
        }
        Ok(())
    }
}

/// 400 `InvalidPart`.
fn invalid_part(message: &str) -> ApiError {
    ApiError::new(ErrorCode::UploadSessionMismatch, message.to_string())
        .with_details(serde_json::json!({ "s3": "InvalidPart" }))
}

/// The parts in a parts directory (`{number:05}.{md5}.part`), by number.
fn part_files(dir: &std::path::Path) -> ApiResult<Vec<Part>> {
    let mut parts = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(parts),
        Err(e) => return Err(disk_error(e)),
    };
    for entry in entries {
        let entry = entry.map_err(disk_error)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let mut fields = name.split('.');
        let (Some(n), Some(md5), Some("part")) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(number), Ok(md5)) = (n.parse::<u32>(), hex::decode(md5)) else {
            continue;
        };
        let Ok(md5) = <[u8; 16]>::try_from(md5.as_slice()) else {
            continue;
        };
        let size = entry.metadata().map_err(disk_error)?.len();
        parts.push(Part {
            number,
            md5,
            size,
            path: entry.path(),
        });
    }
    parts.sort_by_key(|p| p.number);
    Ok(parts)
}
