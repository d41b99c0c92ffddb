//! Changing a table's schema (columns, primary key) and deleting rows by filter.
//! Each change is one transaction on the table file: it applies fully or not at all.

use serde_json::{json, Value};

use super::ddl::{check_default, create_like_sql, swap_in_sql, table_in, ColumnDef};
use super::filter::Filter;
use super::transaction::in_transaction;
use super::{find_column, first_line};
use super::{quote_ident, ColumnInfo, TableEngine, TableInfo, TableKey};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::types::{ColumnType, DefaultValue};

/// Changes to one column; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct AlterColumn {
    pub new_name: Option<crate::names::ColumnName>,
    pub new_type: Option<ColumnType>,
    pub set_not_null: Option<bool>,
    /// `Some(None)` drops the default.
    pub set_default: Option<Option<DefaultValue>>,
}

/// Most offending values or keys listed in an error.
const MAX_LISTED: usize = 10;

impl TableEngine {
    /// Adds a column (409 if the name is taken). Caller holds the exclusive lock.
    pub fn add_column(&self, key: &TableKey, col: &ColumnDef) -> ApiResult<()> {
        let info = self.describe(key)?;
        if find_column(&info.columns, col.name.as_str()).is_some() {
            return Err(column_exists(key, col.name.as_str()));
        }
        if !col.nullable && col.default.is_none() && info.row_count > 0 {
            return Err(ApiError::new(
                ErrorCode::OperationNotAllowed,
                format!(
                    "column {:?} is NOT NULL without a default, but the table has {} rows that would have no value; give it a default",
                    col.name.as_str(),
                    info.row_count
                ),
            ));
        }
        let sql = col.to_sql();
        self.change(key, |conn, target| {
            if let Some(d) = &col.default {
                check_default(conn, d, &col.data_type.to_string(), col.name.as_str())?;
            }
            conn.execute_batch(&format!("ALTER TABLE {target} ADD COLUMN {sql}"))
                .map_err(|e| refused("adding the column", e))
        })
    }

    /// The table's description and its column `name` (404 when there is none).
    fn describe_column(&self, key: &TableKey, name: &str) -> ApiResult<(TableInfo, ColumnInfo)> {
        let info = self.describe(key)?;
        let col = find_column(&info.columns, name)
            .ok_or_else(|| column_not_found(key, name))?
            .clone();
        Ok((info, col))
    }

    /// Drops a column; not a primary-key column, nor the last one.
    pub fn drop_column(&self, key: &TableKey, name: &str) -> ApiResult<()> {
        let (info, col) = self.describe_column(key, name)?;
        if info.primary_key.iter().any(|p| p == &col.name) {
            return Err(ApiError::new(
                ErrorCode::ColumnInPrimaryKey,
                format!(
                    "column {:?} is part of the primary key {:?}; drop the primary key first",
                    col.name, info.primary_key
                ),
            )
            .with_details(
                json!({ "column": col.name, "primary_key": info.primary_key.as_ref() }),
            ));
        }
        if info.columns.len() == 1 {
            return Err(ApiError::new(
                ErrorCode::CannotDropLastColumn,
                format!(
                    "column {:?} is the table's only column; delete the table instead",
                    col.name
                ),
            ));
        }
        let column = quote_ident(&col.name);
        self.change(key, |conn, target| {
            conn.execute_batch(&format!("ALTER TABLE {target} DROP COLUMN {column}"))
                .map_err(|e| refused("dropping the column", e))
        })
    }

    /// Renames a column, changes its type, nullability or default, all in one transaction.
    pub fn alter_column(&self, key: &TableKey, name: &str, change: &AlterColumn) -> ApiResult<()> {
        let (info, col) = self.describe_column(key, name)?;
        if let Some(new) = &change.new_name {
            let taken = find_column(&info.columns, new.as_str())
                .is_some_and(|c| !c.name.eq_ignore_ascii_case(&col.name));
            if taken {
                return Err(column_exists(key, new.as_str()));
            }
        }
        let in_pk = info.primary_key.iter().any(|p| p == &col.name);
        if in_pk && change.set_not_null == Some(false) {
            return Err(ApiError::new(
                ErrorCode::ColumnInPrimaryKey,
                format!(
                    "column {:?} is part of the primary key and must stay NOT NULL",
                    col.name
                ),
            ));
        }
        let current = quote_ident(&col.name);
        self.change(key, |conn, target| {
            if let Some(ty) = &change.new_type {
                check_column_converts(conn, target, &col.name, ty)?;
                if in_pk {
                    // DuckDB cannot retype an indexed column in place: rebuild the table.
                    rebuild(conn, target, &info.columns, &info.primary_key, |c| {
                        (c.name == col.name).then(|| ty.to_string())
                    })?;
                } else {
                    conn.execute_batch(&format!(
                        "ALTER TABLE {target} ALTER COLUMN {current} SET DATA TYPE {ty}"
                    ))
                    .map_err(|e| refused("changing the column type", e))?;
                }
            }
            match &change.set_default {
                Some(Some(d)) => {
                    let ty = change
                        .new_type
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| col.data_type.clone());
                    check_default(conn, d, &ty, &col.name)?;
                    conn.execute_batch(&format!(
                        "ALTER TABLE {target} ALTER COLUMN {current} SET DEFAULT {}",
                        d.to_sql()
                    ))
                    .map_err(|e| refused("setting the default", e))?;
                }
                Some(None) => conn
                    .execute_batch(&format!(
                        "ALTER TABLE {target} ALTER COLUMN {current} DROP DEFAULT"
                    ))
                    .map_err(|e| refused("dropping the default", e))?,
                None => {}
            }
            match change.set_not_null {
                Some(true) => {
                    let nulls: i64 = conn.query_row(
                        &format!("SELECT count(*) FROM {target} WHERE {current} IS NULL"),
                        [],
                        |r| r.get(0),
                    )?;
                    if nulls > 0 {
                        return Err(ApiError::new(
                            ErrorCode::InvalidData,
                            format!(
                                "column {:?} has {nulls} NULL value(s), so it cannot be made NOT NULL",
                                col.name
                            ),
                        )
                        .with_details(json!({ "column": col.name, "null_rows": nulls })));
                    }
                    conn.execute_batch(&format!(
                        "ALTER TABLE {target} ALTER COLUMN {current} SET NOT NULL"
                    ))
                    .map_err(|e| refused("setting NOT NULL", e))?;
                }
                Some(false) => conn
                    .execute_batch(&format!(
                        "ALTER TABLE {target} ALTER COLUMN {current} DROP NOT NULL"
                    ))
                    .map_err(|e| refused("dropping NOT NULL", e))?,
                None => {}
            }
            if let Some(new) = &change.new_name {
                if new.as_str() != col.name {
                    conn.execute_batch(&format!(
                        "ALTER TABLE {target} RENAME COLUMN {current} TO {}",
                        new.quoted()
                    ))
                    .map_err(|e| refused("renaming the column", e))?;
                }
            }
            Ok(())
        })
    }

    /// Declares a primary key; 409 when the table has one or its data has repeated keys.
    pub fn add_primary_key(&self, key: &TableKey, columns: &[String]) -> ApiResult<()> {
        let info = self.describe(key)?;
        if !info.primary_key.is_empty() {
            return Err(ApiError::new(
                ErrorCode::PrimaryKeyExists,
                format!(
                    "Table '{}' already has the primary key {:?}; drop it first",
                    key.table, info.primary_key
                ),
            )
            .with_details(json!({ "primary_key": info.primary_key.as_ref() })));
        }
        let mut names: Vec<String> = Vec::new();
        for c in columns {
            let col = find_column(&info.columns, c).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidPrimaryKey,
                    format!(
                        "primary key column {c:?} does not exist in table '{}'",
                        key.table
                    ),
                )
                .with_details(json!({ "column": c, "available": info.columns.iter().map(|c| &c.name).collect::<Vec<_>>() }))
            })?;
            if names.contains(&col.name) {
                return Err(ApiError::new(
                    ErrorCode::InvalidPrimaryKey,
                    format!("primary key column {c:?} is listed twice"),
                ));
            }
            names.push(col.name.clone());
        }
        let quoted: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
        let pk = quoted.join(", ");
        self.change(key, |conn, target| {
            let nulls: i64 = conn.query_row(
                &format!(
                    "SELECT count(*) FROM {target} WHERE {}",
                    quoted
                        .iter()
                        .map(|q| format!("{q} IS NULL"))
                        .collect::<Vec<_>>()
                        .join(" OR ")
                ),
                [],
                |r| r.get(0),
            )?;
            if nulls > 0 {
                return Err(ApiError::new(
                    ErrorCode::NullPrimaryKey,
                    format!("{nulls} row(s) have NULL in the primary-key columns {names:?}"),
                )
                .with_details(json!({ "null_rows": nulls })));
            }
            let dupes = duplicate_keys(conn, target, &names)?;
            if !dupes.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::DuplicateKey,
                    format!(
                        "the table's data repeats values of {names:?}, so they cannot be the primary key"
                    ),
                )
                .with_details(json!({ "duplicate_keys": dupes, "primary_key": names })));
            }
            conn.execute_batch(&format!("ALTER TABLE {target} ADD PRIMARY KEY ({pk})"))
                .map_err(|e| refused("adding the primary key", e))
        })
    }

    /// Removes the primary key by rebuilding the table without it (DuckDB has no DROP CONSTRAINT).
    pub fn drop_primary_key(&self, key: &TableKey) -> ApiResult<()> {
        let info = self.describe(key)?;
        if info.primary_key.is_empty() {
            return Err(ApiError::new(
                ErrorCode::NoPrimaryKey,
                format!("Table '{}' has no primary key", key.table),
            ));
        }
        self.change(key, |conn, target| {
            rebuild(conn, target, &info.columns, &[], |_| None)
        })
    }

    /// Deletes the rows matching `filter`; returns (deleted, remaining).
    pub fn delete_rows(&self, key: &TableKey, filter: &Filter) -> ApiResult<(u64, u64)> {
        let info = self.describe(key)?;
        let condition = filter.to_sql(&info.columns)?;
        let mut out = (0, 0);
        self.change(key, |conn, target| {
            let deleted = conn
                .execute(&format!("DELETE FROM {target} WHERE {condition}"), [])
                .map_err(|e| refused_as(ErrorCode::InvalidWhereClause, "deleting rows", e))?;
            let remaining: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {target}"), [], |r| r.get(0))?;
            out = (deleted as u64, remaining.max(0) as u64);
            Ok(())
        })?;
        Ok(out)
    }

    /// Whether deleting the rows `filter` matches would empty a table that has rows (the
    /// `delete_all_rows` snapshot trigger). Caller holds the table's exclusive lock.
    pub fn filter_matches_every_row(&self, key: &TableKey, filter: &Filter) -> ApiResult<bool> {
        let info = self.describe(key)?;
        if info.row_count == 0 {
            return Ok(false);
        }
        let condition = filter.to_sql(&info.columns)?;
        let conn = self.conn()?;
        let alias = self.ensure_attached(&conn, key)?;
        let target = table_in(&alias, "data");
        // DELETE removes the rows whose condition is TRUE: a NULL keeps its row.
        let kept: bool = conn
            .query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM {target} WHERE ({condition}) IS NOT TRUE)"),
                [],
                |r| r.get(0),
            )
            .map_err(|e| refused_as(ErrorCode::InvalidWhereClause, "deleting rows", e))?;
        Ok(!kept)
    }

    /// Runs one change in a transaction on the table and forgets cached facts afterwards.
    fn change(
        &self,
        key: &TableKey,
        f: impl FnOnce(&duckdb::Connection, &str) -> ApiResult<()>,
    ) -> ApiResult<()> {
        let conn = self.conn()?;
        let alias = self.ensure_attached(&conn, key)?;
        let target = table_in(&alias, "data");
        let result = in_transaction(&conn, true, || f(&conn, &target));
        self.invalidate(key);
        result
    }
}

fn column_not_found(key: &TableKey, name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ColumnNotFound,
        format!("Column '{name}' not found in table '{}'", key.table),
    )
}

fn column_exists(key: &TableKey, name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ColumnExists,
        format!("Column '{name}' already exists in table '{}'", key.table),
    )
}

/// A schema change DuckDB refused: the table's state does not allow it (400), unless the
/// cause is ours (I/O, disk full).
fn refused(what: &str, err: duckdb::Error) -> ApiError {
    refused_as(ErrorCode::OperationNotAllowed, what, err)
}

/// A statement DuckDB refused, answered with `code` unless the cause is ours: a full disk is
/// 507 like everywhere else, any other I/O failure is internal.
fn refused_as(code: ErrorCode, what: &str, err: duckdb::Error) -> ApiError {
    let text = err.to_string();
    if text.contains("No space left on device") {
        return ApiError::from(err);
    }
    if text.contains("IO Error") {
        return ApiError::internal_from(what.to_string(), err);
    }
    ApiError::new(code, format!("{what} failed: {}", first_line(&text)))
        .with_details(json!({ "cause": first_line(&text) }))
}

/// Lists the first values of a column that do not convert to `ty` (400 if any).
fn check_column_converts(
    conn: &duckdb::Connection,
    target: &str,
    column: &str,
    ty: &ColumnType,
) -> ApiResult<()> {
    let col = quote_ident(column);
    let sql = format!(
        "SELECT {col}::VARCHAR FROM {target} WHERE {col} IS NOT NULL AND TRY_CAST({col} AS {ty}) IS NULL LIMIT {MAX_LISTED}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let bad: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    if bad.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::InvalidData,
        format!(
            "column {column:?} holds values that do not convert to {ty}, e.g. {:?}; nothing was changed",
            bad[0]
        ),
    )
    .with_details(json!({ "column": column, "new_type": ty.to_string(), "values": bad })))
}

/// The first repeated values of `columns` as JSON objects.
fn duplicate_keys(
    conn: &duckdb::Connection,
    target: &str,
    columns: &[String],
) -> ApiResult<Vec<Value>> {
    let quoted: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let object = columns
        .iter()
        .zip(&quoted)
        .map(|(n, q)| format!("{}, {q}", super::sql_string(n)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT json_object({object})::VARCHAR FROM {target} GROUP BY {} HAVING count(*) > 1 LIMIT {MAX_LISTED}",
        quoted.join(", ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows
        .iter()
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect())
}

/// Recreates `data` with the same columns (types possibly changed by `retype`) and the given
/// primary key, copying every row, inside the caller's transaction.
fn rebuild(
    conn: &duckdb::Connection,
    target: &str,
    columns: &[ColumnInfo],
    primary_key: &[String],
    retype: impl Fn(&ColumnInfo) -> Option<String>,
) -> ApiResult<()> {
    let staging = target.replace(".main.data", ".main.__duckbank_rebuild");
    let selects: Vec<String> = columns
        .iter()
        .map(|c| {
            let ty = retype(c).unwrap_or_else(|| c.data_type.clone());
            format!("CAST({} AS {ty})", quote_ident(&c.name))
        })
        .collect();
    let sql = format!(
        "{create}; \
         INSERT INTO {staging} SELECT {selects} FROM {target}; \
         {swap}",
        create = create_like_sql(&staging, columns, primary_key, retype),
        selects = selects.join(", "),
        swap = swap_in_sql(target, &staging)
    );
    conn.execute_batch(&sql)
        .map_err(|e| refused("rebuilding the table", e))
}
