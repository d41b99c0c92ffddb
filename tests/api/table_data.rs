//! Table data over HTTP: imports (CSV, gzip, JSONL, Parquet; full and incremental with every
//! dedup mode), create-from-file, exports (file and streaming), schema changes, row deletes,
//! filters (and injection attempts), preview filters and profiles. Every failing change
//! asserts that the table is exactly as it was before.

use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

// ---------------------------------------------------------------------------------------
// Helpers (also used by jobs.rs)
// ---------------------------------------------------------------------------------------

/// Table routes of project 1, bucket b (seed path style).
pub(crate) const T: &str = "/projects/1/buckets/b/tables";
/// The same tables on the reference (branch-first) path style.
pub(crate) const BT: &str = "/projects/1/branches/default/buckets/b/tables";

/// A server with project 1 and bucket b.
pub(crate) async fn setup() -> (TestApp, String) {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    app.create_bucket("1", &key, "b").await;
    (app, key)
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

/// A preview cell as text: numbers keep their exact JSON text, NULL is "NULL".
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

async fn put(app: &TestApp, key: &str, path: &str, body: Value) -> Reply {
    app.call(Method::PUT, path, Some(key), Some(body)).await
}

/// GET returning status, content type and the body text (for streaming exports).
async fn get_text(app: &TestApp, key: &str, path: &str) -> (u16, String, String) {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ctype, res.text().await.unwrap_or_default())
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

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

const TRICKY_CSV: &str = "id,name,amount,ts,flag,note\n\
1,\"Smith, John\",12.5,2024-01-02 03:04:05,true,plain\n\
2,\"He said \"\"hi\"\"\",0.1,2024-02-29 23:59:59,false,\"line1\nline2\"\n\
3,Žluťoučký kůň 🐎,,2024-12-31 00:00:00,,\n";

async fn tricky_table(app: &TestApp, key: &str) {
    app.create_table(
        "1",
        key,
        "b",
        "t",
        &[
            ("id", "BIGINT"),
            ("name", "VARCHAR"),
            ("amount", "DECIMAL(12,2)"),
            ("ts", "TIMESTAMP"),
            ("flag", "BOOLEAN"),
            ("note", "VARCHAR"),
        ],
        &["id"],
    )
    .await;
}

#[tokio::test]
async fn a_tricky_csv_round_trips_through_import_and_csv_export_byte_for_byte() {
    let (app, key) = setup().await;
    tricky_table(&app, &key).await;
    let res = seed(&app, &key, "t", TRICKY_CSV).await;
    assert_eq!(res["imported_rows"], 3, "{res}");
    assert_eq!(res["table_rows_after"], 3, "{res}");
    assert!(res["table_size_bytes"].as_u64().unwrap() > 0, "{res}");
    assert_eq!(res["warnings"], json!([]), "{res}");
    assert_eq!(res["validate_only"], false, "{res}");
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&[
            "1|Smith, John|12.50|2024-01-02T03:04:05|true|plain",
            "2|He said \"hi\"|0.10|2024-02-29T23:59:59|false|line1\nline2",
            "3|Žluťoučký kůň 🐎|NULL|2024-12-31T00:00:00|NULL|NULL",
        ])
    );
    assert_eq!(
        app.get(&format!("{T}/t"), &key).await.expect(200)["row_count"],
        3
    );

    let expected = "id,name,amount,ts,flag,note\n\
1,\"Smith, John\",12.50,2024-01-02 03:04:05,true,plain\n\
2,\"He said \"\"hi\"\"\",0.10,2024-02-29 23:59:59,false,\"line1\nline2\"\n\
3,Žluťoučký kůň 🐎,,2024-12-31 00:00:00,,\n";
    let out = app
        .post(
            &format!("{T}/t/export"),
            &key,
            json!({"format": "csv", "order_by": "id"}),
        )
        .await
        .expect(200);
    assert_eq!(out["rows_exported"], 3, "{out}");
    assert_eq!(out["file_size_bytes"], expected.len(), "{out}");
    assert!(out["file_path"].is_string(), "{out}");
    let id = out["file_id"].as_str().unwrap();
    let bytes = download(&app, &key, id).await;
    assert_eq!(String::from_utf8_lossy(&bytes), expected);

    // The export is an ordinary file: listed in the Files API and downloadable by range.
    let file = app
        .get(&format!("/projects/1/files/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(file["size_bytes"], expected.len(), "{file}");
    let (status, part) = download_with(&app, &key, id, &[("Range", "bytes=0-6")]).await;
    assert_eq!(status, 206);
    assert_eq!(part, b"id,name");

    // Exporting the same rows again through the re-imported copy gives the same bytes.
    let again = upload(&app, &key, "again.csv", &bytes).await;
    import(&app, &key, "t", json!({"file_id": again}))
        .await
        .expect(200);
    let out = app
        .post(
            &format!("{T}/t/export"),
            &key,
            json!({"format": "csv", "order_by": "id"}),
        )
        .await
        .expect(200);
    let bytes = download(&app, &key, out["file_id"].as_str().unwrap()).await;
    assert_eq!(String::from_utf8_lossy(&bytes), expected);
}

#[tokio::test]
async fn a_parquet_export_holds_the_same_rows_and_types_as_the_table() {
    let (app, key) = setup().await;
    tricky_table(&app, &key).await;
    seed(&app, &key, "t", TRICKY_CSV).await;
    let out = app
        .post(&format!("{T}/t/export"), &key, json!({"format": "parquet"}))
        .await
        .expect(200);
    assert_eq!(out["rows_exported"], 3, "{out}");
    let bytes = download(&app, &key, out["file_id"].as_str().unwrap()).await;
    assert_eq!(out["file_size_bytes"], bytes.len(), "{out}");
    assert_eq!(&bytes[..4], b"PAR1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet");
    std::fs::write(&path, &bytes).unwrap();
    let source = format!("read_parquet('{}')", sql_path(&path));
    assert_eq!(
        duck_types(&source),
        [
            "id BIGINT",
            "name VARCHAR",
            "amount DECIMAL(12,2)",
            "ts TIMESTAMP",
            "flag BOOLEAN",
            "note VARCHAR"
        ]
    );
    assert_eq!(
        duck_rows(&source, &["id", "name", "amount", "ts", "flag", "note"]),
        rows(&[
            "1|Smith, John|12.50|2024-01-02 03:04:05|true|plain",
            "2|He said \"hi\"|0.10|2024-02-29 23:59:59|false|line1\nline2",
            "3|Žluťoučký kůň 🐎|NULL|2024-12-31 00:00:00|NULL|NULL",
        ])
    );
}

#[tokio::test]
async fn exports_honour_columns_filter_order_limit_and_compression() {
    let (app, key) = setup().await;
    app.create_table(
        "1",
        &key,
        "b",
        "t",
        &[
            ("id", "BIGINT"),
            ("name", "VARCHAR"),
            ("amount", "DECIMAL(12,2)"),
        ],
        &["id"],
    )
    .await;
    seed(
        &app,
        &key,
        "t",
        "id,name,amount\n1,a,1\n2,b,2\n3,c,3\n4,d,4\n5,e,5\n",
    )
    .await;
    let out = app
        .post(
            &format!("{T}/t/export"),
            &key,
            json!({"format": "csv", "columns": ["id", "name"], "where_filter": "amount > 1",
                   "order_by": "id DESC", "limit": 3}),
        )
        .await
        .expect(200);
    assert_eq!(out["rows_exported"], 3, "{out}");
    let bytes = download(&app, &key, out["file_id"].as_str().unwrap()).await;
    assert_eq!(String::from_utf8_lossy(&bytes), "id,name\n5,e\n4,d\n3,c\n");

    // Gzip CSV.
    let out = app
        .post(
            &format!("{T}/t/export"),
            &key,
            json!({"format": "csv", "compression": "gzip", "order_by": "id"}),
        )
        .await
        .expect(200);
    assert_eq!(out["rows_exported"], 5, "{out}");
    let bytes = download(&app, &key, out["file_id"].as_str().unwrap()).await;
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv.gz");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        duck_rows(
            &format!(
                "read_csv('{}', header = true, all_varchar = true)",
                sql_path(&path)
            ),
            &["id", "name", "amount"]
        ),
        rows(&["1|a|1.00", "2|b|2.00", "3|c|3.00", "4|d|4.00", "5|e|5.00"])
    );

    // Every Parquet codec is readable.
    for codec in ["gzip", "zstd", "snappy", "none"] {
        let out = app
            .post(
                &format!("{T}/t/export"),
                &key,
                json!({"format": "parquet", "compression": codec, "where_filter": "id <= 2"}),
            )
            .await
            .expect(200);
        assert_eq!(out["rows_exported"], 2, "{codec}: {out}");
        let bytes = download(&app, &key, out["file_id"].as_str().unwrap()).await;
        let path = dir.path().join(format!("out-{codec}.parquet"));
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            duck_rows(
                &format!("read_parquet('{}')", sql_path(&path)),
                &["id", "name", "amount"]
            ),
            rows(&["1|a|1.00", "2|b|2.00"]),
            "{codec}"
        );
    }

    // Invalid options.
    let before = app.get("/projects/1/files", &key).await.expect(200)["total"].clone();
    for bad in [
        json!({"format": "csv", "compression": "zstd"}),
        json!({"format": "csv", "compression": "snappy"}),
        json!({"format": "parquet", "compression": "bogus"}),
        json!({"format": "xml"}),
        json!({"format": "csv", "columns": ["id", "nope"]}),
        json!({"format": "csv", "order_by": "nope"}),
        json!({"format": "csv", "where_filter": "nope = 1"}),
    ] {
        let err = app
            .post(&format!("{T}/t/export"), &key, bad.clone())
            .await
            .expect_error(400);
        if bad.get("columns").is_some() || bad["order_by"] == "nope" {
            assert!(message(&err).contains("nope"), "{bad}: {err}");
        }
    }
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        before,
        "failed exports leave no files"
    );
    app.post("/projects/1/buckets/b/tables/nope/export", &key, json!({}))
        .await
        .expect_error(404);
}

#[tokio::test]
async fn a_streaming_export_answers_csv_with_columns_filter_order_and_limit() {
    let (app, key) = setup().await;
    app.create_table(
        "1",
        &key,
        "b",
        "t",
        &[
            ("id", "BIGINT"),
            ("name", "VARCHAR"),
            ("amount", "DECIMAL(12,2)"),
        ],
        &["id"],
    )
    .await;
    seed(
        &app,
        &key,
        "t",
        "id,name,amount\n1,a,1\n2,\"b, c\",2\n3,c,3\n4,d,\n5,e,5\n",
    )
    .await;
    let (status, ctype, body) =
        get_text(&app, &key, &format!("{T}/t/export?format=csv&order_by=id")).await;
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    assert_eq!(
        body,
        "id,name,amount\n1,a,1.00\n2,\"b, c\",2.00\n3,c,3.00\n4,d,\n5,e,5.00\n"
    );
    let (status, _, body) = get_text(
        &app,
        &key,
        &format!(
            "{T}/t/export?format=csv&columns=id,name&where_filter={}&order_by={}&limit=2",
            enc("amount >= 2"),
            enc("id DESC")
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "id,name\n5,e\n3,c\n");
    // The reference path style streams too.
    let (status, _, body) = get_text(
        &app,
        &key,
        &format!(
            "{BT}/t/export?format=csv&columns=id&where_filter={}",
            enc("amount IS NULL")
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "id\n4\n");
    let (status, _, body) =
        get_text(&app, &key, &format!("{T}/t/export?format=csv&columns=nope")).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = get_text(
        &app,
        &key,
        &format!(
            "{T}/t/export?format=csv&where_filter={}",
            enc("1=1; DROP TABLE x")
        ),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

// ---------------------------------------------------------------------------------------
// Full and incremental loads, dedup modes
// ---------------------------------------------------------------------------------------

async fn kv_table(app: &TestApp, key: &str, name: &str, pk: bool) {
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

#[tokio::test]
async fn a_full_load_replaces_every_row() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", true).await;
    seed(&app, &key, "t", &kv_csv(1..=10, "old")).await;
    let res = seed(&app, &key, "t", "id,v\n100,a\n101,b\n").await;
    assert_eq!(res["imported_rows"], 2, "{res}");
    assert_eq!(res["table_rows_after"], 2, "{res}");
    assert_eq!(table_rows(&app, &key, "t").await, rows(&["100|a", "101|b"]));
}

#[tokio::test]
async fn an_incremental_upsert_updates_overlapping_keys_and_appends_new_ones() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", true).await;
    let res = seed(&app, &key, "t", &kv_csv(1..=10, "old")).await;
    assert_eq!(res["imported_rows"], 10, "{res}");
    assert_eq!(res["table_rows_after"], 10, "{res}");
    let res = load_csv(
        &app,
        &key,
        "t",
        &kv_csv(6..=15, "new"),
        incremental("update_duplicates"),
    )
    .await
    .expect(200);
    assert_eq!(res["imported_rows"], 10, "{res}");
    assert_eq!(res["table_rows_after"], 15, "{res}");
    let mut expected = kv_rows(1..=5, "old");
    expected.extend(kv_rows(6..=15, "new"));
    assert_eq!(table_rows(&app, &key, "t").await, sorted(expected));
    assert_eq!(
        app.get(&format!("{T}/t"), &key).await.expect(200)["row_count"],
        15
    );
}

#[tokio::test]
async fn keys_repeated_within_a_file_keep_the_last_occurrence_with_a_warning() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", true).await;
    seed(&app, &key, "t", "id,v\n1,a0\n2,b0\n").await;
    let res = load_csv(
        &app,
        &key,
        "t",
        "id,v\n1,x\n3,y\n1,z\n3,w\n4,q\n",
        incremental("update_duplicates"),
    )
    .await
    .expect(200);
    assert_eq!(res["table_rows_after"], 4, "{res}");
    let warnings = res["warnings"].as_array().expect("warnings list");
    let text = res["warnings"].to_string().to_lowercase();
    assert!(
        !warnings.is_empty() && (text.contains("repeat") || text.contains("duplicate")),
        "repeated keys in the file are reported: {res}"
    );
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|z", "2|b0", "3|w", "4|q"])
    );
}

#[tokio::test]
async fn fail_on_duplicates_is_409_listing_the_keys_and_changes_nothing() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", true).await;
    seed(&app, &key, "t", &kv_csv(1..=30, "v")).await;
    let before = snapshot(&app, &key, "t").await;

    // A key already in the table.
    let err = load_csv(
        &app,
        &key,
        "t",
        "id,v\n31,new\n3,dup\n",
        incremental("fail_on_duplicates"),
    )
    .await
    .expect_error(409);
    let dups = err["details"]["duplicate_keys"]
        .as_array()
        .unwrap_or_else(|| panic!("duplicate_keys missing: {err}"));
    assert_eq!(dups.len(), 1, "{err}");
    assert!(dups[0].to_string().contains('3'), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // A key repeated within the file (not in the table).
    let err = load_csv(
        &app,
        &key,
        "t",
        "id,v\n40,a\n41,b\n40,c\n",
        incremental("fail_on_duplicates"),
    )
    .await
    .expect_error(409);
    let dups = err["details"]["duplicate_keys"].as_array().unwrap();
    assert_eq!(dups.len(), 1, "{err}");
    assert!(dups[0].to_string().contains("40"), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // At most ten keys are listed.
    let err = load_csv(
        &app,
        &key,
        "t",
        &kv_csv(1..=30, "again"),
        incremental("fail_on_duplicates"),
    )
    .await
    .expect_error(409);
    assert_eq!(
        err["details"]["duplicate_keys"].as_array().unwrap().len(),
        10,
        "{err}"
    );
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // Without duplicates the mode appends.
    let res = load_csv(
        &app,
        &key,
        "t",
        "id,v\n31,x\n32,y\n",
        incremental("fail_on_duplicates"),
    )
    .await
    .expect(200);
    assert_eq!(res["table_rows_after"], 32, "{res}");
}

#[tokio::test]
async fn insert_duplicates_on_a_primary_key_table_is_400() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", true).await;
    seed(&app, &key, "t", "id,v\n1,a\n2,b\n").await;
    let before = snapshot(&app, &key, "t").await;
    for csv in ["id,v\n2,dup\n3,c\n", "id,v\n3,c\n"] {
        let err = load_csv(&app, &key, "t", csv, incremental("insert_duplicates"))
            .await
            .expect_error(400);
        assert!(message(&err).contains("primary key"), "{err}");
        assert_eq!(snapshot(&app, &key, "t").await, before);
    }
}

#[tokio::test]
async fn without_a_primary_key_every_dedup_mode_appends() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", false).await;
    seed(&app, &key, "t", "id,v\n1,a\n2,b\n").await;
    let mut count = 2;
    for mode in [
        "update_duplicates",
        "insert_duplicates",
        "fail_on_duplicates",
    ] {
        let res = load_csv(&app, &key, "t", "id,v\n2,b\n3,c\n", incremental(mode))
            .await
            .expect(200);
        count += 2;
        assert_eq!(res["imported_rows"], 2, "{mode}: {res}");
        assert_eq!(res["table_rows_after"], count, "{mode}: {res}");
    }
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a", "2|b", "2|b", "2|b", "2|b", "3|c", "3|c", "3|c"])
    );
}

// ---------------------------------------------------------------------------------------
// Column mapping and CSV options
// ---------------------------------------------------------------------------------------

async fn three_col_table(app: &TestApp, key: &str, pk: bool) {
    let pk: &[&str] = if pk { &["id"] } else { &[] };
    app.create_table(
        "1",
        key,
        "b",
        "t",
        &[
            ("id", "BIGINT"),
            ("name", "VARCHAR"),
            ("amount", "DECIMAL(12,2)"),
        ],
        pk,
    )
    .await;
}

#[tokio::test]
async fn the_csv_header_maps_columns_by_name_in_any_order_and_case() {
    let (app, key) = setup().await;
    three_col_table(&app, &key, true).await;
    let res = seed(&app, &key, "t", "AMOUNT,Name,id\n1.5,a,1\n2,b,2\n").await;
    assert_eq!(res["imported_rows"], 2, "{res}");
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a|1.50", "2|b|2.00"])
    );
}

#[tokio::test]
async fn missing_columns_get_their_default_or_null() {
    let (app, key) = setup().await;
    app.post(
        T,
        &key,
        json!({"name": "t", "primary_key": ["id"], "columns": [
            {"name": "id", "type": "BIGINT", "nullable": false},
            {"name": "name", "type": "VARCHAR"},
            {"name": "amount", "type": "DECIMAL(12,2)", "default": "0"},
            {"name": "status", "type": "VARCHAR", "nullable": false, "default": "'new'"}
        ]}),
    )
    .await
    .expect(201);
    seed(&app, &key, "t", "id\n1\n2\n").await;
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|NULL|0.00|new", "2|NULL|0.00|new"])
    );
}

#[tokio::test]
async fn unknown_file_columns_and_missing_required_columns_are_400() {
    let (app, key) = setup().await;
    app.post(
        T,
        &key,
        json!({"name": "t", "primary_key": ["id"], "columns": [
            {"name": "id", "type": "BIGINT", "nullable": false},
            {"name": "req", "type": "VARCHAR", "nullable": false},
            {"name": "opt", "type": "VARCHAR"}
        ]}),
    )
    .await
    .expect(201);
    seed(&app, &key, "t", "id,req,opt\n1,r,o\n").await;
    let before = snapshot(&app, &key, "t").await;

    let err = load_csv(&app, &key, "t", "id,req,bogus\n2,r,x\n", json!({}))
        .await
        .expect_error(400);
    assert_eq!(err["details"]["unknown_columns"], json!(["bogus"]), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    let err = load_csv(&app, &key, "t", "id,opt\n2,o\n", json!({}))
        .await
        .expect_error(400);
    assert_eq!(err["details"]["missing_columns"], json!(["req"]), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    let err = load_csv(
        &app,
        &key,
        "t",
        "id,opt\n2,o\n",
        incremental("update_duplicates"),
    )
    .await
    .expect_error(400);
    assert_eq!(err["details"]["missing_columns"], json!(["req"]), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
}

#[tokio::test]
async fn import_options_columns_import_only_the_listed_file_columns() {
    let (app, key) = setup().await;
    three_col_table(&app, &key, true).await;
    let res = load_csv(
        &app,
        &key,
        "t",
        "id,name,amount,junk\n1,a,9.99,zzz\n2,b,8,yyy\n",
        json!({"incremental": false, "columns": ["id", "name"]}),
    )
    .await
    .expect(200);
    assert_eq!(res["imported_rows"], 2, "{res}");
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a|NULL", "2|b|NULL"])
    );
}

#[tokio::test]
async fn without_a_header_columns_are_positional_and_must_match_in_count() {
    let (app, key) = setup().await;
    three_col_table(&app, &key, false).await;
    let headerless = |csv: &str, columns: Value| {
        let csv = csv.to_string();
        let app = &app;
        let key = &key;
        async move {
            let id = upload(app, key, "h.csv", csv.as_bytes()).await;
            import(
                app,
                key,
                "t",
                json!({"file_id": id, "csv_options": {"header": false},
                       "import_options": {"incremental": true, "columns": columns}}),
            )
            .await
        }
    };
    let res = headerless("1,a,1.5\n2,b,2\n", Value::Null)
        .await
        .expect(200);
    assert_eq!(res["imported_rows"], 2, "{res}");
    let before = snapshot(&app, &key, "t").await;
    assert_eq!(before.1, rows(&["1|a|1.50", "2|b|2.00"]));

    headerless("3,c\n", Value::Null).await.expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);
    headerless("3,c,1,extra\n", Value::Null)
        .await
        .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    headerless("5,e,1\n6,f,2,extra\n7,g,3\n", Value::Null)
        .await
        .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    headerless("3,c\n", json!(["id", "name"])).await.expect(200);
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a|1.50", "2|b|2.00", "3|c|NULL"])
    );
    let before = snapshot(&app, &key, "t").await;
    headerless("4,d,9\n", json!(["id", "name"]))
        .await
        .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);
}

#[tokio::test]
async fn csv_options_set_delimiter_quote_escape_and_null_string() {
    let (app, key) = setup().await;
    three_col_table(&app, &key, true).await;
    let id = upload(
        &app,
        &key,
        "semi.csv",
        b"id;name;amount\n1;\"a;b\";NA\n2;\"x\\\"y\";3.5\n",
    )
    .await;
    import(
        &app,
        &key,
        "t",
        json!({"file_id": id, "format": "csv",
               "csv_options": {"delimiter": ";", "quote": "\"", "escape": "\\", "header": true, "null_string": "NA"}}),
    )
    .await
    .expect(200);
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a;b|NULL", "2|x\"y|3.50"])
    );
    let id = upload(&app, &key, "single.csv", b"id|name|amount\n3|'q|r'|1\n").await;
    import(
        &app,
        &key,
        "t",
        json!({"file_id": id, "csv_options": {"delimiter": "|", "quote": "'"},
               "import_options": {"incremental": true, "dedup_mode": "update_duplicates"}}),
    )
    .await
    .expect(200);
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a;b|NULL", "2|x\"y|3.50", "3|q|r|1.00"])
    );
}

#[tokio::test]
async fn a_csv_with_a_byte_order_mark_and_crlf_line_ends_imports_cleanly() {
    let (app, key) = setup().await;
    three_col_table(&app, &key, true).await;
    let id = upload(
        &app,
        &key,
        "win.csv",
        "\u{feff}id,name,amount\r\n1,\"a\r\nb\",1.5\r\n2,ü,2\r\n".as_bytes(),
    )
    .await;
    let res = import(&app, &key, "t", json!({"file_id": id}))
        .await
        .expect(200);
    assert_eq!(res["imported_rows"], 2, "{res}");
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a\r\nb|1.50", "2|ü|2.00"])
    );
}

// ---------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------

async fn typed_table(app: &TestApp, key: &str) -> (Value, Vec<String>) {
    app.create_table(
        "1",
        key,
        "b",
        "t",
        &[
            ("id", "BIGINT"),
            ("amount", "DECIMAL(12,2)"),
            ("day", "DATE"),
        ],
        &["id"],
    )
    .await;
    seed(app, key, "t", "id,amount,day\n1,1.00,2024-01-01\n").await;
    let snap = snapshot(app, key, "t").await;
    assert_eq!(snap.1, rows(&["1|1.00|2024-01-01"]));
    snap
}

#[tokio::test]
async fn a_bad_value_is_400_naming_line_column_value_and_type() {
    let (app, key) = setup().await;
    let before = typed_table(&app, &key).await;
    for options in [
        json!({"incremental": false}),
        incremental("update_duplicates"),
    ] {
        let err = load_csv(
            &app,
            &key,
            "t",
            "id,amount,day\n2,10.00,2024-01-02\n3,xx,2024-01-03\n4,5,2024-01-04\n",
            options.clone(),
        )
        .await
        .expect_error(400);
        let problems = err["details"]["problems"]
            .as_array()
            .unwrap_or_else(|| panic!("problems missing: {err}"));
        assert_eq!(problems.len(), 1, "{err}");
        let p = &problems[0];
        assert_eq!(p["line"], 3, "{err}");
        assert_eq!(p["column"], "amount", "{err}");
        assert_eq!(p["value"], "xx", "{err}");
        assert_eq!(p["expected_type"], "DECIMAL(12,2)", "{err}");
        assert!(p["error"].as_str().is_some_and(|e| !e.is_empty()), "{err}");
        assert_eq!(snapshot(&app, &key, "t").await, before, "{options}");
    }

    let err = load_csv(
        &app,
        &key,
        "t",
        "id,amount,day\n5,1,2024-13-45\n",
        json!({}),
    )
    .await
    .expect_error(400);
    let p = &err["details"]["problems"][0];
    assert_eq!(p["line"], 2, "{err}");
    assert_eq!(p["column"], "day", "{err}");
    assert_eq!(p["value"], "2024-13-45", "{err}");
    assert_eq!(p["expected_type"], "DATE", "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // Many bad values: at most ten are listed.
    let mut csv = String::from("id,amount,day\n");
    for i in 10..35 {
        csv.push_str(&format!("{i},bad{i},2024-01-01\n"));
    }
    let err = load_csv(&app, &key, "t", &csv, json!({}))
        .await
        .expect_error(400);
    let problems = err["details"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 10, "{err}");
    assert_eq!(problems[0]["line"], 2, "{err}");
    assert_eq!(problems[0]["value"], "bad10", "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
}

#[tokio::test]
async fn malformed_csv_is_400_and_changes_nothing() {
    let (app, key) = setup().await;
    let before = typed_table(&app, &key).await;

    // A line with too few fields.
    let err = load_csv(
        &app,
        &key,
        "t",
        "id,amount,day\n2,1,2024-01-01\n3,1\n4,1,2024-01-01\n",
        json!({}),
    )
    .await
    .expect_error(400);
    let problems = err["details"]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("problems missing: {err}"));
    assert_eq!(problems[0]["line"], 3, "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // An unterminated quote.
    load_csv(
        &app,
        &key,
        "t",
        "id,amount,day\n2,\"1,2024-01-01\n3,1,2024-01-02\n",
        json!({}),
    )
    .await
    .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // A full load with a key repeated in the file keeps the last occurrence, with a warning.
    let res = load_csv(
        &app,
        &key,
        "t",
        "id,amount,day\n7,1,2024-01-01\n7,2,2024-01-02\n",
        json!({"incremental": false}),
    )
    .await
    .expect(200);
    assert_eq!(res["table_rows_after"], 1, "{res}");
    assert!(!res["warnings"].as_array().unwrap().is_empty(), "{res}");
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["7|2.00|2024-01-02"])
    );
}

#[tokio::test]
async fn a_csv_line_with_too_many_fields_is_a_problem_on_its_line() {
    let (app, key) = setup().await;
    let before = typed_table(&app, &key).await;
    let mut wrong = Vec::new();
    for csv in [
        "id,amount,day\n2,1,2024-01-01\n3,1,2024-01-01,extra\n",
        "id,amount,day\n2,1,2024-01-01\n3,1,2024-01-01,extra\n4,1,2024-01-02\n",
        "id,amount,day\n2,1,2024-01-01\n3,1,2024-01-02\n4,1,2024-01-03\n5,1,2024-01-01,x,y\n",
    ] {
        let err = load_csv(&app, &key, "t", csv, json!({}))
            .await
            .expect_error(400);
        assert_eq!(snapshot(&app, &key, "t").await, before);
        let expected = csv
            .lines()
            .position(|l| l.matches(',').count() > 2)
            .unwrap()
            + 1;
        if err["details"]["problems"][0]["line"] != expected {
            wrong.push(format!(
                "{csv:?}: expected a problem on line {expected}, got {err}"
            ));
        }
    }
    // Positional (no header): one long line among good ones is that line's problem.
    let csv = "2,1,2024-01-01\n3,1,2024-01-01,extra\n";
    let id = upload(&app, &key, "h.csv", csv.as_bytes()).await;
    let reply = import(
        &app,
        &key,
        "t",
        json!({"file_id": id, "csv_options": {"header": false}}),
    )
    .await;
    assert_eq!(snapshot(&app, &key, "t").await, before, "{csv:?}");
    if reply.status != 400 || reply.body["details"]["problems"][0]["line"] != 2 {
        wrong.push(format!(
            "header:false {csv:?}: expected 400 with a problem on line 2, got {} {}",
            reply.status, reply.body
        ));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn an_empty_csv_imports_zero_rows_and_a_full_load_of_it_empties_the_table() {
    let (app, key) = setup().await;
    let before = typed_table(&app, &key).await;
    let res = load_csv(
        &app,
        &key,
        "t",
        "id,amount,day\n",
        incremental("update_duplicates"),
    )
    .await
    .expect(200);
    assert_eq!(res["imported_rows"], 0, "{res}");
    assert_eq!(res["table_rows_after"], 1, "{res}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
    let res = seed(&app, &key, "t", "id,amount,day\n").await;
    assert_eq!(res["imported_rows"], 0, "{res}");
    assert_eq!(res["table_rows_after"], 0, "{res}");
    assert_eq!(table_rows(&app, &key, "t").await, Vec::<String>::new());
}

#[tokio::test]
async fn unknown_files_formats_and_tables_are_refused() {
    let (app, key) = setup().await;
    let before = typed_table(&app, &key).await;
    let key2 = app.create_project("2").await;
    let foreign = upload_to(
        &app,
        "2",
        &key2,
        "x.csv",
        b"id,amount,day\n9,1,2024-01-01\n",
    )
    .await;
    let mine = upload(&app, &key, "x.csv", b"id,amount,day\n9,1,2024-01-01\n").await;

    import(&app, &key, "t", json!({"file_id": "no-such-file"}))
        .await
        .expect_error(404);
    import(&app, &key, "t", json!({"file_id": foreign}))
        .await
        .expect_error(404);
    import(&app, &key, "t", json!({"file_id": mine, "format": "xml"}))
        .await
        .expect_error(400);
    let r = import(&app, &key, "t", json!({})).await;
    assert!(
        r.status == 400 || r.status == 422,
        "missing file_id: {} {}",
        r.status,
        r.body
    );
    let r = import(
        &app,
        &key,
        "t",
        json!({"file_id": mine, "import_options": {"incremental": true, "dedup_mode": "sometimes"}}),
    )
    .await;
    assert!(
        r.status == 400 || r.status == 422,
        "unknown dedup mode: {} {}",
        r.status,
        r.body
    );
    assert_eq!(snapshot(&app, &key, "t").await, before);
    import(&app, &key, "nope", json!({"file_id": mine}))
        .await
        .expect_error(404);
    // Another project's key cannot import into this project's table.
    let r = import(&app, &key2, "t", json!({"file_id": foreign})).await;
    assert!(
        r.status == 403 || r.status == 404,
        "cross-project import must be refused: {} {}",
        r.status,
        r.body
    );
    assert_eq!(snapshot(&app, &key, "t").await, before);
}

// ---------------------------------------------------------------------------------------
// validate_only
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn validate_only_reports_would_be_counts_and_changes_nothing() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", true).await;
    seed(&app, &key, "t", &kv_csv(1..=10, "old")).await;
    let before = snapshot(&app, &key, "t").await;
    let files_before = app.get("/projects/1/files", &key).await.expect(200)["total"].clone();

    let id = upload(&app, &key, "up.csv", kv_csv(6..=15, "new").as_bytes()).await;
    let res = import(
        &app,
        &key,
        "t",
        json!({"file_id": id, "import_options": incremental("update_duplicates"), "validate_only": true}),
    )
    .await
    .expect(200);
    assert_eq!(res["validate_only"], true, "{res}");
    assert_eq!(res["imported_rows"], 10, "{res}");
    assert_eq!(res["table_rows_after"], 15, "{res}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    let res = import(
        &app,
        &key,
        "t",
        json!({"file_id": id, "import_options": {"incremental": false}, "validate_only": true}),
    )
    .await
    .expect(200);
    assert_eq!(res["validate_only"], true, "{res}");
    assert_eq!(res["imported_rows"], 10, "{res}");
    assert_eq!(res["table_rows_after"], 10, "{res}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // A bad file gives the same 400 as a real import.
    let bad = upload(&app, &key, "bad.csv", b"id,v\n1,a\nx,b\n").await;
    let real = import(&app, &key, "t", json!({"file_id": bad}))
        .await
        .expect_error(400);
    let dry = import(
        &app,
        &key,
        "t",
        json!({"file_id": bad, "validate_only": true}),
    )
    .await
    .expect_error(400);
    assert_eq!(dry["error"], real["error"]);
    assert_eq!(dry["details"], real["details"]);
    assert_eq!(real["details"]["problems"][0]["line"], 3, "{real}");
    assert_eq!(real["details"]["problems"][0]["column"], "id", "{real}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // fail_on_duplicates conflicts are found by a dry run too.
    let dup = import(
        &app,
        &key,
        "t",
        json!({"file_id": id, "import_options": incremental("fail_on_duplicates"), "validate_only": true}),
    )
    .await
    .expect_error(409);
    assert!(dup["details"]["duplicate_keys"].is_array(), "{dup}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        json!(files_before.as_u64().unwrap() + 2)
    );
}

// ---------------------------------------------------------------------------------------
// gzip, JSONL, Parquet
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_gzip_csv_without_a_gz_name_is_sniffed_and_imported() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.csv.gz");
    duck_exec(&format!(
        "COPY (SELECT i AS id, 'name ' || i AS v FROM range(1, 1001) r(i)) TO '{}' \
         (FORMAT csv, HEADER, COMPRESSION gzip)",
        sql_path(&path)
    ));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
    let id = upload(&app, &key, "plain-name.csv", &bytes).await;
    let res = import(&app, &key, "t", json!({"file_id": id, "format": "csv"}))
        .await
        .expect(200);
    assert_eq!(res["imported_rows"], 1000, "{res}");
    assert_eq!(
        table_rows(&app, &key, "t").await,
        sorted(kv_rows(1..=1000, "name "))
    );
}

#[tokio::test]
async fn jsonl_is_imported_by_key_with_missing_keys_as_null() {
    let (app, key) = setup().await;
    app.create_table(
        "1",
        &key,
        "b",
        "t",
        &[
            ("id", "BIGINT"),
            ("name", "VARCHAR"),
            ("amount", "DECIMAL(12,2)"),
            ("flag", "BOOLEAN"),
        ],
        &["id"],
    )
    .await;
    let data = "{\"id\": 1, \"name\": \"a\", \"amount\": 1.5, \"flag\": true}\n\
{\"name\": \"b \\\"q\\\" ü\", \"id\": 2}\n\
{\"id\": 3, \"amount\": 2.25, \"flag\": null, \"name\": null}\n";
    let id = upload(&app, &key, "data.jsonl", data.as_bytes()).await;
    let res = import(&app, &key, "t", json!({"file_id": id, "format": "jsonl"}))
        .await
        .expect(200);
    assert_eq!(res["imported_rows"], 3, "{res}");
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a|1.50|true", "2|b \"q\" ü|NULL|NULL", "3|NULL|2.25|NULL"])
    );
}

#[tokio::test]
async fn bad_jsonl_is_400_with_the_line_and_changes_nothing() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", true).await;
    seed(&app, &key, "t", "id,v\n1,a\n").await;
    let before = snapshot(&app, &key, "t").await;
    for (data, line) in [("{\"id\": 2, \"v\": \"b\"}\n[1, 2]\n{\"id\": 3}\n", 2)] {
        let id = upload(&app, &key, "bad.jsonl", data.as_bytes()).await;
        let err = import(&app, &key, "t", json!({"file_id": id, "format": "jsonl"}))
            .await
            .expect_error(400);
        assert_eq!(
            err["details"]["problems"][0]["line"], line,
            "{data:?}: {err}"
        );
        assert_eq!(snapshot(&app, &key, "t").await, before);
    }
    // Unknown keys are unknown columns.
    let id = upload(&app, &key, "bad.jsonl", b"{\"id\": 2, \"bogus\": 1}\n").await;
    let err = import(&app, &key, "t", json!({"file_id": id, "format": "jsonl"}))
        .await
        .expect_error(400);
    assert_eq!(err["details"]["unknown_columns"], json!(["bogus"]), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
    // A value of the wrong type.
    let id = upload(&app, &key, "bad.jsonl", b"{\"id\": 2}\n{\"id\": \"abc\"}\n").await;
    let err = import(&app, &key, "t", json!({"file_id": id, "format": "jsonl"}))
        .await
        .expect_error(400);
    assert_eq!(err["details"]["problems"][0]["line"], 2, "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
    assert_eq!(err["details"]["problems"][0]["column"], "id", "{err}");
}

#[tokio::test]
async fn invalid_json_lines_are_reported_on_their_own_line() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", true).await;
    seed(&app, &key, "t", "id,v\n1,a\n").await;
    let before = snapshot(&app, &key, "t").await;
    let mut wrong = Vec::new();
    for (data, line) in [
        ("{\"id\": 2}\n{\"id\": 3}\n{\"id\":\n", 3),
        ("not json at all\n", 1),
        ("{\"id\": 2}\nnot json at all", 2),
        ("{\"id\": 2}\nnot json at all\n{\"id\": 3}\n", 2),
    ] {
        let id = upload(&app, &key, "bad.jsonl", data.as_bytes()).await;
        let reply = import(&app, &key, "t", json!({"file_id": id, "format": "jsonl"})).await;
        if reply.status != 400 {
            wrong.push(format!(
                "{data:?}: expected 400, got {} {}",
                reply.status, reply.body
            ));
            seed(&app, &key, "t", "id,v\n1,a\n").await;
            continue;
        }
        let err = reply.expect_error(400);
        assert_eq!(snapshot(&app, &key, "t").await, before);
        if err["details"]["problems"][0]["line"] != line {
            wrong.push(format!("{data:?}: expected line {line}, got {err}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // DuckDB's JSON parser tolerates a trailing comma inside an object; such a line is still
    // one object per line, so it is imported (README: JSONL).
    let id = upload(&app, &key, "lenient.jsonl", b"{\"id\": 2}\n{\"id\": 3,}\n").await;
    let done = import(&app, &key, "t", json!({"file_id": id, "format": "jsonl"}))
        .await
        .expect(200);
    assert_eq!(done["imported_rows"], 2, "{done}");
}

#[tokio::test]
async fn parquet_is_imported_by_column_name_and_uncastable_values_are_400() {
    let (app, key) = setup().await;
    three_col_table(&app, &key, true).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    duck_exec(&format!(
        "COPY (SELECT 'p' || i AS name, i::INTEGER AS id, (i * 1.5)::DOUBLE AS amount \
         FROM range(1, 4) r(i)) TO '{}' (FORMAT parquet)",
        sql_path(&good)
    ));
    let id = upload(&app, &key, "good.parquet", &std::fs::read(&good).unwrap()).await;
    let res = import(&app, &key, "t", json!({"file_id": id, "format": "parquet"}))
        .await
        .expect(200);
    assert_eq!(res["imported_rows"], 3, "{res}");
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|p1|1.50", "2|p2|3.00", "3|p3|4.50"])
    );
    let before = snapshot(&app, &key, "t").await;

    let bad = dir.path().join("bad.parquet");
    duck_exec(&format!(
        "COPY (SELECT * FROM (VALUES ('10', 'x', '1'), ('abc', 'y', '2')) v(id, name, amount)) \
         TO '{}' (FORMAT parquet)",
        sql_path(&bad)
    ));
    let id = upload(&app, &key, "bad.parquet", &std::fs::read(&bad).unwrap()).await;
    for options in [
        json!({"incremental": false}),
        incremental("update_duplicates"),
    ] {
        import(
            &app,
            &key,
            "t",
            json!({"file_id": id, "format": "parquet", "import_options": options}),
        )
        .await
        .expect_error(400);
        assert_eq!(snapshot(&app, &key, "t").await, before);
    }
    // Not a Parquet file at all.
    let id = upload(&app, &key, "fake.parquet", b"id,name\n1,a\n").await;
    import(&app, &key, "t", json!({"file_id": id, "format": "parquet"}))
        .await
        .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);
}

#[tokio::test]
async fn imports_and_exports_work_on_the_reference_path_style() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", true).await;
    let id = upload(&app, &key, "a.csv", kv_csv(1..=3, "x").as_bytes()).await;
    let res = app
        .post(
            &format!("{BT}/t/import/file"),
            &key,
            json!({"file_id": id, "format": "csv"}),
        )
        .await
        .expect(200);
    assert_eq!(res["table_rows_after"], 3, "{res}");
    let out = app
        .post(
            &format!("{BT}/t/export"),
            &key,
            json!({"format": "csv", "order_by": "id"}),
        )
        .await
        .expect(200);
    let bytes = download(&app, &key, out["file_id"].as_str().unwrap()).await;
    assert_eq!(String::from_utf8_lossy(&bytes), kv_csv(1..=3, "x"));
}

// ---------------------------------------------------------------------------------------
// Create table from file
// ---------------------------------------------------------------------------------------

const INFER_CSV: &str = "id,amount,day,ts,name,flag\n\
1,1.5,2024-01-02,2024-01-02 03:04:05,alpha,true\n\
2,2.25,2024-02-03,2024-02-03 04:05:06,beta,false\n";

#[tokio::test]
async fn a_table_created_from_a_csv_has_inferred_types_and_the_rows() {
    let (app, key) = setup().await;
    let id = upload(&app, &key, "infer.csv", INFER_CSV.as_bytes()).await;
    let body = app
        .post(
            "/projects/1/buckets/b/tables/from-file",
            &key,
            json!({"name": "inferred", "file_id": id, "format": "csv", "primary_key": ["id"]}),
        )
        .await
        .expect(201);
    assert_eq!(body["name"], "inferred", "{body}");
    assert_eq!(body["bucket"], "b", "{body}");
    assert_eq!(body["row_count"], 2, "{body}");
    assert_eq!(body["imported_rows"], 2, "{body}");
    assert_eq!(body["primary_key"], json!(["id"]), "{body}");
    assert!(body["warnings"].is_array(), "{body}");
    assert!(body["created_at"].is_string(), "{body}");
    assert!(body["size_bytes"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(
        column_types(&body),
        [
            "id BIGINT",
            "amount DOUBLE",
            "day DATE",
            "ts TIMESTAMP",
            "name VARCHAR",
            "flag BOOLEAN"
        ]
    );
    for (i, c) in body["columns"].as_array().unwrap().iter().enumerate() {
        assert_eq!(c["ordinal_position"], i + 1, "{c}");
    }
    assert_eq!(
        table_rows(&app, &key, "inferred").await,
        rows(&[
            "1|1.5|2024-01-02|2024-01-02T03:04:05|alpha|true",
            "2|2.25|2024-02-03|2024-02-03T04:05:06|beta|false"
        ])
    );
    // The table is an ordinary table.
    let t = app.get(&format!("{T}/inferred"), &key).await.expect(200);
    assert_eq!(column_types(&t), column_types(&body));
    // The name is taken now.
    app.post(
        "/projects/1/buckets/b/tables/from-file",
        &key,
        json!({"name": "inferred", "file_id": id}),
    )
    .await
    .expect_error(409);
    assert_eq!(
        table_rows(&app, &key, "inferred").await.len(),
        2,
        "the existing table is untouched"
    );
}

#[tokio::test]
async fn all_varchar_creates_text_columns_with_the_raw_values() {
    let (app, key) = setup().await;
    let id = upload(&app, &key, "infer.csv", INFER_CSV.as_bytes()).await;
    let body = app
        .post(
            &format!("{}/from-file", BT),
            &key,
            json!({"name": "raw", "file_id": id, "all_varchar": true}),
        )
        .await
        .expect(201);
    assert_eq!(
        column_types(&body),
        [
            "id VARCHAR",
            "amount VARCHAR",
            "day VARCHAR",
            "ts VARCHAR",
            "name VARCHAR",
            "flag VARCHAR"
        ]
    );
    assert_eq!(body["primary_key"], json!([]), "{body}");
    assert_eq!(
        table_rows(&app, &key, "raw").await,
        rows(&[
            "1|1.5|2024-01-02|2024-01-02 03:04:05|alpha|true",
            "2|2.25|2024-02-03|2024-02-03 04:05:06|beta|false"
        ])
    );
}

#[tokio::test]
async fn a_table_can_be_created_from_parquet_and_jsonl() {
    let (app, key) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.parquet");
    duck_exec(&format!(
        "COPY (SELECT i::INTEGER AS id, 'n' || i AS name, i / 2 AS half FROM range(1, 4) r(i)) \
         TO '{}' (FORMAT parquet)",
        sql_path(&path)
    ));
    let id = upload(&app, &key, "x.parquet", &std::fs::read(&path).unwrap()).await;
    let body = app
        .post(
            "/projects/1/buckets/b/tables/from-file",
            &key,
            json!({"name": "pq", "file_id": id, "format": "parquet"}),
        )
        .await
        .expect(201);
    assert_eq!(
        column_types(&body),
        ["id INTEGER", "name VARCHAR", "half DOUBLE"]
    );
    assert_eq!(body["imported_rows"], 3, "{body}");
    assert_eq!(
        table_rows(&app, &key, "pq").await,
        rows(&["1|n1|0.5", "2|n2|1.0", "3|n3|1.5"])
    );

    let id = upload(
        &app,
        &key,
        "x.jsonl",
        b"{\"id\": 1, \"tag\": \"a\"}\n{\"id\": 2, \"tag\": \"b\"}\n",
    )
    .await;
    let body = app
        .post(
            "/projects/1/buckets/b/tables/from-file",
            &key,
            json!({"name": "js", "file_id": id, "format": "jsonl", "primary_key": ["id"]}),
        )
        .await
        .expect(201);
    assert_eq!(column_types(&body), ["id BIGINT", "tag VARCHAR"]);
    assert_eq!(table_rows(&app, &key, "js").await, rows(&["1|a", "2|b"]));
}

#[tokio::test]
async fn create_from_file_failures_leave_no_table_behind() {
    let (app, key) = setup().await;
    let id = upload(&app, &key, "infer.csv", INFER_CSV.as_bytes()).await;
    let dup = upload(&app, &key, "dup.csv", b"id,v\n1,a\n2,b\n1,c\n").await;
    let err = app
        .post(
            "/projects/1/buckets/b/tables/from-file",
            &key,
            json!({"name": "t1", "file_id": id, "primary_key": ["nope"]}),
        )
        .await
        .expect_error(400);
    assert!(message(&err).contains("nope"), "{err}");
    app.get(&format!("{T}/t1"), &key).await.expect_error(404);

    let err = app
        .post(
            "/projects/1/buckets/b/tables/from-file",
            &key,
            json!({"name": "t2", "file_id": dup, "primary_key": ["id"]}),
        )
        .await
        .expect_error(409);
    assert!(err["details"].to_string().contains('1'), "{err}");
    app.get(&format!("{T}/t2"), &key).await.expect_error(404);
    assert!(!app.data_dir.join("duckdb/project_1/b/t2.duckdb").exists());
    // The name is free: the same file without a primary key works.
    let body = app
        .post(
            "/projects/1/buckets/b/tables/from-file",
            &key,
            json!({"name": "t2", "file_id": dup}),
        )
        .await
        .expect(201);
    assert_eq!(body["row_count"], 3, "{body}");

    app.post(
        "/projects/1/buckets/b/tables/from-file",
        &key,
        json!({"name": "t3", "file_id": "no-such-file"}),
    )
    .await
    .expect_error(404);
    app.post(
        "/projects/1/buckets/b/tables/from-file",
        &key,
        json!({"name": "bad name!", "file_id": id}),
    )
    .await
    .expect_error(400);
    app.post(
        "/projects/1/buckets/nope/tables/from-file",
        &key,
        json!({"name": "t4", "file_id": id}),
    )
    .await
    .expect_error(404);
    let list = app.get(T, &key).await.expect(200);
    assert_eq!(list["total"], 1, "{list}");
}

// ---------------------------------------------------------------------------------------
// Schema changes
// ---------------------------------------------------------------------------------------

fn column<'a>(table: &'a Value, name: &str) -> &'a Value {
    table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("column {name} missing: {table}"))
}

#[tokio::test]
async fn columns_can_be_added_renamed_retyped_constrained_and_dropped() {
    let (app, key) = setup().await;
    app.create_table(
        "1",
        &key,
        "b",
        "t",
        &[("id", "BIGINT"), ("name", "VARCHAR"), ("code", "VARCHAR")],
        &["id"],
    )
    .await;
    seed(&app, &key, "t", "id,name,code\n1,a,10\n2,b,20\n").await;
    let cols = format!("{T}/t/columns");

    let body = app
        .post(
            &cols,
            &key,
            json!({"name": "score", "type": "INTEGER", "nullable": true, "default": null}),
        )
        .await
        .expect(201);
    assert_eq!(
        column(&body, "score"),
        &json!({"name": "score", "type": "INTEGER", "nullable": true, "ordinal_position": 4})
    );
    let body = app
        .post(
            &cols,
            &key,
            json!({"name": "status", "type": "VARCHAR", "default": "'new'"}),
        )
        .await
        .expect(201);
    assert_eq!(column_types(&body).len(), 5);
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a|10|NULL|new", "2|b|20|NULL|new"])
    );
    app.post(&cols, &key, json!({"name": "name", "type": "INTEGER"}))
        .await
        .expect_error(409);

    // Type change with convertible data.
    let body = put(
        &app,
        &key,
        &format!("{cols}/code"),
        json!({"new_type": "INTEGER"}),
    )
    .await
    .expect(200);
    assert_eq!(column(&body, "code")["type"], "INTEGER");
    // Rename.
    let body = put(
        &app,
        &key,
        &format!("{cols}/name"),
        json!({"new_name": "label"}),
    )
    .await
    .expect(200);
    assert_eq!(
        column_types(&body),
        [
            "id BIGINT",
            "label VARCHAR",
            "code INTEGER",
            "score INTEGER",
            "status VARCHAR"
        ]
    );
    // Drop.
    let body = app.delete(&format!("{cols}/score"), &key).await.expect(200);
    assert_eq!(
        column_types(&body),
        [
            "id BIGINT",
            "label VARCHAR",
            "code INTEGER",
            "status VARCHAR"
        ]
    );
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a|10|new", "2|b|20|new"])
    );
    // The default fills a column missing from an import…
    load_csv(
        &app,
        &key,
        "t",
        "id,label,code\n3,c,30\n",
        incremental("update_duplicates"),
    )
    .await
    .expect(200);
    // …until it is dropped.
    put(
        &app,
        &key,
        &format!("{cols}/status"),
        json!({"set_default": ""}),
    )
    .await
    .expect(200);
    load_csv(
        &app,
        &key,
        "t",
        "id,label,code\n4,d,40\n",
        incremental("update_duplicates"),
    )
    .await
    .expect(200);
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a|10|new", "2|b|20|new", "3|c|30|new", "4|d|40|NULL"])
    );
    // A new default applies to later imports.
    put(
        &app,
        &key,
        &format!("{cols}/status"),
        json!({"set_default": "'fresh'"}),
    )
    .await
    .expect(200);
    load_csv(
        &app,
        &key,
        "t",
        "id,label,code\n5,e,50\n",
        incremental("update_duplicates"),
    )
    .await
    .expect(200);
    assert!(table_rows(&app, &key, "t")
        .await
        .contains(&"5|e|50|fresh".to_string()));
    // NOT NULL when no NULLs are present.
    let body = put(
        &app,
        &key,
        &format!("{cols}/label"),
        json!({"set_not_null": true}),
    )
    .await
    .expect(200);
    assert_eq!(column(&body, "label")["nullable"], false);
    let t = app.get(&format!("{T}/t"), &key).await.expect(200);
    assert_eq!(column(&t, "label")["nullable"], false);
    // The reference path style.
    let body = app
        .post(
            &format!("{BT}/t/columns"),
            &key,
            json!({"name": "extra", "type": "DOUBLE"}),
        )
        .await
        .expect(201);
    assert_eq!(column(&body, "extra")["type"], "DOUBLE");
    app.delete(&format!("{BT}/t/columns/extra"), &key)
        .await
        .expect(200);
}

#[tokio::test]
async fn failed_schema_changes_leave_the_table_unchanged() {
    let (app, key) = setup().await;
    app.create_table(
        "1",
        &key,
        "b",
        "t",
        &[("id", "BIGINT"), ("code", "VARCHAR"), ("note", "VARCHAR")],
        &["id"],
    )
    .await;
    seed(&app, &key, "t", "id,code,note\n1,10,x\n2,abc,\n").await;
    let before = snapshot(&app, &key, "t").await;
    assert_eq!(before.1, rows(&["1|10|x", "2|abc|NULL"]));
    let cols = format!("{T}/t/columns");

    let err = put(
        &app,
        &key,
        &format!("{cols}/code"),
        json!({"new_type": "INTEGER"}),
    )
    .await
    .expect_error(400);
    assert!(
        err["message"].as_str().unwrap().contains("abc"),
        "the message names the value: {err}"
    );
    assert_eq!(snapshot(&app, &key, "t").await, before);

    put(
        &app,
        &key,
        &format!("{cols}/note"),
        json!({"set_not_null": true}),
    )
    .await
    .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // A rename combined with a failing type change changes neither.
    put(
        &app,
        &key,
        &format!("{cols}/code"),
        json!({"new_name": "renamed", "new_type": "INTEGER"}),
    )
    .await
    .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    app.delete(&format!("{cols}/id"), &key)
        .await
        .expect_error(400);
    app.delete(&format!("{cols}/nope"), &key)
        .await
        .expect_error(404);
    app.post(&cols, &key, json!({"name": "code", "type": "VARCHAR"}))
        .await
        .expect_error(409);
    app.post(&cols, &key, json!({"name": "y", "type": "NOT A TYPE"}))
        .await
        .expect_error(400);
    app.post(
        &cols,
        &key,
        json!({"name": "z", "type": "INTEGER", "default": "1; DROP TABLE x"}),
    )
    .await
    .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // The only column cannot be dropped.
    app.create_table("1", &key, "b", "solo", &[("only", "BIGINT")], &[])
        .await;
    app.delete(&format!("{T}/solo/columns/only"), &key)
        .await
        .expect_error(400);
    let solo = app.get(&format!("{T}/solo"), &key).await.expect(200);
    assert_eq!(column_types(&solo), ["only BIGINT"]);
}

#[tokio::test]
async fn a_primary_key_can_be_added_and_dropped() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "t", false).await;
    seed(&app, &key, "t", "id,v\n1,a\n2,b\n2,c\n").await;
    let before = snapshot(&app, &key, "t").await;
    let pk = format!("{T}/t/primary-key");

    let err = app
        .post(&pk, &key, json!({"columns": ["id"]}))
        .await
        .expect_error(409);
    let dups = err["details"]["duplicate_keys"]
        .as_array()
        .unwrap_or_else(|| panic!("duplicate_keys missing: {err}"));
    assert_eq!(dups.len(), 1, "{err}");
    assert!(dups[0].to_string().contains('2'), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
    let r = app.post(&pk, &key, json!({"columns": ["nope"]})).await;
    assert!(
        r.status == 400 || r.status == 404,
        "{} {}",
        r.status,
        r.body
    );
    app.delete(&pk, &key).await.expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    seed(&app, &key, "t", "id,v\n1,a\n2,b\n").await;
    let body = app
        .post(&pk, &key, json!({"columns": ["id"]}))
        .await
        .expect(201);
    assert_eq!(body["primary_key"], json!(["id"]), "{body}");
    assert_eq!(
        app.get(&format!("{T}/t"), &key).await.expect(200)["primary_key"],
        json!(["id"])
    );
    app.post(&pk, &key, json!({"columns": ["v"]}))
        .await
        .expect_error(409);
    // The key is real: an upsert updates, insert_duplicates is refused.
    load_csv(
        &app,
        &key,
        "t",
        "id,v\n2,z\n",
        incremental("update_duplicates"),
    )
    .await
    .expect(200);
    assert_eq!(table_rows(&app, &key, "t").await, rows(&["1|a", "2|z"]));
    load_csv(
        &app,
        &key,
        "t",
        "id,v\n2,y\n",
        incremental("insert_duplicates"),
    )
    .await
    .expect_error(400);

    let body = app.delete(&pk, &key).await.expect(200);
    assert_eq!(body["primary_key"], json!([]), "{body}");
    app.delete(&pk, &key).await.expect_error(400);
    // Without the key, duplicates may be inserted.
    load_csv(
        &app,
        &key,
        "t",
        "id,v\n2,y\n",
        incremental("insert_duplicates"),
    )
    .await
    .expect(200);
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a", "2|y", "2|z"])
    );
    // Reference path style.
    let body = app
        .post(
            &format!("{BT}/t/primary-key"),
            &key,
            json!({"columns": ["id", "v"]}),
        )
        .await
        .expect(201);
    assert_eq!(body["primary_key"], json!(["id", "v"]), "{body}");
}

// ---------------------------------------------------------------------------------------
// Row deletes and filters
// ---------------------------------------------------------------------------------------

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

#[tokio::test]
async fn rows_are_deleted_by_every_filter_form() {
    let (app, key) = setup().await;
    people(&app, &key).await;
    let rows_path = format!("{T}/p/rows");

    let res = delete_json(
        &app,
        &key,
        &rows_path,
        json!({"where_clause": "status = 'deleted'"}),
    )
    .await
    .expect(200);
    assert_eq!(res, json!({"deleted_rows": 2, "table_rows_after": 4}));
    assert_eq!(ids(&app, &key).await, [1, 3, 4, 6]);

    let res = delete_json(
        &app,
        &key,
        &rows_path,
        json!({"where_filters": [{"column": "age", "operator": "gt", "values": [30]}]}),
    )
    .await
    .expect(200);
    assert_eq!(res, json!({"deleted_rows": 2, "table_rows_after": 2}));
    assert_eq!(ids(&app, &key).await, [1, 6]);

    seed(&app, &key, "p", PEOPLE_CSV).await;
    let res = delete_json(
        &app,
        &key,
        &rows_path,
        json!({"whereColumn": "status", "whereValues": ["a", "b"], "whereOperator": "eq"}),
    )
    .await
    .expect(200);
    assert_eq!(res, json!({"deleted_rows": 2, "table_rows_after": 4}));
    assert_eq!(ids(&app, &key).await, [1, 2, 5, 6]);

    let res = delete_json(
        &app,
        &key,
        &rows_path,
        json!({"whereColumn": "status", "whereValues": ["active"], "whereOperator": "ne"}),
    )
    .await
    .expect(200);
    assert_eq!(res, json!({"deleted_rows": 2, "table_rows_after": 2}));
    assert_eq!(ids(&app, &key).await, [1, 6]);

    // Nothing matches: zero deleted.
    let res = delete_json(&app, &key, &rows_path, json!({"where_clause": "id > 100"}))
        .await
        .expect(200);
    assert_eq!(res, json!({"deleted_rows": 0, "table_rows_after": 2}));

    // Reference path style.
    let res = delete_json(
        &app,
        &key,
        &format!("{BT}/p/rows"),
        json!({"where_clause": "id = 1"}),
    )
    .await
    .expect(200);
    assert_eq!(res, json!({"deleted_rows": 1, "table_rows_after": 1}));
    assert_eq!(ids(&app, &key).await, [6]);
    assert_eq!(
        app.get(&format!("{T}/p"), &key).await.expect(200)["row_count"],
        1
    );
}

#[tokio::test]
async fn a_row_delete_without_a_filter_is_400() {
    let (app, key) = setup().await;
    people(&app, &key).await;
    let before = snapshot(&app, &key, "p").await;
    let rows_path = format!("{T}/p/rows");
    for body in [
        json!({}),
        json!({"where_clause": ""}),
        json!({"where_clause": "   "}),
        json!({"where_filters": []}),
        json!({"whereColumn": "status"}),
        json!({"whereColumn": "status", "whereValues": ["a"], "whereOperator": "like"}),
        json!({"where_filters": [{"column": "age", "operator": "drop", "values": [1]}]}),
        json!({"where_filters": [{"column": "nope", "operator": "eq", "values": [1]}]}),
    ] {
        delete_json(&app, &key, &rows_path, body.clone())
            .await
            .expect_error(400);
        assert_eq!(snapshot(&app, &key, "p").await, before, "{body}");
    }
    let r = app.call(Method::DELETE, &rows_path, Some(&key), None).await;
    assert!(
        (400..500).contains(&r.status.as_u16()),
        "no body: {} {}",
        r.status,
        r.body
    );
    assert_eq!(snapshot(&app, &key, "p").await, before);
}

/// Each hostile filter and a token the error message must name (any of them).
const HOSTILE_FILTERS: &[(&str, &[&str])] = &[
    ("1=1; DROP TABLE x", &[";"]),
    ("id = 1 -- x", &["--"]),
    ("id = 1 /* c */", &["/*"]),
    ("id IN (SELECT 1)", &["select"]),
    ("read_csv('/etc/passwd') IS NOT NULL", &["read_csv"]),
    ("other.col = 1", &["other", "'.'", "\".\"", "`.`"]),
    ("name = 'x' UNION SELECT 1", &["union"]),
    ("nosuch = 1", &["nosuch"]),
    ("status = 'a' OR 1=1) --", &["--", ")"]),
    ("name = 'unterminated", &["'", "unterminated", "quote"]),
    ("id = (SELECT max(id) FROM data)", &["select", "\"(\""]),
    ("length(name) > 1", &["length", "("]),
];

#[tokio::test]
async fn hostile_filters_are_refused_with_400_naming_the_token_and_change_nothing() {
    let (app, key) = setup().await;
    people(&app, &key).await;
    let before = snapshot(&app, &key, "p").await;
    for (filter, tokens) in HOSTILE_FILTERS {
        let mut errors = Vec::new();
        errors.push(
            delete_json(
                &app,
                &key,
                &format!("{T}/p/rows"),
                json!({"where_clause": filter}),
            )
            .await
            .expect_error(400),
        );
        errors.push(
            app.post(
                &format!("{T}/p/export"),
                &key,
                json!({"format": "csv", "where_filter": filter}),
            )
            .await
            .expect_error(400),
        );
        errors.push(
            app.get(&format!("{T}/p/preview?where_filter={}", enc(filter)), &key)
                .await
                .expect_error(400),
        );
        for err in errors {
            let msg = message(&err);
            assert!(
                tokens.iter().any(|t| msg.contains(&t.to_lowercase())),
                "{filter:?}: the message should name one of {tokens:?}: {err}"
            );
            assert!(!msg.contains("root:"), "{err}");
        }
        assert_eq!(snapshot(&app, &key, "p").await, before, "{filter}");
    }
    // The bucket still has exactly its table.
    let list = app.get(T, &key).await.expect(200);
    assert_eq!(list["total"], 1, "{list}");
}

#[tokio::test]
async fn the_filter_grammar_supports_comparisons_logic_in_between_like_and_null_tests() {
    let (app, key) = setup().await;
    people(&app, &key).await;
    let cases: &[(&str, &[i64])] = &[
        (
            "age BETWEEN 20 AND 35 AND NOT status IN ('deleted')",
            &[1, 4],
        ),
        ("name LIKE 'a%' OR name ILIKE 'B%'", &[1, 2]),
        ("age IS NULL", &[6]),
        (
            "age IS NOT NULL AND (status = 'a' OR status <> 'active') AND age >= 31",
            &[2, 3, 4],
        ),
        ("id != 1 AND id < 3", &[2]),
        ("age <= 19", &[5]),
        ("status = 'it''s'", &[]),
        ("status NOT IN ('a', 'b', 'deleted')", &[1, 6]),
        ("NOT (age > 20)", &[5]),
        ("name NOT LIKE '%a%'", &[2, 3, 5]),
        ("age > 30 AND status = 'deleted' OR id = 1", &[1, 2]),
    ];
    for (filter, expected) in cases {
        let got = preview_ids(
            &app,
            &key,
            "p",
            &format!("where_filter={}&order_by=id", enc(filter)),
        )
        .await;
        assert_eq!(got.as_slice(), *expected, "{filter}");
    }
}

#[tokio::test]
async fn preview_accepts_order_by_and_every_filter_form() {
    let (app, key) = setup().await;
    people(&app, &key).await;
    assert_eq!(
        preview_ids(
            &app,
            &key,
            "p",
            &format!(
                "order_by={}&where_filter={}",
                enc("age DESC"),
                enc("age IS NOT NULL")
            )
        )
        .await,
        [3, 4, 2, 1, 5]
    );
    assert_eq!(
        preview_ids(
            &app,
            &key,
            "p",
            &format!("order_by={}&limit=2", enc("name DESC"))
        )
        .await,
        [6, 5]
    );
    assert_eq!(
        preview_ids(
            &app,
            &key,
            "p",
            "whereColumn=status&whereValues=a&whereValues=b&whereOperator=eq&order_by=id"
        )
        .await,
        [3, 4]
    );
    assert_eq!(
        preview_ids(
            &app,
            &key,
            "p",
            "whereColumn=status&whereValues=a&whereValues=b&whereOperator=ne&order_by=id"
        )
        .await,
        [1, 2, 5, 6]
    );
    let filters = json!([
        {"column": "age", "operator": "gt", "values": [30]},
        {"column": "status", "operator": "eq", "values": ["deleted"]}
    ]);
    assert_eq!(
        preview_ids(
            &app,
            &key,
            "p",
            &format!("filters={}&order_by=id", enc(&filters.to_string()))
        )
        .await,
        [2]
    );
    // The reference path style.
    let body = app
        .get(
            &format!(
                "{BT}/p/preview?where_filter={}&order_by=id",
                enc("status = 'active'")
            ),
            &key,
        )
        .await
        .expect(200);
    let got: Vec<i64> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [1, 6]);
    // Bad inputs.
    for query in [
        format!("order_by={}", enc("nope DESC")),
        format!("order_by={}", enc("id; DROP TABLE x")),
        format!("order_by={}", enc("id SIDEWAYS")),
        "filters=not-json".to_string(),
        format!(
            "filters={}",
            enc("[{\"column\":\"nope\",\"operator\":\"eq\",\"values\":[1]}]")
        ),
        "whereColumn=nope&whereValues=1".to_string(),
    ] {
        app.get(&format!("{T}/p/preview?{query}"), &key)
            .await
            .expect_error(400);
    }
}

// ---------------------------------------------------------------------------------------
// Profile
// ---------------------------------------------------------------------------------------

fn num(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a JSON number, got {v}"))
}

#[tokio::test]
async fn a_profile_describes_every_column() {
    let (app, key) = setup().await;
    app.create_table(
        "1",
        &key,
        "b",
        "t",
        &[("id", "BIGINT"), ("amount", "INTEGER"), ("name", "VARCHAR")],
        &["id"],
    )
    .await;
    seed(
        &app,
        &key,
        "t",
        "id,amount,name\n1,1,a\n2,2,b\n3,3,a\n4,4,a\n5,,\n",
    )
    .await;
    let body = app
        .post(&format!("{T}/t/profile"), &key, json!({}))
        .await
        .expect(200);
    assert_eq!(body["table_name"], "t", "{body}");
    assert_eq!(body["bucket_name"], "b", "{body}");
    assert_eq!(body["row_count"], 5, "{body}");
    assert_eq!(body["column_count"], 3, "{body}");
    let stats = body["statistics"].as_array().expect("statistics");
    let names: Vec<&str> = stats
        .iter()
        .map(|s| s["column_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "amount", "name"]);

    let amount = &stats[1];
    assert_eq!(amount["column_type"], "INTEGER", "{amount}");
    assert_eq!(cell(&amount["min"]), "1", "{amount}");
    assert_eq!(cell(&amount["max"]), "4", "{amount}");
    assert_eq!(amount["count"], 4, "count of non-NULL values: {amount}");
    assert_eq!(amount["null_count"], 1, "{amount}");
    assert!((num(&amount["avg"]) - 2.5).abs() < 1e-9, "{amount}");
    let std = num(&amount["std"]);
    assert!((std - 1.290_994).abs() < 1e-3, "sample std: {amount}");
    let (q25, q50, q75) = (
        num(&amount["q25"]),
        num(&amount["q50"]),
        num(&amount["q75"]),
    );
    assert!((1.0..=2.0).contains(&q25), "{amount}");
    assert!((2.0..=3.0).contains(&q50), "{amount}");
    assert!((3.0..=4.0).contains(&q75), "{amount}");
    assert!(q25 <= q50 && q50 <= q75, "{amount}");
    let unique = num(&amount["approx_unique"]);
    assert!((3.0..=5.0).contains(&unique), "{amount}");
    let nulls = num(&amount["null_percentage"]);
    assert!(
        (nulls - 20.0).abs() < 0.01 || (nulls - 0.2).abs() < 1e-4,
        "{amount}"
    );

    let id = &stats[0];
    assert_eq!(id["null_count"], 0, "{id}");
    assert_eq!(id["count"], 5, "{id}");
    assert!((num(&id["avg"]) - 3.0).abs() < 1e-9, "{id}");
    assert_eq!(cell(&id["min"]), "1", "{id}");
    assert_eq!(cell(&id["max"]), "5", "{id}");

    let name = &stats[2];
    assert_eq!(name["column_type"], "VARCHAR", "{name}");
    assert_eq!(name["null_count"], 1, "{name}");
    assert_eq!(cell(&name["min"]), "a", "{name}");
    assert_eq!(cell(&name["max"]), "b", "{name}");
    for k in ["avg", "std", "q25", "q50", "q75"] {
        assert!(name[k].is_null(), "{k} is null for text: {name}");
    }
    let top = name["top_values"].as_array().expect("top_values list");
    assert!(!top.is_empty(), "{name}");
    let first = top[0].to_string();
    assert!(
        first.contains("\"a\"") && !first.contains("\"b\""),
        "the most frequent value comes first: {name}"
    );

    // Reference path style and an empty table.
    app.create_table("1", &key, "b", "empty", &[("x", "DOUBLE")], &[])
        .await;
    let body = app
        .post(&format!("{BT}/empty/profile"), &key, json!({}))
        .await
        .expect(200);
    assert_eq!(body["row_count"], 0, "{body}");
    assert_eq!(body["statistics"][0]["null_count"], 0, "{body}");
    app.post(&format!("{T}/nope/profile"), &key, json!({}))
        .await
        .expect_error(404);
}

#[tokio::test]
async fn profiles_cover_every_column_type_even_on_an_empty_table() {
    let (app, key) = setup().await;
    let columns = [
        ("i", "INTEGER"),
        ("d", "DECIMAL(10,2)"),
        ("s", "VARCHAR"),
        ("b", "BOOLEAN"),
        ("t", "TIMESTAMP"),
        ("day", "DATE"),
        ("u", "UUID"),
        ("l", "INTEGER[]"),
        ("j", "JSON"),
        ("raw", "BLOB"),
    ];
    app.create_table("1", &key, "b", "all", &columns, &[]).await;
    let empty = app
        .post(&format!("{T}/all/profile"), &key, json!({}))
        .await
        .expect(200);
    assert_eq!(empty["row_count"], 0);
    assert_eq!(empty["column_count"], columns.len());
    for stat in empty["statistics"].as_array().expect("statistics") {
        assert_eq!(stat["count"], 0, "{stat}");
        assert_eq!(stat["null_count"], 0, "{stat}");
    }
    let app = app
        .edit_table_file(
            "1",
            "b",
            "all",
            "INSERT INTO data VALUES \
             (1, 1.50, 'x', true, TIMESTAMP '2024-01-01 00:00:00', DATE '2024-01-01', uuid(), [1, 2], '{\"a\": 1}', 'ab'::BLOB), \
             (3, 2.50, 'x', false, TIMESTAMP '2024-01-03 00:00:00', DATE '2024-01-03', uuid(), [], '[]', 'cd'::BLOB), \
             (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
        )
        .await;
    let full = app
        .post(&format!("{T}/all/profile"), &key, json!({}))
        .await
        .expect(200);
    let stat = |name: &str| {
        full["statistics"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["column_name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no statistics for {name}: {full}"))
    };
    assert_eq!(full["row_count"], 3);
    let i = stat("i");
    assert_eq!(
        (i["count"].as_i64(), i["null_count"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        (i["min"].as_str(), i["max"].as_str()),
        (Some("1"), Some("3"))
    );
    assert_eq!(i["avg"].as_f64(), Some(2.0));
    let s = stat("s");
    assert_eq!(s["top_values"], json!(["x"]));
    assert!(s["avg"].is_null());
    let t = stat("t");
    assert_eq!(t["min"], "2024-01-01 00:00:00");
    assert!(t["q50"].is_string(), "{t}");
    let l = stat("l");
    assert_eq!(l["count"], 2);
    assert!(l["min"].is_null());
    assert!((stat("b")["null_percentage"].as_f64().unwrap_or(0.0) - 33.33).abs() < 0.01);
}
