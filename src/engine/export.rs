//! Selecting rows (columns, filter, order, limit) and writing them out with DuckDB's own
//! `COPY … TO` writers into a file (a new file of the project, or a snapshot to stream).

use std::path::Path;

use serde_json::json;

use super::filter::{refused_value, Filter, OrderBy};
use super::{quote_ident, sql_string, ColumnInfo, TableEngine, TableKey};
use crate::error::{ApiError, ApiResult, ErrorCode};

/// Which rows and columns a preview or export reads.
#[derive(Debug, Clone, Default)]
pub struct RowSelection {
    pub columns: Option<Vec<String>>,
    pub filter: Option<Filter>,
    pub order_by: Option<OrderBy>,
    pub limit: Option<u64>,
}

impl RowSelection {
    /// The selected columns and the SQL tail, both checked against the table's `columns`.
    pub fn resolve(
        &self,
        key: &TableKey,
        columns: &[ColumnInfo],
    ) -> ApiResult<(Vec<ColumnInfo>, String)> {
        Ok((self.pick(key, columns)?, self.tail_sql(columns)?))
    }

    /// The selected columns in the requested order (400 naming an unknown one).
    pub fn pick(&self, key: &TableKey, columns: &[ColumnInfo]) -> ApiResult<Vec<ColumnInfo>> {
        let Some(names) = &self.columns else {
            return Ok(columns.to_vec());
        };
        names
            .iter()
            .map(|name| {
                super::find_column(columns, name).cloned().ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidColumns,
                        format!("Column '{name}' does not exist in table '{}'", key.table),
                    )
                    .with_details(json!({
                        "column": name,
                        "available": columns.iter().map(|c| &c.name).collect::<Vec<_>>(),
                    }))
                })
            })
            .collect()
    }

    /// ` WHERE … ORDER BY … LIMIT n`, rendered from the parsed filter and order.
    pub fn tail_sql(&self, columns: &[ColumnInfo]) -> ApiResult<String> {
        let mut sql = String::new();
        if let Some(filter) = &self.filter {
            sql.push_str(" WHERE ");
            sql.push_str(&filter.to_sql(columns)?);
        }
        if let Some(order) = &self.order_by {
            sql.push_str(" ORDER BY ");
            sql.push_str(&order.to_sql(columns)?);
        }
        if let Some(limit) = self.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        Ok(sql)
    }
}

/// Export file formats and their compressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Snappy,
}

impl ExportFormat {
    pub fn parse(raw: &str) -> ApiResult<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "parquet" => Ok(Self::Parquet),
            other => Err(ApiError::new(
                ErrorCode::InvalidFormat,
                format!("unsupported export format {other:?}; use csv or parquet"),
            )
            .with_details(json!({ "format": other, "supported": ["csv", "parquet"] }))),
        }
    }

    /// Parses a compression valid for this format; `None` picks the format's default.
    pub fn compression(self, raw: Option<&str>) -> ApiResult<Compression> {
        let value = raw.map(str::to_ascii_lowercase);
        let allowed: &[&str] = match self {
            Self::Csv => &["none", "gzip"],
            Self::Parquet => &["none", "gzip", "zstd", "snappy"],
        };
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Ok(match self {
                Self::Csv => Compression::None,
                Self::Parquet => Compression::Snappy,
            });
        };
        if !allowed.contains(&value.as_str()) {
            return Err(ApiError::new(
                ErrorCode::InvalidCompression,
                format!("compression {value:?} is not available for {self:?} exports; use one of {allowed:?}"),
            )
            .with_details(json!({ "compression": value, "supported": allowed })));
        }
        Ok(match value.as_str() {
            "gzip" => Compression::Gzip,
            "zstd" => Compression::Zstd,
            "snappy" => Compression::Snappy,
            _ => Compression::None,
        })
    }

    /// The file name an export of `table` gets.
    pub fn file_name(self, table: &str, compression: Compression) -> String {
        match (self, compression) {
            (Self::Csv, Compression::Gzip) => format!("{table}.csv.gz"),
            (Self::Csv, _) => format!("{table}.csv"),
            (Self::Parquet, _) => format!("{table}.parquet"),
        }
    }

    pub fn content_type(self, compression: Compression) -> &'static str {
        match (self, compression) {
            (Self::Csv, Compression::Gzip) => "application/gzip",
            (Self::Csv, _) => "text/csv",
            (Self::Parquet, _) => "application/vnd.apache.parquet",
        }
    }

    /// Whether `GET …/export` may stream this: not gzip CSV, which HTTP compression of plain
    /// CSV does better (and whose file is the `POST …/export` path's job).
    pub fn streamable(self, compression: Compression) -> bool {
        !(self == Self::Csv && compression == Compression::Gzip)
    }

    fn copy_options(self, compression: Compression) -> String {
        let codec = match compression {
            Compression::None if self == Self::Parquet => "uncompressed",
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Snappy => "snappy",
        };
        match self {
            Self::Csv => {
                format!("FORMAT csv, HEADER true, COMPRESSION {codec}, USE_TMP_FILE false")
            }
            Self::Parquet => format!("FORMAT parquet, COMPRESSION {codec}, USE_TMP_FILE false"),
        }
    }
}

impl TableEngine {
    /// Writes the selected rows to `out` with `COPY … TO`; returns the row count.
    /// Caller holds the table's shared lock.
    pub fn export_to_file(
        &self,
        key: &TableKey,
        selection: &RowSelection,
        format: ExportFormat,
        compression: Compression,
        out: &Path,
    ) -> ApiResult<u64> {
        let info = self.describe(key)?;
        let (columns, tail) = selection.resolve(key, &info.columns)?;
        // `?columns=` with nothing in it selects every column, as an empty `columns` body
        // field does: a file cannot be written from an empty select list.
        let columns = if columns.is_empty() {
            info.columns.to_vec()
        } else {
            columns
        };
        let conn = self.conn()?;
        let alias = self.ensure_attached(&conn, key)?;
        let relation = format!("\"{alias}\".main.data");
        copy_out(&conn, &relation, &columns, &tail, format, compression, out)
    }
}

/// `COPY (SELECT <columns> FROM <relation><tail>) TO <out>`; returns the row count.
/// `relation` is named by the engine (an attached table, a snapshot file), never a client.
pub(super) fn copy_out(
    conn: &duckdb::Connection,
    relation: &str,
    columns: &[ColumnInfo],
    tail: &str,
    format: ExportFormat,
    compression: Compression,
    out: &Path,
) -> ApiResult<u64> {
    let sql = format!(
        "COPY (SELECT {} FROM {relation}{tail}) TO {} ({})",
        select_list(columns),
        sql_string(&out.to_string_lossy()),
        format.copy_options(compression)
    );
    let rows = conn.execute(&sql, []).map_err(refused_value)?;
    Ok(rows as u64)
}

fn select_list(columns: &[ColumnInfo]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_must_fit_the_format() {
        assert_eq!(
            ExportFormat::Csv.compression(None).unwrap(),
            Compression::None
        );
        assert_eq!(
            ExportFormat::Parquet.compression(Some("ZSTD")).unwrap(),
            Compression::Zstd
        );
        assert!(ExportFormat::Csv.compression(Some("zstd")).is_err());
        assert!(ExportFormat::Parquet.compression(Some("brotli")).is_err());
        assert_eq!(
            ExportFormat::Csv.file_name("t", Compression::Gzip),
            "t.csv.gz"
        );
    }
}
