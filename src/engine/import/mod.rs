//! Loading CSV, Parquet and JSONL files into a table with DuckDB's own readers, atomically:
//! one transaction per import, typed to the table's columns, with a bad-rows report on failure.

mod columns;
mod diagnose;
mod load;
mod request;
mod source;

use std::path::Path;

use self::columns::map_columns;
use self::load::{Load, LoadError};
use crate::engine::transaction::in_transaction;
use crate::engine::{TableEngine, TableKey};
use crate::error::ApiResult;
pub use request::{CsvOptions, DedupMode, Format, ImportOutcome, ImportRequest};
pub use source::Source;

impl TableEngine {
    /// Imports `file` into the table. Caller holds the table's exclusive lock.
    pub fn import_file(
        &self,
        key: &TableKey,
        file: &Path,
        req: &ImportRequest,
    ) -> ApiResult<ImportOutcome> {
        let info = self.describe(key)?;
        let conn = self.conn()?;
        let alias = self.ensure_attached(&conn, key)?;
        let source = Source::open(file, req.format, &req.csv)?;
        let file_columns = match source.detect(&conn) {
            Err(err) if req.format == Format::Jsonl => {
                return Err(diagnose::not_jsonl(&conn, &source, err))
            }
            detected => detected?,
        };
        let by_name = req.format != Format::Csv || req.csv.header;
        let mapped = map_columns(
            &file_columns,
            &info.columns,
            req.columns.as_deref(),
            by_name,
        )?;
        let select = source.select_sql(&file_columns, &mapped);
        let load = Load::plan(&alias, &info, &mapped, select, req)?;
        let commit = !req.validate_only;
        let result = in_transaction(&conn, commit, || load.run(&conn, false));
        let result = match result {
            // Keys repeat within the file: redo through a staging table where the last wins.
            Err(LoadError::DuplicateKey) if req.dedup == DedupMode::UpdateDuplicates => {
                in_transaction(&conn, commit, || load.run(&conn, true))
            }
            other => other,
        };
        if commit {
            self.invalidate(key);
        }
        match result {
            Ok(outcome) => Ok(outcome),
            Err(LoadError::Api(e)) => Err(e),
            Err(LoadError::DuplicateKey) => Err(load.duplicates_error(&conn)),
            Err(LoadError::Read(err)) => Err(diagnose::read_failure(
                &conn,
                &source,
                &file_columns,
                &mapped,
                &err,
            )),
        }
    }
}
