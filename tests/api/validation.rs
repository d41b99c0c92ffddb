//! Bad input, black-box: every malformed name, type, definition, body or query gets a clear 4xx
//! with the reference error body — never a 500 — and leaves no trace (no catalog entry, no file).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{enc, spawn_app, RawHttp, TestApp, ADMIN_KEY};

const P: &str = "1";
const BUCKET: &str = "in_c_ok";
const TABLE: &str = "orders";

/// Names that must never be accepted for buckets and tables, with a label for messages.
fn bad_bucket_or_table_names() -> Vec<(&'static str, String)> {
    vec![
        ("dot-dot", "..".into()),
        ("single dot", ".".into()),
        ("traversal", "../etc".into()),
        ("slash", "a/b".into()),
        ("backslash", "a\\b".into()),
        ("NUL", "a\0b".into()),
        ("percent-encoded dot-dot", "%2e%2e".into()),
        ("SQL injection", "x\"; DROP TABLE y; --".into()),
        ("single quote", "a'b".into()),
        ("reserved information_schema", "information_schema".into()),
        ("reserved main", "main".into()),
        ("reserved MAIN upper-case", "MAIN".into()),
        ("reserved pg_catalog", "pg_catalog".into()),
        ("empty", String::new()),
        ("space", "a b".into()),
        ("leading dash", "-rf".into()),
        ("97 chars", "a".repeat(97)),
        ("Cyrillic a", "t\u{0430}ble".into()),
        ("RTL override", "tab\u{202e}le".into()),
        ("zero-width space", "ta\u{200b}ble".into()),
        ("accented", "na\u{ef}ve".into()),
    ]
}

/// Project ids follow the same alphabet (reserved words are not special for them).
fn bad_project_ids() -> Vec<(&'static str, String)> {
    vec![
        ("dot-dot", "..".into()),
        ("slash", "a/b".into()),
        ("backslash", "a\\b".into()),
        ("NUL", "1\u{0}".into()),
        ("percent-encoded dot-dot", "%2e%2e".into()),
        ("SQL injection", "x\"; DROP TABLE y; --".into()),
        ("empty", String::new()),
        ("65 chars", "1".repeat(65)),
        ("Cyrillic", "\u{0440}roject".into()),
        ("RTL override", "12\u{202e}3".into()),
        ("leading dash", "-1".into()),
    ]
}

/// Every path (directories and files) under `data_dir/duckdb`.
fn tree(app: &TestApp) -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.insert(path.clone());
            if path.is_dir() {
                walk(&path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&app.data_dir.join("duckdb"), &mut out);
    out
}

/// What the API shows of project 1: its buckets and the tables of the known bucket.
async fn visible_state(app: &TestApp) -> (Value, Value, Value) {
    let projects = app.get("/projects", ADMIN_KEY).await.expect(200);
    let ids: Value = projects["projects"]
        .as_array()
        .expect("projects array")
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    let buckets = app
        .get(&format!("/projects/{P}/buckets"), ADMIN_KEY)
        .await
        .expect(200);
    let names: Value = buckets["buckets"]
        .as_array()
        .expect("buckets array")
        .iter()
        .map(|b| b["name"].clone())
        .collect();
    let tables = app
        .get(&format!("/projects/{P}/buckets/{BUCKET}/tables"), ADMIN_KEY)
        .await
        .expect(200);
    let table_names: Value = tables["tables"]
        .as_array()
        .expect("tables array")
        .iter()
        .map(|t| json!([t["name"], t["columns"]]))
        .collect();
    (ids, names, table_names)
}

/// Project 1 with bucket `in_c_ok` holding table `orders(id INTEGER, amount DOUBLE)`.
struct World {
    app: TestApp,
    key: String,
    files: BTreeSet<PathBuf>,
    state: (Value, Value, Value),
}

async fn world() -> World {
    let app = spawn_app().await;
    let key = app.create_project(P).await;
    app.create_bucket(P, &key, BUCKET).await;
    app.create_table(
        P,
        &key,
        BUCKET,
        TABLE,
        &[("id", "INTEGER"), ("amount", "DOUBLE")],
        &["id"],
    )
    .await;
    let files = tree(&app);
    let state = visible_state(&app).await;
    World {
        app,
        key,
        files,
        state,
    }
}

impl World {
    /// The server still answers and nothing was created or changed by the rejected request.
    #[track_caller]
    fn assert_untouched_sync(
        &self,
        files: &BTreeSet<PathBuf>,
        state: &(Value, Value, Value),
        case: &str,
    ) {
        assert_eq!(&self.files, files, "{case}: files under duckdb/ changed");
        assert_eq!(&self.state, state, "{case}: visible state changed");
    }

    async fn assert_untouched(&self, case: &str) {
        let state = visible_state(&self.app).await;
        let files = tree(&self.app);
        self.assert_untouched_sync(&files, &state, case);
    }
}

/// Checks a rejection: the `expected` status, the reference error body, never 5xx.
#[track_caller]
fn assert_rejected(status: u16, body: &Value, expected: u16, case: &str) {
    assert!(status < 500, "{case}: server error {status}: {body}");
    assert_eq!(status, expected, "{case}: unexpected status: {body}");
    assert!(
        body["error"].is_string(),
        "{case}: error code missing: {body}"
    );
    assert!(
        body["message"].is_string(),
        "{case}: message missing: {body}"
    );
    assert!(
        body.get("details").is_some(),
        "{case}: details missing: {body}"
    );
}

fn table_body(name: &str, columns: Value) -> Value {
    json!({ "name": name, "columns": columns })
}

fn id_column() -> Value {
    json!([{ "name": "id", "type": "INTEGER" }])
}

// ---------------------------------------------------------------------------------------------
// Names in request bodies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_bucket_names_in_the_body_are_rejected_with_400_and_create_nothing() {
    let w = world().await;
    for (label, name) in bad_bucket_or_table_names() {
        let r = w
            .app
            .post(
                &format!("/projects/{P}/buckets"),
                &w.key,
                json!({ "name": name }),
            )
            .await;
        let case = format!("create bucket named {label} ({name:?})");
        assert_rejected(r.status.as_u16(), &r.body, 400, &case);
        assert_eq!(r.body["error"], "invalid_request", "{case}: {}", r.body);
        w.assert_untouched(&case).await;
    }
}

#[tokio::test]
async fn bad_table_names_in_the_body_are_rejected_with_400_and_create_nothing() {
    let w = world().await;
    for (label, name) in bad_bucket_or_table_names() {
        let r = w
            .app
            .post(
                &format!("/projects/{P}/buckets/{BUCKET}/tables"),
                &w.key,
                table_body(&name, id_column()),
            )
            .await;
        let case = format!("create table named {label} ({name:?})");
        assert_rejected(r.status.as_u16(), &r.body, 400, &case);
        w.assert_untouched(&case).await;
    }
}

#[tokio::test]
async fn bad_project_ids_in_the_body_are_rejected_with_400_and_create_nothing() {
    let w = world().await;
    for (label, id) in bad_project_ids() {
        let r = w
            .app
            .post("/projects", ADMIN_KEY, json!({ "id": id, "name": "x" }))
            .await;
        let case = format!("create project with id {label} ({id:?})");
        assert_rejected(r.status.as_u16(), &r.body, 400, &case);
        w.assert_untouched(&case).await;
    }
}

#[tokio::test]
async fn bad_project_display_names_are_rejected_with_400() {
    let w = world().await;
    for (label, name) in [
        ("NUL", "a\0b".to_string()),
        ("control character", "a\u{7}b".to_string()),
        ("257 chars", "n".repeat(257)),
    ] {
        let case = format!("create project named {label}");
        let r = w
            .app
            .post("/projects", ADMIN_KEY, json!({ "id": "2", "name": name }))
            .await;
        assert_rejected(r.status.as_u16(), &r.body, 400, &case);
        w.assert_untouched(&case).await;

        let case = format!("rename project to {label}");
        let r = w
            .app
            .call(
                Method::PUT,
                &format!("/projects/{P}"),
                Some(ADMIN_KEY),
                Some(json!({ "name": name })),
            )
            .await;
        assert_rejected(r.status.as_u16(), &r.body, 400, &case);
        let project = w
            .app
            .get(&format!("/projects/{P}"), ADMIN_KEY)
            .await
            .expect(200);
        assert_eq!(
            project["name"],
            format!("Project {P}"),
            "{case}: name changed"
        );
    }
}

#[tokio::test]
async fn bad_column_names_are_rejected_with_400() {
    let w = world().await;
    for (label, name) in [
        ("SQL injection", "x\"; DROP TABLE y; --".to_string()),
        ("empty", String::new()),
        ("65 chars", "c".repeat(65)),
        ("Cyrillic", "\u{0430}mount".to_string()),
        ("slash", "a/b".to_string()),
        ("NUL", "a\0b".to_string()),
    ] {
        let case = format!("column named {label}");
        let r = w
            .app
            .post(
                &format!("/projects/{P}/buckets/{BUCKET}/tables"),
                &w.key,
                table_body("t_cols", json!([{ "name": name, "type": "INTEGER" }])),
            )
            .await;
        assert_rejected(r.status.as_u16(), &r.body, 400, &case);
        w.assert_untouched(&case).await;
    }
}

#[tokio::test]
async fn longest_allowed_bucket_and_table_names_are_accepted() {
    let app = spawn_app().await;
    let key = app.create_project(P).await;
    let name = "b".repeat(96);
    app.create_bucket(P, &key, &name).await;
    let table = "t".repeat(96);
    app.create_table(P, &key, &name, &table, &[("id", "INTEGER")], &[])
        .await;
    app.get(
        &format!("/projects/{P}/buckets/{name}/tables/{table}"),
        &key,
    )
    .await
    .expect(200);
}

// ---------------------------------------------------------------------------------------------
// Names in URL paths
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_bucket_and_table_names_in_the_path_answer_400_or_404() {
    let w = world().await;
    // (label, methods the route has, path)
    let mut paths: Vec<(String, &[&str], String)> = Vec::new();
    const GET_DELETE: &[&str] = &["GET", "DELETE"];
    const GET: &[&str] = &["GET"];
    for (label, name) in bad_bucket_or_table_names() {
        if name.is_empty() {
            continue; // an empty segment is a different route, covered below
        }
        let seg = enc(&name);
        for prefix in [
            format!("/projects/{P}"),
            format!("/projects/{P}/branches/default"),
        ] {
            paths.push((
                format!("bucket {label}"),
                GET_DELETE,
                format!("{prefix}/buckets/{seg}"),
            ));
            paths.push((
                format!("tables of bucket {label}"),
                GET,
                format!("{prefix}/buckets/{seg}/tables"),
            ));
            paths.push((
                format!("table {label}"),
                GET_DELETE,
                format!("{prefix}/buckets/{BUCKET}/tables/{seg}"),
            ));
            paths.push((
                format!("table {label} in bucket {label}"),
                GET_DELETE,
                format!("{prefix}/buckets/{seg}/tables/{seg}"),
            ));
            paths.push((
                format!("preview of table {label}"),
                GET,
                format!("{prefix}/buckets/{BUCKET}/tables/{seg}/preview"),
            ));
        }
    }
    // Raw, un-encoded traversal and the literal percent-encoded dot-dot.
    for (methods, raw) in [
        (GET, format!("/projects/{P}/buckets/../tables")),
        (GET, format!("/projects/{P}/buckets/%2e%2e/tables")),
        (
            GET_DELETE,
            format!("/projects/{P}/buckets/%2E%2E/tables/{TABLE}"),
        ),
        (
            GET_DELETE,
            format!("/projects/{P}/buckets/{BUCKET}/tables/.."),
        ),
        (GET_DELETE, format!("/projects/{P}/buckets/..")),
        (
            GET,
            format!("/projects/{P}/buckets/{BUCKET}/tables/%2e%2e/preview"),
        ),
        (GET, format!("/projects/{P}/buckets/..%2f..%2f/tables")),
        (
            GET_DELETE,
            format!("/projects/{P}/buckets/{BUCKET}/tables/..%5c..%5cmetadata"),
        ),
        (GET, format!("/projects/{P}/buckets/%FF%FE/tables")),
        (GET, format!("/projects/{P}/buckets//tables")),
        (
            GET,
            format!("/projects/{P}/buckets/{BUCKET}/tables//preview"),
        ),
    ] {
        paths.push((format!("raw path {raw}"), methods, raw));
    }
    for (label, methods, path) in &paths {
        for method in methods.iter() {
            let case = format!("{label}: {method} {path}");
            let (status, body) =
                RawHttp::request(&w.app.base, method, path, Some(ADMIN_KEY), b"").await;
            assert_rejected(status, &body, 400, &case);
        }
    }
    // POSTs that would create something under a bad path segment.
    for (label, name) in bad_bucket_or_table_names() {
        if name.is_empty() {
            continue;
        }
        let seg = enc(&name);
        let body = serde_json::to_vec(&table_body("fine", id_column())).unwrap();
        let case = format!("create table in bucket {label}");
        let (status, reply) = RawHttp::request(
            &w.app.base,
            "POST",
            &format!("/projects/{P}/buckets/{seg}/tables"),
            Some(w.key.as_str()),
            &body,
        )
        .await;
        assert_rejected(status, &reply, 400, &case);
        let case = format!("link bucket named {label}");
        let body =
            serde_json::to_vec(&json!({ "source_project_id": "2", "source_bucket_name": "x" }))
                .unwrap();
        let (status, reply) = RawHttp::request(
            &w.app.base,
            "POST",
            &format!("/projects/{P}/buckets/{seg}/link"),
            Some(w.key.as_str()),
            &body,
        )
        .await;
        assert_rejected(status, &reply, 400, &case);
    }
    w.assert_untouched("bad names in paths").await;
}

#[tokio::test]
async fn bad_project_ids_in_the_path_answer_400_or_404() {
    let w = world().await;
    for (label, id) in bad_project_ids() {
        if id.is_empty() {
            continue;
        }
        let seg = enc(&id);
        for (methods, path) in [
            (&["GET", "DELETE"][..], format!("/projects/{seg}")),
            (&["GET"][..], format!("/projects/{seg}/buckets")),
            (
                &["GET"][..],
                format!("/projects/{seg}/branches/default/buckets"),
            ),
            (&["GET"][..], format!("/projects/{seg}/stats")),
        ] {
            for method in methods {
                let case = format!("project id {label}: {method} {path}");
                let (status, body) =
                    RawHttp::request(&w.app.base, method, &path, Some(ADMIN_KEY), b"").await;
                assert_rejected(status, &body, 400, &case);
            }
        }
    }
    // `/projects/../projects` is no route at all (404); the others name a bad project id (400).
    for (raw, expected) in [
        ("/projects/../projects", 404),
        ("/projects/%2e%2e/buckets", 400),
        ("/projects/..%2f..%2fetc/buckets", 400),
    ] {
        let (status, body) = RawHttp::request(&w.app.base, "GET", raw, Some(ADMIN_KEY), b"").await;
        assert_rejected(status, &body, expected, raw);
    }
    w.assert_untouched("bad project ids in paths").await;
}

// ---------------------------------------------------------------------------------------------
// Table definitions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_or_malicious_column_types_are_rejected_with_400() {
    let w = world().await;
    for ty in [
        "FOO",
        "DECIMAL(50,2)",
        "DECIMAL(5,6)",
        "INTEGER); DROP TABLE x; --",
        "VARCHAR DEFAULT 'x'",
        "STRUCT(a INT)",
        "INTEGER(",
        "",
        "VARCHAR(0)",
    ] {
        let case = format!("column type {ty:?}");
        let r = w
            .app
            .post(
                &format!("/projects/{P}/buckets/{BUCKET}/tables"),
                &w.key,
                table_body("t_types", json!([{ "name": "id", "type": ty }])),
            )
            .await;
        assert_rejected(r.status.as_u16(), &r.body, 400, &case);
        assert_eq!(r.body["error"], "invalid_request", "{case}");
        w.assert_untouched(&case).await;
    }
}

#[tokio::test]
async fn duplicate_columns_are_rejected_with_400_even_when_case_differs() {
    let w = world().await;
    for (a, b) in [("id", "id"), ("id", "ID"), ("Amount", "aMOUNT")] {
        let case = format!("columns {a:?} and {b:?}");
        let r = w
            .app
            .post(
                &format!("/projects/{P}/buckets/{BUCKET}/tables"),
                &w.key,
                table_body(
                    "t_dup",
                    json!([{ "name": a, "type": "INTEGER" }, { "name": b, "type": "VARCHAR" }]),
                ),
            )
            .await;
        assert_rejected(r.status.as_u16(), &r.body, 400, &case);
        w.assert_untouched(&case).await;
    }
}

#[tokio::test]
async fn primary_key_must_name_existing_columns_once() {
    let w = world().await;
    for (label, pk) in [
        ("missing column", json!(["nope"])),
        ("listed twice", json!(["id", "id"])),
        ("injection", json!(["id\"); DROP TABLE x; --"])),
    ] {
        let case = format!("primary key {label}");
        let mut body = table_body("t_pk", id_column());
        body["primary_key"] = pk;
        let r = w
            .app
            .post(
                &format!("/projects/{P}/buckets/{BUCKET}/tables"),
                &w.key,
                body,
            )
            .await;
        assert_rejected(r.status.as_u16(), &r.body, 400, &case);
        w.assert_untouched(&case).await;
    }
}

#[tokio::test]
async fn a_table_without_columns_is_rejected_with_400() {
    let w = world().await;
    let r = w
        .app
        .post(
            &format!("/projects/{P}/buckets/{BUCKET}/tables"),
            &w.key,
            table_body("t_empty", json!([])),
        )
        .await;
    assert_rejected(r.status.as_u16(), &r.body, 400, "no columns");
    w.assert_untouched("no columns").await;
}

#[tokio::test]
async fn unsafe_column_defaults_are_rejected_with_400() {
    let w = world().await;
    for default in [
        "1; DROP TABLE x",
        "'a' || (SELECT 1)",
        "'unterminated",
        "random()",
        "0); DROP TABLE data; --",
    ] {
        let case = format!("default {default:?}");
        let r = w
            .app
            .post(
                &format!("/projects/{P}/buckets/{BUCKET}/tables"),
                &w.key,
                table_body(
                    "t_def",
                    json!([{ "name": "id", "type": "INTEGER", "default": default }]),
                ),
            )
            .await;
        assert_rejected(r.status.as_u16(), &r.body, 400, &case);
        w.assert_untouched(&case).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

/// Sends a raw body through the HTTP client with a JSON content type.
async fn post_raw(
    app: &TestApp,
    path: &str,
    key: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request failed");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn malformed_json_is_rejected_with_400() {
    let w = world().await;
    let targets = [
        "/projects".to_string(),
        format!("/projects/{P}/buckets"),
        format!("/projects/{P}/buckets/{BUCKET}/tables"),
        format!("/projects/{P}/buckets/{BUCKET}/share"),
        format!("/projects/{P}/buckets/new_link/link"),
    ];
    for path in &targets {
        for bad in [
            "{\"name\": ",
            "{\"name\": \"x\",}",
            "not json",
            "{'name': 'x'}",
            "{\"name\": \"x\"} trailing",
        ] {
            let case = format!("POST {path} with body {bad:?}");
            let (status, body) = post_raw(&w.app, path, ADMIN_KEY, bad).await;
            assert_rejected(status, &body, 400, &case);
            assert_eq!(body["error"], "invalid_request", "{case}");
        }
    }
    w.assert_untouched("malformed JSON").await;
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_rejected_with_422() {
    let w = world().await;
    let tables = format!("/projects/{P}/buckets/{BUCKET}/tables");
    let buckets = format!("/projects/{P}/buckets");
    let (tables, buckets) = (tables.as_str(), buckets.as_str());
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "table without name",
            tables,
            json!({ "columns": [{ "name": "id", "type": "INTEGER" }] }),
        ),
        (
            "columns not an array",
            tables,
            json!({ "name": "t", "columns": "id INTEGER" }),
        ),
        ("columns missing", tables, json!({ "name": "t" })),
        (
            "column without type",
            tables,
            json!({ "name": "t", "columns": [{ "name": "id" }] }),
        ),
        (
            "type is a number",
            tables,
            json!({ "name": "t", "columns": [{ "name": "id", "type": 4 }] }),
        ),
        (
            "primary_key a string",
            tables,
            json!({ "name": "t", "columns": [{ "name": "id", "type": "INTEGER" }], "primary_key": "id" }),
        ),
        (
            "nullable a string",
            tables,
            json!({ "name": "t", "columns": [{ "name": "id", "type": "INTEGER", "nullable": "no" }] }),
        ),
        (
            "table name a number",
            tables,
            json!({ "name": 5, "columns": [{ "name": "id", "type": "INTEGER" }] }),
        ),
        (
            "bucket without name",
            buckets,
            json!({ "description": "x" }),
        ),
        ("bucket body an array", buckets, json!([{ "name": "x" }])),
        ("bucket name null", buckets, json!({ "name": null })),
        ("project without id", "/projects", json!({ "name": "x" })),
        (
            "project settings not an object",
            "/projects",
            json!({ "id": "2", "settings": [1] }),
        ),
    ];
    for (label, path, body) in cases {
        let r = w.app.post(path, ADMIN_KEY, body).await;
        assert_rejected(r.status.as_u16(), &r.body, 422, label);
        assert_eq!(r.body["error"], "validation_error", "{label}");
        w.assert_untouched(label).await;
    }
    // An empty body is "no JSON value", i.e. the wrong shape too.
    let (status, body) = post_raw(&w.app, buckets, ADMIN_KEY, "").await;
    assert_rejected(status, &body, 422, "empty body");
    w.assert_untouched("empty body").await;
}

#[tokio::test]
async fn bodies_over_max_body_bytes_are_rejected_with_413() {
    let w = world().await;
    let big = "x".repeat(70 * 1024);
    let cases = [
        (
            "/projects".to_string(),
            json!({ "id": "2", "name": "p", "settings": { "blob": big } }),
        ),
        (
            format!("/projects/{P}/buckets"),
            json!({ "name": "in_c_big", "description": big }),
        ),
        (
            format!("/projects/{P}/buckets/{BUCKET}/tables"),
            json!({ "name": "t_big", "columns": [{ "name": "id", "type": "VARCHAR", "default": format!("'{big}'") }] }),
        ),
    ];
    for (path, body) in cases {
        let case = format!("POST {path} with a 70 KiB body");
        let r = w.app.post(&path, ADMIN_KEY, body).await;
        assert_rejected(r.status.as_u16(), &r.body, 413, &case);
        assert_eq!(r.body["error"], "payload_too_large", "{case}");
        w.assert_untouched(&case).await;
    }
    // Just under the limit is fine.
    let ok = "d".repeat(60 * 1024);
    w.app
        .post(
            &format!("/projects/{P}/buckets"),
            ADMIN_KEY,
            json!({ "name": "in_c_near_limit", "description": ok }),
        )
        .await
        .expect(201);
}

// ---------------------------------------------------------------------------------------------
// Conflicts and missing parents
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn creating_an_existing_project_bucket_or_table_answers_409_and_changes_nothing() {
    let w = world().await;
    let r = w
        .app
        .post("/projects", ADMIN_KEY, json!({ "id": P, "name": "again" }))
        .await;
    assert_rejected(r.status.as_u16(), &r.body, 409, "existing project");
    assert_eq!(r.body["error"], "project_exists");
    // The existing project's key still works and its name is unchanged.
    let project = w
        .app
        .get(&format!("/projects/{P}"), &w.key)
        .await
        .expect(200);
    assert_eq!(project["name"], format!("Project {P}"));

    let r = w
        .app
        .post(
            &format!("/projects/{P}/buckets"),
            &w.key,
            json!({ "name": BUCKET, "description": "again" }),
        )
        .await;
    assert_rejected(r.status.as_u16(), &r.body, 409, "existing bucket");

    let r = w
        .app
        .post(
            &format!("/projects/{P}/buckets/{BUCKET}/tables"),
            &w.key,
            table_body(TABLE, json!([{ "name": "other", "type": "VARCHAR" }])),
        )
        .await;
    assert_rejected(r.status.as_u16(), &r.body, 409, "existing table");
    // Same through the branch-first style.
    let r = w
        .app
        .post(
            &format!("/projects/{P}/branches/default/buckets/{BUCKET}/tables"),
            &w.key,
            table_body(TABLE, id_column()),
        )
        .await;
    assert_rejected(
        r.status.as_u16(),
        &r.body,
        409,
        "existing table (branch path)",
    );
    w.assert_untouched("conflicts").await;
}

#[tokio::test]
async fn creating_under_a_missing_parent_answers_404() {
    let w = world().await;
    let r = w
        .app
        .post(
            &format!("/projects/{P}/buckets/in_c_missing/tables"),
            &w.key,
            table_body("t", id_column()),
        )
        .await;
    assert_rejected(r.status.as_u16(), &r.body, 404, "table in a missing bucket");
    let r = w
        .app
        .post("/projects/404/buckets", ADMIN_KEY, json!({ "name": "b" }))
        .await;
    assert_rejected(
        r.status.as_u16(),
        &r.body,
        404,
        "bucket in a missing project",
    );
    w.assert_untouched("missing parents").await;
    assert!(
        !w.app.data_dir.join("duckdb/project_404").exists(),
        "a directory was made for a missing project"
    );
}

// ---------------------------------------------------------------------------------------------
// Query strings, branches, routes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn preview_limit_out_of_range_or_unparsable_answers_422() {
    let w = world().await;
    for prefix in [
        format!("/projects/{P}"),
        format!("/projects/{P}/branches/default"),
    ] {
        for q in [
            "limit=0",
            "limit=10001",
            "limit=-1",
            "limit=abc",
            "limit=1.5",
            "limit=99999999999999999999",
        ] {
            let path = format!("{prefix}/buckets/{BUCKET}/tables/{TABLE}/preview?{q}");
            let r = w.app.get(&path, &w.key).await;
            assert_rejected(r.status.as_u16(), &r.body, 422, &path);
            assert_eq!(r.body["error"], "validation_error", "{path}");
        }
        // The edges are accepted.
        for q in ["limit=1", "limit=10000"] {
            let path = format!("{prefix}/buckets/{BUCKET}/tables/{TABLE}/preview?{q}");
            w.app.get(&path, &w.key).await.expect(200);
        }
    }
}

#[tokio::test]
async fn preview_of_an_unknown_column_answers_400() {
    let w = world().await;
    for q in [
        "columns=nope",
        "columns=id,nope",
        "columns=id%22%3B%20DROP%20TABLE%20data%3B%20--",
    ] {
        let path = format!("/projects/{P}/buckets/{BUCKET}/tables/{TABLE}/preview?{q}");
        let r = w.app.get(&path, &w.key).await;
        assert_rejected(r.status.as_u16(), &r.body, 400, &path);
    }
    // The table is still there and readable.
    let ok = w
        .app
        .get(
            &format!("/projects/{P}/buckets/{BUCKET}/tables/{TABLE}/preview?columns=id"),
            &w.key,
        )
        .await
        .expect(200);
    assert_eq!(ok["columns"].as_array().map(Vec::len), Some(1));
    w.assert_untouched("preview columns").await;
}

#[tokio::test]
async fn unknown_branch_answers_404() {
    let w = world().await;
    for path in [
        format!("/projects/{P}/branches/feature/buckets"),
        format!("/projects/{P}/branches/feature/buckets/{BUCKET}"),
        format!("/projects/{P}/branches/feature/buckets/{BUCKET}/tables/{TABLE}"),
        format!("/projects/{P}/branches/123/buckets/{BUCKET}/tables/{TABLE}/preview"),
    ] {
        let r = w.app.get(&path, &w.key).await;
        assert_rejected(r.status.as_u16(), &r.body, 404, &path);
    }
    let r = w
        .app
        .post(
            &format!("/projects/{P}/branches/feature/buckets"),
            &w.key,
            json!({ "name": "in_c_branch" }),
        )
        .await;
    assert_rejected(
        r.status.as_u16(),
        &r.body,
        404,
        "create bucket on an unknown branch",
    );
    w.assert_untouched("unknown branch").await;
    // The main branch is reachable under both of its names.
    for branch in ["default", "main"] {
        w.app
            .get(&format!("/projects/{P}/branches/{branch}/buckets"), &w.key)
            .await
            .expect(200);
    }
}

#[tokio::test]
async fn unknown_routes_answer_404_json_and_wrong_methods_405_json() {
    let w = world().await;
    for path in [
        "/nope",
        "/projects/1/nope",
        "/projects/1/buckets/in_c_ok/tables/orders/extra",
        "/v2/storage",
    ] {
        let r = w.app.get(path, ADMIN_KEY).await;
        assert_rejected(r.status.as_u16(), &r.body, 404, path);
        assert_eq!(r.body["error"], "not_found", "{path}");
        // Unauthenticated callers get the same JSON 404 for routes that do not exist.
        let r = w.app.call(Method::GET, path, None, None).await;
        assert_rejected(r.status.as_u16(), &r.body, 404, path);
        assert_eq!(r.body["error"], "not_found", "{path}");
    }
    for (method, path) in [
        (Method::PATCH, "/projects"),
        (Method::DELETE, "/health"),
        (Method::PUT, "/projects/1/buckets"),
    ] {
        let r = w
            .app
            .call(method.clone(), path, Some(ADMIN_KEY), None)
            .await;
        assert_rejected(r.status.as_u16(), &r.body, 405, &format!("{method} {path}"));
        assert_eq!(r.body["error"], "method_not_allowed", "{method} {path}");
    }
}

#[tokio::test]
async fn project_list_paging_out_of_range_is_rejected() {
    let w = world().await;
    // An unknown status value is a bad request.
    let r = w.app.get("/projects?status=weird", ADMIN_KEY).await;
    assert_rejected(r.status.as_u16(), &r.body, 400, "status=weird");
    // Out-of-range or unparsable paging is a validation error, like preview's limit.
    for q in ["limit=0", "limit=1001", "limit=-1", "offset=abc"] {
        let r = w.app.get(&format!("/projects?{q}"), ADMIN_KEY).await;
        assert_rejected(r.status.as_u16(), &r.body, 422, q);
    }
}

#[tokio::test]
async fn unshare_without_a_target_answers_400() {
    let w = world().await;
    let r = w
        .app
        .delete(&format!("/projects/{P}/buckets/{BUCKET}/share"), &w.key)
        .await;
    assert_rejected(r.status.as_u16(), &r.body, 400, "unshare without target");
    let r = w
        .app
        .delete(
            &format!("/projects/{P}/buckets/{BUCKET}/share?target_project_id=..%2f"),
            &w.key,
        )
        .await;
    assert_rejected(r.status.as_u16(), &r.body, 400, "unshare with a bad target");
}

#[tokio::test]
async fn the_server_keeps_serving_after_a_burst_of_bad_requests() {
    let w = world().await;
    for (_, name) in bad_bucket_or_table_names() {
        let _ = w
            .app
            .post(
                &format!("/projects/{P}/buckets"),
                &w.key,
                json!({ "name": name }),
            )
            .await;
        let _ = post_raw(&w.app, &format!("/projects/{P}/buckets"), &w.key, "{oops").await;
    }
    w.app.get("/healthz", ADMIN_KEY).await.expect(200);
    let preview = w
        .app
        .get(
            &format!("/projects/{P}/buckets/{BUCKET}/tables/{TABLE}/preview"),
            &w.key,
        )
        .await
        .expect(200);
    assert_eq!(preview["total_row_count"], 0);
    w.assert_untouched("burst").await;
}
