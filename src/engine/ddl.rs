//! Defining tables: creating and removing table files and directories, and the DDL text for them.
//! A failed create leaves no file behind; SQL is built from validated or quoted names only.

use super::{first_line, fsync_dir, quote_ident, wal_path, ColumnInfo, TableEngine, TableKey};
use crate::error::{ApiError, ApiResult, ErrorCode, IoContext};
use crate::names::{BucketName, ColumnName, ProjectId};
use crate::types::{ColumnType, DefaultValue};

/// A validated column definition for CREATE TABLE.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: ColumnName,
    pub data_type: ColumnType,
    pub nullable: bool,
    pub default: Option<DefaultValue>,
}

impl TableEngine {
    /// Creates the bucket directory (idempotent).
    pub fn create_bucket_dir(&self, project: &ProjectId, bucket: &BucketName) -> ApiResult<()> {
        let dir = self.bucket_dir(project, bucket);
        std::fs::create_dir_all(&dir).at_path("creating bucket directory", &dir)?;
        let project_dir = self.project_dir(project);
        fsync_dir(&project_dir).at_path("syncing project directory", &project_dir)?;
        Ok(())
    }

    /// Creates `<table>.duckdb` with `main.data`. Caller holds the table's exclusive lock
    /// and has checked that the catalog does not know the table, so any file found at the
    /// path is an orphan of an earlier crash and is replaced.
    pub fn create_table(
        &self,
        key: &TableKey,
        columns: &[ColumnDef],
        primary_key: &[ColumnName],
    ) -> ApiResult<()> {
        let dir = self.table_dir(key);
        std::fs::create_dir_all(&dir).at_path("creating bucket directory", &dir)?;
        let path = self.table_path(key);
        remove_table_files(&path)?;

        let conn = self.conn()?;
        check_defaults(&conn, columns)?;
        let alias = self.attach(&conn, key, true)?;
        let ddl = create_table_sql(&alias, columns, primary_key);
        // The commit is durable through the file's WAL. No CHECKPOINT here: it would fail
        // while any other write transaction in the instance is open (other tables' writes).
        let created = conn.execute_batch(&ddl);
        if let Err(err) = created {
            let _ = self.detach(&conn, key);
            let _ = remove_table_files(&path);
            // The definition was validated, so a refusal here is a value DuckDB cannot use,
            // such as a default that does not convert to its column type. Anything else
            // (I/O, disk full) is ours.
            let text = err.to_string();
            let client_caused = [
                "Conversion Error",
                "Binder Error",
                "Constraint Error",
                "Parser Error",
            ]
            .iter()
            .any(|kind| text.contains(kind));
            return Err(if client_caused {
                ApiError::bad_request(format!("table definition rejected: {}", first_line(&text)))
            } else if text.contains("No space left on device") {
                ApiError::from(err)
            } else {
                ApiError::internal_from(format!("creating table file {}", path.display()), err)
            });
        }
        fsync_dir(&dir).at_path("syncing bucket directory", &dir)?;
        Ok(())
    }

    /// Detaches and deletes a table file (caller holds the table's exclusive lock).
    pub fn drop_table(&self, key: &TableKey) -> ApiResult<()> {
        let conn = self.conn()?;
        self.detach(&conn, key)?;
        let path = self.table_path(key);
        remove_table_files(&path)?;
        if let Some(dir) = path.parent() {
            let _ = fsync_dir(dir);
        }
        Ok(())
    }

    /// Detaches a bucket's tables and removes its directory (caller holds the bucket exclusively).
    pub fn drop_bucket(&self, project: &ProjectId, bucket: &BucketName) -> ApiResult<()> {
        let conn = self.conn()?;
        self.detach_where(&conn, |k| &k.project == project && &k.bucket == bucket)?;
        remove_dir_if_present(&self.bucket_dir(project, bucket))?;
        // The dev branches' copies of its tables go with it.
        for branch in self.branch_dirs(project) {
            remove_dir_if_present(&branch.join(bucket.as_str()))?;
        }
        Ok(())
    }

    /// Detaches a project's tables and removes its directory (caller holds the project exclusively).
    pub fn drop_project(&self, project: &ProjectId) -> ApiResult<()> {
        let conn = self.conn()?;
        self.detach_where(&conn, |k| &k.project == project)?;
        remove_dir_if_present(&self.project_dir(project))
    }
}

/// DuckDB evaluates defaults only when a row is inserted, so a default that does not
/// convert to its column type would be accepted now and fail every later insert.
fn check_defaults(conn: &duckdb::Connection, columns: &[ColumnDef]) -> ApiResult<()> {
    for c in columns {
        let Some(default) = &c.default else { continue };
        check_default(conn, default, &c.data_type.to_string(), c.name.as_str()).map_err(|e| {
            if e.code() == ErrorCode::InvalidRequest {
                e.prefixed("table definition rejected: ")
            } else {
                e
            }
        })?;
    }
    Ok(())
}

/// Checks that a default literal converts to the column type before DuckDB stores it.
pub(crate) fn check_default(
    conn: &duckdb::Connection,
    default: &DefaultValue,
    ty: &str,
    column: &str,
) -> ApiResult<()> {
    let literal = default.to_sql();
    conn.execute_batch(&format!("SELECT CAST({literal} AS {ty})"))
        .map_err(|e| {
            ApiError::bad_request_with(
                format!("default {literal} does not convert to {ty} for column {column:?}"),
                serde_json::json!({ "column": column, "cause": first_line(&e.to_string()) }),
            )
        })
}

impl ColumnDef {
    /// The column as CREATE TABLE and ADD COLUMN declare it.
    pub(crate) fn to_sql(&self) -> String {
        let default = self.default.as_ref().map(DefaultValue::to_sql);
        column_sql(
            &self.name.quoted(),
            &self.data_type.to_string(),
            default.as_deref(),
            self.nullable,
        )
    }
}

/// `"<alias>".main.<table>`: a table in an attached table file. `table` is `data` or one of
/// our own staging names, never a client's.
pub(crate) fn table_in(alias: &str, table: &str) -> String {
    format!("\"{alias}\".main.{table}")
}

/// `CREATE TABLE` for a new table file's `data` from a client's definition.
fn create_table_sql(alias: &str, columns: &[ColumnDef], primary_key: &[ColumnName]) -> String {
    create_sql(
        &table_in(alias, "data"),
        columns.iter().map(ColumnDef::to_sql).collect(),
        primary_key.iter().map(ColumnName::quoted).collect(),
    )
}

/// `CREATE TABLE <table>` with the given columns (types possibly changed by `retype`),
/// their defaults and NOT NULL constraints, and the primary key.
pub(crate) fn create_like_sql(
    table: &str,
    columns: &[ColumnInfo],
    primary_key: &[String],
    retype: impl Fn(&ColumnInfo) -> Option<String>,
) -> String {
    let defs = columns
        .iter()
        .map(|c| {
            let ty = retype(c).unwrap_or_else(|| c.data_type.clone());
            // Defaults come back from DuckDB's own catalog, already rendered as SQL.
            column_sql(&quote_ident(&c.name), &ty, c.default.as_deref(), c.nullable)
        })
        .collect();
    let pk = primary_key.iter().map(|p| quote_ident(p)).collect();
    create_sql(table, defs, pk)
}

/// Replaces `target` (a table file's `data`) by `replacement`, a filled table in the same
/// file, inside the caller's transaction.
pub(crate) fn swap_in_sql(target: &str, replacement: &str) -> String {
    format!("DROP TABLE {target}; ALTER TABLE {replacement} RENAME TO data;")
}

/// `<name> <type> [DEFAULT <default>] [NOT NULL]`, from a quoted name and SQL default.
fn column_sql(quoted_name: &str, data_type: &str, default: Option<&str>, nullable: bool) -> String {
    let mut def = format!("{quoted_name} {data_type}");
    if let Some(d) = default {
        def.push_str(" DEFAULT ");
        def.push_str(d);
    }
    if !nullable {
        def.push_str(" NOT NULL");
    }
    def
}

/// `CREATE TABLE <table> (<columns>[, PRIMARY KEY (<quoted keys>)])`.
fn create_sql(table: &str, mut defs: Vec<String>, primary_key: Vec<String>) -> String {
    if !primary_key.is_empty() {
        defs.push(format!("PRIMARY KEY ({})", primary_key.join(", ")));
    }
    format!("CREATE TABLE {table} ({})", defs.join(", "))
}

pub(crate) fn remove_table_files(path: &std::path::Path) -> ApiResult<()> {
    for p in [path.to_path_buf(), wal_path(path)] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at_path("removing table file", &p),
        }
    }
    Ok(())
}

pub(crate) fn remove_dir_if_present(dir: &std::path::Path) -> ApiResult<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {
            if let Some(parent) = dir.parent() {
                let _ = fsync_dir(parent);
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at_path("removing directory", dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_quotes_identifiers_and_renders_types() {
        let cols = vec![
            ColumnDef {
                name: ColumnName::parse("id").unwrap(),
                data_type: ColumnType::parse("int").unwrap(),
                nullable: false,
                default: None,
            },
            ColumnDef {
                name: ColumnName::parse("amount").unwrap(),
                data_type: ColumnType::parse("decimal(10,2)").unwrap(),
                nullable: true,
                default: Some(DefaultValue::parse("0").unwrap()),
            },
        ];
        let sql = create_table_sql("t1", &cols, &[ColumnName::parse("id").unwrap()]);
        assert_eq!(
            sql,
            "CREATE TABLE \"t1\".main.data (\"id\" INTEGER NOT NULL, \"amount\" DECIMAL(10,2) DEFAULT 0, PRIMARY KEY (\"id\"))"
        );
    }
}
