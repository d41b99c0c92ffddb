//! The catalog: metadata.duckdb (source of truth) plus its in-memory read model for hot reads.
//! Writes are short transactions serialized by one writer; the model changes only after commit.

pub mod api_keys;
pub mod audit;
pub mod blob_data;
pub mod branches;
pub mod buckets;
pub mod files;
pub mod idempotency;
pub mod jobs;
pub mod load;
pub mod model;
pub mod projects;
pub mod s3;
pub mod schema;
pub mod snapshots;
pub mod tables;
pub mod workspaces;

use chrono::{DateTime, Utc};
use duckdb::{Connection, Transaction};
use parking_lot::{Mutex, RwLock};

pub use model::{
    BranchRecord, BranchTable, BranchTableKind, BucketLink, BucketRecord, KeyRecord, KeyStatus,
    Model, ProjectRecord, StoredColumn, TableRecord, TableStats,
};

use crate::error::{ApiError, ApiResult, ErrorCode};

/// A change to apply to the read model once its transaction has committed.
pub type Apply = Box<dyn FnOnce(&mut Model) + Send>;

/// The model change that applies `change` to one bucket once the write has committed.
pub(crate) fn apply_to_bucket(
    project: &crate::names::ProjectId,
    bucket: &crate::names::BucketName,
    change: impl FnOnce(&mut BucketRecord) + Send + 'static,
) -> Apply {
    let (project, bucket) = (project.clone(), bucket.clone());
    Box::new(move |m| {
        if let Some(b) = m.bucket_mut(&project, &bucket) {
            change(b);
        }
    })
}

pub struct Catalog {
    writer: Mutex<Connection>,
    /// Idle connections for read queries (file records), so reads never wait for the writer.
    readers: Mutex<Vec<Connection>>,
    model: RwLock<Model>,
    /// Rows the start-up load could not take into the model.
    skipped_at_load: load::Skipped,
}

impl Catalog {
    /// Migrates the catalog the connection's default database holds, then loads the read model.
    pub fn open(mut conn: Connection) -> ApiResult<Self> {
        schema::migrate(&mut conn)?;
        let (model, skipped_at_load) = load::load_model(&conn)?;
        Ok(Self {
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            model: RwLock::new(model),
            skipped_at_load,
        })
    }

    /// Rows the start-up load skipped: while any was, the model may not name everything on
    /// disk that is in use.
    pub fn skipped_at_load(&self) -> &load::Skipped {
        &self.skipped_at_load
    }

    /// Runs `f` against the current model; cheap, never touches DuckDB.
    pub fn read<T>(&self, f: impl FnOnce(&Model) -> T) -> T {
        f(&self.model.read())
    }

    /// Runs one catalog write transaction (blocking: call from a blocking thread).
    /// `f` checks preconditions against the model and writes SQL; its `Apply` updates
    /// the model only if the commit succeeded, so model and file never disagree.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &Model) -> ApiResult<(T, Apply)>,
    ) -> ApiResult<T> {
        let mut conn = self.writer.lock();
        let _measured = crate::telemetry::MetadataUse::start("write");
        let tx = conn.transaction()?;
        let (out, apply) = {
            let model = self.model.read();
            f(&tx, &model)?
        };
        tx.commit()?;
        apply(&mut self.model.write());
        Ok(out)
    }

    /// Runs a read query on a pooled connection (blocking: call from a blocking thread).
    pub fn query<T>(&self, f: impl FnOnce(&Connection) -> ApiResult<T>) -> ApiResult<T> {
        let pooled = self.readers.lock().pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.writer.lock().try_clone()?,
        };
        let measured = crate::telemetry::MetadataUse::start("read");
        let out = f(&conn);
        drop(measured);
        let mut idle = self.readers.lock();
        if idle.len() < 16 {
            idle.push(conn);
        }
        out
    }

    /// Bytes of file content stored (each content once) and upload sessions not yet expired,
    /// for the metrics the health refresher publishes.
    pub fn storage_figures(&self) -> ApiResult<(u64, u64)> {
        self.query(|c| {
            let bytes: i64 = c.query_row(
                "SELECT coalesce(sum(size_bytes), 0)::BIGINT FROM \
                 (SELECT DISTINCT sha256, size_bytes FROM files)",
                [],
                |r| r.get(0),
            )?;
            let sessions: i64 = c.query_row(
                "SELECT count(*) FROM upload_sessions WHERE expires_at > make_timestamp(?)",
                [now().timestamp_micros()],
                |r| r.get(0),
            )?;
            Ok((bytes.max(0) as u64, sessions.max(0) as u64))
        })
    }

    /// A cheap connection-level liveness check of the catalog database.
    pub fn ping(&self) -> bool {
        let conn = self.writer.lock();
        conn.query_row("SELECT 1", [], |r| r.get::<_, i32>(0))
            .is_ok()
    }
}

/// The current time at the precision the catalog stores (microseconds), so what a create
/// returns equals what later reads return.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// The `Apply` of a write that changes no cached state (files, jobs, blob data).
pub(crate) fn no_model_change() -> Apply {
    Box::new(|_| {})
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> ApiResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| ApiError::internal(format!("timestamp out of range: {us}")))
}

// Messages name objects as the reference does ('x' in bucket 'b'), but start in lower case like
// every other duckbank message; clients match on the lower-case start.
pub(crate) fn not_found_project(id: &crate::names::ProjectId) -> ApiError {
    ApiError::new(
        ErrorCode::ProjectNotFound,
        format!("Project '{id}' not found"),
    )
}

pub(crate) fn not_found_bucket(
    project: &crate::names::ProjectId,
    bucket: &crate::names::BucketName,
) -> ApiError {
    ApiError::new(
        ErrorCode::BucketNotFound,
        format!("Bucket '{bucket}' not found in project '{project}'"),
    )
}
