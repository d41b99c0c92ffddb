//! Tables: create (file, then catalog row), describe, list, delete and preview, and the
//! figures a list shows, recorded in the catalog after every write so a list opens no file.
//! Reads through linked buckets resolve to the source project's files under its locks.

use std::collections::HashSet;

use super::bulk::Reserved;
pub use super::table_stats::TableView;
use super::table_stats::{read_stats, record_stats};
use super::{blocking_locked, require_writable, resolve_read};
use crate::catalog::tables::{table_exists, table_not_found};
use crate::catalog::TableRecord;
use crate::engine::ddl::ColumnDef;
use crate::engine::export::RowSelection;
use crate::engine::preview::Preview;
use crate::engine::{LockGuard, TableKey};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BranchId, BucketName, ColumnName, ProjectId, TableName};
use crate::service::snapshots::take::{before_change, Trigger};
use crate::service::snapshots::AutoSnapshot;
use crate::state::AppState;

/// Records a table whose file was just created (blocking, under its exclusive lock), with its
/// figures in the same catalog commit; on failure the caller removes the file again.
pub(crate) fn record_created(state: &AppState, key: &TableKey) -> ApiResult<TableRecord> {
    if let Some(branch) = &key.branch {
        return super::branches::overlay::record_created(state, key, branch);
    }
    // The primary key as the file declares it: the file is authoritative.
    let (primary_key, stats) = read_stats(state, key, true)?;
    state.catalog.insert_table(
        &key.project,
        &key.bucket,
        key.table.clone(),
        primary_key,
        stats,
    )
}

/// Folds in the WAL of tables whose checkpoint DuckDB refused after their write, and records
/// their files' new stamps, so they are not read again after a restart (blocking; the cleaner
/// calls it now and then, and every write afterwards).
pub fn restamp_unfolded(state: &AppState) {
    for (key, _guard) in state.engine.retry_checkpoints() {
        if key.branch.is_some() {
            continue;
        }
        let stamp = state.engine.file_stamp(&key);
        if let Err(e) = state
            .catalog
            .set_file_stamp(&key.project, &key.bucket, &key.table, stamp)
        {
            tracing::debug!(table = %key.table, error = %e, "could not record a table file's stamp");
        }
    }
}

/// Records a table's figures after a write to its file, whether the write succeeded or not (a
/// rolled-back load may still have grown the file). Blocking, under the table's exclusive
/// lock. When they cannot be recorded, the old ones are forgotten so the next list reads the
/// file rather than show figures from before the write.
pub(crate) fn record_after_write(state: &AppState, key: &TableKey) -> Option<TableRecord> {
    let recorded = record_stats(state, key, true);
    restamp_unfolded(state);
    match recorded {
        Ok(record) => Some(record),
        Err(e) => {
            tracing::warn!(table = %key.table, error = %e, "could not record a table's figures after a write");
            if key.branch.is_none() {
                state.catalog.forget_stale_stats(|p, b, t, _| {
                    (p, b, t) == (&key.project, &key.bucket, &key.table)
                });
            }
            None
        }
    }
}

/// The view of a table after a write (blocking, under its exclusive lock), recording its
/// figures; shown under the bucket name `bucket`.
pub(crate) fn view_after_write(
    state: &AppState,
    key: &TableKey,
    bucket: BucketName,
) -> ApiResult<TableView> {
    let record = record_stats(state, key, true)?;
    let mut view = TableView::new(bucket, record)?;
    view.from_branch = key.branch.is_some();
    Ok(view)
}

/// The view of a table whose recorded figures are unknown: reads them from the file under
/// the table's shared lock and records them. `key` names the file (the source of a link);
/// `shown` is the bucket name the client used.
async fn refreshed(state: &AppState, key: TableKey, shown: &BucketName) -> ApiResult<TableView> {
    let guard = state.engine.locks.table_shared(&key).await;
    let state = state.clone();
    let shown = shown.clone();
    blocking_locked(guard, move || {
        // Deleted, or read by another request, while this one waited for the lock.
        let record = state
            .catalog
            .read(|m| {
                m.bucket(&key.project, &key.bucket)
                    .and_then(|b| b.tables.get(&key.table))
                    .cloned()
            })
            .ok_or_else(|| table_not_found(&shown, &key.table))?;
        let record = match record.stats {
            Some(_) => record,
            None => record_stats(&state, &key, false)?,
        };
        TableView::new(shown, record)
    })
    .await
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
    branch: &BranchId,
    bucket: BucketName,
    name: TableName,
    columns: Vec<ColumnDef>,
    primary_key: Vec<ColumnName>,
) -> ApiResult<TableView> {
    validate_definition(&columns, &primary_key)?;
    if let Some(dev) = branch.dev() {
        let key = TableKey::in_branch(&project, dev, &bucket, &name);
        return super::branches::overlay::create(state, key, columns, primary_key).await;
    }
    let key = TableKey::new(&project, &bucket, &name);
    let guard = state.engine.locks.table_exclusive(&key).await;
    let state = state.clone();
    blocking_locked(guard, move || {
        state.catalog.read(|m| {
            let record = m.existing_bucket(&project, &bucket)?;
            require_writable(record)?;
            if record.tables.contains_key(&name) {
                return Err(table_exists(&bucket, &name));
            }
            Ok(())
        })?;
        state.engine.create_table(&key, &columns, &primary_key)?;
        let record = match record_created(&state, &key) {
            Ok(r) => r,
            Err(e) => {
                // Keep file and catalog in step: no file without its row.
                let _ = state.engine.drop_table(&key);
                return Err(e);
            }
        };
        tracing::info!(project = %project, bucket = %bucket, table = %key.table, "table created");
        TableView::new(bucket, record)
    })
    .await
}

/// Tables of a bucket (or of the source of a live link), with their columns and sizes, from
/// the catalog: no table file is opened or locked, except to read again the figures of a table
/// whose file changed behind the catalog's back (or that predates recorded figures).
#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket))]
pub async fn list(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
) -> ApiResult<Vec<TableView>> {
    let mut views = main_list(state, project, bucket).await?;
    if let Some(dev) = branch.dev() {
        views = super::branches::overlay::list(state, project, dev, bucket, views).await?;
    }
    Ok(views)
}

/// Main's tables of a bucket (through a live link), as `list` shows them.
async fn main_list(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
) -> ApiResult<Vec<TableView>> {
    let (source_project, source_bucket, records) = resolve_read(state, project, bucket, |p, b| {
        let records: Vec<TableRecord> = b.tables.values().cloned().collect();
        (p.clone(), b.name.clone(), records)
    })?;
    let mut views = Vec::with_capacity(records.len());
    for record in records {
        let view = match record.stats.clone() {
            Some(stats) => TableView {
                bucket: bucket.clone(),
                record,
                stats,
                from_branch: false,
            },
            None => {
                let key = TableKey::new(&source_project, &source_bucket, &record.name);
                match refreshed(state, key, bucket).await {
                    Ok(view) => view,
                    // Deleted while this request waited for its lock.
                    Err(e) if e.code() == ErrorCode::TableNotFound => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        views.push(view);
    }
    Ok(views)
}

/// Resolves a table for reading and returns its file key and catalog record: in a dev
/// branch, the branch's own file if it has one, else main's (ADR 0031).
pub(crate) fn resolve_table(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<(TableKey, TableRecord)> {
    if let Some(dev) = branch.dev() {
        if let Some(own) = super::branches::overlay::resolve(state, project, dev, bucket, table)? {
            return Ok(own);
        }
    }
    resolve_read(state, project, bucket, |p, b| {
        let record = b
            .tables
            .get(table)
            .cloned()
            .ok_or_else(|| table_not_found(bucket, table))?;
        Ok((TableKey::new(p, &b.name, table), record))
    })?
}

/// Resolves a table and takes its shared lock, re-checking after the wait: the table may
/// have been deleted (404) or a link re-pointed meanwhile (then the caller simply retries).
pub(crate) async fn resolve_locked(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<(LockGuard, TableKey, TableRecord)> {
    let (key, _) = resolve_table(state, project, branch, bucket, table)?;
    let guard = state.engine.locks.table_shared(&key).await;
    let (now, record) = resolve_table(state, project, branch, bucket, table)?;
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
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<(LockGuard, TableKey)> {
    if let Some(dev) = branch.dev() {
        return super::branches::overlay::writable(state, project, dev, bucket, table).await;
    }
    // Checked before locking too, so a name the catalog does not know never gets a lock entry.
    writable_table(state, project, bucket, table)?;
    let key = TableKey::new(project, bucket, table);
    let guard = state.engine.locks.table_exclusive(&key).await;
    writable_table(state, project, bucket, table)?;
    Ok((guard, key))
}

/// `writable_locked` for bulk work: checks, then a bulk thread (fairly), then the lock, in that
/// order (see `BulkPool::reserve`), so a queued write never holds the table's lock.
pub(crate) async fn writable_reserved(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<(Reserved, LockGuard, TableKey)> {
    require_writable_bucket(state, project, bucket)?;
    resolve_table(state, project, branch, bucket, table)?;
    let reserved = state.bulk.reserve(project).await;
    let (guard, key) = writable_locked(state, project, branch, bucket, table).await?;
    Ok((reserved, guard, key))
}

/// `resolve_locked` for bulk reads, in the same order as `writable_reserved`.
pub(crate) async fn resolve_reserved(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<(Reserved, LockGuard, TableKey)> {
    resolve_table(state, project, branch, bucket, table)?;
    let reserved = state.bulk.reserve(project).await;
    let (guard, key, _) = resolve_locked(state, project, branch, bucket, table).await?;
    Ok((reserved, guard, key))
}

/// Checks that the bucket exists and its tables may be changed.
pub(crate) fn require_writable_bucket(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
) -> ApiResult<()> {
    state
        .catalog
        .read(|m| require_writable(m.existing_bucket(project, bucket)?))
}

/// Checks that `table` exists in a bucket whose tables may be changed.
fn writable_table(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<()> {
    state.catalog.read(|m| {
        let record = m.existing_bucket(project, bucket)?;
        require_writable(record)?;
        if !record.tables.contains_key(table) {
            return Err(table_not_found(bucket, table));
        }
        Ok(())
    })
}

/// A table as its catalog record shows it (the file is read only when its figures are unknown).
#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table))]
pub async fn get(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<TableView> {
    let (key, record) = resolve_table(state, project, branch, bucket, table)?;
    if key.branch.is_some() {
        return super::branches::overlay::view(state, key, bucket.clone()).await;
    }
    match record.stats {
        Some(_) => TableView::new(bucket.clone(), record),
        None => refreshed(state, key, bucket).await,
    }
}

#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table))]
pub async fn delete(
    state: &AppState,
    project: ProjectId,
    branch: &BranchId,
    bucket: BucketName,
    table: TableName,
    auto: AutoSnapshot,
) -> ApiResult<()> {
    if let Some(dev) = branch.dev() {
        return super::branches::overlay::delete(state, project, dev, bucket, table, auto).await;
    }
    // A name the catalog does not know gets its 404 without a lock entry.
    writable_table(state, &project, &bucket, &table)?;
    let key = TableKey::new(&project, &bucket, &table);
    let guard = state.engine.locks.table_exclusive(&key).await;
    let state = state.clone();
    blocking_locked(guard, move || {
        state
            .catalog
            .read(|m| require_writable(m.existing_bucket(&project, &bucket)?))?;
        before_change(&state, &key, Trigger::DropTable, &auto)?;
        // Catalog first: once the row is gone nobody can reach the file; a crash before
        // the file is removed leaves an orphan that the start-up sweep deletes.
        state.catalog.delete_table(&project, &bucket, &table)?;
        state.engine.drop_table(&key)?;
        tracing::info!(project = %project, bucket = %bucket, table = %table, "table deleted");
        Ok(())
    })
    .await
}

#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table, limit = limit))]
pub async fn preview(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
    limit: u32,
    selection: RowSelection,
) -> ApiResult<Preview> {
    let (guard, key, _) = resolve_locked(state, project, branch, bucket, table).await?;
    let engine = state.engine.clone();
    let max_bytes = state.config.max_preview_bytes;
    // The rows are read into memory (bounded by `max_bytes`) and the lock released before
    // the client is sent anything: how fast it reads never holds up a writer.
    blocking_locked(guard, move || {
        engine.preview(&key, limit, max_bytes, &selection)
    })
    .await
}
