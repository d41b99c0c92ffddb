//! Test fixtures shared by the filter module's unit tests: one sample table and shorthands that
//! parse, render and unpack 400s. Test-only; no production code may depend on it.

use serde_json::Value;

use super::{ColumnInfo, Filter};
use crate::error::ApiError;

pub(super) fn col(name: &str, data_type: &str) -> ColumnInfo {
    ColumnInfo {
        name: name.to_string(),
        data_type: data_type.to_string(),
        nullable: true,
        ordinal_position: 0,
        default: None,
    }
}

pub(super) fn cols() -> Vec<ColumnInfo> {
    vec![
        col("status", "VARCHAR"),
        col("created_at", "TIMESTAMP"),
        col("n", "INTEGER"),
        col("a", "INTEGER"),
        col("b", "INTEGER"),
        col("c", "INTEGER"),
        col("Name", "VARCHAR"),
        col("flag", "BOOLEAN"),
        col("My Col", "VARCHAR"),
        col("we\"ird", "VARCHAR"),
        col("order", "INTEGER"),
    ]
}

/// The SQL a filter that must be accepted renders to.
pub(super) fn sql(text: &str) -> String {
    Filter::parse(text)
        .unwrap_or_else(|e| panic!("{text:?} did not parse: {e}"))
        .to_sql(&cols())
        .unwrap_or_else(|e| panic!("{text:?} did not render: {e}"))
}

/// The message of an error that must be a 400.
pub(super) fn message(err: ApiError) -> String {
    assert_eq!(
        err.status(),
        axum::http::StatusCode::BAD_REQUEST,
        "not a 400: {err}"
    );
    err.to_string()
}

/// The 400 message for a filter that must be rejected (at parse or render time).
pub(super) fn rejected(text: &str) -> String {
    match Filter::parse(text).and_then(|f| f.to_sql(&cols())) {
        Ok(sql) => panic!("{text:?} was accepted as {sql}"),
        Err(e) => message(e),
    }
}

/// The details of an error that must be a 400.
pub(super) fn details(err: ApiError) -> Value {
    assert_eq!(
        err.status(),
        axum::http::StatusCode::BAD_REQUEST,
        "not a 400: {err}"
    );
    err.details().cloned().unwrap_or(Value::Null)
}
