//! A `BlobStore` wrapper counting every call by backend, operation and outcome for `/metrics`.
//! It changes nothing about what the wrapped store does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::blob::{BlobStore, ByteStream};
use super::spool::Spooled;
use crate::error::ApiResult;
use crate::telemetry;

pub struct MeasuredBlobStore {
    inner: Arc<dyn BlobStore>,
}

impl MeasuredBlobStore {
    pub fn new(inner: Arc<dyn BlobStore>) -> Self {
        Self { inner }
    }

    fn count<T>(&self, operation: &'static str, out: ApiResult<T>) -> ApiResult<T> {
        telemetry::blob_op(self.inner.name(), operation, out.is_ok());
        out
    }
}

#[async_trait::async_trait]
impl BlobStore for MeasuredBlobStore {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn max_object_bytes(&self) -> Option<u64> {
        self.inner.max_object_bytes()
    }

    async fn put(&self, spooled: Spooled) -> ApiResult<()> {
        self.count("put", self.inner.put(spooled).await)
    }

    /// Counts opening the stream; an error while it streams shows in the request's status.
    async fn read(&self, sha256: &str, offset: u64, len: u64) -> ApiResult<ByteStream> {
        self.count("read", self.inner.read(sha256, offset, len).await)
    }

    async fn delete(&self, sha256: &str) -> ApiResult<()> {
        self.count("delete", self.inner.delete(sha256).await)
    }

    async fn exists(&self, sha256: &str) -> ApiResult<bool> {
        self.count("exists", self.inner.exists(sha256).await)
    }

    fn local_path(&self, sha256: &str) -> Option<PathBuf> {
        self.inner.local_path(sha256)
    }

    async fn stale_blobs(&self, age: Duration) -> ApiResult<Option<Vec<String>>> {
        self.inner.stale_blobs(age).await
    }
}
