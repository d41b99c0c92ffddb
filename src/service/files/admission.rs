//! Admission: the size limit and free-space checks made before bytes are accepted, and
//! receiving a body into a spool under those limits. It must not publish or record anything.

use bytes::Bytes;
use futures_util::Stream;

use super::FileService;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::files::spool::{quota_passed, spool};
use crate::files::{SpoolLimits, Spooled};
use crate::names::ProjectId;

impl FileService {
    /// The effective size limit: MAX_FILE_BYTES and the backend's own, whichever is smaller.
    pub(super) fn max_bytes(&self) -> Option<u64> {
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
                return Err(ApiError::new(
                    ErrorCode::FileTooLarge,
                    format!(
                        "file of {n} bytes exceeds the limit of {max} bytes (MAX_FILE_BYTES, or the storage backend's object limit)"
                    ),
                )
                .with_details(serde_json::json!({ "size_bytes": n, "max_bytes": max })));
            }
        }
        let free = crate::files::disk::available_space(&self.files_dir)?;
        let needed = self.min_free_bytes.saturating_add(incoming.unwrap_or(0));
        if free < needed {
            return Err(ApiError::new(
                ErrorCode::InsufficientStorage,
                format!(
                    "not enough free space: {free} bytes free, {needed} needed (upload + MIN_FREE_BYTES)"
                ),
            )
            .with_details(serde_json::json!({ "free_bytes": free, "needed_bytes": needed })));
        }
        Ok(())
    }

    /// Streams `body` to a spool of `project`, checking MAX_FILE_BYTES, an announced exact
    /// size, the project's quota and the free space as the bytes arrive. `credit` is what the
    /// upload already reserved in the quota (a prepared upload's announced size), so its own
    /// reservation does not count against it.
    pub async fn receive_reserved<S, E>(
        &self,
        project: &ProjectId,
        body: S,
        exact_size: Option<u64>,
        credit: u64,
    ) -> ApiResult<Spooled>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.receive_announced(project, body, exact_size, exact_size, credit)
            .await
    }

    /// `receive_reserved`, admitting `announced` bytes (a Content-Length, say) up front.
    pub(super) async fn receive_announced<S, E>(
        &self,
        project: &ProjectId,
        body: S,
        announced: Option<u64>,
        exact_size: Option<u64>,
        credit: u64,
    ) -> ApiResult<Spooled>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let limits = self
            .receive_limits(project, announced, exact_size, credit)
            .await?;
        spool(&self.tmp_dir, body, limits).await
    }

    /// The limits a body of `project` is received within, after admitting `announced` bytes:
    /// a full project or disk is refused before the first byte is read.
    pub(super) async fn receive_limits(
        &self,
        project: &ProjectId,
        announced: Option<u64>,
        exact_size: Option<u64>,
        credit: u64,
    ) -> ApiResult<SpoolLimits> {
        self.admit(announced)?;
        // Read before the first byte is taken: a full project is refused without reading the
        // body, and a body of unknown length stops as soon as it passes what is left. The
        // catalog checks the quota again when the record is written (concurrent uploads).
        let (p, quota) = (project.clone(), self.quota);
        let quota_room = self
            .on_catalog(move |catalog| catalog.quota_room(&p, quota, credit))
            .await?;
        if let (Some(room), Some(n)) = (quota_room, announced) {
            if n > room {
                return Err(quota_passed(room));
            }
        }
        Ok(SpoolLimits {
            max_bytes: self.max_bytes(),
            exact_size,
            quota_room,
            min_free_bytes: Some(self.min_free_bytes),
        })
    }
}
