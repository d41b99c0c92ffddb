//! Snapshots of tables (ADR 0029): their settings inherited project → bucket → table, and
//! (later) taking, listing, restoring and expiring snapshots. Handlers call these.

pub mod settings;

use crate::catalog::snapshots::SettingsKey;
use crate::error::ApiResult;
use crate::names::{BucketName, ProjectId, TableName};
use crate::state::AppState;
use settings::{Level, LocalConfig, Resolved};

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
