//! Tables: create (file, then catalog row), describe, list, delete and preview.
//! Reads through linked buckets resolve to the source project's files under its locks.

use std::collections::HashSet;

use super::{blocking_locked, require_writable, resolve_read};
use crate::catalog::tables::{table_exists, table_not_found};
use crate::catalog::TableRecord;
use crate::engine::ddl::ColumnDef;
use crate::engine::export::RowSelection;
use crate::engine::preview::Preview;
use crate::engine::{LockGuard, TableInfo, TableKey};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BucketName, ColumnName, ProjectId, TableName};
use crate::state::AppState;

/// A table as the API shows it: catalog record plus facts from its file.
pub struct TableView {
    pub bucket: BucketName,
    pub record: TableRecord,
    pub info: TableInfo,
}

/// Checks a definition as a whole: at least one column, no duplicates (DuckDB folds case),
/// primary-key columns exist, appear once, and are not declared nullable-by-default.
pub fn validate_definition(columns: &[ColumnDef], primary_key: &[ColumnName]) -> ApiResult<()> {
    if columns.is_empty() {
        return Err(ApiError::bad_request("a table needs at least one column"));
    }
    if columns.len() > 1000 {
        return Err(ApiError::bad_request(
            "a table may have at most 1000 columns",
        ));
    }
    let mut seen = HashSet::new();
    for c in columns {
        if !seen.insert(c.name.folded()) {
            return Err(ApiError::bad_request_with(
                format!("duplicate column name {:?}", c.name.as_str()),
                serde_json::json!({ "column": c.name }),
            ));
        }
    }
    let mut pk_seen = HashSet::new();
    for pk in primary_key {
        if !seen.contains(&pk.folded()) {
            return Err(ApiError::new(
                ErrorCode::InvalidPrimaryKey,
                format!(
                    "primary key column {:?} is not among the table's columns",
                    pk.as_str()
                ),
            )
            .with_details(serde_json::json!({ "column": pk })));
        }
        if !pk_seen.insert(pk.folded()) {
            return Err(ApiError::new(
                ErrorCode::InvalidPrimaryKey,
                format!("primary key column {:?} is listed twice", pk.as_str()),
            )
            .with_details(serde_json::json!({ "column": pk })));
        }
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %name))]
pub async fn create(
    state: &AppState,
    project: ProjectId,
    bucket: BucketName,
    name: TableName,
    columns: Vec<ColumnDef>,
    primary_key: Vec<ColumnName>,
) -> ApiResult<TableView> {
    validate_definition(&columns, &primary_key)?;
    let key = TableKey::new(&project, &bucket, &name);
    let guard = state.engine.locks.table_exclusive(&key).await;
    let state = state.clone();
    blocking_locked(guard, move || {
        let record = state
            .catalog
            .read(|m| m.existing_bucket(&project, &bucket).cloned())?;
        require_writable(&record)?;
        if record.tables.contains_key(&name) {
            return Err(table_exists(&bucket, &name));
        }
        state.engine.create_table(&key, &columns, &primary_key)?;
        let record = match state
            .catalog
            .insert_table(&project, &bucket, name, primary_key)
        {
            Ok(r) => r,
            Err(e) => {
                // Keep file and catalog in step: no file without its row.
                let _ = state.engine.drop_table(&key);
                return Err(e);
            }
        };
        let info = state.engine.describe(&key)?;
        tracing::info!(project = %project, bucket = %bucket, table = %key.table, "table created");
        Ok(TableView {
            bucket,
            record,
            info,
        })
    })
    .await
}

/// Tables of a bucket (or of the source of a live link), with their columns and sizes.
#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket))]
pub async fn list(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
) -> ApiResult<Vec<TableView>> {
    let target = resolve_read(state, project, bucket)?;
    let keys: Vec<(TableKey, TableRecord)> = target
        .source
        .tables
        .values()
        .map(|record| {
            let key = TableKey::new(&target.project, &target.source.name, &record.name);
            (key, record.clone())
        })
        .collect();
    let table_keys: Vec<TableKey> = keys.iter().map(|(k, _)| k.clone()).collect();
    let guards = state
        .engine
        .locks
        .tables_shared(&target.project, &target.source.name, &table_keys)
        .await;
    let state = state.clone();
    let shown = bucket.clone();
    blocking_locked(guards, move || {
        keys.into_iter()
            // Skip tables deleted while this request waited for the locks.
            .filter(|(key, _)| {
                state.catalog.read(|m| {
                    m.bucket(&key.project, &key.bucket)
                        .is_some_and(|b| b.tables.contains_key(&key.table))
                })
            })
            .map(|(key, record)| {
                Ok(TableView {
                    bucket: shown.clone(),
                    info: state.engine.describe(&key)?,
                    record,
                })
            })
            .collect::<ApiResult<Vec<_>>>()
    })
    .await
}

/// Resolves a table for reading and returns its file key and catalog record.
pub(crate) fn resolve_table(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<(TableKey, TableRecord)> {
    let target = resolve_read(state, project, bucket)?;
    let record = target
        .source
        .tables
        .get(table)
        .cloned()
        .ok_or_else(|| table_not_found(bucket, table))?;
    Ok((
        TableKey {
            project: target.project,
            bucket: target.source.name,
            table: table.clone(),
        },
        record,
    ))
}

/// Resolves a table and takes its shared lock, re-checking after the wait: the table may
/// have been deleted (404) or a link re-pointed meanwhile (then the caller simply retries).
pub(crate) async fn resolve_locked(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<(LockGuard, TableKey, TableRecord)> {
    let (key, _) = resolve_table(state, project, bucket, table)?;
    let guard = state.engine.locks.table_shared(&key).await;
    let (now, record) = resolve_table(state, project, bucket, table)?;
    if now != key {
        return Err(ApiError::new(
            ErrorCode::ConcurrentChange,
            format!("Bucket '{bucket}' changed while the request waited; retry"),
        ));
    }
    Ok((guard, key, record))
}

/// Takes a table of the caller's own project for writing: exclusive lock first, then the
/// checks, so nothing changes between check and write.
pub(crate) async fn writable_locked(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<(LockGuard, TableKey)> {
    let key = TableKey::new(project, bucket, table);
    let guard = state.engine.locks.table_exclusive(&key).await;
    state.catalog.read(|m| {
        let record = m.existing_bucket(project, bucket)?;
        require_writable(record)?;
        if !record.tables.contains_key(table) {
            return Err(table_not_found(bucket, table));
        }
        Ok(())
    })?;
    Ok((guard, key))
}

#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table))]
pub async fn get(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<TableView> {
    let (guard, key, record) = resolve_locked(state, project, bucket, table).await?;
    let engine = state.engine.clone();
    let info = blocking_locked(guard, move || engine.describe(&key)).await;
    Ok(TableView {
        bucket: bucket.clone(),
        record,
        info: info?,
    })
}

#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table))]
pub async fn delete(
    state: &AppState,
    project: ProjectId,
    bucket: BucketName,
    table: TableName,
) -> ApiResult<()> {
    let key = TableKey::new(&project, &bucket, &table);
    let guard = state.engine.locks.table_exclusive(&key).await;
    let st = state.clone();
    let k = key.clone();
    blocking_locked(guard, move || {
        let (state, key) = (st, k);
        let record = state
            .catalog
            .read(|m| m.existing_bucket(&project, &bucket).cloned())?;
        require_writable(&record)?;
        // Catalog first: once the row is gone nobody can reach the file; a crash before
        // the file is removed leaves an orphan that the start-up sweep deletes.
        state.catalog.delete_table(&project, &bucket, &table)?;
        state.engine.drop_table(&key)?;
        tracing::info!(project = %project, bucket = %bucket, table = %table, "table deleted");
        Ok(())
    })
    .await?;
    state.engine.locks.forget_table(&key);
    Ok(())
}

#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table, limit = limit))]
pub async fn preview(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
    limit: u32,
    selection: RowSelection,
) -> ApiResult<Preview> {
    let (guard, key, _) = resolve_locked(state, project, bucket, table).await?;
    let engine = state.engine.clone();
    let max_bytes = state.config.max_preview_bytes;
    // The rows are read into memory (bounded by `max_bytes`) and the lock released before
    // the client is sent anything: how fast it reads never holds up a writer.
    blocking_locked(guard, move || {
        engine.preview(&key, limit, max_bytes, &selection)
    })
    .await
}
