//! Restoring a snapshot: over its own table (replaced in one transaction, after the
//! truncate trigger's snapshot), or into a table that does not exist (created from it). In a
//! dev branch the restore writes the branch's own file and never main's (ADR 0031).

use super::take::{before_change, Trigger};
use super::{snapshot_file_of, AutoSnapshot};
use crate::catalog::snapshots::SnapshotRecord;
use crate::catalog::tables::table_exists;
use crate::engine::{LockGuard, TableKey};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BranchId, BucketName, DevBranchId, ProjectId, TableName};
use crate::service::branches::overlay;
use crate::service::bulk::Reserved;
use crate::service::require_writable;
use crate::service::tables::{
    record_after_write, record_created, require_writable_bucket, resolve_table, writable_reserved,
};
use crate::state::AppState;

/// Where a snapshot was restored and how many rows the table holds now.
pub struct Restored {
    pub bucket: BucketName,
    pub table: TableName,
    pub row_count: u64,
}

/// Restores `snapshot` (as `manage::get` found it in `branch`) into `bucket.table` of that
/// branch (defaults: the table it was taken of).
pub async fn restore(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
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
    if let Some(dev) = branch.dev() {
        let target = Target {
            bucket,
            table,
            onto_origin,
        };
        return in_branch(state, project, dev, snapshot, target, auto).await;
    }
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
                Ok::<_, ApiError>(record.tables.contains_key(&key.table))
            })?;
            if exists && !onto_origin {
                return Err(table_exists(&key.bucket, &key.table));
            }
            apply(&state, &key, &snapshot, exists, &auto)
        })
        .await
}

/// The table a restore writes, as the client named it.
struct Target {
    bucket: BucketName,
    table: TableName,
    onto_origin: bool,
}

/// A restore in dev branch `dev`: over a table the branch sees (its own file, or main's copied
/// into the branch first, as every write there), or into a name free in the branch (a table of
/// the branch's own, or one main has but the branch deleted). Main is never written.
async fn in_branch(
    state: &AppState,
    project: &ProjectId,
    dev: &DevBranchId,
    snapshot: SnapshotRecord,
    target: Target,
    auto: AutoSnapshot,
) -> ApiResult<Restored> {
    let Target {
        bucket,
        table,
        onto_origin,
    } = target;
    let branch = BranchId::Dev(dev.clone());
    require_writable_bucket(state, project, &bucket)?;
    let seen = match resolve_table(state, project, &branch, &bucket, &table) {
        Ok(_) => true,
        Err(e) if e.code() == ErrorCode::TableNotFound => false,
        Err(e) => return Err(e),
    };
    if seen && !onto_origin {
        return Err(table_exists(&bucket, &table));
    }
    let (reserved, guard, key): (Reserved, LockGuard, TableKey) = if seen {
        // Copy-on-write first; the restore then replaces the copy's rows in one transaction.
        writable_reserved(state, project, &branch, &bucket, &table).await?
    } else {
        let key = TableKey::in_branch(project, dev, &bucket, &table);
        let reserved = state.bulk.reserve(project).await;
        let guard = state.engine.locks.table_exclusive(&key).await;
        (reserved, guard, key)
    };
    let (st, dev) = (state.clone(), dev.clone());
    state
        .bulk
        .run(reserved, guard, move || {
            if !seen {
                // The name must still be free in the branch now that its lock is held.
                overlay::require_absent(&st, &key, &dev)?;
            }
            apply(&st, &key, &snapshot, seen, &auto)
        })
        .await
}

/// Writes the snapshot into the table file `key` (blocking, under its exclusive lock): over
/// the existing table (`exists`, after the truncate trigger's snapshot of it) or as a new one.
fn apply(
    state: &AppState,
    key: &TableKey,
    snapshot: &SnapshotRecord,
    exists: bool,
    auto: &AutoSnapshot,
) -> ApiResult<Restored> {
    let file = snapshot_file_of(state, snapshot)?;
    let row_count = if exists {
        before_change(state, key, Trigger::TruncateTable, auto)?;
        let restored = state.engine.restore_over(key, &file.view(key));
        record_after_write(state, key);
        restored?
    } else {
        let rows = state.engine.create_from_snapshot(key, &file.view(key))?;
        if let Err(e) = record_created(state, key) {
            let _ = state.engine.drop_table(key);
            return Err(e);
        }
        rows
    };
    tracing::info!(
        snapshot = %snapshot.id, branch = ?key.branch, bucket = %key.bucket, table = %key.table,
        rows = row_count, "snapshot restored"
    );
    Ok(Restored {
        bucket: key.bucket.clone(),
        table: key.table.clone(),
        row_count,
    })
}
