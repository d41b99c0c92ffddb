//! Where snapshot files live: `DATA_DIR/snapshots` on the local backends; on the S3 backend the
//! bucket holds them and `DATA_DIR/snapshots` is a read-through cache the cleaner evicts (ADR 0029).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

use super::s3::{prefixed, s3_error, upload_file};
use crate::engine::fsync_dir;
use crate::error::{ApiError, ApiResult, IoContext};

/// A cached copy of a remote snapshot unused for this long is removed by the cleaner; a read
/// touches its copy first, and no read of one snapshot takes this long.
pub const CACHE_IDLE: Duration = Duration::from_secs(3600);

/// A remote object no catalog row names is deleted once it is this old: younger ones may be a
/// snapshot whose upload finished and whose row is about to be written.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

pub struct SnapshotStore {
    /// `DATA_DIR/snapshots`: the files themselves, or the cache of the remote ones.
    root: PathBuf,
    remote: Option<Remote>,
}

struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// Snapshot work runs on blocking threads (under table locks); remote calls are driven
    /// from there on the server's runtime.
    runtime: tokio::runtime::Handle,
}

impl Remote {
    fn key(&self, relative: &str) -> ObjectPath {
        prefixed(&self.prefix, &format!("snapshots/{relative}"))
    }
}

impl SnapshotStore {
    /// Snapshots kept on this machine under `root`.
    pub fn local(root: PathBuf) -> Self {
        Self { root, remote: None }
    }

    /// Snapshots kept in an S3 bucket under `prefix/snapshots/`, cached under `root`; must be
    /// called inside the server's runtime (its blocking pool included).
    pub fn s3(root: PathBuf, store: Arc<dyn ObjectStore>, prefix: String) -> ApiResult<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            ApiError::internal_from("the S3 snapshot store needs the server's runtime", e)
        })?;
        Ok(Self {
            root,
            remote: Some(Remote {
                store,
                prefix,
                runtime,
            }),
        })
    }

    /// Whether snapshots are kept in S3 (the local directory being a cache).
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// `DATA_DIR/snapshots`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the file `relative` (`project_<id>/<uuid>.parquet`) is written and read on this
    /// machine.
    pub fn local_path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Makes the file just placed at `local_path(relative)` durable where snapshots live
    /// (blocking): on S3 it is uploaded, and its local copy stays as a cached one.
    pub fn publish(&self, relative: &str) -> ApiResult<()> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let path = self.local_path(relative);
        let size = std::fs::metadata(&path)
            .at_path("reading the snapshot file", &path)?
            .len();
        remote.runtime.block_on(upload_file(
            remote.store.as_ref(),
            &remote.key(relative),
            &path,
            size,
        ))
    }

    /// The snapshot `relative` as a file on this machine, downloaded into the cache first when
    /// it is remote and not cached; `None` when it is nowhere (blocking).
    pub fn fetch(&self, relative: &str) -> ApiResult<Option<PathBuf>> {
        let path = self.local_path(relative);
        let Some(remote) = &self.remote else {
            return Ok(path.is_file().then_some(path));
        };
        if path.is_file() {
            // Keeps the cleaner off a copy that is being read.
            if let Ok(file) = std::fs::File::options().write(true).open(&path) {
                let _ = file.set_modified(SystemTime::now());
            }
            return Ok(Some(path));
        }
        let dir = path
            .parent()
            .ok_or_else(|| ApiError::internal("snapshot path without a directory"))?;
        std::fs::create_dir_all(dir).at_path("creating snapshot cache directory", dir)?;
        // Unique per download: two readers of one snapshot may fetch it at once. The name
        // matches the start-up sweep's pattern for interrupted temp files.
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{stem}-{}.parquet.tmp", uuid::Uuid::new_v4()));
        let fetched = remote.runtime.block_on(async {
            let got = match remote.store.get(&remote.key(relative)).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(s3_error(e)),
            };
            let mut file =
                std::fs::File::create(&temp).at_path("creating snapshot cache file", &temp)?;
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.try_next().await.map_err(s3_error)? {
                file.write_all(&chunk)
                    .at_path("writing snapshot cache file", &temp)?;
            }
            file.sync_all()
                .at_path("syncing snapshot cache file", &temp)?;
            Ok::<_, ApiError>(true)
        });
        match fetched {
            Ok(true) => {
                std::fs::rename(&temp, &path).at_path("placing snapshot cache file", &path)?;
                Ok(Some(path))
            }
            Ok(false) => Ok(None),
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                Err(e)
            }
        }
    }

    /// Removes the snapshot `relative` wherever it is (blocking). Its catalog row is already
    /// gone, so a failure only leaves an orphan, which is logged (and swept when remote).
    pub fn remove(&self, relative: &str) {
        let path = self.local_path(relative);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    let _ = fsync_dir(dir);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not remove a snapshot file")
            }
        }
        if let Some(remote) = &self.remote {
            let key = remote.key(relative);
            match remote.runtime.block_on(remote.store.delete(&key)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "could not remove a snapshot object")
                }
            }
        }
    }

    /// Removes every snapshot file of a deleted project (blocking; its rows are gone).
    pub fn remove_project(&self, project: &str) -> ApiResult<()> {
        let dir = self.root.join(format!("project_{project}"));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                let _ = fsync_dir(&self.root);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ApiError::internal(format!(
                    "removing snapshot directory {}: {e}",
                    dir.display()
                )))
            }
        }
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let prefix = remote.key(&format!("project_{project}"));
        remote.runtime.block_on(async {
            let objects: Vec<_> = remote
                .store
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(s3_error)?;
            for object in objects {
                match remote.store.delete(&object.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(s3_error(e)),
                }
            }
            Ok(())
        })
    }

    /// The cleaner's pass over a remote store (blocking; nothing to do on local backends):
    /// removes cached copies unused for `CACHE_IDLE`, and remote objects no row in `known`
    /// (relative paths) names that are older than an hour. Returns both counts.
    pub fn sweep_remote(&self, known: &HashSet<String>) -> ApiResult<(usize, usize)> {
        let Some(remote) = &self.remote else {
            return Ok((0, 0));
        };
        let evicted = self.evict_idle(CACHE_IDLE);
        let root = prefixed(&remote.prefix, "snapshots");
        let strip = format!("{root}/");
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(ORPHAN_AGE).unwrap_or(chrono::Duration::hours(1));
        let orphans = remote.runtime.block_on(async {
            let objects: Vec<_> = remote
                .store
                .list(Some(&root))
                .try_collect()
                .await
                .map_err(s3_error)?;
            let mut removed = 0;
            for object in objects {
                let name = object.location.to_string();
                let relative = name.strip_prefix(&strip).unwrap_or(&name);
                if known.contains(relative) || object.last_modified > cutoff {
                    continue;
                }
                match remote.store.delete(&object.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        tracing::info!(key = %object.location, "removed a snapshot object no catalog row names");
                        removed += 1;
                    }
                    Err(e) => return Err(s3_error(e)),
                }
            }
            Ok::<_, ApiError>(removed)
        })?;
        Ok((evicted, orphans))
    }

    /// Removes cached copies not read for `idle` (blocking).
    fn evict_idle(&self, idle: Duration) -> usize {
        let mut evicted = 0;
        let now = SystemTime::now();
        for project in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            for entry in std::fs::read_dir(project.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = entry.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue;
                }
                let unused = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .is_some_and(|age| age >= idle);
                if unused && std::fs::remove_file(entry.path()).is_ok() {
                    evicted += 1;
                }
            }
        }
        evicted
    }
}
