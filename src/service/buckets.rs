//! Buckets: create (directory + catalog row), list, get, delete with or without its tables.
//! A non-empty bucket is deleted only when the caller asks for cascade; otherwise 409.

use super::{blocking_locked, read_only};
use crate::catalog::{not_found_project, BucketRecord};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BucketName, ProjectId};
use crate::state::AppState;

pub fn list(state: &AppState, project: &ProjectId) -> ApiResult<Vec<BucketRecord>> {
    state.catalog.read(|m| {
        m.existing_project(project)
            .map(|p| p.buckets.values().cloned().collect())
    })
}

pub fn get(state: &AppState, project: &ProjectId, bucket: &BucketName) -> ApiResult<BucketRecord> {
    state
        .catalog
        .read(|m| m.existing_bucket(project, bucket).cloned())
}

/// Number of tables a bucket shows: its own, or its live source's for a link.
pub fn table_count(state: &AppState, project: &ProjectId, record: &BucketRecord) -> usize {
    match &record.link {
        None => record.tables.len(),
        Some(link) => state.catalog.read(|m| {
            if m.link_is_live(project, link) {
                m.bucket(&link.source_project, &link.source_bucket)
                    .map_or(0, |b| b.tables.len())
            } else {
                0
            }
        }),
    }
}

#[tracing::instrument(skip_all, fields(project = %project, bucket = %name))]
pub async fn create(
    state: &AppState,
    project: ProjectId,
    name: BucketName,
    description: Option<String>,
) -> ApiResult<BucketRecord> {
    super::bucket_exclusive(state, project, name, move |state, project, name| {
        // Directory first: a crash before the catalog commit leaves only an empty
        // directory, which the start-up sweep removes.
        // Checked before touching the disk so a refused create leaves nothing behind;
        // the bucket lock keeps the answer valid until the catalog commit.
        state.catalog.read(|m| match m.project(&project) {
            None => Err(not_found_project(&project)),
            Some(p) if p.buckets.contains_key(&name) => Err(ApiError::new(
                ErrorCode::BucketExists,
                format!("Bucket '{name}' already exists in project '{project}'"),
            )
            .with_details(serde_json::json!({ "bucket": name, "project_id": project }))),
            Some(_) => Ok(()),
        })?;
        state.engine.create_bucket_dir(&project, &name)?;
        state
            .catalog
            .create_bucket(&project, name, description, None)
    })
    .await
}

#[tracing::instrument(skip_all, fields(project = %project, bucket = %name, cascade = cascade))]
pub async fn delete(
    state: &AppState,
    project: ProjectId,
    name: BucketName,
    cascade: bool,
) -> ApiResult<()> {
    let guard = state.engine.locks.bucket_exclusive(&project, &name).await;
    let record = get(state, &project, &name)?;
    if record.readonly {
        return Err(read_only(
            &record,
            "has read-only access granted; revoke it before deleting the bucket",
        ));
    }
    if !cascade && !record.tables.is_empty() {
        return Err(ApiError::new(
            ErrorCode::BucketNotEmpty,
            format!(
                "Bucket '{name}' still has {} table(s); delete them first or pass force=true",
                record.tables.len()
            ),
        )
        .with_details(serde_json::json!({ "tables": record.tables.keys().collect::<Vec<_>>() })));
    }
    let st = state.clone();
    let (p, b) = (project.clone(), name.clone());
    blocking_locked(guard, move || {
        st.catalog.delete_bucket(&p, &b)?;
        if record.link.is_none() {
            st.engine.drop_bucket(&p, &b)?;
        }
        tracing::info!(project = %p, bucket = %b, "bucket deleted");
        Ok(())
    })
    .await
}
