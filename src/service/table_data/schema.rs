//! Schema changes of one table (columns and primary key) as a typed request the service runs
//! under the table's exclusive lock; the catalog's primary key is kept in step with the file.

use crate::catalog::tables::table_not_found;
use crate::catalog::TableRecord;
use crate::engine::ddl::ColumnDef;
use crate::engine::schema::AlterColumn;
use crate::engine::{TableEngine, TableKey};
use crate::error::ApiResult;
use crate::names::{BucketName, ColumnName, ProjectId, TableName};
use crate::service::tables::{writable_locked, TableView};
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
/// table afterwards.
#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table))]
pub async fn change_table(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
    change: SchemaChange,
) -> ApiResult<TableView> {
    let (guard, key) = writable_locked(state, project, bucket, table).await?;
    let st = state.clone();
    let (bucket, table) = (bucket.clone(), table.clone());
    state
        .bulk
        .run(guard, move || {
            let state = st;
            change.apply(&state.engine, &key)?;
            let info = state.engine.describe(&key)?;
            // The file is authoritative for the primary key; keep the catalog's copy in step.
            let record = state.catalog.read(|m| {
                m.bucket(&key.project, &bucket)
                    .and_then(|b| b.tables.get(&table))
                    .cloned()
            });
            let record = record.ok_or_else(|| table_not_found(&bucket, &table))?;
            let file_pk: Vec<&str> = info.primary_key.iter().map(String::as_str).collect();
            let catalog_pk: Vec<&str> = record.primary_key.iter().map(ColumnName::as_str).collect();
            let record = if file_pk != catalog_pk {
                let pk: Vec<ColumnName> = info
                    .primary_key
                    .iter()
                    .filter_map(|p| ColumnName::parse(p).ok())
                    .collect();
                state
                    .catalog
                    .set_primary_key(&key.project, &bucket, &table, pk.clone())?;
                TableRecord {
                    primary_key: pk,
                    ..record
                }
            } else {
                record
            };
            Ok(TableView {
                bucket,
                record,
                info,
            })
        })
        .await
}
