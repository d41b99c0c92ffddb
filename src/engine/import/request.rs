//! What a client asks of an import and what it gets back: format, CSV dialect, dedup mode.
//! Parses and checks options only; it opens no file and runs no statement.

use serde_json::json;

use crate::engine::sql_string;
use crate::error::{ApiError, ApiResult, ErrorCode};

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
            other => Err(ApiError::new(
                ErrorCode::InvalidFormat,
                format!("unsupported import format {other:?}; use csv, parquet or jsonl"),
            )
            .with_details(json!({ "format": other, "supported": ["csv", "parquet", "jsonl"] }))),
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
    pub(super) fn reader_options(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
