//! Column statistics of a table: DuckDB's SUMMARIZE (one pass over the data) plus one
//! aggregate pass for exact non-null counts and the most frequent values of text columns.

use serde::Serialize;
use serde_json::Value;

use super::{quote_ident, TableEngine, TableKey};
use crate::error::ApiResult;

/// How many frequent values are listed per text column.
const TOP_VALUES: usize = 5;

/// One column's statistics, in the reference's `ColumnStatistics` shape plus `null_count`
/// and `top_values`.
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

impl TableEngine {
    /// Profiles every column. Caller holds the table's shared lock.
    pub fn profile(&self, key: &TableKey) -> ApiResult<Profile> {
        let info = self.describe(key)?;
        let conn = self.conn()?;
        let alias = self.ensure_attached(&conn, key)?;
        let target = format!("\"{alias}\".main.data");
        let mut columns = Vec::with_capacity(info.columns.len());
        {
            let mut stmt = conn.prepare(&format!(
                "SELECT column_name, column_type, min, max, approx_unique, \
                 TRY_CAST(avg AS DOUBLE), TRY_CAST(std AS DOUBLE), q25, q50, q75, count, \
                 CAST(null_percentage AS DOUBLE) FROM (SUMMARIZE SELECT * FROM {target})"
            ))?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                columns.push(ColumnProfile {
                    column_name: r.get(0)?,
                    column_type: r.get(1)?,
                    min: r.get(2)?,
                    max: r.get(3)?,
                    approx_unique: r.get(4)?,
                    avg: r.get(5)?,
                    std: r.get(6)?,
                    q25: number_or_text(r.get(7)?),
                    q50: number_or_text(r.get(8)?),
                    q75: number_or_text(r.get(9)?),
                    // Filled in exactly below: SUMMARIZE's own count includes NULLs.
                    count: None,
                    null_percentage: r.get(11)?,
                    null_count: None,
                    top_values: None,
                });
            }
        }
        let text: Vec<usize> = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.column_type == "VARCHAR")
            .map(|(i, _)| i)
            .collect();
        let mut aggs: Vec<String> = columns
            .iter()
            .map(|c| format!("count({})", quote_ident(&c.column_name)))
            .collect();
        aggs.extend(text.iter().map(|&i| {
            format!(
                "approx_top_k({}, {TOP_VALUES})::VARCHAR[]",
                quote_ident(&columns[i].column_name)
            )
        }));
        if !columns.is_empty() {
            let n = columns.len();
            let sql = format!("SELECT {} FROM {target}", aggs.join(", "));
            let (counts, tops): (Vec<i64>, Vec<Value>) = conn.query_row(&sql, [], |r| {
                let counts = (0..n).map(|i| r.get(i)).collect::<Result<Vec<i64>, _>>()?;
                let tops = (0..text.len())
                    .map(|i| r.get::<_, duckdb::types::Value>(n + i).map(list_to_json))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((counts, tops))
            })?;
            for (c, count) in columns.iter_mut().zip(counts) {
                c.count = Some(count);
                c.null_count = Some(info.row_count as i64 - count);
            }
            for (&i, top) in text.iter().zip(tops) {
                columns[i].top_values = Some(
                    top.as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                );
            }
        }
        Ok(Profile {
            row_count: info.row_count,
            columns,
        })
    }
}

/// SUMMARIZE reports quantiles as text; numbers become JSON numbers, others stay text.
fn number_or_text(v: Option<String>) -> Option<Value> {
    let v = v?;
    Some(match v.parse::<f64>() {
        Ok(n) if n.is_finite() => serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::String(v)),
        _ => Value::String(v),
    })
}

fn list_to_json(v: duckdb::types::Value) -> Value {
    match v {
        duckdb::types::Value::List(items) => Value::Array(
            items
                .into_iter()
                .map(|i| match i {
                    duckdb::types::Value::Text(s) => Value::String(s),
                    _ => Value::Null,
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}
