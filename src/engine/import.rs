//! Loading CSV, Parquet and JSONL files into a table with DuckDB's own readers, atomically:
//! one transaction per import, typed to the table's columns, with a bad-rows report on failure.

use std::path::Path;

use serde_json::{json, Value};

use super::ddl::{create_like_sql, swap_in_sql, table_in};
use super::transaction::in_transaction;
use super::{first_line, quote_ident, sql_string, ColumnInfo, TableEngine, TableKey};
use crate::error::{ApiError, ApiResult};

/// The file formats an import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
    Jsonl,
}

impl Format {
    pub fn parse(raw: &str) -> ApiResult<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "parquet" => Ok(Self::Parquet),
            "jsonl" | "ndjson" | "json" => Ok(Self::Jsonl),
            other => Err(ApiError::bad_request_with(
                format!("unsupported import format {other:?}; use csv, parquet or jsonl"),
                json!({ "format": other, "supported": ["csv", "parquet", "jsonl"] }),
            )),
        }
    }
}

/// How a CSV file is written. Every field is a single character except `null_string`.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub delimiter: String,
    pub quote: String,
    pub escape: String,
    pub header: bool,
    pub null_string: String,
}

impl Default for CsvOptions {
    /// RFC 4180: a quote inside a quoted field is doubled. This is what DuckDB's own
    /// `COPY TO` writes, so exports import back unchanged (ADR 0013).
    fn default() -> Self {
        Self {
            delimiter: ",".into(),
            quote: "\"".into(),
            escape: "\"".into(),
            header: true,
            null_string: String::new(),
        }
    }
}

impl CsvOptions {
    /// Checks the options before any of them reaches the reader.
    pub fn validate(&self) -> ApiResult<()> {
        for (name, value, may_be_empty) in [
            ("delimiter", &self.delimiter, false),
            ("quote", &self.quote, true),
            ("escape", &self.escape, true),
        ] {
            let chars = value.chars().count();
            if chars > 1 || (chars == 0 && !may_be_empty) || value.contains(['\n', '\r']) {
                return Err(ApiError::bad_request_with(
                    format!("csv_options.{name} must be a single character other than a line break, got {value:?}"),
                    json!({ "option": name, "value": value }),
                ));
            }
        }
        if self.null_string.len() > 64 || self.null_string.contains(['\n', '\r']) {
            return Err(ApiError::bad_request(
                "csv_options.null_string must be at most 64 bytes without line breaks",
            ));
        }
        Ok(())
    }

    /// The reader options shared by column detection and the load itself.
    fn reader_options(&self) -> String {
        format!(
            // A quoted empty field is an empty string, not NULL: that is how DuckDB's own
            // COPY TO tells them apart, so exports import back unchanged.
            "header={}, delim={}, quote={}, escape={}, nullstr={}, allow_quoted_nulls=false",
            self.header,
            sql_string(&self.delimiter),
            sql_string(&self.quote),
            sql_string(&self.escape),
            sql_string(&self.null_string)
        )
    }
}

/// What to do with rows whose primary key already exists or repeats in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupMode {
    UpdateDuplicates,
    InsertDuplicates,
    FailOnDuplicates,
}

impl DedupMode {
    pub fn parse(raw: &str) -> ApiResult<Self> {
        match raw {
            "update_duplicates" => Ok(Self::UpdateDuplicates),
            "insert_duplicates" => Ok(Self::InsertDuplicates),
            "fail_on_duplicates" => Ok(Self::FailOnDuplicates),
            other => Err(ApiError::bad_request_with(
                format!("unknown dedup_mode {other:?}"),
                json!({ "dedup_mode": other, "supported": ["update_duplicates", "insert_duplicates", "fail_on_duplicates"] }),
            )),
        }
    }
}

/// A validated import request.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub format: Format,
    pub csv: CsvOptions,
    pub incremental: bool,
    pub dedup: DedupMode,
    /// Only these file columns are imported (`None`: all of them).
    pub columns: Option<Vec<String>>,
    /// Run the whole import, report its figures, then roll it back.
    pub validate_only: bool,
}

#[derive(Debug, Clone)]
pub struct ImportOutcome {
    pub imported_rows: u64,
    pub table_rows_after: u64,
    pub warnings: Vec<String>,
}

/// Most problems listed in a bad-rows report.
const MAX_PROBLEMS: usize = 10;

/// A file as DuckDB reads it: path, format and compression.
pub struct Source<'a> {
    /// The path as an SQL string literal.
    path: String,
    /// The path as is, to keep it out of messages (clients never see server paths).
    raw_path: String,
    format: Format,
    gzip: bool,
    csv: &'a CsvOptions,
}

impl<'a> Source<'a> {
    /// Describes `path`; gzip is recognised by its magic bytes, since blobs have no extension.
    pub fn open(path: &Path, format: Format, csv: &'a CsvOptions) -> ApiResult<Self> {
        let mut magic = [0u8; 2];
        let len = {
            use std::io::Read;
            let mut f = std::fs::File::open(path)?;
            f.read(&mut magic)?
        };
        let gzip = len == 2 && magic == [0x1f, 0x8b];
        if gzip && format == Format::Parquet {
            return Err(ApiError::bad_request(
                "the file is gzip-compressed, which Parquet files never are; import it as csv or jsonl",
            ));
        }
        Ok(Self {
            path: sql_string(&path.to_string_lossy()),
            raw_path: path.to_string_lossy().into_owned(),
            format,
            gzip,
            csv,
        })
    }

    fn compression(&self) -> &'static str {
        if self.gzip {
            "'gzip'"
        } else {
            "'none'"
        }
    }

    /// The reader call for detection with the client's dialect; CSV types are inferred
    /// only when asked (as text, detection cannot fail on a value).
    fn detect_sql(&self, infer_types: bool) -> String {
        match self.format {
            Format::Csv => format!(
                "DESCRIBE SELECT * FROM read_csv({}, {}, all_varchar={}, compression={})",
                self.path,
                self.csv.reader_options(),
                !infer_types,
                self.compression()
            ),
            Format::Parquet => format!("DESCRIBE SELECT * FROM read_parquet({})", self.path),
            Format::Jsonl => format!(
                "DESCRIBE SELECT * FROM read_json({}, format='newline_delimited', records=true, compression={})",
                self.path,
                self.compression()
            ),
        }
    }

    fn unreadable(&self, err: &duckdb::Error) -> ApiError {
        self.unreadable_text(&err.to_string())
    }

    fn unreadable_text(&self, text: &str) -> ApiError {
        let text = self.clean(text);
        let name = match self.format {
            Format::Csv => "CSV",
            Format::Parquet => "Parquet",
            Format::Jsonl => "JSONL",
        };
        // DuckDB's first lines say what is wrong; the rest are hints about its own options.
        let cause: String = text.lines().take(3).collect::<Vec<_>>().join(" ");
        ApiError::bad_request_with(
            format!(
                "the file cannot be read as {name} with these options: {}",
                first_line(&text)
            ),
            json!({ "format": name.to_ascii_lowercase(), "cause": cause }),
        )
    }

    /// A DuckDB message with the server-side path replaced.
    fn clean(&self, text: &str) -> String {
        text.replace(&self.raw_path, "<file>")
    }

    /// Column names of the file, in file order. A CSV header is its first line, read as
    /// such: DuckDB's dialect sniffer would take the widest line for the header, and it
    /// gives up on some broken files (an unterminated quote) before naming any column. The
    /// load then reports the broken lines themselves.
    pub fn detect(&self, conn: &duckdb::Connection) -> ApiResult<Vec<String>> {
        if self.format == Format::Csv {
            return self.csv_first_line(conn).map_err(|e| match e {
                ApiError::Internal(cause) => self.unreadable_text(&cause),
                other => other,
            });
        }
        match self.detect_typed(conn, false) {
            Ok(columns) => Ok(columns.into_iter().map(|(name, _)| name).collect()),
            Err(err) if self.format == Format::Jsonl => {
                let problems = jsonl_problems(conn, self);
                if problems.is_empty() {
                    Err(err)
                } else {
                    Err(problems_error(
                        problems,
                        "the file is not JSONL (one JSON object per line)",
                    ))
                }
            }
            Err(err) => Err(err),
        }
    }

    /// The fields of the first line, read without sniffing: up to `MAX_CSV_COLUMNS` text
    /// columns, NULL-padded. Names are the header's, or `column<i>` without a header.
    fn csv_first_line(&self, conn: &duckdb::Connection) -> ApiResult<Vec<String>> {
        // Binding 1 000 columns costs tens of milliseconds; most files are narrow.
        const NARROW: usize = 32;
        const MAX_CSV_COLUMNS: usize = 1000;
        let fields = match self.csv_first_fields(conn, NARROW) {
            Ok(fields) if fields.len() < NARROW => fields,
            _ => self.csv_first_fields(conn, MAX_CSV_COLUMNS)?,
        };
        Ok(if self.csv.header {
            fields
        } else {
            (0..fields.len()).map(|i| format!("column{i}")).collect()
        })
    }

    /// The non-NULL leading fields of the first line, read as `width` NULL-padded columns.
    fn csv_first_fields(&self, conn: &duckdb::Connection, width: usize) -> ApiResult<Vec<String>> {
        let columns: Vec<String> = (0..width).map(|i| format!("'c{i}': 'VARCHAR'")).collect();
        let options = CsvOptions {
            header: false,
            ..self.csv.clone()
        };
        let sql = format!(
            "SELECT * FROM read_csv({}, {}, auto_detect=false, null_padding=true, parallel=false, compression={}, columns={{{}}}) LIMIT 1",
            self.path,
            options.reader_options(),
            self.compression(),
            columns.join(", ")
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        let Some(row) = rows.next()? else {
            return Err(ApiError::bad_request("the file is empty"));
        };
        let mut fields = Vec::new();
        for i in 0..width {
            match row.get::<_, Option<String>>(i)? {
                Some(v) => fields.push(v),
                None => break,
            }
        }
        Ok(fields)
    }

    /// Column names and detected types of the file, in file order.
    pub fn detect_typed(
        &self,
        conn: &duckdb::Connection,
        infer_types: bool,
    ) -> ApiResult<Vec<(String, String)>> {
        let unreadable = |e: duckdb::Error| self.unreadable(&e);
        let mut stmt = conn
            .prepare(&self.detect_sql(infer_types))
            .map_err(unreadable)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(unreadable)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(unreadable)
    }

    /// `SELECT <typed columns> FROM <reader>`: the rows to load, typed by the reader itself.
    fn select_sql(&self, file_columns: &[String], mapped: &[Mapped]) -> String {
        let outputs: Vec<String> = mapped
            .iter()
            .map(|m| match self.format {
                Format::Parquet => format!(
                    "CAST({} AS {}) AS {}",
                    quote_ident(&m.file),
                    m.column.data_type,
                    quote_ident(&m.column.name)
                ),
                _ => format!(
                    "{} AS {}",
                    quote_ident(&m.file),
                    quote_ident(&m.column.name)
                ),
            })
            .collect();
        format!(
            "SELECT {} FROM {}",
            outputs.join(", "),
            self.reader_sql(file_columns, mapped, "")
        )
    }

    /// The table function reading the file; `extra` appends reader options (rejects).
    fn reader_sql(&self, file_columns: &[String], mapped: &[Mapped], extra: &str) -> String {
        let type_of = |file: &str| {
            mapped
                .iter()
                .find(|m| m.file == file)
                .map(|m| m.column.data_type.clone())
        };
        match self.format {
            Format::Csv => {
                // Every file column must be listed (CSV is positional); the ones not imported
                // stay text so they cannot fail a cast.
                let columns: Vec<String> = file_columns
                    .iter()
                    .map(|f| {
                        let ty = type_of(f).unwrap_or_else(|| "VARCHAR".into());
                        format!("{}: {}", sql_string(f), sql_string(&ty))
                    })
                    .collect();
                format!(
                    "read_csv({}, {}, auto_detect=false, compression={}, columns={{{}}}{extra})",
                    self.path,
                    self.csv.reader_options(),
                    self.compression(),
                    columns.join(", ")
                )
            }
            Format::Parquet => format!("read_parquet({}{extra})", self.path),
            Format::Jsonl => {
                let columns: Vec<String> = mapped
                    .iter()
                    .map(|m| {
                        format!(
                            "{}: {}",
                            sql_string(&m.file),
                            sql_string(&m.column.data_type)
                        )
                    })
                    .collect();
                format!(
                    "read_json({}, format='newline_delimited', records=true, compression={}, columns={{{}}}{extra})",
                    self.path,
                    self.compression(),
                    columns.join(", ")
                )
            }
        }
    }
}

/// A file column and the table column it loads into.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub file: String,
    pub column: ColumnInfo,
}

/// Matches file columns to table columns: by name (case-insensitive, as DuckDB folds case)
/// when the file names its columns, by position otherwise.
pub fn map_columns(
    file_columns: &[String],
    table: &[ColumnInfo],
    only: Option<&[String]>,
    by_name: bool,
) -> ApiResult<Vec<Mapped>> {
    let find = |name: &str| super::find_column(table, name);
    let available: Vec<&str> = table.iter().map(|c| c.name.as_str()).collect();
    if let Some(only) = only {
        let unknown: Vec<&String> = only.iter().filter(|c| find(c).is_none()).collect();
        if !unknown.is_empty() {
            return Err(ApiError::bad_request_with(
                format!(
                    "import_options.columns names columns the table does not have: {unknown:?}"
                ),
                json!({ "unknown_columns": unknown, "available": available }),
            ));
        }
    }
    let mapped: Vec<Mapped> = if by_name {
        let mut seen = std::collections::HashSet::new();
        let dupes: Vec<&String> = file_columns
            .iter()
            .filter(|c| !seen.insert(c.to_ascii_lowercase()))
            .collect();
        if !dupes.is_empty() {
            return Err(ApiError::bad_request_with(
                format!("the file names these columns more than once: {dupes:?}"),
                json!({ "duplicate_columns": dupes }),
            ));
        }
        let wanted: Vec<&String> = match only {
            Some(only) => {
                let absent: Vec<&String> = only
                    .iter()
                    .filter(|o| !file_columns.iter().any(|f| f.eq_ignore_ascii_case(o)))
                    .collect();
                if !absent.is_empty() {
                    return Err(ApiError::bad_request_with(
                        format!("columns to import are missing from the file: {absent:?}"),
                        json!({ "missing_in_file": absent, "file_columns": file_columns }),
                    ));
                }
                file_columns
                    .iter()
                    .filter(|f| only.iter().any(|o| o.eq_ignore_ascii_case(f)))
                    .collect()
            }
            None => {
                let unknown: Vec<&String> =
                    file_columns.iter().filter(|f| find(f).is_none()).collect();
                if !unknown.is_empty() {
                    return Err(ApiError::bad_request_with(
                        format!(
                            "the file has columns the table does not: {unknown:?}; add them to the table or list the columns to import in import_options.columns"
                        ),
                        json!({ "unknown_columns": unknown, "available": available }),
                    ));
                }
                file_columns.iter().collect()
            }
        };
        wanted
            .into_iter()
            .filter_map(|f| {
                find(f).map(|c| Mapped {
                    file: f.clone(),
                    column: c.clone(),
                })
            })
            .collect()
    } else {
        let targets: Vec<&ColumnInfo> = match only {
            Some(only) => only.iter().filter_map(|o| find(o)).collect(),
            None => table.iter().collect(),
        };
        if targets.len() != file_columns.len() {
            return Err(ApiError::bad_request_with(
                format!(
                    "the file has {} columns but {} are expected (csv_options.header is false, so columns are matched by position)",
                    file_columns.len(),
                    targets.len()
                ),
                json!({ "file_columns": file_columns.len(), "expected_columns": targets.iter().map(|c| &c.name).collect::<Vec<_>>() }),
            ));
        }
        file_columns
            .iter()
            .zip(targets)
            .map(|(f, c)| Mapped {
                file: f.clone(),
                column: c.clone(),
            })
            .collect()
    };
    let missing: Vec<&str> = table
        .iter()
        .filter(|c| !c.nullable && c.default.is_none())
        .filter(|c| !mapped.iter().any(|m| m.column.name == c.name))
        .map(|c| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request_with(
            format!("the file lacks required (NOT NULL, no default) columns: {missing:?}"),
            json!({ "missing_columns": missing }),
        ));
    }
    if mapped.is_empty() {
        return Err(ApiError::bad_request("no column of the file is imported"));
    }
    Ok(mapped)
}

const STAGE: &str = "__duckbank_import_stage";
const FRESH: &str = "__duckbank_import_load";

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
        let file_columns = source.detect(&conn)?;
        let by_name = req.format != Format::Csv || req.csv.header;
        let mapped = map_columns(
            &file_columns,
            &info.columns,
            req.columns.as_deref(),
            by_name,
        )?;
        let pk: Vec<String> = info.primary_key.as_ref().clone();
        if !pk.is_empty() {
            if req.dedup == DedupMode::InsertDuplicates {
                return Err(ApiError::bad_request_with(
                    format!(
                        "dedup_mode insert_duplicates cannot be used: the table's primary key {pk:?} forbids duplicate keys; use update_duplicates or fail_on_duplicates, or drop the primary key"
                    ),
                    json!({ "primary_key": pk }),
                ));
            }
            let absent: Vec<&String> = pk
                .iter()
                .filter(|p| !mapped.iter().any(|m| &m.column.name == *p))
                .collect();
            if !absent.is_empty() {
                return Err(ApiError::bad_request_with(
                    format!("the file must contain the primary-key columns {absent:?}"),
                    json!({ "missing_columns": absent }),
                ));
            }
        }
        let fresh = table_in(&alias, FRESH);
        let load = Load {
            target: table_in(&alias, "data"),
            create_fresh: create_like_sql(&fresh, &info.columns, &pk, |_| None),
            fresh,
            stage: table_in(&alias, STAGE),
            select: source.select_sql(&file_columns, &mapped),
            columns: mapped.iter().map(|m| quote_ident(&m.column.name)).collect(),
            pk: pk.iter().map(|p| quote_ident(p)).collect(),
            pk_names: pk.clone(),
            req,
        };
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
            Err(LoadError::Read(err)) => {
                Err(diagnose(&conn, &source, &file_columns, &mapped, &err))
            }
        }
    }
}

/// Why a load failed: the file's content, a repeated key, or anything else.
enum LoadError {
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
        LoadError::Api(ApiError::bad_request_with(
            format!(
                "the file has empty values in a NOT NULL column: {}",
                first_line(&text)
            ),
            json!({ "cause": first_line(&text) }),
        ))
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
        LoadError::Api(ApiError::internal(format!("duckdb: {text}")))
    }
}

/// One planned load: SQL pieces built from validated names only.
struct Load<'r> {
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

impl Load<'_> {
    /// Runs inside an open transaction. `staged` dedupes through a staging table first.
    fn run(&self, conn: &duckdb::Connection, staged: bool) -> Result<ImportOutcome, LoadError> {
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
    fn duplicates_error(&self, conn: &duckdb::Connection) -> ApiError {
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
        ApiError::conflict_with(
            format!(
                "the import would duplicate primary-key values of {:?}; nothing was imported",
                self.pk_names
            ),
            json!({ "duplicate_keys": keys, "primary_key": self.pk_names }),
        )
    }
}

/// Turns a reader failure into a report of the first problems: line, column, value, type.
fn diagnose(
    conn: &duckdb::Connection,
    source: &Source<'_>,
    file_columns: &[String],
    mapped: &[Mapped],
    err: &duckdb::Error,
) -> ApiError {
    let text = source.clean(&err.to_string());
    let mut problems = match source.format {
        Format::Csv => csv_problems(conn, source, file_columns, mapped),
        Format::Parquet => parquet_problems(conn, source, mapped),
        Format::Jsonl => {
            let structure = jsonl_problems(conn, source);
            if structure.is_empty() {
                jsonl_value_problems(conn, source, mapped)
            } else {
                structure
            }
        }
    };
    if problems.is_empty() {
        problems.extend(json_problem(&text));
    }
    if problems.is_empty() {
        problems.push(json!({ "error": first_line(&text) }));
    }
    problems_error(problems, "the file does not fit the table")
}

/// 400 listing the problems, the first one spelled out in the message.
fn problems_error(problems: Vec<Value>, what: &str) -> ApiError {
    let summary = problems.first().map(describe_problem).unwrap_or_default();
    ApiError::bad_request_with(
        format!("{what}; nothing was imported. First problem: {summary}"),
        json!({ "problems": problems }),
    )
}

/// Lines of a JSONL file that are not one JSON object each (invalid JSON stops the scan,
/// and DuckDB names that line).
fn jsonl_problems(conn: &duckdb::Connection, source: &Source<'_>) -> Vec<Value> {
    let sql = format!(
        "SELECT n, left(json::VARCHAR, 200) FROM (SELECT row_number() OVER () AS n, json \
         FROM read_json_objects({}, format='newline_delimited', compression={})) \
         WHERE json_type(json) <> 'OBJECT' LIMIT {MAX_PROBLEMS}",
        source.path,
        source.compression()
    );
    let scan = conn.prepare(&sql).and_then(|mut stmt| {
        stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()
    });
    match scan {
        Ok(rows) => rows
            .into_iter()
            .map(|(line, text)| {
                json!({ "line": line, "value": text, "error": "the line is not a JSON object" })
            })
            .collect(),
        Err(e) => json_problem(&source.clean(&e.to_string()))
            .into_iter()
            .collect(),
    }
}

fn describe_problem(p: &Value) -> String {
    let mut s = String::new();
    if let Some(line) = p.get("line").and_then(Value::as_u64) {
        s.push_str(&format!("line {line}"));
    } else if let Some(row) = p.get("row").and_then(Value::as_u64) {
        s.push_str(&format!("row {row}"));
    }
    if let Some(col) = p.get("column").and_then(Value::as_str) {
        s.push_str(&format!(", column {col:?}"));
    }
    if let Some(v) = p.get("value").and_then(Value::as_str) {
        s.push_str(&format!(", value {v:?}"));
    }
    if let Some(t) = p.get("expected_type").and_then(Value::as_str) {
        s.push_str(&format!(", expected {t}"));
    }
    if let Some(e) = p.get("error").and_then(Value::as_str) {
        s.push_str(&format!(": {e}"));
    }
    s
}

/// Re-reads the CSV with DuckDB's rejects tables, which record each faulty line.
fn csv_problems(
    conn: &duckdb::Connection,
    source: &Source<'_>,
    file_columns: &[String],
    mapped: &[Mapped],
) -> Vec<Value> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (table, scan) = (format!("rejects_{id}"), format!("rejects_scan_{id}"));
    let extra = format!(
        ", store_rejects=true, rejects_table='{table}', rejects_scan='{scan}', rejects_limit={MAX_PROBLEMS}"
    );
    let reader = source.reader_sql(file_columns, mapped, &extra);
    let mut problems = Vec::new();
    // count(COLUMNS(*)) reads every column: a plain count(*) would skip the casts.
    if conn
        .execute_batch(&format!("SELECT count(COLUMNS(*)) FROM {reader}"))
        .is_ok()
    {
        let sql = format!(
            "SELECT line, column_name, error_type, csv_line, error_message FROM temp.{table} ORDER BY line LIMIT {MAX_PROBLEMS}"
        );
        if let Ok(mut stmt) = conn.prepare(&sql) {
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            });
            if let Ok(rows) = rows {
                for (line, column, kind, csv_line, message) in rows.flatten() {
                    let message = message.unwrap_or_default();
                    let expected = column.as_ref().and_then(|c| {
                        mapped
                            .iter()
                            .find(|m| &m.file == c)
                            .map(|m| m.column.data_type.clone())
                    });
                    let mut p = json!({
                        "line": line,
                        "column": column,
                        "error_type": kind,
                        "error": message,
                        "csv_line": csv_line.map(|l| truncate(l.trim_end_matches(['\n', '\r']), 200)),
                    });
                    if kind.as_deref() == Some("CAST") {
                        p["value"] = json!(quoted_value(&message));
                        p["expected_type"] = json!(expected);
                    }
                    problems.push(p);
                }
            }
        }
    }
    let _ = conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS temp.{table}; DROP TABLE IF EXISTS temp.{scan};"
    ));
    problems
}

/// Parquet values that do not convert, with their row numbers (Parquet has no lines).
fn parquet_problems(
    conn: &duckdb::Connection,
    source: &Source<'_>,
    mapped: &[Mapped],
) -> Vec<Value> {
    unconvertible(conn, mapped, "row", |m, limit| {
        let col = quote_ident(&m.file);
        format!(
            "SELECT file_row_number + 1, {col}::VARCHAR FROM read_parquet({}, file_row_number=true) \
             WHERE {col} IS NOT NULL AND TRY_CAST({col} AS {}) IS NULL LIMIT {limit}",
            source.path, m.column.data_type,
        )
    })
}

/// JSONL values that do not convert to their column's type, with their lines.
fn jsonl_value_problems(
    conn: &duckdb::Connection,
    source: &Source<'_>,
    mapped: &[Mapped],
) -> Vec<Value> {
    unconvertible(conn, mapped, "line", |m, limit| {
        let key = sql_string(&format!("$.\"{}\"", m.file.replace('"', "\\\"")));
        format!(
            "SELECT n, v FROM (SELECT row_number() OVER () AS n, json_extract_string(json, {key}) AS v \
             FROM read_json_objects({}, format='newline_delimited', compression={})) \
             WHERE v IS NOT NULL AND TRY_CAST(v AS {}) IS NULL LIMIT {limit}",
            source.path,
            source.compression(),
            m.column.data_type,
        )
    })
}

/// Runs `query(column, limit)` — which selects (position, value) pairs of values that do not
/// convert — for each mapped column, up to `MAX_PROBLEMS` in all, ordered by position.
fn unconvertible(
    conn: &duckdb::Connection,
    mapped: &[Mapped],
    position: &str,
    query: impl Fn(&Mapped, usize) -> String,
) -> Vec<Value> {
    let mut problems = Vec::new();
    for m in mapped {
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
        let found = conn
            .prepare(&query(m, MAX_PROBLEMS - problems.len()))
            .and_then(|mut stmt| {
                stmt.query_map([], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()
            });
        for (at, value) in found.unwrap_or_default() {
            problems.push(json!({
                position: at,
                "column": m.column.name,
                "value": value.map(|v| truncate(&v, 200)),
                "expected_type": m.column.data_type,
                "error": "value does not convert to the column type",
            }));
        }
    }
    problems.sort_by_key(|p| p[position].as_i64());
    problems
}

/// DuckDB's JSON reader stops at the first bad line and names it in its message:
/// `… in line 3: Failed to cast value …`.
fn json_problem(text: &str) -> Option<Value> {
    let first = first_line(text);
    let (_, rest) = first.split_once("line ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let mut line = digits.parse::<u64>().ok()?;
    // DuckDB 2.0 counts one line too many in its malformed-JSON message (its cast errors
    // count right); verified against files with the bad line first, middle and last.
    if first.contains("Malformed JSON") {
        line = line.saturating_sub(1).max(1);
    }
    let detail = rest[digits.len()..].trim_start_matches([':', ' ']);
    let detail = if detail.is_empty() { first } else { detail };
    Some(json!({ "line": line, "error": truncate(detail, 300) }))
}

/// The value quoted in DuckDB's cast message: `Could not convert string "xx" to ...`.
fn quoted_value(message: &str) -> Option<String> {
    let start = message.find("string \"")? + "string \"".len();
    let rest = &message[start..];
    let end = rest.rfind("\" to")?;
    Some(truncate(&rest[..end], 200))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, nullable: bool) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            data_type: ty.into(),
            nullable,
            ordinal_position: 0,
            default: None,
        }
    }

    fn names(m: &[Mapped]) -> Vec<(&str, &str)> {
        m.iter()
            .map(|m| (m.file.as_str(), m.column.name.as_str()))
            .collect()
    }

    #[test]
    fn header_maps_by_name_in_any_order_and_case() {
        let table = [col("id", "BIGINT", false), col("name", "VARCHAR", true)];
        let file = ["NAME".to_string(), "Id".to_string()];
        let m = map_columns(&file, &table, None, true).unwrap();
        assert_eq!(names(&m), [("NAME", "name"), ("Id", "id")]);
    }

    #[test]
    fn unknown_and_missing_required_columns_are_refused() {
        let table = [col("id", "BIGINT", false), col("name", "VARCHAR", true)];
        let e = map_columns(&["id".into(), "x".into()], &table, None, true).unwrap_err();
        assert!(e.to_string().contains("\"x\""), "{e}");
        let e = map_columns(&["name".into()], &table, None, true).unwrap_err();
        assert!(e.to_string().contains("id"), "{e}");
    }

    #[test]
    fn only_selects_a_subset_and_positional_counts_must_match() {
        let table = [col("id", "BIGINT", false), col("name", "VARCHAR", true)];
        let file = ["id".to_string(), "junk".to_string()];
        let m = map_columns(&file, &table, Some(&["id".into()]), true).unwrap();
        assert_eq!(names(&m), [("id", "id")]);
        let e = map_columns(&["column0".into()], &table, None, false).unwrap_err();
        assert!(e.to_string().contains("1 columns but 2"), "{e}");
        let m = map_columns(&["column0".into(), "column1".into()], &table, None, false).unwrap();
        assert_eq!(names(&m), [("column0", "id"), ("column1", "name")]);
    }

    #[test]
    fn duplicate_header_names_are_refused() {
        let table = [col("id", "BIGINT", true)];
        let e = map_columns(&["id".into(), "ID".into()], &table, None, true).unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
    }

    #[test]
    fn cast_messages_yield_the_value() {
        let m = "Error when converting column \"amount\". Could not convert string \"x\"y\" to 'DECIMAL'";
        assert_eq!(quoted_value(m).as_deref(), Some("x\"y"));
        assert_eq!(quoted_value("other"), None);
    }

    #[test]
    fn json_errors_yield_the_line() {
        let p = json_problem("Invalid Input Error: JSON transform error in file \"f\", in line 3: Failed to cast value").unwrap();
        assert_eq!(p["line"], 3);
    }

    #[test]
    fn csv_options_are_single_characters() {
        let mut o = CsvOptions::default();
        assert!(o.validate().is_ok());
        o.delimiter = ";;".into();
        assert!(o.validate().is_err());
        o.delimiter = "\n".into();
        assert!(o.validate().is_err());
        o.delimiter = "\t".into();
        assert!(o.validate().is_ok());
    }
}
