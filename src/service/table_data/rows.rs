//! Row-level work on one table: deleting matching rows, and profiling its columns.
//! Deletes take the table's exclusive lock; profiles read through links under a shared lock.

use crate::engine::filter::Filter;
use crate::engine::profile::Profile;
use crate::error::ApiResult;
use crate::names::{BranchId, BucketName, ProjectId, TableName};
use crate::service::snapshots::take::{before_change, Trigger};
use crate::service::snapshots::AutoSnapshot;
use crate::service::tables::{record_after_write, resolve_reserved, writable_reserved};
use crate::state::AppState;

/// Deletes matching rows; returns (deleted, remaining).
#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table))]
pub async fn delete_rows(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
    filter: Filter,
    auto: AutoSnapshot,
) -> ApiResult<(u64, u64)> {
    let (reserved, guard, key) = writable_reserved(state, project, branch, bucket, table).await?;
    let st = state.clone();
    state
        .bulk
        .run(reserved, guard, move || {
            // Counted only when a snapshot could be due: it costs a scan of the filter.
            if !auto.skip && st.engine.filter_matches_every_row(&key, &filter)? {
                before_change(&st, &key, Trigger::DeleteAllRows, &auto)?;
            }
            let deleted = st.engine.delete_rows(&key, &filter);
            record_after_write(&st, &key);
            deleted
        })
        .await
}

#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table))]
pub async fn profile(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<Profile> {
    let (reserved, guard, key) = resolve_reserved(state, project, branch, bucket, table).await?;
    let engine = state.engine.clone();
    state
        .bulk
        .run(reserved, guard, move || engine.profile(&key))
        .await
}
