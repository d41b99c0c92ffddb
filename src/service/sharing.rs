//! Sharing buckets across projects: share/unshare (source side), link/unlink (target side),
//! and read-only grants. Reads through a link resolve to the source while the share lasts.

use super::{blocking, blocking_locked};
use crate::catalog::{BucketLink, BucketRecord};
use crate::error::{ApiError, ApiResult};
use crate::names::{BucketName, ProjectId};
use crate::state::AppState;

pub async fn share(
    state: &AppState,
    project: ProjectId,
    bucket: BucketName,
    target: ProjectId,
) -> ApiResult<BucketRecord> {
    let state = state.clone();
    blocking(move || state.catalog.share_bucket(&project, &bucket, &target)).await
}

pub async fn unshare(
    state: &AppState,
    project: ProjectId,
    bucket: BucketName,
    target: ProjectId,
) -> ApiResult<()> {
    let state = state.clone();
    blocking(move || state.catalog.unshare_bucket(&project, &bucket, &target)).await
}

/// Creates bucket `name` in `project` as a read-only view of a bucket shared with it.
pub async fn link(
    state: &AppState,
    project: ProjectId,
    name: BucketName,
    source: BucketLink,
) -> ApiResult<BucketRecord> {
    let guard = state.engine.locks.bucket_exclusive(&project, &name).await;
    let state = state.clone();
    blocking_locked(guard, move || {
        state
            .catalog
            .create_bucket(&project, name, None, Some(source))
    })
    .await
}

/// Removes a linked bucket; the source's data is untouched.
pub async fn unlink(state: &AppState, project: ProjectId, name: BucketName) -> ApiResult<()> {
    let guard = state.engine.locks.bucket_exclusive(&project, &name).await;
    let record = super::buckets::get(state, &project, &name)?;
    if record.link.is_none() {
        return Err(ApiError::bad_request(format!(
            "bucket {:?} is not a linked bucket; delete it instead",
            name.as_str()
        )));
    }
    let state = state.clone();
    blocking_locked(guard, move || {
        state.catalog.delete_bucket(&project, &name).map(|_| ())
    })
    .await
}

pub async fn set_readonly(
    state: &AppState,
    project: ProjectId,
    bucket: BucketName,
    readonly: bool,
) -> ApiResult<BucketRecord> {
    // Exclusive: a grant must not land in the middle of a write to one of its tables.
    let guard = state.engine.locks.bucket_exclusive(&project, &bucket).await;
    let state = state.clone();
    blocking_locked(guard, move || {
        state.catalog.set_readonly(&project, &bucket, readonly)
    })
    .await
}
