//! Reading the first rows of a table as JSON objects (a subset of columns, filtered, ordered),
//! written straight to JSON text and bounded by bytes as well as rows.

use std::collections::HashMap;

use duckdb::types::Value;
use serde_json::Map;

use super::export::RowSelection;
use super::filter::refused_value;
use super::values::{to_json, ValueKind};
use super::{quote_ident, ColumnInfo, TableEngine, TableKey};
use crate::error::{ApiError, ApiResult};

pub struct Preview {
    pub columns: Vec<ColumnInfo>,
    /// The rows as JSON objects separated by commas (the inside of a JSON array).
    pub rows_json: Vec<u8>,
    pub row_count: usize,
    /// Rows were left out because the next one would have passed the byte budget.
    pub truncated: bool,
    pub total_row_count: u64,
}

/// Rows read from DuckDB at once aim at about this many bytes of JSON: DuckDB and the Arrow
/// batch hold a fetched batch twice over, so a batch must stay small whatever the row size.
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Rows read one at a time (or in a first small batch) before their size is known.
const FIRST_ROWS: usize = 4;
/// Rows up to this size (as JSON) are read a vector at a time: 2 048 of them are 16 MiB.
const SMALL_ROW: usize = 8 * 1024;
/// DuckDB's vector size: larger batches buy nothing.
const MAX_BATCH: usize = 2048;

impl TableEngine {
    /// Up to `limit` rows of the selection, in storage order unless it orders them, whose
    /// JSON takes at most `max_bytes`. Caller holds the table's shared lock.
    ///
    /// Two steps keep memory bounded by bytes: the row ids (and primary-key values) of the
    /// selection first, reading only the filter, order and key columns; then the rows. A
    /// query over a range of rows makes DuckDB read whole vectors of 2 048 rows however large
    /// each is; a primary-key lookup reads one row through the index. So rows are fetched one
    /// by one by key until they are known to be small, then a vector at a time (ADR 0021).
    pub fn preview(
        &self,
        key: &TableKey,
        limit: u32,
        max_bytes: u64,
        selection: &RowSelection,
    ) -> ApiResult<Preview> {
        let info = self.describe(key)?;
        let (columns, tail) = selection.resolve(key, &info.columns)?;
        let mut out = Preview {
            rows_json: Vec::new(),
            row_count: 0,
            truncated: false,
            total_row_count: info.row_count,
            columns: Vec::new(),
        };
        if columns.is_empty() {
            out.columns = columns;
            return Ok(out);
        }
        let kinds: Vec<ValueKind> = columns
            .iter()
            .map(|c| ValueKind::of(&c.data_type))
            .collect();
        let select = select_exprs(&columns, &kinds);
        let conn = self.conn()?;
        let alias = self.ensure_attached(&conn, key)?;
        let budget = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        let mut writer = RowWriter {
            columns: &columns,
            kinds: &kinds,
            out: &mut out,
            budget,
        };

        // One query when the table's rows are known to be small (then a vector of them is
        // too), or when a user column named `rowid` hides DuckDB's row id.
        let rowid_hidden = info
            .columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case("rowid"));
        let small = info.small_rows.unwrap_or_else(|| {
            let small = rows_are_small(&conn, &alias, &info.columns);
            self.remember_small_rows(key, small);
            small
        });
        if rowid_hidden || small {
            let relation = format!("\"{alias}\".main.data");
            read_in_one_query(&conn, &relation, &select, &tail, limit, &mut writer)?;
        } else {
            // A single-column primary key lets DuckDB fetch one row through its index without
            // reading its neighbours; any other fetch reads whole vectors of 2 048 rows.
            let pk = match info.primary_key.as_slice() {
                [one] => Some(quote_ident(one)),
                _ => None,
            };
            let key_expr = pk.as_deref().unwrap_or("NULL::BIGINT");
            // The limit stays a parameter so the statement cache serves every preview size;
            // a selection's own limit, if any, applies first.
            let ids_sql = format!(
                "SELECT r, k FROM (SELECT rowid AS r, {key_expr} AS k FROM \"{alias}\".main.data{tail}) LIMIT ?"
            );
            // The filter runs here: a value that does not convert to its column is the
            // client's error.
            let ids: Vec<(i64, Value)> = conn
                .prepare_cached(&ids_sql)
                .map_err(refused_value)?
                .query_map([i64::from(limit)], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(refused_value)?
                .collect::<Result<_, _>>()
                .map_err(refused_value)?;
            let mut next = 0;
            while next < ids.len() {
                let average = writer.out.rows_json.len() / writer.out.row_count.max(1);
                let fetched = match &pk {
                    // Row by row until the rows are known to be small.
                    Some(pk) if writer.out.row_count < FIRST_ROWS || average > SMALL_ROW => {
                        fetch_one(&conn, &alias, &select, pk, &ids[next].1, &mut writer)?
                    }
                    _ => {
                        let batch = if writer.out.row_count == 0 {
                            FIRST_ROWS
                        } else {
                            (BATCH_BYTES / average.max(1)).clamp(1, MAX_BATCH)
                        };
                        let part: Vec<i64> = ids[next..(next + batch).min(ids.len())]
                            .iter()
                            .map(|(id, _)| *id)
                            .collect();
                        fetch_batch(&conn, &alias, &select, &part, &mut writer)?
                    }
                };
                match fetched {
                    Some(n) => next += n,
                    None => break,
                }
            }
        }
        out.columns = columns;
        Ok(out)
    }
}

/// Up to `limit` rows of a selection from a relation the engine names (never client text),
/// as JSON objects bounded by `max_bytes`, in one query: for a snapshot's Parquet file, whose
/// reader fetches whole row groups whatever is asked, and for tables whose rows are small.
pub(super) fn preview_in_one_query(
    conn: &duckdb::Connection,
    relation: &str,
    columns: Vec<ColumnInfo>,
    tail: &str,
    limit: u32,
    max_bytes: u64,
    total_row_count: u64,
) -> ApiResult<Preview> {
    let mut out = Preview {
        rows_json: Vec::new(),
        row_count: 0,
        truncated: false,
        total_row_count,
        columns: Vec::new(),
    };
    if !columns.is_empty() {
        let kinds: Vec<ValueKind> = columns
            .iter()
            .map(|c| ValueKind::of(&c.data_type))
            .collect();
        let select = select_exprs(&columns, &kinds);
        let mut writer = RowWriter {
            columns: &columns,
            kinds: &kinds,
            out: &mut out,
            budget: usize::try_from(max_bytes).unwrap_or(usize::MAX),
        };
        read_in_one_query(conn, relation, &select, tail, limit, &mut writer)?;
    }
    out.columns = columns;
    Ok(out)
}

/// The SELECT expressions that read `columns` as their kinds need.
fn select_exprs(columns: &[ColumnInfo], kinds: &[ValueKind]) -> Vec<String> {
    columns
        .iter()
        .zip(kinds)
        .map(|(c, k)| k.select_expr(&quote_ident(&c.name)))
        .collect()
}

/// Reads the selection's rows from `relation` in one query until `limit` or the byte budget.
fn read_in_one_query(
    conn: &duckdb::Connection,
    relation: &str,
    select: &[String],
    tail: &str,
    limit: u32,
    writer: &mut RowWriter<'_>,
) -> ApiResult<()> {
    let sql = format!(
        "SELECT * FROM (SELECT {} FROM {relation}{tail}) LIMIT ?",
        select.join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(refused_value)?;
    let mut rows = stmt.query([i64::from(limit)]).map_err(refused_value)?;
    while let Some(row) = rows.next().map_err(refused_value)? {
        if !writer.push(row, 0)? {
            break;
        }
    }
    Ok(())
}

/// Whether every row of the table is known to be at most `SMALL_ROW` bytes, from storage
/// metadata only (no row is read): fixed-width columns count a few bytes each, and string
/// columns (VARCHAR, BLOB, JSON) their largest value as DuckDB's segment statistics record it.
/// Anything unknown answers no: nested types, segments without the figure, or updated
/// segments (whose statistics may not include the update).
fn rows_are_small(conn: &duckdb::Connection, alias: &str, columns: &[ColumnInfo]) -> bool {
    const FIXED_WIDTH: usize = 48;
    let mut strings = Vec::new();
    let mut fixed = 0;
    for column in columns {
        let ty = column.data_type.to_ascii_uppercase();
        if ty.contains('[')
            || ["STRUCT", "MAP", "UNION", "BIT", "VARIANT"]
                .iter()
                .any(|t| ty.starts_with(t))
        {
            return false;
        }
        if ty == "VARCHAR" || ty == "BLOB" || ty == "JSON" || ty.starts_with("VARCHAR(") {
            strings.push(column.name.as_str());
        } else {
            fixed += FIXED_WIDTH;
        }
    }
    if strings.is_empty() {
        return fixed <= SMALL_ROW;
    }
    // The alias is ours (`TableEngine::ensure_attached`); column names are compared here,
    // never put into SQL.
    let sql = format!(
        "SELECT column_name, \
                max(TRY_CAST(json_extract(stats::JSON, '$.max_string_length') AS BIGINT)), \
                count(*) FILTER (WHERE json_extract(stats::JSON, '$.max_string_length') IS NULL), \
                bool_or(has_updates) \
         FROM pragma_storage_info({}) WHERE segment_type <> 'VALIDITY' GROUP BY column_name",
        super::sql_string(&format!("{alias}.main.data"))
    );
    let Ok(mut stmt) = conn.prepare_cached(&sql) else {
        return false;
    };
    let Ok(found) = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<bool>>(3)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
    else {
        return false;
    };
    let mut total = fixed;
    for name in strings {
        match found.iter().find(|(column, ..)| column == name) {
            // No segment yet: the column holds no stored value.
            None => {}
            Some((_, Some(max), 0, updated)) if *updated != Some(true) && *max >= 0 => {
                total += usize::try_from(*max).unwrap_or(usize::MAX);
            }
            Some(_) => return false,
        }
    }
    total <= SMALL_ROW
}

/// Reads the row whose primary key is `key` (a value DuckDB gave, bound as a parameter) and
/// writes it: `Some(1)`, or `None` once the byte budget is reached.
fn fetch_one(
    conn: &duckdb::Connection,
    alias: &str,
    select: &[String],
    pk: &str,
    key: &Value,
    writer: &mut RowWriter<'_>,
) -> ApiResult<Option<usize>> {
    let sql = format!(
        "SELECT {} FROM \"{alias}\".main.data WHERE {pk} = ?",
        select.join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([key])?;
    if let Some(row) = rows.next()? {
        if !writer.push(row, 0)? {
            return Ok(None);
        }
    }
    Ok(Some(1))
}

/// Reads the rows with the ids in `part` and writes them in that order: how many were
/// taken, or `None` once the byte budget is reached.
fn fetch_batch(
    conn: &duckdb::Connection,
    alias: &str,
    select: &[String],
    part: &[i64],
    writer: &mut RowWriter<'_>,
) -> ApiResult<Option<usize>> {
    let (Some(&low), Some(&high)) = (part.iter().min(), part.iter().max()) else {
        return Ok(Some(0));
    };
    // Row ids are numbers this function was given by DuckDB, never client text. A range
    // for rows in storage order, a list for a filtered or ordered selection; either way
    // DuckDB reads the whole vectors they fall in, which is why only small rows come here.
    let contiguous = usize::try_from(high - low).is_ok_and(|span| span + 1 == part.len());
    let condition = if contiguous {
        format!("rowid BETWEEN {low} AND {high}")
    } else {
        let list: Vec<String> = part.iter().map(i64::to_string).collect();
        format!("rowid IN ({})", list.join(", "))
    };
    let sql = format!(
        "SELECT rowid, {} FROM \"{alias}\".main.data WHERE {condition}",
        select.join(", ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(duckdb::params![])?;
    if contiguous && part.windows(2).all(|w| w[0] < w[1]) {
        // Storage order: rows come back in the order asked, nothing to hold back.
        while let Some(row) = rows.next()? {
            if !writer.push(row, 1)? {
                return Ok(None);
            }
        }
        return Ok(Some(part.len()));
    }
    // Any other order: this batch's rows (a few MiB, see BATCH_BYTES) wait to be placed.
    let mut fetched: HashMap<i64, Vec<u8>> = HashMap::with_capacity(part.len());
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        fetched.insert(id, writer.render(row, 1)?);
    }
    for id in part {
        if let Some(json) = fetched.remove(id) {
            if !writer.append(&json) {
                return Ok(None);
            }
        }
    }
    Ok(Some(part.len()))
}

/// Writes rows as JSON objects into a preview until the byte budget is reached.
struct RowWriter<'a> {
    columns: &'a [ColumnInfo],
    kinds: &'a [ValueKind],
    out: &'a mut Preview,
    budget: usize,
}

impl RowWriter<'_> {
    /// One row as JSON text; its values start at column `first` of the result.
    fn render(&self, row: &duckdb::Row<'_>, first: usize) -> ApiResult<Vec<u8>> {
        let mut obj = Map::with_capacity(self.columns.len());
        for (i, (col, kind)) in self.columns.iter().zip(self.kinds).enumerate() {
            obj.insert(col.name.clone(), to_json(*kind, row.get_ref(first + i)?));
        }
        serde_json::to_vec(&obj)
            .map_err(|e| ApiError::internal(format!("writing a preview row as JSON: {e}")))
    }

    /// Writes a row; false (and `truncated`) when it would not fit.
    fn push(&mut self, row: &duckdb::Row<'_>, first: usize) -> ApiResult<bool> {
        let json = self.render(row, first)?;
        Ok(self.append(&json))
    }

    fn append(&mut self, json: &[u8]) -> bool {
        let separator = usize::from(self.out.row_count > 0);
        if self.out.rows_json.len() + separator + json.len() > self.budget {
            self.out.truncated = true;
            return false;
        }
        if separator == 1 {
            self.out.rows_json.push(b',');
        }
        self.out.rows_json.extend_from_slice(json);
        self.out.row_count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(conn: &duckdb::Connection) -> Vec<ColumnInfo> {
        let mut stmt = conn
            .prepare("SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'a' ORDER BY column_index")
            .unwrap();
        stmt.query_map([], |r| {
            Ok(ColumnInfo {
                name: r.get(0)?,
                data_type: r.get(1)?,
                nullable: true,
                ordinal_position: 0,
                default: None,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn small(setup: &str) -> bool {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch("ATTACH ':memory:' AS a").unwrap();
        conn.execute_batch(setup).unwrap();
        rows_are_small(&conn, "a", &columns(&conn))
    }

    #[test]
    fn rows_are_small_only_when_storage_statistics_say_so() {
        let create = "CREATE TABLE a.main.data (id BIGINT, s VARCHAR);";
        assert!(small(create), "an empty table");
        assert!(small(&format!(
            "{create} INSERT INTO a.main.data SELECT i, 'name ' || i FROM range(5000) r(i)"
        )));
        assert!(!small(&format!(
            "{create} INSERT INTO a.main.data SELECT i, repeat('x', 20000) FROM range(3) r(i)"
        )));
        // An update's value may be missing from the segment statistics: not trusted.
        assert!(!small(&format!(
            "{create} INSERT INTO a.main.data SELECT i, 'a' FROM range(10) r(i); \
             UPDATE a.main.data SET s = 'b' WHERE id = 1"
        )));
        assert!(!small(
            "CREATE TABLE a.main.data (id BIGINT, l INTEGER[]); INSERT INTO a.main.data VALUES (1, [1])"
        ));
    }
}
