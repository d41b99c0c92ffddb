//! What a table list shows about a table (`TableView`): its figures read from the file and
//! recorded in the catalog with every write to a main table; a branch's own file is read.

use std::sync::Arc;

use crate::catalog::{StoredColumn, TableRecord, TableStats};
use crate::engine::TableKey;
use crate::error::{ApiError, ApiResult};
use crate::names::{BucketName, ColumnName};
use crate::state::AppState;

/// A table as the API shows it: its catalog record and the figures recorded with it.
pub struct TableView {
    pub bucket: BucketName,
    pub record: TableRecord,
    pub stats: TableStats,
    /// Read from a dev branch's own file rather than main's (lists show `source`).
    pub from_branch: bool,
}

impl TableView {
    /// The view of a record whose figures are known, shown under the bucket name `bucket`.
    pub(crate) fn new(bucket: BucketName, record: TableRecord) -> ApiResult<Self> {
        let stats = record.stats.clone().ok_or_else(|| {
            ApiError::internal(format!("table {} has no recorded figures", record.name))
        })?;
        Ok(Self {
            bucket,
            record,
            stats,
            from_branch: false,
        })
    }
}

/// Reads what a list shows from the table file (blocking; caller holds a lock on the table;
/// `changed` after a write of ours). A pending WAL is folded into the file first, so the
/// recorded stamp still matches the file after this process ends.
pub(crate) fn read_stats(
    state: &AppState,
    key: &TableKey,
    changed: bool,
) -> ApiResult<(Vec<ColumnName>, TableStats)> {
    state.engine.checkpoint(key);
    let info = state.engine.describe(key)?;
    let columns = info
        .columns
        .iter()
        .map(|c| StoredColumn {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            nullable: c.nullable,
            ordinal_position: c.ordinal_position,
            default: c.default.clone(),
        })
        .collect();
    let primary_key = info
        .primary_key
        .iter()
        .filter_map(|c| ColumnName::parse(c).ok())
        .collect();
    // A table read again without a write of ours changed when its file last did, as far as
    // anyone can tell now.
    let updated_at = if changed {
        crate::catalog::now()
    } else {
        state
            .engine
            .modified_at(key)
            .unwrap_or_else(crate::catalog::now)
    };
    Ok((
        primary_key,
        TableStats {
            columns: Arc::new(columns),
            row_count: info.row_count,
            size_bytes: info.size_bytes,
            updated_at,
            file_stamp: state.engine.file_stamp(key),
        },
    ))
}

/// Reads a table's figures from its file and records them in the catalog (blocking; caller
/// holds the table's exclusive lock after a write, at least its shared lock otherwise).
pub(crate) fn record_stats(
    state: &AppState,
    key: &TableKey,
    changed: bool,
) -> ApiResult<TableRecord> {
    let (primary_key, stats) = read_stats(state, key, changed)?;
    if key.branch.is_some() {
        // A branch's own files are not in `tables`: their figures are read when shown.
        return Ok(TableRecord {
            name: key.table.clone(),
            primary_key,
            created_at: stats.updated_at,
            stats: Some(stats),
            version: 0,
        });
    }
    state.catalog.set_table_stats(
        &key.project,
        &key.bucket,
        &key.table,
        primary_key,
        stats,
        changed,
    )
}

/// The figures of a branch's own table file, read under its shared lock (blocking).
pub(crate) fn branch_record(state: &AppState, key: &TableKey) -> ApiResult<TableRecord> {
    record_stats(state, key, false)
}
