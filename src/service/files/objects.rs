//! Files as S3 objects (ADR 0032): a PUT that replaces the records of its key, copies that
//! share the blob, and multipart uploads whose parts wait under `files/s3-parts/{upload}`
//! (their layout: `parts.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use md5::{Digest as _, Md5};
use parking_lot::Mutex;

use super::parts::{Part, PartsDir};
use super::{FileService, NewFile};
use crate::catalog::files::FileRecord;
use crate::catalog::s3::MultipartUpload;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::files::spool::{disk_error, quota_passed, spool, write_body};
use crate::files::SpoolLimits;
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
    /// client announced (the SHA-256 is the spool's own content hash: free). `held` is what
    /// the project's open multipart parts already take of its quota.
    async fn receive_checked<S, E>(
        &self,
        project: &ProjectId,
        body: S,
        length: Option<u64>,
        expected: Digests<'_>,
        held: u64,
    ) -> ApiResult<(Spooled, [u8; 16])>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (body, hasher) = md5_feed(body);
        let limits = self.object_limits(project, length, held).await?;
        let spooled = spool(&self.tmp_dir, body, limits).await?;
        let md5 = finish_md5(&hasher);
        check_digests(expected, &spooled.sha256, md5)?;
        Ok((spooled, md5))
    }

    /// `receive_checked` into `file` at its position (a part's slot); returns the MD5.
    async fn receive_checked_into<S, E>(
        &self,
        project: &ProjectId,
        file: std::fs::File,
        body: S,
        length: u64,
        expected: Digests<'_>,
        held: u64,
    ) -> ApiResult<[u8; 16]>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (body, hasher) = md5_feed(body);
        let limits = self.object_limits(project, Some(length), held).await?;
        // The part's SHA-256 is worth computing only to check the client's (the object's is
        // computed whole at Complete).
        let (sha, _) =
            write_body(file, &self.files_dir, body, limits, expected.0.is_some()).await?;
        let md5 = finish_md5(&hasher);
        check_digests(expected, sha.as_deref().unwrap_or_default(), md5)?;
        Ok(md5)
    }

    /// The limits an object's or a part's body is received within, its quota room less
    /// `held` bytes; 507 at once when the announced `length` does not fit.
    async fn object_limits(
        &self,
        project: &ProjectId,
        length: Option<u64>,
        held: u64,
    ) -> ApiResult<SpoolLimits> {
        let mut limits = self.receive_limits(project, length, length, 0).await?;
        if let Some(room) = limits.quota_room.map(|room| room.saturating_sub(held)) {
            if length.is_some_and(|n| n > room) {
                return Err(quota_passed(room));
            }
            limits.quota_room = Some(room);
        }
        Ok(limits)
    }

    /// Bytes `project`'s open multipart uploads hold in parts, but for part `number` of
    /// `upload_id` (about to be replaced); 0 without a byte quota.
    async fn held_by_parts(
        &self,
        project: &ProjectId,
        upload_id: &str,
        number: u32,
    ) -> ApiResult<u64> {
        if self.quota.max_bytes == 0 {
            return Ok(0);
        }
        let p = project.clone();
        let uploads = self.on_catalog(move |c| c.multipart_ids(Some(&p))).await?;
        let (root, this) = (self.files_dir.join("s3-parts"), upload_id.to_string());
        blocking(move || {
            let mut held = 0u64;
            for upload in uploads {
                for part in PartsDir::new(root.join(&upload)).list()? {
                    if !(upload == this && part.number == number) {
                        held = held.saturating_add(part.size);
                    }
                }
            }
            Ok(held)
        })
        .await
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
                (put.expected_sha256.as_deref(), put.expected_md5),
                0,
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
    /// client's (SHA-256, MD5) when given; returns its ETag. Parts of one upload are received
    /// in parallel; one part number at a time.
    #[tracing::instrument(skip_all, fields(project = %project, upload = %upload_id, part = number))]
    pub async fn put_part<S, E>(
        &self,
        project: &ProjectId,
        upload_id: &str,
        number: u32,
        body: S,
        length: Option<u64>,
        expected: Digests<'_>,
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
        // Shared with the upload's other parts, exclusive against Complete and Abort, which
        // must not see a part half written.
        let _upload = self.multipart_locks.read(upload_id).await;
        let _part = self
            .session_locks
            .lock(&format!("{upload_id}#{number}"))
            .await;
        self.multipart(project, upload_id).await?;
        // Parts count against the project's quota before they are an object.
        let held = self.held_by_parts(project, upload_id, number).await?;
        let dir = Arc::new(PartsDir::new(self.parts_dir(upload_id)));
        let (d, max) = (dir.clone(), self.max_bytes());
        let slot = blocking(move || d.slot_for(number, length, max)).await?;
        // An earlier copy of the part stays until the new one is in, unless the new one
        // overwrites its slot.
        let md5 = match (slot, length) {
            (Some(offset), Some(length)) => {
                let d = dir.clone();
                let file = blocking(move || {
                    d.forget(number)?;
                    d.open_slot(offset)
                })
                .await?;
                let md5 = self
                    .receive_checked_into(project, file, body, length, expected, held)
                    .await?;
                let d = dir.clone();
                blocking(move || d.record_slot(number, md5, length)).await?;
                md5
            }
            _ => {
                let (spooled, md5) = self
                    .receive_checked(project, body, length, expected, held)
                    .await?;
                let d = dir.clone();
                blocking(move || {
                    d.forget(number)?;
                    d.adopt_file(number, md5, spooled)
                })
                .await?;
                md5
            }
        };
        Ok(format!("\"{}\"", hex::encode(md5)))
    }

    /// ListParts: the stored parts in number order.
    pub async fn parts(&self, project: &ProjectId, upload_id: &str) -> ApiResult<Vec<Part>> {
        self.multipart(project, upload_id).await?;
        let dir = PartsDir::new(self.parts_dir(upload_id));
        blocking(move || dir.list()).await
    }

    /// CompleteMultipartUpload with the client's list of (part number, ETag): the parts become
    /// one file (in place when they allow it), hashed and published as the object. Returns the
    /// record and its ETag.
    #[tracing::instrument(skip_all, fields(project = %project, upload = %upload_id))]
    pub async fn complete_multipart(
        &self,
        project: &ProjectId,
        upload_id: &str,
        chosen: Vec<(u32, String)>,
    ) -> ApiResult<(FileRecord, String)> {
        let Some(_guard) = self.multipart_locks.try_write(upload_id) else {
            return Err(ApiError::new(
                ErrorCode::UploadSessionBusy,
                format!(
                    "multipart upload '{upload_id}' is receiving a part or already being completed"
                ),
            ));
        };
        let upload = self.multipart(project, upload_id).await?;
        let dir = PartsDir::new(self.parts_dir(upload_id));
        let (dir, stored) = blocking(move || dir.list().map(|stored| (dir, stored))).await?;
        if chosen.is_empty() {
            return Err(invalid_part("the upload names no parts"));
        }
        let mut parts = Vec::with_capacity(chosen.len());
        let mut md5s = Vec::with_capacity(chosen.len() * 16);
        let mut last = 0;
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
            md5s.extend_from_slice(&part.md5);
            parts.push(part.clone());
        }
        self.admit(Some(parts.iter().map(|p| p.size).sum()))?;
        let tmp = self.tmp_dir.clone();
        let spooled = blocking(move || dir.assemble(&parts, &tmp)).await?;
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

    /// AbortMultipartUpload: forgets the upload and its parts (once the parts being received
    /// are in).
    pub async fn abort_multipart(&self, project: &ProjectId, upload_id: &str) -> ApiResult<()> {
        let _guard = self.multipart_locks.write(upload_id).await;
        self.forget_upload(project, upload_id).await
    }

    /// Removes the upload's row, then its parts; 404 when there is no such upload. The caller
    /// holds the upload exclusively.
    async fn forget_upload(&self, project: &ProjectId, upload_id: &str) -> ApiResult<()> {
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
            // An upload still receiving a part is not idle: it waits for the next sweep.
            let Some(_guard) = self.multipart_locks.try_write(&upload.upload_id) else {
                continue;
            };
            let _ = self
                .forget_upload(&upload.project_id, &upload.upload_id)
                .await;
        }
        self.sweep_orphan_parts().await
    }

    /// Removes parts directories no open upload owns (their project was deleted, or a crash
    /// came between the row and the directory), once older than the upload TTL: a directory
    /// is made just before its row.
    async fn sweep_orphan_parts(&self) -> ApiResult<()> {
        let open: std::collections::HashSet<String> = self
            .on_catalog(|c| c.multipart_ids(None))
            .await?
            .into_iter()
            .collect();
        let (root, ttl) = (self.files_dir.join("s3-parts"), self.upload_ttl);
        blocking(move || {
            let Ok(entries) = std::fs::read_dir(&root) else {
                return Ok(());
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let idle = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= ttl);
                if idle && !open.contains(&name) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
            Ok(())
        })
        .await
    }
}

/// 400 `InvalidPart`.
fn invalid_part(message: &str) -> ApiError {
    ApiError::new(ErrorCode::UploadSessionMismatch, message.to_string())
        .with_details(serde_json::json!({ "s3": "InvalidPart" }))
}

/// The digests a client announced for a body: (`x-amz-content-sha256`, `Content-MD5`).
pub type Digests<'a> = (Option<&'a str>, Option<[u8; 16]>);

/// `body`, feeding an MD5 as it passes.
fn md5_feed<S, E>(
    body: S,
) -> (
    impl Stream<Item = Result<Bytes, E>> + Unpin,
    Arc<Mutex<Md5>>,
)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let hasher = Arc::new(Mutex::new(Md5::new()));
    let feed = hasher.clone();
    let body = body.map(move |chunk| {
        if let Ok(bytes) = &chunk {
            feed.lock().update(bytes);
        }
        chunk
    });
    (body, hasher)
}

fn finish_md5(hasher: &Mutex<Md5>) -> [u8; 16] {
    std::mem::take(&mut *hasher.lock()).finalize().into()
}

/// The received body's digests against what the client announced.
fn check_digests((sha256, md5): Digests<'_>, got_sha256: &str, got_md5: [u8; 16]) -> ApiResult<()> {
    if md5.is_some_and(|want| want != got_md5) {
        return Err(digest_mismatch("Content-MD5"));
    }
    if sha256.is_some_and(|want| !want.eq_ignore_ascii_case(got_sha256)) {
        return Err(digest_mismatch("x-amz-content-sha256"));
    }
    Ok(())
}
