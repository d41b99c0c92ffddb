//! Projects: provisioning with a one-time key, listing, updates, live stats, deletion.
//! Creation makes the directory before the catalog commit; deletion removes catalog rows
//! (jobs included) first, then files, then cached keys and locks.

use serde_json::Value;

use super::{blocking, blocking_locked};
use crate::auth::keys::generate_project_key;
use crate::catalog::{not_found_project, ProjectRecord};
use crate::engine::{fsync_dir, Quarantine};
use crate::error::{ApiResult, IoContext};
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
    // Exclusive, so a concurrent create or delete of the same id cannot see the directory
    // half made.
    let guard = state.engine.locks.project_exclusive(&id).await;
    let state = state.clone();
    blocking_locked(guard, move || {
        // The directory comes first: once the catalog has committed, the one-time key must
        // reach the client, so nothing that can fail may follow the commit.
        let made = prepare_dir(&state, &id)?;
        let key = generate_project_key(&id);
        let record = match state
            .catalog
            .create_project(id.clone(), name, settings, &key)
        {
            Ok(record) => record,
            Err(e) => {
                if made {
                    // Empty, as just made: `remove_dir` cannot take anything else with it.
                    let _ = std::fs::remove_dir(state.engine.project_dir(&id));
                }
                return Err(e);
            }
        };
        tracing::info!(project = %id, key_prefix = %key.prefix, "project created");
        Ok((record, key.clear))
    })
    .await
}

/// Makes the project's directory (durably); true when this call created it. A non-empty
/// directory of a project the catalog does not know (a delete that could not remove it)
/// is moved to the quarantine first, so a new project never starts with an old one's files.
fn prepare_dir(state: &AppState, id: &ProjectId) -> ApiResult<bool> {
    let dir = state.engine.project_dir(id);
    let known = state.catalog.read(|m| m.project(id).is_some());
    let leftover = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
    if !known && leftover {
        let to = Quarantine::new(&state.config.data_dir)
            .move_aside(&dir)
            .at_path(
                "moving a leftover project directory to the quarantine",
                &dir,
            )?;
        tracing::warn!(
            project = %id,
            to = %to.display(),
            "moved the leftover directory of an earlier project with this id to the quarantine"
        );
    }
    let made = !dir.exists();
    std::fs::create_dir_all(&dir).at_path("creating project directory", &dir)?;
    let root = state.engine.tables_root();
    fsync_dir(&root).at_path("syncing the tables directory", &root)?;
    Ok(made)
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
        let workspaces = st.catalog.workspaces(pid.as_str(), None)?;
        st.catalog.delete_project(&pid)?;
        st.engine.drop_project(&pid)?;
        for w in workspaces {
            st.workspaces.remove(&w.project, &w.id)?;
        }
        super::snapshots::manage::remove_project_files(&st, &pid)
    })
    .await?;
    state.keys.forget_project(&id);
    state.files.release_blobs(blobs).await;
    tracing::info!(project = %id, "project deleted");
    Ok(())
}

/// Live figures: bucket and table counts from the catalog, bytes from the table files and
/// the project's recorded snapshot sizes (ADR 0029: snapshots count toward a project's size).
#[tracing::instrument(skip_all, fields(project = %record.id))]
pub async fn stats(state: &AppState, record: &ProjectRecord) -> ApiResult<ProjectStats> {
    let bucket_count = record.buckets.len();
    let table_count = record.buckets.values().map(|b| b.tables.len()).sum();
    let tables = state.engine.project_dir(&record.id);
    let (st, project) = (state.clone(), record.id.to_string());
    // Snapshots as recorded: on the S3 backend the local directory is only a cache.
    let size_bytes =
        blocking(move || Ok(dir_size(&tables) + st.catalog.snapshot_bytes(&project)?)).await?;
    Ok(ProjectStats {
        bucket_count,
        table_count,
        size_bytes,
    })
}

/// Bytes of the files under `dir`, recursively; 0 when it is missing.
pub(crate) fn dir_size(dir: &std::path::Path) -> u64 {
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
