//! Explaining why a file did not load: CSV rejects tables, JSONL line problems, Parquet
//! TRY_CAST scans. Reports the first problems only; it never touches the table imported into.

use serde_json::{json, Value};

use super::columns::Mapped;
use super::request::Format;
use super::source::Source;
use crate::engine::{first_line, quote_ident, sql_string};
use crate::error::{ApiError, ErrorCode};

/// Most problems listed in a bad-rows report.
pub(super) const MAX_PROBLEMS: usize = 10;

/// Why a JSONL file's columns could not be detected: its lines that are not JSON objects,
/// or DuckDB's own error when every line is one.
pub(super) fn not_jsonl(conn: &duckdb::Connection, source: &Source<'_>, err: ApiError) -> ApiError {
    let problems = jsonl_problems(conn, source);
    if problems.is_empty() {
        err
    } else {
        problems_error(
            ErrorCode::UnreadableFile,
            problems,
            "the file is not JSONL (one JSON object per line)",
        )
    }
}

/// Turns a reader failure into a report of the first problems: line, column, value, type.
pub(super) fn read_failure(
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
    problems_error(
        ErrorCode::InvalidData,
        problems,
        "the file does not fit the table",
    )
}

/// 400 listing the problems, the first one spelled out in the message.
fn problems_error(code: ErrorCode, problems: Vec<Value>, what: &str) -> ApiError {
    let summary = problems.first().map(describe_problem).unwrap_or_default();
    ApiError::new(
        code,
        format!("{what}; nothing was imported. First problem: {summary}"),
    )
    .with_details(json!({ "problems": problems }))
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
}
