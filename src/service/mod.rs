//! Services: one module per capability, combining the catalog, the table engine and locks.
//! Handlers call these; they never touch DuckDB directly and run blocking work off the reactor.

pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod branches;
pub mod buckets;
pub mod bulk;
mod fair;
pub mod files;
pub mod health;
pub mod idempotency;
pub mod jobs;
pub mod pgwire;
pub mod projects;
pub mod s3;
pub mod sharing;
pub mod snapshots;
pub mod table_data;
pub mod table_stats;
pub mod tables;
pub mod workspaces;

use crate::catalog::BucketRecord;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BucketName, ProjectId};
use crate::state::AppState;

/// Runs blocking work (DuckDB, fsync, argon2) on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Resolves a bucket for reading and runs `f` on where its reads go: the bucket itself, or
/// the source of a live link (with the source's project). A link whose share was revoked
/// answers 403. `f` sees the read model in place, so it copies only what it needs.
pub fn resolve_read<T>(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    f: impl FnOnce(&ProjectId, &BucketRecord) -> T,
) -> ApiResult<T> {
    state.catalog.read(|m| {
        let record = m.existing_bucket(project, bucket)?;
        match &record.link {
            None => Ok(f(project, record)),
            Some(link) => {
                if !m.link_is_live(project, link) {
                    return Err(ApiError::new(
                        ErrorCode::LinkNotLive,
                        format!(
                            "Linked bucket '{bucket}' is no longer shared by project '{}'",
                            link.source_project
                        ),
                    )
                    .with_details(serde_json::json!({
                        "bucket": bucket,
                        "source_project_id": link.source_project,
                        "source_bucket_name": link.source_bucket,
                    })));
                }
                let source = m.existing_bucket(&link.source_project, &link.source_bucket)?;
                Ok(f(&link.source_project, source))
            }
        }
    })
}

/// Checks that tables in a bucket may be changed: not a link, not granted read-only.
pub fn require_writable(record: &BucketRecord) -> ApiResult<()> {
    if record.link.is_some() {
        return Err(read_only(
            record,
            "is linked from another project and is read-only",
        ));
    }
    if record.readonly {
        return Err(read_only(
            record,
            "has read-only access granted; revoke it before writing",
        ));
    }
    Ok(())
}

/// 403 `bucket_read_only` for `record`, saying why in `reason`.
pub fn read_only(record: &BucketRecord, reason: &str) -> ApiError {
    ApiError::new(
        ErrorCode::BucketReadOnly,
        format!("Bucket '{}' {reason}", record.name),
    )
    .with_details(serde_json::json!({
        "bucket": record.name,
        "linked": record.link.is_some(),
        "readonly": record.readonly,
    }))
}

/// Runs blocking work on `bucket` while holding the bucket's exclusive lock; the work gets
/// its own handle on the state and the names back.
pub async fn bucket_exclusive<T: Send + 'static>(
    state: &AppState,
    project: ProjectId,
    bucket: BucketName,
    f: impl FnOnce(AppState, ProjectId, BucketName) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let guard = state.engine.locks.bucket_exclusive(&project, &bucket).await;
    let state = state.clone();
    blocking_locked(guard, move || f(state, project, bucket)).await
}

/// Runs blocking work while holding `guard`. The guard moves into the task, so a client
/// that disconnects cannot release the lock while the work is still running.
pub async fn blocking_locked<G: Send + 'static, T: Send + 'static>(
    guard: G,
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(move || {
        let _held = guard;
        f()
    })
    .await?
}
