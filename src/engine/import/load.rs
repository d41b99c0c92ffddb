//! Running a planned import: a full load fills a new table and swaps it in, an incremental
//! one appends, an upsert goes through a staging table. Runs inside the caller's transaction.

use serde_json::{json, Value};

use super::columns::Mapped;
use super::diagnose::MAX_PROBLEMS;
use super::request::{DedupMode, ImportOutcome, ImportRequest};
use crate::engine::ddl::{create_like_sql, swap_in_sql, table_in};
use crate::engine::{first_line, quote_ident, sql_string, TableInfo};
use crate::error::{ApiError, ApiResult, ErrorCode};

const STAGE: &str = "__duckbank_import_stage";
const FRESH: &str = "__duckbank_import_load";

/// Why a load failed: the file's content, a repeated key, or anything else.
pub(super) enum LoadError {
    Read(duckdb::Error),
    DuplicateKey,
    Api(ApiError),
}

impl From<duckdb::Error> for LoadError {
    fn from(e: duckdb::Error) -> Self {
        load_error(e)
    }
}

fn load_error(err: duckdb::Error) -> LoadError {
    let text = err.to_string();
    if text.contains("Duplicate key") || text.contains("duplicate key") {
        LoadError::DuplicateKey
    } else if text.contains("NOT NULL constraint failed") {
        LoadError::Api(
            ApiError::new(
                ErrorCode::InvalidData,
                format!(
                    "the file has empty values in a NOT NULL column: {}",
                    first_line(&text)
                ),
            )
            .with_details(json!({ "cause": first_line(&text) })),
        )
    } else if text.contains("No space left on device") {
        LoadError::Api(err.into())
    } else if [
        "Conversion Error",
        "Invalid Input Error",
        "CSV Error",
        "JSON",
        "Parquet",
        "IO Error",
    ]
    .iter()
    .any(|k| text.contains(k))
    {
        LoadError::Read(err)
    } else {
        LoadError::Api(ApiError::internal_from("loading rows into the table", err))
    }
}

/// One planned load: SQL pieces built from validated names only.
pub(super) struct Load<'r> {
    target: String,
    /// A full load fills a new table and swaps it in: deleting every row and inserting the
    /// same keys again costs more than twice as much in DuckDB (index maintenance).
    fresh: String,
    create_fresh: String,
    stage: String,
    select: String,
    columns: Vec<String>,
    pk: Vec<String>,
    pk_names: Vec<String>,
    req: &'r ImportRequest,
}

impl<'r> Load<'r> {
    /// Plans loading the `select`ed rows into the table attached as `alias`, refusing what
    /// its primary key forbids.
    pub(super) fn plan(
        alias: &str,
        info: &TableInfo,
        mapped: &[Mapped],
        select: String,
        req: &'r ImportRequest,
    ) -> ApiResult<Self> {
        let pk: Vec<String> = info.primary_key.as_ref().clone();
        if !pk.is_empty() {
            if req.dedup == DedupMode::InsertDuplicates {
                return Err(ApiError::new(
                    ErrorCode::OperationNotAllowed,
                    format!(
                        "dedup_mode insert_duplicates cannot be used: the table's primary key {pk:?} forbids duplicate keys; use update_duplicates or fail_on_duplicates, or drop the primary key"
                    ),
                )
                .with_details(json!({ "primary_key": pk })));
            }
            let absent: Vec<&String> = pk
                .iter()
                .filter(|p| !mapped.iter().any(|m| &m.column.name == *p))
                .collect();
            if !absent.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::InvalidColumns,
                    format!("the file must contain the primary-key columns {absent:?}"),
                )
                .with_details(json!({ "missing_columns": absent })));
            }
        }
        let fresh = table_in(alias, FRESH);
        Ok(Self {
            target: table_in(alias, "data"),
            create_fresh: create_like_sql(&fresh, &info.columns, &pk, |_| None),
            fresh,
            stage: table_in(alias, STAGE),
            select,
            columns: mapped.iter().map(|m| quote_ident(&m.column.name)).collect(),
            pk: pk.iter().map(|p| quote_ident(p)).collect(),
            pk_names: pk,
            req,
        })
    }

    /// Runs inside an open transaction. `staged` dedupes through a staging table first.
    pub(super) fn run(
        &self,
        conn: &duckdb::Connection,
        staged: bool,
    ) -> Result<ImportOutcome, LoadError> {
        let exec = |sql: &str| conn.execute(sql, []).map_err(load_error);
        let mut warnings = Vec::new();
        let into = if self.req.incremental {
            &self.target
        } else {
            exec(&self.create_fresh)?;
            &self.fresh
        };
        let cols = self.columns.join(", ");
        let upsert = self.req.incremental
            && !self.pk.is_empty()
            && self.req.dedup == DedupMode::UpdateDuplicates;
        let imported = if !staged && !upsert {
            exec(&format!("INSERT INTO {into} ({cols}) {}", self.select))?
        } else {
            exec(&format!(
                "CREATE OR REPLACE TABLE {} AS {}",
                self.stage, self.select
            ))?;
            let pk = self.pk.join(", ");
            let (rows, distinct): (i64, i64) = conn
                .query_row(
                    &format!(
                        "SELECT count(*), count(DISTINCT ({pk})) FROM {}",
                        self.stage
                    ),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(load_error)?;
            // The staging table keeps file order in its rowids, so the last occurrence wins.
            let dedupe = if rows > distinct {
                warnings.push(format!(
                    "{} row(s) repeat a primary key of an earlier row in the file; the last occurrence of each key was kept",
                    rows - distinct
                ));
                format!(" QUALIFY row_number() OVER (PARTITION BY {pk} ORDER BY rowid DESC) = 1")
            } else {
                String::new()
            };
            let updates: Vec<String> = self
                .columns
                .iter()
                .filter(|c| !self.pk.contains(c))
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            let on_conflict = if !upsert {
                String::new()
            } else if updates.is_empty() {
                format!(" ON CONFLICT ({pk}) DO NOTHING")
            } else {
                format!(" ON CONFLICT ({pk}) DO UPDATE SET {}", updates.join(", "))
            };
            let n = exec(&format!(
                "INSERT INTO {into} ({cols}) SELECT {cols} FROM {}{dedupe}{on_conflict}",
                self.stage
            ))?;
            exec(&format!("DROP TABLE {}", self.stage))?;
            n
        };
        let after: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {into}"), [], |r| r.get(0))
            .map_err(load_error)?;
        if !self.req.incremental {
            conn.execute_batch(&swap_in_sql(&self.target, &self.fresh))
                .map_err(load_error)?;
        }
        if self.pk.is_empty()
            && self.req.incremental
            && self.req.dedup != DedupMode::InsertDuplicates
        {
            warnings.push(
                "the table has no primary key, so rows were appended without deduplication".into(),
            );
        }
        Ok(ImportOutcome {
            imported_rows: imported as u64,
            table_rows_after: after.max(0) as u64,
            warnings,
        })
    }

    /// Lists the keys that made a fail_on_duplicates import (or a full load) fail.
    pub(super) fn duplicates_error(&self, conn: &duckdb::Connection) -> ApiError {
        let pk = self.pk.join(", ");
        let key_json = self
            .pk
            .iter()
            .zip(&self.pk_names)
            .map(|(q, n)| format!("{}, {q}::VARCHAR", sql_string(n)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!(
            "SELECT json_object({key_json})::VARCHAR FROM ({}) GROUP BY {pk} HAVING count(*) > 1",
            self.select
        );
        if self.req.incremental {
            sql = format!(
                "{sql} UNION SELECT json_object({key_json})::VARCHAR FROM ({}) s SEMI JOIN {} t USING ({pk})",
                self.select, self.target
            );
        }
        let keys: Vec<Value> = conn
            .prepare(&format!("{sql} LIMIT {MAX_PROBLEMS}"))
            .and_then(|mut stmt| {
                stmt.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| serde_json::from_str(r).ok())
                    .collect()
            })
            .unwrap_or_default();
        ApiError::new(
            ErrorCode::DuplicateKey,
            format!(
                "the import would duplicate primary-key values of {:?}; nothing was imported",
                self.pk_names
            ),
        )
        .with_details(json!({ "duplicate_keys": keys, "primary_key": self.pk_names }))
    }
}
