//! Reading the first rows of a table as JSON objects, optionally a subset of columns.
//! One prepared statement per (table, column list), cached on the pooled connection.

use serde_json::{Map, Value};

use super::values::{to_json, ValueKind};
use super::{ColumnInfo, TableEngine, TableKey};
use crate::error::{ApiError, ApiResult};

pub struct Preview {
    pub columns: Vec<ColumnInfo>,
    pub rows: Vec<Map<String, Value>>,
    pub total_row_count: u64,
}

impl TableEngine {
    /// Up to `limit` rows in storage order. `only` selects columns by name (400 if unknown).
    /// Caller holds the table's shared lock.
    pub fn preview(
        &self,
        key: &TableKey,
        limit: u32,
        only: Option<&[String]>,
    ) -> ApiResult<Preview> {
        let info = self.describe(key)?;
        let columns: Vec<ColumnInfo> = match only {
            None => info.columns.as_ref().clone(),
            Some(names) => {
                let mut picked = Vec::with_capacity(names.len());
                for name in names {
                    let col = info
                        .columns
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(name))
                        .ok_or_else(|| {
                            ApiError::bad_request_with(
                                format!("column {name:?} does not exist in table {:?}", key.table.as_str()),
                                serde_json::json!({
                                    "column": name,
                                    "available": info.columns.iter().map(|c| &c.name).collect::<Vec<_>>(),
                                }),
                            )
                        })?;
                    picked.push(col.clone());
                }
                picked
            }
        };
        let kinds: Vec<ValueKind> = columns
            .iter()
            .map(|c| ValueKind::of(&c.data_type))
            .collect();
        let select: Vec<String> = columns
            .iter()
            .zip(&kinds)
            .map(|(c, k)| k.select_expr(&quote_ident(&c.name)))
            .collect();

        let conn = self.conn()?;
        let alias = self.ensure_attached(&conn, key)?;
        let mut rows = Vec::new();
        if !select.is_empty() {
            let sql = format!(
                "SELECT {} FROM \"{alias}\".main.data LIMIT ?",
                select.join(", ")
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut result = stmt.query([i64::from(limit)])?;
            while let Some(row) = result.next()? {
                let mut obj = Map::with_capacity(columns.len());
                for (i, (col, kind)) in columns.iter().zip(&kinds).enumerate() {
                    obj.insert(col.name.clone(), to_json(*kind, row.get_ref(i)?));
                }
                rows.push(obj);
            }
        }
        Ok(Preview {
            columns,
            rows,
            total_row_count: info.row_count,
        })
    }
}

/// Quotes a column name read back from the table file (it may predate our name rules).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
