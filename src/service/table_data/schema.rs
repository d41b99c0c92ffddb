//! Schema changes of one table (columns and primary key) as a typed request the service runs
//! under the table's exclusive lock; the catalog's copy of the table's figures is kept in step.

use crate::engine::ddl::ColumnDef;
use crate::engine::schema::AlterColumn;
use crate::engine::{find_column, TableEngine, TableKey};
use crate::error::ApiResult;
use crate::names::{BranchId, BucketName, ProjectId, TableName};
use crate::service::snapshots::take::{before_change, Trigger};
use crate::service::snapshots::AutoSnapshot;
use crate::service::tables::{record_after_write, view_after_write, writable_reserved, TableView};
use crate::state::AppState;

/// One change to a table's definition. Column names are as the client wrote them: they are
/// looked up against the table's columns, never spliced into SQL.
pub enum SchemaChange {
    AddColumn(ColumnDef),
    DropColumn(String),
    AlterColumn { column: String, change: AlterColumn },
    AddPrimaryKey(Vec<String>),
    DropPrimaryKey,
}

impl SchemaChange {
    /// Applies the change to the table file (blocking: DuckDB).
    fn apply(&self, engine: &TableEngine, key: &TableKey) -> ApiResult<()> {
        match self {
            Self::AddColumn(column) => engine.add_column(key, column),
            Self::DropColumn(column) => engine.drop_column(key, column),
            Self::AlterColumn { column, change } => engine.alter_column(key, column, change),
            Self::AddPrimaryKey(columns) => engine.add_primary_key(key, columns),
            Self::DropPrimaryKey => engine.drop_primary_key(key),
        }
    }
}

/// Runs a schema change (on a bulk thread) under the table's exclusive lock and returns the
/// table afterwards, its figures (and the catalog's copy of the primary key) recorded.
#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table))]
pub async fn change_table(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
    change: SchemaChange,
    auto: AutoSnapshot,
) -> ApiResult<TableView> {
    let (reserved, guard, key) = writable_reserved(state, project, branch, bucket, table).await?;
    let st = state.clone();
    let bucket = bucket.clone();
    state
        .bulk
        .run(reserved, guard, move || {
            let state = st;
            if let SchemaChange::DropColumn(column) = &change {
                // Only a drop that will happen is worth a snapshot (an unknown column is 404).
                let info = state.engine.describe(&key)?;
                if find_column(&info.columns, column).is_some() {
                    before_change(&state, &key, Trigger::DropColumn, &auto)?;
                }
            }
            if let Err(e) = change.apply(&state.engine, &key) {
                record_after_write(&state, &key);
                return Err(e);
            }
            view_after_write(&state, &key, bucket)
        })
        .await
}
