//! Shared application state handed to every handler, and its construction from `Config`.
//! Opens the one DuckDB instance (catalog as its default database), moves crash leftovers to
//! the quarantine, and locks DuckDB down once start-up is done.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use duckdb::Connection;

use crate::api::rate_limit::RateLimits;
use crate::auth::{admin_key, KeyVerifier};
use crate::catalog::Catalog;
use crate::config::{Config, StorageBackend};
use crate::engine::{Quarantine, TableEngine, TableKey};
use crate::error::ApiResult;
use crate::files::{
    BlobStore, DatabaseBlobStore, LocalBlobStore, MeasuredBlobStore, S3BlobStore, SnapshotStore,
};
use crate::names::{BucketName, DevBranchId, ProjectId, TableName};
use crate::service::audit::AuditLog;
use crate::service::bulk::BulkPool;
use crate::service::files::FileService;
use crate::service::health::HealthMonitor;
use crate::service::idempotency::Idempotency;
use crate::service::jobs::JobService;
use crate::service::s3::S3Secrets;
use crate::workspace::{Settings as WorkspaceSettings, Workspaces};

/// The state every handler and layer gets: one `Arc`, so the several clones each request
/// makes (access gate, rate limit, idempotency, audit, handler) cost one atomic increment, not
/// one per service (a profile of the P1 request showed those clones at ~14 % of its samples).
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind `AppState`.
pub struct Services {
    pub config: Arc<Config>,
    pub catalog: Arc<Catalog>,
    pub engine: Arc<TableEngine>,
    pub keys: Arc<KeyVerifier>,
    pub files: Arc<FileService>,
    pub jobs: Arc<JobService>,
    pub bulk: Arc<BulkPool>,
    pub health: Arc<HealthMonitor>,
    pub idempotency: Arc<Idempotency>,
    pub rate_limits: Arc<RateLimits>,
    pub audit: Arc<AuditLog>,
    /// Where snapshot files live: the data dir, or the S3 bucket (ADR 0029).
    pub snapshot_files: Arc<SnapshotStore>,
    /// The S3 face's sealing and presigning secrets (ADR 0032).
    pub s3: Arc<S3Secrets>,
    /// Open workspace databases and their sessions (ADR 0033).
    pub workspaces: Arc<Workspaces>,
    /// Wire logins: the failed-password throttle both wire faces share (ADR 0033).
    pub logins: crate::wire::auth::Logins,
    /// Sessions an external wire server registered (`/internal/pgwire/sessions`).
    pub pgwire_sessions: crate::service::pgwire::ExternalSessions,
    pub started: Instant,
}

/// The directories every data dir has (ADR-009 layout).
pub const DATA_SUBDIRS: &[&str] = &["duckdb", "files", "snapshots"];

impl AppState {
    /// Blocking: creates the data dir layout, opens DuckDB, migrates and loads the catalog.
    pub fn open(mut config: Config) -> ApiResult<Self> {
        // Absolute, so the paths given to DuckDB match the directories it is allowed
        // (a relative DATA_DIR would not match them literally).
        config.data_dir = std::path::absolute(&config.data_dir)?;
        let data_dir = config.data_dir.clone();
        init_layout(&data_dir)?;
        let admin = admin_key::load_or_create(config.admin_api_key.as_ref(), &data_dir)?;

        let mut db_config = duckdb::Config::default()
            .max_memory(&config.duckdb_memory_limit)?
            .with("autoinstall_known_extensions", "false")?
            .with("autoload_known_extensions", "false")?;
        if config.duckdb_threads > 0 {
            db_config = db_config.threads(i64::from(config.duckdb_threads))?;
        }
        let root = Connection::open_with_flags(data_dir.join("metadata.duckdb"), db_config)?;
        let catalog = Catalog::open(root.try_clone()?)?;
        let engine = TableEngine::new(data_dir.clone(), root, config.table_cache_size);
        sweep_orphans(&catalog, &engine, &data_dir);
        // Figures recorded for tables whose files changed since (a crash between a write and
        // its record, an operator's tool) are read from the file again when next listed.
        let stale = catalog.forget_stale_stats(|p, b, t, stats| {
            engine.file_stamp(&TableKey::new(p, b, t)) != stats.file_stamp
        });
        if stale > 0 {
            tracing::info!(
                stale,
                "table files changed since their figures were recorded"
            );
        }

        let catalog = Arc::new(catalog);
        let snapshots_root = engine.snapshots_root();
        let snapshot_files = match config.storage_backend {
            StorageBackend::S3 => {
                let (store, prefix) = crate::files::s3::connect(&config)?;
                SnapshotStore::s3(snapshots_root, store, prefix)?
            }
            StorageBackend::Local | StorageBackend::Database => {
                SnapshotStore::local(snapshots_root)
            }
        };
        let store: Arc<dyn BlobStore> = match config.storage_backend {
            StorageBackend::Local => {
                Arc::new(LocalBlobStore::new(data_dir.join("files").join("blobs")))
            }
            StorageBackend::Database => Arc::new(DatabaseBlobStore::new(
                catalog.clone(),
                config.database_blob_max_bytes,
            )),
            StorageBackend::S3 => Arc::new(S3BlobStore::from_config(&config)?),
        };
        let store: Arc<dyn BlobStore> = Arc::new(MeasuredBlobStore::new(store));
        let files = FileService::new(&config, catalog.clone(), store)?;
        let bulk = BulkPool::new(config.bulk_threads)?;
        let jobs = JobService::open(
            catalog.clone(),
            config.job_workers,
            config.job_queue_capacity,
        )?;
        engine.lock_down(files.work_dir())?;
        let keys = KeyVerifier::new(&admin, &config)?;
        let health = HealthMonitor::new(data_dir, catalog.clone());
        let idempotency = Idempotency::new(
            catalog.clone(),
            std::time::Duration::from_secs(config.idempotency_ttl_secs),
        );
        let rate_limits = RateLimits::from_config(&config);
        let audit = AuditLog::new(catalog.clone());
        let s3 = S3Secrets::open(&config.data_dir, catalog.clone())?;
        let workspaces = Workspaces::new(
            &config.data_dir,
            WorkspaceSettings {
                memory_limit: config.workspace_memory_limit.clone(),
                threads: config.workspace_threads,
                max_sessions: config.pgwire_max_connections_per_workspace,
            },
        );
        let config_failures = config.auth_failures_per_minute;
        Ok(Self(Arc::new(Services {
            config: Arc::new(config),
            catalog,
            engine: Arc::new(engine),
            keys: Arc::new(keys),
            files: Arc::new(files),
            jobs: Arc::new(jobs),
            bulk: Arc::new(bulk),
            health: Arc::new(health),
            idempotency: Arc::new(idempotency),
            rate_limits: Arc::new(rate_limits),
            audit: Arc::new(audit),
            snapshot_files: Arc::new(snapshot_files),
            s3: Arc::new(s3),
            workspaces: Arc::new(workspaces),
            logins: crate::wire::auth::Logins::new(config_failures),
            pgwire_sessions: crate::service::pgwire::ExternalSessions::default(),
            started: Instant::now(),
        })))
    }
}

/// Creates `DATA_DIR/{duckdb,files,snapshots}` (idempotent).
pub fn init_layout(data_dir: &Path) -> std::io::Result<()> {
    for sub in DATA_SUBDIRS {
        std::fs::create_dir_all(data_dir.join(sub))?;
    }
    Ok(())
}

/// Moves what the catalog does not know out of `duckdb/` and `snapshots/` into the quarantine, unless the
/// catalog load skipped rows: then the model may lack what a path belongs to, and an
/// unknown path proves nothing.
fn sweep_orphans(catalog: &Catalog, engine: &TableEngine, data_dir: &Path) {
    let skipped = catalog.skipped_at_load();
    if skipped.total() > 0 {
        tracing::warn!(
            skipped = %skipped,
            "the catalog load skipped rows, so start-up moves no unknown table file or \
             directory to the quarantine; fix or remove those catalog rows to resume the sweep"
        );
        return;
    }
    let quarantine = Quarantine::new(data_dir);
    catalog.read(|model| {
        engine.sweep_orphans(
            &|path: &Path| is_known_path(engine, model, path),
            &quarantine,
        );
    });
    match catalog.snapshot_paths() {
        Ok(known) => crate::engine::snapshot::sweep_snapshot_files(
            &engine.snapshots_root(),
            &known.into_iter().collect(),
            &quarantine,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the snapshot paths; snapshot files not swept")
        }
    }
}

/// Whether a path under `duckdb/` belongs to a project, bucket or table the catalog knows.
fn is_known_path(engine: &TableEngine, model: &crate::catalog::Model, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(engine.tables_root()) else {
        return false;
    };
    let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    let project = parts
        .first()
        .and_then(|p| p.strip_prefix("project_"))
        .and_then(|p| ProjectId::parse(p).ok());
    let Some(project) = project.and_then(|p| model.project(&p)) else {
        return false;
    };
    let Some(bucket_part) = parts.get(1) else {
        return true;
    };
    // A dev branch's own files: `branch.<id>/<bucket>/<table>.duckdb` (ADR 0031).
    if let Some(id) = bucket_part.strip_prefix(crate::engine::BRANCH_DIR_PREFIX) {
        let Some(branch) = DevBranchId::parse(id)
            .ok()
            .and_then(|b| project.branches.get(&b))
        else {
            return false;
        };
        let Some(bucket) = parts.get(2) else {
            return true;
        };
        let Ok(bucket) = BucketName::parse(bucket) else {
            return false;
        };
        if !project.buckets.contains_key(&bucket) {
            return false;
        }
        let Some(file) = parts.get(3) else {
            return true;
        };
        return parts.len() == 4
            && table_of_file(file).is_some_and(|t| {
                branch
                    .tables
                    .get(&(bucket.clone(), t))
                    .is_some_and(|s| s.kind != crate::catalog::BranchTableKind::Deleted)
            });
    }
    let Some(bucket) = BucketName::parse(bucket_part)
        .ok()
        .and_then(|b| project.buckets.get(&b))
    else {
        return false;
    };
    let Some(file) = parts.get(2) else {
        return true;
    };
    parts.len() == 3 && table_of_file(file).is_some_and(|t| bucket.tables.contains_key(&t))
}

/// The table a file of a bucket directory belongs to: `<table>.duckdb` and its DuckDB
/// companions (`.wal`, `.wal.checkpoint`, `.wal.recovery`).
fn table_of_file(file: &str) -> Option<TableName> {
    file.split_once(".duckdb")
        .filter(|(_, rest)| rest.is_empty() || rest.starts_with(".wal"))
        .and_then(|(table, _)| TableName::parse(table).ok())
}
