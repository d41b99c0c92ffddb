//! Running client SQL in a workspace session: the sandbox check, the size limit, then each
//! statement in turn; the last one's columns and rows come back typed. Blocking; the caller
//! runs it on a blocking thread and interrupts it on timeout.

use duckdb::arrow::datatypes::DataType;
use duckdb::types::{TimeUnit, Value};
use serde_json::Value as Json;

use super::sandbox::{self, Statement};
use super::Session;
use crate::engine::first_line;
use crate::engine::values::{to_json, ValueKind};
use crate::error::{ApiError, ApiResult, ErrorCode};

/// The result of the last statement: column names and Arrow types, and rows (up to a limit).
#[derive(Debug, Default)]
pub struct ResultSet {
    pub columns: Vec<(String, DataType)>,
    pub rows: Vec<Vec<Value>>,
    /// More rows were there than the limit allowed.
    pub truncated: bool,
    /// The first word of the statement (`SELECT`, `CREATE`, …), for a wire command tag.
    pub command: String,
    /// Rows changed by an INSERT/UPDATE/DELETE (DuckDB's `Count` column), else the row count.
    pub affected: u64,
    /// How many parameters (`$1`, `?`) the statement takes.
    pub parameters: usize,
}

/// The size limit a write is checked against: the workspace's bytes on disk now and its cap.
pub struct SizeCheck<'a> {
    pub used: &'a dyn Fn() -> u64,
    pub limit_bytes: u64,
}

/// Checks `sql` and runs its statements; returns the last statement's result.
pub fn run(
    session: &Session,
    sql: &str,
    limit: usize,
    size: &SizeCheck<'_>,
) -> ApiResult<ResultSet> {
    let statements = sandbox::check(sql)?;
    let mut last = ResultSet::default();
    for s in &statements {
        last = run_one(session, s, limit, size)?;
    }
    Ok(last)
}

/// Runs one statement the sandbox has passed.
pub fn run_one(
    session: &Session,
    s: &Statement,
    limit: usize,
    size: &SizeCheck<'_>,
) -> ApiResult<ResultSet> {
    run_one_with(session, s, Vec::new(), limit, size)
}

/// Whether a statement only reads and can be wrapped as a subquery to learn its columns.
fn query_like(first: &str) -> bool {
    matches!(
        first,
        "SELECT" | "WITH" | "FROM" | "VALUES" | "TABLE" | "'" | "\""
    )
}

/// The columns a statement would return, without running it (a wire Describe). A query is
/// run as `SELECT * FROM (…) LIMIT 0` with its parameters NULL (or as bound); SHOW, DESCRIBE,
/// SUMMARIZE and EXPLAIN only read and are run; anything else reports no columns.
pub fn describe(session: &Session, s: &Statement, params: Vec<Value>) -> ApiResult<ResultSet> {
    let stmt = session.conn.prepare(&s.text).map_err(query_failed)?;
    let parameters = stmt.parameter_count();
    drop(stmt);
    let params = if params.len() == parameters {
        params
    } else {
        vec![Value::Null; parameters]
    };
    let probe = if query_like(&s.first) {
        Statement {
            text: format!("SELECT * FROM (\n{}\n) LIMIT 0", s.text),
            first: "SELECT".into(),
            words: Vec::new(),
        }
    } else if matches!(
        s.first.as_str(),
        "SHOW" | "DESCRIBE" | "SUMMARIZE" | "EXPLAIN"
    ) {
        s.clone()
    } else {
        return Ok(ResultSet {
            command: s.first.clone(),
            parameters,
            ..ResultSet::default()
        });
    };
    let unlimited = SizeCheck {
        used: &|| 0,
        limit_bytes: u64::MAX,
    };
    let mut out = run_one_with(session, &probe, params, 0, &unlimited)?;
    out.rows.clear();
    out.command = s.first.clone();
    out.parameters = parameters;
    Ok(out)
}

/// Runs one statement the sandbox has passed, with `params` bound to its `$n` parameters.
pub fn run_one_with(
    session: &Session,
    s: &Statement,
    params: Vec<Value>,
    limit: usize,
    size: &SizeCheck<'_>,
) -> ApiResult<ResultSet> {
    if s.grows() {
        let used = (size.used)();
        if used >= size.limit_bytes {
            return Err(ApiError::new(
                ErrorCode::WorkspaceFull,
                format!(
                    "the workspace holds {used} bytes, at or over its size limit of {} bytes; \
                     drop or delete data to write again",
                    size.limit_bytes
                ),
            ));
        }
    }
    let mut stmt = session.conn.prepare(&s.text).map_err(query_failed)?;
    let parameters = stmt.parameter_count();
    if params.len() != parameters {
        return Err(ApiError::new(
            ErrorCode::QueryFailed,
            format!(
                "the statement takes {parameters} parameters, {} were given",
                params.len()
            ),
        ));
    }
    let mut rows = stmt
        .query(duckdb::params_from_iter(params))
        .map_err(query_failed)?;
    let mut out = ResultSet {
        command: s.first.clone(),
        parameters,
        ..ResultSet::default()
    };
    let stmt_ref = rows
        .as_ref()
        .ok_or_else(|| ApiError::internal("no statement"))?;
    let count = stmt_ref.column_count();
    out.columns = (0..count)
        .map(|i| {
            let name = stmt_ref
                .column_name(i)
                .map_or_else(|_| format!("column{i}"), Clone::clone);
            (name, stmt_ref.column_type(i))
        })
        .collect();
    while let Some(row) = rows.next().map_err(query_failed)? {
        if out.rows.len() >= limit {
            out.truncated = true;
            break;
        }
        let mut values = Vec::with_capacity(count);
        for i in 0..count {
            values.push(row.get::<_, Value>(i).map_err(query_failed)?);
        }
        out.rows.push(values);
    }
    out.affected = match (
        out.command.as_str(),
        out.rows.first().and_then(|r| r.first()),
    ) {
        ("INSERT" | "UPDATE" | "DELETE", Some(Value::BigInt(n))) => (*n).max(0) as u64,
        _ => out.rows.len() as u64,
    };
    Ok(out)
}

/// A DuckDB refusal of client SQL: 400 `query_failed` with DuckDB's first line, or a clear
/// `sql_refused` when the lock-down stopped it.
pub fn query_failed(e: duckdb::Error) -> ApiError {
    let text = e.to_string();
    let line = first_line(&text).to_string();
    if line.contains("INTERRUPT") || line.contains("Interrupted") {
        return ApiError::new(ErrorCode::QueryTimeout, "the statement was interrupted");
    }
    let refused = line.contains("Permission Error")
        || line.contains("disabled by configuration")
        || line.contains("Cannot change configuration")
        || line.contains("read-only");
    let code = if refused {
        ErrorCode::SqlRefused
    } else {
        ErrorCode::QueryFailed
    };
    ApiError::new(code, line)
}

/// JSON for one value, as previews render it (exact decimals, ISO-8601 times, NULL as null).
pub fn value_json(data_type: &DataType, value: &Value) -> Json {
    use duckdb::types::ValueRef;
    let kind = match data_type {
        DataType::Timestamp(_, tz) => ValueKind::Timestamp { tz: tz.is_some() },
        _ => ValueKind::Direct,
    };
    let direct = |v: ValueRef<'_>| to_json(kind, v);
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Text(t) => Json::String(t.clone()),
        Value::List(items) | Value::Array(items) => {
            let inner = match data_type {
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                    f.data_type().clone()
                }
                _ => DataType::Utf8,
            };
            Json::Array(items.iter().map(|v| value_json(&inner, v)).collect())
        }
        Value::Struct(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), value_json(&DataType::Utf8, v)))
                .collect(),
        ),
        Value::Map(entries) => Json::Array(
            entries
                .iter()
                .map(|(k, v)| {
                    serde_json::json!({
                        "key": value_json(&DataType::Utf8, k),
                        "value": value_json(&DataType::Utf8, v)
                    })
                })
                .collect(),
        ),
        Value::Union(v) => value_json(&DataType::Utf8, v),
        Value::Enum(s) => Json::String(s.clone()),
        other => match text_of(other) {
            Some(t) => Json::String(t),
            None => direct(ValueRef::from(other)),
        },
    }
}

/// The text of values JSON (and the wire's text format) has no native form for.
pub fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Time64(unit, v) => {
            let micros = unit_to_micros(*unit, *v);
            let secs = micros.div_euclid(1_000_000);
            let frac = micros.rem_euclid(1_000_000);
            let t = format!(
                "{:02}:{:02}:{:02}",
                secs / 3600,
                (secs / 60) % 60,
                secs % 60
            );
            Some(if frac > 0 {
                format!("{t}.{frac:06}")
            } else {
                t
            })
        }
        Value::Interval {
            months,
            days,
            nanos,
        } => Some(format!("{months} mons {days} days {} us", nanos / 1000)),
        Value::Blob(b) | Value::Geometry(b) => Some(format!("\\x{}", hex::encode(b))),
        _ => None,
    }
}

fn unit_to_micros(unit: TimeUnit, v: i64) -> i64 {
    match unit {
        TimeUnit::Second => v * 1_000_000,
        TimeUnit::Millisecond => v * 1000,
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v / 1000,
    }
}

/// A column type as SQL names it (`INTEGER`, `DECIMAL(18,2)`, `TIMESTAMP`, …).
pub fn type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Interval(_) => "INTERVAL".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BLOB".into(),
        DataType::Null => "NULL".into(),
        other => format!("{other}"),
    }
}
