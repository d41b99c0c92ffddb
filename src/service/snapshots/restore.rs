//! Restoring a snapshot: over its own table (replaced in one transaction, after the
//! truncate trigger's snapshot), or into a table that does not exist (created from it).

use super::take::{before_change, Trigger};
use super::{snapshot_file_of, AutoSnapshot};
use crate::catalog::snapshots::SnapshotRecord;
use crate::catalog::tables::table_exists;
use crate::engine::TableKey;
use crate::error::ApiResult;
use crate::names::{BucketName, ProjectId, TableName};
use crate::service::require_writable;
use crate::service::tables::{record_after_write, record_created};
use crate::state::AppState;

/// Where a snapshot was restored and how many rows the table holds now.
pub struct Restored {
    pub bucket: BucketName,
    pub table: TableName,
    pub row_count: u64,
}

/// Restores `snapshot` (as `manage::get` found it) into `bucket.table` (defaults: the table it
/// was taken of).
pub async fn restore(
    state: &AppState,
    project: &ProjectId,
    snapshot: SnapshotRecord,
    bucket: Option<BucketName>,
    table: Option<TableName>,
    auto: AutoSnapshot,
) -> ApiResult<Restored> {
    let (origin_bucket, origin_table) = snapshot.names()?;
    let bucket = bucket.unwrap_or_else(|| origin_bucket.clone());
    let table = table.unwrap_or_else(|| origin_table.clone());
    let onto_origin = bucket == origin_bucket && table == origin_table;
    state
        .catalog
        .read(|m| m.existing_bucket(project, &bucket).map(|_| ()))?;
    let key = TableKey::new(project, &bucket, &table);
    // A thread first, then the lock (see `BulkPool::reserve`).
    let reserved = state.bulk.reserve(project).await;
    let guard = state.engine.locks.table_exclusive(&key).await;
    let st = state.clone();
    state
        .bulk
        .run(reserved, guard, move || {
            let state = st;
            let exists = state.catalog.read(|m| {
                let record = m.existing_bucket(&key.project, &key.bucket)?;
                require_writable(record)?;
                Ok::<_, crate::error::ApiError>(record.tables.contains_key(&key.table))
            })?;
            let file = snapshot_file_of(&state, &snapshot)?;
            let row_count = if exists {
                if !onto_origin {
                    return Err(table_exists(&key.bucket, &key.table));
                }
                before_change(&state, &key, Trigger::TruncateTable, &auto)?;
                let restored = state.engine.restore_over(&key, &file.view(&key));
                record_after_write(&state, &key);
                restored?
            } else {
                let rows = state.engine.create_from_snapshot(&key, &file.view(&key))?;
                if let Err(e) = record_created(&state, &key) {
                    let _ = state.engine.drop_table(&key);
                    return Err(e);
                }
                rows
            };
            tracing::info!(
                snapshot = %snapshot.id, bucket = %key.bucket, table = %key.table, rows = row_count,
                "snapshot restored"
            );
            Ok(Restored {
                bucket: key.bucket.clone(),
                table: key.table.clone(),
                row_count,
            })
        })
        .await
}
