//! Dev branches (ADR 0031): create, list, describe and delete them, pull a table back to main's
//! live view, and merge a branch's tables into main atomically per table, with conflicts.

pub mod overlay;

use serde_json::{json, Value};

use crate::catalog::branches::branch_not_found;
use crate::catalog::tables::table_not_found;
use crate::catalog::{BranchRecord, BranchTable, BranchTableKind};
use crate::engine::TableKey;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BranchId, BucketName, DevBranchId, ProjectId, TableName};
use crate::service::snapshots::take::{before_change, Trigger};
use crate::service::snapshots::AutoSnapshot;
use crate::service::tables::{record_after_write, record_created};
use crate::service::{blocking, blocking_locked};
use crate::state::AppState;

/// A branch with the figures its responses show.
pub struct BranchView {
    pub record: BranchRecord,
    pub project: ProjectId,
    /// Tables with a file of the branch's own (copied or created).
    pub table_count: usize,
    pub size_bytes: u64,
}

/// Creates a dev branch; it starts with no table of its own (reads see main).
pub async fn create(
    state: &AppState,
    project: &ProjectId,
    name: String,
    description: Option<String>,
    created_by: String,
) -> ApiResult<BranchView> {
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "branch name must be 1 to 255 characters, without control characters",
        ));
    }
    let id = DevBranchId::parse(&uuid::Uuid::now_v7().simple().to_string())?;
    let record = BranchRecord {
        id,
        name,
        description,
        created_at: crate::catalog::now(),
        created_by: Some(created_by),
        tables: Default::default(),
    };
    let (st, p) = (state.clone(), project.clone());
    let record = blocking(move || st.catalog.insert_branch(&p, record)).await?;
    tracing::info!(project = %project, branch = %record.id, name = %record.name, "branch created");
    Ok(view(state, project, record))
}

fn view(state: &AppState, project: &ProjectId, record: BranchRecord) -> BranchView {
    let table_count = record
        .tables
        .values()
        .filter(|t| t.kind != BranchTableKind::Deleted)
        .count();
    let size_bytes = super::projects::dir_size(&state.engine.branch_dir(project, &record.id));
    BranchView {
        record,
        project: project.clone(),
        table_count,
        size_bytes,
    }
}

/// The project's branches newest first, a page of them, and how many there are.
pub fn list(
    state: &AppState,
    project: &ProjectId,
    limit: usize,
    offset: usize,
) -> ApiResult<(Vec<BranchView>, usize)> {
    let mut all: Vec<BranchRecord> = state.catalog.read(|m| {
        m.existing_project(project)
            .map(|p| p.branches.values().cloned().collect())
    })?;
    all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let total = all.len();
    let page = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|r| view(state, project, r))
        .collect();
    Ok((page, total))
}

/// One branch, or 404 `branch_not_found` (also for `default`: it is not a dev branch).
pub fn get(state: &AppState, project: &ProjectId, branch: &BranchId) -> ApiResult<BranchView> {
    let Some(id) = branch.dev() else {
        return Err(ApiError::new(
            ErrorCode::BranchNotFound,
            "'default' is the production branch, not a dev branch",
        ));
    };
    let record = state.catalog.read(|m| {
        m.existing_project(project)?
            .branches
            .get(id)
            .cloned()
            .ok_or_else(|| branch_not_found(id.as_str()))
    })?;
    Ok(view(state, project, record))
}

/// Deletes a branch with its tables, its snapshots and the keys limited to it: catalog rows in
/// one transaction (under the project's exclusive lock, so no request is using its files),
/// then the files; a crash in between leaves files the start-up sweep moves aside (and, on
/// the S3 backend, snapshot objects the cleaner removes).
pub async fn delete(state: &AppState, project: &ProjectId, branch: &BranchId) -> ApiResult<()> {
    let view = get(state, project, branch)?;
    let guard = state.engine.locks.project_exclusive(project).await;
    let (st, p, id) = (state.clone(), project.clone(), view.record.id.clone());
    let deleted = blocking_locked(guard, move || {
        // Its workspaces read its tables: they go with it.
        let workspaces = st.catalog.workspaces(p.as_str(), Some(id.as_str()))?;
        let deleted = st.catalog.delete_branch(&p, &id)?;
        st.engine.drop_branch(&p, &id)?;
        for file in &deleted.snapshot_files {
            st.snapshot_files.remove(file);
        }
        for w in workspaces {
            st.workspaces.remove(&w.project, &w.id)?;
        }
        Ok(deleted)
    })
    .await?;
    state.keys.forget_project(project);
    tracing::info!(
        project = %project, branch = %view.record.id, keys = deleted.keys.len(),
        snapshots = deleted.snapshot_files.len(), "branch deleted"
    );
    Ok(())
}

/// What a pull did.
pub struct Pulled {
    pub was_local: bool,
    pub changed: bool,
}

/// Drops the branch's own state of a table so it reads main's live table again; 404 when
/// main has no such table.
pub async fn pull(
    state: &AppState,
    project: &ProjectId,
    branch: &DevBranchId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<Pulled> {
    let (guard, key, _) =
        overlay::lock_with_main(state, project, branch, bucket, table, false).await;
    let (st, p, b, bk, t) = (
        state.clone(),
        project.clone(),
        branch.clone(),
        bucket.clone(),
        table.clone(),
    );
    blocking_locked(guard, move || {
        let standing = overlay::standing(&st, &p, &b, &bk, &t, false)?;
        if standing.main_version.is_none() {
            return Err(table_not_found(&bk, &t));
        }
        let Some(own) = standing.own else {
            return Ok(Pulled {
                was_local: false,
                changed: false,
            });
        };
        st.catalog.set_branch_table(&p, &b, &bk, &t, None)?;
        st.engine.drop_table(&key)?;
        tracing::info!(branch = %b, bucket = %bk, table = %t, "table pulled from main");
        Ok(Pulled {
            was_local: own.kind != BranchTableKind::Deleted,
            changed: true,
        })
    })
    .await
}

/// A table a branch changed: its names, the branch's state of it, and main's version of it.
type Changed = ((BucketName, TableName), BranchTable, Option<u64>);

/// The tables a branch differs from main in.
fn changed_tables(
    state: &AppState,
    project: &ProjectId,
    branch: &DevBranchId,
) -> ApiResult<Vec<Changed>> {
    state.catalog.read(|m| {
        let p = m.existing_project(project)?;
        let b = p
            .branches
            .get(branch)
            .ok_or_else(|| branch_not_found(branch.as_str()))?;
        Ok(b.tables
            .iter()
            .map(|((bk, t), s)| {
                let main = p
                    .buckets
                    .get(bk)
                    .and_then(|r| r.tables.get(t))
                    .map(|r| r.version);
                ((bk.clone(), t.clone()), s.clone(), main)
            })
            .collect())
    })
}

/// Whether main changed since the branch took its table: main's version moved, main's table
/// went, or main now has a table the branch created.
fn conflicts(own: &BranchTable, main_version: Option<u64>) -> bool {
    match own.kind {
        BranchTableKind::Created => main_version.is_some(),
        BranchTableKind::Copied | BranchTableKind::Deleted => own.base_version != main_version,
    }
}

fn table_json(bucket: &BucketName, table: &TableName) -> Value {
    json!({"bucket_name": bucket, "table_name": table})
}

/// Applies the branch's tables (all it changed, or those named `bucket.table`) to main, each
/// atomically (one DuckDB transaction of main's file). 409 `merge_conflict` listing the
/// tables main changed since the branch took them, unless `force`; nothing is merged then.
/// Merged tables read main again in the branch.
pub async fn merge(
    state: &AppState,
    project: &ProjectId,
    branch: &DevBranchId,
    only: Option<Vec<(BucketName, TableName)>>,
    force: bool,
    auto: AutoSnapshot,
) -> ApiResult<Value> {
    let mut tables = changed_tables(state, project, branch)?;
    if let Some(only) = &only {
        for named in only {
            if !tables.iter().any(|(n, _, _)| n == named) {
                return Err(ApiError::bad_request(format!(
                    "table '{}' in bucket '{}' has no changes in this branch",
                    named.1, named.0
                )));
            }
        }
        tables.retain(|(n, _, _)| only.contains(n));
    }
    let conflicting: Vec<Value> = tables
        .iter()
        .filter(|(_, own, main)| conflicts(own, *main))
        .map(|((b, t), _, _)| table_json(b, t))
        .collect();
    if !conflicting.is_empty() && !force {
        return Err(ApiError::new(
            ErrorCode::MergeConflict,
            format!(
                "{} table(s) changed in main since the branch took them; nothing was merged (pass force=true to merge anyway)",
                conflicting.len()
            ),
        )
        .with_details(json!({ "conflicts": conflicting })));
    }
    let mut merged = Vec::new();
    for ((bucket, table), _, _) in tables {
        let outcome = merge_one(state, project, branch, &bucket, &table, force, &auto).await?;
        merged.push(outcome);
    }
    tracing::info!(project = %project, branch = %branch, tables = merged.len(), "branch merged");
    Ok(json!({ "merged": merged, "count": merged.len() }))
}

/// Merges one table under main's and the copy's exclusive locks, re-checking the conflict.
async fn merge_one(
    state: &AppState,
    project: &ProjectId,
    branch: &DevBranchId,
    bucket: &BucketName,
    table: &TableName,
    force: bool,
    auto: &AutoSnapshot,
) -> ApiResult<Value> {
    let (guard, key, main) =
        overlay::lock_with_main(state, project, branch, bucket, table, true).await;
    let (st, p, b, bk, t, auto) = (
        state.clone(),
        project.clone(),
        branch.clone(),
        bucket.clone(),
        table.clone(),
        auto.clone(),
    );
    blocking_locked(guard, move || {
        let standing = overlay::standing(&st, &p, &b, &bk, &t, true)?;
        let Some(own) = standing.own else {
            return Err(ApiError::new(
                ErrorCode::ConcurrentChange,
                format!("table '{t}' in bucket '{bk}' was merged or pulled meanwhile"),
            ));
        };
        if conflicts(&own, standing.main_version) && !force {
            return Err(ApiError::new(
                ErrorCode::MergeConflict,
                format!("table '{t}' in bucket '{bk}' changed in main meanwhile; not merged"),
            )
            .with_details(json!({ "conflicts": [table_json(&bk, &t)] })));
        }
        let (action, rows) = match (own.kind, standing.main_version.is_some()) {
            (BranchTableKind::Deleted, false) => ("deleted", 0),
            (BranchTableKind::Deleted, true) => {
                before_change(&st, &main, Trigger::DropTable, &auto)?;
                st.catalog.delete_table(&p, &bk, &t)?;
                st.engine.drop_table(&main)?;
                ("deleted", 0)
            }
            (_, true) => {
                let rows = st.engine.merge_over(&key, &main)?;
                record_after_write(&st, &main);
                ("updated", rows)
            }
            (_, false) => {
                let rows = st.engine.create_from_branch(&key, &main)?;
                if let Err(e) = record_created(&st, &main) {
                    let _ = st.engine.drop_table(&main);
                    return Err(e);
                }
                ("created", rows)
            }
        };
        // Main has the branch's table now: the branch reads it from there again.
        st.catalog.set_branch_table(&p, &b, &bk, &t, None)?;
        st.engine.drop_table(&key)?;
        Ok(json!({
            "bucket_name": bk, "table_name": t, "action": action, "row_count": rows,
        }))
    })
    .await
}

/// What the branch changed, table by table: the kind of change, row counts and columns on
/// both sides, schema differences, and whether merging it would conflict.
pub async fn diff(state: &AppState, project: &ProjectId, branch: &DevBranchId) -> ApiResult<Value> {
    let tables = changed_tables(state, project, branch)?;
    let mut out = Vec::with_capacity(tables.len());
    for ((bucket, table), own, main_version) in tables {
        let main_side = match main_version {
            Some(_) => {
                let v = crate::service::tables::get(
                    state,
                    project,
                    &BranchId::Default,
                    &bucket,
                    &table,
                )
                .await?;
                Some(side(v.stats.row_count, &v.stats.columns))
            }
            None => None,
        };
        let branch_side = match own.kind {
            BranchTableKind::Deleted => None,
            _ => {
                let key = TableKey::in_branch(project, branch, &bucket, &table);
                let v = overlay::view(state, key, bucket.clone()).await?;
                Some(side(v.stats.row_count, &v.stats.columns))
            }
        };
        out.push(json!({
            "bucket_name": bucket,
            "table_name": table,
            "change": own.kind.as_str(),
            "changed_at": own.changed_at.to_rfc3339(),
            "conflict": conflicts(&own, main_version),
            "main": main_side.as_ref().map(|(v, _)| v.clone()),
            "branch": branch_side.as_ref().map(|(v, _)| v.clone()),
            "schema_changes": schema_changes(
                main_side.as_ref().map(|(_, c)| c.as_slice()),
                branch_side.as_ref().map(|(_, c)| c.as_slice()),
            ),
        }));
    }
    Ok(json!({ "tables": out, "count": out.len() }))
}

type Columns = Vec<(String, String)>;

fn side(rows: u64, columns: &[crate::catalog::StoredColumn]) -> (Value, Columns) {
    let cols: Columns = columns
        .iter()
        .map(|c| (c.name.clone(), c.data_type.clone()))
        .collect();
    let json_cols: Vec<Value> = cols
        .iter()
        .map(|(n, t)| json!({"name": n, "type": t}))
        .collect();
    (json!({"row_count": rows, "columns": json_cols}), cols)
}

/// Columns added, removed and retyped from main's side to the branch's.
fn schema_changes(main: Option<&[(String, String)]>, branch: Option<&[(String, String)]>) -> Value {
    let (main, branch) = (main.unwrap_or_default(), branch.unwrap_or_default());
    let find = |cols: &[(String, String)], name: &str| {
        cols.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, t)| t.clone())
    };
    let added: Vec<&String> = branch
        .iter()
        .filter(|(n, _)| find(main, n).is_none())
        .map(|(n, _)| n)
        .collect();
    let removed: Vec<&String> = main
        .iter()
        .filter(|(n, _)| find(branch, n).is_none())
        .map(|(n, _)| n)
        .collect();
    let retyped: Vec<Value> = branch
        .iter()
        .filter_map(|(n, t)| {
            find(main, n)
                .filter(|m| m != t)
                .map(|m| json!({"name": n, "main_type": m, "branch_type": t}))
        })
        .collect();
    json!({"added": added, "removed": removed, "changed": retyped})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(kind: BranchTableKind, base: Option<u64>) -> BranchTable {
        BranchTable {
            kind,
            base_version: base,
            changed_at: crate::catalog::now(),
        }
    }

    #[test]
    fn a_table_conflicts_when_main_moved_went_or_appeared() {
        use BranchTableKind::*;
        assert!(!conflicts(&own(Copied, Some(3)), Some(3)));
        assert!(conflicts(&own(Copied, Some(3)), Some(4)));
        assert!(conflicts(&own(Copied, Some(3)), None));
        assert!(!conflicts(&own(Deleted, Some(0)), Some(0)));
        assert!(conflicts(&own(Deleted, Some(0)), Some(1)));
        assert!(!conflicts(&own(Created, None), None));
        assert!(conflicts(&own(Created, None), Some(0)));
    }

    #[test]
    fn schema_changes_name_added_removed_and_retyped_columns() {
        let main = vec![
            ("id".into(), "INTEGER".into()),
            ("x".into(), "VARCHAR".into()),
        ];
        let branch = vec![("id".into(), "BIGINT".into()), ("y".into(), "DATE".into())];
        let d = schema_changes(Some(&main), Some(&branch));
        assert_eq!(d["added"], json!(["y"]));
        assert_eq!(d["removed"], json!(["x"]));
        assert_eq!(d["changed"][0]["branch_type"], "BIGINT");
    }
}
