//! Snapshots of tables (ADR 0029): their settings inherited project → bucket → table, and
//! taking, listing, restoring, reading and expiring snapshots. Handlers call these.

pub mod manage;
pub mod restore;
pub mod settings;
pub mod take;

use std::path::PathBuf;

use crate::catalog::snapshots::{SettingsKey, SnapshotRecord};
use crate::engine::snapshot::SnapshotFile;
use crate::engine::{ColumnInfo, TableKey};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BranchId, BucketName, ProjectId, TableName};
use crate::state::AppState;
use settings::{Level, LocalConfig, Resolved};

/// What a destructive change was asked with about the snapshot its settings promise first.
#[derive(Debug, Clone)]
pub struct AutoSnapshot {
    /// `?skip_snapshot=true`: make the change without it.
    pub skip: bool,
    /// Who asked (`admin` or `key:<id>`), recorded as the snapshot's `created_by`.
    pub by: String,
}

/// The effective settings of a table (blocking).
pub(crate) fn effective(state: &AppState, key: &TableKey) -> ApiResult<Resolved> {
    let target = Target {
        project: key.project.clone(),
        bucket: Some(key.bucket.clone()),
        table: Some(key.table.clone()),
    };
    resolve(state, &target)
}

/// 404 `snapshot_not_found` naming `id`.
pub(crate) fn snapshot_not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::SnapshotNotFound,
        format!("Snapshot '{id}' not found"),
    )
}

/// `err` from reading snapshot `id`, or 404 when the snapshot was deleted meanwhile (its
/// file went with it): a read racing a delete answers as if the delete came first.
pub(crate) async fn unless_deleted(
    state: &AppState,
    project: &ProjectId,
    id: &str,
    err: ApiError,
) -> ApiError {
    let (st, p, i) = (state.clone(), project.to_string(), id.to_string());
    match super::blocking(move || st.catalog.snapshot(&p, &i)).await {
        Ok(None) => snapshot_not_found(id),
        _ => err,
    }
}

/// The snapshot `id` of `project` taken in `branch`, or 404: a path of one branch (main's
/// included) reaches that branch's snapshots only (ADR 0031).
pub(crate) async fn stored(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    id: &str,
) -> ApiResult<SnapshotRecord> {
    state
        .catalog
        .read(|m| m.existing_project(project).map(|_| ()))?;
    // Every id we issue is a UUID: anything else cannot name a snapshot (nor a path).
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(snapshot_not_found(id));
    }
    let (st, p, i) = (state.clone(), project.to_string(), id.to_string());
    super::blocking(move || st.catalog.snapshot(&p, &i))
        .await?
        .filter(|s| s.in_branch(branch))
        .ok_or_else(|| snapshot_not_found(id))
}

impl SnapshotRecord {
    /// Whether it belongs to `branch` (main's snapshots have no branch).
    pub fn in_branch(&self, branch: &BranchId) -> bool {
        self.branch.as_deref() == branch.dev().map(|b| b.as_str())
    }

    /// The bucket and table it was taken of, as validated names.
    pub fn names(&self) -> ApiResult<(BucketName, TableName)> {
        Ok((
            BucketName::parse(&self.bucket)?,
            TableName::parse(&self.table)?,
        ))
    }
}

/// A snapshot's file on disk with the table definition it holds.
pub(crate) struct StoredFile {
    pub path: PathBuf,
    pub columns: Vec<ColumnInfo>,
    pub primary_key: Vec<String>,
    pub row_count: u64,
}

impl StoredFile {
    /// The engine's view of it; `key` names the table in messages.
    pub fn view<'a>(&'a self, key: &'a TableKey) -> SnapshotFile<'a> {
        SnapshotFile {
            path: &self.path,
            key,
            columns: &self.columns,
            primary_key: &self.primary_key,
            row_count: self.row_count,
        }
    }
}

/// The file of a recorded snapshot on this machine (fetched into the cache when it is kept
/// in S3); 404 when the snapshot was deleted meanwhile, an error when only its file is missing
/// (blocking).
pub(crate) fn snapshot_file_of(state: &AppState, s: &SnapshotRecord) -> ApiResult<StoredFile> {
    let Some(path) = state.snapshot_files.fetch(&s.file_path)? else {
        if state.catalog.snapshot(&s.project, &s.id)?.is_none() {
            return Err(snapshot_not_found(&s.id));
        }
        return Err(ApiError::internal(format!(
            "the file of snapshot {} is missing: {}",
            s.id, s.file_path
        )));
    };
    Ok(StoredFile {
        path,
        columns: s
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| ColumnInfo {
                name: c.name.clone(),
                data_type: c.data_type.clone(),
                nullable: c.nullable,
                ordinal_position: u32::try_from(i + 1).unwrap_or(u32::MAX),
                default: c.default.clone(),
            })
            .collect(),
        primary_key: s.primary_key.clone(),
        row_count: s.row_count,
    })
}

/// The settings level a path names: the project, one of its buckets, or one of its tables.
#[derive(Debug, Clone)]
pub struct Target {
    pub project: ProjectId,
    pub bucket: Option<BucketName>,
    pub table: Option<TableName>,
}

impl Target {
    fn level(&self) -> Level {
        match (&self.bucket, &self.table) {
            (None, _) => Level::Project,
            (Some(_), None) => Level::Bucket,
            (Some(_), Some(_)) => Level::Table,
        }
    }

    fn key(&self, level: Level) -> SettingsKey {
        let text = |v: Option<String>| v.unwrap_or_default();
        SettingsKey {
            project: self.project.to_string(),
            bucket: match level {
                Level::Bucket | Level::Table => text(self.bucket.as_ref().map(|b| b.to_string())),
                _ => String::new(),
            },
            table: match level {
                Level::Table => text(self.table.as_ref().map(|t| t.to_string())),
                _ => String::new(),
            },
        }
    }

    /// 404 unless the project, bucket and table the path names exist.
    fn require_exists(&self, state: &AppState) -> ApiResult<()> {
        state.catalog.read(|m| {
            m.existing_project(&self.project)?;
            if let Some(bucket) = &self.bucket {
                let record = m.existing_bucket(&self.project, bucket)?;
                if let Some(table) = &self.table {
                    if !record.tables.contains_key(table) {
                        return Err(crate::error::ApiError::new(
                            crate::error::ErrorCode::TableNotFound,
                            format!("Table '{table}' not found in bucket '{bucket}'"),
                        ));
                    }
                }
            }
            Ok(())
        })
    }
}

/// The effective settings at `target`, where each came from, and its own level's config.
pub async fn get(state: &AppState, target: Target) -> ApiResult<Resolved> {
    target.require_exists(state)?;
    let state = state.clone();
    super::blocking(move || resolve(&state, &target)).await
}

/// Replaces the config of `target`'s level (validated first) and answers as `get` does.
pub async fn put(state: &AppState, target: Target, config: LocalConfig) -> ApiResult<Resolved> {
    config.validate()?;
    target.require_exists(state)?;
    let state = state.clone();
    super::blocking(move || {
        let level = target.level();
        state
            .catalog
            .put_snapshot_settings(&target.key(level), level.as_str(), &config)?;
        resolve(&state, &target)
    })
    .await
}

/// Removes the config of `target`'s level, so it inherits again. Idempotent.
pub async fn delete(state: &AppState, target: Target) -> ApiResult<()> {
    target.require_exists(state)?;
    let state = state.clone();
    super::blocking(move || {
        let level = target.level();
        state.catalog.delete_snapshot_settings(&target.key(level))
    })
    .await
}

/// Reads every level from the project down to `target` and resolves them (blocking).
fn resolve(state: &AppState, target: &Target) -> ApiResult<Resolved> {
    let own = target.level();
    let mut chain = Vec::new();
    for level in [Level::Project, Level::Bucket, Level::Table] {
        if level > own {
            break;
        }
        if let Some(config) = state.catalog.snapshot_settings(&target.key(level))? {
            chain.push((level, config));
        }
    }
    Ok(settings::resolve(own, &chain))
}
