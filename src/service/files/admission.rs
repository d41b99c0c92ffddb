//! Admission: the size limit and free-space checks made before bytes are accepted, and
//! receiving a body into a spool under those limits. It must not publish or record anything.

use bytes::Bytes;
use futures_util::Stream;

use super::FileService;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::files::spool::spool;
use crate::files::{SpoolLimits, Spooled};

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

    /// Streams `body` to a spool, checking MAX_FILE_BYTES and an announced exact size.
    pub async fn receive<S, E>(&self, body: S, exact_size: Option<u64>) -> ApiResult<Spooled>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        self.receive_announced(body, exact_size, exact_size).await
    }

    /// `receive`, admitting `announced` bytes (a Content-Length, say) up front.
    pub(super) async fn receive_announced<S, E>(
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
}
