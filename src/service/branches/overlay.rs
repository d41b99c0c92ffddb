//! A dev branch's view of tables (ADR 0031): reads fall through to main's file unless the
//! branch has its own; the first write copies main's file into the branch (copy-on-write).

use crate::catalog::branches::branch_not_found;
use crate::catalog::tables::{table_exists, table_not_found};
use crate::catalog::{BranchTable, BranchTableKind, TableRecord};
use crate::engine::ddl::ColumnDef;
use crate::engine::{LockGuard, TableKey};
use crate::error::{ApiResult, ErrorCode};
use crate::names::{BucketName, ColumnName, DevBranchId, ProjectId, TableName};
use crate::service::snapshots::take::{before_change, Trigger};
use crate::service::snapshots::AutoSnapshot;
use crate::service::table_stats::{branch_record, TableView};
use crate::service::{blocking_locked, require_writable};
use crate::state::AppState;

/// What the branch knows of one table, and main's version of it (`None`: main has none).
#[derive(Debug, Clone)]
pub(crate) struct Standing {
    pub own: Option<BranchTable>,
    pub main_version: Option<u64>,
}

/// The branch's record of `bucket.table` and main's table (404 for a missing branch or
/// bucket; with `writable`, 400 for a bucket whose tables may not change).
pub(crate) fn standing(
    state: &AppState,
    project: &ProjectId,
    branch: &DevBranchId,
    bucket: &BucketName,
    table: &TableName,
    writable: bool,
) -> ApiResult<Standing> {
    state.catalog.read(|m| {
        let p = m.existing_project(project)?;
        let b = p
            .branches
            .get(branch)
            .ok_or_else(|| branch_not_found(branch.as_str()))?;
        let record = m.existing_bucket(project, bucket)?;
        if writable {
            require_writable(record)?;
        }
        Ok(Standing {
            own: b.tables.get(&(bucket.clone(), table.clone())).cloned(),
            main_version: record.tables.get(table).map(|t| t.version),
        })
    })
}

/// Locks the branch's own key of `bucket.table` exclusively together with main's key of it
/// (shared; exclusive with `main_exclusive`) in one acquisition, so a waiting bucket writer
/// cannot wedge between the two. Returns the guard, the branch's key and main's.
pub(crate) async fn lock_with_main(
    state: &AppState,
    project: &ProjectId,
    branch: &DevBranchId,
    bucket: &BucketName,
    table: &TableName,
    main_exclusive: bool,
) -> (LockGuard, TableKey, TableKey) {
    let key = TableKey::in_branch(project, branch, bucket, table);
    let main = key.on_main();
    let guard = state
        .engine
        .locks
        .table_pair((&main, main_exclusive), (&key, true))
        .await;
    (guard, key, main)
}

/// The branch's own file of a table for reading, if it has one; 404 when the branch deleted
/// it; `None` when reads fall through to main.
pub(crate) fn resolve(
    state: &AppState,
    project: &ProjectId,
    branch: &DevBranchId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<Option<(TableKey, TableRecord)>> {
    let standing = standing(state, project, branch, bucket, table, false)?;
    match standing.own {
        None => Ok(None),
        Some(t) if t.kind == BranchTableKind::Deleted => Err(table_not_found(bucket, table)),
        Some(t) => Ok(Some((
            TableKey::in_branch(project, branch, bucket, table),
            TableRecord {
                name: table.clone(),
                primary_key: Vec::new(),
                created_at: t.changed_at,
                stats: None,
                version: 0,
            },
        ))),
    }
}

/// Takes the branch's own file of a table for writing, copying main's first if the branch
/// has none yet (under main's shared lock and the copy's exclusive one): returns the copy's
/// exclusive lock and key. Main's table is never written.
pub(crate) async fn writable(
    state: &AppState,
    project: &ProjectId,
    branch: &DevBranchId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<(LockGuard, TableKey)> {
    let key = TableKey::in_branch(project, branch, bucket, table);
    // At most twice round: a copy, then its use (or a lost race, then the winner's copy).
    for _ in 0..3 {
        let standing = standing(state, project, branch, bucket, table, true)?;
        match standing.own.as_ref().map(|t| t.kind) {
            Some(BranchTableKind::Deleted) => return Err(table_not_found(bucket, table)),
            Some(kind) => {
                let guard = state.engine.locks.table_exclusive(&key).await;
                let now = self::standing(state, project, branch, bucket, table, true)?;
                if now.own.map(|t| t.kind) == Some(kind) {
                    return Ok((guard, key));
                }
            }
            None => {
                if standing.main_version.is_none() {
                    return Err(table_not_found(bucket, table));
                }
                let (guard, copy, main) =
                    lock_with_main(state, project, branch, bucket, table, false).await;
                let now = self::standing(state, project, branch, bucket, table, true)?;
                let (None, Some(version)) = (now.own, now.main_version) else {
                    continue;
                };
                let (st, from, to) = (state.clone(), main, copy);
                blocking_locked(guard, move || copy_on_write(&st, &from, &to, version)).await?;
            }
        }
    }
    Err(crate::error::ApiError::new(
        ErrorCode::ConcurrentChange,
        format!("Table '{table}' changed in the branch while the request waited; retry"),
    ))
}

/// Copies main's table into the branch and records the copy with main's version (blocking;
/// caller holds main's table shared and the copy exclusively).
fn copy_on_write(state: &AppState, from: &TableKey, to: &TableKey, version: u64) -> ApiResult<()> {
    let started = std::time::Instant::now();
    let kind = state.engine.copy_table(from, to)?;
    let branch = to.branch.as_ref().expect("a branch key");
    let recorded = state.catalog.set_branch_table(
        &to.project,
        branch,
        &to.bucket,
        &to.table,
        Some(BranchTable {
            kind: BranchTableKind::Copied,
            base_version: Some(version),
            changed_at: crate::catalog::now(),
        }),
    );
    if let Err(e) = recorded {
        let _ = state.engine.drop_table(to);
        return Err(e);
    }
    tracing::info!(
        branch = %branch, bucket = %to.bucket, table = %to.table, ?kind,
        ms = started.elapsed().as_millis() as u64,
        "table copied into the branch on its first write"
    );
    Ok(())
}

/// Records a table file the branch just created (blocking, under its exclusive lock): a table
/// of the branch's own, or — where the branch had deleted main's — its replacement.
pub(crate) fn record_created(
    state: &AppState,
    key: &TableKey,
    branch: &DevBranchId,
) -> ApiResult<TableRecord> {
    let record = branch_record(state, key)?;
    let before = standing(state, &key.project, branch, &key.bucket, &key.table, true)?;
    let (kind, base_version) = match before.own {
        Some(t) if t.kind == BranchTableKind::Deleted => (BranchTableKind::Copied, t.base_version),
        _ => (BranchTableKind::Created, None),
    };
    state.catalog.set_branch_table(
        &key.project,
        branch,
        &key.bucket,
        &key.table,
        Some(BranchTable {
            kind,
            base_version,
            changed_at: crate::catalog::now(),
        }),
    )?;
    Ok(record)
}

/// 409 unless the name is free in the branch: neither its own table nor main's (unless the
/// branch deleted main's). Blocking-safe (reads the model only).
pub(crate) fn require_absent(
    state: &AppState,
    key: &TableKey,
    branch: &DevBranchId,
) -> ApiResult<()> {
    let standing = standing(state, &key.project, branch, &key.bucket, &key.table, true)?;
    let taken = match standing.own.map(|t| t.kind) {
        Some(BranchTableKind::Deleted) => false,
        Some(_) => true,
        None => standing.main_version.is_some(),
    };
    if taken {
        return Err(table_exists(&key.bucket, &key.table));
    }
    Ok(())
}

/// Creates a table in the branch only.
pub(crate) async fn create(
    state: &AppState,
    key: TableKey,
    columns: Vec<ColumnDef>,
    primary_key: Vec<ColumnName>,
) -> ApiResult<TableView> {
    let branch = key.branch.clone().expect("a branch key");
    require_absent(state, &key, &branch)?;
    let guard = state.engine.locks.table_exclusive(&key).await;
    let state = state.clone();
    blocking_locked(guard, move || {
        require_absent(&state, &key, &branch)?;
        state.engine.create_table(&key, &columns, &primary_key)?;
        let record = match record_created(&state, &key, &branch) {
            Ok(r) => r,
            Err(e) => {
                let _ = state.engine.drop_table(&key);
                return Err(e);
            }
        };
        tracing::info!(branch = %branch, bucket = %key.bucket, table = %key.table, "table created in a branch");
        branch_view(key.bucket.clone(), record)
    })
    .await
}

fn branch_view(bucket: BucketName, record: TableRecord) -> ApiResult<TableView> {
    let mut view = TableView::new(bucket, record)?;
    view.from_branch = true;
    Ok(view)
}

/// The branch's own table as a list shows it, read from its file under its shared lock.
pub(crate) async fn view(
    state: &AppState,
    key: TableKey,
    shown: BucketName,
) -> ApiResult<TableView> {
    let guard = state.engine.locks.table_shared(&key).await;
    let state = state.clone();
    blocking_locked(guard, move || {
        if !state.engine.table_path(&key).exists() {
            return Err(table_not_found(&shown, &key.table));
        }
        branch_view(shown, branch_record(&state, &key)?)
    })
    .await
}

/// A bucket's tables as the branch sees them: main's (`views`) without those the branch
/// copied or deleted, plus the branch's own, by name.
pub(crate) async fn list(
    state: &AppState,
    project: &ProjectId,
    branch: &DevBranchId,
    bucket: &BucketName,
    views: Vec<TableView>,
) -> ApiResult<Vec<TableView>> {
    let own: Vec<(TableName, BranchTable)> = state.catalog.read(|m| {
        let p = m.existing_project(project)?;
        let b = p
            .branches
            .get(branch)
            .ok_or_else(|| branch_not_found(branch.as_str()))?;
        Ok::<_, crate::error::ApiError>(
            b.tables
                .iter()
                .filter(|((bk, _), _)| bk == bucket)
                .map(|((_, t), s)| (t.clone(), s.clone()))
                .collect(),
        )
    })?;
    let mut out: Vec<TableView> = views
        .into_iter()
        .filter(|v| !own.iter().any(|(t, _)| t == &v.record.name))
        .collect();
    for (table, standing) in own {
        if standing.kind == BranchTableKind::Deleted {
            continue;
        }
        let key = TableKey::in_branch(project, branch, bucket, &table);
        match view(state, key, bucket.clone()).await {
            Ok(v) => out.push(v),
            Err(e) if e.code() == ErrorCode::TableNotFound => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| a.record.name.cmp(&b.record.name));
    Ok(out)
}

/// Deletes a table in the branch: its own file goes (after the snapshot its settings
/// promise); main's table is only hidden in the branch.
pub(crate) async fn delete(
    state: &AppState,
    project: ProjectId,
    branch: &DevBranchId,
    bucket: BucketName,
    table: TableName,
    auto: AutoSnapshot,
) -> ApiResult<()> {
    // Main's table shared: its version is the one the hiding records.
    let (guard, key, _) = lock_with_main(state, &project, branch, &bucket, &table, false).await;
    let (state, branch) = (state.clone(), branch.clone());
    blocking_locked(guard, move || {
        let standing = standing(&state, &project, &branch, &bucket, &table, true)?;
        let next = match standing.own {
            Some(t) if t.kind == BranchTableKind::Deleted => {
                return Err(table_not_found(&bucket, &table))
            }
            Some(t) => {
                before_change(&state, &key, Trigger::DropTable, &auto)?;
                // A copy becomes a hidden main table; a table of the branch's own is forgotten.
                (t.kind == BranchTableKind::Copied).then(|| BranchTable {
                    kind: BranchTableKind::Deleted,
                    base_version: t.base_version,
                    changed_at: crate::catalog::now(),
                })
            }
            None => {
                let Some(version) = standing.main_version else {
                    return Err(table_not_found(&bucket, &table));
                };
                Some(BranchTable {
                    kind: BranchTableKind::Deleted,
                    base_version: Some(version),
                    changed_at: crate::catalog::now(),
                })
            }
        };
        state
            .catalog
            .set_branch_table(&project, &branch, &bucket, &table, next)?;
        state.engine.drop_table(&key)?;
        tracing::info!(branch = %branch, bucket = %bucket, table = %table, "table deleted in a branch");
        Ok(())
    })
    .await
}
