//! The "database" blob backend (seed 003): small objects stored in the catalog database
//! itself (`blob_data` in metadata.duckdb). Objects above its configured size are refused.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::blob::{BlobStore, ByteStream};
use super::is_sha256_hex;
use super::spool::Spooled;
use crate::catalog::Catalog;
use crate::error::{ApiError, ApiResult, ErrorCode, IoContext};

pub struct DatabaseBlobStore {
    catalog: Arc<Catalog>,
    max_bytes: u64,
}

impl DatabaseBlobStore {
    pub fn new(catalog: Arc<Catalog>, max_bytes: u64) -> Self {
        Self { catalog, max_bytes }
    }
}

fn check(sha256: &str) -> ApiResult<()> {
    if is_sha256_hex(sha256) {
        Ok(())
    } else {
        Err(ApiError::internal(format!(
            "not a sha256 blob id: {sha256:?}"
        )))
    }
}

#[async_trait::async_trait]
impl BlobStore for DatabaseBlobStore {
    fn name(&self) -> &'static str {
        "database"
    }

    fn max_object_bytes(&self) -> Option<u64> {
        Some(self.max_bytes)
    }

    async fn put(&self, spooled: Spooled) -> ApiResult<()> {
        check(&spooled.sha256)?;
        if spooled.size > self.max_bytes {
            return Err(ApiError::new(
                ErrorCode::FileTooLarge,
                format!(
                    "the database backend stores objects of at most {} bytes",
                    self.max_bytes
                ),
            ));
        }
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || {
            // Bounded by max_bytes; the spool file is removed when `spooled` drops.
            let data =
                std::fs::read(spooled.path()).at_path("reading spool file", spooled.path())?;
            catalog.put_blob_data(&spooled.sha256, &data)
        })
        .await?
    }

    async fn read(&self, sha256: &str, offset: u64, len: u64) -> ApiResult<ByteStream> {
        check(sha256)?;
        let (catalog, sha) = (self.catalog.clone(), sha256.to_string());
        let data = tokio::task::spawn_blocking(move || catalog.blob_data(&sha))
            .await??
            .ok_or_else(|| {
                ApiError::internal(format!("blob {sha256} missing from the database backend"))
            })?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start
            .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
            .min(data.len());
        let chunk = Bytes::from(data).slice(start..end);
        Ok(Box::pin(futures_util::stream::once(
            async move { Ok(chunk) },
        )))
    }

    async fn delete(&self, sha256: &str) -> ApiResult<()> {
        check(sha256)?;
        let (catalog, sha) = (self.catalog.clone(), sha256.to_string());
        tokio::task::spawn_blocking(move || catalog.delete_blob_data(&sha)).await?
    }

    /// Every stored blob: the table keeps no change times, and listing it is one catalog
    /// query. The cleaner's re-check under the blob's lock is what keeps an upload's blob.
    async fn stale_blobs(&self, _age: Duration) -> ApiResult<Option<Vec<String>>> {
        let catalog = self.catalog.clone();
        Ok(Some(
            tokio::task::spawn_blocking(move || catalog.blob_data_hashes()).await??,
        ))
    }

    async fn exists(&self, sha256: &str) -> ApiResult<bool> {
        check(sha256)?;
        let (catalog, sha) = (self.catalog.clone(), sha256.to_string());
        Ok(tokio::task::spawn_blocking(move || catalog.blob_data(&sha))
            .await??
            .is_some())
    }
}
