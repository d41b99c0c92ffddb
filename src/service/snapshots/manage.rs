//! Snapshots as the API handles them: take a manual one, list, get, delete, read in place
//! (time travel), and their end — retention expiry and project deletion remove rows and files.

use crate::catalog::snapshots::{SnapshotQuery, SnapshotRecord};
use crate::engine::export::RowSelection;
use crate::engine::preview::Preview;
use crate::engine::TableKey;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BranchId, BucketName, ProjectId, TableName};
use crate::service::blocking;
use crate::state::AppState;

use super::take::{take, Origin};
use super::{effective, snapshot_file_of, snapshot_not_found, stored, unless_deleted, StoredFile};
use crate::service::tables::resolve_reserved;

/// Takes a manual snapshot of a table (read through links), recorded in the caller's project
/// and branch: in a dev branch it reads the branch's view and belongs to the branch.
pub async fn create(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
    description: Option<String>,
    created_by: String,
) -> ApiResult<SnapshotRecord> {
    let (reserved, guard, source) = resolve_reserved(state, project, branch, bucket, table).await?;
    let owner = TableKey {
        branch: branch.dev().cloned(),
        ..TableKey::new(project, bucket, table)
    };
    let st = state.clone();
    state
        .bulk
        .run(reserved, guard, move || {
            let settings = effective(&st, &owner)?;
            if !settings.flag("enabled") {
                return Err(ApiError::new(
                    ErrorCode::SnapshotsDisabled,
                    format!(
                        "snapshots are disabled for table '{}' in bucket '{}' (its effective snapshot settings)",
                        owner.table, owner.bucket
                    ),
                ));
            }
            take(
                &st,
                Origin {
                    source: &source,
                    owner: &owner,
                    kind: "manual",
                    description,
                    created_by: Some(created_by),
                    retention_days: settings.days("retention.manual_days"),
                },
            )
        })
        .await
}

/// A page of the project's snapshots newest first, and how many match in all; `query.branch`
/// says whose (a list never mixes branches).
pub async fn list(
    state: &AppState,
    project: &ProjectId,
    query: SnapshotQuery,
) -> ApiResult<(Vec<SnapshotRecord>, u64)> {
    state
        .catalog
        .read(|m| m.existing_project(project).map(|_| ()))?;
    let (st, p) = (state.clone(), project.to_string());
    blocking(move || st.catalog.snapshots(&p, &query)).await
}

/// One snapshot of the project taken in `branch`, or 404.
pub async fn get(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    id: &str,
) -> ApiResult<SnapshotRecord> {
    stored(state, project, branch, id).await
}

/// Deletes a snapshot of `branch`: its row first (then nobody can reach the file), then its file.
pub async fn delete(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    id: &str,
) -> ApiResult<()> {
    let snapshot = stored(state, project, branch, id).await?;
    let st = state.clone();
    blocking(move || {
        if !st
            .catalog
            .delete_snapshot(&snapshot.project, &snapshot.id)?
        {
            return Err(snapshot_not_found(&snapshot.id));
        }
        st.snapshot_files.remove(&snapshot.file_path);
        Ok(())
    })
    .await
}

/// Deletes the snapshots whose retention has ended, rows and files; returns how many
/// (blocking; the periodic cleaner calls it).
pub fn purge_expired(state: &AppState) -> ApiResult<usize> {
    let expired = state.catalog.expired_snapshots(crate::catalog::now())?;
    let mut purged = 0;
    for (project, id, file_path) in expired {
        if state.catalog.delete_snapshot(&project, &id)? {
            state.snapshot_files.remove(&file_path);
            purged += 1;
            tracing::info!(project = %project, snapshot = %id, "expired snapshot deleted");
        }
    }
    Ok(purged)
}

/// On the S3 backend: evicts idle cached copies and deletes objects no row names (blocking;
/// the periodic cleaner calls it).
pub fn sweep_remote(state: &AppState) -> ApiResult<()> {
    if !state.snapshot_files.is_remote() {
        return Ok(());
    }
    let known = state.catalog.snapshot_paths()?.into_iter().collect();
    let (evicted, orphans) = state.snapshot_files.sweep_remote(&known)?;
    if evicted + orphans > 0 {
        tracing::info!(evicted, orphans, "snapshot cache and objects swept");
    }
    Ok(())
}

/// Removes a deleted project's snapshot files (blocking; after its catalog rows went).
pub fn remove_project_files(state: &AppState, project: &ProjectId) -> ApiResult<()> {
    state.snapshot_files.remove_project(project.as_str())
}

/// A snapshot of `bucket.table` opened for reading in place (time travel): 404 unless the
/// project has snapshot `id`, taken in `branch` (ADR 0031: a branch's time travel reaches its
/// own snapshots only), of that table (which need not exist any more).
pub(crate) async fn readable(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
    id: &str,
) -> ApiResult<(TableKey, StoredFile)> {
    let snapshot = stored(state, project, branch, id).await?;
    if snapshot.names()? != (bucket.clone(), table.clone()) {
        return Err(ApiError::new(
            ErrorCode::SnapshotNotFound,
            format!(
                "Snapshot '{id}' is a snapshot of table '{}' in bucket '{}', not of '{table}' in '{bucket}'",
                snapshot.table, snapshot.bucket
            ),
        ));
    }
    let key = TableKey {
        branch: branch.dev().cloned(),
        ..TableKey::new(project, bucket, table)
    };
    let st = state.clone();
    let file = blocking(move || snapshot_file_of(&st, &snapshot)).await?;
    Ok((key, file))
}

/// The first rows of a snapshot, as a table preview reads them.
#[allow(clippy::too_many_arguments)]
pub async fn preview(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
    id: &str,
    limit: u32,
    selection: RowSelection,
) -> ApiResult<Preview> {
    let (key, file) = readable(state, project, branch, bucket, table, id).await?;
    let engine = state.engine.clone();
    let max_bytes = state.config.max_preview_bytes;
    let read =
        blocking(move || engine.preview_snapshot(&file.view(&key), limit, max_bytes, &selection))
            .await;
    match read {
        Ok(preview) => Ok(preview),
        Err(e) => Err(unless_deleted(state, project, id, e).await),
    }
}
