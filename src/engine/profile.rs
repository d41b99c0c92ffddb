//! Column statistics of a table in one pass over its rows: a single aggregate query computes,
//! per column, counts, distinct estimate, min/max, mean/stddev/quantiles and frequent values.

use serde::Serialize;
use serde_json::Value;

use super::{quote_ident, ColumnInfo, TableEngine, TableKey};
use crate::error::ApiResult;

/// How many frequent values are listed per text column.
const TOP_VALUES: usize = 5;

/// One column's statistics, in the reference's `ColumnStatistics` shape (as DuckDB's
/// SUMMARIZE names them) plus `null_count` and `top_values`.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnProfile {
    pub column_name: String,
    pub column_type: String,
    pub min: Option<String>,
    pub max: Option<String>,
    pub approx_unique: Option<i64>,
    pub avg: Option<f64>,
    pub std: Option<f64>,
    pub q25: Option<Value>,
    pub q50: Option<Value>,
    pub q75: Option<Value>,
    /// Non-NULL values.
    pub count: Option<i64>,
    pub null_percentage: Option<f64>,
    pub null_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_values: Option<Vec<String>>,
}

pub struct Profile {
    pub row_count: u64,
    pub columns: Vec<ColumnProfile>,
}

/// What can be computed for a column, by its type.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Numbers: min/max, mean, stddev, quantiles.
    Number,
    /// Dates and times: min/max and quantiles.
    Temporal,
    /// Text: min/max and frequent values.
    Text,
    /// Other scalars (BOOLEAN, UUID, BLOB, …): min/max.
    Ordered,
    /// Lists and nested values: counts only.
    Nested,
}

impl Kind {
    fn of(data_type: &str) -> Self {
        let t = data_type.to_ascii_uppercase();
        if t.ends_with(']') || t.starts_with("STRUCT") || t.starts_with("MAP") || t == "JSON" {
            return Self::Nested;
        }
        let numbers = [
            "TINYINT",
            "SMALLINT",
            "INTEGER",
            "BIGINT",
            "HUGEINT",
            "UTINYINT",
            "USMALLINT",
            "UINTEGER",
            "UBIGINT",
            "UHUGEINT",
            "FLOAT",
            "DOUBLE",
        ];
        if numbers.contains(&t.as_str()) || t.starts_with("DECIMAL") {
            Self::Number
        } else if t.starts_with("TIMESTAMP") || t == "DATE" || t == "TIME" {
            Self::Temporal
        } else if t == "VARCHAR" {
            Self::Text
        } else {
            Self::Ordered
        }
    }
}

/// Aggregates computed per column, in this order; NULL where the kind has none.
const PER_COLUMN: usize = 10;

/// The column's aggregates; those its kind lacks are typed NULLs (an untyped NULL has a type
/// the client library cannot read).
fn aggregates(c: &ColumnInfo) -> [String; PER_COLUMN] {
    let q = quote_ident(&c.name);
    let kind = Kind::of(&c.data_type);
    let ordered = kind != Kind::Nested;
    let number = kind == Kind::Number;
    let quantiles = matches!(kind, Kind::Number | Kind::Temporal);
    let pick = |has: bool, expr: String, null: &str| if has { expr } else { null.to_string() };
    let quantile = |p: &str| format!("approx_quantile({q}, {p})::VARCHAR");
    [
        format!("count({q})"),
        pick(
            ordered,
            format!("approx_count_distinct({q})"),
            "NULL::BIGINT",
        ),
        pick(ordered, format!("min({q})::VARCHAR"), "NULL::VARCHAR"),
        pick(ordered, format!("max({q})::VARCHAR"), "NULL::VARCHAR"),
        pick(number, format!("avg({q})::DOUBLE"), "NULL::DOUBLE"),
        pick(number, format!("stddev_samp({q})::DOUBLE"), "NULL::DOUBLE"),
        pick(quantiles, quantile("0.25"), "NULL::VARCHAR"),
        pick(quantiles, quantile("0.5"), "NULL::VARCHAR"),
        pick(quantiles, quantile("0.75"), "NULL::VARCHAR"),
        pick(
            kind == Kind::Text,
            format!("approx_top_k({q}, {TOP_VALUES})::VARCHAR[]"),
            "NULL::VARCHAR[]",
        ),
    ]
}

impl TableEngine {
    /// Profiles every column in one scan. Caller holds the table's shared lock.
    pub fn profile(&self, key: &TableKey) -> ApiResult<Profile> {
        let info = self.describe(key)?;
        let conn = self.conn()?;
        let alias = self.ensure_attached(&conn, key)?;
        let mut select = vec!["count(*)".to_string()];
        for c in info.columns.iter() {
            select.extend(aggregates(c));
        }
        let sql = format!("SELECT {} FROM \"{alias}\".main.data", select.join(", "));
        let columns = conn.query_row(&sql, [], |r| {
            let rows: i64 = r.get(0)?;
            info.columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let at = 1 + i * PER_COLUMN;
                    let count: i64 = r.get(at)?;
                    let nulls = rows - count;
                    Ok(ColumnProfile {
                        column_name: c.name.clone(),
                        column_type: c.data_type.clone(),
                        approx_unique: r.get(at + 1)?,
                        min: r.get(at + 2)?,
                        max: r.get(at + 3)?,
                        avg: r.get(at + 4)?,
                        std: r.get(at + 5)?,
                        q25: number_or_text(r.get(at + 6)?),
                        q50: number_or_text(r.get(at + 7)?),
                        q75: number_or_text(r.get(at + 8)?),
                        count: Some(count),
                        null_percentage: Some(if rows > 0 {
                            (nulls as f64 * 10_000.0 / rows as f64).round() / 100.0
                        } else {
                            0.0
                        }),
                        null_count: Some(nulls),
                        top_values: if Kind::of(&c.data_type) == Kind::Text {
                            list_of_text(r.get(at + 9)?)
                        } else {
                            None
                        },
                    })
                })
                .collect::<Result<Vec<_>, duckdb::Error>>()
        })?;
        Ok(Profile {
            row_count: info.row_count,
            columns,
        })
    }
}

/// Quantiles come back as text; numbers become JSON numbers, others (dates) stay text.
fn number_or_text(v: Option<String>) -> Option<Value> {
    let v = v?;
    Some(match v.parse::<f64>() {
        Ok(n) if n.is_finite() => serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::String(v)),
        _ => Value::String(v),
    })
}

fn list_of_text(v: duckdb::types::Value) -> Option<Vec<String>> {
    match v {
        duckdb::types::Value::List(items) => Some(
            items
                .into_iter()
                .filter_map(|i| match i {
                    duckdb::types::Value::Text(s) => Some(s),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_column_type() {
        assert!(Kind::of("DECIMAL(12,2)") == Kind::Number);
        assert!(Kind::of("BIGINT") == Kind::Number);
        assert!(Kind::of("TIMESTAMP WITH TIME ZONE") == Kind::Temporal);
        assert!(Kind::of("VARCHAR") == Kind::Text);
        assert!(Kind::of("BOOLEAN") == Kind::Ordered);
        assert!(Kind::of("INTEGER[]") == Kind::Nested);
    }

    #[test]
    fn quantiles_become_numbers_when_they_are() {
        assert_eq!(
            number_or_text(Some("2.5".into())),
            Some(serde_json::json!(2.5))
        );
        assert_eq!(
            number_or_text(Some("2024-01-01".into())),
            Some(Value::String("2024-01-01".into()))
        );
    }
}
