//! The S3 blob backend: any S3-compatible object store through the `object_store` crate.
//! Small blobs are one PUT, large ones a multipart upload streamed from the spool file.

use std::io::Read;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, WriteMultipart};

use super::blob::{BlobStore, ByteStream};
use super::is_sha256_hex;
use super::spool::Spooled;
use crate::config::Config;
use crate::error::{ApiError, ApiResult, IoContext};

/// Blobs up to this size go up in one PUT; larger ones as multipart parts of this size.
const PART_BYTES: usize = 8 * 1024 * 1024;

pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl S3BlobStore {
    pub fn from_config(config: &Config) -> ApiResult<Self> {
        let (store, prefix) = connect(config)?;
        Ok(Self { store, prefix })
    }

    fn key(&self, sha256: &str) -> ApiResult<ObjectPath> {
        if !is_sha256_hex(sha256) {
            return Err(ApiError::internal(format!(
                "not a sha256 blob id: {sha256:?}"
            )));
        }
        let rel = format!("blobs/{}/{}/{sha256}", &sha256[..2], &sha256[2..4]);
        Ok(prefixed(&self.prefix, &rel))
    }
}

/// The configured S3 bucket and the key prefix everything of ours lives under.
pub fn connect(config: &Config) -> ApiResult<(Arc<dyn ObjectStore>, String)> {
    let bucket = config
        .s3_bucket
        .as_deref()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::internal("STORAGE_BACKEND=s3 needs S3_BUCKET"))?;
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&config.s3_region)
        // Path-style requests work with every S3-compatible server, virtual hosts do not.
        .with_virtual_hosted_style_request(false);
    if let Some(endpoint) = config.s3_endpoint.as_deref().filter(|e| !e.is_empty()) {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let Some(key) = &config.s3_access_key_id {
        builder = builder.with_access_key_id(key.expose());
    }
    if let Some(secret) = &config.s3_secret_access_key {
        builder = builder.with_secret_access_key(secret.expose());
    }
    let store = builder
        .build()
        .map_err(|e| ApiError::internal_from("configuring the S3 backend", e))?;
    Ok((
        Arc::new(store),
        config.s3_prefix.trim_matches('/').to_string(),
    ))
}

/// `rel` under `prefix` as an object key.
pub fn prefixed(prefix: &str, rel: &str) -> ObjectPath {
    ObjectPath::from(if prefix.is_empty() {
        rel.to_string()
    } else {
        format!("{prefix}/{rel}")
    })
}

/// Uploads the file at `path` (`size` bytes) as `key`: one PUT when small, else a multipart
/// upload streamed from the file, which becomes visible only when it completes.
pub async fn upload_file(
    store: &dyn ObjectStore,
    key: &ObjectPath,
    path: &std::path::Path,
    size: u64,
) -> ApiResult<()> {
    if size <= PART_BYTES as u64 {
        let data = tokio::fs::read(path)
            .await
            .at_path("reading the file to upload", path)?;
        store
            .put(key, PutPayload::from(data))
            .await
            .map_err(s3_error)?;
        return Ok(());
    }
    // A failure part-way leaves nothing behind but an aborted upload.
    let upload = store.put_multipart(key).await.map_err(s3_error)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(2);
    let path = path.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || {
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let mut buf = Vec::with_capacity(PART_BYTES);
            match (&mut file).take(PART_BYTES as u64).read_to_end(&mut buf) {
                Ok(0) => return,
                Ok(_) => {
                    if tx.blocking_send(Ok(buf)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    while let Some(chunk) = rx.recv().await {
        match chunk {
            Ok(buf) => {
                writer.wait_for_capacity(2).await.map_err(s3_error)?;
                writer.write(&buf);
            }
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e.into());
            }
        }
    }
    reader.await?;
    writer.finish().await.map_err(s3_error)?;
    Ok(())
}

pub(crate) fn s3_error(e: object_store::Error) -> ApiError {
    ApiError::internal_from("an S3 backend call failed", e)
}

#[async_trait::async_trait]
impl BlobStore for S3BlobStore {
    fn name(&self) -> &'static str {
        "s3"
    }

    async fn put(&self, spooled: Spooled) -> ApiResult<()> {
        let key = self.key(&spooled.sha256)?;
        if self.exists(&spooled.sha256).await? {
            return Ok(());
        }
        upload_file(self.store.as_ref(), &key, spooled.path(), spooled.size).await?;
        drop(spooled);
        Ok(())
    }

    async fn read(&self, sha256: &str, offset: u64, len: u64) -> ApiResult<ByteStream> {
        let key = self.key(sha256)?;
        if len == 0 {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(offset..offset + len)),
            ..Default::default()
        };
        let result = self.store.get_opts(&key, options).await.map_err(s3_error)?;
        Ok(result
            .into_stream()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .boxed())
    }

    async fn delete(&self, sha256: &str) -> ApiResult<()> {
        let key = self.key(sha256)?;
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(s3_error(e)),
        }
    }

    async fn exists(&self, sha256: &str) -> ApiResult<bool> {
        let key = self.key(sha256)?;
        match self.store.head(&key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(s3_error(e)),
        }
    }
}
