//! Sharing buckets across projects: share/unshare (source side), link/unlink (target side),
//! and read-only grants. Reads through a link resolve to the source while the share lasts.

use super::{blocking, blocking_locked};
use crate::catalog::{BucketLink, BucketRecord, Model};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BucketName, ProjectId};
use crate::state::AppState;

#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, target = %target))]
pub async fn share(
    state: &AppState,
    project: ProjectId,
    bucket: BucketName,
    target: ProjectId,
) -> ApiResult<BucketRecord> {
    let state = state.clone();
    blocking(move || state.catalog.share_bucket(&project, &bucket, &target)).await
}

#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, target = %target))]
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
/// `by_operator` (the admin key acts for both projects) records the share first when it is
/// missing; a project key still needs the source project to have shared the bucket.
#[tracing::instrument(skip_all, fields(project = %project, bucket = %name, source_project = %source.source_project, source_bucket = %source.source_bucket))]
pub async fn link(
    state: &AppState,
    project: ProjectId,
    name: BucketName,
    source: BucketLink,
    by_operator: bool,
) -> ApiResult<BucketRecord> {
    super::bucket_exclusive(state, project, name, move |state, project, name| {
        let catalog = &state.catalog;
        let share_first =
            by_operator && catalog.read(|m| link_lacks_only_the_share(m, &project, &name, &source));
        // Only a share this call recorded is taken back if the link then fails.
        let recorded = share_first
            && match catalog.share_bucket(&source.source_project, &source.source_bucket, &project) {
                Ok(_) => true,
                // Shared meanwhile by someone else: nothing of ours to take back.
                Err(_) if catalog.read(|m| is_shared_with(m, &source, &project)) => false,
                Err(e) => return Err(e),
            };
        let linked = catalog.create_bucket(&project, name, None, Some(source.clone()));
        if linked.is_err() && recorded {
            let _ = catalog.unshare_bucket(&source.source_project, &source.source_bucket, &project);
        }
        linked
    })
    .await
}

/// Whether the source bucket of `link` is shared with `project` now.
fn is_shared_with(model: &Model, link: &BucketLink, project: &ProjectId) -> bool {
    model
        .bucket(&link.source_project, &link.source_bucket)
        .is_some_and(|b| b.shared_with.contains(project))
}

/// Whether linking would fail only because the source is not shared with `project`; every
/// other refusal is left to `create_bucket`, so the operator gets the same errors as anyone.
fn link_lacks_only_the_share(
    model: &Model,
    project: &ProjectId,
    name: &BucketName,
    source: &BucketLink,
) -> bool {
    let name_free = model
        .project(project)
        .is_some_and(|p| !p.buckets.contains_key(name));
    let shareable = model
        .bucket(&source.source_project, &source.source_bucket)
        .is_some_and(|b| b.link.is_none() && !b.shared_with.contains(project));
    name_free && shareable && &source.source_project != project
}

/// Removes a linked bucket; the source's data is untouched.
#[tracing::instrument(skip_all, fields(project = %project, bucket = %name))]
pub async fn unlink(state: &AppState, project: ProjectId, name: BucketName) -> ApiResult<()> {
    let guard = state.engine.locks.bucket_exclusive(&project, &name).await;
    let record = super::buckets::get(state, &project, &name)?;
    if record.link.is_none() {
        return Err(ApiError::new(
            ErrorCode::OperationNotAllowed,
            format!("Bucket '{name}' is not a linked bucket; delete it instead"),
        )
        .with_details(serde_json::json!({ "bucket": name })));
    }
    let state = state.clone();
    blocking_locked(guard, move || {
        state.catalog.delete_bucket(&project, &name).map(|_| ())
    })
    .await
}

#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, readonly = readonly))]
pub async fn set_readonly(
    state: &AppState,
    project: ProjectId,
    bucket: BucketName,
    readonly: bool,
) -> ApiResult<BucketRecord> {
    // Exclusive: a grant must not land in the middle of a write to one of its tables.
    super::bucket_exclusive(state, project, bucket, move |state, project, bucket| {
        state.catalog.set_readonly(&project, &bucket, readonly)
    })
    .await
}
