//! Reading the first rows of a table as JSON objects: a subset of columns, filtered, ordered.
//! One prepared statement per (table, selection), cached on the pooled connection.

use serde_json::{Map, Value};

use super::export::RowSelection;
use super::filter::refused_value;
use super::values::{to_json, ValueKind};
use super::{quote_ident, ColumnInfo, TableEngine, TableKey};
use crate::error::ApiResult;

pub struct Preview {
    pub columns: Vec<ColumnInfo>,
    pub rows: Vec<Map<String, Value>>,
    pub total_row_count: u64,
}

impl TableEngine {
    /// Up to `limit` rows of the selection, in storage order unless it orders them.
    /// Caller holds the table's shared lock.
    pub fn preview(
        &self,
        key: &TableKey,
        limit: u32,
        selection: &RowSelection,
    ) -> ApiResult<Preview> {
        let info = self.describe(key)?;
        let (columns, tail) = selection.resolve(key, &info.columns)?;
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
            // The limit stays a parameter so the statement cache serves every preview size;
            // a selection's own limit, if any, applies first.
            let sql = format!(
                "SELECT * FROM (SELECT {} FROM \"{alias}\".main.data{tail}) LIMIT ?",
                select.join(", ")
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(refused_value)?;
            let mut result = stmt.query([i64::from(limit)]).map_err(refused_value)?;
            while let Some(row) = result.next().map_err(refused_value)? {
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
