//! Table data tests, one module per operation; this module holds what they share (also with
//! jobs and table access): setup, uploads, imports, row snapshots and DuckDB readers.

mod bad_input;
mod export;
mod filters;
mod formats;
mod from_file;
mod import;
mod mapping;
mod profile;
mod rows;
mod schema;

use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// Table routes of project 1, bucket b (seed path style).
pub(crate) const T: &str = "/projects/1/buckets/b/tables";

/// The same tables on the reference (branch-first) path style.
pub(crate) const BT: &str = "/projects/1/branches/default/buckets/b/tables";

/// A server with project 1 and bucket b.
pub(crate) async fn setup() -> (TestApp, String) {
    setup_configured(|_| {}).await
}

/// A server whose test config `change` adjusts, with project 1 and bucket b.
pub(crate) async fn setup_configured(
    change: impl FnOnce(&mut duckbank::config::Config),
) -> (TestApp, String) {
    let app = spawn_app_configured(change).await;
    let key = app.create_project("1").await;
    app.create_bucket("1", &key, "b").await;
    (app, key)
}

/// A job queue that holds one job and one worker: the second submit in a row is refused.
pub(crate) fn one_job_at_a_time(c: &mut duckbank::config::Config) {
    c.job_queue_capacity = 1;
    c.job_workers = 1;
}

/// Uploads raw bytes as a project file and returns its id.
pub(crate) async fn upload_to(
    app: &TestApp,
    project: &str,
    key: &str,
    name: &str,
    data: &[u8],
) -> String {
    let res = app
        .client
        .post(app.url(&format!(
            "/projects/{project}/files/content?name={}",
            enc(name)
        )))
        .bearer_auth(key)
        .body(data.to_vec())
        .send()
        .await
        .expect("upload request");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    assert_eq!(status, 201, "upload failed: {text}");
    let body: Value = serde_json::from_str(&text).expect("upload JSON");
    assert_eq!(body["size_bytes"], data.len(), "{body}");
    body["id"].as_str().expect("file id").to_string()
}

pub(crate) async fn upload(app: &TestApp, key: &str, name: &str, data: &[u8]) -> String {
    upload_to(app, "1", key, name, data).await
}

/// Downloads a project-1 file and returns status and bytes.
pub(crate) async fn download_with(
    app: &TestApp,
    key: &str,
    id: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>) {
    let mut req = app
        .client
        .get(app.url(&format!("/projects/1/files/{id}/download")))
        .bearer_auth(key);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("download request");
    let status = res.status().as_u16();
    (status, res.bytes().await.expect("body").to_vec())
}

pub(crate) async fn download(app: &TestApp, key: &str, id: &str) -> Vec<u8> {
    let (status, bytes) = download_with(app, key, id, &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    bytes
}

pub(crate) async fn import(app: &TestApp, key: &str, table: &str, body: Value) -> Reply {
    app.post(&format!("{T}/{table}/import/file"), key, body)
        .await
}

/// Uploads `csv` and imports it with the given import options (default CSV options).
pub(crate) async fn load_csv(
    app: &TestApp,
    key: &str,
    table: &str,
    csv: &str,
    import_options: Value,
) -> Reply {
    let id = upload(app, key, "data.csv", csv.as_bytes()).await;
    import(
        app,
        key,
        table,
        json!({"file_id": id, "format": "csv", "import_options": import_options}),
    )
    .await
}

/// Full load that must succeed.
pub(crate) async fn seed(app: &TestApp, key: &str, table: &str, csv: &str) -> Value {
    load_csv(app, key, table, csv, json!({"incremental": false}))
        .await
        .expect(200)
}

fn incremental(mode: &str) -> Value {
    json!({"incremental": true, "dedup_mode": mode})
}

/// Incremental load of `csv` into table t that updates the rows whose key repeats.
pub(crate) async fn upsert(app: &TestApp, key: &str, csv: &str) -> Reply {
    load_csv(app, key, "t", csv, incremental("update_duplicates")).await
}

/// Incremental load of `csv` into table t that refuses keys already present or repeated.
pub(crate) async fn load_unique(app: &TestApp, key: &str, csv: &str) -> Reply {
    load_csv(app, key, "t", csv, incremental("fail_on_duplicates")).await
}

/// A preview cell as text: numbers keep their exact JSON text, NULL is "NULL".
/// The keys a refused import or primary-key change names in `details.duplicate_keys`.
pub(crate) fn duplicate_keys(err: &Value) -> &Vec<Value> {
    err["details"]["duplicate_keys"]
        .as_array()
        .unwrap_or_else(|| panic!("duplicate_keys missing: {err}"))
}

pub(crate) fn cell(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every row of a table (via preview), each as "a|b|c" in column order, sorted.
pub(crate) async fn table_rows(app: &TestApp, key: &str, table: &str) -> Vec<String> {
    let body = app
        .get(&format!("{T}/{table}/preview?limit=10000"), key)
        .await
        .expect(200);
    let mut out: Vec<String> = body["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("rows missing: {body}"))
        .iter()
        .map(row_text)
        .collect();
    out.sort();
    out
}

fn row_text(row: &Value) -> String {
    row.as_object()
        .unwrap_or_else(|| panic!("row is not an object: {row}"))
        .values()
        .map(cell)
        .collect::<Vec<_>>()
        .join("|")
}

/// Expected rows, sorted like `table_rows`.
pub(crate) fn rows(expected: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// "id,v" CSV for ids in `range` with values `{prefix}{id}`.
pub(crate) fn kv_csv(range: std::ops::RangeInclusive<u64>, prefix: &str) -> String {
    let mut s = String::from("id,v\n");
    for i in range {
        s.push_str(&format!("{i},{prefix}{i}\n"));
    }
    s
}

pub(crate) fn kv_rows(range: std::ops::RangeInclusive<u64>, prefix: &str) -> Vec<String> {
    range.map(|i| format!("{i}|{prefix}{i}")).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The table's schema (columns, primary key, row count) and all its rows: what "unchanged"
/// means after a failed change.
pub(crate) async fn snapshot(app: &TestApp, key: &str, table: &str) -> (Value, Vec<String>) {
    let t = app.get(&format!("{T}/{table}"), key).await.expect(200);
    (
        json!({"columns": t["columns"], "primary_key": t["primary_key"], "row_count": t["row_count"]}),
        table_rows(app, key, table).await,
    )
}

/// "name TYPE" for every column of a table JSON, in order.
fn column_types(table: &Value) -> Vec<String> {
    table["columns"]
        .as_array()
        .unwrap_or_else(|| panic!("columns missing: {table}"))
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["name"].as_str().unwrap(),
                c["type"].as_str().unwrap()
            )
        })
        .collect()
}

/// Runs SQL on a throwaway in-memory DuckDB (to build inputs or read exports).
pub(crate) fn duck_exec(sql: &str) {
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Rows of `SELECT cols FROM source` as "a|b|c" (NULL as "NULL"), sorted.
pub(crate) fn duck_rows(source: &str, cols: &[&str]) -> Vec<String> {
    let list: Vec<String> = cols
        .iter()
        .map(|c| format!("coalesce(CAST({c} AS VARCHAR), 'NULL')"))
        .collect();
    let sql = format!("SELECT concat_ws('|', {}) FROM {source}", list.join(", "));
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    out.sort();
    out
}

/// "column TYPE" of a DuckDB source (e.g. `read_parquet('x')`).
fn duck_types(source: &str) -> Vec<String> {
    let sql =
        format!("SELECT column_name || ' ' || column_type FROM (DESCRIBE SELECT * FROM {source})");
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let mut stmt = conn.prepare(&sql).unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn sql_path(p: &Path) -> String {
    p.to_str().unwrap().replace('\'', "''")
}

/// Message of an error body, lower-cased.
fn message(err: &Value) -> String {
    err["message"].as_str().unwrap_or_default().to_lowercase()
}

/// Sends a DELETE with a JSON body.
async fn delete_json(app: &TestApp, key: &str, path: &str, body: Value) -> Reply {
    app.call(Method::DELETE, path, Some(key), Some(body)).await
}

/// Ids of a preview (with the given query string), in the answered order.
async fn preview_ids(app: &TestApp, key: &str, table: &str, query: &str) -> Vec<i64> {
    let body = app
        .get(&format!("{T}/{table}/preview?{query}"), key)
        .await
        .expect(200);
    body["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("rows missing: {body}"))
        .iter()
        .map(|r| {
            r["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("id missing: {r}"))
        })
        .collect()
}

/// A server with project 1, bucket b and an empty "id,v" table `t` (keyed on id when `pk`).
pub(crate) async fn setup_kv_table(pk: bool) -> (TestApp, String) {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", pk).await;
    (app, key)
}

/// A server with project 1, bucket b and an empty "id,name,amount" table `t`.
async fn setup_three_col_table(pk: bool) -> (TestApp, String) {
    let (app, key) = setup().await;
    three_col_table(&app, &key, pk).await;
    (app, key)
}

/// A server with project 1, bucket b and the people table `p` holding `PEOPLE_CSV`.
async fn setup_people() -> (TestApp, String) {
    let (app, key) = setup().await;
    people(&app, &key).await;
    (app, key)
}

/// An "id BIGINT, v VARCHAR" table in bucket b of project 1.
pub(crate) async fn kv_table(app: &TestApp, key: &str, name: &str, pk: bool) {
    let pk: &[&str] = if pk { &["id"] } else { &[] };
    app.create_table(
        "1",
        key,
        "b",
        name,
        &[("id", "BIGINT"), ("v", "VARCHAR")],
        pk,
    )
    .await;
}

async fn three_col_table(app: &TestApp, key: &str, pk: bool) {
    let pk: &[&str] = if pk { &["id"] } else { &[] };
    app.create_table_t(
        key,
        &[
            ("id", "BIGINT"),
            ("name", "VARCHAR"),
            ("amount", "DECIMAL(12,2)"),
        ],
        pk,
    )
    .await;
}

const PEOPLE_CSV: &str = "id,name,age,status\n\
1,ann,25,active\n\
2,bob,31,deleted\n\
3,cid,40,a\n\
4,dan,35,b\n\
5,eve,19,deleted\n\
6,fay,,active\n";

async fn people(app: &TestApp, key: &str) {
    app.create_table(
        "1",
        key,
        "b",
        "p",
        &[
            ("id", "BIGINT"),
            ("name", "VARCHAR"),
            ("age", "INTEGER"),
            ("status", "VARCHAR"),
        ],
        &["id"],
    )
    .await;
    seed(app, key, "p", PEOPLE_CSV).await;
}

async fn ids(app: &TestApp, key: &str) -> Vec<i64> {
    preview_ids(app, key, "p", "order_by=id&limit=1000").await
}

/// Exports a table (`table` is its route) to a file that must be created; returns the answer
/// and the file's bytes.
async fn export_file(app: &TestApp, key: &str, table: &str, body: Value) -> (Value, Vec<u8>) {
    let out = app
        .post(&format!("{table}/export"), key, body)
        .await
        .expect(200);
    let bytes = download(app, key, out["file_id"].as_str().expect("file_id")).await;
    (out, bytes)
}
