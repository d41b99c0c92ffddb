//! Projects: provisioning with a one-time key, listing, updates, live stats, deletion.
//! Deletion removes catalog rows first, then files, then cached keys and locks.

use serde_json::Value;

use super::{blocking, blocking_locked};
use crate::auth::keys::generate_project_key;
use crate::catalog::{not_found_project, ProjectRecord};
use crate::error::ApiResult;
use crate::names::ProjectId;
use crate::state::AppState;

/// Counts and bytes of one project, computed from the catalog and the files on disk.
pub struct ProjectStats {
    pub bucket_count: usize,
    pub table_count: usize,
    pub size_bytes: u64,
}

#[tracing::instrument(skip_all, fields(project = %id))]
pub async fn create(
    state: &AppState,
    id: ProjectId,
    name: Option<String>,
    settings: Option<Value>,
) -> ApiResult<(ProjectRecord, String)> {
    let state = state.clone();
    blocking(move || {
        let key = generate_project_key(&id);
        let record = state
            .catalog
            .create_project(id.clone(), name, settings, &key)?;
        std::fs::create_dir_all(state.engine.project_dir(&id))?;
        tracing::info!(project = %id, key_prefix = %key.prefix, "project created");
        Ok((record, key.clear))
    })
    .await
}

pub fn get(state: &AppState, id: &ProjectId) -> ApiResult<ProjectRecord> {
    state
        .catalog
        .read(|m| m.project(id).cloned())
        .ok_or_else(|| not_found_project(id))
}

/// One page of projects in id order, and the total count.
pub fn list(state: &AppState, offset: usize, limit: usize) -> (Vec<ProjectRecord>, usize) {
    state.catalog.read(|m| {
        let page = m
            .projects
            .values()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect();
        (page, m.projects.len())
    })
}

#[tracing::instrument(skip_all, fields(project = %id))]
pub async fn update(
    state: &AppState,
    id: ProjectId,
    name: Option<String>,
    settings: Option<Value>,
) -> ApiResult<ProjectRecord> {
    let state = state.clone();
    blocking(move || state.catalog.update_project(&id, name, settings)).await
}

#[tracing::instrument(skip_all, fields(project = %id))]
pub async fn delete(state: &AppState, id: ProjectId) -> ApiResult<()> {
    let guard = state.engine.locks.project_exclusive(&id).await;
    let blobs = state.files.project_blobs(&id).await?;
    let st = state.clone();
    let pid = id.clone();
    blocking_locked(guard, move || {
        st.catalog.delete_project(&pid)?;
        st.engine.drop_project(&pid)
    })
    .await?;
    state.keys.forget_project(&id);
    state.files.release_blobs(blobs).await;
    tracing::info!(project = %id, "project deleted");
    Ok(())
}

/// Live figures: bucket and table counts from the catalog, bytes from the table files.
#[tracing::instrument(skip_all, fields(project = %record.id))]
pub async fn stats(state: &AppState, record: &ProjectRecord) -> ApiResult<ProjectStats> {
    let bucket_count = record.buckets.len();
    let table_count = record.buckets.values().map(|b| b.tables.len()).sum();
    let dir = state.engine.project_dir(&record.id);
    let size_bytes = blocking(move || Ok(dir_size(&dir))).await?;
    Ok(ProjectStats {
        bucket_count,
        table_count,
        size_bytes,
    })
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
