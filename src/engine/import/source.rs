//! The file an import reads: format and gzip detection, its column names, and the reader SQL.
//! Reads the header only; loading rows and explaining bad ones belong elsewhere.

use std::path::Path;

use serde_json::json;

use super::columns::Mapped;
use super::request::{CsvOptions, Format};
use crate::engine::{first_line, quote_ident, sql_string};
use crate::error::{ApiError, ApiResult, ErrorCode, IoContext};

/// A file as DuckDB reads it: path, format and compression.
pub struct Source<'a> {
    /// The path as an SQL string literal.
    pub(super) path: String,
    /// The path as is, to keep it out of messages (clients never see server paths).
    raw_path: String,
    pub(super) format: Format,
    gzip: bool,
    csv: &'a CsvOptions,
}

impl<'a> Source<'a> {
    /// Describes `path`; gzip is recognised by its magic bytes, since blobs have no extension.
    pub fn open(path: &Path, format: Format, csv: &'a CsvOptions) -> ApiResult<Self> {
        let mut magic = [0u8; 2];
        let len = {
            use std::io::Read;
            let mut f = std::fs::File::open(path).at_path("opening import file", path)?;
            f.read(&mut magic).at_path("reading import file", path)?
        };
        let gzip = len == 2 && magic == [0x1f, 0x8b];
        if gzip && format == Format::Parquet {
            return Err(ApiError::new(
                ErrorCode::UnreadableFile,
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

    pub(super) fn compression(&self) -> &'static str {
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
        ApiError::new(
            ErrorCode::UnreadableFile,
            format!(
                "the file cannot be read as {name} with these options: {}",
                first_line(&text)
            ),
        )
        .with_details(json!({ "format": name.to_ascii_lowercase(), "cause": cause }))
    }

    /// A DuckDB message with the server-side path replaced.
    pub(super) fn clean(&self, text: &str) -> String {
        text.replace(&self.raw_path, "<file>")
    }

    /// Column names of the file, in file order. A CSV header is its first line, read as
    /// such: DuckDB's dialect sniffer would take the widest line for the header, and it
    /// gives up on some broken files (an unterminated quote) before naming any column. The
    /// load then reports the broken lines themselves, as the caller does for a JSONL file
    /// whose columns cannot be detected.
    pub(super) fn detect(&self, conn: &duckdb::Connection) -> ApiResult<Vec<String>> {
        if self.format == Format::Csv {
            return self.csv_first_line(conn).map_err(|e| {
                if e.code() == ErrorCode::InternalError {
                    self.unreadable_text(&e.to_string())
                } else {
                    e
                }
            });
        }
        let columns = self.detect_typed(conn, false)?;
        Ok(columns.into_iter().map(|(name, _)| name).collect())
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
            return Err(ApiError::new(
                ErrorCode::UnreadableFile,
                "the file is empty",
            ));
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
    pub(super) fn select_sql(&self, file_columns: &[String], mapped: &[Mapped]) -> String {
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
    pub(super) fn reader_sql(
        &self,
        file_columns: &[String],
        mapped: &[Mapped],
        extra: &str,
    ) -> String {
        let type_of = |file: &str| {
            mapped
                .iter()
                .find(|m| m.file == file)
                .map(|m| m.column.data_type.as_str())
        };
        match self.format {
            Format::Csv => {
                // Every file column must be listed (CSV is positional); the ones not imported
                // stay text so they cannot fail a cast.
                let columns = columns_arg(
                    file_columns
                        .iter()
                        .map(|f| (f.as_str(), type_of(f).unwrap_or("VARCHAR"))),
                );
                format!(
                    "read_csv({}, {}, auto_detect=false, compression={}, columns={{{columns}}}{extra})",
                    self.path,
                    self.csv.reader_options(),
                    self.compression(),
                )
            }
            Format::Parquet => format!("read_parquet({}{extra})", self.path),
            Format::Jsonl => {
                let columns = columns_arg(
                    mapped
                        .iter()
                        .map(|m| (m.file.as_str(), m.column.data_type.as_str())),
                );
                format!(
                    "read_json({}, format='newline_delimited', records=true, compression={}, columns={{{columns}}}{extra})",
                    self.path,
                    self.compression(),
                )
            }
        }
    }
}

/// The body of a reader's `columns={…}` argument: `'name': 'TYPE'` per column, in order.
fn columns_arg<'a>(columns: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    columns
        .map(|(name, ty)| format!("{}: {}", sql_string(name), sql_string(ty)))
        .collect::<Vec<_>>()
        .join(", ")
}
